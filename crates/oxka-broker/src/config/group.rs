//! Group configs (KIP-848): per-group overrides of the coordinator's
//! settings, set with IncrementalAlterConfigs / AlterConfigs on resource
//! type GROUP (32) and read with DescribeConfigs. Kafka 4.1's `GroupConfig`
//! keys; a key's default is the broker config it overrides, and a value
//! must lie within that broker config's `min`/`max` bounds. The overrides
//! live in the metadata image (persisted like topic configs); the KIP-848
//! coordinator reads `consumer.session.timeout.ms` and
//! `consumer.heartbeat.interval.ms` from there for each group. The share
//! and streams keys are stored and described only: oxka has neither share
//! groups (KIP-932) nor streams groups (KIP-1071).

use std::collections::BTreeMap;

use super::defs::{ConfigDef, ConfigType, Validator};
use super::dynamic::AlterConfigError;
use super::{ConfigSource, ConfigSynonym, DescribedConfig, KafkaConfig};

/// One group config: its definition, the broker config it defaults to, and
/// the broker configs bounding it.
pub struct GroupConfigDef {
    /// `default` is Kafka's default of the broker config below.
    pub def: ConfigDef,
    pub broker_default: &'static str,
    /// (broker config, its Kafka default) of the lower bound, if any.
    pub min: Option<(&'static str, i64)>,
    /// (broker config, its Kafka default) of the upper bound, if any.
    pub max: Option<(&'static str, i64)>,
}

const fn int(
    name: &'static str,
    default: &'static str,
    at_least: i64,
    broker_default: &'static str,
    min: Option<(&'static str, i64)>,
    max: Option<(&'static str, i64)>,
    doc: &'static str,
) -> GroupConfigDef {
    GroupConfigDef {
        def: ConfigDef {
            name,
            ty: ConfigType::Int,
            default: Some(default),
            validator: Validator::AtLeast(at_least),
            doc,
        },
        broker_default,
        min,
        max,
    }
}

const fn string(
    name: &'static str,
    default: &'static str,
    validator: Validator,
    broker_default: &'static str,
    doc: &'static str,
) -> GroupConfigDef {
    GroupConfigDef {
        def: ConfigDef {
            name,
            ty: ConfigType::String,
            default: Some(default),
            validator,
            doc,
        },
        broker_default,
        min: None,
        max: None,
    }
}

/// Kafka 4.1's `GroupConfig` keys, in its order.
pub static GROUP_CONFIGS: &[GroupConfigDef] = &[
    int(
        "consumer.session.timeout.ms",
        "45000",
        1,
        "group.consumer.session.timeout.ms",
        Some(("group.consumer.min.session.timeout.ms", 45_000)),
        Some(("group.consumer.max.session.timeout.ms", 60_000)),
        "The timeout to detect client failures when using the consumer group protocol.",
    ),
    int(
        "consumer.heartbeat.interval.ms",
        "5000",
        1,
        "group.consumer.heartbeat.interval.ms",
        Some(("group.consumer.min.heartbeat.interval.ms", 5_000)),
        Some(("group.consumer.max.heartbeat.interval.ms", 15_000)),
        "The heartbeat interval given to the members of a consumer group.",
    ),
    int(
        "share.session.timeout.ms",
        "45000",
        1,
        "group.share.session.timeout.ms",
        Some(("group.share.min.session.timeout.ms", 45_000)),
        Some(("group.share.max.session.timeout.ms", 60_000)),
        "The timeout to detect client failures when using the share group protocol.",
    ),
    int(
        "share.heartbeat.interval.ms",
        "5000",
        1,
        "group.share.heartbeat.interval.ms",
        Some(("group.share.min.heartbeat.interval.ms", 5_000)),
        Some(("group.share.max.heartbeat.interval.ms", 15_000)),
        "The heartbeat interval given to the members of a share group.",
    ),
    int(
        "share.record.lock.duration.ms",
        "30000",
        1000,
        "group.share.record.lock.duration.ms",
        Some(("group.share.min.record.lock.duration.ms", 15_000)),
        Some(("group.share.max.record.lock.duration.ms", 60_000)),
        "The record acquisition lock duration in milliseconds for share groups.",
    ),
    string(
        "share.auto.offset.reset",
        "latest",
        Validator::None,
        "share.auto.offset.reset",
        "The strategy to initialize the share-partition start offset: earliest, latest or by_duration:<ISO-8601 duration>.",
    ),
    string(
        "share.isolation.level",
        "read_uncommitted",
        Validator::OneOf(&["read_committed", "read_uncommitted"]),
        "share.isolation.level",
        "Controls how a share group reads records written transactionally.",
    ),
    int(
        "streams.session.timeout.ms",
        "45000",
        1,
        "group.streams.session.timeout.ms",
        Some(("group.streams.min.session.timeout.ms", 45_000)),
        Some(("group.streams.max.session.timeout.ms", 60_000)),
        "The timeout to detect client failures when using the streams group protocol.",
    ),
    int(
        "streams.heartbeat.interval.ms",
        "5000",
        1,
        "group.streams.heartbeat.interval.ms",
        Some(("group.streams.min.heartbeat.interval.ms", 5_000)),
        Some(("group.streams.max.heartbeat.interval.ms", 15_000)),
        "The heartbeat interval given to the members of a streams group.",
    ),
    int(
        "streams.num.standby.replicas",
        "0",
        0,
        "group.streams.num.standby.replicas",
        None,
        Some(("group.streams.max.standby.replicas", 2)),
        "The number of standby replicas for each task of a streams group.",
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

pub fn group_def(name: &str) -> Option<&'static GroupConfigDef> {
    GROUP_CONFIGS.iter().find(|g| g.def.name == name)
}

fn broker_int(config: &KafkaConfig, key: &str, dflt: i64) -> i64 {
    config
        .value(key)
        .and_then(|v| v.trim().parse::<i64>().ok())
        .unwrap_or(dflt)
}

impl GroupConfigDef {
    /// The value a group without an override gets: the broker config's.
    pub fn broker_value(&self, config: &KafkaConfig) -> String {
        config
            .value(self.broker_default)
            .unwrap_or_else(|| self.def.default.unwrap_or_default().to_string())
    }

    fn bounds(&self, config: &KafkaConfig) -> (Option<i64>, Option<i64>) {
        (
            self.min.map(|(k, d)| broker_int(config, k, d)),
            self.max.map(|(k, d)| broker_int(config, k, d)),
        )
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
/// `GroupConfig.validate` does: every name known, every value of its type
/// and within its validator, within the broker's min/max bounds, and each
/// session timeout above its heartbeat interval (keys not set take the
/// broker's values). Errors are INVALID_CONFIG with Kafka's messages.
pub fn validate(
    configs: &BTreeMap<String, String>,
    config: &KafkaConfig,
) -> Result<(), AlterConfigError> {
    let bad = |m: String| AlterConfigError::InvalidConfig(m);
    for (k, v) in configs {
        let g = group_def(k).ok_or_else(|| bad(format!("Unknown group config name: {k}")))?;
        g.def
            .validate(v)
            .map_err(|reason| bad(format!("Invalid value {v} for configuration {k}: {reason}")))?;
        if k == "share.auto.offset.reset" && !valid_auto_offset_reset(v) {
            return Err(bad(format!(
                "Invalid value {v} for configuration {k}: must be earliest, latest or by_duration:<ISO-8601 duration>"
            )));
        }
    }
    let int_of = |g: &GroupConfigDef| -> i64 {
        configs
            .get(g.def.name)
            .cloned()
            .unwrap_or_else(|| g.broker_value(config))
            .trim()
            .parse::<i64>()
            .unwrap_or(0)
    };
    for g in GROUP_CONFIGS.iter().filter(|g| g.def.ty == ConfigType::Int) {
        let v = int_of(g);
        let (min, max) = g.bounds(config);
        if let (Some(min), Some((key, _))) = (min, g.min) {
            if v < min {
                return Err(bad(format!(
                    "{} must be greater than or equal to {key}",
                    g.def.name
                )));
            }
        }
        if let (Some(max), Some((key, _))) = (max, g.max) {
            if v > max {
                return Err(bad(format!(
                    "{} must be less than or equal to {key}",
                    g.def.name
                )));
            }
        }
    }
    for (session, heartbeat) in ORDERED {
        let (Some(s), Some(h)) = (group_def(session), group_def(heartbeat)) else {
            continue;
        };
        if int_of(s) <= int_of(h) {
            return Err(bad(format!("{session} must be greater than {heartbeat}")));
        }
    }
    Ok(())
}

/// DescribeConfigs of a group: every group config, the override
/// (GROUP_CONFIG) or the broker's value (DEFAULT_CONFIG), as Kafka's
/// `ConfigHelper` answers for resource type GROUP.
pub fn describe(
    overrides: &BTreeMap<String, String>,
    config: &KafkaConfig,
) -> Vec<DescribedConfig> {
    GROUP_CONFIGS
        .iter()
        .map(|g| {
            let (value, source) = match overrides.get(g.def.name) {
                Some(v) => (v.clone(), ConfigSource::GroupConfig),
                None => (g.broker_value(config), ConfigSource::DefaultConfig),
            };
            DescribedConfig {
                def: &g.def,
                value: Some(value.clone()),
                source,
                read_only: false,
                synonyms: vec![ConfigSynonym {
                    name: g.def.name.to_string(),
                    value: Some(value),
                    source,
                }],
            }
        })
        .collect()
}

/// The effective integer value of group config `name` for a group with
/// `overrides`: the override clamped to the broker's current bounds (they
/// may have changed since it was set), else the broker's value.
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

    #[test]
    fn validation_follows_kafka() {
        let b = broker(&[]);
        assert_eq!(validate(&map(&[]), &b), Ok(()));
        assert_eq!(
            validate(
                &map(&[
                    ("consumer.session.timeout.ms", "50000"),
                    ("consumer.heartbeat.interval.ms", "6000"),
                    ("share.auto.offset.reset", "by_duration:PT1H"),
                    ("share.isolation.level", "read_committed"),
                    ("streams.num.standby.replicas", "2"),
                ]),
                &b
            ),
            Ok(())
        );
        assert_eq!(
            err(validate(&map(&[("no.such", "1")]), &b)),
            "Unknown group config name: no.such"
        );
        assert!(
            err(validate(&map(&[("consumer.session.timeout.ms", "x")]), &b))
                .contains("consumer.session.timeout.ms")
        );
        assert_eq!(
            err(validate(&map(&[("consumer.session.timeout.ms", "1000")]), &b)),
            "consumer.session.timeout.ms must be greater than or equal to group.consumer.min.session.timeout.ms"
        );
        assert_eq!(
            err(validate(&map(&[("consumer.heartbeat.interval.ms", "16000")]), &b)),
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
        );
        assert!(err(validate(
            &map(&[("share.record.lock.duration.ms", "999")]),
            &b
        ))
        .contains("share.record.lock.duration.ms"));
        assert!(
            err(validate(&map(&[("share.auto.offset.reset", "none")]), &b))
                .contains("share.auto.offset.reset")
        );
        assert!(err(validate(&map(&[("share.isolation.level", "x")]), &b))
            .contains("share.isolation.level"));
        assert_eq!(
            err(validate(&map(&[("streams.num.standby.replicas", "3")]), &b)),
            "streams.num.standby.replicas must be less than or equal to group.streams.max.standby.replicas"
        );
        // the broker's values fill what is not set; its bounds move with it
        let wide = broker(&[
            ("group.consumer.heartbeat.interval.ms", "500"),
            ("group.consumer.session.timeout.ms", "45000"),
        ]);
        assert_eq!(
            err(validate(
                &map(&[
                    ("consumer.session.timeout.ms", "45000"),
                    ("consumer.heartbeat.interval.ms", "45000")
                ]),
                &wide
            )),
            "consumer.heartbeat.interval.ms must be less than or equal to group.consumer.max.heartbeat.interval.ms"
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
