//! `oxka perf produce | consume | e2e` against a real broker: the output
//! keeps Kafka's perf-test format (scripts parse it) and the records really
//! arrive. Counts are small and nothing is asserted about speed.

mod common;

use std::process::{Command, Output, Stdio};

use common::{unique, TestBroker};

fn oxka(b: &TestBroker, args: &[&str]) -> Output {
    Command::new(TestBroker::binary())
        .args(args)
        .env("OXKA_BROKERS", b.bootstrap())
        .stdin(Stdio::null())
        .output()
        .expect("run oxka")
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The count a summary line starts with ("2000 records sent, ...").
fn leading_count(line: &str) -> u64 {
    line.split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no leading count in {line:?}"))
}

#[test]
fn perf_produce_then_consume_reports_in_kafkas_format() {
    let b = TestBroker::start();
    let topic = unique("perf");
    ok(&oxka(
        &b,
        &["topics", "create", &topic, "--partitions", "2"],
    ));

    let out = ok(&oxka(
        &b,
        &[
            "perf",
            "produce",
            "--topic",
            &topic,
            "--num-records",
            "2000",
            "--record-size",
            "100",
            "--throughput",
            "-1",
            "--producer-props",
            "acks=1",
            "linger.ms=1",
        ],
    ));
    let last = out.lines().last().unwrap_or_default();
    assert_eq!(leading_count(last), 2000, "{out}");
    for part in [
        " records sent, ",
        " records/sec (",
        " MB/sec), ",
        " ms avg latency, ",
        " ms max latency, ",
        " ms 50th, ",
        " ms 95th, ",
        " ms 99th, ",
        " ms 99.9th.",
    ] {
        assert!(last.contains(part), "{part:?} missing from {last:?}");
    }

    // The records are in the log: perf consume reads all 2,000 back.
    let out = ok(&oxka(
        &b,
        &[
            "perf",
            "consume",
            "--topic",
            &topic,
            "--num-records",
            "2000",
            "--timeout",
            "20000",
        ],
    ));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with(
            "start.time, end.time, data.consumed.in.MB, MB.sec, data.consumed.in.nMsg, nMsg.sec"
        ),
        "{out}"
    );
    let csv: Vec<&str> = lines[1].split(", ").collect();
    assert_eq!(csv.len(), 10, "{out}");
    assert_eq!(csv[4], "2000", "records consumed: {out}");
    assert_eq!(leading_count(lines[2]), 2000, "{out}");
    assert!(lines[2].contains(" records received, "), "{out}");
}

#[test]
fn perf_consume_fails_when_the_records_are_not_there() {
    let b = TestBroker::start();
    let topic = unique("perf-empty");
    ok(&oxka(
        &b,
        &["topics", "create", &topic, "--partitions", "1"],
    ));
    let o = oxka(
        &b,
        &[
            "perf",
            "consume",
            "--topic",
            &topic,
            "--num-records",
            "10",
            "--timeout",
            "500",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("0 of 10"),
        "{o:?}"
    );
}

#[test]
fn perf_e2e_receives_every_record_it_sends() {
    let b = TestBroker::start();
    let topic = unique("perf-e2e");
    ok(&oxka(
        &b,
        &["topics", "create", &topic, "--partitions", "1"],
    ));
    let out = ok(&oxka(
        &b,
        &[
            "perf",
            "e2e",
            "--topic",
            &topic,
            "--num-records",
            "500",
            "--record-size",
            "64",
            "--throughput",
            "1000",
            "--producer-props",
            "acks=1",
        ],
    ));
    let last = out.lines().last().unwrap_or_default();
    assert_eq!(leading_count(last), 500, "{out}");
    assert!(last.contains(" records received, end-to-end "), "{out}");
    assert!(last.contains(" ms 99.9th."), "{out}");
}

#[test]
fn perf_rejects_a_zero_throughput() {
    let b = TestBroker::start();
    let o = oxka(
        &b,
        &[
            "perf",
            "produce",
            "--topic",
            "x",
            "--num-records",
            "1",
            "--throughput",
            "0",
        ],
    );
    assert_eq!(o.status.code(), Some(2), "{o:?}");
}
