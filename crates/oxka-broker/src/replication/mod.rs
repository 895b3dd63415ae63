//! Partition replication: followers fetch from leaders; the ISR, the high
//! watermark and leader epochs decide what is committed and who may lead
//! (`../shared/DESIGN.md` §5, Kafka's replication protocol).
//!
//! - `state`: one partition's roles, ISR and followers' progress, a pure
//!   state machine (time and offsets are inputs);
//! - `truncation`: where a diverged follower cuts its log (KIP-101/279/320);
//! - `fetcher`: the follower's fetcher tasks;
//! - `isr`: sends the leaders' ISR changes to the controller
//!   (AlterPartition) and runs the lag check that shrinks them.

pub mod fetcher;
pub mod isr;
pub mod state;
pub mod truncation;
