//! Client configuration by Kafka's property names, so a user's existing
//! `client.properties` / `producer.properties` works unchanged.
//!
//! The map is kept as strings (as Kafka does) and each component parses the
//! keys it uses when it is built, so a bad value fails at construction with
//! the key named, not later in the middle of a send.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use crate::error::{Error, Result};

/// Kafka client properties (`bootstrap.servers`, `acks`, `group.id`, ...).
///
/// ```
/// use oxka_client::ClientConfig;
/// let mut cfg = ClientConfig::new();
/// cfg.set("bootstrap.servers", "localhost:9092").set("linger.ms", "5");
/// assert_eq!(cfg.get("linger.ms"), Some("5"));
/// ```
#[derive(Debug, Clone, Default)]
pub struct ClientConfig {
    props: BTreeMap<String, String>,
}

impl ClientConfig {
    /// An empty config: every key takes Kafka's default.
    pub fn new() -> ClientConfig {
        ClientConfig::default()
    }

    /// A config holding only `bootstrap.servers`.
    pub fn with_bootstrap(servers: impl Into<String>) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", servers);
        c
    }

    /// Reads a Java properties file (escapes, continuations, `:` or `=`).
    pub fn from_properties_file(path: impl AsRef<Path>) -> Result<ClientConfig> {
        let path = path.as_ref();
        let file = std::fs::File::open(path).map_err(|source| Error::ConfigFile {
            path: path.display().to_string(),
            source,
        })?;
        let map = java_properties::read(std::io::BufReader::new(file)).map_err(|e| {
            Error::ConfigFile {
                path: path.display().to_string(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string()),
            }
        })?;
        Ok(ClientConfig {
            props: map.into_iter().collect(),
        })
    }

    /// Sets a property; returns `self` for chaining.
    pub fn set(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut ClientConfig {
        self.props.insert(key.into(), value.into());
        self
    }

    /// Removes a property (it falls back to its default).
    pub fn remove(&mut self, key: &str) -> Option<String> {
        self.props.remove(key)
    }

    /// The raw value of a property, if set.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.props.get(key).map(|s| s.trim())
    }

    /// Every property that was set.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.props.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Copies `other`'s properties over this one's.
    pub fn merge(&mut self, other: &ClientConfig) {
        for (k, v) in other.iter() {
            self.set(k, v);
        }
    }

    pub(crate) fn bad(&self, key: &str, reason: impl Into<String>) -> Error {
        Error::Config {
            key: key.to_string(),
            value: self.get(key).unwrap_or_default().to_string(),
            reason: reason.into(),
        }
    }

    /// A string property with a default.
    pub fn get_str<'a>(&'a self, key: &str, default: &'a str) -> &'a str {
        self.get(key).unwrap_or(default)
    }

    /// An integer property with a default and inclusive bounds.
    pub fn get_i64(&self, key: &str, default: i64, min: i64, max: i64) -> Result<i64> {
        let Some(raw) = self.get(key) else {
            return Ok(default);
        };
        let v: i64 = raw
            .parse()
            .map_err(|_| self.bad(key, "expected an integer"))?;
        if v < min || v > max {
            return Err(self.bad(key, format!("must be between {min} and {max}")));
        }
        Ok(v)
    }

    /// A millisecond property as a `Duration`.
    pub fn get_ms(&self, key: &str, default: u64) -> Result<Duration> {
        let v = self.get_i64(key, default as i64, 0, i64::MAX)?;
        Ok(Duration::from_millis(v as u64))
    }

    /// A boolean property (`true`/`false`, case-insensitive).
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool> {
        match self.get(key).map(|s| s.to_ascii_lowercase()) {
            None => Ok(default),
            Some(s) if s == "true" => Ok(true),
            Some(s) if s == "false" => Ok(false),
            Some(_) => Err(self.bad(key, "expected true or false")),
        }
    }

    /// A comma-separated list property.
    pub fn get_list(&self, key: &str) -> Vec<String> {
        self.get(key)
            .map(|s| {
                s.split(',')
                    .map(|p| p.trim().to_string())
                    .filter(|p| !p.is_empty())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for ClientConfig {
    fn from_iter<T: IntoIterator<Item = (K, V)>>(iter: T) -> Self {
        ClientConfig {
            props: iter
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        }
    }
}

/// Settings every client (admin, producer, consumer) shares.
#[derive(Debug, Clone)]
pub(crate) struct CommonConfig {
    pub bootstrap: Vec<String>,
    pub client_id: String,
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    pub metadata_max_age: Duration,
    pub retry_backoff: Duration,
    pub max_response_size: usize,
    /// TLS and SASL for every connection (`security.protocol` and friends).
    pub security: crate::security::ClientSecurity,
}

impl CommonConfig {
    pub fn parse(cfg: &ClientConfig, default_client_id: &str) -> Result<CommonConfig> {
        let bootstrap = cfg.get_list("bootstrap.servers");
        if bootstrap.is_empty() {
            return Err(Error::Config {
                key: "bootstrap.servers".into(),
                value: String::new(),
                reason: "required: a comma-separated list of host:port".into(),
            });
        }
        for b in &bootstrap {
            if b.rsplit_once(':')
                .and_then(|(_, p)| p.parse::<u16>().ok())
                .is_none()
            {
                return Err(cfg.bad("bootstrap.servers", format!("`{b}` is not host:port")));
            }
        }
        let security = crate::security::ClientSecurity::from_config(cfg)?;
        Ok(CommonConfig {
            security,
            bootstrap,
            client_id: cfg.get_str("client.id", default_client_id).to_string(),
            request_timeout: cfg.get_ms("request.timeout.ms", 30_000)?,
            connect_timeout: cfg.get_ms("socket.connection.setup.timeout.ms", 10_000)?,
            metadata_max_age: cfg.get_ms("metadata.max.age.ms", 300_000)?,
            retry_backoff: cfg.get_ms("retry.backoff.ms", 100)?,
            // Java's default fetch.max.bytes is 50 MiB; allow headroom and
            // never trust a 2 GiB size prefix from the wire.
            max_response_size: cfg.get_i64(
                "oxka.max.response.bytes",
                256 << 20,
                1024,
                i32::MAX as i64,
            )? as usize,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_properties_file_with_escapes() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "# comment\nbootstrap.servers = a:9092,\\\n  b:9093\nclient.id: tool\nlinger.ms=7"
        )
        .unwrap();
        let cfg = ClientConfig::from_properties_file(f.path()).unwrap();
        assert_eq!(cfg.get_list("bootstrap.servers"), vec!["a:9092", "b:9093"]);
        assert_eq!(cfg.get("client.id"), Some("tool"));
        assert_eq!(cfg.get_i64("linger.ms", 0, 0, 100).unwrap(), 7);
    }

    #[test]
    fn bad_values_name_the_key() {
        let cfg: ClientConfig = [("linger.ms", "soon"), ("bootstrap.servers", "x:1")]
            .into_iter()
            .collect();
        let e = cfg.get_i64("linger.ms", 0, 0, 100).unwrap_err().to_string();
        assert!(e.contains("linger.ms") && e.contains("soon"), "{e}");
        let cfg: ClientConfig = [("bootstrap.servers", "nohost")].into_iter().collect();
        assert!(CommonConfig::parse(&cfg, "x").is_err());
        let cfg: ClientConfig = [("enable.idempotence", "maybe")].into_iter().collect();
        assert!(cfg.get_bool("enable.idempotence", true).is_err());
    }

    #[test]
    fn missing_file_is_a_typed_error() {
        let e = ClientConfig::from_properties_file("/nonexistent/x.properties").unwrap_err();
        assert!(matches!(e, Error::ConfigFile { .. }));
    }
}
