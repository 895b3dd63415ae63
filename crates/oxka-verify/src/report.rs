//! How a run is shown: a summary for people, a JSON report for scripts,
//! the history as JSON lines.

use std::fmt::Write as _;
use std::io::Write;
use std::path::Path;

use crate::check::Kind;
use crate::history::Event;
use crate::run::RunReport;

/// Anomalies printed in full in the summary (all are in the JSON report).
const SHOWN: usize = 10;

/// The summary: what ran, what was injected, each check with its count,
/// and the first anomalies with the events that show them.
pub fn summary(r: &RunReport) -> String {
    let s = &r.analysis.stats;
    let mut out = String::new();
    let nodes = r
        .nodes
        .map(|n| format!("{n} local node(s)"))
        .unwrap_or_else(|| "external cluster".into());
    let _ = writeln!(
        out,
        "workload {}, topic {}, {nodes}, {:.1} s, seed {}{}",
        r.workload.name(),
        r.topic,
        r.duration_s,
        r.seed,
        if r.interrupted {
            " (interrupted: not checked for losses)"
        } else {
            ""
        }
    );
    let _ = writeln!(
        out,
        "sends {} (acknowledged {}, failed {}), reads {}, final read {} records",
        s.sends, s.acked, s.failed, s.reads, s.final_records
    );
    if s.txns_committed + s.txns_aborted + s.txns_unknown > 0 {
        let _ = writeln!(
            out,
            "transactions: committed {}, aborted {}, unknown {}",
            s.txns_committed, s.txns_aborted, s.txns_unknown
        );
    }
    if s.commits + s.rebalances > 0 {
        let _ = writeln!(
            out,
            "group: {} offset commits, {} partition assignments",
            s.commits, s.rebalances
        );
    }
    let _ = writeln!(out, "faults injected: {}", r.faults_injected);
    if !r.faults_skipped.is_empty() {
        let _ = writeln!(
            out,
            "faults skipped (network faults and power cuts need root): {}",
            r.faults_skipped.join(", ")
        );
    }
    for f in &r.faults {
        if let Event::Fault { t, what } = f {
            let _ = writeln!(out, "  {:>8.3} s  {what}", *t as f64 / 1000.0);
        }
    }
    let _ = writeln!(out);
    let width = Kind::ALL.iter().map(|k| k.name().len()).max().unwrap_or(10);
    let _ = writeln!(out, "{:<width$}  ANOMALIES  EXPECTED", "CHECK");
    for k in Kind::ALL {
        let (u, e) = r.analysis.counts.0.get(&k).copied().unwrap_or_default();
        let _ = writeln!(out, "{:<width$}  {u:<9}  {e}", k.name());
    }
    for c in &r.node_crashes {
        let _ = writeln!(out, "\nNODE CRASH: {c}");
    }
    let shown: Vec<_> = r
        .analysis
        .anomalies
        .iter()
        .filter(|a| !a.expected)
        .take(SHOWN)
        .collect();
    for a in &shown {
        let _ = writeln!(out, "\n{}: {}", a.kind.name().to_uppercase(), a.message);
        for e in &a.events {
            let _ = writeln!(out, "    {}", serde_json::to_string(e).unwrap_or_default());
        }
    }
    let failures = r.analysis.failures();
    if failures as usize > shown.len() {
        let _ = writeln!(
            out,
            "\n... {} more (all in the JSON report, --report FILE)",
            failures as usize - shown.len()
        );
    }
    let _ = writeln!(out);
    let verdict = if r.failed() {
        format!(
            "FAILED: {failures} anomal{} {}",
            if failures == 1 { "y" } else { "ies" },
            if r.node_crashes.is_empty() {
                String::new()
            } else {
                format!("and {} node crash(es)", r.node_crashes.len())
            }
        )
    } else if r.analysis.expected() > 0 {
        format!(
            "OK: no anomaly ({} expected under these settings)",
            r.analysis.expected()
        )
    } else {
        "OK: no anomaly".to_string()
    };
    let _ = writeln!(out, "{}", verdict.trim_end());
    out
}

pub fn write_json(r: &RunReport, path: &Path) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut f, r)?;
    f.write_all(b"\n")?;
    f.flush()
}

/// The whole history, one JSON event per line (what `--check` reads).
pub fn write_history(events: &[Event], path: &Path) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for e in events {
        serde_json::to_writer(&mut f, e)?;
        f.write_all(b"\n")?;
    }
    f.flush()
}

/// Reads a history written by [`write_history`].
pub fn read_history(path: &Path) -> Result<Vec<Event>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        out.push(
            serde_json::from_str(line)
                .map_err(|e| format!("{} line {}: {e}", path.display(), i + 1))?,
        );
    }
    out.sort_by_key(Event::t);
    Ok(out)
}
