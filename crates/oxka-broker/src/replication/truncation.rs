//! Where a follower cuts its log when the leader says it diverged: the
//! end of the last epoch both logs share (KIP-101, KIP-279), found from the
//! diverging epoch in the leader's fetch answer (KIP-320). Never the
//! follower's high watermark: records below it may be the only copy of
//! acknowledged writes.

/// What to do with the follower's log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Truncation {
    /// Remove everything at and above this offset.
    To(i64),
    /// Start over at the leader's log start offset (the follower's fetch
    /// offset is below it).
    Fully { start: i64 },
}

/// `diverging` is the leader's (epoch, end offset) for the follower's last
/// fetched epoch; `own` is the follower's own end offset for that epoch
/// (its `end_offset_for_epoch`), `own_leo` its log end offset and
/// `own_hw` its high watermark.
pub fn truncation_for(
    diverging: (i32, i64),
    own: Option<(i32, i64)>,
    own_leo: i64,
    own_hw: i64,
) -> Truncation {
    let (leader_epoch, leader_end) = diverging;
    if leader_epoch < 0 || leader_end < 0 {
        // The leader knows no epoch at or below the follower's (its cache
        // is behind: it cannot have led since). Kafka's fallback for an
        // undefined answer: what the follower knows committed stays.
        return Truncation::To(own_hw.clamp(0, own_leo));
    }
    match own {
        // every epoch the follower has is newer than the leader's: keep
        // at most what the leader has of that epoch
        None => Truncation::To(leader_end.min(own_leo)),
        // the follower lacks the leader's epoch: cut to the end of its own
        // largest epoch below it; the next fetch compares again from there
        Some((epoch, end)) if epoch != leader_epoch => Truncation::To(end.min(own_leo)),
        Some((_, end)) => Truncation::To(end.min(leader_end).min(own_leo)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_the_end_of_the_last_common_epoch() {
        // both have epoch 3; the leader's ended at 50, the follower wrote
        // on to 70 as a zombie leader
        assert_eq!(
            truncation_for((3, 50), Some((3, 70)), 70, 0),
            Truncation::To(50)
        );
        // the follower's epoch 3 ended earlier than the leader's
        assert_eq!(
            truncation_for((3, 80), Some((3, 60)), 60, 0),
            Truncation::To(60)
        );
        // the follower never had epoch 4; its largest below it is 2
        assert_eq!(
            truncation_for((4, 90), Some((2, 40)), 65, 0),
            Truncation::To(40)
        );
        assert_eq!(truncation_for((1, 10), None, 65, 0), Truncation::To(10));
        assert_eq!(
            truncation_for((-1, -1), Some((2, 40)), 65, 30),
            Truncation::To(30)
        );
    }
}
