//! Fetch through the full dispatch: the response frame leaves record
//! batches in segment files (file chunks for the connection writer to
//! `sendfile`), and the frame, once the files are read, decodes with the
//! codec at every version to exactly the batches produced.

mod common;

use bytes::{Buf, Bytes};
use common::{call, frame, run};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, StrBytes};
use oxka_broker::network::{Response, ResponseChunk};
use oxka_broker::request::Outcome;
use oxka_log::record_batch::batches;

const TOPIC: &str = "zero-copy";

fn name() -> TopicName {
    TopicName(StrBytes::from_static_str(TOPIC))
}

/// Creates the topic (2 partitions) and produces `rounds` batches of 4
/// records into each partition; returns the topic id.
fn setup(rounds: usize) -> uuid::Uuid {
    let req = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name())
            .with_num_partitions(2)
            .with_replication_factor(-1),
    ]);
    let resp: CreateTopicsResponse = call(ApiKey::CreateTopics, 7, &req);
    assert_eq!(resp.topics[0].error_code, 0);
    for _ in 0..rounds {
        let data = (0..2)
            .map(|p| {
                produce_request::PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(
                        oxka_log::builder::simple_batch(4, 500, 1_000).freeze(),
                    ))
            })
            .collect();
        let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
            produce_request::TopicProduceData::default()
                .with_name(name())
                .with_partition_data(data),
        ]);
        let resp: ProduceResponse = call(ApiKey::Produce, 9, &req);
        for p in &resp.responses[0].partition_responses {
            assert_eq!(p.error_code, 0);
        }
    }
    resp.topics[0].topic_id
}

fn fetch_request(version: i16, id: uuid::Uuid, max_bytes: i32) -> FetchRequest {
    let mut topic = fetch_request::FetchTopic::default().with_partitions(
        (0..2)
            .map(|p| {
                fetch_request::FetchPartition::default()
                    .with_partition(p)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)
            })
            .collect(),
    );
    if version >= 13 {
        topic = topic.with_topic_id(id);
    } else {
        topic = topic.with_topic(name());
    }
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_bytes(max_bytes)
        .with_max_wait_ms(0)
        .with_topics(vec![topic])
}

fn respond(version: i16, req: &FetchRequest) -> Response {
    match run(frame(ApiKey::Fetch, version, req)) {
        Outcome::Respond(resp) => resp,
        Outcome::NoResponse => panic!("v{version}: no response"),
        Outcome::Close(r) => panic!("v{version}: closed: {r}"),
    }
}

fn decode(resp: &Response, version: i16) -> FetchResponse {
    let bytes = resp.to_bytes().expect("file-backed records readable");
    let mut b = bytes.slice(4..);
    assert_eq!(bytes.clone().get_i32() as usize, bytes.len() - 4);
    ResponseHeader::decode(&mut b, ApiKey::Fetch.response_header_version(version)).expect("header");
    let out = FetchResponse::decode(&mut b, version).expect("body");
    assert!(b.is_empty());
    out
}

fn file_chunks(resp: &Response) -> usize {
    resp.chunks()
        .iter()
        .filter(|c| matches!(c, ResponseChunk::File(_)))
        .count()
}

/// Base offsets of the whole batches in `records`.
fn base_offsets(records: &Option<Bytes>) -> Vec<i64> {
    batches(records.as_deref().unwrap_or_default())
        .map(|b| b.expect("whole, valid batches").0.base_offset)
        .collect()
}

#[test]
fn every_version_sends_records_from_files_and_decodes_to_the_batches() {
    let id = setup_once();
    for version in 4..=18 {
        let req = fetch_request(version, id, 50 << 20);
        let resp = respond(version, &req);
        assert_eq!(
            file_chunks(&resp),
            2,
            "v{version}: one region per partition"
        );
        let decoded = decode(&resp, version);
        let parts = &decoded.responses[0].partitions;
        assert_eq!(parts.len(), 2);
        for p in parts {
            assert_eq!(p.error_code, 0, "v{version}");
            assert_eq!(p.high_watermark, 12);
            assert_eq!(base_offsets(&p.records), vec![0, 4, 8], "v{version}");
        }
    }
}

/// The response budget (`max_bytes`) still applies, and the first batch
/// is still returned whole when it alone exceeds it (KIP-74).
#[test]
fn byte_limits_and_the_first_batch_rule_are_unchanged() {
    let id = setup_once();
    for version in [4, 11, 12, 18] {
        let resp = respond(version, &fetch_request(version, id, 1));
        let decoded = decode(&resp, version);
        let parts = &decoded.responses[0].partitions;
        assert_eq!(
            base_offsets(&parts[0].records),
            vec![0],
            "v{version}: one batch"
        );
        assert_eq!(
            base_offsets(&parts[1].records),
            Vec::<i64>::new(),
            "v{version}: budget spent"
        );
        assert_eq!(file_chunks(&resp), 1);
    }
}

/// The harness is shared by the tests of this file; the topic is created
/// by whichever test runs first.
fn setup_once() -> uuid::Uuid {
    static ID: std::sync::OnceLock<uuid::Uuid> = std::sync::OnceLock::new();
    *ID.get_or_init(|| setup(3))
}
