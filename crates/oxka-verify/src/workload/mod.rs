//! The workloads: clients that write and read while the nemesis works,
//! recording everything they see.
//!
//! - [`append`]: producers write unique values round-robin over the
//!   partitions; readers outside any group read every partition from the
//!   start.
//! - [`group`]: the same producers, and a consumer group whose members
//!   commit after every poll while members join, leave and crash.
//! - [`txn`]: transactional producers committing or aborting
//!   multi-partition transactions; readers with read_committed.

pub mod append;
pub mod group;
pub mod txn;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use oxka_client::ClientConfig;

use crate::history::Recorder;

/// What every workload task shares.
#[derive(Clone)]
pub struct Ctx {
    /// The user's client settings (`--command-config`, `-X`, bootstrap).
    pub client: ClientConfig,
    pub topic: String,
    pub partitions: i32,
    pub recorder: Arc<Recorder>,
    pub stop: Arc<AtomicBool>,
    /// Seeds every random choice of the workloads.
    pub seed: u64,
}

impl Ctx {
    pub fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// How producers write.
#[derive(Debug, Clone)]
pub struct ProduceSpec {
    pub producers: u32,
    /// Records per second over all producers.
    pub rate: u32,
    /// `acks`: "all", "1" or "0".
    pub acks: String,
}

/// Sleeps `d` unless the run stops first.
pub(crate) async fn nap(ctx: &Ctx, d: Duration) {
    let step = Duration::from_millis(50);
    let mut left = d;
    while !left.is_zero() && !ctx.stopped() {
        let s = left.min(step);
        tokio::time::sleep(s).await;
        left -= s;
    }
}
