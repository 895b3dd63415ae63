//! The checker: anomalies in a history (`history::Event`s), judged against
//! Kafka's guarantees for the settings the run used.
//!
//! Invariants (docs/reliability.md lists them for users):
//! - lost write: a send acknowledged to the producer is missing from the
//!   final read of its partition (or a committed transaction's write is);
//! - duplicate: one value at two offsets;
//! - reorder: a producer's values out of its send order within a partition;
//! - offset conflict: one offset seen holding two values (two reads, or a
//!   read and the offset the send was acknowledged at);
//! - aborted read / uncommitted read / partial transaction: read_committed
//!   showed a write of an aborted transaction, of one that never committed,
//!   or only part of a committed one;
//! - group resumed below committed / group skip: a group member started
//!   below the offset the group had committed, or records were never
//!   handed to any member between what was committed and what it read;
//! - phantom read: a value no producer ever sent (or in the wrong
//!   partition);
//! - incomplete final read: the read-back could not reach the end of a
//!   partition, so losses cannot be ruled out.
//!
//! With `acks` other than `all`, with unclean leader election, or with
//! power cuts while a write needs only one in-sync copy
//! (`min.insync.replicas` < 2: Kafka does not fsync each write, it counts
//! on the other replicas) a lost write (and the offset conflicts it
//! leaves) is what Kafka promises too: reported as expected, not as an
//! anomaly. Without idempotence a retried
//! send may be written twice: duplicates are expected then.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::{Deserialize, Serialize};

use crate::history::{parse_value, Event, Outcome, TxnOutcome};

/// The reader name of the final read-back.
pub const FINAL_READER: &str = "final";

/// At most this many anomalies of one kind are kept with their events;
/// the rest are only counted.
const KEEP_PER_KIND: usize = 50;

/// The settings the run used, which decide what Kafka promises.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Expect {
    /// acks=all (with min.insync.replicas >= 2 in a cluster).
    pub acks_all: bool,
    /// The producers were idempotent.
    pub idempotent: bool,
    /// Unclean leader election was enabled.
    pub unclean: bool,
    /// Power cuts were injected while an acknowledged write may have had
    /// a single in-sync copy (min.insync.replicas < 2, e.g. one node).
    #[serde(default)]
    pub unsynced_loss: bool,
}

impl Default for Expect {
    fn default() -> Expect {
        Expect {
            acks_all: true,
            idempotent: true,
            unclean: false,
            unsynced_loss: false,
        }
    }
}

impl Expect {
    fn loss_expected(&self) -> bool {
        !self.acks_all || self.unclean || self.unsynced_loss
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    LostWrite,
    Duplicate,
    Reorder,
    OffsetConflict,
    AbortedRead,
    UncommittedRead,
    PartialTxn,
    GroupResumedBelowCommitted,
    GroupSkip,
    PhantomRead,
    IncompleteFinalRead,
}

impl Kind {
    pub fn name(&self) -> &'static str {
        match self {
            Kind::LostWrite => "lost write",
            Kind::Duplicate => "duplicate",
            Kind::Reorder => "reorder",
            Kind::OffsetConflict => "offset conflict",
            Kind::AbortedRead => "aborted read",
            Kind::UncommittedRead => "uncommitted read",
            Kind::PartialTxn => "partial transaction",
            Kind::GroupResumedBelowCommitted => "group resumed below committed",
            Kind::GroupSkip => "group skipped records",
            Kind::PhantomRead => "phantom read",
            Kind::IncompleteFinalRead => "incomplete final read",
        }
    }

    pub const ALL: [Kind; 11] = [
        Kind::LostWrite,
        Kind::Duplicate,
        Kind::Reorder,
        Kind::OffsetConflict,
        Kind::AbortedRead,
        Kind::UncommittedRead,
        Kind::PartialTxn,
        Kind::GroupResumedBelowCommitted,
        Kind::GroupSkip,
        Kind::PhantomRead,
        Kind::IncompleteFinalRead,
    ];
}

/// One finding, with the events that show it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Anomaly {
    pub kind: Kind,
    /// Allowed by the run's settings (acks=1, unclean election, no
    /// idempotence): reported, but not a failure.
    pub expected: bool,
    pub partition: Option<i32>,
    pub message: String,
    pub events: Vec<Event>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Stats {
    pub sends: u64,
    pub acked: u64,
    pub failed: u64,
    pub reads: u64,
    pub final_records: u64,
    pub txns_committed: u64,
    pub txns_aborted: u64,
    pub txns_unknown: u64,
    pub commits: u64,
    pub rebalances: u64,
    pub faults: u64,
}

/// Counts per kind: (unexpected, expected), including those not kept.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Counts(pub BTreeMap<Kind, (u64, u64)>);

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Analysis {
    pub stats: Stats,
    pub counts: Counts,
    pub anomalies: Vec<Anomaly>,
}

impl Analysis {
    /// Anomalies that break the run's guarantees (expected ones excluded).
    pub fn failures(&self) -> u64 {
        self.counts.0.values().map(|(u, _)| u).sum()
    }

    pub fn expected(&self) -> u64 {
        self.counts.0.values().map(|(_, e)| e).sum()
    }

    fn add(&mut self, a: Anomaly) {
        let c = self.counts.0.entry(a.kind).or_default();
        let n = if a.expected { &mut c.1 } else { &mut c.0 };
        *n += 1;
        if *n as usize <= KEEP_PER_KIND {
            self.anomalies.push(a);
        }
    }
}

struct SendInfo<'a> {
    event: &'a Event,
    partition: i32,
    acked: Option<i64>,
}

struct TxnInfo<'a> {
    event: &'a Event,
    outcome: TxnOutcome,
    /// (partition, value)
    writes: Vec<(i32, &'a str)>,
}

/// Checks a history. `events` in time order (as `Recorder::take` gives).
pub fn check(events: &[Event], expect: Expect) -> Analysis {
    let mut out = Analysis::default();
    let loss_expected = expect.loss_expected();

    // --- index what was written ----------------------------------------
    let mut sends: HashMap<&str, SendInfo> = HashMap::new();
    let mut txns: Vec<TxnInfo> = Vec::new();
    let mut txn_of: HashMap<&str, usize> = HashMap::new();
    for e in events {
        match e {
            Event::Send {
                partition,
                value,
                outcome,
                ..
            } => {
                out.stats.sends += 1;
                let acked = match outcome {
                    Outcome::Acked { offset } => {
                        out.stats.acked += 1;
                        Some(*offset)
                    }
                    Outcome::Failed { .. } => {
                        out.stats.failed += 1;
                        None
                    }
                };
                sends.insert(
                    value,
                    SendInfo {
                        event: e,
                        partition: *partition,
                        acked,
                    },
                );
            }
            Event::Txn {
                writes, outcome, ..
            } => {
                match outcome {
                    TxnOutcome::Committed => out.stats.txns_committed += 1,
                    TxnOutcome::Aborted => out.stats.txns_aborted += 1,
                    TxnOutcome::Unknown => out.stats.txns_unknown += 1,
                }
                for w in writes {
                    txn_of.insert(&w.value, txns.len());
                }
                txns.push(TxnInfo {
                    event: e,
                    outcome: *outcome,
                    writes: writes
                        .iter()
                        .map(|w| (w.partition, w.value.as_str()))
                        .collect(),
                });
            }
            Event::Fault { .. } => out.stats.faults += 1,
            Event::Commit { .. } => out.stats.commits += 1,
            Event::Assigned { .. } => out.stats.rebalances += 1,
            _ => {}
        }
    }

    // --- the final read-back -------------------------------------------
    let mut final_log: BTreeMap<i32, BTreeMap<i64, &str>> = BTreeMap::new();
    let mut final_range: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    for e in events {
        match e {
            Event::Read {
                reader,
                partition,
                offset,
                value,
                ..
            } if reader == FINAL_READER => {
                out.stats.final_records += 1;
                final_log
                    .entry(*partition)
                    .or_default()
                    .insert(*offset, value);
            }
            Event::FinalRead {
                partition,
                start,
                end,
                complete,
                ..
            } => {
                if *complete {
                    final_range.insert(*partition, (*start, *end));
                } else {
                    out.add(Anomaly {
                        kind: Kind::IncompleteFinalRead,
                        expected: false,
                        partition: Some(*partition),
                        message: format!(
                            "the final read of partition {partition} did not reach its end ({start}..{end}): losses there cannot be ruled out"
                        ),
                        events: vec![e.clone()],
                    });
                }
            }
            _ => {}
        }
    }
    // value -> where the final read found it: the lookups below are one
    // hash probe each, not a scan of the log (a long run reads back
    // hundreds of thousands of records)
    let mut final_index: HashMap<&str, Vec<i32>> = HashMap::new();
    for (p, log) in &final_log {
        for v in log.values() {
            final_index.entry(v).or_default().push(*p);
        }
    }
    // None: no complete final read of `p`, nothing can be said
    let in_final = |p: i32, v: &str| -> Option<bool> {
        final_range.get(&p)?;
        Some(final_index.get(v).is_some_and(|ps| ps.contains(&p)))
    };

    // --- reads: phantoms, conflicts, duplicates, read_committed ----------
    let mut at: HashMap<(i32, i64), (&str, &Event)> = HashMap::new();
    let mut placed: HashMap<&str, BTreeMap<(i32, i64), &Event>> = HashMap::new();
    for (v, s) in &sends {
        if let Some(o) = s.acked {
            at.insert((s.partition, o), (v, s.event));
            placed
                .entry(v)
                .or_default()
                .insert((s.partition, o), s.event);
        }
    }
    let mut phantom_seen: BTreeSet<&str> = BTreeSet::new();
    for e in events {
        let Event::Read {
            partition,
            offset,
            value,
            read_committed,
            ..
        } = e
        else {
            continue;
        };
        out.stats.reads += 1;
        let (p, o, v) = (*partition, *offset, value.as_str());
        let sent_to = sends.get(v).map(|s| s.partition).or_else(|| {
            txn_of
                .get(v)
                .and_then(|i| txns[*i].writes.iter().find(|w| w.1 == v))
                .map(|w| w.0)
        });
        let misplaced = match sent_to {
            None => Some("which no producer sent".to_string()),
            Some(sp) if sp != p => Some(format!("which was sent to partition {sp}")),
            Some(_) => None,
        };
        if let Some(why) = misplaced {
            if phantom_seen.insert(v) {
                out.add(Anomaly {
                    kind: Kind::PhantomRead,
                    expected: false,
                    partition: Some(p),
                    message: format!("partition {p} offset {o} holds `{v}`, {why}"),
                    events: vec![e.clone()],
                });
            }
            continue;
        }
        match at.get(&(p, o)) {
            Some((other, first)) if *other != v => {
                // an acknowledged offset overwritten is what a lost write
                // looks like from the reader's side
                let acked_there = matches!(first, Event::Send { .. });
                out.add(Anomaly {
                    kind: Kind::OffsetConflict,
                    expected: (acked_there && loss_expected)
                        || expect.unclean
                        || expect.unsynced_loss,
                    partition: Some(p),
                    message: format!(
                        "partition {p} offset {o} held `{other}` ({}) and later `{v}`",
                        if acked_there {
                            "acknowledged there"
                        } else {
                            "read there"
                        }
                    ),
                    events: vec![(*first).clone(), e.clone()],
                });
            }
            Some(_) => {}
            None => {
                at.insert((p, o), (v, e));
            }
        }
        placed.entry(v).or_default().insert((p, o), e);
        if *read_committed {
            if let Some(&i) = txn_of.get(v) {
                let t = &txns[i];
                let committed_in_end = t
                    .writes
                    .iter()
                    .any(|(wp, wv)| in_final(*wp, wv) == Some(true));
                let kind = match t.outcome {
                    TxnOutcome::Aborted => Some(Kind::AbortedRead),
                    TxnOutcome::Unknown if !committed_in_end => Some(Kind::UncommittedRead),
                    _ => None,
                };
                if let Some(kind) = kind {
                    out.add(Anomaly {
                        kind,
                        expected: false,
                        partition: Some(p),
                        message: format!(
                            "read_committed returned `{v}` (partition {p} offset {o}) of a transaction that {}",
                            if kind == Kind::AbortedRead { "aborted" } else { "never committed" }
                        ),
                        events: vec![t.event.clone(), e.clone()],
                    });
                }
            }
        }
    }
    for (v, places) in &placed {
        if places.len() > 1 {
            let at: Vec<String> = places.keys().map(|(p, o)| format!("{p}/{o}")).collect();
            out.add(Anomaly {
                kind: Kind::Duplicate,
                expected: !expect.idempotent || loss_expected,
                partition: places.keys().next().map(|k| k.0),
                message: format!("`{v}` at {} offsets: {}", places.len(), at.join(", ")),
                events: places.values().map(|e| (*e).clone()).collect(),
            });
        }
    }

    // --- lost writes ---------------------------------------------------
    for (v, s) in &sends {
        let Some(o) = s.acked else { continue };
        if in_final(s.partition, v) == Some(false) {
            let (start, _) = final_range[&s.partition];
            if o < start {
                continue; // below the log start (retention), not readable
            }
            let now_there = final_log
                .get(&s.partition)
                .and_then(|l| l.get(&o))
                .map(|x| format!("; offset {o} now holds `{x}`"))
                .unwrap_or_default();
            out.add(Anomaly {
                kind: Kind::LostWrite,
                expected: loss_expected,
                partition: Some(s.partition),
                message: format!(
                    "`{v}` was acknowledged at partition {} offset {o} but is not in the final read{now_there}",
                    s.partition
                ),
                events: vec![s.event.clone()],
            });
        }
    }

    // --- transactions: all or nothing ----------------------------------
    for t in &txns {
        let seen: Vec<Option<bool>> = t.writes.iter().map(|(p, v)| in_final(*p, v)).collect();
        if seen.contains(&None) {
            continue; // a partition without a complete final read
        }
        let present = seen.iter().filter(|s| **s == Some(true)).count();
        let missing: Vec<&str> = t
            .writes
            .iter()
            .zip(&seen)
            .filter(|(_, s)| **s == Some(false))
            .map(|(w, _)| w.1)
            .collect();
        if t.outcome == TxnOutcome::Committed && !missing.is_empty() {
            out.add(Anomaly {
                kind: if present == 0 {
                    Kind::LostWrite
                } else {
                    Kind::PartialTxn
                },
                expected: loss_expected,
                partition: None,
                message: format!(
                    "a committed transaction's writes are missing from the final read: {}",
                    missing.join(", ")
                ),
                events: vec![t.event.clone()],
            });
        } else if t.outcome == TxnOutcome::Aborted && present > 0 {
            // reported per read above; nothing more here
        } else if t.outcome == TxnOutcome::Unknown && present > 0 && !missing.is_empty() {
            out.add(Anomaly {
                kind: Kind::PartialTxn,
                expected: false,
                partition: None,
                message: format!(
                    "read_committed shows {present} of a transaction's {} writes; missing {}",
                    t.writes.len(),
                    missing.join(", ")
                ),
                events: vec![t.event.clone()],
            });
        }
    }

    // --- order per producer and partition ------------------------------
    for (p, log) in &final_log {
        let mut last: HashMap<u32, (u64, i64, &str)> = HashMap::new();
        for (o, v) in log {
            let Some((producer, seq)) = parse_value(v) else {
                continue;
            };
            // transactional and plain values have different prefixes, so
            // key by prefix and producer
            let key = producer ^ (u32::from(v.as_bytes().first().copied().unwrap_or(0)) << 24);
            if let Some((ls, lo, lv)) = last.get(&key) {
                if seq < *ls {
                    out.add(Anomaly {
                        kind: Kind::Reorder,
                        expected: false,
                        partition: Some(*p),
                        message: format!(
                            "partition {p}: `{v}` at offset {o} after `{lv}` at offset {lo}: producer {producer} sent them the other way round"
                        ),
                        events: [*lv, *v]
                            .iter()
                            .filter_map(|x| sends.get(x).map(|s| s.event.clone()))
                            .collect(),
                    });
                }
            }
            if last.get(&key).is_none_or(|(ls, _, _)| seq > *ls) {
                last.insert(key, (seq, *o, v));
            }
        }
    }

    check_groups(events, &final_log, &final_range, &mut out);
    out
}

/// Consumer-group checks: a member starts at the committed offset (not
/// below what was surely committed, not above what may have been), and
/// reads its assignment without gaps.
fn check_groups(
    events: &[Event],
    final_log: &BTreeMap<i32, BTreeMap<i64, &str>>,
    final_range: &BTreeMap<i32, (i64, i64)>,
    out: &mut Analysis,
) {
    // (reader, session, partition) -> assigned event, reads
    type Key<'a> = (&'a str, u32, i32);
    let mut assigned: HashMap<Key, &Event> = HashMap::new();
    let mut reads: BTreeMap<Key, Vec<&Event>> = BTreeMap::new();
    for e in events {
        match e {
            Event::Assigned {
                reader,
                session,
                partition,
                ..
            } => {
                assigned.insert((reader, *session, *partition), e);
            }
            Event::Read {
                reader,
                session,
                partition,
                ..
            } if assigned.contains_key(&(reader.as_str(), *session, *partition)) => {
                reads
                    .entry((reader, *session, *partition))
                    .or_default()
                    .push(e);
            }
            _ => {}
        }
    }
    let commits: Vec<&Event> = events
        .iter()
        .filter(|e| matches!(e, Event::Commit { .. }))
        .collect();
    // records of the log in [from, to)
    let between = |p: i32, from: i64, to: i64| -> Vec<i64> {
        if from >= to {
            return Vec::new();
        }
        final_log
            .get(&p)
            .map(|l| l.range(from..to).map(|(o, _)| *o).collect())
            .unwrap_or_default()
    };
    for (key @ (reader, session, p), rs) in &reads {
        if !final_range.contains_key(p) {
            continue;
        }
        let Some(first) = rs.first() else { continue };
        let Event::Read {
            t: t_first,
            offset: o_first,
            ..
        } = first
        else {
            continue;
        };
        let assigned_at = assigned[key].t();
        // surely committed: the last acknowledged commit recorded before
        // the member was given the partition
        let surely = commits
            .iter()
            .filter_map(|c| match c {
                Event::Commit {
                    t,
                    partition,
                    offset,
                    acked: true,
                    ..
                } if *partition == *p && *t < assigned_at => Some((*t, *offset, *c)),
                _ => None,
            })
            .max_by_key(|x| x.0);
        if let Some((_, c, ce)) = surely {
            if *o_first < c {
                out.add(Anomaly {
                    kind: Kind::GroupResumedBelowCommitted,
                    expected: false,
                    partition: Some(*p),
                    message: format!(
                        "{reader} (assignment {session}) started partition {p} at offset {o_first}, below the committed offset {c}"
                    ),
                    events: vec![(*ce).clone(), assigned[key].clone(), (*first).clone()],
                });
            }
        }
        // may have been committed: any commit sent before the first read
        let may = commits
            .iter()
            .filter_map(|c| match c {
                Event::Commit {
                    sent,
                    partition,
                    offset,
                    ..
                } if *partition == *p && sent < t_first => Some((*offset, *c)),
                _ => None,
            })
            .max_by_key(|x| x.0);
        let from = may.map(|m| m.0).unwrap_or(final_range[p].0);
        let skipped = between(*p, from, *o_first);
        if !skipped.is_empty() {
            let mut evs: Vec<Event> = may.map(|m| vec![m.1.clone()]).unwrap_or_default();
            evs.push(assigned[key].clone());
            evs.push((*first).clone());
            out.add(Anomaly {
                kind: Kind::GroupSkip,
                expected: false,
                partition: Some(*p),
                message: format!(
                    "{reader} (assignment {session}) started partition {p} at offset {o_first}, but the group had committed at most {from}: offsets {} were never handed out",
                    span(&skipped)
                ),
                events: evs,
            });
        }
        for w in rs.windows(2) {
            let (Event::Read { offset: a, .. }, Event::Read { offset: b, .. }) = (w[0], w[1])
            else {
                continue;
            };
            let skipped = between(*p, a + 1, *b);
            if !skipped.is_empty() {
                out.add(Anomaly {
                    kind: Kind::GroupSkip,
                    expected: false,
                    partition: Some(*p),
                    message: format!(
                        "{reader} (assignment {session}) read partition {p} offset {a} then {b}, skipping {}",
                        span(&skipped)
                    ),
                    events: vec![w[0].clone(), w[1].clone()],
                });
            }
        }
    }
}

fn span(offsets: &[i64]) -> String {
    match offsets {
        [] => String::new(),
        [o] => o.to_string(),
        [a, .., b] => format!("{a}..={b} ({} records)", offsets.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::{value_of, TxnWrite};

    fn send(t: u64, p: i32, v: &str, offset: Option<i64>) -> Event {
        Event::Send {
            t,
            producer: parse_value(v).map_or(0, |x| x.0),
            partition: p,
            value: v.into(),
            outcome: match offset {
                Some(offset) => Outcome::Acked { offset },
                None => Outcome::Failed {
                    error: "timed out".into(),
                },
            },
        }
    }

    fn read(t: u64, reader: &str, session: u32, p: i32, o: i64, v: &str) -> Event {
        Event::Read {
            t,
            reader: reader.into(),
            session,
            partition: p,
            offset: o,
            value: v.into(),
            read_committed: false,
        }
    }

    fn rc(e: Event) -> Event {
        match e {
            Event::Read {
                t,
                reader,
                session,
                partition,
                offset,
                value,
                ..
            } => Event::Read {
                t,
                reader,
                session,
                partition,
                offset,
                value,
                read_committed: true,
            },
            e => e,
        }
    }

    fn final_read(t: u64, p: i32, start: i64, end: i64) -> Event {
        Event::FinalRead {
            t,
            partition: p,
            start,
            end,
            complete: true,
        }
    }

    /// p0: a1:0 a1:1 a2:0 acknowledged at 0, 1, 2 and read back in full.
    fn clean() -> Vec<Event> {
        vec![
            send(1, 0, "a1:0", Some(0)),
            send(2, 0, "a1:1", Some(1)),
            send(3, 0, "a2:0", Some(2)),
            send(4, 0, "a2:1", None),
            read(5, "c0", 0, 0, 0, "a1:0"),
            read(6, "c0", 0, 0, 1, "a1:1"),
            read(10, FINAL_READER, 0, 0, 0, "a1:0"),
            read(10, FINAL_READER, 0, 0, 1, "a1:1"),
            read(10, FINAL_READER, 0, 0, 2, "a2:0"),
            final_read(11, 0, 0, 3),
        ]
    }

    fn kinds(a: &Analysis) -> Vec<(Kind, bool)> {
        a.anomalies.iter().map(|a| (a.kind, a.expected)).collect()
    }

    #[test]
    fn a_clean_history_has_no_anomaly() {
        let a = check(&clean(), Expect::default());
        assert!(a.anomalies.is_empty(), "{:#?}", a.anomalies);
        assert_eq!(a.stats.acked, 3);
        assert_eq!(a.stats.failed, 1);
        assert_eq!(a.failures(), 0);
    }

    #[test]
    fn a_failed_send_that_was_written_anyway_is_fine() {
        let mut h = clean();
        h.push(read(12, FINAL_READER, 0, 0, 3, "a2:1"));
        h.retain(|e| !matches!(e, Event::FinalRead { .. }));
        h.push(final_read(13, 0, 0, 4));
        assert!(check(&h, Expect::default()).anomalies.is_empty());
    }

    #[test]
    fn an_acknowledged_write_missing_from_the_final_read_is_lost() {
        let mut h = clean();
        h.retain(|e| !matches!(e, Event::Read { reader, offset: 2, .. } if reader == FINAL_READER));
        let a = check(&h, Expect::default());
        assert_eq!(kinds(&a), vec![(Kind::LostWrite, false)]);
        assert!(
            a.anomalies[0].message.contains("a2:0"),
            "{}",
            a.anomalies[0].message
        );
        assert_eq!(a.failures(), 1);
        // expected under acks=1
        let a = check(
            &h,
            Expect {
                acks_all: false,
                ..Expect::default()
            },
        );
        assert_eq!(kinds(&a), vec![(Kind::LostWrite, true)]);
        assert_eq!(a.failures(), 0);
        // and under power cuts with a single in-sync copy
        let a = check(
            &h,
            Expect {
                unsynced_loss: true,
                ..Expect::default()
            },
        );
        assert_eq!(kinds(&a), vec![(Kind::LostWrite, true)]);
    }

    #[test]
    fn an_overwritten_acknowledged_offset_is_a_conflict_and_a_loss() {
        let mut h = clean();
        for e in h.iter_mut() {
            if let Event::Read {
                reader,
                offset: 2,
                value,
                ..
            } = e
            {
                if reader == FINAL_READER {
                    *value = "a2:1".into(); // the failed send took its place
                }
            }
        }
        let mut k = kinds(&check(&h, Expect::default()));
        k.sort();
        assert_eq!(
            k,
            vec![(Kind::LostWrite, false), (Kind::OffsetConflict, false)]
        );
    }

    #[test]
    fn the_same_value_at_two_offsets_is_a_duplicate() {
        let mut h = clean();
        h.retain(|e| !matches!(e, Event::FinalRead { .. }));
        h.push(read(12, FINAL_READER, 0, 0, 3, "a1:1"));
        h.push(final_read(13, 0, 0, 4));
        let a = check(&h, Expect::default());
        assert_eq!(kinds(&a), vec![(Kind::Duplicate, false)]);
        let a = check(
            &h,
            Expect {
                idempotent: false,
                ..Expect::default()
            },
        );
        assert_eq!(kinds(&a), vec![(Kind::Duplicate, true)]);
    }

    #[test]
    fn values_out_of_send_order_are_a_reorder() {
        let h = vec![
            send(1, 0, "a1:0", None),
            send(2, 0, "a1:1", None),
            read(10, FINAL_READER, 0, 0, 0, "a1:1"),
            read(10, FINAL_READER, 0, 0, 1, "a1:0"),
            final_read(11, 0, 0, 2),
        ];
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::Reorder, false)]
        );
    }

    #[test]
    fn two_reads_of_one_offset_with_different_values_conflict() {
        let mut h = clean();
        h.push(read(7, "c1", 0, 0, 1, "a2:1"));
        let k = kinds(&check(&h, Expect::default()));
        assert!(k.contains(&(Kind::OffsetConflict, false)), "{k:?}");
    }

    #[test]
    fn a_value_nobody_sent_is_a_phantom() {
        let mut h = clean();
        h.push(read(7, "c1", 0, 0, 5, "a9:9"));
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::PhantomRead, false)]
        );
        let mut h = clean();
        h.push(send(8, 1, "a3:0", Some(0)));
        h.push(read(9, "c1", 0, 0, 7, "a3:0"));
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::PhantomRead, false)]
        );
    }

    #[test]
    fn an_incomplete_final_read_is_reported() {
        let mut h = clean();
        for e in h.iter_mut() {
            if let Event::FinalRead { complete, .. } = e {
                *complete = false;
            }
        }
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::IncompleteFinalRead, false)]
        );
    }

    fn txn(t: u64, producer: u32, id: u64, writes: &[(i32, &str)], outcome: TxnOutcome) -> Event {
        Event::Txn {
            t,
            producer,
            txn: id,
            writes: writes
                .iter()
                .map(|(p, v)| TxnWrite {
                    partition: *p,
                    value: v.to_string(),
                })
                .collect(),
            outcome,
        }
    }

    /// Two partitions; t1 committed (x on p0, y on p1), t2 aborted (z on p0).
    fn txn_history() -> Vec<Event> {
        vec![
            txn(1, 1, 1, &[(0, "t1:0"), (1, "t1:1")], TxnOutcome::Committed),
            txn(2, 1, 2, &[(0, "t1:2")], TxnOutcome::Aborted),
            rc(read(3, "c0", 0, 0, 0, "t1:0")),
            rc(read(10, FINAL_READER, 0, 0, 0, "t1:0")),
            rc(read(10, FINAL_READER, 0, 1, 0, "t1:1")),
            final_read(11, 0, 0, 4),
            final_read(11, 1, 0, 2),
        ]
    }

    #[test]
    fn committed_transactions_read_back_whole_are_clean() {
        let a = check(&txn_history(), Expect::default());
        assert!(a.anomalies.is_empty(), "{:#?}", a.anomalies);
        assert_eq!((a.stats.txns_committed, a.stats.txns_aborted), (1, 1));
    }

    #[test]
    fn read_committed_showing_an_aborted_write_is_an_anomaly() {
        let mut h = txn_history();
        h.push(rc(read(4, "c0", 0, 0, 2, "t1:2")));
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::AbortedRead, false)]
        );
        // read_uncommitted may see it
        let mut h = txn_history();
        h.push(read(4, "c0", 0, 0, 2, "t1:2"));
        assert!(check(&h, Expect::default()).anomalies.is_empty());
    }

    #[test]
    fn part_of_a_committed_transaction_is_an_anomaly() {
        let mut h = txn_history();
        h.retain(|e| !matches!(e, Event::Read { partition: 1, .. }));
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::PartialTxn, false)]
        );
    }

    #[test]
    fn an_unknown_transaction_is_all_or_nothing() {
        let mut h = txn_history();
        h.push(txn(
            5,
            2,
            1,
            &[(0, "t2:0"), (1, "t2:1")],
            TxnOutcome::Unknown,
        ));
        assert!(
            check(&h, Expect::default()).anomalies.is_empty(),
            "absent: aborted"
        );
        h.push(rc(read(10, FINAL_READER, 0, 0, 3, "t2:0")));
        let k = kinds(&check(&h, Expect::default()));
        assert_eq!(k, vec![(Kind::PartialTxn, false)]);
        h.push(rc(read(10, FINAL_READER, 0, 1, 1, "t2:1")));
        assert!(
            check(&h, Expect::default()).anomalies.is_empty(),
            "whole: committed"
        );
    }

    #[test]
    fn read_committed_showing_a_transaction_that_never_committed_is_an_anomaly() {
        let mut h = txn_history();
        h.push(txn(5, 2, 1, &[(0, "t2:0")], TxnOutcome::Unknown));
        h.push(rc(read(6, "c0", 0, 0, 3, "t2:0")));
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::UncommittedRead, false)]
        );
    }

    fn commit(t: u64, sent: u64, reader: &str, p: i32, offset: i64, acked: bool) -> Event {
        Event::Commit {
            t,
            sent,
            reader: reader.into(),
            partition: p,
            offset,
            acked,
        }
    }

    fn assigned(t: u64, reader: &str, session: u32, p: i32) -> Event {
        Event::Assigned {
            t,
            reader: reader.into(),
            session,
            partition: p,
        }
    }

    /// Ten records on p0; m1 reads 0..4 and commits 5, m2 takes over at 5.
    fn group_history(m2_start: i64) -> Vec<Event> {
        let mut h = Vec::new();
        for i in 0..10 {
            h.push(send(i, 0, &value_of("a", 1, i), Some(i as i64)));
        }
        h.push(assigned(20, "m1", 1, 0));
        for i in 0..5 {
            h.push(read(21 + i, "m1", 1, 0, i as i64, &value_of("a", 1, i)));
        }
        h.push(commit(30, 29, "m1", 0, 5, true));
        h.push(assigned(40, "m2", 1, 0));
        for i in m2_start..10 {
            h.push(read(
                41 + i as u64,
                "m2",
                1,
                0,
                i,
                &value_of("a", 1, i as u64),
            ));
        }
        for i in 0..10 {
            h.push(read(60, FINAL_READER, 0, 0, i, &value_of("a", 1, i as u64)));
        }
        h.push(final_read(61, 0, 0, 10));
        h
    }

    #[test]
    fn a_group_resuming_at_its_commit_is_clean() {
        let a = check(&group_history(5), Expect::default());
        assert!(a.anomalies.is_empty(), "{:#?}", a.anomalies);
        assert_eq!((a.stats.commits, a.stats.rebalances), (1, 2));
    }

    #[test]
    fn a_group_resuming_below_its_commit_is_an_anomaly() {
        let k = kinds(&check(&group_history(3), Expect::default()));
        assert_eq!(k, vec![(Kind::GroupResumedBelowCommitted, false)]);
    }

    #[test]
    fn a_group_resuming_above_its_commit_skips_records() {
        let a = check(&group_history(7), Expect::default());
        assert_eq!(kinds(&a), vec![(Kind::GroupSkip, false)]);
        assert!(
            a.anomalies[0].message.contains("5..=6"),
            "{}",
            a.anomalies[0].message
        );
    }

    #[test]
    fn a_commit_in_flight_may_explain_a_later_start() {
        // m1 also sent a commit of 7 that was never confirmed: m2 starting
        // at 7 may be right
        let mut h = group_history(7);
        h.push(commit(35, 31, "m1", 0, 7, false));
        h.sort_by_key(Event::t);
        assert!(check(&h, Expect::default()).anomalies.is_empty());
    }

    #[test]
    fn a_gap_inside_one_assignment_is_a_skip() {
        let mut h = group_history(5);
        h.retain(|e| !matches!(e, Event::Read { reader, offset: 7, .. } if reader == "m2"));
        assert_eq!(
            kinds(&check(&h, Expect::default())),
            vec![(Kind::GroupSkip, false)]
        );
    }

    #[test]
    fn a_group_starting_late_without_any_commit_skips_the_log_start() {
        let mut h = group_history(5);
        h.retain(|e| !matches!(e, Event::Commit { .. }));
        let k = kinds(&check(&h, Expect::default()));
        assert_eq!(k, vec![(Kind::GroupSkip, false)]);
    }
}
