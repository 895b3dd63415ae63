//! Property-based fuzzing of frame handling: random and mutated request
//! frames go through the full dispatch (header, version check, decode,
//! handler, encode) of a real broker state. Nothing may panic, and every
//! outcome is a response, silence (acks=0) or a closed connection.
//!
//! `OXKA_FUZZ_CASES` raises the case count (default 1000 per property).

mod common;

use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use common::{run, run_bounded};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Encodable, StrBytes};
use oxka_broker::request::{Outcome, SUPPORTED_APIS};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("OXKA_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

/// Valid requests of the main APIs, encoded at a given version.
fn valid_request(key: ApiKey, version: i16) -> Option<Vec<u8>> {
    let mut body = BytesMut::new();
    let topic = TopicName(StrBytes::from_static_str("fuzz-topic"));
    let ok = match key {
        ApiKey::Metadata => MetadataRequest::default()
            .with_topics(Some(vec![metadata_request::MetadataRequestTopic::default(
            )
            .with_name(Some(topic))]))
            .encode(&mut body, version),
        ApiKey::Produce => ProduceRequest::default()
            .with_acks(1)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(topic)
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default().with_records(Some(
                        Bytes::from(oxka_log::builder::simple_batch(3, 20, 1000).to_vec()),
                    )),
                ])])
            .encode(&mut body, version),
        ApiKey::Fetch => FetchRequest::default()
            .with_max_wait_ms(0)
            .with_topics(vec![fetch_request::FetchTopic::default()
                .with_topic(topic)
                .with_partitions(vec![
                    fetch_request::FetchPartition::default().with_partition_max_bytes(1 << 20)
                ])])
            .encode(&mut body, version),
        ApiKey::CreateTopics => CreateTopicsRequest::default()
            .with_topics(vec![create_topics_request::CreatableTopic::default()
                .with_name(topic)
                .with_num_partitions(1)
                .with_replication_factor(1)])
            .encode(&mut body, version),
        ApiKey::ListOffsets => ListOffsetsRequest::default()
            .with_topics(vec![list_offsets_request::ListOffsetsTopic::default()
                .with_name(topic)
                .with_partitions(vec![
                    list_offsets_request::ListOffsetsPartition::default().with_timestamp(-1),
                ])])
            .encode(&mut body, version),
        _ => return None,
    };
    ok.ok()?;
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(StrBytes::from_static_str("fuzz")));
    let mut out = BytesMut::new();
    header
        .encode(&mut out, key.request_header_version(version))
        .ok()?;
    out.put_slice(&body);
    Some(out.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), failure_persistence: None, .. ProptestConfig::default() })]

    /// Random bytes after a plausible api key and version.
    #[test]
    fn random_bodies_never_panic(
        api in prop::sample::select(SUPPORTED_APIS.to_vec()),
        version in -2i16..20,
        tail in prop::collection::vec(any::<u8>(), 4..600),
    ) {
        let mut frame = Vec::with_capacity(tail.len() + 4);
        frame.extend_from_slice(&(api as i16).to_be_bytes());
        frame.extend_from_slice(&version.to_be_bytes());
        frame.extend_from_slice(&tail);
        let _ = run_bounded(frame, Duration::from_millis(200));
    }

    /// Valid requests with a few bytes overwritten or the end cut off.
    #[test]
    fn mutated_valid_requests_never_panic(
        api in prop::sample::select(vec![ApiKey::Metadata, ApiKey::Produce, ApiKey::Fetch, ApiKey::CreateTopics, ApiKey::ListOffsets]),
        version_pick in 0usize..64,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
        truncate in any::<bool>(),
    ) {
        let (min, max) = oxka_broker::request::supported_versions(api).unwrap();
        let version = min + (version_pick as i16 % (max - min + 1));
        let Some(mut frame) = valid_request(api, version) else { return Ok(()) };
        // keep api key and version intact so the mutation reaches the body
        for (idx, byte) in flips {
            let i = 4 + idx.index(frame.len() - 4);
            frame[i] = byte;
        }
        if truncate {
            frame.truncate(8.max(cut.index(frame.len())));
        }
        let _ = run_bounded(frame, Duration::from_millis(200));
    }
}

#[test]
fn valid_requests_are_answered_at_every_version() {
    for api in [
        ApiKey::Metadata,
        ApiKey::Produce,
        ApiKey::Fetch,
        ApiKey::CreateTopics,
        ApiKey::ListOffsets,
    ] {
        let (min, max) = oxka_broker::request::supported_versions(api).unwrap();
        for v in min..=max {
            let frame = valid_request(api, v).unwrap_or_else(|| panic!("{api:?} v{v} encodes"));
            match run(frame) {
                Outcome::Respond(_) => {}
                Outcome::NoResponse => panic!("{api:?} v{v}: no response"),
                Outcome::Close(r) => panic!("{api:?} v{v}: closed: {r}"),
            }
        }
    }
}
