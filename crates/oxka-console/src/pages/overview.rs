//! `/`: the cluster at a glance and the live throughput chart.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;
use serde::Deserialize;

use super::{layout, opt};
use crate::render::bytes_h;
use crate::{Console, ConsoleSource};

#[derive(Deserialize, Default)]
pub struct Flash {
    #[serde(default)]
    pub msg: Option<String>,
}

pub async fn page<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Query(f): Query<Flash>,
) -> Response {
    let o = c.source.overview();
    let now = c.history.now();
    let rate = |v: Option<f64>| v.map_or_else(|| "–".to_string(), |v| format!("{}/s", bytes_h(v)));
    let body = html! {
        section.cards {
            div.card { h2 { "Brokers" } p.big { (o.live_brokers) " / " (o.brokers) } p { "live / registered" } }
            div.card { h2 { "Controller" } p.big { (opt(o.controller_id)) } p { "active controller" } }
            div.card { h2 { "Topics" } p.big { (o.topics) } p { (o.partitions) " partitions" } }
            div.card class=[(o.under_replicated > 0).then_some("warn")] {
                h2 { "Under-replicated" } p.big #under-replicated { (o.under_replicated) } p { "partitions" }
            }
            div.card class=[(o.offline > 0).then_some("bad")] {
                h2 { "Offline" } p.big #offline { (o.offline) } p { "partitions without a leader" }
            }
            div.card {
                h2 { "Now" }
                p.big data-live="messages_in" { (now.and_then(|p| p.messages_in).map_or_else(|| "–".to_string(), |m| format!("{m:.1} msg/s"))) }
                p { "in " span data-live="bytes_in" { (rate(now.and_then(|p| p.bytes_in))) }
                    " · out " span data-live="bytes_out" { (rate(now.and_then(|p| p.bytes_out))) } }
            }
        }
        h2 { "Throughput of node " (o.node_id) " (produce and consumer fetch)" }
        div.chart data-chart="throughput" data-src="/api/throughput" {}
        p.note { "Sampled every " (c.settings.sample_interval.as_secs_f64()) " s into a bounded in-memory history (30 minutes); cluster id " code { (o.cluster_id) } "." }
    };
    layout(
        "Cluster overview",
        "/",
        c.settings.actions_enabled,
        f.msg.as_deref(),
        body,
    )
}
