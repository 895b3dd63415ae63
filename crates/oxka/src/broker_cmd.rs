//! `oxka broker`: configuration layering, logging, signals, start-up line.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::PathBuf;

use clap::Args;
use oxka_broker::config::read_properties_file;
use oxka_broker::{Broker, KafkaConfig};

/// Where a node's configuration comes from. `oxka broker` and `oxka
/// storage` read it the same way, so that `storage format` writes to the
/// dirs the broker will use.
#[derive(Args, Debug)]
pub struct ServerConfigArgs {
    /// A Kafka server.properties file.
    #[arg(long, short = 'c', value_name = "FILE")]
    config: Option<PathBuf>,
    /// key=value, wins over the file; repeatable.
    #[arg(long = "override", short = 'o', value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Shorthand for `--override log.dirs=DIR`.
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

impl ServerConfigArgs {
    /// The properties: the file, then the shorthands (`listen` is
    /// `listeners=PLAINTEXT://HOST:PORT`), then `--override`.
    fn props(&self, listen: Option<&str>) -> Result<BTreeMap<String, String>, String> {
        let mut props = match &self.config {
            Some(path) => read_properties_file(path).map_err(|e| e.to_string())?,
            None => BTreeMap::new(),
        };
        if let Some(l) = listen {
            props.insert("listeners".into(), format!("PLAINTEXT://{l}"));
        }
        if let Some(d) = &self.data_dir {
            props.insert("log.dirs".into(), d.display().to_string());
        }
        for o in &self.overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| format!("--override '{o}' is not of the form key=value"))?;
            props.insert(k.trim().to_string(), v.trim().to_string());
        }
        Ok(props)
    }

    /// The validated broker config and its warnings (keys without effect
    /// or unknown); an error names the key and the value.
    pub fn load(&self, listen: Option<&str>) -> Result<(KafkaConfig, Vec<String>), String> {
        KafkaConfig::from_props(self.props(listen)?).map_err(|e| e.to_string())
    }
}

#[derive(Args, Debug)]
pub struct BrokerArgs {
    #[command(flatten)]
    server: ServerConfigArgs,
    /// Shorthand for `--override listeners=PLAINTEXT://HOST:PORT`.
    #[arg(long, value_name = "HOST:PORT")]
    listen: Option<String>,
    /// Log level: trace, debug, info, warn (warning), error, off; or
    /// TARGET=LEVEL directives, e.g. `info,oxka_broker=debug` (RUST_LOG wins).
    #[arg(long, default_value = "info")]
    log_level: String,
}

pub fn run(args: BrokerArgs) -> i32 {
    match crate::logging::filter_from_env(&args.log_level) {
        Ok(f) => crate::logging::init(f),
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    }
    let (config, warnings) = match args.server.load(args.listen.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    for w in warnings {
        tracing::warn!("{w}");
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return 1;
        }
    };
    runtime.block_on(async move {
        let started = std::time::Instant::now();
        let broker = match Broker::start(config.clone()).await {
            Ok(b) => b,
            Err(e) => {
                eprintln!("error: {e}");
                return e.exit_code();
            }
        };
        // bound in the order of `listeners`
        let listeners: Vec<String> = broker
            .local_addrs()
            .iter()
            .zip(&config.listeners)
            .map(|(a, l)| format!("{}://{a}", l.name))
            .collect();
        let dirs: Vec<String> = config
            .log_dirs
            .iter()
            .map(|d| d.display().to_string())
            .collect();
        let http = broker
            .http_addr()
            .map_or_else(|| "off".to_string(), |a| format!("http://{a}"));
        // Not `println!`: it panics when stdout cannot be written, and a
        // broker whose stdout is a file on a full disk must go on serving
        // (found by `oxka verify` when the machine's disk filled up).
        let _ = writeln!(
            std::io::stdout().lock(),
            "oxka {} started in {} ms: listener {} http {} node.id {} log.dirs {} cluster.id {}",
            env!("CARGO_PKG_VERSION"),
            started.elapsed().as_millis(),
            listeners.join(","),
            http,
            config.node_id,
            dirs.join(","),
            broker.state().cluster_id,
        );
        match broker.run_until(shutdown_signal()).await {
            Ok(()) => 0,
            Err(e) => {
                eprintln!("error during shutdown: {e}");
                1
            }
        }
    })
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
