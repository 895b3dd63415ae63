//! `oxka cluster info` and `oxka cluster quorum`.

use std::collections::BTreeMap;

use clap::{Args, Subcommand};
use oxka_client::quorum::ReplicaState;
use oxka_client::{kafka_uuid_string, Admin, QuorumInfo};
use serde_json::json;

use super::util::{print_json, print_table};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: ClusterCmd,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Cluster id, controller, topic count, and each broker with its rack,
    /// fenced state and partition leaders.
    #[command(alias = "metadata")]
    Info,
    /// The metadata quorum, as `kafka-metadata-quorum describe --status`
    /// (default) or `--replication`.
    Quorum(QuorumArgs),
}

#[derive(Args, Debug)]
pub struct QuorumArgs {
    /// Show the status summary (the default).
    #[arg(long, conflicts_with = "replication")]
    status: bool,
    /// One row per voter and observer: log end offset, lag, last fetch and
    /// last caught-up times, Leader/Follower/Observer.
    #[arg(long)]
    replication: bool,
    /// With --replication: times as "N ms ago".
    #[arg(long)]
    human_readable: bool,
}

pub async fn run(args: ClusterArgs) -> CliResult {
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        ClusterCmd::Info => info(&admin, args.opts.output).await,
        ClusterCmd::Quorum(q) => quorum(&admin, q, args.opts.output).await,
    }
}

async fn info(admin: &Admin, output: Output) -> CliResult {
    let c = admin.describe_cluster().await?;
    let topics = admin.list_topics(true).await?;
    let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
    let mut leaders: BTreeMap<i32, usize> = BTreeMap::new();
    for p in topics.iter().flat_map(|t| &t.partitions) {
        if p.leader >= 0 {
            *leaders.entry(p.leader).or_default() += 1;
        }
    }
    let leaders_of = |id: i32| leaders.get(&id).copied().unwrap_or(0);
    if output == Output::Json {
        print_json(&json!({
            "cluster_id": c.cluster_id,
            "controller_id": c.controller_id,
            "brokers": c.brokers.iter().map(|b| json!({
                "id": b.id, "host": b.host, "port": b.port, "rack": b.rack,
                "fenced": b.fenced, "leaders": leaders_of(b.id),
            })).collect::<Vec<_>>(),
            "topics": topics.len(),
            "partitions": partitions,
        }));
        return Ok(());
    }
    outln!("CLUSTER\n=======");
    print_table(
        &["CLUSTER-ID", "CONTROLLER", "TOPICS", "PARTITIONS"],
        &[vec![
            c.cluster_id.clone().unwrap_or_default(),
            c.controller_id.to_string(),
            topics.len().to_string(),
            partitions.to_string(),
        ]],
    );
    outln!("\nBROKERS\n=======");
    let rows: Vec<Vec<String>> = c
        .brokers
        .iter()
        .map(|b| {
            let id = if b.id == c.controller_id {
                format!("{}*", b.id)
            } else {
                b.id.to_string()
            };
            vec![
                id,
                b.host.clone(),
                b.port.to_string(),
                b.rack.clone().unwrap_or_default(),
                b.fenced.map_or("-".into(), |f| f.to_string()),
                leaders_of(b.id).to_string(),
            ]
        })
        .collect();
    print_table(&["ID", "HOST", "PORT", "RACK", "FENCED", "LEADERS"], &rows);
    Ok(())
}

/// Leader, Follower or Observer, as Kafka's tool names a replica's role.
fn status(q: &QuorumInfo, r: &ReplicaState, voter: bool) -> &'static str {
    if !voter {
        "Observer"
    } else if r.replica_id == q.leader_id {
        "Leader"
    } else {
        "Follower"
    }
}

/// The replicas in Kafka's order: the leader, the other voters, the
/// observers.
fn replicas(q: &QuorumInfo) -> Vec<(&ReplicaState, &'static str)> {
    let leader = q.voters.iter().filter(|v| v.replica_id == q.leader_id);
    let followers = q.voters.iter().filter(|v| v.replica_id != q.leader_id);
    leader
        .chain(followers)
        .map(|v| (v, status(q, v, true)))
        .chain(q.observers.iter().map(|o| (o, status(q, o, false))))
        .collect()
}

fn directory_id(r: &ReplicaState) -> Option<String> {
    r.directory_id.as_ref().map(kafka_uuid_string)
}

/// `[{"id": 1, "directoryId": "...", "endpoints": ["CONTROLLER://h:p"]}, ...]`
/// as Kafka 4.4's `describe --status` prints voters and observers (the
/// directory id left out when unknown, the endpoints when there are none).
fn replica_list(q: &QuorumInfo, replicas: &[ReplicaState]) -> String {
    let items: Vec<String> = replicas
        .iter()
        .map(|r| {
            let mut s = format!("{{\"id\": {}", r.replica_id);
            if let Some(d) = directory_id(r) {
                s.push_str(&format!(", \"directoryId\": \"{d}\""));
            }
            if let Some(eps) = q.nodes.get(&r.replica_id).filter(|e| !e.is_empty()) {
                let eps: Vec<String> = eps.iter().map(|e| format!("\"{e}\"")).collect();
                s.push_str(&format!(", \"endpoints\": [{}]", eps.join(", ")));
            }
            s.push('}');
            s
        })
        .collect();
    format!("[{}]", items.join(", "))
}

async fn quorum(admin: &Admin, args: QuorumArgs, output: Output) -> CliResult {
    if args.human_readable && !args.replication {
        return Err(CliError::Usage(
            "the option --human-readable is only supported along with --replication".into(),
        ));
    }
    let q = admin.describe_quorum().await?;
    if output == Output::Json {
        let cluster_id = admin.describe_cluster().await?.cluster_id;
        let (lag, lag_ms) = q.max_follower_lag();
        let replica = |(r, role): (&ReplicaState, &str)| {
            json!({
                "id": r.replica_id,
                "directory_id": directory_id(r),
                "log_end_offset": r.log_end_offset,
                "lag": q.lag(r),
                "last_fetch_timestamp": r.last_fetch_timestamp,
                "last_caught_up_timestamp": r.last_caught_up_timestamp,
                "status": role,
                "endpoints": q.nodes.get(&r.replica_id)
                    .map(|e| e.iter().map(ToString::to_string).collect::<Vec<_>>())
                    .unwrap_or_default(),
            })
        };
        let all = replicas(&q);
        print_json(&json!({
            "cluster_id": cluster_id,
            "leader_id": q.leader_id,
            "leader_epoch": q.leader_epoch,
            "high_watermark": q.high_watermark,
            "max_follower_lag": lag,
            "max_follower_lag_time_ms": lag_ms,
            "voters": all.iter().filter(|(_, s)| *s != "Observer").map(|r| replica(*r)).collect::<Vec<_>>(),
            "observers": all.iter().filter(|(_, s)| *s == "Observer").map(|r| replica(*r)).collect::<Vec<_>>(),
        }));
        return Ok(());
    }
    if args.replication {
        let now = now_ms();
        let time = |t: Option<i64>| match t {
            None => "-1".to_string(),
            Some(t) if args.human_readable => format!("{} ms ago", (now - t).max(0)),
            Some(t) => t.to_string(),
        };
        let rows: Vec<Vec<String>> = replicas(&q)
            .into_iter()
            .map(|(r, role)| {
                vec![
                    r.replica_id.to_string(),
                    directory_id(r).unwrap_or_else(|| kafka_uuid_string(&Default::default())),
                    r.log_end_offset.to_string(),
                    q.lag(r).to_string(),
                    time(r.last_fetch_timestamp),
                    time(r.last_caught_up_timestamp),
                    role.to_string(),
                ]
            })
            .collect();
        print_table(
            &[
                "NodeId",
                "DirectoryId",
                "LogEndOffset",
                "Lag",
                "LastFetchTimestamp",
                "LastCaughtUpTimestamp",
                "Status",
            ],
            &rows,
        );
        return Ok(());
    }
    let cluster_id = admin.describe_cluster().await?.cluster_id;
    let (lag, lag_ms) = q.max_follower_lag();
    outln!("ClusterId:              {}", cluster_id.unwrap_or_default());
    outln!("LeaderId:               {}", q.leader_id);
    outln!("LeaderEpoch:            {}", q.leader_epoch);
    outln!("HighWatermark:          {}", q.high_watermark);
    outln!("MaxFollowerLag:         {lag}");
    outln!("MaxFollowerLagTimeMs:   {lag_ms}");
    outln!("CurrentVoters:          {}", replica_list(&q, &q.voters));
    outln!("CurrentObservers:       {}", replica_list(&q, &q.observers));
    Ok(())
}

use oxka_log::now_ms;

#[cfg(test)]
mod tests {
    use super::*;
    use oxka_client::quorum::RaftEndpoint;

    fn replica(id: i32, leo: i64, dir: Option<uuid::Uuid>) -> ReplicaState {
        ReplicaState {
            replica_id: id,
            directory_id: dir,
            log_end_offset: leo,
            last_fetch_timestamp: Some(1),
            last_caught_up_timestamp: Some(1),
        }
    }

    /// The shapes printed by Apache Kafka 4.4's `kafka-metadata-quorum
    /// describe --status` on a three-node cluster with static voters and a
    /// broker-only observer.
    #[test]
    fn voters_and_observers_print_as_kafka_prints_them() {
        let dir = uuid::Uuid::from_u128(0x0123_4567_89ab_cdef_fedc_ba98_7654_3210);
        let endpoint = |port| {
            vec![RaftEndpoint {
                listener: "CONTROLLER".into(),
                host: "127.0.0.1".into(),
                port,
            }]
        };
        let q = QuorumInfo {
            leader_id: 2,
            leader_epoch: 1,
            high_watermark: 10,
            voters: vec![replica(1, 10, None), replica(2, 10, None)],
            observers: vec![replica(4, 9, Some(dir))],
            nodes: [(1, endpoint(19095)), (2, endpoint(19096))].into(),
        };
        assert_eq!(
            replica_list(&q, &q.voters),
            r#"[{"id": 1, "endpoints": ["CONTROLLER://127.0.0.1:19095"]}, {"id": 2, "endpoints": ["CONTROLLER://127.0.0.1:19096"]}]"#
        );
        assert_eq!(
            replica_list(&q, &q.observers),
            r#"[{"id": 4, "directoryId": "ASNFZ4mrze_-3LqYdlQyEA"}]"#
        );
        assert_eq!(replica_list(&q, &[]), "[]");
        // --replication: the leader first, then the other voters, then observers.
        let order: Vec<(i32, &str)> = replicas(&q)
            .into_iter()
            .map(|(r, s)| (r.replica_id, s))
            .collect();
        assert_eq!(order, [(2, "Leader"), (1, "Follower"), (4, "Observer")]);
    }
}
