//! The HTTP listener (`http.listeners`): health checks, its limits, and
//! that it never gets in the way of the Kafka listener.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::TestBroker;

/// One HTTP/1.1 exchange on a fresh connection: (status, headers, body).
fn http(addr: &str, request: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connect to the HTTP listener");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request.as_bytes()).expect("send request");
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        dechunk(body)
    } else {
        body.to_string()
    };
    (status, head.to_string(), body)
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(n) = usize::from_str_radix(size.trim(), 16) else {
            break;
        };
        if n == 0 || rest.len() < n {
            break;
        }
        out.push_str(&rest[..n]);
        body = rest[n..].trim_start_matches("\r\n");
    }
    out
}

pub fn get(addr: &str, path: &str, accept: Option<&str>) -> (u16, String, String) {
    let accept = accept.map_or(String::new(), |a| format!("Accept: {a}\r\n"));
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\n{accept}Connection: close\r\n\r\n"),
    )
}

fn http_broker(extra: &[&str]) -> TestBroker {
    let mut args = vec!["http.listeners=http://127.0.0.1:0"];
    args.extend_from_slice(extra);
    TestBroker::start_with(&args)
}

#[test]
fn health_checks_answer_json() {
    let b = http_broker(&[]);
    let addr = b
        .http
        .clone()
        .expect("the start-up line names the HTTP listener");
    let (status, head, body) = get(&addr, "/health/live", None);
    assert_eq!(status, 200, "{head}\n{body}");
    let live: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(live["status"], "live");

    let (status, head, body) = get(&addr, "/health/ready", None);
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase().contains("application/json"),
        "{head}"
    );
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["status"], "ready", "{body}");
    for check in [
        "listeners",
        "logs_recovered",
        "metadata",
        "registration",
        "partitions",
    ] {
        assert_eq!(ready["checks"][check]["ok"], true, "{check}: {body}");
    }
    assert_eq!(get(&addr, "/no-such-page", None).0, 404);
}

#[test]
fn http_listener_off_and_default_port_taken() {
    // off: the start-up line says so
    let b = TestBroker::start_with(&["http.listeners="]);
    assert_eq!(b.http, None);
    // the default port taken by someone else: the broker still starts
    // (the test cannot rely on 9644 being free or taken, so it takes it)
    let holder = std::net::TcpListener::bind("127.0.0.1:9644");
    let b2 = TestBroker::start();
    if holder.is_ok() {
        assert_eq!(b2.http, None, "port 9644 was held by the test");
    }
}

#[test]
fn limits_bound_connections_and_bodies() {
    let b = http_broker(&["http.max.connections=4", "http.request.max.bytes=1024"]);
    let addr = b.http.clone().expect("HTTP listener");
    // a body over the limit is refused before it is read
    let (status, _, _) = http(
        &addr,
        &format!(
            "POST /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            1u64 << 40
        ),
    );
    assert_eq!(status, 413);
    // more idle connections than the limit: they wait in the backlog, and
    // once they go the listener serves again
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    // the Kafka listener is not affected meanwhile
    let kafka = TcpStream::connect(b.bootstrap()).expect("the Kafka listener accepts");
    drop(kafka);
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("consumer");
    use rdkafka::consumer::Consumer;
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata over the Kafka listener while HTTP is full");
    drop(idle);
    let (status, _, _) = get(&addr, "/health/live", None);
    assert_eq!(status, 200);
}
