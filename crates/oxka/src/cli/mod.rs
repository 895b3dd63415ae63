//! The client side of the `oxka` command: `topics`, `configs`, `groups`,
//! `produce`, `consume`, `cluster`, `perf`, built on `oxka-client`.
//!
//! Conventions every subcommand keeps, so scripts can rely on them:
//! - exit 0 on success, 1 when the operation failed, 2 for usage errors;
//! - results on stdout (tables for people, `--output json` for scripts),
//!   diagnostics and progress on stderr, progress only on a terminal;
//! - every error says what failed and, where we can tell, what to do.

/// `println!`, but exits quietly when stdout is closed (see
/// [`util::write_stdout`]).
macro_rules! outln {
    () => {
        $crate::cli::util::write_stdout(b"\n")
    };
    ($($arg:tt)*) => {
        $crate::cli::util::write_stdout(format!("{}\n", format_args!($($arg)*)).as_bytes())
    };
}

pub mod acls;
pub mod cluster;
pub mod configs;
pub mod consume;
pub mod groups;
pub mod partitions;
pub mod perf;
pub mod produce;
pub mod top;
pub mod topics;
pub mod users;
mod util;
pub mod verify;

use std::path::PathBuf;

use clap::{Args, ValueEnum};
use oxka_client::{ClientConfig, Error};

/// Connection and output flags shared by every client subcommand.
#[derive(Args, Debug, Clone)]
pub struct ClientOpts {
    /// Broker(s) to bootstrap from, host:port[,host:port] (default: $OXKA_BROKERS or localhost:9092).
    #[arg(
        long = "bootstrap-server",
        short = 'b',
        alias = "brokers",
        value_name = "HOST:PORT",
        global = true
    )]
    pub bootstrap_server: Option<String>,
    /// A Kafka client properties file (security, timeouts, ...).
    #[arg(long = "command-config", value_name = "FILE", global = true)]
    pub command_config: Option<PathBuf>,
    /// Extra client property, key=value (repeatable; wins over --command-config).
    #[arg(short = 'X', value_name = "KEY=VALUE", global = true)]
    pub props: Vec<String>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Output::Text, global = true)]
    pub output: Output,
}

#[derive(ValueEnum, Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Text,
    Json,
}

/// Why a command failed; decides the exit code.
#[derive(Debug)]
pub enum CliError {
    /// The command line is wrong (exit 2).
    Usage(String),
    /// The operation failed (exit 1).
    Failed(String),
    /// Stopped cleanly by a signal: exit with the shell's code for it
    /// (128 + the signal's number), nothing printed.
    Signal(i32),
}

impl From<Error> for CliError {
    fn from(e: Error) -> CliError {
        CliError::Failed(explain(&e))
    }
}

impl From<std::io::Error> for CliError {
    fn from(e: std::io::Error) -> CliError {
        CliError::Failed(e.to_string())
    }
}

pub type CliResult<T = ()> = Result<T, CliError>;

/// The client error plus a hint where one helps.
pub fn explain(e: &Error) -> String {
    let hint = match e {
        Error::NoBrokers(_) | Error::Connect { .. } => {
            Some("start one with `oxka broker`, or point --bootstrap-server / OXKA_BROKERS at a running broker")
        }
        Error::Kafka { code, .. } => match code.name().as_str() {
            "UNKNOWN_TOPIC_OR_PARTITION" => Some("list topics with `oxka topics list`; create one with `oxka topics create NAME`"),
            "TOPIC_ALREADY_EXISTS" => Some("describe it with `oxka topics describe NAME`, or delete it first"),
            "NON_EMPTY_GROUP" => Some("stop the group's consumers first (see `oxka groups describe GROUP`)"),
            "GROUP_ID_NOT_FOUND" => Some("list groups with `oxka groups list`"),
            "INVALID_PARTITIONS" => Some("a topic's partition count can only grow"),
            "INVALID_CONFIG" | "INVALID_REQUEST" => Some("check the key and value against `oxka configs describe NAME`"),
            _ => None,
        },
        Error::UnsupportedApi { .. } => Some("the broker is too old or lacks this feature"),
        _ => None,
    };
    match hint {
        Some(h) => format!("{e}\nhint: {h}"),
        None => e.to_string(),
    }
}

impl ClientOpts {
    /// The client config: properties file, then -X, then --bootstrap-server.
    pub fn client_config(&self) -> CliResult<ClientConfig> {
        let mut cfg = match &self.command_config {
            Some(p) => {
                ClientConfig::from_properties_file(p).map_err(|e| CliError::Usage(e.to_string()))?
            }
            None => ClientConfig::new(),
        };
        for p in &self.props {
            let (k, v) = p
                .split_once('=')
                .ok_or_else(|| CliError::Usage(format!("-X {p}: expected key=value")))?;
            cfg.set(k.trim(), v.trim());
        }
        let servers = self
            .bootstrap_server
            .clone()
            .or_else(|| {
                std::env::var("OXKA_BROKERS")
                    .ok()
                    .filter(|s| !s.trim().is_empty())
            })
            .or_else(|| cfg.get("bootstrap.servers").map(str::to_string))
            .unwrap_or_else(|| "localhost:9092".to_string());
        cfg.set("bootstrap.servers", servers);
        if cfg.get("client.id").is_none() {
            cfg.set("client.id", "oxka-cli");
        }
        Ok(cfg)
    }
}

/// Runs a client subcommand to completion and maps the outcome to an exit code.
pub fn run<F>(fut: F) -> i32
where
    F: std::future::Future<Output = CliResult>,
{
    match crate::logging::filter_from_env("warn") {
        Ok(f) => crate::logging::init(f),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return 1;
        }
    };
    let result = rt.block_on(fut);
    // A blocking stdin reader left behind must not keep the process alive.
    rt.shutdown_background();
    match result {
        Ok(()) => 0,
        Err(CliError::Usage(m)) => {
            eprintln!("error: {m}");
            2
        }
        Err(CliError::Failed(m)) => {
            eprintln!("error: {m}");
            1
        }
        Err(CliError::Signal(code)) => code,
    }
}
