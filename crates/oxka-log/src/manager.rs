//! All logs of one broker across its log dirs (Kafka's LogManager).

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap};
use std::fs::{self, File};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::config::{LogConfig, TopicPartition};
use crate::dir_lock::DirLock;
use crate::error::{IoContext, LogError};
use crate::fileio::sync_dir;
use crate::log::Log;
use crate::retention::RetentionSummary;

/// Identity of a log dir (Kafka's `meta.properties`).
pub const META_PROPERTIES_FILE: &str = "meta.properties";
/// Per-dir recovery points, Kafka's checkpoint format.
pub const RECOVERY_POINT_CHECKPOINT_FILE: &str = "recovery-point-offset-checkpoint";
/// Per-dir log start offsets, Kafka's checkpoint format.
pub const LOG_START_OFFSET_CHECKPOINT_FILE: &str = "log-start-offset-checkpoint";
/// Present only after a clean shutdown, so startup can skip recovery.
pub const CLEAN_SHUTDOWN_FILE: &str = ".kafka_cleanshutdown";

const DELETE_DIR_SUFFIX: &str = "-delete";
/// The metadata quorum's log (Kafka's `__cluster_metadata-0`) lives in a
/// log dir too, but is not a partition this manager opens or cleans up.
pub const METADATA_LOG_DIR_NAME: &str = "__cluster_metadata-0";

type SharedLog = Arc<Mutex<Log>>;

struct LogEntry {
    dir_index: usize,
    log: SharedLog,
}

/// Owns every partition log of one broker.
pub struct LogManager {
    dirs: Vec<PathBuf>,
    /// Held for the manager's life: no other process touches these dirs.
    _locks: Vec<DirLock>,
    cluster_id: String,
    logs: RwLock<HashMap<TopicPartition, LogEntry>>,
    /// When each log next needs a retention pass (see
    /// [`LogManager::run_due_retention`]).
    retention_due: Mutex<RetentionSchedule>,
    /// `log.dir.min.free.bytes`: below it a dir takes no writes (0: never).
    min_free_bytes: AtomicU64,
    /// Per dir, free bytes at the last measurement.
    free_bytes: Vec<AtomicU64>,
    /// Whether any dir was below the minimum at the last measurement, so
    /// that appends skip the per-partition dir lookup in the usual case.
    any_low_space: AtomicBool,
}

/// How long after a scheduled pass removed segments of a log the next
/// scheduled pass of that log may run: busy logs with small segments roll
/// often, and one pass per roll would delete one segment at a time. 30 s
/// is Kafka's `log.initial.task.delay.ms`, the soonest Kafka's own first
/// retention check runs.
pub const RETENTION_PASS_MIN_INTERVAL_MS: i64 = 30_000;

/// At most one entry per log in each map.
#[derive(Default)]
struct RetentionSchedule {
    /// A pass is wanted at or after this time.
    due: HashMap<TopicPartition, i64>,
    /// No scheduled pass before this time (see
    /// [`RETENTION_PASS_MIN_INTERVAL_MS`]).
    not_before: HashMap<TopicPartition, i64>,
}

impl std::fmt::Debug for LogManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogManager")
            .field("dirs", &self.dirs)
            .field("cluster_id", &self.cluster_id)
            .field("logs", &self.logs.read().len())
            .finish()
    }
}

fn wall_clock_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// 16 random bytes; std's hasher keys are seeded from the OS, which is
/// enough for directory ids and delete-dir suffixes.
fn random_bytes() -> [u8; 16] {
    let mut out = [0u8; 16];
    for (i, chunk) in out.chunks_mut(8).enumerate() {
        let mut h = RandomState::new().build_hasher();
        h.write_usize(i);
        h.write_i64(wall_clock_ms());
        h.write_u32(std::process::id());
        chunk.copy_from_slice(&h.finish().to_le_bytes());
    }
    out
}

/// Kafka's `Uuid.toString()`: URL-safe base64 of the 16 bytes without padding.
const UUID_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A UUID in Kafka's text form: unpadded URL-safe base64, 22 characters.
pub fn uuid_string(bytes: [u8; 16]) -> String {
    let mut out = String::with_capacity(22);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for b in bytes {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(UUID_ALPHABET[((acc >> bits) & 0x3f) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(UUID_ALPHABET[((acc << (6 - bits)) & 0x3f) as usize] as char);
    }
    out
}

/// A random id as Kafka's `Uuid.randomUuid()` makes one: a version-4 UUID
/// (so never the reserved all-zero id), drawn again while its text starts
/// with '-', which Kafka's tools would take for a command-line flag.
fn random_uuid_string() -> String {
    loop {
        let mut b = random_bytes();
        b[6] = (b[6] & 0x0f) | 0x40;
        b[8] = (b[8] & 0x3f) | 0x80;
        let s = uuid_string(b);
        if !s.starts_with('-') {
            return s;
        }
    }
}

/// A new cluster id (`oxka storage random-uuid`, and a node that formats
/// itself): Kafka's `Uuid.randomUuid()` in its 22-character text form.
pub fn random_cluster_id() -> String {
    random_uuid_string()
}

/// Checks a cluster id as Kafka's `Uuid.fromString` reads it: 22 characters
/// of URL-safe base64 that decode to exactly 16 bytes. The unused low bits
/// of the last character must be zero too, so that the id reads back as
/// the same text (meta.properties files are compared as text).
pub fn validate_cluster_id(id: &str) -> Result<(), LogError> {
    let invalid = |reason: String| LogError::InvalidClusterId {
        id: id.to_string(),
        reason,
    };
    let mut acc: u32 = 0;
    let mut bits = 0;
    let mut bytes = 0usize;
    for c in id.bytes() {
        let v = UUID_ALPHABET
            .iter()
            .position(|a| *a == c)
            .ok_or_else(|| invalid(format!("illegal base64 character {c:#04x}")))?;
        acc = (acc << 6) | v as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            bytes += 1;
        }
        acc &= (1 << bits) - 1;
    }
    if bytes != 16 || id.len() != 22 {
        return Err(invalid(format!(
            "`{id}` decodes to {bytes} bytes, not the 16 bytes of a base64-encoded UUID"
        )));
    }
    if acc != 0 {
        return Err(invalid(format!(
            "`{id}` is not the canonical text of a UUID (its last character carries bits past the 16 bytes)"
        )));
    }
    Ok(())
}

fn random_hex() -> String {
    random_bytes().iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes `contents` to `path` so that a crash leaves either the old or
/// the new file: temp file, fsync, rename, fsync of the directory.
fn write_atomically(path: &Path, contents: &[u8]) -> Result<(), LogError> {
    let tmp = path.with_extension("tmp");
    {
        let mut f = File::create(&tmp).ctx(&tmp)?;
        f.write_all(contents).ctx(&tmp)?;
        f.sync_all().ctx(&tmp)?;
    }
    fs::rename(&tmp, path).ctx(path)?;
    if let Some(parent) = path.parent() {
        sync_dir(parent).ctx(parent)?;
    }
    Ok(())
}

/// Parses a Java properties file of simple `key=value` lines.
fn read_properties(path: &Path) -> Result<Option<BTreeMap<String, String>>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(LogError::io(path, e)),
    };
    let mut props = BTreeMap::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        let (k, v) = line
            .split_once(['=', ':'])
            .ok_or_else(|| LogError::MalformedFile {
                path: path.to_path_buf(),
                reason: format!("line without '=': {line}"),
            })?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    Ok(Some(props))
}

/// Writes Kafka's v1 `meta.properties` (KIP-631; `directory.id` from
/// KIP-858) with a fresh directory id, which it returns.
fn write_meta_properties(path: &Path, cluster_id: &str, node_id: i32) -> Result<String, LogError> {
    let directory_id = random_uuid_string();
    let contents = format!(
        "#\n#Written by oxka\nversion=1\ncluster.id={cluster_id}\nnode.id={node_id}\ndirectory.id={directory_id}\n"
    );
    write_atomically(path, contents.as_bytes())?;
    Ok(directory_id)
}

/// The `meta.properties` of a log dir, every key as written; `None` when the
/// dir has none (it is not formatted).
pub fn read_meta_properties(dir: &Path) -> Result<Option<BTreeMap<String, String>>, LogError> {
    read_properties(&dir.join(META_PROPERTIES_FILE))
}

/// Formats one log dir as `kafka-storage format` does: creates it if
/// missing and writes its `meta.properties` for `cluster_id` and `node_id`.
/// Refuses an invalid cluster id, a dir that is already formatted
/// ([`LogError::AlreadyFormatted`]: its identity is never overwritten) and
/// a dir another process has locked. Returns the new directory id.
///
/// It takes the dir's `.lock` while it writes, and `flock` locks are per
/// open file, so a process that already holds the lock (a running
/// `LogManager`) must not call it: `LogManager::startup` writes the
/// `meta.properties` of a fresh dir itself.
pub fn format_log_dir(dir: &Path, cluster_id: &str, node_id: i32) -> Result<String, LogError> {
    validate_cluster_id(cluster_id)?;
    let _lock = DirLock::acquire(dir)?;
    let path = dir.join(META_PROPERTIES_FILE);
    if fs::symlink_metadata(&path).is_ok() {
        return Err(LogError::AlreadyFormatted {
            path: dir.to_path_buf(),
        });
    }
    write_meta_properties(&path, cluster_id, node_id)
}

/// Reads a Kafka offset checkpoint. A malformed file is reported and
/// ignored: an empty recovery-point map only makes recovery more thorough.
fn read_checkpoint(path: &Path) -> Result<HashMap<TopicPartition, i64>, LogError> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(e) => return Err(LogError::io(path, e)),
    };
    match parse_checkpoint(&text) {
        Some(m) => Ok(m),
        None => {
            tracing::warn!(path = %path.display(), "ignoring malformed checkpoint file");
            Ok(HashMap::new())
        }
    }
}

fn parse_checkpoint(text: &str) -> Option<HashMap<TopicPartition, i64>> {
    let mut lines = text.lines();
    if lines.next()?.trim() != "0" {
        return None;
    }
    let count: usize = lines.next()?.trim().parse().ok()?;
    let mut out = HashMap::new();
    for _ in 0..count {
        let mut parts = lines.next()?.split_whitespace();
        let topic = parts.next()?;
        let partition: i32 = parts.next()?.parse().ok()?;
        let offset: i64 = parts.next()?.parse().ok()?;
        if parts.next().is_some() {
            return None;
        }
        out.insert(TopicPartition::new(topic, partition), offset);
    }
    Some(out)
}

fn format_checkpoint(entries: &[(TopicPartition, i64)]) -> String {
    let mut s = format!("0\n{}\n", entries.len());
    for (tp, offset) in entries {
        s.push_str(&format!("{} {} {}\n", tp.topic, tp.partition, offset));
    }
    s
}

impl LogManager {
    /// Opens every log dir and every partition log in them.
    pub fn startup(
        log_dirs: &[PathBuf],
        node_id: i32,
        cluster_id: &str,
        default_config: LogConfig,
        now_ms: i64,
    ) -> Result<LogManager, LogError> {
        // Every dir is locked before anything in any of them is read or
        // written, so a refused start leaves the running broker's files alone.
        let locks = log_dirs
            .iter()
            .map(|d| DirLock::acquire(d))
            .collect::<Result<Vec<_>, _>>()?;
        let mut effective_cluster_id: Option<String> = None;
        for dir in log_dirs {
            let stored = Self::load_or_create_meta(dir, node_id, cluster_id)?;
            match &effective_cluster_id {
                None => effective_cluster_id = Some(stored),
                Some(expected) if *expected != stored => {
                    return Err(LogError::InconsistentClusterId {
                        path: dir.clone(),
                        expected: expected.clone(),
                        found: stored,
                    })
                }
                Some(_) => {}
            }
        }

        let mut logs = HashMap::new();
        for (dir_index, dir) in log_dirs.iter().enumerate() {
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            let clean = marker.exists();
            let recovery_points = read_checkpoint(&dir.join(RECOVERY_POINT_CHECKPOINT_FILE))?;
            let start_offsets = read_checkpoint(&dir.join(LOG_START_OFFSET_CHECKPOINT_FILE))?;
            let mut entries: Vec<_> = fs::read_dir(dir)
                .ctx(dir)?
                .collect::<Result<Vec<_>, _>>()
                .ctx(dir)?;
            entries.sort_by_key(|e| e.file_name());
            for entry in entries {
                let path = entry.path();
                if !entry.file_type().ctx(&path)?.is_dir() {
                    continue;
                }
                let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                    continue;
                };
                if name == METADATA_LOG_DIR_NAME {
                    continue;
                }
                if name.ends_with(DELETE_DIR_SUFFIX) {
                    tracing::info!(path = %path.display(), "removing log dir left from a deletion");
                    fs::remove_dir_all(&path).ctx(&path)?;
                    continue;
                }
                let Some(tp) = TopicPartition::parse_dir_name(&name) else {
                    tracing::warn!(path = %path.display(), "ignoring directory that is not a partition log");
                    continue;
                };
                if logs.contains_key(&tp) {
                    return Err(LogError::DuplicateLog(tp.to_string()));
                }
                let recovery_point = recovery_points.get(&tp).copied().unwrap_or(0);
                let log_start = start_offsets.get(&tp).copied().unwrap_or(0);
                let log = Log::open_with_shutdown_state(
                    &path,
                    tp.clone(),
                    default_config.clone(),
                    recovery_point,
                    log_start,
                    now_ms,
                    clean,
                )?;
                logs.insert(
                    tp,
                    LogEntry {
                        dir_index,
                        log: Arc::new(Mutex::new(log)),
                    },
                );
            }
            // From now on a crash is unclean again.
            if clean {
                fs::remove_file(&marker).ctx(&marker)?;
                sync_dir(dir).ctx(dir)?;
            }
        }
        Ok(LogManager {
            dirs: log_dirs.to_vec(),
            _locks: locks,
            min_free_bytes: AtomicU64::new(0),
            free_bytes: log_dirs.iter().map(|_| AtomicU64::new(u64::MAX)).collect(),
            any_low_space: AtomicBool::new(false),
            cluster_id: effective_cluster_id.unwrap_or_else(|| cluster_id.to_string()),
            logs: RwLock::new(logs),
            retention_due: Mutex::new(RetentionSchedule::default()),
        })
    }

    /// Returns the dir's cluster id, writing meta.properties if missing.
    fn load_or_create_meta(dir: &Path, node_id: i32, cluster_id: &str) -> Result<String, LogError> {
        let path = dir.join(META_PROPERTIES_FILE);
        match read_properties(&path)? {
            Some(props) => {
                let stored_node = props.get("node.id").or_else(|| props.get("broker.id"));
                if let Some(n) = stored_node {
                    let found: i32 = n.parse().map_err(|_| LogError::MalformedFile {
                        path: path.clone(),
                        reason: format!("node.id {n} is not an integer"),
                    })?;
                    if found != node_id {
                        return Err(LogError::InconsistentNodeId {
                            path,
                            expected: node_id,
                            found,
                        });
                    }
                }
                Ok(props
                    .get("cluster.id")
                    .cloned()
                    .unwrap_or_else(|| cluster_id.to_string()))
            }
            None => {
                write_meta_properties(&path, cluster_id, node_id)?;
                Ok(cluster_id.to_string())
            }
        }
    }

    /// The cluster id recorded in the log dirs (or the configured one for
    /// fresh dirs).
    pub fn cluster_id(&self) -> &str {
        &self.cluster_id
    }

    /// The log dirs this manager owns.
    pub fn log_dirs(&self) -> &[PathBuf] {
        &self.dirs
    }

    /// The log of `tp`, if it exists.
    pub fn get_log(&self, tp: &TopicPartition) -> Option<SharedLog> {
        self.logs.read().get(tp).map(|e| Arc::clone(&e.log))
    }

    /// The log of `tp`, created in the least loaded log dir if missing.
    pub fn get_or_create_log(
        &self,
        tp: &TopicPartition,
        config: LogConfig,
    ) -> Result<SharedLog, LogError> {
        if let Some(log) = self.get_log(tp) {
            return Ok(log);
        }
        let mut logs = self.logs.write();
        if let Some(e) = logs.get(tp) {
            return Ok(Arc::clone(&e.log));
        }
        if self.dirs.is_empty() {
            return Err(LogError::LogOffline(format!(
                "{tp}: no log dirs configured"
            )));
        }
        let mut counts = vec![0usize; self.dirs.len()];
        for e in logs.values() {
            counts[e.dir_index] += 1;
        }
        let dir_index = (0..self.dirs.len()).min_by_key(|&i| counts[i]).unwrap_or(0);
        let dir = self.dirs[dir_index].join(tp.dir_name());
        let log = Log::open(&dir, tp.clone(), config, 0, 0, wall_clock_ms())?;
        sync_dir(&self.dirs[dir_index]).ctx(&self.dirs[dir_index])?;
        let log = Arc::new(Mutex::new(log));
        logs.insert(
            tp.clone(),
            LogEntry {
                dir_index,
                log: Arc::clone(&log),
            },
        );
        Ok(log)
    }

    /// Every log, sorted by partition.
    pub fn all_logs(&self) -> Vec<(TopicPartition, SharedLog)> {
        let mut v: Vec<_> = self
            .logs
            .read()
            .iter()
            .map(|(tp, e)| (tp.clone(), Arc::clone(&e.log)))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn logs_with_dirs(&self) -> Vec<(TopicPartition, usize, SharedLog)> {
        self.logs
            .read()
            .iter()
            .map(|(tp, e)| (tp.clone(), e.dir_index, Arc::clone(&e.log)))
            .collect()
    }

    /// Deletes a partition's log: renames its dir to `topic-N.<id>-delete`
    /// first, so a crash midway leaves a dir that startup removes rather
    /// than a half-deleted log it would load.
    pub fn delete_log(&self, tp: &TopicPartition) -> Result<(), LogError> {
        let Some(entry) = self.logs.write().remove(tp) else {
            return Ok(());
        };
        let mut log = entry.log.lock();
        let parent = self.dirs[entry.dir_index].clone();
        let doomed = parent.join(format!(
            "{}.{}{DELETE_DIR_SUFFIX}",
            tp.dir_name(),
            random_hex()
        ));
        log.rename_dir_for_delete(&doomed)?;
        log.delete_in_place()
    }

    /// Sets `log.dir.min.free.bytes` and measures every dir at once.
    pub fn set_min_free_bytes(&self, bytes: u64) {
        self.min_free_bytes.store(bytes, Ordering::Relaxed);
        self.refresh_free_space();
    }

    /// Measures the free space of every log dir (the broker calls this
    /// every second and after a failed write). A dir below the minimum
    /// takes no writes but keeps serving reads; it takes writes again by
    /// itself once space is freed. Crossings are logged.
    pub fn refresh_free_space(&self) {
        let min = self.min_free_bytes.load(Ordering::Relaxed);
        let mut any_low = false;
        for (dir, slot) in self.dirs.iter().zip(&self.free_bytes) {
            let free = match rustix::fs::statvfs(dir) {
                Ok(st) => st.f_bavail.saturating_mul(st.f_frsize),
                Err(e) => {
                    tracing::error!(dir = %dir.display(), error = %e, "cannot measure free space");
                    continue;
                }
            };
            let before = slot.swap(free, Ordering::Relaxed);
            any_low |= free < min;
            if free < min && before >= min {
                tracing::error!(dir = %dir.display(), free, min, "log dir is low on space: refusing writes, serving reads");
            } else if free >= min && before < min {
                tracing::warn!(dir = %dir.display(), free, min, "log dir has space again: taking writes");
            }
        }
        self.any_low_space.store(any_low, Ordering::Relaxed);
    }

    /// Refuses a write to `tp` while its dir is below the free-space minimum.
    pub fn check_free_space(&self, tp: &TopicPartition) -> Result<(), LogError> {
        if !self.any_low_space.load(Ordering::Relaxed) {
            return Ok(());
        }
        let min = self.min_free_bytes.load(Ordering::Relaxed);
        let Some(index) = self.logs.read().get(tp).map(|e| e.dir_index) else {
            return Ok(());
        };
        let free = self.free_bytes[index].load(Ordering::Relaxed);
        if free < min {
            return Err(LogError::LowDiskSpace {
                dir: self.dirs[index].clone(),
                free,
                min,
            });
        }
        Ok(())
    }

    /// Writes the recovery-point and log-start-offset checkpoints of every dir.
    pub fn checkpoint(&self) -> Result<(), LogError> {
        type Entries = Vec<(TopicPartition, i64)>;
        let mut per_dir: Vec<(Entries, Entries)> = vec![(Vec::new(), Vec::new()); self.dirs.len()];
        let mut logs = self.logs_with_dirs();
        logs.sort_by(|a, b| a.0.cmp(&b.0));
        for (tp, dir_index, log) in logs {
            let log = log.lock();
            if log.is_offline() {
                continue;
            }
            per_dir[dir_index]
                .0
                .push((tp.clone(), log.recovery_point()));
            per_dir[dir_index].1.push((tp, log.log_start_offset()));
        }
        // A failing dir (full, I/O errors) must not stop the others'
        // checkpoints; the first error is reported.
        let mut first_err = None;
        for (dir, (recovery, start)) in self.dirs.iter().zip(per_dir) {
            let written = write_atomically(
                &dir.join(RECOVERY_POINT_CHECKPOINT_FILE),
                format_checkpoint(&recovery).as_bytes(),
            )
            .and_then(|()| {
                write_atomically(
                    &dir.join(LOG_START_OFFSET_CHECKPOINT_FILE),
                    format_checkpoint(&start).as_bytes(),
                )
            });
            if let Err(e) = written {
                tracing::error!(dir = %dir.display(), error = %e, "writing checkpoints failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Flushes logs whose oldest unflushed data is older than their
    /// `flush_interval_ms`.
    pub fn flush_dirty(&self, now_ms: i64) -> Result<(), LogError> {
        let mut first_err = None;
        for (_, log) in self.all_logs() {
            let mut log = log.lock();
            if log.is_offline() {
                continue;
            }
            if let Err(e) = log.flush_if_due(now_ms) {
                tracing::error!(tp = %log.topic_partition(), error = %e, "time-based flush failed");
                first_err.get_or_insert(e);
            }
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Retention over every log (Kafka's `cleanupLogs`, run every
    /// `log.retention.check.interval.ms`). `high_watermark` gives each
    /// partition's high watermark, `None` for logs this broker does not lead
    /// (they are skipped). Failures are logged and counted, never stop the
    /// sweep.
    pub fn cleanup_logs(
        &self,
        now_ms: i64,
        high_watermark: impl Fn(&TopicPartition) -> Option<i64>,
    ) -> RetentionSummary {
        let mut summary = RetentionSummary::default();
        for (tp, log) in self.all_logs() {
            summary.add(&self.retain_one(&tp, &log, now_ms, &high_watermark));
        }
        summary
    }

    /// Asks for a retention pass of `tp` at `at_ms` (or earlier, if one is
    /// already asked for).
    pub fn schedule_retention_check(&self, tp: &TopicPartition, at_ms: i64) {
        let mut sched = self.retention_due.lock();
        sched
            .due
            .entry(tp.clone())
            .and_modify(|d| *d = (*d).min(at_ms))
            .or_insert(at_ms);
    }

    /// Asks for a retention pass of `tp` as soon as possible, ignoring the
    /// minimum interval (its retention settings changed).
    pub fn request_retention_check(&self, tp: &TopicPartition) {
        let mut sched = self.retention_due.lock();
        sched.not_before.remove(tp);
        sched.due.insert(tp.clone(), 0);
    }

    /// Schedules `tp`'s next retention pass for when `log` says one can do
    /// something (after a roll, a config change, ...).
    pub fn schedule_retention_check_for(&self, tp: &TopicPartition, log: &Log) {
        if let Some(at) = log.next_retention_check_ms() {
            self.schedule_retention_check(tp, at);
        }
    }

    /// Runs the retention passes that are due at `now_ms`. Cheap when none
    /// is, so the broker calls it every second: time retention then acts
    /// soon after a segment expires (within a second, or
    /// [`RETENTION_PASS_MIN_INTERVAL_MS`] after the log's previous
    /// scheduled deletion) instead of up to a whole
    /// `log.retention.check.interval.ms` later.
    pub fn run_due_retention(
        &self,
        now_ms: i64,
        high_watermark: impl Fn(&TopicPartition) -> Option<i64>,
    ) -> RetentionSummary {
        let due: Vec<TopicPartition> = {
            let mut sched = self.retention_due.lock();
            sched.not_before.retain(|_, t| *t > now_ms);
            let RetentionSchedule { due, not_before } = &mut *sched;
            let ready: Vec<_> = due
                .iter()
                .filter(|(tp, at)| **at <= now_ms && !not_before.contains_key(*tp))
                .map(|(tp, _)| tp.clone())
                .collect();
            for tp in &ready {
                due.remove(tp);
            }
            ready
        };
        let mut summary = RetentionSummary::default();
        for tp in due {
            if let Some(log) = self.get_log(&tp) {
                let one = self.retain_one(&tp, &log, now_ms, &high_watermark);
                if one.segments_deleted > 0 {
                    self.retention_due
                        .lock()
                        .not_before
                        .insert(tp, now_ms.saturating_add(RETENTION_PASS_MIN_INTERVAL_MS));
                }
                summary.add(&one);
            }
        }
        summary
    }

    fn retain_one(
        &self,
        tp: &TopicPartition,
        log: &SharedLog,
        now_ms: i64,
        high_watermark: &impl Fn(&TopicPartition) -> Option<i64>,
    ) -> RetentionSummary {
        let mut summary = RetentionSummary::default();
        let Some(hw) = high_watermark(tp) else {
            return summary;
        };
        let mut log = log.lock();
        if log.is_offline() {
            return summary;
        }
        summary.logs_checked = 1;
        match log.delete_expired_files(now_ms) {
            Ok(n) => summary.files_removed = n,
            Err(_) => summary.errors = 1,
        }
        match log.delete_old_segments(now_ms, hw) {
            Ok(n) => summary.segments_deleted = n,
            Err(e) => {
                tracing::error!(%tp, error = %e, "retention failed");
                summary.errors = 1;
            }
        }
        self.schedule_retention_check_for(tp, &log);
        summary
    }

    /// Flushes every log, checkpoints, and marks each healthy dir as
    /// cleanly shut down.
    pub fn shutdown(&self) -> Result<(), LogError> {
        let mut failed_dirs = vec![false; self.dirs.len()];
        let mut first_err = None;
        for (tp, dir_index, log) in self.logs_with_dirs() {
            let mut log = log.lock();
            match log.flush_for_shutdown() {
                Ok(true) => {}
                Ok(false) => failed_dirs[dir_index] = true,
                Err(e) => {
                    tracing::error!(%tp, error = %e, "flush at shutdown failed");
                    failed_dirs[dir_index] = true;
                    first_err.get_or_insert(e);
                }
            }
        }
        // The data is flushed; a checkpoint that cannot be written (a full
        // disk) only means the next start recovers the whole log, so it
        // costs the clean-shutdown marker, not a failed shutdown.
        if self.checkpoint().is_err() {
            tracing::error!("checkpoints not written: the next start recovers every log");
            return first_err.map_or(Ok(()), Err);
        }
        for (dir, failed) in self.dirs.iter().zip(failed_dirs) {
            if failed {
                continue;
            }
            if let Err(e) = write_atomically(&dir.join(CLEAN_SHUTDOWN_FILE), b"") {
                tracing::error!(dir = %dir.display(), error = %e, "clean-shutdown marker not written: the next start recovers every log");
            }
        }
        first_err.map_or(Ok(()), Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_round_trip() {
        let entries = vec![
            (TopicPartition::new("a-b", 0), 5),
            (TopicPartition::new("c", 3), 0),
        ];
        let text = format_checkpoint(&entries);
        assert_eq!(text, "0\n2\na-b 0 5\nc 3 0\n");
        let parsed = parse_checkpoint(&text).unwrap();
        assert_eq!(parsed.len(), 2);
        assert_eq!(parsed[&TopicPartition::new("a-b", 0)], 5);
        assert!(parse_checkpoint("1\n0\n").is_none());
        assert!(parse_checkpoint("0\n2\na 0 5\n").is_none());
        assert!(parse_checkpoint("0\n1\na x 5\n").is_none());
    }

    #[test]
    fn uuid_strings_look_like_kafka_uuids() {
        let a = random_uuid_string();
        let b = random_uuid_string();
        assert_eq!(a.len(), 22);
        assert_ne!(a, b);
        assert!(a
            .bytes()
            .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'));
    }

    #[test]
    fn uuid_text_is_kafkas() {
        // Kafka's `new Uuid(0x0123456789abcdefL, 0xfedcba9876543210L).toString()`.
        let bytes = [
            0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef, 0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54,
            0x32, 0x10,
        ];
        assert_eq!(uuid_string(bytes), "ASNFZ4mrze_-3LqYdlQyEA");
        assert_eq!(uuid_string([0; 16]), "AAAAAAAAAAAAAAAAAAAAAA");
    }

    #[test]
    fn cluster_ids_are_valid_and_never_start_with_a_dash() {
        let mut seen = std::collections::HashSet::new();
        for _ in 0..2000 {
            let id = random_cluster_id();
            assert!(!id.starts_with('-'), "{id}");
            validate_cluster_id(&id).unwrap();
            assert!(seen.insert(id));
        }
    }

    #[test]
    fn cluster_id_validation_follows_uuid_from_string() {
        validate_cluster_id("ASNFZ4mrze_-3LqYdlQyEA").unwrap();
        validate_cluster_id("-SNFZ4mrze_-3LqYdlQyEA").unwrap();
        for bad in [
            "",
            "bad",
            "dGVzdA",
            "ASNFZ4mrze_-3LqYdlQyE",
            "ASNFZ4mrze_-3LqYdlQyEAA",
            "ASNFZ4mrze_-3LqYdlQyEA==",
            "ASNFZ4mrze+/3LqYdlQyEA",
            "ASNFZ4mrze_-3LqYdlQyEB",
        ] {
            let e = validate_cluster_id(bad).unwrap_err();
            assert!(
                matches!(&e, LogError::InvalidClusterId { id, .. } if id == bad),
                "{bad}: {e}"
            );
        }
    }

    #[test]
    fn format_writes_v1_meta_properties_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("new/logs");
        let id = "ASNFZ4mrze_-3LqYdlQyEA";
        let dir_id = format_log_dir(&dir, id, 7).unwrap();
        let props = read_meta_properties(&dir).unwrap().unwrap();
        assert_eq!(props["version"], "1");
        assert_eq!(props["cluster.id"], id);
        assert_eq!(props["node.id"], "7");
        assert_eq!(props["directory.id"], dir_id);
        validate_cluster_id(&dir_id).unwrap();

        let again = format_log_dir(&dir, "ASNFZ4mrze_-3LqYdlQyEA", 7).unwrap_err();
        assert!(
            matches!(again, LogError::AlreadyFormatted { .. }),
            "{again}"
        );
        assert_eq!(read_meta_properties(&dir).unwrap().unwrap(), props);

        let bad = tmp.path().join("bad");
        assert!(format_log_dir(&bad, "bad", 7).is_err());
        assert!(!bad.exists(), "an invalid id writes nothing");

        // The broker starts on the formatted dir and keeps its identity.
        let m = LogManager::startup(
            std::slice::from_ref(&dir),
            7,
            "other",
            LogConfig::default(),
            0,
        )
        .unwrap();
        assert_eq!(m.cluster_id(), id);
        drop(m);
        assert_eq!(read_meta_properties(&dir).unwrap().unwrap(), props);
    }
}
