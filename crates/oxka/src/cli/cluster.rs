//! `oxka cluster info`.

use clap::{Args, Subcommand};
use oxka_client::Admin;
use serde_json::json;

use super::util::{print_json, print_table};
use super::{CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct ClusterArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: ClusterCmd,
}

#[derive(Subcommand, Debug)]
pub enum ClusterCmd {
    /// Cluster id, controller, brokers and topic count.
    #[command(alias = "metadata")]
    Info,
}

pub async fn run(args: ClusterArgs) -> CliResult {
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        ClusterCmd::Info => {
            let c = admin.describe_cluster().await?;
            let topics = admin.list_topics(true).await?;
            let partitions: usize = topics.iter().map(|t| t.partitions.len()).sum();
            if args.opts.output == Output::Json {
                print_json(&json!({
                    "cluster_id": c.cluster_id,
                    "controller_id": c.controller_id,
                    "brokers": c.brokers.iter().map(|b| json!({"id": b.id, "host": b.host, "port": b.port, "rack": b.rack})).collect::<Vec<_>>(),
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
                    ]
                })
                .collect();
            print_table(&["ID", "HOST", "PORT", "RACK"], &rows);
            Ok(())
        }
    }
}
