//! KIP-848 consumer groups (`group.protocol=consumer`) driven by librdkafka
//! through the `rdkafka` crate: the server-side assignor splits a topic,
//! partitions move when a member leaves, committed offsets resume, and a
//! group re-forms after a broker crash.

mod common;

use common::block_on;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);
const JOIN_TIMEOUT: Duration = Duration::from_secs(60);
/// A short heartbeat interval so that reassignments are seen quickly.
const BROKER_OVERRIDES: &[&str] = &["group.consumer.heartbeat.interval.ms=500"];

fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin client");
    let res = block_on(admin.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
    ))
    .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

/// `per` records to each partition, values `{tag}p{partition}-{i}`.
fn produce(b: &TestBroker, topic: &str, partitions: i32, per: usize, tag: &str) {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("producer");
    for part in 0..partitions {
        for i in 0..per {
            let v = format!("{tag}p{part}-{i}");
            p.send(BaseRecord::<(), _>::to(topic).partition(part).payload(&v))
                .expect("enqueue");
        }
    }
    p.flush(TIMEOUT).expect("flush");
}

fn expected(tag: &str, partitions: i32, per: usize) -> Vec<String> {
    let mut v: Vec<String> = (0..partitions)
        .flat_map(|p| (0..per).map(move |i| format!("{tag}p{p}-{i}")))
        .collect();
    v.sort();
    v
}

/// A KIP-848 consumer: no session or heartbeat settings (the broker owns
/// them under this protocol).
fn consumer(b: &TestBroker, group: &str, topic: &str) -> BaseConsumer {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    c.subscribe(&[topic]).expect("subscribe");
    c
}

fn assignment(c: &BaseConsumer) -> BTreeSet<i32> {
    c.assignment()
        .map(|tpl| tpl.elements().iter().map(|e| e.partition()).collect())
        .unwrap_or_default()
}

/// Per member: (partition, value) consumed.
type Consumed = Vec<Vec<(i32, String)>>;

/// Polls every member (committing each record synchronously) until `done`.
fn poll_until(
    members: &[&BaseConsumer],
    got: &mut Consumed,
    timeout: Duration,
    what: &str,
    done: impl Fn(&[&BaseConsumer], &Consumed) -> bool,
) {
    got.resize(members.len(), Vec::new());
    let deadline = Instant::now() + timeout;
    // A commit racing a member-epoch bump gets STALE_MEMBER_EPOCH (Kafka's
    // rule); the member keeps polling (which serves its heartbeats) and
    // retries once it has the new epoch.
    let mut pending: Vec<Option<TopicPartitionList>> = vec![None; members.len()];
    loop {
        for (i, m) in members.iter().enumerate() {
            if let Some(Ok(msg)) = m.poll(Duration::from_millis(20)) {
                let v = msg
                    .payload()
                    .map(|p| String::from_utf8_lossy(p).into_owned())
                    .unwrap_or_default();
                got[i].push((msg.partition(), v));
                let tpl = pending[i].get_or_insert_with(TopicPartitionList::new);
                let next = Offset::Offset(msg.offset() + 1);
                if tpl.find_partition(msg.topic(), msg.partition()).is_some() {
                    tpl.set_partition_offset(msg.topic(), msg.partition(), next)
                        .expect("offset");
                } else {
                    tpl.add_partition_offset(msg.topic(), msg.partition(), next)
                        .expect("offset");
                }
            }
            if let Some(tpl) = pending[i].take() {
                match m.commit(&tpl, CommitMode::Sync) {
                    Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::StaleMemberEpoch)) => {
                        pending[i] = Some(tpl)
                    }
                    other => other.expect("sync commit"),
                }
            }
        }
        if pending.iter().all(Option::is_none) && done(members, got) {
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
fn split_ok(members: &[&BaseConsumer], partitions: i32) -> bool {
    let sets: Vec<_> = members.iter().map(|m| assignment(m)).collect();
    let total: usize = sets.iter().map(BTreeSet::len).sum();
    let union: BTreeSet<i32> = sets.iter().flatten().copied().collect();
    sets.iter().all(|s| !s.is_empty()) && total == union.len() && union == (0..partitions).collect()
}

fn total(got: &Consumed) -> usize {
    got.iter().map(Vec::len).sum()
}

fn values(got: &Consumed) -> Vec<String> {
    let mut v: Vec<String> = got.iter().flatten().map(|r| r.1.clone()).collect();
    v.sort();
    v
}

#[test]
fn kip848_three_members_split_leave_and_resume() {
    let b = TestBroker::start_with(BROKER_OVERRIDES);
    let topic = unique("k848");
    create_topic(&b, &topic, 6);
    let group = unique("g-k848");
    let ms: Vec<BaseConsumer> = (0..3).map(|_| consumer(&b, &group, &topic)).collect();
    let refs: Vec<&BaseConsumer> = ms.iter().collect();
    let mut got = Consumed::new();
    // Members joining one after another pass through valid splits that are
    // not the target (1/3/2 while a partition is still being revoked), so
    // wait for the uniform assignor's 2/2/2.
    poll_until(
        &refs,
        &mut got,
        JOIN_TIMEOUT,
        "3-way 2/2/2 split",
        |m, _| split_ok(m, 6) && m.iter().all(|c| assignment(c).len() == 2),
    );
    for m in &refs {
        assert_eq!(assignment(m).len(), 2);
    }
    let owned: Vec<_> = refs.iter().map(|m| assignment(m)).collect();
    produce(&b, &topic, 6, 5, "a");
    poll_until(&refs, &mut got, TIMEOUT, "all records", |_, g| {
        total(g) >= 30
    });
    for (i, recs) in got.iter().enumerate() {
        for (p, _) in recs {
            assert!(
                owned[i].contains(p),
                "member {i} got partition {p} it does not own"
            );
        }
    }
    assert_eq!(
        values(&got),
        expected("a", 6, 5),
        "every record exactly once"
    );

    // one member leaves: the other two take over its partitions
    let mut ms = ms;
    let gone = ms.pop().expect("three members");
    let gone_partitions = assignment(&gone);
    drop(gone);
    let refs: Vec<&BaseConsumer> = ms.iter().collect();
    let mut got = Consumed::new();
    poll_until(
        &refs,
        &mut got,
        JOIN_TIMEOUT,
        "2-way split after leave",
        |m, _| split_ok(m, 6),
    );
    let now_owned: BTreeSet<i32> = refs.iter().flat_map(|m| assignment(m)).collect();
    assert!(gone_partitions.is_subset(&now_owned));

    // committed offsets resume: only the new records come, once each
    produce(&b, &topic, 6, 3, "b");
    poll_until(&refs, &mut got, TIMEOUT, "new records", |_, g| {
        total(g) >= 18
    });
    std::thread::sleep(Duration::from_millis(500));
    poll_until(&refs, &mut got, TIMEOUT, "nothing more", |_, _| true);
    assert_eq!(
        values(&got),
        expected("b", 6, 3),
        "no record repeated or skipped"
    );

    // and a fresh member of the group after everyone left resumes too
    drop(ms);
    produce(&b, &topic, 6, 1, "c");
    let c = consumer(&b, &group, &topic);
    let mut got = Consumed::new();
    poll_until(&[&c], &mut got, JOIN_TIMEOUT, "resumed records", |_, g| {
        total(g) >= 6
    });
    assert_eq!(values(&got), expected("c", 6, 1));
}

#[test]
fn kip848_group_reforms_after_broker_crash() {
    let mut b = TestBroker::start_with(BROKER_OVERRIDES);
    let topic = unique("k848-crash");
    create_topic(&b, &topic, 4);
    let group = unique("g-k848-crash");
    let ms: Vec<BaseConsumer> = (0..2).map(|_| consumer(&b, &group, &topic)).collect();
    let refs: Vec<&BaseConsumer> = ms.iter().collect();
    let mut got = Consumed::new();
    poll_until(&refs, &mut got, JOIN_TIMEOUT, "2-way split", |m, _| {
        split_ok(m, 4)
    });
    produce(&b, &topic, 4, 2, "a");
    poll_until(&refs, &mut got, TIMEOUT, "records", |_, g| total(g) >= 8);
    b.restart();
    produce(&b, &topic, 4, 2, "b");
    let mut got = Consumed::new();
    poll_until(
        &refs,
        &mut got,
        JOIN_TIMEOUT,
        "records after restart",
        |m, g| total(g) >= 8 && split_ok(m, 4),
    );
    assert_eq!(
        values(&got),
        expected("b", 4, 2),
        "resumed from the commits"
    );
}

/// Commits `offset` on partition 0 of `topic` and returns the result,
/// retrying only while the restarted coordinator is not reachable yet
/// (connection refused, loading): never on an epoch error.
fn commit_once_reachable(c: &BaseConsumer, topic: &str, offset: i64) -> Result<(), KafkaError> {
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(offset))
        .expect("offset");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        match c.commit(&tpl, CommitMode::Sync) {
            Err(KafkaError::ConsumerCommit(
                RDKafkaErrorCode::CoordinatorLoadInProgress
                | RDKafkaErrorCode::CoordinatorNotAvailable
                | RDKafkaErrorCode::NotCoordinator
                | RDKafkaErrorCode::BrokerTransportFailure
                | RDKafkaErrorCode::AllBrokersDown
                | RDKafkaErrorCode::RequestTimedOut
                | RDKafkaErrorCode::OperationTimedOut,
            )) if Instant::now() < deadline => {
                let _ = c.poll(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// KIP-848: the coordinator keeps member epochs when it loads a group
/// (Kafka's coordinator only restarts the members' timers), so the first
/// commit after a broker restart, clean or crash, carries a valid epoch.
#[test]
fn kip848_first_commit_after_broker_restart_succeeds() {
    let mut b = TestBroker::start_with(BROKER_OVERRIDES);
    let topic = unique("k848-restart-commit");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, 1, 4, "a");
    let group = unique("g-k848-restart-commit");
    let c = consumer(&b, &group, &topic);
    let mut got = Consumed::new();
    poll_until(&[&c], &mut got, JOIN_TIMEOUT, "records", |_, g| {
        total(g) >= 4
    });
    for (round, crash) in [(1, false), (2, true)] {
        if crash {
            b.kill9();
        } else {
            assert_eq!(b.terminate(), Some(0), "clean shutdown");
        }
        b.start_again();
        let r = commit_once_reachable(&c, &topic, round);
        assert!(
            r.is_ok(),
            "first commit after {} failed: {r:?}",
            if crash { "kill -9" } else { "SIGTERM" }
        );
    }
}

/// A `group.protocol=consumer` client committing for manually assigned
/// partitions (no subscription): its commits carry epoch -1 (and, from
/// librdkafka 2.15, its own member id), which Kafka accepts while the
/// group has no members, whether the group is new or a consumer group
/// whose members have left.
#[test]
fn kip848_manual_assignment_commits() {
    let b = TestBroker::start_with(BROKER_OVERRIDES);
    let topic = unique("k848-manual");
    create_topic(&b, &topic, 1);
    produce(&b, &topic, 1, 4, "a");
    let group = unique("g-k848-manual");
    let manual: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", &group)
        .set("group.protocol", "consumer")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Beginning)
        .expect("partition");
    manual.assign(&tpl).expect("assign");
    let committed = |c: &BaseConsumer| {
        c.committed(TIMEOUT)
            .expect("committed")
            .find_partition(&topic, 0)
            .map(|e| e.offset())
    };
    assert_eq!(
        commit_once_reachable(&manual, &topic, 2).map_err(|e| e.to_string()),
        Ok(())
    );
    assert_eq!(committed(&manual), Some(Offset::Offset(2)));
    // the group becomes a consumer group, then its only member leaves
    {
        let member = consumer(&b, &group, &topic);
        let mut got = Consumed::new();
        poll_until(&[&member], &mut got, JOIN_TIMEOUT, "records", |_, g| {
            total(g) >= 2
        });
        member.unsubscribe();
        let _ = member.poll(Duration::from_millis(200));
    }
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        match commit_once_reachable(&manual, &topic, 3) {
            Ok(()) => break,
            // until the member's leave reaches the coordinator
            Err(KafkaError::ConsumerCommit(RDKafkaErrorCode::UnknownMemberId))
                if Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(e) => panic!("commit to the emptied consumer group: {e}"),
        }
    }
    assert_eq!(committed(&manual), Some(Offset::Offset(3)));
}

/// KIP-848 group configs set with IncrementalAlterConfigs (resource type
/// GROUP) are kept across a clean restart and a crash, as topic configs.
#[test]
fn group_configs_survive_restarts() {
    use oxka_client::admin::{Admin, AlterConfigOp, ConfigResource};
    use oxka_client::config::ClientConfig as OxkaConfig;
    let mut b = TestBroker::start();
    let group = ConfigResource::Group(unique("g-configs"));
    let admin = |b: &TestBroker| {
        let mut c = OxkaConfig::new();
        c.set("bootstrap.servers", b.bootstrap());
        Admin::new(&c).expect("admin")
    };
    let value_of = |b: &TestBroker, key: &str| {
        block_on(async {
            let entries = admin(b)
                .describe_configs(&group, &[key.to_string()])
                .await
                .expect("describe");
            entries
                .into_iter()
                .find(|e| e.name == key)
                .map(|e| (e.value, e.source))
        })
    };
    block_on(async {
        admin(&b)
            .incremental_alter_configs(
                &group,
                &[
                    AlterConfigOp::Set("consumer.heartbeat.interval.ms".into(), "7000".into()),
                    AlterConfigOp::Set("consumer.session.timeout.ms".into(), "50000".into()),
                ],
            )
            .await
    })
    .expect("alter");
    let expect = Some((Some("7000".to_string()), "GROUP_CONFIG".to_string()));
    assert_eq!(value_of(&b, "consumer.heartbeat.interval.ms"), expect);
    assert_eq!(b.terminate(), Some(0));
    b.start_again();
    assert_eq!(
        value_of(&b, "consumer.heartbeat.interval.ms"),
        expect,
        "after SIGTERM"
    );
    b.restart();
    assert_eq!(
        value_of(&b, "consumer.heartbeat.interval.ms"),
        expect,
        "after kill -9"
    );
    assert_eq!(
        value_of(&b, "consumer.session.timeout.ms"),
        Some((Some("50000".to_string()), "GROUP_CONFIG".to_string()))
    );
}
