//! JSON for the live charts: columns as uPlot takes them (`[xs, ys...]`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::Json;
use serde_json::{json, Value};

use crate::{Console, ConsoleSource};

pub async fn throughput<S: ConsoleSource>(State(c): State<Arc<Console<S>>>) -> Json<Value> {
    let points = c.history.throughput();
    let col = |f: &dyn Fn(&crate::history::ThroughputPoint) -> Option<f64>| -> Vec<Option<f64>> {
        points.iter().map(f).collect()
    };
    Json(json!({
        "series": ["messages in/s", "bytes in/s", "bytes out/s"],
        "data": [
            col(&|p| Some(p.t)),
            col(&|p| p.messages_in),
            col(&|p| p.bytes_in),
            col(&|p| p.bytes_out),
        ],
    }))
}

pub async fn group_lag<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Path(id): Path<String>,
) -> Json<Value> {
    let points = c.history.group_lag(&id);
    let xs: Vec<f64> = points.iter().map(|p| p.0).collect();
    let ys: Vec<i64> = points.iter().map(|p| p.1).collect();
    Json(json!({ "series": ["lag (records)"], "data": [xs, ys] }))
}
