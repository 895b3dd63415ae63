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
    // `oxka top` shows the same lag, and the topic's end offsets
    let top = json(&oxka(
        &b,
        &["top", "--once", "--interval", "0.2", "--output", "json"],
    ));
    let row = top["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["topic"] == topic.as_str())
        .unwrap_or_else(|| panic!("{topic} in {top}"))
        .clone();
    assert_eq!(row["end_offsets"], 1000, "{top}");
    assert_eq!(row["partitions"], 1, "{top}");
    let row = top["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .find(|g| g["group"] == group.as_str())
        .unwrap_or_else(|| panic!("{group} in {top}"))
        .clone();
    assert_eq!(row["lag"], 400, "{top}");
    let text = ok(&oxka(&b, &["top", "--once", "--interval", "0.2"]));
    assert!(
        text.contains("MSG/S") && text.contains(&group) && text.contains("400"),
        "{text}"
    );
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

/// A pipe whose reader is already gone: what `| head -0` leaves a writer.
fn closed_pipe() -> Stdio {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0i32; 2];
    // SAFETY: pipe(2) fills both descriptors on success; the read end is
    // closed at once and the write end is owned by the returned Stdio.
    unsafe {
        assert_eq!(libc::pipe(fds.as_mut_ptr()), 0, "pipe(2)");
        libc::close(fds[0]);
        Stdio::from(OwnedFd::from_raw_fd(fds[1]))
    }
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let b = broker();
    ok(&oxka(&b, &["topics", "create", &unique("cli-pipe")]));
    for output in ["json", "text"] {
        let o = Command::new(TestBroker::binary())
            .args(["topics", "list", "--output", output])
            .env("OXKA_BROKERS", b.bootstrap())
            .stdout(closed_pipe())
            .stderr(Stdio::piped())
            .output()
            .expect("run oxka");
        assert_eq!(
            o.status.code(),
            Some(0),
            "--output {output}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        assert!(
            o.stderr.is_empty(),
            "{}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
}

/// A background `oxka` whose stdout lines arrive on a channel, so a test
/// can wait for output with a bound and signal the process.
struct Running {
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
}

impl Running {
    fn start(b: &TestBroker, args: &[&str]) -> Running {
        let mut child = Command::new(TestBroker::binary())
            .args(args)
            .env("OXKA_BROKERS", b.bootstrap())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn oxka");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for l in std::io::BufReader::new(stdout).lines() {
                match l {
                    Ok(l) => {
                        if tx.send(l).is_err() {
                            return;
                        }
                    }
                    Err(_) => return,
                }
            }
        });
        Running { child, lines }
    }

    /// The next `n` lines, each within 30 s.
    fn take(&mut self, n: usize) -> Vec<String> {
        (0..n)
            .map(|i| {
                self.lines
                    .recv_timeout(std::time::Duration::from_secs(30))
                    .unwrap_or_else(|e| {
                        let _ = self.child.kill();
                        let mut err = String::new();
                        if let Some(mut s) = self.child.stderr.take() {
                            let _ = std::io::Read::read_to_string(&mut s, &mut err);
                        }
                        panic!("line {} of {n} did not come ({e}); stderr: {err}", i + 1)
                    })
            })
            .collect()
    }

    /// Sends `signal` and waits for the exit code and stderr.
    fn signal(mut self, signal: &str) -> (Option<i32>, String) {
        let _ = Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.child.id().to_string())
            .status();
        self.wait()
    }

    /// Waits for the exit code and stderr.
    fn wait(&mut self) -> (Option<i32>, String) {
        let status = self.child.wait().expect("wait");
        let mut err = String::new();
        if let Some(mut s) = self.child.stderr.take() {
            let _ = std::io::Read::read_to_string(&mut s, &mut err);
        }
        (status.code(), err)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `oxka groups describe GROUP --output json` until `check` holds.
fn wait_for_group(
    b: &TestBroker,
    group: &str,
    what: &str,
    check: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let o = oxka(b, &["groups", "describe", group, "--output", "json"]);
        if o.status.success() {
            let d: serde_json::Value = serde_json::from_slice(&o.stdout).expect("json");
            if check(&d[0]) {
                return d[0].clone();
            }
            assert!(
                std::time::Instant::now() < deadline,
                "group {group}: {what} never held: {d}"
            );
        } else {
            assert!(
                std::time::Instant::now() < deadline,
                "group {group}: {what}: {}",
                String::from_utf8_lossy(&o.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

fn produce_lines(b: &TestBroker, topic: &str, lines: std::ops::Range<i32>) {
    let input: String = lines.map(|i| format!("m{i}\n")).collect();
    ok(&oxka_stdin(b, &["produce", topic], Some(input.as_bytes())));
}

/// SIGTERM (systemd, `timeout`, a container stop) ends `consume --group`
/// as Ctrl-C does: what was printed is committed, the member leaves at
/// once, and the exit code is the shell's 143 (130 for SIGINT).
#[test]
fn sigterm_commits_what_was_printed_and_leaves_the_group() {
    let b = broker();
    let topic = unique("cli-term");
    ok(&oxka(&b, &["topics", "create", &topic, "-p", "1"]));
    produce_lines(&b, &topic, 0..10);
    for (signal, code) in [("TERM", 143), ("INT", 130)] {
        let group = unique("term");
        let mut c = Running::start(
            &b,
            &[
                "consume",
                &topic,
                "--group",
                &group,
                "--from-beginning",
                // no periodic commit: only the stop commits
                "-X",
                "auto.commit.interval.ms=600000",
            ],
        );
        assert_eq!(c.take(10).last().map(String::as_str), Some("m9"));
        let (exit, stderr) = c.signal(signal);
        assert_eq!(exit, Some(code), "SIG{signal}: {stderr}");
        let d = wait_for_group(&b, &group, "offsets committed", |g| {
            g["partitions"][0]["current_offset"] == 10
        });
        // left at once, not after the session timeout
        assert_eq!(d["members"], 0, "SIG{signal}: {d}");
        assert_eq!(d["state"], "Empty", "SIG{signal}: {d}");
    }
}

/// A broker restart does not end `oxka consume`: it reconnects and goes
/// on printing, as kcat and Kafka's console consumer do.
#[test]
fn consume_survives_a_broker_restart() {
    let mut b = broker();
    let topic = unique("cli-restart");
    ok(&oxka(&b, &["topics", "create", &topic, "-p", "1"]));
    produce_lines(&b, &topic, 0..5);
    let mut n = 5;
    for group in [None, Some(unique("restart"))] {
        let mut args = vec!["consume", &topic, "--from-beginning"];
        if let Some(g) = &group {
            args.extend(["--group", g.as_str()]);
        }
        let mut c = Running::start(&b, &args);
        let before = c.take(n as usize);
        assert_eq!(before.first().map(String::as_str), Some("m0"));
        b.restart();
        n += 5;
        produce_lines(&b, &topic, (n - 5)..n);
        // up to the last new record; a group member may re-read what it
        // had not committed yet (at least once), but nothing is skipped
        let last = format!("m{}", n - 1);
        let mut after = Vec::new();
        while after.last() != Some(&last) {
            after.extend(c.take(1));
        }
        assert!(
            after.ends_with(&((n - 5)..n).map(|i| format!("m{i}")).collect::<Vec<_>>()),
            "group {group:?}: {after:?}"
        );
        if group.is_none() {
            assert_eq!(after.len(), 5, "{after:?}");
        }
        assert!(
            c.child.try_wait().expect("try_wait").is_none(),
            "the consumer exited"
        );
    }
}

/// `--timeout-ms` bounds the retrying: a broker that stays down ends the
/// command with an error naming it.
#[test]
fn consume_gives_up_on_a_dead_broker_after_its_timeout() {
    let mut b = broker();
    let topic = unique("cli-dead");
    ok(&oxka(&b, &["topics", "create", &topic, "-p", "1"]));
    produce_lines(&b, &topic, 0..3);
    let mut c = Running::start(
        &b,
        &[
            "consume",
            &topic,
            "--from-beginning",
            "--timeout-ms",
            "5000",
        ],
    );
    c.take(3);
    b.kill9();
    let (exit, stderr) = c.wait();
    assert_eq!(exit, Some(1), "{stderr}");
    assert!(stderr.contains("gave up"), "{stderr}");
}

/// A line without the key separator stops `produce` there, but only after
/// the lines before it are acknowledged; the error names the line.
#[test]
fn produce_reports_the_line_without_a_key_separator_after_flushing() {
    let b = broker();
    let topic = unique("cli-sep");
    ok(&oxka(&b, &["topics", "create", &topic, "-p", "1"]));
    let o = oxka_stdin(
        &b,
        // a long linger: the records before the bad line are still queued
        &["produce", &topic, "-k", ":", "--linger-ms", "2000"],
        Some(b"a:1\nb:2\nc:3\nno separator\nd:4\n"),
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("line 4"), "{err}");
    assert!(err.contains("3 record(s)"), "{err}");
    let out = ok(&oxka(
        &b,
        &[
            "consume",
            &topic,
            "--from-beginning",
            "--timeout-ms",
            "1000",
            "-f",
            "%k=%v\\n",
        ],
    ));
    assert_eq!(out, "a=1\nb=2\nc=3\n");
}

/// `produce` and `perf produce` let the broker auto-create a missing topic
/// (auto.create.topics.enable, on by default), as Kafka's tools do.
#[test]
fn produce_and_perf_produce_auto_create_the_topic() {
    let b = broker();
    let topic = unique("cli-auto");
    ok(&oxka_stdin(&b, &["produce", &topic], Some(b"x\ny\n")));
    let out = ok(&oxka(
        &b,
        &[
            "consume",
            &topic,
            "--from-beginning",
            "--timeout-ms",
            "1000",
        ],
    ));
    assert_eq!(out, "x\ny\n");
    let perf = unique("cli-auto-perf");
    ok(&oxka(
        &b,
        &[
            "perf",
            "produce",
            "--topic",
            &perf,
            "--num-records",
            "100",
            "--record-size",
            "10",
            "--throughput",
            "-1",
        ],
    ));
    let d = json(&oxka(
        &b,
        &["topics", "describe", &perf, "--output", "json"],
    ));
    assert!(!d["partitions"].as_array().unwrap().is_empty());
    // with auto-creation off the command says what to do
    let off = TestBroker::start_with(&["auto.create.topics.enable=false"]);
    let o = oxka_stdin(&off, &["produce", "nope"], Some(b"x\n"));
    assert_eq!(o.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("oxka topics create"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// The forms `--help` shows work; negative numbers where Kafka's tools take
/// them; no Rust debug text in errors.
#[test]
fn help_forms_negative_numbers_and_plain_errors() {
    let b = broker();
    let topic = unique("cli-forms");
    ok(&oxka(&b, &["topics", "create", &topic, "-p", "1"]));
    let help = ok(&oxka(&b, &["configs", "set", "--help"]));
    assert!(
        help.contains("oxka configs set orders retention.ms="),
        "{help}"
    );
    ok(&oxka(
        &b,
        &["configs", "set", &topic, "retention.ms=86400000"],
    ));
    ok(&oxka(
        &b,
        &["configs", "set", "--topic", &topic, "segment.ms=3600000"],
    ));
    ok(&oxka(
        &b,
        &[
            "configs",
            "set",
            &topic,
            "--add-config",
            "cleanup.policy=compact",
        ],
    ));
    let c = json(&oxka(
        &b,
        &["configs", "describe", &topic, "--output", "json"],
    ));
    for (k, v) in [
        ("retention.ms", "86400000"),
        ("segment.ms", "3600000"),
        ("cleanup.policy", "compact"),
    ] {
        assert!(
            c.as_array()
                .unwrap()
                .iter()
                .any(|e| e["name"] == k && e["value"] == v),
            "{k}: {c}"
        );
    }
    ok(&oxka(&b, &["configs", "delete", &topic, "cleanup.policy"]));

    produce_lines(&b, &topic, 0..10);
    // the last two records: kcat's `-o -2`
    let out = ok(&oxka(
        &b,
        &["consume", &topic, "--offset", "-2", "--timeout-ms", "1000"],
    ));
    assert_eq!(out, "m8\nm9\n");
    let group = unique("forms");
    ok(&oxka(
        &b,
        &[
            "consume",
            &topic,
            "--group",
            &group,
            "--from-beginning",
            "-n",
            "6",
        ],
    ));
    let plan = json(&oxka(
        &b,
        &[
            "groups",
            "reset-offsets",
            &group,
            "--topic",
            &topic,
            "--shift-by",
            "-5",
            "--output",
            "json",
        ],
    ));
    assert_eq!(plan["partitions"][0]["new_offset"], 1);

    let missing = oxka(&b, &["configs", "describe", "no-such-topic"]);
    assert_eq!(missing.status.code(), Some(1));
    let err = String::from_utf8_lossy(&missing.stderr);
    assert!(err.contains("topic `no-such-topic`"), "{err}");
    assert!(!err.contains("Topic(\""), "{err}");
}

/// KIP-848 groups (`group.protocol=consumer`): described with
/// ConsumerGroupDescribe (members, assignments, epochs), listed with TYPE
/// Consumer (classic groups: Classic), reset refused with a clear message
/// while members are active, then reset and deleted once it is empty.
#[test]
fn kip848_groups_in_the_cli() {
    let b = TestBroker::start_with(&[
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.heartbeat.interval.ms=500",
    ]);
    let topic = unique("cli-848");
    ok(&oxka(&b, &["topics", "create", &topic, "-p", "2"]));
    produce_lines(&b, &topic, 0..10);
    let classic = unique("classic");
    ok(&oxka(
        &b,
        &[
            "consume",
            &topic,
            "--group",
            &classic,
            "--from-beginning",
            "-n",
            "1",
        ],
    ));
    let group = unique("kip848");
    let mut c = Running::start(
        &b,
        &[
            "consume",
            &topic,
            "--group",
            &group,
            "--from-beginning",
            "-X",
            "group.protocol=consumer",
        ],
    );
    c.take(10);
    let d = wait_for_group(&b, &group, "one member with both partitions", |g| {
        g["members"] == 1
            && g["member_details"][0]["assignment"]
                .as_array()
                .is_some_and(|a| a.len() == 2)
    });
    assert_eq!(d["type"], "Consumer", "{d}");
    assert_eq!(d["state"], "Stable", "{d}");
    assert!(d["group_epoch"].as_i64().unwrap() >= 1, "{d}");
    assert!(
        d["member_details"][0]["member_epoch"].as_i64().unwrap() >= 1,
        "{d}"
    );
    let table = ok(&oxka(&b, &["groups", "describe", &group]));
    for col in [
        "CURRENT-EPOCH",
        "TARGET-ASSIGNMENT",
        "Consumer",
        &format!("{topic}:0,1"),
    ] {
        assert!(table.contains(col), "{col}: {table}");
    }
    let list = json(&oxka(&b, &["groups", "list", "--output", "json"]));
    let type_of = |g: &str| {
        list.as_array()
            .unwrap()
            .iter()
            .find(|x| x["group"] == g)
            .map(|x| x["type"].clone())
    };
    assert_eq!(type_of(&group), Some("Consumer".into()), "{list}");
    assert_eq!(type_of(&classic), Some("Classic".into()), "{list}");
    let table = ok(&oxka(&b, &["groups", "list"]));
    assert!(
        table.contains("TYPE") && table.contains("PROTOCOL"),
        "{table}"
    );

    let reset = [
        "groups",
        "reset-offsets",
        &group,
        "--topic",
        &topic,
        "--to-earliest",
        "--execute",
    ];
    let busy = oxka(&b, &reset);
    assert_eq!(busy.status.code(), Some(1));
    let err = String::from_utf8_lossy(&busy.stderr);
    assert!(err.contains("active member"), "{err}");

    let (exit, stderr) = c.signal("TERM");
    assert_eq!(exit, Some(143), "{stderr}");
    wait_for_group(&b, &group, "empty", |g| g["members"] == 0);
    ok(&oxka(&b, &reset));
    let d = wait_for_group(&b, &group, "reset", |_| true);
    for p in d["partitions"].as_array().unwrap() {
        assert_eq!(p["current_offset"], 0, "{d}");
    }
    ok(&oxka(&b, &["groups", "delete", &group]));
    let gone = oxka(&b, &["groups", "describe", &group]);
    assert_eq!(gone.status.code(), Some(1));
}

/// Client quotas through `oxka configs`, in oxka's spelling and
/// kafka-configs': set, describe (exact, default, every user), remove,
/// Kafka's validation, and a restart keeps them (they are in the metadata
/// log).
#[test]
fn client_quotas_in_the_cli_survive_a_restart() {
    let mut b = broker();
    ok(&oxka(
        &b,
        &[
            "configs",
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
            "--add-config",
            "producer_byte_rate=1048576,consumer_byte_rate=2097152",
        ],
    ));
    ok(&oxka(
        &b,
        &[
            "configs",
            "set",
            "--client-defaults",
            "request_percentage=25.5",
        ],
    ));
    ok(&oxka(
        &b,
        &[
            "configs",
            "set",
            "--user",
            "alice",
            "--client",
            "app",
            "controller_mutation_rate=10",
        ],
    ));
    let all_users = json(&oxka(
        &b,
        &[
            "configs",
            "--describe",
            "--entity-type",
            "users",
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        all_users,
        serde_json::json!([{"entity": {"user": "alice"},
            "quotas": {"consumer_byte_rate": 2097152.0, "producer_byte_rate": 1048576.0}}])
    );
    let text = ok(&oxka(&b, &["configs", "describe", "--client-defaults"]));
    assert!(
        text.contains("client-id=<default>") && text.contains("25.5"),
        "{text}"
    );
    // Kafka's rules: known keys, positive values, integral byte rates
    for bad in ["nope=1", "producer_byte_rate=0", "producer_byte_rate=1.5"] {
        let o = oxka(&b, &["configs", "set", "--user", "bob", bad]);
        assert!(!o.status.success(), "{bad} was accepted");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("INVALID_REQUEST") || err.contains("nvalid"),
            "{bad}: {err}"
        );
    }
    ok(&oxka(
        &b,
        &[
            "configs",
            "--alter",
            "--entity-type",
            "users",
            "--entity-name",
            "alice",
            "--delete-config",
            "consumer_byte_rate",
        ],
    ));
    b.restart();
    let after = json(&oxka(
        &b,
        &["configs", "describe", "--user", "alice", "--output", "json"],
    ));
    assert_eq!(
        after,
        serde_json::json!([{"entity": {"user": "alice"},
            "quotas": {"producer_byte_rate": 1048576.0}}])
    );
    let both = json(&oxka(
        &b,
        &[
            "configs", "describe", "--user", "alice", "--client", "app", "--output", "json",
        ],
    ));
    assert_eq!(both[0]["quotas"]["controller_mutation_rate"], 10.0);
    let defaults = json(&oxka(
        &b,
        &[
            "configs",
            "describe",
            "--client-defaults",
            "--output",
            "json",
        ],
    ));
    assert_eq!(defaults[0]["quotas"]["request_percentage"], 25.5);
    // an IP's connection_creation_rate (KIP-612): an address, its one key
    ok(&oxka(
        &b,
        &[
            "configs",
            "set",
            "--ip",
            "10.1.2.3",
            "connection_creation_rate=5",
        ],
    ));
    for bad in [
        &["--ip", "not-an-ip", "connection_creation_rate=5"][..],
        &["--ip", "10.1.2.3", "producer_byte_rate=5"][..],
    ] {
        let mut args = vec!["configs", "set"];
        args.extend_from_slice(bad);
        assert!(!oxka(&b, &args).status.success(), "{bad:?} was accepted");
    }
    let ips = json(&oxka(
        &b,
        &[
            "configs",
            "--describe",
            "--entity-type",
            "ips",
            "--output",
            "json",
        ],
    ));
    assert_eq!(
        ips,
        serde_json::json!([{"entity": {"ip": "10.1.2.3"},
            "quotas": {"connection_creation_rate": 5.0}}])
    );
}
