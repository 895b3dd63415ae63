//! One partition's replication state as a pure state machine: its
//! assignment and ISR from the metadata, and, while this broker leads it,
//! each follower's progress (Kafka's `Partition` and `Replica` state).
//!
//! Nothing here reads a clock, a socket or a disk: the caller passes the
//! time, the leader's log end offset and what a follower's fetch said, and
//! gets back the high watermark it may move to and the ISR change to ask
//! the controller for. That is what lets a simulator drive it.

use std::collections::BTreeMap;

use oxka_controller::image::PartitionInfo;

/// What the leader knows of one follower (Kafka's `ReplicaState`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowerProgress {
    /// The follower's log end offset: the offset of its last fetch; -1
    /// until it fetched from this leader (epoch).
    pub log_end_offset: i64,
    /// The last time the follower had everything the leader had.
    pub last_caught_up_ms: i64,
    /// The previous fetch's time and the leader's log end offset then.
    last_fetch_ms: i64,
    last_fetch_leader_leo: i64,
    /// The broker epoch of the follower's last fetch (KIP-903), -1 unknown.
    pub broker_epoch: i64,
}

/// The role this broker has for the partition after a metadata change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoleChange {
    /// Leads now, in a new leader epoch.
    BecameLeader,
    /// Follows `leader` now (a new leader or a new epoch).
    BecameFollower { leader: i32 },
    /// No leader (offline) or not a replica any more.
    Stopped,
    /// Same role and epoch (an ISR, config or replica-set change).
    Unchanged,
}

#[derive(Debug, Clone)]
pub struct ReplicaState {
    node_id: i32,
    pub replicas: Vec<i32>,
    /// The committed ISR (the metadata's).
    pub isr: Vec<i32>,
    pub leader: i32,
    pub leader_epoch: i32,
    pub partition_epoch: i32,
    /// The offset this leader's epoch starts at (its log end offset when
    /// it became leader): a follower below it cannot join the ISR.
    pub leader_epoch_start_offset: i64,
    followers: BTreeMap<i32, FollowerProgress>,
    /// An AlterPartition sent and not settled: the ISR asked for and the
    /// partition epoch it was asked against. Only the metadata moving past
    /// that epoch (or a definite refusal) settles it: an answer lost in
    /// the network, or a stale-epoch refusal that raced a commit of the
    /// same change, must not let the high watermark ignore a replica the
    /// controller may already count in the ISR (found by the replication
    /// simulator; Kafka keeps its pending state the same way).
    pending_isr: Option<(Vec<i32>, i32)>,
}

impl ReplicaState {
    /// The state of a partition as the metadata has it, before any role is
    /// taken (`apply` does that).
    pub fn new(node_id: i32) -> Self {
        ReplicaState {
            node_id,
            replicas: Vec::new(),
            isr: Vec::new(),
            leader: -1,
            leader_epoch: -1,
            partition_epoch: -1,
            leader_epoch_start_offset: -1,
            followers: BTreeMap::new(),
            pending_isr: None,
        }
    }

    pub fn is_leader(&self) -> bool {
        self.leader == self.node_id
    }

    /// Takes the metadata's view of the partition. `log_end_offset` is the
    /// local log's; `now_ms` starts new followers' lag clocks.
    pub fn apply(&mut self, p: &PartitionInfo, log_end_offset: i64, now_ms: i64) -> RoleChange {
        let new_epoch = p.leader_epoch != self.leader_epoch || p.leader != self.leader;
        self.replicas = p.replicas.clone();
        self.isr = p.isr.clone();
        self.partition_epoch = p.partition_epoch;
        // the metadata moved past the epoch the pending change was asked
        // against (it was committed, or another change overtook it): the
        // next change starts from what the metadata says now
        if new_epoch
            || self
                .pending_isr
                .as_ref()
                .is_some_and(|(_, epoch)| p.partition_epoch > *epoch)
        {
            self.pending_isr = None;
        }
        let me = self.node_id;
        if !p.replicas.contains(&me) {
            self.leader = p.leader;
            self.leader_epoch = p.leader_epoch;
            self.followers.clear();
            return RoleChange::Stopped;
        }
        if !new_epoch {
            if self.is_leader() {
                self.track_followers(now_ms);
            }
            return RoleChange::Unchanged;
        }
        self.leader = p.leader;
        self.leader_epoch = p.leader_epoch;
        self.followers.clear();
        if p.leader == me {
            self.leader_epoch_start_offset = log_end_offset;
            self.track_followers(now_ms);
            RoleChange::BecameLeader
        } else if p.leader >= 0 {
            RoleChange::BecameFollower { leader: p.leader }
        } else {
            RoleChange::Stopped
        }
    }

    /// Every other replica gets a progress entry; those in the ISR count
    /// as caught up now (Kafka's `resetReplicaState` for a new leader), so
    /// a new leader does not shrink its ISR before followers could fetch.
    fn track_followers(&mut self, now_ms: i64) {
        let me = self.node_id;
        let replicas = &self.replicas;
        self.followers.retain(|id, _| replicas.contains(id));
        for &r in &self.replicas {
            if r == me {
                continue;
            }
            self.followers.entry(r).or_insert(FollowerProgress {
                log_end_offset: -1,
                last_caught_up_ms: if self.isr.contains(&r) { now_ms } else { 0 },
                last_fetch_ms: 0,
                last_fetch_leader_leo: -1,
                broker_epoch: -1,
            });
        }
    }

    pub fn follower(&self, id: i32) -> Option<&FollowerProgress> {
        self.followers.get(&id)
    }

    /// Records the broker epoch a follower fetched with (KIP-903), before
    /// `on_follower_fetch` may propose it for the ISR.
    pub fn note_broker_epoch(&mut self, replica: i32, broker_epoch: i64) {
        if let Some(f) = self.followers.get_mut(&replica) {
            f.broker_epoch = broker_epoch;
        }
    }

    /// The broker epochs of `isr`'s members as last seen in their fetches
    /// (-1 for this leader and for unknown ones).
    pub fn broker_epochs(&self, isr: &[i32]) -> Vec<i64> {
        isr.iter()
            .map(|r| self.followers.get(r).map_or(-1, |f| f.broker_epoch))
            .collect()
    }

    /// The ISR the high watermark must wait for: the committed one, or
    /// the larger one asked for while an expansion is in flight (KIP-497's
    /// "maximal ISR": a replica being added must already have the records,
    /// one being removed still counts until it is gone).
    pub fn maximal_isr(&self) -> Vec<i32> {
        let mut isr = self.isr.clone();
        if let Some((p, _)) = &self.pending_isr {
            for r in p {
                if !isr.contains(r) {
                    isr.push(*r);
                }
            }
        }
        isr
    }

    /// The high watermark the leader may move to: the smallest log end
    /// offset over the maximal ISR. The caller only ever moves it forward.
    pub fn high_watermark_candidate(&self, leader_log_end_offset: i64) -> i64 {
        let mut hw = leader_log_end_offset;
        for r in self.maximal_isr() {
            if r == self.node_id {
                continue;
            }
            match self.followers.get(&r) {
                Some(f) if f.log_end_offset >= 0 => hw = hw.min(f.log_end_offset),
                // an in-sync follower that has not fetched from this leader
                // yet: the high watermark waits for it
                _ => return -1,
            }
        }
        hw
    }

    /// A follower's fetch at `fetch_offset` (its log end offset). Returns
    /// the ISR to ask for when the follower has caught up and is not in it
    /// (Kafka's `maybeExpandIsr`: at or above the high watermark and at or
    /// above this leader epoch's start offset).
    pub fn on_follower_fetch(
        &mut self,
        replica: i32,
        fetch_offset: i64,
        leader_log_end_offset: i64,
        high_watermark: i64,
        now_ms: i64,
    ) -> Option<Vec<i32>> {
        let f = self.followers.get_mut(&replica)?;
        // Kafka's updateFetchState: caught up now when the fetch asks for
        // the leader's end; caught up at the previous fetch when it asks
        // for at least what the leader had then
        if fetch_offset >= leader_log_end_offset {
            f.last_caught_up_ms = f.last_caught_up_ms.max(now_ms);
        } else if f.last_fetch_leader_leo >= 0 && fetch_offset >= f.last_fetch_leader_leo {
            f.last_caught_up_ms = f.last_caught_up_ms.max(f.last_fetch_ms);
        }
        f.log_end_offset = fetch_offset;
        f.last_fetch_ms = now_ms;
        f.last_fetch_leader_leo = leader_log_end_offset;
        if self.pending_isr.is_some() || self.isr.contains(&replica) {
            return None;
        }
        let in_sync =
            fetch_offset >= high_watermark && fetch_offset >= self.leader_epoch_start_offset;
        if !in_sync {
            return None;
        }
        let mut isr = self.isr.clone();
        isr.push(replica);
        self.pending_isr = Some((isr.clone(), self.partition_epoch));
        Some(isr)
    }

    /// The ISR without the followers that have not caught up within
    /// `lag_ms` (Kafka's `maybeShrinkIsr`); None when nothing changes or a
    /// change is already in flight.
    pub fn shrink_candidate(&mut self, now_ms: i64, lag_ms: i64) -> Option<Vec<i32>> {
        if !self.is_leader() || self.pending_isr.is_some() {
            return None;
        }
        let me = self.node_id;
        let isr: Vec<i32> = self
            .isr
            .iter()
            .copied()
            .filter(|r| {
                *r == me
                    || self
                        .followers
                        .get(r)
                        .is_some_and(|f| now_ms - f.last_caught_up_ms <= lag_ms)
            })
            .collect();
        if isr.len() == self.isr.len() {
            return None;
        }
        self.pending_isr = Some((isr.clone(), self.partition_epoch));
        Some(isr)
    }

    /// The controller refused the pending change for good (an ineligible
    /// replica, not the leader): it may be asked again.
    pub fn clear_pending(&mut self) {
        self.pending_isr = None;
    }

    pub fn pending_isr(&self) -> Option<&Vec<i32>> {
        self.pending_isr.as_ref().map(|(isr, _)| isr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(replicas: &[i32], isr: &[i32], leader: i32, epoch: i32) -> PartitionInfo {
        PartitionInfo {
            replicas: replicas.to_vec(),
            isr: isr.to_vec(),
            leader,
            leader_epoch: epoch,
            partition_epoch: epoch,
            adding_replicas: Vec::new(),
            removing_replicas: Vec::new(),
        }
    }

    #[test]
    fn roles_follow_the_metadata() {
        let mut s = ReplicaState::new(1);
        assert_eq!(
            s.apply(&info(&[1, 2], &[1, 2], 1, 0), 5, 0),
            RoleChange::BecameLeader
        );
        assert_eq!(s.leader_epoch_start_offset, 5);
        assert_eq!(
            s.apply(&info(&[1, 2], &[1], 1, 0), 5, 0),
            RoleChange::Unchanged
        );
        assert_eq!(
            s.apply(&info(&[1, 2], &[2], 2, 1), 5, 0),
            RoleChange::BecameFollower { leader: 2 }
        );
        assert_eq!(
            s.apply(&info(&[1, 2], &[2], -1, 2), 5, 0),
            RoleChange::Stopped
        );
        assert_eq!(
            s.apply(&info(&[2, 3], &[2], 2, 3), 5, 0),
            RoleChange::Stopped
        );
    }

    #[test]
    fn high_watermark_waits_for_every_in_sync_follower() {
        let mut s = ReplicaState::new(1);
        s.apply(&info(&[1, 2, 3], &[1, 2, 3], 1, 0), 0, 0);
        // nobody fetched yet
        assert_eq!(s.high_watermark_candidate(10), -1);
        s.on_follower_fetch(2, 10, 10, 0, 1);
        assert_eq!(s.high_watermark_candidate(10), -1);
        s.on_follower_fetch(3, 4, 10, 0, 1);
        assert_eq!(s.high_watermark_candidate(10), 4);
        // a replica outside the ISR does not hold it back
        s.apply(&info(&[1, 2, 3], &[1, 2], 1, 0), 10, 2);
        assert_eq!(s.high_watermark_candidate(10), 10);
    }

    #[test]
    fn a_caught_up_follower_is_proposed_for_the_isr_once() {
        let mut s = ReplicaState::new(1);
        s.apply(&info(&[1, 2], &[1], 1, 3), 100, 0);
        // below the epoch's start offset: not in sync yet
        assert_eq!(s.on_follower_fetch(2, 90, 120, 90, 1), None);
        assert_eq!(s.on_follower_fetch(2, 110, 120, 110, 2), Some(vec![1, 2]));
        // in flight: not asked twice, and the HW already waits for it
        assert_eq!(s.on_follower_fetch(2, 120, 120, 110, 3), None);
        assert_eq!(s.maximal_isr(), vec![1, 2]);
        assert_eq!(s.high_watermark_candidate(130), 120);
        // the metadata brings the committed ISR: nothing pending any more
        s.apply(
            &PartitionInfo {
                partition_epoch: 4,
                ..info(&[1, 2], &[1, 2], 1, 3)
            },
            130,
            4,
        );
        assert_eq!(s.pending_isr(), None);
    }

    #[test]
    fn a_pending_expansion_counts_until_the_metadata_moves_past_it() {
        let mut s = ReplicaState::new(1);
        s.apply(&info(&[1, 2], &[1], 1, 3), 10, 0);
        assert_eq!(s.on_follower_fetch(2, 10, 10, 10, 1), Some(vec![1, 2]));
        // the same metadata again (an answer lost, a retry refused as
        // stale): still pending, so the HW still waits for 2
        s.apply(&info(&[1, 2], &[1], 1, 3), 20, 2);
        assert_eq!(s.pending_isr(), Some(&vec![1, 2]));
        assert_eq!(s.high_watermark_candidate(20), 10);
        // the committed change arrives (partition epoch 4)
        let mut committed = info(&[1, 2], &[1, 2], 1, 3);
        committed.partition_epoch = 4;
        s.apply(&committed, 20, 3);
        assert_eq!(s.pending_isr(), None);
        assert_eq!(s.high_watermark_candidate(20), 10);
    }

    #[test]
    fn a_lagging_follower_is_shrunk_after_the_lag_time() {
        let mut s = ReplicaState::new(1);
        s.apply(&info(&[1, 2, 3], &[1, 2, 3], 1, 0), 0, 1_000);
        s.on_follower_fetch(2, 0, 0, 0, 1_500);
        s.on_follower_fetch(3, 0, 0, 0, 1_500);
        // 2 keeps up, 3 stops fetching
        for t in [2_000, 3_000, 40_000] {
            s.on_follower_fetch(2, 50, 50, 0, t);
        }
        assert_eq!(s.shrink_candidate(20_000, 30_000), None);
        assert_eq!(s.shrink_candidate(40_000, 30_000), Some(vec![1, 2]));
        // one change at a time
        assert_eq!(s.shrink_candidate(50_000, 30_000), None);
    }

    #[test]
    fn a_follower_fetching_behind_a_moving_leader_counts_from_its_last_fetch() {
        let mut s = ReplicaState::new(1);
        s.apply(&info(&[1, 2], &[1, 2], 1, 0), 0, 0);
        // the leader always has more than asked, but each fetch asks for
        // what the leader had at the previous one
        s.on_follower_fetch(2, 0, 10, 0, 100);
        s.on_follower_fetch(2, 10, 20, 0, 200);
        assert_eq!(s.follower(2).unwrap().last_caught_up_ms, 100);
        s.on_follower_fetch(2, 15, 30, 0, 300);
        assert_eq!(s.follower(2).unwrap().last_caught_up_ms, 100);
    }
}
