//! `/groups` and `/groups/{id}`: state, members, assignment, lag per
//! partition and the lag chart; the offset reset when actions are on.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;

use super::{confirm_field, group_href, layout, opt, pager, topic_href};
use crate::render::url_encode;
use crate::{Console, ConsoleSource, PAGE_SIZE};

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
    let groups: Vec<_> = c
        .source
        .groups()
        .await
        .into_iter()
        .filter(|g| needle.is_empty() || g.group_id.to_lowercase().contains(&needle))
        .collect();
    let page = q.page.unwrap_or(1).max(1);
    let body = html! {
        form.filter method="get" action="/groups" {
            input type="search" name="q" value=(q.q) placeholder="filter by id";
            button { "Filter" }
        }
        table #groups {
            thead { tr {
                th { "group" } th { "type" } th { "state" } th.num { "coordinator" } th.num { "members" }
                th.num { "partitions" } th.num { "lag" }
            } }
            tbody {
                @for g in groups.iter().skip((page - 1) * PAGE_SIZE).take(PAGE_SIZE) {
                    tr {
                        td { a href=(group_href(&g.group_id)) { (g.group_id) } }
                        td { (g.group_type) }
                        td { (g.state) }
                        td.num { (g.coordinator) }
                        td.num { (opt(g.members)) }
                        td.num { (opt(g.partitions)) }
                        td.num.lag { (opt(g.total_lag)) }
                    }
                }
            }
        }
        (pager("/groups", &q.q, page, groups.len()))
        p.note { "Members and lag are shown for the groups this node coordinates (node " (c.source.overview().node_id)
            "); the others' are on their coordinator's console." }
    };
    layout(
        "Consumer groups",
        "/groups",
        c.settings.actions_enabled,
        q.msg.as_deref(),
        body,
    )
}

#[derive(Deserialize, Default)]
pub struct GroupQuery {
    #[serde(default)]
    msg: Option<String>,
}

pub async fn group<S: ConsoleSource>(
    State(c): State<Arc<Console<S>>>,
    Path(id): Path<String>,
    Query(q): Query<GroupQuery>,
) -> Response {
    let actions = c.settings.actions_enabled;
    let Some(g) = c.source.group(&id).await else {
        let elsewhere = c.source.group_coordinator(&id).await;
        let body = html! {
            @match elsewhere {
                Some(node) => p #elsewhere { "Group " code { (id) } " is coordinated by node " (node)
                    ": its members and lag are on that node's console." },
                None => p { "There is no group " code { (id) } "." },
            }
        };
        return (
            StatusCode::NOT_FOUND,
            layout("Group not found here", "/groups", actions, None, body),
        )
            .into_response();
    };
    let topics: BTreeSet<&str> = g.lags.iter().map(|l| l.topic.as_str()).collect();
    let body = html! {
        p { (g.group_type) " group · state " strong #state { (g.state) } " · " (g.members.len()) " members · total lag "
            strong #total-lag { (g.total_lag()) } }
        h2 { "Lag over time" }
        div.chart data-chart="lag" data-src=(format!("/api/groups/{}/lag", url_encode(&id))) {}
        h2 { "Lag per partition" }
        table #lag {
            thead { tr {
                th { "topic" } th.num { "partition" } th.num { "committed offset" }
                th.num { "end offset" } th.num { "lag" } th { "member" }
            } }
            tbody {
                @for l in &g.lags {
                    tr {
                        td { a href=(topic_href(&l.topic)) { (l.topic) } }
                        td.num { (l.partition) }
                        td.num { (l.committed_offset) }
                        td.num { (opt(l.end_offset)) }
                        td.num.lag { (opt(l.lag)) }
                        td { (l.member_id.as_deref().unwrap_or("–")) }
                    }
                }
            }
        }
        h2 { "Members" }
        table #members {
            thead { tr { th { "member" } th { "client" } th { "host" } th { "assignment" } } }
            tbody {
                @for m in &g.members {
                    tr {
                        td { code { (m.member_id) } @if let Some(i) = &m.instance_id { br; "instance " code { (i) } } }
                        td { (m.client_id) }
                        td { (m.client_host) }
                        td {
                            @for (t, ps) in &m.assignment {
                                div { (t) ": " (super::ids(ps)) }
                            }
                        }
                    }
                }
            }
        }
        @if actions {
            h2 { "Reset offsets" }
            p.note { "Kafka refuses this while the group has active members: stop its consumers first." }
            form.action method="post" action="/actions/reset-offsets"
                data-confirm=(format!("Reset the committed offsets of group {id}?")) {
                (confirm_field())
                input type="hidden" name="group" value=(id);
                label { "topic "
                    select name="topic" {
                        @for t in &topics { option value=(t) { (t) } }
                    }
                }
                label { "to "
                    select name="to" {
                        option value="earliest" { "earliest" }
                        option value="latest" { "latest" }
                        option value="offset" { "offset" }
                    }
                }
                label { "offset " input name="offset" type="number" min="0"; }
                button { "Reset" }
            }
        }
    };
    layout(
        &format!("Group {id}"),
        "/groups",
        actions,
        q.msg.as_deref(),
        body,
    )
}
