//! The broker driven by librdkafka (the `rdkafka` crate): produce/consume
//! round trips, codecs, acks, ListOffsets, admin, auto-creation.

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use common::{unique, TestBroker};
use rdkafka::admin::{
    AdminClient, AdminOptions, ConfigSource, NewPartitions, NewTopic, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, Timestamp, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin client")
}

fn producer(b: &TestBroker, extra: &[(&str, &str)]) -> FutureProducer {
    let mut c = ClientConfig::new();
    c.set("bootstrap.servers", b.bootstrap())
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5");
    for (k, v) in extra {
        c.set(*k, *v);
    }
    c.create().expect("producer")
}

fn consumer(b: &TestBroker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "oxka-tests-assign-only")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .expect("consumer")
}

async fn create_topic(b: &TestBroker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = admin(b)
        .create_topics(&[t], &AdminOptions::new().operation_timeout(Some(TIMEOUT)))
        .await
        .expect("create_topics");
    for r in res {
        r.unwrap_or_else(|(t, e)| panic!("create {t}: {e}"));
    }
}

#[derive(Debug, Clone, PartialEq)]
struct Rec {
    partition: i32,
    offset: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    timestamp: Option<i64>,
    headers: Vec<(String, Option<Vec<u8>>)>,
}

/// Reads every partition of `topic` from the beginning until `expected`
/// records have arrived (or the timeout).
fn consume_all(b: &TestBroker, topic: &str, partitions: i32, expected: usize) -> Vec<Rec> {
    let c = consumer(b);
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, Offset::Beginning)
            .expect("tpl");
    }
    c.assign(&tpl).expect("assign");
    let mut out = Vec::new();
    let deadline = std::time::Instant::now() + TIMEOUT;
    while out.len() < expected && std::time::Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => out.push(Rec {
                partition: m.partition(),
                offset: m.offset(),
                key: m.key().map(<[u8]>::to_vec),
                value: m.payload().map(<[u8]>::to_vec),
                timestamp: m.timestamp().to_millis(),
                headers: m
                    .headers()
                    .map(|h| {
                        h.iter()
                            .map(|x| (x.key.to_string(), x.value.map(<[u8]>::to_vec)))
                            .collect()
                    })
                    .unwrap_or_default(),
            }),
            Some(Err(e)) => panic!("consume error: {e}"),
            None => {}
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn round_trip_many_partitions_keys_headers_timestamps() {
    let b = TestBroker::start();
    let topic = unique("rt");
    create_topic(&b, &topic, 4, &[]).await;
    let p = producer(&b, &[("acks", "all")]);
    let mut sent = Vec::new();
    for i in 0..400i64 {
        let partition = (i % 4) as i32;
        let key = format!("key-{i}");
        let value = format!("value-{i}-{}", "x".repeat((i % 50) as usize));
        let ts = 1_700_000_000_000 + i;
        let headers = OwnedHeaders::new()
            .insert(Header {
                key: "h1",
                value: Some(&format!("v{i}")),
            })
            .insert(Header {
                key: "dup",
                value: Some("a"),
            })
            .insert(Header {
                key: "dup",
                value: Some("b"),
            })
            .insert(Header::<&[u8]> {
                key: "null",
                value: None,
            });
        let delivery = p
            .send(
                FutureRecord::to(&topic)
                    .partition(partition)
                    .key(&key)
                    .payload(&value)
                    .timestamp(ts)
                    .headers(headers),
                TIMEOUT,
            )
            .await
            .expect("delivery");
        let (part, off) = (delivery.partition, delivery.offset);
        assert_eq!(part, partition);
        sent.push(Rec {
            partition,
            offset: off,
            key: Some(key.into_bytes()),
            value: Some(value.into_bytes()),
            timestamp: Some(ts),
            headers: vec![
                ("h1".into(), Some(format!("v{i}").into_bytes())),
                ("dup".into(), Some(b"a".to_vec())),
                ("dup".into(), Some(b"b".to_vec())),
                ("null".into(), None),
            ],
        });
    }
    // offsets are dense per partition
    for part in 0..4 {
        let offs: Vec<i64> = sent
            .iter()
            .filter(|r| r.partition == part)
            .map(|r| r.offset)
            .collect();
        assert_eq!(offs, (0..100).collect::<Vec<_>>());
    }
    let mut got = consume_all(&b, &topic, 4, sent.len());
    got.sort_by_key(|r| (r.partition, r.offset));
    sent.sort_by_key(|r| (r.partition, r.offset));
    assert_eq!(got, sent);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_codec_and_ack_level_round_trips() {
    let b = TestBroker::start();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        for acks in ["0", "1", "all"] {
            let topic = unique(&format!("codec-{codec}-{acks}"));
            create_topic(&b, &topic, 1, &[]).await;
            let p = producer(
                &b,
                &[
                    ("compression.type", codec),
                    ("acks", acks),
                    ("linger.ms", "50"),
                ],
            );
            let values: Vec<String> = (0..200)
                .map(|i| format!("{codec}/{acks}/{i} {}", "abc".repeat(20)))
                .collect();
            // send_result enqueues at once, so records batch up under linger.ms
            let futures: Vec<_> = values
                .iter()
                .map(|v| {
                    p.send_result(FutureRecord::<(), _>::to(&topic).payload(v))
                        .expect("enqueue")
                })
                .collect();
            for f in futures {
                f.await.expect("delivery future").expect("delivery");
            }
            let got = consume_all(&b, &topic, 1, values.len());
            let got: Vec<String> = got
                .iter()
                .map(|r| String::from_utf8(r.value.clone().unwrap_or_default()).unwrap_or_default())
                .collect();
            assert_eq!(got, values, "codec {codec} acks {acks}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn list_offsets_earliest_latest_and_by_time() {
    let b = TestBroker::start();
    let topic = unique("offsets");
    create_topic(&b, &topic, 1, &[]).await;
    let p = producer(&b, &[("linger.ms", "0")]);
    for i in 0..10i64 {
        p.send(
            FutureRecord::<(), _>::to(&topic)
                .payload("x")
                .timestamp(1_000_000 + i * 1000),
            TIMEOUT,
        )
        .await
        .expect("delivery");
    }
    let c = consumer(&b);
    let (lo, hi) = c.fetch_watermarks(&topic, 0, TIMEOUT).expect("watermarks");
    assert_eq!((lo, hi), (0, 10));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(1_004_500))
        .unwrap();
    let res = c
        .offsets_for_times(tpl, TIMEOUT)
        .expect("offsets_for_times");
    assert_eq!(res.elements()[0].offset(), Offset::Offset(5));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(9_999_999))
        .unwrap();
    let res = c
        .offsets_for_times(tpl, TIMEOUT)
        .expect("offsets_for_times");
    assert_eq!(res.elements()[0].offset(), Offset::End);
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_create_describe_add_partitions_delete() {
    let b = TestBroker::start();
    let a = admin(&b);
    let topic = unique("admin");
    create_topic(&b, &topic, 2, &[("retention.ms", "12345")]).await;
    let md = a
        .inner()
        .fetch_metadata(Some(&topic), TIMEOUT)
        .expect("metadata");
    assert_eq!(md.topics()[0].partitions().len(), 2);
    assert_eq!(md.topics()[0].partitions()[0].leader(), 1);

    // duplicate create, bad replication factor, bad config
    let opts = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    let dup = a
        .create_topics(
            &[NewTopic::new(&topic, 1, TopicReplication::Fixed(1))],
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(
        dup[0],
        Err((_, RDKafkaErrorCode::TopicAlreadyExists))
    ));
    let rf = a
        .create_topics(
            &[NewTopic::new(&unique("rf"), 1, TopicReplication::Fixed(3))],
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(
        rf[0],
        Err((_, RDKafkaErrorCode::InvalidReplicationFactor))
    ));
    let bad = a
        .create_topics(
            &[NewTopic::new(&unique("cfg"), 1, TopicReplication::Fixed(1))
                .set("retention.ms", "soon")],
            &opts,
        )
        .await
        .unwrap();
    assert!(matches!(bad[0], Err((_, RDKafkaErrorCode::InvalidConfig))));

    // describe configs shows the override and the defaults
    let res = a
        .describe_configs(&[rdkafka::admin::ResourceSpecifier::Topic(&topic)], &opts)
        .await
        .unwrap();
    let cfg = res[0].as_ref().expect("describe");
    let map: BTreeMap<_, _> = cfg
        .entries
        .iter()
        .map(|e| (e.name.clone(), e.value.clone()))
        .collect();
    assert_eq!(map["retention.ms"].as_deref(), Some("12345"));
    assert_eq!(map["max.message.bytes"].as_deref(), Some("1048588"));
    let source = |name: &str| {
        cfg.entries
            .iter()
            .find(|e| e.name == name)
            .map(|e| &e.source)
    };
    assert_eq!(source("retention.ms"), Some(&ConfigSource::DynamicTopic));
    assert_eq!(source("segment.bytes"), Some(&ConfigSource::Default));

    // add partitions
    let r = a
        .create_partitions(&[NewPartitions::new(&topic, 5)], &opts)
        .await
        .unwrap();
    assert!(r[0].is_ok(), "{:?}", r[0]);
    let md = a.inner().fetch_metadata(Some(&topic), TIMEOUT).unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 5);
    let r = a
        .create_partitions(&[NewPartitions::new(&topic, 3)], &opts)
        .await
        .unwrap();
    assert!(matches!(
        r[0],
        Err((_, RDKafkaErrorCode::InvalidPartitions))
    ));

    // delete, then it is gone and a second delete fails
    let r = a.delete_topics(&[&topic], &opts).await.unwrap();
    assert!(r[0].is_ok());
    let md = a.inner().fetch_metadata(None, TIMEOUT).unwrap();
    assert!(md.topics().iter().all(|t| t.name() != topic));
    let r = a.delete_topics(&[&topic], &opts).await.unwrap();
    assert!(matches!(
        r[0],
        Err((_, RDKafkaErrorCode::UnknownTopicOrPartition))
    ));
}

#[tokio::test(flavor = "multi_thread")]
async fn produce_auto_creates_topic() {
    let b = TestBroker::start_with(&["num.partitions=3"]);
    let topic = unique("auto");
    let p = producer(&b, &[]);
    let off = p
        .send(FutureRecord::<(), _>::to(&topic).payload("hello"), TIMEOUT)
        .await
        .expect("delivery to an auto-created topic")
        .offset;
    assert_eq!(off, 0);
    let md = admin(&b)
        .inner()
        .fetch_metadata(Some(&topic), TIMEOUT)
        .unwrap();
    assert_eq!(md.topics()[0].partitions().len(), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_record_is_rejected_not_stored() {
    let b = TestBroker::start();
    let topic = unique("big");
    create_topic(&b, &topic, 1, &[("max.message.bytes", "10000")]).await;
    let p = producer(&b, &[("message.max.bytes", "2000000")]);
    let big = vec![b'x'; 50_000];
    let err = p
        .send(FutureRecord::<(), _>::to(&topic).payload(&big), TIMEOUT)
        .await
        .expect_err("too large");
    assert!(
        matches!(
            err.0,
            KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge)
        ),
        "{err:?}"
    );
    let (lo, hi) = consumer(&b).fetch_watermarks(&topic, 0, TIMEOUT).unwrap();
    assert_eq!((lo, hi), (0, 0));
}

/// Kafka 4's `message.timestamp.after.max.ms` (one hour by default): a
/// producer clock far ahead gets INVALID_TIMESTAMP and nothing is stored;
/// a topic may allow more.
#[tokio::test(flavor = "multi_thread")]
async fn a_create_time_hours_ahead_is_refused() {
    let b = TestBroker::start();
    let strict = unique("ts-strict");
    let lenient = unique("ts-lenient");
    create_topic(&b, &strict, 1, &[]).await;
    create_topic(
        &b,
        &lenient,
        1,
        &[("message.timestamp.after.max.ms", "86400000")],
    )
    .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_millis() as i64;
    let ahead = now + 2 * 3_600_000;
    let p = producer(&b, &[]);
    let err = p
        .send(
            FutureRecord::<(), _>::to(&strict)
                .payload("from the future")
                .timestamp(ahead),
            TIMEOUT,
        )
        .await
        .expect_err("two hours ahead");
    assert!(
        matches!(
            err.0,
            KafkaError::MessageProduction(RDKafkaErrorCode::InvalidTimestamp)
        ),
        "{err:?}"
    );
    let (lo, hi) = consumer(&b).fetch_watermarks(&strict, 0, TIMEOUT).unwrap();
    assert_eq!((lo, hi), (0, 0));
    // an old timestamp is fine (no before.max.ms by default), as is the
    // future on the lenient topic
    for (topic, ts) in [(&strict, 1_000), (&lenient, ahead)] {
        p.send(
            FutureRecord::<(), _>::to(topic).payload("ok").timestamp(ts),
            TIMEOUT,
        )
        .await
        .unwrap_or_else(|e| panic!("{topic} at {ts}: {e:?}"));
    }
    let got = consume_all(&b, &lenient, 1, 1);
    assert_eq!(got[0].timestamp, Some(ahead));
}

#[tokio::test(flavor = "multi_thread")]
async fn log_append_time_topic_stamps_batches() {
    let b = TestBroker::start();
    let topic = unique("lat");
    create_topic(
        &b,
        &topic,
        1,
        &[("message.timestamp.type", "LogAppendTime")],
    )
    .await;
    let p = producer(&b, &[]);
    p.send(
        FutureRecord::<(), _>::to(&topic)
            .payload("x")
            .timestamp(1000),
        TIMEOUT,
    )
    .await
    .expect("delivery");
    let got = consume_all(&b, &topic, 1, 1);
    let c = consumer(&b);
    drop(c);
    let ts = got[0].timestamp.expect("timestamp");
    assert!(ts > 1_600_000_000_000, "LogAppendTime expected, got {ts}");
    let _ = Timestamp::NotAvailable;
}
