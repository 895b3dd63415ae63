//! End-to-end tests of the `oxka` client commands against a real broker:
//! create, produce a file, consume it back byte for byte, group lag, reset
//! offsets and the next consume, exit codes.

mod common;

use std::io::Write;
use std::process::{Command, Output, Stdio};

use common::{unique, TestBroker};

fn oxka(b: &TestBroker, args: &[&str]) -> Output {
    oxka_stdin(b, args, None)
}

fn oxka_stdin(b: &TestBroker, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(TestBroker::binary())
        .args(args)
        .env("OXKA_BROKERS", b.bootstrap())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn oxka");
    if let Some(input) = stdin {
        let mut s = child.stdin.take().expect("stdin");
        s.write_all(input).expect("write stdin");
    }
    child.wait_with_output().expect("oxka output")
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

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("json output")
}

fn broker() -> TestBroker {
    TestBroker::start_with(&["group.initial.rebalance.delay.ms=0"])
}

#[test]
fn produce_a_file_and_consume_it_back_identically() {
    let b = broker();
    let topic = unique("cli-file");
    ok(&oxka(
        &b,
        &["topics", "create", &topic, "--partitions", "1"],
    ));
    // Awkward content: empty lines, tabs, unicode, a CR, a long line.
    let mut content = Vec::new();
    for i in 0..2000 {
        match i % 5 {
            0 => content.extend_from_slice(b""),
            1 => content.extend_from_slice(format!("line {i}\twith tab").as_bytes()),
            2 => content.extend_from_slice(format!("ünïcødé {i} ✓").as_bytes()),
            3 => content.extend_from_slice(format!("cr {i}\r").as_bytes()),
            _ => content.extend_from_slice("x".repeat(i).as_bytes()),
        }
        content.push(b'\n');
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("in.txt");
    std::fs::write(&file, &content).unwrap();
    let out = oxka(
        &b,
        &[
            "produce",
            &topic,
            "--file",
            file.to_str().unwrap(),
            "-z",
            "zstd",
        ],
    );
    ok(&out);
    let out = oxka(
        &b,
        &[
            "consume",
            &topic,
            "--from-beginning",
            "--max-messages",
            "2000",
        ],
    );
    let got = out.stdout.clone();
    ok(&out);
    assert_eq!(got.len(), content.len());
    assert!(got == content, "consumed bytes differ from the file");

    // From stdin with keys and headers, read back with a format string.
    let topic2 = unique("cli-keys");
    ok(&oxka(
        &b,
        &["topics", "create", "--topic", &topic2, "-p", "3"],
    ));
    ok(&oxka_stdin(
        &b,
        &[
            "produce", "--topic", &topic2, "-k", ":", "-H", "src=cli", "--acks", "1",
        ],
        Some(b"a:1\nb:2\nc:3\n"),
    ));
    let out = ok(&oxka(
        &b,
        &[
            "consume",
            &topic2,
            "--from-beginning",
            "-n",
            "3",
            "-f",
            "%k=%v %h\\n",
        ],
    ));
    let mut lines: Vec<&str> = out.lines().collect();
    lines.sort();
    assert_eq!(lines, ["a=1 src=cli", "b=2 src=cli", "c=3 src=cli"]);
    // JSON output carries partition and offset.
    let out = ok(&oxka(
        &b,
        &[
            "consume",
            &topic2,
            "--from-beginning",
            "-n",
            "3",
            "--output",
            "json",
        ],
    ));
    for l in out.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        assert!(v["partition"].as_i64().unwrap() < 3);
        assert_eq!(v["headers"][0]["key"], "src");
    }
    // A missing separator fails with the line number.
    let o = oxka_stdin(&b, &["produce", &topic2, "-k", ":"], Some(b"a:1\nnokey\n"));
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("line 2"));
}

#[test]
fn group_lag_and_reset_offsets() {
    let b = broker();
    let topic = unique("cli-grp");
    let group = unique("billing");
    ok(&oxka(
        &b,
        &["topics", "create", &topic, "--partitions", "1"],
    ));
    let input: String = (0..1000).map(|i| format!("m{i}\n")).collect();
    ok(&oxka_stdin(
        &b,
        &["produce", &topic],
        Some(input.as_bytes()),
    ));

    // Read 600 as the group: it commits exactly what it printed.
    let out = ok(&oxka(
        &b,
        &[
            "consume",
            &topic,
            "--group",
            &group,
            "--from-beginning",
            "-n",
            "600",
        ],
    ));
    assert_eq!(out.lines().count(), 600);
    assert_eq!(out.lines().last(), Some("m599"));

    let d = json(&oxka(
        &b,
        &["groups", "describe", &group, "--output", "json"],
    ));
    let g = &d[0];
    assert_eq!(g["total_lag"], 400);
    assert_eq!(g["partitions"][0]["current_offset"], 600);
    assert_eq!(g["partitions"][0]["log_end_offset"], 1000);
    assert_eq!(g["partitions"][0]["lag"], 400);
    let table = ok(&oxka(&b, &["groups", "describe", &group]));
    assert!(
        table.contains("LOG-END-OFFSET") && table.contains("400"),
        "{table}"
    );
    let groups = json(&oxka(&b, &["groups", "list", "--output", "json"]));
    assert!(groups
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x["group"] == group.as_str()));

    // Dry run by default: nothing changes.
    let plan = json(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-offset",
            "100",
            "--output",
            "json",
        ],
    ));
    assert_eq!(plan["executed"], false);
    assert_eq!(plan["partitions"][0]["new_offset"], 100);
    let d = json(&oxka(
        &b,
        &["groups", "describe", &group, "--output", "json"],
    ));
    assert_eq!(d[0]["partitions"][0]["current_offset"], 600);

    // Execute, then the next consume starts there.
    ok(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-offset",
            "100",
            "--execute",
        ],
    ));
    let out = ok(&oxka(
        &b,
        &["consume", &topic, "--group", &group, "-n", "2"],
    ));
    assert_eq!(out, "m100\nm101\n");

    // --shift-by moves relative to the committed offset (102 now).
    ok(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--shift-by",
            "-50",
            "--execute",
        ],
    ));
    assert_eq!(
        ok(&oxka(
            &b,
            &["consume", &topic, "--group", &group, "-n", "1"]
        )),
        "m52\n"
    );
    // --to-latest, --to-earliest, --to-datetime in the future (= latest).
    ok(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            "--group",
            &group,
            "--topic",
            &topic,
            "--to-latest",
            "--execute",
        ],
    ));
    let d = json(&oxka(
        &b,
        &["groups", "describe", &group, "--output", "json"],
    ));
    assert_eq!(d[0]["total_lag"], 0);
    ok(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--all-topics",
            "--to-earliest",
            "--execute",
        ],
    ));
    assert_eq!(
        ok(&oxka(
            &b,
            &["consume", &topic, "--group", &group, "-n", "1"]
        )),
        "m0\n"
    );
    ok(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--to-datetime",
            "2999-01-01T00:00:00Z",
            "--execute",
        ],
    ));
    let d = json(&oxka(
        &b,
        &["groups", "describe", &group, "--output", "json"],
    ));
    assert_eq!(d[0]["partitions"][0]["current_offset"], 1000);

    ok(&oxka(&b, &["groups", "delete", &group]));
}

#[test]
fn topics_configs_cluster_and_exit_codes() {
    let b = broker();
    let topic = unique("cli-adm");
    ok(&oxka(
        &b,
        &[
            "topics",
            "create",
            &topic,
            "-p",
            "2",
            "-c",
            "retention.ms=3600000",
        ],
    ));
    let again = oxka(&b, &["topics", "create", &topic]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("TOPIC_ALREADY_EXISTS"));
    let list = json(&oxka(&b, &["topics", "list", "--output", "json"]));
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|t| t["name"] == topic.as_str() && t["partitions"] == 2));
    ok(&oxka(
        &b,
        &[
            "topics",
            "alter",
            &topic,
            "--partitions",
            "3",
            "--set",
            "retention.ms=7200000",
        ],
    ));
    let d = json(&oxka(
        &b,
        &["topics", "describe", &topic, "--output", "json"],
    ));
    assert_eq!(d["partitions"].as_array().unwrap().len(), 3);
    assert!(d["configs"]
        .as_array()
        .unwrap()
        .iter()
        .any(|c| c["name"] == "retention.ms" && c["value"] == "7200000"));

    ok(&oxka(
        &b,
        &["configs", "set", &topic, "--set", "cleanup.policy=compact"],
    ));
    let c = json(&oxka(
        &b,
        &[
            "configs",
            "describe",
            &topic,
            "--key",
            "cleanup.policy",
            "--output",
            "json",
        ],
    ));
    assert_eq!(c[0]["value"], "compact");
    ok(&oxka(
        &b,
        &["configs", "delete", &topic, "--delete", "cleanup.policy"],
    ));
    let c = json(&oxka(
        &b,
        &[
            "configs",
            "describe",
            &topic,
            "--key",
            "cleanup.policy",
            "--output",
            "json",
        ],
    ));
    assert_eq!(c[0]["value"], "delete");

    let info = json(&oxka(&b, &["cluster", "info", "--output", "json"]));
    assert_eq!(info["brokers"].as_array().unwrap().len(), 1);
    assert_eq!(info["brokers"][0]["port"], b.port as i64);

    // Consume with a timeout on an empty topic exits 0 with nothing printed.
    let out = ok(&oxka(&b, &["consume", &topic, "--timeout-ms", "300"]));
    assert!(out.is_empty());

    ok(&oxka(&b, &["topics", "delete", &topic]));
    // Failures exit 1 and say what to do; usage errors exit 2.
    let missing = oxka(&b, &["topics", "describe", &topic]);
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("hint:"));
    assert_eq!(oxka(&b, &["topics", "bogus"]).status.code(), Some(2));
    assert_eq!(
        oxka(&b, &["groups", "reset-offsets", "g", "--topic", "t"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(oxka(&b, &["consume"]).status.code(), Some(2));
    let nobody = Command::new(TestBroker::binary())
        .args(["topics", "list", "--bootstrap-server", "127.0.0.1:1"])
        .output()
        .unwrap();
    assert_eq!(nobody.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nobody.stderr).contains("oxka broker"));
}
