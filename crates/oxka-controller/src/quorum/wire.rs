//! Raft's messages, entries and snapshots in our own serde form: what goes
//! on the controller listener and into the metadata log's files. raft-rs
//! types are protobuf structs; converting them keeps protobuf's parser (and
//! its unbounded recursion on crafted input) away from bytes a peer sent.

use bytes::Bytes;
use protobuf::ProtobufEnum;
use raft::eraftpb::{
    ConfState, Entry, EntryType, HardState, Message, MessageType, Snapshot, SnapshotMetadata,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireEntry {
    pub entry_type: i32,
    pub term: u64,
    pub index: u64,
    pub data: Vec<u8>,
    pub context: Vec<u8>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WireSnapshot {
    pub index: u64,
    pub term: u64,
    pub voters: Vec<u64>,
    pub learners: Vec<u64>,
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WireMessage {
    pub msg_type: i32,
    pub to: u64,
    pub from: u64,
    pub term: u64,
    pub log_term: u64,
    pub index: u64,
    pub entries: Vec<WireEntry>,
    pub commit: u64,
    pub commit_term: u64,
    pub snapshot: Option<WireSnapshot>,
    pub request_snapshot: u64,
    pub reject: bool,
    pub reject_hint: u64,
    pub context: Vec<u8>,
    pub priority: i64,
}

impl WireMessage {
    /// A leader's snapshot for a follower far behind: its sender must hear
    /// whether it arrived ([`super::QuorumNode::report_snapshot`]).
    pub fn is_snapshot(&self) -> bool {
        self.msg_type == MessageType::MsgSnapshot.value()
    }

    /// A follower answering the leader's append or heartbeat: it is in
    /// contact (what DescribeQuorum reports as its last fetch).
    pub fn is_follower_contact(&self) -> bool {
        self.msg_type == MessageType::MsgAppendResponse.value()
            || self.msg_type == MessageType::MsgHeartbeatResponse.value()
    }
}

#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, PartialEq)]
pub struct WireHardState {
    pub term: u64,
    pub vote: u64,
    pub commit: u64,
}

#[derive(Debug, thiserror::Error)]
#[error("invalid raft message: {0}")]
pub struct WireError(pub String);

impl From<&Entry> for WireEntry {
    fn from(e: &Entry) -> Self {
        WireEntry {
            entry_type: e.get_entry_type().value(),
            term: e.term,
            index: e.index,
            data: e.data.to_vec(),
            context: e.context.to_vec(),
        }
    }
}

impl TryFrom<WireEntry> for Entry {
    type Error = WireError;
    fn try_from(w: WireEntry) -> Result<Self, WireError> {
        let mut e = Entry::default();
        e.set_entry_type(
            EntryType::from_i32(w.entry_type)
                .ok_or_else(|| WireError(format!("entry type {}", w.entry_type)))?,
        );
        e.term = w.term;
        e.index = w.index;
        e.data = Bytes::from(w.data);
        e.context = Bytes::from(w.context);
        Ok(e)
    }
}

impl From<&Snapshot> for WireSnapshot {
    fn from(s: &Snapshot) -> Self {
        let m = s.get_metadata();
        WireSnapshot {
            index: m.index,
            term: m.term,
            voters: m.get_conf_state().voters.clone(),
            learners: m.get_conf_state().learners.clone(),
            data: s.data.to_vec(),
        }
    }
}

impl From<WireSnapshot> for Snapshot {
    fn from(w: WireSnapshot) -> Self {
        let cs = ConfState {
            voters: w.voters,
            learners: w.learners,
            ..Default::default()
        };
        let mut m = SnapshotMetadata {
            index: w.index,
            term: w.term,
            ..Default::default()
        };
        m.set_conf_state(cs);
        let mut s = Snapshot::default();
        s.set_metadata(m);
        s.data = Bytes::from(w.data);
        s
    }
}

impl From<&HardState> for WireHardState {
    fn from(h: &HardState) -> Self {
        WireHardState {
            term: h.term,
            vote: h.vote,
            commit: h.commit,
        }
    }
}

impl From<WireHardState> for HardState {
    fn from(w: WireHardState) -> Self {
        HardState {
            term: w.term,
            vote: w.vote,
            commit: w.commit,
            ..Default::default()
        }
    }
}

impl From<&Message> for WireMessage {
    fn from(m: &Message) -> Self {
        WireMessage {
            msg_type: m.get_msg_type().value(),
            to: m.to,
            from: m.from,
            term: m.term,
            log_term: m.log_term,
            index: m.index,
            entries: m.entries.iter().map(WireEntry::from).collect(),
            commit: m.commit,
            commit_term: m.commit_term,
            snapshot: m.snapshot.as_ref().map(WireSnapshot::from),
            request_snapshot: m.request_snapshot,
            reject: m.reject,
            reject_hint: m.reject_hint,
            context: m.context.to_vec(),
            priority: m.priority,
        }
    }
}

impl TryFrom<WireMessage> for Message {
    type Error = WireError;
    fn try_from(w: WireMessage) -> Result<Self, WireError> {
        let mut m = Message::default();
        m.set_msg_type(
            MessageType::from_i32(w.msg_type)
                .ok_or_else(|| WireError(format!("message type {}", w.msg_type)))?,
        );
        m.to = w.to;
        m.from = w.from;
        m.term = w.term;
        m.log_term = w.log_term;
        m.index = w.index;
        m.entries = w
            .entries
            .into_iter()
            .map(Entry::try_from)
            .collect::<Result<Vec<_>, _>>()?
            .into();
        m.commit = w.commit;
        m.commit_term = w.commit_term;
        if let Some(s) = w.snapshot {
            m.set_snapshot(s.into());
        }
        m.request_snapshot = w.request_snapshot;
        m.reject = w.reject;
        m.reject_hint = w.reject_hint;
        m.context = Bytes::from(w.context);
        m.priority = w.priority;
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_round_trip() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.to = 2;
        m.from = 1;
        m.term = 3;
        let e = Entry {
            index: 5,
            term: 3,
            data: Bytes::from_static(b"{}"),
            ..Default::default()
        };
        m.entries = vec![e].into();
        let w = WireMessage::from(&m);
        let bytes = postcard::to_stdvec(&w).unwrap();
        let back: WireMessage = postcard::from_bytes(&bytes).unwrap();
        assert_eq!(Message::try_from(back).unwrap(), m);
        let mut bad = w.clone();
        bad.msg_type = 9999;
        assert!(Message::try_from(bad).is_err());
    }
}
