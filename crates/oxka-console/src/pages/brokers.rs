//! `/brokers` and `/brokers/{id}` (a broker's configs, as DescribeConfigs
//! reports them).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use maud::html;

use super::{config_table, layout};
use crate::{Console, ConsoleSource};

pub async fn list<S: ConsoleSource>(State(c): State<Arc<Console<S>>>) -> Response {
    let brokers = c.source.brokers();
    let body = html! {
        table #brokers {
            thead { tr { th.num { "id" } th { "host" } th.num { "port" } th { "rack" } th { "status" } } }
            tbody {
                @for b in &brokers {
                    tr class=[b.fenced.then_some("warn")] {
                        td.num { a href=(format!("/brokers/{}", b.id)) { (b.id) } }
                        td { (b.host) }
                        td.num { (b.port) }
                        td { (b.rack.as_deref().unwrap_or("–")) }
                        td {
                            @if b.fenced { "fenced" } @else { "live" }
                            @if b.is_controller { " · " span.tag { "controller" } }
                            @if b.is_this_node { " · " span.tag { "this node" } }
                        }
                    }
                }
            }
        }
    };
    layout(
        "Brokers",
        "/brokers",
        c.settings.actions_enabled,
        None,
        body,
    )
}

pub async fn broker<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Path(id): Path<i32>,
) -> Response {
    let configs = c.source.broker_configs(id).await;
    let body = html! {
        @match &configs {
            Ok(rows) => (config_table(rows)),
            Err(e) => p.error { "Configs of broker " (id) " unavailable: " (e) },
        }
    };
    layout(
        &format!("Broker {id}"),
        "/brokers",
        c.settings.actions_enabled,
        None,
        body,
    )
}
