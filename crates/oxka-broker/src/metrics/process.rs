//! The process metrics every Prometheus client library exports (the JMX
//! exporter too): `process_resident_memory_bytes`, `process_cpu_seconds_total`,
//! `process_open_fds`, ... Read from `/proc` at scrape time; on other
//! systems the values are missing rather than wrong.

#[derive(Debug, Default, Clone)]
pub struct ProcessStats {
    pub cpu_seconds: Option<f64>,
    pub resident_bytes: Option<u64>,
    pub virtual_bytes: Option<u64>,
    pub open_fds: Option<u64>,
    pub max_fds: Option<u64>,
    pub threads: Option<u64>,
}

pub fn read() -> ProcessStats {
    let mut s = ProcessStats::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        for line in status.lines() {
            let kb = |l: &str| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|v| v * 1024)
            };
            if line.starts_with("VmRSS:") {
                s.resident_bytes = kb(line);
            } else if line.starts_with("VmSize:") {
                s.virtual_bytes = kb(line);
            } else if let Some(t) = line.strip_prefix("Threads:") {
                s.threads = t.trim().parse().ok();
            }
        }
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // the fields after the command name, which may hold spaces
        if let Some((_, rest)) = stat.rsplit_once(')') {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // utime and stime are fields 14 and 15 of stat(5); `rest`
            // starts at field 3
            let ticks = |i: usize| f.get(i).and_then(|v| v.parse::<u64>().ok());
            if let (Some(u), Some(st), Some(hz)) = (ticks(11), ticks(12), clock_ticks()) {
                s.cpu_seconds = Some((u + st) as f64 / hz as f64);
            }
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        s.open_fds = Some(dir.count() as u64);
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits") {
        s.max_fds = limits
            .lines()
            .find(|l| l.starts_with("Max open files"))
            .and_then(|l| l.split_whitespace().nth(3))
            .and_then(|v| v.parse().ok());
    }
    s
}

#[cfg(target_os = "linux")]
fn clock_ticks() -> Option<u64> {
    // SAFETY: sysconf has no preconditions and only reads a constant.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    (hz > 0).then_some(hz as u64)
}

#[cfg(not(target_os = "linux"))]
fn clock_ticks() -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let s = super::read();
        assert!(s.resident_bytes.unwrap() > 0);
        assert!(s.open_fds.unwrap() > 0);
        assert!(s.max_fds.unwrap() > 0);
        assert!(s.cpu_seconds.is_some());
    }
}
