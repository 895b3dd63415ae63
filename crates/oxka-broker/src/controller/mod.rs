//! The controller as every handler sees it: reads come from this node's
//! [`MetadataImage`] (kept by the metadata publisher); changes are
//! commands decided by the active controller of the metadata quorum. On
//! the active controller a command is decided here ([`decide`]), its
//! records proposed to the Raft log and, once committed and applied
//! locally, answered; anywhere else it is forwarded to the active
//! controller over the controller listener (Kafka's ForwardingManager).
//! Either way the caller gets its answer only once this node's own image
//! includes the change, so a client that created a topic on a node finds
//! it there at once.
//!
//! The active controller also keeps the brokers' heartbeat sessions and
//! fences a broker whose session expired (Kafka's BrokerHeartbeatManager).

pub mod decide;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::error::ResponseError;
use oxka_controller::image::{MetadataImage, TopicInfo};
use oxka_controller::records::{MetadataRecord, RecordBatch};
use parking_lot::Mutex;
use rand::SeedableRng;
use uuid::Uuid;

use crate::config::dynamic::{self, AlterConfigError, DynamicBrokerConfigs};
use crate::config::KafkaConfig;
use crate::quorum::protocol::{
    Command, CommandOutcome, ConfigTargetWire, QuorumDescription, ReplicaDescription, Request,
    Response, WireError,
};
use crate::quorum::publisher::MetadataPublisher;
use crate::quorum::raft_manager::{ProposalFailure, RaftManager};
use crate::quorum::transport::ControllerNet;
use crate::server::now_ms;
use oxka_controller::quorum::ProposeError;

pub use crate::quorum::protocol::CreateTopicSpec;
pub use decide::MAX_PARTITIONS_PER_OPERATION;

/// A Kafka error code with the message that goes beside it in responses.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub code: ResponseError,
    pub message: String,
}

impl ApiError {
    pub fn new(code: ResponseError, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
        }
    }
}

impl From<AlterConfigError> for ApiError {
    fn from(e: AlterConfigError) -> Self {
        match e {
            AlterConfigError::InvalidRequest(m) => ApiError::new(ResponseError::InvalidRequest, m),
            AlterConfigError::InvalidConfig(m) => ApiError::new(ResponseError::InvalidConfig, m),
        }
    }
}

/// The resource an AlterConfigs / IncrementalAlterConfigs entry changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigTarget {
    /// A topic's overrides (resource type 2).
    Topic(String),
    /// Dynamic broker configs (resource type 4): a node id, or "" for the
    /// cluster-wide default.
    Broker(String),
    /// A group's config overrides (resource type 32, KIP-848).
    Group(String),
}

/// The dynamic broker configs in `image` that apply to `node_id`.
pub(crate) fn dynamic_configs_of(image: &MetadataImage, node_id: i32) -> DynamicBrokerConfigs {
    DynamicBrokerConfigs {
        per_broker: image
            .broker_configs
            .get(&node_id.to_string())
            .cloned()
            .unwrap_or_default(),
        cluster_default: image.broker_configs.get("").cloned().unwrap_or_default(),
    }
}

impl From<ApiError> for WireError {
    fn from(e: ApiError) -> Self {
        WireError {
            code: e.code.code(),
            message: e.message,
        }
    }
}

impl From<WireError> for ApiError {
    fn from(e: WireError) -> Self {
        ApiError::new(
            ResponseError::try_from_code(e.code).unwrap_or(ResponseError::UnknownServerError),
            e.message,
        )
    }
}

impl From<&ConfigTarget> for ConfigTargetWire {
    fn from(t: &ConfigTarget) -> Self {
        match t {
            ConfigTarget::Topic(n) => ConfigTargetWire::Topic(n.clone()),
            ConfigTarget::Broker(n) => ConfigTargetWire::Broker(n.clone()),
            ConfigTarget::Group(n) => ConfigTargetWire::Group(n.clone()),
        }
    }
}

/// The per-item results of the commands answered with `Partitions`.
fn per_item(outcome: CommandOutcome) -> Option<Vec<Result<(), WireError>>> {
    match outcome {
        CommandOutcome::Partitions(r) => Some(r),
        _ => None,
    }
}

/// How long a change may wait for the quorum when the request names no
/// timeout of its own.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// A request's `timeoutMs` as the time its change may wait for the quorum
/// (0 or less: the default).
pub fn request_timeout(timeout_ms: i32) -> Duration {
    match timeout_ms {
        t if t > 0 => Duration::from_millis(t as u64),
        _ => DEFAULT_TIMEOUT,
    }
}
/// Producer ids fetched from the controller at a time (Kafka's block).
const PRODUCER_ID_BLOCK: i64 = 1000;

/// A broker's heartbeat session on the active controller.
#[derive(Debug, Clone, Copy)]
struct Session {
    last_contact: Instant,
}

/// Runs `f`, which may block on the quorum, without starving the async
/// runtime of a worker thread.
fn blocking<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}

pub struct Controller {
    config: Arc<KafkaConfig>,
    node_id: i32,
    publisher: Arc<MetadataPublisher>,
    /// This node's Raft node, on voters.
    raft: Option<Arc<RaftManager>>,
    /// Connections to the voters (absent for a quorum of one).
    net: Option<Arc<ControllerNet>>,
    voters: Vec<i32>,
    /// Serialises decisions on the active controller: each one sees the
    /// image with every decision before it applied.
    decide_lock: Mutex<()>,
    /// The current producer-id block: next id to hand out, end (exclusive).
    producer_ids: Mutex<(i64, i64)>,
    sessions: Mutex<HashMap<i32, Session>>,
    /// (term, since): when this node last became the active controller.
    active_since: Mutex<Option<(u64, Instant)>>,
    /// When the automatic preferred leader election last ran.
    last_rebalance: Mutex<Option<Instant>>,
    /// Followers of the log that are not voters (DescribeQuorum's
    /// observers): fetched offset and time.
    observers: Mutex<BTreeMap<i32, (u64, i64)>>,
    /// The active controller as last learned, for nodes without Raft.
    leader_hint: Mutex<Option<i32>>,
    rng: Mutex<rand::rngs::StdRng>,
}

impl Controller {
    pub fn new(
        config: Arc<KafkaConfig>,
        publisher: Arc<MetadataPublisher>,
        raft: Option<Arc<RaftManager>>,
        net: Option<Arc<ControllerNet>>,
    ) -> Controller {
        let voters = config.kraft.voter_ids(config.node_id);
        Controller {
            node_id: config.node_id,
            config,
            publisher,
            raft,
            net,
            voters,
            decide_lock: Mutex::new(()),
            producer_ids: Mutex::new((0, 0)),
            sessions: Mutex::new(HashMap::new()),
            active_since: Mutex::new(None),
            last_rebalance: Mutex::new(None),
            observers: Mutex::new(BTreeMap::new()),
            leader_hint: Mutex::new(None),
            rng: Mutex::new(rand::rngs::StdRng::from_entropy()),
        }
    }

    pub fn image(&self) -> Arc<MetadataImage> {
        self.publisher.image()
    }

    pub fn publisher(&self) -> &Arc<MetadataPublisher> {
        &self.publisher
    }

    /// The broker config the controller validates against.
    pub fn config(&self) -> &KafkaConfig {
        &self.config
    }

    /// Registered, unfenced brokers, by id.
    pub fn live_brokers(&self) -> Vec<i32> {
        self.image().live_brokers().map(|b| b.id).collect()
    }

    /// The active controller as this node knows it.
    pub fn active_controller(&self) -> Option<i32> {
        match &self.raft {
            Some(r) => r.status().leader.map(|l| l as i32),
            None => *self.leader_hint.lock(),
        }
    }

    /// What a following broker learned of the active controller.
    pub fn set_leader_hint(&self, leader: Option<i32>) {
        *self.leader_hint.lock() = leader;
    }

    fn is_active(&self) -> bool {
        self.raft.as_ref().is_some_and(|r| r.status().is_leader)
    }

    /// Has a change decided by the active controller and waits until this
    /// node's image includes it.
    pub fn submit(&self, cmd: Command, timeout: Duration) -> Result<CommandOutcome, ApiError> {
        blocking(|| self.submit_blocking(cmd, timeout))
    }

    fn submit_blocking(&self, cmd: Command, timeout: Duration) -> Result<CommandOutcome, ApiError> {
        let deadline = Instant::now() + timeout;
        let mut probe = 0usize;
        let mut last_problem = String::from("no active controller is known");
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let target = self.active_controller().or_else(|| {
                // ask the voters in turn; one will name the leader
                probe += 1;
                self.voters
                    .iter()
                    .copied()
                    .filter(|v| *v != self.node_id || self.raft.is_some())
                    .nth(probe % self.voters.len().max(1))
            });
            let response = match target {
                Some(id) if id == self.node_id && self.raft.is_some() => {
                    Some(self.execute(cmd.clone(), deadline))
                }
                Some(id) => match &self.net {
                    Some(net) => {
                        let req = Request::Command {
                            cmd: cmd.clone(),
                            timeout_ms: left.as_millis() as u64,
                        };
                        match net.request_blocking(id, req, left) {
                            Ok(r) => Some(r),
                            Err(e) => {
                                tracing::debug!(target = id, error = %e, "forwarding to the controller failed");
                                last_problem = e.to_string();
                                *self.leader_hint.lock() = None;
                                None
                            }
                        }
                    }
                    None => None,
                },
                None => None,
            };
            match response {
                Some(Response::Command { result, offset }) => {
                    if offset > 0 {
                        let left = deadline.saturating_duration_since(Instant::now());
                        self.publisher
                            .wait_applied(offset, left.max(Duration::from_millis(100)));
                    }
                    return result.map_err(Into::into);
                }
                Some(Response::NotController { leader }) => {
                    last_problem = format!("node {target:?} is not the active controller");
                    *self.leader_hint.lock() = leader;
                }
                Some(_) => last_problem = "unexpected answer from the controller".into(),
                None => {}
            }
            if Instant::now() >= deadline {
                return Err(ApiError::new(
                    ResponseError::RequestTimedOut,
                    format!(
                        "The metadata quorum did not decide the change within {} ms ({last_problem}).",
                        timeout.as_millis()
                    ),
                ));
            }
            std::thread::sleep(Duration::from_millis(50).min(left));
        }
    }

    /// Decides `cmd` as the active controller (called for local commands
    /// and for ones forwarded here).
    pub fn execute(&self, cmd: Command, deadline: Instant) -> Response {
        let Some(raft) = self.raft.clone() else {
            return Response::NotController {
                leader: self.active_controller(),
            };
        };
        let result = self.decide_and_commit(&raft, deadline, |c, image| c.decide(image, &cmd));
        match result {
            Err(DecideError::NotController) => Response::NotController {
                leader: self.active_controller(),
            },
            Err(DecideError::Failed(e)) => Response::Command {
                result: Err(e.into()),
                offset: 0,
            },
            Ok((outcome, offset)) => Response::Command {
                result: outcome.map_err(Into::into),
                offset,
            },
        }
    }

    /// Waits until this node leads with every committed batch applied,
    /// decides against that image and commits the decision's records in
    /// one batch.
    fn decide_and_commit(
        &self,
        raft: &RaftManager,
        deadline: Instant,
        decide: impl Fn(&Controller, &MetadataImage) -> decide::Decision,
    ) -> Result<(Result<CommandOutcome, ApiError>, u64), DecideError> {
        let _guard = self.decide_lock.lock();
        loop {
            let st = raft.status();
            if !st.is_leader {
                return Err(DecideError::NotController);
            }
            let image = self.publisher.image();
            if image.offset >= st.commit && raft.log().term_of(st.commit) == Some(st.term) {
                self.note_active(st.term);
                let d = decide(self, &image);
                if d.records.is_empty() {
                    return Ok((d.outcome, 0));
                }
                let data = RecordBatch::new(d.records).encode();
                let left = deadline.saturating_duration_since(Instant::now());
                return match raft.propose(data, left) {
                    Ok(offset) => {
                        let left = deadline.saturating_duration_since(Instant::now());
                        self.publisher
                            .wait_applied(offset, left.max(Duration::from_millis(100)));
                        Ok((d.outcome, offset))
                    }
                    Err(ProposalFailure::Refused(ProposeError::NoSpace)) => {
                        Err(DecideError::Failed(ApiError::new(
                            ResponseError::KafkaStorageError,
                            "The metadata log dir is out of space; the change was not made.",
                        )))
                    }
                    Err(ProposalFailure::Refused(_)) => Err(DecideError::NotController),
                    Err(e) => Err(DecideError::Failed(ApiError::new(
                        ResponseError::RequestTimedOut,
                        format!("The change was not committed in time: {e}"),
                    ))),
                };
            }
            if Instant::now() >= deadline {
                return Err(DecideError::Failed(ApiError::new(
                    ResponseError::RequestTimedOut,
                    "The new active controller is still loading the metadata log.",
                )));
            }
            // a new leader commits its first entry, then the publisher
            // catches up; both take milliseconds
            self.publisher
                .wait_applied(st.commit, Duration::from_millis(20));
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A new term as active controller restarts every broker's session:
    /// brokers get a full session timeout to reach the new controller.
    fn note_active(&self, term: u64) {
        let mut since = self.active_since.lock();
        if since.map(|(t, _)| t) != Some(term) {
            *since = Some((term, Instant::now()));
            let now = Instant::now();
            let mut sessions = self.sessions.lock();
            sessions.clear();
            for b in self.publisher.image().brokers.keys() {
                sessions.insert(*b, Session { last_contact: now });
            }
        }
    }

    fn decide(&self, image: &MetadataImage, cmd: &Command) -> decide::Decision {
        let mut rng = self.rng.lock();
        match cmd {
            Command::CreateTopics {
                specs,
                validate_only,
            } => decide::create_topics(image, &self.config, specs, *validate_only, &mut *rng),
            Command::DeleteTopics { names } => decide::delete_topics(image, &self.config, names),
            Command::CreatePartitions {
                name,
                count,
                assignments,
                validate_only,
            } => decide::create_partitions(
                image,
                name,
                *count,
                assignments.as_deref(),
                *validate_only,
                &mut *rng,
            ),
            Command::SetConfigs {
                target,
                expected,
                new,
            } => decide::set_configs(image, target, expected, new),
            Command::AllocateProducerIds { broker_id, count } => {
                decide::allocate_producer_ids(image, *broker_id, *count)
            }
            Command::AlterScramCredentials { items } => {
                decide::alter_scram_credentials(image, items)
            }
            Command::CreateAcls { acls } => decide::create_acls(image, acls, &mut *rng),
            Command::DeleteAcls { filters } => decide::delete_acls(image, filters),
            Command::AlterClientQuotas {
                entries,
                validate_only,
            } => decide::alter_client_quotas(image, entries, *validate_only),
            Command::AlterPartition {
                broker_id,
                broker_epoch,
                changes,
            } => decide::alter_partition(image, *broker_id, *broker_epoch, changes),
            Command::ElectLeaders {
                election_type,
                partitions,
            } => decide::elect_leaders(image, &self.config, *election_type, partitions.as_deref()),
            Command::AlterReassignments {
                items,
                allow_rf_change,
            } => decide::alter_reassignments(image, items, *allow_rf_change),
            Command::RegisterBroker {
                broker_id,
                incarnation_id,
                endpoints,
                rack,
            } => self.register(image, *broker_id, *incarnation_id, endpoints, rack),
            Command::BrokerHeartbeat {
                broker_id,
                broker_epoch,
                applied,
                want_shut_down,
            } => self.heartbeat(image, *broker_id, *broker_epoch, *applied, *want_shut_down),
        }
    }

    fn register(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        incarnation_id: Uuid,
        endpoints: &[oxka_controller::records::Endpoint],
        rack: &Option<String>,
    ) -> decide::Decision {
        self.sessions.lock().insert(
            broker_id,
            Session {
                last_contact: Instant::now(),
            },
        );
        if let Some(b) = image.brokers.get(&broker_id) {
            // The broker is this node, the whole quorum: it has always
            // caught up, so an unchanged registration is kept as it is and
            // a restart writes nothing (it starts even on a full disk).
            let itself = self.voters == [broker_id] && broker_id == self.node_id;
            let unchanged = b.endpoints == endpoints && b.rack == *rack;
            if b.incarnation_id == incarnation_id || (itself && unchanged) {
                // a retried registration
                return decide::Decision {
                    records: Vec::new(),
                    outcome: Ok(CommandOutcome::Registered {
                        broker_epoch: b.epoch,
                    }),
                };
            }
        }
        // The broker epoch is the offset of the registration record: the
        // next one, as decisions are made one at a time.
        let epoch = self.raft.as_ref().map_or(0, |r| r.log().last_index() + 1) as i64;
        // a new incarnation starts fenced: its old leaderships move
        let records = decide::broker_change(
            image,
            &self.config,
            MetadataRecord::RegisterBroker {
                broker_id,
                incarnation_id,
                broker_epoch: epoch,
                endpoints: endpoints.to_vec(),
                rack: rack.clone(),
                fenced: true,
            },
        );
        tracing::info!(broker_id, epoch, "registering broker");
        decide::Decision {
            records,
            outcome: Ok(CommandOutcome::Registered {
                broker_epoch: epoch,
            }),
        }
    }

    fn heartbeat(
        &self,
        image: &MetadataImage,
        broker_id: i32,
        broker_epoch: i64,
        applied: u64,
        want_shut_down: bool,
    ) -> decide::Decision {
        let Some(reg) = image
            .brokers
            .get(&broker_id)
            .filter(|b| b.epoch == broker_epoch)
        else {
            return decide::Decision {
                records: Vec::new(),
                outcome: Err(ApiError::new(
                    ResponseError::StaleBrokerEpoch,
                    format!("Broker {broker_id} epoch {broker_epoch} is not registered."),
                )),
            };
        };
        self.sessions.lock().insert(
            broker_id,
            Session {
                last_contact: Instant::now(),
            },
        );
        let fence = MetadataRecord::FenceBroker {
            broker_id,
            broker_epoch,
        };
        let (records, fenced, shut_down) = if want_shut_down {
            // controlled shutdown: leaderships move away, then it may stop
            let records = if reg.fenced {
                Vec::new()
            } else {
                decide::broker_change(image, &self.config, fence)
            };
            if !records.is_empty() {
                tracing::info!(broker_id, "controlled shutdown: fencing the broker");
            }
            (records, true, true)
        } else if reg.fenced && applied >= broker_epoch.max(0) as u64 {
            let records = decide::broker_change(
                image,
                &self.config,
                MetadataRecord::UnfenceBroker {
                    broker_id,
                    broker_epoch,
                },
            );
            tracing::info!(
                broker_id,
                "unfencing broker: it caught up with the metadata log"
            );
            (records, false, false)
        } else {
            (Vec::new(), reg.fenced, false)
        };
        decide::Decision {
            records,
            outcome: Ok(CommandOutcome::Heartbeat { fenced, shut_down }),
        }
    }

    /// On the active controller, every `leader.imbalance.check.interval.seconds`
    /// with `auto.leader.rebalance.enable`: partitions not led by their
    /// preferred (first) replica while it is live and in sync move back to
    /// it (Kafka 4's controller balances any imbalance; the per-broker
    /// percentage was removed with ZooKeeper mode).
    pub fn rebalance_leaders(&self) {
        let Some(raft) = self.raft.clone() else {
            return;
        };
        if !self.is_active() {
            return;
        }
        let enabled = self
            .config
            .value("auto.leader.rebalance.enable")
            .is_none_or(|v| v.trim().eq_ignore_ascii_case("true"));
        if !enabled {
            return;
        }
        let interval = Duration::from_secs(
            self.config
                .value("leader.imbalance.check.interval.seconds")
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(300)
                .max(1),
        );
        {
            let mut last = self.last_rebalance.lock();
            // a new active controller waits a whole interval first
            let since = self.active_since.lock().map(|(_, t)| t);
            let Some(l) = *last else {
                *last = Some(Instant::now());
                return;
            };
            let base = since.map_or(l, |s| s.max(l));
            if base.elapsed() < interval {
                return;
            }
            *last = Some(Instant::now());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        let r = self.decide_and_commit(&raft, deadline, |c, image| {
            let moved = decide::imbalanced_partitions(image);
            if moved.is_empty() {
                return decide::Decision {
                    records: Vec::new(),
                    outcome: Ok(CommandOutcome::Done),
                };
            }
            tracing::info!(
                partitions = moved.len(),
                "preferred leader election (auto.leader.rebalance.enable)"
            );
            decide::elect_leaders(image, &c.config, decide::PREFERRED, Some(&moved))
        });
        if let Err(DecideError::Failed(e)) = r {
            tracing::warn!(error = %e.message, "automatic preferred leader election failed");
        }
    }

    /// On the active controller: fences every unfenced broker whose
    /// session expired (`broker.session.timeout.ms` without a heartbeat).
    /// Called periodically on every node; does nothing elsewhere.
    pub fn fence_expired_brokers(&self) {
        let Some(raft) = self.raft.clone() else {
            return;
        };
        if !self.is_active() {
            return;
        }
        let timeout = Duration::from_millis(self.config.kraft.session_timeout_ms);
        let image = self.publisher.image();
        let now = Instant::now();
        let expired: Vec<(i32, i64)> = {
            let mut sessions = self.sessions.lock();
            image
                .live_brokers()
                .filter_map(|b| {
                    let s = sessions
                        .entry(b.id)
                        .or_insert(Session { last_contact: now });
                    (now.duration_since(s.last_contact) > timeout).then_some((b.id, b.epoch))
                })
                .collect()
        };
        for (broker_id, broker_epoch) in expired {
            tracing::warn!(
                broker_id,
                "fencing broker: no heartbeat within broker.session.timeout.ms"
            );
            let deadline = Instant::now() + Duration::from_secs(5);
            let r = self.decide_and_commit(&raft, deadline, |_, image| {
                let still = image
                    .brokers
                    .get(&broker_id)
                    .is_some_and(|b| b.epoch == broker_epoch && !b.fenced);
                if !still {
                    return decide::Decision {
                        records: Vec::new(),
                        outcome: Ok(CommandOutcome::Done),
                    };
                }
                decide::Decision {
                    records: decide::broker_change(
                        image,
                        &self.config,
                        MetadataRecord::FenceBroker {
                            broker_id,
                            broker_epoch,
                        },
                    ),
                    outcome: Ok(CommandOutcome::Done),
                }
            });
            if let Err(DecideError::Failed(e)) = r {
                tracing::warn!(broker_id, error = %e.message, "could not fence the broker yet");
            }
        }
    }

    /// Commits `records` as the first batch of a fresh metadata log (the
    /// migration of a single-node release's metadata file): only while no
    /// topic exists yet, so a migration repeated after a crash between the
    /// commit and the rename changes nothing.
    pub fn commit_migration(&self, records: Vec<MetadataRecord>) -> Result<bool, ApiError> {
        let Some(raft) = self.raft.clone() else {
            return Ok(false);
        };
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        let r = blocking(|| {
            self.decide_and_commit(&raft, deadline, |_, image| decide::Decision {
                records: if image.topics.is_empty() {
                    records.clone()
                } else {
                    Vec::new()
                },
                outcome: Ok(CommandOutcome::Done),
            })
        });
        match r {
            Ok((_, offset)) => Ok(offset > 0),
            Err(DecideError::Failed(e)) => Err(e),
            Err(DecideError::NotController) => Err(ApiError::new(
                ResponseError::NotController,
                "This node does not lead the metadata quorum.",
            )),
        }
    }

    /// A follower of the log fetched up to `offset` (an observer in
    /// DescribeQuorum).
    pub fn note_observer(&self, replica_id: i32, offset: u64) {
        let mut o = self.observers.lock();
        if o.len() < 10_000 || o.contains_key(&replica_id) {
            o.insert(replica_id, (offset, now_ms()));
        }
    }

    /// DescribeQuorum as the active controller answers it; forwarded there
    /// from other nodes.
    pub fn describe_quorum(&self) -> Result<QuorumDescription, ApiError> {
        if self.is_active() {
            return Ok(self.local_quorum_description());
        }
        blocking(|| {
            let leader = self.active_controller().ok_or_else(|| {
                ApiError::new(
                    ResponseError::NotLeaderOrFollower,
                    "No quorum leader is known.",
                )
            })?;
            let net = self.net.as_ref().ok_or_else(|| {
                ApiError::new(
                    ResponseError::NotLeaderOrFollower,
                    "No quorum leader is known.",
                )
            })?;
            match net.request_blocking(leader, Request::DescribeQuorum, Duration::from_secs(10)) {
                Ok(Response::Quorum(q)) => Ok(q),
                Ok(_) | Err(_) => Err(ApiError::new(
                    ResponseError::NotLeaderOrFollower,
                    format!("Node {leader} did not describe the quorum."),
                )),
            }
        })
    }

    pub fn local_quorum_description(&self) -> QuorumDescription {
        let Some(raft) = &self.raft else {
            return QuorumDescription {
                leader_id: -1,
                leader_epoch: -1,
                high_watermark: -1,
                voters: Vec::new(),
                observers: Vec::new(),
            };
        };
        let st = raft.status();
        let times = raft.replica_times();
        let now = now_ms();
        let matched: HashMap<u64, u64> =
            st.progress.iter().map(|p| (p.node_id, p.matched)).collect();
        let voters = self
            .voters
            .iter()
            .map(|&v| {
                let me = v == self.node_id;
                let leo = if me {
                    st.last_index
                } else {
                    matched.get(&(v as u64)).copied().unwrap_or(0)
                };
                let t = times.get(&(v as u64)).cloned().unwrap_or_default();
                ReplicaDescription {
                    replica_id: v,
                    log_end_offset: leo as i64,
                    last_fetch_timestamp: if me { now } else { t.last_fetch_ms.max(-1) },
                    last_caught_up_timestamp: if me { now } else { t.last_caught_up_ms.max(-1) },
                }
            })
            .collect();
        let observers = self
            .observers
            .lock()
            .iter()
            .filter(|(id, _)| !self.voters.contains(id))
            .map(|(&id, &(off, at))| ReplicaDescription {
                replica_id: id,
                log_end_offset: off as i64,
                last_fetch_timestamp: at,
                last_caught_up_timestamp: if off >= st.commit { at } else { -1 },
            })
            .collect();
        QuorumDescription {
            leader_id: st.leader.map_or(-1, |l| l as i32),
            leader_epoch: st.term as i32,
            high_watermark: st.commit as i64,
            voters,
            observers,
        }
    }

    pub fn create_topic(
        &self,
        spec: &CreateTopicSpec,
        validate_only: bool,
    ) -> Result<TopicInfo, ApiError> {
        self.create_topics(std::slice::from_ref(spec), validate_only, DEFAULT_TIMEOUT)
            .pop()
            .unwrap_or_else(|| {
                Err(ApiError::new(
                    ResponseError::UnknownServerError,
                    "no result",
                ))
            })
    }

    /// Creates several topics with one metadata batch; results are in the
    /// order of `specs`.
    pub fn create_topics(
        &self,
        specs: &[CreateTopicSpec],
        validate_only: bool,
        timeout: Duration,
    ) -> Vec<Result<TopicInfo, ApiError>> {
        let cmd = Command::CreateTopics {
            specs: specs.to_vec(),
            validate_only,
        };
        match self.submit(cmd, timeout) {
            Ok(CommandOutcome::Topics(results)) => {
                results.into_iter().map(|r| r.map_err(Into::into)).collect()
            }
            Ok(_) => specs
                .iter()
                .map(|_| {
                    Err(ApiError::new(
                        ResponseError::UnknownServerError,
                        "unexpected answer",
                    ))
                })
                .collect(),
            Err(e) => specs.iter().map(|_| Err(e.clone())).collect(),
        }
    }

    /// Creates a coordinator's internal compacted topic (`__consumer_offsets`,
    /// `__transaction_state`) on first use, as Kafka does on the first
    /// FindCoordinator; returns its partition count. The replication factor
    /// is capped at the live brokers so a single node can start.
    pub fn ensure_internal_topic(
        &self,
        name: &str,
        partitions: i32,
        replication_factor: i16,
        segment_bytes: i64,
    ) -> Result<i32, ResponseError> {
        if let Some(t) = self.image().topic(name) {
            return Ok(t.partitions.len() as i32);
        }
        let rf = (replication_factor.max(1) as usize).min(self.live_brokers().len().max(1)) as i16;
        let spec = CreateTopicSpec {
            configs: BTreeMap::from([
                ("cleanup.policy".to_string(), "compact".to_string()),
                ("segment.bytes".to_string(), segment_bytes.to_string()),
            ]),
            ..CreateTopicSpec::new(name, partitions, rf)
        };
        match self.create_topic(&spec, false) {
            Ok(t) => Ok(t.partitions.len() as i32),
            Err(e) if e.code == ResponseError::TopicAlreadyExists => self
                .image()
                .topic(name)
                .map(|t| t.partitions.len() as i32)
                .ok_or(ResponseError::CoordinatorNotAvailable),
            Err(e) => {
                tracing::error!(error = %e.message, "cannot create {name}");
                Err(ResponseError::CoordinatorNotAvailable)
            }
        }
    }

    pub fn delete_topic(&self, name: &str) -> Result<TopicInfo, ApiError> {
        self.delete_topics(&[name.to_string()], DEFAULT_TIMEOUT)
            .pop()
            .unwrap_or_else(|| {
                Err(ApiError::new(
                    ResponseError::UnknownServerError,
                    "no result",
                ))
            })
    }

    /// Deletes topics with one metadata batch; results (the deleted topic
    /// as it was) in the order of `names`.
    pub fn delete_topics(
        &self,
        names: &[String],
        timeout: Duration,
    ) -> Vec<Result<TopicInfo, ApiError>> {
        let before = self.image();
        let cmd = Command::DeleteTopics {
            names: names.to_vec(),
        };
        let results = match self.submit(cmd, timeout) {
            Ok(CommandOutcome::Deleted(r)) if r.len() == names.len() => r,
            Ok(_) => {
                let e = ApiError::new(ResponseError::UnknownServerError, "unexpected answer");
                return names.iter().map(|_| Err(e.clone())).collect();
            }
            Err(e) => return names.iter().map(|_| Err(e.clone())).collect(),
        };
        names
            .iter()
            .zip(results)
            .map(|(name, r)| {
                r.map_err(ApiError::from)?;
                before.topic(name).cloned().ok_or_else(|| {
                    ApiError::new(
                        ResponseError::UnknownTopicOrPartition,
                        format!("Topic '{name}' does not exist."),
                    )
                })
            })
            .collect()
    }

    /// Changes the configs of `target`: `edit` turns the current overrides
    /// into the new ones (legacy AlterConfigs replaces them all,
    /// IncrementalAlterConfigs edits them); the result is validated here
    /// and committed only if the overrides are still those it was computed
    /// from (else it is computed again), so concurrent changes from
    /// several nodes do not lose each other's updates. `validate_only`
    /// stops after validation.
    pub fn alter_configs(
        &self,
        target: &ConfigTarget,
        validate_only: bool,
        edit: impl Fn(&BTreeMap<String, String>) -> Result<BTreeMap<String, String>, AlterConfigError>,
    ) -> Result<(), ApiError> {
        for _ in 0..20 {
            let image = self.image();
            let empty = BTreeMap::new();
            let current = match target {
                ConfigTarget::Topic(name) => {
                    let topic = image.topic(name).ok_or_else(|| {
                        ApiError::new(
                            ResponseError::UnknownTopicOrPartition,
                            format!("The topic '{name}' does not exist."),
                        )
                    })?;
                    &topic.configs
                }
                ConfigTarget::Broker(name) => {
                    let node = self.config.node_id.to_string();
                    if !name.is_empty() && *name != node {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            format!("Unexpected broker id, expected {node} or empty string, but received {name}"),
                        ));
                    }
                    image.broker_configs.get(name).unwrap_or(&empty)
                }
                ConfigTarget::Group(name) => {
                    if name.is_empty() {
                        return Err(ApiError::new(
                            ResponseError::InvalidRequest,
                            "Default group resources are not allowed.",
                        ));
                    }
                    image.group_configs.get(name).unwrap_or(&empty)
                }
            };
            let configs = edit(current)?;
            match target {
                ConfigTarget::Topic(_) => self
                    .config
                    .validate_topic_configs(&configs)
                    .map_err(|m| ApiError::new(ResponseError::InvalidConfig, m))?,
                ConfigTarget::Broker(name) => {
                    dynamic::validate_broker_configs(&configs, name.is_empty())?
                }
                ConfigTarget::Group(_) => crate::config::group::validate(&configs, &self.config)?,
            }
            if validate_only || configs == *current {
                return Ok(());
            }
            if let ConfigTarget::Broker(_) = target {
                for k in configs.keys() {
                    dynamic::note_no_effect(k);
                }
            }
            let cmd = Command::SetConfigs {
                target: target.into(),
                expected: current.clone(),
                new: configs,
            };
            match self.submit(cmd, DEFAULT_TIMEOUT)? {
                CommandOutcome::StaleConfigs => continue,
                _ => {
                    tracing::info!(target = ?target, "altered configs");
                    return Ok(());
                }
            }
        }
        Err(ApiError::new(
            ResponseError::ConcurrentTransactions,
            "The configs kept changing concurrently; try again.",
        ))
    }

    /// Submits a command answered with one result per item (in the
    /// order sent) and unpacks those results with `unpack`; one error
    /// for all when no controller decided them. Nothing is submitted for
    /// no items.
    fn submit_items<T>(
        &self,
        empty: bool,
        cmd: impl FnOnce() -> Command,
        unpack: impl FnOnce(CommandOutcome) -> Option<Vec<Result<T, WireError>>>,
    ) -> Result<Vec<Result<T, ApiError>>, ApiError> {
        if empty {
            return Ok(Vec::new());
        }
        let outcome = self.submit(cmd(), DEFAULT_TIMEOUT)?;
        match unpack(outcome) {
            Some(results) => Ok(results
                .into_iter()
                .map(|r| r.map_err(ApiError::from))
                .collect()),
            None => Err(ApiError::new(
                ResponseError::UnknownServerError,
                "unexpected answer",
            )),
        }
    }

    /// AlterUserScramCredentials: the items' outcomes in order.
    pub fn alter_scram_credentials(
        &self,
        items: Vec<crate::quorum::protocol::ScramAlteration>,
    ) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        self.submit_items(
            items.is_empty(),
            || Command::AlterScramCredentials { items },
            per_item,
        )
    }

    /// CreateAcls: the bindings' outcomes in order.
    pub fn create_acls(
        &self,
        acls: Vec<oxka_controller::acl::AclBinding>,
    ) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        self.submit_items(acls.is_empty(), || Command::CreateAcls { acls }, per_item)
    }

    /// DeleteAcls: per filter, the bindings it removed.
    #[allow(clippy::type_complexity)]
    pub fn delete_acls(
        &self,
        filters: Vec<oxka_controller::acl::AclBindingFilter>,
    ) -> Result<Vec<Result<Vec<oxka_controller::acl::AclBinding>, ApiError>>, ApiError> {
        self.submit_items(
            filters.is_empty(),
            || Command::DeleteAcls { filters },
            |o| match o {
                CommandOutcome::AclsDeleted(r) => Some(r),
                _ => None,
            },
        )
    }

    /// AlterClientQuotas: the entries' outcomes in order.
    pub fn alter_client_quotas(
        &self,
        entries: Vec<crate::quorum::protocol::QuotaAlteration>,
        validate_only: bool,
    ) -> Result<Vec<Result<(), ApiError>>, ApiError> {
        self.submit_items(
            entries.is_empty(),
            || Command::AlterClientQuotas {
                entries,
                validate_only,
            },
            per_item,
        )
    }

    /// A producer id never handed out before, also across restarts and
    /// brokers: ids come in blocks from the active controller.
    pub fn allocate_producer_id(&self) -> Result<i64, ApiError> {
        let mut ids = self.producer_ids.lock();
        if ids.0 >= ids.1 {
            let cmd = Command::AllocateProducerIds {
                broker_id: self.node_id,
                count: PRODUCER_ID_BLOCK,
            };
            match self.submit(cmd, Duration::from_secs(10)) {
                Ok(CommandOutcome::ProducerIds { first, count }) => *ids = (first, first + count),
                Ok(_) => {
                    return Err(ApiError::new(
                        ResponseError::UnknownServerError,
                        "unexpected answer",
                    ))
                }
                // Kafka's RPCProducerIdManager while no block is at hand
                Err(e) => {
                    return Err(ApiError::new(
                        ResponseError::CoordinatorLoadInProgress,
                        format!("No producer id block available: {}", e.message),
                    ))
                }
            }
        }
        let id = ids.0;
        ids.0 += 1;
        Ok(id)
    }

    pub fn create_partitions(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
    ) -> Result<(), ApiError> {
        self.create_partitions_within(name, count, assignments, validate_only, DEFAULT_TIMEOUT)
    }

    pub fn create_partitions_within(
        &self,
        name: &str,
        count: i32,
        assignments: Option<Vec<Vec<i32>>>,
        validate_only: bool,
        timeout: Duration,
    ) -> Result<(), ApiError> {
        let cmd = Command::CreatePartitions {
            name: name.to_string(),
            count,
            assignments,
            validate_only,
        };
        self.submit(cmd, timeout).map(|_| ())
    }
}

enum DecideError {
    NotController,
    Failed(ApiError),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::replica_manager::ReplicaManager;
    use oxka_log::{LogManager, TopicPartition};

    fn start(
        dir: &std::path::Path,
    ) -> (
        Arc<Controller>,
        Arc<ReplicaManager>,
        crate::quorum::node::TestQuorum,
    ) {
        let props = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
        let (config, _) = KafkaConfig::from_props(props).unwrap();
        let config = Arc::new(config);
        let lm = LogManager::startup(
            &config.log_dirs,
            1,
            "cluster",
            config.log_config(&BTreeMap::new()),
            0,
        )
        .unwrap();
        let rm = Arc::new(ReplicaManager::new(1, Arc::new(lm)));
        let (c, q) = crate::quorum::node::single_node_for_tests(config, rm.clone());
        (c, rm, q)
    }

    fn spec(name: &str, n: i32, rf: i16) -> CreateTopicSpec {
        CreateTopicSpec::new(name, n, rf)
    }

    #[test]
    fn producer_ids_are_never_reused_across_restarts() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _, q) = start(dir.path());
        let a = c.allocate_producer_id().unwrap();
        let b = c.allocate_producer_id().unwrap();
        assert_eq!(b, a + 1);
        drop((c, q));
        let (c, _, _q) = start(dir.path());
        assert!(c.allocate_producer_id().unwrap() > b);
    }

    /// A created topic's partitions are hosted when the creation returns
    /// (the answer waits until this node's image and logs include it).
    #[test]
    fn a_created_topic_is_hosted_when_the_creation_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (c, rm, _q) = start(dir.path());
        let n = c
            .ensure_internal_topic("__consumer_offsets", 50, 3, 1 << 20)
            .unwrap();
        assert_eq!(n, 50);
        for p in 0..n {
            let tp = TopicPartition::new("__consumer_offsets", p);
            assert!(rm.get_partition(&tp).is_some_and(|p| p.is_leader()), "{tp}");
        }
        let t = c.image().topic("__consumer_offsets").cloned().unwrap();
        assert_eq!(t.replication_factor(), 1, "capped at the live brokers");
    }

    #[test]
    fn topics_survive_restart_and_validation_errors() {
        let dir = tempfile::tempdir().unwrap();
        let (c, _, q) = start(dir.path());
        let t = c.create_topic(&spec("orders", 3, 1), false).unwrap();
        assert_eq!(
            c.create_topic(&spec("orders", 3, 1), false)
                .unwrap_err()
                .code,
            ResponseError::TopicAlreadyExists
        );
        assert_eq!(
            c.create_topic(&spec("orders_", 0, 1), false)
                .unwrap_err()
                .code,
            ResponseError::InvalidPartitions
        );
        assert_eq!(
            c.create_topic(&spec("x", 1, 2), false).unwrap_err().code,
            ResponseError::InvalidReplicationFactor
        );
        assert_eq!(
            c.create_topic(&spec("a/b", 1, 1), false).unwrap_err().code,
            ResponseError::InvalidTopicException
        );
        assert!(c.create_topic(&spec("dry", 1, 1), true).is_ok());
        // absurd counts are refused before anything is allocated for them
        assert_eq!(
            c.create_topic(&spec("huge", 2_000_000_000, 1), false)
                .unwrap_err()
                .code,
            ResponseError::PolicyViolation
        );
        assert_eq!(
            c.create_partitions("orders", i32::MAX, None, false)
                .unwrap_err()
                .code,
            ResponseError::PolicyViolation
        );
        assert!(c.image().topic("dry").is_none());
        c.create_partitions("orders", 5, None, false).unwrap();
        drop((c, q));
        let (c, _, _q) = start(dir.path());
        let back = c.image().topic("orders").cloned().unwrap();
        assert_eq!((back.id, back.partitions.len()), (t.id, 5));
        c.delete_topic("orders").unwrap();
        assert!(c.image().topic("orders").is_none());
        assert!(!dir.path().join("orders-0").exists());
    }

    #[test]
    fn the_log_manager_leaves_the_metadata_log_alone() {
        assert_eq!(
            oxka_log::METADATA_LOG_DIR_NAME,
            oxka_controller::quorum::disk::METADATA_LOG_DIR
        );
    }
}
