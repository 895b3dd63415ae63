//! librdkafka's admin client against the real binary: a topic created with
//! every topic config of Kafka 4.4 (what tools copying a topic's config
//! from a Kafka cluster send) is described back with those values, and
//! `remote.storage.enable=true` is refused with INVALID_CONFIG as Kafka
//! refuses it when tiered storage is disabled.

mod common;

use std::time::Duration;

use common::{unique, TestBroker};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::types::RDKafkaErrorCode;

/// Every key of Kafka 4.4's `LogConfig` with a valid value other than its
/// default (but `remote.storage.enable`, which oxka cannot honour).
const ALL_TOPIC_KEYS: &[(&str, &str)] = &[
    ("cleanup.policy", "compact,delete"),
    ("compression.gzip.level", "5"),
    ("compression.lz4.level", "10"),
    ("compression.type", "gzip"),
    ("compression.zstd.level", "4"),
    ("delete.retention.ms", "86400001"),
    ("errors.deadletterqueue.group.enable", "true"),
    ("file.delete.delay.ms", "60001"),
    ("flush.messages", "1000000"),
    ("flush.ms", "1000000"),
    ("follower.replication.throttled.replicas", "0:1"),
    ("index.interval.bytes", "4097"),
    ("leader.replication.throttled.replicas", "*"),
    ("local.retention.bytes", "1000000"),
    ("local.retention.ms", "1000000"),
    ("max.compaction.lag.ms", "1000000000"),
    ("max.decompressed.message.bytes", "10485760"),
    ("max.message.bytes", "1048589"),
    ("message.timestamp.after.max.ms", "3600001"),
    ("message.timestamp.before.max.ms", "1000000000"),
    ("message.timestamp.type", "LogAppendTime"),
    ("min.cleanable.dirty.ratio", "0.4"),
    ("min.compaction.lag.ms", "1"),
    ("min.insync.replicas", "1"),
    ("preallocate", "true"),
    ("remote.copy.lag.bytes", "1000"),
    ("remote.copy.lag.ms", "1000"),
    ("remote.log.copy.disable", "true"),
    ("remote.log.delete.on.disable", "true"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "1000000000"),
    ("retention.ms", "604800001"),
    ("segment.bytes", "1073741823"),
    ("segment.index.bytes", "10485761"),
    ("segment.jitter.ms", "1"),
    ("segment.ms", "604800001"),
    ("unclean.leader.election.enable", "true"),
];

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("admin client")
}

fn opts() -> AdminOptions {
    AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_with_every_kafka_topic_config_round_trips() {
    let b = TestBroker::start();
    let topic = unique("all-keys");
    let mut t = NewTopic::new(&topic, 1, TopicReplication::Fixed(1));
    for (k, v) in ALL_TOPIC_KEYS {
        t = t.set(k, v);
    }
    let res = admin(&b).create_topics(&[t], &opts()).await.unwrap();
    assert!(res[0].is_ok(), "{res:?}");
    let res = admin(&b)
        .describe_configs(&[ResourceSpecifier::Topic(&topic)], &opts())
        .await
        .unwrap();
    let cfg = res[0].as_ref().expect("describe");
    for (k, v) in ALL_TOPIC_KEYS {
        let e = cfg.get(k).unwrap_or_else(|| panic!("{k} is not described"));
        assert_eq!(e.value.as_deref(), Some(*v), "{k}");
    }

    let tiered =
        NewTopic::new("tiered", 1, TopicReplication::Fixed(1)).set("remote.storage.enable", "true");
    let res = admin(&b).create_topics(&[tiered], &opts()).await.unwrap();
    assert!(
        matches!(&res[0], Err((_, RDKafkaErrorCode::InvalidConfig))),
        "{res:?}"
    );
}
