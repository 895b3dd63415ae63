//! What a listener's connections go through before requests are served:
//! its security protocol, its TLS acceptor, its SASL settings.

use std::sync::Arc;

use super::sasl::SaslServerConfig;
use super::tls::TlsListener;
use crate::config::security::SecurityProtocol;
use crate::config::{ConfigError, KafkaConfig};

pub struct ListenerSecurity {
    /// The listener's name (`PLAINTEXT`, `SASL_SSL`, `INTERNAL`, ...).
    pub name: String,
    pub protocol: SecurityProtocol,
    pub tls: Option<TlsListener>,
    pub sasl: Option<Arc<SaslServerConfig>>,
}

impl ListenerSecurity {
    /// Loads what the listener's protocol needs (keystores, SASL users);
    /// any problem stops the start, naming the key.
    pub fn from_config(cfg: &KafkaConfig, name: &str) -> Result<ListenerSecurity, ConfigError> {
        let protocol = cfg.listener_protocol(name);
        let tls = if protocol.uses_tls() {
            Some(TlsListener::from_config(cfg, name)?)
        } else {
            None
        };
        let sasl = if protocol.uses_sasl() {
            Some(Arc::new(SaslServerConfig::from_config(cfg, name)?))
        } else {
            None
        };
        Ok(ListenerSecurity {
            name: name.to_string(),
            protocol,
            tls,
            sasl,
        })
    }

    /// Every client listener's security, in the order of `listeners`.
    /// Run before anything is written (the broker's start, `oxka storage
    /// format`), so a TLS listener without a keystore leaves the data dirs
    /// as they were.
    pub fn all_from_config(cfg: &KafkaConfig) -> Result<Vec<Arc<ListenerSecurity>>, ConfigError> {
        cfg.listeners
            .iter()
            .map(|l| ListenerSecurity::from_config(cfg, &l.name).map(Arc::new))
            .collect()
    }

    /// A PLAINTEXT listener (tests, and callers that need no protection).
    pub fn plaintext(name: &str) -> ListenerSecurity {
        ListenerSecurity {
            name: name.to_string(),
            protocol: SecurityProtocol::Plaintext,
            tls: None,
            sasl: None,
        }
    }
}
