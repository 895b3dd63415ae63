//! `oxka partitions reassign|elect-leaders`: Kafka's
//! `kafka-reassign-partitions.sh` (the same JSON plan) and
//! `kafka-leader-election.sh`.

use clap::{Args, Subcommand, ValueEnum};
use oxka_client::{Admin, TopicPartition};
use serde_json::json;

use super::util::{print_json, print_table};
use super::{explain, CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct PartitionsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: PartitionsCmd,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ElectionType {
    Preferred,
    Unclean,
}

#[derive(Subcommand, Debug)]
pub enum PartitionsCmd {
    /// Move partitions to new replicas (adds them, waits until they are in
    /// sync, then removes the old ones): a plan file in
    /// kafka-reassign-partitions.sh's JSON format, or one partition with
    /// --topic/--partition/--replicas. --verify reports progress; --cancel
    /// stops the plan's reassignments.
    Reassign {
        /// `{"version":1,"partitions":[{"topic":"t","partition":0,"replicas":[1,2,3]}]}`.
        #[arg(long = "reassignment-json-file", alias = "plan", value_name = "FILE")]
        plan: Option<std::path::PathBuf>,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        /// Target broker ids, comma-separated; the first is the preferred leader.
        #[arg(long, value_delimiter = ',')]
        replicas: Vec<i32>,
        /// Report which reassignments of the plan are still in progress.
        #[arg(long, conflicts_with = "cancel")]
        verify: bool,
        /// Cancel the plan's reassignments in progress.
        #[arg(long)]
        cancel: bool,
    },
    /// Elect leaders: preferred (back to each partition's first replica)
    /// or unclean (any live replica for partitions without a leader).
    ElectLeaders {
        #[arg(long, value_enum, default_value = "preferred")]
        election_type: ElectionType,
        #[arg(long)]
        topic: Option<String>,
        #[arg(long)]
        partition: Option<i32>,
        /// Every partition of every topic.
        #[arg(long)]
        all_topic_partitions: bool,
    },
}

/// The partitions of a kafka-reassign-partitions.sh plan.
fn parse_plan(text: &str) -> Result<Vec<(TopicPartition, Vec<i32>)>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let parts = v
        .get("partitions")
        .and_then(|p| p.as_array())
        .ok_or("no \"partitions\" list")?;
    parts
        .iter()
        .map(|p| {
            let topic = p
                .get("topic")
                .and_then(|t| t.as_str())
                .ok_or("a partition without \"topic\"")?;
            let partition = p
                .get("partition")
                .and_then(|n| n.as_i64())
                .and_then(|n| i32::try_from(n).ok())
                .ok_or("a partition without a valid \"partition\"")?;
            let replicas = p
                .get("replicas")
                .and_then(|r| r.as_array())
                .ok_or("a partition without \"replicas\"")?
                .iter()
                .map(|r| {
                    r.as_i64()
                        .and_then(|n| i32::try_from(n).ok())
                        .ok_or("a replica that is not a broker id")
                })
                .collect::<Result<Vec<i32>, _>>()?;
            Ok((TopicPartition::new(topic.to_string(), partition), replicas))
        })
        .collect()
}

/// The targets to reassign, from the plan file or the flags.
fn targets(
    plan: &Option<std::path::PathBuf>,
    topic: &Option<String>,
    partition: Option<i32>,
    replicas: &[i32],
) -> Result<Vec<(TopicPartition, Vec<i32>)>, CliError> {
    if let Some(path) = plan {
        let text = std::fs::read_to_string(path)
            .map_err(|e| CliError::Usage(format!("cannot read {}: {e}", path.display())))?;
        return parse_plan(&text).map_err(|e| {
            CliError::Usage(format!(
                "{} is not a reassignment plan: {e}",
                path.display()
            ))
        });
    }
    match (topic, partition) {
        (Some(t), Some(p)) => Ok(vec![(TopicPartition::new(t.clone(), p), replicas.to_vec())]),
        _ => Err(CliError::Usage(
            "give --reassignment-json-file FILE, or --topic, --partition and --replicas".into(),
        )),
    }
}

fn report(
    results: &[(TopicPartition, Result<(), oxka_client::Error>)],
    output: Output,
    ok: &str,
) -> CliResult {
    if output == Output::Json {
        print_json(&json!(results
            .iter()
            .map(
                |(tp, r)| json!({"topic": tp.topic, "partition": tp.partition,
                                  "error": r.as_ref().err().map(|e| e.to_string())})
            )
            .collect::<Vec<_>>()));
    } else {
        let rows: Vec<Vec<String>> = results
            .iter()
            .map(|(tp, r)| {
                vec![
                    tp.topic.clone(),
                    tp.partition.to_string(),
                    match r {
                        Ok(()) => ok.to_string(),
                        Err(e) => e
                            .kafka_code()
                            .map(|c| c.name())
                            .unwrap_or_else(|| e.to_string()),
                    },
                ]
            })
            .collect();
        print_table(&["TOPIC", "PARTITION", "STATUS"], &rows);
    }
    Ok(())
}

pub async fn run(args: PartitionsArgs) -> CliResult {
    let output = args.opts.output;
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        PartitionsCmd::Reassign {
            plan,
            topic,
            partition,
            replicas,
            verify,
            cancel,
        } => {
            let targets = targets(&plan, &topic, partition, &replicas)?;
            if verify {
                let tps: Vec<TopicPartition> = targets.iter().map(|(tp, _)| tp.clone()).collect();
                let ongoing = admin.list_partition_reassignments(Some(&tps)).await?;
                let md = admin.metadata().await?;
                let mut rows = Vec::new();
                let mut unfinished = 0;
                for (tp, target) in &targets {
                    let status = if let Some(o) = ongoing.iter().find(|o| &o.partition == tp) {
                        unfinished += 1;
                        format!(
                            "in progress (adding {:?}, removing {:?})",
                            o.adding, o.removing
                        )
                    } else {
                        let now = md
                            .topics
                            .get(&tp.topic)
                            .and_then(|t| t.partitions.iter().find(|p| p.id == tp.partition))
                            .map(|p| p.replicas.clone());
                        match now {
                            Some(r) if &r == target => "complete".to_string(),
                            Some(r) => {
                                unfinished += 1;
                                format!("not started (replicas {r:?})")
                            }
                            None => {
                                unfinished += 1;
                                "unknown partition".to_string()
                            }
                        }
                    };
                    rows.push(vec![tp.topic.clone(), tp.partition.to_string(), status]);
                }
                if output == Output::Json {
                    print_json(&json!(rows
                        .iter()
                        .map(|r| json!({"topic": r[0], "partition": r[1], "status": r[2]}))
                        .collect::<Vec<_>>()));
                } else {
                    print_table(&["TOPIC", "PARTITION", "STATUS"], &rows);
                }
                if unfinished > 0 {
                    return Err(CliError::Failed(format!(
                        "{unfinished} of {} not complete",
                        targets.len()
                    )));
                }
                return Ok(());
            }
            let asks: Vec<(TopicPartition, Option<Vec<i32>>)> = targets
                .into_iter()
                .map(|(tp, r)| (tp, if cancel { None } else { Some(r) }))
                .collect();
            if !cancel
                && asks
                    .iter()
                    .any(|(_, r)| r.as_ref().is_some_and(|r| r.is_empty()))
            {
                return Err(CliError::Usage(
                    "--replicas: name at least one broker".into(),
                ));
            }
            let results = admin.alter_partition_reassignments(&asks).await?;
            report(
                &results,
                output,
                if cancel { "CANCELLED" } else { "STARTED" },
            )?;
            fail_on_errors(&results, |_| false)
        }
        PartitionsCmd::ElectLeaders {
            election_type,
            topic,
            partition,
            all_topic_partitions,
        } => {
            let asked: Option<Vec<TopicPartition>> = if all_topic_partitions {
                None
            } else {
                let Some(t) = topic else {
                    return Err(CliError::Usage(
                        "give --topic [--partition N], or --all-topic-partitions".into(),
                    ));
                };
                Some(match partition {
                    Some(p) => vec![TopicPartition::new(t, p)],
                    None => {
                        let info = admin.describe_topic(&t).await?;
                        info.partitions
                            .iter()
                            .map(|p| TopicPartition::new(t.clone(), p.id))
                            .collect()
                    }
                })
            };
            let results = admin
                .elect_leaders(election_type == ElectionType::Preferred, asked.as_deref())
                .await?;
            report(&results, output, "ELECTED")?;
            // ELECTION_NOT_NEEDED is what Kafka's tool reports without failing
            fail_on_errors(&results, |e| {
                e.kafka_code().map(|c| c.name()).as_deref() == Some("ELECTION_NOT_NEEDED")
            })
        }
    }
}

/// A failure exit when some partition failed (but for the errors `benign`
/// accepts).
fn fail_on_errors(
    results: &[(TopicPartition, Result<(), oxka_client::Error>)],
    benign: impl Fn(&oxka_client::Error) -> bool,
) -> CliResult {
    let bad = |r: &Result<(), oxka_client::Error>| r.as_ref().err().is_some_and(|e| !benign(e));
    let failed = results.iter().filter(|(_, r)| bad(r)).count();
    if let Some((_, Err(e))) = results.iter().find(|(_, r)| bad(r)) {
        return Err(CliError::Failed(format!(
            "{failed} of {} failed; first: {}",
            results.len(),
            explain(e)
        )));
    }
    Ok(())
}
