//! Transactional offset commits (TxnOffsetCommit): offsets a transactional
//! producer sends with `send_offsets_to_transaction` are written to the
//! group's `__consumer_offsets` partition in a transactional batch (the
//! producer's id and epoch) and held here as pending until the
//! transaction's marker reaches that partition: COMMIT materialises them
//! into the group's committed offsets, ABORT drops them. OffsetFetch with
//! `require_stable` answers UNSTABLE_OFFSET_COMMIT while any are pending.
//!
//! Kept in a child module so the group coordinator only carries hooks.

use std::collections::HashMap;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use oxka_log::builder::RecordBatchBuilder;
use oxka_log::producer_state::parse_marker;
use oxka_log::record_batch::decode_records;
use oxka_log::{RecordBatchHeader, TopicPartition};

use super::offsets::{partition_for, OffsetAndMetadata, OFFSETS_TOPIC};
use super::records::{CoordinatorKey, OffsetCommitValue};
use super::{CommitEntry, Group, GroupCoordinator};
use crate::now_ms;

type GroupOffsets = HashMap<(String, i32), OffsetAndMetadata>;

/// Pending transactional offsets: producer id -> group -> offsets.
#[derive(Debug, Default)]
pub struct PendingTxnOffsets {
    by_producer: HashMap<i64, HashMap<String, GroupOffsets>>,
}

impl PendingTxnOffsets {
    fn add(&mut self, pid: i64, group: &str, key: (String, i32), o: OffsetAndMetadata) {
        self.by_producer
            .entry(pid)
            .or_default()
            .entry(group.to_string())
            .or_default()
            .insert(key, o);
    }

    /// Removes and returns the pending offsets of `pid` for the groups
    /// living on `__consumer_offsets` partition `partition`.
    fn take(
        &mut self,
        pid: i64,
        partition: i32,
        num_partitions: i32,
    ) -> Vec<(String, GroupOffsets)> {
        let Some(groups) = self.by_producer.get_mut(&pid) else {
            return Vec::new();
        };
        let ids: Vec<String> = groups
            .keys()
            .filter(|g| partition_for(g, num_partitions) == partition)
            .cloned()
            .collect();
        let out = ids
            .into_iter()
            .filter_map(|g| groups.remove(&g).map(|o| (g, o)))
            .collect();
        if groups.is_empty() {
            self.by_producer.remove(&pid);
        }
        out
    }

    /// Forgets the pending offsets of the groups on `partition` (its
    /// coordinator moved; the new one replays them from the log).
    pub(super) fn drop_partition(&mut self, partition: i32, num_partitions: i32) {
        for groups in self.by_producer.values_mut() {
            groups.retain(|g, _| partition_for(g, num_partitions) != partition);
        }
        self.by_producer.retain(|_, groups| !groups.is_empty());
    }

    fn pending_for(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.by_producer.values().any(|groups| {
            groups
                .get(group)
                .is_some_and(|o| o.contains_key(&(topic.to_string(), partition)))
        })
    }
}

impl GroupCoordinator {
    pub(super) fn offsets_partitions(&self) -> i32 {
        self.controller
            .image()
            .topic(OFFSETS_TOPIC)
            .map_or(self.cfg.offsets_topic_num_partitions, |t| {
                t.partitions.len() as i32
            })
    }

    /// TxnOffsetCommit: validates the member (when the request names one),
    /// writes the offsets in a transactional batch and holds them pending.
    #[allow(clippy::too_many_arguments)]
    pub fn txn_commit_offsets(
        &self,
        group_id: &str,
        producer_id: i64,
        producer_epoch: i16,
        generation_id: i32,
        member_id: &str,
        instance: Option<&str>,
        entries: Vec<CommitEntry>,
        api_version: i16,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        self.ready(group_id)?;
        Self::validate_offset_commit(
            self.groups.lock().get(group_id),
            member_id,
            instance,
            generation_id,
            true,
            api_version,
        )?;
        let n = self.ensure_offsets_topic()?;
        let now = now_ms();
        let mut results = Vec::with_capacity(entries.len());
        let mut b =
            RecordBatchBuilder::new()
                .transactional(true)
                .producer(producer_id, producer_epoch, -1);
        let mut accepted = Vec::new();
        for e in entries {
            let md = e.metadata.clone().unwrap_or_default();
            if !self.partition_exists(&e.topic, e.partition) {
                results.push(Some(ResponseError::UnknownTopicOrPartition));
                continue;
            }
            if md.len() > self.cfg.offset_metadata_max_bytes {
                results.push(Some(ResponseError::OffsetMetadataTooLarge));
                continue;
            }
            results.push(None);
            let value = OffsetCommitValue {
                offset: e.offset,
                leader_epoch: e.leader_epoch,
                metadata: md,
                commit_timestamp: now,
            };
            let key = CoordinatorKey::OffsetCommit {
                group: group_id.to_string(),
                topic: e.topic.clone(),
                partition: e.partition,
            }
            .encode();
            b = b.record(Some(&key), Some(&value.encode()), now);
            accepted.push((results.len() - 1, e.topic, e.partition, value));
        }
        if accepted.is_empty() {
            return Ok(results);
        }
        let tp = TopicPartition::new(OFFSETS_TOPIC, partition_for(group_id, n));
        let written = b
            .try_build()
            .map_err(|e| {
                tracing::error!(error = %e, "cannot encode transactional offsets");
                ResponseError::UnknownServerError
            })
            .and_then(|bytes| {
                self.replica_manager
                    .append_coordinator_records(&tp, Bytes::from(bytes), now)
                    .map_err(|e| match e.error {
                        ResponseError::InvalidProducerEpoch => ResponseError::ProducerFenced,
                        ResponseError::UnknownTopicOrPartition
                        | ResponseError::NotEnoughReplicas => {
                            ResponseError::CoordinatorNotAvailable
                        }
                        other => other,
                    })
            });
        if let Err(err) = written {
            for (i, ..) in &accepted {
                results[*i] = Some(err);
            }
            return Ok(results);
        }
        let mut pending = self.txn_offsets.lock();
        for (_, topic, partition, v) in accepted {
            pending.add(
                producer_id,
                group_id,
                (topic, partition),
                OffsetAndMetadata::from(v),
            );
        }
        Ok(results)
    }

    /// A transaction marker was written to `__consumer_offsets` partition
    /// `partition`: materialise (commit) or drop (abort) the producer's
    /// pending offsets of the groups there.
    pub fn complete_txn_offsets(&self, producer_id: i64, partition: i32, commit: bool) {
        let n = self.offsets_partitions();
        let done = self.txn_offsets.lock().take(producer_id, partition, n);
        if !commit || done.is_empty() {
            return;
        }
        let now = now_ms();
        let mut groups = self.groups.lock();
        for (group, offsets) in done {
            let g = groups
                .entry(group.clone())
                .or_insert_with(|| Group::new(&group, now));
            g.offsets.extend(offsets);
        }
    }

    /// Whether a transactional commit of this partition's offset is still
    /// open (OffsetFetch `require_stable`).
    pub fn has_pending_txn_offset(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.txn_offsets.lock().pending_for(group, topic, partition)
    }

    /// Load hook: a transactional batch of `__consumer_offsets` partition
    /// `partition`. Data batches become pending; markers resolve them into
    /// `offs` (the offsets being rebuilt) or drop them.
    pub(super) fn load_txn_batch(
        &self,
        partition: i32,
        num_partitions: i32,
        h: &RecordBatchHeader,
        raw: &[u8],
        offs: &mut HashMap<String, GroupOffsets>,
    ) {
        if h.is_control() {
            let Ok((commit, _)) = parse_marker(raw) else {
                return;
            };
            let done = self
                .txn_offsets
                .lock()
                .take(h.producer_id, partition, num_partitions);
            if commit {
                for (group, o) in done {
                    offs.entry(group).or_default().extend(o);
                }
            }
            return;
        }
        let Ok(records) = decode_records(raw) else {
            return;
        };
        let mut pending = self.txn_offsets.lock();
        for r in records {
            let Some(Ok(CoordinatorKey::OffsetCommit {
                group,
                topic,
                partition,
            })) = r.key.as_deref().map(CoordinatorKey::decode)
            else {
                continue;
            };
            if let Some(Ok(v)) = r.value.as_deref().map(OffsetCommitValue::decode) {
                pending.add(
                    h.producer_id,
                    &group,
                    (topic, partition),
                    OffsetAndMetadata::from(v),
                );
            }
        }
    }
}
