//! Clusters of real `oxka` processes judged through librdkafka (the
//! `rdkafka` crate) and the native client: formation, administration from
//! every node, kill -9 of the active controller, loss and return of the
//! quorum's majority, a whole-cluster restart, separate controller and
//! broker roles, and a wiped broker catching up from a snapshot.

mod common;

use common::block_on;

use std::collections::BTreeSet;
use std::time::Duration;

use common::cluster::{wait_for, TestCluster};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::ClientConfig;

const WAIT: Duration = Duration::from_secs(30);

use common::admin_client as admin;

/// One CreateTopics through `bootstrap`: Ok or the error's text. The
/// broker gets `timeout` to decide (CreateTopics' timeoutMs); the client
/// waits 15 s longer, so an error within `timeout` is the broker's answer.
fn create(
    bootstrap: &str,
    name: &str,
    partitions: i32,
    rf: i32,
    timeout: Duration,
) -> Result<(), String> {
    let a = admin(bootstrap);
    let opts = AdminOptions::new()
        .operation_timeout(Some(timeout))
        .request_timeout(Some(timeout + Duration::from_secs(15)));
    let res = block_on(a.create_topics(
        &[NewTopic::new(name, partitions, TopicReplication::Fixed(rf))],
        &opts,
    ))
    .map_err(|e| e.to_string())?;
    for r in res {
        r.map_err(|(t, e)| format!("{t}: {e}"))?;
    }
    Ok(())
}

fn delete(bootstrap: &str, name: &str) {
    let a = admin(bootstrap);
    let opts = AdminOptions::new().operation_timeout(Some(WAIT));
    for r in block_on(a.delete_topics(&[name], &opts)).expect("delete topics") {
        r.expect("topic deleted");
    }
}

/// One node's Metadata: broker ids, and topics with their partition count.
type NodeView = (BTreeSet<i32>, Vec<(String, usize)>);

fn metadata(bootstrap: &str) -> Option<NodeView> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let md = c.fetch_metadata(None, Duration::from_secs(5)).ok()?;
    let brokers = md.brokers().iter().map(|b| b.id()).collect();
    let topics = md
        .topics()
        .iter()
        .filter(|t| t.error().is_none())
        .map(|t| (t.name().to_string(), t.partitions().len()))
        .collect();
    Some((brokers, topics))
}

/// Each partition's leader in one node's Metadata.
fn leaders(bootstrap: &str, topic: &str) -> Option<Vec<i32>> {
    let c: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .ok()?;
    let md = c.fetch_metadata(Some(topic), Duration::from_secs(5)).ok()?;
    let t = md.topics().first()?;
    Some(t.partitions().iter().map(|p| p.leader()).collect())
}

fn topic_everywhere(c: &TestCluster, name: &str, partitions: usize) {
    for id in c.running_brokers() {
        wait_for(WAIT, &format!("{name} on node {id}"), || {
            let (_, topics) = metadata(&c.bootstrap_of(id))?;
            topics
                .iter()
                .any(|(t, n)| t == name && *n == partitions)
                .then_some(())
        });
    }
}

fn gone_everywhere(c: &TestCluster, name: &str) {
    for id in c.running_brokers() {
        wait_for(WAIT, &format!("{name} gone from node {id}"), || {
            let (_, topics) = metadata(&c.bootstrap_of(id))?;
            (!topics.iter().any(|(t, _)| t == name)).then_some(())
        });
    }
}

fn formed(c: &TestCluster) {
    let want: BTreeSet<i32> = c.running_brokers().into_iter().collect();
    for id in c.running_brokers() {
        wait_for(WAIT, &format!("node {id} to list brokers {want:?}"), || {
            let (brokers, _) = metadata(&c.bootstrap_of(id))?;
            (brokers == want).then_some(())
        });
    }
}

/// The active controller, asked through a broker with the native client.
fn active_controller(c: &TestCluster) -> i32 {
    let cfg = oxka_client::ClientConfig::with_bootstrap(c.bootstrap());
    wait_for(WAIT, "a quorum leader", || {
        let admin = oxka_client::Admin::new(&cfg).ok()?;
        let q = block_on(admin.describe_quorum()).ok()?;
        (q.leader_id >= 0).then_some(q.leader_id)
    })
}

#[test]
fn three_combined_nodes_form_and_take_admin_requests_on_every_node() {
    let c = TestCluster::start(3, 0, 0, &[]);
    formed(&c);
    for id in [1, 2, 3] {
        let name = format!("from-node-{id}");
        create(&c.bootstrap_of(id), &name, 6, 3, WAIT).expect("create");
        topic_everywhere(&c, &name, 6);
    }
    // deleted through another node than the one that created it
    delete(&c.bootstrap_of(3), "from-node-1");
    gone_everywhere(&c, "from-node-1");
    // the name is free again at once
    create(&c.bootstrap_of(2), "from-node-1", 2, 2, WAIT).expect("re-create");
    topic_everywhere(&c, "from-node-1", 2);
    assert!(
        create(&c.bootstrap_of(1), "too-many-replicas", 1, 4, WAIT)
            .unwrap_err()
            .contains("replication factor"),
        "RF 4 on 3 brokers: INVALID_REPLICATION_FACTOR"
    );
}

#[test]
fn controller_failover_quorum_loss_and_whole_cluster_restart() {
    let mut c = TestCluster::start(3, 0, 0, &[]);
    formed(&c);
    create(&c.bootstrap(), "before", 3, 3, WAIT).expect("create");
    let leader = active_controller(&c);
    c.kill9(leader);
    // the survivors elect another leader and keep administering
    create(&c.bootstrap(), "after-kill", 3, 2, WAIT).expect("create with the leader gone");
    topic_everywhere(&c, "after-kill", 3);
    let second = active_controller(&c);
    assert_ne!(second, leader);
    // two of three voters down: nothing can be committed, and the broker
    // answers REQUEST_TIMED_OUT at the request's timeout instead of hanging
    // (the client would only give up 15 s later)
    c.kill9(second);
    let r = create(&c.bootstrap(), "no-quorum", 1, 1, Duration::from_secs(5));
    let err = r.expect_err("CreateTopics succeeded without a quorum");
    assert!(err.contains("Broker: Request timed out"), "{err}");
    // a majority again: the change goes through
    c.start_node(leader, false);
    c.wait_node_started(leader);
    wait_for(
        Duration::from_secs(60),
        "CreateTopics with the majority back",
        || create(&c.bootstrap(), "quorum-back", 1, 1, Duration::from_secs(5)).ok(),
    );
    c.start_node(second, true);
    formed(&c);
    // every node restarted: the same metadata comes back
    for id in [1, 2, 3] {
        assert_eq!(c.terminate(id), Some(0), "node {id} stops cleanly");
    }
    for id in [1, 2, 3] {
        c.start_node(id, false);
    }
    for id in [1, 2, 3] {
        c.wait_node_started(id);
    }
    formed(&c);
    for (name, n) in [("before", 3), ("after-kill", 3), ("quorum-back", 1)] {
        topic_everywhere(&c, name, n);
    }
}

/// SIGTERM on a broker first has the controller move its leaderships
/// (controlled.shutdown.enable, on by default): with fencing by session
/// timeout pushed out of reach, every partition it led has another leader
/// once it has stopped.
#[test]
fn controlled_shutdown_moves_leaderships_before_the_broker_stops() {
    let mut c = TestCluster::start(3, 0, 0, &["broker.session.timeout.ms=600000"]);
    formed(&c);
    create(&c.bootstrap(), "cs", 6, 3, WAIT).expect("create");
    topic_everywhere(&c, "cs", 6);
    let before = leaders(&c.bootstrap_of(1), "cs").expect("leaders");
    let victim = before[0];
    assert_eq!(c.terminate(victim), Some(0), "a clean stop");
    for id in c.running_brokers() {
        wait_for(
            WAIT,
            &format!("node {id} to show no partition led by {victim}"),
            || {
                let now = leaders(&c.bootstrap_of(id), "cs")?;
                now.iter().all(|l| *l != victim && *l >= 0).then_some(())
            },
        );
    }
}

/// A node whose data dir was formatted for another cluster is refused by
/// the voters and stops (exit 2, naming cluster.id); the others go on.
#[test]
fn a_node_formatted_for_another_cluster_is_refused_and_stops() {
    let mut c = TestCluster::start(3, 0, 0, &[]);
    formed(&c);
    c.kill9(3);
    let dir = c.data_dir(3).to_path_buf();
    std::fs::remove_dir_all(&dir).expect("wipe node 3");
    let bin = common::TestBroker::binary();
    let id = std::process::Command::new(&bin)
        .args(["storage", "random-uuid"])
        .output()
        .expect("random-uuid");
    let other = String::from_utf8_lossy(&id.stdout).trim().to_string();
    let fmt = std::process::Command::new(&bin)
        .args([
            "storage",
            "format",
            "-t",
            &other,
            "--override",
            "node.id=3",
            "--data-dir",
        ])
        .arg(&dir)
        .output()
        .expect("format");
    assert!(
        fmt.status.success(),
        "{}",
        String::from_utf8_lossy(&fmt.stderr)
    );
    let mut child = c
        .command_line(3)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start node 3");
    let status = wait_for(WAIT, "node 3 to stop", || child.try_wait().ok().flatten());
    let mut err = String::new();
    use std::io::Read;
    let _ = child.stderr.take().map(|mut e| e.read_to_string(&mut err));
    assert_eq!(status.code(), Some(2), "{err}");
    assert!(err.contains("cluster.id"), "{err}");
    create(&c.bootstrap(), "still-formed", 1, 2, WAIT).expect("the others go on");
}

#[test]
fn separate_roles_and_a_wiped_broker_catches_up_from_a_snapshot() {
    // small snapshots so that the wiped broker must start from one
    let mut c = TestCluster::start(
        0,
        3,
        3,
        &["metadata.log.max.record.bytes.between.snapshots=2000"],
    );
    formed(&c);
    assert_eq!(c.running_brokers(), vec![4, 5, 6]);
    // the voters are the controllers; the brokers follow the log as
    // observers (DescribeQuorum through a broker, forwarded)
    let cfg = oxka_client::ClientConfig::with_bootstrap(c.bootstrap());
    let (voters, observers) = wait_for(WAIT, "every broker observing the quorum", || {
        let admin = oxka_client::Admin::new(&cfg).ok()?;
        let q = block_on(admin.describe_quorum()).ok()?;
        let v: Vec<i32> = q.voters.iter().map(|r| r.replica_id).collect();
        let mut o: Vec<i32> = q.observers.iter().map(|r| r.replica_id).collect();
        o.sort();
        (o.len() == 3).then_some((v, o))
    });
    assert_eq!((voters, observers), (vec![1, 2, 3], vec![4, 5, 6]));
    for i in 0..15 {
        create(&c.bootstrap(), &format!("t{i}"), 2, 3, WAIT).expect("create");
    }
    for i in 0..15 {
        topic_everywhere(&c, &format!("t{i}"), 2);
    }
    // the controllers snapshotted and let the log before it go
    for id in [1, 2, 3] {
        let dir = c.data_dir(id).join("__cluster_metadata-0");
        wait_for(WAIT, &format!("a snapshot on controller {id}"), || {
            dir.join("snapshot").exists().then_some(())
        });
    }
    c.kill9(6);
    std::fs::remove_dir_all(c.data_dir(6)).expect("wipe node 6");
    c.start_node(6, true);
    formed(&c);
    for i in 0..15 {
        topic_everywhere(&c, &format!("t{i}"), 2);
    }
}
