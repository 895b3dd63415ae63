//! Times a full retention sweep (`LogManager::cleanup_logs`) over many
//! partitions: once when nothing has expired (the every-5-minutes case) and
//! once when every log has expired segments to drop.
//!
//! `cargo run --release -p oxka-log --example retention_sweep_bench -- DIR [PARTITIONS]`

use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use oxka_log::{builder, LogConfig, LogManager, RetentionConfig, TopicPartition};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .ok_or("usage: retention_sweep_bench DIR [PARTITIONS]")?,
    );
    let partitions: i32 = args.next().map(|s| s.parse()).transpose()?.unwrap_or(1000);
    let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis() as i64;
    let old = now - 2 * 3_600_000;
    let config = LogConfig {
        segment_bytes: 4096,
        ..LogConfig::default()
    };
    let manager = LogManager::startup(std::slice::from_ref(&dir), 1, "bench", config.clone(), now)?;
    // each log: 2 segments of records two hours old, then 2 of current ones
    // (every segment keeps its .log, .index and .timeindex open: 12 fds a log)
    for p in 0..partitions {
        let tp = TopicPartition::new("sweep".to_string(), p);
        let log = manager.get_or_create_log(&tp, config.clone())?;
        let mut log = log.lock();
        for i in 0..4 {
            let ts = if i < 2 { old } else { now };
            let mut batch = builder::simple_batch(10, 300, ts);
            log.append_as_leader(&mut batch, 0, now)?;
        }
        log.set_retention_config(RetentionConfig {
            retention_ms: 3_600_000,
            retention_bytes: -1,
            file_delete_delay_ms: 0,
        });
    }
    let segments: usize = manager
        .all_logs()
        .iter()
        .map(|(_, l)| l.lock().num_segments())
        .sum();
    let hw = |tp: &TopicPartition| manager.get_log(tp).map(|l| l.lock().log_end_offset());

    let t = Instant::now();
    let idle = manager.cleanup_logs(old + 1, hw);
    let idle_time = t.elapsed();
    let t = Instant::now();
    let busy = manager.cleanup_logs(now, hw);
    let busy_time = t.elapsed();
    println!(
        "{partitions} partitions, {segments} segments: sweep with nothing expired {:.2} ms \
         ({} logs checked); sweep deleting {} segments {:.2} ms",
        idle_time.as_secs_f64() * 1e3,
        idle.logs_checked,
        busy.segments_deleted,
        busy_time.as_secs_f64() * 1e3,
    );
    manager.shutdown()?;
    Ok(())
}
