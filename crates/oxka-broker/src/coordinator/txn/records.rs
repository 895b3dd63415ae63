//! Records of `__transaction_state` in Kafka's schemas, so the topic's
//! contents are what Kafka's tools expect: key = version (0) +
//! TransactionLogKey v0 (the transactional id); value = version +
//! TransactionLogValue (v0 written; v0 and the flexible v1 read). A null
//! value is a tombstone (an expired transactional id).

use super::state::TxnState;

/// A decoding failure: the record is skipped on load.
#[derive(Debug, thiserror::Error)]
#[error("malformed transaction log record: {0}")]
pub struct RecordError(pub String);

/// The value of one transactional id's record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TxnLogValue {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub state: TxnState,
    /// Topic -> partitions of the transaction.
    pub partitions: Vec<(String, Vec<i32>)>,
    pub last_update_ms: i64,
    pub start_ms: i64,
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = i16::try_from(s.len()).unwrap_or(i16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..len as usize]);
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
    pub fn encode(&self) -> Vec<u8> {
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
        Ok(TxnLogValue {
            producer_id,
            producer_epoch,
            timeout_ms,
            state,
            partitions,
            last_update_ms,
            start_ms,
        })
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

    #[test]
    fn round_trip() {
        let v = TxnLogValue {
            producer_id: 1000,
            producer_epoch: 3,
            timeout_ms: 60_000,
            state: TxnState::Ongoing,
            partitions: vec![("a".into(), vec![0, 2]), ("b".into(), vec![1])],
            last_update_ms: 5,
            start_ms: 4,
        };
        assert_eq!(TxnLogValue::decode(&v.encode()).unwrap(), v);
        assert_eq!(decode_key(&encode_key("tx-1")).unwrap(), "tx-1");
        assert!(TxnLogValue::decode(&v.encode()[..10]).is_err());
    }
}
