//! oxka-client subscriptions against the real broker: regex subscriptions
//! that follow topic creation, and the KIP-848 consumer group protocol.

mod common;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{unique, TestBroker};
use oxka_client::admin::NewTopic;
use oxka_client::{Admin, ClientConfig, Consumer, ConsumerRecord, Producer, ProducerRecord};

fn cfg(b: &TestBroker) -> ClientConfig {
    ClientConfig::with_bootstrap(b.bootstrap())
}

fn broker() -> TestBroker {
    common::client_test_broker()
}

async fn produce(b: &TestBroker, topic: &str, n: usize) {
    let producer = Producer::new(&cfg(b)).unwrap();
    for i in 0..n {
        producer
            .enqueue(ProducerRecord::new(topic).value(format!("{topic}:{i}")))
            .await
            .unwrap();
    }
    producer.flush().await.unwrap();
}

/// Polls until `done` holds for what was received (bounded by a generous
/// deadline; the assertions are on content, not on time).
async fn poll_until(
    c: &mut Consumer,
    got: &mut Vec<ConsumerRecord>,
    done: impl Fn(&[ConsumerRecord], &Consumer) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(40);
    while !done(got, c) && Instant::now() < deadline {
        got.extend(c.poll(Duration::from_millis(200)).await.expect("poll"));
    }
}

fn topics_of(records: &[ConsumerRecord]) -> BTreeSet<String> {
    records.iter().map(|r| r.topic.clone()).collect()
}

fn assigned_topics(c: &Consumer) -> BTreeSet<String> {
    c.assignment().into_iter().map(|tp| tp.topic).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pattern_subscription_follows_matching_topics() {
    let b = broker();
    let admin = Admin::new(&cfg(&b)).unwrap();
    // unique() yields letters, digits and dashes: no regex escaping needed.
    let prefix = unique("pat");
    let (ta, tb, tc) = (
        format!("{prefix}-a"),
        format!("{prefix}-b"),
        format!("{prefix}-c"),
    );
    // Does not match: the pattern must match the whole name.
    let other = format!("x{prefix}-z");
    for t in [&ta, &tb, &other] {
        admin.create_topic(NewTopic::new(t, 2, 1)).await.unwrap();
        produce(&b, t, 4).await;
    }

    let mut cc = cfg(&b);
    cc.set("group.id", unique("pg"))
        .set("auto.offset.reset", "earliest")
        .set("heartbeat.interval.ms", "300")
        .set("metadata.max.age.ms", "300");
    let mut c = Consumer::new(&cc).unwrap();
    c.subscribe_pattern(&format!("{prefix}-.*")).unwrap();

    let mut got = Vec::new();
    poll_until(&mut c, &mut got, |g, _| g.len() >= 8).await;
    let want: BTreeSet<String> = [ta.clone(), tb.clone()].into_iter().collect();
    assert_eq!(
        topics_of(&got),
        want,
        "records from the two matching topics"
    );
    assert_eq!(got.len(), 8);
    assert_eq!(assigned_topics(&c), want);

    // A third matching topic created later is picked up on a metadata refresh.
    admin.create_topic(NewTopic::new(&tc, 2, 1)).await.unwrap();
    produce(&b, &tc, 4).await;
    poll_until(&mut c, &mut got, |g, _| g.len() >= 12).await;
    assert_eq!(got.len(), 12, "{:?}", topics_of(&got));
    let want: BTreeSet<String> = [ta, tb, tc].into_iter().collect();
    assert_eq!(topics_of(&got), want);
    assert_eq!(assigned_topics(&c), want);
    assert_eq!(c.assignment().len(), 6);
    assert!(!topics_of(&got).contains(&other));
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caret_prefixed_subscribe_is_a_regex() {
    let b = broker();
    let admin = Admin::new(&cfg(&b)).unwrap();
    let prefix = unique("caret");
    let (ta, tb, other) = (
        format!("{prefix}-a"),
        format!("{prefix}-b"),
        unique("plain"),
    );
    for t in [&ta, &tb, &other] {
        admin.create_topic(NewTopic::new(t, 1, 1)).await.unwrap();
        produce(&b, t, 3).await;
    }
    let mut cc = cfg(&b);
    cc.set("group.id", unique("cg"))
        .set("auto.offset.reset", "earliest")
        .set("metadata.max.age.ms", "300");
    let mut c = Consumer::new(&cc).unwrap();
    // librdkafka's convention: `^` starts a regex; literal names mix in.
    c.subscribe(&[&format!("^{prefix}-"), &other]).unwrap();
    let mut got = Vec::new();
    poll_until(&mut c, &mut got, |g, _| g.len() >= 9).await;
    assert_eq!(got.len(), 9);
    let want: BTreeSet<String> = [ta, tb, other].into_iter().collect();
    assert_eq!(topics_of(&got), want);
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kip848_group_splits_partitions() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    let _ = broker();
    let b = TestBroker::start_with(&[
        "group.initial.rebalance.delay.ms=0",
        "group.consumer.heartbeat.interval.ms=300",
    ]);
    let topic = common::topic_with_40_records(&b, "k848").await;

    let group = unique("kg");
    let mut cc = cfg(&b);
    cc.set("group.id", &group)
        .set("group.protocol", "consumer")
        .set("auto.offset.reset", "earliest")
        // Only the commit on revocation commits within the test.
        .set("auto.commit.interval.ms", "600000");
    // The first member takes everything and consumes it all.
    let mut first = Consumer::new(&cc).unwrap();
    first.subscribe(&[&topic]).unwrap();
    let mut got0 = Vec::new();
    poll_until(&mut first, &mut got0, |g, _| g.len() >= 40).await;
    assert_eq!(got0.len(), 40);
    assert_eq!(first.assignment().len(), 4);
    // Each member polls on its own task until both hold two partitions and
    // all 40 records were consumed between them.
    let sizes = Arc::new([AtomicUsize::new(0), AtomicUsize::new(0)]);
    let total = Arc::new(AtomicUsize::new(40));
    let run = |me: usize, c: Option<Consumer>| {
        let (sizes, total, topic) = (sizes.clone(), total.clone(), topic.clone());
        let mut c = c.unwrap_or_else(|| Consumer::new(&cc).unwrap());
        async move {
            if me == 1 {
                c.subscribe(&[&topic]).unwrap();
            }
            let mut got = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(40);
            while Instant::now() < deadline {
                let recs = c.poll(Duration::from_millis(100)).await.unwrap();
                total.fetch_add(recs.len(), Ordering::SeqCst);
                got.extend(recs);
                // Counted once every assigned partition's position is known.
                let a = c.assignment();
                let n = if a.iter().all(|tp| c.position(tp).is_some()) {
                    a.len()
                } else {
                    0
                };
                sizes[me].store(n, Ordering::SeqCst);
                if sizes[0].load(Ordering::SeqCst) == 2
                    && sizes[1].load(Ordering::SeqCst) == 2
                    && total.load(Ordering::SeqCst) >= 40
                {
                    break;
                }
            }
            (c, got)
        }
    };
    let t1 = tokio::spawn(run(0, Some(first)));
    let t2 = tokio::spawn(run(1, None));
    let ((mut c1, got1), (mut c2, got2)) = (t1.await.unwrap(), t2.await.unwrap());
    let a1: BTreeSet<_> = c1.assignment().into_iter().collect();
    let a2: BTreeSet<_> = c2.assignment().into_iter().collect();
    assert!(a1.is_disjoint(&a2), "overlap: {a1:?} {a2:?}");
    let all: BTreeSet<i32> = a1.union(&a2).map(|tp| tp.partition).collect();
    assert_eq!(all, (0..4).collect(), "coverage: {a1:?} {a2:?}");
    assert_eq!((a1.len(), a2.len()), (2, 2));
    // The first member committed what it had consumed (10 per partition)
    // before acknowledging the revocation, so the second starts there.
    for tp in &a2 {
        assert_eq!(c2.position(tp), Some(10), "{tp}");
    }
    // Revoked partitions were committed before being handed over: every
    // record arrived exactly once across the two members.
    let mut seen = BTreeSet::new();
    for r in got0.iter().chain(&got1).chain(&got2) {
        assert!(seen.insert((r.partition, r.offset)), "duplicate {r:?}");
    }
    assert_eq!(seen.len(), 40);
    // c1 leaves with epoch -1: c2 takes over its partitions without waiting
    // for the session timeout (45 s, longer than the loop's deadline).
    c1.close().await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while c2.assignment().len() < 4 && Instant::now() < deadline {
        c2.poll(Duration::from_millis(100)).await.unwrap();
    }
    assert_eq!(c2.assignment().len(), 4, "{:?}", c2.assignment());
    c2.close().await.unwrap();
}
