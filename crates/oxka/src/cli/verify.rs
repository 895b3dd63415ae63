//! `oxka verify`: run a workload against a Kafka-compatible cluster (or a
//! local cluster it starts and attacks), then check what the clients saw
//! for lost, duplicated, reordered or phantom records, broken
//! transactions and consumer groups (crate `oxka-verify`).
//!
//! Exit status: 0 no anomaly, 1 an anomaly (or a node crashed by itself,
//! or the run could not be set up), 2 usage, 130 interrupted.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use oxka_verify::nemesis::{Fault, NemesisSpec};
use oxka_verify::report;
use oxka_verify::workload::group::GroupSpec;
use oxka_verify::workload::ProduceSpec;
use oxka_verify::{check, ClusterSpec, Expect, RunSpec, Workload};

use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct VerifyArgs {
    #[command(flatten)]
    opts: ClientOpts,
    /// append (producers and readers), group (a consumer group under churn),
    /// txn (transactions that commit or abort; read_committed readers).
    #[arg(long, default_value = "append")]
    workload: String,
    /// Start N local oxka nodes from this binary and run against them.
    #[arg(long, value_name = "N")]
    cluster: Option<usize>,
    /// Faults to inject into the local cluster, comma-separated: kill, pause,
    /// isolate (each also -leader, -controller), split, bridge, all.
    /// The network faults need root.
    #[arg(long, value_name = "LIST")]
    nemesis: Option<String>,
    /// How long the workload runs (30s, 2m, 500ms; plain numbers are seconds).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: Duration,
    /// Topic to use (created when missing); default a new one per run.
    #[arg(long)]
    topic: Option<String>,
    #[arg(long, default_value_t = 3)]
    partitions: i32,
    /// Default: the broker's (3 at most on a local cluster).
    #[arg(long, default_value_t = -1)]
    replication_factor: i16,
    /// The topic's min.insync.replicas; default 2 when the topic has 3 or more replicas.
    #[arg(long)]
    min_insync_replicas: Option<u32>,
    #[arg(long, default_value_t = 2)]
    producers: u32,
    /// Records per second over all producers.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// all, 1 or 0. Below all, lost writes are reported as expected.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Readers outside any group (append workload).
    #[arg(long, default_value_t = 1)]
    readers: u32,
    /// Group id (group workload); default a new one per run.
    #[arg(long)]
    group: Option<String>,
    /// Members of the group at any time (group workload).
    #[arg(long, default_value_t = 3)]
    members: u32,
    /// Mean time between a member leaving or crashing and a new one joining.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    churn: Duration,
    /// Mean quiet time between faults.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    fault_interval: Duration,
    /// Longest time a fault is held before it is healed.
    #[arg(long, default_value = "4s", value_parser = parse_duration)]
    fault_hold: Duration,
    /// The topic allows unclean leader election: losses are then expected.
    #[arg(long)]
    unclean: bool,
    /// Seeds the workload's and the nemesis's choices (default: the clock).
    #[arg(long)]
    seed: Option<u64>,
    /// Write the JSON report here.
    #[arg(long, value_name = "FILE")]
    report: Option<PathBuf>,
    /// Write the whole history here, one JSON event per line.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Only check a history written by --history (no cluster involved).
    #[arg(long, value_name = "FILE", conflicts_with_all = ["cluster", "nemesis"])]
    check: Option<PathBuf>,
    /// Where the local cluster keeps its data and logs (default: the temp dir).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Keep the local cluster's data and logs after the run.
    #[arg(long)]
    keep_data: bool,
    /// A broker setting for every local node, key=value (repeatable).
    #[arg(long = "broker-set", value_name = "KEY=VALUE")]
    broker_set: Vec<String>,
}

pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let (num, unit) = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .map_or((s, ""), |i| s.split_at(i));
    let n: f64 = num
        .parse()
        .map_err(|_| format!("`{s}`: expected e.g. 30s, 2m, 500ms"))?;
    let secs = match unit {
        "" | "s" => n,
        "ms" => n / 1000.0,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("`{s}`: unknown unit `{unit}` (ms, s, m, h)")),
    };
    Duration::try_from_secs_f64(secs).map_err(|e| format!("`{s}`: {e}"))
}

/// Broker settings the local cluster starts with: failover within seconds
/// (Kafka's defaults take 9 s to fence a broker).
const LOCAL_DEFAULTS: [&str; 2] = [
    "broker.session.timeout.ms=3000",
    "broker.heartbeat.interval.ms=500",
];

pub async fn run(a: VerifyArgs) -> CliResult {
    let acks_all = matches!(a.acks.as_str(), "all" | "-1");
    if !matches!(a.acks.as_str(), "all" | "-1" | "1" | "0") {
        return Err(CliError::Usage(format!(
            "--acks {}: expected all, 1 or 0",
            a.acks
        )));
    }
    if let Some(path) = &a.check {
        let events = report::read_history(path).map_err(CliError::Usage)?;
        let analysis = check(&events, analysis_expect(acks_all, a.unclean));
        let r = oxka_verify::RunReport {
            workload: Workload::parse(&a.workload).unwrap_or(Workload::Append),
            topic: String::new(),
            seed: 0,
            duration_s: 0.0,
            nodes: None,
            expect: analysis_expect(acks_all, a.unclean),
            faults_injected: 0,
            faults_skipped: Vec::new(),
            node_crashes: Vec::new(),
            faults: events
                .iter()
                .filter(|e| matches!(e, oxka_verify::Event::Fault { .. }))
                .cloned()
                .collect(),
            analysis,
            interrupted: false,
            history: events,
        };
        return finish(&a, &r);
    }
    let workload = Workload::parse(&a.workload).ok_or_else(|| {
        CliError::Usage(format!(
            "--workload {}: expected append, group or txn",
            a.workload
        ))
    })?;
    let nemesis = match &a.nemesis {
        Some(list) => {
            let faults = Fault::parse_list(list).map_err(CliError::Usage)?;
            if a.cluster.is_none() {
                return Err(CliError::Usage(
                    "--nemesis needs --cluster N (faults go into nodes this command starts)".into(),
                ));
            }
            Some(NemesisSpec {
                faults,
                interval: a.fault_interval,
                hold: a.fault_hold,
            })
        }
        None => None,
    };
    if a.cluster == Some(0) || a.partitions < 1 || a.producers < 1 || a.rate < 1 {
        return Err(CliError::Usage(
            "--cluster, --partitions, --producers and --rate must be at least 1".into(),
        ));
    }
    let cluster = match a.cluster {
        Some(nodes) => {
            let bin = std::env::current_exe()
                .map_err(|e| CliError::Failed(format!("cannot find the oxka binary: {e}")))?;
            let mut settings: Vec<String> = LOCAL_DEFAULTS.iter().map(|s| s.to_string()).collect();
            if nodes == 1 {
                settings.clear();
            }
            for kv in &a.broker_set {
                if !kv.contains('=') {
                    return Err(CliError::Usage(format!(
                        "--broker-set {kv}: expected key=value"
                    )));
                }
                settings.push(kv.clone());
            }
            Some(ClusterSpec {
                nodes,
                bin,
                dir: a.data_dir.clone().unwrap_or_else(std::env::temp_dir),
                keep: a.keep_data,
                settings,
            })
        }
        None => None,
    };
    let rf_effective = match (a.replication_factor, a.cluster) {
        (-1, Some(n)) => n.min(3) as i16,
        (rf, _) => rf,
    };
    let min_insync = a.min_insync_replicas.or((rf_effective >= 3).then_some(2));
    let seed = a.seed.unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64 % 1_000_000_000)
    });
    let mut client = a.opts.client_config()?;
    if a.cluster.is_some() {
        // the local nodes' addresses replace whatever bootstrap was given
        client.set("bootstrap.servers", "127.0.0.1:1");
    }
    let spec = RunSpec {
        workload,
        client,
        topic: a.topic.clone(),
        partitions: a.partitions,
        replication_factor: a.replication_factor,
        min_insync_replicas: min_insync,
        produce: ProduceSpec {
            producers: a.producers,
            rate: a.rate,
            acks: a.acks.clone(),
        },
        readers: a.readers,
        group: GroupSpec {
            group: a
                .group
                .clone()
                .unwrap_or_else(|| format!("oxka-verify-{seed}")),
            members: a.members,
            churn: a.churn,
        },
        duration: a.duration,
        cluster,
        nemesis,
        unclean: a.unclean,
        seed,
        progress: std::io::stderr().is_terminal(),
    };
    // the handlers are in place before any node starts, so Ctrl-C or
    // SIGTERM at any moment stops the nodes and removes their namespaces
    use tokio::signal::unix::{signal, SignalKind};
    let mut int = signal(SignalKind::interrupt())?;
    let mut term = signal(SignalKind::terminate())?;
    let interrupt = async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    };
    let r = oxka_verify::run(spec, interrupt)
        .await
        .map_err(|e| CliError::Failed(e.to_string()))?;
    if r.interrupted {
        if let Some(p) = &a.history {
            report::write_history(&r.history, p)?;
        }
        eprintln!("interrupted: the local cluster (if any) was stopped and removed");
        return Err(CliError::Signal(130));
    }
    finish(&a, &r)
}

fn analysis_expect(acks_all: bool, unclean: bool) -> Expect {
    Expect {
        acks_all,
        idempotent: acks_all,
        unclean,
        unsynced_loss: false,
    }
}

fn finish(a: &VerifyArgs, r: &oxka_verify::RunReport) -> CliResult {
    if let Some(p) = &a.report {
        report::write_json(r, p)?;
    }
    if let Some(p) = &a.history {
        report::write_history(&r.history, p)?;
    }
    match a.opts.output {
        Output::Json => super::util::print_json(&serde_json::to_value(r).unwrap_or_default()),
        Output::Text => outln!("{}", report::summary(r).trim_end()),
    }
    if r.failed() {
        Err(CliError::Failed(
            "anomalies found (see above and the report)".into(),
        ))
    } else {
        Ok(())
    }
}
