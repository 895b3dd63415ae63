//! `oxka top`: a cluster's throughput and consumer lag in a terminal,
//! refreshed every few seconds.
//!
//! Everything comes over the Kafka protocol, so it works on any
//! Kafka-compatible cluster and with `--command-config` security:
//! messages per second are the growth of each topic's end offsets
//! (ListOffsets latest) between two samples; a group's lag is its
//! committed offsets (OffsetFetch) against the same end offsets, as
//! `oxka groups describe` computes it. Bytes do not show through the
//! protocol: the brokers' `/metrics` have them (docs/metrics.md).

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::{Duration, Instant};

use clap::Args;
use oxka_client::admin::OffsetSpec;
use oxka_client::{Admin, TopicPartition};
use serde_json::json;

use super::util::{format_timestamp, print_json, print_table, stop_signal, write_stdout};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct TopArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    /// Seconds between refreshes (rates are over this interval).
    #[arg(long, default_value_t = 2.0, value_name = "SECONDS")]
    pub interval: f64,
    /// Print one view, rates over one interval, and exit.
    #[arg(long)]
    pub once: bool,
    /// Rows per table: the busiest topics and the most lagging groups.
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Include internal topics (__consumer_offsets, __transaction_state).
    #[arg(long)]
    pub internal: bool,
}

/// One look at the cluster.
struct Sample {
    at: Instant,
    /// Partitions per topic.
    topics: BTreeMap<String, usize>,
    /// End offset (high watermark) per partition.
    ends: BTreeMap<TopicPartition, i64>,
    groups: Vec<GroupSample>,
    brokers: usize,
    controller: i32,
}

struct GroupSample {
    group: String,
    state: String,
    /// Summed over the partitions whose end offset is known.
    lag: i64,
    partitions: usize,
}

/// What one frame shows.
struct View {
    interval: f64,
    brokers: usize,
    controller: i32,
    /// (topic, partitions, messages per second, summed end offsets).
    topics: Vec<(String, usize, f64, i64)>,
    /// (group, state, lag, partitions, lag change per second).
    groups: Vec<(String, String, i64, usize, Option<f64>)>,
}

pub async fn run(args: TopArgs) -> CliResult {
    if !(0.1..=3600.0).contains(&args.interval) {
        return Err(CliError::Usage(
            "--interval must be between 0.1 and 3600 seconds".into(),
        ));
    }
    let admin = Admin::new(&args.opts.client_config()?)?;
    let interval = Duration::from_secs_f64(args.interval);
    let stop = stop_signal();
    tokio::pin!(stop);
    let mut before = sample(&admin, args.internal).await?;
    let clear = !args.once && args.opts.output == Output::Text && std::io::stdout().is_terminal();
    loop {
        tokio::select! {
            code = &mut stop => return Err(CliError::Signal(code)),
            _ = tokio::time::sleep(interval) => {}
        }
        let now = match sample(&admin, args.internal).await {
            Ok(s) => s,
            Err(CliError::Failed(m)) if !args.once => {
                // a refresh that failed (a broker restarting) is shown,
                // and the next one tried
                eprintln!("error: {m}");
                continue;
            }
            Err(e) => return Err(e),
        };
        let view = view(&before, &now, args.limit);
        if clear {
            write_stdout(b"\x1b[H\x1b[2J");
        }
        match args.opts.output {
            Output::Json => print_json(&view.to_json()),
            Output::Text => view.print(),
        }
        if args.once {
            return Ok(());
        }
        before = now;
    }
}

async fn sample(admin: &Admin, internal: bool) -> CliResult<Sample> {
    let cluster = admin.describe_cluster().await?;
    let listed = admin.list_topics(internal).await?;
    let mut topics = BTreeMap::new();
    let mut tps = Vec::new();
    for t in &listed {
        topics.insert(t.name.clone(), t.partitions.len());
        tps.extend(
            t.partitions
                .iter()
                .map(|p| TopicPartition::new(t.name.clone(), p.id)),
        );
    }
    let mut ends = if tps.is_empty() {
        BTreeMap::new()
    } else {
        admin.list_offsets(&tps, OffsetSpec::Latest).await?
    };
    let mut groups = Vec::new();
    for g in admin.list_groups().await? {
        // a group that went away between the listing and now is skipped
        let Ok(committed) = admin.list_group_offsets(&g.group_id).await else {
            continue;
        };
        // partitions of topics left out (internal ones) are asked too
        let missing: Vec<TopicPartition> = committed
            .keys()
            .filter(|tp| !ends.contains_key(*tp))
            .cloned()
            .collect();
        if !missing.is_empty() {
            if let Ok(found) = admin.list_offsets(&missing, OffsetSpec::Latest).await {
                ends.extend(found);
            }
        }
        let lag = committed
            .iter()
            .filter_map(|(tp, c)| ends.get(tp).map(|e| (e - c).max(0)))
            .sum();
        groups.push(GroupSample {
            group: g.group_id,
            state: g.state,
            lag,
            partitions: committed.len(),
        });
    }
    Ok(Sample {
        at: Instant::now(),
        topics,
        ends,
        groups,
        brokers: cluster.brokers.len(),
        controller: cluster.controller_id,
    })
}

fn view(before: &Sample, now: &Sample, limit: usize) -> View {
    let secs = now.at.duration_since(before.at).as_secs_f64().max(1e-3);
    let sum_of = |s: &Sample, topic: &str| -> Option<i64> {
        let mut any = false;
        let total = s
            .ends
            .range(TopicPartition::new(topic, 0)..=TopicPartition::new(topic, i32::MAX))
            .map(|(_, e)| {
                any = true;
                *e
            })
            .sum();
        any.then_some(total)
    };
    let mut topics: Vec<(String, usize, f64, i64)> = now
        .topics
        .iter()
        .map(|(t, parts)| {
            let end = sum_of(now, t).unwrap_or(0);
            // a topic new since the last sample has no rate yet
            let rate = sum_of(before, t).map_or(0.0, |b| (end - b).max(0) as f64 / secs);
            (t.clone(), *parts, rate, end)
        })
        .collect();
    topics.sort_by(|a, b| b.2.total_cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    topics.truncate(limit);
    let lag_before: BTreeMap<&str, i64> = before
        .groups
        .iter()
        .map(|g| (g.group.as_str(), g.lag))
        .collect();
    let mut groups: Vec<(String, String, i64, usize, Option<f64>)> = now
        .groups
        .iter()
        .map(|g| {
            let change = lag_before
                .get(g.group.as_str())
                .map(|b| (g.lag - b) as f64 / secs);
            (
                g.group.clone(),
                g.state.clone(),
                g.lag,
                g.partitions,
                change,
            )
        })
        .collect();
    groups.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
    groups.truncate(limit);
    View {
        interval: secs,
        brokers: now.brokers,
        controller: now.controller,
        topics,
        groups,
    }
}

/// A rate for people: no decimals from 100 up.
fn rate(r: f64) -> String {
    if r >= 100.0 {
        format!("{r:.0}")
    } else {
        format!("{r:.1}")
    }
}

impl View {
    fn print(&self) {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        let total: f64 = self.topics.iter().map(|t| t.2).sum();
        write_stdout(
            format!(
                "oxka top  {}  brokers {}  controller {}  rates over {:.1} s  {} msg/s in\n\n",
                format_timestamp(now_ms),
                self.brokers,
                self.controller,
                self.interval,
                rate(total)
            )
            .as_bytes(),
        );
        let rows: Vec<Vec<String>> = self
            .topics
            .iter()
            .map(|(t, p, r, e)| vec![t.clone(), p.to_string(), rate(*r), e.to_string()])
            .collect();
        print_table(&["TOPIC", "PARTITIONS", "MSG/S", "END OFFSETS"], &rows);
        write_stdout(b"\n");
        let rows: Vec<Vec<String>> = self
            .groups
            .iter()
            .map(|(g, s, lag, p, change)| {
                vec![
                    g.clone(),
                    s.clone(),
                    lag.to_string(),
                    change.map_or_else(|| "-".to_string(), |c| format!("{c:+.1}")),
                    p.to_string(),
                ]
            })
            .collect();
        print_table(&["GROUP", "STATE", "LAG", "LAG/S", "PARTITIONS"], &rows);
    }

    fn to_json(&self) -> serde_json::Value {
        json!({
            "interval_seconds": self.interval,
            "brokers": self.brokers,
            "controller": self.controller,
            "topics": self.topics.iter().map(|(t, p, r, e)| json!({
                "topic": t,
                "partitions": p,
                "messages_per_second": r,
                "end_offsets": e,
            })).collect::<Vec<_>>(),
            "groups": self.groups.iter().map(|(g, s, lag, p, change)| json!({
                "group": g,
                "state": s,
                "lag": lag,
                "lag_change_per_second": change,
                "partitions": p,
            })).collect::<Vec<_>>(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(at: Instant, ends: &[(&str, i32, i64)], lags: &[(&str, i64)]) -> Sample {
        let mut topics = BTreeMap::new();
        for (t, _, _) in ends {
            *topics.entry(t.to_string()).or_insert(0) += 1;
        }
        Sample {
            at,
            topics,
            ends: ends
                .iter()
                .map(|(t, p, e)| (TopicPartition::new(*t, *p), *e))
                .collect(),
            groups: lags
                .iter()
                .map(|(g, lag)| GroupSample {
                    group: g.to_string(),
                    state: "Stable".into(),
                    lag: *lag,
                    partitions: 1,
                })
                .collect(),
            brokers: 1,
            controller: 1,
        }
    }

    #[test]
    fn rates_are_end_offset_growth_over_the_interval() {
        let t0 = Instant::now();
        let before = sample(
            t0,
            &[("a", 0, 100), ("a", 1, 50), ("ab", 0, 7)],
            &[("g", 30)],
        );
        let now = sample(
            t0 + Duration::from_secs(2),
            &[("a", 0, 300), ("a", 1, 250), ("ab", 0, 7), ("new", 0, 9)],
            &[("g", 10), ("h", 5)],
        );
        let v = view(&before, &now, 10);
        // the busiest first; `ab` is not counted into `a`; a new topic has
        // no rate yet
        assert_eq!(v.topics[0], ("a".to_string(), 2, 200.0, 550));
        assert_eq!(v.topics[1].2, 0.0);
        assert!(v
            .topics
            .iter()
            .any(|t| t.0 == "new" && t.2 == 0.0 && t.3 == 9));
        assert_eq!(v.groups[0].0, "g");
        assert_eq!(v.groups[0].4, Some(-10.0));
        assert_eq!(v.groups[1].4, None);
        assert_eq!(view(&before, &now, 1).topics.len(), 1);
    }
}
