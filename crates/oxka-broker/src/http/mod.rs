//! The broker's HTTP listener: `/metrics`, `/health/live`, `/health/ready`
//! and the web console, on the broker's own tokio runtime.
//!
//! One listener per node, `http.listeners=http://HOST:PORT` (Kafka's
//! listener syntax with the scheme `http`). It defaults to
//! `http://127.0.0.1:9644`, reachable from this machine only; an empty
//! value turns it off. Several brokers on one machine (tests, local
//! clusters) would all want port 9644: left at its default, a port already
//! in use is logged at warn level and the broker runs without HTTP; a value
//! set in the config must bind, or the broker does not start. Tests that
//! need the listener set `http.listeners=http://127.0.0.1:0` and read the
//! bound port from [`crate::Broker::http_addr`] or the start-up line.
//!
//! The listener must never slow the Kafka listeners: at most
//! `http.max.connections` connections are served at once (the accept loop
//! waits for a free slot, like `max.connections`), request bodies above
//! `http.request.max.bytes` are refused with 413, a connection that sends
//! no complete request head within [`HEADER_READ_TIMEOUT`] (idle keep-alive
//! included) is closed, and the broker's shutdown closes it gracefully.
//!
//! # Adding routes
//!
//! Every feature brings its own `axum::Router<()>` (its state applied with
//! `Router::with_state`), and `server.rs` merges them into the one router
//! served here, in [`routes`]:
//!
//! ```ignore
//! health::routes(ctx.clone()).merge(metrics_routes).merge(console::routes(...))
//! ```
//!
//! A feature's routes see the broker through [`HttpContext`] (the
//! `BrokerState` plus what only the HTTP side knows). Handlers must be
//! quick or move blocking work to `spawn_blocking`: they share the runtime
//! with the Kafka listeners. The limits above apply to every route.

pub mod health;
pub mod metrics;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::config::KafkaConfig;
use crate::server::BrokerState;

/// The default of `http.listeners`.
pub const DEFAULT_LISTENER: &str = "http://127.0.0.1:9644";
/// A connection must send a complete request head within this time, also
/// when idle between keep-alive requests.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for HTTP requests in progress.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// `http.listeners` parsed: `None` when the listener is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpEndpoint {
    pub host: String,
    pub port: u16,
}

impl HttpEndpoint {
    fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Parses `http.listeners`: empty, or one `http://HOST:PORT` (an empty
/// host binds every interface). The config check calls it so a bad value
/// stops the broker at start-up.
pub fn parse_listeners(value: &str) -> Result<Option<HttpEndpoint>, String> {
    let items: Vec<&str> = value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let item = match items.as_slice() {
        [] => return Ok(None),
        [one] => *one,
        _ => return Err("only one HTTP listener is supported".into()),
    };
    let rest = item
        .strip_prefix("http://")
        .or_else(|| item.strip_prefix("HTTP://"))
        .ok_or_else(|| format!("'{item}' is not of the form http://HOST:PORT"))?;
    let (host, port) = rest
        .rsplit_once(':')
        .ok_or_else(|| format!("'{item}' has no port"))?;
    let port = port
        .parse::<u16>()
        .map_err(|_| format!("'{port}' in '{item}' is not a port number"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    Ok(Some(HttpEndpoint {
        host: host.to_string(),
        port,
    }))
}

/// The HTTP side's settings from the broker config.
#[derive(Debug, Clone)]
pub struct HttpSettings {
    pub endpoint: Option<HttpEndpoint>,
    /// The value was set by the operator (a bind failure stops start-up).
    pub explicit: bool,
    pub max_connections: usize,
    pub max_request_bytes: usize,
}

impl HttpSettings {
    pub fn from_config(config: &KafkaConfig) -> HttpSettings {
        let value = config.value("http.listeners");
        let explicit = config.is_explicit("http.listeners");
        // validated when the config was read
        let endpoint = parse_listeners(value.as_deref().unwrap_or(DEFAULT_LISTENER))
            .ok()
            .flatten();
        let int = |key: &str, fallback: usize| {
            config
                .value(key)
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(fallback)
        };
        HttpSettings {
            endpoint,
            explicit,
            max_connections: int("http.max.connections", 64).max(1),
            max_request_bytes: int("http.request.max.bytes", 1 << 20),
        }
    }
}

/// What HTTP routes see: the broker, and whether it serves its Kafka
/// listeners yet (set once the accept loops run, cleared at shutdown).
#[derive(Clone)]
pub struct HttpContext {
    pub state: Arc<BrokerState>,
    pub serving: Arc<AtomicBool>,
}

impl HttpContext {
    pub fn is_serving(&self) -> bool {
        self.serving.load(Ordering::Acquire)
    }
}

/// The bound HTTP listener, not serving yet.
pub struct HttpListener {
    listener: TcpListener,
    addr: SocketAddr,
    settings: HttpSettings,
}

#[derive(Debug, thiserror::Error)]
#[error("cannot listen for HTTP on {addr}: {source}")]
pub struct BindError {
    pub addr: String,
    pub source: std::io::Error,
}

impl HttpListener {
    /// Binds `http.listeners`; `Ok(None)` when it is off (or, left at its
    /// default, when the port is taken: see the module doc).
    pub async fn bind(settings: HttpSettings) -> Result<Option<HttpListener>, BindError> {
        let Some(endpoint) = settings.endpoint.clone() else {
            return Ok(None);
        };
        let addr = endpoint.bind_addr();
        match TcpListener::bind(&addr).await {
            Ok(listener) => {
                let addr = listener
                    .local_addr()
                    .map_err(|source| BindError { addr, source })?;
                Ok(Some(HttpListener {
                    listener,
                    addr,
                    settings,
                }))
            }
            Err(e) if !settings.explicit && e.kind() == std::io::ErrorKind::AddrInUse => {
                tracing::warn!(
                    %addr,
                    "the default HTTP listener's port is in use (another broker on this machine?); \
                     running without /metrics and /health: set http.listeners to choose a port"
                );
                Ok(None)
            }
            Err(source) => Err(BindError { addr, source }),
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `router` until `shutdown` flips, then lets requests in
    /// progress finish (up to [`SHUTDOWN_GRACE`]).
    pub fn serve(
        self,
        router: Router,
        mut shutdown: watch::Receiver<bool>,
    ) -> tokio::task::JoinHandle<()> {
        let HttpListener {
            listener,
            addr,
            settings,
        } = self;
        let router = router.layer(axum::extract::DefaultBodyLimit::max(
            settings.max_request_bytes,
        ));
        let max_body = settings.max_request_bytes as u64;
        let router = router.layer(axum::middleware::from_fn(
            move |req: axum::extract::Request, next: axum::middleware::Next| async move {
                refuse_large_body(max_body, req, next).await
            },
        ));
        let slots = Arc::new(Semaphore::new(settings.max_connections));
        tokio::spawn(async move {
            let graceful = hyper_util::server::graceful::GracefulShutdown::new();
            loop {
                let permit = tokio::select! {
                    _ = shutdown.changed() => break,
                    p = slots.clone().acquire_owned() => match p {
                        Ok(p) => p,
                        Err(_) => break,
                    },
                };
                let (stream, _peer) = tokio::select! {
                    _ = shutdown.changed() => break,
                    r = listener.accept() => match r {
                        Ok(s) => s,
                        Err(e) => {
                            // EMFILE and friends: back off instead of spinning
                            tracing::warn!(%addr, error = %e, "HTTP accept failed");
                            tokio::time::sleep(Duration::from_millis(100)).await;
                            continue;
                        }
                    },
                };
                let _ = stream.set_nodelay(true);
                let mut builder = hyper::server::conn::http1::Builder::new();
                builder
                    .timer(TokioTimer::new())
                    .header_read_timeout(HEADER_READ_TIMEOUT);
                let conn = builder.serve_connection(
                    TokioIo::new(stream),
                    TowerToHyperService::new(router.clone()),
                );
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    let _ = conn.await;
                    drop(permit);
                });
            }
            drop(listener);
            if tokio::time::timeout(SHUTDOWN_GRACE, graceful.shutdown())
                .await
                .is_err()
            {
                tracing::debug!("HTTP connections did not finish within the grace period");
            }
        })
    }
}

/// 413 for a declared body above the limit, before any of it is read
/// (`DefaultBodyLimit` covers bodies without a length, as they are read).
async fn refuse_large_body(
    max: u64,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > max) {
        return (
            axum::http::StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body larger than http.request.max.bytes ({max})\n"),
        )
            .into_response();
    }
    next.run(req).await
}

/// The one router: every feature's routes merged.
pub fn routes(ctx: HttpContext) -> Router {
    let console = crate::console_host::routes(ctx.state.clone());
    health::routes(ctx.clone())
        .merge(metrics::routes(ctx))
        .merge(console)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listener_values() {
        assert_eq!(parse_listeners("").unwrap(), None);
        assert_eq!(parse_listeners(" ").unwrap(), None);
        assert_eq!(
            parse_listeners("http://127.0.0.1:9644").unwrap(),
            Some(HttpEndpoint {
                host: "127.0.0.1".into(),
                port: 9644
            })
        );
        assert_eq!(
            parse_listeners("http://[::1]:0")
                .unwrap()
                .unwrap()
                .bind_addr(),
            "[::1]:0"
        );
        assert_eq!(
            parse_listeners("http://:80").unwrap().unwrap().bind_addr(),
            "0.0.0.0:80"
        );
        assert!(parse_listeners("https://h:1").is_err());
        assert!(parse_listeners("http://h").is_err());
        assert!(parse_listeners("http://h:99999").is_err());
        assert!(parse_listeners("http://a:1,http://b:2").is_err());
    }
}
