//! Handler behaviour checked through the full dispatch with the codec's own
//! request/response types: what no client library exposes directly.

mod common;

use common::{call, frame, run};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use oxka_broker::request::Outcome;

fn create(name: &str, partitions: i32) -> create_topics_response::CreatableTopicResult {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(name.into())))
            .with_num_partitions(partitions)
            .with_replication_factor(-1),
    ]);
    let resp: CreateTopicsResponse = call(ApiKey::CreateTopics, 7, &req);
    resp.topics.into_iter().next().expect("one result")
}

#[test]
fn delete_topics_by_id_and_unknown_id() {
    let t = create("by-id", 2);
    assert_eq!(t.error_code, 0);
    assert_eq!(t.num_partitions, 2);
    let req = DeleteTopicsRequest::default().with_topics(vec![
        delete_topics_request::DeleteTopicState::default().with_topic_id(t.topic_id),
        delete_topics_request::DeleteTopicState::default().with_topic_id(uuid::Uuid::new_v4()),
    ]);
    let resp: DeleteTopicsResponse = call(ApiKey::DeleteTopics, 6, &req);
    assert_eq!(resp.responses[0].error_code, 0);
    assert_eq!(
        resp.responses[0].name.as_ref().map(|n| n.0.as_str()),
        Some("by-id")
    );
    assert_eq!(
        resp.responses[1].error_code,
        ResponseError::UnknownTopicId.code()
    );
    let md: MetadataResponse = call(
        ApiKey::Metadata,
        12,
        &MetadataRequest::default().with_topics(None),
    );
    assert!(md
        .topics
        .iter()
        .all(|t| t.name.as_ref().map(|n| n.0.as_str()) != Some("by-id")));
}

#[test]
fn metadata_by_topic_id_and_auto_creation_flag() {
    let t = create("md-id", 3);
    let req = MetadataRequest::default().with_topics(Some(vec![
        metadata_request::MetadataRequestTopic::default().with_topic_id(t.topic_id),
    ]));
    let md: MetadataResponse = call(ApiKey::Metadata, 12, &req);
    assert_eq!(
        md.topics[0].name.as_ref().map(|n| n.0.as_str()),
        Some("md-id")
    );
    assert_eq!(md.topics[0].partitions.len(), 3);
    // allow_auto_topic_creation=false: unknown stays unknown
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_static_str("never-created"))))]))
        .with_allow_auto_topic_creation(false);
    let md: MetadataResponse = call(ApiKey::Metadata, 12, &req);
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
    // an illegal name is INVALID_TOPIC_EXCEPTION even when creation is allowed
    let req = MetadataRequest::default()
        .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
        )
        .with_name(Some(TopicName(StrBytes::from_static_str("bad name!"))))]))
        .with_allow_auto_topic_creation(true);
    let md: MetadataResponse = call(ApiKey::Metadata, 12, &req);
    assert_eq!(
        md.topics[0].error_code,
        ResponseError::InvalidTopicException.code()
    );
}

#[test]
fn fetch_returns_at_least_one_whole_batch_beyond_max_bytes() {
    let t = create("fetch-big", 1);
    let batch = oxka_log::builder::simple_batch(5, 2000, 1000);
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("fetch-big")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_records(Some(batch.freeze()))
            ]),
    ]);
    let resp: ProduceResponse = call(ApiKey::Produce, 9, &req);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
    let fetch =
        |max_bytes: i32, partition_max: i32, offset: i64| -> fetch_response::PartitionData {
            let req = FetchRequest::default()
                .with_max_bytes(max_bytes)
                .with_max_wait_ms(0)
                .with_topics(vec![fetch_request::FetchTopic::default()
                    .with_topic_id(t.topic_id)
                    .with_partitions(vec![fetch_request::FetchPartition::default()
                        .with_fetch_offset(offset)
                        .with_partition_max_bytes(partition_max)])]);
            let resp: FetchResponse = call(ApiKey::Fetch, 13, &req);
            resp.responses[0].partitions[0].clone()
        };
    let p = fetch(100, 100, 0);
    assert_eq!(p.error_code, 0);
    assert!(
        p.records.as_ref().map_or(0, |r| r.len()) > 10_000,
        "one whole batch despite max_bytes=100"
    );
    assert_eq!(p.high_watermark, 5);
    let p = fetch(1 << 20, 1 << 20, 6);
    assert_eq!(p.error_code, ResponseError::OffsetOutOfRange.code());
}

#[test]
fn acks_zero_gets_no_response_and_a_failure_closes_the_connection() {
    create("acks0", 1);
    let produce = |topic: &'static str| {
        ProduceRequest::default().with_acks(0).with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str(topic)))
                .with_partition_data(vec![produce_request::PartitionProduceData::default()
                    .with_records(Some(oxka_log::builder::simple_batch(2, 10, 1000).freeze()))]),
        ])
    };
    assert!(matches!(
        run(frame(ApiKey::Produce, 9, &produce("acks0"))),
        Outcome::NoResponse
    ));
    assert!(matches!(
        run(frame(ApiKey::Produce, 9, &produce("no-such-topic"))),
        Outcome::Close(_)
    ));
    // the acks=0 records did land
    let req = ListOffsetsRequest::default().with_topics(vec![
        list_offsets_request::ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("acks0")))
            .with_partitions(vec![
                list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1)
            ]),
    ]);
    let resp: ListOffsetsResponse = call(ApiKey::ListOffsets, 7, &req);
    assert_eq!(resp.topics[0].partitions[0].offset, 2);
}

/// The harness never runs the broker's serve loop, which loads the group
/// coordinator: load it once here.
fn load_groups() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        // what a client's FindCoordinator does first: the offsets topic
        // exists, so its partitions are led (and loaded) here
        let groups = &common::state().group_coordinator;
        groups.ensure_offsets_topic().expect("offsets topic");
        groups.load().expect("groups load")
    });
}

/// One OffsetCommit of offset 1 to partition 0 of `topic`; the error code.
fn offset_commit(version: i16, group: &str, member: &str, epoch: i32, topic: &str) -> i16 {
    let req = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.into())))
        .with_generation_id_or_member_epoch(epoch)
        .with_member_id(StrBytes::from_string(member.into()))
        .with_topics(vec![
            offset_commit_request::OffsetCommitRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.into())))
                .with_partitions(vec![
                    offset_commit_request::OffsetCommitRequestPartition::default()
                        .with_partition_index(0)
                        .with_committed_offset(1),
                ]),
        ]);
    load_groups();
    let resp: OffsetCommitResponse = call(ApiKey::OffsetCommit, version, &req);
    resp.topics[0].partitions[0].error_code
}

/// Kafka's OffsetMetadataManager: a group that does not exist takes a
/// commit without a generation whatever member id it carries (and becomes
/// a simple group); with a generation it is GROUP_ID_NOT_FOUND from v9,
/// ILLEGAL_GENERATION before.
#[test]
fn offset_commit_to_a_missing_group() {
    assert_eq!(create("oc-missing", 1).error_code, 0);
    let t = "oc-missing";
    assert_eq!(offset_commit(9, "oc-new-1", "client-made-id", -1, t), 0);
    assert_eq!(
        offset_commit(9, "oc-new-1", "other-id", -1, t),
        0,
        "still empty"
    );
    assert_eq!(
        offset_commit(9, "oc-new-2", "m", 3, t),
        ResponseError::GroupIdNotFound.code()
    );
    assert_eq!(
        offset_commit(8, "oc-new-3", "m", 3, t),
        ResponseError::IllegalGeneration.code()
    );
    // the simple group has members no more than before: a member commit
    // is refused as from an unknown member
    assert_eq!(
        offset_commit(8, "oc-new-1", "m", 3, t),
        ResponseError::UnknownMemberId.code()
    );
}

const GROUP: i8 = 32;

fn alter_group(group: &str, ops: &[(&str, i8, Option<&str>)]) -> (i16, Option<String>) {
    let req = IncrementalAlterConfigsRequest::default().with_resources(vec![
        incremental_alter_configs_request::AlterConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(StrBytes::from_string(group.into()))
            .with_configs(
                ops.iter()
                    .map(|(k, op, v)| {
                        incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(StrBytes::from_string(k.to_string()))
                            .with_config_operation(*op)
                            .with_value(v.map(|v| StrBytes::from_string(v.into())))
                    })
                    .collect(),
            ),
    ]);
    let resp: IncrementalAlterConfigsResponse = call(ApiKey::IncrementalAlterConfigs, 1, &req);
    let r = &resp.responses[0];
    (
        r.error_code,
        r.error_message.as_ref().map(|m| m.to_string()),
    )
}

type Described = Vec<(String, Option<String>, i8)>;

/// (name, value, source) of every config of `group`, or the error code.
fn describe_group(group: &str) -> Result<Described, i16> {
    let req = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(GROUP)
            .with_resource_name(StrBytes::from_string(group.into())),
    ]);
    let resp: DescribeConfigsResponse = call(ApiKey::DescribeConfigs, 4, &req);
    let r = &resp.results[0];
    if r.error_code != 0 {
        return Err(r.error_code);
    }
    Ok(r.configs
        .iter()
        .map(|c| {
            (
                c.name.to_string(),
                c.value.as_ref().map(|v| v.to_string()),
                c.config_source,
            )
        })
        .collect())
}

fn described(all: &Described, k: &str) -> (Option<String>, i8) {
    all.iter()
        .find(|c| c.0 == k)
        .map(|c| (c.1.clone(), c.2))
        .expect("described")
}

/// KIP-848 group configs: described with the broker's values as defaults,
/// altered within the broker's bounds (Kafka's messages), and the
/// coordinator hands a group its own heartbeat interval.
#[test]
fn group_configs_describe_alter_and_apply() {
    load_groups();
    let g = "cfg-group";
    let all = describe_group(g).expect("a group need not exist");
    let names: Vec<&str> = all.iter().map(|c| c.0.as_str()).collect();
    assert_eq!(names.len(), 21, "Kafka 4.4's group configs: {names:?}");
    for k in [
        "consumer.session.timeout.ms",
        "consumer.heartbeat.interval.ms",
        "share.session.timeout.ms",
        "share.heartbeat.interval.ms",
        "share.record.lock.duration.ms",
        "share.auto.offset.reset",
        "share.isolation.level",
        "share.delivery.count.limit",
        "streams.session.timeout.ms",
        "errors.deadletterqueue.topic.name",
    ] {
        assert!(names.contains(&k), "{k} described: {names:?}");
    }
    assert_eq!(
        described(&all, "consumer.heartbeat.interval.ms"),
        (Some("5000".to_string()), 5),
        "the broker's value, DEFAULT_CONFIG"
    );
    assert_eq!(
        alter_group(g, &[("consumer.heartbeat.interval.ms", 0, Some("6000"))]).0,
        0
    );
    assert_eq!(
        described(
            &describe_group(g).unwrap(),
            "consumer.heartbeat.interval.ms"
        ),
        (Some("6000".to_string()), 8),
        "GROUP_CONFIG"
    );
    let (code, msg) = alter_group(g, &[("consumer.session.timeout.ms", 0, Some("1000"))]);
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert_eq!(
        msg.as_deref(),
        Some("consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.")
    );
    let (code, msg) = alter_group(g, &[("no.such.key", 0, Some("1"))]);
    assert_eq!(code, ResponseError::InvalidConfig.code());
    assert_eq!(
        msg.as_deref(),
        Some("Unknown group config name: no.such.key")
    );
    assert_eq!(alter_group("", &[]).0, ResponseError::InvalidRequest.code());
    assert_eq!(
        describe_group(""),
        Err(ResponseError::InvalidRequest.code())
    );

    // the coordinator uses the group's interval, other groups the broker's
    let hb = |group: &str| {
        let req = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(StrBytes::from_string(group.into())))
            .with_member_id(StrBytes::from_string(uuid::Uuid::new_v4().to_string()))
            .with_member_epoch(0)
            .with_rebalance_timeout_ms(30_000)
            .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str(
                "cfg-none",
            ))]))
            .with_topic_partitions(Some(vec![]));
        let resp: ConsumerGroupHeartbeatResponse = call(ApiKey::ConsumerGroupHeartbeat, 0, &req);
        assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
        resp.heartbeat_interval_ms
    };
    assert_eq!(hb(g), 6000);
    assert_eq!(hb("cfg-other-group"), 5000);
    // DELETE: back to the broker's value
    assert_eq!(
        alter_group(g, &[("consumer.heartbeat.interval.ms", 1, None)]).0,
        0
    );
    assert_eq!(hb(g), 5000);
    assert_eq!(
        described(
            &describe_group(g).unwrap(),
            "consumer.heartbeat.interval.ms"
        )
        .1,
        5
    );
}

/// Legacy AlterConfigs takes GROUP resources too (Kafka allows it): the
/// request's entries become the group's whole set of overrides.
#[test]
fn group_configs_legacy_alter() {
    let g = "cfg-legacy";
    let alter = |entries: &[(&str, &str)]| {
        let req = AlterConfigsRequest::default().with_resources(vec![
            alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(GROUP)
                .with_resource_name(StrBytes::from_string(g.into()))
                .with_configs(
                    entries
                        .iter()
                        .map(|(k, v)| {
                            alter_configs_request::AlterableConfig::default()
                                .with_name(StrBytes::from_string(k.to_string()))
                                .with_value(Some(StrBytes::from_string(v.to_string())))
                        })
                        .collect(),
                ),
        ]);
        let resp: AlterConfigsResponse = call(ApiKey::AlterConfigs, 2, &req);
        resp.responses[0].error_code
    };
    assert_eq!(alter(&[("share.isolation.level", "read_committed")]), 0);
    assert_eq!(
        alter(&[("share.isolation.level", "serializable")]),
        ResponseError::InvalidConfig.code()
    );
    let level = || described(&describe_group(g).unwrap(), "share.isolation.level");
    assert_eq!(level(), (Some("read_committed".into()), 8));
    assert_eq!(alter(&[("consumer.session.timeout.ms", "50000")]), 0);
    assert_eq!(
        level(),
        (Some("read_uncommitted".into()), 5),
        "not named, back to the default"
    );
}

/// KIP-430: the operations a client may perform, only when asked (else
/// INT32_MIN); without an authorizer every operation of the resource type,
/// as Kafka without `authorizer.class.name` reports.
#[test]
fn authorized_operations_only_when_requested() {
    const TOPIC_OPS: i32 = 3576; // READ..ALTER_CONFIGS without CLUSTER_ACTION
    const CLUSTER_OPS: i32 = 8096;
    const GROUP_OPS: i32 = 3400;
    create("authz", 1);
    let topic = |include: bool| {
        let req = MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(TopicName(StrBytes::from_static_str("authz"))))]))
            .with_include_cluster_authorized_operations(include)
            .with_include_topic_authorized_operations(include);
        let md: MetadataResponse = call(ApiKey::Metadata, 10, &req);
        (
            md.topics[0].topic_authorized_operations,
            md.cluster_authorized_operations,
        )
    };
    assert_eq!(topic(true), (TOPIC_OPS, CLUSTER_OPS));
    assert_eq!(topic(false), (i32::MIN, i32::MIN));

    let cluster = |include: bool| {
        let req =
            DescribeClusterRequest::default().with_include_cluster_authorized_operations(include);
        let resp: DescribeClusterResponse = call(ApiKey::DescribeCluster, 1, &req);
        resp.cluster_authorized_operations
    };
    assert_eq!(cluster(true), CLUSTER_OPS);
    assert_eq!(cluster(false), i32::MIN);

    // an unknown group is described without error (Dead) before v6, with
    // GROUP_ID_NOT_FOUND from v6 on: only the former carries operations.
    // (The harness does not run the serve loop that loads the coordinator.)
    load_groups();
    let group = |version: i16, include: bool| {
        let req = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(StrBytes::from_static_str("authz-group"))])
            .with_include_authorized_operations(include);
        let resp: DescribeGroupsResponse = call(ApiKey::DescribeGroups, version, &req);
        resp.groups[0].authorized_operations
    };
    assert_eq!(group(5, true), GROUP_OPS);
    assert_eq!(group(5, false), i32::MIN);
    assert_eq!(group(6, true), i32::MIN);

    // a KIP-848 group: ConsumerGroupDescribe, same rule
    let join = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(StrBytes::from_static_str("authz-848")))
        .with_member_id(StrBytes::from_string(uuid::Uuid::new_v4().to_string()))
        .with_member_epoch(0)
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_names(Some(vec![TopicName(StrBytes::from_static_str("authz"))]))
        .with_topic_partitions(Some(vec![]));
    let joined: ConsumerGroupHeartbeatResponse = call(ApiKey::ConsumerGroupHeartbeat, 0, &join);
    assert_eq!(joined.error_code, 0, "{:?}", joined.error_message);
    let consumer_group = |id: &'static str, include: bool| {
        let req = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(StrBytes::from_static_str(id))])
            .with_include_authorized_operations(include);
        let resp: ConsumerGroupDescribeResponse = call(ApiKey::ConsumerGroupDescribe, 0, &req);
        (
            resp.groups[0].error_code,
            resp.groups[0].authorized_operations,
        )
    };
    assert_eq!(consumer_group("authz-848", true), (0, GROUP_OPS));
    assert_eq!(consumer_group("authz-848", false), (0, i32::MIN));
    assert_eq!(
        consumer_group("authz-none", true),
        (ResponseError::GroupIdNotFound.code(), i32::MIN)
    );
}

/// KIP-467: keyless records for a compacted topic are refused with the
/// batch, as INVALID_RECORD naming each of them (index in the batch and
/// Kafka's message) in `record_errors` (v8+), with Kafka's summary as the
/// partition's error message.
#[test]
fn produce_names_the_invalid_records() {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("kip467")))
            .with_num_partitions(1)
            .with_replication_factor(-1)
            .with_configs(vec![create_topics_request::CreatableTopicConfig::default()
                .with_name(StrBytes::from_static_str("cleanup.policy"))
                .with_value(Some(StrBytes::from_static_str("compact")))]),
    ]);
    let created: CreateTopicsResponse = call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(created.topics[0].error_code, 0);
    let batch = oxka_log::builder::RecordBatchBuilder::new()
        .record(None, Some(b"a"), 1)
        .record(Some(b"k"), Some(b"b"), 1)
        .record(None, Some(b"c"), 1)
        .build();
    let produce = |version: i16| {
        let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("kip467")))
                .with_partition_data(vec![produce_request::PartitionProduceData::default()
                    .with_records(Some(batch.clone().freeze()))]),
        ]);
        let resp: ProduceResponse = call(ApiKey::Produce, version, &req);
        resp.responses[0].partition_responses[0].clone()
    };
    let p = produce(9);
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    let why = "Compacted topic cannot accept message without key in topic partition kip467-0";
    let named: Vec<(i32, Option<&str>)> = p
        .record_errors
        .iter()
        .map(|r| (r.batch_index, r.batch_index_error_message.as_deref()))
        .collect();
    assert_eq!(named, vec![(0, Some(why)), (2, Some(why))]);
    let message = p.error_message.as_deref().unwrap_or_default();
    assert!(
        message
            .starts_with("One or more records have been rejected due to 2 record errors in total"),
        "{message}"
    );
    // v7 has no record errors: the partition error alone
    let p = produce(7);
    assert_eq!(p.error_code, ResponseError::InvalidRecord.code());
    assert!(p.record_errors.is_empty());
}

/// KIP-467 for create times out of `message.timestamp.after.max.ms`: the
/// records at fault named, Kafka's summary as the message.
#[test]
fn produce_names_the_records_with_invalid_timestamps() {
    create("kip467-ts", 1);
    let now = oxka_broker::server::now_ms();
    let ahead = now + 3 * 3_600_000;
    let batch = oxka_log::builder::RecordBatchBuilder::new()
        .record(Some(b"a"), Some(b"a"), now)
        .record(Some(b"b"), Some(b"b"), ahead)
        .record(Some(b"c"), Some(b"c"), now)
        .record(Some(b"d"), Some(b"d"), ahead)
        .build();
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("kip467-ts")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_records(Some(batch.freeze()))
            ]),
    ]);
    let resp: ProduceResponse = call(ApiKey::Produce, 11, &req);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidTimestamp.code());
    assert_eq!(
        p.error_message.as_deref(),
        Some("One or more records have been rejected due to invalid timestamp")
    );
    let named: Vec<(i32, String)> = p
        .record_errors
        .iter()
        .map(|r| {
            (
                r.batch_index,
                r.batch_index_error_message
                    .as_deref()
                    .unwrap_or_default()
                    .to_string(),
            )
        })
        .collect();
    assert_eq!(named.len(), 2, "{named:?}");
    assert_eq!((named[0].0, named[1].0), (1, 3));
    assert!(
        named[0].1.starts_with(&format!(
            "Timestamp {ahead} of message with offset 1 is out of range"
        )),
        "{named:?}"
    );
}

/// Clients may not write to the coordinators' topics (Kafka answers
/// INVALID_TOPIC_EXCEPTION): a stray record there would be replayed into
/// group state at every start. Before, the append was accepted.
#[test]
fn produce_to_an_internal_topic_is_refused() {
    load_groups();
    // a FindCoordinator creates __consumer_offsets
    let req = FindCoordinatorRequest::default()
        .with_key(StrBytes::from_static_str("internal-probe"))
        .with_key_type(0);
    let _: FindCoordinatorResponse = call(ApiKey::FindCoordinator, 3, &req);
    let batch = oxka_log::builder::RecordBatchBuilder::new()
        .record(Some(b"k"), Some(b"v"), 1)
        .build();
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_static_str("__consumer_offsets")))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_records(Some(batch.freeze()))
            ]),
    ]);
    let resp: ProduceResponse = call(ApiKey::Produce, 9, &req);
    let p = &resp.responses[0].partition_responses[0];
    assert_eq!(p.error_code, ResponseError::InvalidTopicException.code());
}

/// DescribeQuorum (KIP-595) answers at every advertised version on a
/// quorum of one: this node leads, is the only voter, is caught up; the
/// voters' listeners only from v2 (KIP-853) — a v0/v1 answer carrying them
/// could not be encoded and closed the connection.
#[test]
fn describe_quorum_at_every_version() {
    for version in 0..=2 {
        let req = DescribeQuorumRequest::default().with_topics(vec![
            describe_quorum_request::TopicData::default()
                .with_topic_name(TopicName(StrBytes::from_static_str("__cluster_metadata")))
                .with_partitions(vec![
                    describe_quorum_request::PartitionData::default().with_partition_index(0)
                ]),
        ]);
        let resp: DescribeQuorumResponse = call(ApiKey::DescribeQuorum, version, &req);
        assert_eq!(resp.error_code, 0, "v{version}");
        let p = &resp.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "v{version}");
        assert_eq!(p.leader_id.0, 1, "v{version}");
        assert!(
            p.leader_epoch >= 1 && p.high_watermark > 0,
            "v{version}: {p:?}"
        );
        assert_eq!(p.current_voters.len(), 1, "v{version}");
        assert!(p.current_voters[0].log_end_offset >= p.high_watermark);
        assert!(p.observers.is_empty());
    }
}
