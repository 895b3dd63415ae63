//! The records of `__consumer_offsets` in Kafka's schemas
//! (`OffsetCommitKey`/`OffsetCommitValue`, `GroupMetadataKey`/
//! `GroupMetadataValue`), so that Kafka's own tools (kafka-console-consumer
//! with the offsets formatter, kafka-dump-log) understand what oxka writes
//! and a log written by Kafka could be read back.
//!
//! A key starts with an int16 record type: 0 and 1 are offset commits, 2 is
//! group metadata. A value starts with an int16 schema version; a null value
//! is a tombstone (the offset or group was deleted). We write the last
//! non-flexible versions (offset commit value v3, group metadata value v3)
//! and read versions 0 to 4.

use std::collections::BTreeMap;

use bytes::{BufMut, Bytes};
use uuid::Uuid;

use super::assignor::Assignment;

/// Why a record of the offsets topic could not be decoded.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    #[error("record ends before field {0}")]
    Truncated(&'static str),
    #[error("field {0} is not valid UTF-8")]
    Utf8(&'static str),
    #[error("unknown key type {0}")]
    UnknownKeyType(i16),
    #[error("unsupported {what} version {version}")]
    UnsupportedVersion { what: &'static str, version: i16 },
    #[error("negative length for non-nullable field {0}")]
    NullNotAllowed(&'static str),
}

/// The key of a record in `__consumer_offsets`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinatorKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
    /// KIP-848 records (types 3 to 8). Type 4 is the subscription
    /// metadata Kafka 4.0 writes (4.1+ keeps a hash of it in the group
    /// record instead); oxka writes and reads it so that a restart can tell
    /// whether the subscribed topics changed.
    ConsumerGroupMetadata {
        group: String,
    },
    ConsumerGroupPartitionMetadata {
        group: String,
    },
    ConsumerGroupMemberMetadata {
        group: String,
        member: String,
    },
    ConsumerGroupTargetAssignmentMetadata {
        group: String,
    },
    ConsumerGroupTargetAssignmentMember {
        group: String,
        member: String,
    },
    ConsumerGroupCurrentMemberAssignment {
        group: String,
        member: String,
    },
}

/// `OffsetCommitValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

impl From<OffsetCommitValue> for super::offsets::OffsetAndMetadata {
    fn from(v: OffsetCommitValue) -> Self {
        super::offsets::OffsetAndMetadata {
            offset: v.offset,
            leader_epoch: v.leader_epoch,
            metadata: v.metadata,
            commit_timestamp: v.commit_timestamp,
        }
    }
}

/// `GroupMetadataValue.MemberMetadata`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadataValue {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    pub subscription: Bytes,
    pub assignment: Bytes,
}

/// `GroupMetadataValue`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadataValue>,
}

const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
const GROUP_METADATA_KEY_VERSION: i16 = 2;
const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
const GROUP_METADATA_VALUE_VERSION: i16 = 3;

fn put_str(out: &mut Vec<u8>, s: &str) {
    // Kafka strings are at most i16::MAX bytes; group ids and topic names are
    // far shorter, longer metadata is refused before it gets here.
    let bytes = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
    out.put_i16(bytes.len() as i16);
    out.put_slice(bytes);
}

fn put_nullable_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => put_str(out, s),
        None => out.put_i16(-1),
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    out.put_i32(b.len() as i32);
    out.put_slice(b);
}

impl CoordinatorKey {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        match self {
            CoordinatorKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                out.put_i16(OFFSET_COMMIT_KEY_VERSION);
                put_str(&mut out, group);
                put_str(&mut out, topic);
                out.put_i32(*partition);
            }
            CoordinatorKey::GroupMetadata { group } => {
                out.put_i16(GROUP_METADATA_KEY_VERSION);
                put_str(&mut out, group);
            }
            CoordinatorKey::ConsumerGroupMetadata { group } => {
                out.put_i16(3);
                put_str(&mut out, group);
            }
            CoordinatorKey::ConsumerGroupPartitionMetadata { group } => {
                out.put_i16(4);
                put_str(&mut out, group);
            }
            CoordinatorKey::ConsumerGroupMemberMetadata { group, member } => {
                out.put_i16(5);
                put_str(&mut out, group);
                put_str(&mut out, member);
            }
            CoordinatorKey::ConsumerGroupTargetAssignmentMetadata { group } => {
                out.put_i16(6);
                put_str(&mut out, group);
            }
            CoordinatorKey::ConsumerGroupTargetAssignmentMember { group, member } => {
                out.put_i16(7);
                put_str(&mut out, group);
                put_str(&mut out, member);
            }
            CoordinatorKey::ConsumerGroupCurrentMemberAssignment { group, member } => {
                out.put_i16(8);
                put_str(&mut out, group);
                put_str(&mut out, member);
            }
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<CoordinatorKey, RecordError> {
        let mut r = Reader::new(buf, false);
        let version = r.i16("key version")?;
        match version {
            0 | 1 => Ok(CoordinatorKey::OffsetCommit {
                group: r.string("group")?,
                topic: r.string("topic")?,
                partition: r.i32("partition")?,
            }),
            2 => Ok(CoordinatorKey::GroupMetadata {
                group: r.string("group")?,
            }),
            3 => Ok(CoordinatorKey::ConsumerGroupMetadata {
                group: r.string("group")?,
            }),
            4 => Ok(CoordinatorKey::ConsumerGroupPartitionMetadata {
                group: r.string("group")?,
            }),
            5 => Ok(CoordinatorKey::ConsumerGroupMemberMetadata {
                group: r.string("group")?,
                member: r.string("member")?,
            }),
            6 => Ok(CoordinatorKey::ConsumerGroupTargetAssignmentMetadata {
                group: r.string("group")?,
            }),
            7 => Ok(CoordinatorKey::ConsumerGroupTargetAssignmentMember {
                group: r.string("group")?,
                member: r.string("member")?,
            }),
            8 => Ok(CoordinatorKey::ConsumerGroupCurrentMemberAssignment {
                group: r.string("group")?,
                member: r.string("member")?,
            }),
            other => Err(RecordError::UnknownKeyType(other)),
        }
    }
}

impl OffsetCommitValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.metadata.len());
        out.put_i16(OFFSET_COMMIT_VALUE_VERSION);
        out.put_i64(self.offset);
        out.put_i32(self.leader_epoch);
        put_str(&mut out, &self.metadata);
        out.put_i64(self.commit_timestamp);
        out
    }

    pub fn decode(buf: &[u8]) -> Result<OffsetCommitValue, RecordError> {
        let mut r = Reader::new(buf, false);
        let version = r.i16("value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                what: "OffsetCommitValue",
                version,
            });
        }
        r.flexible = version >= 4;
        let offset = r.i64("offset")?;
        let leader_epoch = if version >= 3 {
            r.i32("leaderEpoch")?
        } else {
            -1
        };
        let metadata = r.string("metadata")?;
        let commit_timestamp = r.i64("commitTimestamp")?;
        if version == 1 {
            r.i64("expireTimestamp")?;
        }
        Ok(OffsetCommitValue {
            offset,
            leader_epoch,
            metadata,
            commit_timestamp,
        })
    }
}

impl GroupMetadataValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(128);
        out.put_i16(GROUP_METADATA_VALUE_VERSION);
        put_str(&mut out, &self.protocol_type);
        out.put_i32(self.generation);
        put_nullable_str(&mut out, self.protocol.as_deref());
        put_nullable_str(&mut out, self.leader.as_deref());
        out.put_i64(self.current_state_timestamp);
        out.put_i32(self.members.len() as i32);
        for m in &self.members {
            put_str(&mut out, &m.member_id);
            put_nullable_str(&mut out, m.group_instance_id.as_deref());
            put_str(&mut out, &m.client_id);
            put_str(&mut out, &m.client_host);
            out.put_i32(m.rebalance_timeout);
            out.put_i32(m.session_timeout);
            put_bytes(&mut out, &m.subscription);
            put_bytes(&mut out, &m.assignment);
        }
        out
    }

    pub fn decode(buf: &[u8]) -> Result<GroupMetadataValue, RecordError> {
        let mut r = Reader::new(buf, false);
        let version = r.i16("value version")?;
        if !(0..=4).contains(&version) {
            return Err(RecordError::UnsupportedVersion {
                what: "GroupMetadataValue",
                version,
            });
        }
        r.flexible = version >= 4;
        let protocol_type = r.string("protocolType")?;
        let generation = r.i32("generation")?;
        let protocol = r.nullable_string("protocol")?;
        let leader = r.nullable_string("leader")?;
        let current_state_timestamp = if version >= 2 {
            r.i64("currentStateTimestamp")?
        } else {
            -1
        };
        let n = r.array_len("members")?;
        let mut members = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let member_id = r.string("memberId")?;
            let group_instance_id = if version >= 3 {
                r.nullable_string("groupInstanceId")?
            } else {
                None
            };
            let client_id = r.string("clientId")?;
            let client_host = r.string("clientHost")?;
            let session_first = version == 0;
            let (rebalance_timeout, session_timeout) = if session_first {
                let s = r.i32("sessionTimeout")?;
                (s, s)
            } else {
                let rt = r.i32("rebalanceTimeout")?;
                (rt, r.i32("sessionTimeout")?)
            };
            let subscription = r.bytes("subscription")?;
            let assignment = r.bytes("assignment")?;
            r.skip_tags()?;
            members.push(MemberMetadataValue {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            });
        }
        Ok(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

/// `ConsumerGroupMemberMetadataValue` v0 (flexible).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ConsumerMemberMetadataValue {
    pub instance_id: Option<String>,
    pub rack_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub subscribed_topic_names: Vec<String>,
    pub subscribed_topic_regex: Option<String>,
    pub rebalance_timeout_ms: i32,
    pub server_assignor: Option<String>,
}

/// `ConsumerGroupCurrentMemberAssignmentValue` v0 (flexible).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CurrentMemberAssignmentValue {
    pub member_epoch: i32,
    pub previous_member_epoch: i32,
    pub state: i8,
    pub assigned: Assignment,
    pub pending_revocation: Assignment,
}

/// Values of the KIP-848 records. Each is an int16 version (0) and a
/// flexible struct (compact lengths, tagged fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConsumerValue {
    /// `ConsumerGroupMetadataValue`: the group epoch.
    GroupMetadata {
        epoch: i32,
    },
    Member(ConsumerMemberMetadataValue),
    /// `ConsumerGroupTargetAssignmentMetadataValue`.
    TargetAssignmentMetadata {
        assignment_epoch: i32,
    },
    /// `ConsumerGroupTargetAssignmentMemberValue`.
    TargetAssignmentMember(Assignment),
    CurrentAssignment(CurrentMemberAssignmentValue),
    /// `ConsumerGroupPartitionMetadataValue`: the subscribed topics as the
    /// group last saw them (name → id, partition count); rack lists are
    /// written empty and skipped when read.
    PartitionMetadata(BTreeMap<String, (Uuid, i32)>),
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.put_u8((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.put_u8(v as u8);
}

fn put_compact_str(out: &mut Vec<u8>, s: Option<&str>) {
    match s {
        None => put_uvarint(out, 0),
        Some(s) => {
            let b = &s.as_bytes()[..s.len().min(i16::MAX as usize)];
            put_uvarint(out, b.len() as u64 + 1);
            out.put_slice(b);
        }
    }
}

fn put_topic_partitions(out: &mut Vec<u8>, a: &Assignment) {
    put_uvarint(out, a.len() as u64 + 1);
    for (t, ps) in a {
        out.put_slice(t.as_bytes());
        put_uvarint(out, ps.len() as u64 + 1);
        for p in ps {
            out.put_i32(*p);
        }
        put_uvarint(out, 0);
    }
}

fn read_topic_partitions(r: &mut Reader<'_>) -> Result<Assignment, RecordError> {
    let n = r.array_len("topicPartitions")?;
    let mut a = Assignment::new();
    for _ in 0..n {
        let t = r.uuid("topicId")?;
        let k = r.array_len("partitions")?;
        let set = a.entry(t).or_default();
        for _ in 0..k {
            set.insert(r.i32("partition")?);
        }
        r.skip_tags()?;
    }
    a.retain(|_, s| !s.is_empty());
    Ok(a)
}

impl ConsumerValue {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(64);
        out.put_i16(0);
        match self {
            ConsumerValue::GroupMetadata { epoch } => out.put_i32(*epoch),
            ConsumerValue::Member(m) => {
                put_compact_str(&mut out, m.instance_id.as_deref());
                put_compact_str(&mut out, m.rack_id.as_deref());
                put_compact_str(&mut out, Some(&m.client_id));
                put_compact_str(&mut out, Some(&m.client_host));
                put_uvarint(&mut out, m.subscribed_topic_names.len() as u64 + 1);
                for t in &m.subscribed_topic_names {
                    put_compact_str(&mut out, Some(t));
                }
                put_compact_str(&mut out, m.subscribed_topic_regex.as_deref());
                out.put_i32(m.rebalance_timeout_ms);
                put_compact_str(&mut out, m.server_assignor.as_deref());
            }
            ConsumerValue::TargetAssignmentMetadata { assignment_epoch } => {
                out.put_i32(*assignment_epoch)
            }
            ConsumerValue::TargetAssignmentMember(a) => put_topic_partitions(&mut out, a),
            ConsumerValue::CurrentAssignment(c) => {
                out.put_i32(c.member_epoch);
                out.put_i32(c.previous_member_epoch);
                out.put_i8(c.state);
                put_topic_partitions(&mut out, &c.assigned);
                put_topic_partitions(&mut out, &c.pending_revocation);
            }
            ConsumerValue::PartitionMetadata(topics) => {
                put_uvarint(&mut out, topics.len() as u64 + 1);
                for (name, (id, n)) in topics {
                    out.put_slice(id.as_bytes());
                    put_compact_str(&mut out, Some(name));
                    out.put_i32(*n);
                    put_uvarint(&mut out, 1); // no partition racks
                    put_uvarint(&mut out, 0);
                }
            }
        }
        put_uvarint(&mut out, 0);
        out
    }

    /// Decodes the value of a record whose key type is `key_type` (3 to 8).
    pub fn decode(key_type: i16, buf: &[u8]) -> Result<ConsumerValue, RecordError> {
        let mut r = Reader::new(buf, true);
        let version = r.i16("value version")?;
        if version != 0 {
            return Err(RecordError::UnsupportedVersion {
                what: "consumer group record",
                version,
            });
        }
        let v = match key_type {
            3 => ConsumerValue::GroupMetadata {
                epoch: r.i32("epoch")?,
            },
            4 => {
                let n = r.array_len("topics")?;
                let mut topics = BTreeMap::new();
                for _ in 0..n {
                    let id = r.uuid("topicId")?;
                    let name = r.string("topicName")?;
                    let partitions = r.i32("numPartitions")?;
                    for _ in 0..r.array_len("partitionMetadata")? {
                        r.i32("partition")?;
                        for _ in 0..r.array_len("racks")? {
                            r.string("rack")?;
                        }
                        r.skip_tags()?;
                    }
                    r.skip_tags()?;
                    topics.insert(name, (id, partitions));
                }
                ConsumerValue::PartitionMetadata(topics)
            }
            5 => {
                let instance_id = r.nullable_string("instanceId")?;
                let rack_id = r.nullable_string("rackId")?;
                let client_id = r.string("clientId")?;
                let client_host = r.string("clientHost")?;
                let n = r.array_len("subscribedTopicNames")?;
                let mut names = Vec::with_capacity(n.min(1024));
                for _ in 0..n {
                    names.push(r.string("topic")?);
                }
                ConsumerValue::Member(ConsumerMemberMetadataValue {
                    instance_id,
                    rack_id,
                    client_id,
                    client_host,
                    subscribed_topic_names: names,
                    subscribed_topic_regex: r.nullable_string("subscribedTopicRegex")?,
                    rebalance_timeout_ms: r.i32("rebalanceTimeoutMs")?,
                    server_assignor: r.nullable_string("serverAssignor")?,
                })
            }
            6 => ConsumerValue::TargetAssignmentMetadata {
                assignment_epoch: r.i32("assignmentEpoch")?,
            },
            7 => ConsumerValue::TargetAssignmentMember(read_topic_partitions(&mut r)?),
            8 => ConsumerValue::CurrentAssignment(CurrentMemberAssignmentValue {
                member_epoch: r.i32("memberEpoch")?,
                previous_member_epoch: r.i32("previousMemberEpoch")?,
                state: r.i8("state")?,
                assigned: read_topic_partitions(&mut r)?,
                pending_revocation: read_topic_partitions(&mut r)?,
            }),
            other => return Err(RecordError::UnknownKeyType(other)),
        };
        r.skip_tags()?;
        Ok(v)
    }
}

/// A cursor over Kafka's primitive encodings, classic or flexible (compact
/// lengths and tagged fields, from the versions that are flexible).
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
    flexible: bool,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8], flexible: bool) -> Self {
        Reader {
            buf,
            pos: 0,
            flexible,
        }
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], RecordError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|e| *e <= self.buf.len())
            .ok_or(RecordError::Truncated(field))?;
        let s = &self.buf[self.pos..end];
        self.pos = end;
        Ok(s)
    }

    fn i16(&mut self, f: &'static str) -> Result<i16, RecordError> {
        let b = self.take(2, f)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    fn i8(&mut self, f: &'static str) -> Result<i8, RecordError> {
        Ok(self.take(1, f)?[0] as i8)
    }

    fn uuid(&mut self, f: &'static str) -> Result<Uuid, RecordError> {
        let b = self.take(16, f)?;
        let mut a = [0u8; 16];
        a.copy_from_slice(b);
        Ok(Uuid::from_bytes(a))
    }

    fn i32(&mut self, f: &'static str) -> Result<i32, RecordError> {
        let b = self.take(4, f)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn i64(&mut self, f: &'static str) -> Result<i64, RecordError> {
        let b = self.take(8, f)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(i64::from_be_bytes(a))
    }

    fn uvarint(&mut self, f: &'static str) -> Result<u64, RecordError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.take(1, f)?[0];
            v |= u64::from(b & 0x7f) << (7 * i);
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(RecordError::Truncated(f))
    }

    /// Length of a string/bytes/array field; `None` for null.
    fn len(&mut self, f: &'static str, wide: bool) -> Result<Option<usize>, RecordError> {
        if self.flexible {
            let n = self.uvarint(f)?;
            return Ok(if n == 0 { None } else { Some((n - 1) as usize) });
        }
        let n = if wide {
            self.i32(f)? as i64
        } else {
            self.i16(f)? as i64
        };
        Ok(if n < 0 { None } else { Some(n as usize) })
    }

    fn nullable_string(&mut self, f: &'static str) -> Result<Option<String>, RecordError> {
        match self.len(f, false)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n, f)?;
                std::str::from_utf8(b)
                    .map(|s| Some(s.to_string()))
                    .map_err(|_| RecordError::Utf8(f))
            }
        }
    }

    fn string(&mut self, f: &'static str) -> Result<String, RecordError> {
        self.nullable_string(f)?
            .ok_or(RecordError::NullNotAllowed(f))
    }

    fn bytes(&mut self, f: &'static str) -> Result<Bytes, RecordError> {
        match self.len(f, true)? {
            None => Err(RecordError::NullNotAllowed(f)),
            Some(n) => Ok(Bytes::copy_from_slice(self.take(n, f)?)),
        }
    }

    fn array_len(&mut self, f: &'static str) -> Result<usize, RecordError> {
        Ok(self.len(f, true)?.unwrap_or(0))
    }

    /// Tagged fields of a flexible struct: none are known, all are skipped.
    fn skip_tags(&mut self) -> Result<(), RecordError> {
        if !self.flexible {
            return Ok(());
        }
        let n = self.uvarint("tagged fields")?;
        for _ in 0..n {
            self.uvarint("tag")?;
            let size = self.uvarint("tag size")? as usize;
            self.take(size, "tag data")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offset_commit_key_layout_matches_kafka() {
        let k = CoordinatorKey::OffsetCommit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
        };
        let b = k.encode();
        assert_eq!(b, vec![0, 1, 0, 1, b'g', 0, 1, b't', 0, 0, 0, 3]);
        assert_eq!(CoordinatorKey::decode(&b), Ok(k));
        let g = CoordinatorKey::GroupMetadata { group: "ab".into() };
        assert_eq!(g.encode(), vec![0, 2, 0, 2, b'a', b'b']);
        assert_eq!(CoordinatorKey::decode(&g.encode()), Ok(g));
        assert_eq!(
            CoordinatorKey::decode(&[0, 9]),
            Err(RecordError::UnknownKeyType(9))
        );
        assert!(CoordinatorKey::decode(&[0, 1, 0, 5, b'x']).is_err());
    }

    #[test]
    fn offset_commit_value_v3_round_trip_and_layout() {
        let v = OffsetCommitValue {
            offset: 42,
            leader_epoch: 7,
            metadata: "meta".into(),
            commit_timestamp: 1000,
        };
        let b = v.encode();
        let mut expect = vec![0, 3];
        expect.extend_from_slice(&42i64.to_be_bytes());
        expect.extend_from_slice(&7i32.to_be_bytes());
        expect.extend_from_slice(&[0, 4, b'm', b'e', b't', b'a']);
        expect.extend_from_slice(&1000i64.to_be_bytes());
        assert_eq!(b, expect);
        assert_eq!(OffsetCommitValue::decode(&b), Ok(v));
    }

    #[test]
    fn offset_commit_value_v1_and_v4_decode() {
        // v1: offset, metadata, commit ts, expire ts
        let mut b = vec![0, 1];
        b.extend_from_slice(&5i64.to_be_bytes());
        b.extend_from_slice(&[0, 0]);
        b.extend_from_slice(&9i64.to_be_bytes());
        b.extend_from_slice(&(-1i64).to_be_bytes());
        let v = OffsetCommitValue::decode(&b).unwrap();
        assert_eq!((v.offset, v.leader_epoch, v.commit_timestamp), (5, -1, 9));
        // v4: flexible, compact string
        let mut b = vec![0, 4];
        b.extend_from_slice(&6i64.to_be_bytes());
        b.extend_from_slice(&2i32.to_be_bytes());
        b.extend_from_slice(&[3, b'h', b'i']);
        b.extend_from_slice(&11i64.to_be_bytes());
        b.push(0);
        let v = OffsetCommitValue::decode(&b).unwrap();
        assert_eq!(v.metadata, "hi");
        assert_eq!(v.leader_epoch, 2);
    }

    #[test]
    fn consumer_records_round_trip() {
        let t = Uuid::from_bytes([7; 16]);
        let a: Assignment = [(t, [0, 2].into_iter().collect())].into_iter().collect();
        let values = [
            (3, ConsumerValue::GroupMetadata { epoch: 9 }),
            (
                5,
                ConsumerValue::Member(ConsumerMemberMetadataValue {
                    instance_id: Some("i".into()),
                    rack_id: None,
                    client_id: "c".into(),
                    client_host: "/h".into(),
                    subscribed_topic_names: vec!["a".into(), "b".into()],
                    subscribed_topic_regex: Some("x.*".into()),
                    rebalance_timeout_ms: 300000,
                    server_assignor: Some("range".into()),
                }),
            ),
            (
                6,
                ConsumerValue::TargetAssignmentMetadata {
                    assignment_epoch: 9,
                },
            ),
            (7, ConsumerValue::TargetAssignmentMember(a.clone())),
            (
                8,
                ConsumerValue::CurrentAssignment(CurrentMemberAssignmentValue {
                    member_epoch: 9,
                    previous_member_epoch: 8,
                    state: 2,
                    assigned: a.clone(),
                    pending_revocation: Assignment::new(),
                }),
            ),
            (
                4,
                ConsumerValue::PartitionMetadata(BTreeMap::from([
                    ("a".to_string(), (t, 3)),
                    ("b".to_string(), (Uuid::from_bytes([8; 16]), 1)),
                ])),
            ),
        ];
        for (k, v) in values {
            let b = v.encode();
            assert_eq!(ConsumerValue::decode(k, &b), Ok(v.clone()));
            for cut in 0..b.len() {
                assert!(ConsumerValue::decode(k, &b[..cut]).is_err(), "cut {cut}");
            }
        }
        // ConsumerGroupPartitionMetadataValue as Kafka 4.0 writes it, with
        // a partition's racks (skipped)
        let mut b = vec![0, 0, 2];
        b.extend_from_slice(&[7; 16]);
        b.extend_from_slice(&[2, b't', 0, 0, 0, 2]);
        b.extend_from_slice(&[2, 0, 0, 0, 1, 2, 3, b'r', b'1', 0, 0, 0]);
        assert_eq!(
            ConsumerValue::decode(4, &b),
            Ok(ConsumerValue::PartitionMetadata(BTreeMap::from([(
                "t".to_string(),
                (t, 2)
            )])))
        );
        // ConsumerGroupMetadataValue: version 0, epoch, no tagged fields
        assert_eq!(
            ConsumerValue::GroupMetadata { epoch: 1 }.encode(),
            vec![0, 0, 0, 0, 0, 1, 0]
        );
        let k = CoordinatorKey::ConsumerGroupCurrentMemberAssignment {
            group: "g".into(),
            member: "m".into(),
        };
        assert_eq!(k.encode(), vec![0, 8, 0, 1, b'g', 0, 1, b'm']);
        assert_eq!(CoordinatorKey::decode(&k.encode()), Ok(k));
    }

    #[test]
    fn group_metadata_value_round_trip() {
        let v = GroupMetadataValue {
            protocol_type: "consumer".into(),
            generation: 4,
            protocol: Some("range".into()),
            leader: Some("m-1".into()),
            current_state_timestamp: 123,
            members: vec![MemberMetadataValue {
                member_id: "m-1".into(),
                group_instance_id: Some("i-1".into()),
                client_id: "c".into(),
                client_host: "/127.0.0.1".into(),
                rebalance_timeout: 300000,
                session_timeout: 45000,
                subscription: Bytes::from_static(b"sub"),
                assignment: Bytes::from_static(b"asg"),
            }],
        };
        let b = v.encode();
        assert_eq!(&b[..2], &[0, 3]);
        assert_eq!(GroupMetadataValue::decode(&b), Ok(v.clone()));
        // every truncation is an error, never a panic
        for cut in 0..b.len() {
            assert!(GroupMetadataValue::decode(&b[..cut]).is_err(), "cut {cut}");
        }
        let empty = GroupMetadataValue {
            protocol: None,
            leader: None,
            members: vec![],
            ..v
        };
        assert_eq!(GroupMetadataValue::decode(&empty.encode()), Ok(empty));
    }
}
