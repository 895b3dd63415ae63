//! What the clients saw: every send with its outcome, every read, every
//! transaction, every group commit and rebalance, and every fault, each
//! stamped with milliseconds since the run started. The checker works on
//! this alone, so a history recorded elsewhere (or written by hand in a
//! test) is checked the same way.

use std::sync::Mutex;
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// One observation. Values are unique strings the workloads make
/// (`value_of`), so a value read anywhere names the send it came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// A produce of one record and what the producer was told.
    Send {
        t: u64,
        producer: u32,
        partition: i32,
        value: String,
        outcome: Outcome,
    },
    /// A record a consumer returned. `reader` names the consumer; `session`
    /// counts a group member's assignments (0 for readers outside a group),
    /// so reads of one assignment can be told from the next one's.
    Read {
        t: u64,
        reader: String,
        session: u32,
        partition: i32,
        offset: i64,
        value: String,
        read_committed: bool,
    },
    /// A transaction: its writes (value, partition) and how it ended.
    Txn {
        t: u64,
        producer: u32,
        txn: u64,
        writes: Vec<TxnWrite>,
        outcome: TxnOutcome,
    },
    /// A group member was given `partition`: a new session of its reads
    /// starts.
    Assigned {
        t: u64,
        reader: String,
        session: u32,
        partition: i32,
    },
    /// An offset commit by a group member: `offset` is the next offset to
    /// read. `sent` is when it was sent; `acked` whether the broker
    /// confirmed it (an unconfirmed commit may or may not have landed).
    Commit {
        t: u64,
        sent: u64,
        reader: String,
        partition: i32,
        offset: i64,
        acked: bool,
    },
    /// A fault the nemesis injected or healed.
    Fault { t: u64, what: String },
    /// The final read-back of `partition` after the faults healed: it read
    /// every record from `start` up to `end` (the high watermark, or the
    /// LSO for read_committed) with reader `final`.
    FinalRead {
        t: u64,
        partition: i32,
        start: i64,
        end: i64,
        complete: bool,
    },
}

impl Event {
    pub fn t(&self) -> u64 {
        match self {
            Event::Send { t, .. }
            | Event::Read { t, .. }
            | Event::Txn { t, .. }
            | Event::Assigned { t, .. }
            | Event::Commit { t, .. }
            | Event::Fault { t, .. }
            | Event::FinalRead { t, .. } => *t,
        }
    }
}

/// A send's outcome. A failed send is indeterminate: the broker may have
/// written it before the error (a timeout, a lost connection), so it may
/// show up in reads but is never expected.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    Acked { offset: i64 },
    Failed { error: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxnWrite {
    pub partition: i32,
    pub value: String,
}

/// Committed and aborted are what the producer was told; unknown when the
/// commit or abort failed or the producer was lost (the coordinator then
/// finishes it either way, but all or nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TxnOutcome {
    Committed,
    Aborted,
    Unknown,
}

/// The value a workload writes: `{prefix}{producer}:{seq}`, unique per run.
pub fn value_of(prefix: &str, producer: u32, seq: u64) -> String {
    format!("{prefix}{producer}:{seq}")
}

/// The producer and sequence number of a workload value.
pub fn parse_value(v: &str) -> Option<(u32, u64)> {
    let body = v.trim_start_matches(|c: char| c.is_ascii_alphabetic());
    let (p, s) = body.split_once(':')?;
    Some((p.parse().ok()?, s.parse().ok()?))
}

/// The history of a run, appended to by every workload task. Bounded by
/// the run itself (`--duration` times the workload's rate).
pub struct Recorder {
    start: Instant,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    pub fn new() -> Recorder {
        Recorder {
            start: Instant::now(),
            events: Mutex::new(Vec::new()),
        }
    }

    /// Milliseconds since the run started.
    pub fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    pub fn record(&self, e: Event) {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    pub fn len(&self) -> usize {
        self.events.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The events, ordered by time (ties keep recording order).
    pub fn take(&self) -> Vec<Event> {
        let mut v = std::mem::take(&mut *self.events.lock().unwrap_or_else(|p| p.into_inner()));
        v.sort_by_key(Event::t);
        v
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Recorder::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_name_their_producer_and_sequence() {
        assert_eq!(parse_value(&value_of("a", 3, 17)), Some((3, 17)));
        assert_eq!(parse_value(&value_of("t", 0, 0)), Some((0, 0)));
        assert_eq!(parse_value("garbage"), None);
        assert_eq!(parse_value("a1:x"), None);
    }

    #[test]
    fn events_round_trip_through_json() {
        let e = Event::Send {
            t: 5,
            producer: 1,
            partition: 2,
            value: "a1:7".into(),
            outcome: Outcome::Acked { offset: 9 },
        };
        let s = serde_json::to_string(&e).unwrap();
        assert!(s.contains("\"type\":\"send\""), "{s}");
        assert_eq!(serde_json::from_str::<Event>(&s).unwrap(), e);
    }
}
