//! Writing one response frame to the socket: encoded bytes with `write`,
//! record batches still in segment files with `sendfile(2)`, so a fetch
//! moves them from the page cache to the socket without copying them into
//! user space (Kafka's `FileRecords.writeTo` / `transferTo`).
//!
//! The socket is non-blocking (tokio); `sendfile` is retried on readiness
//! and may send any part of what it was asked, so each region is sent in
//! as many calls as the socket buffer needs. Where `sendfile` is missing
//! (not Linux) or refuses the descriptors (`EINVAL`, `ENOSYS`,
//! `EOPNOTSUPP`), the region is copied with `pread` + `write` instead.
//!
//! Through TLS the bytes must be encrypted in user space, so a TLS
//! connection's writer ([`ResponseWriter::raw_socket`] is `None`) takes the
//! copying path: `pread` into a bounded buffer, then the TLS stream.
//!
//! Encoded bytes just before a region go with `MSG_MORE` (see
//! [`send_more`]). No `TCP_CORK` around the whole frame: it did cut the
//! segment count (`sendfile` hands TCP pipe-sized pieces, each of which
//! can end in a short segment), but measured with `bench/consume.sh` the
//! corked writer cost the broker as much or more CPU per GiB.

use std::io;

use oxka_log::FileRegion;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;

use super::response::{Response, ResponseChunk};

/// Bytes copied per step when a region cannot be sent with `sendfile`:
/// bounds the writer's buffer, whatever the region's size.
const COPY_CHUNK: usize = 256 * 1024;

/// Where a connection's responses go.
pub trait ResponseWriter: AsyncWrite + Unpin + Send + 'static {
    /// The TCP socket under the writer when bytes written to it reach the
    /// socket unchanged (no TLS): only then may `sendfile` and `MSG_MORE`
    /// write to the socket directly.
    fn raw_socket(&self) -> Option<&TcpStream>;
}

impl ResponseWriter for OwnedWriteHalf {
    fn raw_socket(&self) -> Option<&TcpStream> {
        Some(self.as_ref())
    }
}

/// A TLS stream's write half: every byte goes through the TLS session.
impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> ResponseWriter
    for tokio::io::WriteHalf<S>
{
    fn raw_socket(&self) -> Option<&TcpStream> {
        None
    }
}

/// Sends every chunk of `resp` in order. An error leaves the frame half
/// sent, so the caller must close the connection.
pub(super) async fn write_response<W: ResponseWriter>(
    out: &mut W,
    resp: &Response,
) -> io::Result<()> {
    let chunks = resp.chunks();
    for (i, chunk) in chunks.iter().enumerate() {
        match chunk {
            ResponseChunk::Bytes(b) => {
                if region_follows(chunks, i) {
                    send_more(out, b).await?;
                } else {
                    out.write_all(b).await?;
                }
            }
            ResponseChunk::File(region) => send_region(out, region).await?,
        }
    }
    // a TLS session may still hold the frame's last record
    out.flush().await
}

/// Whether chunk `i` is followed by a file region: only then do its bytes
/// go with `MSG_MORE`. The frame's last chunk never does, so the kernel
/// never holds a frame's tail back waiting for more.
fn region_follows(chunks: &[ResponseChunk], i: usize) -> bool {
    matches!(chunks.get(i + 1), Some(ResponseChunk::File(_)))
}

/// Writes encoded bytes that a file region follows with `MSG_MORE`, so
/// TCP holds them for the region's first segment instead of sending a
/// small segment of their own (and waking the reader for it). In profiles
/// of fetch loads on loopback that small `send` took 5-15% of the broker's
/// CPU, and under 0.5% with `MSG_MORE`; it matters more the more
/// partitions a response carries, one such piece before each.
#[cfg(target_os = "linux")]
async fn send_more<W: ResponseWriter>(out: &mut W, mut buf: &[u8]) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    if out.raw_socket().is_none() {
        return out.write_all(buf).await;
    }
    while !buf.is_empty() {
        let Some(sock) = out.raw_socket() else {
            return out.write_all(buf).await;
        };
        sock.writable().await?;
        let r = sock.try_io(Interest::WRITABLE, || {
            // SAFETY: the descriptor is the live socket's and `buf` is a
            // valid slice for the call's duration; send only reads it.
            let n = unsafe {
                libc::send(
                    sock.as_raw_fd(),
                    buf.as_ptr().cast(),
                    buf.len(),
                    libc::MSG_MORE | libc::MSG_NOSIGNAL,
                )
            };
            if n < 0 {
                Err(io::Error::last_os_error())
            } else {
                // 0 <= n <= buf.len()
                Ok(n as usize)
            }
        });
        match r {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => buf = &buf[n..],
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn send_more<W: ResponseWriter>(out: &mut W, buf: &[u8]) -> io::Result<()> {
    out.write_all(buf).await
}

/// The whole region with `sendfile`, falling back to copying from where
/// `sendfile` stopped if the kernel refuses it.
#[cfg(target_os = "linux")]
async fn send_region<W: ResponseWriter>(out: &mut W, region: &FileRegion) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    use tokio::io::Interest;

    let mut sent = 0usize;
    while sent < region.len() {
        let Some(sock) = out.raw_socket() else {
            return copy_region(out, region, sent).await;
        };
        sock.writable().await?;
        let r = sock.try_io(Interest::WRITABLE, || {
            sendfile_once(sock.as_raw_fd(), region, sent)
        });
        match r {
            Ok(0) => return Err(truncated(region, sent)),
            Ok(n) => sent += n,
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            Err(e) if sendfile_unsupported(&e) => {
                tracing::debug!(error = %e, "sendfile refused; copying the region instead");
                return copy_region(out, region, sent).await;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

#[cfg(not(target_os = "linux"))]
async fn send_region<W: ResponseWriter>(out: &mut W, region: &FileRegion) -> io::Result<()> {
    copy_region(out, region, 0).await
}

/// One `sendfile(2)` of the region's bytes from `from` on. Returns what
/// the kernel took; 0 means the file ends before the region does.
#[cfg(target_os = "linux")]
fn sendfile_once(sock: std::os::fd::RawFd, region: &FileRegion, from: usize) -> io::Result<usize> {
    use std::os::fd::AsRawFd;

    let invalid = || io::Error::new(io::ErrorKind::InvalidInput, "file region beyond off_t");
    let mut offset = u64::try_from(from)
        .ok()
        .and_then(|f| region.position().checked_add(f))
        .and_then(|p| libc::off_t::try_from(p).ok())
        .ok_or_else(invalid)?;
    let count = region.len() - from;
    // SAFETY: `sock` and the file descriptor are open for the whole call
    // (borrowed from the live socket and the region's `Arc<File>`), and
    // `offset` is a valid, exclusively borrowed `off_t`; sendfile reads
    // and writes nothing else in our address space.
    let n = unsafe { libc::sendfile(sock, region.file().as_raw_fd(), &mut offset, count) };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        // n <= count, a usize
        Ok(n as usize)
    }
}

/// Errors meaning "this pair of descriptors cannot use sendfile", as
/// opposed to a failing socket or disk.
#[cfg(target_os = "linux")]
fn sendfile_unsupported(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Copies the region's bytes from `from` on through a bounded buffer.
async fn copy_region<W: ResponseWriter>(
    out: &mut W,
    region: &FileRegion,
    from: usize,
) -> io::Result<()> {
    let mut buf = vec![0u8; COPY_CHUNK.min(region.len() - from)];
    let mut pos = from;
    while pos < region.len() {
        let n = (region.len() - pos).min(buf.len());
        region.read_at(pos, &mut buf[..n]).map_err(|e| {
            if e.kind() == io::ErrorKind::UnexpectedEof {
                truncated(region, pos)
            } else {
                e
            }
        })?;
        out.write_all(&buf[..n]).await?;
        pos += n;
    }
    Ok(())
}

/// The segment file was cut below the region after the read (a log
/// truncated under a fetch): the frame promised bytes that are gone, so
/// the only safe answer is to drop the connection, as Kafka does.
fn truncated(region: &FileRegion, sent: usize) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "segment file truncated during send: {sent} of {} bytes from position {}",
            region.len(),
            region.position()
        ),
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use bytes::Bytes;
    use oxka_log::builder::simple_batch;
    use oxka_log::{Log, LogConfig, TopicPartition};
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    use super::*;

    /// A log of `batches` batches of 64 x 16 KiB records (1 MiB each).
    fn log_of(dir: &std::path::Path, batches: usize) -> Log {
        let config = LogConfig {
            max_message_bytes: 2 << 20,
            ..LogConfig::default()
        };
        let mut log = Log::open(dir, TopicPartition::new("t", 0), config, 0, 0, 0)
            .unwrap_or_else(|e| panic!("open: {e}"));
        for _ in 0..batches {
            let mut b = simple_batch(64, 16 << 10, 1_000);
            log.append_as_leader(&mut b, 0, 1_000)
                .unwrap_or_else(|e| panic!("append: {e}"));
        }
        log
    }

    fn region(log: &Log, from: i64, max_bytes: usize) -> FileRegion {
        log.read_region(from, max_bytes, i64::MAX, true)
            .unwrap_or_else(|e| panic!("read: {e}"))
            .records
            .unwrap_or_else(|| panic!("nothing at {from}"))
    }

    /// A connected pair: our write half and the peer's stream.
    async fn pair() -> (OwnedWriteHalf, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("bind: {e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let (ours, theirs) = tokio::join!(TcpStream::connect(addr), listener.accept());
        let ours = ours.unwrap_or_else(|e| panic!("connect: {e}"));
        let (theirs, _) = theirs.unwrap_or_else(|e| panic!("accept: {e}"));
        let (_read, write) = ours.into_split();
        // the read half is dropped: only writing is under test
        (write, theirs)
    }

    /// Reads until EOF, slowly at first so that the socket buffers fill
    /// and `sendfile` has to stop part-way and wait for readiness.
    async fn read_all_slowly(mut s: TcpStream) -> Vec<u8> {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut out = Vec::new();
        let mut buf = vec![0u8; 4096];
        loop {
            let n = s
                .read(&mut buf)
                .await
                .unwrap_or_else(|e| panic!("read: {e}"));
            if n == 0 {
                return out;
            }
            out.extend_from_slice(&buf[..n]);
            if out.len() < 256 << 10 {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        }
    }

    #[tokio::test]
    async fn responses_arrive_whole_and_in_order() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = log_of(dir.path(), 8);
        let big = region(&log, 0, usize::MAX);
        assert!(big.len() > 8 << 20, "larger than any socket buffer");
        let small = region(&log, 64 * 3, 1);
        let first = Response::from_chunks([
            ResponseChunk::Bytes(Bytes::from_static(b"head")),
            ResponseChunk::File(big.clone()),
            ResponseChunk::Bytes(Bytes::from_static(b"mid")),
            ResponseChunk::File(small.clone()),
            ResponseChunk::Bytes(Bytes::from_static(b"tail")),
        ]);
        let second = Response::from(Bytes::from_static(b"second"));
        let third = Response::from_chunks([ResponseChunk::File(small)]);
        let mut expected = Vec::new();
        for r in [&first, &second, &third] {
            expected.extend_from_slice(&r.to_bytes().unwrap_or_else(|e| panic!("{e}")));
        }
        let (mut out, peer) = pair().await;
        let reader = tokio::spawn(read_all_slowly(peer));
        for r in [&first, &second, &third] {
            write_response(&mut out, r)
                .await
                .unwrap_or_else(|e| panic!("send: {e}"));
        }
        drop(out);
        let got = reader.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(got.len(), expected.len());
        assert!(got == expected, "bytes differ");
    }

    /// The zero-copy path itself works here (the other tests would pass
    /// through the copying fallback too).
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn sendfile_takes_the_region() {
        use std::os::fd::AsRawFd;
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = log_of(dir.path(), 1);
        let r = region(&log, 0, usize::MAX);
        let (out, mut peer) = pair().await;
        let sock: &TcpStream = out.as_ref();
        sock.writable().await.unwrap_or_else(|e| panic!("{e}"));
        let n =
            sendfile_once(sock.as_raw_fd(), &r, 100).unwrap_or_else(|e| panic!("sendfile: {e}"));
        assert!(n > 0);
        let mut got = vec![0u8; n];
        peer.read_exact(&mut got)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut want = vec![0u8; n];
        r.read_at(100, &mut want).unwrap_or_else(|e| panic!("{e}"));
        assert!(got == want);
    }

    /// A frame's last bytes leave as soon as it is written (a writer that
    /// corks or batches must flush at the end of each frame).
    #[tokio::test]
    async fn a_finished_frame_is_not_held_back() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = log_of(dir.path(), 1);
        let resp = Response::from_chunks([
            ResponseChunk::Bytes(Bytes::from_static(b"head")),
            ResponseChunk::File(region(&log, 0, 1)),
            ResponseChunk::Bytes(Bytes::from_static(b"t")),
        ]);
        let expected = resp.to_bytes().unwrap_or_else(|e| panic!("{e}"));
        let (mut out, mut peer) = pair().await;
        for _ in 0..3 {
            write_response(&mut out, &resp)
                .await
                .unwrap_or_else(|e| panic!("send: {e}"));
            let mut got = vec![0u8; expected.len()];
            // arrival, not speed: the no-hold-back rule is region_follows
            tokio::time::timeout(Duration::from_secs(10), peer.read_exact(&mut got))
                .await
                .unwrap_or_else(|_| panic!("the frame's tail never arrived"))
                .unwrap_or_else(|e| panic!("read: {e}"));
            assert!(got == expected);
        }
        let chunks = resp.chunks();
        let more: Vec<bool> = (0..chunks.len())
            .map(|i| region_follows(chunks, i))
            .collect();
        assert_eq!(more, [true, false, false], "MSG_MORE only before a region");
    }

    #[tokio::test]
    async fn the_copying_fallback_sends_the_same_bytes() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let log = log_of(dir.path(), 3);
        let r = region(&log, 0, usize::MAX);
        let expected = r.to_bytes().unwrap_or_else(|e| panic!("{e}"));
        let (mut out, peer) = pair().await;
        let reader = tokio::spawn(read_all_slowly(peer));
        // from the middle, as when sendfile is refused part-way
        let from = 12_345;
        copy_region(&mut out, &r, from)
            .await
            .unwrap_or_else(|e| panic!("copy: {e}"));
        drop(out);
        let got = reader.await.unwrap_or_else(|e| panic!("{e}"));
        assert!(got[..] == expected[from..], "bytes differ");
    }

    #[tokio::test]
    async fn a_region_truncated_before_it_is_sent_fails_the_send() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut log = log_of(dir.path(), 3);
        let r = region(&log, 0, usize::MAX);
        log.truncate_to(64)
            .unwrap_or_else(|e| panic!("truncate: {e}"));
        for copy in [false, true] {
            let (mut out, peer) = pair().await;
            let reader = tokio::spawn(read_all_slowly(peer));
            let sent = if copy {
                copy_region(&mut out, &r, 0).await
            } else {
                send_region(&mut out, &r).await
            };
            let err = sent
                .err()
                .unwrap_or_else(|| panic!("copy={copy}: sent a short region"));
            assert_eq!(
                err.kind(),
                io::ErrorKind::UnexpectedEof,
                "copy={copy}: {err}"
            );
            drop(out);
            let got = reader.await.unwrap_or_else(|e| panic!("{e}"));
            assert!(got.len() < r.len());
        }
    }
}
