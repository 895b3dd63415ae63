//! One TCP connection to one broker: framing, correlation ids, pipelined
//! requests, ApiVersions negotiation; TLS and SASL authentication when the
//! connection's [`ClientSecurity`] asks for them (`security`).
//!
//! A writer task owns the write half and a reader task the read half; a
//! caller hands a frame to the writer through a bounded queue and waits on
//! a oneshot that the reader completes when the response with the same
//! correlation id arrives. Kafka answers in request order on a connection,
//! so requests pipeline without head-of-line waiting on the client side.
//! When either half fails every waiting request fails with
//! `Error::Disconnected` and the connection is marked dead; the pool then
//! opens a new one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, RequestHeader, ResponseHeader,
    SaslAuthenticateRequest, SaslHandshakeRequest,
};
use kafka_protocol::protocol::{Decodable, Encodable, Request, StrBytes};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot, RwLock, RwLockReadGuard, Semaphore};

use crate::error::{Error, Result};
use crate::frame::{write_frame, Frame, FrameBuf};
use crate::security::{ClientSecurity, SaslCredentials, SaslMechanism};

/// Requests waiting for a response on one connection. Bounds memory held
/// for a broker that stops answering.
const MAX_PENDING: usize = 1024;

/// The highest version of each API this client implements the semantics of
/// (topic names rather than topic ids, the classic group protocol).
pub(crate) fn client_max_version(key: ApiKey) -> i16 {
    let cap = match key {
        ApiKey::Produce => 9,
        ApiKey::Fetch => 12,
        ApiKey::ListOffsets => 7,
        ApiKey::Metadata => 12,
        // v9 only renames generation to member epoch (KIP-848 groups need it).
        ApiKey::OffsetCommit => 9,
        ApiKey::OffsetFetch => 8,
        ApiKey::FindCoordinator => 4,
        ApiKey::JoinGroup => 9,
        ApiKey::SyncGroup => 5,
        ApiKey::Heartbeat => 4,
        ApiKey::LeaveGroup => 5,
        ApiKey::ListGroups => 5,
        ApiKey::DescribeGroups => 5,
        ApiKey::DeleteGroups => 2,
        ApiKey::CreateTopics => 7,
        ApiKey::DeleteTopics => 5,
        ApiKey::CreatePartitions => 3,
        ApiKey::DescribeConfigs => 4,
        ApiKey::IncrementalAlterConfigs => 1,
        // v2: include_fenced_brokers and is_fenced (KIP-1073).
        ApiKey::DescribeCluster => 2,
        // v1: fetch and caught-up times (KIP-836); v2: directory ids and
        // the voters' endpoints (KIP-853).
        ApiKey::DescribeQuorum => 2,
        ApiKey::ElectLeaders => 2,
        ApiKey::AlterPartitionReassignments => 1,
        ApiKey::ListPartitionReassignments => 0,
        ApiKey::DeleteRecords => 2,
        ApiKey::InitProducerId => 4,
        // The classic transaction protocol (partitions added before they
        // are produced to): v4 of AddPartitionsToTxn is broker-to-broker,
        // EndTxn v5 / AddOffsetsToTxn v4 / TxnOffsetCommit v4+ belong to
        // KIP-890 (transaction version 2, TRANSACTION_ABORTABLE).
        ApiKey::AddPartitionsToTxn => 3,
        ApiKey::AddOffsetsToTxn => 3,
        ApiKey::EndTxn => 3,
        ApiKey::TxnOffsetCommit => 3,
        ApiKey::ConsumerGroupHeartbeat => 0,
        ApiKey::ApiVersions => 3,
        ApiKey::SaslHandshake => 1,
        ApiKey::SaslAuthenticate => 1,
        // v1: pattern types (KIP-290); v2 flexible; v3 the USER resource.
        ApiKey::DescribeAcls | ApiKey::CreateAcls | ApiKey::DeleteAcls => 3,
        _ => 0,
    };
    cap.min(key.valid_versions().max)
}

struct Outgoing {
    frame: Frame,
    correlation_id: i32,
    reply: Option<oneshot::Sender<Result<Bytes>>>,
}

/// Waiters by correlation id. A std mutex: held only for an insert or a
/// remove, never across an await.
type Pending = Arc<std::sync::Mutex<HashMap<i32, oneshot::Sender<Result<Bytes>>>>>;

/// A live connection to one broker.
pub struct Connection {
    pub addr: String,
    client_id: StrBytes,
    tx: mpsc::Sender<Outgoing>,
    pending_slots: Arc<Semaphore>,
    next_correlation: AtomicI32,
    dead: Arc<AtomicBool>,
    /// Broker-advertised (min, max) per api key.
    versions: HashMap<i16, (i16, i16)>,
    request_timeout: Duration,
    /// SASL connections: the credentials and when to authenticate again.
    reauth: Option<Reauthentication>,
}

/// KIP-368 on the client's side: when the broker gives the session a
/// lifetime (SaslAuthenticate v1's `session_lifetime_ms`), the connection
/// authenticates again before it ends, at a random point between 85% and
/// 95% of it (Kafka's client rule, against clock drift and latency), on
/// the first send after that point. Requests queued before are answered
/// first (the broker serves a connection in order); later ones wait
/// behind `gate` until the exchange is over.
struct Reauthentication {
    credentials: SaslCredentials,
    /// Unix ms from which the next send re-authenticates; 0: never.
    due_ms: AtomicI64,
    gate: RwLock<()>,
}

/// When to re-authenticate a session of `lifetime_ms` begun at `now_ms`
/// (0: the session does not expire).
fn reauthentication_due(now_ms: i64, lifetime_ms: i64) -> i64 {
    if lifetime_ms <= 0 {
        return 0;
    }
    let share = 0.85 + 0.10 * rand::random::<f64>();
    now_ms + (lifetime_ms as f64 * share) as i64
}

impl Connection {
    /// Connects in plaintext, starts the I/O tasks and negotiates API
    /// versions.
    pub async fn connect(
        addr: &str,
        client_id: &str,
        connect_timeout: Duration,
        request_timeout: Duration,
        max_response_size: usize,
    ) -> Result<Connection> {
        Connection::connect_secure(
            addr,
            client_id,
            &ClientSecurity::plaintext(),
            connect_timeout,
            request_timeout,
            max_response_size,
        )
        .await
    }

    /// [`Connection::connect`] with TLS and/or SASL as `security` says:
    /// the TLS handshake within `connect_timeout`, then ApiVersions, then
    /// SaslHandshake and SaslAuthenticate.
    pub async fn connect_secure(
        addr: &str,
        client_id: &str,
        security: &ClientSecurity,
        connect_timeout: Duration,
        request_timeout: Duration,
        max_response_size: usize,
    ) -> Result<Connection> {
        let connect_error = |reason: String| Error::Connect {
            addr: addr.to_string(),
            reason,
        };
        let stream = tokio::time::timeout(connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| connect_error(format!("no answer within {connect_timeout:?}")))?
            .map_err(|e| connect_error(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        let (tx, rx) = mpsc::channel::<Outgoing>(64);
        let pending: Pending = Arc::default();
        let dead = Arc::new(AtomicBool::new(false));
        match &security.tls {
            None => {
                let (rd, wr) = stream.into_split();
                spawn_io(rd, wr, rx, &pending, &dead, addr, max_response_size);
            }
            Some(tls) => {
                let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
                let host = host.trim_start_matches('[').trim_end_matches(']');
                let name = rustls_pki_types::ServerName::try_from(host.to_string())
                    .map_err(|e| connect_error(format!("not a TLS server name: {e}")))?;
                let handshake = tokio_rustls::TlsConnector::from(tls.clone()).connect(name, stream);
                let tls_stream = tokio::time::timeout(connect_timeout, handshake)
                    .await
                    .map_err(|_| {
                        connect_error(format!("TLS handshake not done within {connect_timeout:?}"))
                    })?
                    .map_err(|e| Error::Authentication {
                        addr: addr.to_string(),
                        reason: format!("TLS handshake failed: {e}"),
                    })?;
                let (rd, wr) = tokio::io::split(tls_stream);
                spawn_io(rd, wr, rx, &pending, &dead, addr, max_response_size);
            }
        }

        let mut conn = Connection {
            addr: addr.to_string(),
            client_id: StrBytes::from_string(client_id.to_string()),
            tx,
            pending_slots: Arc::new(Semaphore::new(MAX_PENDING)),
            next_correlation: AtomicI32::new(1),
            dead,
            versions: HashMap::new(),
            request_timeout,
            reauth: None,
        };
        let mut req = ApiVersionsRequest::default();
        req.client_software_name = StrBytes::from_static_str("oxka-client");
        req.client_software_version = StrBytes::from_static_str(env!("CARGO_PKG_VERSION"));
        let resp: ApiVersionsResponse = conn.send_ungated(req, 3, request_timeout).await?;
        crate::error::check(resp.error_code, None, || format!("ApiVersions from {addr}"))?;
        conn.versions = resp
            .api_keys
            .iter()
            .map(|k| (k.api_key, (k.min_version, k.max_version)))
            .collect();
        if let Some(sasl) = &security.sasl {
            let lifetime_ms = conn.authenticate(sasl).await?;
            conn.reauth = Some(Reauthentication {
                credentials: sasl.clone(),
                due_ms: AtomicI64::new(reauthentication_due(crate::now_ms(), lifetime_ms)),
                gate: RwLock::new(()),
            });
        }
        Ok(conn)
    }

    /// Lets a request onto the wire: on a SASL connection whose session
    /// is due for re-authentication, authenticates again first (KIP-368);
    /// the guard keeps a re-authentication from starting until the
    /// request is queued.
    async fn admit(&self) -> Result<Option<RwLockReadGuard<'_, ()>>> {
        let Some(r) = &self.reauth else {
            return Ok(None);
        };
        let due = |r: &Reauthentication| {
            let at = r.due_ms.load(Ordering::Acquire);
            at > 0 && crate::now_ms() >= at
        };
        if due(r) {
            let _exclusive = r.gate.write().await;
            if due(r) {
                match self.authenticate(&r.credentials).await {
                    Ok(lifetime_ms) => r.due_ms.store(
                        reauthentication_due(crate::now_ms(), lifetime_ms),
                        Ordering::Release,
                    ),
                    Err(e) => {
                        // Kafka's client closes a connection whose
                        // re-authentication failed
                        self.dead.store(true, Ordering::SeqCst);
                        return Err(e);
                    }
                }
            }
        }
        Ok(Some(r.gate.read().await))
    }

    /// SaslHandshake v1 then SaslAuthenticate until the mechanism is done;
    /// returns the session's lifetime the broker gave (0: none).
    async fn authenticate(&self, sasl: &SaslCredentials) -> Result<i64> {
        let failed = |reason: String| Error::Authentication {
            addr: self.addr.clone(),
            reason,
        };
        let mechanism = sasl.mechanism.name();
        let hs = self
            .send_ungated(
                SaslHandshakeRequest::default()
                    .with_mechanism(StrBytes::from_static_str(mechanism)),
                1,
                self.request_timeout,
            )
            .await?;
        if hs.error_code != 0 {
            let enabled: Vec<&str> = hs.mechanisms.iter().map(|m| m.as_str()).collect();
            return Err(failed(format!(
                "the broker does not accept {mechanism} (enabled: {})",
                enabled.join(", ")
            )));
        }
        let lifetime_ms = AtomicI64::new(0);
        let exchange = |token: Vec<u8>| async {
            let r = self
                .send_ungated(
                    SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token)),
                    1,
                    self.request_timeout,
                )
                .await?;
            if r.error_code != 0 {
                return Err(failed(
                    r.error_message
                        .map(|m| m.to_string())
                        .unwrap_or_else(|| format!("error code {}", r.error_code)),
                ));
            }
            lifetime_ms.store(r.session_lifetime_ms, Ordering::Relaxed);
            Ok(r.auth_bytes)
        };
        match sasl.mechanism {
            SaslMechanism::Plain => {
                let token = format!("\0{}\0{}", sasl.username, sasl.password);
                exchange(token.into_bytes()).await?;
            }
            SaslMechanism::OAuthBearer => {
                let login = sasl
                    .oauthbearer
                    .as_ref()
                    .ok_or_else(|| failed("OAUTHBEARER without a token".into()))?;
                let challenge =
                    exchange(login.client_response(crate::now_ms().max(0) as u64)).await?;
                if !challenge.is_empty() {
                    // RFC 7628: the server's error (JSON); the client
                    // answers \x01 and the broker fails the exchange
                    let status = String::from_utf8_lossy(&challenge).into_owned();
                    exchange(vec![1]).await?;
                    return Err(failed(format!("the broker refused the token: {status}")));
                }
            }
            SaslMechanism::Scram(m) => {
                let mut client =
                    crate::sasl::scram::ScramClient::new(m, &sasl.username, &sasl.password);
                let server_first = exchange(client.client_first()).await?;
                let fin = client
                    .client_final(&server_first)
                    .map_err(|e| failed(e.to_string()))?;
                let server_final = exchange(fin).await?;
                client
                    .verify_server_final(&server_final)
                    .map_err(|e| failed(e.to_string()))?;
            }
        }
        Ok(lifetime_ms.load(Ordering::Relaxed))
    }

    /// False once either I/O task has stopped.
    pub fn is_alive(&self) -> bool {
        !self.dead.load(Ordering::SeqCst)
    }

    /// Whether the broker advertises `key` at all.
    pub fn supports(&self, key: ApiKey) -> bool {
        self.versions.contains_key(&(key as i16))
    }

    /// The highest version both sides speak.
    pub fn version_for(&self, key: ApiKey) -> Result<i16> {
        let ours = key.valid_versions();
        let our_max = client_max_version(key);
        let unsupported = || Error::UnsupportedApi {
            api: format!("{key:?}"),
            addr: self.addr.clone(),
            min: ours.min,
            max: our_max,
        };
        let (bmin, bmax) = *self.versions.get(&(key as i16)).ok_or_else(unsupported)?;
        let v = bmax.min(our_max);
        if v < bmin.max(ours.min) {
            return Err(unsupported());
        }
        Ok(v)
    }

    /// Sends `req` at the negotiated version and waits for its response.
    pub async fn send<R: Request>(&self, req: R) -> Result<R::Response> {
        let key = api_key_of::<R>()?;
        let v = self.version_for(key)?;
        self.send_at(req, v).await
    }

    /// Sends `req`, whose encoding contains the `shared` batches, without
    /// copying them (see `frame`), and waits for its response. `turn` is
    /// dropped as soon as the request is queued for the writer, so a caller
    /// holding a lock in turn order puts its requests on the wire in that
    /// order.
    pub async fn send_sharing_queued<R: Request, T>(
        &self,
        req: R,
        shared: &[Bytes],
        turn: T,
    ) -> Result<R::Response> {
        let key = api_key_of::<R>()?;
        let v = self.version_for(key)?;
        let admitted = self.admit().await?;
        let (frame, cid) = self.encode(&req, key, v, shared)?;
        self.exchange(key, v, frame, cid, self.request_timeout, (turn, admitted))
            .await
    }

    /// Sends a request for which the broker sends no response (acks=0
    /// produce); `shared` as for [`Connection::send_sharing_queued`].
    pub async fn send_no_response<R: Request>(&self, req: R, shared: &[Bytes]) -> Result<()> {
        let key = api_key_of::<R>()?;
        let v = self.version_for(key)?;
        let _admitted = self.admit().await?;
        let (frame, cid) = self.encode(&req, key, v, shared)?;
        self.tx
            .send(Outgoing {
                frame,
                correlation_id: cid,
                reply: None,
            })
            .await
            .map_err(|_| self.disconnected("connection closed"))
    }

    fn disconnected(&self, reason: &str) -> Error {
        Error::Disconnected {
            addr: self.addr.clone(),
            reason: reason.to_string(),
        }
    }

    fn encode<R: Request>(
        &self,
        req: &R,
        key: ApiKey,
        version: i16,
        shared: &[Bytes],
    ) -> Result<(Frame, i32)> {
        let cid = self.next_correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let mut header = RequestHeader::default();
        header.request_api_key = R::KEY;
        header.request_api_version = version;
        header.correlation_id = cid;
        header.client_id = Some(self.client_id.clone());
        let hv = key.request_header_version(version);
        let encode = |shared: &[Bytes]| -> Result<Option<Frame>> {
            let mut buf = FrameBuf::new(shared, 256);
            buf.put_i32(0);
            header
                .encode(&mut buf, hv)
                .map_err(|e| Error::Protocol(format!("encoding {key:?} header: {e}")))?;
            req.encode(&mut buf, version)
                .map_err(|e| Error::Protocol(format!("encoding {key:?} v{version}: {e}")))?;
            Ok(buf.finish())
        };
        // `None`: the codec went back over a shared batch; without shared
        // batches nothing is spliced and the plain encoding always finishes
        let frame = match encode(shared)? {
            Some(f) => f,
            None => encode(&[])?.ok_or_else(|| {
                Error::Protocol(format!("encoding {key:?} v{version}: frame too short"))
            })?,
        };
        Ok((frame, cid))
    }

    /// Sends at an explicit version.
    pub async fn send_at<R: Request>(&self, req: R, version: i16) -> Result<R::Response> {
        self.send_at_with_timeout(req, version, self.request_timeout)
            .await
    }

    /// Sends with a longer time budget than `request.timeout.ms`: a
    /// JoinGroup may legitimately wait for the whole rebalance timeout.
    pub async fn send_with_timeout<R: Request>(
        &self,
        req: R,
        timeout: Duration,
    ) -> Result<R::Response> {
        let key = api_key_of::<R>()?;
        let v = self.version_for(key)?;
        self.send_at_with_timeout(req, v, timeout.max(self.request_timeout))
            .await
    }

    async fn send_at_with_timeout<R: Request>(
        &self,
        req: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let admitted = self.admit().await?;
        let key = api_key_of::<R>()?;
        let (frame, cid) = self.encode(&req, key, version, &[])?;
        self.exchange(key, version, frame, cid, timeout, admitted)
            .await
    }

    /// A request outside the re-authentication gate: the connection's own
    /// ApiVersions and SASL exchange.
    async fn send_ungated<R: Request>(
        &self,
        req: R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response> {
        let key = api_key_of::<R>()?;
        let (frame, cid) = self.encode(&req, key, version, &[])?;
        self.exchange(key, version, frame, cid, timeout, ()).await
    }

    /// Queues an encoded request and decodes its response; `turn` is
    /// dropped once the request is queued.
    async fn exchange<Resp: Decodable, T>(
        &self,
        key: ApiKey,
        version: i16,
        frame: Frame,
        cid: i32,
        timeout: Duration,
        turn: T,
    ) -> Result<Resp> {
        if !self.is_alive() {
            return Err(self.disconnected("connection closed"));
        }
        tracing::trace!(api = ?key, version, cid, addr = %self.addr, "request");
        let _slot = self
            .pending_slots
            .acquire()
            .await
            .map_err(|_| self.disconnected("connection closed"))?;
        let (reply_tx, reply_rx) = oneshot::channel();
        self.tx
            .send(Outgoing {
                frame,
                correlation_id: cid,
                reply: Some(reply_tx),
            })
            .await
            .map_err(|_| self.disconnected("connection closed"))?;
        drop(turn);
        let mut body = match tokio::time::timeout(timeout, reply_rx).await {
            Err(_) => {
                // A late answer would now carry an unknown id: drop the
                // connection so no later request reads a stale response.
                self.dead.store(true, Ordering::SeqCst);
                return Err(Error::Timeout(format!(
                    "{key:?} to {} got no response within {:?}",
                    self.addr, timeout
                )));
            }
            Ok(Err(_)) => return Err(self.disconnected("connection closed")),
            Ok(Ok(r)) => r?,
        };
        tracing::trace!(api = ?key, cid, "response");
        let hv = key.response_header_version(version);
        ResponseHeader::decode(&mut body, hv).map_err(|e| {
            Error::Protocol(format!("{key:?} response header from {}: {e}", self.addr))
        })?;
        let resp = Resp::decode(&mut body, version).map_err(|e| {
            Error::Protocol(format!(
                "{key:?} v{version} response from {}: {e}",
                self.addr
            ))
        })?;
        if body.has_remaining() {
            tracing::debug!(api = ?key, left = body.remaining(), "trailing bytes in response");
        }
        Ok(resp)
    }
}

fn api_key_of<R: Request>() -> Result<ApiKey> {
    ApiKey::try_from(R::KEY).map_err(|_| Error::Protocol(format!("unknown api key {}", R::KEY)))
}

/// The writer and reader tasks over any byte stream's halves (plain TCP or
/// TLS): the writer registers a waiter before its frame leaves, so the
/// reader can never see a response it does not know about.
fn spawn_io<R, W>(
    mut rd: R,
    mut wr: W,
    mut rx: mpsc::Receiver<Outgoing>,
    pending: &Pending,
    dead: &Arc<AtomicBool>,
    addr: &str,
    max_response_size: usize,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    {
        let pending = pending.clone();
        let dead = dead.clone();
        let addr = addr.to_string();
        tokio::spawn(async move {
            while let Some(out) = rx.recv().await {
                if let Some(reply) = out.reply {
                    if let Ok(mut p) = pending.lock() {
                        p.insert(out.correlation_id, reply);
                    }
                }
                // flush: a TLS session holds the last record otherwise
                let written = match write_frame(&mut wr, out.frame.parts).await {
                    Ok(()) => wr.flush().await,
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    fail_all(&pending, &dead, &addr, &e.to_string());
                    break;
                }
            }
            dead.store(true, Ordering::SeqCst);
        });
    }
    let pending = pending.clone();
    let dead = dead.clone();
    let addr = addr.to_string();
    tokio::spawn(async move {
        let reason = loop {
            let size = match rd.read_i32().await {
                Ok(s) => s,
                Err(e) => break e.to_string(),
            };
            if size < 4 || size as usize > max_response_size {
                break format!("response size {size} out of bounds");
            }
            let mut buf = vec![0u8; size as usize];
            if let Err(e) = rd.read_exact(&mut buf).await {
                break e.to_string();
            }
            let buf = Bytes::from(buf);
            let cid = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
            let waiter = pending.lock().ok().and_then(|mut p| p.remove(&cid));
            match waiter {
                Some(w) => {
                    let _ = w.send(Ok(buf));
                }
                None => break format!("response with unknown correlation id {cid}"),
            }
        };
        fail_all(&pending, &dead, &addr, &reason);
    });
}

fn fail_all(pending: &Pending, dead: &AtomicBool, addr: &str, reason: &str) {
    dead.store(true, Ordering::SeqCst);
    if let Ok(mut p) = pending.lock() {
        for (_, w) in p.drain() {
            let _ = w.send(Err(Error::Disconnected {
                addr: addr.to_string(),
                reason: reason.to_string(),
            }));
        }
    }
}
