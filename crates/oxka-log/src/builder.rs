//! Encodes v2 record batches the way producers do.
//!
//! The broker itself never encodes records; this exists so tests (of this
//! crate and of the broker) can produce byte-exact batches, including
//! compressed ones, without a Kafka client.

use std::io;

use bytes::BytesMut;

use crate::config::{BrokerCompression, TimestampType};
use crate::record_batch::{
    compress, write_varint, write_varlong, Compression, ATTRIBUTES_OFFSET, BATCH_OVERHEAD,
    CONTROL_FLAG_MASK, CRC_OFFSET, LOG_OVERHEAD, MAGIC_V2, TIMESTAMP_TYPE_MASK,
    TRANSACTIONAL_FLAG_MASK,
};

/// One record to encode.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BuilderRecord {
    /// Key; `None` is a null key.
    pub key: Option<Vec<u8>>,
    /// Value; `None` is a null value.
    pub value: Option<Vec<u8>>,
    /// Headers.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// Absolute timestamp.
    pub timestamp: i64,
}

/// Builds one v2 record batch.
#[derive(Clone, Debug)]
pub struct RecordBatchBuilder {
    base_offset: i64,
    partition_leader_epoch: i32,
    compression: Compression,
    raw_snappy: bool,
    timestamp_type: TimestampType,
    transactional: bool,
    control: bool,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    records: Vec<BuilderRecord>,
}

impl Default for RecordBatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RecordBatchBuilder {
    /// An uncompressed, non-idempotent batch at base offset 0, as a
    /// producer would send it.
    pub fn new() -> Self {
        RecordBatchBuilder {
            base_offset: 0,
            partition_leader_epoch: -1,
            compression: Compression::None,
            raw_snappy: false,
            timestamp_type: TimestampType::CreateTime,
            transactional: false,
            control: false,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            records: Vec::new(),
        }
    }

    /// Sets the codec.
    pub fn compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Encodes snappy as one raw block (librdkafka style) instead of the
    /// xerial stream the Java client writes.
    pub fn raw_snappy(mut self, raw: bool) -> Self {
        self.raw_snappy = raw;
        self
    }

    /// Sets the base offset.
    pub fn base_offset(mut self, base_offset: i64) -> Self {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch.
    pub fn partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Sets the timestamp type bit.
    pub fn timestamp_type(mut self, timestamp_type: TimestampType) -> Self {
        self.timestamp_type = timestamp_type;
        self
    }

    /// Sets the transactional bit.
    pub fn transactional(mut self, transactional: bool) -> Self {
        self.transactional = transactional;
        self
    }

    /// Sets the control bit.
    pub fn control(mut self, control: bool) -> Self {
        self.control = control;
        self
    }

    /// Sets the idempotent producer fields.
    pub fn producer(mut self, producer_id: i64, producer_epoch: i16, base_sequence: i32) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Adds a record without headers.
    pub fn record(self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) -> Self {
        self.record_with_headers(key, value, &[], timestamp)
    }

    /// Adds a record with headers.
    pub fn record_with_headers(
        mut self,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[(&str, Option<&[u8]>)],
        timestamp: i64,
    ) -> Self {
        self.push(BuilderRecord {
            key: key.map(<[u8]>::to_vec),
            value: value.map(<[u8]>::to_vec),
            headers: headers
                .iter()
                .map(|(k, v)| ((*k).to_string(), v.map(<[u8]>::to_vec)))
                .collect(),
            timestamp,
        });
        self
    }

    /// Adds a record (for loops, where the by-value methods are awkward).
    pub fn push(&mut self, record: BuilderRecord) {
        self.records.push(record);
    }

    /// Number of records added so far.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// Whether no record was added.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Encodes the batch.
    ///
    /// # Panics
    ///
    /// Only if an in-memory compressor fails, which none of the codecs do
    /// when writing into a `Vec`.
    pub fn build(&self) -> BytesMut {
        match self.try_build() {
            Ok(b) => BytesMut::from(&b[..]),
            Err(e) => panic!("in-memory compression failed: {e}"),
        }
    }

    /// Encodes the batch, reporting compressor failures.
    pub fn try_build(&self) -> io::Result<Vec<u8>> {
        let first_ts = self.records.first().map_or(-1, |r| r.timestamp);
        let max_ts = self.records.iter().map(|r| r.timestamp).max().unwrap_or(-1);
        let mut body = Vec::new();
        for (i, r) in self.records.iter().enumerate() {
            encode_record(&mut body, r, i as i32, r.timestamp.wrapping_sub(first_ts));
        }
        let payload = self.compress(&body)?;
        Ok(self.wrap(&payload, self.records.len() as i32, first_ts, max_ts))
    }

    /// A batch around an already encoded (and compressed) `payload`.
    fn wrap(&self, payload: &[u8], count: i32, first_ts: i64, max_ts: i64) -> Vec<u8> {
        let mut attributes = i16::from(self.compression.id());
        if self.timestamp_type == TimestampType::LogAppendTime {
            attributes |= TIMESTAMP_TYPE_MASK;
        }
        if self.transactional {
            attributes |= TRANSACTIONAL_FLAG_MASK;
        }
        if self.control {
            attributes |= CONTROL_FLAG_MASK;
        }
        let mut out = Vec::with_capacity(BATCH_OVERHEAD + payload.len());
        out.extend_from_slice(&self.base_offset.to_be_bytes());
        let batch_length = (BATCH_OVERHEAD - LOG_OVERHEAD + payload.len()) as i32;
        out.extend_from_slice(&batch_length.to_be_bytes());
        out.extend_from_slice(&self.partition_leader_epoch.to_be_bytes());
        out.push(MAGIC_V2 as u8);
        out.extend_from_slice(&[0; 4]);
        out.extend_from_slice(&attributes.to_be_bytes());
        out.extend_from_slice(&(count - 1).max(0).to_be_bytes());
        out.extend_from_slice(&first_ts.to_be_bytes());
        out.extend_from_slice(&max_ts.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.base_sequence.to_be_bytes());
        out.extend_from_slice(&count.to_be_bytes());
        out.extend_from_slice(payload);
        let crc = crc32c::crc32c(&out[ATTRIBUTES_OFFSET..]);
        out[CRC_OFFSET..CRC_OFFSET + 4].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// A gzip batch of one keyed record whose value is `value_len` zero
    /// bytes, compressed as a stream (the value is never held): a
    /// decompression bomb for tests and the memory benchmark (a few hundred
    /// KiB for hundreds of MiB).
    pub fn gzip_zeros_batch(value_len: usize, timestamp: i64) -> Vec<u8> {
        let mut head = Vec::new();
        head.push(0u8);
        write_varlong(&mut head, 0);
        write_varint(&mut head, 0);
        write_nullable(&mut head, Some(b"k"));
        write_varint(&mut head, value_len as i32);
        let mut record = Vec::new();
        write_varint(&mut record, (head.len() + value_len + 1) as i32);
        record.extend_from_slice(&head);
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        let zeros = vec![0u8; 1 << 20];
        let mut left = value_len;
        let write = |enc: &mut flate2::write::GzEncoder<Vec<u8>>, b: &[u8]| {
            io::Write::write_all(enc, b).unwrap_or_else(|e| panic!("in-memory gzip: {e}"))
        };
        write(&mut enc, &record);
        while left > 0 {
            let n = left.min(zeros.len());
            write(&mut enc, &zeros[..n]);
            left -= n;
        }
        write(&mut enc, &[0]); // no headers
        let payload = enc
            .finish()
            .unwrap_or_else(|e| panic!("in-memory gzip: {e}"));
        RecordBatchBuilder::new()
            .compression(Compression::Gzip)
            .wrap(&payload, 1, timestamp, timestamp)
    }

    fn compress(&self, body: &[u8]) -> io::Result<Vec<u8>> {
        let target = match self.compression {
            Compression::None => return Ok(body.to_vec()),
            Compression::Snappy if self.raw_snappy => {
                return snap::raw::Encoder::new()
                    .compress_vec(body)
                    .map_err(io::Error::other)
            }
            Compression::Gzip => BrokerCompression::Gzip {
                level: BrokerCompression::GZIP_DEFAULT_LEVEL,
            },
            Compression::Snappy => BrokerCompression::Snappy,
            Compression::Lz4 => BrokerCompression::Lz4 {
                level: BrokerCompression::LZ4_DEFAULT_LEVEL,
            },
            Compression::Zstd => BrokerCompression::Zstd {
                level: BrokerCompression::ZSTD_DEFAULT_LEVEL,
            },
        };
        compress(target, body)
    }
}

fn encode_record(out: &mut Vec<u8>, r: &BuilderRecord, offset_delta: i32, timestamp_delta: i64) {
    let mut body = Vec::new();
    body.push(0u8);
    write_varlong(&mut body, timestamp_delta);
    write_varint(&mut body, offset_delta);
    write_nullable(&mut body, r.key.as_deref());
    write_nullable(&mut body, r.value.as_deref());
    write_varint(&mut body, r.headers.len() as i32);
    for (k, v) in &r.headers {
        write_nullable(&mut body, Some(k.as_bytes()));
        write_nullable(&mut body, v.as_deref());
    }
    write_varint(out, body.len() as i32);
    out.extend_from_slice(&body);
}

fn write_nullable(out: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => write_varint(out, -1),
        Some(b) => {
            write_varint(out, b.len() as i32);
            out.extend_from_slice(b);
        }
    }
}

/// A batch of `n` records with `value_size`-byte values, all at `timestamp`;
/// the common case in tests.
pub fn simple_batch(n: usize, value_size: usize, timestamp: i64) -> BytesMut {
    let mut b = RecordBatchBuilder::new();
    for i in 0..n {
        b.push(BuilderRecord {
            key: Some(format!("k{i}").into_bytes()),
            value: Some(vec![(i % 251) as u8; value_size]),
            headers: Vec::new(),
            timestamp,
        });
    }
    b.build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::{decode_records, validate_batches, RecordBatchHeader};

    #[test]
    fn every_codec_round_trips() {
        let codecs = [
            (Compression::None, false),
            (Compression::Gzip, false),
            (Compression::Snappy, false),
            (Compression::Snappy, true),
            (Compression::Lz4, false),
            (Compression::Zstd, false),
        ];
        for (codec, raw) in codecs {
            let batch = RecordBatchBuilder::new()
                .compression(codec)
                .raw_snappy(raw)
                .record(Some(b"k1"), Some(b"v1"), 1000)
                .record_with_headers(None, None, &[("h", Some(b"x")), ("n", None)], 1005)
                .record(Some(b""), Some(&[7u8; 5000]), 999)
                .build();
            let headers = validate_batches(&batch).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(headers.len(), 1);
            assert_eq!(headers[0].compression().ok(), Some(codec));
            assert_eq!(headers[0].records_count, 3);
            assert_eq!(headers[0].max_timestamp, 1005);
            let recs = decode_records(&batch).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
            assert_eq!(recs.len(), 3);
            assert_eq!(recs[0].key.as_deref(), Some(&b"k1"[..]));
            assert_eq!(recs[1].offset, 1);
            assert_eq!(recs[1].timestamp, 1005);
            assert_eq!(recs[1].key, None);
            assert_eq!(recs[1].headers.len(), 2);
            assert_eq!(recs[1].headers[1], (b"n".to_vec(), None));
            assert_eq!(recs[2].value.as_ref().map(Vec::len), Some(5000));
            assert_eq!(recs[2].timestamp, 999);
        }
    }

    #[test]
    fn header_fields_are_encoded() {
        let batch = RecordBatchBuilder::new()
            .base_offset(42)
            .producer(7, 3, 11)
            .transactional(true)
            .record(None, Some(b"v"), 5)
            .build();
        let h = RecordBatchHeader::parse(&batch).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(h.base_offset, 42);
        assert_eq!(h.producer_id, 7);
        assert_eq!(h.producer_epoch, 3);
        assert_eq!(h.base_sequence, 11);
        assert!(h.is_transactional());
        assert!(!h.is_control());
        assert_eq!(h.total_size(), Some(batch.len()));
    }
}
