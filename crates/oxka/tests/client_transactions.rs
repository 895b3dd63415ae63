//! oxka-client's transactional producer against the real broker, judged
//! by librdkafka (the `rdkafka` crate): committed transactions over three
//! partitions are seen by read_committed readers and aborted ones are not
//! (read_uncommitted sees both); a second producer with the same
//! `transactional.id` fences the first; offsets sent with a transaction
//! are committed only if it commits.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use oxka_client::admin::NewTopic;
use oxka_client::{
    Admin, ClientConfig, Error, KafkaCode, Producer, ProducerRecord, TopicPartition,
    TransactionState,
};

const PARTITIONS: i32 = 3;

fn broker() -> TestBroker {
    common::client_test_broker()
}

async fn topic(b: &TestBroker, prefix: &str) -> String {
    let name = unique(prefix);
    Admin::new(&ClientConfig::with_bootstrap(b.bootstrap()))
        .unwrap()
        .create_topic(NewTopic::new(&name, PARTITIONS, 1))
        .await
        .unwrap();
    name
}

fn txn_producer(b: &TestBroker, tid: &str) -> Producer {
    let mut cfg = ClientConfig::with_bootstrap(b.bootstrap());
    cfg.set("transactional.id", tid)
        .set("linger.ms", "5")
        .set("max.block.ms", "30000");
    Producer::new(&cfg).unwrap()
}

/// Every value of `topic` (all partitions, from the start) that
/// librdkafka reads with `isolation`, waiting until `expect` values came
/// and then a little longer for any that should not be there.
async fn read_all(b: &TestBroker, topic: &str, isolation: &str, expect: usize) -> Vec<String> {
    let (bootstrap, topic, isolation) = (b.bootstrap(), topic.to_string(), isolation.to_string());
    tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::message::Message;
        use rdkafka::{Offset, TopicPartitionList};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", unique("reader"))
            .set("enable.auto.commit", "false")
            .set("isolation.level", &isolation)
            .create()
            .expect("rdkafka consumer");
        let mut tpl = TopicPartitionList::new();
        for p in 0..PARTITIONS {
            tpl.add_partition_offset(&topic, p, Offset::Beginning)
                .unwrap();
        }
        c.assign(&tpl).unwrap();
        let mut out = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        let mut quiet_until: Option<Instant> = None;
        loop {
            let now = Instant::now();
            if now > deadline || quiet_until.is_some_and(|q| now > q) {
                break;
            }
            if let Some(m) = c.poll(Duration::from_millis(100)) {
                let m = m.expect("rdkafka poll");
                out.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
            }
            if out.len() >= expect && quiet_until.is_none() {
                quiet_until = Some(Instant::now() + Duration::from_secs(1));
            }
        }
        out
    })
    .await
    .unwrap()
}

fn sorted(v: Vec<String>) -> Vec<String> {
    let mut v = v;
    v.sort();
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_transactions_are_read_and_aborted_ones_are_not() {
    let b = broker();
    let topic = topic(&b, "txn").await;
    let p = txn_producer(&b, &unique("tid"));
    assert_eq!(p.transaction_state(), Some(TransactionState::Uninitialized));
    p.init_transactions().await.unwrap();
    let (mut committed, mut aborted) = (Vec::new(), Vec::new());
    // aborted records the broker acknowledged (an abort fails the ones
    // still queued)
    let mut written_aborted = Vec::new();
    for t in 0..8 {
        let commit = t % 3 != 1;
        p.begin_transaction().await.unwrap();
        let mut pending = Vec::new();
        let mut values = Vec::new();
        for partition in 0..PARTITIONS {
            for k in 0..4 {
                let v = format!("t{t}-p{partition}-{k}");
                let rec = ProducerRecord::new(&topic)
                    .partition(partition)
                    .value(v.clone());
                if t % 2 == 0 {
                    // queued only: commit_transaction flushes them
                    pending.push(p.enqueue(rec).await.unwrap());
                } else {
                    p.send(rec).await.unwrap();
                }
                values.push(v);
            }
        }
        if commit {
            p.commit_transaction().await.unwrap();
            for f in pending {
                assert!(
                    f.await.unwrap().offset >= 0,
                    "acknowledged before the commit"
                );
            }
            committed.extend(values);
        } else {
            p.abort_transaction().await.unwrap();
            if pending.is_empty() {
                written_aborted.extend(values.iter().cloned());
            }
            for (f, v) in pending.into_iter().zip(&values) {
                // sent before the abort (acknowledged), or failed by it
                match f.await {
                    Ok(_) => written_aborted.push(v.clone()),
                    Err(e) => assert!(e.is_abortable_transaction_error(), "{e}"),
                }
            }
            aborted.extend(values);
        }
        assert_eq!(p.transaction_state(), Some(TransactionState::Ready));
    }
    // the open transaction of a transaction never committed holds
    // read_committed back at its first offset
    p.begin_transaction().await.unwrap();
    p.send(ProducerRecord::new(&topic).partition(0).value("open"))
        .await
        .unwrap();

    let got = read_all(&b, &topic, "read_committed", committed.len()).await;
    // partition 0 stops at the open transaction, the others do not
    let visible: Vec<String> = committed.clone();
    assert_eq!(sorted(got.clone()), sorted(visible), "read_committed");
    assert!(!got.iter().any(|v| aborted.contains(v)));

    p.commit_transaction().await.unwrap();
    committed.push("open".into());
    let got = read_all(&b, &topic, "read_committed", committed.len()).await;
    assert_eq!(sorted(got), sorted(committed.clone()), "read_committed");
    assert!(
        written_aborted.len() >= 24,
        "aborted transactions were written"
    );
    let mut all = committed.clone();
    all.extend(written_aborted.iter().cloned());
    let got = read_all(&b, &topic, "read_uncommitted", all.len()).await;
    assert_eq!(sorted(got), sorted(all), "read_uncommitted sees both");
    p.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_producer_with_the_same_transactional_id_fences_the_old_one() {
    let b = broker();
    let topic = topic(&b, "fence").await;
    let tid = unique("tid");
    let fenced = Some(KafkaCode(KafkaCode::PRODUCER_FENCED));

    // 1: fenced with a transaction open: its commit fails, and the
    // broker aborted what it wrote
    let old = txn_producer(&b, &tid);
    old.init_transactions().await.unwrap();
    old.begin_transaction().await.unwrap();
    old.send(ProducerRecord::new(&topic).partition(0).value("zombie"))
        .await
        .unwrap();
    let new = txn_producer(&b, &tid);
    new.init_transactions().await.unwrap();
    let e = old.commit_transaction().await.unwrap_err();
    assert!(e.is_fatal_transaction_error(), "{e}");
    assert_eq!(e.kafka_code(), fenced, "{e}");
    assert_eq!(old.transaction_state(), Some(TransactionState::FatalError));
    // every later call returns the same error
    let e = old.begin_transaction().await.unwrap_err();
    assert_eq!(e.kafka_code(), fenced, "{e}");
    let e = old.abort_transaction().await.unwrap_err();
    assert_eq!(e.kafka_code(), fenced, "{e}");

    // 2: fenced between transactions: its next send fails (the
    // partition cannot join its transaction)
    new.begin_transaction().await.unwrap();
    new.send(ProducerRecord::new(&topic).partition(1).value("kept"))
        .await
        .unwrap();
    new.commit_transaction().await.unwrap();
    let newest = txn_producer(&b, &tid);
    newest.init_transactions().await.unwrap();
    new.begin_transaction().await.unwrap();
    let e = new
        .send(
            ProducerRecord::new(&topic)
                .partition(2)
                .value("late zombie"),
        )
        .await
        .unwrap_err();
    assert!(e.is_fatal_transaction_error(), "{e}");
    assert_eq!(e.kafka_code(), fenced, "{e}");
    let e = new.commit_transaction().await.unwrap_err();
    assert_eq!(e.kafka_code(), fenced, "{e}");
    let e = match new
        .send(ProducerRecord::new(&topic).partition(2).value("x"))
        .await
    {
        Err(e) => e,
        Ok(m) => panic!("a fenced producer wrote at {m:?}"),
    };
    assert!(matches!(e, Error::Transaction { fatal: true, .. }), "{e}");

    // the newest instance works
    newest.begin_transaction().await.unwrap();
    newest
        .send(ProducerRecord::new(&topic).partition(0).value("newest"))
        .await
        .unwrap();
    newest.commit_transaction().await.unwrap();
    let got = read_all(&b, &topic, "read_committed", 2).await;
    assert_eq!(sorted(got), ["kept", "newest"]);
}

async fn group_offsets(admin: &Admin, group: &str) -> BTreeMap<TopicPartition, i64> {
    admin.list_group_offsets(group).await.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offsets_sent_with_a_transaction_commit_only_with_it() {
    let b = broker();
    let topic = topic(&b, "offsets").await;
    let admin = Admin::new(&ClientConfig::with_bootstrap(b.bootstrap())).unwrap();
    let group = unique("eos-group");
    let p = txn_producer(&b, &unique("tid"));
    p.init_transactions().await.unwrap();
    let tp0 = TopicPartition::new(&topic, 0);
    let tp1 = TopicPartition::new(&topic, 1);

    // committed with the transaction
    p.begin_transaction().await.unwrap();
    p.send(ProducerRecord::new(&topic).partition(2).value("out-1"))
        .await
        .unwrap();
    let offsets = BTreeMap::from([(tp0.clone(), 5), (tp1.clone(), 7)]);
    p.send_offsets_to_transaction(&offsets, group.as_str())
        .await
        .unwrap();
    assert!(
        group_offsets(&admin, &group).await.is_empty(),
        "nothing committed before the transaction"
    );
    p.commit_transaction().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = group_offsets(&admin, &group).await;
    while got != offsets && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = group_offsets(&admin, &group).await;
    }
    assert_eq!(got, offsets, "offsets committed with the transaction");

    // aborted with the transaction: the earlier offsets stay
    p.begin_transaction().await.unwrap();
    p.send(ProducerRecord::new(&topic).partition(2).value("out-2"))
        .await
        .unwrap();
    let more = BTreeMap::from([(tp0.clone(), 50), (tp1.clone(), 70)]);
    p.send_offsets_to_transaction(&more, group.as_str())
        .await
        .unwrap();
    p.abort_transaction().await.unwrap();
    // offsets only (no record): a transaction that is started by the offsets
    p.begin_transaction().await.unwrap();
    let only = BTreeMap::from([(tp1.clone(), 9)]);
    p.send_offsets_to_transaction(&only, group.as_str())
        .await
        .unwrap();
    p.commit_transaction().await.unwrap();
    let want = BTreeMap::from([(tp0, 5), (tp1, 9)]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = group_offsets(&admin, &group).await;
    while got != want && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
        got = group_offsets(&admin, &group).await;
    }
    assert_eq!(got, want, "the aborted transaction's offsets never applied");

    // librdkafka agrees
    let (bootstrap, g, t) = (b.bootstrap(), group.clone(), topic.clone());
    let committed: BTreeSet<(i32, i64)> = tokio::task::spawn_blocking(move || {
        use rdkafka::consumer::{BaseConsumer, Consumer};
        use rdkafka::{Offset, TopicPartitionList};
        let c: BaseConsumer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .set("group.id", &g)
            .set("enable.auto.commit", "false")
            .create()
            .unwrap();
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition(&t, 0);
        tpl.add_partition(&t, 1);
        let got = c.committed_offsets(tpl, Duration::from_secs(10)).unwrap();
        got.elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(o) => (e.partition(), o),
                other => panic!("partition {} has {other:?}", e.partition()),
            })
            .collect()
    })
    .await
    .unwrap();
    assert_eq!(committed, BTreeSet::from([(0, 5), (1, 9)]));
    let got = read_all(&b, &topic, "read_committed", 1).await;
    assert_eq!(got, ["out-1"]);

    // consume-transform-produce with a subscribed member's metadata: the
    // coordinator checks its generation and member id
    let mut ccfg = ClientConfig::with_bootstrap(b.bootstrap());
    let member_group = unique("ctp-group");
    ccfg.set("group.id", &member_group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed");
    let mut consumer = oxka_client::Consumer::new(&ccfg).unwrap();
    consumer.subscribe(&[topic.as_str()]).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut records = Vec::new();
    while records.is_empty() && Instant::now() < deadline {
        records = consumer.poll(Duration::from_millis(500)).await.unwrap();
    }
    assert_eq!(records.len(), 1, "the one committed record");
    let meta = consumer.group_metadata().expect("group metadata");
    assert!(
        meta.generation_id > 0 && !meta.member_id.is_empty(),
        "{meta:?}"
    );
    let tp2 = TopicPartition::new(&topic, 2);
    p.begin_transaction().await.unwrap();
    p.send(ProducerRecord::new(&topic).partition(0).value("derived"))
        .await
        .unwrap();
    let next = BTreeMap::from([(tp2.clone(), records[0].offset + 1)]);
    p.send_offsets_to_transaction(&next, &meta).await.unwrap();
    p.commit_transaction().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut got = BTreeMap::new();
    while got != next && Instant::now() < deadline {
        got = consumer
            .committed(std::slice::from_ref(&tp2))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        got, next,
        "offsets of a group member committed with the transaction"
    );
    // a stale generation is refused: the transaction cannot commit
    let stale = oxka_client::ConsumerGroupMetadata {
        generation_id: meta.generation_id + 100,
        ..meta.clone()
    };
    p.begin_transaction().await.unwrap();
    let e = p
        .send_offsets_to_transaction(&next, &stale)
        .await
        .unwrap_err();
    assert!(e.is_abortable_transaction_error(), "{e}");
    assert_eq!(
        p.transaction_state(),
        Some(TransactionState::AbortableError)
    );
    assert!(p
        .commit_transaction()
        .await
        .unwrap_err()
        .is_abortable_transaction_error());
    p.abort_transaction().await.unwrap();
    consumer.close().await.unwrap();
    p.close().await.unwrap();
}
