//! Kafka's whole broker and topic config tables through the dispatch:
//! every key described with Kafka's default and type, keys oxka does not
//! act on stored and described, Kafka's dynamic update modes and errors,
//! and `remote.storage.enable=true` refused as Kafka refuses it without
//! tiered storage.

mod common;

use std::collections::BTreeMap;

use common::call;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn incremental(resource_type: i8, name: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, String) {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(resource_type)
            .with_resource_name(s(name))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s(k))
                            .with_config_operation(*op)
                            .with_value(v.map(s))
                    })
                    .collect(),
            ),
    ]);
    let resp: IncrementalAlterConfigsResponse = call(ApiKey::IncrementalAlterConfigs, 1, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

/// name -> the described entry
fn describe(
    resource_type: i8,
    name: &str,
) -> BTreeMap<String, describe_configs_response::DescribeConfigsResourceResult> {
    let req = DescribeConfigsRequest::default()
        .with_include_synonyms(true)
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configuration_keys(None),
        ]);
    let resp: DescribeConfigsResponse = call(ApiKey::DescribeConfigs, 4, &req);
    let r = &resp.results[0];
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    r.configs
        .iter()
        .map(|c| (c.name.to_string(), c.clone()))
        .collect()
}

fn value(
    d: &BTreeMap<String, describe_configs_response::DescribeConfigsResourceResult>,
    k: &str,
) -> Option<String> {
    d.get(k)
        .unwrap_or_else(|| panic!("{k} not described"))
        .value
        .as_ref()
        .map(|v| v.to_string())
}

/// Kafka 4.4's broker table has 350 non-internal keys; every one is
/// described, with Kafka's default, type and read-only flag.
#[test]
fn every_kafka_broker_config_is_described() {
    let d = describe(BROKER, "1");
    assert!(d.len() >= 350, "{} broker configs described", d.len());
    // (not the key the alter test below changes: the tests share a broker)
    let jitter = &d["sasl.kerberos.ticket.renew.jitter"];
    assert_eq!(jitter.value.as_ref().map(|v| v.as_str()), Some("0.05"));
    assert_eq!(jitter.config_type, 6, "DOUBLE");
    assert!(!jitter.read_only, "per-broker dynamic in Kafka");
    let lag = &d["replica.lag.time.max.ms"];
    assert_eq!(lag.value.as_ref().map(|v| v.as_str()), Some("30000"));
    assert!(lag.read_only);
    assert_eq!(d["create.topic.policy.class.name"].config_type, 8, "CLASS");
    assert_eq!(value(&d, "queued.max.request.bytes").as_deref(), Some("-1"));
    assert_eq!(value(&d, "max.connections").as_deref(), Some("2147483647"));
    // passwords are never shown
    let pw = &d["ssl.keystore.password"];
    assert!(pw.is_sensitive && pw.value.is_none());
}

/// Keys oxka does not act on are stored and described when altered;
/// Kafka's modes hold: read-only keys and per-broker keys at the cluster
/// default are refused with Kafka's INVALID_REQUEST messages, unprefixed
/// keystore settings too; invalid values are refused.
#[test]
fn inert_broker_configs_alter_with_kafkas_modes() {
    let key = "sasl.kerberos.min.time.before.relogin";
    assert_eq!(incremental(BROKER, "1", &[(key, SET, Some("120000"))]).0, 0);
    let d = describe(BROKER, "1");
    assert_eq!(value(&d, key).as_deref(), Some("120000"));
    assert_eq!(d[key].config_source, 2, "DYNAMIC_BROKER_CONFIG");

    let (code, msg) = incremental(BROKER, "", &[(key, SET, Some("1"))]);
    assert_eq!(code, ResponseError::InvalidRequest.code(), "{msg}");
    assert!(
        msg.contains("default cluster level") && msg.contains(key),
        "{msg}"
    );

    let (code, msg) = incremental(BROKER, "1", &[("replica.lag.time.max.ms", SET, Some("1"))]);
    assert_eq!(code, ResponseError::InvalidRequest.code(), "{msg}");
    assert!(
        msg.contains("Cannot update these configs dynamically"),
        "{msg}"
    );

    let (code, msg) = incremental(
        BROKER,
        "1",
        &[("ssl.keystore.location", SET, Some("/k.jks"))],
    );
    assert_eq!(code, ResponseError::InvalidRequest.code(), "{msg}");
    assert!(msg.contains("listener prefix"), "{msg}");

    let (code, _) = incremental(BROKER, "1", &[(key, SET, Some("soon"))]);
    assert_ne!(code, 0);

    // cluster-wide inert key at the cluster default
    assert_eq!(
        incremental(BROKER, "", &[("background.threads", SET, Some("4"))]).0,
        0
    );
    assert_eq!(
        value(&describe(BROKER, "1"), "background.threads").as_deref(),
        Some("4")
    );
    assert_eq!(
        incremental(BROKER, "", &[("background.threads", DELETE, None)]).0,
        0
    );
    assert_eq!(incremental(BROKER, "1", &[(key, DELETE, None)]).0, 0);
}

/// Every topic key of Kafka 4.4 (`LogConfig`), with its default.
const KAFKA_TOPIC_DEFAULTS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("compression.gzip.level", "-1"),
    ("compression.lz4.level", "9"),
    ("compression.type", "producer"),
    ("compression.zstd.level", "3"),
    ("delete.retention.ms", "86400000"),
    ("errors.deadletterqueue.group.enable", "false"),
    ("file.delete.delay.ms", "60000"),
    ("flush.messages", "9223372036854775807"),
    ("flush.ms", "9223372036854775807"),
    ("follower.replication.throttled.replicas", ""),
    ("index.interval.bytes", "4096"),
    ("leader.replication.throttled.replicas", ""),
    ("local.retention.bytes", "-2"),
    ("local.retention.ms", "-2"),
    ("max.compaction.lag.ms", "9223372036854775807"),
    ("max.decompressed.message.bytes", "2147483639"),
    ("max.message.bytes", "1048588"),
    ("message.timestamp.after.max.ms", "3600000"),
    ("message.timestamp.before.max.ms", "9223372036854775807"),
    ("message.timestamp.type", "CreateTime"),
    ("min.cleanable.dirty.ratio", "0.5"),
    ("min.compaction.lag.ms", "0"),
    ("min.insync.replicas", "1"),
    ("preallocate", "false"),
    ("remote.copy.lag.bytes", "-1"),
    ("remote.copy.lag.ms", "0"),
    ("remote.log.copy.disable", "false"),
    ("remote.log.delete.on.disable", "false"),
    ("remote.storage.enable", "false"),
    ("retention.bytes", "-1"),
    ("retention.ms", "604800000"),
    ("segment.bytes", "1073741824"),
    ("segment.index.bytes", "10485760"),
    ("segment.jitter.ms", "0"),
    ("segment.ms", "604800000"),
    ("unclean.leader.election.enable", "false"),
];

fn create(name: &str, configs: &[(&str, &str)]) -> (i16, String) {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(s(name)))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(
                configs
                    .iter()
                    .map(|(k, v)| {
                        create_topics_request::CreatableTopicConfig::default()
                            .with_name(s(k))
                            .with_value(Some(s(v)))
                    })
                    .collect(),
            ),
    ]);
    let resp: CreateTopicsResponse = call(ApiKey::CreateTopics, 7, &req);
    let t = &resp.topics[0];
    (
        t.error_code,
        t.error_message
            .as_ref()
            .map(|m| m.to_string())
            .unwrap_or_default(),
    )
}

#[test]
fn every_kafka_topic_config_is_described_with_its_default() {
    assert_eq!(create("all-defaults", &[]).0, 0);
    let d = describe(TOPIC, "all-defaults");
    for (k, v) in KAFKA_TOPIC_DEFAULTS {
        assert_eq!(value(&d, k).as_deref(), Some(*v), "{k}");
    }
    assert_eq!(d.len(), KAFKA_TOPIC_DEFAULTS.len(), "no key beyond Kafka's");
}

/// What asks for tiered storage is refused with Kafka's INVALID_CONFIG
/// message; the other tiered-storage keys are inert and accepted.
#[test]
fn remote_storage_enable_is_refused_as_kafka_does_without_tiered_storage() {
    let (code, msg) = create("remote", &[("remote.storage.enable", "true")]);
    assert_eq!(code, ResponseError::InvalidConfig.code(), "{msg}");
    assert!(
        msg.contains("Tiered Storage functionality is disabled"),
        "{msg}"
    );
    let inert = [
        ("remote.storage.enable", "false"),
        ("local.retention.ms", "1000"),
        ("local.retention.bytes", "1000"),
        ("remote.log.copy.disable", "true"),
        ("remote.log.delete.on.disable", "true"),
        ("leader.replication.throttled.replicas", "0:1,1:1"),
        ("follower.replication.throttled.replicas", "*"),
    ];
    assert_eq!(create("remote-inert", &inert).0, 0);
    let d = describe(TOPIC, "remote-inert");
    for (k, v) in inert {
        assert_eq!(value(&d, k).as_deref(), Some(v), "{k}");
        assert_eq!(d[k].config_source, 1, "{k}: TOPIC_CONFIG");
    }
    let (code, msg) = incremental(
        TOPIC,
        "remote-inert",
        &[("remote.storage.enable", SET, Some("true"))],
    );
    assert_eq!(code, ResponseError::InvalidConfig.code(), "{msg}");
    let (code, _) = incremental(
        TOPIC,
        "remote-inert",
        &[("leader.replication.throttled.replicas", SET, Some("x:y"))],
    );
    assert_eq!(code, ResponseError::InvalidConfig.code());
}

/// `max.decompressed.message.bytes` on a topic: a compressed record over
/// it is INVALID_RECORD (what Kafka 4.4 answers), one within it is stored.
#[test]
fn max_decompressed_message_bytes_applies_to_produce() {
    assert_eq!(
        create(
            "small-records",
            &[("max.decompressed.message.bytes", "512")]
        )
        .0,
        0
    );
    let produce = |batch: Vec<u8>| -> i16 {
        let req = ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(TopicName(s("small-records")))
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(batch.into())),
                ])]);
        let resp: ProduceResponse = call(ApiKey::Produce, 9, &req);
        resp.responses[0].partition_responses[0].error_code
    };
    let now = oxka_broker::server::now_ms();
    use oxka_log::builder::RecordBatchBuilder;
    assert_eq!(
        produce(RecordBatchBuilder::gzip_zeros_batch(4096, now)),
        ResponseError::InvalidRecord.code()
    );
    assert_eq!(produce(RecordBatchBuilder::gzip_zeros_batch(100, now)), 0);
}
