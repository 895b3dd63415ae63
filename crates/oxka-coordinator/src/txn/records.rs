//! Records of `__transaction_state` in Kafka's schemas, so the topic's
//! contents are what Kafka's tools expect: key = version (0) +
//! TransactionLogKey v0 (the transactional id); value = version +
//! TransactionLogValue. A null value is a tombstone (an expired
//! transactional id).
//!
//! Values are written as the flexible v1, which Kafka writes once
//! `transaction.version` 2 is finalized (as it is here): its tagged fields
//! carry what transaction version 2 needs after a restart (the producer id
//! before a rollover, the id the next completion rolls over to, the
//! client's transaction version). v0 values (older oxka data) are read too.

use super::state::TxnState;

/// A decoding failure: the record is skipped on load.
#[derive(Debug, thiserror::Error)]
#[error("malformed transaction log record: {0}")]
pub struct RecordError(pub String);

/// Tag of `PreviousProducerId` in TransactionLogValue v1.
const TAG_PREVIOUS_PRODUCER_ID: u64 = 0;
/// Tag of `NextProducerId`.
const TAG_NEXT_PRODUCER_ID: u64 = 1;
/// Tag of `ClientTransactionVersion`.
const TAG_CLIENT_TRANSACTION_VERSION: u64 = 2;

/// The value of one transactional id's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    /// The producer id before the last transition (-1: none); lets a
    /// retried EndTxn be recognised after the id rolled over.
    pub previous_producer_id: i64,
    /// The id a transaction version 2 completion rolls over to when the
    /// epoch is exhausted (-1: none).
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Topic -> partitions of the transaction.
    pub partitions: Vec<(String, Vec<i32>)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
    /// The transaction version the client spoke (0, 1 or 2).
    pub client_transaction_version: i16,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_compact_str(out: &mut Vec<u8>, s: &str) {
    put_uvarint(out, s.len() as u64 + 1);
    out.extend_from_slice(s.as_bytes());
}

fn put_tag(out: &mut Vec<u8>, tag: u64, value: &[u8]) {
    put_uvarint(out, tag);
    put_uvarint(out, value.len() as u64);
    out.extend_from_slice(value);
}

pub fn encode_key(transactional_id: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(4 + transactional_id.len());
    out.extend_from_slice(&0i16.to_be_bytes());
    put_str(&mut out, transactional_id);
    out
}

pub fn decode_key(buf: &[u8]) -> Result<String, RecordError> {
    let mut r = Reader { buf, pos: 0 };
    let version = r.i16()?;
    if version != 0 {
        return Err(RecordError(format!("unknown key version {version}")));
    }
    r.string()
}

impl TxnLogValue {
    /// The flexible v1 encoding; tagged fields at their defaults are left
    /// out, as Kafka's generated code does.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&1i16.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.push(self.state.id() as u8);
        put_uvarint(&mut out, self.partitions.len() as u64 + 1);
        for (topic, parts) in &self.partitions {
            put_compact_str(&mut out, topic);
            put_uvarint(&mut out, parts.len() as u64 + 1);
            for p in parts {
                out.extend_from_slice(&p.to_be_bytes());
            }
            put_uvarint(&mut out, 0);
        }
        out.extend_from_slice(&self.last_update_ms.to_be_bytes());
        out.extend_from_slice(&self.start_ms.to_be_bytes());
        let mut tags: Vec<(u64, Vec<u8>)> = Vec::new();
        if self.previous_producer_id != -1 {
            tags.push((
                TAG_PREVIOUS_PRODUCER_ID,
                self.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if self.next_producer_id != -1 {
            tags.push((
                TAG_NEXT_PRODUCER_ID,
                self.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if self.client_transaction_version != 0 {
            tags.push((
                TAG_CLIENT_TRANSACTION_VERSION,
                self.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        put_uvarint(&mut out, tags.len() as u64);
        for (tag, value) in &tags {
            put_tag(&mut out, *tag, value);
        }
        out
    }

    /// The v0 encoding (what oxka wrote before transaction version 2);
    /// kept for the tests that check old data still loads.
    #[cfg(test)]
    fn encode_v0(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(&0i16.to_be_bytes());
        out.extend_from_slice(&self.producer_id.to_be_bytes());
        out.extend_from_slice(&self.producer_epoch.to_be_bytes());
        out.extend_from_slice(&self.timeout_ms.to_be_bytes());
        out.push(self.state.id() as u8);
        out.extend_from_slice(&(self.partitions.len() as i32).to_be_bytes());
        for (topic, parts) in &self.partitions {
            put_str(&mut out, topic);
            out.extend_from_slice(&(parts.len() as i32).to_be_bytes());
            for p in parts {
                out.extend_from_slice(&p.to_be_bytes());
            }
        }
        out.extend_from_slice(&self.last_update_ms.to_be_bytes());
        out.extend_from_slice(&self.start_ms.to_be_bytes());
        out
    }

    pub fn decode(buf: &[u8]) -> Result<TxnLogValue, RecordError> {
        let mut r = Reader { buf, pos: 0 };
        let version = r.i16()?;
        let flexible = match version {
            0 => false,
            1 => true,
            v => return Err(RecordError(format!("unknown value version {v}"))),
        };
        let producer_id = r.i64()?;
        let producer_epoch = r.i16()?;
        let timeout_ms = r.i32()?;
        let status = r.i8()?;
        let state = TxnState::from_id(status)
            .ok_or_else(|| RecordError(format!("unknown transaction status {status}")))?;
        let n = if flexible {
            r.uvarint()? as i64 - 1
        } else {
            i64::from(r.i32()?)
        };
        let mut partitions = Vec::new();
        for _ in 0..n.max(0) {
            let topic = if flexible {
                r.compact_string()?
            } else {
                r.string()?
            };
            let m = if flexible {
                r.uvarint()? as i64 - 1
            } else {
                i64::from(r.i32()?)
            };
            let mut parts = Vec::new();
            for _ in 0..m.max(0) {
                parts.push(r.i32()?);
            }
            if flexible {
                r.skip_tagged()?;
            }
            partitions.push((topic, parts));
        }
        let last_update_ms = r.i64()?;
        let start_ms = r.i64()?;
        let mut v = TxnLogValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
            client_transaction_version: 0,
        };
        if flexible {
            let tags = r.uvarint()?;
            for _ in 0..tags {
                let tag = r.uvarint()?;
                let size = usize::try_from(r.uvarint()?).unwrap_or(usize::MAX);
                let body = r.take(size)?;
                let mut t = Reader { buf: body, pos: 0 };
                match tag {
                    TAG_PREVIOUS_PRODUCER_ID => v.previous_producer_id = t.i64()?,
                    TAG_NEXT_PRODUCER_ID => v.next_producer_id = t.i64()?,
                    TAG_CLIENT_TRANSACTION_VERSION => v.client_transaction_version = t.i16()?,
                    // tags of later versions: skipped, as Kafka does
                    _ => {}
                }
            }
        }
        Ok(v)
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl Reader<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&e| e <= self.buf.len())
            .ok_or_else(|| RecordError("truncated".into()))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }
    fn i8(&mut self) -> Result<i8, RecordError> {
        Ok(self.take(1)?[0] as i8)
    }
    fn i16(&mut self) -> Result<i16, RecordError> {
        let b = self.take(2)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }
    fn i32(&mut self) -> Result<i32, RecordError> {
        let b = self.take(4)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn i64(&mut self) -> Result<i64, RecordError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }
    fn uvarint(&mut self) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for shift in (0..35).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError("varint too long".into()))
    }
    fn string(&mut self) -> Result<String, RecordError> {
        let len = self.i16()?;
        let len = usize::try_from(len).map_err(|_| RecordError("null string".into()))?;
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| RecordError("not UTF-8".into()))
    }
    fn compact_string(&mut self) -> Result<String, RecordError> {
        let len = self.uvarint()?;
        let len = usize::try_from(len.saturating_sub(1)).unwrap_or(usize::MAX);
        String::from_utf8(self.take(len)?.to_vec()).map_err(|_| RecordError("not UTF-8".into()))
    }
    fn skip_tagged(&mut self) -> Result<(), RecordError> {
        let n = self.uvarint()?;
        for _ in 0..n {
            self.uvarint()?;
            let size = self.uvarint()?;
            self.take(usize::try_from(size).unwrap_or(usize::MAX))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> TxnLogValue {
        TxnLogValue {
            producer_id: 1000,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![("a".into(), vec![0, 2]), ("b".into(), vec![1])],
            last_update_ms: 5,
            start_ms: 4,
            client_transaction_version: 0,
        }
    }

    #[test]
    fn round_trip() {
        let v = value();
        assert_eq!(TxnLogValue::decode(&v.encode()).unwrap(), v);
        assert_eq!(decode_key(&encode_key("tx-1")).unwrap(), "tx-1");
        assert!(TxnLogValue::decode(&v.encode()[..10]).is_err());
    }

    #[test]
    fn tagged_fields_round_trip_and_v0_still_loads() {
        let v = TxnLogValue {
            previous_producer_id: 999,
            next_producer_id: 1001,
            client_transaction_version: 2,
            state: TxnState::PrepareCommit,
            producer_epoch: i16::MAX,
            ..value()
        };
        let bytes = v.encode();
        assert_eq!(&bytes[..2], &1i16.to_be_bytes(), "flexible v1");
        assert_eq!(TxnLogValue::decode(&bytes).unwrap(), v);
        // defaults are not written: the record ends with an empty tag buffer
        assert_eq!(*value().encode().last().unwrap(), 0);
        // a v0 value (older data) decodes with the tagged fields' defaults
        let old = TxnLogValue::decode(&v.encode_v0()).unwrap();
        assert_eq!(
            (
                old.previous_producer_id,
                old.next_producer_id,
                old.client_transaction_version
            ),
            (-1, -1, 0)
        );
        assert_eq!(old.partitions, v.partitions);
        // a truncated tag is an error, not a panic
        assert!(TxnLogValue::decode(&bytes[..bytes.len() - 1]).is_err());
    }
}
