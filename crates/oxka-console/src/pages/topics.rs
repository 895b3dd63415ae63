//! `/topics` (the list, filtered and paginated) and `/topics/{name}`
//! (partitions, configs, the message browser and the topic's actions).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::{html, Markup};
use serde::Deserialize;

use super::{config_table, confirm_field, ids, layout, opt, pager, topic_href};
use crate::model::{BrowseFrom, BrowseRequest, BrowsedRecord};
use crate::render::{bytes_h, parse_time, show, timestamp_utc, Format};
use crate::{Console, ConsoleSource, MAX_BROWSE_RECORDS, PAGE_SIZE};

#[derive(Deserialize, Default)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: Option<usize>,
    #[serde(default)]
    msg: Option<String>,
}

pub async fn list<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Query(q): Query<ListQuery>,
) -> Response {
    let needle = q.q.trim().to_lowercase();
    let topics: Vec<_> = c
        .source
        .topics()
        .into_iter()
        .filter(|t| needle.is_empty() || t.name.to_lowercase().contains(&needle))
        .collect();
    let page = q.page.unwrap_or(1).max(1);
    let rates = c.history.topic_rates();
    let shown = topics.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE);
    let body = html! {
        form.filter method="get" action="/topics" {
            input type="search" name="q" value=(q.q) placeholder="filter by name";
            button { "Filter" }
        }
        table #topics {
            thead { tr {
                th { "topic" } th.num { "partitions" } th.num { "replication" }
                th.num { "under-replicated" } th.num { "size here" } th.num { "messages/s" }
            } }
            tbody {
                @for t in shown {
                    tr {
                        td { a href=(topic_href(&t.name)) { (t.name) } @if t.internal { " " span.tag { "internal" } } }
                        td.num { (t.partitions) }
                        td.num { (t.replication_factor) }
                        td.num class=[(t.under_replicated > 0).then_some("warn")] { (t.under_replicated) }
                        td.num { (bytes_h(t.size_here as f64)) }
                        td.num { (rates.get(&t.name).map_or_else(|| "–".to_string(), |r| format!("{r:.1}"))) }
                    }
                }
            }
        }
        (pager("/topics", &q.q, page, topics.len()))
        @if c.settings.actions_enabled {
            h2 { "Create a topic" }
            form.action method="post" action="/actions/create-topic" data-confirm="Create this topic?" {
                (confirm_field())
                label { "name " input name="name" required; }
                label { "partitions " input name="partitions" type="number" min="1" value="1"; }
                label { "replication factor " input name="replication_factor" type="number" min="-1" value="-1"
                    title="-1: the broker's default.replication.factor"; }
                button { "Create" }
            }
        }
    };
    layout(
        "Topics",
        "/topics",
        c.settings.actions_enabled,
        q.msg.as_deref(),
        body,
    )
}

#[derive(Deserialize, Default)]
pub struct TopicQuery {
    /// "all" or a partition number.
    #[serde(default)]
    partition: Option<String>,
    /// latest | offset | timestamp; absent: no records read.
    #[serde(default)]
    from: Option<String>,
    #[serde(default)]
    offset: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
    #[serde(default)]
    limit: Option<usize>,
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    msg: Option<String>,
}

pub async fn topic<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Path(name): Path<String>,
    Query(q): Query<TopicQuery>,
) -> Response {
    let Some(t) = c.source.topic(&name).await else {
        return (
            StatusCode::NOT_FOUND,
            layout(
                "Topic not found",
                "/topics",
                c.settings.actions_enabled,
                None,
                html! {
                    p { "There is no topic " code { (name) } "." }
                },
            ),
        )
            .into_response();
    };
    let configs = c.source.topic_configs(&name).await;
    let rate = c.history.topic_rate(&name);
    let browse = browse_section(&c.source, &t.name, t.partitions.len(), &q).await;
    let actions = c.settings.actions_enabled;
    let body = html! {
        p { "id " code { (t.id) } " · " (t.partitions.len()) " partitions · "
            (rate.map_or_else(|| "–".to_string(), |r| format!("{r:.1}"))) " messages/s" }
        h2 { "Partitions" }
        table #partitions {
            thead { tr {
                th.num { "partition" } th.num { "leader" } th.num { "epoch" } th { "replicas" } th { "ISR" }
                th.num { "start offset" } th.num { "end offset" } th.num { "messages" } th.num { "size here" }
            } }
            tbody {
                @for p in &t.partitions {
                    tr class=[(p.isr.len() < p.replicas.len()).then_some("warn")] {
                        td.num { (p.partition) }
                        td.num { @if p.leader < 0 { span.bad { "none" } } @else { (p.leader) } }
                        td.num { (p.leader_epoch) }
                        td { (ids(&p.replicas)) }
                        td { (ids(&p.isr)) }
                        td.num { (opt(p.start_offset)) }
                        td.num { (opt(p.end_offset)) }
                        td.num { (opt(p.start_offset.zip(p.end_offset).map(|(s, e)| e - s))) }
                        td.num { (p.size_here.map_or_else(|| "–".to_string(), |b| bytes_h(b as f64))) }
                    }
                }
            }
        }
        (browse)
        h2 { "Configs" }
        @match &configs {
            Ok(rows) => (config_table(rows)),
            Err(e) => p.error { "Configs unavailable: " (e) },
        }
        @if actions {
            h2 { "Actions" }
            form.action method="post" action="/actions/add-partitions"
                data-confirm=(format!("Add partitions to {name}? Keys will map to different partitions.")) {
                (confirm_field())
                input type="hidden" name="topic" value=(name);
                label { "total partitions " input name="total" type="number" min=(t.partitions.len() + 1) value=(t.partitions.len() + 1); }
                button { "Add partitions" }
            }
            form.action method="post" action="/actions/set-config"
                data-confirm=(format!("Change this config of {name}?")) {
                (confirm_field())
                input type="hidden" name="topic" value=(name);
                label { "config " input name="key" required placeholder="retention.ms"; }
                label { "value " input name="value" placeholder="empty: back to the default"; }
                button { "Set config" }
            }
            form.action.danger method="post" action="/actions/delete-topic"
                data-confirm=(format!("Delete topic {name} and all its records? This cannot be undone.")) {
                (confirm_field())
                input type="hidden" name="name" value=(name);
                button { "Delete topic" }
            }
        }
    };
    layout(
        &format!("Topic {name}"),
        "/topics",
        actions,
        q.msg.as_deref(),
        body,
    )
}

async fn browse_section<S: ConsoleSource>(
    source: &S,
    topic: &str,
    partitions: usize,
    q: &TopicQuery,
) -> Markup {
    let format = Format::parse(q.format.as_deref().unwrap_or("auto"));
    let limit = q.limit.unwrap_or(20).clamp(1, MAX_BROWSE_RECORDS);
    let partition = q.partition.as_deref().unwrap_or("all");
    let from = q.from.as_deref().unwrap_or("");
    let request = match from {
        "latest" => Ok(Some(BrowseFrom::Latest)),
        "offset" => q
            .offset
            .as_deref()
            .and_then(|o| o.trim().parse::<i64>().ok())
            .map(|o| Some(BrowseFrom::Offset(o)))
            .ok_or("the offset must be a number"),
        "timestamp" => q
            .timestamp
            .as_deref()
            .and_then(parse_time)
            .map(|t| Some(BrowseFrom::Timestamp(t)))
            .ok_or("the time must be milliseconds since the epoch or YYYY-MM-DDTHH:MM[:SS] (UTC)"),
        _ => Ok(None),
    };
    let part_num = partition.parse::<i32>().ok();
    let result: Option<Result<Vec<BrowsedRecord>, String>> = match request {
        Err(e) => Some(Err(e.to_string())),
        Ok(None) => None,
        Ok(Some(from)) => Some(
            source
                .browse(BrowseRequest {
                    topic: topic.to_string(),
                    partition: part_num,
                    from,
                    limit,
                })
                .await,
        ),
    };
    html! {
        h2 { "Messages" }
        form.browse method="get" {
            label { "partition "
                select name="partition" {
                    option value="all" selected[part_num.is_none()] { "all" }
                    @for p in 0..partitions {
                        option value=(p) selected[part_num == Some(p as i32)] { (p) }
                    }
                }
            }
            label { "from "
                select name="from" {
                    option value="latest" selected[from != "offset" && from != "timestamp"] { "latest" }
                    option value="offset" selected[from == "offset"] { "offset" }
                    option value="timestamp" selected[from == "timestamp"] { "timestamp" }
                }
            }
            label { "offset " input name="offset" type="number" min="0" value=(q.offset.as_deref().unwrap_or("")); }
            label { "time (UTC) " input name="timestamp" placeholder="2026-01-31T12:00" value=(q.timestamp.as_deref().unwrap_or("")); }
            label { "limit " input name="limit" type="number" min="1" max=(MAX_BROWSE_RECORDS) value=(limit); }
            label { "show as "
                select name="format" {
                    @for f in [Format::Auto, Format::Utf8, Format::Json, Format::Hex] {
                        option value=(f.name()) selected[f == format] { (f.name()) }
                    }
                }
            }
            button { "Read" }
        }
        @match result {
            None => p.note { "Choose where to start and press Read." },
            Some(Err(e)) => p.error { (e) },
            Some(Ok(records)) if records.is_empty() => p.note #no-records { "No records there." },
            Some(Ok(records)) => {
                table #records {
                    thead { tr { th.num { "partition" } th.num { "offset" } th { "timestamp (UTC)" } th { "key" } th { "value" } th { "headers" } } }
                    tbody {
                        @for r in &records {
                            tr {
                                td.num { (r.partition) }
                                td.num { (r.offset) }
                                td { (timestamp_utc(r.timestamp)) }
                                td.key { (bytes_cell(r.key.as_deref(), format)) }
                                td.value { (bytes_cell(r.value.as_deref(), format)) }
                                td.headers {
                                    @for (k, v) in &r.headers {
                                        div.header { code { (k) } ": " (bytes_cell(v.as_deref(), format)) }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn bytes_cell(b: Option<&[u8]>, format: Format) -> Markup {
    match b {
        None => html! { em.null { "null" } },
        Some(b) => {
            let (text, used) = show(b, format);
            html! { pre class=(used) title=(used) { (text) } }
        }
    }
}
