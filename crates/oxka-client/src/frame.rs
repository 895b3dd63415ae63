//! Request frames that carry record batches by reference.
//!
//! The codec writes every field through `put_slice`, so a Produce request
//! of 1 MB would be copied into a fresh, repeatedly grown buffer before
//! the socket copies it once more. [`FrameBuf`] is handed the batches the
//! request refers to; when the codec puts exactly one of them it records
//! the shared `Bytes` instead of copying, and the frame leaves as the
//! codec's small in-memory pieces interleaved with the batches, in one
//! vectored write ([`write_frame`]).

use std::io::IoSlice;
use std::ops::Range;

use bytes::buf::UninitSlice;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::protocol::buf::ByteBufMut;
use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Slices shorter than this are copied: a pointer match is not worth an
/// extra iovec for them.
const SHARE_MIN: usize = 512;

/// At most this many iovecs per `writev`.
const MAX_IOVECS: usize = 64;

/// One request on its way to the socket: the pieces, in order.
#[derive(Debug, Default)]
pub(crate) struct Frame {
    pub parts: Vec<Bytes>,
}

#[cfg(test)]
impl Frame {
    pub fn to_vec(&self) -> Vec<u8> {
        self.parts.iter().flat_map(|p| p.iter().copied()).collect()
    }
}

/// An encoding target that keeps `shared` batches by reference.
pub(crate) struct FrameBuf<'a> {
    /// Best given in the order the codec writes them: each is then found
    /// at `next`, without a search.
    shared: &'a [Bytes],
    next: usize,
    /// The codec's own bytes, all of them, in order.
    mem: BytesMut,
    /// (position in `mem` where it goes, the batch).
    splices: Vec<(usize, Bytes)>,
    spliced_len: usize,
    /// The codec seeked back over a spliced batch; the caller must fall
    /// back to a plain buffer (no codec in use does this for Produce).
    broken: bool,
    scratch: Vec<u8>,
}

impl<'a> FrameBuf<'a> {
    pub fn new(shared: &'a [Bytes], capacity: usize) -> FrameBuf<'a> {
        FrameBuf {
            shared,
            next: 0,
            mem: BytesMut::with_capacity(capacity),
            splices: Vec::new(),
            spliced_len: 0,
            broken: false,
            scratch: Vec::new(),
        }
    }

    /// The frame with its 4-byte size prefix filled in (the codec's first
    /// four bytes must be a placeholder), or `None` if the encoding seeked
    /// back over a batch and must be redone without sharing.
    pub fn finish(mut self) -> Option<Frame> {
        if self.broken || self.mem.len() < 4 {
            return None;
        }
        let size = (self.mem.len() + self.spliced_len - 4) as i32;
        self.mem[0..4].copy_from_slice(&size.to_be_bytes());
        let mem = self.mem.freeze();
        let mut parts = Vec::with_capacity(self.splices.len() * 2 + 1);
        let mut from = 0;
        for (at, batch) in self.splices {
            if at > from {
                parts.push(mem.slice(from..at));
            }
            parts.push(batch);
            from = at;
        }
        if mem.len() > from {
            parts.push(mem.slice(from..));
        }
        Some(Frame { parts })
    }
}

// SAFETY: every method delegates to the `BytesMut` holding the codec's
// bytes, whose own implementation upholds `BufMut`'s contract; shared
// batches never pass through `chunk_mut`.
unsafe impl BufMut for FrameBuf<'_> {
    fn remaining_mut(&self) -> usize {
        self.mem.remaining_mut()
    }

    unsafe fn advance_mut(&mut self, cnt: usize) {
        // SAFETY: the caller initialised `cnt` bytes of `chunk_mut`, which
        // is `mem`'s chunk.
        unsafe { self.mem.advance_mut(cnt) }
    }

    fn chunk_mut(&mut self) -> &mut UninitSlice {
        self.mem.chunk_mut()
    }

    fn put_slice(&mut self, src: &[u8]) {
        if src.len() >= SHARE_MIN {
            let is = |b: &Bytes| b.as_ptr() == src.as_ptr() && b.len() == src.len();
            let found = match self.shared.get(self.next) {
                Some(b) if is(b) => Some(self.next),
                _ => self.shared.iter().position(is),
            };
            if let Some(i) = found {
                let b = self.shared[i].clone();
                self.next = i + 1;
                self.spliced_len += b.len();
                self.splices.push((self.mem.len(), b));
                return;
            }
        }
        self.mem.extend_from_slice(src);
    }
}

impl ByteBufMut for FrameBuf<'_> {
    fn offset(&self) -> usize {
        self.mem.len() + self.spliced_len
    }

    fn seek(&mut self, offset: usize) {
        match offset.checked_sub(self.spliced_len) {
            Some(at) if self.splices.last().is_none_or(|(s, _)| at >= *s) => self.mem.resize(at, 0),
            _ => self.broken = true,
        }
    }

    fn range(&mut self, r: Range<usize>) -> &mut [u8] {
        let start = r.start.checked_sub(self.spliced_len);
        let fixed = self.splices.last().map_or(0, |(s, _)| *s);
        match start {
            Some(s) if s >= fixed && r.end - self.spliced_len <= self.mem.len() => {
                &mut self.mem[s..r.end - self.spliced_len]
            }
            _ => {
                self.broken = true;
                self.scratch.clear();
                self.scratch.resize(r.len(), 0);
                &mut self.scratch
            }
        }
    }
}

/// Writes every part with as few `writev` calls as the socket allows.
pub(crate) async fn write_frame<W: AsyncWrite + Unpin>(
    w: &mut W,
    mut parts: Vec<Bytes>,
) -> std::io::Result<()> {
    let mut i = 0;
    while i < parts.len() {
        if parts[i].is_empty() {
            i += 1;
            continue;
        }
        let mut slices = [IoSlice::new(&[]); MAX_IOVECS];
        let mut k = 0;
        for p in parts[i..].iter().filter(|p| !p.is_empty()).take(MAX_IOVECS) {
            slices[k] = IoSlice::new(p);
            k += 1;
        }
        let mut n = w.write_vectored(&slices[..k]).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 && i < parts.len() {
            let l = parts[i].len();
            if n >= l {
                n -= l;
                i += 1;
            } else {
                parts[i].advance(n);
                n = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{ProduceRequest, TopicName};
    use kafka_protocol::protocol::{Encodable, StrBytes};
    use std::pin::Pin;
    use std::task::{Context, Poll};

    fn request(batches: &[Bytes]) -> ProduceRequest {
        let mut req = ProduceRequest::default();
        req.acks = -1;
        req.timeout_ms = 30_000;
        for (t, chunk) in batches.chunks(2).enumerate() {
            let mut td = TopicProduceData::default();
            td.name = TopicName(StrBytes::from_string(format!("topic-{t}")));
            for (i, b) in chunk.iter().enumerate() {
                let mut p = PartitionProduceData::default();
                p.index = i as i32;
                p.records = Some(b.clone());
                td.partition_data.push(p);
            }
            req.topic_data.push(td);
        }
        req
    }

    fn batches() -> Vec<Bytes> {
        [100usize, 70_000, 512, 3, 1 << 20]
            .iter()
            .enumerate()
            .map(|(i, n)| Bytes::from(vec![i as u8 + 1; *n]))
            .collect()
    }

    #[test]
    fn a_shared_frame_is_the_plain_encoding_without_copying_batches() {
        let batches = batches();
        let req = request(&batches);
        for version in 3..=kafka_protocol::messages::ApiKey::Produce
            .valid_versions()
            .max
        {
            let mut plain = BytesMut::new();
            plain.put_i32(0);
            req.encode(&mut plain, version).unwrap();
            let size = (plain.len() - 4) as i32;
            plain[0..4].copy_from_slice(&size.to_be_bytes());

            let mut buf = FrameBuf::new(&batches, 64);
            buf.put_i32(0);
            req.encode(&mut buf, version).unwrap();
            let frame = buf.finish().expect("no seek over a batch");
            assert_eq!(frame.to_vec(), plain.to_vec(), "v{version}");
            // the batches of SHARE_MIN bytes or more are the caller's bytes
            for b in batches.iter().filter(|b| b.len() >= SHARE_MIN) {
                assert!(
                    frame
                        .parts
                        .iter()
                        .any(|p| p.as_ptr() == b.as_ptr() && p.len() == b.len()),
                    "v{version}: a {}-byte batch was copied",
                    b.len()
                );
            }
        }
    }

    #[test]
    fn seeking_back_over_a_batch_asks_for_the_plain_encoding() {
        let batches = batches();
        let mut buf = FrameBuf::new(&batches, 16);
        buf.put_i32(0);
        buf.put_slice(&batches[1]);
        buf.put_i32(7);
        // back within the bytes after the batch: fine
        let at = buf.offset() - 4;
        buf.range(at..at + 4).copy_from_slice(&9i32.to_be_bytes());
        assert!(buf.finish().is_some());

        let mut buf = FrameBuf::new(&batches, 16);
        buf.put_i32(0);
        buf.put_slice(&batches[1]);
        buf.range(0..4).copy_from_slice(&[1, 2, 3, 4]);
        assert!(buf.finish().is_none());

        let mut buf = FrameBuf::new(&batches, 16);
        buf.put_i32(0);
        buf.put_slice(&batches[1]);
        buf.seek(2);
        assert!(buf.finish().is_none());
    }

    /// Accepts at most `.1` bytes per call, across slices as `writev`
    /// does, as a congested socket would.
    struct Trickle(Vec<u8>, usize);

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<std::io::Result<usize>> {
            let n = buf.len().min(self.1);
            self.0.extend_from_slice(&buf[..n]);
            Poll::Ready(Ok(n))
        }
        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<std::io::Result<usize>> {
            let mut left = self.1;
            for b in bufs {
                let n = b.len().min(left);
                self.0.extend_from_slice(&b[..n]);
                left -= n;
            }
            Poll::Ready(Ok(self.1 - left))
        }
        fn is_write_vectored(&self) -> bool {
            true
        }
        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn short_writes_send_every_byte_in_order() {
        let mut parts: Vec<Bytes> = (0..200u32)
            .map(|i| Bytes::from(vec![i as u8; (i as usize * 13) % 50]))
            .collect();
        parts.push(Bytes::new());
        let want: Vec<u8> = parts.iter().flat_map(|p| p.iter().copied()).collect();
        // within one part, across several, across the 64-iovec cap
        for limit in [7, 120, 2_000, 1 << 20] {
            let mut w = Trickle(Vec::new(), limit);
            write_frame(&mut w, parts.clone()).await.unwrap();
            assert_eq!(w.0, want, "{limit} bytes per write");
        }
    }
}
