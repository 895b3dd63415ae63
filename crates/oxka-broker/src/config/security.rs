//! Settings that ask for something oxka does not do yet stop the broker
//! before it writes anything, instead of running unprotected.
//!
//! The rule, key by key (the same one Kafka applies to decide what is in
//! force, so nothing inert is refused):
//! - A listener's security protocol (its name when that is a protocol name,
//!   else its entry in `listener.security.protocol.map`) other than
//!   PLAINTEXT: TLS and SASL are not served yet. Controller listeners are
//!   not served at all, so their protocol does not matter.
//! - `security.inter.broker.protocol` other than PLAINTEXT.
//! - `authorizer.class.name` non-empty: no ACLs are enforced yet.
//! - `max.connection.creation.rate` (and its `listener.name.<l>.` form)
//!   below its default: a limit oxka does not enforce yet.
//!   `max.connections` and `max.connections.per.ip(.overrides)` are
//!   enforced (`network/quotas`); their per-listener forms are not.
//! - `ssl.*` and `sasl.*` keys are accepted and have no effect: Kafka only
//!   applies them on SSL/SASL listeners, which the first rule refuses, so
//!   with PLAINTEXT listeners they are inert in Kafka too.

use std::collections::BTreeMap;

use super::{invalid, ConfigError, KafkaConfig};

/// Kafka's `SecurityProtocol` names.
const PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// Why a key is refused, for the error message.
fn unsupported(key: &str, value: &str, what: &str) -> ConfigError {
    ConfigError::Unsupported {
        key: key.to_string(),
        value: value.to_string(),
        what: what.to_string(),
    }
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
pub fn protocol_map(value: &str) -> Result<BTreeMap<String, String>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = entry
            .split_once(':')
            .ok_or_else(|| invalid(KEY, value, format!("'{entry}' is not NAME:PROTOCOL")))?;
        let proto = proto.trim().to_ascii_uppercase();
        if !PROTOCOLS.contains(&proto.as_str()) {
            return Err(invalid(
                KEY,
                value,
                format!("'{proto}' is not one of {}", PROTOCOLS.join(", ")),
            ));
        }
        map.insert(name.trim().to_ascii_uppercase(), proto);
    }
    Ok(map)
}

/// Refuses the first setting that asks for protection or a limit oxka
/// does not give (see the module doc for the rule).
pub fn check(cfg: &KafkaConfig) -> Result<(), ConfigError> {
    const MAP: &str = "listener.security.protocol.map";
    let map_value = cfg.value(MAP).unwrap_or_default();
    let map = protocol_map(&map_value)?;
    let listeners_value = cfg.value("listeners").unwrap_or_default();
    for l in &cfg.listeners {
        // The key to name is the one the operator wrote: the map when set,
        // else `listeners` (its default maps each protocol name to itself).
        let (proto, key, value) = match map.get(&l.name) {
            Some(p) if cfg.is_explicit(MAP) => (p.clone(), MAP, map_value.as_str()),
            Some(p) => (p.clone(), "listeners", listeners_value.as_str()),
            None if PROTOCOLS.contains(&l.name.as_str()) => {
                (l.name.clone(), "listeners", listeners_value.as_str())
            }
            None => {
                return Err(invalid(
                    MAP,
                    &map_value,
                    format!("no security protocol defined for listener {}", l.name),
                ))
            }
        };
        if proto != "PLAINTEXT" {
            return Err(unsupported(
                key,
                value,
                &format!("{proto} on listener {} (TLS/SASL)", l.name),
            ));
        }
    }
    let inter = cfg
        .value("security.inter.broker.protocol")
        .unwrap_or_default();
    if !inter.is_empty() && !inter.eq_ignore_ascii_case("PLAINTEXT") {
        return Err(unsupported(
            "security.inter.broker.protocol",
            &inter,
            "TLS/SASL between brokers",
        ));
    }
    let authorizer = cfg.value("authorizer.class.name").unwrap_or_default();
    if !authorizer.trim().is_empty() {
        return Err(unsupported(
            "authorizer.class.name",
            &authorizer,
            "an authorizer (ACLs)",
        ));
    }
    check_limit(
        "max.connection.creation.rate",
        cfg.value("max.connection.creation.rate"),
    )
}

/// `max.connection.creation.rate`: anything below Kafka's default (no
/// limit) asks for a limit oxka does not enforce yet.
pub fn check_limit(key: &str, value: Option<String>) -> Result<(), ConfigError> {
    match value {
        Some(v) if v.trim() != i32::MAX.to_string() => {
            Err(unsupported(key, &v, "a connection creation rate limit"))
        }
        _ => Ok(()),
    }
}

/// Keys outside the broker table that ask for something oxka does not
/// do: the per-listener forms of the connection limits.
pub fn check_unknown_key(key: &str, value: &str) -> Result<(), ConfigError> {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return Ok(());
    };
    let Some((_, config)) = rest.split_once('.') else {
        return Ok(());
    };
    match config {
        "max.connections" | "max.connection.creation.rate" => {
            Err(unsupported(key, value, "a per-listener connection limit"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn start(kv: &[(&str, &str)]) -> Result<KafkaConfig, ConfigError> {
        let props = kv
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        KafkaConfig::from_props(props).map(|(c, _)| c)
    }

    fn refused_key(kv: &[(&str, &str)]) -> String {
        match start(kv) {
            Err(ConfigError::Unsupported { key, .. }) => key,
            other => panic!("{kv:?}: {other:?}"),
        }
    }

    #[test]
    fn protection_asked_for_is_refused() {
        assert_eq!(
            refused_key(&[
                ("listeners", "INTERNAL://:9092"),
                ("listener.security.protocol.map", "INTERNAL:SASL_SSL"),
            ]),
            "listener.security.protocol.map"
        );
        assert_eq!(refused_key(&[("listeners", "SSL://:9093")]), "listeners");
        assert_eq!(
            refused_key(&[("listeners", "PLAINTEXT://:1,SASL_PLAINTEXT://:2")]),
            "listeners"
        );
        assert_eq!(
            refused_key(&[("authorizer.class.name", "x.Authorizer")]),
            "authorizer.class.name"
        );
        assert_eq!(
            refused_key(&[("security.inter.broker.protocol", "SSL")]),
            "security.inter.broker.protocol"
        );
        assert_eq!(
            refused_key(&[("max.connection.creation.rate", "10")]),
            "max.connection.creation.rate"
        );
        assert_eq!(
            refused_key(&[("listener.name.plaintext.max.connections", "10")]),
            "listener.name.plaintext.max.connections"
        );
    }

    #[test]
    fn inert_settings_are_accepted() {
        start(&[
            ("listeners", "INTERNAL://:9092,CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER"),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,CONTROLLER:SASL_SSL",
            ),
            ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
            ("ssl.keystore.location", "/etc/kafka/ks.jks"),
            ("ssl.client.auth", "required"),
            ("authorizer.class.name", ""),
            ("max.connections", "100"),
        ])
        .unwrap();
        // a listener name no protocol is defined for is refused, as Kafka does
        assert!(matches!(
            start(&[("listeners", "INTERNAL://:9092")]),
            Err(ConfigError::Invalid { key, .. }) if key == "listener.security.protocol.map"
        ));
    }
}
