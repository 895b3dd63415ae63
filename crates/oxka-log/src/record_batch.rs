//! The Kafka v2 record batch format (magic 2): header parsing, validation
//! and record decoding.
//!
//! The log stores batches byte-for-byte as producers sent them unless the
//! topic's `compression.type` asks for another codec, in which case
//! [`recompress_batch`] re-wraps the same encoded records; the header
//! fields the broker owns (base offset, leader epoch, max timestamp) are
//! patched in place.

use std::io::{self, Read};

use crate::config::{BrokerCompression, TimestampType};
use crate::error::LogError;
pub use crate::record_stream::RecordMeta;
use crate::record_stream::RecordStream;

/// Position of `baseOffset` (i64).
pub const BASE_OFFSET_OFFSET: usize = 0;
/// A record without a timestamp (Kafka's `RecordBatch.NO_TIMESTAMP`).
pub const NO_TIMESTAMP: i64 = -1;
/// Position of `batchLength` (i32): bytes that follow this field.
pub const BATCH_LENGTH_OFFSET: usize = 8;
/// Position of `partitionLeaderEpoch` (i32); outside the CRC so the broker can set it.
pub const PARTITION_LEADER_EPOCH_OFFSET: usize = 12;
/// Position of `magic` (i8).
pub const MAGIC_OFFSET: usize = 16;
/// Position of `crc` (u32, CRC-32C over attributes..end).
pub const CRC_OFFSET: usize = 17;
/// Position of `attributes` (i16); the CRC covers from here to the end.
pub const ATTRIBUTES_OFFSET: usize = 21;
/// Position of `lastOffsetDelta` (i32).
pub const LAST_OFFSET_DELTA_OFFSET: usize = 23;
/// Position of `baseTimestamp` (i64).
pub const FIRST_TIMESTAMP_OFFSET: usize = 27;
/// Position of `maxTimestamp` (i64).
pub const MAX_TIMESTAMP_OFFSET: usize = 35;
/// Position of `producerId` (i64).
pub const PRODUCER_ID_OFFSET: usize = 43;
/// Position of `producerEpoch` (i16).
pub const PRODUCER_EPOCH_OFFSET: usize = 51;
/// Position of `baseSequence` (i32).
pub const BASE_SEQUENCE_OFFSET: usize = 53;
/// Position of `recordsCount` (i32).
pub const RECORDS_COUNT_OFFSET: usize = 57;
/// Position of the first record (or of the compressed payload).
pub const RECORDS_OFFSET: usize = 61;
/// Size of the batch header.
pub const BATCH_OVERHEAD: usize = 61;
/// `baseOffset` plus `batchLength`: the bytes not counted by `batchLength`.
pub const LOG_OVERHEAD: usize = 12;
/// Smallest legal `batchLength`.
pub const MIN_BATCH_LENGTH: i32 = (BATCH_OVERHEAD - LOG_OVERHEAD) as i32;
/// The only record format this broker stores.
pub const MAGIC_V2: i8 = 2;

/// Attribute bits 0-2.
pub const COMPRESSION_CODEC_MASK: i16 = 0x07;
/// Attribute bit 3.
pub const TIMESTAMP_TYPE_MASK: i16 = 0x08;
/// Attribute bit 4.
pub const TRANSACTIONAL_FLAG_MASK: i16 = 0x10;
/// Attribute bit 5.
pub const CONTROL_FLAG_MASK: i16 = 0x20;
/// Attribute bit 6.
pub const DELETE_HORIZON_FLAG_MASK: i16 = 0x40;

/// Upper bound on a batch's decompressed payload (oxka's, CORRUPT_MESSAGE
/// above it). Validation streams through a payload without holding it
/// (`record_stream`), so this bounds work and what the cleaner may have to
/// hold for one batch, not what a request costs.
pub const MAX_DECOMPRESSED_BYTES: usize = 256 * 1024 * 1024;

/// Kafka's default `max.decompressed.message.bytes`: the largest record a
/// compressed batch may hold.
pub const DEFAULT_MAX_DECOMPRESSED_RECORD_BYTES: u32 = 2_147_483_639;

/// Magic prefix of snappy-java's `SnappyOutputStream`, which Kafka's Java
/// client uses.
pub(crate) const XERIAL_SNAPPY_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
pub(crate) const SNAPPY_FRAME_MAGIC: [u8; 10] =
    [0xff, 0x06, 0x00, 0x00, b's', b'N', b'a', b'P', b'p', b'Y'];

/// Compression codec of a batch (attribute bits 0-2).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Records are stored as is.
    None,
    /// gzip (RFC 1952).
    Gzip,
    /// snappy; Kafka's Java client frames it xerial-style, other clients may not.
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// zstd frame format.
    Zstd,
}

impl Compression {
    /// The codec for attribute value `id`, if it names one.
    pub fn from_id(id: u8) -> Option<Compression> {
        match id {
            0 => Some(Compression::None),
            1 => Some(Compression::Gzip),
            2 => Some(Compression::Snappy),
            3 => Some(Compression::Lz4),
            4 => Some(Compression::Zstd),
            _ => None,
        }
    }

    /// The attribute value of this codec.
    pub fn id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }
}

/// The fixed 61-byte header of a v2 batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordBatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `batchLength` field.
    pub batch_length: i32,
    /// Leader epoch at append time.
    pub partition_leader_epoch: i32,
    /// Format version; only 2 is accepted.
    pub magic: i8,
    /// CRC-32C of attributes..end.
    pub crc: u32,
    /// Codec, timestamp type, transactional and control bits.
    pub attributes: i16,
    /// Offset of the last record minus `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp the record deltas are relative to.
    pub first_timestamp: i64,
    /// Largest record timestamp (or the append time).
    pub max_timestamp: i64,
    /// Idempotent producer id, -1 if none.
    pub producer_id: i64,
    /// Idempotent producer epoch, -1 if none.
    pub producer_epoch: i16,
    /// Sequence of the first record, -1 if none.
    pub base_sequence: i32,
    /// Number of records in the batch.
    pub records_count: i32,
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(a)
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[at..at + 4]);
    i32::from_be_bytes(a)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

impl RecordBatchHeader {
    /// Parses the header at the start of `buf` without validating it.
    pub fn parse(buf: &[u8]) -> Result<RecordBatchHeader, LogError> {
        if buf.len() < BATCH_OVERHEAD {
            return Err(LogError::CorruptRecord(format!(
                "record batch header needs {BATCH_OVERHEAD} bytes, got {}",
                buf.len()
            )));
        }
        Ok(RecordBatchHeader {
            base_offset: be_i64(buf, BASE_OFFSET_OFFSET),
            batch_length: be_i32(buf, BATCH_LENGTH_OFFSET),
            partition_leader_epoch: be_i32(buf, PARTITION_LEADER_EPOCH_OFFSET),
            magic: buf[MAGIC_OFFSET] as i8,
            crc: be_i32(buf, CRC_OFFSET) as u32,
            attributes: be_i16(buf, ATTRIBUTES_OFFSET),
            last_offset_delta: be_i32(buf, LAST_OFFSET_DELTA_OFFSET),
            first_timestamp: be_i64(buf, FIRST_TIMESTAMP_OFFSET),
            max_timestamp: be_i64(buf, MAX_TIMESTAMP_OFFSET),
            producer_id: be_i64(buf, PRODUCER_ID_OFFSET),
            producer_epoch: be_i16(buf, PRODUCER_EPOCH_OFFSET),
            base_sequence: be_i32(buf, BASE_SEQUENCE_OFFSET),
            records_count: be_i32(buf, RECORDS_COUNT_OFFSET),
        })
    }

    /// Size of the whole batch on the wire, or `None` when `batch_length`
    /// is too small to hold a header.
    pub fn total_size(&self) -> Option<usize> {
        if self.batch_length < MIN_BATCH_LENGTH {
            None
        } else {
            Some(self.batch_length as usize + LOG_OVERHEAD)
        }
    }

    /// Offset of the last record. Saturates rather than overflowing on
    /// hostile input; validation rejects such batches anyway.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The codec named by the attributes.
    pub fn compression(&self) -> Result<Compression, LogError> {
        let id = (self.attributes & COMPRESSION_CODEC_MASK) as u8;
        Compression::from_id(id)
            .ok_or_else(|| LogError::CorruptRecord(format!("unknown compression codec {id}")))
    }

    /// Whether the batch holds transaction markers rather than data.
    pub fn is_control(&self) -> bool {
        self.attributes & CONTROL_FLAG_MASK != 0
    }

    /// Whether the batch is part of a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes & TRANSACTIONAL_FLAG_MASK != 0
    }

    /// Whether `max_timestamp` is the broker's append time.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes & TIMESTAMP_TYPE_MASK != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }
}

/// Checks the parts of a batch that recovery can check cheaply: framing,
/// magic and CRC. Returns the header and the batch's size.
pub fn check_batch_integrity(buf: &[u8]) -> Result<(RecordBatchHeader, usize), LogError> {
    let header = RecordBatchHeader::parse(buf)?;
    let size = framed_size(&header, buf.len())?;
    verify_crc(&header, &buf[..size])?;
    Ok((header, size))
}

/// Validates the size and magic fields against the `available` bytes.
fn framed_size(header: &RecordBatchHeader, available: usize) -> Result<usize, LogError> {
    let size = header.total_size().ok_or_else(|| {
        LogError::CorruptRecord(format!(
            "batch length {} is smaller than the minimum {MIN_BATCH_LENGTH}",
            header.batch_length
        ))
    })?;
    if size > available {
        return Err(LogError::CorruptRecord(format!(
            "batch of {size} bytes but only {available} bytes remain"
        )));
    }
    if header.magic != MAGIC_V2 {
        return Err(LogError::CorruptRecord(format!(
            "unsupported magic {} (only 2 is supported)",
            header.magic
        )));
    }
    Ok(size)
}

fn verify_crc(header: &RecordBatchHeader, batch: &[u8]) -> Result<(), LogError> {
    let computed = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    if computed != header.crc {
        return Err(LogError::CorruptRecord(format!(
            "batch at offset {} has CRC {:#010x} but its contents hash to {computed:#010x}",
            header.base_offset, header.crc
        )));
    }
    Ok(())
}

/// Iterates over the batches of a byte slice, checking only framing (size
/// and magic) so that callers can decide how much to validate. After an
/// error it yields nothing more.
pub struct BatchIter<'a> {
    buf: &'a [u8],
    pos: usize,
    failed: bool,
}

impl<'a> BatchIter<'a> {
    /// Iterates over `buf`, which must hold whole batches.
    pub fn new(buf: &'a [u8]) -> Self {
        BatchIter {
            buf,
            pos: 0,
            failed: false,
        }
    }

    /// Bytes consumed by the batches yielded so far.
    pub fn position(&self) -> usize {
        self.pos
    }
}

impl<'a> Iterator for BatchIter<'a> {
    type Item = Result<(RecordBatchHeader, &'a [u8]), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.failed || self.pos >= self.buf.len() {
            return None;
        }
        let rest = &self.buf[self.pos..];
        let res = RecordBatchHeader::parse(rest)
            .and_then(|h| framed_size(&h, rest.len()).map(|size| (h, size)));
        match res {
            Ok((h, size)) => {
                self.pos += size;
                Some(Ok((h, &rest[..size])))
            }
            Err(e) => {
                self.failed = true;
                Some(Err(e))
            }
        }
    }
}

/// Iterates over the batches of `buf`.
pub fn batches(buf: &[u8]) -> BatchIter<'_> {
    BatchIter::new(buf)
}

/// What full validation learned about one batch.
#[derive(Clone, Debug)]
pub struct ValidatedBatch {
    /// The batch header as received.
    pub header: RecordBatchHeader,
    /// Position of the batch within the validated buffer.
    pub position: usize,
    /// Size of the batch in bytes.
    pub size: usize,
    /// Largest record create time (base timestamp plus delta).
    pub max_record_timestamp: i64,
    /// Offset delta of the first record carrying `max_record_timestamp`.
    pub offset_delta_of_max_timestamp: i32,
    /// The earliest and the latest record timestamp other than
    /// `NO_TIMESTAMP` (-1), each with the offset delta of a record carrying
    /// it: what `message.timestamp.before/after.max.ms` are checked against.
    pub timestamp_bounds: Option<TimestampBounds>,
}

/// See [`ValidatedBatch::timestamp_bounds`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimestampBounds {
    /// (timestamp, offset delta) of the earliest record.
    pub min: (i64, i32),
    /// (timestamp, offset delta) of the latest record.
    pub max: (i64, i32),
}

/// Fully validates every batch of `buf`: framing, magic, CRC, codec and
/// the framing of every record (decompressing when needed).
pub fn validate_batches(buf: &[u8]) -> Result<Vec<RecordBatchHeader>, LogError> {
    Ok(validate_batches_detailed(buf, None)?
        .into_iter()
        .map(|b| b.header)
        .collect())
}

/// Like [`validate_batches`], additionally enforcing `max_batch_bytes` and
/// returning per-batch timestamp information.
pub fn validate_batches_detailed(
    buf: &[u8],
    max_batch_bytes: Option<u32>,
) -> Result<Vec<ValidatedBatch>, LogError> {
    validate_batches_limited(buf, max_batch_bytes, DEFAULT_MAX_DECOMPRESSED_RECORD_BYTES)
}

/// Like [`validate_batches_detailed`], additionally refusing a compressed
/// record larger than `max_record_bytes` (`max.decompressed.message.bytes`,
/// INVALID_RECORD as Kafka answers).
pub fn validate_batches_limited(
    buf: &[u8],
    max_batch_bytes: Option<u32>,
    max_record_bytes: u32,
) -> Result<Vec<ValidatedBatch>, LogError> {
    if buf.is_empty() {
        return Err(LogError::CorruptRecord("empty record set".into()));
    }
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let rest = &buf[pos..];
        let header = RecordBatchHeader::parse(rest)?;
        let size = framed_size(&header, rest.len())?;
        if let Some(max) = max_batch_bytes {
            if size > max as usize {
                return Err(LogError::MessageTooLarge { size, max });
            }
        }
        let batch = &rest[..size];
        verify_crc(&header, batch)?;
        let (max_ts, delta_of_max, bounds) =
            validate_batch_records(&header, batch, max_record_bytes)?;
        out.push(ValidatedBatch {
            header,
            position: pos,
            size,
            max_record_timestamp: max_ts,
            offset_delta_of_max_timestamp: delta_of_max,
            timestamp_bounds: bounds,
        });
        pos += size;
    }
    Ok(out)
}

/// What a follower checks of the batches it copies from its leader (the
/// follower side of Kafka's `analyzeAndValidateRecords`): framing, magic,
/// CRC, a known codec and a consistent header. Records are not decoded:
/// the leader validated them, and the CRC covers them. Batches a compacted
/// leader rewrote are accepted: the cleaner keeps a batch's offset range
/// (its last offset delta) while removing records, so a batch may hold
/// fewer records than its range, or none.
///
/// The batches' own max timestamp is what the follower indexes
/// (`max_record_timestamp`), attributed to their last offset.
pub fn validate_replicated_batches(buf: &[u8]) -> Result<Vec<ValidatedBatch>, LogError> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < buf.len() {
        let (header, size) = check_batch_integrity(&buf[pos..])?;
        header.compression()?;
        let consistent = header.base_offset >= 0
            && header.last_offset_delta >= 0
            && header.records_count >= 0
            && i64::from(header.records_count) <= i64::from(header.last_offset_delta) + 1
            && header
                .base_offset
                .checked_add(i64::from(header.last_offset_delta))
                .is_some();
        if !consistent {
            return Err(LogError::CorruptRecord(format!(
                "batch at offset {} declares {} records with lastOffsetDelta {}",
                header.base_offset, header.records_count, header.last_offset_delta
            )));
        }
        let (max_record_timestamp, offset_delta_of_max_timestamp) =
            (header.max_timestamp, header.last_offset_delta);
        out.push(ValidatedBatch {
            header,
            position: pos,
            size,
            max_record_timestamp,
            offset_delta_of_max_timestamp,
            timestamp_bounds: None,
        });
        pos += size;
    }
    Ok(out)
}

/// Checks the record count, offset deltas and record framing; returns the
/// largest record timestamp and the offset delta of its first occurrence,
/// and the batch's timestamp bounds.
fn validate_batch_records(
    header: &RecordBatchHeader,
    batch: &[u8],
    max_record_bytes: u32,
) -> Result<(i64, i32, Option<TimestampBounds>), LogError> {
    let count = header.records_count;
    if count <= 0 {
        return Err(LogError::CorruptRecord(format!(
            "batch at offset {} declares {count} records",
            header.base_offset
        )));
    }
    if header.last_offset_delta != count - 1 {
        return Err(LogError::CorruptRecord(format!(
            "batch declares {count} records but lastOffsetDelta {}",
            header.last_offset_delta
        )));
    }
    let mut max_ts = -1i64;
    let mut delta_of_max = 0i32;
    let mut bounds: Option<TimestampBounds> = None;
    let mut seen = 0i32;
    visit_record_meta(header, batch, max_record_bytes, |r| {
        if seen >= count {
            return Err(LogError::CorruptRecord(format!(
                "batch declares {count} records but holds more"
            )));
        }
        if r.offset_delta != seen {
            return Err(LogError::CorruptRecord(format!(
                "record {seen} has offset delta {}",
                r.offset_delta
            )));
        }
        // The producer's own times, even if it set the append-time bit:
        // the broker decides the timestamp type, not the client.
        let ts = header.first_timestamp.wrapping_add(r.timestamp_delta);
        if seen == 0 || ts > max_ts {
            max_ts = ts;
            delta_of_max = r.offset_delta;
        }
        if ts != NO_TIMESTAMP {
            let at = (ts, r.offset_delta);
            let b = bounds.get_or_insert(TimestampBounds { min: at, max: at });
            if ts < b.min.0 {
                b.min = at;
            }
            if ts > b.max.0 {
                b.max = at;
            }
        }
        seen += 1;
        Ok(())
    })?;
    if seen != count {
        return Err(LogError::CorruptRecord(format!(
            "batch declares {count} records but holds {seen}"
        )));
    }
    Ok((max_ts, delta_of_max, bounds))
}

/// One record, borrowing from the (possibly decompressed) batch payload.
#[derive(Clone, Debug)]
pub struct RecordView<'a> {
    /// Record attributes (unused by Kafka so far).
    pub attributes: i8,
    /// Timestamp relative to the batch's first timestamp.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's base offset.
    pub offset_delta: i32,
    /// Key, `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, `None` for a null value (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Header keys and values.
    pub headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

impl RecordView<'_> {
    /// The record's timestamp as consumers see it: with LogAppendTime all
    /// records carry the batch's max timestamp.
    pub fn timestamp(&self, header: &RecordBatchHeader) -> i64 {
        match header.timestamp_type() {
            TimestampType::LogAppendTime => header.max_timestamp,
            TimestampType::CreateTime => header.first_timestamp.wrapping_add(self.timestamp_delta),
        }
    }
}

/// A decoded record with owned data, for tests and tools.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Absolute offset.
    pub offset: i64,
    /// Absolute timestamp.
    pub timestamp: i64,
    /// Key.
    pub key: Option<Vec<u8>>,
    /// Value.
    pub value: Option<Vec<u8>>,
    /// Headers; keys are raw bytes because Kafka does not validate UTF-8 on the broker.
    pub headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
}

/// Decodes the records of one whole batch (decompressing if needed).
pub fn decode_records(batch: &[u8]) -> Result<Vec<Record>, LogError> {
    let header = RecordBatchHeader::parse(batch)?;
    let size = framed_size(&header, batch.len())?;
    let batch = &batch[..size];
    let mut out = Vec::new();
    visit_records(&header, batch, |r| {
        out.push(Record {
            offset: header.base_offset.wrapping_add(i64::from(r.offset_delta)),
            timestamp: r.timestamp(&header),
            key: r.key.map(<[u8]>::to_vec),
            value: r.value.map(<[u8]>::to_vec),
            headers: r
                .headers
                .iter()
                .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
                .collect(),
        });
        Ok(())
    })?;
    Ok(out)
}

/// Calls `f` for every record of `batch`, decompressing the payload as a
/// stream (one record in memory at a time); fails if the payload does not
/// consist of exactly whole records.
pub fn visit_records<F>(header: &RecordBatchHeader, batch: &[u8], mut f: F) -> Result<(), LogError>
where
    F: FnMut(&RecordView<'_>) -> Result<(), LogError>,
{
    let payload = &batch[RECORDS_OFFSET.min(batch.len())..];
    let codec = header.compression()?;
    if codec == Compression::None {
        // already in memory: parsed in place
        let mut pos = 0;
        while pos < payload.len() {
            f(&parse_record(payload, &mut pos)?)?;
        }
        return Ok(());
    }
    let mut records = RecordStream::new(codec, payload, MAX_DECOMPRESSED_BYTES)?;
    while let Some(rec) = records.next_record()? {
        f(&rec)?;
    }
    Ok(())
}

/// Calls `f` with the framing of every record of `batch` (offset and
/// timestamp deltas, null key or value), skipping the records' bytes: the
/// memory used does not depend on how large the batch decompresses.
/// A compressed record over `max_record_bytes` is INVALID_RECORD.
pub fn visit_record_meta<F>(
    header: &RecordBatchHeader,
    batch: &[u8],
    max_record_bytes: u32,
    mut f: F,
) -> Result<(), LogError>
where
    F: FnMut(&RecordMeta) -> Result<(), LogError>,
{
    let payload = &batch[RECORDS_OFFSET.min(batch.len())..];
    let codec = header.compression()?;
    if codec == Compression::None {
        // already in memory: parsed in place, the fast path of produce
        let mut pos = 0;
        while pos < payload.len() {
            let r = parse_record(payload, &mut pos)?;
            f(&RecordMeta {
                offset_delta: r.offset_delta,
                timestamp_delta: r.timestamp_delta,
                key_is_null: r.key.is_none(),
                value_is_null: r.value.is_none(),
            })?;
        }
        return Ok(());
    }
    let mut records = RecordStream::new(codec, payload, max_record_bytes as usize)?;
    while let Some(meta) = records.next_meta()? {
        f(&meta)?;
    }
    Ok(())
}

fn corrupt(msg: &str) -> LogError {
    LogError::CorruptRecord(msg.to_string())
}

/// Reads an unsigned LEB128 value of at most `max_bytes` bytes.
fn read_unsigned_varint(buf: &[u8], pos: &mut usize, max_bytes: usize) -> Result<u64, LogError> {
    let mut value: u64 = 0;
    for i in 0..max_bytes {
        let b = *buf
            .get(*pos)
            .ok_or_else(|| corrupt("varint runs past the end of the record"))?;
        *pos += 1;
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(corrupt("varint is too long"))
}

/// Reads a zigzag-encoded 32-bit varint.
pub fn read_varint(buf: &[u8], pos: &mut usize) -> Result<i32, LogError> {
    let raw = read_unsigned_varint(buf, pos, 5)?;
    if raw > u64::from(u32::MAX) {
        return Err(corrupt("varint overflows 32 bits"));
    }
    let raw = raw as u32;
    Ok(((raw >> 1) as i32) ^ -((raw & 1) as i32))
}

/// Reads a zigzag-encoded 64-bit varint.
pub fn read_varlong(buf: &[u8], pos: &mut usize) -> Result<i64, LogError> {
    let raw = read_unsigned_varint(buf, pos, 10)?;
    Ok(((raw >> 1) as i64) ^ -((raw & 1) as i64))
}

/// Appends a zigzag-encoded 32-bit varint.
pub fn write_varint(out: &mut Vec<u8>, v: i32) {
    write_unsigned_varint(out, u64::from(((v << 1) ^ (v >> 31)) as u32));
}

/// Appends a zigzag-encoded 64-bit varint.
pub fn write_varlong(out: &mut Vec<u8>, v: i64) {
    write_unsigned_varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn write_unsigned_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Reads a varint-length-prefixed byte string; -1 means null.
fn read_nullable_bytes<'a>(
    buf: &'a [u8],
    pos: &mut usize,
    what: &str,
) -> Result<Option<&'a [u8]>, LogError> {
    let len = read_varint(buf, pos)?;
    if len == -1 {
        return Ok(None);
    }
    if len < 0 {
        return Err(LogError::CorruptRecord(format!(
            "{what} has negative length {len}"
        )));
    }
    let len = len as usize;
    let end = pos
        .checked_add(len)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| {
            LogError::CorruptRecord(format!("{what} runs past the end of the record"))
        })?;
    let s = &buf[*pos..end];
    *pos = end;
    Ok(Some(s))
}

/// Parses one record at `*pos`, requiring its fields to fill exactly the
/// length its prefix declares.
pub(crate) fn parse_record<'a>(buf: &'a [u8], pos: &mut usize) -> Result<RecordView<'a>, LogError> {
    let len = read_varint(buf, pos)?;
    if len <= 0 {
        return Err(LogError::CorruptRecord(format!(
            "record length {len} is invalid"
        )));
    }
    let end = pos
        .checked_add(len as usize)
        .filter(|&e| e <= buf.len())
        .ok_or_else(|| corrupt("record runs past the end of the batch"))?;
    let body = &buf[..end];
    let attributes = *body
        .get(*pos)
        .ok_or_else(|| corrupt("record is missing attributes"))? as i8;
    *pos += 1;
    let timestamp_delta = read_varlong(body, pos)?;
    let offset_delta = read_varint(body, pos)?;
    let key = read_nullable_bytes(body, pos, "record key")?;
    let value = read_nullable_bytes(body, pos, "record value")?;
    let header_count = read_varint(body, pos)?;
    if header_count < 0 {
        return Err(LogError::CorruptRecord(format!(
            "record has negative header count {header_count}"
        )));
    }
    let mut headers = Vec::new();
    for _ in 0..header_count {
        let k = read_nullable_bytes(body, pos, "header key")?
            .ok_or_else(|| corrupt("header key is null"))?;
        let v = read_nullable_bytes(body, pos, "header value")?;
        headers.push((k, v));
    }
    if *pos != end {
        return Err(LogError::CorruptRecord(format!(
            "record declares {len} bytes but its fields use {}",
            len as usize - (end - *pos)
        )));
    }
    Ok(RecordView {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    })
}

/// Decompresses a whole batch payload, failing beyond `limit` bytes
/// (for the callers that need it whole; validation streams instead).
pub fn decompress(codec: Compression, data: &[u8], limit: usize) -> Result<Vec<u8>, LogError> {
    crate::record_stream::read_to_end_limited(codec, data, limit)
}

/// Block size of snappy-java's `SnappyOutputStream` (what Kafka writes).
const XERIAL_SNAPPY_BLOCK_SIZE: usize = 32 * 1024;

/// Compresses a batch payload the way Kafka's broker and Java client do:
/// gzip via `GZIPOutputStream`, snappy in snappy-java's xerial stream
/// framing (32 KiB blocks), LZ4 as a frame with 64 KiB independent blocks
/// and no checksums (`KafkaLZ4BlockOutputStream`), zstd as a plain frame.
/// `target` also carries the level; `Producer` leaves `data` as is.
pub fn compress(target: BrokerCompression, data: &[u8]) -> io::Result<Vec<u8>> {
    compress_stream(target, &mut &data[..], data.len() / 2 + 64)
}

/// [`compress`] reading its input as a stream, so recompressing a batch
/// never holds its decompressed records whole; `capacity` is a first guess
/// of the output size.
pub fn compress_stream(
    target: BrokerCompression,
    input: &mut dyn io::Read,
    capacity: usize,
) -> io::Result<Vec<u8>> {
    match target {
        BrokerCompression::Producer | BrokerCompression::Uncompressed => {
            let mut out = Vec::with_capacity(capacity);
            io::copy(input, &mut out)?;
            Ok(out)
        }
        BrokerCompression::Gzip { level } => {
            let level = BrokerCompression::effective_gzip_level(level);
            let mut enc = flate2::write::GzEncoder::new(
                Vec::with_capacity(capacity),
                flate2::Compression::new(level),
            );
            io::copy(input, &mut enc)?;
            enc.finish()
        }
        BrokerCompression::Snappy => {
            let mut out = Vec::with_capacity(capacity);
            out.extend_from_slice(&XERIAL_SNAPPY_MAGIC);
            out.extend_from_slice(&1i32.to_be_bytes());
            out.extend_from_slice(&1i32.to_be_bytes());
            let mut enc = snap::raw::Encoder::new();
            let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_SNAPPY_BLOCK_SIZE)];
            let mut chunk = vec![0u8; XERIAL_SNAPPY_BLOCK_SIZE];
            loop {
                // a whole block unless the input ends
                let mut filled = 0;
                while filled < chunk.len() {
                    match input.read(&mut chunk[filled..])? {
                        0 => break,
                        n => filled += n,
                    }
                }
                if filled == 0 {
                    break;
                }
                let n = enc
                    .compress(&chunk[..filled], &mut block)
                    .map_err(io::Error::other)?;
                out.extend_from_slice(&(n as i32).to_be_bytes());
                out.extend_from_slice(&block[..n]);
            }
            Ok(out)
        }
        BrokerCompression::Lz4 { .. } => {
            let mut info = lz4_flex::frame::FrameInfo::new();
            info.block_size = lz4_flex::frame::BlockSize::Max64KB;
            info.block_mode = lz4_flex::frame::BlockMode::Independent;
            info.block_checksums = false;
            info.content_checksum = false;
            let mut enc =
                lz4_flex::frame::FrameEncoder::with_frame_info(info, Vec::with_capacity(capacity));
            io::copy(input, &mut enc)?;
            enc.finish().map_err(io::Error::other)
        }
        BrokerCompression::Zstd { level } => {
            let mut enc = zstd::stream::write::Encoder::new(
                Vec::with_capacity(capacity),
                BrokerCompression::effective_zstd_level(level),
            )?;
            io::copy(input, &mut enc)?;
            enc.finish()
        }
    }
}

/// Re-encodes one whole, validated batch with `target`'s codec (Kafka's
/// LogValidator rebuilding a batch whose codec differs from the topic's).
///
/// The records are copied byte-for-byte in their encoded form, so offset
/// deltas, timestamps, keys, values and headers are unchanged; so are the
/// header fields and every attribute bit other than the codec. The CRC is
/// recomputed. Returns `None` when nothing needs to change: `target` is
/// `Producer`, the batch already uses the target codec, or it is a control
/// batch (which Kafka never recompresses).
pub fn recompress_batch(
    batch: &[u8],
    target: BrokerCompression,
) -> Result<Option<Vec<u8>>, LogError> {
    let header = RecordBatchHeader::parse(batch)?;
    let size = framed_size(&header, batch.len())?;
    let batch = &batch[..size];
    let Some(codec) = target.codec() else {
        return Ok(None);
    };
    let source = header.compression()?;
    if source == codec || header.is_control() {
        return Ok(None);
    }
    let payload = &batch[RECORDS_OFFSET..];
    // one byte past the bound tells an oversized payload from one that
    // ends exactly at it: never a silently cut batch with a fresh CRC
    let mut records = crate::record_stream::payload_reader(source, payload)?
        .take(MAX_DECOMPRESSED_BYTES as u64 + 1);
    let new_payload = compress_stream(target, &mut records, payload.len()).map_err(|e| {
        LogError::CorruptRecord(format!(
            "records cannot be recompressed from {source:?} to {codec:?}: {e}"
        ))
    })?;
    if records.limit() == 0 {
        return Err(LogError::CorruptRecord(format!(
            "batch decompresses to more than {MAX_DECOMPRESSED_BYTES} bytes"
        )));
    }
    let batch_length =
        i32::try_from(BATCH_OVERHEAD - LOG_OVERHEAD + new_payload.len()).map_err(|_| {
            LogError::CorruptRecord(format!(
                "batch grows to {} bytes when compressed with {codec:?}",
                new_payload.len()
            ))
        })?;
    let mut out = Vec::with_capacity(BATCH_OVERHEAD + new_payload.len());
    out.extend_from_slice(&batch[..RECORDS_OFFSET]);
    out.extend_from_slice(&new_payload);
    out[BATCH_LENGTH_OFFSET..BATCH_LENGTH_OFFSET + 4].copy_from_slice(&batch_length.to_be_bytes());
    let attributes = (header.attributes & !COMPRESSION_CODEC_MASK) | i16::from(codec.id());
    out[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
    out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
    Ok(Some(out))
}

/// Writes `base_offset` into a batch in place.
pub fn set_base_offset(batch: &mut [u8], base_offset: i64) {
    batch[BASE_OFFSET_OFFSET..BASE_OFFSET_OFFSET + 8].copy_from_slice(&base_offset.to_be_bytes());
}

/// Writes `partitionLeaderEpoch` into a batch in place (it is outside the CRC).
pub fn set_partition_leader_epoch(batch: &mut [u8], epoch: i32) {
    batch[PARTITION_LEADER_EPOCH_OFFSET..PARTITION_LEADER_EPOCH_OFFSET + 4]
        .copy_from_slice(&epoch.to_be_bytes());
}

/// Sets the timestamp type bit and `maxTimestamp`, then recomputes the CRC,
/// as Kafka does when it overrides producer timestamps.
pub fn set_max_timestamp(batch: &mut [u8], timestamp_type: TimestampType, max_timestamp: i64) {
    let mut attributes = be_i16(batch, ATTRIBUTES_OFFSET);
    match timestamp_type {
        TimestampType::LogAppendTime => attributes |= TIMESTAMP_TYPE_MASK,
        TimestampType::CreateTime => attributes &= !TIMESTAMP_TYPE_MASK,
    }
    batch[ATTRIBUTES_OFFSET..ATTRIBUTES_OFFSET + 2].copy_from_slice(&attributes.to_be_bytes());
    batch[MAX_TIMESTAMP_OFFSET..MAX_TIMESTAMP_OFFSET + 8]
        .copy_from_slice(&max_timestamp.to_be_bytes());
    let crc = crc32c::crc32c(&batch[ATTRIBUTES_OFFSET..]);
    batch[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varint_round_trip() {
        for v in [0, 1, -1, 63, -64, 64, i32::MAX, i32::MIN, 300, -300] {
            let mut out = Vec::new();
            write_varint(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varint(&out, &mut pos).ok(), Some(v));
            assert_eq!(pos, out.len());
        }
        for v in [0, 1, -1, i64::MAX, i64::MIN, 1 << 40] {
            let mut out = Vec::new();
            write_varlong(&mut out, v);
            let mut pos = 0;
            assert_eq!(read_varlong(&out, &mut pos).ok(), Some(v));
            assert_eq!(pos, out.len());
        }
    }

    #[test]
    fn varint_rejects_overlong_and_truncated() {
        let mut pos = 0;
        assert!(read_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varint(&[0xff, 0xff, 0xff, 0xff, 0x7f], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varint(&[0x80], &mut pos).is_err());
        let mut pos = 0;
        assert!(read_varlong(&[0x80; 11], &mut pos).is_err());
    }

    #[test]
    fn header_too_short_is_corrupt() {
        assert!(matches!(
            RecordBatchHeader::parse(&[0u8; 60]),
            Err(LogError::CorruptRecord(_))
        ));
    }
}
