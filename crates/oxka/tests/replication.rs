//! Partition replication across real `oxka` processes, judged through
//! librdkafka (the `rdkafka` crate): acks=all writes survive kill -9 of
//! their leader, a paused leader comes back as a follower and truncates
//! what only it had, `min.insync.replicas` refuses writes the ISR cannot
//! hold, and below the high watermark every replica's log is the same,
//! byte for byte.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::block_on;
use common::cluster::{wait_for, TestCluster};
use rdkafka::admin::{AdminOptions, NewTopic, TopicReplication};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, ClientContext, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(60);

/// Fast failure detection, so a test waits seconds rather than Kafka's
/// defaults for a dead broker to be fenced and a lagging one dropped.
const FAST: &[&str] = &[
    "broker.session.timeout.ms=2000",
    "broker.heartbeat.interval.ms=200",
    "replica.lag.time.max.ms=2000",
    "replica.fetch.wait.max.ms=200",
    "replica.fetch.backoff.ms=200",
];

fn create_topic(c: &TestCluster, name: &str, partitions: i32, rf: i32, min_isr: &str) {
    let a = common::admin_client(&c.bootstrap());
    let opts = AdminOptions::new().operation_timeout(Some(WAIT));
    let topic = NewTopic::new(name, partitions, TopicReplication::Fixed(rf))
        .set("min.insync.replicas", min_isr);
    for r in block_on(a.create_topics(&[topic], &opts)).expect("create topics") {
        r.expect("topic created");
    }
}

/// (leader, isr) of each partition in the Metadata of any running node.
fn partitions(c: &TestCluster, topic: &str) -> Option<Vec<(i32, Vec<i32>)>> {
    for id in c.running_brokers() {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", c.bootstrap_of(id))
            .create()
            .ok()?;
        let Ok(md) = consumer.fetch_metadata(Some(topic), Duration::from_secs(5)) else {
            continue;
        };
        let t = md.topics().first()?;
        if t.partitions().is_empty() {
            continue;
        }
        return Some(
            t.partitions()
                .iter()
                .map(|p| (p.leader(), p.isr().to_vec()))
                .collect(),
        );
    }
    None
}

fn wait_full_isr(c: &TestCluster, topic: &str, rf: usize) {
    wait_for(WAIT, &format!("every ISR of {topic} full"), || {
        let ps = partitions(c, topic)?;
        ps.iter()
            .all(|(l, isr)| *l >= 0 && isr.len() == rf)
            .then_some(())
    });
}

/// Delivery reports: what was acknowledged, at which offset, and what failed.
#[derive(Clone, Default)]
struct Acks {
    ok: Arc<Mutex<Vec<(i32, i64, String)>>>,
    failed: Arc<Mutex<Vec<(String, RDKafkaErrorCode)>>>,
}

impl ClientContext for Acks {}

impl ProducerContext for Acks {
    type DeliveryOpaque = ();
    fn delivery(&self, r: &DeliveryResult<'_>, _: ()) {
        match r {
            Ok(m) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                self.ok.lock().unwrap().push((m.partition(), m.offset(), v));
            }
            Err((e, m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                let code = match e {
                    KafkaError::MessageProduction(code) => *code,
                    _ => RDKafkaErrorCode::Fail,
                };
                self.failed.lock().unwrap().push((v, code));
            }
        }
    }
}

fn producer(c: &TestCluster, acks: &str, timeout_ms: u64) -> (ThreadedProducer<Acks>, Acks) {
    let acks_ctx = Acks::default();
    let p = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("acks", acks)
        .set(
            "enable.idempotence",
            if acks == "all" { "true" } else { "false" },
        )
        .set("message.timeout.ms", timeout_ms.to_string())
        // a request in flight to a paused leader holds the idempotent
        // producer's later batches until it times out (librdkafka keeps
        // the order): 30 s by default, which made the zombie test take
        // a minute
        .set("request.timeout.ms", "5000")
        .set("linger.ms", "5")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create_with_context(acks_ctx.clone())
        .expect("producer");
    (p, acks_ctx)
}

fn send(p: &ThreadedProducer<Acks>, topic: &str, values: impl Iterator<Item = String>) {
    for v in values {
        let mut rec = BaseRecord::to(topic).payload(&v).key(&v);
        loop {
            match p.send(rec) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    rec = r;
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err((e, _)) => panic!("send: {e}"),
            }
        }
    }
}

/// Every record of `topic`, read from the start on the current leaders.
fn read_all(c: &TestCluster, topic: &str, partitions: i32) -> BTreeMap<(i32, i64), String> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", format!("check-{}", uuid::Uuid::new_v4()))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition_offset(topic, p, rdkafka::Offset::Beginning)
            .expect("tpl");
    }
    consumer.assign(&tpl).expect("assign");
    let mut out = BTreeMap::new();
    let mut quiet_since = Instant::now();
    let deadline = Instant::now() + WAIT;
    while quiet_since.elapsed() < Duration::from_secs(3) && Instant::now() < deadline {
        match consumer.poll(Duration::from_millis(200)) {
            Some(Ok(m)) => {
                let v = String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string();
                out.insert((m.partition(), m.offset()), v);
                quiet_since = Instant::now();
            }
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    out
}

/// Every acknowledged record is where its acknowledgement said, and no
/// value is stored twice (idempotence across the failover).
fn check_acked(acks: &Acks, stored: &BTreeMap<(i32, i64), String>) {
    let ok = acks.ok.lock().unwrap();
    for (p, o, v) in ok.iter() {
        assert_eq!(
            stored.get(&(*p, *o)),
            Some(v),
            "acknowledged record {v} at {p}/{o} lost"
        );
    }
    let mut seen = BTreeSet::new();
    for v in stored.values() {
        assert!(seen.insert(v.clone()), "{v} stored twice");
    }
}

/// The log segment files of one partition on every running node hosting
/// it are the same, byte for byte (all replicas caught up).
fn logs_identical(c: &TestCluster, topic: &str, partition: i32) {
    let read = |id: i32| -> BTreeMap<String, Vec<u8>> {
        let dir = c.data_dir(id).join(format!("{topic}-{partition}"));
        let mut files = BTreeMap::new();
        for e in std::fs::read_dir(&dir).expect("partition dir").flatten() {
            let name = e.file_name().to_string_lossy().to_string();
            if name.ends_with(".log") {
                files.insert(name, std::fs::read(e.path()).expect("segment"));
            }
        }
        files
    };
    let ids: Vec<i32> = c
        .running_brokers()
        .into_iter()
        .filter(|id| {
            c.data_dir(*id)
                .join(format!("{topic}-{partition}"))
                .exists()
        })
        .collect();
    assert!(ids.len() >= 2, "replicas of {topic}-{partition}: {ids:?}");
    wait_for(
        WAIT,
        &format!("identical logs of {topic}-{partition}"),
        || {
            let first = read(ids[0]);
            ids[1..].iter().all(|id| read(*id) == first).then_some(())
        },
    );
}

#[test]
fn acks_all_writes_survive_kill9_of_the_leader_and_replicas_stay_identical() {
    let mut c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "r", 3, 3, "2");
    wait_full_isr(&c, "r", 3);
    let (p, acks) = producer(&c, "all", 60_000);
    send(&p, "r", (0..300).map(|i| format!("a-{i}")));
    p.flush(WAIT).expect("flush");
    assert_eq!(acks.ok.lock().unwrap().len(), 300);

    let leader = partitions(&c, "r").expect("metadata")[0].0;
    c.kill9(leader);
    send(&p, "r", (0..300).map(|i| format!("b-{i}")));
    p.flush(WAIT).expect("flush after the kill");
    assert!(
        acks.failed.lock().unwrap().is_empty(),
        "writes failed across the failover: {:?}",
        acks.failed.lock().unwrap()
    );
    assert_eq!(acks.ok.lock().unwrap().len(), 600);
    let now = partitions(&c, "r").expect("metadata");
    assert_ne!(now[0].0, leader, "a new leader for partition 0");

    c.start_node(leader, true);
    wait_full_isr(&c, "r", 3);
    let stored = read_all(&c, "r", 3);
    check_acked(&acks, &stored);
    assert_eq!(stored.len(), 600, "only what was sent, once");
    for partition in 0..3 {
        logs_identical(&c, "r", partition);
    }
}

#[test]
fn a_paused_leader_returns_as_a_follower_and_truncates_what_only_it_had() {
    let c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "z", 1, 3, "2");
    wait_full_isr(&c, "z", 3);
    let (p, acks) = producer(&c, "all", 60_000);
    send(&p, "z", (0..100).map(|i| format!("a-{i}")));
    p.flush(WAIT).expect("flush");

    let zombie = partitions(&c, "z").expect("metadata")[0].0;
    c.signal(zombie, "-STOP");
    wait_for(WAIT, "a new leader", || {
        let ps = partitions(&c, "z")?;
        (ps[0].0 >= 0 && ps[0].0 != zombie).then_some(())
    });
    send(&p, "z", (0..100).map(|i| format!("b-{i}")));
    p.flush(WAIT).expect("flush under the new leader");
    c.signal(zombie, "-CONT");
    wait_full_isr(&c, "z", 3);
    let stored = read_all(&c, "z", 1);
    check_acked(&acks, &stored);
    assert!(acks.failed.lock().unwrap().is_empty());
    logs_identical(&c, "z", 0);
}

#[test]
fn min_insync_replicas_refuses_acks_all_until_the_follower_is_back_in_the_isr() {
    let mut c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "m", 1, 2, "2");
    wait_full_isr(&c, "m", 2);
    let (leader, isr) = partitions(&c, "m").expect("metadata")[0].clone();
    let follower = *isr.iter().find(|r| **r != leader).expect("a follower");
    c.kill9(follower);
    // fenced by the controller: out of the ISR
    wait_for(WAIT, "the ISR to shrink", || {
        let ps = partitions(&c, "m")?;
        (ps[0].1 == vec![leader]).then_some(())
    });
    // no retries: the broker's answer itself is the delivery error
    let strict = Acks::default();
    let p = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("acks", "all")
        .set("retries", "0")
        .set("message.timeout.ms", "20000")
        .create_with_context::<_, ThreadedProducer<Acks>>(strict.clone())
        .expect("producer");
    send(&p, "m", (0..5).map(|i| format!("refused-{i}")));
    p.flush(WAIT).expect("flush");
    let failed = strict.failed.lock().unwrap().clone();
    assert_eq!(failed.len(), 5, "{failed:?}");
    assert!(
        failed
            .iter()
            .all(|(_, code)| *code == RDKafkaErrorCode::NotEnoughReplicas),
        "{failed:?}"
    );
    // acks=1 needs only the leader
    let (p1, acks1) = producer(&c, "1", 20_000);
    send(&p1, "m", (0..5).map(|i| format!("one-{i}")));
    p1.flush(WAIT).expect("flush");
    assert_eq!(acks1.ok.lock().unwrap().len(), 5);

    // the follower returns, catches up and is added back (AlterPartition)
    c.start_node(follower, true);
    wait_full_isr(&c, "m", 2);
    let (p2, acks2) = producer(&c, "all", 30_000);
    send(&p2, "m", (0..5).map(|i| format!("all-{i}")));
    p2.flush(WAIT).expect("flush");
    assert_eq!(acks2.ok.lock().unwrap().len(), 5);
    let stored = read_all(&c, "m", 1);
    check_acked(&acks1, &stored);
    check_acked(&acks2, &stored);
    logs_identical(&c, "m", 0);
}

/// One request on a fresh connection to `bootstrap`, at `version`.
fn raw<R: kafka_protocol::protocol::Request>(bootstrap: &str, req: R, version: i16) -> R::Response {
    block_on(async {
        // any one node answers (a broker forwards to the controller)
        let addr = bootstrap.split(',').next().expect("an address");
        let c = oxka_client::Connection::connect(
            addr,
            "replication-test",
            Duration::from_secs(5),
            Duration::from_secs(40),
            64 << 20,
        )
        .await
        .expect("connect");
        c.send_at(req, version).await.expect("request")
    })
}

fn leaders_of(c: &TestCluster, topic: &str) -> Vec<i32> {
    partitions(c, topic)
        .expect("metadata")
        .iter()
        .map(|(l, _)| *l)
        .collect()
}

/// Each partition's first replica (its preferred leader).
fn preferred(c: &TestCluster, topic: &str) -> Vec<i32> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .create()
        .expect("consumer");
    let md = consumer
        .fetch_metadata(Some(topic), Duration::from_secs(10))
        .expect("metadata");
    md.topics()[0]
        .partitions()
        .iter()
        .map(|p| p.replicas()[0])
        .collect()
}

#[test]
fn preferred_leader_election_by_request_and_automatically() {
    use kafka_protocol::messages::elect_leaders_request::TopicPartitions;
    use kafka_protocol::messages::{ElectLeadersRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let mut extra = FAST.to_vec();
    extra.push("leader.imbalance.check.interval.seconds=3");
    extra.push("auto.leader.rebalance.enable=false");
    let mut c = TestCluster::start(3, 0, 0, &extra);
    create_topic(&c, "p", 6, 3, "1");
    wait_full_isr(&c, "p", 3);
    let pref = preferred(&c, "p");
    assert_eq!(
        leaders_of(&c, "p"),
        pref,
        "the first replica leads at creation"
    );
    let x = pref[0];
    c.kill9(x);
    wait_for(WAIT, "leaderships moved off the stopped node", || {
        let l = leaders_of(&c, "p");
        l.iter().all(|l| *l >= 0 && *l != x).then_some(())
    });
    c.start_node(x, true);
    wait_full_isr(&c, "p", 3);
    let moved: Vec<i32> = (0..6).filter(|p| pref[*p as usize] == x).collect();
    assert!(!moved.is_empty());
    // Kafka never hands leadership back by itself on restart (the
    // automatic rebalance is off here)
    assert!(moved.iter().all(|p| leaders_of(&c, "p")[*p as usize] != x));

    let req = ElectLeadersRequest::default()
        .with_election_type(0)
        .with_timeout_ms(30_000)
        .with_topic_partitions(Some(vec![TopicPartitions::default()
            .with_topic(TopicName(StrBytes::from_static_str("p")))
            .with_partitions((0..6).collect())]));
    let resp = raw(&c.bootstrap(), req, 2);
    assert_eq!(resp.error_code, 0);
    let results = &resp.replica_election_results[0].partition_result;
    assert_eq!(results.len(), 6);
    for r in results {
        let expected = if moved.contains(&r.partition_id) {
            0
        } else {
            84
        };
        assert_eq!(
            r.error_code, expected,
            "partition {}: {:?} (84 = ELECTION_NOT_NEEDED)",
            r.partition_id, r.error_message
        );
    }
    wait_for(WAIT, "preferred leaders after the election", || {
        (leaders_of(&c, "p") == pref).then_some(())
    });
    drop(c);

    // the automatic rebalance does the same on its own
    extra.pop();
    let mut c = TestCluster::start(3, 0, 0, &extra);
    create_topic(&c, "q", 6, 3, "1");
    wait_full_isr(&c, "q", 3);
    let pref = preferred(&c, "q");
    let x = pref[0];
    c.kill9(x);
    wait_for(WAIT, "leaderships moved off the stopped node", || {
        leaders_of(&c, "q")
            .iter()
            .all(|l| *l >= 0 && *l != x)
            .then_some(())
    });
    c.start_node(x, true);
    wait_full_isr(&c, "q", 3);
    wait_for(
        WAIT,
        "preferred leaders restored by auto.leader.rebalance.enable",
        || (leaders_of(&c, "q") == pref).then_some(()),
    );
}

#[test]
fn reassignment_adds_and_removes_replicas_under_load() {
    use kafka_protocol::messages::alter_partition_reassignments_request::{
        ReassignablePartition, ReassignableTopic,
    };
    use kafka_protocol::messages::{
        AlterPartitionReassignmentsRequest, BrokerId, ListPartitionReassignmentsRequest, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    let c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "g", 1, 1, "1");
    let (p, acks) = producer(&c, "all", 60_000);
    send(&p, "g", (0..2000).map(|i| format!("a-{i}")));
    let first = partitions(&c, "g").expect("metadata")[0].0;
    let others: Vec<i32> = c.broker_ids().into_iter().filter(|b| *b != first).collect();
    let reassign = |target: Option<Vec<i32>>| {
        let req = AlterPartitionReassignmentsRequest::default()
            .with_timeout_ms(30_000)
            .with_allow_replication_factor_change(true)
            .with_topics(vec![ReassignableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("g")))
                .with_partitions(vec![ReassignablePartition::default()
                    .with_partition_index(0)
                    .with_replicas(
                        target.map(|t| t.into_iter().map(BrokerId).collect()),
                    )])]);
        let resp = raw(&c.bootstrap(), req, 1);
        assert_eq!(resp.error_code, 0, "{:?}", resp.error_message);
        resp.responses[0].partitions[0].error_code
    };
    let ongoing = || {
        let resp = raw(
            &c.bootstrap(),
            ListPartitionReassignmentsRequest::default().with_timeout_ms(30_000),
            0,
        );
        assert_eq!(resp.error_code, 0);
        !resp.topics.is_empty()
    };
    // grow to every node while records keep coming
    assert_eq!(reassign(Some([vec![first], others.clone()].concat())), 0);
    send(&p, "g", (0..2000).map(|i| format!("b-{i}")));
    wait_for(WAIT, "the reassignment to finish", || {
        (!ongoing()).then_some(())
    });
    wait_full_isr(&c, "g", 3);
    // then move off the first node entirely: leadership moves with it
    assert_eq!(reassign(Some(others.clone())), 0);
    send(&p, "g", (0..2000).map(|i| format!("c-{i}")));
    p.flush(WAIT).expect("flush");
    wait_for(WAIT, "the second reassignment to finish", || {
        let (leader, isr) = partitions(&c, "g")?.remove(0);
        (!ongoing() && others.contains(&leader) && isr.len() == 2).then_some(())
    });
    // nothing to cancel now
    assert_eq!(reassign(None), 85, "NO_REASSIGNMENT_IN_PROGRESS");
    assert!(
        acks.failed.lock().unwrap().is_empty(),
        "{:?}",
        acks.failed.lock().unwrap()
    );
    let stored = read_all(&c, "g", 1);
    check_acked(&acks, &stored);
    assert_eq!(stored.len(), 6000);
    wait_for(WAIT, "the removed replica's log deleted", || {
        (!c.data_dir(first).join("g-0").exists()).then_some(())
    });
    logs_identical(&c, "g", 0);
}

/// The CLI against the cluster: exit status and stdout.
fn cli(c: &TestCluster, args: &[&str]) -> (bool, String) {
    let out = std::process::Command::new(common::TestBroker::binary())
        .args(args)
        .env("OXKA_BROKERS", c.bootstrap())
        .output()
        .expect("oxka runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    (out.status.success(), text)
}

#[test]
fn the_cli_shows_replication_state_reassigns_and_elects() {
    let mut c = TestCluster::start(3, 0, 0, FAST);
    create_topic(&c, "cli", 2, 2, "1");
    wait_full_isr(&c, "cli", 2);
    let (ok, out) = cli(&c, &["topics", "describe", "--under-replicated-partitions"]);
    assert!(
        ok && !out.contains("cli"),
        "nothing under-replicated yet: {out}"
    );
    let (leader, isr) = partitions(&c, "cli").expect("metadata")[0].clone();
    let follower = *isr.iter().find(|r| **r != leader).expect("a follower");
    c.kill9(follower);
    wait_for(WAIT, "the follower out of the ISR", || {
        (partitions(&c, "cli")?[0].1 == vec![leader]).then_some(())
    });
    let (ok, out) = cli(&c, &["topics", "describe", "cli", "--under-replicated"]);
    assert!(ok && out.contains("under-replicated"), "{out}");
    let (ok, out) = cli(&c, &["topics", "describe", "cli"]);
    assert!(
        ok && out.contains("STATE") && out.contains("under-replicated"),
        "{out}"
    );
    c.start_node(follower, true);
    wait_full_isr(&c, "cli", 2);

    // move partition 0 to all three nodes, from a Kafka-format plan file
    let plan = c.data_dir(leader).with_extension("plan.json");
    let all: Vec<i32> = c.broker_ids();
    std::fs::write(
        &plan,
        serde_json::json!({"version": 1, "partitions": [
            {"topic": "cli", "partition": 0, "replicas": all}
        ]})
        .to_string(),
    )
    .expect("plan written");
    let plan = plan.to_string_lossy().to_string();
    let (ok, out) = cli(
        &c,
        &["partitions", "reassign", "--reassignment-json-file", &plan],
    );
    assert!(ok && out.contains("STARTED"), "{out}");
    wait_for(WAIT, "--verify to report completion", || {
        let (ok, out) = cli(
            &c,
            &[
                "partitions",
                "reassign",
                "--reassignment-json-file",
                &plan,
                "--verify",
            ],
        );
        (ok && out.contains("complete")).then_some(())
    });
    let (ok, out) = cli(
        &c,
        &[
            "partitions",
            "reassign",
            "--reassignment-json-file",
            &plan,
            "--cancel",
        ],
    );
    assert!(!ok && out.contains("NO_REASSIGNMENT_IN_PROGRESS"), "{out}");
    // the restart above may have left partitions off their preferred
    // leader: the first election moves them, the second has nothing to do
    let (ok, out) = cli(&c, &["partitions", "elect-leaders", "--topic", "cli"]);
    assert!(
        ok && (out.contains("ELECTED") || out.contains("ELECTION_NOT_NEEDED")),
        "{out}"
    );
    wait_for(WAIT, "a second election with nothing to do", || {
        let (ok, out) = cli(&c, &["partitions", "elect-leaders", "--topic", "cli"]);
        (ok && out.matches("ELECTION_NOT_NEEDED").count() == 2).then_some(())
    });
}

#[test]
fn consumers_read_from_a_replica_in_their_rack() {
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::{FetchRequest, TopicName};
    use kafka_protocol::protocol::StrBytes;

    let mut extra = FAST.to_vec();
    extra.push("replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector");
    let c = TestCluster::start(3, 0, 0, &extra);
    create_topic(&c, "rack", 1, 3, "2");
    wait_full_isr(&c, "rack", 3);
    let (p, acks) = producer(&c, "all", 30_000);
    send(&p, "rack", (0..100).map(|i| format!("r-{i}")));
    p.flush(WAIT).expect("flush");
    assert_eq!(acks.ok.lock().unwrap().len(), 100);
    let (leader, isr) = partitions(&c, "rack").expect("metadata")[0].clone();
    let follower = *isr.iter().find(|r| **r != leader).expect("a follower");
    // the test cluster puts node N in rack-(N-1)
    let rack = format!("rack-{}", follower - 1);
    let fetch = |rack: &str| {
        FetchRequest::default()
            .with_replica_id(kafka_protocol::messages::BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_rack_id(StrBytes::from_string(rack.to_string()))
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_static_str("rack")))
                .with_partitions(vec![FetchPartition::default()
                    .with_partition(0)
                    .with_fetch_offset(0)
                    .with_partition_max_bytes(1 << 20)])])
    };
    // the leader names the in-rack follower once it has the records
    wait_for(
        WAIT,
        "the leader to name the follower in the client's rack",
        || {
            let resp = raw(&c.bootstrap_of(leader), fetch(&rack), 12);
            let p = &resp.responses[0].partitions[0];
            (p.preferred_read_replica.0 == follower
                && p.records.as_ref().is_none_or(|r| r.is_empty()))
            .then_some(())
        },
    );
    // a client in the leader's own rack reads from the leader
    let resp = raw(
        &c.bootstrap_of(leader),
        fetch(&format!("rack-{}", leader - 1)),
        12,
    );
    let part = &resp.responses[0].partitions[0];
    assert_eq!(part.preferred_read_replica.0, -1);
    assert!(part.records.as_ref().is_some_and(|r| !r.is_empty()));
    // and the follower serves it, up to its high watermark
    wait_for(WAIT, "the follower to serve the records", || {
        let resp = raw(&c.bootstrap_of(follower), fetch(&rack), 12);
        let p = &resp.responses[0].partitions[0];
        (p.error_code == 0
            && p.high_watermark == 100
            && p.records.as_ref().is_some_and(|r| !r.is_empty()))
        .then_some(())
    });
    // librdkafka follows the preferred replica and reads everything
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", c.bootstrap())
        .set("group.id", "rack-readers")
        .set("client.rack", &rack)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer");
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition_offset("rack", 0, rdkafka::Offset::Beginning)
        .expect("tpl");
    consumer.assign(&tpl).expect("assign");
    let mut got = BTreeSet::new();
    let deadline = Instant::now() + WAIT;
    while got.len() < 100 && Instant::now() < deadline {
        if let Some(Ok(m)) = consumer.poll(Duration::from_millis(200)) {
            got.insert(m.offset());
        }
    }
    assert_eq!(got.len(), 100);
}
