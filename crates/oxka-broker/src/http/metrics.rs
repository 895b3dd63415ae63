//! `/metrics`: the broker's metrics for Prometheus, in its text format
//! 0.0.4, or in OpenMetrics 1.0 when the scraper asks for it in `Accept`
//! (Prometheus does, and then gets the `_created`-free OpenMetrics text
//! `prometheus-client` writes).
//!
//! A scrape first computes the consumer lag of the groups coordinated here
//! (`group_lag`, which may ask other leaders, bounded by its timeout), then
//! reads the rest of the state and renders on the blocking pool, so a
//! scrape of thousands of partitions never holds a runtime thread.

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::HttpContext;
use crate::metrics::collect::{render_openmetrics, to_prometheus_text, Scrape};

pub const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
pub const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

pub fn routes(ctx: HttpContext) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(ctx)
}

/// Whether `Accept` lists OpenMetrics text (with any q above 0).
fn wants_openmetrics(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let media = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            media.eq_ignore_ascii_case("application/openmetrics-text") && !refused
        })
}

async fn metrics(State(ctx): State<HttpContext>, headers: HeaderMap) -> Response {
    let lags = crate::group_lag::group_lags(&ctx.state).await;
    let scrape = Scrape {
        serving: ctx.is_serving(),
        state: ctx.state.clone(),
        lags,
        runtime: Some(tokio::runtime::Handle::current().metrics()),
    };
    let openmetrics = wants_openmetrics(&headers);
    let rendered = tokio::task::spawn_blocking(move || {
        render_openmetrics(scrape).map(|text| {
            if openmetrics {
                text
            } else {
                to_prometheus_text(&text)
            }
        })
    })
    .await;
    match rendered {
        Ok(Ok(body)) => (
            [(
                header::CONTENT_TYPE,
                if openmetrics {
                    OPENMETRICS
                } else {
                    PROMETHEUS_TEXT
                },
            )],
            body,
        )
            .into_response(),
        Ok(Err(e)) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot encode the metrics: {e}\n"),
        )
            .into_response(),
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("the metrics task failed: {e}\n"),
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, v.parse().unwrap());
        h
    }

    #[test]
    fn negotiation() {
        assert!(!wants_openmetrics(&HeaderMap::new()));
        assert!(!wants_openmetrics(&accept("text/plain")));
        // what Prometheus 2.x sends
        assert!(wants_openmetrics(&accept(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )));
        assert!(!wants_openmetrics(&accept(
            "application/openmetrics-text;q=0, text/plain"
        )));
    }
}
