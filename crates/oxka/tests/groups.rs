//! Consumer groups driven by librdkafka (the `rdkafka` crate): splitting,
//! rebalancing on leave, committed offsets across consumer and broker
//! restarts, static membership, cooperative-sticky and the group admin APIs.

mod common;

use common::block_on;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::{ClientContext, DefaultClientContext};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);

/// Records the partitions every rebalance revoked.
#[derive(Default, Clone)]
struct Recorder {
    revoked: Arc<Mutex<Vec<BTreeSet<i32>>>>,
}

impl ClientContext for Recorder {}

impl ConsumerContext for Recorder {
    fn pre_rebalance(&self, _c: &BaseConsumer<Self>, r: &Rebalance<'_>) {
        if let Rebalance::Revoke(tpl) = r {
            let set = tpl.elements().iter().map(|e| e.partition()).collect();
            if let Ok(mut v) = self.revoked.lock() {
                v.push(set);
            }
        }
    }
}

type Member = BaseConsumer<Recorder>;

fn member(b: &TestBroker, group: &str, extra: &[(&str, &str)]) -> (Member, Recorder) {
    let rec = Recorder::default();
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", b.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "10000")
        .set("heartbeat.interval.ms", "500");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    let consumer: Member = c.create_with_context(rec.clone()).expect("consumer");
    (consumer, rec)
}

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    common::admin_client(&b.bootstrap())
}

fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let res = block_on(admin(b).create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
    ))
    .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

/// `per` records to each partition, values `p{partition}-{i}`.
fn produce(b: &TestBroker, topic: &str, partitions: i32, per: usize) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("producer");
    for part in 0..partitions {
        for i in 0..per {
            let v = format!("p{part}-{i}");
            p.send(BaseRecord::<(), _>::to(topic).partition(part).payload(&v))
                .expect("enqueue");
        }
    }
    p.flush(TIMEOUT).expect("flush");
}

fn assignment(c: &Member) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// What each member consumed: (partition, offset, value).
type Consumed = Vec<Vec<(i32, i64, String)>>;

/// Polls every consumer, collecting records into `got`, until `done` holds.
fn poll_until(
    members: &[&Member],
    got: &mut Consumed,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[&Member], &Consumed) -> bool,
) {
    got.resize(members.len(), Vec::new());
    let deadline = Instant::now() + timeout;
    loop {
        for (i, m) in members.iter().enumerate() {
            if let Some(Ok(msg)) = m.poll(Duration::from_millis(20)) {
                let v = msg
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                got[i].push((msg.partition(), msg.offset(), v));
            }
        }
        if done(members, got) {
            return;
        }
        let asg: Vec<_> = members.iter().map(|m| assignment(m)).collect();
        assert!(
            Instant::now() < deadline,
            "timed out waiting for {what}; assignments {asg:?}"
        );
    }
}

/// Every member owns at least one partition, no overlap, full coverage.
fn split_ok(members: &[&Member], partitions: i32) -> bool {
    let sets: Vec<_> = members.iter().map(|m| assignment(m)).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == union.len() && union == (0..partitions).collect()
}

fn total(got: &Consumed) -> usize {
    got.iter().map(Vec::len).sum()
}

fn subscribed(
    b: &TestBroker,
    group: &str,
    topic: &str,
    extra: &[(&str, &str)],
) -> (Member, Recorder) {
    let (m, r) = member(b, group, extra);
    m.subscribe(&[topic]).expect("subscribe");
    (m, r)
}

#[test]
fn three_consumers_split_six_partitions() {
    let b = TestBroker::start();
    let topic = unique("split");
    create_topic(&b, &topic, 6);
    let group = unique("g-split");
    let ms: Vec<_> = (0..3)
        .map(|_| subscribed(&b, &group, &topic, &[]))
        .collect();
    let refs: Vec<&Member> = ms.iter().map(|(m, _)| m).collect();
    let mut got = Consumed::new();
    poll_until(&refs, &mut got, JOIN_TIMEOUT, "3-way split", |m, _| {
        split_ok(m, 6)
    });
    let owned: Vec<_> = refs.iter().map(|m| assignment(m)).collect();
    produce(&b, &topic, 6, 5);
    poll_until(&refs, &mut got, TIMEOUT, "all records", |_, g| {
        total(g) >= 30
    });
    for (i, recs) in got.iter().enumerate() {
        for (p, _, _) in recs {
            assert!(
                owned[i].contains(p),
                "member {i} got partition {p} it does not own"
            );
        }
    }
    let mut values: Vec<String> = got.iter().flatten().map(|r| r.2.clone()).collect();
    values.sort();
    let mut expect: Vec<String> = (0..6)
        .flat_map(|p| (0..5).map(move |i| format!("p{p}-{i}")))
        .collect();
    expect.sort();
    assert_eq!(values, expect, "every record exactly once");
}

#[test]
fn leaving_member_partitions_move() {
    let b = TestBroker::start();
    let topic = unique("leave");
    create_topic(&b, &topic, 4);
    let group = unique("g-leave");
    let (a, _) = subscribed(&b, &group, &topic, &[]);
    let (c, _) = subscribed(&b, &group, &topic, &[]);
    let mut got = Consumed::new();
    poll_until(&[&a, &c], &mut got, JOIN_TIMEOUT, "2-way split", |m, _| {
        split_ok(m, 4)
    });
    drop(c); // close: LeaveGroup
    let mut got = Consumed::new();
    poll_until(
        &[&a],
        &mut got,
        JOIN_TIMEOUT,
        "survivor owns all",
        |m, _| assignment(m[0]) == (0..4).collect(),
    );
    produce(&b, &topic, 4, 2);
    poll_until(
        &[&a],
        &mut got,
        TIMEOUT,
        "records of every partition",
        |_, g| total(g) >= 8,
    );
}

/// Consumes `n` records one at a time, committing each synchronously.
fn consume_and_commit(b: &TestBroker, group: &str, topic: &str, n: usize) -> Vec<i64> {
    let (c, _) = subscribed(b, group, topic, &[]);
    let mut offsets = Vec::new();
    let deadline = Instant::now() + JOIN_TIMEOUT;
    while offsets.len() < n {
        assert!(Instant::now() < deadline, "consumed only {offsets:?}");
        if let Some(Ok(m)) = c.poll(Duration::from_millis(100)) {
            offsets.push(m.offset());
            c.commit_message(&m, CommitMode::Sync).expect("sync commit");
        }
    }
    offsets
}

#[test]
fn committed_offsets_survive_consumer_and_broker_restart() {
    let mut b = TestBroker::start();
    let topic = unique("resume");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, 1, 30);
    let group = unique("g-resume");
    assert_eq!(
        consume_and_commit(&b, &group, &topic, 10),
        (0..10).collect::<Vec<_>>()
    );
    // consumer restart
    assert_eq!(
        consume_and_commit(&b, &group, &topic, 10),
        (10..20).collect::<Vec<_>>()
    );
    // broker crash and restart: the commits were acknowledged, so they stay
    b.restart();
    assert_eq!(
        consume_and_commit(&b, &group, &topic, 10),
        (20..30).collect::<Vec<_>>()
    );
    // commit metadata round-trips through the log
    let (c, _) = member(&b, &group, &[]);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(7))
        .expect("tpl");
    if let Some(mut e) = tpl.find_partition(&topic, 0) {
        e.set_metadata("seven");
    }
    c.commit(&tpl, CommitMode::Sync)
        .expect("commit with metadata");
    drop(c);
    b.restart();
    let (c, _) = member(&b, &group, &[]);
    let mut q = TopicPartitionList::new();
    q.add_partition(&topic, 0);
    let committed = c.committed_offsets(q, TIMEOUT).expect("committed");
    let e = committed.find_partition(&topic, 0).expect("partition");
    assert_eq!(e.offset(), Offset::Offset(7));
    assert_eq!(e.metadata(), "seven");
}

#[test]
fn static_member_rejoin_keeps_assignment() {
    let b = TestBroker::start();
    let topic = unique("static");
    create_topic(&b, &topic, 4);
    let group = unique("g-static");
    let (a, arec) = subscribed(&b, &group, &topic, &[("group.instance.id", "inst-a")]);
    let (c, _) = subscribed(&b, &group, &topic, &[("group.instance.id", "inst-c")]);
    let mut got = Consumed::new();
    poll_until(&[&a, &c], &mut got, JOIN_TIMEOUT, "2-way split", |m, _| {
        split_ok(m, 4)
    });
    let (before_a, before_c) = (assignment(&a), assignment(&c));
    let revokes_before = arec.revoked.lock().map(|v| v.len()).unwrap_or(0);
    drop(c); // a static member sends no LeaveGroup
    let (c2, _) = subscribed(&b, &group, &topic, &[("group.instance.id", "inst-c")]);
    poll_until(
        &[&a, &c2],
        &mut got,
        JOIN_TIMEOUT,
        "restarted member assigned",
        |m, _| !assignment(m[1]).is_empty(),
    );
    assert_eq!(
        assignment(&c2),
        before_c,
        "same partitions after the restart"
    );
    assert_eq!(assignment(&a), before_a);
    // let heartbeats run: the other member must not have been rebalanced
    settle(&[&a, &c2], &mut got, Duration::from_secs(3));
    let revokes_after = arec.revoked.lock().map(|v| v.len()).unwrap_or(0);
    assert_eq!(
        revokes_before, revokes_after,
        "no rebalance for the other member"
    );
}

/// Keeps polling (heartbeats, rebalance callbacks) for `d`.
fn settle(members: &[&Member], got: &mut Consumed, d: Duration) {
    let end = Instant::now() + d;
    poll_until(members, got, d + TIMEOUT, "settling", |_, _| {
        Instant::now() >= end
    });
}

#[test]
fn cooperative_sticky_revokes_only_what_moves() {
    let b = TestBroker::start();
    let topic = unique("coop");
    create_topic(&b, &topic, 4);
    let group = unique("g-coop");
    let conf = [("partition.assignment.strategy", "cooperative-sticky")];
    let (a, arec) = subscribed(&b, &group, &topic, &conf);
    let mut got = Consumed::new();
    poll_until(&[&a], &mut got, JOIN_TIMEOUT, "first owns all", |m, _| {
        assignment(m[0]) == (0..4).collect()
    });
    let (c, _) = subscribed(&b, &group, &topic, &conf);
    poll_until(
        &[&a, &c],
        &mut got,
        JOIN_TIMEOUT,
        "incremental split",
        |m, _| split_ok(m, 4),
    );
    let kept = assignment(&a);
    assert_eq!(kept.len(), 2);
    let revoked: BTreeSet<i32> = arec
        .revoked
        .lock()
        .map(|v| v.iter().flatten().copied().collect())
        .unwrap_or_default();
    let moved: BTreeSet<i32> = (0..4).filter(|p| !kept.contains(p)).collect();
    assert_eq!(revoked, moved, "only the moved partitions were revoked");
}

#[test]
fn admin_list_describe_delete_groups_and_offsets() {
    let b = TestBroker::start();
    let topic = unique("admin");
    create_topic(&b, &topic, 3);
    produce(&b, &topic, 3, 3);
    let group = unique("g-admin");
    let (m, _) = subscribed(&b, &group, &topic, &[("client.id", "admin-member")]);
    let mut got = Consumed::new();
    poll_until(&[&m], &mut got, JOIN_TIMEOUT, "assigned", |ms, _| {
        assignment(ms[0]).len() == 3
    });
    let mut tpl = TopicPartitionList::new();
    for (p, o) in [(0, 3), (1, 1), (2, 0)] {
        tpl.add_partition_offset(&topic, p, Offset::Offset(o))
            .expect("tpl");
    }
    m.commit(&tpl, CommitMode::Sync).expect("commit");
    // list + describe (ListGroups and DescribeGroups)
    let list = m
        .fetch_group_list(Some(&group), TIMEOUT)
        .expect("group list");
    let g = list
        .groups()
        .iter()
        .find(|g| g.name() == group)
        .expect("listed");
    assert_eq!(g.state(), "Stable");
    assert_eq!(g.protocol_type(), "consumer");
    assert_eq!(g.members().len(), 1);
    assert_eq!(g.members()[0].client_id(), "admin-member");
    // a group with a member cannot be deleted
    let adm = admin(&b);
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let res = block_on(adm.delete_groups(&[&group], &opts)).expect("delete_groups");
    assert!(
        matches!(res[0], Err((_, RDKafkaErrorCode::NonEmptyGroup))),
        "{res:?}"
    );
    drop(m);
    // committed offsets (OffsetFetch) from a fresh client of the group
    let (c, _) = member(&b, &group, &[]);
    let mut q = TopicPartitionList::new();
    for p in 0..3 {
        q.add_partition(&topic, p);
    }
    let committed = c.committed_offsets(q.clone(), TIMEOUT).expect("committed");
    let offs: Vec<_> = committed.elements().iter().map(|e| e.offset()).collect();
    assert_eq!(
        offs,
        vec![Offset::Offset(3), Offset::Offset(1), Offset::Offset(0)]
    );
    let res = block_on(adm.delete_groups(&[&group], &opts)).expect("delete_groups");
    assert!(res[0].is_ok(), "{res:?}");
    let committed = c.committed_offsets(q, TIMEOUT).expect("committed");
    assert!(committed
        .elements()
        .iter()
        .all(|e| e.offset() == Offset::Invalid));
    let res = block_on(adm.delete_groups(&[&group], &opts)).expect("delete_groups");
    assert!(
        matches!(res[0], Err((_, RDKafkaErrorCode::GroupIdNotFound))),
        "{res:?}"
    );
}

/// KIP-345: a second consumer started with a `group.instance.id` in use
/// replaces the first, whose next heartbeat gets FENCED_INSTANCE_ID, fatal
/// for librdkafka: the old consumer stops instead of rejoining, and the
/// two do not keep replacing each other.
#[test]
fn duplicate_static_member_fences_the_old_one() {
    let b = TestBroker::start();
    let topic = unique("static-dup");
    create_topic(&b, &topic, 2);
    let group = unique("g-static-dup");
    let inst = [("group.instance.id", "inst-dup")];
    let (old, _) = subscribed(&b, &group, &topic, &inst);
    let mut got = Consumed::new();
    poll_until(&[&old], &mut got, JOIN_TIMEOUT, "first member", |m, _| {
        assignment(m[0]).len() == 2
    });
    let (new, new_rec) = subscribed(&b, &group, &topic, &inst);
    let deadline = Instant::now() + JOIN_TIMEOUT;
    let fatal = loop {
        let _ = old.poll(Duration::from_millis(20));
        let _ = new.poll(Duration::from_millis(20));
        if let Some(f) = old.client().fatal_error() {
            break f;
        }
        assert!(
            Instant::now() < deadline,
            "the old member was never fenced; assignments old {:?} new {:?}",
            assignment(&old),
            assignment(&new)
        );
    };
    assert_eq!(fatal.0, RDKafkaErrorCode::FencedInstanceId, "{}", fatal.1);
    poll_until(
        &[&new],
        &mut got,
        JOIN_TIMEOUT,
        "new member assigned",
        |m, _| assignment(m[0]).len() == 2,
    );
    // several heartbeat intervals: the new member keeps its partitions
    let revokes = new_rec.revoked.lock().map(|v| v.len()).unwrap_or(0);
    settle(&[&new], &mut got, Duration::from_secs(3));
    assert_eq!(assignment(&new).len(), 2);
    assert_eq!(
        new_rec.revoked.lock().map(|v| v.len()).unwrap_or(0),
        revokes,
        "the new member was not replaced"
    );
}
