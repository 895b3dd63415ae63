//! Configs changed at run time: AlterConfigs / IncrementalAlterConfigs on
//! topics and on the broker's dynamic configs (Kafka's
//! `DynamicBrokerConfig`, per broker and cluster-wide default).
//!
//! The values live in the metadata image (so they persist and, later,
//! replicate); [`DynamicLayer`] is the copy the running broker reads, placed
//! above the static `server.properties` values in [`super::KafkaConfig`].

use std::collections::BTreeMap;

use parking_lot::RwLock;

use super::defs::{self, ConfigDef, ConfigType, UpdateMode};

/// Broker configs oxka acts on that Kafka lets AlterConfigs change without
/// a restart (`DynamicBrokerConfig.ALL_DYNAMIC_CONFIGS`): the topic-default
/// synonyms (`DynamicLogConfig`), the cleaner's knobs, the thread pools and
/// the connection quotas. Inert configs carry Kafka's mode in their table.
/// Kafka's dynamic `listeners` and `listener.security.protocol.map`
/// (per-broker) and `producer.id.expiration.ms` stay read-only here: oxka
/// reads them at start-up only, and accepting a change it does not apply
/// would be a lie.
pub static DYNAMIC_BROKER_CONFIGS: &[&str] = &[
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.jitter.ms",
    "log.index.size.max.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "log.retention.bytes",
    "log.retention.ms",
    "log.index.interval.bytes",
    "log.cleaner.delete.retention.ms",
    "log.cleaner.min.compaction.lag.ms",
    "log.cleaner.max.compaction.lag.ms",
    "log.segment.delete.delay.ms",
    "log.cleaner.min.cleanable.ratio",
    "log.cleanup.policy",
    "unclean.leader.election.enable",
    "min.insync.replicas",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "log.preallocate",
    "message.max.bytes",
    "log.message.timestamp.type",
    "log.message.timestamp.before.max.ms",
    "log.message.timestamp.after.max.ms",
    "log.cleaner.threads",
    "log.cleaner.dedupe.buffer.size",
    "log.cleaner.io.buffer.load.factor",
    "log.cleaner.io.buffer.size",
    "log.cleaner.io.max.bytes.per.second",
    "log.cleaner.backoff.ms",
    "num.io.threads",
    "num.network.threads",
    "max.connections",
    "max.connections.per.ip",
    "max.connections.per.ip.overrides",
    "max.connection.creation.rate",
    "max.decompressed.message.bytes",
];

/// The definition of a broker config AlterConfigs may name: a broker key,
/// or the `listener.name.<l>.` form of a per-listener connection limit
/// (the broker key's definition).
pub fn alterable_broker_def(name: &str) -> Option<&'static ConfigDef> {
    defs::broker_def(name)
        .or_else(|| super::security::listener_connection_config(name).and_then(defs::broker_def))
}

/// Whether AlterConfigs may change broker config `name` at run time.
pub fn is_dynamic(name: &str) -> bool {
    DYNAMIC_BROKER_CONFIGS.contains(&name)
        || defs::inert_def(name).is_some_and(|i| i.mode != UpdateMode::ReadOnly)
}

/// Whether `name` may only be set for one broker, not as the cluster
/// default (Kafka's per-broker mode).
pub fn is_per_broker(name: &str) -> bool {
    defs::inert_def(name).is_some_and(|i| i.mode == UpdateMode::PerBroker)
}

/// Logs, once per key and process, that a Kafka config oxka does not act
/// on was set: stored and described, but without effect.
pub fn note_no_effect(name: &str) {
    static SEEN: parking_lot::Mutex<Option<std::collections::HashSet<String>>> =
        parking_lot::Mutex::new(None);
    if defs::inert_def(name).is_none() {
        return;
    }
    if SEEN
        .lock()
        .get_or_insert_with(Default::default)
        .insert(name.to_string())
    {
        tracing::warn!("config '{name}' is stored but has no effect in oxka");
    }
}

/// Kafka's `brokerConfigSynonyms`: the broker configs that set the same
/// thing, highest priority first.
pub fn broker_synonyms(name: &str) -> Vec<&'static str> {
    const RETENTION: [&str; 3] = [
        "log.retention.ms",
        "log.retention.minutes",
        "log.retention.hours",
    ];
    const ROLL: [&str; 2] = ["log.roll.ms", "log.roll.hours"];
    const JITTER: [&str; 2] = ["log.roll.jitter.ms", "log.roll.jitter.hours"];
    if RETENTION.contains(&name) {
        RETENTION.to_vec()
    } else if ROLL.contains(&name) {
        ROLL.to_vec()
    } else if JITTER.contains(&name) {
        JITTER.to_vec()
    } else if name == "log.flush.interval.ms" {
        vec!["log.flush.interval.ms", "log.flush.scheduler.interval.ms"]
    } else {
        defs::broker_def(name)
            .map(|d| vec![d.name])
            .unwrap_or_default()
    }
}

/// The dynamic broker configs of this node and of the cluster default.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DynamicBrokerConfigs {
    /// Set for this broker (resource name = node id): DYNAMIC_BROKER_CONFIG.
    pub per_broker: BTreeMap<String, String>,
    /// Set for every broker (resource name ""): DYNAMIC_DEFAULT_BROKER_CONFIG.
    pub cluster_default: BTreeMap<String, String>,
}

/// The run-time layer of [`super::KafkaConfig`]. Cloning copies the values
/// (a clone is a snapshot, not a second handle).
#[derive(Debug, Default)]
pub struct DynamicLayer(RwLock<DynamicBrokerConfigs>);

impl Clone for DynamicLayer {
    fn clone(&self) -> Self {
        DynamicLayer(RwLock::new(self.0.read().clone()))
    }
}

impl DynamicLayer {
    pub fn get(&self) -> DynamicBrokerConfigs {
        self.0.read().clone()
    }

    pub fn set(&self, configs: DynamicBrokerConfigs) {
        *self.0.write() = configs;
    }

    /// The per-broker value, else the cluster default, of `key`.
    pub fn lookup(&self, key: &str) -> Option<String> {
        let d = self.0.read();
        d.per_broker
            .get(key)
            .or_else(|| d.cluster_default.get(key))
            .cloned()
    }

    pub fn per_broker(&self, key: &str) -> Option<String> {
        self.0.read().per_broker.get(key).cloned()
    }

    pub fn cluster_default(&self, key: &str) -> Option<String> {
        self.0.read().cluster_default.get(key).cloned()
    }
}

/// Why an alteration was refused, as the Kafka error it becomes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AlterConfigError {
    /// INVALID_REQUEST: malformed request (duplicate keys, null values,
    /// unknown operation), or a broker config that cannot change at run
    /// time (Kafka answers those with INVALID_REQUEST too, KAFKA-13609).
    #[error("{0}")]
    InvalidRequest(String),
    /// INVALID_CONFIG: unknown config name or a value that fails validation.
    #[error("{0}")]
    InvalidConfig(String),
}

/// IncrementalAlterConfigs' operation codes (`AlterConfigOp.OpType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlterOp {
    Set,
    Delete,
    Append,
    Subtract,
}

impl AlterOp {
    pub fn from_code(code: i8) -> Option<AlterOp> {
        match code {
            0 => Some(AlterOp::Set),
            1 => Some(AlterOp::Delete),
            2 => Some(AlterOp::Append),
            3 => Some(AlterOp::Subtract),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            AlterOp::Set => "SET",
            AlterOp::Delete => "DELETE",
            AlterOp::Append => "APPEND",
            AlterOp::Subtract => "SUBTRACT",
        }
    }
}

/// One entry of an IncrementalAlterConfigs resource.
#[derive(Debug, Clone)]
pub struct IncrementalChange {
    pub name: String,
    /// The raw operation code, checked here so the error is per resource.
    pub op: i8,
    pub value: Option<String>,
}

fn list_items(v: &str) -> Vec<String> {
    v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect()
}

/// Applies IncrementalAlterConfigs operations to `current` (a resource's
/// overrides) as Kafka's `ConfigurationControlManager` does: SET replaces,
/// DELETE removes, APPEND/SUBTRACT edit LIST-type values item by item
/// (starting from the config's default when there is no override).
/// `def_of` finds the definition of a name; unknown names are refused.
pub fn apply_incremental(
    current: &BTreeMap<String, String>,
    changes: &[IncrementalChange],
    def_of: impl Fn(&str) -> Option<&'static ConfigDef>,
    unknown: impl Fn(&str) -> String,
) -> Result<BTreeMap<String, String>, AlterConfigError> {
    let mut seen = std::collections::HashSet::new();
    for c in changes {
        if !seen.insert(c.name.as_str()) {
            return Err(AlterConfigError::InvalidRequest(format!(
                "Error due to duplicate config keys: {}",
                c.name
            )));
        }
    }
    let mut next = current.clone();
    for c in changes {
        let op = AlterOp::from_code(c.op).ok_or_else(|| {
            AlterConfigError::InvalidRequest(format!(
                "Unknown alter config operation type {} for {}",
                c.op, c.name
            ))
        })?;
        let def = def_of(&c.name);
        if def.is_none() && op != AlterOp::Delete {
            return Err(AlterConfigError::InvalidConfig(unknown(&c.name)));
        }
        let value = || {
            c.value.clone().ok_or_else(|| {
                AlterConfigError::InvalidRequest(format!(
                    "Null value not supported for {} of {}",
                    op.name(),
                    c.name
                ))
            })
        };
        match op {
            AlterOp::Set => {
                next.insert(c.name.clone(), value()?);
            }
            AlterOp::Delete => {
                next.remove(&c.name);
            }
            AlterOp::Append | AlterOp::Subtract => {
                let Some(def) = def.filter(|d| d.ty == ConfigType::List) else {
                    return Err(AlterConfigError::InvalidConfig(format!(
                        "Can't {} to key {} because its type is not LIST.",
                        op.name(),
                        c.name
                    )));
                };
                let base = next
                    .get(&c.name)
                    .cloned()
                    .or_else(|| def.default.map(str::to_string))
                    .unwrap_or_default();
                let mut items = list_items(&base);
                for item in list_items(&value()?) {
                    if op == AlterOp::Append {
                        if !items.contains(&item) {
                            items.push(item);
                        }
                    } else {
                        items.retain(|i| *i != item);
                    }
                }
                next.insert(c.name.clone(), items.join(","));
            }
        }
    }
    Ok(next)
}

/// The overrides a legacy AlterConfigs sets: exactly the listed entries
/// (every override not named goes back to its default).
pub fn apply_legacy(
    entries: &[(String, Option<String>)],
) -> Result<BTreeMap<String, String>, AlterConfigError> {
    let mut next = BTreeMap::new();
    for (name, value) in entries {
        let Some(value) = value else {
            return Err(AlterConfigError::InvalidRequest(format!(
                "Null value not supported for : {name}"
            )));
        };
        if next.insert(name.clone(), value.clone()).is_some() {
            return Err(AlterConfigError::InvalidRequest(format!(
                "Error due to duplicate config keys: {name}"
            )));
        }
    }
    Ok(next)
}

/// Checks a dynamic broker config map: every name known, changeable at run
/// time, and its value valid (as Kafka's `DynamicBrokerConfig.validate`).
pub fn validate_broker_configs(
    configs: &BTreeMap<String, String>,
    cluster_default: bool,
) -> Result<(), AlterConfigError> {
    // Kafka's SslConfigs.RECONFIGURABLE_CONFIGS: dynamic only in their
    // `listener.name.<l>.` form.
    const LISTENER_ONLY: &[&str] = &[
        "ssl.keystore.type",
        "ssl.keystore.location",
        "ssl.keystore.password",
        "ssl.key.password",
        "ssl.truststore.type",
        "ssl.truststore.location",
        "ssl.truststore.password",
        "ssl.keystore.certificate.chain",
        "ssl.keystore.key",
        "ssl.truststore.certificates",
    ];
    let unprefixed: Vec<&str> = configs
        .keys()
        .filter(|k| LISTENER_ONLY.contains(&k.as_str()))
        .map(String::as_str)
        .collect();
    if !unprefixed.is_empty() {
        return Err(AlterConfigError::InvalidRequest(format!(
            "These security configs can be dynamically updated only per-listener using the listener prefix: [{}]",
            unprefixed.join(", ")
        )));
    }
    let not_dynamic: Vec<&str> = configs
        .keys()
        .filter(|k| defs::broker_def(k).is_some() && !is_dynamic(k))
        .map(String::as_str)
        .collect();
    if !not_dynamic.is_empty() {
        return Err(AlterConfigError::InvalidRequest(format!(
            "Cannot update these configs dynamically: [{}]",
            not_dynamic.join(", ")
        )));
    }
    for (k, v) in configs {
        if let Some(key) = super::security::listener_connection_config(k) {
            // Kafka's ListenerConnectionQuota.validateReconfiguration
            if v.trim().parse::<i32>().map_or(true, |n| n <= 0) {
                return Err(AlterConfigError::InvalidRequest(format!(
                    "Invalid {key} {v}"
                )));
            }
            continue;
        }
        let def = defs::broker_def(k).ok_or_else(|| {
            AlterConfigError::InvalidConfig(format!("Unknown broker config name: {k}"))
        })?;
        def.validate(v).map_err(|reason| {
            AlterConfigError::InvalidRequest(format!(
                "Invalid value {v} for configuration {k}: {reason}"
            ))
        })?;
    }
    let per_broker: Vec<&str> = configs
        .keys()
        .filter(|k| is_per_broker(k))
        .map(String::as_str)
        .collect();
    if cluster_default && !per_broker.is_empty() {
        return Err(AlterConfigError::InvalidRequest(format!(
            "Cannot update these configs at default cluster level, broker id must be specified: [{}]",
            per_broker.join(", ")
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic_def(name: &str) -> Option<&'static ConfigDef> {
        defs::topic_def(name).map(|t| &t.def)
    }

    fn change(name: &str, op: i8, value: Option<&str>) -> IncrementalChange {
        IncrementalChange {
            name: name.into(),
            op,
            value: value.map(str::to_string),
        }
    }

    fn unknown(n: &str) -> String {
        format!("Unknown topic config name: {n}")
    }

    #[test]
    fn incremental_operations() {
        let cur = BTreeMap::from([("retention.ms".to_string(), "5".to_string())]);
        let next = apply_incremental(
            &cur,
            &[
                change("retention.ms", 1, None),
                change("cleanup.policy", 2, Some("compact")),
                change("segment.bytes", 0, Some("1000")),
            ],
            topic_def,
            unknown,
        )
        .unwrap();
        assert_eq!(next.get("retention.ms"), None);
        // APPEND starts from the default ("delete")
        assert_eq!(next["cleanup.policy"], "delete,compact");
        assert_eq!(next["segment.bytes"], "1000");
        let next = apply_incremental(
            &next,
            &[change("cleanup.policy", 3, Some("delete"))],
            topic_def,
            unknown,
        )
        .unwrap();
        assert_eq!(next["cleanup.policy"], "compact");
        // APPEND of an item already there changes nothing
        let same = apply_incremental(
            &next,
            &[change("cleanup.policy", 2, Some("compact"))],
            topic_def,
            unknown,
        )
        .unwrap();
        assert_eq!(same["cleanup.policy"], "compact");
    }

    #[test]
    fn incremental_errors() {
        let cur = BTreeMap::new();
        let err = |changes: &[IncrementalChange]| {
            apply_incremental(&cur, changes, topic_def, unknown).unwrap_err()
        };
        assert!(matches!(
            err(&[change("retention.ms", 2, Some("1"))]),
            AlterConfigError::InvalidConfig(m) if m.contains("retention.ms")
        ));
        assert!(matches!(
            err(&[change("no.such", 0, Some("1"))]),
            AlterConfigError::InvalidConfig(m) if m.contains("no.such")
        ));
        assert!(matches!(
            err(&[change("retention.ms", 9, Some("1"))]),
            AlterConfigError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(&[change("retention.ms", 0, None)]),
            AlterConfigError::InvalidRequest(_)
        ));
        assert!(matches!(
            err(&[
                change("retention.ms", 0, Some("1")),
                change("retention.ms", 1, None)
            ]),
            AlterConfigError::InvalidRequest(_)
        ));
    }

    #[test]
    fn broker_validation() {
        let ok = BTreeMap::from([
            ("log.retention.ms".to_string(), "1000".to_string()),
            (
                "log.cleanup.policy".to_string(),
                "compact,delete".to_string(),
            ),
        ]);
        assert!(validate_broker_configs(&ok, false).is_ok());
        let static_only = BTreeMap::from([("num.partitions".to_string(), "3".to_string())]);
        assert!(matches!(
            validate_broker_configs(&static_only, false),
            Err(AlterConfigError::InvalidRequest(m)) if m.contains("Cannot update these configs dynamically") && m.contains("num.partitions")
        ));
        let bad = BTreeMap::from([("log.segment.bytes".to_string(), "1".to_string())]);
        assert!(matches!(
            validate_broker_configs(&bad, false),
            Err(AlterConfigError::InvalidRequest(m)) if m.contains("log.segment.bytes")
        ));
        let unknown = BTreeMap::from([("no.such".to_string(), "1".to_string())]);
        assert!(matches!(
            validate_broker_configs(&unknown, false),
            Err(AlterConfigError::InvalidConfig(_))
        ));
    }

    #[test]
    fn layer_clone_is_a_snapshot() {
        let a = DynamicLayer::default();
        a.set(DynamicBrokerConfigs {
            per_broker: BTreeMap::from([("k".into(), "1".into())]),
            cluster_default: BTreeMap::new(),
        });
        let b = a.clone();
        a.set(DynamicBrokerConfigs::default());
        assert_eq!(b.lookup("k").as_deref(), Some("1"));
        assert_eq!(a.lookup("k"), None);
    }
}
