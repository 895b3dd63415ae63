//! `/health/live` and `/health/ready`, for load balancers and orchestrators
//! (a Kubernetes liveness and readiness probe).
//!
//! Live: the process answers HTTP, nothing more (restarting a broker that
//! is recovering logs would only start the recovery again). Ready: it may
//! take client traffic: its Kafka listeners accept, its logs are recovered,
//! its metadata has caught up with the committed metadata log, it is
//! registered and unfenced, the controller answered its last heartbeat
//! within `broker.session.timeout.ms`, and every partition the metadata
//! says it leads is led here (none offline on this node). Not ready is 503; both answer
//! JSON that says which check failed and why.

use std::time::Duration;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use super::HttpContext;

/// How long readiness waits for the metadata to catch up before calling
/// it behind: a moving log is always a few records ahead of its image.
const METADATA_CATCH_UP: Duration = Duration::from_millis(500);
/// At most this many partitions are named in a not-ready answer.
const NAMED_PARTITIONS: usize = 20;

pub fn routes(ctx: HttpContext) -> Router {
    Router::new()
        .route("/health/live", get(live))
        .route("/health/ready", get(ready))
        .with_state(ctx)
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "live" }))
}

async fn ready(State(ctx): State<HttpContext>) -> Response {
    let checked = tokio::task::spawn_blocking(move || readiness(&ctx)).await;
    match checked {
        Ok((true, body)) => (StatusCode::OK, Json(body)).into_response(),
        Ok((false, body)) => (StatusCode::SERVICE_UNAVAILABLE, Json(body)).into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(
                json!({ "status": "unknown", "reasons": [format!("readiness check failed: {e}")] }),
            ),
        )
            .into_response(),
    }
}

/// Every check, its verdict and the reasons it is not ready.
fn readiness(ctx: &HttpContext) -> (bool, Value) {
    let state = &ctx.state;
    let node_id = state.config.node_id;
    let mut reasons: Vec<String> = Vec::new();

    let listeners = ctx.is_serving() && !*state.shutdown.borrow();
    if !listeners {
        reasons.push(if *state.shutdown.borrow() {
            "the broker is shutting down".to_string()
        } else {
            "the Kafka listeners are not accepting connections yet".to_string()
        });
    }

    let publisher = state.controller.publisher();
    let committed = publisher.committed();
    let caught_up =
        publisher.applied() >= committed || publisher.wait_applied(committed, METADATA_CATCH_UP);
    let applied = publisher.applied();
    if !caught_up {
        reasons.push(format!(
            "the metadata image is at offset {applied}, behind the committed metadata log ({committed})"
        ));
    }

    let image = state.controller.image();
    let registration = image.brokers.get(&node_id);
    let unfenced = registration.is_some_and(|b| !b.fenced);
    if !unfenced {
        reasons.push(match registration {
            None => format!("node {node_id} is not registered with the controller"),
            Some(_) => format!("node {node_id} is fenced by the controller"),
        });
    }

    // a broker the controller no longer hears from is fenced by now (or
    // will be), and cannot know its metadata is current
    let session_ms = state.config.kraft.session_timeout_ms as i64;
    let heartbeat_age_ms = state
        .replica_manager
        .last_heartbeat_answer_ms()
        .map(|at| (crate::server::now_ms() - at).max(0));
    let controller_reachable =
        !state.config.kraft.broker || heartbeat_age_ms.is_some_and(|age| age <= session_ms);
    if !controller_reachable {
        reasons.push(match heartbeat_age_ms {
            None => "the controller has not answered a heartbeat of this broker yet".to_string(),
            Some(age) => format!(
                "the controller has not answered this broker's heartbeats for {:.1} s (broker.session.timeout.ms is {session_ms}): the metadata quorum is unreachable or has no leader, and the broker is fenced or about to be",
                age as f64 / 1000.0
            ),
        });
    }

    let mut not_led = Vec::new();
    let mut not_led_count = 0usize;
    for topic in image.topics.values() {
        for (index, p) in topic.partitions.iter().enumerate() {
            if p.leader != node_id {
                continue;
            }
            let tp = oxka_log::TopicPartition::new(topic.name.clone(), index as i32);
            let led = state
                .replica_manager
                .get_partition(&tp)
                .is_some_and(|part| part.is_leader());
            if !led {
                not_led_count += 1;
                if not_led.len() < NAMED_PARTITIONS {
                    not_led.push(tp.to_string());
                }
            }
        }
    }
    if not_led_count > 0 {
        reasons.push(format!(
            "{not_led_count} partition(s) the metadata says this node leads are not led here (offline)"
        ));
    }

    let ready = reasons.is_empty();
    let body = json!({
        "status": if ready { "ready" } else { "not ready" },
        "node_id": node_id,
        "checks": {
            "listeners": { "ok": listeners },
            // the broker state exists only once LogManager::startup has
            // recovered every log dir
            "logs_recovered": { "ok": true },
            "metadata": {
                "ok": caught_up,
                "applied_offset": applied,
                "committed_offset": committed,
            },
            "registration": { "ok": unfenced },
            "controller": {
                "ok": controller_reachable,
                "last_heartbeat_answer_ms_ago": heartbeat_age_ms,
            },
            "partitions": {
                "ok": not_led_count == 0,
                "offline_led_here": not_led_count,
                "examples": not_led,
            },
        },
        "reasons": reasons,
    });
    (ready, body)
}
