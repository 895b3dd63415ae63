//! oxka-client against the real broker: admin, producer (every codec,
//! keyed partitioning, headers), consumer (assign, seek, groups, commits).

mod common;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use oxka_client::admin::{AlterConfigOp, ConfigResource, NewTopic, OffsetSpec};
use oxka_client::partitioner::partition_for_key;
use oxka_client::{
    Admin, ClientConfig, Consumer, ConsumerRecord, Producer, ProducerRecord, TopicPartition,
};

fn cfg(b: &TestBroker) -> ClientConfig {
    ClientConfig::with_bootstrap(b.bootstrap())
}

fn broker() -> TestBroker {
    common::client_test_broker()
}

async fn consume_n(c: &mut Consumer, n: usize) -> Vec<ConsumerRecord> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut out = Vec::new();
    while out.len() < n && Instant::now() < deadline {
        out.extend(c.poll(Duration::from_millis(500)).await.expect("poll"));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_topics_configs_cluster() {
    let b = broker();
    let admin = Admin::new(&cfg(&b)).unwrap();
    let topic = unique("adm");
    admin
        .create_topic(NewTopic::new(&topic, 2, 1).config("retention.ms", "3600000"))
        .await
        .unwrap();
    let again = admin
        .create_topic(NewTopic::new(&topic, 2, 1))
        .await
        .unwrap_err();
    assert_eq!(
        again.kafka_code().map(|c| c.name()),
        Some("TOPIC_ALREADY_EXISTS".into())
    );
    let topics = admin.list_topics(false).await.unwrap();
    assert!(topics.iter().any(|t| t.name == topic));
    assert_eq!(
        admin.describe_topic(&topic).await.unwrap().partitions.len(),
        2
    );
    admin.create_partitions(&topic, 4).await.unwrap();
    assert_eq!(
        admin.describe_topic(&topic).await.unwrap().partitions.len(),
        4
    );

    let res = ConfigResource::Topic(topic.clone());
    let cfgs = admin.describe_configs(&res, &[]).await.unwrap();
    let ret = cfgs.iter().find(|c| c.name == "retention.ms").unwrap();
    assert_eq!(ret.value.as_deref(), Some("3600000"));
    assert_eq!(ret.source, "DYNAMIC_TOPIC_CONFIG");
    admin
        .incremental_alter_configs(
            &res,
            &[AlterConfigOp::Set("retention.ms".into(), "7200000".into())],
        )
        .await
        .unwrap();
    let cfgs = admin
        .describe_configs(&res, &["retention.ms".into()])
        .await
        .unwrap();
    assert_eq!(cfgs[0].value.as_deref(), Some("7200000"));

    let cluster = admin.describe_cluster().await.unwrap();
    assert_eq!(cluster.brokers.len(), 1);
    assert!(cluster.cluster_id.is_some());

    let del = admin
        .delete_topics(std::slice::from_ref(&topic))
        .await
        .unwrap();
    assert!(del[0].1.is_ok(), "{:?}", del[0].1);
    let err = admin.describe_topic(&topic).await.unwrap_err();
    assert_eq!(
        err.kafka_code().map(|c| c.name()),
        Some("UNKNOWN_TOPIC_OR_PARTITION".into())
    );

    // No broker at all: a clear error, quickly.
    let nobody = Admin::new(&ClientConfig::with_bootstrap("127.0.0.1:1")).unwrap();
    let e = nobody.list_topics(false).await.unwrap_err().to_string();
    assert!(e.contains("no broker reachable"), "{e}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn produce_every_codec_and_read_back() {
    let b = broker();
    let admin = Admin::new(&cfg(&b)).unwrap();
    for codec in ["none", "gzip", "snappy", "lz4", "zstd"] {
        let topic = unique(&format!("codec-{codec}"));
        admin
            .create_topic(NewTopic::new(&topic, 3, 1))
            .await
            .unwrap();
        let mut pc = cfg(&b);
        pc.set("compression.type", codec).set("linger.ms", "20");
        let producer = Producer::new(&pc).unwrap();
        let mut pending = Vec::new();
        for i in 0..300 {
            let rec = ProducerRecord::new(&topic)
                .key(format!("key-{}", i % 17))
                .value(format!("value {i} {}", "z".repeat(i % 50)))
                .header("i", i.to_string())
                .header("i", "dup");
            pending.push((i, producer.enqueue(rec).await.unwrap()));
        }
        let mut placed = BTreeMap::new();
        for (i, p) in pending {
            let m = p.await.unwrap();
            let key = format!("key-{}", i % 17);
            assert_eq!(
                m.partition,
                partition_for_key(key.as_bytes(), 3),
                "Java partitioner"
            );
            placed.insert((m.partition, m.offset), i);
        }
        assert_eq!(placed.len(), 300, "every record has its own offset");
        producer.close().await.unwrap();

        let mut cc = cfg(&b);
        cc.set("auto.offset.reset", "earliest");
        let mut consumer = Consumer::new(&cc).unwrap();
        consumer
            .assign((0..3).map(|p| TopicPartition::new(&topic, p)).collect())
            .unwrap();
        let recs = consume_n(&mut consumer, 300).await;
        assert_eq!(recs.len(), 300, "{codec}");
        for r in &recs {
            let i = placed[&(r.partition, r.offset)];
            assert_eq!(
                r.value.as_deref(),
                Some(format!("value {i} {}", "z".repeat(i % 50)).as_bytes())
            );
            assert_eq!(r.headers.len(), 2);
            assert_eq!(
                r.headers[0].value.as_deref(),
                Some(i.to_string().as_bytes())
            );
            assert_eq!(r.headers[1].key, "i");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acks_zero_and_one_and_seek() {
    let b = broker();
    let admin = Admin::new(&cfg(&b)).unwrap();
    let topic = unique("acks");
    admin
        .create_topic(NewTopic::new(&topic, 1, 1))
        .await
        .unwrap();
    for acks in ["0", "1", "all"] {
        let mut pc = cfg(&b);
        pc.set("acks", acks);
        let p = Producer::new(&pc).unwrap();
        let m = p
            .send(ProducerRecord::new(&topic).value(format!("acks={acks}")))
            .await
            .unwrap();
        if acks == "0" {
            assert_eq!(m.offset, -1);
        } else {
            assert!(m.offset >= 0);
        }
        p.close().await.unwrap();
    }
    let tp = TopicPartition::new(&topic, 0);
    let ends = admin
        .list_offsets(std::slice::from_ref(&tp), OffsetSpec::Latest)
        .await
        .unwrap();
    assert_eq!(ends[&tp], 3);
    let mut consumer = Consumer::new(&cfg(&b)).unwrap();
    consumer.assign(vec![tp.clone()]).unwrap();
    consumer.seek(&tp, 1).unwrap();
    let recs = consume_n(&mut consumer, 2).await;
    let vals: Vec<_> = recs
        .iter()
        .map(|r| String::from_utf8_lossy(r.value.as_deref().unwrap()).to_string())
        .collect();
    assert_eq!(vals, ["acks=1", "acks=all"]);
    // Pause: nothing comes back; resume: the rest arrives.
    consumer.seek(&tp, 0).unwrap();
    consumer.pause(std::slice::from_ref(&tp));
    assert!(consumer
        .poll(Duration::from_millis(300))
        .await
        .unwrap()
        .is_empty());
    consumer.resume(std::slice::from_ref(&tp));
    assert_eq!(consume_n(&mut consumer, 3).await.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn group_members_split_partitions_and_commit() {
    let b = broker();
    let topic = common::topic_with_40_records(&b, "grp").await;
    let group = unique("g");
    let admin = Admin::new(&cfg(&b)).unwrap();

    for assignor in ["range", "cooperative-sticky"] {
        let group = format!("{group}-{assignor}");
        let mut cc = cfg(&b);
        cc.set("group.id", &group)
            .set("auto.offset.reset", "earliest")
            .set("enable.auto.commit", "false")
            .set("heartbeat.interval.ms", "300")
            .set("partition.assignment.strategy", assignor);
        let mut c1 = Consumer::new(&cc).unwrap();
        c1.subscribe(&[&topic]).unwrap();
        let got = consume_n(&mut c1, 40).await;
        assert_eq!(got.len(), 40, "{assignor}: one member gets everything");
        c1.commit_sync(None).await.unwrap();

        // A second member joins: the partitions split 2/2. Each member
        // polls on its own task, as real consumers do.
        let c2 = Consumer::new(&cc).unwrap();
        let sizes = Arc::new([AtomicUsize::new(4), AtomicUsize::new(0)]);
        let run = |mut c: Consumer, me: usize, sizes: Arc<[AtomicUsize; 2]>, topic: String| async move {
            if me == 1 {
                c.subscribe(&[&topic]).unwrap();
            }
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                c.poll(Duration::from_millis(100)).await.unwrap();
                sizes[me].store(c.assignment().len(), Ordering::SeqCst);
                if sizes[0].load(Ordering::SeqCst) == 2 && sizes[1].load(Ordering::SeqCst) == 2 {
                    break;
                }
            }
            c
        };
        let t1 = tokio::spawn(run(c1, 0, sizes.clone(), topic.clone()));
        let t2 = tokio::spawn(run(c2, 1, sizes.clone(), topic.clone()));
        let (mut c1, mut c2) = (t1.await.unwrap(), t2.await.unwrap());
        assert_eq!(
            (c1.assignment().len(), c2.assignment().len()),
            (2, 2),
            "{assignor}"
        );
        let offs = admin.list_group_offsets(&group).await.unwrap();
        assert_eq!(offs.len(), 4);
        assert!(offs.values().all(|o| *o == 10), "{offs:?}");
        let desc = admin.describe_group(&group).await.unwrap();
        assert_eq!(desc.members.len(), 2);
        assert_eq!(desc.protocol, assignor);
        c1.close().await.unwrap();
        c2.close().await.unwrap();

        // Empty now: reset offsets from the outside, delete the group.
        let reset: BTreeMap<_, _> = (0..4)
            .map(|p| (TopicPartition::new(&topic, p), 5))
            .collect();
        admin.alter_group_offsets(&group, &reset).await.unwrap();
        assert_eq!(admin.list_group_offsets(&group).await.unwrap(), reset);
        let listed = admin.list_groups().await.unwrap();
        assert!(listed.iter().any(|g| g.group_id == group));
        let del = admin
            .delete_groups(std::slice::from_ref(&group))
            .await
            .unwrap();
        assert!(del[0].1.is_ok(), "{:?}", del[0].1);
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<std::sync::Mutex<Vec<String>>>);

impl oxka_client::RebalanceListener for Recorder {
    fn on_partitions_assigned(&mut self, p: &[TopicPartition]) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("assigned {}", p.len()));
        }
    }
    fn on_partitions_revoked(&mut self, p: &[TopicPartition]) {
        if let Ok(mut v) = self.0.lock() {
            v.push(format!("revoked {}", p.len()));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_commit_and_rebalance_callbacks() {
    let b = broker();
    let admin = Admin::new(&cfg(&b)).unwrap();
    let topic = unique("auto");
    let group = unique("ag");
    admin
        .create_topic(NewTopic::new(&topic, 2, 1))
        .await
        .unwrap();
    let producer = Producer::new(&cfg(&b)).unwrap();
    for i in 0..20 {
        producer
            .enqueue(ProducerRecord::new(&topic).partition(i % 2).value("x"))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
    let mut cc = cfg(&b);
    cc.set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("auto.commit.interval.ms", "100");
    let rec = Recorder::default();
    let mut c = Consumer::new(&cc).unwrap();
    c.subscribe_with_listener(&[&topic], Box::new(rec.clone()))
        .unwrap();
    assert_eq!(consume_n(&mut c, 20).await.len(), 20);
    // Keep polling past the interval: the auto-commit lands.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        c.poll(Duration::from_millis(150)).await.unwrap();
        let offs = admin.list_group_offsets(&group).await.unwrap();
        if offs.values().sum::<i64>() == 20 || Instant::now() > deadline {
            assert_eq!(offs.values().sum::<i64>(), 20, "{offs:?}");
            break;
        }
    }
    c.close().await.unwrap();
    let events = rec.0.lock().unwrap().clone();
    assert_eq!(events, ["assigned 2", "revoked 2"]);
}
