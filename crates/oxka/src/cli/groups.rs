//! `oxka groups list|describe|reset-offsets|delete`.

use std::collections::{BTreeMap, BTreeSet};

use clap::{ArgGroup, Args, Subcommand};
use oxka_client::admin::{GroupType, MemberDescription, OffsetSpec};
use oxka_client::{Admin, TopicPartition};
use serde_json::json;

use super::util::{names, one_name, parse_timestamp, print_json, print_table};
use super::{explain, CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct GroupsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: GroupsCmd,
}

#[derive(Subcommand, Debug)]
pub enum GroupsCmd {
    /// List consumer groups.
    #[command(alias = "ls")]
    List,
    /// Members, and per partition the committed offset, log end offset and lag.
    Describe {
        names: Vec<String>,
        #[arg(long)]
        group: Option<String>,
    },
    /// Move a group's committed offsets (dry run unless --execute).
    #[command(group(ArgGroup::new("target").required(true).args(["to_earliest", "to_latest", "to_offset", "shift_by", "to_datetime"])))]
    ResetOffsets {
        names: Vec<String>,
        #[arg(long)]
        group: Option<String>,
        /// Topic, or topic:partition[,partition...] (repeatable).
        #[arg(long = "topic", short = 't')]
        topics: Vec<String>,
        /// Every topic the group has committed offsets for.
        #[arg(long, conflicts_with = "topics")]
        all_topics: bool,
        #[arg(long)]
        to_earliest: bool,
        #[arg(long)]
        to_latest: bool,
        /// Clamped into the partition's range, as Kafka's tool does.
        #[arg(long, value_name = "OFFSET", allow_negative_numbers = true)]
        to_offset: Option<i64>,
        /// Move by N (negative: back), from the committed offset.
        #[arg(long, value_name = "N", allow_negative_numbers = true)]
        shift_by: Option<i64>,
        /// Epoch ms or YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM] (UTC if no zone).
        #[arg(long, value_name = "TIMESTAMP")]
        to_datetime: Option<String>,
        /// Show the plan only (the default).
        #[arg(long, conflicts_with = "execute")]
        dry_run: bool,
        /// Apply the plan.
        #[arg(long)]
        execute: bool,
    },
    /// Delete groups (they must have no active members).
    #[command(alias = "rm")]
    Delete {
        names: Vec<String>,
        #[arg(long)]
        group: Option<String>,
    },
}

pub async fn run(args: GroupsArgs) -> CliResult {
    let output = args.opts.output;
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        GroupsCmd::List => {
            let groups = admin.list_groups().await?;
            if output == Output::Json {
                print_json(&json!(groups
                    .iter()
                    .map(|g| json!({"group": g.group_id, "state": g.state, "type": g.group_type.to_string(), "protocol_type": g.protocol_type, "coordinator": g.coordinator}))
                    .collect::<Vec<_>>()));
            } else {
                // TYPE and PROTOCOL as Kafka's kafka-groups.sh shows them:
                // the group protocol (Classic, Consumer) and the classic
                // protocol type (consumer, connect, or empty)
                let rows: Vec<Vec<String>> = groups
                    .iter()
                    .map(|g| {
                        vec![
                            g.group_id.clone(),
                            g.state.clone(),
                            g.group_type.to_string(),
                            g.protocol_type.clone(),
                            g.coordinator.to_string(),
                        ]
                    })
                    .collect();
                print_table(
                    &["GROUP", "STATE", "TYPE", "PROTOCOL", "COORDINATOR"],
                    &rows,
                );
            }
            Ok(())
        }
        GroupsCmd::Describe { names: n, group } => {
            let list = names(&n, &group);
            if list.is_empty() {
                return Err(CliError::Usage(
                    "name the group: oxka groups describe GROUP".into(),
                ));
            }
            let mut json_out = Vec::new();
            for (i, g) in list.iter().enumerate() {
                let d = describe(&admin, g).await?;
                if output == Output::Json {
                    json_out.push(d.to_json());
                } else {
                    if i > 0 {
                        outln!();
                    }
                    d.print();
                }
            }
            if output == Output::Json {
                print_json(&json!(json_out));
            }
            Ok(())
        }
        GroupsCmd::ResetOffsets {
            names: n,
            group,
            topics,
            all_topics,
            to_earliest,
            to_latest,
            to_offset,
            shift_by,
            to_datetime,
            dry_run: _,
            execute,
        } => {
            let group = one_name(&n, &group, "group")?;
            if topics.is_empty() && !all_topics {
                return Err(CliError::Usage(
                    "choose what to reset: --topic TOPIC[:P,P...] or --all-topics".into(),
                ));
            }
            let target = if to_earliest {
                Target::Earliest
            } else if to_latest {
                Target::Latest
            } else if let Some(o) = to_offset {
                Target::Offset(o)
            } else if let Some(s) = shift_by {
                Target::Shift(s)
            } else if let Some(t) = &to_datetime {
                Target::Time(parse_timestamp(t)?)
            } else {
                return Err(CliError::Usage("choose a target: --to-earliest, --to-latest, --to-offset, --shift-by or --to-datetime".into()));
            };
            reset_offsets(&admin, &group, &topics, target, execute, output).await
        }
        GroupsCmd::Delete { names: n, group } => {
            let list = names(&n, &group);
            if list.is_empty() {
                return Err(CliError::Usage(
                    "name the group(s): oxka groups delete GROUP".into(),
                ));
            }
            let results = admin.delete_groups(&list).await?;
            if output == Output::Json {
                print_json(&json!(results
                    .iter()
                    .map(|(g, r)| json!({"group": g, "error": r.as_ref().err().map(|e| e.to_string())}))
                    .collect::<Vec<_>>()));
            } else {
                let rows: Vec<Vec<String>> = results
                    .iter()
                    .map(|(g, r)| {
                        vec![
                            g.clone(),
                            match r {
                                Ok(()) => "OK".into(),
                                Err(e) => e
                                    .kafka_code()
                                    .map(|c| c.name())
                                    .unwrap_or_else(|| e.to_string()),
                            },
                        ]
                    })
                    .collect();
                print_table(&["GROUP", "STATUS"], &rows);
            }
            match results.iter().find(|(_, r)| r.is_err()) {
                Some((_, Err(e))) => Err(CliError::Failed(explain(e))),
                _ => Ok(()),
            }
        }
    }
}

struct PartitionLag {
    tp: TopicPartition,
    current: Option<i64>,
    log_end: i64,
    member: Option<(String, String, String)>,
}

struct Described {
    group: String,
    state: String,
    group_type: GroupType,
    protocol: String,
    coordinator: i32,
    /// KIP-848 groups: group epoch, target assignment epoch.
    epochs: Option<(i32, i32)>,
    members: Vec<MemberDescription>,
    partitions: Vec<PartitionLag>,
}

/// `topic:0,1;other:2` as Kafka's tool shows an assignment.
fn assignment_text(tps: &[TopicPartition]) -> String {
    if tps.is_empty() {
        return "-".into();
    }
    let mut by_topic: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for tp in tps {
        by_topic
            .entry(&tp.topic)
            .or_default()
            .push(tp.partition.to_string());
    }
    by_topic
        .into_iter()
        .map(|(t, ps)| format!("{t}:{}", ps.join(",")))
        .collect::<Vec<_>>()
        .join(";")
}

impl Described {
    fn lag(p: &PartitionLag) -> Option<i64> {
        p.current.map(|c| (p.log_end - c).max(0))
    }

    fn total_lag(&self) -> i64 {
        self.partitions.iter().filter_map(Self::lag).sum()
    }

    fn to_json(&self) -> serde_json::Value {
        let tps_json = |tps: &[TopicPartition]| -> serde_json::Value {
            json!(tps
                .iter()
                .map(|tp| json!({"topic": tp.topic, "partition": tp.partition}))
                .collect::<Vec<_>>())
        };
        json!({
            "group": self.group,
            "state": self.state,
            "type": self.group_type.to_string(),
            "assignor": self.protocol,
            "coordinator": self.coordinator,
            "group_epoch": self.epochs.map(|e| e.0),
            "target_assignment_epoch": self.epochs.map(|e| e.1),
            "members": self.members.len(),
            "member_details": self.members.iter().map(|m| json!({
                "member_id": m.member_id,
                "instance_id": m.group_instance_id,
                "client_id": m.client_id,
                "host": m.client_host,
                "member_epoch": m.member_epoch,
                "assignment": tps_json(&m.assignment),
                "target_assignment": m.target_assignment.as_deref().map(tps_json),
            })).collect::<Vec<_>>(),
            "total_lag": self.total_lag(),
            "partitions": self.partitions.iter().map(|p| json!({
                "topic": p.tp.topic,
                "partition": p.tp.partition,
                "current_offset": p.current,
                "log_end_offset": p.log_end,
                "lag": Self::lag(p),
                "member_id": p.member.as_ref().map(|m| &m.0),
                "client_id": p.member.as_ref().map(|m| &m.1),
                "host": p.member.as_ref().map(|m| &m.2),
            })).collect::<Vec<_>>(),
        })
    }

    fn print(&self) {
        let mut headers = vec![
            "GROUP",
            "COORDINATOR",
            "STATE",
            "TYPE",
            "ASSIGNOR",
            "MEMBERS",
            "TOTAL-LAG",
        ];
        let mut row = vec![
            self.group.clone(),
            self.coordinator.to_string(),
            self.state.clone(),
            self.group_type.to_string(),
            self.protocol.clone(),
            self.members.len().to_string(),
            self.total_lag().to_string(),
        ];
        if let Some((group_epoch, target_epoch)) = self.epochs {
            headers.extend(["GROUP-EPOCH", "TARGET-ASSIGNMENT-EPOCH"]);
            row.extend([group_epoch.to_string(), target_epoch.to_string()]);
        }
        print_table(&headers, &[row]);
        if self.epochs.is_some() && !self.members.is_empty() {
            // KIP-848 members as kafka-consumer-groups.sh --members --verbose
            // shows them: where each stands and where it is going
            let target = self.epochs.map_or(-1, |e| e.1);
            let rows: Vec<Vec<String>> = self
                .members
                .iter()
                .map(|m| {
                    vec![
                        m.member_id.clone(),
                        m.client_host.clone(),
                        m.client_id.clone(),
                        m.assignment.len().to_string(),
                        m.member_epoch.map_or_else(|| "-".into(), |e| e.to_string()),
                        assignment_text(&m.assignment),
                        target.to_string(),
                        assignment_text(m.target_assignment.as_deref().unwrap_or_default()),
                    ]
                })
                .collect();
            outln!();
            print_table(
                &[
                    "MEMBER-ID",
                    "HOST",
                    "CLIENT-ID",
                    "#PARTITIONS",
                    "CURRENT-EPOCH",
                    "CURRENT-ASSIGNMENT",
                    "TARGET-EPOCH",
                    "TARGET-ASSIGNMENT",
                ],
                &rows,
            );
        }
        if self.partitions.is_empty() {
            outln!("\n(no committed offsets and no assigned partitions)");
            return;
        }
        outln!();
        let dash = || "-".to_string();
        let rows: Vec<Vec<String>> = self
            .partitions
            .iter()
            .map(|p| {
                vec![
                    p.tp.topic.clone(),
                    p.tp.partition.to_string(),
                    p.current.map_or_else(dash, |c| c.to_string()),
                    p.log_end.to_string(),
                    Self::lag(p).map_or_else(dash, |l| l.to_string()),
                    p.member.as_ref().map_or_else(dash, |m| m.0.clone()),
                    p.member.as_ref().map_or_else(dash, |m| m.1.clone()),
                    p.member.as_ref().map_or_else(dash, |m| m.2.clone()),
                ]
            })
            .collect();
        print_table(
            &[
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "LOG-END-OFFSET",
                "LAG",
                "MEMBER-ID",
                "CLIENT-ID",
                "HOST",
            ],
            &rows,
        );
    }
}

async fn describe(admin: &Admin, group: &str) -> CliResult<Described> {
    let d = admin.describe_group(group).await?;
    let committed = admin.list_group_offsets(group).await?;
    if d.state == "Dead" && committed.is_empty() {
        return Err(CliError::Failed(format!(
            "group `{group}` does not exist\nhint: list groups with `oxka groups list`"
        )));
    }
    let mut owner: BTreeMap<TopicPartition, (String, String, String)> = BTreeMap::new();
    for m in &d.members {
        for tp in &m.assignment {
            owner.insert(
                tp.clone(),
                (
                    m.member_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                ),
            );
        }
    }
    let all: BTreeSet<TopicPartition> = committed.keys().chain(owner.keys()).cloned().collect();
    let all: Vec<TopicPartition> = all.into_iter().collect();
    let ends = if all.is_empty() {
        BTreeMap::new()
    } else {
        admin.list_offsets(&all, OffsetSpec::Latest).await?
    };
    Ok(Described {
        group: group.to_string(),
        state: d.state,
        group_type: d.group_type,
        protocol: d.protocol,
        coordinator: d.coordinator,
        epochs: d.epochs,
        members: d.members,
        partitions: all
            .into_iter()
            .map(|tp| PartitionLag {
                current: committed.get(&tp).copied(),
                log_end: ends.get(&tp).copied().unwrap_or(-1),
                member: owner.get(&tp).cloned(),
                tp,
            })
            .collect(),
    })
}

#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Shift(i64),
    Time(i64),
}

async fn reset_offsets(
    admin: &Admin,
    group: &str,
    topics: &[String],
    target: Target,
    execute: bool,
    output: Output,
) -> CliResult {
    let committed = admin.list_group_offsets(group).await?;
    let mut tps: BTreeSet<TopicPartition> = BTreeSet::new();
    if topics.is_empty() {
        tps.extend(committed.keys().cloned());
        if tps.is_empty() {
            return Err(CliError::Failed(format!(
                "group `{group}` has no committed offsets; name the topics with --topic"
            )));
        }
    }
    for spec in topics {
        match spec.split_once(':') {
            Some((t, parts)) => {
                for p in parts.split(',') {
                    let p: i32 = p.trim().parse().map_err(|_| {
                        CliError::Usage(format!("--topic {spec}: `{p}` is not a partition number"))
                    })?;
                    tps.insert(TopicPartition::new(t, p));
                }
            }
            None => {
                let t = admin.describe_topic(spec).await?;
                tps.extend(t.partitions.iter().map(|p| TopicPartition::new(spec, p.id)));
            }
        }
    }
    let tps: Vec<TopicPartition> = tps.into_iter().collect();
    let lo = admin.list_offsets(&tps, OffsetSpec::Earliest).await?;
    let hi = admin.list_offsets(&tps, OffsetSpec::Latest).await?;
    let at_time = match target {
        Target::Time(ts) => admin.list_offsets(&tps, OffsetSpec::Timestamp(ts)).await?,
        _ => BTreeMap::new(),
    };
    let mut plan: BTreeMap<TopicPartition, i64> = BTreeMap::new();
    for tp in &tps {
        let (l, h) = (
            lo.get(tp).copied().unwrap_or(0),
            hi.get(tp).copied().unwrap_or(0),
        );
        let new = match target {
            Target::Earliest => l,
            Target::Latest => h,
            Target::Offset(o) => o,
            Target::Shift(s) => committed.get(tp).copied().unwrap_or(l).saturating_add(s),
            Target::Time(_) => at_time.get(tp).copied().filter(|o| *o >= 0).unwrap_or(h),
        };
        // Kafka's tool clamps into the partition's range.
        plan.insert(tp.clone(), new.clamp(l, h.max(l)));
    }
    if execute {
        let d = admin.describe_group(group).await?;
        if !d.members.is_empty() {
            return Err(CliError::Failed(format!(
                "group `{group}` has {} active member(s) (state {}); offsets can only be reset while it is empty\nhint: stop its consumers, then run this again",
                d.members.len(),
                d.state
            )));
        }
        admin
            .alter_group_offsets(group, &plan)
            .await
            .map_err(|e| match e.kafka_code().map(|c| c.name()).as_deref() {
                // a member joined since the check above: the coordinator
                // refuses a commit from outside the group
                Some("UNKNOWN_MEMBER_ID" | "ILLEGAL_GENERATION" | "STALE_MEMBER_EPOCH") => {
                    CliError::Failed(format!(
                        "group `{group}` is not empty any more ({e}); offsets can only be reset while it has no members\nhint: stop its consumers, then run this again"
                    ))
                }
                _ => CliError::from(e),
            })?;
    }
    if output == Output::Json {
        print_json(&json!({
            "group": group,
            "executed": execute,
            "partitions": plan.iter().map(|(tp, n)| json!({
                "topic": tp.topic, "partition": tp.partition,
                "current_offset": committed.get(tp), "new_offset": n})).collect::<Vec<_>>(),
        }));
    } else {
        let rows: Vec<Vec<String>> = plan
            .iter()
            .map(|(tp, n)| {
                vec![
                    group.to_string(),
                    tp.topic.clone(),
                    tp.partition.to_string(),
                    committed
                        .get(tp)
                        .map_or_else(|| "-".into(), |c| c.to_string()),
                    n.to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "GROUP",
                "TOPIC",
                "PARTITION",
                "CURRENT-OFFSET",
                "NEW-OFFSET",
            ],
            &rows,
        );
        if !execute {
            eprintln!("dry run: nothing changed; add --execute to apply");
        }
    }
    Ok(())
}
