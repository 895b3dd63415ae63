//! Acknowledged data survives `kill -9` and restart, and a clean SIGTERM
//! shutdown exits 0 with everything in place.

mod common;

use std::time::Duration;

use common::{unique, TestBroker};
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn read_all(b: &TestBroker, topic: &str, n: usize) -> Vec<(i64, Vec<u8>)> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "oxka-tests-assign-only")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Beginning)
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while out.len() < n && std::time::Instant::now() < deadline {
        if let Some(Ok(m)) = c.poll(Duration::from_millis(200)) {
            out.push((m.offset(), m.payload().unwrap_or_default().to_vec()));
        }
    }
    out
}

async fn produce_acked(b: &TestBroker, topic: &str, n: usize) -> Vec<(i64, Vec<u8>)> {
    let p: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("acks", "1")
        .set("linger.ms", "2")
        .set("batch.size", "4096")
        .set("message.timeout.ms", "30000")
        .create()
        .expect("producer");
    let values: Vec<Vec<u8>> = (0..n).map(|i| format!("record-{i}").into_bytes()).collect();
    let futs: Vec<_> = values
        .iter()
        .map(|v| {
            // send_result enqueues at once, so records batch up under linger.ms
            p.send_result(FutureRecord::<(), _>::to(topic).partition(0).payload(v))
                .expect("enqueue")
        })
        .collect();
    let mut acked = Vec::new();
    for (f, v) in futs.into_iter().zip(values.iter()) {
        let off = f
            .await
            .expect("delivery future")
            .expect("acknowledged")
            .offset;
        acked.push((off, v.clone()));
    }
    acked
}

#[tokio::test(flavor = "multi_thread")]
async fn acknowledged_records_survive_kill_9() {
    let mut b = TestBroker::start_with(&["log.segment.bytes=20000"]);
    let topic = unique("crash");
    let mut acked = produce_acked(&b, &topic, 3000).await;
    b.restart(); // SIGKILL, then start on the same data dir
    let got = read_all(&b, &topic, acked.len());
    acked.sort();
    assert_eq!(
        got, acked,
        "every acknowledged record, in order, at its offset"
    );
    // and the log continues where it stopped
    let more = produce_acked(&b, &topic, 10).await;
    assert_eq!(more[0].0, 3000);
}

#[tokio::test(flavor = "multi_thread")]
async fn clean_shutdown_exits_zero_and_keeps_everything() {
    let mut b = TestBroker::start();
    let topic = unique("clean");
    let acked = produce_acked(&b, &topic, 100).await;
    assert_eq!(b.terminate(), Some(0));
    assert!(b
        .data_path()
        .join("recovery-point-offset-checkpoint")
        .exists());
    assert!(b.data_path().join("meta.properties").exists());
    b.start_again();
    assert_eq!(read_all(&b, &topic, acked.len()), acked);
}
