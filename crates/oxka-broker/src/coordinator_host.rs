//! The broker's side of the coordinators' narrow interface
//! (`oxka-coordinator`): their partitions through the replica manager,
//! the metadata through the controller, and their settings from the broker
//! config.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::write_txn_markers_request::{
    WritableTxnMarker, WritableTxnMarkerTopic,
};
use kafka_protocol::messages::{ProducerId, TopicName, WriteTxnMarkersRequest};
use kafka_protocol::protocol::StrBytes;
use oxka_client::Connection;
use oxka_controller::image::MetadataImage;
use oxka_coordinator::group::offsets::OFFSETS_TOPIC;
use oxka_coordinator::group::GroupConfig;
use oxka_coordinator::txn::{TxnConfig, TRANSACTION_STATE_TOPIC};
use oxka_coordinator::{
    AppendError, BoxFuture, CoordinatorLog, CoordinatorMetadata, GroupCoordinator,
    TransactionCoordinator, TxnMarker, TxnMarkerChannel,
};
use oxka_log::{LogError, TopicPartition};
use parking_lot::Mutex;

use crate::config::KafkaConfig;
use crate::controller::Controller;
use crate::replica_manager::{self, ReplicaManager};

fn append_error(e: replica_manager::AppendError) -> AppendError {
    AppendError::new(e.error, e.message)
}

impl CoordinatorLog for ReplicaManager {
    fn append_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        acks: i16,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        self.leader_partition(tp)
            .and_then(|p| ReplicaManager::append_records(self, &p, records, acks, now_ms))
            .map(|_| ())
            .map_err(append_error)
    }

    fn append_coordinator_records(
        &self,
        tp: &TopicPartition,
        records: Bytes,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        ReplicaManager::append_coordinator_records(self, tp, records, now_ms)
            .map(|_| ())
            .map_err(append_error)
    }

    fn write_txn_marker(
        &self,
        tp: &TopicPartition,
        producer_id: i64,
        producer_epoch: i16,
        coordinator_epoch: i32,
        commit: bool,
        now_ms: i64,
    ) -> Result<(), AppendError> {
        ReplicaManager::write_txn_marker(
            self,
            tp,
            producer_id,
            producer_epoch,
            coordinator_epoch,
            commit,
            now_ms,
        )
        .map(|_| ())
        .map_err(append_error)
    }

    fn remove_expired_producers(&self, now_ms: i64, expiration_ms: i64) -> usize {
        ReplicaManager::remove_expired_producers(self, now_ms, expiration_ms)
    }

    fn log_bounds(&self, tp: &TopicPartition) -> Option<(i64, i64)> {
        let p = self.get_partition(tp)?;
        let l = p.log.lock();
        Some((l.log_start_offset(), l.log_end_offset()))
    }

    fn read(
        &self,
        tp: &TopicPartition,
        from: i64,
        max_bytes: usize,
        end: i64,
    ) -> Result<Bytes, LogError> {
        let Some(p) = self.get_partition(tp) else {
            return Ok(Bytes::new());
        };
        let data = p.log.lock().read(from, max_bytes, end, true)?;
        Ok(data.records)
    }

    fn leader_epoch(&self, tp: &TopicPartition) -> Option<i32> {
        self.get_partition(tp)
            .filter(|p| p.is_leader())
            .map(|p| p.leader_epoch())
    }

    fn leads_alone(&self, tp: &TopicPartition) -> bool {
        self.get_partition(tp)
            .is_some_and(|p| p.is_leader() && p.replica_state().isr.len() <= 1)
    }

    fn wait_replicated(
        &self,
        tp: &TopicPartition,
        timeout: Duration,
    ) -> BoxFuture<'_, Result<(), ResponseError>> {
        let partition = match self.leader_partition(tp) {
            Ok(p) => p,
            Err(e) => return Box::pin(std::future::ready(Err(e.error))),
        };
        let epoch = partition.leader_epoch();
        let end = partition.log.lock().log_end_offset();
        let deadline = tokio::time::Instant::now() + timeout;
        Box::pin(async move {
            self.wait_for_high_watermark(&partition, epoch, end, deadline)
                .await
        })
    }
}

/// Registers the coordinators' leadership listener: a broker coordinates
/// the groups (transactional ids) of the `__consumer_offsets`
/// (`__transaction_state`) partitions it leads (Kafka's
/// `onElection`/`onResignation`). Runs on the metadata publisher's thread.
pub fn follow_leadership(
    replica_manager: &ReplicaManager,
    groups: &Arc<GroupCoordinator>,
    txns: &Arc<TransactionCoordinator>,
) {
    let (groups, txns) = (Arc::downgrade(groups), Arc::downgrade(txns));
    replica_manager.add_leadership_listener(Box::new(move |tp, change| {
        let epoch = match change {
            replica_manager::LeadershipChange::Leader { leader_epoch } => Some(leader_epoch),
            replica_manager::LeadershipChange::NotLeader => None,
        };
        if tp.topic == OFFSETS_TOPIC {
            if let Some(g) = groups.upgrade() {
                g.on_leadership(tp.partition, epoch);
            }
        } else if tp.topic == TRANSACTION_STATE_TOPIC {
            if let Some(t) = txns.upgrade() {
                t.on_leadership(tp.partition, epoch);
            }
        }
    }));
}

/// WriteTxnMarkers to the leaders of partitions on other brokers, one kept
/// connection per broker (bounded by the cluster's size), endpoints from
/// the metadata image's broker registrations on the inter-broker listener.
pub struct MarkerChannel {
    node_id: i32,
    controller: Arc<Controller>,
    listener: Option<String>,
    /// The inter-broker listener's TLS and SASL client settings.
    security: oxka_client::security::ClientSecurity,
    connections: Arc<Mutex<MarkerConnections>>,
}

/// Per broker id: the address connected to and the connection.
type MarkerConnections = HashMap<i32, (String, Arc<Connection>)>;

impl MarkerChannel {
    pub fn new(config: &KafkaConfig, controller: Arc<Controller>) -> MarkerChannel {
        MarkerChannel {
            node_id: config.node_id,
            controller,
            listener: config.inter_broker_listener.clone(),
            security: config.inter_broker_security(),
            connections: Arc::default(),
        }
    }
}

/// How long a marker may take on the leader: its append and replication
/// (the leader waits up to `request.timeout.ms`'s default for that).
const MARKER_REQUEST_TIMEOUT: Duration = Duration::from_secs(35);

impl TxnMarkerChannel for MarkerChannel {
    fn send_marker(&self, m: TxnMarker) -> BoxFuture<'static, Result<(), ResponseError>> {
        let image = self.controller.image();
        let leader = image
            .topic(&m.tp.topic)
            .and_then(|t| t.partitions.get(usize::try_from(m.tp.partition).ok()?))
            .map(|p| p.leader);
        let target = match leader {
            None => Err(ResponseError::UnknownTopicOrPartition),
            Some(l) if l < 0 => Err(ResponseError::LeaderNotAvailable),
            Some(l) => image
                .brokers
                .get(&l)
                .and_then(|b| b.endpoint(self.listener.as_deref()))
                .map(|e| (l, format!("{}:{}", e.host, e.port)))
                .ok_or(ResponseError::BrokerNotAvailable),
        };
        let connections = self.connections.clone();
        let client_id = format!("oxka-txn-markers-{}", self.node_id);
        let security = self.security.clone();
        Box::pin(async move {
            let (broker, addr) = target?;
            let cached = connections
                .lock()
                .get(&broker)
                .filter(|(a, c)| *a == addr && c.is_alive())
                .map(|(_, c)| c.clone());
            let conn = match cached {
                Some(c) => c,
                None => {
                    let c = Connection::connect_secure(
                        &addr,
                        &client_id,
                        &security,
                        Duration::from_secs(5),
                        MARKER_REQUEST_TIMEOUT,
                        1 << 20,
                    )
                    .await
                    .map_err(|e| {
                        tracing::debug!(broker, error = %e, "cannot reach a partition leader for markers");
                        ResponseError::NetworkException
                    })?;
                    let c = Arc::new(c);
                    connections.lock().insert(broker, (addr, c.clone()));
                    c
                }
            };
            let req =
                WriteTxnMarkersRequest::default().with_markers(vec![WritableTxnMarker::default()
                    .with_producer_id(ProducerId(m.producer_id))
                    .with_producer_epoch(m.producer_epoch)
                    .with_transaction_result(m.commit)
                    .with_coordinator_epoch(m.coordinator_epoch)
                    .with_topics(vec![WritableTxnMarkerTopic::default()
                        .with_name(TopicName(StrBytes::from_string(m.tp.topic.clone())))
                        .with_partition_indexes(vec![m.tp.partition])])]);
            // v1 (flexible): Kafka 4 dropped v0, and oxka's client caps APIs it
            // does not use itself at v0
            let resp = conn.send_at(req, 1).await.map_err(|e| {
                tracing::debug!(broker, error = %e, "WriteTxnMarkers failed");
                ResponseError::NetworkException
            })?;
            let code = resp
                .markers
                .iter()
                .flat_map(|r| r.topics.iter())
                .flat_map(|t| t.partitions.iter())
                .find(|p| p.partition_index == m.tp.partition)
                .map(|p| p.error_code)
                .ok_or(ResponseError::UnknownServerError)?;
            match code {
                0 => Ok(()),
                c => {
                    Err(ResponseError::try_from_code(c)
                        .unwrap_or(ResponseError::UnknownServerError))
                }
            }
        })
    }
}

impl CoordinatorMetadata for Controller {
    fn image(&self) -> Arc<MetadataImage> {
        Controller::image(self)
    }

    fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        segment_bytes: i64,
    ) -> Result<i32, ResponseError> {
        Controller::ensure_internal_topic(self, name, partitions, replication_factor, segment_bytes)
    }

    fn allocate_producer_id(&self) -> Result<i64, ResponseError> {
        Controller::allocate_producer_id(self).map_err(|e| e.code)
    }

    fn group_config_int(&self, overrides: &BTreeMap<String, String>, name: &str) -> Option<i64> {
        crate::config::group::effective_int(Some(overrides), name, self.config())
    }
}

/// The group coordinator's settings from the broker config.
pub fn group_config(config: &KafkaConfig) -> GroupConfig {
    GroupConfig::from_values(|k| config.value(k))
}

/// The transaction coordinator's settings from the broker config.
pub fn txn_config(config: &KafkaConfig) -> TxnConfig {
    TxnConfig::from_values(|k| config.value(k))
}

/// The group coordinator over a real quorum of one and replica manager.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::controller::CreateTopicSpec;
    use oxka_coordinator::group::consumer::HeartbeatParams;
    use oxka_coordinator::group::offsets::{partition_for, OFFSETS_TOPIC};
    use oxka_coordinator::group::{assignor, CommitEntry, GroupCoordinator};
    use oxka_coordinator::now_ms;
    use oxka_log::LogManager;

    struct Node {
        coordinator: Arc<GroupCoordinator>,
        controller: Arc<Controller>,
        replica_manager: Arc<ReplicaManager>,
        _quorum: crate::quorum::node::TestQuorum,
    }

    fn node(config: &Arc<KafkaConfig>) -> Node {
        let lm = LogManager::startup(
            &config.log_dirs,
            config.node_id,
            "test-cluster-id-000000",
            config.log_config(&Default::default()),
            now_ms(),
        )
        .unwrap();
        let rm = Arc::new(ReplicaManager::new(config.node_id, Arc::new(lm)));
        let (controller, quorum) =
            crate::quorum::node::single_node_for_tests(config.clone(), rm.clone());
        let coordinator = Arc::new(GroupCoordinator::new(
            group_config(config),
            controller.clone(),
            rm.clone(),
        ));
        let weak = Arc::downgrade(&coordinator);
        rm.add_leadership_listener(Box::new(move |tp, change| {
            if let (true, Some(c)) = (tp.topic == OFFSETS_TOPIC, weak.upgrade()) {
                c.on_leadership(
                    tp.partition,
                    match change {
                        replica_manager::LeadershipChange::Leader { leader_epoch } => {
                            Some(leader_epoch)
                        }
                        replica_manager::LeadershipChange::NotLeader => None,
                    },
                );
            }
        }));
        Node {
            coordinator,
            controller,
            replica_manager: rm,
            _quorum: quorum,
        }
    }

    fn config(dir: &std::path::Path) -> Arc<KafkaConfig> {
        let props = BTreeMap::from([
            ("log.dirs".to_string(), dir.display().to_string()),
            ("offsets.topic.num.partitions".to_string(), "3".to_string()),
            (
                "group.initial.rebalance.delay.ms".to_string(),
                "0".to_string(),
            ),
        ]);
        Arc::new(KafkaConfig::from_props(props).unwrap().0)
    }

    fn commit(c: &GroupCoordinator, group: &str, topic: &str, p: i32, o: i64, md: &str) {
        let r = c
            .commit_offsets(
                group,
                -1,
                "",
                None,
                vec![CommitEntry {
                    topic: topic.into(),
                    partition: p,
                    offset: o,
                    leader_epoch: 4,
                    metadata: Some(md.into()),
                    commit_timestamp: -1,
                }],
                9,
            )
            .unwrap();
        assert_eq!(r, vec![None]);
    }

    #[test]
    fn offsets_and_groups_are_rebuilt_from_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        {
            let n = node(&cfg);
            // no offsets topic, so no partition of it is led here
            assert_eq!(
                n.coordinator.heartbeat("g", "m", None, 1),
                Some(ResponseError::NotCoordinator)
            );
            n.coordinator.load().unwrap();
            // a new, empty partition led here is loaded at once
            n.coordinator.ensure_offsets_topic().unwrap();
            assert!(!n.coordinator.is_loading());
            n.controller
                .create_topic(
                    &CreateTopicSpec {
                        name: "t".into(),
                        num_partitions: 2,
                        replication_factor: 1,
                        assignments: vec![],
                        configs: BTreeMap::new(),
                    },
                    false,
                )
                .unwrap();
            commit(&n.coordinator, "g1", "t", 0, 10, "ten");
            commit(&n.coordinator, "g1", "t", 1, 1, "");
            commit(&n.coordinator, "g1", "t", 0, 11, "eleven");
            commit(&n.coordinator, "gone", "t", 0, 5, "");
            assert_eq!(n.coordinator.delete_group("gone"), None);
            // unknown partition
            let r = n
                .coordinator
                .commit_offsets(
                    "g1",
                    -1,
                    "",
                    None,
                    vec![CommitEntry {
                        topic: "t".into(),
                        partition: 9,
                        offset: 1,
                        leader_epoch: -1,
                        metadata: None,
                        commit_timestamp: -1,
                    }],
                    9,
                )
                .unwrap();
            assert_eq!(r, vec![Some(ResponseError::UnknownTopicOrPartition)]);
            let image = n.controller.image();
            let t = image.topic(OFFSETS_TOPIC).expect("offsets topic created");
            assert_eq!(t.partitions.len(), 3);
            assert!(t.is_internal());
            assert_eq!(
                t.configs.get("cleanup.policy").map(String::as_str),
                Some("compact")
            );
            // the records sit where Kafka's hash puts them
            let tp = TopicPartition::new(OFFSETS_TOPIC, partition_for("g1", 3));
            let p = n.replica_manager.get_partition(&tp).unwrap();
            assert!(p.high_watermark() >= 3);
            n.replica_manager.log_manager().shutdown().unwrap();
        }
        let n = node(&cfg);
        n.coordinator.load().unwrap();
        let f = n.coordinator.fetch_offsets("g1", None).unwrap();
        assert_eq!(f.len(), 1);
        let (topic, parts) = &f[0];
        assert_eq!(topic, "t");
        let p0 = parts[0].1.clone().unwrap();
        assert_eq!(
            (p0.offset, p0.leader_epoch, p0.metadata.as_str()),
            (11, 4, "eleven")
        );
        assert_eq!(parts[1].1.as_ref().map(|o| o.offset), Some(1));
        assert_eq!(
            n.coordinator.delete_group("gone"),
            Some(ResponseError::GroupIdNotFound),
            "the deletion survived the restart"
        );
        let listed: Vec<_> = n
            .coordinator
            .list_groups()
            .unwrap()
            .into_iter()
            .map(|g| g.group_id)
            .collect();
        assert_eq!(listed, vec!["g1".to_string()]);
    }

    fn create_topic(n: &Node, name: &str, partitions: i32) {
        n.controller
            .create_topic(
                &CreateTopicSpec {
                    name: name.into(),
                    num_partitions: partitions,
                    replication_factor: 1,
                    assignments: vec![],
                    configs: BTreeMap::new(),
                },
                false,
            )
            .unwrap();
    }

    fn member_commit(
        c: &GroupCoordinator,
        group: &str,
        member: &str,
        epoch: i32,
    ) -> Result<Vec<Option<ResponseError>>, ResponseError> {
        c.commit_offsets(
            group,
            epoch,
            member,
            None,
            vec![CommitEntry {
                topic: "t".into(),
                partition: 0,
                offset: 1,
                leader_epoch: -1,
                metadata: None,
                commit_timestamp: -1,
            }],
            9,
        )
    }

    /// Kafka's coordinator reschedules timers when it loads a group and
    /// changes no epoch: a member commits with the epoch it had before the
    /// restart, before and after its first heartbeat.
    #[test]
    fn kip848_member_epochs_survive_a_reload() {
        let dir = tempfile::tempdir().unwrap();
        let cfg = config(dir.path());
        let hb = |epoch: i32, owned: Option<assignor::Assignment>| HeartbeatParams {
            member_id: "m1".into(),
            member_epoch: epoch,
            rebalance_timeout_ms: if epoch == 0 { 30_000 } else { -1 },
            subscribed_topic_names: (epoch == 0).then(|| vec!["t".to_string()]),
            owned,
            ..Default::default()
        };
        let epoch = {
            let n = node(&cfg);
            n.coordinator.load().unwrap();
            n.coordinator.ensure_offsets_topic().unwrap();
            create_topic(&n, "t", 2);
            let o = n
                .coordinator
                .consumer_heartbeat("g", hb(0, Some(Default::default())));
            assert_eq!(o.error, None);
            let o = n
                .coordinator
                .consumer_heartbeat("g", hb(o.member_epoch, o.assignment.clone()));
            assert_eq!(o.error, None);
            assert_eq!(
                member_commit(&n.coordinator, "g", "m1", o.member_epoch),
                Ok(vec![None])
            );
            n.replica_manager.log_manager().shutdown().unwrap();
            o.member_epoch
        };
        let n = node(&cfg);
        n.coordinator.load().unwrap();
        assert_eq!(
            member_commit(&n.coordinator, "g", "m1", epoch),
            Ok(vec![None]),
            "commit before the first heartbeat after the restart"
        );
        let o = n.coordinator.consumer_heartbeat("g", hb(epoch, None));
        assert_eq!(o.error, None);
        assert_eq!(o.member_epoch, epoch, "loading bumped no epoch");
        assert_eq!(
            member_commit(&n.coordinator, "g", "m1", epoch),
            Ok(vec![None]),
            "commit after the first heartbeat after the restart"
        );
        // metadata that did change is still seen: the epoch moves on
        create_topic(&n, "u", 1);
        n.controller.create_partitions("t", 3, None, false).unwrap();
        let o = n.coordinator.consumer_heartbeat("g", hb(epoch, None));
        assert_eq!(o.error, None);
        assert!(o.member_epoch > epoch, "a new partition bumps the epoch");
    }

    /// A group's configs (KIP-848) set its members' session timeout and
    /// heartbeat interval; other groups keep the broker's.
    #[test]
    fn group_configs_override_the_consumer_timings() {
        use crate::controller::ConfigTarget;
        let dir = tempfile::tempdir().unwrap();
        let n = node(&config(dir.path()));
        n.controller
            .alter_configs(&ConfigTarget::Group("g".into()), false, |_| {
                Ok(BTreeMap::from([
                    (
                        "consumer.session.timeout.ms".to_string(),
                        "50000".to_string(),
                    ),
                    (
                        "consumer.heartbeat.interval.ms".to_string(),
                        "6000".to_string(),
                    ),
                ]))
            })
            .unwrap();
        let image = n.controller.image();
        let g = n.coordinator.consumer_config(&image, "g");
        assert_eq!(
            (g.session_timeout_ms, g.heartbeat_interval_ms),
            (50_000, 6000)
        );
        let other = n.coordinator.consumer_config(&image, "other");
        assert_eq!(
            (other.session_timeout_ms, other.heartbeat_interval_ms),
            (45_000, 5000)
        );
    }
}
