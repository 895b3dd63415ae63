//! Group configs (KIP-848): per-group overrides of the coordinator's
//! settings, set with IncrementalAlterConfigs / AlterConfigs on resource
//! type GROUP (32) and read with DescribeConfigs. The keys, defaults,
//! checks and messages are Kafka 4.4's `GroupConfig` (checked against a
//! running Kafka 4.4.0): most keys default to the broker config they
//! override and must lie within that config's `min`/`max` bounds. The
//! overrides live in the metadata image (persisted like topic configs);
//! the KIP-848 coordinator reads `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms` from there for each group. The other
//! keys are stored and described only: oxka has no share groups (KIP-932),
//! streams groups (KIP-1071), dead-letter queues or assignment intervals.

use std::collections::BTreeMap;

use super::defs::{ConfigDef, ConfigType, Validator};
use super::dynamic::AlterConfigError;
use super::{ConfigSource, ConfigSynonym, DescribedConfig, KafkaConfig};

/// A broker config bounding a group config: its name and Kafka's default.
type BrokerBound = &'static str;

/// What a value must satisfy beyond its type.
#[derive(Debug, Clone, Copy)]
pub enum Check {
    /// An INT at least `at_least` (Kafka's `atLeast`, checked when the
    /// value is parsed), then within the broker's bounds.
    Int {
        at_least: i64,
        min: Option<BrokerBound>,
        max: Option<BrokerBound>,
    },
    Bool,
    OneOf(&'static [&'static str]),
    /// `share.auto.offset.reset`: earliest, latest or by_duration:<ISO-8601>.
    AutoOffsetReset,
    /// `errors.deadletterqueue.topic.name`: not an internal (`__`) name.
    DeadLetterTopic,
    /// `streams.assignor.name`: one of the broker's streams assignors.
    StreamsAssignor,
    /// A LIST, any items.
    List,
}

/// One group config: its definition, the broker config it defaults to (if
/// any) and its check.
pub struct GroupConfigDef {
    /// `default` is Kafka's default (of the broker config, if any).
    pub def: ConfigDef,
    pub broker_default: Option<&'static str>,
    pub check: Check,
}

const fn def(
    name: &'static str,
    ty: ConfigType,
    default: &'static str,
    broker_default: Option<&'static str>,
    check: Check,
    doc: &'static str,
) -> GroupConfigDef {
    GroupConfigDef {
        def: ConfigDef {
            name,
            ty,
            default: Some(default),
            validator: Validator::None,
            doc,
        },
        broker_default,
        check,
    }
}

/// An INT within [min, max] of broker configs.
const fn bounded(
    name: &'static str,
    default: &'static str,
    at_least: i64,
    broker_default: &'static str,
    min: BrokerBound,
    max: BrokerBound,
    doc: &'static str,
) -> GroupConfigDef {
    def(
        name,
        ConfigType::Int,
        default,
        Some(broker_default),
        Check::Int {
            at_least,
            min: Some(min),
            max: Some(max),
        },
        doc,
    )
}

/// Kafka 4.4's `GroupConfig` keys, in the order its checks run.
pub static GROUP_CONFIGS: &[GroupConfigDef] = &[
    bounded(
        "consumer.session.timeout.ms",
        "45000",
        1,
        "group.consumer.session.timeout.ms",
        "group.consumer.min.session.timeout.ms",
        "group.consumer.max.session.timeout.ms",
        "The timeout to detect client failures when using the consumer group protocol.",
    ),
    bounded(
        "consumer.heartbeat.interval.ms",
        "5000",
        1,
        "group.consumer.heartbeat.interval.ms",
        "group.consumer.min.heartbeat.interval.ms",
        "group.consumer.max.heartbeat.interval.ms",
        "The heartbeat interval given to the members of a consumer group.",
    ),
    bounded(
        "consumer.assignment.interval.ms",
        "1000",
        0,
        "group.consumer.assignment.interval.ms",
        "group.consumer.min.assignment.interval.ms",
        "group.consumer.max.assignment.interval.ms",
        "The minimum time between two target assignments of a consumer group.",
    ),
    bounded(
        "share.session.timeout.ms",
        "45000",
        1,
        "group.share.session.timeout.ms",
        "group.share.min.session.timeout.ms",
        "group.share.max.session.timeout.ms",
        "The timeout to detect client failures when using the share group protocol.",
    ),
    bounded(
        "share.heartbeat.interval.ms",
        "5000",
        1,
        "group.share.heartbeat.interval.ms",
        "group.share.min.heartbeat.interval.ms",
        "group.share.max.heartbeat.interval.ms",
        "The heartbeat interval given to the members of a share group.",
    ),
    bounded(
        "share.record.lock.duration.ms",
        "30000",
        1000,
        "group.share.record.lock.duration.ms",
        "group.share.min.record.lock.duration.ms",
        "group.share.max.record.lock.duration.ms",
        "The record acquisition lock duration in milliseconds for share groups.",
    ),
    bounded(
        "share.delivery.count.limit",
        "5",
        2,
        "group.share.delivery.count.limit",
        "group.share.min.delivery.count.limit",
        "group.share.max.delivery.count.limit",
        "The maximum number of delivery attempts for a record delivered to a share group.",
    ),
    bounded(
        "share.partition.max.record.locks",
        "2000",
        100,
        "group.share.partition.max.record.locks",
        "group.share.min.partition.max.record.locks",
        "group.share.max.partition.max.record.locks",
        "Share-group record lock limit per share-partition.",
    ),
    def(
        "share.auto.offset.reset",
        ConfigType::String,
        "latest",
        None,
        Check::AutoOffsetReset,
        "The strategy to initialize the share-partition start offset: earliest, latest or by_duration:<ISO-8601 duration>.",
    ),
    def(
        "share.isolation.level",
        ConfigType::String,
        "read_uncommitted",
        None,
        Check::OneOf(&["read_committed", "read_uncommitted"]),
        "Controls how a share group reads records written transactionally.",
    ),
    def(
        "share.renew.acknowledge.enable",
        ConfigType::Boolean,
        "true",
        None,
        Check::Bool,
        "Whether the renew acknowledge type is enabled for the share group.",
    ),
    bounded(
        "share.assignment.interval.ms",
        "1000",
        0,
        "group.share.assignment.interval.ms",
        "group.share.min.assignment.interval.ms",
        "group.share.max.assignment.interval.ms",
        "The minimum time between two target assignments of a share group.",
    ),
    bounded(
        "streams.session.timeout.ms",
        "45000",
        1,
        "group.streams.session.timeout.ms",
        "group.streams.min.session.timeout.ms",
        "group.streams.max.session.timeout.ms",
        "The timeout to detect client failures when using the streams group protocol.",
    ),
    bounded(
        "streams.heartbeat.interval.ms",
        "5000",
        1,
        "group.streams.heartbeat.interval.ms",
        "group.streams.min.heartbeat.interval.ms",
        "group.streams.max.heartbeat.interval.ms",
        "The heartbeat interval given to the members of a streams group.",
    ),
    def(
        "streams.num.standby.replicas",
        ConfigType::Int,
        "0",
        Some("group.streams.num.standby.replicas"),
        Check::Int {
            at_least: 0,
            min: None,
            max: Some("group.streams.max.standby.replicas"),
        },
        "The number of standby replicas for each task of a streams group.",
    ),
    def(
        "streams.initial.rebalance.delay.ms",
        ConfigType::Int,
        "3000",
        Some("group.streams.initial.rebalance.delay.ms"),
        Check::Int {
            at_least: 0,
            min: None,
            max: None,
        },
        "The delay before the first rebalance of a new streams group.",
    ),
    bounded(
        "streams.assignment.interval.ms",
        "1000",
        0,
        "group.streams.assignment.interval.ms",
        "group.streams.min.assignment.interval.ms",
        "group.streams.max.assignment.interval.ms",
        "The minimum time between two target assignments of a streams group.",
    ),
    def(
        "streams.assignor.name",
        ConfigType::String,
        "sticky",
        Some("group.streams.assignors"),
        Check::StreamsAssignor,
        "The task assignor of a streams group.",
    ),
    def(
        "streams.rack.aware.assignment.tags",
        ConfigType::List,
        "",
        Some("group.streams.rack.aware.assignment.tags"),
        Check::List,
        "The client tags used for rack-aware assignment of standby tasks of a streams group.",
    ),
    def(
        "errors.deadletterqueue.topic.name",
        ConfigType::String,
        "",
        None,
        Check::DeadLetterTopic,
        "The topic that records a share group cannot deliver go to (empty: none).",
    ),
    def(
        "errors.deadletterqueue.copy.record.enable",
        ConfigType::Boolean,
        "false",
        None,
        Check::Bool,
        "Whether a dead-lettered record keeps its key and value.",
    ),
];

/// The session / heartbeat pairs Kafka requires to be ordered
/// (session timeout > heartbeat interval).
const ORDERED: [(&str, &str); 3] = [
    (
        "consumer.session.timeout.ms",
        "consumer.heartbeat.interval.ms",
    ),
    ("share.session.timeout.ms", "share.heartbeat.interval.ms"),
    (
        "streams.session.timeout.ms",
        "streams.heartbeat.interval.ms",
    ),
];

/// The streams task assignors Kafka registers.
const STREAMS_ASSIGNORS: &[&str] = &["sticky"];

pub fn group_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|g| g.def.name == name)
}

/// A broker bound's current value (its default comes from the broker
/// config table, where every `group.*` key is).
fn broker_int(config: &KafkaConfig, key: &str) -> Option<i64> {
    config.value(key).and_then(|v| v.trim().parse::<i64>().ok())
}

impl GroupConfigDef {
    /// The value a group without an override gets: the broker config's,
    /// else Kafka's default. (`streams.assignor.name`: the first of the
    /// broker's `group.streams.assignors`.)
    pub fn broker_value(&self, config: &KafkaConfig) -> String {
        let own = || self.def.default.unwrap_or_default().to_string();
        match self.broker_default {
            Some(k) if matches!(self.check, Check::StreamsAssignor) => config
                .value(k)
                .and_then(|v| v.split(',').next().map(|s| s.trim().to_string()))
                .filter(|s| !s.is_empty())
                .unwrap_or_else(own),
            Some(k) => config.value(k).unwrap_or_else(own),
            None => own(),
        }
    }

    fn bounds(&self, config: &KafkaConfig) -> (Option<i64>, Option<i64>) {
        match self.check {
            Check::Int { min, max, .. } => (
                min.and_then(|k| broker_int(config, k)),
                max.and_then(|k| broker_int(config, k)),
            ),
            _ => (None, None),
        }
    }

    /// Kafka's `ConfigDef.parse` of one value: type, then `atLeast` / the
    /// allowed strings, with Kafka's message.
    fn parse(&self, v: &str) -> Result<(), String> {
        let name = self.def.name;
        let invalid = |why: String| format!("Invalid value {v} for configuration {name}: {why}");
        match self.check {
            Check::Int { at_least, .. } => {
                let n = v
                    .trim()
                    .parse::<i32>()
                    .map_err(|_| invalid("Not a number of type INT".into()))?;
                if i64::from(n) < at_least {
                    return Err(invalid(format!("Value must be at least {at_least}")));
                }
            }
            Check::Bool => {
                let t = v.trim();
                if !t.eq_ignore_ascii_case("true") && !t.eq_ignore_ascii_case("false") {
                    return Err(invalid("Expected value to be either true or false".into()));
                }
            }
            Check::OneOf(allowed) => {
                if !allowed.contains(&v) {
                    return Err(invalid(format!(
                        "String must be one of: {}",
                        allowed.join(", ")
                    )));
                }
            }
            Check::AutoOffsetReset => {
                if !valid_auto_offset_reset(v) {
                    return Err(invalid(format!(
                        "Invalid value `{v}` for configuration {name}. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'."
                    )));
                }
            }
            Check::DeadLetterTopic | Check::StreamsAssignor | Check::List => {}
        }
        Ok(())
    }

    /// Kafka's `GroupConfig.validateValues` for one key: broker bounds and
    /// the checks that name no parse error.
    fn check_value(&self, v: &str, config: &KafkaConfig) -> Result<(), String> {
        let name = self.def.name;
        match self.check {
            Check::Int { .. } => {
                let n = v.trim().parse::<i64>().unwrap_or(0);
                match self.bounds(config) {
                    (Some(lo), Some(hi)) if n < lo || n > hi => Err(format!(
                        "{name} must be in the range {lo} to {hi} inclusive."
                    )),
                    (None, Some(hi)) if n > hi => {
                        Err(format!("{name} must be less than or equal to {hi}"))
                    }
                    _ => Ok(()),
                }
            }
            Check::DeadLetterTopic if v.starts_with("__") => {
                Err(format!("{name}: DLQ topic name must not start with '__'"))
            }
            Check::StreamsAssignor => {
                let registered: Vec<String> = config
                    .value("group.streams.assignors")
                    .map(|l| {
                        l.split(',')
                            .map(|s| s.trim().to_string())
                            .filter(|s| !s.is_empty())
                            .collect()
                    })
                    .filter(|l: &Vec<String>| !l.is_empty())
                    .unwrap_or_else(|| STREAMS_ASSIGNORS.iter().map(|s| s.to_string()).collect());
                if registered.iter().any(|r| r == v) {
                    Ok(())
                } else {
                    Err(format!(
                        "{name} '{v}' is not a registered task assignor. Registered assignors are: [{}].",
                        registered.join(", ")
                    ))
                }
            }
            _ => Ok(()),
        }
    }
}

/// `share.auto.offset.reset`: latest, earliest, or `by_duration:` and a
/// non-negative ISO-8601 duration (Kafka's ShareGroupAutoOffsetResetStrategy).
fn valid_auto_offset_reset(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    if v == "latest" || v == "earliest" {
        return true;
    }
    v.strip_prefix("by_duration:").is_some_and(|d| {
        let d = d.trim();
        d.starts_with('p') && d.len() > 1 && d[1..].chars().any(|c| c.is_ascii_digit())
    })
}

/// Checks a group's full set of overrides as Kafka's
/// `GroupConfig.validate` does: every name known, every value parsed
/// (type and lower limit), then within the broker's bounds, and each
/// session timeout above its heartbeat interval (keys not set take the
/// broker's values). Errors are INVALID_CONFIG with Kafka's messages.
pub fn validate(
    configs: &BTreeMap<String, String>,
    config: &KafkaConfig,
) -> Result<(), AlterConfigError> {
    let bad = AlterConfigError::InvalidConfig;
    if let Some(k) = configs.keys().find(|k| group_def(k).is_none()) {
        return Err(bad(format!("Unknown group config name: {k}")));
    }
    let set = || {
        GROUP_CONFIGS
            .iter()
            .filter_map(|g| configs.get(g.def.name).map(|v| (g, v)))
    };
    for (g, v) in set() {
        g.parse(v).map_err(bad)?;
    }
    for (g, v) in set() {
        g.check_value(v, config).map_err(bad)?;
    }
    let int_of = |name: &str| -> i64 {
        let g = group_def(name);
        configs
            .get(name)
            .cloned()
            .or_else(|| g.map(|g| g.broker_value(config)))
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
    };
    for (session, heartbeat) in ORDERED {
        if int_of(session) <= int_of(heartbeat) {
            return Err(bad(format!("{session} must be greater than {heartbeat}")));
        }
    }
    Ok(())
}

/// DescribeConfigs of a group: every group config, the override
/// (GROUP_CONFIG) or the broker's value (DEFAULT_CONFIG), with Kafka's
/// synonyms (the override, then the broker config it defaults to).
pub fn describe(
    overrides: &BTreeMap<String, String>,
    config: &KafkaConfig,
) -> Vec<DescribedConfig> {
    GROUP_CONFIGS
        .iter()
        .map(|g| {
            let default = ConfigSynonym {
                name: g.broker_default.unwrap_or(g.def.name).to_string(),
                value: Some(g.broker_value(config)),
                source: ConfigSource::DefaultConfig,
            };
            let (value, source, synonyms) = match overrides.get(g.def.name) {
                Some(v) => (
                    v.clone(),
                    ConfigSource::GroupConfig,
                    vec![
                        ConfigSynonym {
                            name: g.def.name.to_string(),
                            value: Some(v.clone()),
                            source: ConfigSource::GroupConfig,
                        },
                        default,
                    ],
                ),
                None => (
                    g.broker_value(config),
                    ConfigSource::DefaultConfig,
                    vec![default],
                ),
            };
            DescribedConfig {
                def: &g.def,
                value: Some(value),
                source,
                read_only: false,
                synonyms,
            }
        })
        .collect()
}

/// The effective integer value of group config `name` for a group with
/// `overrides`: the override clamped to the broker's current bounds (they
/// may have changed since it was set, as Kafka's `GroupConfig.evaluate`),
/// else `None` (the broker's value applies).
pub fn effective_int(
    overrides: Option<&BTreeMap<String, String>>,
    name: &str,
    config: &KafkaConfig,
) -> Option<i64> {
    let g = group_def(name)?;
    let set = overrides
        .and_then(|o| o.get(name))
        .and_then(|v| v.trim().parse::<i64>().ok())?;
    let (min, max) = g.bounds(config);
    let v = min.map_or(set, |m| set.max(m));
    Some(max.map_or(v, |m| v.min(m)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn broker(extra: &[(&str, &str)]) -> KafkaConfig {
        let dir = std::env::temp_dir();
        let mut props = BTreeMap::from([("log.dirs".to_string(), dir.display().to_string())]);
        for (k, v) in extra {
            props.insert(k.to_string(), v.to_string());
        }
        KafkaConfig::from_props(props).unwrap().0
    }

    fn map(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn err(r: Result<(), AlterConfigError>) -> String {
        match r {
            Err(AlterConfigError::InvalidConfig(m)) => m,
            other => panic!("expected INVALID_CONFIG, got {other:?}"),
        }
    }

    /// Messages as a running Kafka 4.4.0 answers them.
    #[test]
    fn validation_follows_kafka() {
        let b = broker(&[]);
        assert_eq!(validate(&map(&[]), &b), Ok(()));
        assert_eq!(
            validate(
                &map(&[
                    ("consumer.session.timeout.ms", "50000"),
                    ("consumer.heartbeat.interval.ms", "6000"),
                    ("consumer.assignment.interval.ms", "0"),
                    ("share.auto.offset.reset", "by_duration:PT1H"),
                    ("share.isolation.level", "read_committed"),
                    ("share.delivery.count.limit", "10"),
                    ("share.renew.acknowledge.enable", "false"),
                    ("streams.num.standby.replicas", "2"),
                    ("streams.initial.rebalance.delay.ms", "999999999"),
                    ("streams.assignor.name", "sticky"),
                    ("streams.rack.aware.assignment.tags", "a,b"),
                    ("errors.deadletterqueue.topic.name", "dlq"),
                    ("errors.deadletterqueue.copy.record.enable", "true"),
                ]),
                &b
            ),
            Ok(())
        );
        let cases = [
            ("no.such", "1", "Unknown group config name: no.such"),
            (
                "consumer.session.timeout.ms",
                "x",
                "Invalid value x for configuration consumer.session.timeout.ms: Not a number of type INT",
            ),
            (
                "consumer.session.timeout.ms",
                "0",
                "Invalid value 0 for configuration consumer.session.timeout.ms: Value must be at least 1",
            ),
            (
                "consumer.session.timeout.ms",
                "1000",
                "consumer.session.timeout.ms must be in the range 45000 to 60000 inclusive.",
            ),
            (
                "consumer.heartbeat.interval.ms",
                "16000",
                "consumer.heartbeat.interval.ms must be in the range 5000 to 15000 inclusive.",
            ),
            (
                "consumer.assignment.interval.ms",
                "-1",
                "Invalid value -1 for configuration consumer.assignment.interval.ms: Value must be at least 0",
            ),
            (
                "share.record.lock.duration.ms",
                "1000",
                "share.record.lock.duration.ms must be in the range 15000 to 60000 inclusive.",
            ),
            (
                "share.partition.max.record.locks",
                "99",
                "Invalid value 99 for configuration share.partition.max.record.locks: Value must be at least 100",
            ),
            (
                "share.auto.offset.reset",
                "none",
                "Invalid value none for configuration share.auto.offset.reset: Invalid value `none` for configuration share.auto.offset.reset. The value must be either 'earliest', 'latest' or of the format 'by_duration:<PnDTnHnMn.nS>'.",
            ),
            (
                "share.isolation.level",
                "x",
                "Invalid value x for configuration share.isolation.level: String must be one of: read_committed, read_uncommitted",
            ),
            (
                "share.renew.acknowledge.enable",
                "yes",
                "Invalid value yes for configuration share.renew.acknowledge.enable: Expected value to be either true or false",
            ),
            (
                "streams.num.standby.replicas",
                "3",
                "streams.num.standby.replicas must be less than or equal to 2",
            ),
            (
                "streams.assignor.name",
                "x",
                "streams.assignor.name 'x' is not a registered task assignor. Registered assignors are: [sticky].",
            ),
            (
                "errors.deadletterqueue.topic.name",
                "__consumer_offsets",
                "errors.deadletterqueue.topic.name: DLQ topic name must not start with '__'",
            ),
        ];
        for (k, v, msg) in cases {
            assert_eq!(err(validate(&map(&[(k, v)]), &b)), msg, "{k}={v}");
        }
        // the broker's values fill what is not set
        let close = broker(&[("group.consumer.session.timeout.ms", "5000")]);
        assert_eq!(
            err(validate(&map(&[]), &close)),
            "consumer.session.timeout.ms must be greater than consumer.heartbeat.interval.ms"
        );
    }

    #[test]
    fn described_values_and_sources() {
        let b = broker(&[("group.consumer.heartbeat.interval.ms", "500")]);
        let d = describe(&map(&[("consumer.session.timeout.ms", "50000")]), &b);
        assert_eq!(d.len(), GROUP_CONFIGS.len());
        let get = |n: &str| d.iter().find(|e| e.def.name == n).unwrap();
        let s = get("consumer.session.timeout.ms");
        assert_eq!(
            (s.value.as_deref(), s.source),
            (Some("50000"), ConfigSource::GroupConfig)
        );
        let h = get("consumer.heartbeat.interval.ms");
        assert_eq!(
            (h.value.as_deref(), h.source),
            (Some("500"), ConfigSource::DefaultConfig),
            "the broker's value is the default"
        );
        assert_eq!(
            get("share.isolation.level").value.as_deref(),
            Some("read_uncommitted")
        );
    }

    #[test]
    fn effective_values_are_clamped_to_the_bounds() {
        let b = broker(&[]);
        let o = map(&[("consumer.session.timeout.ms", "90000")]);
        assert_eq!(
            effective_int(Some(&o), "consumer.session.timeout.ms", &b),
            Some(60_000)
        );
        assert_eq!(
            effective_int(Some(&o), "consumer.heartbeat.interval.ms", &b),
            None
        );
        assert_eq!(effective_int(None, "consumer.session.timeout.ms", &b), None);
    }
}
