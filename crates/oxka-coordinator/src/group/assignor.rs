//! Server-side partition assignors of the KIP-848 consumer protocol:
//! `uniform` (Kafka's default: balanced and sticky) and `range` (per topic,
//! contiguous ranges over the subscribers sorted by member id).
//!
//! Assignors are pure functions of the members' subscriptions, their
//! current target assignment and the partition counts of the subscribed
//! topics; the coordinator turns the result into the new target assignment
//! and reconciles members towards it.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use uuid::Uuid;

/// Partitions by topic id: the shape of every KIP-848 assignment.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// Number of partitions in an assignment.
pub fn count(a: &Assignment) -> usize {
    a.values().map(BTreeSet::len).sum()
}

/// Whether `a` holds partition `p` of topic `t`.
pub fn contains(a: &Assignment, t: &Uuid, p: i32) -> bool {
    a.get(t).is_some_and(|s| s.contains(&p))
}

/// Adds a partition to an assignment.
pub fn insert(a: &mut Assignment, t: Uuid, p: i32) {
    a.entry(t).or_default().insert(p);
}

/// Removes a partition, dropping topics left empty so assignments compare
/// equal whatever their history.
pub fn remove(a: &mut Assignment, t: &Uuid, p: i32) -> bool {
    let Some(s) = a.get_mut(t) else {
        return false;
    };
    let removed = s.remove(&p);
    if s.is_empty() {
        a.remove(t);
    }
    removed
}

/// Every (topic, partition) of an assignment, in order.
pub fn partitions(a: &Assignment) -> impl Iterator<Item = (Uuid, i32)> + '_ {
    a.iter()
        .flat_map(|(t, ps)| ps.iter().map(move |p| (*t, *p)))
}

/// The assignors the coordinator offers (`group.consumer.assignors`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Assignor {
    Uniform,
    Range,
}

impl Assignor {
    pub fn name(self) -> &'static str {
        match self {
            Assignor::Uniform => "uniform",
            Assignor::Range => "range",
        }
    }

    /// Accepts Kafka's short names and its class names
    /// (`org.apache.kafka.coordinator.group.assignor.UniformAssignor`).
    pub fn parse(s: &str) -> Option<Assignor> {
        let s = s.trim();
        let short = s.rsplit('.').next().unwrap_or(s);
        match short.to_ascii_lowercase().as_str() {
            "uniform" | "uniformassignor" => Some(Assignor::Uniform),
            "range" | "rangeassignor" => Some(Assignor::Range),
            _ => None,
        }
    }

    pub fn assign(self, members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> Targets {
        match self {
            Assignor::Uniform => uniform(members, topics),
            Assignor::Range => range(members, topics),
        }
    }
}

/// What an assignor knows of one member.
#[derive(Debug, Clone)]
pub struct MemberSpec {
    pub member_id: String,
    /// Topic ids the member subscribes to (names and regex resolved).
    pub subscribed: BTreeSet<Uuid>,
    /// Its current target assignment, for stickiness.
    pub current: Assignment,
}

/// The new target assignment of every member.
pub type Targets = BTreeMap<String, Assignment>;

/// Every partition of the subscribed topics that exist.
fn all_partitions(members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> Vec<(Uuid, i32)> {
    let subscribed: BTreeSet<Uuid> = members
        .iter()
        .flat_map(|m| m.subscribed.iter().copied())
        .collect();
    subscribed
        .iter()
        .filter_map(|t| topics.get(t).map(|n| (*t, *n)))
        .flat_map(|(t, n)| (0..n.max(0)).map(move |p| (t, p)))
        .collect()
}

/// Balanced and sticky. With identical subscriptions every member ends
/// with ⌊P/M⌋ or ⌈P/M⌉ partitions and keeps as many of its current ones as
/// the quota allows; otherwise partitions go to the least loaded eligible
/// member and are then moved from the most to the least loaded while that
/// narrows the spread.
fn uniform(members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> Targets {
    let mut out: Targets = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    if members.is_empty() {
        return out;
    }
    let all = all_partitions(members, topics);
    let valid: HashSet<(Uuid, i32)> = all.iter().copied().collect();
    let homogeneous = members
        .windows(2)
        .all(|w| w[0].subscribed == w[1].subscribed);

    // Sticky start: what each member already has and may still have; a
    // partition claimed twice (cannot happen in a target, but be safe)
    // stays with the first member.
    let mut taken: HashSet<(Uuid, i32)> = HashSet::new();
    let mut kept: Vec<Vec<(Uuid, i32)>> = members
        .iter()
        .map(|m| {
            partitions(&m.current)
                .filter(|(t, p)| {
                    m.subscribed.contains(t) && valid.contains(&(*t, *p)) && taken.insert((*t, *p))
                })
                .collect()
        })
        .collect();

    if homogeneous {
        let n = members.len();
        let base = all.len() / n;
        let extra = all.len() % n;
        // The members holding the most get the larger quotas: fewer moves.
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| {
            kept[*b]
                .len()
                .cmp(&kept[*a].len())
                .then(members[*a].member_id.cmp(&members[*b].member_id))
        });
        let mut quota = vec![base; n];
        for i in order.iter().take(extra) {
            quota[*i] = base + 1;
        }
        for (i, k) in kept.iter_mut().enumerate() {
            while k.len() > quota[i] {
                if let Some(p) = k.pop() {
                    taken.remove(&p);
                }
            }
        }
        let mut free = all.iter().filter(|p| !taken.contains(p));
        for (i, k) in kept.iter_mut().enumerate() {
            while k.len() < quota[i] {
                match free.next() {
                    Some(p) => k.push(*p),
                    None => break,
                }
            }
        }
    } else {
        let eligible = |i: usize, t: &Uuid| members[i].subscribed.contains(t);
        for (t, p) in all.iter().filter(|p| !taken.contains(p)) {
            let best = (0..members.len())
                .filter(|i| eligible(*i, t))
                .min_by_key(|i| (kept[*i].len(), &members[*i].member_id));
            if let Some(i) = best {
                kept[i].push((*t, *p));
            }
        }
        // Moves from the most to the least loaded member that may take one
        // of its partitions; each move narrows the spread, so this ends
        // after at most P moves.
        let mut moved = true;
        let mut budget = all.len().saturating_mul(2);
        while moved && budget > 0 {
            moved = false;
            budget -= 1;
            let mut by_load: Vec<usize> = (0..members.len()).collect();
            by_load.sort_by_key(|i| (std::cmp::Reverse(kept[*i].len()), *i));
            'outer: for &a in &by_load {
                for &b in by_load.iter().rev() {
                    if kept[b].len() + 1 >= kept[a].len() {
                        break;
                    }
                    if let Some(pos) = kept[a].iter().rposition(|(t, _)| eligible(b, t)) {
                        let p = kept[a].remove(pos);
                        kept[b].push(p);
                        moved = true;
                        break 'outer;
                    }
                }
            }
        }
    }
    for (m, k) in members.iter().zip(kept) {
        if let Some(a) = out.get_mut(&m.member_id) {
            for (t, p) in k {
                insert(a, t, p);
            }
        }
    }
    out
}

/// Per topic, the subscribers sorted by member id get contiguous ranges;
/// the first `P mod n` get one partition more.
fn range(members: &[MemberSpec], topics: &BTreeMap<Uuid, i32>) -> Targets {
    let mut out: Targets = members
        .iter()
        .map(|m| (m.member_id.clone(), Assignment::new()))
        .collect();
    let mut subscribers: HashMap<Uuid, Vec<&str>> = HashMap::new();
    for m in members {
        for t in &m.subscribed {
            subscribers.entry(*t).or_default().push(&m.member_id);
        }
    }
    for (t, subs) in subscribers.iter_mut() {
        let Some(&n) = topics.get(t) else { continue };
        subs.sort_unstable();
        let n = n.max(0) as usize;
        let k = subs.len();
        let (base, extra) = (n / k, n % k);
        let mut next = 0usize;
        for (i, id) in subs.iter().enumerate() {
            let len = base + usize::from(i < extra);
            if let Some(a) = out.get_mut(*id) {
                for p in next..next + len {
                    insert(a, *t, p as i32);
                }
            }
            next += len;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(n: u8) -> Uuid {
        Uuid::from_bytes([n; 16])
    }

    fn spec(id: &str, subs: &[Uuid], current: &Assignment) -> MemberSpec {
        MemberSpec {
            member_id: id.into(),
            subscribed: subs.iter().copied().collect(),
            current: current.clone(),
        }
    }

    fn check_cover(t: &Targets, topics: &BTreeMap<Uuid, i32>) {
        let mut seen = HashSet::new();
        for a in t.values() {
            for p in partitions(a) {
                assert!(seen.insert(p), "{p:?} assigned twice");
            }
        }
        let total: i32 = topics.values().sum();
        assert_eq!(seen.len(), total as usize, "full coverage");
    }

    #[test]
    fn uniform_balances_and_covers() {
        let (a, b) = (topic(1), topic(2));
        let topics = BTreeMap::from([(a, 7), (b, 3)]);
        let none = Assignment::new();
        let members: Vec<_> = ["m1", "m2", "m3"]
            .iter()
            .map(|id| spec(id, &[a, b], &none))
            .collect();
        let t = Assignor::Uniform.assign(&members, &topics);
        check_cover(&t, &topics);
        let loads: Vec<usize> = t.values().map(count).collect();
        assert_eq!(loads.iter().sum::<usize>(), 10);
        assert!(loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1);
    }

    #[test]
    fn uniform_is_sticky_when_a_member_joins_or_leaves() {
        let a = topic(1);
        let topics = BTreeMap::from([(a, 6)]);
        let none = Assignment::new();
        let two =
            Assignor::Uniform.assign(&[spec("m1", &[a], &none), spec("m2", &[a], &none)], &topics);
        // a third member joins: each old member gives up exactly one
        let three = Assignor::Uniform.assign(
            &[
                spec("m1", &[a], &two["m1"]),
                spec("m2", &[a], &two["m2"]),
                spec("m3", &[a], &none),
            ],
            &topics,
        );
        check_cover(&three, &topics);
        for m in ["m1", "m2"] {
            assert_eq!(count(&three[m]), 2);
            let kept = partitions(&three[m])
                .filter(|(t, p)| contains(&two[m], t, *p))
                .count();
            assert_eq!(kept, 2, "{m} keeps what it can");
        }
        // m2 leaves: m1 and m3 keep theirs and split m2's
        let after = Assignor::Uniform.assign(
            &[
                spec("m1", &[a], &three["m1"]),
                spec("m3", &[a], &three["m3"]),
            ],
            &topics,
        );
        check_cover(&after, &topics);
        for m in ["m1", "m3"] {
            assert_eq!(count(&after[m]), 3);
            assert!(partitions(&three[m]).all(|(t, p)| contains(&after[m], &t, p)));
        }
    }

    #[test]
    fn uniform_heterogeneous_subscriptions() {
        let (a, b) = (topic(1), topic(2));
        let topics = BTreeMap::from([(a, 4), (b, 4)]);
        let none = Assignment::new();
        let t = Assignor::Uniform.assign(
            &[
                spec("m1", &[a], &none),
                spec("m2", &[a, b], &none),
                spec("m3", &[b], &none),
            ],
            &topics,
        );
        check_cover(&t, &topics);
        assert!(t["m1"].keys().all(|k| *k == a));
        assert!(t["m3"].keys().all(|k| *k == b));
        let loads: Vec<usize> = t.values().map(count).collect();
        assert!(
            loads.iter().max().unwrap() - loads.iter().min().unwrap() <= 1,
            "{loads:?}"
        );
    }

    #[test]
    fn range_gives_contiguous_ranges() {
        let (a, b) = (topic(1), topic(2));
        let topics = BTreeMap::from([(a, 7), (b, 2)]);
        let none = Assignment::new();
        let t = Assignor::Range.assign(
            &[
                spec("m3", &[a, b], &none),
                spec("m1", &[a, b], &none),
                spec("m2", &[a], &none),
            ],
            &topics,
        );
        check_cover(&t, &topics);
        let get = |m: &str, topic: &Uuid| -> Vec<i32> {
            t[m].get(topic)
                .map(|s| s.iter().copied().collect())
                .unwrap_or_default()
        };
        assert_eq!(get("m1", &a), vec![0, 1, 2]);
        assert_eq!(get("m2", &a), vec![3, 4]);
        assert_eq!(get("m3", &a), vec![5, 6]);
        assert_eq!(get("m1", &b), vec![0]);
        assert_eq!(get("m3", &b), vec![1]);
        assert_eq!(get("m2", &b), Vec::<i32>::new());
    }

    #[test]
    fn parse_names_and_classes() {
        assert_eq!(Assignor::parse("uniform"), Some(Assignor::Uniform));
        assert_eq!(
            Assignor::parse("org.apache.kafka.coordinator.group.assignor.RangeAssignor"),
            Some(Assignor::Range)
        );
        assert_eq!(Assignor::parse("sticky"), None);
    }
}
