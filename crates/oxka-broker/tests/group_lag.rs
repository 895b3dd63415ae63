//! `group_lag::group_lags` on a served broker: offsets committed by a
//! client through the group coordinator against the partitions' high
//! watermarks. (The console's browser test compares the same figures with
//! a confluent-kafka consumer's own view.)

use std::collections::BTreeMap;
use std::time::Duration;

use oxka_broker::group_lag::group_lags;
use oxka_broker::{Broker, KafkaConfig};
use oxka_client::admin::NewTopic;
use oxka_client::{Admin, ClientConfig, Producer, ProducerRecord, TopicPartition};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lag_is_end_minus_committed_per_partition() {
    let dir = tempfile::tempdir().unwrap();
    let props = BTreeMap::from([
        ("log.dirs".to_string(), dir.path().display().to_string()),
        (
            "listeners".to_string(),
            "PLAINTEXT://127.0.0.1:0".to_string(),
        ),
        ("offsets.topic.num.partitions".to_string(), "2".to_string()),
    ]);
    let (config, _) = KafkaConfig::from_props(props).unwrap();
    let broker = Broker::start(config).await.unwrap();
    let addr = broker.local_addrs()[0];
    let state = broker.state().clone();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(broker.run_until(async {
        let _ = stop_rx.await;
    }));

    let cfg = ClientConfig::with_bootstrap(addr.to_string());
    let admin = Admin::new(&cfg).unwrap();
    admin
        .create_topic(NewTopic::new("lagged", 2, 1))
        .await
        .unwrap();
    let producer = Producer::new(&cfg).unwrap();
    for i in 0..10 {
        let mut r = ProducerRecord::new("lagged");
        r.partition = Some(i % 2);
        r.value = Some(format!("v{i}").into_bytes().into());
        producer.send(r).await.unwrap();
    }
    producer.flush().await.unwrap();

    let commits = BTreeMap::from([
        (TopicPartition::new("lagged", 0), 2),
        (TopicPartition::new("lagged", 1), 5),
    ]);
    admin.alter_group_offsets("g1", &commits).await.unwrap();

    let lags = tokio::time::timeout(Duration::from_secs(10), group_lags(&state))
        .await
        .unwrap();
    let g = lags.iter().find(|g| g.group_id == "g1").expect("group g1");
    assert_eq!(g.group_type, "classic");
    let by_partition: Vec<(i32, i64, Option<i64>, Option<i64>)> = g
        .partitions
        .iter()
        .map(|p| (p.partition, p.committed_offset, p.end_offset, p.lag))
        .collect();
    assert_eq!(
        by_partition,
        vec![(0, 2, Some(5), Some(3)), (1, 5, Some(5), Some(0))]
    );
    assert_eq!(g.total_lag(), 3);

    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(30), served).await;
}
