//! A broker state without sockets: frames go straight to dispatch.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestHeader, ResponseHeader};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use oxka_broker::network::ConnectionInfo;
use oxka_broker::request::{handle_frame, Outcome};
use oxka_broker::server::BrokerState;
use oxka_broker::{Broker, KafkaConfig};

pub struct Harness {
    rt: tokio::runtime::Runtime,
    state: Arc<BrokerState>,
    conn: ConnectionInfo,
    _dir: tempfile::TempDir,
}

pub fn harness() -> &'static Harness {
    static H: OnceLock<Harness> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let props = BTreeMap::from([
            ("log.dirs".to_string(), dir.path().display().to_string()),
            (
                "listeners".to_string(),
                "PLAINTEXT://127.0.0.1:0".to_string(),
            ),
        ]);
        let (config, _) = KafkaConfig::from_props(props).unwrap();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let broker = rt.block_on(Broker::start(config)).unwrap();
        let state = broker.state().clone();
        // the broker's listener is not served: frames go straight to dispatch
        std::mem::forget(broker);
        Harness {
            rt,
            state,
            conn: ConnectionInfo::new(
                "127.0.0.1:1".parse().unwrap(),
                "127.0.0.1:9092".parse().unwrap(),
            ),
            _dir: dir,
        }
    })
}

pub fn run(frame: Vec<u8>) -> Outcome {
    let h = harness();
    h.rt.block_on(handle_frame(&h.state, &h.conn, Bytes::from(frame)))
}

/// Like [`run`], but a request still parked after `limit` (a long-polling
/// Fetch whose mutated max_wait_ms asks for a minute) counts as answered:
/// fuzzing looks for panics and hangs of the process, not for slow polls.
pub fn run_bounded(frame: Vec<u8>, limit: std::time::Duration) -> Option<Outcome> {
    let h = harness();
    h.rt.block_on(async {
        tokio::time::timeout(limit, handle_frame(&h.state, &h.conn, Bytes::from(frame)))
            .await
            .ok()
    })
}

/// One request frame (header and body) without the size prefix.
pub fn frame<Req: Encodable>(key: ApiKey, version: i16, req: &Req) -> Vec<u8> {
    let header = RequestHeader::default()
        .with_request_api_key(key as i16)
        .with_request_api_version(version)
        .with_correlation_id(42)
        .with_client_id(Some(StrBytes::from_static_str("test")));
    let mut frame = BytesMut::new();
    header
        .encode(&mut frame, key.request_header_version(version))
        .expect("header encodes");
    req.encode(&mut frame, version).expect("request encodes");
    frame.to_vec()
}

/// Sends one request and decodes the response.
pub fn call<Req: Encodable, Resp: Decodable>(key: ApiKey, version: i16, req: &Req) -> Resp {
    match run(frame(key, version, req)) {
        Outcome::Respond(resp) => {
            // a Fetch frame's records are read from their files here
            let bytes = resp.to_bytes().expect("file-backed records readable");
            let mut b = bytes.slice(4..);
            let h = ResponseHeader::decode(&mut b, key.response_header_version(version))
                .expect("header");
            assert_eq!(h.correlation_id, 42);
            Resp::decode(&mut b, version).expect("response decodes")
        }
        Outcome::NoResponse => panic!("{key:?} v{version}: no response"),
        Outcome::Close(r) => panic!("{key:?} v{version}: closed: {r}"),
    }
}

/// The broker's state, for tests that drive a coordinator directly.
pub fn state() -> &'static Arc<BrokerState> {
    &harness().state
}
