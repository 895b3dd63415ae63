//! `oxka topics create|list|describe|alter|delete`.

use clap::{Args, Subcommand};
use oxka_client::admin::{AlterConfigOp, ConfigResource, NewTopic};
use oxka_client::Admin;
use serde_json::json;

use super::util::{names, one_name, parse_kv, print_json, print_table};
use super::{explain, CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct TopicsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: TopicsCmd,
}

#[derive(Subcommand, Debug)]
pub enum TopicsCmd {
    /// Create topics: `oxka topics create orders --partitions 3`.
    Create {
        /// Topic names.
        names: Vec<String>,
        #[arg(long)]
        topic: Option<String>,
        /// Partitions (default: the broker's num.partitions).
        #[arg(short, long, default_value_t = -1)]
        partitions: i32,
        /// Replication factor (default: the broker's default.replication.factor).
        #[arg(short = 'r', long = "replicas", alias = "replication-factor", default_value_t = -1)]
        replicas: i16,
        /// Topic config key=value (repeatable), e.g. -c retention.ms=86400000.
        #[arg(
            short = 'c',
            long = "topic-config",
            alias = "config",
            value_name = "KEY=VALUE"
        )]
        configs: Vec<String>,
        /// Validate only; create nothing.
        #[arg(long)]
        dry_run: bool,
    },
    /// List topics.
    #[command(alias = "ls")]
    List {
        /// Include internal topics (__consumer_offsets, ...).
        #[arg(short, long)]
        internal: bool,
    },
    /// Describe a topic: summary, non-default configs, partitions with offsets.
    Describe {
        names: Vec<String>,
        #[arg(long)]
        topic: Option<String>,
        /// Show every config, defaults included.
        #[arg(short, long)]
        all_configs: bool,
        /// Only partitions whose ISR is smaller than their replica set, of
        /// the named topics or all (as kafka-topics.sh --describe).
        #[arg(long, alias = "under-replicated")]
        under_replicated_partitions: bool,
        /// Only partitions without a live leader, of the named topics or all.
        #[arg(long, alias = "unavailable")]
        unavailable_partitions: bool,
    },
    /// Grow partitions and/or change configs.
    Alter {
        names: Vec<String>,
        #[arg(long)]
        topic: Option<String>,
        /// New total partition count (can only grow).
        #[arg(short, long)]
        partitions: Option<i32>,
        /// Set a config key=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove a config override, back to the default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Delete topics.
    #[command(alias = "rm")]
    Delete {
        names: Vec<String>,
        #[arg(long)]
        topic: Option<String>,
    },
}

/// "offline" without a live leader, "under-replicated" with an ISR
/// smaller than the replica set, else "ok".
fn partition_state(p: &oxka_client::PartitionInfo, live: &[i32]) -> &'static str {
    if p.leader < 0 || !live.contains(&p.leader) {
        "offline"
    } else if p.isr.len() < p.replicas.len() {
        "under-replicated"
    } else {
        "ok"
    }
}

/// `--under-replicated-partitions` / `--unavailable-partitions`: the
/// matching partitions of the named topics (all when none is named).
async fn describe_filtered(
    admin: &Admin,
    topics: Vec<String>,
    under_replicated: bool,
    unavailable: bool,
    output: Output,
) -> CliResult {
    let md = admin.metadata().await?;
    let live: Vec<i32> = md.brokers.keys().copied().collect();
    let mut rows = Vec::new();
    for t in md.topics.values() {
        if !topics.is_empty() && !topics.contains(&t.name) {
            continue;
        }
        for p in &t.partitions {
            let state = partition_state(p, &live);
            let hit = (unavailable && state == "offline")
                || (under_replicated && p.isr.len() < p.replicas.len());
            if hit {
                rows.push((t.name.clone(), p.clone(), state));
            }
        }
    }
    rows.sort_by(|a, b| (a.0.as_str(), a.1.id).cmp(&(b.0.as_str(), b.1.id)));
    if output == Output::Json {
        print_json(&json!(rows
            .iter()
            .map(
                |(t, p, state)| json!({"topic": t, "partition": p.id, "leader": p.leader,
                                        "replicas": p.replicas, "isr": p.isr, "state": state})
            )
            .collect::<Vec<_>>()));
        return Ok(());
    }
    let ids = |v: &[i32]| {
        format!(
            "[{}]",
            v.iter()
                .map(|i| i.to_string())
                .collect::<Vec<_>>()
                .join(" ")
        )
    };
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(t, p, state)| {
            vec![
                t.clone(),
                p.id.to_string(),
                p.leader.to_string(),
                ids(&p.replicas),
                ids(&p.isr),
                state.to_string(),
            ]
        })
        .collect();
    print_table(
        &["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "STATE"],
        &table,
    );
    Ok(())
}

fn report(
    results: Vec<(String, Result<(), oxka_client::Error>)>,
    output: Output,
    ok_word: &str,
) -> CliResult {
    let failed = results.iter().filter(|(_, r)| r.is_err()).count();
    if output == Output::Json {
        print_json(&json!(results
            .iter()
            .map(|(n, r)| json!({"topic": n, "error": r.as_ref().err().map(|e| e.to_string())}))
            .collect::<Vec<_>>()));
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|(n, r)| {
                vec![
                    n.clone(),
                    match r {
                        Ok(()) => ok_word.to_string(),
                        Err(e) => e
                            .kafka_code()
                            .map(|c| c.name())
                            .unwrap_or_else(|| e.to_string()),
                    },
                ]
            })
            .collect();
        print_table(&["TOPIC", "STATUS"], &rows);
    }
    if let Some((_, Err(e))) = results.iter().find(|(_, r)| r.is_err()) {
        return Err(CliError::Failed(format!(
            "{failed} of {} failed; first: {}",
            results.len(),
            explain(e)
        )));
    }
    Ok(())
}

pub async fn run(args: TopicsArgs) -> CliResult {
    let output = args.opts.output;
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        TopicsCmd::Create {
            names: n,
            topic,
            partitions,
            replicas,
            configs,
            dry_run,
        } => {
            let list = names(&n, &topic);
            if list.is_empty() {
                return Err(CliError::Usage(
                    "name the topic(s) to create: oxka topics create NAME".into(),
                ));
            }
            let configs = parse_kv(&configs, "--topic-config")?;
            let topics: Vec<NewTopic> = list
                .iter()
                .map(|t| {
                    let mut nt = NewTopic::new(t, partitions, replicas);
                    nt.configs = configs.clone();
                    nt
                })
                .collect();
            let results = admin.create_topics(&topics, dry_run).await?;
            report(results, output, if dry_run { "OK (dry run)" } else { "OK" })
        }
        TopicsCmd::List { internal } => {
            let topics = admin.list_topics(internal).await?;
            if output == Output::Json {
                print_json(&json!(topics
                    .iter()
                    .map(|t| json!({
                        "name": t.name,
                        "id": t.id.to_string(),
                        "partitions": t.partitions.len(),
                        "replicas": t.partitions.first().map_or(0, |p| p.replicas.len()),
                        "internal": t.internal,
                    }))
                    .collect::<Vec<_>>()));
            } else {
                let rows: Vec<Vec<String>> = topics
                    .iter()
                    .map(|t| {
                        vec![
                            t.name.clone(),
                            t.partitions.len().to_string(),
                            t.partitions
                                .first()
                                .map_or(0, |p| p.replicas.len())
                                .to_string(),
                        ]
                    })
                    .collect();
                print_table(&["NAME", "PARTITIONS", "REPLICAS"], &rows);
            }
            Ok(())
        }
        TopicsCmd::Describe {
            names: n,
            topic,
            all_configs,
            under_replicated_partitions,
            unavailable_partitions,
        } => {
            if under_replicated_partitions || unavailable_partitions {
                return describe_filtered(
                    &admin,
                    names(&n, &topic),
                    under_replicated_partitions,
                    unavailable_partitions,
                    output,
                )
                .await;
            }
            let name = one_name(&n, &topic, "topic")?;
            let t = admin.describe_topic(&name).await?;
            let configs = admin
                .describe_configs(&ConfigResource::Topic(name.clone()), &[])
                .await?;
            let configs: Vec<_> = configs
                .into_iter()
                .filter(|c| all_configs || c.source == "DYNAMIC_TOPIC_CONFIG")
                .collect();
            let offsets = admin.topic_offsets(&name).await?;
            let live: Vec<i32> = admin.metadata().await?.brokers.keys().copied().collect();
            if output == Output::Json {
                print_json(&json!({
                    "name": t.name,
                    "id": t.id.to_string(),
                    "internal": t.internal,
                    "partitions": t.partitions.iter().map(|p| {
                        let (lo, hi) = offsets.iter().find(|o| o.0 == p.id).map_or((-1, -1), |o| (o.1, o.2));
                        json!({"partition": p.id, "leader": p.leader, "leader_epoch": p.leader_epoch,
                               "replicas": p.replicas, "isr": p.isr, "log_start_offset": lo, "high_watermark": hi,
                               "state": partition_state(p, &live)})
                    }).collect::<Vec<_>>(),
                    "configs": configs.iter().map(|c| json!({"name": c.name, "value": c.value, "source": c.source})).collect::<Vec<_>>(),
                }));
                return Ok(());
            }
            outln!("SUMMARY\n=======");
            print_table(
                &["NAME", "ID", "PARTITIONS", "REPLICAS", "INTERNAL"],
                &[vec![
                    t.name.clone(),
                    t.id.to_string(),
                    t.partitions.len().to_string(),
                    t.partitions
                        .first()
                        .map_or(0, |p| p.replicas.len())
                        .to_string(),
                    t.internal.to_string(),
                ]],
            );
            outln!("\nCONFIGS\n=======");
            if configs.is_empty() {
                outln!("(all defaults; --all-configs shows them)");
            } else {
                let rows: Vec<Vec<String>> = configs
                    .iter()
                    .map(|c| {
                        vec![
                            c.name.clone(),
                            c.value.clone().unwrap_or_default(),
                            c.source.clone(),
                        ]
                    })
                    .collect();
                print_table(&["KEY", "VALUE", "SOURCE"], &rows);
            }
            outln!("\nPARTITIONS\n==========");
            let fmt_ids = |v: &[i32]| {
                format!(
                    "[{}]",
                    v.iter()
                        .map(|i| i.to_string())
                        .collect::<Vec<_>>()
                        .join(" ")
                )
            };
            let rows: Vec<Vec<String>> = t
                .partitions
                .iter()
                .map(|p| {
                    let (lo, hi) = offsets
                        .iter()
                        .find(|o| o.0 == p.id)
                        .map_or((-1, -1), |o| (o.1, o.2));
                    vec![
                        p.id.to_string(),
                        p.leader.to_string(),
                        p.leader_epoch.to_string(),
                        fmt_ids(&p.replicas),
                        fmt_ids(&p.isr),
                        lo.to_string(),
                        hi.to_string(),
                        partition_state(p, &live).to_string(),
                    ]
                })
                .collect();
            print_table(
                &[
                    "PARTITION",
                    "LEADER",
                    "EPOCH",
                    "REPLICAS",
                    "ISR",
                    "LOG-START-OFFSET",
                    "HIGH-WATERMARK",
                    "STATE",
                ],
                &rows,
            );
            Ok(())
        }
        TopicsCmd::Alter {
            names: n,
            topic,
            partitions,
            set,
            delete,
        } => {
            let name = one_name(&n, &topic, "topic")?;
            if partitions.is_none() && set.is_empty() && delete.is_empty() {
                return Err(CliError::Usage(
                    "nothing to alter: give --partitions N, --set KEY=VALUE or --delete KEY".into(),
                ));
            }
            if let Some(p) = partitions {
                admin.create_partitions(&name, p).await?;
            }
            let mut ops: Vec<AlterConfigOp> = parse_kv(&set, "--set")?
                .into_iter()
                .map(|(k, v)| AlterConfigOp::Set(k, v))
                .collect();
            ops.extend(delete.into_iter().map(AlterConfigOp::Delete));
            if !ops.is_empty() {
                admin
                    .incremental_alter_configs(&ConfigResource::Topic(name.clone()), &ops)
                    .await?;
            }
            if output == Output::Json {
                print_json(&json!({"topic": name, "altered": true}));
            } else {
                outln!("Altered topic {name}");
            }
            Ok(())
        }
        TopicsCmd::Delete { names: n, topic } => {
            let list = names(&n, &topic);
            if list.is_empty() {
                return Err(CliError::Usage(
                    "name the topic(s) to delete: oxka topics delete NAME".into(),
                ));
            }
            let results = admin.delete_topics(&list).await?;
            report(results, output, "OK")
        }
    }
}
