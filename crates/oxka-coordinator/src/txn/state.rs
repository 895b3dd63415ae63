//! Kafka's transaction state machine and the metadata kept per
//! transactional id.

use std::collections::{BTreeMap, BTreeSet};

use oxka_log::TopicPartition;

use super::records::TxnLogValue;

/// Kafka's TransactionState, with its ids (as stored in the log) and names
/// (as ListTransactions/DescribeTransactions report them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TxnState {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
    Dead,
    PrepareEpochFence,
}

impl TxnState {
    pub const ALL: [TxnState; 8] = [
        TxnState::Empty,
        TxnState::Ongoing,
        TxnState::PrepareCommit,
        TxnState::PrepareAbort,
        TxnState::CompleteCommit,
        TxnState::CompleteAbort,
        TxnState::Dead,
        TxnState::PrepareEpochFence,
    ];

    pub fn id(self) -> i8 {
        match self {
            TxnState::Empty => 0,
            TxnState::Ongoing => 1,
            TxnState::PrepareCommit => 2,
            TxnState::PrepareAbort => 3,
            TxnState::CompleteCommit => 4,
            TxnState::CompleteAbort => 5,
            TxnState::Dead => 6,
            TxnState::PrepareEpochFence => 7,
        }
    }

    pub fn from_id(id: i8) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.id() == id)
    }

    pub fn name(self) -> &'static str {
        match self {
            TxnState::Empty => "Empty",
            TxnState::Ongoing => "Ongoing",
            TxnState::PrepareCommit => "PrepareCommit",
            TxnState::PrepareAbort => "PrepareAbort",
            TxnState::CompleteCommit => "CompleteCommit",
            TxnState::CompleteAbort => "CompleteAbort",
            TxnState::Dead => "Dead",
            TxnState::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    pub fn from_name(name: &str) -> Option<TxnState> {
        TxnState::ALL.into_iter().find(|s| s.name() == name)
    }

    /// Kafka's `validPreviousStates`: the transitions the coordinator may
    /// make into `self`.
    pub fn may_follow(self, prev: TxnState) -> bool {
        use TxnState::*;
        match self {
            Empty => matches!(prev, Empty | CompleteCommit | CompleteAbort),
            Ongoing => matches!(prev, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareCommit => prev == Ongoing,
            // transaction version 2 may abort with nothing open
            PrepareAbort => matches!(prev, Ongoing | Empty | CompleteCommit | CompleteAbort),
            PrepareEpochFence => prev == Ongoing,
            CompleteCommit => prev == PrepareCommit,
            CompleteAbort => matches!(prev, PrepareAbort | PrepareEpochFence),
            Dead => matches!(prev, Empty | CompleteCommit | CompleteAbort),
        }
    }
}

/// Kafka's `TransactionVersion` levels: what a client's request versions
/// say it implements. 2 (KIP-890 part 2) bumps the epoch at every commit
/// and abort; 0 and 1 keep one epoch per producer session.
pub const TV_0: i16 = 0;
/// Transaction version 2 (EndTxn v5+, AddPartitionsToTxn v4+, Produce v12+,
/// TxnOffsetCommit v5+).
pub const TV_2: i16 = 2;

/// What the coordinator knows about one transactional id.
#[derive(Clone, Debug)]
pub struct TxnMetadata {
    pub transactional_id: String,
    pub producer_id: i64,
    /// The id/epoch before the last bump, so a retried InitProducerId
    /// (KIP-360) is recognised. Not persisted (Kafka's log value has no
    /// such field either).
    pub last_producer_id: i64,
    pub last_producer_epoch: i16,
    /// The producer id before the last transition (Kafka's
    /// `previousProducerId`): after a transaction version 2 completion
    /// rolled the id over, a retried EndTxn names this one.
    pub previous_producer_id: i64,
    /// Between a transaction version 2 Prepare* whose epoch bump exhausted
    /// the epochs and its completion: the id the completion rolls over to.
    pub next_producer_id: i64,
    /// The transaction version of the client's current (or last)
    /// transaction; decides how it ends.
    pub client_transaction_version: i16,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    pub partitions: BTreeSet<TopicPartition>,
    pub start_ms: i64,
    pub last_update_ms: i64,
}

impl TxnMetadata {
    pub fn to_value(&self) -> TxnLogValue {
        let mut by_topic: BTreeMap<String, Vec<i32>> = BTreeMap::new();
        for tp in &self.partitions {
            by_topic
                .entry(tp.topic.clone())
                .or_default()
                .push(tp.partition);
        }
        TxnLogValue {
            producer_id: self.producer_id,
            previous_producer_id: self.previous_producer_id,
            next_producer_id: self.next_producer_id,
            client_transaction_version: self.client_transaction_version,
            producer_epoch: self.producer_epoch,
            timeout_ms: self.timeout_ms,
            state: self.state,
            partitions: by_topic.into_iter().collect(),
            last_update_ms: self.last_update_ms,
            start_ms: self.start_ms,
        }
    }

    pub fn from_value(id: &str, v: TxnLogValue) -> TxnMetadata {
        TxnMetadata {
            transactional_id: id.to_string(),
            producer_id: v.producer_id,
            last_producer_id: -1,
            last_producer_epoch: -1,
            previous_producer_id: v.previous_producer_id,
            next_producer_id: v.next_producer_id,
            client_transaction_version: v.client_transaction_version,
            producer_epoch: v.producer_epoch,
            timeout_ms: v.timeout_ms,
            state: v.state,
            partitions: v
                .partitions
                .into_iter()
                .flat_map(|(t, ps)| {
                    ps.into_iter()
                        .map(move |p| TopicPartition::new(t.clone(), p))
                })
                .collect(),
            start_ms: v.start_ms,
            last_update_ms: v.last_update_ms,
        }
    }

    /// Whether this transaction ends with an epoch bump (KIP-890 part 2).
    pub fn supports_epoch_bump(&self) -> bool {
        self.client_transaction_version >= TV_2
    }

    /// Partitions grouped by topic, for the describe APIs.
    pub fn topics(&self) -> Vec<(String, Vec<i32>)> {
        self.to_value().partitions
    }
}
