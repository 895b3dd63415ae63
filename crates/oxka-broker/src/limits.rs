//! The process's descriptor limit and the segment-file budget derived from it.
//!
//! Distributions start services with a soft `RLIMIT_NOFILE` of 1024 and a
//! much larger hard limit; a broker with thousands of segments and
//! connections needs the larger one, and an unprivileged process may raise
//! its soft limit up to the hard limit, so start-up does that. Half of what
//! is then allowed goes to segment files (opened on demand and closed when
//! cold, see `oxka_log::set_open_file_budget`); the rest stays for client
//! connections, checkpoints and the cleaner's temporary files.

/// The soft and hard descriptor limits before and after start-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FileLimits {
    /// The soft limit the process was started with.
    pub soft_before: u64,
    /// The soft limit now (the hard limit, if raising it worked).
    pub soft: u64,
    /// The hard limit.
    pub hard: u64,
    /// Segment files that may be open at once.
    pub segment_file_budget: usize,
}

/// Raises the soft descriptor limit to the hard limit and sets the
/// segment-file budget to half of it. Never fails: if the limit cannot be
/// read or raised, the broker runs with what it has.
pub fn raise_file_limit() -> FileLimits {
    let (soft_before, hard) = current().unwrap_or((1024, 1024));
    // An unlimited hard limit still stops at the kernel's `nr_open`.
    let target = hard.min(1 << 20);
    let soft = if soft_before < target && set_soft(target) {
        target
    } else {
        soft_before
    };
    let budget = usize::try_from(soft / 2).unwrap_or(usize::MAX).max(16);
    oxka_log::set_open_file_budget(budget);
    FileLimits {
        soft_before,
        soft,
        hard,
        segment_file_budget: budget,
    }
}

#[cfg(target_os = "linux")]
fn current() -> Option<(u64, u64)> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we own and reads nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) };
    (rc == 0).then_some((lim.rlim_cur, lim.rlim_max))
}

#[cfg(target_os = "linux")]
fn set_soft(soft: u64) -> bool {
    let Some((_, hard)) = current() else {
        return false;
    };
    let lim = libc::rlimit {
        rlim_cur: soft.min(hard),
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) == 0 }
}

#[cfg(not(target_os = "linux"))]
fn current() -> Option<(u64, u64)> {
    None
}

#[cfg(not(target_os = "linux"))]
fn set_soft(_: u64) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn the_soft_limit_ends_at_the_hard_limit() {
        let limits = raise_file_limit();
        assert_eq!(limits.soft, limits.hard.min(1 << 20), "{limits:?}");
        assert_eq!(current().map(|(soft, _)| soft), Some(limits.soft));
        assert_eq!(oxka_log::open_file_budget(), limits.segment_file_budget);
    }
}
