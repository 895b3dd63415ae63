//! `POST /actions/{action}`: the console's changes. Each one is refused
//! with 403 unless `http.console.actions.enable=true`, refused with 403
//! when the browser says it comes from another site (a page elsewhere
//! cannot make an operator's browser post here), and refused with 400
//! unless the form carries the confirmation the page's script adds after
//! the operator said yes. The change itself is the source's (the broker's
//! Kafka API paths).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use maud::html;

use crate::model::{Action, ResetTo};
use crate::pages::{group_href, layout, topic_href};
use crate::render::url_encode;
use crate::{Console, ConsoleSource};

pub async fn act<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    let refuse = |status: StatusCode, why: String| {
        (
            status,
            layout(
                "Action refused",
                "",
                c.settings.actions_enabled,
                None,
                html! {
                    p.error #refused { (why) }
                    p { a href="javascript:history.back()" { "back" } }
                },
            ),
        )
            .into_response()
    };
    if !c.settings.actions_enabled {
        return refuse(
            StatusCode::FORBIDDEN,
            "Actions are disabled on this broker (http.console.actions.enable=false).".into(),
        );
    }
    if cross_site(&headers) {
        return refuse(
            StatusCode::FORBIDDEN,
            "Cross-site requests may not change the cluster.".into(),
        );
    }
    if form.get("confirm").map(String::as_str) != Some("yes") {
        return refuse(
            StatusCode::BAD_REQUEST,
            "The action was not confirmed.".into(),
        );
    }
    let (action, back) = match parse(&name, &form) {
        Ok(a) => a,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, e),
    };
    tracing::info!(action = ?action, "console action");
    match c.source.act(action).await {
        Ok(msg) => Redirect::to(&format!("{back}?msg={}", url_encode(&msg))).into_response(),
        Err(e) => refuse(StatusCode::CONFLICT, e),
    }
}

/// `Sec-Fetch-Site: cross-site`, or an `Origin` whose host is not the
/// `Host` this request was sent to.
fn cross_site(h: &HeaderMap) -> bool {
    if h.get("sec-fetch-site").and_then(|v| v.to_str().ok()) == Some("cross-site") {
        return true;
    }
    let host = h.get(header::HOST).and_then(|v| v.to_str().ok());
    match h.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None | Some("null") => false,
        Some(origin) => {
            let origin_host = origin.split_once("://").map_or(origin, |(_, rest)| rest);
            Some(origin_host) != host
        }
    }
}

fn field<'a>(form: &'a HashMap<String, String>, name: &str) -> Result<&'a str, String> {
    form.get(name)
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .ok_or_else(|| format!("`{name}` is missing"))
}

fn number<T: std::str::FromStr>(form: &HashMap<String, String>, name: &str) -> Result<T, String> {
    field(form, name)?
        .parse()
        .map_err(|_| format!("`{name}` must be a number"))
}

/// The action and the page to go back to.
fn parse(name: &str, form: &HashMap<String, String>) -> Result<(Action, String), String> {
    Ok(match name {
        "create-topic" => {
            let topic = field(form, "name")?.to_string();
            let back = topic_href(&topic);
            (
                Action::CreateTopic {
                    name: topic,
                    partitions: number(form, "partitions")?,
                    replication_factor: number(form, "replication_factor")?,
                },
                back,
            )
        }
        "add-partitions" => {
            let topic = field(form, "topic")?.to_string();
            let back = topic_href(&topic);
            (
                Action::AddPartitions {
                    topic,
                    total: number(form, "total")?,
                },
                back,
            )
        }
        "set-config" => {
            let topic = field(form, "topic")?.to_string();
            let back = topic_href(&topic);
            let value = form
                .get("value")
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty());
            (
                Action::SetTopicConfig {
                    topic,
                    key: field(form, "key")?.to_string(),
                    value,
                },
                back,
            )
        }
        "reset-offsets" => {
            let group = field(form, "group")?.to_string();
            let back = group_href(&group);
            let to = match field(form, "to")? {
                "earliest" => ResetTo::Earliest,
                "latest" => ResetTo::Latest,
                "offset" => ResetTo::Offset(number(form, "offset")?),
                other => return Err(format!("unknown reset target `{other}`")),
            };
            (
                Action::ResetOffsets {
                    group,
                    topic: field(form, "topic")?.to_string(),
                    to,
                },
                back,
            )
        }
        "delete-topic" => (
            Action::DeleteTopic {
                name: field(form, "name")?.to_string(),
            },
            "/topics".to_string(),
        ),
        other => return Err(format!("unknown action `{other}`")),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_checks() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:9644".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "http://127.0.0.1:9644".parse().unwrap());
        assert!(!cross_site(&h));
        h.insert(header::ORIGIN, "https://evil.example".parse().unwrap());
        assert!(cross_site(&h));
        let mut h = HeaderMap::new();
        h.insert("sec-fetch-site", "cross-site".parse().unwrap());
        assert!(cross_site(&h));
    }

    #[test]
    fn forms_parse() {
        let form: HashMap<String, String> = [
            ("topic", "t"),
            ("to", "offset"),
            ("offset", "7"),
            ("group", "g"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(
            parse("reset-offsets", &form).unwrap(),
            (
                Action::ResetOffsets {
                    group: "g".into(),
                    topic: "t".into(),
                    to: ResetTo::Offset(7)
                },
                "/groups/g".to_string()
            )
        );
        assert!(parse("create-topic", &form).is_err());
        assert!(parse("nope", &form).is_err());
    }
}
