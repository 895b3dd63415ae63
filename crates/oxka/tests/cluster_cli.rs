//! `oxka cluster info` and `oxka cluster quorum` against an oxka broker
//! (the real binaries). The same commands were checked by hand against a
//! three-node Apache Kafka 4.4 cluster (docs/kafka-reference.md).

mod common;

use std::process::{Command, Output};

use common::{unique, TestBroker};

fn oxka(b: &TestBroker, args: &[&str]) -> Output {
    Command::new(TestBroker::binary())
        .args(args)
        .args(["--bootstrap-server", &b.bootstrap()])
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

fn json(o: &Output) -> serde_json::Value {
    serde_json::from_str(&ok(o)).expect("json output")
}

#[test]
fn cluster_info_lists_brokers_with_rack_fenced_state_and_leaders() {
    let b = TestBroker::start_with(&["broker.rack=rack-x"]);
    let before = json(&oxka(&b, &["cluster", "info", "--output", "json"]));
    let leaders_before = before["brokers"][0]["leaders"].as_u64().unwrap();
    let topic = unique("leaders");
    ok(&oxka(
        &b,
        &["topics", "create", &topic, "--partitions", "5"],
    ));

    let info = json(&oxka(&b, &["cluster", "info", "--output", "json"]));
    let brokers = info["brokers"].as_array().unwrap();
    assert_eq!(brokers.len(), 1);
    assert_eq!(brokers[0]["id"], 1);
    assert_eq!(brokers[0]["rack"], "rack-x");
    // The broker answers DescribeCluster v2 (KIP-1073), which says.
    assert_eq!(brokers[0]["fenced"], false);
    assert_eq!(brokers[0]["leaders"].as_u64().unwrap(), leaders_before + 5);

    let text = ok(&oxka(&b, &["cluster", "info"]));
    let mut lines = text.lines().skip_while(|l| !l.starts_with("ID "));
    let header = lines
        .next()
        .unwrap_or_else(|| panic!("no brokers table:\n{text}"));
    assert!(
        header
            .split_whitespace()
            .eq(["ID", "HOST", "PORT", "RACK", "FENCED", "LEADERS"]),
        "{header}"
    );
    let row = lines
        .next()
        .unwrap_or_else(|| panic!("no broker row:\n{text}"));
    let cells: Vec<&str> = row.split_whitespace().collect();
    assert!(cells[0] == "1" || cells[0] == "1*", "{row}");
    assert_eq!(
        cells[3..],
        ["rack-x", "false", &(leaders_before + 5).to_string()]
    );
}

#[test]
fn quorum_usage_errors_exit_2() {
    let b = TestBroker::start();
    let o = oxka(&b, &["cluster", "quorum", "--human-readable"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("--replication"));
    let o = oxka(&b, &["cluster", "quorum", "--status", "--replication"]);
    assert_eq!(o.status.code(), Some(2));
}

/// A single node is the quorum's only voter and its leader.
#[test]
fn quorum_of_a_single_node() {
    let b = TestBroker::start();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admin =
        oxka_client::Admin::new(&oxka_client::ClientConfig::with_bootstrap(b.bootstrap())).unwrap();
    let q = rt.block_on(admin.describe_quorum()).unwrap();
    assert_eq!(q.leader_id, 1);
    assert!(q.leader_epoch >= 1, "{q:?}");
    assert_eq!(q.voters.len(), 1, "{q:?}");
    assert!(q.observers.is_empty(), "{q:?}");
    let leader = q.leader().expect("the leader is a voter");
    assert!(leader.log_end_offset >= q.high_watermark);
    assert!(q.high_watermark > 0, "the metadata log has records: {q:?}");
    assert!(leader.last_caught_up_timestamp.is_some(), "{q:?}");
    assert_eq!(q.max_follower_lag(), (0, 0));

    let cluster_id = rt
        .block_on(admin.describe_cluster())
        .unwrap()
        .cluster_id
        .unwrap();
    let status = ok(&oxka(&b, &["cluster", "quorum"]));
    let lines: Vec<&str> = status.lines().collect();
    assert_eq!(lines[0], format!("ClusterId:              {cluster_id}"));
    assert_eq!(lines[1], "LeaderId:               1");
    assert_eq!(lines[4], "MaxFollowerLag:         0");
    assert_eq!(lines[5], "MaxFollowerLagTimeMs:   0");
    assert!(
        lines[6].starts_with("CurrentVoters:          [{\"id\": 1"),
        "{status}"
    );
    assert_eq!(lines[7], "CurrentObservers:       []");

    let replication = ok(&oxka(&b, &["cluster", "quorum", "--replication"]));
    let rows: Vec<Vec<&str>> = replication
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(
        rows[0],
        [
            "NodeId",
            "DirectoryId",
            "LogEndOffset",
            "Lag",
            "LastFetchTimestamp",
            "LastCaughtUpTimestamp",
            "Status"
        ]
    );
    assert_eq!(rows.len(), 2, "{replication}");
    assert_eq!(rows[1][0], "1");
    assert_eq!(rows[1][3], "0");
    assert_eq!(rows[1][6], "Leader");

    let j = json(&oxka(&b, &["cluster", "quorum", "--output", "json"]));
    assert_eq!(j["leader_id"], 1);
    assert_eq!(j["cluster_id"], cluster_id.as_str());
    assert_eq!(j["voters"][0]["status"], "Leader");
}
