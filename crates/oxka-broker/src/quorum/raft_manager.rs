//! Kafka's KafkaRaftManager: runs this voter's [`QuorumNode`] on a thread
//! of its own. Ticks come from the clock here, messages from the controller
//! listener, proposals from the controller; after each round the node's new
//! state is made durable (fsync) and its messages handed to the transport.
//! A thread rather than a task: the durable writes block, and the quorum
//! must keep time even when the async runtime is busy.

use std::collections::HashMap;
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxka_controller::quorum::disk::DiskStore;
use oxka_controller::quorum::{
    MetadataLog, ProposalId, ProposeError, QuorumConfig, QuorumNode, QuorumStatus, WireMessage,
};
use parking_lot::{Condvar, Mutex, RwLock};

use crate::server::now_ms;

/// One Raft tick; election and heartbeat timeouts are counted in these.
pub const TICK: Duration = Duration::from_millis(100);
/// Events waiting for the quorum thread; Raft messages beyond it are
/// dropped (Raft tolerates loss), proposals refused.
const EVENT_QUEUE: usize = 4096;

/// Where outgoing Raft messages go.
pub trait RaftTransport: Send + Sync {
    /// Queues `msg` for its node; false if it cannot be (no connection or
    /// its queue is full).
    fn send(&self, msg: WireMessage) -> bool;
}

enum Event {
    Message(WireMessage),
    Propose(Vec<u8>, SyncSender<Result<u64, ProposalFailure>>),
    Compact(u64, Vec<u8>),
    SnapshotReport(u64, bool),
    Shutdown,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProposalFailure {
    #[error("{0}")]
    Refused(ProposeError),
    #[error("another controller took over before the change was committed")]
    Lost,
    #[error("the metadata quorum is busy")]
    Busy,
}

/// The commit index, observable by threads and tasks.
#[derive(Default)]
pub struct CommitSignal {
    commit: Mutex<u64>,
    cond: Condvar,
}

impl CommitSignal {
    pub fn set(&self, commit: u64) {
        let mut c = self.commit.lock();
        if commit > *c {
            *c = commit;
            self.cond.notify_all();
        }
    }

    pub fn get(&self) -> u64 {
        *self.commit.lock()
    }

    /// Waits until the commit index passes `seen` or `timeout` elapses.
    pub fn wait_past(&self, seen: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        let mut c = self.commit.lock();
        while *c <= seen {
            if self.cond.wait_until(&mut c, deadline).timed_out() {
                break;
            }
        }
        *c
    }
}

/// Progress of the other replicas as the leader saw it, with times
/// (DescribeQuorum's last fetch / last caught-up timestamps).
#[derive(Debug, Clone, Default)]
pub struct ReplicaTimes {
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

pub struct RaftManager {
    events: SyncSender<Event>,
    log: MetadataLog,
    status: Arc<RwLock<QuorumStatus>>,
    times: Arc<RwLock<HashMap<u64, ReplicaTimes>>>,
    commit: Arc<CommitSignal>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl RaftManager {
    pub fn start(
        cfg: QuorumConfig,
        store: DiskStore,
        transport: Arc<dyn RaftTransport>,
    ) -> Result<Arc<RaftManager>, oxka_controller::quorum::QuorumError> {
        let mut node = QuorumNode::new(&cfg, store)?;
        while node.has_ready() {
            node.drive()?;
        }
        let log = node.log().clone();
        let status = Arc::new(RwLock::new(node.status()));
        let commit = Arc::new(CommitSignal::default());
        commit.set(log.commit_index());
        let times = Arc::new(RwLock::new(HashMap::new()));
        let (tx, rx) = sync_channel(EVENT_QUEUE);
        let loop_state = Loop {
            node,
            transport,
            status: status.clone(),
            times: times.clone(),
            commit: commit.clone(),
            pending: Vec::new(),
        };
        let thread = std::thread::Builder::new()
            .name("quorum".into())
            .spawn(move || super::halt_on_panic("quorum", move || loop_state.run(rx)))
            .map_err(oxka_controller::quorum::QuorumError::Io)?;
        Ok(Arc::new(RaftManager {
            events: tx,
            log,
            status,
            times,
            commit,
            thread: Mutex::new(Some(thread)),
        }))
    }

    pub fn log(&self) -> &MetadataLog {
        &self.log
    }

    pub fn commit_signal(&self) -> &Arc<CommitSignal> {
        &self.commit
    }

    pub fn status(&self) -> QuorumStatus {
        self.status.read().clone()
    }

    pub fn replica_times(&self) -> HashMap<u64, ReplicaTimes> {
        self.times.read().clone()
    }

    /// A Raft message from a peer.
    pub fn deliver(&self, msg: WireMessage) {
        if let Err(TrySendError::Full(_)) = self.events.try_send(Event::Message(msg)) {
            tracing::debug!("quorum event queue full; dropped a raft message");
        }
    }

    pub fn report_snapshot(&self, to: u64, delivered: bool) {
        let _ = self.events.try_send(Event::SnapshotReport(to, delivered));
    }

    /// Proposes one batch and waits (up to `timeout`) until it is
    /// committed; returns its offset.
    pub fn propose(&self, data: Vec<u8>, timeout: Duration) -> Result<u64, ProposalFailure> {
        let (tx, rx) = sync_channel(1);
        self.events
            .try_send(Event::Propose(data, tx))
            .map_err(|_| ProposalFailure::Busy)?;
        match rx.recv_timeout(timeout) {
            Ok(r) => r,
            Err(RecvTimeoutError::Timeout) => Err(ProposalFailure::Busy),
            Err(RecvTimeoutError::Disconnected) => Err(ProposalFailure::Lost),
        }
    }

    /// Snapshots the log up to `index` (applied by the publisher).
    pub fn compact(&self, index: u64, data: Vec<u8>) {
        let _ = self.events.try_send(Event::Compact(index, data));
    }

    pub fn shutdown(&self) {
        let _ = self.events.send(Event::Shutdown);
        if let Some(t) = self.thread.lock().take() {
            let _ = t.join();
        }
    }
}

struct Loop {
    node: QuorumNode<DiskStore>,
    transport: Arc<dyn RaftTransport>,
    status: Arc<RwLock<QuorumStatus>>,
    times: Arc<RwLock<HashMap<u64, ReplicaTimes>>>,
    commit: Arc<CommitSignal>,
    pending: Vec<(ProposalId, SyncSender<Result<u64, ProposalFailure>>)>,
}

impl Loop {
    fn run(mut self, rx: Receiver<Event>) {
        let mut next_tick = Instant::now() + TICK;
        loop {
            let now = Instant::now();
            if now >= next_tick {
                self.node.tick();
                next_tick = now + TICK;
            }
            match rx.recv_timeout(next_tick.saturating_duration_since(Instant::now())) {
                Ok(Event::Shutdown) => break,
                Ok(e) => {
                    self.handle(e);
                    // take whatever else is queued before the durable write
                    while let Ok(e) = rx.try_recv() {
                        if matches!(e, Event::Shutdown) {
                            return;
                        }
                        self.handle(e);
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if let Err(e) = self.drive() {
                // The metadata log cannot be written: this node can no
                // longer take part safely. Kafka halts the process.
                tracing::error!(error = %e, "metadata log write failed; stopping the process");
                std::process::exit(1);
            }
        }
    }

    fn handle(&mut self, e: Event) {
        match e {
            Event::Message(m) => {
                // Kafka's voters fetch continuously; a follower's answer
                // to an append or heartbeat is our fetch
                let from = m.from;
                let contact = m.is_follower_contact();
                self.node.step(m);
                let st = contact.then(|| self.node.status());
                // only voters' answers count: `from` is what the peer says
                let progress = st.as_ref().and_then(|st| {
                    st.progress
                        .iter()
                        .find(|p| p.node_id == from)
                        .map(|p| (p.matched, st.last_index))
                });
                if let Some((matched, last_index)) = progress {
                    let now = now_ms();
                    let caught_up = matched >= last_index;
                    let mut t = self.times.write();
                    let entry = t.entry(from).or_default();
                    entry.last_fetch_ms = now;
                    if caught_up {
                        entry.last_caught_up_ms = now;
                    }
                }
            }
            Event::Propose(data, reply) => match self.node.propose(data) {
                Ok(p) => self.pending.push((p, reply)),
                Err(e) => {
                    let _ = reply.try_send(Err(ProposalFailure::Refused(e)));
                }
            },
            Event::Compact(index, data) => match self.node.compact(index, data) {
                Ok(true) => tracing::info!(offset = index, "metadata log snapshot written"),
                Ok(false) => {}
                Err(e) => tracing::error!(error = %e, "cannot write a metadata snapshot"),
            },
            Event::SnapshotReport(to, ok) => self.node.report_snapshot(to, ok),
            Event::Shutdown => {}
        }
    }

    fn drive(&mut self) -> Result<(), oxka_controller::quorum::QuorumError> {
        // one round can make the next possible (a quorum of one commits
        // what it just persisted); a few rounds at most
        for _ in 0..8 {
            self.drive_once()?;
            if !self.node.has_ready() {
                break;
            }
        }
        Ok(())
    }

    fn drive_once(&mut self) -> Result<(), oxka_controller::quorum::QuorumError> {
        let out = self.node.drive()?;
        for m in out.messages {
            let snapshot = m.is_snapshot().then_some(m.to);
            if !self.transport.send(m) {
                if let Some(to) = snapshot {
                    self.node.report_snapshot(to, false);
                }
            }
        }
        if let Some(c) = out.committed_to {
            self.commit.set(c);
        }
        let node = &self.node;
        self.pending
            .retain(|(p, reply)| match node.proposal_outcome(*p) {
                Some(true) => {
                    let _ = reply.try_send(Ok(p.index));
                    false
                }
                Some(false) => {
                    let _ = reply.try_send(Err(ProposalFailure::Lost));
                    false
                }
                None => true,
            });
        let st = self.node.status();
        if st.leader != self.status.read().leader {
            tracing::info!(leader = ?st.leader, term = st.term, "metadata quorum leader");
        }
        *self.status.write() = st;
        Ok(())
    }
}
