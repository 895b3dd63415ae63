//! The `oxka` command.

mod broker_cmd;
mod cli;
mod logging;
mod storage_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "oxka",
    version,
    about = "A Kafka-compatible event-streaming platform"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a broker (embedded defaults; Kafka's server.properties keys).
    Broker(broker_cmd::BrokerArgs),
    /// Format log dirs for a cluster id, show them, make a cluster id (as kafka-storage.sh).
    Storage(storage_cmd::StorageArgs),
    /// Create, list, describe, alter and delete topics.
    #[command(alias = "topic")]
    Topics(cli::topics::TopicsArgs),
    /// Reassign partitions and elect leaders (kafka-reassign-partitions.sh, kafka-leader-election.sh).
    #[command(alias = "partition")]
    Partitions(cli::partitions::PartitionsArgs),
    /// Describe and change topic, broker and client quota configs.
    #[command(alias = "config")]
    Configs(cli::configs::ConfigsArgs),
    /// List, describe (with lag), reset offsets of and delete consumer groups.
    #[command(alias = "group")]
    Groups(cli::groups::GroupsArgs),
    /// Write lines from stdin or a file as records.
    Produce(cli::produce::ProduceArgs),
    /// Print records from a topic.
    Consume(cli::consume::ConsumeArgs),
    /// SCRAM users: set, delete, list credentials (kafka-configs --entity-type users).
    #[command(alias = "user")]
    Users(cli::users::UsersArgs),
    /// ACLs: create, list, delete (kafka-acls.sh's flags).
    #[command(alias = "acl")]
    Acls(cli::acls::AclsArgs),
    /// Cluster id, controller, brokers and the metadata quorum.
    Cluster(cli::cluster::ClusterArgs),
    /// Load tests: produce, consume and end-to-end latency (Kafka's perf-test flags and output).
    Perf(cli::perf::PerfArgs),
    /// Throughput per topic and lag per group, refreshed in the terminal (--once: one view).
    Top(cli::top::TopArgs),
    /// Check a cluster's guarantees: a workload, optional faults in a local cluster, then a check of what the clients saw.
    Verify(cli::verify::VerifyArgs),
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Broker(args) => broker_cmd::run(args),
        Command::Storage(args) => storage_cmd::run(args),
        Command::Topics(a) => cli::run(cli::topics::run(a)),
        Command::Configs(a) => cli::run(cli::configs::run(a)),
        Command::Partitions(a) => cli::run(cli::partitions::run(a)),
        Command::Groups(a) => cli::run(cli::groups::run(a)),
        Command::Produce(a) => cli::run(cli::produce::run(a)),
        Command::Consume(a) => cli::run(cli::consume::run(a)),
        Command::Cluster(a) => cli::run(cli::cluster::run(a)),
        Command::Users(a) => cli::run(cli::users::run(a)),
        Command::Acls(a) => cli::run(cli::acls::run(a)),
        Command::Perf(a) => cli::run(cli::perf::run(a)),
        Command::Verify(a) => cli::run(cli::verify::run(a)),
        Command::Top(a) => cli::run(cli::top::run(a)),
    };
    std::process::exit(code);
}
