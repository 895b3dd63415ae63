//! `queued.max.requests` bounds the requests in progress, not the parked
//! ones: with a single slot, a long-poll Fetch waiting for data and a
//! JoinGroup waiting out the initial rebalance delay must not hold back
//! another client's request. Raw frames, so that each request's moment
//! is ours to choose.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use common::TestBroker;

fn string(buf: &mut Vec<u8>, s: &str) {
    buf.extend((s.len() as i16).to_be_bytes());
    buf.extend(s.as_bytes());
}

/// A frame with request header v1.
fn request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::new();
    msg.extend(api_key.to_be_bytes());
    msg.extend(version.to_be_bytes());
    msg.extend(correlation_id.to_be_bytes());
    string(&mut msg, "request-slots-test");
    msg.extend(body);
    let mut frame = (msg.len() as i32).to_be_bytes().to_vec();
    frame.extend(msg);
    frame
}

fn join_group_v0(group: &str) -> Vec<u8> {
    let mut b = Vec::new();
    string(&mut b, group);
    b.extend(10_000i32.to_be_bytes()); // session timeout
    string(&mut b, ""); // member id
    string(&mut b, "consumer");
    b.extend(1i32.to_be_bytes());
    string(&mut b, "range");
    let metadata = [0u8; 10]; // version 0, no topics, no user data
    b.extend((metadata.len() as i32).to_be_bytes());
    b.extend(metadata);
    request(11, 0, 1, &b)
}

/// Finds the group's coordinator until it answers without error, as a
/// client does before JoinGroup (the first FindCoordinator creates
/// `__consumer_offsets`; until its partition is loaded the broker is not
/// the group's coordinator, as in Kafka).
fn find_coordinator(broker: &TestBroker, group: &str) {
    let mut b = Vec::new();
    string(&mut b, group);
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let mut s = connect(broker);
        s.write_all(&request(10, 0, 2, &b)).unwrap();
        let r = read_response(&mut s);
        // correlation id, then the error code
        if r[4..6] == 0i16.to_be_bytes() {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no coordinator for {group}: error {:?}",
            &r[4..6]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Fetch v4 of partition 0 from offset 0, waiting up to 8 s for 1 byte
/// (long enough that the check below runs while it is parked).
fn fetch_v4(topic: &str) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend((-1i32).to_be_bytes()); // replica id
    b.extend(8_000i32.to_be_bytes()); // max wait
    b.extend(1i32.to_be_bytes()); // min bytes
    b.extend((1i32 << 20).to_be_bytes()); // max bytes
    b.push(0); // read_uncommitted
    b.extend(1i32.to_be_bytes());
    string(&mut b, topic);
    b.extend(1i32.to_be_bytes());
    b.extend(0i32.to_be_bytes()); // partition
    b.extend(0i64.to_be_bytes()); // fetch offset
    b.extend((1i32 << 20).to_be_bytes()); // partition max bytes
    request(1, 4, 1, &b)
}

fn read_response(s: &mut TcpStream) -> Vec<u8> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).expect("response size");
    let mut body = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut body).expect("response body");
    body
}

/// Whether a response has arrived on `s`, without waiting for one.
fn has_response(s: &TcpStream) -> bool {
    s.set_nonblocking(true).unwrap();
    let mut b = [0u8; 1];
    let r = s.peek(&mut b);
    s.set_nonblocking(false).unwrap();
    matches!(r, Ok(n) if n > 0)
}

fn connect(b: &TestBroker) -> TcpStream {
    let s = TcpStream::connect(b.bootstrap()).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    s
}

/// Sends `parked` on one connection, then an ApiVersions on another: the
/// ApiVersions answer must come while `parked` is still waiting.
fn answered_while_parked(broker: &TestBroker, parked: &[u8]) -> Vec<u8> {
    let mut waiting = connect(broker);
    waiting.write_all(parked).unwrap();
    // ordering only: the parked request reaches the broker first
    std::thread::sleep(Duration::from_millis(300));
    let mut other = connect(broker);
    other.write_all(&request(18, 0, 7, &[])).unwrap();
    let answer = read_response(&mut other);
    assert_eq!(answer[..4], 7i32.to_be_bytes(), "ApiVersions answered");
    assert!(
        !has_response(&waiting),
        "the ApiVersions answer waited for the parked request to end"
    );
    read_response(&mut waiting)
}

#[test]
fn parked_requests_give_their_slot_back() {
    let broker = TestBroker::start_with(&[
        "queued.max.requests=1",
        "group.initial.rebalance.delay.ms=8000",
    ]);
    let created = Command::new(TestBroker::binary())
        .args(["topics", "create", "slots", "-b", &broker.bootstrap()])
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");

    let fetch = answered_while_parked(&broker, &fetch_v4("slots"));
    assert_eq!(fetch[..4], 1i32.to_be_bytes(), "the long poll still ends");

    find_coordinator(&broker, "slots-group");
    let join = answered_while_parked(&broker, &join_group_v0("slots-group"));
    // correlation id, then JoinGroup v0's error code: the join completes
    assert_eq!(join[..4], 1i32.to_be_bytes());
    assert_eq!(join[4..6], 0i16.to_be_bytes(), "JoinGroup error code");
}
