//! Connections: size-prefixed frames in, responses out in request order.
//!
//! Like Kafka's network processor, a connection handles one request at a
//! time (clients still pipeline: further requests wait in the socket and in
//! our read buffer), which keeps responses in order and keeps the appends of
//! one producer connection in the order it sent them. A separate writer task
//! sends responses so that reading and handling the next request overlaps
//! with writing the last response. Memory per connection is bounded: a frame
//! is only buffered as its bytes arrive, up to `socket.request.max.bytes`,
//! and at most `RESPONSE_QUEUE` responses wait for the writer. Across
//! connections, `queued.max.request.bytes` bounds the requests being read
//! and handled (`network/memory_pool`).
//!
//! A response is a [`Response`]: encoded bytes plus, for Fetch, regions of
//! segment files that the writer sends with `sendfile` (`network/send.rs`),
//! so record bytes are never copied into user space on the way out. Queued
//! responses hold such regions, not the bytes, so the queue bounds open
//! files rather than memory.
//!
//! Security (`network/listener`): on SSL and SASL_SSL listeners the stream
//! is a TLS session (`network/tls`, whose writer copies file regions
//! instead of `sendfile`), on SASL listeners an [`sasl::Authenticator`]
//! sees every frame first and lets only ApiVersions and the SASL requests
//! through until the client has authenticated. The handshake and the
//! authentication must be over within [`tls::HANDSHAKE_TIMEOUT`]. The
//! principal the connection authenticated as is on its [`ConnectionInfo`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::config::security::SecurityProtocol;
use crate::metrics::RequestTiming;
use crate::request::{self, Outcome};
use crate::server::BrokerState;

pub mod listener;
mod memory_pool;
pub mod principal;
mod quotas;
pub mod response;
pub mod sasl;
mod send;
pub mod tls;

pub use listener::ListenerSecurity;
pub use principal::KafkaPrincipal;
pub use send::ResponseWriter;

pub use memory_pool::{MemoryPool, Reservation};
pub use quotas::{Activity, ConnectionGuard, ConnectionQuotas, TooManyConnections};
pub use response::{Response, ResponseChunk};

/// Responses waiting for the socket; beyond this the handler waits.
const RESPONSE_QUEUE: usize = 8;
/// Grow a frame's buffer by at most this much before its bytes arrive, so a
/// size prefix alone cannot make us allocate `socket.request.max.bytes`.
const READ_CHUNK: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("frame size {0} is negative")]
    Negative(i32),
    #[error("frame size {size} exceeds socket.request.max.bytes {max}")]
    TooLarge { size: usize, max: usize },
    #[error("frame size {0} is too small for a request header")]
    TooSmall(usize),
    #[error("connection closed mid-frame")]
    Truncated,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// Reads one size-prefixed request frame; `Ok(None)` on a clean EOF
/// between frames. The frame's declared size is reserved from `pool`
/// before its body is read; the reservation comes back with the frame and
/// must live until the request has been handled.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    pool: &Arc<MemoryPool>,
) -> Result<Option<(BytesMut, Reservation)>, FrameError> {
    read_sized(reader, max, pool, 8).await
}

/// [`read_frame`] with the smallest size accepted: 8 (a request header's
/// fixed part) for requests, 0 for raw SASL tokens.
async fn read_sized<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    pool: &Arc<MemoryPool>,
    min: usize,
) -> Result<Option<(BytesMut, Reservation)>, FrameError> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = reader.read(&mut len[got..]).await?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(FrameError::Truncated)
            };
        }
        got += n;
    }
    let size = i32::from_be_bytes(len);
    if size < 0 {
        return Err(FrameError::Negative(size));
    }
    let size = size as usize;
    if size > max {
        return Err(FrameError::TooLarge { size, max });
    }
    // api key, api version and correlation id at the least
    if size < min {
        return Err(FrameError::TooSmall(size));
    }
    let reservation = pool.reserve(size).await;
    let mut buf = BytesMut::with_capacity(size.min(READ_CHUNK));
    while buf.len() < size {
        let want = (size - buf.len()).min(READ_CHUNK);
        buf.reserve(want);
        let n = (&mut *reader).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            return Err(FrameError::Truncated);
        }
    }
    Ok(Some((buf, reservation)))
}

/// Who is at the other end of a connection and how it came in.
pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
    /// The listener's name ("" where no listener is involved, in tests).
    pub listener: String,
    pub security_protocol: SecurityProtocol,
    /// Whom the connection authenticated as (`User:ANONYMOUS` on
    /// PLAINTEXT): what the authorizer decides on.
    pub principal: KafkaPrincipal,
    /// Stamped at every request read: the connection quotas close the
    /// least recently active connection first (`None` outside listeners).
    pub activity: Option<Activity>,
}

impl ConnectionInfo {
    /// An anonymous PLAINTEXT connection.
    pub fn new(peer: SocketAddr, local: SocketAddr) -> ConnectionInfo {
        ConnectionInfo {
            peer,
            local,
            listener: String::new(),
            security_protocol: SecurityProtocol::Plaintext,
            principal: KafkaPrincipal::anonymous(),
            activity: None,
        }
    }
}

/// Serves one accepted connection of `listener`: the TLS handshake when
/// the listener has TLS, then [`serve_stream`].
pub async fn serve_connection(
    state: Arc<BrokerState>,
    stream: TcpStream,
    listener: Arc<ListenerSecurity>,
    activity: Activity,
    mut shutdown: watch::Receiver<bool>,
) {
    let mut info = match (stream.peer_addr(), stream.local_addr()) {
        (Ok(peer), Ok(local)) => ConnectionInfo::new(peer, local),
        _ => return,
    };
    info.listener = listener.name.clone();
    info.security_protocol = listener.protocol;
    info.activity = Some(activity);
    let _ = stream.set_nodelay(true);
    let deadline = Instant::now() + tls::HANDSHAKE_TIMEOUT;
    let Some(tls) = &listener.tls else {
        let (read_half, write_half) = stream.into_split();
        serve_stream(
            state, info, &listener, read_half, write_half, deadline, shutdown,
        )
        .await;
        return;
    };
    let handshake = tokio::select! {
        biased;
        _ = shutdown.changed() => return,
        r = tokio::time::timeout_at(deadline.into(), tls.accept(stream)) => r,
    };
    let stream = match handshake {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            tracing::debug!(peer = %info.peer, error = %e, "closing connection: TLS handshake failed");
            return;
        }
        Err(_) => {
            tracing::debug!(peer = %info.peer, "closing connection: TLS handshake timed out");
            return;
        }
    };
    if listener.sasl.is_none() {
        match tls.principal(stream.get_ref().1) {
            Ok(p) => info.principal = p,
            Err(e) => {
                tracing::info!(peer = %info.peer, "closing connection: {e}");
                return;
            }
        }
    }
    let (read_half, write_half) = tokio::io::split(stream);
    serve_stream(
        state, info, &listener, read_half, write_half, deadline, shutdown,
    )
    .await;
}

/// The request loop over any byte stream (plain TCP or TLS): frames in,
/// through the SASL authenticator first on SASL listeners, responses out
/// through a writer task. Until authenticated, reads are bounded by
/// `auth_deadline` as well as the idle timeout.
async fn serve_stream<R, W>(
    state: Arc<BrokerState>,
    mut info: ConnectionInfo,
    listener: &ListenerSecurity,
    read_half: R,
    mut write_half: W,
    auth_deadline: Instant,
    mut shutdown: watch::Receiver<bool>,
) where
    R: AsyncRead + Unpin + Send,
    W: ResponseWriter,
{
    let mut reader = BufReader::with_capacity(READ_CHUNK, read_half);
    let (tx, mut rx) = mpsc::channel::<(Response, Option<RequestTiming>)>(RESPONSE_QUEUE);
    let peer = info.peer;
    let metrics = state.metrics.clone();
    let writer = tokio::spawn(async move {
        while let Some((resp, timing)) = rx.recv().await {
            let picked = timing.map(|_| Instant::now());
            if let Err(e) = send::write_response(&mut write_half, &resp).await {
                tracing::debug!(%peer, error = %e, "closing connection: response not sent");
                break;
            }
            if let Some(t) = timing {
                metrics.requests.completed(&t, picked, Some(Instant::now()));
            }
        }
        let _ = write_half.shutdown().await;
    });
    let mut auth = listener.sasl.as_ref().map(|config| {
        let controller = state.controller.clone();
        let lookup: sasl::scram::CredentialLookup = Arc::new(move |user, mechanism| {
            controller
                .image()
                .scram_credentials
                .get(user)
                .and_then(|m| m.get(&mechanism.type_code()))
                .cloned()
        });
        sasl::Authenticator::new(config.clone(), lookup)
    });
    let max = state.config.socket_request_max_bytes;
    // RequestMetrics' stage times (metrics.instrumentation.enable)
    let timed = state.metrics.enabled;
    let idle = Duration::from_millis(state.idle_timeout_ms);
    loop {
        let authenticating = auth.as_ref().is_some_and(|a| !a.is_authenticated());
        let read_until = if authenticating {
            auth_deadline.min(Instant::now() + idle)
        } else {
            Instant::now() + idle
        };
        let min = if auth.as_ref().is_some_and(|a| a.expects_raw_token()) {
            0
        } else {
            8
        };
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            r = tokio::time::timeout_at(read_until.into(), read_sized(&mut reader, max, &state.request_memory, min)) => match r {
                Err(_) => {
                    let what = if authenticating { "authentication timed out" } else { "idle" };
                    tracing::debug!(peer = %info.peer, "closing connection: {what}");
                    break;
                }
                Ok(Ok(Some(f))) => f,
                Ok(Ok(None)) => break,
                Ok(Err(e)) => {
                    tracing::debug!(peer = %info.peer, error = %e, "closing connection");
                    break;
                }
            },
        };
        let (frame, reservation) = frame;
        let frame = frame.freeze();
        if let Some(a) = &info.activity {
            a.touch();
        }
        let received = timed.then(Instant::now);
        if let Some(a) = auth.as_mut() {
            match a.intercept(&frame, crate::server::now_ms()) {
                sasl::Intercept::Pass => {}
                sasl::Intercept::Respond(resp) => {
                    if tx.send((resp, None)).await.is_err() {
                        break;
                    }
                    continue;
                }
                sasl::Intercept::Authenticated {
                    response,
                    principal,
                } => {
                    tracing::debug!(peer = %info.peer, %principal, "authenticated");
                    info.principal = principal;
                    if tx.send((response, None)).await.is_err() {
                        break;
                    }
                    continue;
                }
                sasl::Intercept::Fail {
                    response,
                    delay,
                    reason,
                } => {
                    tracing::info!(peer = %info.peer, listener = %info.listener, "failed authentication: {reason}");
                    // Kafka's delay against brute force; this connection
                    // reads nothing more meanwhile
                    tokio::time::sleep(delay).await;
                    if let Some(r) = response {
                        let _ = tx.send((r, None)).await;
                    }
                    break;
                }
                sasl::Intercept::Close(reason) => {
                    tracing::info!(peer = %info.peer, listener = %info.listener, "closing connection: {reason}");
                    break;
                }
            }
        }
        let permit = match state.request_slots.clone().try_acquire_owned() {
            Ok(p) => p,
            Err(_) => {
                state.metrics.network.queued(1);
                let p = state.request_slots.clone().acquire_owned().await;
                state.metrics.network.queued(-1);
                let Ok(p) = p else { break };
                p
            }
        };
        // the frame reader guarantees the 8 header bytes
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        state
            .metrics
            .requests
            .received(api_key, i16::from_be_bytes([frame[2], frame[3]]));
        let dequeued = timed.then(Instant::now);
        let slot = request::RequestSlot::new(permit);
        let outcome = request::handle_frame_in_slot(&state, &info, &slot, frame).await;
        // the request's bytes are no longer held
        drop(reservation);
        let timing = match (received, dequeued) {
            (Some(received), Some(dequeued)) => {
                let (parked, follower_fetch) = slot.marks();
                Some(RequestTiming {
                    api_key,
                    received,
                    dequeued,
                    parked,
                    follower_fetch,
                    handled: Instant::now(),
                })
            }
            _ => None,
        };
        // KIP-219: a throttled client's connection is muted (nothing read)
        // for the throttle time; an old client's response waits it out too
        let (throttle_ms, hold_response) = slot.throttled();
        let mute = Duration::from_millis(throttle_ms);
        match outcome {
            Outcome::Respond(resp) => {
                if hold_response && !muted(mute, &mut shutdown).await {
                    break;
                }
                if tx.send((resp, timing)).await.is_err() {
                    break;
                }
                if !hold_response && !muted(mute, &mut shutdown).await {
                    break;
                }
            }
            Outcome::NoResponse => {
                if let Some(t) = timing {
                    state.metrics.requests.completed(&t, None, None);
                }
                if !muted(mute, &mut shutdown).await {
                    break;
                }
            }
            Outcome::Close(reason) => {
                tracing::debug!(peer = %info.peer, %reason, "closing connection");
                break;
            }
        }
    }
    drop(tx);
    let _ = writer.await;
}

/// Waits out a throttle (no wait for zero); false when the broker stops
/// meanwhile.
async fn muted(d: Duration, shutdown: &mut watch::Receiver<bool>) -> bool {
    if d.is_zero() {
        return true;
    }
    tokio::select! {
        biased;
        _ = shutdown.changed() => false,
        _ = tokio::time::sleep(d) => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame(bytes: &[u8], max: usize) -> Result<Option<BytesMut>, FrameError> {
        let mut r = bytes;
        let pool = MemoryPool::new(usize::MAX);
        Ok(read_frame(&mut r, max, &pool).await?.map(|(f, _)| f))
    }

    #[tokio::test]
    async fn frame_bounds() {
        assert!(frame(&[], 100).await.unwrap().is_none());
        assert!(matches!(
            frame(&[0, 0], 100).await,
            Err(FrameError::Truncated)
        ));
        assert!(matches!(
            frame(&[0xff, 0xff, 0xff, 0xff], 100).await,
            Err(FrameError::Negative(-1))
        ));
        assert!(matches!(
            frame(&[0x7f, 0xff, 0xff, 0xff], 100).await,
            Err(FrameError::TooLarge { .. })
        ));
        assert!(matches!(
            frame(&[0, 0, 0, 2, 1, 2], 100).await,
            Err(FrameError::TooSmall(2))
        ));
        assert!(matches!(
            frame(&[0, 0, 0, 10, 1, 2, 3], 100).await,
            Err(FrameError::Truncated)
        ));
        let mut ok = vec![0, 0, 0, 8];
        ok.extend_from_slice(&[1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&frame(&ok, 100).await.unwrap().unwrap()[..], &ok[4..]);
    }
}
