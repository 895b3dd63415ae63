//! Memory any client can make the broker hold, over real sockets:
//! `queued.max.request.bytes` bounds the request bytes being read across
//! connections (partial requests beyond it wait unread instead of being
//! buffered), and a gzip bomb is refused with CORRUPT_MESSAGE while the
//! broker keeps serving. Assertions are on the pool's accounting and on
//! answers, never on timing.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use oxka_broker::server::BrokerState;
use oxka_broker::{Broker, KafkaConfig};
use oxka_log::builder::RecordBatchBuilder;

const MIB: usize = 1 << 20;

struct Running {
    addr: SocketAddr,
    state: Arc<BrokerState>,
    _rt: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

fn start(extra: &[(&str, &str)]) -> Running {
    let dir = tempfile::tempdir().unwrap();
    let mut props = BTreeMap::from([
        ("log.dirs".to_string(), dir.path().display().to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
    ]);
    props.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let (config, _) = KafkaConfig::from_props(props).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let broker = rt.block_on(Broker::start(config)).unwrap();
    let addr = broker.local_addrs()[0];
    let state = broker.state().clone();
    rt.spawn(broker.run_until(std::future::pending()));
    Running {
        addr,
        state,
        _rt: rt,
        _dir: dir,
    }
}

fn poll_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One request over a connection; the decoded response.
fn call<Req: Encodable, Resp: Decodable>(
    c: &mut TcpStream,
    key: ApiKey,
    version: i16,
    req: &Req,
) -> Resp {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(9)
        .with_client_id(Some(StrBytes::from_static_str("t")));
    let mut body = BytesMut::new();
    header
        .encode(&mut body, key.request_header_version(version))
        .unwrap();
    req.encode(&mut body, version).unwrap();
    c.write_all(&(body.len() as i32).to_be_bytes()).unwrap();
    c.write_all(&body).unwrap();
    let mut size = [0u8; 4];
    c.read_exact(&mut size).unwrap();
    let mut resp = vec![0u8; i32::from_be_bytes(size) as usize];
    c.read_exact(&mut resp).unwrap();
    let mut b = bytes::Bytes::from(resp);
    ResponseHeader::decode(&mut b, key.response_header_version(version)).unwrap();
    Resp::decode(&mut b, version).unwrap()
}

fn connect(addr: SocketAddr) -> TcpStream {
    let c = TcpStream::connect(addr).unwrap();
    c.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    c
}

#[test]
fn partial_requests_beyond_the_byte_budget_wait_unread() {
    let budget = 4 * MIB;
    let b = start(&[
        ("queued.max.request.bytes", &budget.to_string()),
        ("socket.request.max.bytes", &(2 * MIB).to_string()),
    ]);
    let pool = &b.state.request_memory;
    // 20 connections each declare a 2 MiB request and send 64 KiB of it:
    // 40 MiB declared, at most the budget plus one frame reserved
    let mut partial = Vec::new();
    for _ in 0..20 {
        let mut c = connect(b.addr);
        c.write_all(&(2 * MIB as i32).to_be_bytes()).unwrap();
        c.write_all(&vec![0u8; 64 * 1024]).unwrap();
        partial.push(c);
    }
    poll_until("the budget to be spent", || pool.in_use() >= budget);
    for _ in 0..50 {
        let used = pool.in_use();
        assert!(
            used <= budget + 2 * MIB,
            "{used} bytes reserved, budget {budget}"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    drop(partial);
    poll_until("the budget to come back", || pool.in_use() == 0);
    let mut c = connect(b.addr);
    let resp: ApiVersionsResponse = call(
        &mut c,
        ApiKey::ApiVersions,
        3,
        &ApiVersionsRequest::default(),
    );
    assert_eq!(resp.error_code, 0);
}

#[test]
fn a_gzip_bomb_is_refused_and_the_broker_keeps_serving() {
    let b = start(&[]);
    let mut c = connect(b.addr);
    let topic = TopicName(StrBytes::from_static_str("bombs"));
    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(topic.clone())
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let r: CreateTopicsResponse = call(&mut c, ApiKey::CreateTopics, 7, &create);
    assert_eq!(r.topics[0].error_code, 0);
    let produce = |records: Vec<u8>| {
        ProduceRequest::default()
            .with_acks(1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![produce_request::TopicProduceData::default()
                .with_name(topic.clone())
                .with_partition_data(vec![
                    produce_request::PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(records.into())),
                ])])
    };
    let now = oxka_broker::server::now_ms();
    // 300 MiB of zeros in about 300 KiB: over oxka's 256 MiB per batch
    let bomb = RecordBatchBuilder::gzip_zeros_batch(300 * MIB, now);
    let r: ProduceResponse = call(&mut c, ApiKey::Produce, 9, &produce(bomb));
    assert_eq!(
        r.responses[0].partition_responses[0].error_code,
        kafka_protocol::error::ResponseError::CorruptMessage.code()
    );
    let ok = oxka_log::builder::simple_batch(3, 10, now).to_vec();
    let r: ProduceResponse = call(&mut c, ApiKey::Produce, 9, &produce(ok));
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
}
