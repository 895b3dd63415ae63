//! `oxka configs describe|set|delete` for topics (default) and brokers.

use clap::{Args, Subcommand};
use oxka_client::admin::{AlterConfigOp, ConfigResource};
use oxka_client::Admin;
use serde_json::json;

use super::util::{parse_kv, print_json, print_table};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct ConfigsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: ConfigsCmd,
}

/// Which entity: a topic by name (the default) or a broker by id.
#[derive(Args, Debug)]
pub struct Entity {
    /// Topic name (or broker id with --broker).
    name: Option<String>,
    #[arg(long, conflicts_with = "broker")]
    topic: Option<String>,
    /// A broker id instead of a topic.
    #[arg(long)]
    broker: Option<String>,
}

impl Entity {
    fn resource(&self) -> CliResult<ConfigResource> {
        match (&self.broker, &self.topic, &self.name) {
            (Some(b), None, None) => Ok(ConfigResource::Broker(b.clone())),
            (None, Some(t), None) | (None, None, Some(t)) => Ok(ConfigResource::Topic(t.clone())),
            (None, Some(t), Some(n)) if t == n => Ok(ConfigResource::Topic(t.clone())),
            (None, None, None) => Err(CliError::Usage(
                "name a topic (oxka configs describe NAME) or --broker ID".into(),
            )),
            _ => Err(CliError::Usage(
                "give one entity: a topic name or --broker ID".into(),
            )),
        }
    }
}

#[derive(Subcommand, Debug)]
pub enum ConfigsCmd {
    /// Show configs with their values and sources.
    Describe {
        #[command(flatten)]
        entity: Entity,
        /// Only these keys (repeatable).
        #[arg(short, long = "key")]
        keys: Vec<String>,
        /// Only overrides (hide defaults).
        #[arg(long)]
        overrides_only: bool,
    },
    /// Set configs: `oxka configs set orders retention.ms=86400000 [KEY=VALUE...]`
    /// (or `--set KEY=VALUE`, repeatable; Kafka's `--add-config` spelling works too).
    Set {
        #[command(flatten)]
        entity: Entity,
        /// KEY=VALUE pairs after the name.
        #[arg(value_name = "KEY=VALUE")]
        items: Vec<String>,
        /// A KEY=VALUE pair (repeatable).
        #[arg(long = "set", alias = "add-config", value_name = "KEY=VALUE")]
        pairs: Vec<String>,
    },
    /// Remove config overrides (back to defaults): `oxka configs delete orders retention.ms [KEY...]`
    /// (or `--delete KEY`, repeatable; Kafka's `--delete-config` spelling works too).
    Delete {
        #[command(flatten)]
        entity: Entity,
        /// Keys after the name.
        #[arg(value_name = "KEY")]
        items: Vec<String>,
        /// A key to remove (repeatable).
        #[arg(long = "delete", alias = "delete-config", value_name = "KEY")]
        keys: Vec<String>,
    },
}

impl Entity {
    /// With `--topic` or `--broker` naming the entity, the first positional
    /// word is an item too (`oxka configs set --broker 1 k=v`).
    fn with_items(mut self, mut items: Vec<String>, flagged: Vec<String>) -> (Entity, Vec<String>) {
        if self.topic.is_some() || self.broker.is_some() {
            if let Some(n) = self.name.take() {
                if self.topic.as_deref() == Some(n.as_str()) {
                    // `oxka configs set orders --topic orders ...`
                } else {
                    items.insert(0, n);
                }
            }
        }
        items.extend(flagged);
        (self, items)
    }
}

pub async fn run(args: ConfigsArgs) -> CliResult {
    let output = args.opts.output;
    let admin = Admin::new(&args.opts.client_config()?)?;
    match args.cmd {
        ConfigsCmd::Describe {
            entity,
            keys,
            overrides_only,
        } => {
            let res = entity.resource()?;
            let entries = admin.describe_configs(&res, &keys).await?;
            let entries: Vec<_> = entries
                .into_iter()
                .filter(|c| {
                    !overrides_only
                        || !matches!(c.source.as_str(), "DEFAULT_CONFIG" | "STATIC_BROKER_CONFIG")
                })
                .collect();
            if output == Output::Json {
                print_json(&json!(entries
                    .iter()
                    .map(
                        |c| json!({"name": c.name, "value": c.value, "source": c.source,
                                    "read_only": c.read_only, "sensitive": c.sensitive})
                    )
                    .collect::<Vec<_>>()));
            } else {
                let rows: Vec<Vec<String>> = entries
                    .iter()
                    .map(|c| {
                        let v = if c.sensitive {
                            "(sensitive)".into()
                        } else {
                            c.value.clone().unwrap_or_default()
                        };
                        vec![c.name.clone(), v, c.source.clone()]
                    })
                    .collect();
                print_table(&["KEY", "VALUE", "SOURCE"], &rows);
            }
            Ok(())
        }
        ConfigsCmd::Set {
            entity,
            items,
            pairs,
        } => {
            let (entity, pairs) = entity.with_items(items, pairs);
            let res = entity.resource()?;
            if pairs.is_empty() {
                return Err(CliError::Usage(
                    "nothing to set: oxka configs set NAME KEY=VALUE [KEY=VALUE...]".into(),
                ));
            }
            let ops: Vec<AlterConfigOp> = parse_kv(&pairs, "config")?
                .into_iter()
                .map(|(k, v)| AlterConfigOp::Set(k, v))
                .collect();
            admin.incremental_alter_configs(&res, &ops).await?;
            done(output, &res, ops.len())
        }
        ConfigsCmd::Delete {
            entity,
            items,
            keys,
        } => {
            let (entity, keys) = entity.with_items(items, keys);
            let res = entity.resource()?;
            if keys.is_empty() {
                return Err(CliError::Usage(
                    "nothing to delete: oxka configs delete NAME KEY [KEY...]".into(),
                ));
            }
            if let Some(k) = keys.iter().find(|k| k.contains('=')) {
                return Err(CliError::Usage(format!(
                    "`{k}`: delete takes keys, not KEY=VALUE"
                )));
            }
            let ops: Vec<AlterConfigOp> = keys.into_iter().map(AlterConfigOp::Delete).collect();
            admin.incremental_alter_configs(&res, &ops).await?;
            done(output, &res, ops.len())
        }
    }
}

fn done(output: Output, res: &ConfigResource, n: usize) -> CliResult {
    let (kind, name) = match res {
        ConfigResource::Topic(t) => ("topic", t.as_str()),
        ConfigResource::Broker(b) => ("broker", b.as_str()),
        ConfigResource::Group(g) => ("group", g.as_str()),
    };
    if output == Output::Json {
        print_json(&json!({kind: name, "changed": n}));
    } else {
        outln!("Updated {n} config(s) of {kind} {name}");
    }
    Ok(())
}
