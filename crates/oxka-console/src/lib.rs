//! oxka's web console: server-rendered HTML pages (maud templates checked
//! at compile time) with two small scripts, the vendored uPlot chart
//! library and our `console.js` (live charts, confirmations). Every asset
//! is compiled into the binary; nothing is fetched from the internet.
//!
//! The crate knows nothing of the broker: it reaches it only through
//! [`ConsoleSource`], and hands the broker an [`axum::Router`] to mount on
//! its HTTP listener. Actions (changes) are refused with 403 unless
//! [`ConsoleSettings::actions_enabled`].

mod actions;
pub mod history;
mod host_check;
pub mod model;
mod pages;
pub mod render;
mod source;

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
pub use axum::Router;

pub use history::History;
pub use model::*;
pub use source::ConsoleSource;

/// The message browser returns at most this many records per page.
pub const MAX_BROWSE_RECORDS: usize = 100;
/// Rows per page of the topic and group lists (1,000 topics stay fast).
pub const PAGE_SIZE: usize = 100;

/// The console's settings, from the broker's `http.console.*` keys.
#[derive(Debug, Clone)]
pub struct ConsoleSettings {
    /// `http.console.actions.enable`: create/delete topics, add
    /// partitions, change topic configs, reset group offsets.
    pub actions_enabled: bool,
    /// How often the sampler reads the counters behind the charts.
    pub sample_interval: Duration,
    /// Host names (besides IP literals and `localhost`) the console
    /// answers for: `http.console.allowed.hosts` and the listener's host
    /// (see `host_check`).
    pub allowed_hosts: Vec<String>,
}

impl Default for ConsoleSettings {
    fn default() -> Self {
        ConsoleSettings {
            actions_enabled: false,
            sample_interval: Duration::from_secs(5),
            allowed_hosts: Vec::new(),
        }
    }
}

/// What every page handler shares.
pub(crate) struct Console<S> {
    pub source: S,
    pub settings: ConsoleSettings,
    pub history: History,
}

/// The console's routes (`/`, `/topics`, `/groups`, `/brokers`, `/api/*`,
/// `/assets/*`, `/actions/*`). Spawns the sampler on the current tokio
/// runtime; it holds the console weakly and ends once the router is
/// dropped.
pub fn console<S: ConsoleSource>(source: S, settings: ConsoleSettings) -> Router {
    let c = Arc::new(Console {
        source,
        settings,
        history: History::default(),
    });
    tokio::spawn(sample_forever(Arc::downgrade(&c)));
    let hosts = Arc::new(c.settings.allowed_hosts.clone());
    Router::new()
        .route("/", get(pages::overview::page::<S>))
        .route("/topics", get(pages::topics::list::<S>))
        .route("/topics/{name}", get(pages::topics::topic::<S>))
        .route("/groups", get(pages::groups::list::<S>))
        .route("/groups/{id}", get(pages::groups::group::<S>))
        .route("/brokers", get(pages::brokers::list::<S>))
        .route("/brokers/{id}", get(pages::brokers::broker::<S>))
        .route("/api/throughput", get(pages::api::throughput::<S>))
        .route("/api/groups/{id}/lag", get(pages::api::group_lag::<S>))
        .route("/assets/{file}", get(asset))
        .route("/actions/{action}", post(actions::act::<S>))
        .with_state(c)
        .route_layer(axum::middleware::from_fn_with_state(
            hosts,
            host_check::check,
        ))
}

async fn sample_forever<S: ConsoleSource>(c: std::sync::Weak<Console<S>>) {
    let interval = match c.upgrade() {
        Some(c) => c.settings.sample_interval.max(Duration::from_millis(100)),
        None => return,
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(c) = c.upgrade() else { return };
        let sample = c.source.sample().await;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        c.history.record(now, sample);
    }
}

/// The embedded assets; a year of caching (their names change with
/// their versions).
async fn asset(Path(file): Path<String>) -> Response {
    let (body, kind): (&'static [u8], &str) = match file.as_str() {
        "uPlot.iife.min.js" => (
            include_bytes!("../assets/uPlot.iife.min.js"),
            "text/javascript",
        ),
        "uPlot.min.css" => (include_bytes!("../assets/uPlot.min.css"), "text/css"),
        "uPlot.LICENSE" => (include_bytes!("../assets/uPlot.LICENSE"), "text/plain"),
        "console.js" => (include_bytes!("../assets/console.js"), "text/javascript"),
        "console.css" => (include_bytes!("../assets/console.css"), "text/css"),
        _ => return StatusCode::NOT_FOUND.into_response(),
    };
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}
