//! Broker configuration: Kafka's `server.properties` keys and defaults.
//!
//! Values come from three layers, later wins: embedded defaults, the file
//! given with `--config`, then `--override key=value`. Every explicit value
//! is validated up front so that a bad one stops the broker before it writes
//! anything.

pub mod defs;
pub mod dynamic;
pub mod group;
pub mod kraft;
pub mod security;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use oxka_log::{LogConfig, RetentionConfig, TimestampType};

pub use defs::{ConfigDef, ConfigType, TopicConfigDef, BROKER_CONFIGS, TOPIC_CONFIGS};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid value '{value}' for config '{key}': {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
    /// A setting that asks for protection or a limit oxka does not give
    /// yet (see [`security`]): refused rather than silently ignored.
    #[error("config '{key}' = '{value}' asks for {what}, which oxka does not support yet; remove the setting to start")]
    Unsupported {
        key: String,
        value: String,
        what: String,
    },
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse config file {path}: {reason}")]
    Parse { path: PathBuf, reason: String },
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// Where a reported config value came from: Kafka's `ConfigSource` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigSource {
    TopicConfig = 1,
    DynamicBrokerConfig = 2,
    DynamicDefaultBrokerConfig = 3,
    StaticBrokerConfig = 4,
    DefaultConfig = 5,
    /// A group config override (KIP-848).
    GroupConfig = 8,
}

/// One synonym of a described config: a name, its value in one layer and
/// that layer (DescribeConfigs' `synonyms`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    pub name: String,
    pub value: Option<String>,
    pub source: ConfigSource,
}

/// One `listeners` entry, e.g. `PLAINTEXT://:9092`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    /// Empty means every interface (bind) / the client's own view (advertise).
    pub host: String,
    pub port: u16,
}

impl Listener {
    pub fn parse(s: &str) -> Result<Listener, String> {
        let (name, rest) = s
            .split_once("://")
            .ok_or_else(|| format!("'{s}' is not of the form NAME://HOST:PORT"))?;
        let (host, port) = rest
            .rsplit_once(':')
            .ok_or_else(|| format!("'{s}' has no port"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let port = port
            .parse::<u16>()
            .map_err(|_| format!("'{port}' in '{s}' is not a port number"))?;
        if name.is_empty() {
            return Err(format!("'{s}' has no listener name"));
        }
        Ok(Listener {
            name: name.to_ascii_uppercase(),
            host: host.to_string(),
            port,
        })
    }

    /// `host:port` suitable for binding; an empty host binds every interface.
    pub fn bind_addr(&self) -> String {
        let host = if self.host.is_empty() {
            "0.0.0.0"
        } else {
            &self.host
        };
        if host.contains(':') {
            format!("[{host}]:{}", self.port)
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// `listener.name.<listener>.<key>` with the listener name lower-cased,
/// or `None` for any other key.
fn listener_override_key(key: &str) -> Option<String> {
    let rest = key.strip_prefix("listener.name.")?;
    let (listener, config) = rest.split_once('.')?;
    if listener.is_empty() || config.is_empty() {
        return None;
    }
    Some(format!(
        "listener.name.{}.{config}",
        listener.to_ascii_lowercase()
    ))
}

fn parse_listeners(key: &str, value: &str) -> Result<Vec<Listener>, ConfigError> {
    value
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Listener::parse(s).map_err(|e| invalid(key, value, e)))
        .collect()
}

/// One config as DescribeConfigs reports it.
#[derive(Debug, Clone)]
pub struct DescribedConfig {
    pub def: &'static ConfigDef,
    pub value: Option<String>,
    pub source: ConfigSource,
    pub read_only: bool,
    pub synonyms: Vec<ConfigSynonym>,
}

/// The broker's resolved configuration.
#[derive(Debug, Clone)]
pub struct KafkaConfig {
    /// Values set in the file or by overrides, validated, by key.
    explicit: BTreeMap<String, String>,
    /// Dynamic broker configs (AlterConfigs), above `explicit`; loaded
    /// from and persisted in the metadata image by the controller.
    dynamic: dynamic::DynamicLayer,
    pub node_id: i32,
    /// Client listeners to bind (controller listeners filtered out).
    pub listeners: Vec<Listener>,
    pub advertised_listeners: Vec<Listener>,
    pub log_dirs: Vec<PathBuf>,
    pub num_partitions: i32,
    pub default_replication_factor: i32,
    pub auto_create_topics_enable: bool,
    pub delete_topic_enable: bool,
    pub socket_request_max_bytes: usize,
    pub queued_max_requests: usize,
    pub checkpoint_interval_ms: u64,
    pub flush_scheduler_interval_ms: u64,
    pub broker_rack: Option<String>,
    /// Roles, voters, controller listener and quorum timings.
    pub kraft: kraft::KraftConfig,
    /// Each client listener's security protocol.
    pub listener_protocols: BTreeMap<String, security::SecurityProtocol>,
    /// The listener brokers reach each other on (see
    /// [`security::inter_broker_listener`]).
    pub inter_broker_listener: Option<String>,
    /// How this broker connects to the inter-broker listeners (replica
    /// fetchers, transaction markers, internal clients): the listener's
    /// protocol with its TLS and SASL client settings (see
    /// [`security::inter_broker_client`]). An error only on a node alone,
    /// which never connects to another broker: its own internal clients
    /// report it (a cluster's node refuses to start instead).
    pub inter_broker_client: Result<security::InterBrokerClient, String>,
    /// `listener.name.<listener>.<key>` settings, by full key with the
    /// listener name lower-cased (Kafka's `ListenerName.configPrefix`).
    listener_overrides: BTreeMap<String, String>,
}

/// The data directory used when neither `log.dirs` nor `log.dir` is set: a
/// directory the user owns and that survives reboots (unlike Kafka's
/// `/tmp/kafka-logs`).
pub fn default_data_dir() -> PathBuf {
    if let Some(x) = std::env::var_os("XDG_DATA_HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(x).join("oxka");
    }
    if let Some(h) = std::env::var_os("HOME").filter(|v| !v.is_empty()) {
        return PathBuf::from(h).join(".local/share/oxka");
    }
    PathBuf::from("oxka-data")
}

/// Reads a Java properties file (Kafka's `server.properties` format).
pub fn read_properties_file(path: &Path) -> Result<BTreeMap<String, String>, ConfigError> {
    let f = std::fs::File::open(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let map =
        java_properties::read(std::io::BufReader::new(f)).map_err(|e| ConfigError::Parse {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    Ok(map.into_iter().collect())
}

impl KafkaConfig {
    /// Builds the config from explicit key/values; returns warnings (unknown
    /// keys) beside it. Fails on the first invalid value, naming it.
    pub fn from_props(props: BTreeMap<String, String>) -> Result<(Self, Vec<String>), ConfigError> {
        let mut warnings = Vec::new();
        let mut explicit = BTreeMap::new();
        let mut listener_overrides = BTreeMap::new();
        for (k, v) in props {
            let k = k.trim().to_string();
            let v = v.trim().to_string();
            match defs::broker_def(&k) {
                Some(def) => {
                    def.validate(&v).map_err(|reason| invalid(&k, &v, reason))?;
                    if defs::inert_def(&k).is_some() {
                        warnings.push(format!("config '{k}' has no effect in oxka"));
                    }
                    explicit.insert(k, v);
                }
                None => {
                    security::check_unknown_key(&k, &v)?;
                    match listener_override_key(&k) {
                        Some(key) => {
                            listener_overrides.insert(key, v);
                        }
                        None => warnings.push(format!("unknown config '{k}' ignored")),
                    }
                }
            }
        }
        let mut cfg = KafkaConfig {
            explicit,
            dynamic: dynamic::DynamicLayer::default(),
            node_id: 0,
            listeners: Vec::new(),
            advertised_listeners: Vec::new(),
            log_dirs: Vec::new(),
            num_partitions: 1,
            default_replication_factor: 1,
            auto_create_topics_enable: true,
            delete_topic_enable: true,
            socket_request_max_bytes: 0,
            queued_max_requests: 0,
            checkpoint_interval_ms: 0,
            flush_scheduler_interval_ms: 0,
            broker_rack: None,
            kraft: kraft::KraftConfig::default(),
            listener_protocols: BTreeMap::new(),
            inter_broker_listener: None,
            inter_broker_client: Ok(Default::default()),
            listener_overrides,
        };
        cfg.node_id = cfg.int("node.id")? as i32;
        let controller_names: Vec<String> = cfg
            .value("controller.listener.names")
            .unwrap_or_default()
            .split(',')
            .map(|s| s.trim().to_ascii_uppercase())
            .filter(|s| !s.is_empty())
            .collect();
        let listeners_value = cfg.value("listeners").unwrap_or_default();
        let all_listeners = parse_listeners("listeners", &listeners_value)?;
        cfg.listeners = all_listeners
            .iter()
            .filter(|l| !controller_names.contains(&l.name))
            .cloned()
            .collect();
        cfg.listener_protocols = security::listener_protocols(&cfg)?;
        if let Some(adv) = cfg.value("advertised.listeners") {
            cfg.advertised_listeners = parse_listeners("advertised.listeners", &adv)?;
        }
        cfg.log_dirs = match (cfg.value("log.dirs"), cfg.value("log.dir")) {
            (Some(dirs), _) => dirs
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(PathBuf::from)
                .collect(),
            (None, Some(dir)) => vec![PathBuf::from(dir)],
            (None, None) => vec![default_data_dir()],
        };
        if cfg.log_dirs.is_empty() {
            return Err(invalid("log.dirs", "", "no directory given"));
        }
        cfg.num_partitions = cfg.int("num.partitions")? as i32;
        cfg.default_replication_factor = cfg.int("default.replication.factor")? as i32;
        cfg.auto_create_topics_enable = cfg.bool("auto.create.topics.enable");
        cfg.delete_topic_enable = cfg.bool("delete.topic.enable");
        cfg.socket_request_max_bytes = cfg.int("socket.request.max.bytes")? as usize;
        cfg.queued_max_requests = cfg.int("queued.max.requests")? as usize;
        cfg.checkpoint_interval_ms =
            cfg.int("log.flush.offset.checkpoint.interval.ms")?.max(1) as u64;
        cfg.flush_scheduler_interval_ms = cfg.int("log.flush.scheduler.interval.ms")?.max(1) as u64;
        cfg.broker_rack = cfg.value("broker.rack");
        let http = cfg.value("http.listeners").unwrap_or_default();
        crate::http::parse_listeners(&http).map_err(|r| invalid("http.listeners", &http, r))?;
        cfg.kraft = cfg.kraft_from(&all_listeners, &controller_names)?;
        if cfg.kraft.broker && cfg.listeners.is_empty() {
            return Err(invalid("listeners", &listeners_value, "no client listener"));
        }
        cfg.inter_broker_listener = security::inter_broker_listener(&cfg)?;
        cfg.inter_broker_client = match security::inter_broker_client(&cfg) {
            Ok(c) => Ok(c),
            Err(e) if !cfg.kraft.is_multi_node(cfg.node_id) => {
                warnings.push(format!(
                    "{e}: the console and the consumer lag cannot connect to this node"
                ));
                Err(e.to_string())
            }
            Err(e) => return Err(e),
        };
        security::check(&cfg)?;
        // Topic defaults derived from broker values must themselves be valid.
        for t in TOPIC_CONFIGS {
            if let Some(v) = cfg.topic_default(t) {
                t.def.validate(&v).map_err(|reason| {
                    invalid(t.broker_synonym.unwrap_or(t.def.name), &v, reason)
                })?;
            }
        }
        Ok((cfg, warnings))
    }

    /// A config with every default; what `oxka broker` runs with no flags.
    pub fn defaults() -> Self {
        Self::from_props(BTreeMap::new())
            .map(|(c, _)| c)
            .unwrap_or_else(|e| unreachable!("embedded defaults are invalid: {e}"))
    }

    /// A client listener's security protocol (PLAINTEXT for a name that
    /// is not a client listener).
    pub fn listener_protocol(&self, listener: &str) -> security::SecurityProtocol {
        self.listener_protocols
            .get(&listener.to_ascii_uppercase())
            .copied()
            .unwrap_or(security::SecurityProtocol::Plaintext)
    }

    /// TLS and SASL of connections to other brokers (replica fetchers,
    /// transaction markers); plaintext on a node alone whose settings
    /// are unusable (it has no other broker to reach).
    pub fn inter_broker_security(&self) -> oxka_client::security::ClientSecurity {
        self.inter_broker_client
            .as_ref()
            .map(|c| c.security.clone())
            .unwrap_or_default()
    }

    /// The listener this node's inter-broker endpoint is registered
    /// under: the inter-broker listener, else the first client listener.
    pub fn inter_broker_endpoint_listener(&self) -> Option<&str> {
        self.inter_broker_listener
            .as_deref()
            .or_else(|| self.listeners.first().map(|l| l.name.as_str()))
    }

    /// `listener.name.<listener>.<key>` when set, else the broker-wide
    /// value of `key` (Kafka's per-listener configs: TLS and SASL keys).
    pub fn listener_value(&self, listener: &str, key: &str) -> Option<String> {
        self.listener_only(listener, key)
            .or_else(|| self.value(key))
    }

    /// `listener.name.<listener>.<key>` only, e.g. the per-mechanism
    /// `plain.sasl.jaas.config` that has no broker-wide form.
    pub fn listener_only(&self, listener: &str, key: &str) -> Option<String> {
        let full = format!("listener.name.{}.{key}", listener.to_ascii_lowercase());
        // dynamic only for the per-listener connection limits (validation)
        self.dynamic
            .lookup(&full)
            .or_else(|| self.listener_overrides.get(&full).cloned())
    }

    fn int(&self, key: &str) -> Result<i64, ConfigError> {
        let v = self.value(key).unwrap_or_default();
        v.parse::<i64>()
            .map_err(|_| invalid(key, &v, "not a number"))
    }

    fn bool(&self, key: &str) -> bool {
        self.value(key)
            .map(|v| v.eq_ignore_ascii_case("true"))
            .unwrap_or(false)
    }

    pub fn is_explicit(&self, key: &str) -> bool {
        self.explicit.contains_key(key)
            || match key {
                "log.retention.ms" => {
                    self.explicit.contains_key("log.retention.minutes")
                        || self.explicit.contains_key("log.retention.hours")
                }
                "log.roll.ms" => self.explicit.contains_key("log.roll.hours"),
                "log.roll.jitter.ms" => self.explicit.contains_key("log.roll.jitter.hours"),
                "log.flush.interval.ms" => self
                    .explicit
                    .contains_key("log.flush.scheduler.interval.ms"),
                _ => false,
            }
    }

    /// The value of `key` set in some layer (dynamic per-broker, dynamic
    /// cluster default, static), without defaults or derivations.
    fn raw(&self, key: &str) -> Option<String> {
        self.dynamic
            .lookup(key)
            .or_else(|| self.explicit.get(key).cloned())
    }

    fn is_set(&self, key: &str) -> bool {
        self.raw(key).is_some()
    }

    /// The dynamic broker configs in force.
    pub fn dynamic_configs(&self) -> dynamic::DynamicBrokerConfigs {
        self.dynamic.get()
    }

    /// Replaces the dynamic broker configs (after the controller persisted
    /// them); everything reading `value` sees them from now on.
    pub fn set_dynamic_configs(&self, configs: dynamic::DynamicBrokerConfigs) {
        self.dynamic.set(configs);
    }

    /// The effective value of a broker config, with Kafka's derived values
    /// (`log.retention.ms` from minutes or hours, and so on). Dynamic
    /// values win over static ones, per-broker over cluster default.
    pub fn value(&self, key: &str) -> Option<String> {
        if let Some(v) = self.raw(key) {
            return Some(v);
        }
        let derived = |k: &str, mul: i64| -> Option<String> {
            self.value(k)
                .and_then(|v| v.parse::<i64>().ok())
                .map(|n| n.saturating_mul(mul).to_string())
        };
        match key {
            "log.retention.ms" => {
                if self.is_set("log.retention.minutes") {
                    derived("log.retention.minutes", 60_000)
                } else {
                    derived("log.retention.hours", 3_600_000)
                }
            }
            "log.roll.ms" => derived("log.roll.hours", 3_600_000),
            "log.roll.jitter.ms" => derived("log.roll.jitter.hours", 3_600_000),
            "log.flush.interval.ms" => self.value("log.flush.scheduler.interval.ms"),
            _ => defs::broker_def(key).and_then(|d| d.default.map(str::to_string)),
        }
    }

    /// Kafka's `configSynonyms`: every synonym of `name` (see
    /// [`dynamic::broker_synonyms`]) in every layer that sets it, layer by
    /// layer: dynamic per-broker (left out when `per_broker` is false, i.e.
    /// when describing the cluster default), dynamic default, static,
    /// built-in default.
    pub fn config_synonyms(&self, name: &str, per_broker: bool) -> Vec<ConfigSynonym> {
        let names = dynamic::broker_synonyms(name);
        let mut out = Vec::new();
        let mut layer = |source: ConfigSource, get: &dyn Fn(&str) -> Option<String>| {
            for n in &names {
                if let Some(v) = get(n) {
                    out.push(ConfigSynonym {
                        name: n.to_string(),
                        value: Some(v),
                        source,
                    });
                }
            }
        };
        if per_broker {
            layer(ConfigSource::DynamicBrokerConfig, &|n| {
                self.dynamic.per_broker(n)
            });
        }
        layer(ConfigSource::DynamicDefaultBrokerConfig, &|n| {
            self.dynamic.cluster_default(n)
        });
        layer(ConfigSource::StaticBrokerConfig, &|n| {
            self.explicit.get(n).cloned()
        });
        layer(ConfigSource::DefaultConfig, &|n| {
            defs::broker_def(n)
                .and_then(|d| d.default)
                .map(str::to_string)
        });
        out
    }

    /// Broker configs for DescribeConfigs. `per_broker` (resource name =
    /// node id): every known config; otherwise (resource name "") only the
    /// cluster-wide dynamic defaults, as Kafka answers. The source is the
    /// first layer that sets the config itself; synonyms start there
    /// (Kafka drops higher-priority synonyms of other names).
    pub fn describe_broker(&self, per_broker: bool) -> Vec<DescribedConfig> {
        let cluster_defaults = self.dynamic.get().cluster_default;
        defs::all_broker_defs()
            .filter(|d| per_broker || cluster_defaults.contains_key(d.name))
            .map(|d| {
                let synonyms: Vec<ConfigSynonym> = self
                    .config_synonyms(d.name, per_broker)
                    .into_iter()
                    .skip_while(|s| s.name != d.name)
                    .collect();
                let source = synonyms
                    .first()
                    .map_or(ConfigSource::DefaultConfig, |s| s.source);
                let value = if per_broker {
                    self.value(d.name)
                } else {
                    cluster_defaults.get(d.name).cloned()
                };
                DescribedConfig {
                    def: d,
                    value,
                    source,
                    read_only: !dynamic::is_dynamic(d.name),
                    synonyms,
                }
            })
            .collect()
    }

    /// Synonyms of a topic config: the topic's override, then the broker
    /// synonym's layers (Kafka's `createTopicConfigEntry`).
    pub fn topic_synonyms(
        &self,
        overrides: &BTreeMap<String, String>,
        t: &TopicConfigDef,
    ) -> Vec<ConfigSynonym> {
        let mut out = Vec::new();
        if let Some(v) = overrides.get(t.def.name) {
            out.push(ConfigSynonym {
                name: t.def.name.to_string(),
                value: Some(v.clone()),
                source: ConfigSource::TopicConfig,
            });
        }
        if let Some(b) = t.broker_synonym {
            out.extend(self.config_synonyms(b, true));
        }
        out
    }

    /// The retention settings of a topic: its overrides over the broker
    /// defaults (dynamic ones included).
    pub fn retention_config(&self, overrides: &BTreeMap<String, String>) -> RetentionConfig {
        let d = RetentionConfig::default();
        let num = |name: &str, fallback: i64| -> i64 {
            defs::topic_def(name)
                .and_then(|t| self.topic_value(overrides, t).0)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(fallback)
        };
        RetentionConfig {
            retention_ms: num("retention.ms", d.retention_ms),
            retention_bytes: num("retention.bytes", d.retention_bytes),
            file_delete_delay_ms: num("file.delete.delay.ms", d.file_delete_delay_ms),
        }
    }

    fn topic_default(&self, t: &TopicConfigDef) -> Option<String> {
        t.broker_synonym
            .and_then(|s| self.value(s))
            .or_else(|| t.def.default.map(str::to_string))
    }

    /// The value and source of one topic config given the topic's overrides.
    pub fn topic_value(
        &self,
        overrides: &BTreeMap<String, String>,
        t: &TopicConfigDef,
    ) -> (Option<String>, ConfigSource) {
        if let Some(v) = overrides.get(t.def.name) {
            return (Some(v.clone()), ConfigSource::TopicConfig);
        }
        let src = t
            .broker_synonym
            .and_then(|b| self.config_synonyms(b, true).first().map(|s| s.source))
            .unwrap_or(ConfigSource::DefaultConfig);
        (self.topic_default(t), src)
    }

    /// Validates topic config overrides (CreateTopics, and later AlterConfigs).
    pub fn validate_topic_configs(
        &self,
        overrides: &BTreeMap<String, String>,
    ) -> Result<(), String> {
        for (k, v) in overrides {
            let def =
                defs::topic_def(k).ok_or_else(|| format!("Unknown topic config name: {k}"))?;
            def.def.validate(v)?;
        }
        // Kafka's answer when tiered storage is disabled on the broker,
        // which it always is in oxka.
        if overrides
            .get("remote.storage.enable")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Err("Tiered Storage functionality is disabled in the broker. \
                 Topic cannot be configured with remote log storage."
                .to_string());
        }
        Ok(())
    }

    /// The log settings of a topic: its overrides over the broker defaults.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let get = |name: &str| -> Option<String> {
            defs::topic_def(name).and_then(|t| self.topic_value(overrides, t).0)
        };
        let num = |name: &str, fallback: i64| -> i64 {
            get(name)
                .and_then(|v| v.trim().parse::<i64>().ok())
                .unwrap_or(fallback)
        };
        let d = LogConfig::default();
        // `cleanup.policy` is a list: "compact", "delete" or both.
        let policy = get("cleanup.policy").unwrap_or_else(|| "delete".to_string());
        let policy_has = |p: &str| policy.split(',').any(|x| x.trim().eq_ignore_ascii_case(p));
        LogConfig {
            segment_bytes: num("segment.bytes", d.segment_bytes as i64).max(14) as u64,
            segment_ms: num("segment.ms", d.segment_ms).max(1),
            index_interval_bytes: num("index.interval.bytes", d.index_interval_bytes as i64)
                .clamp(0, i32::MAX as i64) as u32,
            max_index_size: num("segment.index.bytes", d.max_index_size as i64)
                .clamp(4, i32::MAX as i64) as u32,
            flush_interval_messages: num("flush.messages", i64::MAX).max(1) as u64,
            flush_interval_ms: num("flush.ms", i64::MAX).max(0) as u64,
            message_timestamp_type: match get("message.timestamp.type").as_deref() {
                Some(v) if v.eq_ignore_ascii_case("LogAppendTime") => TimestampType::LogAppendTime,
                _ => TimestampType::CreateTime,
            },
            message_timestamp_before_max_ms: num(
                "message.timestamp.before.max.ms",
                d.message_timestamp_before_max_ms,
            )
            .max(0),
            message_timestamp_after_max_ms: num(
                "message.timestamp.after.max.ms",
                d.message_timestamp_after_max_ms,
            )
            .max(0),
            max_message_bytes: num("max.message.bytes", d.max_message_bytes as i64)
                .clamp(0, i32::MAX as i64) as u32,
            compression: {
                let level = |name: &str, fallback: i32| -> i32 {
                    num(name, i64::from(fallback)).clamp(i32::MIN.into(), i32::MAX.into()) as i32
                };
                type Bc = oxka_log::BrokerCompression;
                get("compression.type")
                    .and_then(|v| {
                        Bc::from_config(
                            &v,
                            level("compression.gzip.level", Bc::GZIP_DEFAULT_LEVEL),
                            level("compression.lz4.level", Bc::LZ4_DEFAULT_LEVEL),
                            level("compression.zstd.level", Bc::ZSTD_DEFAULT_LEVEL),
                        )
                    })
                    .unwrap_or_default()
            },
            compact: policy_has("compact"),
            delete: policy_has("delete"),
            min_cleanable_dirty_ratio: get("min.cleanable.dirty.ratio")
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|r| r.is_finite())
                .map_or(d.min_cleanable_dirty_ratio, |r| r.clamp(0.0, 1.0)),
            min_compaction_lag_ms: num("min.compaction.lag.ms", d.min_compaction_lag_ms).max(0),
            max_compaction_lag_ms: num("max.compaction.lag.ms", d.max_compaction_lag_ms).max(1),
            delete_retention_ms: num("delete.retention.ms", d.delete_retention_ms).max(0),
            max_decompressed_message_bytes: num(
                "max.decompressed.message.bytes",
                i64::from(d.max_decompressed_message_bytes),
            )
            .clamp(1, i64::from(u32::MAX)) as u32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn defaults_match_kafka() {
        let c = KafkaConfig::defaults();
        assert_eq!(c.node_id, 1);
        assert_eq!(c.listeners[0].port, 9092);
        assert_eq!(c.value("message.max.bytes").as_deref(), Some("1048588"));
        assert_eq!(c.value("log.retention.ms").as_deref(), Some("604800000"));
        assert_eq!(c.socket_request_max_bytes, 104_857_600);
        let lc = c.log_config(&BTreeMap::new());
        assert_eq!(lc.segment_bytes, 1_073_741_824);
        assert_eq!(lc.segment_ms, 604_800_000);
        assert_eq!(lc.max_message_bytes, 1_048_588);
    }

    #[test]
    fn invalid_value_names_key_and_value() {
        let err = KafkaConfig::from_props(props(&[("num.partitions", "zero")])).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("num.partitions") && msg.contains("zero"),
            "{msg}"
        );
        assert!(KafkaConfig::from_props(props(&[("listeners", "nonsense")])).is_err());
    }

    #[test]
    fn unknown_keys_warn() {
        let (_, w) = KafkaConfig::from_props(props(&[("no.such.key", "1")])).unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn derived_and_sources() {
        let (c, _) = KafkaConfig::from_props(props(&[
            ("log.retention.hours", "1"),
            ("listeners", "PLAINTEXT://127.0.0.1:1234,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
        ]))
        .unwrap();
        assert_eq!(c.listeners.len(), 1);
        assert_eq!(c.value("log.retention.ms").as_deref(), Some("3600000"));
        let t = defs::topic_def("retention.ms").unwrap();
        let (v, src) = c.topic_value(&BTreeMap::new(), t);
        assert_eq!(v.as_deref(), Some("3600000"));
        assert_eq!(src, ConfigSource::StaticBrokerConfig);
        let (v, src) = c.topic_value(&props(&[("retention.ms", "5")]), t);
        assert_eq!((v.as_deref(), src), (Some("5"), ConfigSource::TopicConfig));
        let seg = defs::topic_def("segment.bytes").unwrap();
        assert_eq!(
            c.topic_value(&BTreeMap::new(), seg).1,
            ConfigSource::DefaultConfig
        );
    }

    #[test]
    fn listener_parsing() {
        let l = Listener::parse("PLAINTEXT://:9092").unwrap();
        assert_eq!((l.host.as_str(), l.port), ("", 9092));
        assert_eq!(l.bind_addr(), "0.0.0.0:9092");
        let l = Listener::parse("PLAINTEXT://[::1]:19092").unwrap();
        assert_eq!(l.bind_addr(), "[::1]:19092");
        assert!(Listener::parse("PLAINTEXT://host:notaport").is_err());
    }
}
