//! A data dir written by the single-node release (before the metadata
//! quorum: topics, configs and the producer-id block in
//! `oxka-metadata.json`) starts unchanged: its topics, topic configs,
//! records and committed offsets come back, migrated into the metadata log
//! on the first start, and the old file is kept renamed.

mod common;

use common::block_on;

use std::time::Duration;

use common::TestBroker;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, ResourceSpecifier, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{ClientConfig, Message, Offset, TopicPartitionList};

const WAIT: Duration = Duration::from_secs(30);

fn admin(b: &TestBroker) -> AdminClient<DefaultClientContext> {
    common::admin_client(&b.bootstrap())
}

fn consumer(b: &TestBroker) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", "upgrade-group")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .create()
        .expect("consumer")
}

fn committed(b: &TestBroker) -> i64 {
    let c = consumer(b);
    let mut tpl = TopicPartitionList::new();
    tpl.add_partition("orders", 0);
    let got = c.committed_offsets(tpl, WAIT).expect("committed offsets");
    match got.elements()[0].offset() {
        Offset::Offset(o) => o,
        other => panic!("no committed offset: {other:?}"),
    }
}

/// The JSON the single-node release wrote (its `MetadataImage`: topics
/// with id, partitions, configs; the producer-id block), for the topics
/// the first run created.
/// A topic as the old file held it: name, partition count, configs.
type LegacyTopic<'a> = (&'a str, usize, &'a [(&'a str, &'a str)]);

fn legacy_metadata_json(topics: &[LegacyTopic]) -> String {
    let mut out = String::from("{\n  \"topics\": {");
    for (i, (name, partitions, configs)) in topics.iter().enumerate() {
        let parts = (0..*partitions)
            .map(|_| r#"{"replicas": [1], "isr": [1], "leader": 1, "leader_epoch": 0}"#)
            .collect::<Vec<_>>()
            .join(", ");
        let configs = configs
            .iter()
            .map(|(k, v)| format!("\"{k}\": \"{v}\""))
            .collect::<Vec<_>>()
            .join(", ");
        let sep = if i == 0 { "" } else { "," };
        out.push_str(&format!(
            "{sep}\n    \"{name}\": {{\"name\": \"{name}\", \"id\": \"{}\", \"partitions\": [{parts}], \"configs\": {{{configs}}}}}",
            uuid_like(i)
        ));
    }
    out.push_str("\n  },\n  \"next_producer_id_block\": 2000\n}\n");
    out
}

fn uuid_like(i: usize) -> String {
    format!("6f1e2d3c-4b5a-4978-8a9b-{:012x}", i + 1)
}

#[test]
fn a_single_node_release_data_dir_starts_with_its_topics_offsets_and_configs() {
    let mut b = TestBroker::start();
    let a = admin(&b);
    let opts = AdminOptions::new().operation_timeout(Some(WAIT));
    for r in block_on(a.create_topics(
        &[NewTopic::new("orders", 3, TopicReplication::Fixed(1)).set("retention.ms", "86400000")],
        &opts,
    ))
    .expect("create")
    {
        r.expect("created");
    }
    let p: BaseProducer = ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("producer");
    for i in 0..10 {
        let v = format!("order-{i}");
        p.send(BaseRecord::<(), _>::to("orders").partition(0).payload(&v))
            .expect("queued");
    }
    p.flush(WAIT).expect("flushed");
    drop(p);
    {
        let c = consumer(&b);
        let mut tpl = TopicPartitionList::new();
        tpl.add_partition_offset("orders", 0, Offset::Offset(7))
            .expect("tpl");
        c.commit(&tpl, CommitMode::Sync).expect("commit");
    }
    assert_eq!(committed(&b), 7);
    drop(a);
    assert_eq!(b.terminate(), Some(0));

    // what the single-node release left: the partition logs and the JSON
    // metadata file, no metadata log
    let data = b.data_path().to_path_buf();
    std::fs::remove_dir_all(data.join("__cluster_metadata-0")).expect("metadata log dir");
    let offsets_configs: &[(&str, &str)] = &[
        ("cleanup.policy", "compact"),
        ("segment.bytes", "104857600"),
    ];
    let json = legacy_metadata_json(&[
        ("__consumer_offsets", 50, offsets_configs),
        ("orders", 3, &[("retention.ms", "86400000")]),
    ]);
    std::fs::write(data.join("oxka-metadata.json"), json).expect("legacy metadata");

    b.start_again();
    assert!(
        data.join("oxka-metadata.json.migrated").exists(),
        "the old file is kept, renamed"
    );
    assert!(!data.join("oxka-metadata.json").exists());
    for round in 0..2 {
        let a = admin(&b);
        let md = {
            let c = consumer(&b);
            c.fetch_metadata(Some("orders"), WAIT).expect("metadata")
        };
        assert_eq!(md.topics()[0].partitions().len(), 3, "round {round}");
        let cfg = block_on(a.describe_configs(&[ResourceSpecifier::Topic("orders")], &opts))
            .expect("describe configs");
        let cfg = cfg[0].as_ref().expect("topic configs");
        assert_eq!(
            cfg.get("retention.ms")
                .and_then(|e| e.value.clone())
                .as_deref(),
            Some("86400000"),
            "round {round}: the topic config came back"
        );
        assert_eq!(
            committed(&b),
            7,
            "round {round}: the committed offset came back"
        );
        let c = common::consumer_from_beginning(&b, "orders", 0..1);
        let mut got = Vec::new();
        let deadline = std::time::Instant::now() + WAIT;
        while got.len() < 10 && std::time::Instant::now() < deadline {
            if let Some(m) = c.poll(Duration::from_millis(200)) {
                let m = m.expect("record");
                got.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).to_string());
            }
        }
        let want: Vec<String> = (0..10).map(|i| format!("order-{i}")).collect();
        assert_eq!(got, want, "round {round}: the records came back");
        drop(c);
        drop(a);
        // the second round: a restart after the migration reads the
        // metadata log, not the old file
        if round == 0 {
            assert_eq!(b.terminate(), Some(0));
            b.start_again();
        }
    }
}
