//! oxka-client and librdkafka (the `rdkafka` crate) read each other's
//! records identically: keys, values, headers, timestamps, partitions
//! (librdkafka's `murmur2_random` is Java's partitioner, as is ours).

mod common;

use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use oxka_client::admin::NewTopic;
use oxka_client::{
    Admin, ClientConfig, Consumer, ConsumerRecord, Producer, ProducerRecord, TopicPartition,
};
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::message::{Header as RdHeader, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const N: usize = 200;

/// (key, value, headers) of record `i`.
type Payload = (String, Vec<u8>, Vec<(String, Vec<u8>)>);

fn payload(i: usize) -> Payload {
    let key = format!("key-{}", i % 23);
    // Binary values, including bytes that are not UTF-8.
    let value: Vec<u8> = (0..(i % 64))
        .map(|j| (i * 7 + j) as u8)
        .chain(format!("#{i}").into_bytes())
        .collect();
    let headers = vec![
        ("n".to_string(), i.to_string().into_bytes()),
        ("bin".to_string(), vec![0, 255, i as u8]),
    ];
    (key, value, headers)
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Seen {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(String, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn rd_read(b: &TestBroker, topic: &str, partitions: i32, n: usize) -> Vec<Seen> {
    let c: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", unique("rd"))
        .set("enable.auto.commit", "false")
        .create()
        .expect("rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .unwrap();
    }
    c.assign(&tpl).unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        if let Some(m) = c.poll(Duration::from_millis(200)) {
            let m = m.expect("rdkafka message");
            let headers = m
                .headers()
                .map(|h| {
                    h.iter()
                        .map(|x| (x.key.to_string(), x.value.map(|v| v.to_vec())))
                        .collect()
                })
                .unwrap_or_default();
            out.push(Seen {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(|k| k.to_vec()),
                value: m.payload().map(|v| v.to_vec()),
                headers,
                timestamp: m.timestamp().to_millis().unwrap_or(-1),
            });
        }
    }
    out.sort();
    out
}

async fn ox_read(b: &TestBroker, topic: &str, partitions: i32, n: usize) -> Vec<Seen> {
    let mut cfg = ClientConfig::with_bootstrap(b.bootstrap());
    cfg.set("auto.offset.reset", "earliest");
    let mut c = Consumer::new(&cfg).unwrap();
    c.assign(
        (0..partitions)
            .map(|p| TopicPartition::new(topic, p))
            .collect(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        for r in c.poll(Duration::from_millis(300)).await.unwrap() {
            let r: ConsumerRecord = r;
            out.push(Seen {
                partition: r.partition,
                offset: r.offset,
                key: r.key.map(|k| k.to_vec()),
                value: r.value.map(|v| v.to_vec()),
                headers: r
                    .headers
                    .into_iter()
                    .map(|h| (h.key, h.value.map(|v| v.to_vec())))
                    .collect(),
                timestamp: r.timestamp,
            });
        }
    }
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oxka_producer_to_rdkafka_consumer() {
    let b = TestBroker::start();
    let admin = Admin::new(&ClientConfig::with_bootstrap(b.bootstrap())).unwrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("ox2rd-{codec}"));
        admin
            .create_topic(NewTopic::new(&topic, 3, 1))
            .await
            .unwrap();
        let mut cfg = ClientConfig::with_bootstrap(b.bootstrap());
        cfg.set("compression.type", codec);
        let p = Producer::new(&cfg).unwrap();
        let mut pending = Vec::new();
        for i in 0..N {
            let (k, v, hs) = payload(i);
            let mut rec = ProducerRecord::new(&topic)
                .key(k)
                .value(v)
                .timestamp(1_700_000_000_000 + i as i64);
            for (hk, hv) in hs {
                rec = rec.header(hk, hv);
            }
            pending.push(p.enqueue(rec).await.unwrap());
        }
        for f in pending {
            f.await.unwrap();
        }
        p.close().await.unwrap();
        let theirs = rd_read(&b, &topic, 3, N);
        let ours = ox_read(&b, &topic, 3, N).await;
        assert_eq!(theirs.len(), N, "{codec}");
        assert_eq!(theirs, ours, "{codec}: both clients read the same records");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rdkafka_producer_to_oxka_consumer() {
    let b = TestBroker::start();
    let admin = Admin::new(&ClientConfig::with_bootstrap(b.bootstrap())).unwrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("rd2ox-{codec}"));
        admin
            .create_topic(NewTopic::new(&topic, 3, 1))
            .await
            .unwrap();
        let rd: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", b.bootstrap())
            .set("compression.type", codec)
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .create()
            .expect("rdkafka producer");
        let mut futs = Vec::new();
        for i in 0..N {
            let (k, v, hs) = payload(i);
            let mut headers = OwnedHeaders::new();
            for (hk, hv) in &hs {
                headers = headers.insert(RdHeader {
                    key: hk,
                    value: Some(hv),
                });
            }
            let rec = FutureRecord::to(&topic)
                .key(&k)
                .payload(&v)
                .headers(headers)
                .timestamp(1_700_000_000_000 + i as i64);
            futs.push(rd.send_result(rec).map_err(|(e, _)| e).expect("enqueue"));
        }
        for f in futs {
            f.await.expect("delivery").expect("delivered");
        }
        let ours = ox_read(&b, &topic, 3, N).await;
        assert_eq!(ours.len(), N, "{codec}");
        for s in &ours {
            let key = s.key.clone().unwrap();
            assert_eq!(
                s.partition,
                oxka_client::partitioner::partition_for_key(&key, 3),
                "librdkafka murmur2_random and oxka place keys alike"
            );
        }
        let theirs = rd_read(&b, &topic, 3, N);
        assert_eq!(ours, theirs, "{codec}");
        // And the content is what was sent.
        let mut values: Vec<Vec<u8>> = ours.iter().map(|s| s.value.clone().unwrap()).collect();
        let mut want: Vec<Vec<u8>> = (0..N).map(|i| payload(i).1).collect();
        values.sort();
        want.sort();
        assert_eq!(values, want);
    }
}
