//! `oxka configs describe|set|delete` for topics (default), brokers and
//! client quotas (users, client ids and their defaults, as kafka-configs
//! does them), and kafka-configs' own spelling: `oxka configs --alter
//! --entity-type users --entity-name alice --add-config
//! 'producer_byte_rate=1048576'`, `--describe`, `--delete-config`.

use clap::{Args, Subcommand};
use oxka_client::admin::{AlterConfigOp, ConfigResource};
use oxka_client::quota::{QuotaEntity, QuotaFilterComponent, CLIENT_ID, IP, USER};
use oxka_client::Admin;
use serde_json::json;

use super::util::{parse_kv, print_json, print_table};
use super::{CliError, CliResult, ClientOpts, Output};

#[derive(Args, Debug)]
pub struct ConfigsArgs {
    #[command(flatten)]
    pub opts: ClientOpts,
    #[command(subcommand)]
    pub cmd: Option<ConfigsCmd>,
    #[command(flatten)]
    pub kafka: KafkaConfigsFlags,
}

/// kafka-configs.sh's flags, for scripts written for it.
#[derive(Args, Debug)]
pub struct KafkaConfigsFlags {
    /// List the entity's configs (kafka-configs `--describe`).
    #[arg(long, conflicts_with = "alter")]
    describe: bool,
    /// Change the entity's configs (kafka-configs `--alter`).
    #[arg(long)]
    alter: bool,
    /// topics, brokers, users, clients or ips (twice for a user and client id).
    #[arg(long = "entity-type", value_name = "TYPE")]
    entity_type: Vec<String>,
    /// The entity's name (in the order of --entity-type).
    #[arg(long = "entity-name", value_name = "NAME")]
    entity_name: Vec<String>,
    /// The default entity of the (last) --entity-type.
    #[arg(long = "entity-default")]
    entity_default: bool,
    #[command(flatten)]
    quota: QuotaEntityFlags,
    /// KEY=VALUE[,KEY=VALUE...] to set.
    #[arg(long = "add-config", value_name = "KEY=VALUE,...")]
    add_config: Vec<String>,
    /// KEY[,KEY...] to remove.
    #[arg(long = "delete-config", value_name = "KEY,...")]
    delete_config: Vec<String>,
}

/// A client quota entity: kafka-configs' `--user`, `--client` and their
/// defaults.
#[derive(Args, Debug, Default)]
pub struct QuotaEntityFlags {
    /// A user principal's name (client quotas).
    #[arg(long, conflicts_with = "user_defaults")]
    user: Option<String>,
    /// A client id (client quotas).
    #[arg(long, conflicts_with = "client_defaults")]
    client: Option<String>,
    /// The default user (client quotas).
    #[arg(long = "user-defaults")]
    user_defaults: bool,
    /// The default client id (client quotas).
    #[arg(long = "client-defaults")]
    client_defaults: bool,
    /// An IP address (`connection_creation_rate`).
    #[arg(long, conflicts_with_all = ["ip_defaults", "user", "client", "user_defaults", "client_defaults"])]
    ip: Option<String>,
    /// The default IP address.
    #[arg(long = "ip-defaults", conflicts_with_all = ["user", "client", "user_defaults", "client_defaults"])]
    ip_defaults: bool,
}

impl QuotaEntityFlags {
    fn is_set(&self) -> bool {
        self.user.is_some()
            || self.client.is_some()
            || self.user_defaults
            || self.client_defaults
            || self.ip_part().is_some()
    }

    /// The IP part (`Some(None)`: the default IP).
    fn ip_part(&self) -> Option<Option<String>> {
        match (&self.ip, self.ip_defaults) {
            (Some(n), _) => Some(Some(n.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        }
    }

    /// The user and client-id parts (`Some(None)`: the default).
    fn parts(&self) -> (Option<Option<String>>, Option<Option<String>>) {
        let part = |name: &Option<String>, default: bool| match (name, default) {
            (Some(n), _) => Some(Some(n.clone())),
            (None, true) => Some(None),
            (None, false) => None,
        };
        (
            part(&self.user, self.user_defaults),
            part(&self.client, self.client_defaults),
        )
    }

    fn entity(&self) -> QuotaEntity {
        if let Some(ip) = self.ip_part() {
            return QuotaEntity::ip(ip.as_deref());
        }
        let (u, c) = self.parts();
        QuotaEntity::new(
            u.as_ref().map(|n| n.as_deref()),
            c.as_ref().map(|n| n.as_deref()),
        )
    }
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
    #[command(flatten)]
    quota: QuotaEntityFlags,
}

/// What a command works on.
enum Target {
    Config(ConfigResource),
    Quota(QuotaEntityFlags),
}

impl Entity {
    fn target(self) -> CliResult<Target> {
        if self.quota.is_set() {
            if self.name.is_some() || self.topic.is_some() || self.broker.is_some() {
                return Err(CliError::Usage(
                    "give one entity: a topic, a broker, or --user/--client".into(),
                ));
            }
            return Ok(Target::Quota(self.quota));
        }
        self.resource().map(Target::Config)
    }

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
    /// Set and remove in one change (what kafka-configs' `--alter` means).
    #[command(hide = true)]
    Alter {
        #[command(flatten)]
        entity: Entity,
        #[arg(long = "set")]
        set: Vec<String>,
        #[arg(long = "delete")]
        delete: Vec<String>,
    },
}

impl Entity {
    /// With `--topic` or `--broker` naming the entity, the first positional
    /// word is an item too (`oxka configs set --broker 1 k=v`).
    fn with_items(mut self, mut items: Vec<String>, flagged: Vec<String>) -> (Entity, Vec<String>) {
        if self.topic.is_some() || self.broker.is_some() || self.quota.is_set() {
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
    let cmd = match args.cmd {
        Some(cmd) => cmd,
        None => args.kafka.into_command()?,
    };
    match cmd {
        ConfigsCmd::Describe {
            entity,
            keys,
            overrides_only,
        } => {
            let res = match entity.target()? {
                Target::Quota(q) => return describe_quotas(&admin, output, &q, &keys).await,
                Target::Config(res) => res,
            };
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
            if pairs.is_empty() {
                return Err(CliError::Usage(
                    "nothing to set: oxka configs set NAME KEY=VALUE [KEY=VALUE...]".into(),
                ));
            }
            let kv = parse_kv(&pairs, "config")?;
            match entity.target()? {
                Target::Quota(q) => {
                    let mut ops = Vec::with_capacity(kv.len());
                    for (k, v) in kv {
                        let value: f64 = v.trim().parse().map_err(|_| {
                            CliError::Usage(format!("quota `{k}`: `{v}` is not a number"))
                        })?;
                        ops.push((k, Some(value)));
                    }
                    alter_quotas(&admin, output, &q, ops).await
                }
                Target::Config(res) => {
                    let ops: Vec<AlterConfigOp> = kv
                        .into_iter()
                        .map(|(k, v)| AlterConfigOp::Set(k, v))
                        .collect();
                    admin.incremental_alter_configs(&res, &ops).await?;
                    done(output, &res, ops.len())
                }
            }
        }
        ConfigsCmd::Delete {
            entity,
            items,
            keys,
        } => {
            let (entity, keys) = entity.with_items(items, keys);
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
            match entity.target()? {
                Target::Quota(q) => {
                    let ops = keys.into_iter().map(|k| (k, None)).collect();
                    alter_quotas(&admin, output, &q, ops).await
                }
                Target::Config(res) => {
                    let ops: Vec<AlterConfigOp> =
                        keys.into_iter().map(AlterConfigOp::Delete).collect();
                    admin.incremental_alter_configs(&res, &ops).await?;
                    done(output, &res, ops.len())
                }
            }
        }
        ConfigsCmd::Alter {
            entity,
            set,
            delete,
        } => {
            // kafka-configs --alter with both --add-config and --delete-config
            let mut ops: Vec<(String, Option<String>)> = Vec::new();
            for (k, v) in parse_kv(&set, "config")? {
                ops.push((k, Some(v)));
            }
            ops.extend(delete.into_iter().map(|k| (k, None)));
            match entity.target()? {
                Target::Quota(q) => {
                    let mut qops = Vec::with_capacity(ops.len());
                    for (k, v) in ops {
                        let value = match v {
                            Some(v) => Some(v.trim().parse::<f64>().map_err(|_| {
                                CliError::Usage(format!("quota `{k}`: `{v}` is not a number"))
                            })?),
                            None => None,
                        };
                        qops.push((k, value));
                    }
                    alter_quotas(&admin, output, &q, qops).await
                }
                Target::Config(res) => {
                    let ops: Vec<AlterConfigOp> = ops
                        .into_iter()
                        .map(|(k, v)| match v {
                            Some(v) => AlterConfigOp::Set(k, v),
                            None => AlterConfigOp::Delete(k),
                        })
                        .collect();
                    admin.incremental_alter_configs(&res, &ops).await?;
                    done(output, &res, ops.len())
                }
            }
        }
    }
}

impl KafkaConfigsFlags {
    /// kafka-configs' flags as the subcommand they mean.
    fn into_command(self) -> CliResult<ConfigsCmd> {
        let mut entity = Entity {
            name: None,
            topic: None,
            broker: None,
            quota: self.quota,
        };
        if self.entity_type.len() > 2 || self.entity_name.len() > self.entity_type.len() {
            return Err(CliError::Usage(
                "each --entity-name needs its --entity-type (at most a user and a client id)"
                    .into(),
            ));
        }
        // names pair with types in order; --entity-default names the last
        // type left without one
        let unnamed = self.entity_type.len() - self.entity_name.len();
        if unnamed > usize::from(self.entity_default) && (self.alter || self.entity_default) {
            return Err(CliError::Usage(
                "give every --entity-type an --entity-name or --entity-default (or use --user/--client and --user-defaults/--client-defaults)".into(),
            ));
        }
        for (i, t) in self.entity_type.iter().enumerate() {
            let name = self.entity_name.get(i).cloned();
            match t.as_str() {
                "topics" | "brokers" if self.entity_type.len() > 1 => {
                    return Err(CliError::Usage(format!(
                        "--entity-type {t} cannot be combined with another entity type"
                    )))
                }
                "topics" => entity.topic = name,
                "brokers" => {
                    entity.broker = Some(name.unwrap_or_default());
                }
                "users" => match name {
                    Some(n) => entity.quota.user = Some(n),
                    None if self.entity_default => entity.quota.user_defaults = true,
                    None => {}
                },
                "clients" => match name {
                    Some(n) => entity.quota.client = Some(n),
                    None if self.entity_default => entity.quota.client_defaults = true,
                    None => {}
                },
                "ips" => match name {
                    Some(n) => entity.quota.ip = Some(n),
                    None if self.entity_default => entity.quota.ip_defaults = true,
                    None => {}
                },
                other => {
                    return Err(CliError::Usage(format!(
                        "--entity-type {other}: expected topics, brokers, users, clients or ips"
                    )))
                }
            }
        }
        if self.describe {
            return Ok(ConfigsCmd::Describe {
                entity: entity.with_any(&self.entity_type, &self.entity_name),
                keys: Vec::new(),
                overrides_only: true,
            });
        }
        if !self.alter {
            return Err(CliError::Usage(
                "give a subcommand (describe, set, delete) or kafka-configs' --describe / --alter"
                    .into(),
            ));
        }
        let set: Vec<String> = self.add_config.iter().flat_map(|s| split_list(s)).collect();
        let delete: Vec<String> = self
            .delete_config
            .iter()
            .flat_map(|s| split_list(s))
            .collect();
        if set.is_empty() && delete.is_empty() {
            return Err(CliError::Usage(
                "--alter needs --add-config or --delete-config".into(),
            ));
        }
        Ok(ConfigsCmd::Alter {
            entity,
            set,
            delete,
        })
    }
}

impl Entity {
    /// kafka-configs `--describe --entity-type users` without a name: any
    /// user (marked with an empty name, read by [`quota_filter`]).
    fn with_any(mut self, types: &[String], names: &[String]) -> Entity {
        if names.is_empty()
            && !self.quota.user_defaults
            && !self.quota.client_defaults
            && !self.quota.ip_defaults
        {
            for t in types {
                match t.as_str() {
                    "users" => self.quota.user = Some(String::new()),
                    "clients" => self.quota.client = Some(String::new()),
                    "ips" => self.quota.ip = Some(String::new()),
                    _ => {}
                }
            }
        }
        self
    }
}

/// kafka-configs' comma-separated list, brackets keeping commas inside a
/// value (`k=[a,b]`).
fn split_list(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut depth = 0i32;
    let mut cur = String::new();
    for ch in s.chars() {
        match ch {
            '[' => depth += 1,
            ']' => depth -= 1,
            ',' if depth == 0 => {
                if !cur.trim().is_empty() {
                    out.push(cur.trim().to_string());
                }
                cur.clear();
                continue;
            }
            _ => {}
        }
        cur.push(ch);
    }
    if !cur.trim().is_empty() {
        out.push(cur.trim().to_string());
    }
    out
}

/// The describe filter for the quota flags: a named part matches exactly,
/// a default part the default, an empty name any entity of the type;
/// strict, as kafka-configs asks (only entities of exactly these types).
fn quota_filter(q: &QuotaEntityFlags) -> Vec<QuotaFilterComponent> {
    let (u, c) = q.parts();
    let mut out = Vec::new();
    for (t, part) in [(USER, u), (CLIENT_ID, c), (IP, q.ip_part())] {
        match part {
            Some(Some(n)) if n.is_empty() => out.push(QuotaFilterComponent::Specified(t.into())),
            Some(Some(n)) => out.push(QuotaFilterComponent::Exact(t.into(), n)),
            Some(None) => out.push(QuotaFilterComponent::Default(t.into())),
            None => {}
        }
    }
    out
}

async fn describe_quotas(
    admin: &Admin,
    output: Output,
    q: &QuotaEntityFlags,
    keys: &[String],
) -> CliResult {
    let entries = admin.describe_client_quotas(&quota_filter(q), true).await?;
    let shown = |k: &String| keys.is_empty() || keys.contains(k);
    if output == Output::Json {
        print_json(&json!(entries
            .iter()
            .map(|(e, values)| {
                let entity: serde_json::Map<String, serde_json::Value> =
                    e.0.iter().map(|(t, n)| (t.clone(), json!(n))).collect();
                let values: serde_json::Map<String, serde_json::Value> = values
                    .iter()
                    .filter(|(k, _)| shown(k))
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect();
                json!({"entity": entity, "quotas": values})
            })
            .collect::<Vec<_>>()));
    } else {
        let rows: Vec<Vec<String>> = entries
            .iter()
            .flat_map(|(e, values)| {
                values
                    .iter()
                    .filter(|(k, _)| shown(k))
                    .map(move |(k, v)| vec![e.to_string(), k.clone(), format!("{v}")])
            })
            .collect();
        print_table(&["ENTITY", "KEY", "VALUE"], &rows);
    }
    Ok(())
}

async fn alter_quotas(
    admin: &Admin,
    output: Output,
    q: &QuotaEntityFlags,
    ops: Vec<(String, Option<f64>)>,
) -> CliResult {
    let entity = q.entity();
    let n = ops.len();
    let results = admin
        .alter_client_quotas(&[(entity.clone(), ops)], false)
        .await?;
    for (_, r) in results {
        r?;
    }
    if output == Output::Json {
        print_json(&json!({"entity": entity.to_string(), "changed": n}));
    } else {
        outln!("Updated {n} quota(s) of {entity}");
    }
    Ok(())
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
