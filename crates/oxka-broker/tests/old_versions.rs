//! Request versions Kafka 3.9 still accepted and 4.0 removed (KIP-896),
//! which oxka serves for clients pinned to them (Debian's sarama 1.22).
//! The frames are written and read by hand from Kafka 3.9's schemas, not
//! with the codec, so that a mistake in the restored codec versions shows.

mod common;

use common::{call, run};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use oxka_broker::request::Outcome;

/// A non-flexible request: header v1 (key, version, correlation id, client
/// id) and then the body's fields in order.
struct Req(Vec<u8>);

impl Req {
    fn new(key: ApiKey, version: i16) -> Req {
        Req(Vec::new())
            .i16(key as i16)
            .i16(version)
            .i32(7)
            .str("old-client")
    }
    fn i8(mut self, v: i8) -> Req {
        self.0.push(v as u8);
        self
    }
    fn i16(mut self, v: i16) -> Req {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i32(mut self, v: i32) -> Req {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn i64(mut self, v: i64) -> Req {
        self.0.extend_from_slice(&v.to_be_bytes());
        self
    }
    fn str(self, v: &str) -> Req {
        let mut r = self.i16(v.len() as i16);
        r.0.extend_from_slice(v.as_bytes());
        r
    }
    /// Sends the frame; the response body after its header v0.
    fn send(self) -> Resp {
        match run(self.0) {
            Outcome::Respond(r) => {
                let bytes = r.to_bytes().expect("response bytes");
                let mut resp = Resp(bytes[4..].to_vec(), 0);
                assert_eq!(resp.i32(), 7, "correlation id");
                resp
            }
            Outcome::NoResponse => panic!("no response"),
            Outcome::Close(why) => panic!("connection closed: {why}"),
        }
    }
}

/// Reads a non-flexible response body field by field.
struct Resp(Vec<u8>, usize);

impl Resp {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let b: [u8; N] = self.0[self.1..self.1 + N].try_into().expect("field");
        self.1 += N;
        b
    }
    fn bool(&mut self) -> bool {
        self.take::<1>()[0] != 0
    }
    fn i8(&mut self) -> i8 {
        i8::from_be_bytes(self.take())
    }
    fn i16(&mut self) -> i16 {
        i16::from_be_bytes(self.take())
    }
    fn i32(&mut self) -> i32 {
        i32::from_be_bytes(self.take())
    }
    fn i64(&mut self) -> i64 {
        i64::from_be_bytes(self.take())
    }
    fn nstr(&mut self) -> Option<String> {
        let n = self.i16();
        if n < 0 {
            return None;
        }
        let s = String::from_utf8(self.0[self.1..self.1 + n as usize].to_vec()).expect("utf-8");
        self.1 += n as usize;
        Some(s)
    }
    fn str(&mut self) -> String {
        self.nstr().expect("non-null string")
    }
    fn done(&self) {
        assert_eq!(self.1, self.0.len(), "trailing bytes in the response");
    }
}

/// CreateTopics v0 (no validate_only; the answer has no error message).
fn create_v0(name: &str, partitions: i32, configs: &[(&str, &str)]) {
    let mut req = Req::new(ApiKey::CreateTopics, 0)
        .i32(1)
        .str(name)
        .i32(partitions)
        .i16(1)
        .i32(0)
        .i32(configs.len() as i32);
    for (k, v) in configs {
        req = req.str(k).str(v);
    }
    let mut resp = req.i32(30_000).send();
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.str(), name);
    assert_eq!(resp.i16(), 0, "created");
    resp.done();
}

fn produce(topic: &str, records: i32) {
    let batch = oxka_log::builder::simple_batch(records as usize, 10, 1000);
    let req = ProduceRequest::default().with_acks(1).with_topic_data(vec![
        produce_request::TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.into())))
            .with_partition_data(vec![
                produce_request::PartitionProduceData::default().with_records(Some(batch.freeze()))
            ]),
    ]);
    let resp: ProduceResponse = call(ApiKey::Produce, 9, &req);
    assert_eq!(resp.responses[0].partition_responses[0].error_code, 0);
}

#[test]
fn api_versions_advertises_the_restored_versions() {
    let resp: ApiVersionsResponse = call(ApiKey::ApiVersions, 3, &ApiVersionsRequest::default());
    let min = |k: ApiKey| {
        resp.api_keys
            .iter()
            .find(|a| a.api_key == k as i16)
            .map(|a| a.min_version)
    };
    for k in [
        ApiKey::ListOffsets,
        ApiKey::OffsetCommit,
        ApiKey::OffsetFetch,
        ApiKey::DescribeConfigs,
        ApiKey::CreateTopics,
        ApiKey::DeleteTopics,
        ApiKey::Metadata,
        ApiKey::FindCoordinator,
        ApiKey::JoinGroup,
    ] {
        assert_eq!(min(k), Some(0), "{k:?}");
    }
    // message formats v0/v1 stay out
    assert_eq!(min(ApiKey::Produce), Some(3));
    assert_eq!(min(ApiKey::Fetch), Some(4));
}

#[test]
fn create_describe_configs_and_delete_topics_v0() {
    create_v0("ov-configs", 1, &[("retention.ms", "1000")]);
    let mut resp = Req::new(ApiKey::DescribeConfigs, 0)
        .i32(1)
        .i8(2)
        .str("ov-configs")
        .i32(-1) // every key
        .send();
    assert_eq!(resp.i32(), 0, "throttle");
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.i16(), 0);
    resp.nstr(); // error message
    assert_eq!(resp.i8(), 2);
    assert_eq!(resp.str(), "ov-configs");
    let n = resp.i32();
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..n {
        let name = resp.str();
        let value = resp.nstr();
        let _read_only = resp.bool();
        let is_default = resp.bool();
        let _sensitive = resp.bool();
        seen.insert(name, (value, is_default));
    }
    resp.done();
    assert_eq!(
        seen.get("retention.ms"),
        Some(&(Some("1000".to_string()), false))
    );
    assert_eq!(
        seen.get("cleanup.policy"),
        Some(&(Some("delete".to_string()), true))
    );

    let mut resp = Req::new(ApiKey::DeleteTopics, 0)
        .i32(1)
        .str("ov-configs")
        .i32(30_000)
        .send();
    // v0 has no throttle time
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.str(), "ov-configs");
    assert_eq!(resp.i16(), 0);
    resp.done();
}

#[test]
fn metadata_v0_empty_topic_list_means_all_topics() {
    create_v0("ov-all-a", 1, &[]);
    create_v0("ov-all-b", 2, &[]);
    let mut resp = Req::new(ApiKey::Metadata, 0).i32(0).send();
    let brokers = resp.i32();
    for _ in 0..brokers {
        resp.i32();
        resp.str();
        resp.i32();
    }
    let mut names = Vec::new();
    for _ in 0..resp.i32() {
        assert_eq!(resp.i16(), 0);
        let name = resp.str();
        let partitions = resp.i32();
        for _ in 0..partitions {
            resp.i16();
            resp.i32();
            resp.i32();
            for _ in 0..2 {
                // replicas, then the ISR
                let n = resp.i32();
                for _ in 0..n {
                    resp.i32();
                }
            }
        }
        names.push((name, partitions));
    }
    resp.done();
    assert!(names.contains(&("ov-all-a".to_string(), 1)), "{names:?}");
    assert!(names.contains(&("ov-all-b".to_string(), 2)), "{names:?}");
}

/// ListOffsets v0 for one partition: (error, offsets).
fn list_offsets_v0(topic: &str, timestamp: i64, max: i32) -> (i16, Vec<i64>) {
    let mut resp = Req::new(ApiKey::ListOffsets, 0)
        .i32(-1)
        .i32(1)
        .str(topic)
        .i32(1)
        .i32(0)
        .i64(timestamp)
        .i32(max)
        .send();
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.str(), topic);
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.i32(), 0, "partition");
    let error = resp.i16();
    let offsets = (0..resp.i32()).map(|_| resp.i64()).collect();
    resp.done();
    (error, offsets)
}

#[test]
fn list_offsets_v0_answers_segment_offsets_newest_first() {
    create_v0("ov-offsets", 1, &[]);
    assert_eq!(list_offsets_v0("ov-offsets", -1, 1), (0, vec![0]));
    produce("ov-offsets", 5);
    // the log end, then the start of the (only) segment
    assert_eq!(list_offsets_v0("ov-offsets", -1, 1), (0, vec![5]));
    assert_eq!(list_offsets_v0("ov-offsets", -1, 10), (0, vec![5, 0]));
    assert_eq!(list_offsets_v0("ov-offsets", -2, 10), (0, vec![0]));
    assert_eq!(list_offsets_v0("ov-offsets", i64::MAX, 10), (0, vec![5, 0]));
    // nothing was written before 1970
    assert_eq!(list_offsets_v0("ov-offsets", 0, 10), (0, vec![]));
    // v0 knows no other negative timestamp (max timestamp came with KIP-734)
    assert_eq!(list_offsets_v0("ov-offsets", -3, 1), (35, vec![]));
    assert_eq!(list_offsets_v0("ov-unknown", -1, 1).0, 3);
}

/// OffsetFetch v0/v1 (same layout) for partitions 0 and 1 of `topic`:
/// (offset, metadata, error) per partition.
fn fetch_v(version: i16, group: &str, topic: &str) -> Vec<(i64, Option<String>, i16)> {
    let mut resp = Req::new(ApiKey::OffsetFetch, version)
        .str(group)
        .i32(1)
        .str(topic)
        .i32(2)
        .i32(0)
        .i32(1)
        .send();
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.str(), topic);
    let n = resp.i32();
    let out = (0..n)
        .map(|i| {
            assert_eq!(resp.i32(), i);
            (resp.i64(), resp.nstr(), resp.i16())
        })
        .collect();
    resp.done();
    out
}

fn commit_response(mut resp: Resp, topic: &str) -> Vec<i16> {
    assert_eq!(resp.i32(), 1);
    assert_eq!(resp.str(), topic);
    let n = resp.i32();
    let errors = (0..n)
        .map(|i| {
            assert_eq!(resp.i32(), i);
            resp.i16()
        })
        .collect();
    resp.done();
    errors
}

/// The harness never runs the broker's serve loop, which loads the group
/// coordinator; load it once here.
fn load_group_coordinator() {
    static LOADED: std::sync::Once = std::sync::Once::new();
    LOADED.call_once(|| {
        // what a client's FindCoordinator does first: the offsets topic
        // exists, so its partitions are led (and loaded) here
        let groups = &common::state().group_coordinator;
        groups.ensure_offsets_topic().expect("offsets topic");
        groups.load().expect("groups load")
    });
}

#[test]
fn offset_commit_v0_and_v1_are_stored_and_fetched_by_every_version() {
    load_group_coordinator();
    create_v0("ov-commit", 2, &[]);
    // v0: group, then topics; no generation, member or timestamp
    let resp = Req::new(ApiKey::OffsetCommit, 0)
        .str("ov-group-0")
        .i32(1)
        .str("ov-commit")
        .i32(2)
        .i32(0)
        .i64(11)
        .str("m0")
        .i32(1)
        .i64(12)
        .str("")
        .send();
    assert_eq!(commit_response(resp, "ov-commit"), vec![0, 0]);
    let want = vec![(11, Some("m0".into()), 0), (12, Some(String::new()), 0)];
    assert_eq!(fetch_v(0, "ov-group-0", "ov-commit"), want);
    assert_eq!(fetch_v(1, "ov-group-0", "ov-commit"), want);

    // v1: generation -1 and no member id (a simple commit), a commit
    // timestamp per partition (-1: the broker's clock)
    let resp = Req::new(ApiKey::OffsetCommit, 1)
        .str("ov-group-1")
        .i32(-1)
        .str("")
        .i32(1)
        .str("ov-commit")
        .i32(2)
        .i32(0)
        .i64(21)
        .i64(1_000)
        .str("m1")
        .i32(1)
        .i64(22)
        .i64(-1)
        .str("")
        .send();
    assert_eq!(commit_response(resp, "ov-commit"), vec![0, 0]);
    assert_eq!(
        fetch_v(1, "ov-group-1", "ov-commit"),
        vec![(21, Some("m1".into()), 0), (22, Some(String::new()), 0)]
    );
    // v8+ sees the same commits
    let req = OffsetFetchRequest::default().with_groups(vec![
        offset_fetch_request::OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(StrBytes::from_static_str("ov-group-1")))
            .with_topics(None),
    ]);
    let resp: OffsetFetchResponse = call(ApiKey::OffsetFetch, 8, &req);
    let offsets: Vec<i64> = resp.groups[0].topics[0]
        .partitions
        .iter()
        .map(|p| p.committed_offset)
        .collect();
    assert_eq!(offsets, vec![21, 22]);
    // the v1 commit timestamp is kept (the base of the offset's retention)
    let stored = common::state()
        .group_coordinator
        .fetch_offsets("ov-group-1", Some(vec![("ov-commit".into(), vec![0, 1])]))
        .expect("fetch");
    let ts: Vec<i64> = stored[0]
        .1
        .iter()
        .map(|(_, o)| o.as_ref().expect("committed").commit_timestamp)
        .collect();
    assert_eq!(ts[0], 1_000);
    assert!(ts[1] > 1_000, "stamped with the broker's clock: {ts:?}");
}

#[test]
fn find_coordinator_v0_single_key() {
    let mut resp = Req::new(ApiKey::FindCoordinator, 0).str("ov-group").send();
    assert_eq!(resp.i16(), 0);
    assert_eq!(resp.i32(), 1, "node id");
    assert_eq!(resp.str(), "127.0.0.1");
    assert_eq!(resp.i32(), 9092);
    resp.done();
}
