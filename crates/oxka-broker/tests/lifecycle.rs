//! Log lifecycle through the full dispatch: AlterConfigs,
//! IncrementalAlterConfigs (topics and dynamic broker configs, sources and
//! synonyms), configs surviving a restart, DeleteRecords, retention driven
//! by config changes, and a full disk answering KAFKA_STORAGE_ERROR.
//!
//! Each test runs its own broker (socket-less, like `common`) that can be
//! restarted on the same data dirs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use oxka_broker::network::ConnectionInfo;
use oxka_broker::request::{handle_frame, Outcome};
use oxka_broker::server::{now_ms, BrokerState};
use oxka_broker::{Broker, KafkaConfig};
use oxka_log::builder::simple_batch;
use oxka_log::TopicPartition;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;

struct Node {
    dirs: Vec<PathBuf>,
    extra: Vec<(String, String)>,
    rt: Option<tokio::runtime::Runtime>,
    state: Option<Arc<BrokerState>>,
    broker: Option<Broker>,
}

impl Node {
    fn start(dirs: &[&Path], extra: &[(&str, &str)]) -> Node {
        let mut n = Node {
            dirs: dirs.iter().map(|d| d.to_path_buf()).collect(),
            extra: extra
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            rt: None,
            state: None,
            broker: None,
        };
        n.boot();
        n
    }

    fn boot(&mut self) {
        let mut props = BTreeMap::from([
            (
                "log.dirs".to_string(),
                self.dirs
                    .iter()
                    .map(|d| d.display().to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "listeners".to_string(),
                "PLAINTEXT://127.0.0.1:0".to_string(),
            ),
        ]);
        props.extend(self.extra.iter().cloned());
        let (config, _) = KafkaConfig::from_props(props).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let broker = rt.block_on(Broker::start(config)).unwrap();
        self.state = Some(broker.state().clone());
        self.broker = Some(broker);
        self.rt = Some(rt);
    }

    fn state(&self) -> &Arc<BrokerState> {
        self.state.as_ref().unwrap()
    }

    /// Drops everything without flushing or checkpointing (a crash whose
    /// page cache survived), then starts again on the same dirs.
    fn crash_and_restart(&mut self) {
        self.state = None;
        self.broker = None;
        self.rt = None;
        self.boot();
    }

    /// An orderly stop (flush, checkpoints, clean-shutdown marker) and a
    /// new start.
    fn restart(&mut self) {
        // shutdown may report a failed dir; the restart is what matters
        let _ = self.state().replica_manager.log_manager().shutdown();
        self.crash_and_restart();
    }

    fn call<Req: Encodable, Resp: Decodable>(&self, key: ApiKey, version: i16, req: &Req) -> Resp {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(7)
            .with_client_id(Some(StrBytes::from_static_str("lifecycle")));
        let mut frame = BytesMut::new();
        header
            .encode(&mut frame, key.request_header_version(version))
            .unwrap();
        let mut body = BytesMut::new();
        req.encode(&mut body, version).unwrap();
        frame.put_slice(&body);
        let conn = ConnectionInfo::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap(),
        );
        let out = self.rt.as_ref().unwrap().block_on(handle_frame(
            self.state(),
            &conn,
            Bytes::from(frame.to_vec()),
        ));
        match out {
            Outcome::Respond(resp) => {
                // a Fetch frame's records are read from their files here
                let mut b = resp.to_bytes().unwrap().slice(4..);
                ResponseHeader::decode(&mut b, key.response_header_version(version)).unwrap();
                Resp::decode(&mut b, version).unwrap()
            }
            Outcome::NoResponse => panic!("{key:?} v{version}: no response"),
            Outcome::Close(r) => panic!("{key:?} v{version}: closed: {r}"),
        }
    }

    fn create(&self, name: &str, partitions: i32, configs: &[(&str, &str)]) {
        let req = CreateTopicsRequest::default().with_topics(vec![
            create_topics_request::CreatableTopic::default()
                .with_name(TopicName(s(name)))
                .with_num_partitions(partitions)
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
        let resp: CreateTopicsResponse = self.call(ApiKey::CreateTopics, 7, &req);
        assert_eq!(resp.topics[0].error_code, 0, "{:?}", resp.topics[0]);
    }

    fn incremental(
        &self,
        resource_type: i8,
        name: &str,
        ops: &[(&str, i8, Option<&str>)],
        validate_only: bool,
    ) -> (i16, String) {
        let req = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![
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
        let resp: IncrementalAlterConfigsResponse =
            self.call(ApiKey::IncrementalAlterConfigs, 1, &req);
        let r = &resp.responses[0];
        (
            r.error_code,
            r.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    }

    fn legacy(&self, resource_type: i8, name: &str, configs: &[(&str, &str)]) -> (i16, String) {
        let req = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(name))
                .with_configs(
                    configs
                        .iter()
                        .map(|(k, v)| {
                            alter_configs_request::AlterableConfig::default()
                                .with_name(s(k))
                                .with_value(Some(s(v)))
                        })
                        .collect(),
                ),
        ]);
        let resp: AlterConfigsResponse = self.call(ApiKey::AlterConfigs, 2, &req);
        let r = &resp.responses[0];
        (
            r.error_code,
            r.error_message
                .as_ref()
                .map(|m| m.to_string())
                .unwrap_or_default(),
        )
    }

    /// name -> (value, source, read_only, synonyms as (name, value, source))
    fn describe(&self, resource_type: i8, name: &str) -> BTreeMap<String, Described> {
        let req = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_resources(vec![
                describe_configs_request::DescribeConfigsResource::default()
                    .with_resource_type(resource_type)
                    .with_resource_name(s(name))
                    .with_configuration_keys(None),
            ]);
        let resp: DescribeConfigsResponse = self.call(ApiKey::DescribeConfigs, 4, &req);
        let r = &resp.results[0];
        assert_eq!(r.error_code, 0, "{:?}", r.error_message);
        r.configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    Described {
                        value: c.value.as_ref().map(|v| v.to_string()),
                        source: c.config_source,
                        read_only: c.read_only,
                        synonyms: c
                            .synonyms
                            .iter()
                            .map(|y| {
                                (
                                    y.name.to_string(),
                                    y.value.as_ref().map(|v| v.to_string()).unwrap_or_default(),
                                    y.source,
                                )
                            })
                            .collect(),
                    },
                )
            })
            .collect()
    }

    fn produce(
        &self,
        topic: &str,
        partition: i32,
        records: usize,
        value_size: usize,
        ts: i64,
    ) -> (i16, i64) {
        let mut out = (0, -1);
        for i in 0..records {
            let batch = simple_batch(1, value_size, ts);
            let req = ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![produce_request::TopicProduceData::default()
                    .with_name(TopicName(s(topic)))
                    .with_partition_data(vec![
                        produce_request::PartitionProduceData::default()
                            .with_index(partition)
                            .with_records(Some(batch.freeze())),
                    ])]);
            let resp: ProduceResponse = self.call(ApiKey::Produce, 9, &req);
            let p = &resp.responses[0].partition_responses[0];
            if i == 0 || p.error_code != 0 {
                out = (p.error_code, p.base_offset);
            }
            if p.error_code != 0 {
                return out;
            }
        }
        out
    }

    /// (error, offset) of ListOffsets for `timestamp` (-2 earliest, -1 latest).
    fn list_offset(&self, topic: &str, partition: i32, timestamp: i64) -> (i16, i64) {
        let req = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default()
                        .with_partition_index(partition)
                        .with_timestamp(timestamp),
                ])]);
        let resp: ListOffsetsResponse = self.call(ApiKey::ListOffsets, 7, &req);
        let p = &resp.topics[0].partitions[0];
        (p.error_code, p.offset)
    }

    /// (error, log start offset, records bytes) of a Fetch v4 at `offset`.
    fn fetch(&self, topic: &str, partition: i32, offset: i64) -> (i16, usize) {
        let req = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(0)
            .with_max_bytes(1 << 20)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(TopicName(s(topic)))
                .with_partitions(vec![fetch_request::FetchPartition::default()
                    .with_partition(partition)
                    .with_fetch_offset(offset)
                    .with_partition_max_bytes(1 << 20)])]);
        let resp: FetchResponse = self.call(ApiKey::Fetch, 4, &req);
        let p = &resp.responses[0].partitions[0];
        (p.error_code, p.records.as_ref().map_or(0, |r| r.len()))
    }

    fn delete_records(&self, version: i16, topic: &str, partition: i32, offset: i64) -> (i16, i64) {
        let req = DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![delete_records_request::DeleteRecordsTopic::default()
                .with_name(TopicName(s(topic)))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default()
                        .with_partition_index(partition)
                        .with_offset(offset),
                ])]);
        let resp: DeleteRecordsResponse = self.call(ApiKey::DeleteRecords, version, &req);
        let p = &resp.topics[0].partitions[0];
        (p.error_code, p.low_watermark)
    }
}

#[derive(Debug)]
struct Described {
    value: Option<String>,
    source: i8,
    read_only: bool,
    synonyms: Vec<(String, String, i8)>,
}

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

const INVALID_CONFIG: i16 = 40;
const INVALID_REQUEST: i16 = 42;

#[test]
fn incremental_alter_configs_on_a_topic() {
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(&[dir.path()], &[]);
    n.create("inc", 1, &[]);
    let ok = n.incremental(
        TOPIC,
        "inc",
        &[
            ("retention.ms", SET, Some("12345")),
            ("cleanup.policy", SET, Some("compact")),
        ],
        false,
    );
    assert_eq!(ok.0, 0, "{}", ok.1);
    let c = n.describe(TOPIC, "inc");
    assert_eq!(c["retention.ms"].value.as_deref(), Some("12345"));
    assert_eq!(c["retention.ms"].source, 1);
    assert_eq!(
        c["retention.ms"].synonyms[0],
        ("retention.ms".into(), "12345".into(), 1)
    );
    assert_eq!(c["cleanup.policy"].value.as_deref(), Some("compact"));

    let ok = n.incremental(
        TOPIC,
        "inc",
        &[
            ("retention.ms", DELETE, None),
            ("cleanup.policy", APPEND, Some("delete")),
        ],
        false,
    );
    assert_eq!(ok.0, 0, "{}", ok.1);
    let c = n.describe(TOPIC, "inc");
    assert_eq!(c["retention.ms"].value.as_deref(), Some("604800000"));
    assert_eq!(c["retention.ms"].source, 5);
    assert_eq!(c["cleanup.policy"].value.as_deref(), Some("compact,delete"));

    // errors name the key
    let (code, msg) = n.incremental(TOPIC, "inc", &[("no.such.config", SET, Some("1"))], false);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.contains("no.such.config"), "{msg}");
    let (code, msg) = n.incremental(TOPIC, "inc", &[("retention.ms", SET, Some("soon"))], false);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.contains("retention.ms"), "{msg}");
    let (code, msg) = n.incremental(TOPIC, "inc", &[("retention.ms", APPEND, Some("1"))], false);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.contains("retention.ms"), "{msg}");
    let (code, _) = n.incremental(TOPIC, "inc", &[("retention.ms", 7, Some("1"))], false);
    assert_eq!(code, INVALID_REQUEST);
    let (code, _) = n.incremental(TOPIC, "nope", &[("retention.ms", SET, Some("1"))], false);
    assert_eq!(code, ResponseError::UnknownTopicOrPartition.code());

    // validate_only checks but changes nothing
    let (code, _) = n.incremental(
        TOPIC,
        "inc",
        &[("segment.bytes", SET, Some("100000"))],
        true,
    );
    assert_eq!(code, 0);
    assert_eq!(n.describe(TOPIC, "inc")["segment.bytes"].source, 5);
    let (code, _) = n.incremental(TOPIC, "inc", &[("segment.bytes", SET, Some("1"))], true);
    assert_eq!(code, INVALID_CONFIG);
}

#[test]
fn legacy_alter_configs_replaces_every_override() {
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(&[dir.path()], &[]);
    n.create(
        "legacy",
        1,
        &[("max.message.bytes", "300000"), ("retention.ms", "1000000")],
    );
    let (code, msg) = n.legacy(TOPIC, "legacy", &[("retention.ms", "22222")]);
    assert_eq!(code, 0, "{msg}");
    let c = n.describe(TOPIC, "legacy");
    assert_eq!(c["retention.ms"].value.as_deref(), Some("22222"));
    assert_eq!(c["max.message.bytes"].value.as_deref(), Some("1048588"));
    assert_eq!(c["max.message.bytes"].source, 5);
    let (code, msg) = n.legacy(TOPIC, "legacy", &[("bogus.key", "1")]);
    assert_eq!(code, INVALID_CONFIG);
    assert!(msg.contains("bogus.key"));
    // a refused request changes nothing
    assert_eq!(
        n.describe(TOPIC, "legacy")["retention.ms"].value.as_deref(),
        Some("22222")
    );
}

#[test]
fn topic_config_change_applies_to_the_next_produce() {
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(&[dir.path()], &[]);
    n.create("limits", 1, &[]);
    assert_eq!(n.produce("limits", 0, 1, 20_000, now_ms()).0, 0);
    n.incremental(
        TOPIC,
        "limits",
        &[("max.message.bytes", SET, Some("5000"))],
        false,
    );
    assert_eq!(
        n.produce("limits", 0, 1, 20_000, now_ms()).0,
        ResponseError::MessageTooLarge.code()
    );
    assert_eq!(n.produce("limits", 0, 1, 100, now_ms()).0, 0);
}

#[test]
fn dynamic_broker_configs_sources_synonyms_and_effect() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Node::start(&[dir.path()], &[("log.retention.hours", "100")]);
    n.create("dyn", 1, &[]);
    n.create("dyn-override", 1, &[("retention.ms", "777")]);

    // static broker value: retention.ms from log.retention.hours
    let c = n.describe(TOPIC, "dyn");
    assert_eq!(c["retention.ms"].value.as_deref(), Some("360000000"));
    assert_eq!(c["retention.ms"].source, 4);

    let (code, msg) = n.incremental(
        BROKER,
        "1",
        &[("log.retention.ms", SET, Some("5000"))],
        false,
    );
    assert_eq!(code, 0, "{msg}");
    let (code, msg) = n.incremental(
        BROKER,
        "",
        &[
            ("log.retention.ms", SET, Some("6000")),
            ("message.max.bytes", SET, Some("2000")),
        ],
        false,
    );
    assert_eq!(code, 0, "{msg}");

    let c = n.describe(TOPIC, "dyn");
    assert_eq!(c["retention.ms"].value.as_deref(), Some("5000"));
    assert_eq!(c["retention.ms"].source, 2);
    // Kafka's order: layer by layer, each layer's synonyms by priority
    assert_eq!(
        c["retention.ms"].synonyms,
        vec![
            ("log.retention.ms".into(), "5000".into(), 2),
            ("log.retention.ms".into(), "6000".into(), 3),
            ("log.retention.hours".into(), "100".into(), 4),
            ("log.retention.hours".into(), "168".into(), 5),
        ]
    );
    assert_eq!(c["max.message.bytes"].value.as_deref(), Some("2000"));
    assert_eq!(c["max.message.bytes"].source, 3);
    // a topic override still wins
    let c = n.describe(TOPIC, "dyn-override");
    assert_eq!(
        (c["retention.ms"].value.as_deref(), c["retention.ms"].source),
        (Some("777"), 1)
    );

    // applied without restart
    assert_eq!(
        n.produce("dyn", 0, 1, 5_000, now_ms()).0,
        ResponseError::MessageTooLarge.code()
    );

    // the broker resource: per-broker shows everything, "" only defaults
    let b = n.describe(BROKER, "1");
    assert_eq!(
        (
            b["log.retention.ms"].value.as_deref(),
            b["log.retention.ms"].source
        ),
        (Some("5000"), 2)
    );
    assert!(!b["log.retention.ms"].read_only);
    assert!(b["num.partitions"].read_only);
    assert_eq!(b["log.retention.hours"].source, 4);
    let d = n.describe(BROKER, "");
    assert_eq!(d.len(), 2, "{:?}", d.keys());
    assert_eq!(
        (
            d["message.max.bytes"].value.as_deref(),
            d["message.max.bytes"].source
        ),
        (Some("2000"), 3)
    );

    // not dynamic, unknown broker, bad value, unknown name
    let (code, msg) = n.incremental(BROKER, "1", &[("num.partitions", SET, Some("3"))], false);
    assert_eq!(code, INVALID_REQUEST);
    assert!(
        msg.contains("Cannot update these configs dynamically") && msg.contains("num.partitions"),
        "{msg}"
    );
    let (code, _) = n.incremental(BROKER, "7", &[("log.retention.ms", SET, Some("1"))], false);
    assert_eq!(code, INVALID_REQUEST);
    let (code, msg) = n.incremental(BROKER, "1", &[("log.segment.bytes", SET, Some("1"))], false);
    assert_eq!(code, INVALID_REQUEST);
    assert!(msg.contains("log.segment.bytes"), "{msg}");
    let (code, _) = n.incremental(
        BROKER,
        "1",
        &[("no.such.broker.config", SET, Some("1"))],
        false,
    );
    assert_eq!(code, INVALID_CONFIG);
    let (code, _) = n.legacy(BROKER, "1", &[("log.cleanup.policy", "compact,delete")]);
    assert_eq!(code, 0);

    // everything persists
    n.restart();
    let c = n.describe(TOPIC, "dyn");
    assert_eq!(
        (c["retention.ms"].value.as_deref(), c["retention.ms"].source),
        (Some("6000"), 3)
    );
    assert_eq!(c["cleanup.policy"].value.as_deref(), Some("compact,delete"));
    assert_eq!(c["cleanup.policy"].source, 2);
    assert_eq!(c["max.message.bytes"].value.as_deref(), Some("2000"));
    assert_eq!(
        n.produce("dyn", 0, 1, 5_000, now_ms()).0,
        ResponseError::MessageTooLarge.code()
    );
    let c = n.describe(TOPIC, "dyn-override");
    assert_eq!(c["retention.ms"].value.as_deref(), Some("777"));
    // deleting the last dynamic value reverts to the static one
    n.incremental(
        BROKER,
        "",
        &[
            ("log.retention.ms", DELETE, None),
            ("message.max.bytes", DELETE, None),
        ],
        false,
    );
    let c = n.describe(TOPIC, "dyn");
    assert_eq!(
        (c["retention.ms"].value.as_deref(), c["retention.ms"].source),
        (Some("360000000"), 4)
    );
}

#[test]
fn topic_configs_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Node::start(&[dir.path()], &[]);
    n.create("keep", 2, &[]);
    n.incremental(
        TOPIC,
        "keep",
        &[
            ("retention.bytes", SET, Some("123456")),
            ("segment.ms", SET, Some("60000")),
        ],
        false,
    );
    n.crash_and_restart();
    let c = n.describe(TOPIC, "keep");
    assert_eq!(
        (
            c["retention.bytes"].value.as_deref(),
            c["retention.bytes"].source
        ),
        (Some("123456"), 1)
    );
    assert_eq!(c["segment.ms"].value.as_deref(), Some("60000"));
    let tp = TopicPartition::new("keep", 1);
    let p = n.state().replica_manager.get_partition(&tp).unwrap();
    let log = p.log.lock();
    assert_eq!(log.retention_config().retention_bytes, 123456);
    assert_eq!(log.config().segment_ms, 60000);
}

#[test]
fn delete_records_every_version_and_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut n = Node::start(&[dir.path()], &[]);
    n.create("dr", 2, &[("segment.bytes", "1000")]);
    for p in 0..2 {
        assert_eq!(n.produce("dr", p, 20, 100, now_ms()).0, 0);
    }
    for v in 0..=2 {
        assert_eq!(
            n.delete_records(v, "dr", 0, 3 + v as i64),
            (0, 3 + v as i64)
        );
    }
    assert_eq!(n.delete_records(1, "dr", 0, 12), (0, 12));
    assert_eq!(n.list_offset("dr", 0, -2), (0, 12));
    assert_eq!(n.list_offset("dr", 0, -1), (0, 20));
    assert_eq!(
        n.fetch("dr", 0, 5).0,
        ResponseError::OffsetOutOfRange.code()
    );
    let (code, bytes) = n.fetch("dr", 0, 12);
    assert_eq!(code, 0);
    assert!(bytes > 0);
    // below the current start: nothing moves, the low watermark is reported
    assert_eq!(n.delete_records(2, "dr", 0, 4), (0, 12));
    // beyond the high watermark, negative, unknown
    assert_eq!(
        n.delete_records(2, "dr", 0, 999).0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(
        n.delete_records(2, "dr", 0, -5).0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(
        n.delete_records(2, "nope", 0, 1).0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    assert_eq!(
        n.delete_records(2, "dr", 9, 1).0,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // -1: up to the high watermark
    assert_eq!(n.delete_records(2, "dr", 1, -1), (0, 20));
    assert_eq!(n.list_offset("dr", 1, -2), (0, 20));
    // the checkpoint written before answering keeps it across a crash
    n.crash_and_restart();
    assert_eq!(n.list_offset("dr", 0, -2), (0, 12));
    assert_eq!(n.list_offset("dr", 1, -2), (0, 20));
    assert_eq!(
        n.fetch("dr", 0, 11).0,
        ResponseError::OffsetOutOfRange.code()
    );
    // compact-only topics refuse
    n.create("dr-compact", 1, &[("cleanup.policy", "compact")]);
    assert_eq!(
        n.delete_records(2, "dr-compact", 0, 0).0,
        ResponseError::PolicyViolation.code()
    );
}

#[test]
fn retention_follows_config_changes() {
    let dir = tempfile::tempdir().unwrap();
    let n = Node::start(&[dir.path()], &[]);
    n.create("ret", 1, &[("segment.bytes", "1000")]);
    let old = now_ms() - 3_600_000;
    assert_eq!(n.produce("ret", 0, 20, 200, old).0, 0);
    assert_eq!(n.produce("ret", 0, 1, 200, now_ms()).0, 0);
    let rm = &n.state().replica_manager;
    // default retention (7 days): nothing goes
    rm.cleanup_logs(now_ms());
    assert_eq!(n.list_offset("ret", 0, -2), (0, 0));
    // an hour-old segment is past retention.ms=60000: the change schedules
    // a pass that the once-a-second job runs
    n.incremental(TOPIC, "ret", &[("retention.ms", SET, Some("60000"))], false);
    let s = rm.run_due_retention(now_ms());
    assert!(s.segments_deleted > 0, "{s:?}");
    // every segment of only old records went; the one that also holds the
    // new record (offset 20) stays
    let tp = TopicPartition::new("ret", 0);
    let p = rm.get_partition(&tp).unwrap();
    let first_base = p.log.lock().segment_base_offsets()[0];
    assert!(first_base > 0 && first_base <= 20, "{first_base}");
    assert_eq!(n.list_offset("ret", 0, -2), (0, first_base));
    assert_eq!(n.list_offset("ret", 0, -1), (0, 21));
    assert_eq!(
        n.fetch("ret", 0, 0).0,
        ResponseError::OffsetOutOfRange.code()
    );
    assert_eq!(n.fetch("ret", 0, first_base).0, 0);
    // size: keep at most ~2 segments' worth
    n.incremental(
        TOPIC,
        "ret",
        &[
            ("retention.ms", DELETE, None),
            ("retention.bytes", SET, Some("600")),
        ],
        false,
    );
    assert_eq!(n.produce("ret", 0, 10, 200, now_ms()).0, 0);
    rm.cleanup_logs(now_ms());
    let size = p.log.lock().size_in_bytes();
    assert!(size <= 600 + 1000, "{size}");
    assert!(n.list_offset("ret", 0, -2).1 > 20);
}

/// Mounts a small tmpfs (needs root); `None` when that is not possible,
/// and the test then fails unless `OXKA_SKIP_ROOT_TESTS` is set.
struct Tmpfs(PathBuf);

impl Tmpfs {
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).ok()?;
        let ok = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(std::process::Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        ok.then(|| Tmpfs(dir.to_path_buf()))
    }

    fn resize(&self, size: &str) {
        let ok = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.0)
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        assert!(ok, "remount failed");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn full_disk_answers_storage_error_and_keeps_the_rest() {
    let root = tempfile::tempdir().unwrap();
    let good = root.path().join("good");
    let Some(small) = Tmpfs::mount(&root.path().join("small"), "1m") else {
        assert!(
            std::env::var_os("OXKA_SKIP_ROOT_TESTS").is_some(),
            "mounting a tmpfs needs root: run as root, or set OXKA_SKIP_ROOT_TESTS=1 to skip"
        );
        eprintln!("SKIPPED (OXKA_SKIP_ROOT_TESTS): cannot mount a tmpfs (needs root)");
        return;
    };
    // metadata lives in the first dir; the tmpfs is the second; no free
    // space reserve, so the writes run into ENOSPC itself
    let mut n = Node::start(&[&good, &small.0], &[("log.dir.min.free.bytes", "0")]);
    n.create("healthy", 1, &[]); // -> good (first of two empty dirs)
    n.create("cramped", 1, &[]); // -> small
    assert!(small.0.join("cramped-0").exists());
    assert!(good.join("healthy-0").exists());

    let mut acked = 0i64;
    let mut failure = 0;
    for _ in 0..400 {
        let (code, _) = n.produce("cramped", 0, 1, 10_000, now_ms());
        if code != 0 {
            failure = code;
            break;
        }
        acked += 1;
    }
    assert_eq!(
        failure,
        ResponseError::KafkaStorageError.code(),
        "after {acked} records"
    );
    assert!(acked > 10);
    // writes stay refused while the disk is full, but the acknowledged
    // records stay readable; the other dir keeps serving
    assert_eq!(
        n.produce("cramped", 0, 1, 10_000, now_ms()).0,
        ResponseError::KafkaStorageError.code()
    );
    assert_eq!(n.fetch("cramped", 0, 0).0, 0);
    assert_eq!(n.list_offset("cramped", 0, -1), (0, acked));
    assert_eq!(n.produce("healthy", 0, 5, 100, now_ms()).0, 0);
    assert_eq!(n.fetch("healthy", 0, 0).0, 0);

    // with room again, writes resume without a restart, and a restart
    // recovers every acknowledged record
    small.resize("16m");
    assert_eq!(n.produce("cramped", 0, 1, 10, now_ms()).0, 0);
    acked += 1;
    n.restart();
    assert_eq!(n.list_offset("cramped", 0, -1), (0, acked));
    let mut offset = 0;
    while offset < acked {
        let (code, bytes) = n.fetch("cramped", 0, offset);
        assert_eq!(code, 0);
        assert!(bytes > 0);
        let tp = TopicPartition::new("cramped", 0);
        let p = n.state().replica_manager.get_partition(&tp).unwrap();
        let data = p.log.lock().read(offset, 1 << 20, acked, true).unwrap();
        let batches: Vec<_> = oxka_log::record_batch::batches(&data.records)
            .map(|b| b.unwrap().0)
            .collect();
        oxka_log::record_batch::validate_batches(&data.records).unwrap();
        offset = batches.last().unwrap().last_offset() + 1;
    }
    assert_eq!(n.produce("cramped", 0, 1, 10, now_ms()).0, 0);
    drop(n);
}
