//! The metadata quorum's Raft node, as a state machine: the caller feeds
//! it ticks (time), messages from peers and proposals, and calls
//! [`QuorumNode::drive`] to make new state durable and collect what to send.
//! It owns no thread, socket or clock, so the same code runs in the broker
//! (driven by `oxka-broker`'s quorum thread) and in the deterministic
//! simulator (`tests/simulation.rs`).
//!
//! Raft is raft-rs (`raft` crate) with pre-vote and check-quorum: a voter
//! cut off from the majority steps down instead of acting as leader, and a
//! partitioned node rejoining does not disrupt the quorum with a higher
//! term.

pub mod disk;
pub mod log;
pub mod wire;

use std::collections::BTreeMap;

use raft::eraftpb::Message;
use raft::{RawNode, StateRole};

pub use self::log::{Committed, MemStore, MetadataLog, Persisted, QuorumStore};
pub use self::wire::{WireMessage, WireSnapshot};

#[derive(Debug, thiserror::Error)]
pub enum QuorumError {
    #[error("metadata log storage: {0}")]
    Io(#[from] std::io::Error),
    #[error("metadata log is corrupt: {0}")]
    Corrupt(String),
    #[error("raft: {0}")]
    Raft(#[from] raft::Error),
}

#[derive(Debug, Clone)]
pub struct QuorumConfig {
    pub node_id: u64,
    pub voters: Vec<u64>,
    /// Ticks without a leader before a voter campaigns; the timeout is
    /// drawn from `election_tick..max_election_tick`.
    pub election_tick: usize,
    pub max_election_tick: usize,
    pub heartbeat_tick: usize,
}

/// Why a proposal was not taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ProposeError {
    #[error("not the active controller (leader: {leader:?})")]
    NotLeader { leader: Option<u64> },
    #[error("the new active controller has not committed an entry of its term yet")]
    NotReady,
    #[error("the metadata log dir is out of space")]
    NoSpace,
}

/// A proposal's place in the log: committed when the commit index reaches
/// `index` and the entry there still has `term`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProposalId {
    pub term: u64,
    pub index: u64,
}

/// A voter's progress as the leader sees it (DescribeQuorum's replica
/// state; only meaningful on the leader).
#[derive(Debug, Clone, PartialEq)]
pub struct ReplicaProgress {
    pub node_id: u64,
    pub matched: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct QuorumStatus {
    pub node_id: u64,
    pub term: u64,
    pub leader: Option<u64>,
    pub is_leader: bool,
    pub commit: u64,
    pub last_index: u64,
    /// Per voter (leader only; empty elsewhere).
    pub progress: Vec<ReplicaProgress>,
}

/// What one [`QuorumNode::drive`] produced.
#[derive(Debug, Default)]
pub struct Output {
    /// To send, each to `msg.to`.
    pub messages: Vec<WireMessage>,
    /// The commit index moved to this.
    pub committed_to: Option<u64>,
}

pub struct QuorumNode<S: QuorumStore> {
    raw: RawNode<MetadataLog>,
    log: MetadataLog,
    store: S,
    /// (term, vote) last written to the store.
    saved_vote: (u64, u64),
    /// The only voter.
    alone: bool,
}

/// raft-rs logs through slog; its lines go to `tracing` at debug level.
struct SlogToTracing;

impl slog::Drain for SlogToTracing {
    type Ok = ();
    type Err = slog::Never;
    fn log(&self, record: &slog::Record, _: &slog::OwnedKVList) -> Result<(), slog::Never> {
        tracing::debug!(target: "raft", "{}", record.msg());
        Ok(())
    }
}

impl<S: QuorumStore> QuorumNode<S> {
    pub fn new(cfg: &QuorumConfig, mut store: S) -> Result<Self, QuorumError> {
        let persisted = store.load()?;
        let log = MetadataLog::restore(persisted, &cfg.voters)?;
        let applied = log.snapshot_index();
        let rc = raft::Config {
            id: cfg.node_id,
            election_tick: cfg.election_tick,
            min_election_tick: cfg.election_tick,
            max_election_tick: cfg.max_election_tick.max(cfg.election_tick + 1),
            heartbeat_tick: cfg.heartbeat_tick,
            applied,
            max_size_per_msg: 1 << 20,
            max_inflight_msgs: 64,
            check_quorum: true,
            pre_vote: true,
            ..Default::default()
        };
        rc.validate()?;
        let logger = slog::Logger::root(SlogToTracing, slog::o!());
        let hs = log.hard_state();
        let mut raw = RawNode::new(&rc, log.clone(), &logger)?;
        if cfg.voters == [cfg.node_id] {
            // A quorum of one need not wait an election timeout to lead.
            raw.campaign()?;
        }
        Ok(QuorumNode {
            raw,
            log,
            store,
            saved_vote: (hs.term, hs.vote),
            alone: cfg.voters == [cfg.node_id],
        })
    }

    /// The log this node keeps (shared with readers).
    pub fn log(&self) -> &MetadataLog {
        &self.log
    }

    pub fn tick(&mut self) {
        self.raw.tick();
    }

    /// A message from a peer. Malformed ones are dropped (Raft tolerates
    /// loss); ones for another node too.
    pub fn step(&mut self, msg: WireMessage) {
        if msg.to != self.raw.raft.id {
            return;
        }
        match Message::try_from(msg) {
            Ok(m) => {
                if let Err(e) = self.raw.step(m) {
                    tracing::debug!(error = %e, "raft message not taken");
                }
            }
            Err(e) => tracing::warn!(error = %e, "dropped a malformed raft message"),
        }
    }

    /// True when this node leads and has committed an entry of its own
    /// term, so its view holds every committed entry (Raft §8: a new
    /// leader's no-op). Only then may the controller decide.
    pub fn is_ready_leader(&self) -> bool {
        let r = &self.raw.raft;
        r.state == StateRole::Leader && self.log.term_of(self.log.commit_index()) == Some(r.term)
    }

    pub fn propose(&mut self, data: Vec<u8>) -> Result<ProposalId, ProposeError> {
        if self.raw.raft.state != StateRole::Leader {
            return Err(ProposeError::NotLeader {
                leader: self.leader(),
            });
        }
        if !self.is_ready_leader() {
            return Err(ProposeError::NotReady);
        }
        if !self.store.has_room(data.len()) {
            return Err(ProposeError::NoSpace);
        }
        self.raw
            .propose(Vec::new(), data)
            .map_err(|_| ProposeError::NotLeader {
                leader: self.leader(),
            })?;
        Ok(ProposalId {
            term: self.raw.raft.term,
            index: self.raw.raft.raft_log.last_index(),
        })
    }

    /// Whether a proposal committed (Some(true)), was overwritten by
    /// another leader's entry (Some(false)), or is still pending (None).
    pub fn proposal_outcome(&self, p: ProposalId) -> Option<bool> {
        if self.log.commit_index() < p.index {
            // A later term at that index means it is gone for good.
            return match self.log.term_of(p.index) {
                Some(t) if t != p.term => Some(false),
                _ if self.raw.raft.term > p.term
                    && self.raw.raft.state != StateRole::Leader
                    && self.log.term_of(p.index).is_none() =>
                {
                    Some(false)
                }
                _ => None,
            };
        }
        match self.log.term_of(p.index) {
            Some(t) => Some(t == p.term),
            // Compacted into a snapshot: it was committed, but whose entry
            // it was is no longer known; the caller applied it by then.
            None => Some(true),
        }
    }

    pub fn leader(&self) -> Option<u64> {
        match self.raw.raft.leader_id {
            0 => None,
            id => Some(id),
        }
    }

    pub fn status(&self) -> QuorumStatus {
        let r = &self.raw.raft;
        let is_leader = r.state == StateRole::Leader;
        let progress = if is_leader {
            let mut v: BTreeMap<u64, u64> = BTreeMap::new();
            for (id, pr) in r.prs().iter() {
                v.insert(*id, pr.matched);
            }
            v.into_iter()
                .map(|(node_id, matched)| ReplicaProgress { node_id, matched })
                .collect()
        } else {
            Vec::new()
        };
        QuorumStatus {
            node_id: r.id,
            term: r.term,
            leader: self.leader(),
            is_leader,
            commit: self.log.commit_index(),
            last_index: self.log.last_index(),
            progress,
        }
    }

    /// Raft has something to make durable or send.
    pub fn has_ready(&self) -> bool {
        self.raw.has_ready()
    }

    /// Makes everything Raft decided since the last call durable, in
    /// Raft's order, and returns what to send.
    pub fn drive(&mut self) -> Result<Output, QuorumError> {
        let mut out = Output::default();
        if !self.raw.has_ready() {
            return Ok(out);
        }
        let before = self.log.commit_index();
        let mut ready = self.raw.ready();
        push(&mut out.messages, ready.take_messages());
        if !ready.snapshot().is_empty() {
            let (snap, rest) = self.log.apply_snapshot(ready.snapshot().clone());
            self.store.save_snapshot(&snap, &rest)?;
        }
        if !ready.entries().is_empty() {
            let entries = ready.take_entries();
            let replace = self.log.append(&entries);
            let wire: Vec<_> = entries.iter().map(wire::WireEntry::from).collect();
            self.store.append(&wire, replace)?;
        }
        if let Some(hs) = ready.hs() {
            self.log.set_hard_state(hs);
            // Term and vote must be durable before any message that depends
            // on them leaves; the commit index need not be (a restarted node
            // learns it again from the leader), so it is written only along.
            if (hs.term, hs.vote) != self.saved_vote {
                match self.store.save_hard_state(&hs.into()) {
                    Ok(()) => self.saved_vote = (hs.term, hs.vote),
                    // A quorum of one has nobody to vote against it: a term
                    // forgotten in a crash is taken again harmlessly, so a
                    // full disk need not stop it (it retries next round).
                    Err(e) if self.alone => {
                        tracing::warn!(error = %e, "cannot write the quorum state; retrying")
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
        push(&mut out.messages, ready.take_persisted_messages());
        let mut light = self.raw.advance(ready);
        if let Some(commit) = light.commit_index() {
            self.log.set_commit(commit);
        }
        push(&mut out.messages, light.take_messages());
        self.raw.advance_apply();
        let after = self.log.commit_index();
        if after != before {
            out.committed_to = Some(after);
        }
        Ok(out)
    }

    /// Replaces the log up to `index` (already applied by the caller) with
    /// a snapshot holding `data`, so start-up and catch-up replay less.
    pub fn compact(&mut self, index: u64, data: Vec<u8>) -> Result<bool, QuorumError> {
        match self.log.compact(index, data) {
            Some((snap, rest)) => {
                self.store.save_snapshot(&snap, &rest)?;
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// How sending a snapshot to `node` went: raft-rs holds replication to
    /// a node that was sent one until told (a lost snapshot would stall it).
    pub fn report_snapshot(&mut self, node: u64, delivered: bool) {
        let status = if delivered {
            raft::SnapshotStatus::Finish
        } else {
            raft::SnapshotStatus::Failure
        };
        self.raw.report_snapshot(node, status);
    }
}

fn push(out: &mut Vec<WireMessage>, msgs: Vec<Message>) {
    out.extend(msgs.iter().map(WireMessage::from));
}
