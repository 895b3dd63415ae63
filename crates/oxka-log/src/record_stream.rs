//! Records of a batch read as a stream, so a compressed batch is never
//! inflated whole: a few hundred kilobytes of gzip can hold hundreds of
//! megabytes of records, and validating them must not cost that memory.
//!
//! The payload is read through the codec's streaming decoder in bounded
//! chunks. Validation ([`RecordStream::next_meta`]) parses each record's
//! framing and skips its key, value and header bytes without keeping them,
//! as Kafka's `LogValidator` does with its skip-key-value iterator;
//! [`RecordStream::next_record`] keeps one record at a time for the
//! callers that need its bytes.
//!
//! Bounds: the whole decompressed payload at most
//! [`MAX_DECOMPRESSED_BYTES`] (CORRUPT_MESSAGE above it); one record of a
//! compressed batch at most `max.decompressed.message.bytes` (INVALID_RECORD,
//! Kafka's rule); a snappy block's declared size at most what snappy can
//! expand its compressed bytes to; a zstd window at most 2^24 bytes.

use std::io::{self, BufRead, BufReader, Read};

use crate::error::LogError;
use crate::record_batch::{
    Compression, RecordView, MAX_DECOMPRESSED_BYTES, SNAPPY_FRAME_MAGIC, XERIAL_SNAPPY_MAGIC,
};

/// Decompressed bytes read from the codec at a time.
const CHUNK: usize = 64 * 1024;
/// The largest zstd window accepted (16 MiB): what producers' levels use
/// for batches; larger windows would let a frame make the decoder allocate
/// up to 2 GiB.
const ZSTD_WINDOW_LOG_MAX: u32 = 24;
/// Snappy expands at most 64 bytes per 3-byte copy element; a block that
/// declares more than this many bytes per compressed byte is forged.
const SNAPPY_MAX_EXPANSION: usize = 22;

fn corrupt(msg: impl Into<String>) -> LogError {
    LogError::CorruptRecord(msg.into())
}

fn io_error(codec: Compression, e: io::Error) -> LogError {
    if e.kind() == io::ErrorKind::UnexpectedEof {
        corrupt(format!(
            "record runs past the end of the batch ({} payload: {e})",
            format!("{codec:?}").to_ascii_lowercase()
        ))
    } else {
        corrupt(format!(
            "{} payload cannot be decompressed: {e}",
            format!("{codec:?}").to_ascii_lowercase()
        ))
    }
}

/// Framing of one record, without its bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecordMeta {
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Timestamp relative to the batch's first timestamp.
    pub timestamp_delta: i64,
    /// The record has a null key.
    pub key_is_null: bool,
    /// The record has a null value (a tombstone).
    pub value_is_null: bool,
}

/// Snappy-java's xerial stream: blocks of (i32 BE length, raw snappy block),
/// each decompressed when reached.
struct XerialReader<'a> {
    data: &'a [u8],
    pos: usize,
    block: Vec<u8>,
    at: usize,
}

impl Read for XerialReader<'_> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        while self.at == self.block.len() {
            if self.pos == self.data.len() {
                return Ok(0);
            }
            let invalid = |m: &str| io::Error::new(io::ErrorKind::InvalidData, m.to_string());
            let len_bytes = self
                .data
                .get(self.pos..self.pos + 4)
                .ok_or_else(|| invalid("truncated xerial snappy block length"))?;
            let len = i32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
            self.pos += 4;
            if len < 0 || len as usize > self.data.len() - self.pos {
                return Err(invalid("xerial snappy block runs past the payload"));
            }
            let raw = &self.data[self.pos..self.pos + len as usize];
            self.pos += len as usize;
            self.block = snappy_block(raw)?;
            self.at = 0;
        }
        let n = out.len().min(self.block.len() - self.at);
        out[..n].copy_from_slice(&self.block[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// Decompresses one raw snappy block after checking its declared size
/// against what its compressed bytes can expand to.
fn snappy_block(raw: &[u8]) -> io::Result<Vec<u8>> {
    let invalid = |m: String| io::Error::new(io::ErrorKind::InvalidData, m);
    let n = snap::raw::decompress_len(raw).map_err(|e| invalid(format!("snappy block: {e}")))?;
    if n > raw
        .len()
        .saturating_mul(SNAPPY_MAX_EXPANSION)
        .saturating_add(64)
    {
        return Err(invalid(format!(
            "snappy block of {} bytes declares {n} decompressed bytes",
            raw.len()
        )));
    }
    if n > MAX_DECOMPRESSED_BYTES {
        return Err(invalid(format!(
            "snappy block decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
        )));
    }
    snap::raw::Decoder::new()
        .decompress_vec(raw)
        .map_err(|e| invalid(format!("snappy block: {e}")))
}

/// A reader of a batch's records payload, decompressing as it goes.
pub(crate) fn payload_reader<'a>(
    codec: Compression,
    data: &'a [u8],
) -> Result<Box<dyn Read + 'a>, LogError> {
    Ok(match codec {
        Compression::None => Box::new(data),
        Compression::Gzip => Box::new(flate2::read::MultiGzDecoder::new(data)),
        Compression::Lz4 => Box::new(lz4_flex::frame::FrameDecoder::new(data)),
        Compression::Zstd => {
            let mut dec = zstd::stream::read::Decoder::with_buffer(data)
                .map_err(|e| corrupt(format!("zstd payload cannot be decompressed: {e}")))?;
            dec.window_log_max(ZSTD_WINDOW_LOG_MAX)
                .map_err(|e| corrupt(format!("zstd payload cannot be decompressed: {e}")))?;
            Box::new(dec)
        }
        Compression::Snappy => {
            if data.starts_with(&XERIAL_SNAPPY_MAGIC) {
                if data.len() < 16 {
                    return Err(corrupt("truncated xerial snappy header"));
                }
                Box::new(XerialReader {
                    data,
                    pos: 16,
                    block: Vec::new(),
                    at: 0,
                })
            } else if data.starts_with(&SNAPPY_FRAME_MAGIC) {
                // the framing format's chunks are at most 64 KiB each
                Box::new(snap::read::FrameDecoder::new(data))
            } else {
                // librdkafka: the whole payload is one raw block
                let block = snappy_block(data).map_err(|e| corrupt(e.to_string()))?;
                Box::new(io::Cursor::new(block))
            }
        }
    })
}

/// Reads `r` to the end into memory, failing once more than `limit` bytes
/// come out: for the callers that need the whole payload (the cleaner).
pub(crate) fn read_to_end_limited(
    codec: Compression,
    data: &[u8],
    limit: usize,
) -> Result<Vec<u8>, LogError> {
    let name = format!("{codec:?}").to_ascii_lowercase();
    let mut out = Vec::new();
    payload_reader(codec, data)?
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| corrupt(format!("{name} payload cannot be decompressed: {e}")))?;
    if out.len() > limit {
        return Err(corrupt(format!(
            "{name} payload decompresses to more than {limit} bytes"
        )));
    }
    Ok(out)
}

/// The records of one batch payload, one at a time.
pub struct RecordStream<'a> {
    reader: BufReader<Box<dyn Read + 'a>>,
    codec: Compression,
    /// Decompressed bytes consumed so far.
    consumed: usize,
    /// `max.decompressed.message.bytes` for compressed batches.
    max_record_bytes: usize,
    /// One record's bytes for [`Self::next_record`], reused.
    record: Vec<u8>,
}

impl<'a> RecordStream<'a> {
    /// Records of `payload` (the bytes after the batch header).
    pub fn new(
        codec: Compression,
        payload: &'a [u8],
        max_record_bytes: usize,
    ) -> Result<Self, LogError> {
        Ok(RecordStream {
            reader: BufReader::with_capacity(CHUNK, payload_reader(codec, payload)?),
            codec,
            consumed: 0,
            max_record_bytes,
            record: Vec::new(),
        })
    }

    fn count(&mut self, n: usize) -> Result<(), LogError> {
        self.consumed = self.consumed.saturating_add(n);
        if self.consumed > MAX_DECOMPRESSED_BYTES {
            return Err(corrupt(format!(
                "payload decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
            )));
        }
        Ok(())
    }

    fn byte(&mut self) -> Result<u8, LogError> {
        let mut b = [0u8; 1];
        self.reader
            .read_exact(&mut b)
            .map_err(|e| io_error(self.codec, e))?;
        self.count(1)?;
        Ok(b[0])
    }

    /// A zigzag varint read from the stream (at most `max_bytes` bytes).
    fn varint_raw(&mut self, max_bytes: usize) -> Result<u64, LogError> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(corrupt("varint is too long"))
    }

    fn varint(&mut self) -> Result<i32, LogError> {
        let raw = self.varint_raw(5)?;
        if raw > u64::from(u32::MAX) {
            return Err(corrupt("varint overflows 32 bits"));
        }
        let raw = raw as u32;
        Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
    }

    fn varlong(&mut self) -> Result<i64, LogError> {
        let raw = self.varint_raw(10)?;
        Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
    }

    /// Discards `n` bytes, a buffer's worth at a time.
    fn skip(&mut self, mut n: usize) -> Result<(), LogError> {
        self.count(n)?;
        while n > 0 {
            let available = self
                .reader
                .fill_buf()
                .map_err(|e| io_error(self.codec, e))?
                .len();
            if available == 0 {
                return Err(corrupt("record runs past the end of the batch"));
            }
            let k = available.min(n);
            self.reader.consume(k);
            n -= k;
        }
        Ok(())
    }

    /// Whether the payload has no more bytes.
    fn at_end(&mut self) -> Result<bool, LogError> {
        let buf = self
            .reader
            .fill_buf()
            .map_err(|e| io_error(self.codec, e))?;
        Ok(buf.is_empty())
    }

    /// The length prefix of the next record, checked against the bounds;
    /// `None` at the end of the payload.
    fn record_length(&mut self) -> Result<Option<usize>, LogError> {
        if self.at_end()? {
            return Ok(None);
        }
        let len = self.varint()?;
        if len <= 0 {
            return Err(corrupt(format!("record length {len} is invalid")));
        }
        let len = len as usize;
        if self.codec != Compression::None && len > self.max_record_bytes {
            return Err(LogError::InvalidRecord(format!(
                "record of {len} bytes exceeds max.decompressed.message.bytes {}",
                self.max_record_bytes
            )));
        }
        Ok(Some(len))
    }

    /// A nullable byte string's length: `None` for null.
    fn bytes_length(&mut self, what: &str, left: &mut usize) -> Result<Option<usize>, LogError> {
        let before = self.consumed;
        let len = self.varint()?;
        self.take_from(left, self.consumed - before)?;
        match len {
            -1 => Ok(None),
            n if n < 0 => Err(corrupt(format!("{what} has negative length {n}"))),
            n => Ok(Some(n as usize)),
        }
    }

    fn take_from(&self, left: &mut usize, n: usize) -> Result<(), LogError> {
        *left = left
            .checked_sub(n)
            .ok_or_else(|| corrupt("record fields run past its declared length"))?;
        Ok(())
    }

    /// The next record's framing, its key, value and header bytes skipped;
    /// `None` after the last record.
    pub fn next_meta(&mut self) -> Result<Option<RecordMeta>, LogError> {
        let Some(len) = self.record_length()? else {
            return Ok(None);
        };
        let mut left = len;
        let start = self.consumed;
        self.byte()?; // attributes
        let timestamp_delta = self.varlong()?;
        let offset_delta = self.varint()?;
        self.take_from(&mut left, self.consumed - start)?;
        let key = self.bytes_length("record key", &mut left)?;
        if let Some(n) = key {
            self.take_from(&mut left, n)?;
            self.skip(n)?;
        }
        let value = self.bytes_length("record value", &mut left)?;
        if let Some(n) = value {
            self.take_from(&mut left, n)?;
            self.skip(n)?;
        }
        let before = self.consumed;
        let headers = self.varint()?;
        self.take_from(&mut left, self.consumed - before)?;
        if headers < 0 {
            return Err(corrupt(format!(
                "record has negative header count {headers}"
            )));
        }
        for _ in 0..headers {
            let k = self
                .bytes_length("header key", &mut left)?
                .ok_or_else(|| corrupt("header key is null"))?;
            self.take_from(&mut left, k)?;
            self.skip(k)?;
            if let Some(v) = self.bytes_length("header value", &mut left)? {
                self.take_from(&mut left, v)?;
                self.skip(v)?;
            }
        }
        if left != 0 {
            return Err(corrupt(format!(
                "record declares {len} bytes but its fields use {}",
                len - left
            )));
        }
        Ok(Some(RecordMeta {
            offset_delta,
            timestamp_delta,
            key_is_null: key.is_none(),
            value_is_null: value.is_none(),
        }))
    }

    /// The next whole record (only this one is held in memory); `None`
    /// after the last record.
    pub fn next_record(&mut self) -> Result<Option<RecordView<'_>>, LogError> {
        let Some(len) = self.record_length()? else {
            return Ok(None);
        };
        self.count(len)?;
        self.record.clear();
        crate::record_batch::write_varint(&mut self.record, len as i32);
        let prefix = self.record.len();
        // grows with the bytes that arrive, not with the declared length
        let got = (&mut self.reader)
            .take(len as u64)
            .read_to_end(&mut self.record)
            .map_err(|e| io_error(self.codec, e))?;
        if got != len {
            return Err(corrupt("record runs past the end of the batch"));
        }
        debug_assert_eq!(self.record.len(), prefix + len);
        let mut pos = 0;
        let view = crate::record_batch::parse_record(&self.record, &mut pos)?;
        Ok(Some(view))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forged_snappy_length_is_refused_before_allocation() {
        // a raw block declaring 2^31 bytes from 6 bytes of input
        let mut forged = Vec::new();
        let mut v: u64 = 1 << 31;
        while v >= 0x80 {
            forged.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        forged.push(v as u8);
        forged.extend_from_slice(&[0, 0]);
        assert!(snappy_block(&forged).is_err());
    }
}
