//! The console's routes over a fake source: every page renders, the
//! message browser shows records, actions are refused unless enabled and
//! confirmed, and pages stay small with 1,000 topics.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use oxka_console::model::*;
use oxka_console::{console, ConsoleSettings, ConsoleSource, Router};
use parking_lot::Mutex;
use tower::ServiceExt;

#[derive(Clone, Default)]
struct Fake {
    actions: Arc<Mutex<Vec<Action>>>,
}

const TOPICS: usize = 1000;

impl ConsoleSource for Fake {
    fn overview(&self) -> ClusterOverview {
        ClusterOverview {
            cluster_id: "abc".into(),
            node_id: 1,
            controller_id: Some(1),
            brokers: 1,
            live_brokers: 1,
            topics: TOPICS,
            partitions: TOPICS * 3,
            under_replicated: 0,
            offline: 0,
        }
    }
    fn brokers(&self) -> Vec<BrokerRow> {
        vec![BrokerRow {
            id: 1,
            host: "localhost".into(),
            port: 9092,
            is_this_node: true,
            is_controller: true,
            ..Default::default()
        }]
    }
    async fn broker_configs(&self, _id: i32) -> Result<Vec<ConfigRow>, String> {
        Ok(vec![ConfigRow {
            name: "num.partitions".into(),
            value: Some("1".into()),
            source: "DEFAULT_CONFIG".into(),
            ..Default::default()
        }])
    }
    fn topics(&self) -> Vec<TopicRow> {
        (0..TOPICS)
            .map(|i| TopicRow {
                name: format!("topic-{i:04}"),
                partitions: 3,
                replication_factor: 1,
                size_here: 1234,
                ..Default::default()
            })
            .collect()
    }
    async fn topic(&self, name: &str) -> Option<TopicDetail> {
        name.starts_with("topic-").then(|| TopicDetail {
            name: name.into(),
            id: "id".into(),
            internal: false,
            partitions: vec![PartitionRow {
                partition: 0,
                leader: 1,
                replicas: vec![1],
                isr: vec![1],
                start_offset: Some(0),
                end_offset: Some(7),
                ..Default::default()
            }],
        })
    }
    async fn topic_configs(&self, _name: &str) -> Result<Vec<ConfigRow>, String> {
        Ok(vec![ConfigRow {
            name: "retention.ms".into(),
            value: Some("1000".into()),
            source: "DYNAMIC_TOPIC_CONFIG".into(),
            ..Default::default()
        }])
    }
    async fn browse(&self, req: BrowseRequest) -> Result<Vec<BrowsedRecord>, String> {
        assert_eq!(req.from, BrowseFrom::Offset(3));
        Ok(vec![BrowsedRecord {
            partition: 0,
            offset: 3,
            timestamp: 0,
            key: Some(b"k-1".to_vec()),
            value: Some(br#"{"n":1}"#.to_vec()),
            headers: vec![("h".into(), Some(vec![0xff, 0x00]))],
        }])
    }
    async fn groups(&self) -> Vec<GroupRow> {
        vec![
            GroupRow {
                group_id: "g/1".into(),
                group_type: "classic".into(),
                state: "Empty".into(),
                coordinator: 1,
                members: Some(0),
                partitions: Some(1),
                total_lag: Some(4),
            },
            GroupRow {
                group_id: "remote".into(),
                group_type: "consumer".into(),
                state: "Stable".into(),
                coordinator: 2,
                ..Default::default()
            },
        ]
    }
    async fn group_coordinator(&self, id: &str) -> Option<i32> {
        (id == "remote").then_some(2)
    }
    async fn group(&self, id: &str) -> Option<GroupDetail> {
        (id == "g/1").then(|| GroupDetail {
            group_id: id.into(),
            group_type: "classic".into(),
            state: "Empty".into(),
            members: vec![],
            lags: vec![LagRow {
                topic: "topic-0001".into(),
                partition: 0,
                committed_offset: 3,
                end_offset: Some(7),
                lag: Some(4),
                member_id: None,
            }],
        })
    }
    async fn sample(&self) -> Sample {
        Sample::default()
    }
    async fn act(&self, action: Action) -> Result<String, String> {
        self.actions.lock().push(action);
        Ok("done".into())
    }
}

fn app(actions_enabled: bool) -> (Router, Fake) {
    let fake = Fake::default();
    let router = console(
        fake.clone(),
        ConsoleSettings {
            actions_enabled,
            ..Default::default()
        },
    );
    (router, fake)
}

async fn get(router: &Router, uri: &str) -> (StatusCode, String) {
    let resp = router
        .clone()
        .oneshot(Request::get(uri).body(Body::empty()).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 10 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

async fn post(router: &Router, uri: &str, form: &str, origin: Option<&str>) -> StatusCode {
    let mut req = Request::post(uri)
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::HOST, "127.0.0.1:9644");
    if let Some(o) = origin {
        req = req.header(header::ORIGIN, o);
    }
    router
        .clone()
        .oneshot(req.body(Body::from(form.to_string())).unwrap())
        .await
        .unwrap()
        .status()
}

#[tokio::test]
async fn every_page_renders() {
    let (r, _) = app(false);
    for (uri, needle) in [
        ("/", "Cluster overview"),
        ("/topics", "topic-0099"),
        ("/topics?page=10", "topic-0999"),
        ("/topics?q=0500", "topic-0500"),
        ("/topics/topic-0001", "retention.ms"),
        ("/groups", "g/1"),
        ("/groups/g%2F1", "topic-0001"),
        ("/brokers", "localhost"),
        ("/brokers/1", "num.partitions"),
        ("/api/throughput", "messages in/s"),
        ("/api/groups/g%2F1/lag", "lag (records)"),
        ("/assets/uPlot.iife.min.js", "uPlot"),
        ("/assets/uPlot.LICENSE", "MIT"),
        ("/assets/console.js", "data-confirm"),
        ("/assets/console.css", "body"),
    ] {
        let (status, body) = get(&r, uri).await;
        assert_eq!(status, StatusCode::OK, "{uri}");
        assert!(body.contains(needle), "{uri} lacks {needle}");
    }
    let (_, first) = get(&r, "/topics").await;
    assert!(!first.contains("topic-0100"), "one page of 100 topics");
    assert_eq!(get(&r, "/topics/nope").await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&r, "/groups/nope").await.0, StatusCode::NOT_FOUND);
    let (status, body) = get(&r, "/groups/remote").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("coordinated by node 2"));
    assert_eq!(get(&r, "/assets/nope.js").await.0, StatusCode::NOT_FOUND);
    // read-only: no action forms offered
    assert!(!first.contains("/actions/"));
}

#[tokio::test]
async fn the_browser_shows_key_value_and_headers() {
    let (r, _) = app(false);
    let (status, body) = get(&r, "/topics/topic-0001?partition=0&from=offset&offset=3").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("k-1"));
    assert!(
        body.contains("&quot;n&quot;: 1"),
        "JSON pretty-printed: {body}"
    );
    assert!(body.contains("ff 00"), "binary header in hex");
    let (_, body) = get(&r, "/topics/topic-0001?from=offset&offset=x").await;
    assert!(body.contains("the offset must be a number"));
}

#[tokio::test]
async fn actions_are_refused_unless_enabled_and_confirmed() {
    let form = "confirm=yes&name=t&partitions=2&replication_factor=1";
    let (r, fake) = app(false);
    assert_eq!(
        post(&r, "/actions/create-topic", form, None).await,
        StatusCode::FORBIDDEN
    );
    assert!(fake.actions.lock().is_empty());

    let (r, fake) = app(true);
    let (_, page) = get(&r, "/topics").await;
    assert!(page.contains("/actions/create-topic"));
    assert_eq!(
        post(
            &r,
            "/actions/create-topic",
            "confirm=no&name=t&partitions=2&replication_factor=1",
            None
        )
        .await,
        StatusCode::BAD_REQUEST
    );
    assert_eq!(
        post(
            &r,
            "/actions/create-topic",
            form,
            Some("https://elsewhere.example")
        )
        .await,
        StatusCode::FORBIDDEN
    );
    assert!(fake.actions.lock().is_empty());
    assert_eq!(
        post(
            &r,
            "/actions/create-topic",
            form,
            Some("http://127.0.0.1:9644")
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(&r, "/actions/delete-topic", "confirm=yes&name=t", None).await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        *fake.actions.lock(),
        vec![
            Action::CreateTopic {
                name: "t".into(),
                partitions: 2,
                replication_factor: 1
            },
            Action::DeleteTopic { name: "t".into() }
        ]
    );
}

/// The first page with everything it loads, and the topic list with
/// 1,000 topics, stay under 200 KB.
#[tokio::test]
async fn pages_are_small() {
    let (r, _) = app(true);
    let mut first = 0;
    for uri in [
        "/",
        "/assets/console.css",
        "/assets/uPlot.min.css",
        "/assets/uPlot.iife.min.js",
        "/assets/console.js",
        "/api/throughput",
    ] {
        first += get(&r, uri).await.1.len();
    }
    assert!(first < 200_000, "first page and assets: {first} bytes");
    let topics = get(&r, "/topics").await.1.len();
    assert!(topics < 200_000, "topic list: {topics} bytes");
    println!(
        "first page with assets: {first} bytes; /topics (1,000 topics, page 1): {topics} bytes"
    );
}

#[tokio::test]
async fn unknown_host_names_are_refused() {
    let (r, _) = app(false);
    let get_host = |host: &'static str| {
        let r = r.clone();
        async move {
            r.oneshot(
                Request::get("/topics")
                    .header(header::HOST, host)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap()
            .status()
        }
    };
    assert_eq!(get_host("127.0.0.1:9644").await, StatusCode::OK);
    assert_eq!(get_host("localhost:9644").await, StatusCode::OK);
    assert_eq!(
        get_host("rebound.example:9644").await,
        StatusCode::FORBIDDEN
    );
}
