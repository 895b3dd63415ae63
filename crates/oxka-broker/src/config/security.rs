//! Listeners' security protocols, and the start-up rule for settings that
//! ask for protection oxka does not give: those stop the
//! broker before it writes anything, instead of running unprotected.
//!
//! Protocols: a listener's security protocol is its entry in
//! `listener.security.protocol.map`, or its name when that is a protocol
//! name (Kafka's rule). PLAINTEXT, SSL, SASL_PLAINTEXT and SASL_SSL are
//! served (`network/tls`, `network/sasl`). Per-listener settings are
//! `listener.name.<listener>.<key>`, read before the unprefixed key.
//!
//! Brokers reach each other (replica fetchers, transaction markers, the
//! console's and consumer lag's internal clients) on the
//! inter-broker listener (`inter.broker.listener.name`, else the listener
//! named as `security.inter.broker.protocol`) with its protocol: the
//! listener's truststore (and keystore when it asks for client
//! certificates), `sasl.mechanism.inter.broker.protocol` with the user of
//! `listener.name.<l>.<mechanism>.sasl.jaas.config` (`username`,
//! `password`), as Kafka's brokers do.
//!
//! Refused (the same rule Kafka applies to decide what is in force, so
//! nothing inert is refused): `authorizer.class.name` other than empty,
//! Kafka's StandardAuthorizer or its alias `oxka` (crate::authorizer): no
//! other authorizer exists. The connection limits and their per-listener
//! forms are enforced (`network/quotas`).

use std::collections::BTreeMap;
use std::fmt;

use super::{invalid, ConfigError, KafkaConfig};

/// Kafka's `SecurityProtocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecurityProtocol {
    Plaintext,
    Ssl,
    SaslPlaintext,
    SaslSsl,
}

/// Kafka's `SecurityProtocol` names.
const PROTOCOLS: &[&str] = &["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

impl SecurityProtocol {
    /// By Kafka's name, case-insensitively.
    pub fn parse(name: &str) -> Option<SecurityProtocol> {
        match name.trim().to_ascii_uppercase().as_str() {
            "PLAINTEXT" => Some(SecurityProtocol::Plaintext),
            "SSL" => Some(SecurityProtocol::Ssl),
            "SASL_PLAINTEXT" => Some(SecurityProtocol::SaslPlaintext),
            "SASL_SSL" => Some(SecurityProtocol::SaslSsl),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SecurityProtocol::Plaintext => "PLAINTEXT",
            SecurityProtocol::Ssl => "SSL",
            SecurityProtocol::SaslPlaintext => "SASL_PLAINTEXT",
            SecurityProtocol::SaslSsl => "SASL_SSL",
        }
    }

    /// Whether connections are wrapped in TLS.
    pub fn uses_tls(self) -> bool {
        matches!(self, SecurityProtocol::Ssl | SecurityProtocol::SaslSsl)
    }

    /// Whether clients authenticate with SASL before anything is served.
    pub fn uses_sasl(self) -> bool {
        matches!(
            self,
            SecurityProtocol::SaslPlaintext | SecurityProtocol::SaslSsl
        )
    }
}

impl fmt::Display for SecurityProtocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a key is refused, for the error message.
fn unsupported(key: &str, value: &str, what: &str) -> ConfigError {
    ConfigError::Unsupported {
        key: key.to_string(),
        value: value.to_string(),
        what: what.to_string(),
    }
}

/// Parses `listener.security.protocol.map` (`NAME:PROTOCOL,...`).
pub fn protocol_map(value: &str) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let mut map = BTreeMap::new();
    for entry in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (name, proto) = entry
            .split_once(':')
            .ok_or_else(|| invalid(KEY, value, format!("'{entry}' is not NAME:PROTOCOL")))?;
        let proto = SecurityProtocol::parse(proto).ok_or_else(|| {
            invalid(
                KEY,
                value,
                format!("'{}' is not one of {}", proto.trim(), PROTOCOLS.join(", ")),
            )
        })?;
        map.insert(name.trim().to_ascii_uppercase(), proto);
    }
    Ok(map)
}

/// The security protocol of each client listener, by listener name.
pub fn listener_protocols(
    cfg: &KafkaConfig,
) -> Result<BTreeMap<String, SecurityProtocol>, ConfigError> {
    const MAP: &str = "listener.security.protocol.map";
    let map_value = cfg.value(MAP).unwrap_or_default();
    let map = protocol_map(&map_value)?;
    let mut out = BTreeMap::new();
    for l in &cfg.listeners {
        let proto = match map.get(&l.name) {
            Some(p) => *p,
            None => SecurityProtocol::parse(&l.name).ok_or_else(|| {
                invalid(
                    MAP,
                    &map_value,
                    format!("no security protocol defined for listener {}", l.name),
                )
            })?,
        };
        out.insert(l.name.clone(), proto);
    }
    Ok(out)
}

/// The inter-broker listener (Kafka's `interBrokerListenerName`):
/// `inter.broker.listener.name`, else the client listener named as
/// `security.inter.broker.protocol`; `None` when there is no such
/// listener (the first registered endpoint is used then, as before).
pub fn inter_broker_listener(cfg: &KafkaConfig) -> Result<Option<String>, ConfigError> {
    const NAME: &str = "inter.broker.listener.name";
    const PROTO: &str = "security.inter.broker.protocol";
    if cfg.is_explicit(NAME) && cfg.is_explicit(PROTO) {
        return Err(invalid(
            NAME,
            &cfg.value(NAME).unwrap_or_default(),
            format!("only one of {NAME} and {PROTO} may be set"),
        ));
    }
    if let Some(name) = cfg.value(NAME).filter(|n| !n.trim().is_empty()) {
        let name = name.trim().to_ascii_uppercase();
        if cfg.kraft.broker && !cfg.listeners.iter().any(|l| l.name == name) {
            return Err(invalid(
                NAME,
                &name,
                "the inter-broker listener must be one of the client listeners in 'listeners'",
            ));
        }
        return Ok(Some(name));
    }
    let proto = cfg.value(PROTO).unwrap_or_default().to_ascii_uppercase();
    Ok(cfg
        .listeners
        .iter()
        .find(|l| l.name == proto)
        .map(|l| l.name.clone()))
}

/// How this broker connects as a client to the inter-broker listener:
/// Kafka's client keys for the listener's protocol, TLS trust (and
/// keystore when it asks for client certificates) and SASL user, and the
/// same parsed. Every connection a broker opens to a broker's Kafka
/// listener uses it: replica fetchers, transaction markers, and the
/// internal admin clients and consumers (`crate::internal_client`).
#[derive(Clone, Default)]
pub struct InterBrokerClient {
    /// `security.protocol`, `ssl.*`, `sasl.mechanism`, `sasl.jaas.config`.
    pub settings: oxka_client::ClientConfig,
    /// `settings` parsed (certificates read once, at start-up).
    pub security: oxka_client::security::ClientSecurity,
}

impl fmt::Debug for InterBrokerClient {
    // the settings hold the SASL password: only the parsed side is shown
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InterBrokerClient")
            .field("security", &self.security)
            .finish_non_exhaustive()
    }
}

/// The client side of the inter-broker listener (the first client
/// listener when none is named, the endpoint other brokers then reach),
/// built as a client config with Kafka's client keys from the listener's
/// settings, so a missing truststore or user is named by its key.
pub fn inter_broker_client(cfg: &KafkaConfig) -> Result<InterBrokerClient, ConfigError> {
    let Some(listener) = cfg.inter_broker_endpoint_listener().map(str::to_string) else {
        return Ok(Default::default());
    };
    let proto = cfg.listener_protocol(&listener);
    let mut client = oxka_client::ClientConfig::new();
    client.set("security.protocol", proto.name());
    // only what the operator set: Kafka's JKS defaults are not the client's
    let mut copy = |key: &str| {
        let set = cfg
            .listener_only(&listener, key)
            .or_else(|| cfg.is_explicit(key).then(|| cfg.value(key)).flatten());
        if let Some(v) = set.filter(|v| !v.trim().is_empty()) {
            client.set(key, v);
        }
    };
    if proto.uses_tls() {
        for key in [
            "ssl.truststore.type",
            "ssl.truststore.location",
            "ssl.truststore.certificates",
        ] {
            copy(key);
        }
        let client_auth = cfg
            .listener_value(&listener, "ssl.client.auth")
            .unwrap_or_default();
        if !client_auth.eq_ignore_ascii_case("none") {
            for key in [
                "ssl.keystore.type",
                "ssl.keystore.location",
                "ssl.keystore.certificate.chain",
                "ssl.keystore.key",
            ] {
                copy(key);
            }
        }
    }
    const MECHANISM: &str = "sasl.mechanism.inter.broker.protocol";
    let mechanism = cfg.value(MECHANISM).unwrap_or_default();
    if proto.uses_sasl() {
        client.set("sasl.mechanism", mechanism.trim());
        let jaas_key = format!("{}.sasl.jaas.config", mechanism.trim().to_ascii_lowercase());
        if let Some(j) = cfg.listener_only(&listener, &jaas_key) {
            client.set("sasl.jaas.config", j);
        }
    }
    match oxka_client::security::ClientSecurity::from_config(&client) {
        Ok(security) => Ok(InterBrokerClient {
            settings: client,
            security,
        }),
        Err(oxka_client::Error::Config { key, reason, .. }) => {
            let key = match key.as_str() {
                "sasl.mechanism" => MECHANISM.to_string(),
                "sasl.jaas.config" => format!(
                    "listener.name.{}.{}.sasl.jaas.config",
                    listener.to_ascii_lowercase(),
                    mechanism.trim().to_ascii_lowercase()
                ),
                _ => key,
            };
            Err(invalid(
                &key,
                "",
                format!("the inter-broker listener {listener} ({proto}): {reason}"),
            ))
        }
        Err(other) => Err(invalid(
            "inter.broker.listener.name",
            &listener,
            other.to_string(),
        )),
    }
}

/// Refuses the first setting that asks for protection oxka does not give
/// (see the module doc for the rule). Runs once the listeners, their
/// protocols and the quorum settings are known.
pub fn check(cfg: &KafkaConfig) -> Result<(), ConfigError> {
    let authorizer = cfg.value("authorizer.class.name").unwrap_or_default();
    if !authorizer.trim().is_empty() && !crate::authorizer::is_known_authorizer(&authorizer) {
        return Err(unsupported(
            "authorizer.class.name",
            &authorizer,
            "an authorizer other than Kafka's StandardAuthorizer (org.apache.kafka.metadata.authorizer.StandardAuthorizer, alias oxka)",
        ));
    }
    Ok(())
}

/// The broker configs Kafka reads per listener as well
/// (`SocketServer.ListenerReconfigurableConfigs`, KIP-402/612): their
/// `listener.name.<l>.` form takes the broker key's type and validator.
pub const LISTENER_CONNECTION_CONFIGS: &[&str] =
    &["max.connections", "max.connection.creation.rate"];

/// For a `listener.name.<l>.<key>` key: the broker key when it is one of
/// [`LISTENER_CONNECTION_CONFIGS`].
pub fn listener_connection_config(key: &str) -> Option<&'static str> {
    let (_, config) = key.strip_prefix("listener.name.")?.split_once('.')?;
    LISTENER_CONNECTION_CONFIGS
        .iter()
        .find(|c| **c == config)
        .copied()
}

/// Keys outside the broker table: the per-listener connection limits are
/// checked as their broker keys are.
pub fn check_unknown_key(key: &str, value: &str) -> Result<(), ConfigError> {
    match listener_connection_config(key).and_then(super::defs::broker_def) {
        Some(def) => def
            .validate(value)
            .map_err(|reason| invalid(key, value, reason)),
        None => Ok(()),
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
            refused_key(&[("authorizer.class.name", "x.Authorizer")]),
            "authorizer.class.name"
        );
        let cluster = [
            ("node.id", "1"),
            (
                "controller.quorum.voters",
                "1@localhost:9093,2@localhost:9095",
            ),
            ("controller.listener.names", "CONTROLLER"),
        ];
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut kv = cluster.to_vec();
            kv.extend_from_slice(extra);
            kv
        };
        // a TLS inter-broker listener needs a truststore, a SASL one a
        // mechanism the fetchers speak and its user
        let invalid_key = |kv: &[(&str, &str)]| match start(kv) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("{kv:?}: {other:?}"),
        };
        assert_eq!(
            invalid_key(&with(&[
                (
                    "listeners",
                    "PLAINTEXT://:9092,SSL://:9094,CONTROLLER://:9093"
                ),
                ("security.inter.broker.protocol", "SSL"),
            ])),
            "ssl.truststore.location"
        );
        let sasl = [
            ("listeners", "INTERNAL://:9092,CONTROLLER://:9093"),
            (
                "listener.security.protocol.map",
                "INTERNAL:SASL_PLAINTEXT,CONTROLLER:PLAINTEXT",
            ),
            ("inter.broker.listener.name", "INTERNAL"),
        ];
        assert_eq!(
            invalid_key(&with(&sasl)),
            "sasl.mechanism.inter.broker.protocol"
        );
        let c = start(&with(
            &[
                &sasl[..],
                &[
                    ("sasl.mechanism.inter.broker.protocol", "PLAIN"),
                    (
                        "listener.name.internal.plain.sasl.jaas.config",
                        "org.apache.kafka.common.security.plain.PlainLoginModule required username=\"admin\" password=\"pw\" user_admin=\"pw\";",
                    ),
                ],
            ]
            .concat(),
        ))
        .unwrap();
        let user = c
            .inter_broker_security()
            .sasl
            .expect("SASL between brokers");
        assert_eq!(
            (user.username.as_str(), user.password.as_str()),
            ("admin", "pw")
        );
        // the connection limits are enforced (network::quotas); their
        // per-listener forms are checked as the broker keys
        start(&[
            ("max.connection.creation.rate", "10"),
            ("listener.name.plaintext.max.connections", "10"),
            ("listener.name.plaintext.max.connection.creation.rate", "3"),
        ])
        .unwrap();
        assert!(matches!(
            start(&[("listener.name.plaintext.max.connections", "x")]),
            Err(ConfigError::Invalid { key, .. }) if key == "listener.name.plaintext.max.connections"
        ));
    }

    #[test]
    fn listener_protocols_resolve() {
        let c = start(&[
            ("listeners", "SSL://:9093,SASL_SSL://:9094,INTERNAL://:9095"),
            (
                "listener.security.protocol.map",
                "INTERNAL:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL",
            ),
            ("security.inter.broker.protocol", "SSL"),
            ("listener.name.internal.sasl.enabled.mechanisms", "PLAIN"),
        ])
        .unwrap();
        assert_eq!(c.listener_protocol("SSL"), SecurityProtocol::Ssl);
        assert_eq!(c.listener_protocol("SASL_SSL"), SecurityProtocol::SaslSsl);
        assert_eq!(
            c.listener_protocol("INTERNAL"),
            SecurityProtocol::SaslPlaintext
        );
        assert_eq!(c.inter_broker_listener.as_deref(), Some("SSL"));
        assert_eq!(
            c.listener_value("INTERNAL", "sasl.enabled.mechanisms")
                .as_deref(),
            Some("PLAIN")
        );
        assert_eq!(
            c.listener_value("SSL", "sasl.enabled.mechanisms")
                .as_deref(),
            Some("GSSAPI")
        );
        // both inter-broker keys at once are refused, as Kafka does
        assert!(matches!(
            start(&[
                ("listeners", "PLAINTEXT://:9092"),
                ("security.inter.broker.protocol", "PLAINTEXT"),
                ("inter.broker.listener.name", "PLAINTEXT"),
            ]),
            Err(ConfigError::Invalid { .. })
        ));
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
