//! `oxka storage`: `random-uuid`, `format` and `info`, as Kafka's
//! `kafka-storage.sh` (its `StorageTool` and `Formatter`).
//!
//! Formatting is optional in oxka (a node with empty dirs formats itself),
//! but gives every node of a cluster the same cluster id before any of them
//! starts, and refuses to touch a dir that already belongs to a node.
//!
//! Exit codes: 0 done, 1 refused or failed (Kafka's), 2 for a command line
//! or a config that is wrong (as `oxka broker`).

use std::path::{Path, PathBuf};

use clap::{Args, Subcommand};
use oxka_log::{format_log_dir, random_cluster_id, read_meta_properties, validate_cluster_id};

use crate::broker_cmd::ServerConfigArgs;

#[derive(Args, Debug)]
pub struct StorageArgs {
    #[command(subcommand)]
    cmd: StorageCmd,
}

#[derive(Subcommand, Debug)]
enum StorageCmd {
    /// Print a new random cluster id (22 characters, Kafka's UUID text).
    RandomUuid,
    /// Write meta.properties (cluster id, node id, a new directory id) into
    /// every log dir and the metadata log dir.
    Format(FormatArgs),
    /// Show the log dirs and their meta.properties.
    Info(InfoArgs),
}

#[derive(Args, Debug)]
struct FormatArgs {
    /// The cluster id (from `oxka storage random-uuid`), the same on every node.
    #[arg(long, short = 't', value_name = "ID")]
    cluster_id: String,
    #[command(flatten)]
    server: ServerConfigArgs,
    /// Skip dirs that are already formatted (for this cluster and node)
    /// and format the others.
    #[arg(long, short = 'g')]
    ignore_formatted: bool,
}

#[derive(Args, Debug)]
struct InfoArgs {
    #[command(flatten)]
    server: ServerConfigArgs,
}

/// Why a storage command stopped: the message and the exit code.
struct Failure(String, i32);

fn failed(msg: impl Into<String>) -> Failure {
    Failure(msg.into(), 1)
}

pub fn run(args: StorageArgs) -> i32 {
    let result = match args.cmd {
        StorageCmd::RandomUuid => {
            println!("{}", random_cluster_id());
            Ok(())
        }
        StorageCmd::Format(a) => format(&a),
        StorageCmd::Info(a) => info(&a),
    };
    match result {
        Ok(()) => 0,
        Err(Failure(msg, code)) => {
            if !msg.is_empty() {
                eprintln!("error: {msg}");
            }
            code
        }
    }
}

/// One dir a node writes to.
struct NodeDir {
    path: PathBuf,
    /// The dir of the metadata log (`metadata.log.dir`, by default the
    /// first of `log.dirs`).
    metadata: bool,
}

/// The node id and its dirs, metadata dir first (the order Kafka's tool
/// reports them in).
fn node_dirs(server: &ServerConfigArgs) -> Result<(i32, Vec<NodeDir>), Failure> {
    let (config, _warnings) = server.load(None).map_err(|e| Failure(e, 2))?;
    dirs_of(&config)
}

fn dirs_of(config: &oxka_broker::KafkaConfig) -> Result<(i32, Vec<NodeDir>), Failure> {
    let metadata_dir = config
        .value("metadata.log.dir")
        .filter(|d| !d.trim().is_empty())
        .map(|d| PathBuf::from(d.trim()))
        .or_else(|| config.log_dirs.first().cloned())
        .ok_or_else(|| Failure("no log.dirs and no metadata.log.dir".into(), 2))?;
    let mut dirs = vec![NodeDir {
        path: metadata_dir.clone(),
        metadata: true,
    }];
    dirs.extend(
        config
            .log_dirs
            .iter()
            .filter(|d| **d != metadata_dir)
            .map(|d| NodeDir {
                path: d.clone(),
                metadata: false,
            }),
    );
    Ok((config.node_id, dirs))
}

fn format(args: &FormatArgs) -> Result<(), Failure> {
    validate_cluster_id(&args.cluster_id).map_err(|e| failed(e.to_string()))?;
    let (config, _warnings) = args.server.load(None).map_err(|e| Failure(e, 2))?;
    // a listener the broker could not start with (a TLS listener without
    // its keystore, SASL without users) is refused before any dir is written
    oxka_broker::network::ListenerSecurity::all_from_config(&config)
        .map_err(|e| Failure(e.to_string(), 2))?;
    let (node_id, dirs) = dirs_of(&config)?;
    // Everything is checked before anything is written, so a refusal
    // leaves every dir as it was.
    let mut to_format = Vec::new();
    for dir in &dirs {
        let meta = read_meta_properties(&dir.path).map_err(|e| failed(e.to_string()))?;
        let Some(meta) = meta else {
            to_format.push(dir);
            continue;
        };
        if !args.ignore_formatted {
            return Err(failed(format!(
                "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
                dir.path.display()
            )));
        }
        check_same_node(&dir.path, &meta, &args.cluster_id, node_id)?;
    }
    if to_format.is_empty() {
        println!("All of the log directories are already formatted.");
        return Ok(());
    }
    for dir in to_format {
        format_log_dir(&dir.path, &args.cluster_id, node_id).map_err(|e| {
            failed(match e {
                oxka_log::LogError::AlreadyFormatted { path } => format!(
                    "Log directory {} is already formatted. Use --ignore-formatted to ignore this directory and format the others.",
                    path.display()
                ),
                e => e.to_string(),
            })
        })?;
        println!(
            "Formatting {} directory {}",
            if dir.metadata { "metadata" } else { "data" },
            dir.path.display()
        );
    }
    Ok(())
}

/// A formatted dir that is skipped must belong to this cluster and node:
/// formatting the rest for another one would leave a node that cannot
/// start (Kafka's `MetaPropertiesEnsemble.verify` message).
fn check_same_node(
    dir: &Path,
    meta: &std::collections::BTreeMap<String, String>,
    cluster_id: &str,
    node_id: i32,
) -> Result<(), Failure> {
    let file = dir.join(oxka_log::META_PROPERTIES_FILE);
    let stored_cluster = meta.get("cluster.id").map(String::as_str).unwrap_or("");
    if stored_cluster != cluster_id {
        return Err(failed(format!(
            "Invalid cluster.id in: {}. Expected {cluster_id}, but read {stored_cluster}",
            file.display()
        )));
    }
    let stored_node = meta
        .get("node.id")
        .or_else(|| meta.get("broker.id"))
        .map(String::as_str)
        .unwrap_or("");
    if stored_node != node_id.to_string() {
        return Err(failed(format!(
            "Stored node id {stored_node} doesn't match previous node id {node_id} in {}",
            file.display()
        )));
    }
    Ok(())
}

/// Kafka's `kafka-storage.sh info`: the dirs found, the metadata dir's
/// meta.properties, and any problem (exit 1 when there is one).
fn info(args: &InfoArgs) -> Result<(), Failure> {
    let (_, dirs) = node_dirs(&args.server)?;
    let mut found = Vec::new();
    let mut problems = Vec::new();
    let mut metadata = None;
    for dir in &dirs {
        if !dir.path.exists() {
            problems.push(format!("{} does not exist", dir.path.display()));
            continue;
        }
        match read_meta_properties(&dir.path) {
            Ok(Some(props)) => {
                found.push(dir.path.display().to_string());
                if metadata.is_none() {
                    metadata = Some(props);
                }
            }
            Ok(None) => {
                found.push(dir.path.display().to_string());
                problems.push(format!("{} is not formatted.", dir.path.display()));
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    if !found.is_empty() {
        let s = if found.len() == 1 { "y" } else { "ies" };
        println!("Found log director{s}:");
        for f in &found {
            println!("  {f}");
        }
        println!();
    }
    if let Some(props) = metadata {
        let items: Vec<String> = props.iter().map(|(k, v)| format!("{k}={v}")).collect();
        println!("Found metadata: {{{}}}", items.join(", "));
        println!();
    }
    if problems.is_empty() {
        return Ok(());
    }
    let s = if problems.len() == 1 { "" } else { "s" };
    println!("Found problem{s}:");
    for p in &problems {
        println!("  {p}");
    }
    println!();
    Err(Failure(String::new(), 1))
}
