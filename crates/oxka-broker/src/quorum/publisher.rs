//! Kafka's MetadataLoader and publishers in one: follows the committed
//! metadata log, folds each batch into a new [`MetadataImage`], brings this
//! node's hosted partitions, topic configs and dynamic broker configs in
//! line with it, and only then makes the image visible to handlers. So a
//! handler never sees a topic whose local logs are not open yet, and a
//! node that applied offset N answers like every other node at N.
//!
//! Level-triggered: it reads what is committed from the log itself, not
//! from a queue, so nothing is buffered between the quorum and it.

use std::sync::Arc;
use std::time::Duration;

use oxka_controller::image::MetadataImage;
use oxka_controller::quorum::{Committed, MetadataLog};
use oxka_controller::records::RecordBatch;
use parking_lot::RwLock;

use super::raft_manager::{CommitSignal, RaftManager};
use crate::config::KafkaConfig;
use crate::controller::dynamic_configs_of;
use crate::replica_manager::ReplicaManager;

/// Applied batches are read in chunks of about this many bytes.
const CHUNK_BYTES: usize = 8 << 20;

pub struct MetadataPublisher {
    image: RwLock<Arc<MetadataImage>>,
    applied: Arc<CommitSignal>,
    /// The committed offset of the log followed (set by `start`): how far
    /// `applied` has to go (readiness, the metadata lag metric).
    committed: RwLock<Option<Arc<CommitSignal>>>,
}

/// Where the committed log comes from: this voter's Raft log, or the copy
/// a following broker fetches.
pub struct LogSource {
    pub log: MetadataLog,
    pub commit: Arc<CommitSignal>,
    /// Set on voters: snapshots are written through Raft.
    pub raft: Option<Arc<RaftManager>>,
}

impl MetadataPublisher {
    pub fn new() -> Arc<MetadataPublisher> {
        Arc::new(MetadataPublisher {
            image: RwLock::new(Arc::new(MetadataImage::default())),
            applied: Arc::new(CommitSignal::default()),
            committed: RwLock::new(None),
        })
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.image.read().clone()
    }

    pub fn applied(&self) -> u64 {
        self.applied.get()
    }

    /// The metadata log's committed offset as this node knows it (the
    /// applied offset before the publisher runs).
    pub fn committed(&self) -> u64 {
        match &*self.committed.read() {
            Some(c) => c.get(),
            None => self.applied(),
        }
    }

    /// Waits until the image includes offset `offset`; false on timeout.
    pub fn wait_applied(&self, offset: u64, timeout: Duration) -> bool {
        if self.applied.get() >= offset {
            return true;
        }
        let deadline = std::time::Instant::now() + timeout;
        loop {
            let now = std::time::Instant::now();
            if now >= deadline {
                return self.applied.get() >= offset;
            }
            let got = self
                .applied
                .wait_past(offset.saturating_sub(1), deadline - now);
            if got >= offset {
                return true;
            }
        }
    }

    /// Applies everything committed so far (start-up), then follows the
    /// log on a thread of its own until `stop` is set.
    pub fn start(
        self: &Arc<Self>,
        source: LogSource,
        replica_manager: Arc<ReplicaManager>,
        config: Arc<KafkaConfig>,
        snapshot_bytes: u64,
        stop: Arc<std::sync::atomic::AtomicBool>,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let me = self.clone();
        *self.committed.write() = Some(source.commit.clone());
        std::thread::Builder::new()
            .name("metadata-publisher".into())
            .spawn(move || super::halt_on_panic("metadata-publisher", move || {
                let mut applied = me.applied.get();
                while !stop.load(std::sync::atomic::Ordering::Acquire) {
                    let commit = source.commit.wait_past(applied, Duration::from_millis(200));
                    replica_manager.maybe_enable_roles(&me.image(), &config);
                    if commit <= applied {
                        continue;
                    }
                    applied = me.catch_up(&source, &replica_manager, &config);
                    replica_manager.maybe_enable_roles(&me.image(), &config);
                    if let Some(raft) = &source.raft {
                        if source.log.bytes_since_snapshot() > snapshot_bytes {
                            let image = me.image();
                            match serde_json::to_vec(&*image) {
                                Ok(data) => raft.compact(image.offset, data),
                                Err(e) => {
                                    tracing::error!(error = %e, "cannot encode a metadata snapshot")
                                }
                            }
                        }
                    } else if source.log.bytes_since_snapshot() > snapshot_bytes {
                        let image = me.image();
                        if let Ok(data) = serde_json::to_vec(&*image) {
                            source.log.follow_compact(image.offset, data);
                        }
                    }
                }
            }))
    }

    /// Folds in every committed batch not applied yet; returns the offset
    /// reached.
    pub fn catch_up(
        &self,
        source: &LogSource,
        replica_manager: &ReplicaManager,
        config: &KafkaConfig,
    ) -> u64 {
        loop {
            let old = self.image();
            let mut next = (*old).clone();
            match source.log.committed_after(old.offset, CHUNK_BYTES) {
                Committed::Snapshot { index, data } => {
                    match serde_json::from_slice::<MetadataImage>(&data) {
                        Ok(mut image) => {
                            image.reindex();
                            image.offset = index;
                            next = image;
                        }
                        Err(e) => {
                            tracing::error!(offset = index, error = %e, "undecodable metadata snapshot");
                            return old.offset;
                        }
                    }
                }
                Committed::Entries(entries) if entries.is_empty() => return old.offset,
                Committed::Entries(entries) => {
                    for (offset, data) in entries {
                        match RecordBatch::decode(offset, &data) {
                            Ok(batch) => next.apply_batch(offset, &batch),
                            Err(e) => {
                                // A batch every voter agreed on but this
                                // build cannot read: skip it loudly rather
                                // than stop following the log.
                                tracing::error!(error = %e, "skipping a metadata batch");
                                next.offset = offset;
                            }
                        }
                    }
                }
            }
            reconcile(&old, &next, replica_manager, config);
            let offset = next.offset;
            *self.image.write() = Arc::new(next);
            self.applied.set(offset);
        }
    }
}

/// Brings the hosted partitions and configs from `old`'s state to `new`'s.
fn reconcile(
    old: &MetadataImage,
    new: &MetadataImage,
    replica_manager: &ReplicaManager,
    config: &KafkaConfig,
) {
    let node = config.node_id;
    if old.brokers != new.brokers {
        // before the partitions: a new follower needs its leader's address
        replica_manager.fetchers().update_brokers(new);
    }
    let dynamic_changed = old.broker_configs != new.broker_configs;
    if dynamic_changed {
        config.set_dynamic_configs(dynamic_configs_of(new, node));
    }
    for (name, t) in &old.topics {
        let gone = new.topic(name).is_none_or(|n| n.id != t.id);
        if gone {
            if let Err(e) = replica_manager.remove_topic(name) {
                tracing::error!(topic = %name, error = %e, "cannot delete the logs of a deleted topic");
            } else {
                tracing::info!(topic = %name, "deleted topic");
            }
        }
    }
    for (name, t) in &new.topics {
        let before = old.topic(name);
        if !dynamic_changed && before == Some(t) {
            continue;
        }
        if let Err(e) = replica_manager.apply_topic(t, config) {
            tracing::error!(topic = %name, error = %e, "cannot open the logs of a topic");
        } else if before.is_none() {
            tracing::info!(topic = %name, partitions = t.partitions.len(), "created topic");
        }
    }
}
