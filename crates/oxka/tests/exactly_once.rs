//! Exactly-once with librdkafka (the `rdkafka` crate): the idempotent
//! producer (in order, no duplicates, also across a broker kill -9 with
//! batches in flight) and the transactional producer (commit visible to
//! read_committed, abort hidden from it but visible to read_uncommitted, an
//! open transaction holding read_committed back, offsets sent in a
//! transaction committed atomically with it, zombie fencing).

mod common;

use common::block_on;

use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn create_topic(b: &TestBroker, name: &str, partitions: i32) {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin client");
    let res = block_on(admin.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(1))],
        &AdminOptions::new().operation_timeout(Some(TIMEOUT)),
    ))
    .expect("create topics");
    for r in res {
        r.expect("topic created");
    }
}

fn txn_producer(b: &TestBroker, tid: &str) -> BaseProducer {
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("transactional.id", tid)
        .set("transaction.timeout.ms", "60000")
        .set("linger.ms", "5")
        .create()
        .expect("transactional producer");
    p.init_transactions(TIMEOUT).expect("init_transactions");
    p
}

fn send_all(p: &BaseProducer, topic: &str, values: &[String]) {
    for v in values {
        loop {
            match p.send::<(), _>(BaseRecord::to(topic).partition(0).payload(v.as_bytes())) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(_), _)) => {
                    p.poll(Duration::from_millis(50));
                }
                Err((e, _)) => panic!("send failed: {e}"),
            }
        }
        p.poll(Duration::ZERO);
    }
    p.flush(TIMEOUT).expect("flush");
}

fn values(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}-{i}")).collect()
}

/// Reads partition 0 from the start until `count` records or `wait`.
fn read(b: &TestBroker, topic: &str, isolation: &str, count: usize, wait: Duration) -> Vec<String> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", unique("reader"))
        .set("enable.auto.commit", "false")
        .set("isolation.level", isolation)
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .expect("partition");
    c.assign(&tpl).expect("assign");
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while out.len() < count && Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        }
    }
    out
}

#[test]
fn idempotent_producer_survives_kill9_with_batches_in_flight() {
    let mut b = TestBroker::start();
    let topic = unique("idem");
    create_topic(&b, &topic, 1);
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("batch.num.messages", "20")
        .set("message.timeout.ms", "90000")
        .set("retry.backoff.ms", "200")
        .create()
        .expect("idempotent producer");
    let n = 3000;
    for i in 0..n {
        loop {
            let payload = format!("{i}");
            match p.send::<(), _>(BaseRecord::to(&topic).partition(0).payload(&payload)) {
                Ok(()) => break,
                Err(_) => {
                    p.poll(Duration::from_millis(50));
                }
            }
        }
        if i == n / 2 {
            p.poll(Duration::ZERO);
            b.restart(); // kill -9 while batches are in flight
        }
        p.poll(Duration::ZERO);
    }
    p.flush(Duration::from_secs(90))
        .expect("flush after restart");
    let got = read(&b, &topic, "read_uncommitted", n, Duration::from_secs(60));
    let expected: Vec<String> = (0..n).map(|i| i.to_string()).collect();
    assert_eq!(got.len(), n, "duplicates or losses");
    assert_eq!(got, expected, "records out of order or duplicated");
}

#[test]
fn commit_visible_abort_hidden_from_read_committed() {
    let b = TestBroker::start();
    let topic = unique("txn");
    create_topic(&b, &topic, 1);
    let p = txn_producer(&b, &unique("tid"));
    p.begin_transaction().expect("begin");
    send_all(&p, &topic, &values("aborted", 5));
    p.abort_transaction(TIMEOUT).expect("abort");
    p.begin_transaction().expect("begin");
    send_all(&p, &topic, &values("committed", 5));
    p.commit_transaction(TIMEOUT).expect("commit");

    let rc = read(&b, &topic, "read_committed", 5, TIMEOUT);
    assert_eq!(rc, values("committed", 5));
    // nothing else arrives for read_committed
    let more = read(&b, &topic, "read_committed", 6, Duration::from_secs(3));
    assert_eq!(more.len(), 5);
    let ru = read(&b, &topic, "read_uncommitted", 10, TIMEOUT);
    let mut all = values("aborted", 5);
    all.extend(values("committed", 5));
    assert_eq!(ru, all);
}

#[test]
fn open_transaction_holds_back_read_committed() {
    let b = TestBroker::start();
    let topic = unique("open");
    create_topic(&b, &topic, 1);
    let p = txn_producer(&b, &unique("tid"));
    p.begin_transaction().expect("begin");
    send_all(&p, &topic, &values("pending", 3));
    assert!(read(&b, &topic, "read_committed", 1, Duration::from_secs(3)).is_empty());
    assert_eq!(
        read(&b, &topic, "read_uncommitted", 3, TIMEOUT),
        values("pending", 3)
    );
    p.commit_transaction(TIMEOUT).expect("commit");
    assert_eq!(
        read(&b, &topic, "read_committed", 3, TIMEOUT),
        values("pending", 3)
    );
}

#[test]
fn offsets_sent_in_a_transaction_commit_with_it() {
    let b = TestBroker::start();
    let src = unique("src");
    let dst = unique("dst");
    create_topic(&b, &src, 1);
    create_topic(&b, &dst, 1);
    let group = unique("ctp");
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", &group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("consumer");
    let committed = || -> i64 {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&src, 0);
        let c = consumer.committed_offsets(tpl, TIMEOUT).expect("committed");
        match c.find_partition(&src, 0).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        }
    };
    let p = txn_producer(&b, &unique("tid"));
    let offsets = |o: i64| {
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset(&src, 0, Offset::Offset(o))
            .expect("offset");
        tpl
    };
    let cgm = consumer.group_metadata().expect("group metadata");

    p.begin_transaction().expect("begin");
    send_all(&p, &dst, &values("out", 2));
    p.send_offsets_to_transaction(&offsets(10), &cgm, TIMEOUT)
        .expect("send offsets");
    p.abort_transaction(TIMEOUT).expect("abort");
    assert_eq!(committed(), -1, "offsets of an aborted transaction");

    p.begin_transaction().expect("begin");
    send_all(&p, &dst, &values("out2", 2));
    p.send_offsets_to_transaction(&offsets(7), &cgm, TIMEOUT)
        .expect("send offsets");
    p.commit_transaction(TIMEOUT).expect("commit");
    assert_eq!(committed(), 7);
    assert_eq!(
        read(&b, &dst, "read_committed", 2, TIMEOUT),
        values("out2", 2)
    );
}

#[test]
fn a_second_producer_fences_the_zombie() {
    let b = TestBroker::start();
    let topic = unique("fence");
    create_topic(&b, &topic, 1);
    let tid = unique("tid");
    let zombie = txn_producer(&b, &tid);
    zombie.begin_transaction().expect("begin");
    send_all(&zombie, &topic, &values("zombie", 3));
    let live = txn_producer(&b, &tid); // bumps the epoch, aborts the zombie's txn
    let err = zombie
        .commit_transaction(TIMEOUT)
        .expect_err("the zombie must not commit");
    assert!(
        err.rdkafka_error_code().is_some(),
        "unexpected error kind {err}"
    );
    live.begin_transaction().expect("begin");
    send_all(&live, &topic, &values("live", 2));
    live.commit_transaction(TIMEOUT).expect("commit");
    assert_eq!(
        read(&b, &topic, "read_committed", 2, TIMEOUT),
        values("live", 2)
    );
    assert_eq!(
        read(&b, &topic, "read_committed", 3, Duration::from_secs(3)).len(),
        2
    );
}

#[test]
fn transaction_state_survives_kill9() {
    let mut b = TestBroker::start();
    let topic = unique("durable");
    create_topic(&b, &topic, 1);
    let tid = unique("tid");
    {
        let p = txn_producer(&b, &tid);
        p.begin_transaction().expect("begin");
        send_all(&p, &topic, &values("before", 3));
        p.commit_transaction(TIMEOUT).expect("commit");
        p.begin_transaction().expect("begin");
        send_all(&p, &topic, &values("open", 2));
        // the producer vanishes with its transaction open
    }
    b.restart();
    // the new producer fences the old epoch and aborts the open transaction
    let p = txn_producer(&b, &tid);
    p.begin_transaction().expect("begin");
    send_all(&p, &topic, &values("after", 2));
    p.commit_transaction(TIMEOUT).expect("commit");
    let mut want = values("before", 3);
    want.extend(values("after", 2));
    assert_eq!(read(&b, &topic, "read_committed", 5, TIMEOUT), want);
}
