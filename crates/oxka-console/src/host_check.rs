//! Refuses requests whose `Host` names a host the console was not told
//! about: a web page elsewhere that rebinds its own DNS name to this
//! machine (DNS rebinding) would otherwise reach a console on localhost
//! through the operator's browser, with the browser's same-origin rules
//! satisfied. IP literals and `localhost` are always accepted; any other
//! name must be listed (`http.console.allowed.hosts`, plus the listener's
//! own host).

use std::net::IpAddr;
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// The host part of a `Host` header (`name`, `name:port`, `[v6]:port`).
pub fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) && !h.contains(':') => h,
        _ => host,
    }
}

/// Whether a request for `host` may be served.
pub fn allowed(host: Option<&str>, allowed_hosts: &[String]) -> bool {
    let Some(host) = host else {
        // HTTP/1.0 without Host: no browser sends that
        return true;
    };
    let name = host_name(host);
    name.parse::<IpAddr>().is_ok()
        || name.eq_ignore_ascii_case("localhost")
        || allowed_hosts.iter().any(|a| a.eq_ignore_ascii_case(name))
}

pub async fn check(State(hosts): State<Arc<Vec<String>>>, req: Request, next: Next) -> Response {
    let host = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if allowed(host.as_deref(), &hosts) {
        return next.run(req).await;
    }
    (
        StatusCode::FORBIDDEN,
        format!(
            "the console does not answer for host {:?}: add it to http.console.allowed.hosts\n",
            host.as_deref().map(host_name).unwrap_or("")
        ),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts() {
        let listed = vec!["broker1.example".to_string()];
        for ok in [
            "127.0.0.1:9644",
            "localhost:9644",
            "LOCALHOST",
            "[::1]:9644",
            "10.1.2.3",
            "broker1.example:9644",
        ] {
            assert!(allowed(Some(ok), &listed), "{ok}");
        }
        for refused in [
            "evil.example:9644",
            "127.0.0.1.evil.example",
            "broker2.example",
        ] {
            assert!(!allowed(Some(refused), &listed), "{refused}");
        }
        assert!(allowed(None, &listed));
        assert_eq!(host_name("[::1]:80"), "::1");
        assert_eq!(host_name("::1"), "::1");
    }
}
