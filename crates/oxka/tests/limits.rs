//! Partition counts beyond the descriptor limit: segment files are opened
//! on demand and closed when cold, so a broker allowed 256 descriptors
//! hosts 400 partitions of two segments each (2,400 segment files), takes
//! writes to all of them, restarts and serves them all. Before, every
//! segment kept three descriptors open: creation half-failed at ~80
//! partitions and the next start exited with "Too many open files".

mod common;

use std::time::Duration;

use common::TestBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{ClientConfig, Message};

const PARTITIONS: i32 = 400;

async fn produce_one_each(b: &TestBroker, topic: &str, round: i64) {
    let producer: FutureProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("linger.ms", "5")
        .create()
        .unwrap();
    let payloads: Vec<String> = (0..PARTITIONS)
        .map(|p| format!("round {round} partition {p}"))
        .collect();
    let mut pending = Vec::new();
    for (p, payload) in payloads.iter().enumerate() {
        let record = FutureRecord::<(), _>::to(topic)
            .partition(p as i32)
            .payload(payload);
        pending.push(producer.send_result(record).map_err(|(e, _)| e).unwrap());
    }
    for d in pending {
        let delivery = d.await.expect("delivery report");
        let (partition, offset) = match delivery {
            Ok(d) => (d.partition, d.offset),
            Err((e, _)) => panic!("not acknowledged: {e}"),
        };
        assert_eq!(offset, round, "partition {partition}");
    }
}

#[test]
fn many_more_segments_than_descriptors() {
    // 256 descriptors: a budget of 128 segment files, the rest for sockets
    let mut b = TestBroker::start_with_fd_limit(256, &["http.listeners=http://127.0.0.1:0"]);
    let topic = common::unique("many");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", b.bootstrap())
            .create()
            .unwrap();
        // one small batch per segment: the second round rolls every partition
        let new = NewTopic::new(&topic, PARTITIONS, TopicReplication::Fixed(1))
            .set("segment.bytes", "120");
        let res = admin
            .create_topics([&new], &AdminOptions::new())
            .await
            .unwrap();
        assert!(res[0].is_ok(), "{res:?}");
        produce_one_each(&b, &topic, 0).await;
        produce_one_each(&b, &topic, 1).await;
    });
    b.restart();
    let consumer = common::consumer_from_beginning(&b, &topic, 0..PARTITIONS);
    let mut seen = std::collections::HashSet::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while seen.len() < 2 * PARTITIONS as usize {
        assert!(
            std::time::Instant::now() < deadline,
            "read {} of {} records after the restart",
            seen.len(),
            2 * PARTITIONS
        );
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            let m = m.expect("fetch works on every partition");
            let value = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
            assert_eq!(
                value,
                format!("round {} partition {}", m.offset(), m.partition())
            );
            seen.insert((m.partition(), m.offset()));
        }
    }
    // every partition read worked the first time: a fetch of all 400
    // partitions holds no more segment files open than the budget allows
    // (before, reads failed with "Too many open files" and were retried)
    let addr = b.http.clone().expect("the broker's HTTP listener");
    let (status, _, body) = common::http::get(&addr, "/metrics", None);
    assert_eq!(status, 200);
    let failed: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("kafka_server_brokertopicmetrics_failedfetchrequests_total "))
        .and_then(|v| v.trim().parse().ok())
        .expect("the failed fetch counter");
    assert_eq!(failed, 0.0, "partition reads failed");
}
