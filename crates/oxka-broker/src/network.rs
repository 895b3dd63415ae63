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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, watch};

use crate::metrics::RequestTiming;
use crate::request::{self, Outcome};
use crate::server::BrokerState;

mod memory_pool;
mod quotas;
pub mod response;
mod send;

pub use memory_pool::{MemoryPool, Reservation};
pub use quotas::{ConnectionGuard, ConnectionQuotas, TooManyConnections};
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

/// Reads one size-prefixed frame; `Ok(None)` on a clean EOF between frames.
/// The frame's declared size is reserved from `pool` before its body is
/// read; the reservation comes back with the frame and must live until the
/// request has been handled.
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max: usize,
    pool: &Arc<MemoryPool>,
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
    if size < 8 {
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

pub struct ConnectionInfo {
    pub peer: SocketAddr,
    pub local: SocketAddr,
}

pub async fn serve_connection(
    state: Arc<BrokerState>,
    stream: TcpStream,
    mut shutdown: watch::Receiver<bool>,
) {
    let info = match (stream.peer_addr(), stream.local_addr()) {
        (Ok(peer), Ok(local)) => ConnectionInfo { peer, local },
        _ => return,
    };
    let _ = stream.set_nodelay(true);
    let (read_half, mut write_half) = stream.into_split();
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
    let max = state.config.socket_request_max_bytes;
    // RequestMetrics' stage times (metrics.instrumentation.enable)
    let timed = state.metrics.enabled;
    let idle = Duration::from_millis(state.idle_timeout_ms);
    loop {
        let frame = tokio::select! {
            biased;
            _ = shutdown.changed() => break,
            r = tokio::time::timeout(idle, read_frame(&mut reader, max, &state.request_memory)) => match r {
                Err(_) => {
                    tracing::debug!(peer = %info.peer, "closing idle connection");
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
        let received = timed.then(Instant::now);
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
        let (frame, reservation) = frame;
        // the frame reader guarantees the 8 header bytes
        let api_key = i16::from_be_bytes([frame[0], frame[1]]);
        state
            .metrics
            .requests
            .received(api_key, i16::from_be_bytes([frame[2], frame[3]]));
        let dequeued = timed.then(Instant::now);
        let slot = request::RequestSlot::new(permit);
        let outcome = request::handle_frame_in_slot(&state, &info, &slot, frame.freeze()).await;
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
        match outcome {
            Outcome::Respond(resp) => {
                if tx.send((resp, timing)).await.is_err() {
                    break;
                }
            }
            Outcome::NoResponse => {
                if let Some(t) = timing {
                    state.metrics.requests.completed(&t, None, None);
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
