//! Retention settings and the bookkeeping of delayed file deletion
//! (Kafka's `retention.ms`, `retention.bytes`, `file.delete.delay.ms` and
//! the `delete` part of `cleanup.policy`).
//!
//! They live apart from [`crate::LogConfig`] because they only decide what a
//! retention pass may remove; appends and reads never look at them.

use std::path::PathBuf;

/// How much of a log retention keeps. Whether it applies at all is
/// [`crate::LogConfig::delete`] (`cleanup.policy` contains `delete`);
/// without it only segments wholly below the log start offset are removed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetentionConfig {
    /// `retention.ms`: a segment whose newest record is older than this
    /// goes; negative means unlimited.
    pub retention_ms: i64,
    /// `retention.bytes`: oldest segments go while the log is larger than
    /// this; negative means unlimited.
    pub retention_bytes: i64,
    /// `file.delete.delay.ms`: how long a removed segment's files stay on
    /// disk (renamed to `.deleted`) before they are unlinked. Zero or less
    /// unlinks at once.
    pub file_delete_delay_ms: i64,
}

impl Default for RetentionConfig {
    /// Kafka's defaults: seven days, no size limit, 60 s delay.
    fn default() -> Self {
        RetentionConfig {
            retention_ms: 604_800_000,
            retention_bytes: -1,
            file_delete_delay_ms: 60_000,
        }
    }
}

/// Files of removed segments waiting for `file.delete.delay.ms` to pass.
#[derive(Debug, Default)]
pub(crate) struct PendingDeletes {
    /// (unlink at or after this wall-clock ms, file)
    files: Vec<(i64, PathBuf)>,
}

impl PendingDeletes {
    pub(crate) fn push(&mut self, due_ms: i64, path: PathBuf) {
        self.files.push((due_ms, path));
    }

    /// When the next file is due, if any is pending.
    pub(crate) fn next_due(&self) -> Option<i64> {
        self.files.iter().map(|(d, _)| *d).min()
    }

    /// Removes and returns the files due at `now_ms`.
    pub(crate) fn take_due(&mut self, now_ms: i64) -> Vec<PathBuf> {
        let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut self.files)
            .into_iter()
            .partition(|(d, _)| *d <= now_ms);
        self.files = keep;
        due.into_iter().map(|(_, p)| p).collect()
    }

    pub(crate) fn len(&self) -> usize {
        self.files.len()
    }
}

/// What one retention pass over one or many logs did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RetentionSummary {
    /// Logs looked at.
    pub logs_checked: usize,
    /// Segments removed from logs.
    pub segments_deleted: usize,
    /// `.deleted` files unlinked after their delay.
    pub files_removed: usize,
    /// Logs whose pass failed (logged; the log is taken offline on I/O errors).
    pub errors: usize,
}

impl RetentionSummary {
    /// Adds another pass's counts to this one.
    pub fn add(&mut self, other: &RetentionSummary) {
        self.logs_checked += other.logs_checked;
        self.segments_deleted += other.segments_deleted;
        self.files_removed += other.files_removed;
        self.errors += other.errors;
    }
}
