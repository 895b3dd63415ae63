//! Broker-level log management: meta.properties, checkpoints, clean shutdown.

use std::fs;
use std::path::PathBuf;

use oxka_log::builder::simple_batch;
use oxka_log::{
    LogConfig, LogError, LogManager, TopicPartition, CLEAN_SHUTDOWN_FILE,
    LOG_START_OFFSET_CHECKPOINT_FILE, META_PROPERTIES_FILE, RECOVERY_POINT_CHECKPOINT_FILE,
};

fn dirs(root: &std::path::Path, n: usize) -> Vec<PathBuf> {
    (0..n).map(|i| root.join(format!("d{i}"))).collect()
}

#[test]
fn startup_create_append_shutdown_restart() {
    let root = tempfile::tempdir().unwrap();
    let log_dirs = dirs(root.path(), 2);
    let mgr = LogManager::startup(&log_dirs, 1, "cluster-a", LogConfig::default(), 0).unwrap();
    assert_eq!(mgr.cluster_id(), "cluster-a");
    let meta = fs::read_to_string(log_dirs[0].join(META_PROPERTIES_FILE)).unwrap();
    assert!(meta.contains("version=1\n"));
    assert!(meta.contains("cluster.id=cluster-a\n"));
    assert!(meta.contains("node.id=1\n"));
    assert!(meta.contains("directory.id="));

    let tps: Vec<_> = (0..4).map(|p| TopicPartition::new("my-topic", p)).collect();
    for (i, tp) in tps.iter().enumerate() {
        let log = mgr.get_or_create_log(tp, LogConfig::default()).unwrap();
        let mut log = log.lock();
        for _ in 0..=i {
            log.append_as_leader(&mut simple_batch(2, 10, 5), 0, 0)
                .unwrap();
        }
    }
    // Balanced across dirs.
    for d in &log_dirs {
        let n = fs::read_dir(d)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().is_dir())
            .count();
        assert_eq!(n, 2, "{}", d.display());
    }
    assert!(mgr.get_log(&TopicPartition::new("nope", 0)).is_none());
    assert_eq!(mgr.all_logs().len(), 4);
    mgr.shutdown().unwrap();
    for d in &log_dirs {
        assert!(d.join(CLEAN_SHUTDOWN_FILE).exists());
        let cp = fs::read_to_string(d.join(RECOVERY_POINT_CHECKPOINT_FILE)).unwrap();
        assert!(cp.starts_with("0\n2\n"), "{cp}");
        assert!(d.join(LOG_START_OFFSET_CHECKPOINT_FILE).exists());
    }
    drop(mgr);

    // Restart: the stored cluster id wins, logs come back intact.
    let mgr = LogManager::startup(&log_dirs, 1, "other", LogConfig::default(), 0).unwrap();
    assert_eq!(mgr.cluster_id(), "cluster-a");
    for d in &log_dirs {
        assert!(!d.join(CLEAN_SHUTDOWN_FILE).exists());
    }
    for (i, tp) in tps.iter().enumerate() {
        let log = mgr.get_log(tp).unwrap();
        let log = log.lock();
        assert_eq!(log.log_end_offset(), 2 * (i as i64 + 1));
        assert_eq!(log.recovery_point(), log.log_end_offset());
    }
}

#[test]
fn unclean_restart_recovers_from_checkpoint() {
    let root = tempfile::tempdir().unwrap();
    let log_dirs = dirs(root.path(), 1);
    let tp = TopicPartition::new("t", 0);
    {
        let mgr = LogManager::startup(&log_dirs, 1, "c", LogConfig::default(), 0).unwrap();
        let log = mgr.get_or_create_log(&tp, LogConfig::default()).unwrap();
        log.lock()
            .append_as_leader(&mut simple_batch(3, 10, 5), 0, 0)
            .unwrap();
        log.lock().flush().unwrap();
        mgr.checkpoint().unwrap();
        log.lock()
            .append_as_leader(&mut simple_batch(3, 10, 5), 0, 0)
            .unwrap();
        // "Crash": no shutdown; tear the last batch.
    }
    let seg = log_dirs[0].join("t-0").join("00000000000000000000.log");
    let len = fs::metadata(&seg).unwrap().len();
    fs::OpenOptions::new()
        .write(true)
        .open(&seg)
        .unwrap()
        .set_len(len - 1)
        .unwrap();
    let mgr = LogManager::startup(&log_dirs, 1, "c", LogConfig::default(), 0).unwrap();
    let log = mgr.get_log(&tp).unwrap();
    assert_eq!(log.lock().log_end_offset(), 3);
}

#[test]
fn node_id_mismatch_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let log_dirs = dirs(root.path(), 1);
    LogManager::startup(&log_dirs, 1, "c", LogConfig::default(), 0)
        .unwrap()
        .shutdown()
        .unwrap();
    match LogManager::startup(&log_dirs, 2, "c", LogConfig::default(), 0) {
        Err(LogError::InconsistentNodeId {
            expected: 2,
            found: 1,
            ..
        }) => {}
        other => panic!("expected InconsistentNodeId, got {other:?}"),
    }
}

#[test]
fn cluster_id_mismatch_between_dirs_is_refused() {
    let root = tempfile::tempdir().unwrap();
    let log_dirs = dirs(root.path(), 2);
    LogManager::startup(&log_dirs[..1], 1, "a", LogConfig::default(), 0).unwrap();
    LogManager::startup(&log_dirs[1..], 1, "b", LogConfig::default(), 0).unwrap();
    assert!(matches!(
        LogManager::startup(&log_dirs, 1, "a", LogConfig::default(), 0),
        Err(LogError::InconsistentClusterId { .. })
    ));
}

#[test]
fn delete_log_and_leftover_delete_dirs() {
    let root = tempfile::tempdir().unwrap();
    let log_dirs = dirs(root.path(), 1);
    let tp = TopicPartition::new("gone", 3);
    let mgr = LogManager::startup(&log_dirs, 1, "c", LogConfig::default(), 0).unwrap();
    let log = mgr.get_or_create_log(&tp, LogConfig::default()).unwrap();
    log.lock()
        .append_as_leader(&mut simple_batch(1, 1, 1), 0, 0)
        .unwrap();
    mgr.delete_log(&tp).unwrap();
    assert!(mgr.get_log(&tp).is_none());
    assert!(!log_dirs[0].join("gone-3").exists());
    // A stale handle can no longer append.
    let err = log
        .lock()
        .append_as_leader(&mut simple_batch(1, 1, 1), 0, 0)
        .unwrap_err();
    assert!(matches!(err, LogError::LogOffline(_)));
    drop(log);
    mgr.shutdown().unwrap();
    drop(mgr);

    // A crash between rename and removal leaves a -delete dir; startup removes it.
    let leftover = log_dirs[0].join("gone-3.0123abcd-delete");
    fs::create_dir_all(&leftover).unwrap();
    fs::write(leftover.join("00000000000000000000.log"), b"junk").unwrap();
    fs::create_dir_all(log_dirs[0].join("not a partition")).unwrap();
    let mgr = LogManager::startup(&log_dirs, 1, "c", LogConfig::default(), 0).unwrap();
    assert!(!leftover.exists());
    assert!(mgr.all_logs().is_empty());
}

#[test]
fn flush_dirty_by_time() {
    let root = tempfile::tempdir().unwrap();
    let log_dirs = dirs(root.path(), 1);
    let mgr = LogManager::startup(&log_dirs, 1, "c", LogConfig::default(), 0).unwrap();
    let tp = TopicPartition::new("t", 0);
    let config = LogConfig {
        flush_interval_ms: 1000,
        ..LogConfig::default()
    };
    let log = mgr.get_or_create_log(&tp, config).unwrap();
    log.lock()
        .append_as_leader(&mut simple_batch(1, 1, 1), 0, 10_000)
        .unwrap();
    mgr.flush_dirty(10_500).unwrap();
    assert_eq!(log.lock().recovery_point(), 0);
    mgr.flush_dirty(11_000).unwrap();
    assert_eq!(log.lock().recovery_point(), 1);
}
