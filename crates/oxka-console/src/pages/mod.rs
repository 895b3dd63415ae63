//! The pages: one module each, all in the shared [`layout`].

pub mod api;
pub mod brokers;
pub mod groups;
pub mod overview;
pub mod topics;

use axum::response::{Html, IntoResponse, Response};
use maud::{html, Markup, DOCTYPE};

use crate::render::url_encode;

/// A page in the console's frame: navigation, flash message, footer.
pub fn layout(
    title: &str,
    active: &str,
    actions: bool,
    flash: Option<&str>,
    body: Markup,
) -> Response {
    let nav = [
        ("/", "Overview"),
        ("/topics", "Topics"),
        ("/groups", "Consumer groups"),
        ("/brokers", "Brokers"),
    ];
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · oxka console" }
                    link rel="stylesheet" href="/assets/console.css";
                    link rel="stylesheet" href="/assets/uPlot.min.css";
                    script defer src="/assets/uPlot.iife.min.js" {}
                    script defer src="/assets/console.js" {}
                }
                body {
                    header {
                        span.brand { "oxka" }
                        nav {
                            @for (href, label) in nav {
                                a href=(href) class=[(active == href).then_some("active")] { (label) }
                            }
                        }
                        span.mode title="http.console.actions.enable" {
                            @if actions { "actions enabled" } @else { "read-only" }
                        }
                    }
                    main {
                        @if let Some(f) = flash {
                            p.flash role="status" { (f) }
                        }
                        h1 { (title) }
                        (body)
                    }
                    footer {
                        "oxka web console · charts by "
                        a href="/assets/uPlot.LICENSE" { "uPlot (MIT)" }
                    }
                }
            }
        }
        .into_string(),
    )
    .into_response()
}

pub fn topic_href(name: &str) -> String {
    format!("/topics/{}", url_encode(name))
}

pub fn group_href(id: &str) -> String {
    format!("/groups/{}", url_encode(id))
}

/// "1, 2, 3".
pub fn ids(v: &[i32]) -> String {
    v.iter()
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn opt<T: std::fmt::Display>(v: Option<T>) -> String {
    v.map_or_else(|| "–".to_string(), |v| v.to_string())
}

/// Previous/next links for a list cut in pages of [`crate::PAGE_SIZE`].
pub fn pager(base: &str, q: &str, page: usize, total: usize) -> Markup {
    let pages = total.div_ceil(crate::PAGE_SIZE).max(1);
    let link = |p: usize| format!("{base}?q={}&page={p}", url_encode(q));
    html! {
        nav.pager {
            @if page > 1 { a rel="prev" href=(link(page - 1)) { "← previous" } }
            span { "page " (page) " of " (pages) " (" (total) ")" }
            @if page < pages { a rel="next" href=(link(page + 1)) { "next →" } }
        }
    }
}

/// The hidden field every action form carries; `console.js` sets it once
/// the operator confirmed, and the server refuses an action without it.
pub fn confirm_field() -> Markup {
    html! { input type="hidden" name="confirm" value="no"; }
}

pub fn config_table(rows: &[crate::ConfigRow]) -> Markup {
    html! {
        table.configs {
            thead { tr { th { "name" } th { "value" } th { "source" } } }
            tbody {
                @for c in rows {
                    tr class=[(c.source.starts_with("DYNAMIC")).then_some("override")] {
                        td { code { (c.name) } }
                        td {
                            @if c.sensitive { em { "(sensitive)" } }
                            @else { (c.value.as_deref().unwrap_or("null")) }
                        }
                        td.source { (c.source) }
                    }
                }
            }
        }
    }
}
