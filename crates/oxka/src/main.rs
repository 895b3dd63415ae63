//! The `oxka` command.

mod broker_cmd;

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
}

fn main() {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Broker(args) => broker_cmd::run(args),
    };
    std::process::exit(code);
}
