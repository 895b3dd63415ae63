//! The `__cluster_metadata` log as Raft sees it: entries after the latest
//! snapshot, the hard state (term, vote, commit) and the snapshot itself.
//! [`MetadataLog`] is the in-memory copy raft-rs reads through its `Storage`
//! trait and the publisher reads committed batches from; a [`QuorumStore`]
//! makes each change durable before Raft acts on it (disk in a node, memory
//! that survives simulated crashes in the simulator).

use std::sync::Arc;

use parking_lot::RwLock;
use raft::eraftpb::{ConfState, Entry, HardState, Snapshot};
use raft::{GetEntriesContext, RaftState, Storage, StorageError};

use super::wire::{WireEntry, WireHardState, WireSnapshot};

/// What a store hands back at start-up.
#[derive(Debug, Clone, Default)]
pub struct Persisted {
    pub hard_state: WireHardState,
    pub snapshot: WireSnapshot,
    pub entries: Vec<WireEntry>,
}

/// Durable home of the metadata log. Each call returns only once the
/// change would survive a crash (Raft's votes and acknowledged entries
/// depend on it).
pub trait QuorumStore: Send {
    fn load(&mut self) -> std::io::Result<Persisted>;
    /// Appends entries; when `first` is at or below the last stored index
    /// the entries from `first` on are replaced (a new leader overwrote an
    /// uncommitted tail).
    fn append(&mut self, entries: &[WireEntry], replace_from: Option<u64>) -> std::io::Result<()>;
    fn save_hard_state(&mut self, hs: &WireHardState) -> std::io::Result<()>;
    /// Stores a snapshot and keeps only `remaining` (the entries after it).
    fn save_snapshot(
        &mut self,
        snapshot: &WireSnapshot,
        remaining: &[WireEntry],
    ) -> std::io::Result<()>;
    /// Whether `bytes` more would fit: a leader refuses a proposal that
    /// would not (a failed append of the metadata log stops the node).
    fn has_room(&self, _bytes: usize) -> bool {
        true
    }
}

/// A store in memory: the simulator's disk, which outlives a node's crash.
#[derive(Debug, Clone, Default)]
pub struct MemStore {
    pub persisted: Arc<RwLock<Persisted>>,
}

impl QuorumStore for MemStore {
    fn load(&mut self) -> std::io::Result<Persisted> {
        Ok(self.persisted.read().clone())
    }
    fn append(&mut self, entries: &[WireEntry], replace_from: Option<u64>) -> std::io::Result<()> {
        let mut p = self.persisted.write();
        if let Some(from) = replace_from {
            p.entries.retain(|e| e.index < from);
        }
        p.entries.extend_from_slice(entries);
        Ok(())
    }
    fn save_hard_state(&mut self, hs: &WireHardState) -> std::io::Result<()> {
        self.persisted.write().hard_state = *hs;
        Ok(())
    }
    fn save_snapshot(
        &mut self,
        snapshot: &WireSnapshot,
        remaining: &[WireEntry],
    ) -> std::io::Result<()> {
        let mut p = self.persisted.write();
        p.snapshot = snapshot.clone();
        p.entries = remaining.to_vec();
        Ok(())
    }
}

#[derive(Debug, Default)]
struct Core {
    hard_state: HardState,
    conf_state: ConfState,
    snapshot: Snapshot,
    /// Entries after the snapshot, dense.
    entries: Vec<Entry>,
}

impl Core {
    fn snap_index(&self) -> u64 {
        self.snapshot.get_metadata().index
    }
    fn first_index(&self) -> u64 {
        self.snap_index() + 1
    }
    fn last_index(&self) -> u64 {
        self.snap_index() + self.entries.len() as u64
    }
}

/// What the publisher reads: either the batches after what it applied, or
/// (when those were compacted into a snapshot it has not seen) the snapshot.
#[derive(Debug, Clone, PartialEq)]
pub enum Committed {
    Entries(Vec<(u64, Vec<u8>)>),
    Snapshot { index: u64, data: Vec<u8> },
}

/// The in-memory metadata log, shared by the Raft node and readers.
#[derive(Debug, Clone, Default)]
pub struct MetadataLog {
    core: Arc<RwLock<Core>>,
}

impl MetadataLog {
    /// Rebuilds the log from what a store persisted; `voters` is the
    /// configured quorum, used when nothing is persisted yet.
    pub fn restore(p: Persisted, voters: &[u64]) -> Result<Self, super::QuorumError> {
        let mut snapshot: Snapshot = p.snapshot.into();
        if snapshot.get_metadata().get_conf_state().voters.is_empty() {
            snapshot
                .mut_metadata()
                .mut_conf_state()
                .voters
                .extend_from_slice(voters);
        }
        let conf_state = snapshot.get_metadata().get_conf_state().clone();
        let mut entries = Vec::with_capacity(p.entries.len());
        let mut next = snapshot.get_metadata().index + 1;
        for w in p.entries {
            if w.index < next {
                continue;
            }
            if w.index != next {
                return Err(super::QuorumError::Corrupt(format!(
                    "metadata log entry {} follows {}",
                    w.index,
                    next - 1
                )));
            }
            next += 1;
            entries.push(Entry::try_from(w).map_err(|e| super::QuorumError::Corrupt(e.0))?);
        }
        let mut hard_state: HardState = p.hard_state.into();
        let last = next - 1;
        hard_state.commit = hard_state.commit.clamp(
            snapshot.get_metadata().index,
            last.max(snapshot.get_metadata().index),
        );
        Ok(MetadataLog {
            core: Arc::new(RwLock::new(Core {
                hard_state,
                conf_state,
                snapshot,
                entries,
            })),
        })
    }

    pub fn commit_index(&self) -> u64 {
        self.core.read().hard_state.commit
    }

    pub fn last_index(&self) -> u64 {
        self.core.read().last_index()
    }

    pub fn snapshot_index(&self) -> u64 {
        self.core.read().snap_index()
    }

    /// Bytes of entries kept after the snapshot (what the next snapshot
    /// would let go).
    pub fn bytes_since_snapshot(&self) -> u64 {
        self.core
            .read()
            .entries
            .iter()
            .map(|e| e.data.len() as u64 + 24)
            .sum()
    }

    /// Committed batches after `applied`, up to about `max_bytes` (at least
    /// one), or the snapshot if they were compacted away.
    pub fn committed_after(&self, applied: u64, max_bytes: usize) -> Committed {
        let c = self.core.read();
        if applied < c.snap_index() {
            return Committed::Snapshot {
                index: c.snap_index(),
                data: c.snapshot.data.to_vec(),
            };
        }
        let first = c.first_index();
        let mut out = Vec::new();
        let mut bytes = 0;
        for i in applied + 1..=c.hard_state.commit {
            let e = &c.entries[(i - first) as usize];
            if !out.is_empty() && bytes + e.data.len() > max_bytes {
                break;
            }
            bytes += e.data.len();
            out.push((i, e.data.to_vec()));
        }
        Committed::Entries(out)
    }

    /// A broker that follows the log without voting appends what a voter
    /// reported committed (entries after its last one, dense).
    pub fn follow_append(&self, entries: &[(u64, Vec<u8>)], commit: u64) {
        let mut c = self.core.write();
        for (index, data) in entries {
            if *index != c.last_index() + 1 {
                continue;
            }
            c.entries.push(Entry {
                index: *index,
                data: data.clone().into(),
                ..Default::default()
            });
        }
        let last = c.last_index();
        c.hard_state.commit = commit.min(last).max(c.hard_state.commit);
    }

    /// A following broker starts over from a voter's snapshot.
    pub fn follow_snapshot(&self, snap: WireSnapshot) {
        let mut c = self.core.write();
        let index = snap.index;
        c.entries.clear();
        c.snapshot = snap.into();
        c.hard_state.commit = index;
    }

    /// Keeps only the entries after `index` (a following broker's own
    /// bound on memory: it can always fetch a snapshot again).
    pub fn follow_compact(&self, index: u64, data: Vec<u8>) {
        let mut c = self.core.write();
        if index <= c.snap_index() || index > c.hard_state.commit {
            return;
        }
        let drop = (index - c.snap_index()) as usize;
        c.entries.drain(..drop);
        c.snapshot.mut_metadata().index = index;
        c.snapshot.data = data.into();
    }

    /// The latest snapshot, for a follower that must start from it.
    pub fn snapshot(&self) -> WireSnapshot {
        WireSnapshot::from(&self.core.read().snapshot)
    }

    /// The term of the entry at `index`, if the log still has it.
    pub fn term_of(&self, index: u64) -> Option<u64> {
        self.term(index).ok()
    }

    pub(super) fn append(&self, entries: &[Entry]) -> Option<u64> {
        let first = entries.first().map(|e| e.index)?;
        let mut c = self.core.write();
        let replace = first <= c.last_index();
        let keep = (first - c.first_index()) as usize;
        c.entries.truncate(keep);
        c.entries.extend_from_slice(entries);
        replace.then_some(first)
    }

    pub(super) fn set_hard_state(&self, hs: &HardState) {
        self.core.write().hard_state = hs.clone();
    }

    pub(super) fn set_commit(&self, commit: u64) {
        let mut c = self.core.write();
        c.hard_state.commit = commit.max(c.hard_state.commit);
    }

    pub(super) fn hard_state(&self) -> HardState {
        self.core.read().hard_state.clone()
    }

    /// Installs a snapshot the leader sent: everything before it goes.
    pub(super) fn apply_snapshot(&self, snap: Snapshot) -> (WireSnapshot, Vec<WireEntry>) {
        let mut c = self.core.write();
        let m = snap.get_metadata();
        let index = m.index;
        let keep_from = c
            .entries
            .iter()
            .position(|e| e.index == index + 1 && c_term(&c, index) == Some(m.term));
        let rest: Vec<Entry> = match keep_from {
            Some(p) => c.entries.split_off(p),
            None => Vec::new(),
        };
        c.conf_state = m.get_conf_state().clone();
        c.hard_state.commit = c.hard_state.commit.max(index);
        if c.hard_state.term < m.term {
            c.hard_state.term = m.term;
        }
        c.entries = rest;
        c.snapshot = snap;
        (
            WireSnapshot::from(&c.snapshot),
            c.entries.iter().map(WireEntry::from).collect(),
        )
    }

    /// Compacts the log up to `index` (applied by the caller) into a
    /// snapshot holding `data`.
    pub(super) fn compact(
        &self,
        index: u64,
        data: Vec<u8>,
    ) -> Option<(WireSnapshot, Vec<WireEntry>)> {
        let mut c = self.core.write();
        if index <= c.snap_index() || index > c.hard_state.commit {
            return None;
        }
        let term = c_term(&c, index)?;
        let drop = (index - c.snap_index()) as usize;
        c.entries.drain(..drop);
        let conf = c.conf_state.clone();
        let m = c.snapshot.mut_metadata();
        m.index = index;
        m.term = term;
        m.set_conf_state(conf);
        c.snapshot.data = data.into();
        Some((
            WireSnapshot::from(&c.snapshot),
            c.entries.iter().map(WireEntry::from).collect(),
        ))
    }
}

fn c_term(c: &Core, idx: u64) -> Option<u64> {
    if idx == c.snap_index() {
        return Some(c.snapshot.get_metadata().term);
    }
    if idx < c.first_index() || idx > c.last_index() {
        return None;
    }
    Some(c.entries[(idx - c.first_index()) as usize].term)
}

impl Storage for MetadataLog {
    fn initial_state(&self) -> raft::Result<RaftState> {
        let c = self.core.read();
        Ok(RaftState::new(c.hard_state.clone(), c.conf_state.clone()))
    }

    fn entries(
        &self,
        low: u64,
        high: u64,
        max_size: impl Into<Option<u64>>,
        _context: GetEntriesContext,
    ) -> raft::Result<Vec<Entry>> {
        let c = self.core.read();
        if low < c.first_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        if high > c.last_index() + 1 {
            return Err(raft::Error::Store(StorageError::Unavailable));
        }
        let first = c.first_index();
        let mut ents = c.entries[(low - first) as usize..(high - first) as usize].to_vec();
        raft::util::limit_size(&mut ents, max_size.into());
        Ok(ents)
    }

    fn term(&self, idx: u64) -> raft::Result<u64> {
        let c = self.core.read();
        if idx < c.snap_index() {
            return Err(raft::Error::Store(StorageError::Compacted));
        }
        c_term(&c, idx).ok_or(raft::Error::Store(StorageError::Unavailable))
    }

    fn first_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().first_index())
    }

    fn last_index(&self) -> raft::Result<u64> {
        Ok(self.core.read().last_index())
    }

    fn snapshot(&self, _request_index: u64, _to: u64) -> raft::Result<Snapshot> {
        let c = self.core.read();
        let mut s = c.snapshot.clone();
        // A snapshot always carries the current configuration.
        s.mut_metadata().set_conf_state(c.conf_state.clone());
        Ok(s)
    }
}
