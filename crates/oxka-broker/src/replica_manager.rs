//! The replica manager: the partitions this broker hosts, their logs, and
//! the high watermark that bounds what consumers may read.
//!
//! With one node every partition's only replica is the leader and the ISR is
//! `{self}`, so the high watermark follows the log end offset. The leader
//! epoch and high-watermark bookkeeping already sit here so that followers
//! (the cluster issue) plug in without moving code.

use std::collections::HashMap;
use std::sync::atomic::{AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use oxka_log::{LogAppendInfo, LogError, LogManager, TopicPartition};
use parking_lot::{Mutex, RwLock};
use tokio::sync::watch;
use uuid::Uuid;

use crate::config::KafkaConfig;
use crate::metadata::TopicInfo;

pub type SharedLog = Arc<Mutex<oxka_log::Log>>;

pub struct Partition {
    pub tp: TopicPartition,
    pub topic_id: Uuid,
    pub log: SharedLog,
    leader_epoch: AtomicI32,
    high_watermark: AtomicI64,
    min_insync_replicas: AtomicI32,
    isr_size: AtomicI32,
}

impl Partition {
    pub fn leader_epoch(&self) -> i32 {
        self.leader_epoch.load(Ordering::Acquire)
    }

    pub fn high_watermark(&self) -> i64 {
        self.high_watermark.load(Ordering::Acquire)
    }

    pub fn log_start_offset(&self) -> i64 {
        self.log.lock().log_start_offset()
    }

    /// With the ISR being this broker alone, everything appended is
    /// replicated "to all in-sync replicas" as soon as it is in the log.
    fn maybe_increment_high_watermark(&self, log_end_offset: i64) {
        self.high_watermark
            .fetch_max(log_end_offset, Ordering::AcqRel);
    }
}

/// What a produce to one partition failed with, as the Kafka error to send.
#[derive(Debug)]
pub struct AppendError {
    pub error: ResponseError,
    pub message: String,
}

impl AppendError {
    fn new(error: ResponseError, message: impl Into<String>) -> Self {
        AppendError {
            error,
            message: message.into(),
        }
    }
}

/// Maps a storage error to the Kafka error a client understands.
pub fn log_error_code(e: &LogError) -> ResponseError {
    match e {
        LogError::CorruptRecord(_) => ResponseError::CorruptMessage,
        LogError::MessageTooLarge { .. } => ResponseError::MessageTooLarge,
        LogError::RecordListTooLarge { .. } => ResponseError::RecordListTooLarge,
        LogError::InvalidRecord(_) => ResponseError::InvalidRecord,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        e if e.is_io() => ResponseError::KafkaStorageError,
        _ => ResponseError::UnknownServerError,
    }
}

pub struct ReplicaManager {
    node_id: i32,
    log_manager: Arc<LogManager>,
    partitions: RwLock<HashMap<TopicPartition, Arc<Partition>>>,
    /// Bumped after every append; long-polling fetches wait on it.
    data_changed: watch::Sender<u64>,
}

impl ReplicaManager {
    pub fn new(node_id: i32, log_manager: Arc<LogManager>) -> Self {
        ReplicaManager {
            node_id,
            log_manager,
            partitions: RwLock::new(HashMap::new()),
            data_changed: watch::Sender::new(0),
        }
    }

    pub fn log_manager(&self) -> &Arc<LogManager> {
        &self.log_manager
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.data_changed.subscribe()
    }

    pub fn get_partition(&self, tp: &TopicPartition) -> Option<Arc<Partition>> {
        self.partitions.read().get(tp).cloned()
    }

    /// Makes the hosted partitions of `topic` match the metadata: opens or
    /// creates the logs of partitions led here and applies the topic configs.
    pub fn apply_topic(&self, topic: &TopicInfo, config: &KafkaConfig) -> Result<(), LogError> {
        let log_config = config.log_config(&topic.configs);
        let min_isr = topic
            .configs
            .get("min.insync.replicas")
            .cloned()
            .or_else(|| config.value("min.insync.replicas"))
            .and_then(|v| v.parse::<i32>().ok())
            .unwrap_or(1);
        for (i, p) in topic.partitions.iter().enumerate() {
            if !p.replicas.contains(&self.node_id) {
                continue;
            }
            let tp = TopicPartition::new(topic.name.clone(), i as i32);
            if let Some(existing) = self.get_partition(&tp) {
                existing.log.lock().set_config(log_config.clone());
                existing
                    .leader_epoch
                    .store(p.leader_epoch, Ordering::Release);
                existing
                    .min_insync_replicas
                    .store(min_isr, Ordering::Release);
                existing
                    .isr_size
                    .store(p.isr.len() as i32, Ordering::Release);
                continue;
            }
            let log = self
                .log_manager
                .get_or_create_log(&tp, log_config.clone())?;
            {
                let mut l = log.lock();
                l.set_config(log_config.clone());
            }
            let leo = log.lock().log_end_offset();
            let partition = Arc::new(Partition {
                tp: tp.clone(),
                topic_id: topic.id,
                log,
                leader_epoch: AtomicI32::new(p.leader_epoch),
                high_watermark: AtomicI64::new(leo),
                min_insync_replicas: AtomicI32::new(min_isr),
                isr_size: AtomicI32::new(p.isr.len() as i32),
            });
            self.partitions.write().insert(tp, partition);
        }
        Ok(())
    }

    /// Stops hosting every partition of `topic` and deletes their logs.
    pub fn remove_topic(&self, topic: &str) -> Result<(), LogError> {
        let removed: Vec<TopicPartition> = {
            let mut parts = self.partitions.write();
            let keys: Vec<_> = parts
                .keys()
                .filter(|tp| tp.topic == topic)
                .cloned()
                .collect();
            for k in &keys {
                parts.remove(k);
            }
            keys
        };
        for tp in removed {
            self.log_manager.delete_log(&tp)?;
        }
        Ok(())
    }

    /// Deletes logs on disk that no topic in the metadata claims (left by a
    /// crash between a metadata change and the matching log change).
    pub fn remove_orphan_logs(&self) -> Result<Vec<TopicPartition>, LogError> {
        let hosted = self.partitions.read();
        let mut removed = Vec::new();
        for (tp, _) in self.log_manager.all_logs() {
            if !hosted.contains_key(&tp) {
                self.log_manager.delete_log(&tp)?;
                removed.push(tp);
            }
        }
        Ok(removed)
    }

    /// Appends a produce request's records to one partition as its leader.
    pub fn append_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        required_acks: i16,
        now_ms: i64,
    ) -> Result<LogAppendInfo, AppendError> {
        let partition = self.get_partition(tp).ok_or_else(|| {
            AppendError::new(
                ResponseError::UnknownTopicOrPartition,
                format!("This server does not host {tp}"),
            )
        })?;
        if required_acks == -1 {
            let min_isr = partition.min_insync_replicas.load(Ordering::Acquire);
            let isr = partition.isr_size.load(Ordering::Acquire);
            if isr < min_isr {
                return Err(AppendError::new(
                    ResponseError::NotEnoughReplicas,
                    format!("The size of the current ISR {isr} is insufficient to satisfy the min.isr requirement of {min_isr} for partition {tp}"),
                ));
            }
        }
        let mut buf = BytesMut::from(&records[..]);
        let info = {
            let mut log = partition.log.lock();
            let info = log
                .append_as_leader(&mut buf, partition.leader_epoch(), now_ms)
                .map_err(|e| AppendError::new(log_error_code(&e), e.to_string()))?;
            partition.maybe_increment_high_watermark(log.log_end_offset());
            info
        };
        self.data_changed.send_modify(|v| *v = v.wrapping_add(1));
        Ok(info)
    }

    pub fn all_partitions(&self) -> Vec<Arc<Partition>> {
        self.partitions.read().values().cloned().collect()
    }
}
