//! Small helpers shared by the subcommands: tables, JSON, names given
//! positionally or by flag, timestamps, a terminal-only progress line.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use super::{CliError, CliResult};

/// Left-aligned columns separated by two spaces, upper-case headers (rpk's look).
pub fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let mut out = String::new();
    let line = |cells: Vec<&str>, out: &mut String| {
        let n = cells.len();
        for (i, c) in cells.into_iter().enumerate() {
            out.push_str(c);
            if i + 1 < n {
                let pad = widths[i].saturating_sub(c.chars().count()) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    line(headers.to_vec(), &mut out);
    for r in rows {
        line(r.iter().map(String::as_str).collect(), &mut out);
    }
    write_stdout(out.as_bytes());
}

/// Pretty JSON on stdout.
pub fn print_json(v: &serde_json::Value) {
    let s = serde_json::to_string_pretty(v).unwrap_or_else(|_| "null".into());
    outln!("{s}");
}

/// Writes to stdout. When the reader has gone away (`| head -1`, `| true`)
/// the process exits at once with status 0, as a Unix tool killed by
/// SIGPIPE stops, but without the failure status `set -o pipefail` would
/// report: the output was not wanted any more, nothing failed. (`print!`
/// panics on EPIPE instead; SIGPIPE itself stays ignored because the
/// client's sockets use `writev`, which would raise it when a broker
/// closes a connection.) Any other write error is reported and exits 1.
pub fn write_stdout(bytes: &[u8]) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(bytes).and_then(|_| out.flush()) {
        stdout_failed(&e);
    }
}

/// Ends the process for a failed write to stdout (see [`write_stdout`]).
pub fn stdout_failed(e: &std::io::Error) -> ! {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(0);
    }
    eprintln!("error: writing to stdout: {e}");
    std::process::exit(1);
}

/// One name from a positional argument or its `--flag` twin (Kafka's scripts).
pub fn one_name(positional: &[String], flag: &Option<String>, what: &str) -> CliResult<String> {
    let mut all = names(positional, flag);
    match all.len() {
        1 => Ok(all.remove(0)),
        0 => Err(CliError::Usage(format!(
            "missing {what} name (positional or --{what})"
        ))),
        _ => Err(CliError::Usage(format!(
            "expected one {what}, got {}",
            all.join(", ")
        ))),
    }
}

/// Names from positional arguments and an optional flag.
pub fn names(positional: &[String], flag: &Option<String>) -> Vec<String> {
    let mut all: Vec<String> = positional.to_vec();
    if let Some(f) = flag {
        if !all.contains(f) {
            all.push(f.clone());
        }
    }
    all
}

/// `key=value` pairs.
pub fn parse_kv(items: &[String], what: &str) -> CliResult<Vec<(String, String)>> {
    items
        .iter()
        .map(|s| {
            s.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.to_string()))
                .filter(|(k, _)| !k.is_empty())
                .ok_or_else(|| CliError::Usage(format!("{what} `{s}`: expected key=value")))
        })
        .collect()
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Milliseconds since the epoch from `1700000000000`, `2024-05-01`,
/// `2024-05-01T12:00:00`, `...T12:00:00.250Z` or `...T12:00:00+02:00`.
/// No zone means UTC.
pub fn parse_timestamp(s: &str) -> CliResult<i64> {
    let bad = || {
        CliError::Usage(format!(
            "`{s}` is not a timestamp: use epoch milliseconds or YYYY-MM-DD[THH:MM:SS[.sss]][Z|+HH:MM]"
        ))
    };
    let s = s.trim();
    if let Ok(ms) = s.parse::<i64>() {
        return Ok(ms);
    }
    let (date, rest) = match s.split_once(['T', ' ']) {
        Some((d, r)) => (d, r),
        None => (s, ""),
    };
    let dp: Vec<&str> = date.split('-').collect();
    if dp.len() != 3 {
        return Err(bad());
    }
    let num = |x: &str| x.parse::<i64>().map_err(|_| bad());
    let (y, mo, d) = (num(dp[0])?, num(dp[1])?, num(dp[2])?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) {
        return Err(bad());
    }
    let (time, offset_ms) = if let Some(t) = rest.strip_suffix('Z') {
        (t, 0)
    } else if let Some(i) = rest.rfind(['+', '-']) {
        let (t, z) = rest.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let (zh, zm) = z[1..].split_once(':').unwrap_or((&z[1..], "0"));
        (t, sign * (num(zh)? * 3_600_000 + num(zm)? * 60_000))
    } else {
        (rest, 0)
    };
    let mut ms = 0;
    if !time.is_empty() {
        let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
        let tp: Vec<&str> = hms.split(':').collect();
        if tp.len() < 2 || tp.len() > 3 {
            return Err(bad());
        }
        let sec = if tp.len() == 3 { num(tp[2])? } else { 0 };
        ms = (num(tp[0])? * 3600 + num(tp[1])? * 60 + sec) * 1000;
        if !frac.is_empty() {
            let f = format!("{frac:0<3}");
            ms += num(&f[..3])?;
        }
    }
    Ok(days_from_civil(y, mo, d) * 86_400_000 + ms - offset_ms)
}

/// Renders epoch milliseconds as RFC 3339 UTC.
pub fn format_timestamp(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + if m <= 2 { 1 } else { 0 };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// A one-line progress display on stderr, drawn only when stderr is a
/// terminal and the work has taken long enough to be worth showing.
pub struct Progress {
    enabled: bool,
    total: u64,
    started: Instant,
    last: Instant,
    drawn: bool,
}

impl Progress {
    pub fn new(total: u64) -> Progress {
        let now = Instant::now();
        Progress {
            enabled: std::io::stderr().is_terminal() && total > 0,
            total,
            started: now,
            last: now,
            drawn: false,
        }
    }

    pub fn update(&mut self, done: u64, records: u64) {
        if !self.enabled
            || self.started.elapsed() < Duration::from_millis(500)
            || self.last.elapsed() < Duration::from_millis(100)
        {
            return;
        }
        self.last = Instant::now();
        let pct = (done.min(self.total) * 100 / self.total.max(1)) as usize;
        let bar: String = (0..30)
            .map(|i| if i * 100 / 30 < pct { '#' } else { '-' })
            .collect();
        let rate = records as f64 / self.started.elapsed().as_secs_f64().max(0.001);
        eprint!("\r[{bar}] {pct:3}%  {records} records  {rate:.0}/s ");
        self.drawn = true;
    }

    pub fn finish(&mut self) {
        if self.drawn {
            eprint!("\r{}\r", " ".repeat(72));
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (`kill`, `timeout`, systemd,
/// container stop) with the exit code a shell reports for a process the
/// signal ended: 130 or 143.
pub async fn stop_signal() -> i32 {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            return tokio::select! {
                _ = term.recv() => 143,
                _ = tokio::signal::ctrl_c() => 130,
            };
        }
    }
    let _ = tokio::signal::ctrl_c().await;
    130
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(parse_timestamp("0").ok(), Some(0));
        assert_eq!(parse_timestamp("1970-01-02").ok(), Some(86_400_000));
        assert_eq!(
            parse_timestamp("2024-02-29T12:30:00Z").ok(),
            Some(1_709_209_800_000)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T12:30:00.5Z").ok(),
            Some(1_709_209_800_500)
        );
        assert_eq!(
            parse_timestamp("2024-02-29T14:30:00+02:00").ok(),
            Some(1_709_209_800_000)
        );
        assert!(parse_timestamp("yesterday").is_err());
        assert_eq!(
            format_timestamp(1_709_209_800_500),
            "2024-02-29T12:30:00.500Z"
        );
    }
}
