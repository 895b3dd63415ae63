//! A response frame as the pieces the connection writer sends in order:
//! bytes the codec encoded, and regions of segment files that go from the
//! page cache to the socket without passing through user space.

use bytes::{Bytes, BytesMut};
use oxka_log::FileRegion;

/// One piece of a response frame.
#[derive(Clone, Debug)]
pub enum ResponseChunk {
    /// Encoded bytes (the size prefix, headers, everything but records).
    Bytes(Bytes),
    /// Record batches still in a segment file.
    File(FileRegion),
}

impl ResponseChunk {
    /// Bytes this piece puts on the wire.
    pub fn len(&self) -> usize {
        match self {
            ResponseChunk::Bytes(b) => b.len(),
            ResponseChunk::File(r) => r.len(),
        }
    }

    /// Whether the piece adds nothing to the frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A whole response frame, its 4-byte size prefix included: the
/// concatenation of its chunks. Whoever builds one makes the prefix count
/// every chunk's bytes, files included.
#[derive(Clone, Debug, Default)]
pub struct Response {
    chunks: Vec<ResponseChunk>,
}

impl Response {
    /// A frame from its pieces, in wire order; empty pieces are dropped so
    /// the writer never issues a zero-length write or `sendfile`.
    pub fn from_chunks(chunks: impl IntoIterator<Item = ResponseChunk>) -> Response {
        Response {
            chunks: chunks.into_iter().filter(|c| !c.is_empty()).collect(),
        }
    }

    /// The pieces, in wire order.
    pub fn chunks(&self) -> &[ResponseChunk] {
        &self.chunks
    }

    /// Bytes of the whole frame, size prefix included.
    pub fn len(&self) -> usize {
        self.chunks.iter().map(ResponseChunk::len).sum()
    }

    /// Whether the frame is empty (never for a frame built by the encoders).
    pub fn is_empty(&self) -> bool {
        self.chunks.is_empty()
    }

    /// The frame in one buffer, file regions read into memory: for tests
    /// and for callers that need the bytes rather than a socket to send
    /// them to. A file truncated since the read is an `UnexpectedEof`.
    pub fn to_bytes(&self) -> std::io::Result<Bytes> {
        if let [ResponseChunk::Bytes(b)] = self.chunks.as_slice() {
            return Ok(b.clone());
        }
        let mut out = BytesMut::with_capacity(self.len());
        for chunk in &self.chunks {
            match chunk {
                ResponseChunk::Bytes(b) => out.extend_from_slice(b),
                ResponseChunk::File(r) => {
                    let start = out.len();
                    out.resize(start + r.len(), 0);
                    r.read_at(0, &mut out[start..])?;
                }
            }
        }
        Ok(out.freeze())
    }
}

impl From<Bytes> for Response {
    fn from(b: Bytes) -> Response {
        Response::from_chunks([ResponseChunk::Bytes(b)])
    }
}
