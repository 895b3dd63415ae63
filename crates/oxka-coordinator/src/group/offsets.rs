//! Committed offsets and where a group's records live in `__consumer_offsets`.

/// The internal topic holding offset commits and group metadata.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// One committed offset, as OffsetFetch returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetAndMetadata {
    pub offset: i64,
    pub leader_epoch: i32,
    /// Stored as Kafka does: a null commit metadata becomes "".
    pub metadata: String,
    pub commit_timestamp: i64,
}

/// Java's `String.hashCode` (over UTF-16 code units), so that a group lands
/// on the same `__consumer_offsets` partition as on Kafka and tools that
/// compute the partition agree with us.
pub fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// Kafka's `Utils.abs(groupId.hashCode()) % numPartitions`, where `Utils.abs`
/// masks the sign bit (so `i32::MIN` maps to 0, not to itself).
pub fn partition_for(group: &str, num_partitions: i32) -> i32 {
    (java_string_hash(group) & 0x7fff_ffff) % num_partitions.max(1)
}

/// The topics of a consumer-protocol subscription
/// (`ConsumerProtocolSubscription`: int16 version, array of strings, ...),
/// used by OffsetDelete to refuse deleting offsets of subscribed topics.
/// `None` when the bytes are not a consumer subscription.
pub fn subscribed_topics(subscription: &[u8]) -> Option<Vec<String>> {
    let mut pos = 0usize;
    let mut take = |n: usize| -> Option<&[u8]> {
        let end = pos.checked_add(n).filter(|e| *e <= subscription.len())?;
        let s = &subscription[pos..end];
        pos = end;
        Some(s)
    };
    let version = take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))?;
    if !(0..=3).contains(&version) {
        return None;
    }
    let n = take(4).map(|b| i32::from_be_bytes([b[0], b[1], b[2], b[3]]))?;
    let mut topics = Vec::new();
    for _ in 0..n.max(0) {
        let len = take(2).map(|b| i16::from_be_bytes([b[0], b[1]]))?;
        let name = take(len.max(0) as usize)?;
        topics.push(String::from_utf8(name.to_vec()).ok()?);
    }
    Some(topics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_matches_java() {
        // values from java: "".hashCode()=0, "a"=97, "group"=98629247,
        // "my-group"=1836376567 ... checked against String.hashCode
        assert_eq!(java_string_hash(""), 0);
        assert_eq!(java_string_hash("a"), 97);
        assert_eq!(java_string_hash("ab"), 97 * 31 + 98);
        assert_eq!(java_string_hash("group"), 98_629_247);
        // overflow wraps like Java's int arithmetic
        assert_eq!(java_string_hash("polygenelubricants"), i32::MIN);
        // non-BMP characters hash as two UTF-16 surrogates
        assert_eq!(
            java_string_hash("\u{1F600}"),
            0xD83Di32.wrapping_mul(31).wrapping_add(0xDE00)
        );
    }

    #[test]
    fn partition_masks_sign_bit() {
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        assert_eq!(partition_for("group", 50), 98_629_247 % 50);
        for g in ["x", "consumer-1", "ü-group", "a-very-long-group-name-123"] {
            let p = partition_for(g, 50);
            assert!((0..50).contains(&p));
        }
    }

    #[test]
    fn subscription_topics() {
        let mut b = vec![0, 1, 0, 0, 0, 2];
        for t in ["ab", "c"] {
            b.extend_from_slice(&(t.len() as i16).to_be_bytes());
            b.extend_from_slice(t.as_bytes());
        }
        b.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(subscribed_topics(&b), Some(vec!["ab".into(), "c".into()]));
        assert_eq!(subscribed_topics(&b[..7]), None);
        assert_eq!(subscribed_topics(&[]), None);
    }
}
