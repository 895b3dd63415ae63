//! Per-partition ownership of the group coordinator over in-memory fakes
//! of its two traits: a partition is loaded when it becomes led here,
//! dropped when it is led elsewhere, and requests for ids hashed to it are
//! answered accordingly.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use oxka_controller::image::{MetadataImage, PartitionInfo, TopicInfo};
use oxka_log::{LogError, TopicPartition};
use parking_lot::Mutex;

use super::offsets::{partition_for, OFFSETS_TOPIC};
use super::{CommitEntry, GroupConfig, GroupCoordinator, JoinParams, Reply};
use crate::{AppendError, BoxFuture, CoordinatorLog, CoordinatorMetadata};

const PARTITIONS: i32 = 4;

/// A log per partition (appended batches), and which partitions are led
/// here in which epoch.
#[derive(Default)]
struct FakeLog {
    logs: Mutex<HashMap<TopicPartition, Vec<Bytes>>>,
    led: Mutex<HashMap<TopicPartition, i32>>,
}

impl CoordinatorLog for FakeLog {
    fn append_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        _acks: i16,
        _now_ms: i64,
    ) -> Result<(), AppendError> {
        if !self.led.lock().contains_key(tp) {
            return Err(AppendError::new(
                ResponseError::NotLeaderOrFollower,
                "not led",
            ));
        }
        let mut logs = self.logs.lock();
        let log = logs.entry(tp.clone()).or_default();
        // offsets: one per record, batches re-based as the broker does
        let base = log
            .iter()
            .map(|b| oxka_log::RecordBatchHeader::parse(b).map_or(0, |h| h.last_offset() + 1))
            .max()
            .unwrap_or(0);
        let mut b = records.to_vec();
        b[..8].copy_from_slice(&base.to_be_bytes());
        log.push(Bytes::from(b));
        Ok(())
    }
    fn append_coordinator_records(
        &self,
        tp: &TopicPartition,
        r: Bytes,
        now: i64,
    ) -> Result<(), AppendError> {
        self.append_records(tp, r, -1, now)
    }
    fn write_txn_marker(
        &self,
        _: &TopicPartition,
        _: i64,
        _: i16,
        _: i32,
        _: bool,
        _: i64,
    ) -> Result<(), AppendError> {
        Ok(())
    }
    fn remove_expired_producers(&self, _: i64, _: i64) -> usize {
        0
    }
    fn log_bounds(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        let logs = self.logs.lock();
        let end = logs.get(tp).map_or(0, |l| {
            l.iter()
                .map(|b| oxka_log::RecordBatchHeader::parse(b).map_or(0, |h| h.last_offset() + 1))
                .max()
                .unwrap_or(0)
        });
        Some((0, end))
    }
    fn read(
        &self,
        tp: &TopicPartition,
        _from: i64,
        _max: usize,
        _end: i64,
    ) -> Result<Bytes, LogError> {
        Ok(Bytes::from(
            self.logs
                .lock()
                .get(tp)
                .map(|l| l.concat())
                .unwrap_or_default(),
        ))
    }
    fn leader_epoch(&self, tp: &TopicPartition) -> Option<i32> {
        self.led.lock().get(tp).copied()
    }
    fn leads_alone(&self, tp: &TopicPartition) -> bool {
        self.led.lock().contains_key(tp)
    }
    fn wait_replicated(
        &self,
        tp: &TopicPartition,
        _: Duration,
    ) -> BoxFuture<'_, Result<(), ResponseError>> {
        let led = self.led.lock().contains_key(tp);
        Box::pin(async move {
            if led {
                Ok(())
            } else {
                Err(ResponseError::NotLeaderOrFollower)
            }
        })
    }
}

struct FakeMeta(Arc<MetadataImage>);

impl CoordinatorMetadata for FakeMeta {
    fn image(&self) -> Arc<MetadataImage> {
        self.0.clone()
    }
    fn ensure_internal_topic(&self, _: &str, p: i32, _: i16, _: i64) -> Result<i32, ResponseError> {
        Ok(p)
    }
    fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        Ok(1)
    }
    fn group_config_int(&self, _: &BTreeMap<String, String>, _: &str) -> Option<i64> {
        None
    }
}

fn image() -> MetadataImage {
    let mut img = MetadataImage::default();
    for (name, id, n) in [(OFFSETS_TOPIC, 1u8, PARTITIONS as usize), ("t", 2, 1)] {
        img.upsert(TopicInfo {
            name: name.to_string(),
            id: uuid::Uuid::from_bytes([id; 16]),
            partitions: vec![PartitionInfo::new(vec![1]); n],
            configs: BTreeMap::new(),
        });
    }
    img
}

fn coordinator(log: &Arc<FakeLog>) -> GroupCoordinator {
    let cfg = GroupConfig {
        offsets_topic_num_partitions: PARTITIONS,
        // the first JoinGroup stays parked (until a tick after this delay)
        initial_rebalance_delay_ms: 60_000,
        ..GroupConfig::default()
    };
    GroupCoordinator::new(cfg, Arc::new(FakeMeta(Arc::new(image()))), log.clone())
}

fn commit(
    c: &GroupCoordinator,
    group: &str,
    offset: i64,
) -> Result<Vec<Option<ResponseError>>, ResponseError> {
    c.commit_offsets(
        group,
        -1,
        "",
        None,
        vec![CommitEntry {
            topic: "t".into(),
            partition: 0,
            offset,
            leader_epoch: -1,
            metadata: None,
            commit_timestamp: -1,
        }],
        9,
    )
}

fn committed(c: &GroupCoordinator, group: &str) -> Result<Option<i64>, ResponseError> {
    let f = c.fetch_offsets(group, Some(vec![("t".into(), vec![0])]))?;
    Ok(f[0].1[0].1.as_ref().map(|o| o.offset))
}

/// Two groups on different partitions.
fn groups() -> (&'static str, &'static str) {
    let a = "group-a";
    let b = (0..100)
        .map(|i| format!("group-{i}"))
        .find(|g| partition_for(g, PARTITIONS) != partition_for(a, PARTITIONS))
        .expect("a group on another partition");
    (a, Box::leak(b.into_boxed_str()))
}

#[test]
fn partitions_load_on_leadership_and_unload_on_its_loss() {
    let log = Arc::new(FakeLog::default());
    let (a, b) = groups();
    let pa = partition_for(a, PARTITIONS);
    let tpa = TopicPartition::new(OFFSETS_TOPIC, pa);
    let c = coordinator(&log);
    // nothing led here: not the coordinator of anything
    assert_eq!(commit(&c, a, 1), Err(ResponseError::NotCoordinator));
    // leading an empty partition: usable at once
    log.led.lock().insert(tpa.clone(), 3);
    c.on_leadership(pa, Some(3));
    assert_eq!(commit(&c, a, 7), Ok(vec![None]));
    assert_eq!(committed(&c, a), Ok(Some(7)));
    assert_eq!(commit(&c, b, 1), Err(ResponseError::NotCoordinator));

    // a parked JoinGroup is answered NOT_COORDINATOR when leadership goes
    let join = c
        .join(
            a,
            JoinParams {
                member_id: String::new(),
                group_instance_id: None,
                client_id: "c".into(),
                client_host: "h".into(),
                session_timeout_ms: 10_000,
                rebalance_timeout_ms: 10_000,
                protocol_type: "consumer".into(),
                protocols: vec![("range".into(), Bytes::new())],
                require_known_member_id: false,
            },
        )
        .expect("join accepted");
    log.led.lock().remove(&tpa);
    c.on_leadership(pa, None);
    let Reply::Later(mut rx) = join else {
        panic!("the first join waits for the initial rebalance delay");
    };
    let o = rx.try_recv().expect("answered at resignation");
    assert_eq!(o.error, Some(ResponseError::NotCoordinator));
    assert_eq!(committed(&c, a), Err(ResponseError::NotCoordinator));

    // led again (a new epoch, a log with records): loading until replayed
    log.led.lock().insert(tpa.clone(), 5);
    c.on_leadership(pa, Some(5));
    assert_eq!(
        committed(&c, a),
        Err(ResponseError::CoordinatorLoadInProgress)
    );
    assert!(c.is_loading());
    c.load().expect("load");
    assert_eq!(committed(&c, a), Ok(Some(7)), "replayed from the log");

    // another broker's coordinator (a second instance over the same log,
    // as after a failover) picks the partition up from the log alone
    let other = coordinator(&log);
    other.load().expect("load");
    assert_eq!(committed(&other, a), Ok(Some(7)));
    assert_eq!(committed(&other, b), Err(ResponseError::NotCoordinator));
}

#[test]
fn a_load_that_lost_leadership_meanwhile_is_dropped() {
    let log = Arc::new(FakeLog::default());
    let (a, _) = groups();
    let pa = partition_for(a, PARTITIONS);
    let tpa = TopicPartition::new(OFFSETS_TOPIC, pa);
    log.led.lock().insert(tpa.clone(), 1);
    let c = coordinator(&log);
    c.on_leadership(pa, Some(1));
    assert_eq!(commit(&c, a, 3), Ok(vec![None]));
    // resigned and led again: the loader reconciles with the log's
    // leadership, so a partition led elsewhere now is not loaded
    c.on_leadership(pa, None);
    c.on_leadership(pa, Some(2));
    log.led.lock().remove(&tpa);
    c.load().expect("load");
    assert_eq!(committed(&c, a), Err(ResponseError::NotCoordinator));
}
