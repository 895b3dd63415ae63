//! The group and transaction coordinators in a cluster, judged through
//! librdkafka: a consumer group's committed offsets and a transactional
//! producer's transactions survive kill -9 of the broker that coordinates
//! them (its internal-topic partition moves to an in-sync replica, which
//! loads the state from its log).

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::block_on;
use common::cluster::{wait_for, TestCluster};
use kafka_protocol::messages::{FindCoordinatorRequest, FindCoordinatorResponse};
use kafka_protocol::protocol::StrBytes;
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(60);

const FAST: &[&str] = &[
    "broker.session.timeout.ms=2000",
    "broker.heartbeat.interval.ms=200",
    "replica.lag.time.max.ms=2000",
    "replica.fetch.wait.max.ms=200",
    "replica.fetch.backoff.ms=200",
    "offsets.topic.num.partitions=3",
    "transaction.state.log.num.partitions=3",
    "transaction.state.log.min.isr=2",
];

fn create_topic(c: &TestCluster, name: &str, partitions: i32) {
    let a = common::admin_client(&c.bootstrap());
    let opts = AdminOptions::new().operation_timeout(Some(WAIT));
    let topic =
        NewTopic::new(name, partitions, TopicReplication::Fixed(3)).set("min.insync.replicas", "2");
    for r in block_on(a.create_topics(&[topic], &opts)).expect("create topics") {
        r.expect("topic created");
    }
}

/// The node coordinating `key` (0: group, 1: transactional id), asked of
/// any running node until one answers.
fn coordinator(c: &TestCluster, key: &str, key_type: i8) -> i32 {
    wait_for(WAIT, &format!("a coordinator for {key}"), || {
        for id in c.running_brokers() {
            let addr = c.bootstrap_of(id);
            let resp: Option<FindCoordinatorResponse> = block_on(async {
                let conn = oxka_client::Connection::connect(
                    &addr,
                    "coordinator-test",
                    Duration::from_secs(5),
                    Duration::from_secs(10),
                    1 << 20,
                )
                .await
                .ok()?;
                let req = FindCoordinatorRequest::default()
                    .with_key_type(key_type)
                    .with_coordinator_keys(vec![StrBytes::from_string(key.to_string())]);
                conn.send_at(req, 4).await.ok()
            });
            if let Some(r) = resp {
                if let Some(k) = r.coordinators.first() {
                    if k.error_code == 0 && k.node_id.0 >= 0 {
                        return Some(k.node_id.0);
                    }
                }
            }
        }
        None
    })
}

fn consumer(c: &TestCluster, group: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("session.timeout.ms", "6000")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("consumer")
}

fn produce(c: &TestCluster, topic: &str, values: impl Iterator<Item = String>) {
    let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("acks", "all")
        .create()
        .expect("producer");
    for v in values {
        p.send(BaseRecord::to(topic).payload(&v).key(&v))
            .map_err(|(e, _)| e)
            .expect("queued");
    }
    p.flush(WAIT).expect("flush");
}

/// Reads `partitions` of `topic` from `from` (partition -> offset) until
/// `count` records or the deadline; (partition, offset) pairs.
fn read_from(
    c: &BaseConsumer,
    topic: &str,
    from: &[(i32, i64)],
    count: usize,
) -> BTreeSet<(i32, i64)> {
    let mut tpl = TopicPartitionList::new();
    for (p, o) in from {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*o))
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut seen = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while seen.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            seen.insert((m.partition(), m.offset()));
        }
    }
    seen
}

// The consumers assign partitions and commit for their group without
// joining it: librdkafka 2.12 hangs in rd_kafka_destroy when a subscribed
// consumer is dropped in this sequence (its broker threads never exit),
// a client bug unrelated to the broker. Group membership across a
// coordinator's death is covered by the conformance suite's
// test_consumer_group_survives_coordinator_kill9.
#[test]
fn committed_offsets_survive_kill9_of_the_group_coordinator() {
    let mut c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "cg", 3);
    produce(&c, "cg", (0..300).map(|i| format!("v-{i}")));
    let group = "survivors";
    let first = consumer(&c, group);
    let start: Vec<(i32, i64)> = (0..3).map(|p| (p, 0)).collect();
    let seen = read_from(&first, "cg", &start, 150);
    assert!(seen.len() >= 150, "read {} records", seen.len());
    // commit the next offset of each partition read
    let mut commit = TopicPartitionList::new();
    let mut committed: Vec<(i32, i64)> = Vec::new();
    for p in 0..3 {
        let next = seen
            .iter()
            .filter(|(q, _)| *q == p)
            .map(|(_, o)| o + 1)
            .max()
            .unwrap_or(0);
        commit
            .add_partition_offset("cg", p, Offset::Offset(next))
            .expect("tpl");
        committed.push((p, next));
    }
    first
        .commit(&commit, CommitMode::Sync)
        .expect("offsets committed");
    drop(first);

    let victim = coordinator(&c, group, 0);
    c.kill9(victim);
    // fenced after broker.session.timeout.ms; its partition moves
    wait_for(WAIT, "a new group coordinator", || {
        (coordinator(&c, group, 0) != victim).then_some(())
    });

    // the new coordinator loaded the commits from its replica of the log
    let second = consumer(&c, group);
    let mut tpl = TopicPartitionList::new();
    for p in 0..3 {
        tpl.add_partition("cg", p);
    }
    let back = wait_for(
        WAIT,
        "the committed offsets from the new coordinator",
        || {
            second
                .committed_offsets(tpl.clone(), Duration::from_secs(5))
                .ok()
        },
    );
    for (p, o) in &committed {
        let got = back
            .find_partition("cg", *p)
            .map(|e| e.offset())
            .expect("partition listed");
        assert_eq!(got, Offset::Offset(*o), "partition {p}");
    }
    // resuming from them reads exactly the rest
    let rest = read_from(&second, "cg", &committed, 300 - seen.len());
    assert!(rest.is_disjoint(&seen), "records read twice");
    assert_eq!(seen.len() + rest.len(), 300, "every record read once");
    // and commits go on through the new coordinator
    let mut more = TopicPartitionList::new();
    more.add_partition_offset("cg", 0, Offset::Offset(1))
        .expect("tpl");
    second
        .commit(&more, CommitMode::Sync)
        .expect("commit after the failover");
}

#[test]
fn transactions_end_all_or_nothing_across_kill9_of_their_coordinator() {
    let mut c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "tx", 3);
    let txn_id = "mover";
    let producer = |c: &TestCluster| -> ThreadedProducer<DefaultProducerContext> {
        let p: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap())
            .set("transactional.id", txn_id)
            .set("transaction.timeout.ms", "60000")
            .set("topic.metadata.refresh.interval.ms", "500")
            .create()
            .expect("producer");
        p.init_transactions(WAIT).expect("init transactions");
        p
    };
    let write = |p: &ThreadedProducer<DefaultProducerContext>, prefix: &str| {
        for i in 0..30 {
            let v = format!("{prefix}-{i}");
            p.send(BaseRecord::to("tx").payload(&v).key(&v).partition(i % 3))
                .map_err(|(e, _)| e)
                .expect("queued");
        }
    };
    let p = producer(&c);
    p.begin_transaction().expect("begin");
    write(&p, "committed");
    p.commit_transaction(WAIT).expect("commit");
    // an open transaction whose coordinator dies
    p.begin_transaction().expect("begin");
    write(&p, "open");
    p.flush(WAIT).expect("flush");
    let victim = coordinator(&c, txn_id, 1);
    c.kill9(victim);
    drop(p);
    wait_for(WAIT, "a new transaction coordinator", || {
        let now = coordinator(&c, txn_id, 1);
        (now != victim).then_some(())
    });
    // the same transactional id again: fences the old producer, its open
    // transaction is aborted, and the new one commits
    let p = producer(&c);
    p.begin_transaction().expect("begin");
    write(&p, "after");
    p.commit_transaction(WAIT)
        .expect("commit after the failover");

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", "tx-reader")
        .set("isolation.level", "read_committed")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    consumer.subscribe(&["tx"]).expect("subscribe");
    let mut values = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    let mut quiet = Instant::now();
    while Instant::now() < deadline
        && (values.len() < 60 || quiet.elapsed() < Duration::from_secs(3))
    {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            values.insert(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
            quiet = Instant::now();
        }
    }
    let open: Vec<_> = values.iter().filter(|v| v.starts_with("open")).collect();
    assert!(
        open.is_empty(),
        "read_committed saw the aborted transaction: {open:?}"
    );
    for prefix in ["committed", "after"] {
        let n = values.iter().filter(|v| v.starts_with(prefix)).count();
        assert_eq!(n, 30, "{prefix}: {n} of 30 records");
    }
}
