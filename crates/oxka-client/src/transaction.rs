//! The transactional producer's state machine and its requests to the
//! transaction and group coordinators (the part of Java's
//! `TransactionManager` that is not the accumulator).
//!
//! The classic protocol (transaction version 1): a partition is added to
//! the transaction (AddPartitionsToTxn, all the new partitions of a
//! sender pass in one request) before anything is produced to it;
//! offsets join with AddOffsetsToTxn then TxnOffsetCommit to the group
//! coordinator; EndTxn commits or aborts once every send is answered.
//!
//! Errors follow Java's model: a fenced, unauthorized or confused
//! producer is in a fatal state (every later call returns that error);
//! a failed send or offset commit makes the transaction abortable (commit
//! fails, abort goes on); coordinator moves and loading, concurrent
//! transactions and transport trouble are retried within `max.block.ms`.

use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_protocol::messages::*;

use crate::cluster::{Cluster, CoordinatorType};
use crate::connection::Connection;
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{Error, KafkaCode, Result};
use crate::{sb, tn, TopicPartition};

/// Where a transactional producer stands (Java's `TransactionManager.State`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TransactionState {
    /// Built; `init_transactions` not called (or not finished) yet.
    Uninitialized,
    /// `init_transactions` under way (or timed out: call it again).
    Initializing,
    /// Between transactions.
    Ready,
    /// After `begin_transaction`: sends and offsets join the transaction.
    InTransaction,
    /// `commit_transaction` under way (or timed out: call it again).
    Committing,
    /// `abort_transaction` under way (or timed out: call it again).
    Aborting,
    /// Something in the transaction failed: it can only be aborted.
    AbortableError,
    /// The producer can do nothing more (fenced, not authorized, ...).
    FatalError,
}

impl fmt::Display for TransactionState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TransactionState::Uninitialized => "UNINITIALIZED (call init_transactions first)",
            TransactionState::Initializing => "INITIALIZING",
            TransactionState::Ready => "READY (no transaction: call begin_transaction)",
            TransactionState::InTransaction => "IN_TRANSACTION",
            TransactionState::Committing => "COMMITTING_TRANSACTION",
            TransactionState::Aborting => "ABORTING_TRANSACTION",
            TransactionState::AbortableError => "ABORTABLE_ERROR (abort the transaction)",
            TransactionState::FatalError => "FATAL_ERROR",
        })
    }
}

/// Java's `isTransitionValid`.
fn transition_valid(from: TransactionState, to: TransactionState) -> bool {
    use TransactionState::*;
    match to {
        Uninitialized => false,
        Initializing => from == Uninitialized,
        Ready => matches!(from, Initializing | Committing | Aborting),
        InTransaction => from == Ready,
        Committing => from == InTransaction,
        Aborting => matches!(from, InTransaction | AbortableError),
        AbortableError => matches!(from, InTransaction | Committing | AbortableError),
        FatalError => true,
    }
}

/// The error that put the producer in `AbortableError` or `FatalError`.
#[derive(Debug, Clone)]
struct Cause {
    code: Option<KafkaCode>,
    message: String,
}

/// The state machine, kept under the producer's lock so a send checks it
/// with the accumulator.
#[derive(Debug)]
pub(crate) struct TxnMachine {
    state: TransactionState,
    cause: Option<Cause>,
    /// A partition or the offsets were added at the coordinator: the
    /// transaction must end with EndTxn (else it ends locally, as Java's).
    pub started: bool,
    /// A batch of the transaction failed after it was numbered: after the
    /// abort the epoch is bumped (KIP-360) and sequences restart at 0,
    /// whatever the broker kept of it.
    pub epoch_bump_required: bool,
    /// A partition waits for AddPartitionsToTxn.
    pub pending_adds: bool,
    /// When the sender may ask again after a retriable failure.
    pub add_retry_at: Option<Instant>,
}

impl TxnMachine {
    pub fn new() -> TxnMachine {
        TxnMachine {
            state: TransactionState::Uninitialized,
            cause: None,
            started: false,
            epoch_bump_required: false,
            pending_adds: false,
            add_retry_at: None,
        }
    }

    pub fn state(&self) -> TransactionState {
        self.state
    }

    /// Moves to `to`, or explains why `operation` cannot be done now: the
    /// fatal error itself, the abortable error (for anything but abort),
    /// else the state.
    pub fn transition(&mut self, to: TransactionState, operation: &'static str) -> Result<()> {
        if !transition_valid(self.state, to) {
            return Err(self.refusal(operation));
        }
        self.state = to;
        Ok(())
    }

    /// Why `operation` is refused in the current state.
    pub fn refusal(&self, operation: &'static str) -> Error {
        match self.state {
            TransactionState::FatalError | TransactionState::AbortableError => self.error(),
            state => Error::TransactionState {
                operation,
                state: state.to_string(),
            },
        }
    }

    /// Whether a record may join the transaction now.
    pub fn check_send(&self) -> Result<()> {
        match self.state {
            TransactionState::InTransaction => Ok(()),
            _ => Err(self.refusal("send")),
        }
    }

    /// Records a failure: fatal ones always win; an abortable one moves an
    /// open or committing transaction to `AbortableError` (an abort under
    /// way ignores it, as Java's; the first cause is kept).
    pub fn fail(&mut self, fatal: bool, code: Option<KafkaCode>, message: String) {
        if self.state == TransactionState::FatalError {
            return;
        }
        if fatal {
            self.state = TransactionState::FatalError;
            self.cause = Some(Cause { code, message });
            return;
        }
        if matches!(
            self.state,
            TransactionState::InTransaction | TransactionState::Committing
        ) {
            self.state = TransactionState::AbortableError;
            self.cause = Some(Cause { code, message });
        }
    }

    /// The error of an `AbortableError` or `FatalError` state (a generic
    /// one in other states: a record failed because of an abort).
    pub fn error(&self) -> Error {
        let fatal = self.state == TransactionState::FatalError;
        match &self.cause {
            Some(c) => Error::Transaction {
                fatal,
                code: c.code,
                message: c.message.clone(),
            },
            None => Error::Transaction {
                fatal,
                code: None,
                message: "the transaction was aborted before the record was sent".into(),
            },
        }
    }

    /// The transaction ended (committed, aborted, or never begun at the
    /// coordinator): ready for the next.
    pub fn complete(&mut self) -> Result<()> {
        self.transition(TransactionState::Ready, "complete the transaction")?;
        self.cause = None;
        self.started = false;
        self.pending_adds = false;
        self.add_retry_at = None;
        Ok(())
    }
}

/// What to do about a failed transactional request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// Try again after `backoff`; `rediscover`: find the coordinator again.
    Retry { rediscover: bool, backoff: Duration },
    /// The transaction must be aborted.
    Abortable,
    /// The producer is done.
    Fatal,
}

/// Java's handling of the coordinators' answers (InitProducerId,
/// AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn).
pub(crate) fn classify(e: &Error, retry_backoff: Duration) -> Disposition {
    let retry = |rediscover, backoff| Disposition::Retry {
        rediscover,
        backoff,
    };
    match e {
        Error::Connect { .. } | Error::Disconnected { .. } | Error::Timeout(_) => {
            retry(true, retry_backoff)
        }
        Error::Kafka { code, .. } => match code.0 {
            KafkaCode::NOT_COORDINATOR
            | KafkaCode::COORDINATOR_NOT_AVAILABLE
            | KafkaCode::REQUEST_TIMED_OUT => retry(true, retry_backoff),
            KafkaCode::COORDINATOR_LOAD_IN_PROGRESS
            | KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
            | KafkaCode::LEADER_NOT_AVAILABLE
            | KafkaCode::NOT_LEADER_OR_FOLLOWER
            | KafkaCode::OPERATION_NOT_ATTEMPTED => retry(false, retry_backoff),
            // the previous transaction's markers are still being written:
            // Java retries AddPartitionsToTxn after 20 ms, not the backoff
            KafkaCode::CONCURRENT_TRANSACTIONS => {
                retry(false, retry_backoff.min(Duration::from_millis(20)))
            }
            KafkaCode::TOPIC_AUTHORIZATION_FAILED
            | KafkaCode::GROUP_AUTHORIZATION_FAILED
            | KafkaCode::UNKNOWN_PRODUCER_ID
            | KafkaCode::INVALID_PRODUCER_ID_MAPPING
            | KafkaCode::TRANSACTION_ABORTABLE
            | KafkaCode::UNKNOWN_MEMBER_ID
            | KafkaCode::ILLEGAL_GENERATION
            | KafkaCode::REBALANCE_IN_PROGRESS
            | KafkaCode::FENCED_INSTANCE_ID => Disposition::Abortable,
            // PRODUCER_FENCED, INVALID_PRODUCER_EPOCH (from a coordinator),
            // TRANSACTIONAL_ID_AUTHORIZATION_FAILED, INVALID_TXN_STATE,
            // CLUSTER_AUTHORIZATION_FAILED, UNSUPPORTED_VERSION and anything
            // unexpected
            _ => Disposition::Fatal,
        },
        _ => Disposition::Fatal,
    }
}

/// Whether a failed produce of the transaction is fatal (Java's
/// `maybeTransitionToErrorState`); anything else makes the transaction
/// abortable. INVALID_PRODUCER_EPOCH from a partition leader is abortable
/// (KIP-588: the coordinator may have aborted a timed-out transaction;
/// the abort's EndTxn then tells whether the producer was fenced).
pub(crate) fn produce_failure_is_fatal(e: &Error) -> bool {
    matches!(
        e.kafka_code().map(|c| c.0),
        Some(
            KafkaCode::PRODUCER_FENCED
                | KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED
                | KafkaCode::CLUSTER_AUTHORIZATION_FAILED
                | KafkaCode::UNSUPPORTED_VERSION
        )
    ) || matches!(e, Error::UnsupportedApi { .. })
}

/// The producer's side of the coordinators: the transactional id, the
/// cached coordinator connections, one transactional request at a time.
pub(crate) struct TxnCoordinator {
    pub cluster: Arc<Cluster>,
    pub transactional_id: String,
    pub timeout_ms: i32,
    /// Held across a transactional request (Java sends one at a time): a
    /// sender's AddPartitionsToTxn is answered before commit or abort
    /// reads whether the transaction started.
    pub ops: tokio::sync::Mutex<()>,
    txn_conn: std::sync::Mutex<Option<Arc<Connection>>>,
    group_conns: std::sync::Mutex<BTreeMap<String, Arc<Connection>>>,
}

fn unlock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    match m.lock() {
        Ok(g) => g,
        Err(p) => p.into_inner(),
    }
}

impl TxnCoordinator {
    pub fn new(cluster: Arc<Cluster>, transactional_id: String, timeout_ms: i32) -> Self {
        TxnCoordinator {
            cluster,
            transactional_id,
            timeout_ms,
            ops: tokio::sync::Mutex::new(()),
            txn_conn: Default::default(),
            group_conns: Default::default(),
        }
    }

    fn tid(&self) -> TransactionalId {
        TransactionalId(sb(self.transactional_id.clone()))
    }

    /// The transaction coordinator (cached while its connection lives).
    async fn conn(&self) -> Result<Arc<Connection>> {
        if let Some(c) = unlock(&self.txn_conn).as_ref().filter(|c| c.is_alive()) {
            return Ok(c.clone());
        }
        let (_, c) = self
            .cluster
            .find_coordinator_once(CoordinatorType::Transaction, &self.transactional_id)
            .await?;
        *unlock(&self.txn_conn) = Some(c.clone());
        Ok(c)
    }

    async fn group_conn(&self, group: &str) -> Result<Arc<Connection>> {
        if let Some(c) = unlock(&self.group_conns)
            .get(group)
            .filter(|c| c.is_alive())
        {
            return Ok(c.clone());
        }
        let (_, c) = self
            .cluster
            .find_coordinator_once(CoordinatorType::Group, group)
            .await?;
        unlock(&self.group_conns).insert(group.to_string(), c.clone());
        Ok(c)
    }

    /// Forgets the coordinators (NOT_COORDINATOR and friends).
    pub fn forget(&self) {
        *unlock(&self.txn_conn) = None;
        unlock(&self.group_conns).clear();
    }

    /// Runs `attempt` until it succeeds, fails for good (an abortable or
    /// fatal error, returned as the broker gave it) or `deadline` passes
    /// (`Error::Timeout`, naming the last error).
    pub async fn retry_until<T, F, Fut>(
        &self,
        deadline: Instant,
        what: &str,
        mut attempt: F,
    ) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let backoff = self.cluster.cfg.retry_backoff;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let e = match tokio::time::timeout(left, attempt()).await {
                Ok(Ok(v)) => return Ok(v),
                Ok(Err(e)) => e,
                Err(_) => {
                    self.forget();
                    return Err(Error::Timeout(format!("{what} within max.block.ms")));
                }
            };
            match classify(&e, backoff) {
                Disposition::Retry {
                    rediscover,
                    backoff,
                } => {
                    tracing::debug!(error = %e, what, "retrying a transactional request");
                    if rediscover {
                        self.forget();
                    }
                    if Instant::now() + backoff >= deadline {
                        return Err(Error::Timeout(format!(
                            "{what} within max.block.ms (last error: {e})"
                        )));
                    }
                    tokio::time::sleep(backoff).await;
                }
                _ => return Err(e),
            }
        }
    }

    /// InitProducerId for the transactional id: a new epoch (fencing
    /// earlier instances; the broker aborts their open transaction), or
    /// with `current` the KIP-360 bump of this producer's own epoch.
    pub async fn init_producer_id(&self, current: Option<(i64, i16)>) -> Result<(i64, i16)> {
        let conn = self.conn().await?;
        let mut req = InitProducerIdRequest::default();
        req.transactional_id = Some(self.tid());
        req.transaction_timeout_ms = self.timeout_ms;
        let (pid, epoch) = current.unwrap_or((-1, -1));
        req.producer_id = ProducerId(pid);
        req.producer_epoch = epoch;
        let resp = conn.send(req).await?;
        crate::error::check(resp.error_code, None, || {
            format!(
                "InitProducerId for transactional id `{}`",
                self.transactional_id
            )
        })?;
        Ok((resp.producer_id.0, resp.producer_epoch))
    }

    /// Whether the coordinator bumps a live producer's epoch (KIP-360:
    /// InitProducerId v3+).
    pub async fn can_bump_epoch(&self) -> bool {
        match self.conn().await {
            Ok(c) => c.version_for(ApiKey::InitProducerId).is_ok_and(|v| v >= 3),
            Err(_) => false,
        }
    }

    /// AddPartitionsToTxn (v0–v3) for `partitions`, all in one request.
    /// The first real error among the partitions (OPERATION_NOT_ATTEMPTED
    /// only names the others of a failed request).
    pub async fn add_partitions(
        &self,
        pid: i64,
        epoch: i16,
        partitions: &[TopicPartition],
    ) -> Result<()> {
        let conn = self.conn().await?;
        let mut req = AddPartitionsToTxnRequest::default();
        req.v3_and_below_transactional_id = self.tid();
        req.v3_and_below_producer_id = ProducerId(pid);
        req.v3_and_below_producer_epoch = epoch;
        let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
        for tp in partitions {
            by_topic.entry(&tp.topic).or_default().push(tp.partition);
        }
        for (topic, ps) in by_topic {
            let mut t = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default();
            t.name = tn(topic);
            t.partitions = ps;
            req.v3_and_below_topics.push(t);
        }
        let resp = conn.send(req).await?;
        let mut worst: Option<(i16, String)> = None;
        for t in &resp.results_by_topic_v3_and_below {
            for p in &t.results_by_partition {
                let code = p.partition_error_code;
                if code == 0 {
                    continue;
                }
                let tp = format!("{}-{}", t.name.0, p.partition_index);
                if worst
                    .as_ref()
                    .is_none_or(|(c, _)| *c == KafkaCode::OPERATION_NOT_ATTEMPTED)
                {
                    worst = Some((code, tp));
                }
            }
        }
        if resp.error_code != 0 && worst.is_none() {
            worst = Some((resp.error_code, String::from("the transaction")));
        }
        match worst {
            None => Ok(()),
            Some((code, tp)) => Err(Error::kafka(
                code,
                None,
                format!("AddPartitionsToTxn ({tp})"),
            )),
        }
    }

    /// EndTxn: commit or abort.
    pub async fn end_txn(&self, pid: i64, epoch: i16, commit: bool) -> Result<()> {
        let conn = self.conn().await?;
        let mut req = EndTxnRequest::default();
        req.transactional_id = self.tid();
        req.producer_id = ProducerId(pid);
        req.producer_epoch = epoch;
        req.committed = commit;
        let resp = conn.send(req).await?;
        crate::error::check(resp.error_code, None, || {
            format!("EndTxn ({})", if commit { "commit" } else { "abort" })
        })
    }

    /// AddOffsetsToTxn: the group's offsets partition joins the transaction.
    pub async fn add_offsets(&self, pid: i64, epoch: i16, group: &str) -> Result<()> {
        let conn = self.conn().await?;
        let mut req = AddOffsetsToTxnRequest::default();
        req.transactional_id = self.tid();
        req.producer_id = ProducerId(pid);
        req.producer_epoch = epoch;
        req.group_id = GroupId(sb(group));
        let resp = conn.send(req).await?;
        crate::error::check(resp.error_code, None, || {
            format!("AddOffsetsToTxn (group `{group}`)")
        })
    }

    /// TxnOffsetCommit to the group's coordinator: offsets pending until
    /// the transaction's marker.
    pub async fn txn_offset_commit(
        &self,
        pid: i64,
        epoch: i16,
        group: &ConsumerGroupMetadata,
        offsets: &BTreeMap<TopicPartition, i64>,
    ) -> Result<()> {
        let conn = match self.group_conn(&group.group_id).await {
            Ok(c) => c,
            Err(e) => return Err(e),
        };
        let mut req = TxnOffsetCommitRequest::default();
        req.transactional_id = self.tid();
        req.group_id = GroupId(sb(group.group_id.clone()));
        req.producer_id = ProducerId(pid);
        req.producer_epoch = epoch;
        req.generation_id = group.generation_id;
        req.member_id = sb(group.member_id.clone());
        req.group_instance_id = group.group_instance_id.clone().map(sb);
        let mut by_topic: BTreeMap<
            &str,
            Vec<txn_offset_commit_request::TxnOffsetCommitRequestPartition>,
        > = BTreeMap::new();
        for (tp, offset) in offsets {
            let mut p = txn_offset_commit_request::TxnOffsetCommitRequestPartition::default();
            p.partition_index = tp.partition;
            p.committed_offset = *offset;
            p.committed_leader_epoch = -1;
            p.committed_metadata = Some(sb(""));
            by_topic.entry(&tp.topic).or_default().push(p);
        }
        for (topic, ps) in by_topic {
            let mut t = txn_offset_commit_request::TxnOffsetCommitRequestTopic::default();
            t.name = tn(topic);
            t.partitions = ps;
            req.topics.push(t);
        }
        let resp = conn.send(req).await?;
        for t in &resp.topics {
            for p in &t.partitions {
                crate::error::check(p.error_code, None, || {
                    format!(
                        "TxnOffsetCommit (group `{}`, {}-{})",
                        group.group_id, t.name.0, p.partition_index
                    )
                })?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::TransactionState::*;
    use super::*;

    fn machine(state: TransactionState) -> TxnMachine {
        let mut m = TxnMachine::new();
        m.state = state;
        m
    }

    const ALL: [TransactionState; 8] = [
        Uninitialized,
        Initializing,
        Ready,
        InTransaction,
        Committing,
        Aborting,
        AbortableError,
        FatalError,
    ];

    #[test]
    fn the_happy_path_commits_and_aborts() {
        let mut m = TxnMachine::new();
        m.transition(Initializing, "init_transactions").unwrap();
        m.transition(Ready, "init_transactions").unwrap();
        for end in [Committing, Aborting] {
            m.transition(InTransaction, "begin_transaction").unwrap();
            m.check_send().unwrap();
            m.started = true;
            m.transition(end, "end").unwrap();
            assert!(m.check_send().is_err(), "no send while {end:?}");
            m.complete().unwrap();
            assert_eq!(m.state(), Ready);
            assert!(!m.started);
        }
    }

    #[test]
    fn invalid_transitions_name_the_operation_and_the_state() {
        let mut m = machine(Ready);
        m.transition(InTransaction, "begin_transaction").unwrap();
        let e = m
            .transition(InTransaction, "begin_transaction")
            .unwrap_err();
        assert!(
            matches!(&e, Error::TransactionState { operation: "begin_transaction", state } if state.starts_with("IN_TRANSACTION")),
            "{e}"
        );
        let e = machine(Ready)
            .transition(Committing, "commit_transaction")
            .unwrap_err();
        assert!(e.to_string().contains("READY"), "{e}");
        let e = machine(Uninitialized).check_send().unwrap_err();
        assert!(e.to_string().contains("init_transactions"), "{e}");
        assert!(machine(Ready).transition(Aborting, "abort").is_err());
        assert!(machine(Committing).transition(Aborting, "abort").is_err());
        assert!(machine(Initializing)
            .transition(InTransaction, "begin")
            .is_err());
        // exactly Java's table
        let valid: Vec<(TransactionState, TransactionState)> = ALL
            .iter()
            .flat_map(|f| ALL.iter().map(move |t| (*f, *t)))
            .filter(|(f, t)| transition_valid(*f, *t))
            .filter(|(_, t)| *t != FatalError)
            .collect();
        assert_eq!(
            valid,
            [
                (Uninitialized, Initializing),
                (Initializing, Ready),
                (Ready, InTransaction),
                (InTransaction, Committing),
                (InTransaction, Aborting),
                (InTransaction, AbortableError),
                (Committing, Ready),
                (Committing, AbortableError),
                (Aborting, Ready),
                (AbortableError, Aborting),
                (AbortableError, AbortableError),
            ]
        );
    }

    #[test]
    fn an_abortable_error_fails_commit_and_sends_until_the_abort() {
        let mut m = machine(InTransaction);
        m.fail(
            false,
            Some(KafkaCode(KafkaCode::TOPIC_AUTHORIZATION_FAILED)),
            "producing to t-0".into(),
        );
        assert_eq!(m.state(), AbortableError);
        for e in [
            m.transition(Committing, "commit_transaction").unwrap_err(),
            m.check_send().unwrap_err(),
            m.transition(InTransaction, "begin_transaction")
                .unwrap_err(),
        ] {
            assert!(e.is_abortable_transaction_error(), "{e}");
            assert_eq!(
                e.kafka_code(),
                Some(KafkaCode(KafkaCode::TOPIC_AUTHORIZATION_FAILED))
            );
        }
        // a second failure keeps the first cause
        m.fail(false, None, "later".into());
        assert!(m.error().to_string().contains("producing to t-0"));
        m.transition(Aborting, "abort_transaction").unwrap();
        // failures of the aborted transaction's sends change nothing
        m.fail(false, None, "in flight".into());
        assert_eq!(m.state(), Aborting);
        m.complete().unwrap();
        m.transition(InTransaction, "begin_transaction").unwrap();
        m.check_send().unwrap();
    }

    #[test]
    fn a_fatal_error_is_final_and_returned_by_every_call() {
        for from in ALL.into_iter().filter(|s| *s != FatalError) {
            let mut m = machine(from);
            m.fail(
                true,
                Some(KafkaCode(KafkaCode::PRODUCER_FENCED)),
                "EndTxn".into(),
            );
            assert_eq!(m.state(), FatalError);
            m.fail(false, None, "abortable later".into());
            assert_eq!(m.state(), FatalError, "an abortable error does not undo it");
            for to in ALL.into_iter().filter(|t| *t != FatalError) {
                let e = m.transition(to, "anything").unwrap_err();
                assert!(e.is_fatal_transaction_error(), "{e}");
                assert_eq!(e.kafka_code(), Some(KafkaCode(KafkaCode::PRODUCER_FENCED)));
            }
            assert!(m.check_send().unwrap_err().is_fatal_transaction_error());
            assert!(m.complete().is_err());
        }
    }

    #[test]
    fn coordinator_errors_are_classified_as_java_does() {
        let b = Duration::from_millis(100);
        let k = |c| classify(&Error::kafka(c, None, "x"), b);
        assert_eq!(
            k(KafkaCode::NOT_COORDINATOR),
            Disposition::Retry {
                rediscover: true,
                backoff: b
            }
        );
        assert_eq!(
            k(KafkaCode::COORDINATOR_NOT_AVAILABLE),
            Disposition::Retry {
                rediscover: true,
                backoff: b
            }
        );
        assert_eq!(
            k(KafkaCode::COORDINATOR_LOAD_IN_PROGRESS),
            Disposition::Retry {
                rediscover: false,
                backoff: b
            }
        );
        assert_eq!(
            k(KafkaCode::CONCURRENT_TRANSACTIONS),
            Disposition::Retry {
                rediscover: false,
                backoff: Duration::from_millis(20)
            }
        );
        for fatal in [
            KafkaCode::PRODUCER_FENCED,
            KafkaCode::INVALID_PRODUCER_EPOCH,
            KafkaCode::TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
            KafkaCode::INVALID_TXN_STATE,
            KafkaCode::INVALID_TRANSACTION_TIMEOUT,
        ] {
            assert_eq!(k(fatal), Disposition::Fatal, "{}", KafkaCode(fatal));
        }
        for abortable in [
            KafkaCode::TOPIC_AUTHORIZATION_FAILED,
            KafkaCode::GROUP_AUTHORIZATION_FAILED,
            KafkaCode::UNKNOWN_PRODUCER_ID,
            KafkaCode::ILLEGAL_GENERATION,
            KafkaCode::UNKNOWN_MEMBER_ID,
        ] {
            assert_eq!(
                k(abortable),
                Disposition::Abortable,
                "{}",
                KafkaCode(abortable)
            );
        }
        assert!(matches!(
            classify(
                &Error::Disconnected {
                    addr: "a".into(),
                    reason: "b".into()
                },
                b
            ),
            Disposition::Retry {
                rediscover: true,
                ..
            }
        ));
        // a partition leader's INVALID_PRODUCER_EPOCH is abortable (KIP-588)
        let epoch = Error::kafka(KafkaCode::INVALID_PRODUCER_EPOCH, None, "producing");
        assert!(!produce_failure_is_fatal(&epoch));
        let fenced = Error::kafka(KafkaCode::PRODUCER_FENCED, None, "producing");
        assert!(produce_failure_is_fatal(&fenced));
    }
}
