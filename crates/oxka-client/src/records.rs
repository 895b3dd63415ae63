//! Kafka's v2 record batch: encoding (producer) and decoding (consumer),
//! with the four codecs.
//!
//! Written here rather than taken from `kafka_protocol::records` because
//! that decoder keeps headers in a map (Kafka allows repeated header keys,
//! and they must round-trip) and its compression features would pull the
//! C lz4 library into the broker build through feature unification. The
//! codecs frame data exactly as the Java client does so every broker and
//! client reads what we write.

use std::io::{Read, Write};

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::error::{Error, Result};

/// Compression codec of a batch (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Compression {
    /// Parses Kafka's names: none, gzip, snappy, lz4, zstd.
    pub fn parse(s: &str) -> Option<Compression> {
        Some(match s.to_ascii_lowercase().as_str() {
            "none" | "uncompressed" => Compression::None,
            "gzip" => Compression::Gzip,
            "snappy" => Compression::Snappy,
            "lz4" => Compression::Lz4,
            "zstd" => Compression::Zstd,
            _ => return None,
        })
    }

    fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    fn from_id(id: i16) -> Result<Compression> {
        Ok(match id {
            0 => Compression::None,
            1 => Compression::Gzip,
            2 => Compression::Snappy,
            3 => Compression::Lz4,
            4 => Compression::Zstd,
            _ => return Err(Error::Records(format!("unknown compression codec {id}"))),
        })
    }
}

/// A record header. Keys may repeat, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub key: String,
    pub value: Option<Bytes>,
}

impl Header {
    /// A header with a value.
    pub fn new(key: impl Into<String>, value: impl Into<Bytes>) -> Header {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// Size of the fixed v2 batch header.
pub(crate) const BATCH_HEADER_SIZE: usize = 61;
const RECORDS_COUNT_OFFSET: usize = 57;
const ATTRIBUTES_OFFSET: usize = 21;
/// Upper bound on what one batch may decompress to: a corrupt or hostile
/// batch cannot make the consumer allocate without limit.
const MAX_DECOMPRESSED: usize = 256 << 20;

fn put_varint(buf: &mut BytesMut, v: i32) {
    put_varlong(buf, v as i64)
}

fn put_varlong(buf: &mut BytesMut, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        buf.put_u8((z as u8) | 0x80);
        z >>= 7;
    }
    buf.put_u8(z as u8);
}

fn varint_len(v: i64) -> usize {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    let mut n = 1;
    while z >= 0x80 {
        z >>= 7;
        n += 1;
    }
    n
}

fn get_varlong(buf: &mut &[u8]) -> Result<i64> {
    let mut z: u64 = 0;
    for shift in (0..70).step_by(7) {
        if !buf.has_remaining() {
            return Err(Error::Records("truncated varint".into()));
        }
        let b = buf.get_u8();
        if shift == 63 && b > 1 {
            return Err(Error::Records("varint too long".into()));
        }
        z |= ((b & 0x7f) as u64) << shift;
        if b & 0x80 == 0 {
            return Ok(((z >> 1) as i64) ^ -((z & 1) as i64));
        }
    }
    Err(Error::Records("varint too long".into()))
}

fn get_varint(buf: &mut &[u8]) -> Result<i32> {
    let v = get_varlong(buf)?;
    i32::try_from(v).map_err(|_| Error::Records("varint out of range".into()))
}

/// Encoded size of one record (what `batch.size` counts).
pub(crate) fn record_size(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
    ts_delta: i64,
    offset_delta: i32,
) -> usize {
    let body = record_body_size(key, value, headers, ts_delta, offset_delta);
    body + varint_len(body as i64)
}

/// Size of a record after its length prefix.
fn record_body_size(
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
    ts_delta: i64,
    offset_delta: i32,
) -> usize {
    1 + varint_len(ts_delta)
        + varint_len(offset_delta as i64)
        + len_prefixed(key)
        + len_prefixed(value)
        + varint_len(headers.len() as i64)
        + headers
            .iter()
            .map(|h| len_prefixed(Some(h.key.as_bytes())) + len_prefixed(h.value.as_deref()))
            .sum::<usize>()
}

fn len_prefixed(b: Option<&[u8]>) -> usize {
    match b {
        None => 1,
        Some(b) => varint_len(b.len() as i64) + b.len(),
    }
}

fn put_bytes(buf: &mut BytesMut, b: Option<&[u8]>) {
    match b {
        None => put_varint(buf, -1),
        Some(b) => {
            put_varint(buf, b.len() as i32);
            buf.put_slice(b);
        }
    }
}

/// Accumulates records for one batch (uncompressed, framed) and seals it.
///
/// The buffer starts with room for the batch header, so sealing an
/// uncompressed batch fills the header in place and hands the buffer over:
/// each record is written once, straight into the bytes that are sent.
#[derive(Debug)]
pub struct BatchBuilder {
    buf: BytesMut,
    records_len: usize,
    count: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    sealed: bool,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        BatchBuilder::new()
    }
}

impl BatchBuilder {
    pub fn new() -> BatchBuilder {
        BatchBuilder::with_capacity(0)
    }

    /// A builder whose buffer holds `capacity` bytes before it grows.
    pub fn with_capacity(capacity: usize) -> BatchBuilder {
        BatchBuilder::with_buffer(BytesMut::with_capacity(capacity.max(BATCH_HEADER_SIZE)))
    }

    /// A builder writing into `buf` (cleared), e.g. a pooled buffer.
    pub fn with_buffer(mut buf: BytesMut) -> BatchBuilder {
        buf.clear();
        buf.resize(BATCH_HEADER_SIZE, 0);
        BatchBuilder {
            buf,
            records_len: 0,
            count: 0,
            base_timestamp: 0,
            max_timestamp: -1,
            sealed: false,
        }
    }

    /// The buffer the records were written to, if the sealed batch did not
    /// take it (a compressed batch is a new buffer).
    pub fn take_buffer(&mut self) -> Option<BytesMut> {
        Some(std::mem::take(&mut self.buf)).filter(|b| b.capacity() > 0)
    }

    /// Where the buffer starts (tests of buffer reuse).
    #[cfg(test)]
    pub(crate) fn buffer_ptr(&self) -> *const u8 {
        self.buf.as_ptr()
    }

    /// Records appended so far.
    pub fn count(&self) -> i32 {
        self.count
    }

    /// Size of the batch if sealed uncompressed now.
    pub fn size(&self) -> usize {
        BATCH_HEADER_SIZE + self.records_len
    }

    /// Size the record would add.
    pub fn size_of(
        &self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: i64,
    ) -> usize {
        let base = if self.count == 0 {
            timestamp
        } else {
            self.base_timestamp
        };
        record_size(key, value, headers, timestamp - base, self.count)
    }

    /// Appends one record; returns its offset delta.
    pub fn push(
        &mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        timestamp: i64,
    ) -> i32 {
        debug_assert!(!self.sealed, "push after build");
        if self.count == 0 {
            self.base_timestamp = timestamp;
        }
        self.max_timestamp = self.max_timestamp.max(timestamp);
        let delta = self.count;
        let ts_delta = timestamp - self.base_timestamp;
        let body = record_body_size(key, value, headers, ts_delta, delta);
        let before = self.buf.len();
        let buf = &mut self.buf;
        // exactly what `size_of` promised, so a batch filled to its
        // capacity never reallocates
        buf.reserve(body + varint_len(body as i64));
        put_varint(buf, body as i32);
        buf.put_i8(0);
        put_varlong(buf, ts_delta);
        put_varint(buf, delta);
        put_bytes(buf, key);
        put_bytes(buf, value);
        put_varint(buf, headers.len() as i32);
        for h in headers {
            put_bytes(buf, Some(h.key.as_bytes()));
            put_bytes(buf, h.value.as_deref());
        }
        self.records_len += self.buf.len() - before;
        debug_assert_eq!(self.buf.len() - before, body + varint_len(body as i64));
        self.count += 1;
        delta
    }

    /// Seals the batch with the producer's identity and codec. Call once:
    /// the records move into the result (`count` and `size` still answer).
    pub fn build(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        compression: Compression,
    ) -> Result<Bytes> {
        self.build_with(
            producer_id,
            producer_epoch,
            base_sequence,
            compression,
            false,
        )
    }

    /// As [`BatchBuilder::build`]; `transactional` sets the header's
    /// transactional bit (a transactional producer's batches).
    pub fn build_with(
        &mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
        compression: Compression,
        transactional: bool,
    ) -> Result<Bytes> {
        debug_assert!(!self.sealed, "a batch is sealed once");
        self.sealed = true;
        let mut buf = match compression {
            Compression::None => std::mem::take(&mut self.buf),
            c => {
                let payload = compress(c, &self.buf[BATCH_HEADER_SIZE..])
                    .map_err(|e| Error::Records(format!("{c:?} compression failed: {e}")))?;
                let mut buf = BytesMut::with_capacity(BATCH_HEADER_SIZE + payload.len());
                buf.resize(BATCH_HEADER_SIZE, 0);
                buf.extend_from_slice(&payload);
                buf
            }
        };
        let payload_len = buf.len() - BATCH_HEADER_SIZE;
        let mut header = &mut buf[..BATCH_HEADER_SIZE];
        header.put_i64(0); // base offset: the broker assigns it
        header.put_i32((BATCH_HEADER_SIZE - 12 + payload_len) as i32);
        header.put_i32(-1); // partition leader epoch
        header.put_i8(2); // magic
        header.put_u32(0); // crc, patched below
        header.put_i16(compression.id() | if transactional { 0x10 } else { 0 });
        header.put_i32(self.count.saturating_sub(1));
        header.put_i64(self.base_timestamp);
        header.put_i64(self.max_timestamp);
        header.put_i64(producer_id);
        header.put_i16(producer_epoch);
        header.put_i32(base_sequence);
        header.put_i32(self.count);
        patch_crc(&mut buf);
        Ok(buf.freeze())
    }
}

/// Where a v2 batch header holds the base sequence.
const BASE_SEQUENCE_OFFSET: usize = 53;

/// A sealed batch with another base sequence (and its CRC recomputed):
/// what an idempotent producer re-sends after an earlier batch of the
/// partition failed for good and left a gap in the sequence (Java's
/// producer renumbers the same way). Copies only if the bytes are shared.
///
/// `sealed` is a batch this client built (never bytes from the network),
/// so it always has a whole header.
pub fn with_base_sequence(sealed: Bytes, base_sequence: i32) -> Bytes {
    patch_header(sealed, |buf| {
        buf[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4]
            .copy_from_slice(&base_sequence.to_be_bytes());
    })
}

fn patch_header(sealed: Bytes, patch: impl FnOnce(&mut [u8])) -> Bytes {
    assert!(
        sealed.len() >= BATCH_HEADER_SIZE,
        "a sealed batch of {} bytes has no header",
        sealed.len()
    );
    let mut buf = sealed
        .try_into_mut()
        .unwrap_or_else(|shared| BytesMut::from(&shared[..]));
    patch(&mut buf);
    patch_crc(&mut buf);
    buf.freeze()
}

/// Where a v2 batch header holds its CRC (of everything from the attributes on).
const CRC_OFFSET: usize = 17;

fn patch_crc(buf: &mut [u8]) {
    let crc = crc32c::crc32c(&buf[ATTRIBUTES_OFFSET..]);
    buf[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

/// Block size of snappy-java's `SnappyOutputStream` (what Kafka writes).
const XERIAL_BLOCK: usize = 32 * 1024;
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];

fn compress(c: Compression, data: &[u8]) -> std::io::Result<Vec<u8>> {
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => {
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(data)?;
            enc.finish()
        }
        Compression::Snappy => {
            // snappy-java's xerial stream, as the Java client writes it.
            let mut out = Vec::with_capacity(data.len() / 2 + 32);
            out.extend_from_slice(&XERIAL_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK)];
            for chunk in data.chunks(XERIAL_BLOCK) {
                let n = enc
                    .compress(chunk, &mut block)
                    .map_err(std::io::Error::other)?;
                out.extend_from_slice(&(n as i32).to_be_bytes());
                out.extend_from_slice(&block[..n]);
            }
            Ok(out)
        }
        Compression::Lz4 => {
            let mut info = lz4_flex::frame::FrameInfo::new();
            info.block_size = lz4_flex::frame::BlockSize::Max64KB;
            info.block_mode = lz4_flex::frame::BlockMode::Independent;
            let mut enc = lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::new());
            enc.write_all(data)?;
            enc.finish().map_err(std::io::Error::other)
        }
        Compression::Zstd => zstd::bulk::compress(data, 3),
    }
}

fn read_limited(r: impl Read, what: &str) -> Result<Vec<u8>> {
    let mut out = Vec::new();
    r.take(MAX_DECOMPRESSED as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| Error::Records(format!("{what} payload cannot be decompressed: {e}")))?;
    if out.len() > MAX_DECOMPRESSED {
        return Err(Error::Records(format!(
            "{what} payload decompresses to more than {MAX_DECOMPRESSED} bytes"
        )));
    }
    Ok(out)
}

fn snappy_block(data: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let n = snap::raw::decompress_len(data).map_err(|e| Error::Records(format!("snappy: {e}")))?;
    if out.len() + n > MAX_DECOMPRESSED {
        return Err(Error::Records("snappy payload too large".into()));
    }
    let start = out.len();
    out.resize(start + n, 0);
    let w = snap::raw::Decoder::new()
        .decompress(data, &mut out[start..])
        .map_err(|e| Error::Records(format!("snappy: {e}")))?;
    out.truncate(start + w);
    Ok(())
}

fn decompress(c: Compression, data: &[u8]) -> Result<Vec<u8>> {
    match c {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => read_limited(flate2::read::MultiGzDecoder::new(data), "gzip"),
        Compression::Lz4 => read_limited(lz4_flex::frame::FrameDecoder::new(data), "lz4"),
        Compression::Zstd => read_limited(
            zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| Error::Records(format!("zstd: {e}")))?,
            "zstd",
        ),
        Compression::Snappy => {
            // Java writes xerial framing, librdkafka a raw block.
            let mut out = Vec::new();
            if data.starts_with(&XERIAL_MAGIC) {
                let mut rest = data
                    .get(16..)
                    .ok_or_else(|| Error::Records("truncated xerial header".into()))?;
                while rest.len() >= 4 {
                    let n = rest.get_i32();
                    if n < 0 || n as usize > rest.len() {
                        return Err(Error::Records("xerial block runs past the payload".into()));
                    }
                    snappy_block(&rest[..n as usize], &mut out)?;
                    rest = &rest[n as usize..];
                }
            } else {
                snappy_block(data, &mut out)?;
            }
            Ok(out)
        }
    }
}

/// One record read back from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedRecord {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
}

/// One batch read back, records decoded.
#[derive(Debug, Clone)]
pub struct DecodedBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub producer_id: i64,
    pub transactional: bool,
    pub control: bool,
    /// true: timestamps are the broker's append time.
    pub log_append_time: bool,
    pub max_timestamp: i64,
    pub records: Vec<DecodedRecord>,
}

/// Decodes the batches in a fetch response's `records`. A trailing partial
/// batch (the broker cuts at a byte limit) is ignored, as Kafka clients do.
pub fn decode_batches(mut data: &[u8]) -> Result<Vec<DecodedBatch>> {
    let mut out = Vec::new();
    while data.len() >= 12 {
        let len = i32::from_be_bytes([data[8], data[9], data[10], data[11]]);
        if len < 0 {
            return Err(Error::Records(format!("negative batch length {len}")));
        }
        let total = 12 + len as usize;
        if data.len() < total {
            break;
        }
        let (batch, rest) = data.split_at(total);
        data = rest;
        out.push(decode_batch(batch)?);
    }
    Ok(out)
}

fn decode_batch(b: &[u8]) -> Result<DecodedBatch> {
    if b.len() < BATCH_HEADER_SIZE {
        return Err(Error::Records("batch shorter than its header".into()));
    }
    let mut h = b;
    let base_offset = h.get_i64();
    let _len = h.get_i32();
    let _epoch = h.get_i32();
    let magic = h.get_i8();
    if magic != 2 {
        return Err(Error::Records(format!(
            "message format v{magic} is not supported (only v2)"
        )));
    }
    let crc = h.get_u32();
    if crc32c::crc32c(&b[ATTRIBUTES_OFFSET..]) != crc {
        return Err(Error::Records(format!(
            "CRC mismatch in batch at offset {base_offset}"
        )));
    }
    let attributes = h.get_i16();
    let last_delta = h.get_i32();
    let base_ts = h.get_i64();
    let max_ts = h.get_i64();
    let producer_id = h.get_i64();
    let _pe = h.get_i16();
    let _seq = h.get_i32();
    let count = h.get_i32();
    debug_assert_eq!(b.len() - h.len(), RECORDS_COUNT_OFFSET + 4);
    let compression = Compression::from_id(attributes & 0x7)?;
    let log_append_time = attributes & 0x8 != 0;
    let payload = decompress(compression, h)?;
    let mut p: &[u8] = &payload;
    let mut records = Vec::with_capacity((count.max(0) as usize).min(payload.len()));
    for _ in 0..count.max(0) {
        let len = get_varint(&mut p)?;
        if len < 0 || len as usize > p.len() {
            return Err(Error::Records("record runs past its batch".into()));
        }
        let mut r = &p[..len as usize];
        p = &p[len as usize..];
        if !r.has_remaining() {
            return Err(Error::Records("empty record".into()));
        }
        r.get_i8();
        let ts_delta = get_varlong(&mut r)?;
        let off_delta = get_varint(&mut r)?;
        let key = get_bytes(&mut r)?;
        let value = get_bytes(&mut r)?;
        let n_headers = get_varint(&mut r)?;
        let mut headers = Vec::with_capacity((n_headers.max(0) as usize).min(r.len()));
        for _ in 0..n_headers.max(0) {
            let k = get_bytes(&mut r)?.ok_or_else(|| Error::Records("null header key".into()))?;
            let v = get_bytes(&mut r)?;
            headers.push(Header {
                key: String::from_utf8_lossy(&k).into_owned(),
                value: v,
            });
        }
        records.push(DecodedRecord {
            offset: base_offset + off_delta as i64,
            timestamp: if log_append_time {
                max_ts
            } else {
                base_ts + ts_delta
            },
            key,
            value,
            headers,
        });
    }
    Ok(DecodedBatch {
        base_offset,
        last_offset: base_offset + last_delta as i64,
        producer_id,
        transactional: attributes & 0x10 != 0,
        control: attributes & 0x20 != 0,
        log_append_time,
        max_timestamp: max_ts,
        records,
    })
}

fn get_bytes(r: &mut &[u8]) -> Result<Option<Bytes>> {
    let n = get_varint(r)?;
    if n < 0 {
        return Ok(None);
    }
    let n = n as usize;
    if n > r.len() {
        return Err(Error::Records("field runs past its record".into()));
    }
    let v = Bytes::copy_from_slice(&r[..n]);
    r.advance(n);
    Ok(Some(v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sealed_batch_takes_another_sequence_with_a_valid_crc() {
        let mut b = BatchBuilder::new();
        b.push(None, Some(b"v"), &[], 1);
        let sealed = b.build(7, 0, 10, Compression::None).unwrap();
        let kept = sealed.clone(); // shared: the function must copy
        let moved = with_base_sequence(sealed, 3);
        assert_eq!(
            &moved[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4],
            &3i32.to_be_bytes()
        );
        assert_eq!(
            &kept[BASE_SEQUENCE_OFFSET..BASE_SEQUENCE_OFFSET + 4],
            &10i32.to_be_bytes()
        );
        let d = decode_batches(&moved).expect("valid CRC");
        assert_eq!(d[0].records.len(), 1);
    }

    #[test]
    fn round_trip_every_codec() {
        for c in [
            Compression::None,
            Compression::Gzip,
            Compression::Snappy,
            Compression::Lz4,
            Compression::Zstd,
        ] {
            let mut b = BatchBuilder::new();
            let headers = vec![
                Header::new("h", "1"),
                Header::new("h", "2"),
                Header {
                    key: "n".into(),
                    value: None,
                },
            ];
            for i in 0..100 {
                let v = format!("value-{i}-{}", "x".repeat(i));
                let key = (i % 3 != 0).then(|| format!("k{i}"));
                b.push(
                    key.as_deref().map(str::as_bytes),
                    Some(v.as_bytes()),
                    &headers,
                    1_000 + i as i64,
                );
            }
            b.push(None, None, &[], 999);
            let bytes = b.build(7, 1, 0, c).unwrap();
            let batches = decode_batches(&bytes).unwrap();
            assert_eq!(batches.len(), 1);
            let recs = &batches[0].records;
            assert_eq!(recs.len(), 101, "{c:?}");
            assert_eq!(
                recs[5].value.as_deref(),
                Some(format!("value-5-{}", "x".repeat(5)).as_bytes())
            );
            assert_eq!(recs[5].key.as_deref(), Some(&b"k5"[..]));
            assert_eq!(recs[3].key, None);
            assert_eq!(recs[5].headers, headers);
            assert_eq!(recs[5].timestamp, 1_005);
            assert_eq!(recs[100].offset, 100);
            assert_eq!(recs[100].value, None);
            assert_eq!(recs[100].timestamp, 999);
            assert_eq!(batches[0].producer_id, 7);
        }
    }

    #[test]
    fn size_estimate_is_exact_uncompressed() {
        let mut b = BatchBuilder::new();
        let h = [Header::new("a", "b")];
        let mut expect = BATCH_HEADER_SIZE;
        for i in 0..50i64 {
            expect += b.size_of(Some(b"key"), Some(b"value"), &h, 100 + i * 1000);
            b.push(Some(b"key"), Some(b"value"), &h, 100 + i * 1000);
        }
        assert_eq!(b.size(), expect);
        assert_eq!(
            b.build(-1, -1, -1, Compression::None).unwrap().len(),
            expect
        );
    }

    #[test]
    fn partial_trailing_batch_is_ignored_and_crc_checked() {
        let mut b = BatchBuilder::new();
        b.push(None, Some(b"v"), &[], 1);
        let one = b.build(-1, -1, -1, Compression::None).unwrap();
        let mut two = one.to_vec();
        two.extend_from_slice(&one[..one.len() - 3]);
        assert_eq!(decode_batches(&two).unwrap().len(), 1);
        let mut bad = one.to_vec();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(decode_batches(&bad).is_err());
    }

    #[test]
    fn varints_match_kafka() {
        for v in [
            0i64,
            -1,
            1,
            63,
            -64,
            64,
            300,
            i32::MAX as i64,
            i32::MIN as i64,
            i64::MAX,
            i64::MIN,
        ] {
            let mut b = BytesMut::new();
            put_varlong(&mut b, v);
            assert_eq!(b.len(), varint_len(v));
            let mut s: &[u8] = &b;
            assert_eq!(get_varlong(&mut s).unwrap(), v);
        }
        let mut b = BytesMut::new();
        put_varint(&mut b, -1);
        assert_eq!(&b[..], &[1]);
        let mut b = BytesMut::new();
        put_varint(&mut b, 300);
        assert_eq!(&b[..], &[0xd8, 0x04]);
    }
}
