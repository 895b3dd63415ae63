//! Log lifecycle through librdkafka against the real binary: AlterConfigs
//! taking effect and persisting across a restart, dynamic broker configs,
//! DeleteRecords, and time retention moving the low watermark with
//! consumers resetting per `auto.offset.reset`.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use rdkafka::admin::{
    AdminClient, AdminOptions, AlterConfig, NewTopic, ResourceSpecifier, TopicReplication,
};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

const TIMEOUT: Duration = Duration::from_secs(30);

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(TIMEOUT))
}

fn producer(b: &TestBroker) -> FutureProducer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("message.timeout.ms", "10000")
        .set("message.send.max.retries", "0")
        .set("enable.idempotence", "false")
        .set("linger.ms", "0")
        .create()
        .expect("producer")
}

async fn create(b: &TestBroker, name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut t = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
    for (k, v) in configs {
        t = t.set(k, v);
    }
    let res = admin(b).create_topics(&[t], &opts()).await.unwrap();
    assert!(res[0].is_ok(), "{res:?}");
}

/// Produces one record per value to partition 0; returns the offsets.
async fn produce(
    p: &FutureProducer,
    topic: &str,
    values: &[Vec<u8>],
) -> Vec<Result<i64, RDKafkaErrorCode>> {
    let mut out = Vec::new();
    for v in values {
        let r = p
            .send(
                FutureRecord::<(), _>::to(topic).partition(0).payload(v),
                TIMEOUT,
            )
            .await;
        out.push(match r {
            Ok(d) => Ok(d.offset),
            Err((KafkaError::MessageProduction(code), _)) => Err(code),
            Err((e, _)) => panic!("unexpected produce error {e}"),
        });
    }
    out
}

async fn describe(
    b: &TestBroker,
    spec: ResourceSpecifier<'_>,
) -> BTreeMap<String, (Option<String>, String)> {
    let res = admin(b).describe_configs(&[spec], &opts()).await.unwrap();
    let cfg = res[0].as_ref().expect("describe");
    cfg.entries
        .iter()
        .map(|e| (e.name.clone(), (e.value.clone(), format!("{:?}", e.source))))
        .collect()
}

fn watermarks(b: &TestBroker, topic: &str) -> (i64, i64) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .unwrap();
    c.fetch_watermarks(topic, 0, TIMEOUT).unwrap()
}

/// Reads everything from `Offset::Offset(from)` (reset per `reset`);
/// returns (offsets read, the first error seen).
fn read_from(
    b: &TestBroker,
    topic: &str,
    from: i64,
    reset: &str,
    want: usize,
) -> (Vec<i64>, Option<KafkaError>) {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "oxka-lifecycle-assign-only")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", reset)
        .create()
        .unwrap();
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(topic, 0, Offset::Offset(from))
        .unwrap();
    c.assign(&tpl).unwrap();
    let mut got = Vec::new();
    let mut err = None;
    let deadline = Instant::now() + Duration::from_secs(15);
    let deadline = if want == 0 {
        Instant::now() + Duration::from_secs(5)
    } else {
        deadline
    };
    while (got.len() < want || want == 0) && Instant::now() < deadline {
        match c.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => got.push(m.offset()),
            Some(Err(e)) => {
                err.get_or_insert(e);
                if want == 0 {
                    break;
                }
            }
            None => {}
        }
    }
    (got, err)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alter_configs_take_effect_and_persist() {
    let mut b = TestBroker::start();
    let topic = unique("alter");
    create(&b, &topic, 1, &[("retention.ms", "1000000")]).await;
    let p = producer(&b);
    assert!(produce(&p, &topic, &[vec![1u8; 20_000]]).await[0].is_ok());

    // legacy AlterConfigs (what rdkafka's alter_configs sends): the whole
    // override set becomes exactly this
    let res = admin(&b)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("max.message.bytes", "5000")],
            &opts(),
        )
        .await
        .unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    let c = describe(&b, ResourceSpecifier::Topic(&topic)).await;
    assert_eq!(
        c["max.message.bytes"],
        (Some("5000".into()), "DynamicTopic".to_string())
    );
    assert_eq!(
        c["retention.ms"],
        (Some("604800000".into()), "Default".to_string())
    );
    assert_eq!(
        produce(&p, &topic, &[vec![1u8; 20_000]]).await[0],
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
    assert!(produce(&p, &topic, &[b"small".to_vec()]).await[0].is_ok());

    // An invalid value is refused (INVALID_CONFIG; the rdkafka crate's
    // alter_configs future drops per-resource errors, so the check is that
    // nothing changed) and leaves the overrides as they were.
    admin(&b)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Topic(&topic)).set("segment.bytes", "tiny")],
            &opts(),
        )
        .await
        .unwrap();
    let c = describe(&b, ResourceSpecifier::Topic(&topic)).await;
    assert_eq!(c["max.message.bytes"].0.as_deref(), Some("5000"));
    assert_eq!(c["segment.bytes"].1, "Default");

    // dynamic broker config for this node
    admin(&b)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Broker(1)).set("log.retention.ms", "86400000")],
            &opts(),
        )
        .await
        .unwrap();
    // not changeable at run time: refused, nothing stored
    admin(&b)
        .alter_configs(
            &[AlterConfig::new(ResourceSpecifier::Broker(1)).set("num.partitions", "4")],
            &opts(),
        )
        .await
        .unwrap();
    let bc = describe(&b, ResourceSpecifier::Broker(1)).await;
    assert_eq!(
        bc["num.partitions"],
        (Some("1".into()), "Default".to_string())
    );
    assert_eq!(
        bc["log.retention.ms"],
        (Some("86400000".into()), "DynamicBroker".to_string())
    );

    // both survive a kill -9
    b.restart();
    let c = describe(&b, ResourceSpecifier::Topic(&topic)).await;
    assert_eq!(
        c["max.message.bytes"],
        (Some("5000".into()), "DynamicTopic".to_string())
    );
    assert_eq!(
        c["retention.ms"],
        (Some("86400000".into()), "DynamicBroker".to_string())
    );
    let bc = describe(&b, ResourceSpecifier::Broker(1)).await;
    assert_eq!(
        bc["log.retention.ms"],
        (Some("86400000".into()), "DynamicBroker".to_string())
    );
    let p = producer(&b);
    assert_eq!(
        produce(&p, &topic, &[vec![1u8; 20_000]]).await[0],
        Err(RDKafkaErrorCode::MessageSizeTooLarge)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delete_records_moves_the_low_watermark() {
    let b = TestBroker::start();
    let topic = unique("delrec");
    create(&b, &topic, 1, &[]).await;
    let p = producer(&b);
    let values: Vec<Vec<u8>> = (0..20).map(|i| format!("d{i}").into_bytes()).collect();
    assert!(produce(&p, &topic, &values).await.iter().all(Result::is_ok));
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(12))
        .unwrap();
    let res = admin(&b).delete_records(&tpl, &opts()).await.unwrap();
    let e = res.elements();
    assert_eq!(e[0].offset(), Offset::Offset(12));
    assert!(e[0].error().is_ok());
    assert_eq!(watermarks(&b, &topic), (12, 20));

    // a consumer positioned below the start resets per its policy
    let (got, _) = read_from(&b, &topic, 5, "earliest", 8);
    assert_eq!(got, (12..20).collect::<Vec<_>>());
    let (got, err) = read_from(&b, &topic, 5, "error", 0);
    assert!(got.is_empty());
    assert!(
        err.is_some(),
        "auto.offset.reset=error must surface the out-of-range offset"
    );

    // beyond the high watermark
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::Offset(999))
        .unwrap();
    let res = admin(&b).delete_records(&tpl, &opts()).await;
    let failed = match res {
        Ok(list) => list.elements()[0].error().is_err(),
        Err(_) => true,
    };
    assert!(failed);
    // Offset::End: everything
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset(&topic, 0, Offset::End).unwrap();
    admin(&b).delete_records(&tpl, &opts()).await.unwrap();
    assert_eq!(watermarks(&b, &topic), (20, 20));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_retention_moves_the_low_watermark() {
    let b = TestBroker::start();
    let topic = unique("retain");
    create(
        &b,
        &topic,
        1,
        &[
            ("retention.ms", "1000"),
            ("segment.ms", "1000"),
            ("file.delete.delay.ms", "0"),
        ],
    )
    .await;
    let p = producer(&b);
    let early: Vec<Vec<u8>> = (0..10).map(|i| format!("early-{i}").into_bytes()).collect();
    assert!(produce(&p, &topic, &early).await.iter().all(Result::is_ok));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut lo = 0;
    let mut n = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // a new record rolls the segment once it is older than segment.ms
        assert!(produce(&p, &topic, &[format!("later-{n}").into_bytes()]).await[0].is_ok());
        n += 1;
        lo = watermarks(&b, &topic).0;
        if lo >= 10 {
            break;
        }
    }
    assert!(lo >= 10, "log start offset still {lo}");
    let (_, hi) = watermarks(&b, &topic);
    assert_eq!(hi, 10 + n);
    // the newest record (in the active segment) is always kept
    let (got, _) = read_from(&b, &topic, 0, "earliest", 1);
    assert!(!got.is_empty() && got[0] >= lo, "{got:?} lo={lo}");
    assert!(got[0] < hi);
}
