//! The producer with several batches of one partition in flight
//! (`max.in.flight.requests.per.connection`, 5 by default): with
//! idempotence the log holds every acknowledged record once, in send order,
//! through a broker restart mid-stream and around a batch the broker
//! refuses for good.

mod common;

use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use oxka_client::admin::NewTopic;
use oxka_client::{Admin, ClientConfig, Consumer, Producer, ProducerRecord, TopicPartition};

/// A broker, with the client's logs on the test's output (RUST_LOG, e.g.
/// `oxka_client=debug` shows the retries).
fn broker() -> TestBroker {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(
            std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
        ))
        .with_test_writer()
        .try_init();
    TestBroker::start()
}

/// Small batches, no linger: many batches, so several are in flight.
fn producer_cfg(b: &TestBroker) -> ClientConfig {
    let mut cfg = ClientConfig::with_bootstrap(b.bootstrap());
    cfg.set("batch.size", "1024")
        .set("linger.ms", "0")
        .set("retry.backoff.ms", "50");
    cfg
}

async fn one_partition_topic(b: &TestBroker, prefix: &str) -> String {
    let topic = unique(prefix);
    Admin::new(&ClientConfig::with_bootstrap(b.bootstrap()))
        .expect("admin")
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .expect("create topic");
    topic
}

/// Every value in partition 0 of `topic`, in log order.
async fn read_all(b: &TestBroker, topic: &str, expect: usize) -> Vec<String> {
    let mut c = Consumer::new(&ClientConfig::with_bootstrap(b.bootstrap())).expect("consumer");
    let tp = TopicPartition::new(topic, 0);
    c.assign(vec![tp.clone()]).expect("assign");
    c.seek_to_beginning(&[tp]).await.expect("seek");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut out = Vec::new();
    // a little past `expect`: duplicates would show
    let mut quiet = 0;
    while Instant::now() < deadline && (out.len() < expect || quiet < 3) {
        let recs = c.poll(Duration::from_millis(300)).await.expect("poll");
        if recs.is_empty() && out.len() >= expect {
            quiet += 1;
        }
        out.extend(
            recs.into_iter()
                .map(|r| String::from_utf8(r.value.expect("value").to_vec()).expect("utf-8")),
        );
    }
    out
}

fn value(i: usize) -> String {
    format!("{i:08}-{}", "x".repeat(90))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_kept_and_nothing_duplicated_through_a_broker_restart() {
    let mut b = broker();
    let topic = one_partition_topic(&b, "pipe-restart").await;
    let producer = Producer::new(&producer_cfg(&b)).expect("producer");
    const N: usize = 30_000;
    let mut pending = Vec::with_capacity(N);
    for i in 0..N {
        pending.push(
            producer
                .enqueue(ProducerRecord::new(&topic).partition(0).value(value(i)))
                .await
                .expect("enqueue"),
        );
        if i == N / 3 {
            // batches are in flight now: SIGKILL and start again on the
            // same port and data dir
            tokio::task::block_in_place(|| b.restart());
        }
    }
    let mut offsets = Vec::with_capacity(N);
    for (i, f) in pending.into_iter().enumerate() {
        let m = f
            .await
            .unwrap_or_else(|e| panic!("record {i} not acknowledged: {e}"));
        offsets.push(m.offset);
    }
    producer.close().await.expect("close");
    let got = read_all(&b, &topic, N).await;
    assert_eq!(got.len(), N, "records in the log (duplicates or losses)");
    for (i, v) in got.iter().enumerate() {
        assert_eq!(*v, value(i), "log position {i}");
    }
    // each record's acknowledged offset is where it is
    for (i, o) in offsets.iter().enumerate() {
        assert_eq!(*o, i as i64, "offset of record {i}");
    }
}

/// A batch refused for good (INVALID_TIMESTAMP: two hours ahead, beyond
/// Kafka 4's default message.timestamp.after.max.ms) while later batches
/// are in flight: those come back OUT_OF_ORDER_SEQUENCE_NUMBER, are
/// renumbered and retried, and land in order; only the refused batch's
/// records fail.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_batch_leaves_no_gap_for_the_batches_after_it() {
    let b = broker();
    let topic = one_partition_topic(&b, "pipe-refused").await;
    let producer = Producer::new(&producer_cfg(&b)).expect("producer");
    const N: usize = 5_000;
    const BAD: usize = 2_000;
    let future = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64
        + 2 * 3_600_000;
    let mut pending = Vec::with_capacity(N);
    for i in 0..N {
        let mut rec = ProducerRecord::new(&topic).partition(0).value(value(i));
        if i == BAD {
            rec = rec.timestamp(future);
        }
        pending.push(producer.enqueue(rec).await.expect("enqueue"));
    }
    let mut acked = Vec::new();
    let mut failed = Vec::new();
    for (i, f) in pending.into_iter().enumerate() {
        match f.await {
            Ok(_) => acked.push(value(i)),
            Err(e) => failed.push((i, e.to_string())),
        }
    }
    producer.close().await.expect("close");
    assert!(
        failed
            .iter()
            .any(|(i, e)| *i == BAD && e.contains("INVALID_TIMESTAMP")),
        "{failed:?}"
    );
    // only the refused batch (about ten records of 1 KiB) failed
    assert!(
        failed.iter().all(|(i, _)| i.abs_diff(BAD) < 20),
        "{} failed, first {:?}",
        failed.len(),
        failed.first()
    );
    let got = read_all(&b, &topic, acked.len()).await;
    assert_eq!(got, acked);
}
