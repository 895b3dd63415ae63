//! `oxka verify` end to end: the short fault schedule CI runs (issue 14):
//! single-node kill -9, three-node kill / pause / network faults with
//! acks=all and min.insync.replicas=2, a consumer group under churn,
//! transactions under leader and controller faults, with zero anomalies
//! required; and the checker failing a doctored history.
//!
//! Each run starts its own local cluster from the binary; its report (JSON)
//! is read back to check that faults were injected and data flowed, so a
//! run that did nothing cannot pass.

use std::path::Path;
use std::process::{Command, Output};

fn oxka() -> Command {
    Command::new(env!("CARGO_BIN_EXE_oxka"))
}

fn verify(args: &[&str], report: &Path) -> (Output, serde_json::Value) {
    let out = oxka()
        .arg("verify")
        .args(args)
        .arg("--report")
        .arg(report)
        .env("RUST_LOG", "warn")
        .output()
        .expect("run oxka verify");
    let text = std::fs::read_to_string(report).unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
    (out, json)
}

fn stdout(o: &Output) -> String {
    format!(
        "{}\n--- stderr ---\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stat(r: &serde_json::Value, key: &str) -> u64 {
    r["analysis"]["stats"][key].as_u64().unwrap_or(0)
}

/// Zero anomalies and the faults injected.
fn assert_no_anomaly(out: &Output, r: &serde_json::Value, min_faults: u64) {
    assert!(out.status.success(), "verify failed: {}", stdout(out));
    assert_eq!(
        r["analysis"]["anomalies"].as_array().map(Vec::len),
        Some(0),
        "{}",
        stdout(out)
    );
    let faults = r["faults_injected"].as_u64().unwrap_or(0);
    assert!(
        faults >= min_faults,
        "only {faults} faults injected: {}",
        stdout(out)
    );
}

/// Zero anomalies, the faults injected, data written and read back.
fn assert_clean(out: &Output, r: &serde_json::Value, min_faults: u64) {
    assert_no_anomaly(out, r, min_faults);
    let acked = stat(r, "acked");
    assert!(
        acked >= 500,
        "only {acked} writes acknowledged: {}",
        stdout(out)
    );
    assert!(
        stat(r, "final_records") >= acked,
        "the final read holds fewer records than were acknowledged: {}",
        stdout(out)
    );
}

#[test]
fn single_node_kill9_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (out, r) = verify(
        &[
            "--cluster",
            "1",
            "--nemesis",
            "kill",
            "--duration",
            "12s",
            "--fault-interval",
            "2s",
            "--fault-hold",
            "1s",
            "--seed",
            "1",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &report,
    );
    assert_clean(&out, &r, 2);
}

#[test]
fn three_nodes_under_kills_pauses_and_partitions_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (out, r) = verify(
        &[
            "--cluster",
            "3",
            "--nemesis",
            "kill-leader,pause-leader,kill-controller,isolate-leader,split,bridge,power-cut-leader",
            "--duration",
            "40s",
            "--fault-interval",
            "2s",
            "--fault-hold",
            "4s",
            "--seed",
            "2",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &report,
    );
    assert_clean(&out, &r, 5);
    // topics had 3 replicas and min.insync.replicas=2
    assert_eq!(r["expect"]["acks_all"], true);
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } == 0 {
        assert_eq!(r["faults_skipped"].as_array().map(Vec::len), Some(0));
    } else {
        assert!(!r["faults_skipped"].as_array().unwrap().is_empty());
    }
}

#[test]
fn a_consumer_group_under_churn_and_leader_kills_resumes_at_its_commits() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (out, r) = verify(
        &[
            "--cluster",
            "3",
            "--workload",
            "group",
            "--nemesis",
            "kill-leader,pause-leader",
            "--duration",
            "25s",
            "--fault-interval",
            "3s",
            "--churn",
            "3s",
            "--seed",
            "3",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &report,
    );
    assert_clean(&out, &r, 2);
    assert!(stat(&r, "commits") > 100, "{}", stdout(&out));
    assert!(stat(&r, "rebalances") >= 3, "{}", stdout(&out));
}

#[test]
fn transactions_stay_all_or_nothing_under_leader_and_controller_faults() {
    let dir = tempfile::tempdir().unwrap();
    let report = dir.path().join("r.json");
    let (out, r) = verify(
        &[
            "--cluster",
            "3",
            "--workload",
            "txn",
            "--nemesis",
            "kill-leader,pause-leader,kill-controller",
            "--duration",
            "25s",
            "--fault-interval",
            "3s",
            "--seed",
            "4",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &report,
    );
    assert_no_anomaly(&out, &r, 2);
    let (committed, aborted) = (stat(&r, "txns_committed"), stat(&r, "txns_aborted"));
    assert!(
        committed >= 100 && aborted >= 30,
        "{committed} committed, {aborted} aborted: {}",
        stdout(&out)
    );
    // every committed write is in the final read_committed read, none of the aborted ones
    assert!(stat(&r, "final_records") >= committed, "{}", stdout(&out));
}

#[test]
fn the_checker_fails_a_history_with_a_lost_write_and_passes_it_whole() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.jsonl");
    let bad = dir.path().join("bad.jsonl");
    let lines = [
        r#"{"type":"send","t":1,"producer":0,"partition":0,"value":"a0:0","outcome":{"status":"acked","offset":0}}"#,
        r#"{"type":"send","t":2,"producer":0,"partition":0,"value":"a0:1","outcome":{"status":"acked","offset":1}}"#,
        r#"{"type":"read","t":3,"reader":"final","session":0,"partition":0,"offset":0,"value":"a0:0","read_committed":false}"#,
        r#"{"type":"read","t":3,"reader":"final","session":0,"partition":0,"offset":1,"value":"a0:1","read_committed":false}"#,
        r#"{"type":"final_read","t":4,"partition":0,"start":0,"end":2,"complete":true}"#,
    ];
    std::fs::write(&good, lines.join("\n")).unwrap();
    let mut without = lines.to_vec();
    without.remove(3);
    std::fs::write(&bad, without.join("\n")).unwrap();

    let ok = oxka()
        .args(["verify", "--check"])
        .arg(&good)
        .output()
        .unwrap();
    assert!(ok.status.success(), "{}", stdout(&ok));
    let failed = oxka()
        .args(["verify", "--check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1), "{}", stdout(&failed));
    assert!(
        stdout(&failed).contains("LOST WRITE"),
        "{}",
        stdout(&failed)
    );
    // under acks=1 the same loss is expected
    let expected = oxka()
        .args(["verify", "--acks", "1", "--check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(expected.status.success(), "{}", stdout(&expected));
    assert!(
        stdout(&expected).contains("expected"),
        "{}",
        stdout(&expected)
    );
}

#[test]
fn faults_need_a_local_cluster() {
    let out = oxka()
        .args(["verify", "--nemesis", "kill", "--duration", "1s"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let out = oxka()
        .args(["verify", "--cluster", "3", "--nemesis", "explode"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
}
