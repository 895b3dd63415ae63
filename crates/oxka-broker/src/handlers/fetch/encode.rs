//! The Fetch response frame with record batches left in their segment
//! files: encoded bytes for everything the codec writes, file regions for
//! the records, spliced into the right places with the right lengths.
//!
//! The codec owns the layout of every Fetch version (4-18: nullable bytes
//! with an `i32` length before v12, compact nullable bytes with an unsigned
//! varint of length + 1 from v12, tagged fields after the records). Rather
//! than restate that layout here, the frame is encoded twice with the
//! file-backed records fields set to null and then to empty: a nullable
//! length prefix has the same width for both (`ff ff ff ff` / `00 00 00 00`,
//! `00` / `01`) and nothing else in the message depends on it, so the two
//! encodings differ exactly at those prefixes, in encoding order (topics,
//! then partitions, as in the response's arrays). Each prefix is then
//! replaced by the region's real length and followed by the region. Both
//! encodings hold no record bytes, so this costs two encodings of a few
//! hundred bytes per fetch. Should the two ever not line up that way, the
//! response falls back to the copying encoding, which is always correct.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse};
use oxka_log::FileRegion;

use crate::network::{Response, ResponseChunk};
use crate::request::encode_response;

/// First Fetch version with flexible (compact, tagged) encoding.
const FIRST_FLEXIBLE_VERSION: i16 = 12;

/// A Fetch response whose record batches may still be in segment files.
#[derive(Clone, Debug, Default)]
pub struct FetchReply {
    /// Every field of the response; the records of the partitions in
    /// `files` are ignored (the regions replace them).
    response: FetchResponse,
    /// File-backed records, in the order of the response's arrays.
    files: Vec<FileRecords>,
}

#[derive(Clone, Debug)]
struct FileRecords {
    topic: usize,
    partition: usize,
    region: FileRegion,
}

/// Why a Fetch response could not be encoded.
#[derive(Debug, thiserror::Error)]
pub enum FetchEncodeError {
    #[error("cannot encode the Fetch response: {0}")]
    Codec(#[from] anyhow::Error),
    #[error("the Fetch response of {0} bytes exceeds the 2 GiB frame limit")]
    TooLarge(u64),
    #[error("cannot read records from the segment file: {0}")]
    Io(#[from] std::io::Error),
}

/// Why the zero-copy encoding was not produced.
#[derive(Debug, thiserror::Error)]
enum SpliceError {
    /// The two encodings did not line up as the module docs describe: a
    /// codec change this module does not know; the copying path still works.
    #[error("records fields not found in the encoded Fetch response: {0}")]
    Mismatch(String),
    #[error(transparent)]
    Encode(#[from] FetchEncodeError),
}

impl From<FetchResponse> for FetchReply {
    fn from(response: FetchResponse) -> FetchReply {
        FetchReply {
            response,
            files: Vec::new(),
        }
    }
}

impl FetchReply {
    /// Makes `region` the records of partition `partition` of topic
    /// `topic` (indexes into the response's arrays). Returns false, and
    /// changes nothing, when the response has no such partition. A later
    /// call for the same partition wins (settled in `encode`, so that a
    /// fetch of many partitions costs no scan per partition).
    pub fn set_file_records(&mut self, topic: usize, partition: usize, region: FileRegion) -> bool {
        if records_field(&mut self.response, topic, partition).is_none() {
            return false;
        }
        self.files.push(FileRecords {
            topic,
            partition,
            region,
        });
        true
    }

    /// The response frame, size prefix and header included, record bytes
    /// left in their files (copied only if the splice fails, see the module
    /// docs).
    pub fn encode(
        mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<Response, FetchEncodeError> {
        self.files.retain(|f| !f.region.is_empty());
        if self.files.is_empty() {
            return Ok(
                encode_response(ApiKey::Fetch, version, correlation_id, &self.response)?.into(),
            );
        }
        // newest first, a stable sort, then the first of each partition
        self.files.reverse();
        self.files.sort_by_key(|f| (f.topic, f.partition));
        self.files.dedup_by_key(|f| (f.topic, f.partition));
        match self.splice(version, correlation_id) {
            Ok(resp) => Ok(resp),
            Err(SpliceError::Encode(e)) => Err(e),
            Err(e @ SpliceError::Mismatch(_)) => {
                tracing::warn!(error = %e, version, "copying fetched records instead");
                self.encode_copying(version, correlation_id)
            }
        }
    }

    /// The response with the records read into memory and encoded by the
    /// codec: the fallback, and the reference the tests compare with.
    pub fn encode_copying(
        mut self,
        version: i16,
        correlation_id: i32,
    ) -> Result<Response, FetchEncodeError> {
        for f in std::mem::take(&mut self.files) {
            let bytes = f.region.to_bytes()?;
            // `set_file_records` checked the indexes
            if let Some(records) = records_field(&mut self.response, f.topic, f.partition) {
                *records = Some(bytes);
            }
        }
        Ok(encode_response(ApiKey::Fetch, version, correlation_id, &self.response)?.into())
    }

    fn set_file_records_to(&mut self, value: &Option<Bytes>) {
        for f in &self.files {
            if let Some(records) = records_field(&mut self.response, f.topic, f.partition) {
                records.clone_from(value);
            }
        }
    }

    fn splice(&mut self, version: i16, correlation_id: i32) -> Result<Response, SpliceError> {
        let encode = |resp: &FetchResponse| {
            encode_response(ApiKey::Fetch, version, correlation_id, resp)
                .map_err(|e| SpliceError::Encode(e.into()))
        };
        self.set_file_records_to(&None);
        let null = encode(&self.response)?;
        self.set_file_records_to(&Some(Bytes::new()));
        let empty = encode(&self.response)?;
        let flexible = version >= FIRST_FLEXIBLE_VERSION;
        let sites = records_sites(&null, &empty, flexible)?;
        if sites.len() != self.files.len() {
            return Err(SpliceError::Mismatch(format!(
                "{} records fields for {} file regions",
                sites.len(),
                self.files.len()
            )));
        }
        let width = if flexible { 1 } else { 4 };
        let mut frame_len = empty.len() as u64;
        for f in &self.files {
            frame_len += (f.region.len() + prefix_len(f.region.len(), flexible)? - width) as u64;
        }
        let size =
            i32::try_from(frame_len - 4).map_err(|_| FetchEncodeError::TooLarge(frame_len))?;
        let mut chunks = Vec::with_capacity(2 * self.files.len() + 1);
        let mut head = BytesMut::with_capacity(empty.len() + 5 * self.files.len());
        head.put_i32(size);
        let mut cursor = 4;
        for (&site, f) in sites.iter().zip(&self.files) {
            head.extend_from_slice(&empty[cursor..site]);
            put_prefix(&mut head, f.region.len(), flexible)?;
            chunks.push(ResponseChunk::Bytes(head.split().freeze()));
            chunks.push(ResponseChunk::File(f.region.clone()));
            cursor = site + width;
        }
        head.extend_from_slice(&empty[cursor..]);
        chunks.push(ResponseChunk::Bytes(head.freeze()));
        Ok(Response::from_chunks(chunks))
    }
}

/// The records field of one partition of the response, if it has it.
fn records_field(
    response: &mut FetchResponse,
    topic: usize,
    partition: usize,
) -> Option<&mut Option<Bytes>> {
    response
        .responses
        .get_mut(topic)?
        .partitions
        .get_mut(partition)
        .map(|p| &mut p.records)
}

/// Positions (in the frame) of the length prefixes that differ between the
/// encoding with null records and the one with empty records.
fn records_sites(null: &[u8], empty: &[u8], flexible: bool) -> Result<Vec<usize>, SpliceError> {
    const NULL_BYTES: &[u8] = &[0xff; 4];
    const EMPTY_BYTES: &[u8] = &[0; 4];
    const NULL_COMPACT: &[u8] = &[0];
    const EMPTY_COMPACT: &[u8] = &[1];
    let (null_prefix, empty_prefix) = if flexible {
        (NULL_COMPACT, EMPTY_COMPACT)
    } else {
        (NULL_BYTES, EMPTY_BYTES)
    };
    if null.len() != empty.len() {
        return Err(SpliceError::Mismatch(format!(
            "encodings of {} and {} bytes",
            null.len(),
            empty.len()
        )));
    }
    let width = null_prefix.len();
    let mut sites = Vec::new();
    let mut from = 0;
    while let Some(d) = null[from..]
        .iter()
        .zip(&empty[from..])
        .position(|(a, b)| a != b)
    {
        let at = from + d;
        let end = at + width;
        if null.get(at..end) != Some(null_prefix) || empty.get(at..end) != Some(empty_prefix) {
            return Err(SpliceError::Mismatch(format!(
                "unexpected difference at byte {at}"
            )));
        }
        sites.push(at);
        from = end;
    }
    Ok(sites)
}

/// Width of the records length prefix for `len` bytes.
fn prefix_len(len: usize, flexible: bool) -> Result<usize, FetchEncodeError> {
    if !flexible {
        return Ok(4);
    }
    let mut n = compact_len(len)?;
    let mut width = 1;
    while n >= 0x80 {
        n >>= 7;
        width += 1;
    }
    Ok(width)
}

/// Writes the records length prefix for `len` bytes: `i32` before v12,
/// from v12 an unsigned varint (7 bits a byte, low bits first, high bit
/// set on all but the last) of `len + 1`, 0 being null.
fn put_prefix(buf: &mut BytesMut, len: usize, flexible: bool) -> Result<(), FetchEncodeError> {
    if flexible {
        let mut n = compact_len(len)?;
        while n >= 0x80 {
            buf.put_u8((n as u8 & 0x7f) | 0x80);
            n >>= 7;
        }
        buf.put_u8(n as u8);
    } else {
        let n = i32::try_from(len).map_err(|_| FetchEncodeError::TooLarge(len as u64))?;
        buf.put_i32(n);
    }
    Ok(())
}

fn compact_len(len: usize) -> Result<u32, FetchEncodeError> {
    u32::try_from(len)
        .ok()
        .and_then(|n| n.checked_add(1))
        .ok_or(FetchEncodeError::TooLarge(len as u64))
}

#[cfg(test)]
mod tests {
    use bytes::Buf;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, EpochEndOffset, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
        PartitionData,
    };
    use kafka_protocol::messages::{BrokerId, ProducerId, ResponseHeader, TopicName};
    use kafka_protocol::protocol::{Decodable, StrBytes};
    use oxka_log::builder::{simple_batch, RecordBatchBuilder};
    use oxka_log::{Log, LogConfig, TopicPartition};
    use uuid::Uuid;

    use super::*;

    const VERSIONS: std::ops::RangeInclusive<i16> = 4..=18;

    fn open_log(dir: &std::path::Path) -> Log {
        // room for the 2 MiB batch of the varint test
        let config = LogConfig {
            max_message_bytes: 4 << 20,
            ..LogConfig::default()
        };
        Log::open(dir, TopicPartition::new("t", 0), config, 0, 0, 0)
            .unwrap_or_else(|e| panic!("open log: {e}"))
    }

    fn append(log: &mut Log, mut batch: BytesMut) {
        log.append_as_leader(&mut batch, 0, 1_000)
            .unwrap_or_else(|e| panic!("append: {e}"));
    }

    fn region(log: &Log, from: i64, max_bytes: usize) -> FileRegion {
        log.read_region(from, max_bytes, i64::MAX, true)
            .unwrap_or_else(|e| panic!("read: {e}"))
            .records
            .unwrap_or_else(|| panic!("nothing read at {from}"))
    }

    /// A batch of exactly `len` bytes: one large record, and a small second
    /// one where varint widths make a length unreachable with one.
    fn batch_of_size(len: usize) -> BytesMut {
        for value in len.saturating_sub(100)..len {
            for second in [None, Some(0), Some(1), Some(2)] {
                let mut b = RecordBatchBuilder::new().record(None, Some(&vec![b'v'; value]), 1_000);
                if let Some(n) = second {
                    b = b.record(None, Some(&vec![b'w'; n]), 1_000);
                }
                let b = b.build();
                if b.len() == len {
                    return b;
                }
            }
        }
        panic!("no batch of {len} bytes")
    }

    fn topic(version: i16, name: &str, partitions: Vec<PartitionData>) -> FetchableTopicResponse {
        let t = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= 13 {
            t.with_topic_id(Uuid::from_u128(name.len() as u128 + 1))
        } else {
            t.with_topic(TopicName(StrBytes::from_string(name.to_string())))
        }
    }

    fn partition(version: i16, index: i32) -> PartitionData {
        let p = PartitionData::default()
            .with_partition_index(index)
            .with_high_watermark(1_000 + i64::from(index))
            .with_last_stable_offset(900)
            .with_log_start_offset(3)
            .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                .with_producer_id(ProducerId(77))
                .with_first_offset(5)]))
            .with_records(Some(Bytes::new()));
        if version >= 11 {
            p.with_preferred_read_replica(BrokerId(-1))
        } else {
            p
        }
    }

    /// Three topics: file-backed records first, between and after in-memory
    /// ones, an error partition, null aborted transactions, and (where the
    /// version has them) tagged fields after the records and at the end.
    fn sample(version: i16, regions: &[FileRegion; 3]) -> FetchReply {
        let mut with_tags = partition(version, 2);
        if version >= 12 {
            with_tags = with_tags
                .with_diverging_epoch(EpochEndOffset::default().with_epoch(4).with_end_offset(40))
                .with_current_leader(
                    LeaderIdAndEpoch::default()
                        .with_leader_id(BrokerId(1))
                        .with_leader_epoch(9),
                );
        }
        let mut response =
            FetchResponse::default()
                .with_throttle_time_ms(0)
                .with_session_id(0)
                .with_responses(vec![
                    topic(
                        version,
                        "alpha",
                        vec![
                            partition(version, 0),
                            partition(version, 1)
                                .with_error_code(1)
                                .with_aborted_transactions(None),
                            with_tags,
                        ],
                    ),
                    topic(
                        version,
                        "beta",
                        vec![partition(version, 0)
                            .with_records(Some(Bytes::from_static(b"in memory")))],
                    ),
                    topic(version, "gamma", vec![partition(version, 0)]),
                ]);
        if version >= 16 {
            response = response.with_node_endpoints(vec![NodeEndpoint::default()
                .with_node_id(BrokerId(1))
                .with_host(StrBytes::from_static_str("localhost"))
                .with_port(9092)]);
        }
        let mut reply = FetchReply::from(response);
        assert!(reply.set_file_records(0, 0, regions[0].clone()));
        assert!(reply.set_file_records(0, 2, regions[1].clone()));
        assert!(reply.set_file_records(2, 0, regions[2].clone()));
        assert!(!reply.set_file_records(1, 1, regions[2].clone()));
        assert!(!reply.set_file_records(3, 0, regions[2].clone()));
        reply
    }

    /// Checks the frame's size prefix, decodes it with the codec and
    /// returns the response.
    fn decode(frame: &Bytes, version: i16) -> FetchResponse {
        let mut b = frame.clone();
        assert_eq!(b.get_i32() as usize, frame.len() - 4, "size prefix");
        let header = ResponseHeader::decode(&mut b, ApiKey::Fetch.response_header_version(version))
            .unwrap_or_else(|e| panic!("v{version} header: {e}"));
        assert_eq!(header.correlation_id, 7);
        let resp = FetchResponse::decode(&mut b, version)
            .unwrap_or_else(|e| panic!("v{version} body: {e}"));
        assert!(b.is_empty(), "v{version}: {} bytes after the body", b.len());
        resp
    }

    fn file_chunks(resp: &Response) -> Vec<usize> {
        resp.chunks()
            .iter()
            .filter_map(|c| match c {
                ResponseChunk::File(r) => Some(r.len()),
                ResponseChunk::Bytes(_) => None,
            })
            .collect()
    }

    /// Both encodings of `reply`, as bytes; asserts the zero-copy one kept
    /// the records in files.
    fn both(reply: &FetchReply, version: i16) -> (Bytes, Bytes) {
        let spliced = reply
            .clone()
            .encode(version, 7)
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        let files: Vec<usize> = reply.files.iter().map(|f| f.region.len()).collect();
        assert_eq!(
            file_chunks(&spliced),
            files,
            "v{version}: records left in files"
        );
        let spliced = spliced.to_bytes().unwrap_or_else(|e| panic!("read: {e}"));
        let copied = reply
            .clone()
            .encode_copying(version, 7)
            .and_then(|r| Ok(r.to_bytes()?))
            .unwrap_or_else(|e| panic!("v{version}: {e}"));
        (spliced, copied)
    }

    #[test]
    fn splice_equals_the_copying_encoding_for_every_version() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut log = open_log(dir.path());
        for n in [1, 3, 2, 5] {
            append(&mut log, simple_batch(n, 300, 1_000));
        }
        let regions = [
            region(&log, 0, 1 << 20),
            region(&log, 1, 1),
            region(&log, 4, 1 << 20),
        ];
        for version in VERSIONS {
            let reply = sample(version, &regions);
            let (spliced, copied) = both(&reply, version);
            assert!(
                spliced == copied,
                "v{version}: spliced and copied frames differ"
            );
            let decoded = decode(&spliced, version);
            for (t, p, r) in [(0, 0, 0), (0, 2, 1), (2, 0, 2)] {
                let want = regions[r].to_bytes().unwrap_or_else(|e| panic!("{e}"));
                let got = decoded.responses[t].partitions[p].records.as_ref();
                assert!(got == Some(&want), "v{version}: records of {t}/{p}");
            }
            let in_memory = decoded.responses[1].partitions[0].records.as_ref();
            assert_eq!(in_memory, Some(&Bytes::from_static(b"in memory")));
            assert_eq!(
                decoded.responses[0].partitions[1].records,
                Some(Bytes::new())
            );
        }
    }

    /// The records length prefix changes width at varint boundaries (v12+:
    /// length + 1 needing 1, 2, 3 or 4 bytes) and the frame length must
    /// follow.
    #[test]
    fn length_prefixes_at_varint_boundaries() {
        for len in [126, 127, 128, 16_382, 16_383, 16_384, 2_097_150, 2_097_151] {
            let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
            let mut log = open_log(dir.path());
            append(&mut log, batch_of_size(len));
            let r = region(&log, 0, usize::MAX);
            assert_eq!(r.len(), len);
            for version in [4, 11, 12, 16, 18] {
                let reply = sample(version, &[r.clone(), r.clone(), r.clone()]);
                let (spliced, copied) = both(&reply, version);
                assert!(spliced == copied, "v{version}, {len} bytes");
                decode(&spliced, version);
            }
        }
    }

    #[test]
    fn without_file_records_the_frame_is_one_buffer() {
        for version in VERSIONS {
            let reply = FetchReply::from(FetchResponse::default().with_responses(vec![topic(
                version,
                "t",
                vec![partition(version, 0)],
            )]));
            let resp = reply.encode(version, 7).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(resp.chunks().len(), 1);
            decode(&resp.to_bytes().unwrap_or_else(|e| panic!("{e}")), version);
        }
    }

    #[test]
    fn a_later_region_for_the_same_partition_replaces_the_earlier() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let mut log = open_log(dir.path());
        append(&mut log, simple_batch(2, 100, 1_000));
        append(&mut log, simple_batch(2, 100, 1_000));
        let all = region(&log, 0, 1 << 20);
        let second = region(&log, 2, 1 << 20);
        let mut reply = FetchReply::from(FetchResponse::default().with_responses(vec![topic(
            4,
            "t",
            vec![partition(4, 0)],
        )]));
        assert!(reply.set_file_records(0, 0, all));
        assert!(reply.set_file_records(0, 0, second.clone()));
        let decoded = decode(
            &reply
                .encode(4, 7)
                .and_then(|r| Ok(r.to_bytes()?))
                .unwrap_or_else(|e| panic!("{e}")),
            4,
        );
        assert_eq!(
            decoded.responses[0].partitions[0].records,
            Some(second.to_bytes().unwrap_or_else(|e| panic!("{e}")))
        );
    }

    #[test]
    fn sites_are_found_only_where_a_prefix_can_be() {
        // non-flexible: four bytes ff -> 00
        let null = [9, 0xff, 0xff, 0xff, 0xff, 9, 0xff, 0xff, 0xff, 0xff];
        let empty = [9, 0, 0, 0, 0, 9, 0, 0, 0, 0];
        assert_eq!(records_sites(&null, &empty, false).ok(), Some(vec![1, 6]));
        // flexible: one byte 00 -> 01
        assert_eq!(
            records_sites(&[5, 0, 5, 0], &[5, 1, 5, 1], true).ok(),
            Some(vec![1, 3])
        );
        // anything else is a mismatch, never a guess
        assert!(records_sites(&[1, 2], &[1, 3], true).is_err());
        assert!(records_sites(&[0xff, 0xff, 0xff, 0], &[0, 0, 0, 0], false).is_err());
        assert!(records_sites(&[0, 0], &[0], true).is_err());
        assert!(records_sites(&[0, 0xff, 0xff], &[0, 0, 0], false).is_err());
    }
}
