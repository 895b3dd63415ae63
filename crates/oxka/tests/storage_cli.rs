//! `oxka storage random-uuid | format | info` as a user runs them (the
//! real binary): Kafka's `kafka-storage.sh` messages and exit codes, and
//! that a refused format writes nothing.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::TestBroker;

fn oxka(args: &[&str]) -> Output {
    Command::new(TestBroker::binary())
        .args(args)
        .output()
        .expect("run oxka")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn ok(o: &Output) -> String {
    assert!(
        o.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        stdout(o),
        stderr(o)
    );
    stdout(o)
}

/// A node config with two log dirs and a separate metadata log dir.
struct Node {
    _tmp: tempfile::TempDir,
    config: PathBuf,
    data: [PathBuf; 2],
    metadata: PathBuf,
}

fn node(node_id: i32) -> Node {
    let tmp = tempfile::tempdir().unwrap();
    let data = [tmp.path().join("data-a"), tmp.path().join("data-b")];
    let metadata = tmp.path().join("metadata");
    let config = tmp.path().join("server.properties");
    std::fs::write(
        &config,
        format!(
            "node.id={node_id}\nlog.dirs={},{}\nmetadata.log.dir={}\n",
            data[0].display(),
            data[1].display(),
            metadata.display()
        ),
    )
    .unwrap();
    Node {
        _tmp: tmp,
        config,
        data,
        metadata,
    }
}

impl Node {
    fn dirs(&self) -> [&Path; 3] {
        [&self.metadata, &self.data[0], &self.data[1]]
    }

    fn format(&self, id: &str, extra: &[&str]) -> Output {
        let config = self.config.display().to_string();
        let mut args = vec!["storage", "format", "--cluster-id", id, "--config", &config];
        args.extend_from_slice(extra);
        oxka(&args)
    }
}

fn meta(dir: &Path) -> Option<BTreeMap<String, String>> {
    let text = std::fs::read_to_string(dir.join("meta.properties")).ok()?;
    Some(
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('='))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    )
}

fn new_id() -> String {
    ok(&oxka(&["storage", "random-uuid"])).trim().to_string()
}

#[test]
fn random_uuid_prints_kafka_cluster_ids() {
    let ids: Vec<String> = (0..5).map(|_| new_id()).collect();
    for id in &ids {
        assert_eq!(id.len(), 22, "{id}");
        assert!(!id.starts_with('-'), "{id}");
        assert!(
            id.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "{id}"
        );
    }
    let distinct: std::collections::HashSet<_> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len());
    // Its own output is a valid --cluster-id.
    let n = node(1);
    ok(&n.format(&ids[0], &[]));
}

#[test]
fn format_writes_meta_properties_into_every_dir() {
    let n = node(3);
    let id = new_id();
    let out = ok(&n.format(&id, &[]));
    assert_eq!(
        out,
        format!(
            "Formatting metadata directory {}\nFormatting data directory {}\nFormatting data directory {}\n",
            n.metadata.display(),
            n.data[0].display(),
            n.data[1].display()
        )
    );
    let mut dir_ids = std::collections::HashSet::new();
    for dir in n.dirs() {
        let m = meta(dir).unwrap_or_else(|| panic!("no meta.properties in {}", dir.display()));
        assert_eq!(m["version"], "1");
        assert_eq!(m["cluster.id"], id);
        assert_eq!(m["node.id"], "3");
        assert_eq!(m["directory.id"].len(), 22);
        assert!(
            dir_ids.insert(m["directory.id"].clone()),
            "directory ids differ"
        );
    }

    let info = oxka(&[
        "storage",
        "info",
        "--config",
        &n.config.display().to_string(),
    ]);
    let text = ok(&info);
    assert!(text.starts_with("Found log directories:\n"), "{text}");
    assert!(
        text.contains(&format!("cluster.id={id}")) && text.contains("node.id=3, version=1}"),
        "{text}"
    );
}

#[test]
fn an_already_formatted_dir_is_refused_and_nothing_is_written() {
    let n = node(1);
    let id = new_id();
    ok(&n.format(&id, &[]));
    let before = meta(&n.metadata).unwrap();
    std::fs::remove_dir_all(&n.data[1]).unwrap();

    let again = n.format(&id, &[]);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert_eq!(
        stderr(&again).trim(),
        format!(
            "error: Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
            n.metadata.display()
        )
    );
    assert_eq!(meta(&n.metadata).unwrap(), before, "identity kept");
    assert!(!n.data[1].exists(), "a refused format writes nothing");

    // storage info names the missing dir and exits 1.
    let info = oxka(&[
        "storage",
        "info",
        "--config",
        &n.config.display().to_string(),
    ]);
    assert_eq!(info.status.code(), Some(1));
    assert!(
        stdout(&info).contains(&format!(
            "Found problem:\n  {} does not exist",
            n.data[1].display()
        )),
        "{}",
        stdout(&info)
    );
}

#[test]
fn ignore_formatted_formats_only_the_others() {
    let n = node(2);
    let id = new_id();
    ok(&n.format(&id, &[]));
    let kept = meta(&n.data[0]).unwrap();
    std::fs::remove_dir_all(&n.data[1]).unwrap();

    let out = ok(&n.format(&id, &["--ignore-formatted"]));
    assert_eq!(
        out,
        format!("Formatting data directory {}\n", n.data[1].display())
    );
    assert_eq!(meta(&n.data[0]).unwrap(), kept);
    let fresh = meta(&n.data[1]).unwrap();
    assert_eq!(fresh["cluster.id"], id);
    assert_ne!(fresh["directory.id"], kept["directory.id"]);

    let out = ok(&n.format(&id, &["-g"]));
    assert_eq!(out, "All of the log directories are already formatted.\n");

    // A skipped dir of another cluster is an error, not something to skip.
    let other = new_id();
    std::fs::remove_dir_all(&n.data[1]).unwrap();
    let refused = n.format(&other, &["--ignore-formatted"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        stderr(&refused).contains(&format!("Expected {other}, but read {id}")),
        "{}",
        stderr(&refused)
    );
    assert!(!n.data[1].exists());
}

#[test]
fn bad_cluster_ids_and_configs_are_refused() {
    let n = node(1);
    for bad in [
        "bad",
        "dGVzdA",
        "ASNFZ4mrze_-3LqYdlQyEAA",
        "ASNFZ4mrze+/3LqYdlQyEA",
    ] {
        let o = n.format(bad, &[]);
        assert_eq!(o.status.code(), Some(1), "{bad}");
        assert!(
            stderr(&o).starts_with(&format!(
                "error: Cluster ID string {bad} does not appear to be a valid UUID"
            )),
            "{}",
            stderr(&o)
        );
    }
    for dir in n.dirs() {
        assert!(!dir.exists(), "{} written", dir.display());
    }
    // A config the broker would refuse is refused the same way (exit 2).
    let o = n.format(&new_id(), &["--override", "node.id=x"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("node.id"), "{}", stderr(&o));
    // --cluster-id is required.
    let o = oxka(&[
        "storage",
        "format",
        "--config",
        &n.config.display().to_string(),
    ]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn a_broker_starts_on_a_formatted_dir_with_its_cluster_id() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("logs");
    let id = new_id();
    let out = ok(&oxka(&[
        "storage",
        "format",
        "-t",
        &id,
        "--data-dir",
        &dir.display().to_string(),
    ]));
    assert_eq!(
        out,
        format!("Formatting metadata directory {}\n", dir.display())
    );
    let written = meta(&dir).unwrap();

    let b = TestBroker::start_in(&dir, &[]);
    let info = Command::new(TestBroker::binary())
        .args(["cluster", "info", "--output", "json", "-b", &b.bootstrap()])
        .output()
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&ok(&info)).unwrap();
    assert_eq!(info["cluster_id"], id.as_str());
    drop(b);
    assert_eq!(
        meta(&dir).unwrap(),
        written,
        "the broker keeps the dir's identity"
    );
}

/// A TLS listener without a keystore is refused, naming the key, before
/// any dir is written: by `storage format` and by the broker's start (it
/// used to be refused only after the broker had formatted its dirs).
#[test]
fn a_tls_listener_without_a_keystore_is_refused_before_any_dir_is_written() {
    let n = node(1);
    let config = n.config.display().to_string();
    let ssl = ["--override", "listeners=SSL://127.0.0.1:0"];
    let o = n.format(&new_id(), &ssl);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("ssl.keystore"), "{}", stderr(&o));
    let o = oxka(&[&["broker", "--config", &config][..], &ssl[..]].concat());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("ssl.keystore"), "{}", stderr(&o));
    for dir in n.dirs() {
        assert!(!dir.exists(), "{} written", dir.display());
    }
}
