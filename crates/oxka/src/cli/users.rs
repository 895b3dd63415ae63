//! `oxka users scram set|delete|list`: SCRAM credentials, as
//! `kafka-configs --entity-type users --alter --add-config
//! 'SCRAM-SHA-256=[iterations=8192,password=...]'` manages them
//! (AlterUserScramCredentials / DescribeUserScramCredentials). The password
//! is salted on this side; the broker never sees it.

use clap::{Args, Subcommand, ValueEnum};
use oxka_client::sasl::scram::ScramMechanism;
use oxka_client::Admin;
use serde_json::json;

use super::util::{print_json, print_table};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct UsersArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: UsersCmd,
}

#[derive(Subcommand, Debug)]
pub enum UsersCmd {
    /// SCRAM credentials (SASL/SCRAM-SHA-256 and SCRAM-SHA-512 users).
    Scram {
        #[command(subcommand)]
        cmd: ScramCmd,
    },
}

#[derive(Clone, Copy, Debug, ValueEnum)]
pub enum Mechanism {
    #[value(name = "SCRAM-SHA-256")]
    Sha256,
    #[value(name = "SCRAM-SHA-512")]
    Sha512,
}

impl From<Mechanism> for ScramMechanism {
    fn from(m: Mechanism) -> ScramMechanism {
        match m {
            Mechanism::Sha256 => ScramMechanism::Sha256,
            Mechanism::Sha512 => ScramMechanism::Sha512,
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ScramCmd {
    /// Create or replace a user's credential: `oxka users scram set alice --password ...`
    /// (or the password from OXKA_SCRAM_PASSWORD, so it stays out of the shell history).
    Set {
        user: String,
        #[arg(long)]
        password: Option<String>,
        #[arg(long, value_enum, default_value = "SCRAM-SHA-512")]
        mechanism: Mechanism,
        /// PBKDF2 iterations (Kafka accepts 4096 to 16384).
        #[arg(long, default_value_t = 8192)]
        iterations: i32,
    },
    /// Delete a user's credential for a mechanism.
    Delete {
        user: String,
        #[arg(long, value_enum, default_value = "SCRAM-SHA-512")]
        mechanism: Mechanism,
    },
    /// List users with SCRAM credentials (mechanisms and iterations; no secrets).
    List {
        /// Only these users.
        users: Vec<String>,
    },
}

pub async fn run(args: UsersArgs) -> CliResult {
    let output = args.opts.output;
    let admin = Admin::new(&args.opts.client_config()?)?;
    let UsersCmd::Scram { cmd } = args.cmd;
    match cmd {
        ScramCmd::Set {
            user,
            password,
            mechanism,
            iterations,
        } => {
            let password = password
                .or_else(|| std::env::var("OXKA_SCRAM_PASSWORD").ok())
                .filter(|p| !p.is_empty())
                .ok_or_else(|| {
                    CliError::Usage("give --password or set OXKA_SCRAM_PASSWORD".into())
                })?;
            let m: ScramMechanism = mechanism.into();
            admin
                .alter_user_scram_credential(&user, m, Some(&password), iterations)
                .await?;
            eprintln!("set the {} credential of {user}", m.name());
            Ok(())
        }
        ScramCmd::Delete { user, mechanism } => {
            let m: ScramMechanism = mechanism.into();
            admin.alter_user_scram_credential(&user, m, None, 0).await?;
            eprintln!("deleted the {} credential of {user}", m.name());
            Ok(())
        }
        ScramCmd::List { users } => {
            let results = admin.describe_user_scram_credentials(&users).await?;
            let mut rows = Vec::new();
            let mut failed = None;
            for (user, r) in results {
                match r {
                    Ok(creds) => {
                        for (m, iterations) in creds {
                            rows.push((user.clone(), m.name().to_string(), iterations));
                        }
                    }
                    Err(e) => {
                        eprintln!("{user}: {e}");
                        failed = Some(e);
                    }
                }
            }
            if output == Output::Json {
                print_json(&json!(rows
                    .iter()
                    .map(|(u, m, i)| json!({"user": u, "mechanism": m, "iterations": i}))
                    .collect::<Vec<_>>()));
            } else {
                let rows: Vec<Vec<String>> = rows
                    .into_iter()
                    .map(|(u, m, i)| vec![u, m, i.to_string()])
                    .collect();
                print_table(&["USER", "MECHANISM", "ITERATIONS"], &rows);
            }
            match failed {
                Some(e) => Err(e.into()),
                None => Ok(()),
            }
        }
    }
}
