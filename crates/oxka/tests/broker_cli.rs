//! `oxka broker` start-up behaviour: config layering and validation.

mod common;

use std::process::Command;

use common::TestBroker;

/// Starts the broker `cmd` with piped output, waits for its first stdout line
/// (the start-up line), kills it and returns that line and all its stderr.
fn first_line_and_stderr(cmd: &mut Command) -> (String, String) {
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    (line, String::from_utf8_lossy(&out.stderr).into_owned())
}

#[test]
fn invalid_value_is_an_error_naming_key_and_value_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let out = Command::new(TestBroker::binary())
        .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--override", "num.partitions=lots"])
        .output()
        .expect("run oxka");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("num.partitions") && err.contains("lots"),
        "{err}"
    );
    assert!(
        !data.exists(),
        "nothing may be written for an invalid config"
    );
}

#[test]
fn config_file_is_read_and_override_wins() {
    let dir = tempfile::tempdir().unwrap();
    let props = dir.path().join("server.properties");
    std::fs::write(
        &props,
        "# a Kafka server.properties\nnode.id=7\nnum.partitions=3\nsome.unknown.key=1\nmessage.max.bytes=oops\n",
    )
    .unwrap();
    // the file alone has an invalid value ...
    let out = Command::new(TestBroker::binary())
        .args(["broker", "--config"])
        .arg(&props)
        .args(["--data-dir"])
        .arg(dir.path().join("d1"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("message.max.bytes"));
    // ... which an override replaces; the broker then starts with node.id 7
    let (line, err) = first_line_and_stderr(
        Command::new(TestBroker::binary())
            .args(["broker", "--config"])
            .arg(&props)
            .args(["--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("d2"))
            .args(["--override", "message.max.bytes=2000000"]),
    );
    assert!(line.contains("node.id 7"), "{line}");
    assert!(err.contains("some.unknown.key"), "unknown keys warn: {err}");
}

/// Kafka's `.lock`: a second broker on a live broker's data dir refuses to
/// start (exit 2, naming the dir and the holder) without touching its files,
/// so the first broker's acknowledged records stay as they were.
#[test]
fn a_second_broker_on_the_same_data_dir_is_refused_before_touching_it() {
    let b = TestBroker::start();
    let topic = common::unique("locked");
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let producer: rdkafka::producer::FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", b.bootstrap())
            .create()
            .unwrap();
        producer
            .send(
                rdkafka::producer::FutureRecord::<(), _>::to(&topic).payload("first broker's"),
                std::time::Duration::from_secs(10),
            )
            .await
            .expect("acknowledged");
    });
    let snapshot = |dir: &std::path::Path| -> Vec<(std::path::PathBuf, Vec<u8>)> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            for e in std::fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                if p.is_dir() {
                    stack.push(p);
                } else {
                    out.push((p.clone(), std::fs::read(&p).unwrap()));
                }
            }
        }
        out.sort();
        out
    };
    let before = snapshot(b.data_path());
    let mut second = Command::new(TestBroker::binary())
        .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(b.data_path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run oxka");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while second.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = second.kill();
            let _ = second.wait();
            panic!("the second broker started on a data dir in use");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let out = second.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&b.data_path().display().to_string()) && err.contains("pid"),
        "the message names the dir and the holder: {err}"
    );
    assert_eq!(
        before,
        snapshot(b.data_path()),
        "the refused start changed the live broker's files"
    );
}

/// `--log-level warning` (log4j's and syslog's spelling) logs warnings, in
/// plain text when stderr is not a terminal; an unknown level is refused.
#[test]
fn log_level_aliases_and_no_colour_off_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let (line, err) = first_line_and_stderr(
        Command::new(TestBroker::binary())
            .args([
                "broker",
                "--listen",
                "127.0.0.1:0",
                "--log-level",
                "warning",
            ])
            .arg("--data-dir")
            .arg(dir.path().join("d"))
            .args(["--override", "some.unknown.key=1"]),
    );
    assert!(line.contains("started"), "{line}");
    assert!(err.contains("some.unknown.key"), "warnings logged: {err}");
    assert!(err.contains("WARN"), "{err}");
    assert!(!err.contains('\x1b'), "colour codes in a pipe: {err:?}");

    let out = Command::new(TestBroker::binary())
        .args([
            "broker",
            "--listen",
            "127.0.0.1:0",
            "--log-level",
            "verbose",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("e"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("not a log level"), "{err}");
    assert!(!dir.path().join("e").exists());
}

/// Settings that ask for protection oxka does not give stop start-up with exit code 2, naming the key, before
/// anything is written; they used to be logged as unknown and ignored.
#[test]
fn protection_oxka_cannot_give_stops_start_up() {
    let cases: &[(&[&str], &str)] = &[
        // TLS and SASL listeners are served now (tests/python/test_security.py)
        (
            // ZooKeeper-era class: only the StandardAuthorizer (or `oxka`) exists
            &["authorizer.class.name=kafka.security.authorizer.AclAuthorizer"],
            "authorizer.class.name",
        ),
        // the connection limits are enforced (tests/python/test_connection_limits.py)
    ];
    for (overrides, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cmd = Command::new(TestBroker::binary());
        cmd.args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data);
        for o in *overrides {
            cmd.args(["--override", o]);
        }
        let out = cmd.output().expect("run oxka");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{overrides:?}: {err}");
        assert!(
            err.contains(key) && err.contains("not support"),
            "{overrides:?}: {err}"
        );
        assert!(!data.exists(), "{overrides:?}: nothing may be written");
    }
}

/// A cluster misconfiguration stops start-up with exit code 2 and a
/// message naming the key, before anything is written (Kafka's
/// KafkaConfig checks): a controller missing from the voters, a voter that
/// is not a controller, duplicate voter ids, a controller listener
/// advertised to clients, a quorum without the controller listener.
#[test]
fn cluster_misconfigurations_stop_start_up_naming_the_key() {
    let listeners = "listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:0";
    let names = "controller.listener.names=CONTROLLER";
    let cases: &[(&[&str], &str)] = &[
        (
            &[
                "node.id=4",
                listeners,
                names,
                "controller.quorum.voters=1@h:1,2@h:2,3@h:3",
            ],
            "controller.quorum.voters",
        ),
        (
            &[
                "node.id=1",
                listeners,
                names,
                "controller.quorum.voters=1@h:1,1@h:2",
            ],
            "controller.quorum.voters",
        ),
        (
            &[
                "node.id=1",
                "process.roles=broker",
                "controller.quorum.voters=1@h:1,2@h:2",
            ],
            "controller.quorum.voters",
        ),
        (
            &[
                "node.id=1",
                listeners,
                names,
                "controller.quorum.voters=1@h:1,2@h:2,3@h:3",
                "advertised.listeners=PLAINTEXT://h:9092,CONTROLLER://h:9093",
            ],
            "advertised.listeners",
        ),
        (
            &["node.id=1", "controller.quorum.voters=1@h:1,2@h:2,3@h:3"],
            "controller.listener.names",
        ),
    ];
    for (overrides, key) in cases {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut cmd = Command::new(TestBroker::binary());
        cmd.args(["broker", "--data-dir"]).arg(&data);
        for o in *overrides {
            cmd.args(["--override", o]);
        }
        let out = cmd.output().expect("run oxka");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{overrides:?}: {err}");
        assert!(err.contains(key), "{overrides:?} must name {key}: {err}");
        assert!(!data.exists(), "{overrides:?}: nothing may be written");
    }
}

/// `ssl.*` / `sasl.*` settings are inert with PLAINTEXT listeners (as in
/// Kafka): the broker starts (they are read only for TLS and SASL
/// listeners, so no warning either).
#[test]
fn inert_security_settings_start_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    let (line, err) = first_line_and_stderr(
        Command::new(TestBroker::binary())
            .args(["broker", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("d"))
            .args([
                "--override",
                "sasl.enabled.mechanisms=PLAIN",
                "--override",
                "ssl.keystore.location=/nonexistent.jks",
            ]),
    );
    assert!(line.contains("started"), "{line}: {err}");
}

/// `max.connections.per.ip`: a connection over the limit is closed at once
/// (Kafka's connection quota), the ones within it are served.
#[test]
fn max_connections_per_ip_closes_the_extra_connection() {
    use std::io::{Read, Write};
    use std::net::TcpStream;
    use std::time::{Duration, Instant};
    let b = TestBroker::start_with(&["max.connections.per.ip=1"]);
    // ApiVersions v0, correlation id 7, client id "t"
    let req: &[u8] = &[0, 0, 0, 11, 0, 18, 0, 0, 0, 0, 0, 7, 0, 1, b't'];
    // A connection that got a response, or None if the broker closed it.
    let served = || -> Option<TcpStream> {
        let mut c = TcpStream::connect(b.bootstrap()).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
        c.write_all(req).ok()?;
        let mut size = [0u8; 4];
        c.read_exact(&mut size).ok()?;
        Some(c)
    };
    // the start-up probe's connection may still count for a moment
    let until_served = || {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(c) = served() {
                return c;
            }
            assert!(Instant::now() < deadline, "never served");
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let first = until_served();
    assert!(
        served().is_none(),
        "a second connection from one address is closed"
    );
    drop(first);
    until_served();
}
