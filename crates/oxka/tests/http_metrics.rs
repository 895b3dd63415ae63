//! The HTTP listener (`http.listeners`): health checks, its limits, and
//! that it never gets in the way of the Kafka listener.

mod common;

use std::net::TcpStream;
use std::time::Duration;

use common::http::{get, http};
use common::TestBroker;

fn http_broker(extra: &[&str]) -> TestBroker {
    let mut args = vec!["http.listeners=http://127.0.0.1:0"];
    args.extend_from_slice(extra);
    TestBroker::start_with(&args)
}

#[test]
fn health_checks_answer_json() {
    let b = http_broker(&[]);
    let addr = b
        .http
        .clone()
        .expect("the start-up line names the HTTP listener");
    let (status, head, body) = get(&addr, "/health/live", None);
    assert_eq!(status, 200, "{head}\n{body}");
    let live: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(live["status"], "live");

    let (status, head, body) = get(&addr, "/health/ready", None);
    assert_eq!(status, 200, "{head}\n{body}");
    assert!(
        head.to_ascii_lowercase().contains("application/json"),
        "{head}"
    );
    let ready: serde_json::Value = serde_json::from_str(&body).expect("JSON");
    assert_eq!(ready["status"], "ready", "{body}");
    for check in [
        "listeners",
        "logs_recovered",
        "metadata",
        "registration",
        "partitions",
    ] {
        assert_eq!(ready["checks"][check]["ok"], true, "{check}: {body}");
    }
    assert_eq!(get(&addr, "/no-such-page", None).0, 404);
}

#[test]
fn http_listener_off_and_default_port_taken() {
    // off: the start-up line says so
    let b = TestBroker::start_with(&["http.listeners="]);
    assert_eq!(b.http, None);
    // the default port taken by someone else: the broker still starts
    // (the test cannot rely on 9644 being free or taken, so it takes it)
    let holder = std::net::TcpListener::bind("127.0.0.1:9644");
    let b2 = TestBroker::start();
    if holder.is_ok() {
        assert_eq!(b2.http, None, "port 9644 was held by the test");
    }
}

/// A broker whose controller quorum is gone stops being ready once the
/// controller has not answered its heartbeats for a session, and says so.
#[test]
fn readiness_fails_when_the_controller_quorum_is_gone() {
    use common::cluster::{wait_for, TestCluster};
    // node 1: the only controller; node 2: a broker
    let mut c = TestCluster::start(
        0,
        1,
        1,
        &[
            "broker.session.timeout.ms=3000",
            "broker.heartbeat.interval.ms=200",
            "http.listeners=http://127.0.0.1:0",
        ],
    );
    let addr = c.node(2).http.clone().expect("the broker's HTTP listener");
    let ready = |addr: &str| {
        let (status, _, body) = get(addr, "/health/ready", None);
        let body: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        (status, body)
    };
    let body = wait_for(Duration::from_secs(30), "the broker ready", || {
        let (status, body) = ready(&addr);
        (status == 200).then_some(body)
    });
    assert_eq!(body["checks"]["controller"]["ok"], true, "{body}");
    c.kill9(1);
    let body = wait_for(Duration::from_secs(30), "the broker not ready", || {
        let (status, body) = ready(&addr);
        (status == 503).then_some(body)
    });
    assert_eq!(body["status"], "not ready", "{body}");
    assert_eq!(body["checks"]["controller"]["ok"], false, "{body}");
    let reasons = body["reasons"].to_string();
    assert!(reasons.contains("heartbeats"), "{body}");
    // still live: only not ready
    let (status, _, _) = get(&addr, "/health/live", None);
    assert_eq!(status, 200);
}

#[test]
fn limits_bound_connections_and_bodies() {
    let b = http_broker(&["http.max.connections=4", "http.request.max.bytes=1024"]);
    let addr = b.http.clone().expect("HTTP listener");
    // a body over the limit is refused before it is read
    let (status, _, _) = http(
        &addr,
        &format!(
            "POST /health/live HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            1u64 << 40
        ),
    );
    assert_eq!(status, 413);
    // more idle connections than the limit: they wait in the backlog, and
    // once they go the listener serves again
    let idle: Vec<TcpStream> = (0..16)
        .map(|_| TcpStream::connect(&addr).expect("connect"))
        .collect();
    // the Kafka listener is not affected meanwhile
    let kafka = TcpStream::connect(b.bootstrap()).expect("the Kafka listener accepts");
    drop(kafka);
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("consumer");
    use rdkafka::consumer::Consumer;
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata over the Kafka listener while HTTP is full");
    drop(idle);
    let (status, _, _) = get(&addr, "/health/live", None);
    assert_eq!(status, 200);
}

/// The Prometheus text exposition of a node, parsed: every sample line
/// must be `name{labels} value` with a valid name and number, every family
/// must have a TYPE, and `prometheus-parse` must read it.
fn scrape(addr: &str) -> Vec<prometheus_parse::Sample> {
    let (status, head, body) = get(addr, "/metrics", None);
    assert_eq!(status, 200, "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: text/plain; version=0.0.4"),
        "{head}"
    );
    let mut typed = std::collections::BTreeSet::new();
    for line in body.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let mut w = rest.split(' ');
            let name = w.next().unwrap_or("");
            let ty = w.next().unwrap_or("");
            assert!(
                ["counter", "gauge", "histogram", "untyped", "summary"].contains(&ty),
                "bad TYPE line {line:?}"
            );
            assert!(typed.insert(name.to_string()), "family {name} typed twice");
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
        assert!(
            value.parse::<f64>().is_ok() || ["+Inf", "-Inf", "NaN"].contains(&value),
            "bad value in {line:?}"
        );
        let name = series.split('{').next().unwrap_or("");
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
                && !name.starts_with(|c: char| c.is_ascii_digit()),
            "bad metric name in {line:?}"
        );
        if let Some(labels) = series.strip_prefix(name) {
            assert!(
                labels.is_empty() || (labels.starts_with('{') && labels.ends_with('}')),
                "bad labels in {line:?}"
            );
        }
        let family = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|s| name.strip_suffix(s).filter(|f| typed.contains(*f)))
            .unwrap_or(name);
        assert!(typed.contains(family), "sample {name} has no TYPE line");
    }
    let parsed = prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_string())))
        .expect("the exposition parses");
    assert!(!parsed.samples.is_empty());
    parsed.samples
}

/// The value of the one sample `name` whose labels include `labels`
/// (summed over the samples that match, e.g. every version).
fn value(samples: &[prometheus_parse::Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    let matching: Vec<&prometheus_parse::Sample> = samples
        .iter()
        .filter(|s| s.metric == name)
        .filter(|s| labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .collect();
    assert!(!matching.is_empty(), "no sample {name} {labels:?}");
    matching
        .iter()
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => panic!("{name} is not a plain value"),
        })
        .sum()
}

fn unlabelled(samples: &[prometheus_parse::Sample], name: &str) -> f64 {
    let s = samples
        .iter()
        .find(|s| s.metric == name && s.labels.is_empty())
        .unwrap_or_else(|| panic!("no unlabelled sample {name}"));
    match s.value {
        prometheus_parse::Value::Counter(v)
        | prometheus_parse::Value::Gauge(v)
        | prometheus_parse::Value::Untyped(v) => v,
        _ => panic!("{name} is not a plain value"),
    }
}

#[test]
fn metrics_follow_what_clients_did() {
    use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
    use rdkafka::producer::{FutureProducer, FutureRecord};
    use rdkafka::Message;

    // every append flushed: the flush timer has something to count
    let b = http_broker(&[
        "group.initial.rebalance.delay.ms=0",
        "log.flush.interval.messages=1",
    ]);
    let addr = b.http.clone().expect("HTTP listener");
    let topic = common::unique("metrics");
    let group = common::unique("metrics-group");
    let a = common::admin_client(&b.bootstrap());
    let opts = rdkafka::admin::AdminOptions::new();
    for r in common::block_on(a.create_topics(
        &[rdkafka::admin::NewTopic::new(
            &topic,
            1,
            rdkafka::admin::TopicReplication::Fixed(1),
        )],
        &opts,
    ))
    .expect("create topic")
    {
        r.expect("topic created");
    }
    // a second creation fails: TOPIC_ALREADY_EXISTS in CreateTopics' errors
    let again = common::block_on(a.create_topics(
        &[rdkafka::admin::NewTopic::new(
            &topic,
            1,
            rdkafka::admin::TopicReplication::Fixed(1),
        )],
        &opts,
    ))
    .expect("create topics answered");
    assert!(again.iter().all(|r| r.is_err()));
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("acks", "all")
        .set("linger.ms", "5")
        .create()
        .expect("producer");
    const N: usize = 100;
    let mut value_bytes = 0;
    common::block_on(async {
        for i in 0..N {
            let v = format!("value-{i}");
            value_bytes += v.len();
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic).payload(&v),
                    Duration::from_secs(30),
                )
                .await
                .expect("delivered");
        }
    });
    let consumer: BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("group.id", &group)
        .set("auto.offset.reset", "earliest")
        .set("enable.auto.commit", "false")
        .create()
        .expect("consumer");
    consumer.subscribe(&[&topic]).expect("subscribe");
    let mut got = 0;
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while got < N {
        assert!(
            std::time::Instant::now() < deadline,
            "consumed {got} of {N}"
        );
        if let Some(m) = consumer.poll(Duration::from_millis(500)) {
            m.expect("message").payload().expect("payload");
            got += 1;
        }
    }
    consumer
        .commit_consumer_state(CommitMode::Sync)
        .expect("commit");

    let s = scrape(&addr);
    let t = [("topic", topic.as_str())];
    let p = [("topic", topic.as_str()), ("partition", "0")];
    assert_eq!(
        value(&s, "kafka_server_brokertopicmetrics_messagesin_total", &t),
        N as f64
    );
    assert!(unlabelled(&s, "kafka_server_brokertopicmetrics_messagesin_total") >= N as f64);
    let bytes_in = value(&s, "kafka_server_brokertopicmetrics_bytesin_total", &t);
    assert!(bytes_in > value_bytes as f64, "bytes in {bytes_in}");
    assert!(value(&s, "kafka_server_brokertopicmetrics_bytesout_total", &t) > 0.0);
    assert!(
        value(
            &s,
            "kafka_server_brokertopicmetrics_totalproducerequests_total",
            &t
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "kafka_server_brokertopicmetrics_totalfetchrequests_total",
            &t
        ) >= 1.0
    );
    assert_eq!(
        value(
            &s,
            "kafka_server_brokertopicmetrics_failedproducerequests_total",
            &t
        ),
        0.0
    );
    assert!(
        value(
            &s,
            "kafka_network_requestmetrics_requests_total",
            &[("request", "Produce")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "kafka_network_requestmetrics_requests_total",
            &[("request", "FetchConsumer")]
        ) >= 1.0
    );
    assert!(
        value(
            &s,
            "kafka_network_requestmetrics_errors_total",
            &[("request", "Produce"), ("error", "NONE")]
        ) >= 1.0
    );
    assert_eq!(
        value(
            &s,
            "kafka_network_requestmetrics_errors_total",
            &[
                ("request", "CreateTopics"),
                ("error", "TOPIC_ALREADY_EXISTS")
            ]
        ),
        1.0
    );
    assert!(
        value(
            &s,
            "kafka_network_requestmetrics_errors_total",
            &[("request", "Metadata"), ("error", "NONE")]
        ) >= 1.0
    );
    // histograms: prometheus-parse folds the buckets into one sample
    let total_time = s
        .iter()
        .find(|x| {
            x.metric == "oxka_network_requestmetrics_totaltimems"
                && x.labels.get("request") == Some("Produce")
        })
        .expect("Produce's total time");
    let timed = match &total_time.value {
        prometheus_parse::Value::Histogram(buckets) => buckets.last().map_or(0.0, |b| b.count),
        v => panic!("total time is {v:?}"),
    };
    assert!(timed >= 1.0);
    // the JMX exporter's quantile gauges of the same times, and its count
    let produce = |q: &str| {
        value(
            &s,
            "kafka_network_requestmetrics_totaltimems",
            &[("request", "Produce"), ("quantile", q)],
        )
    };
    let quantiles: Vec<f64> = ["0.50", "0.75", "0.95", "0.98", "0.99", "0.999"]
        .iter()
        .map(|q| produce(q))
        .collect();
    assert!(quantiles[0] > 0.0, "{quantiles:?}");
    assert!(quantiles.windows(2).all(|w| w[0] <= w[1]), "{quantiles:?}");
    assert_eq!(
        value(
            &s,
            "kafka_network_requestmetrics_totaltimems_count",
            &[("request", "Produce")]
        ),
        timed
    );
    assert_eq!(value(&s, "kafka_log_log_logendoffset", &p), N as f64);
    assert_eq!(value(&s, "kafka_log_log_logstartoffset", &p), 0.0);
    assert!(value(&s, "kafka_log_log_size", &p) >= bytes_in);
    assert_eq!(value(&s, "kafka_log_log_numlogsegments", &p), 1.0);
    assert_eq!(
        unlabelled(&s, "kafka_server_replicamanager_underreplicatedpartitions"),
        0.0
    );
    assert_eq!(
        unlabelled(&s, "kafka_server_replicamanager_underminisrpartitioncount"),
        0.0
    );
    assert!(unlabelled(&s, "kafka_server_replicamanager_leadercount") >= 1.0);
    assert_eq!(
        unlabelled(&s, "kafka_controller_kafkacontroller_activecontrollercount"),
        1.0
    );
    assert_eq!(
        unlabelled(
            &s,
            "kafka_controller_kafkacontroller_offlinepartitionscount"
        ),
        0.0
    );
    assert_eq!(
        unlabelled(&s, "kafka_server_raftmetrics_current_leader"),
        1.0
    );
    assert!(
        unlabelled(&s, "kafka_server_raftmetrics_log_end_offset")
            >= unlabelled(
                &s,
                "kafka_controller_kafkacontroller_lastappliedrecordoffset"
            )
    );
    assert!(
        value(
            &s,
            "kafka_server_socket_server_metrics_connection_count",
            &[("listener", "PLAINTEXT")]
        ) >= 1.0
    );
    // the runtime workers' idle share stands for both of Kafka's pools
    let idle = unlabelled(
        &s,
        "kafka_network_socketserver_networkprocessoravgidle_percent",
    );
    assert!((0.0..=1.0).contains(&idle), "{idle}");
    assert_eq!(
        unlabelled(
            &s,
            "kafka_server_kafkarequesthandlerpool_requesthandleravgidle_percent"
        ),
        idle
    );
    assert!(unlabelled(&s, "process_resident_memory_bytes") > 0.0);
    assert!(unlabelled(&s, "process_open_fds") > 0.0);
    assert_eq!(unlabelled(&s, "kafka_server_kafkaserver_brokerstate"), 3.0);
    // the group's lag: 0 after its commit, then what was produced since
    let g = [
        ("consumergroup", group.as_str()),
        ("topic", topic.as_str()),
        ("partition", "0"),
    ];
    assert_eq!(value(&s, "kafka_consumergroup_lag", &g), 0.0);
    assert!(
        unlabelled(
            &s,
            "kafka_server_group_coordinator_metrics_group_completed_rebalance_count"
        ) >= 1.0
    );
    assert!(unlabelled(&s, "kafka_coordinator_group_groupmetadatamanager_numgroups") >= 1.0);
    assert_eq!(
        value(&s, "kafka_consumergroup_current_offset", &g),
        N as f64
    );
    common::block_on(async {
        for _ in 0..7 {
            producer
                .send(
                    FutureRecord::<(), _>::to(&topic).payload("more"),
                    Duration::from_secs(30),
                )
                .await
                .expect("delivered");
        }
    });
    let s = scrape(&addr);
    assert_eq!(value(&s, "kafka_consumergroup_lag", &g), 7.0);
    assert_eq!(
        value(&s, "kafka_server_brokertopicmetrics_messagesin_total", &t),
        (N + 7) as f64
    );

    // docs/metrics.md names every family served, and the Grafana
    // dashboard uses only names that are served
    let (_, _, body) = get(&addr, "/metrics", None);
    let flushes: f64 = body
        .lines()
        .find_map(|l| l.strip_prefix("kafka_log_logflushstats_logflushrateandtimems_count "))
        .and_then(|v| v.parse().ok())
        .expect("the flush timer's count");
    assert!(flushes >= 1.0, "flushes {flushes}");
    let docs = include_str!("../../../docs/metrics.md");
    let served: std::collections::BTreeSet<&str> = body
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.split(' ').next())
        .collect();
    for name in &served {
        let short = name.strip_suffix("_total").unwrap_or(name);
        assert!(docs.contains(short), "docs/metrics.md does not list {name}");
    }
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../../docs/metrics/grafana-dashboard.json"))
            .expect("the dashboard is JSON");
    let mut exprs = Vec::new();
    for p in dashboard["panels"].as_array().expect("panels") {
        for t in p["targets"].as_array().expect("targets") {
            exprs.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    for expr in &exprs {
        let words = expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'));
        for w in words.filter(|w| {
            w.starts_with("kafka_") || w.starts_with("oxka_") || w.starts_with("process_")
        }) {
            let family = w.strip_suffix("_bucket").unwrap_or(w);
            assert!(
                served.contains(family) || body.contains(&format!("\n{w}")),
                "the dashboard's {w} is not served"
            );
        }
    }

    // OpenMetrics when asked for
    let (status, head, body) = get(
        &addr,
        "/metrics",
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    );
    assert_eq!(status, 200);
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/openmetrics-text; version=1.0.0"),
        "{head}"
    );
    assert!(body.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(body.contains("# TYPE kafka_server_brokertopicmetrics_messagesin counter\n"));
    assert!(body.contains("# TYPE oxka_build info\n"));
}

#[test]
fn instrumentation_off_leaves_counters_at_zero() {
    let b = http_broker(&["metrics.instrumentation.enable=false"]);
    let addr = b.http.clone().expect("HTTP listener");
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .create()
        .expect("consumer");
    use rdkafka::consumer::Consumer;
    consumer
        .fetch_metadata(None, Duration::from_secs(10))
        .expect("metadata");
    let s = scrape(&addr);
    assert!(!s
        .iter()
        .any(|x| x.metric == "kafka_network_requestmetrics_requests_total"));
    // state is still read at scrape time
    assert_eq!(
        unlabelled(&s, "kafka_controller_kafkacontroller_activecontrollercount"),
        1.0
    );
}

#[test]
fn under_replicated_partitions_when_a_follower_dies() {
    use common::cluster::{wait_for, TestCluster};
    // the dead follower leaves the ISRs through its leaders' AlterPartition
    // (lag 2 s) long before the controller would fence it (30 s)
    let extra = [
        "broker.session.timeout.ms=30000",
        "broker.heartbeat.interval.ms=200",
        "replica.lag.time.max.ms=2000",
        "replica.fetch.wait.max.ms=200",
        "replica.fetch.backoff.ms=200",
        "http.listeners=http://127.0.0.1:0",
    ];
    let mut c = TestCluster::start(3, 0, 0, &extra);
    let topic = common::unique("urp");
    let a = common::admin_client(&c.bootstrap());
    let opts = rdkafka::admin::AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    for r in common::block_on(a.create_topics(
        &[rdkafka::admin::NewTopic::new(
            &topic,
            3,
            rdkafka::admin::TopicReplication::Fixed(3),
        )],
        &opts,
    ))
    .expect("create topic")
    {
        r.expect("topic created");
    }
    let urp = |c: &TestCluster, id: i32| -> Option<f64> {
        let addr = c.node(id).http.clone()?;
        let s = scrape(&addr);
        Some(unlabelled(
            &s,
            "kafka_server_replicamanager_underreplicatedpartitions",
        ))
    };
    // every ISR full: no node reports an under-replicated partition
    wait_for(Duration::from_secs(60), "full ISRs", || {
        let total: f64 = [1, 2, 3].iter().filter_map(|id| urp(&c, *id)).sum();
        (total == 0.0).then_some(())
    });
    // followers' fetches are FetchFollower, as in Kafka
    let follower_fetches: f64 = [1, 2, 3]
        .iter()
        .map(|id| {
            let s = scrape(c.node(*id).http.as_deref().expect("HTTP"));
            s.iter()
                .filter(|x| {
                    x.metric == "kafka_network_requestmetrics_requests_total"
                        && x.labels.get("request") == Some("FetchFollower")
                })
                .map(|x| match x.value {
                    prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Untyped(v) => v,
                    _ => 0.0,
                })
                .sum::<f64>()
        })
        .sum();
    assert!(follower_fetches >= 1.0);
    c.kill9(3);
    // the leaders of the partitions node 3 followed see it leave the ISR
    wait_for(
        Duration::from_secs(60),
        "under-replicated partitions",
        || {
            let total: f64 = [1, 2].iter().filter_map(|id| urp(&c, *id)).sum();
            (total > 0.0).then_some(())
        },
    );
    // counted by the leaders once the controller accepted them, as Kafka
    // counts IsrShrinksPerSec
    wait_for(Duration::from_secs(30), "ISR shrinks counted", || {
        let shrinks: f64 = [1, 2]
            .iter()
            .map(|id| {
                let s = scrape(c.node(*id).http.as_deref().expect("HTTP"));
                unlabelled(&s, "kafka_server_replicamanager_isrshrinks_total")
            })
            .sum();
        (shrinks >= 1.0).then_some(())
    });
    let addr = c.node(1).http.clone().expect("HTTP listener");
    let s = scrape(&addr);
    unlabelled(&s, "kafka_server_replicamanager_failedisrupdates_total");
    assert!(unlabelled(&s, "kafka_server_replicamanager_partitioncount") >= 3.0);
}

#[test]
fn cleaner_metrics_count_compaction() {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    let b = http_broker(&["log.cleaner.backoff.ms=100"]);
    let addr = b.http.clone().expect("HTTP listener");
    let topic = common::unique("compacted");
    let a = common::admin_client(&b.bootstrap());
    let t = rdkafka::admin::NewTopic::new(&topic, 1, rdkafka::admin::TopicReplication::Fixed(1))
        .set("cleanup.policy", "compact")
        .set("segment.bytes", "1000")
        .set("min.cleanable.dirty.ratio", "0.01");
    for r in common::block_on(a.create_topics(&[t], &rdkafka::admin::AdminOptions::new()))
        .expect("create topic")
    {
        r.expect("topic created");
    }
    let producer: FutureProducer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", b.bootstrap())
        .set("linger.ms", "0")
        .create()
        .expect("producer");
    common::block_on(async {
        for i in 0..200 {
            let key = format!("key-{}", i % 5);
            producer
                .send(
                    FutureRecord::to(&topic)
                        .key(&key)
                        .payload("a value to compact away"),
                    Duration::from_secs(30),
                )
                .await
                .expect("delivered");
        }
    });
    common::cluster::wait_for(Duration::from_secs(60), "a cleaner pass", || {
        let s = scrape(&addr);
        (unlabelled(&s, "oxka_log_cleaner_runs_total") >= 1.0
            && unlabelled(&s, "oxka_log_cleaner_bytes_cleaned_total") > 0.0
            && unlabelled(&s, "oxka_log_cleaner_records_removed_total") > 0.0)
            .then_some(())
    });
}
