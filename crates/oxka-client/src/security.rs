//! TLS and SASL on the client's connections, configured with Kafka's
//! client property names (`security.protocol`, `ssl.truststore.*`,
//! `ssl.keystore.*`, `sasl.mechanism`, `sasl.jaas.config`), so a Java
//! `client.properties` works unchanged.
//!
//! Keystores and truststores are PEM (`ssl.*.type=PEM`, or unset with a
//! PEM file). Mechanisms: PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, whose user
//! name and password come from `sasl.jaas.config` (Kafka's
//! PlainLoginModule / ScramLoginModule) or librdkafka's `sasl.username` /
//! `sasl.password`; OAUTHBEARER with unsecured tokens (`sasl/oauthbearer`:
//! the OAuthBearerLoginModule's `unsecuredLogin*` options, or librdkafka's
//! `sasl.oauthbearer.config`). Not done: hostname verification cannot be
//! switched off (`ssl.endpoint.identification.algorithm` is always
//! `https`).

use std::sync::Arc;

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::ClientConfig;
use crate::error::{Error, Result};
use crate::sasl::jaas;
use crate::sasl::scram::ScramMechanism;

/// A SASL mechanism the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl SaslMechanism {
    pub fn name(self) -> &'static str {
        match self {
            SaslMechanism::Plain => "PLAIN",
            SaslMechanism::Scram(m) => m.name(),
            SaslMechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// The user a SASL connection authenticates as.
#[derive(Clone)]
pub struct SaslCredentials {
    pub mechanism: SaslMechanism,
    /// The user (PLAIN, SCRAM) or the tokens' principal (OAUTHBEARER).
    pub username: String,
    /// Empty for OAUTHBEARER.
    pub password: String,
    /// OAUTHBEARER: what each token says.
    pub oauthbearer: Option<crate::sasl::oauthbearer::UnsecuredLogin>,
}

impl std::fmt::Debug for SaslCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslCredentials")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .finish_non_exhaustive()
    }
}

/// How connections are protected: TLS when `tls` is set, SASL when `sasl` is.
#[derive(Clone, Default)]
pub struct ClientSecurity {
    pub tls: Option<Arc<rustls::ClientConfig>>,
    pub sasl: Option<SaslCredentials>,
}

impl std::fmt::Debug for ClientSecurity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientSecurity")
            .field("tls", &self.tls.is_some())
            .field("sasl", &self.sasl)
            .finish()
    }
}

fn read_pem(cfg: &ClientConfig, location_key: &str, inline_key: &str) -> Result<Option<Vec<u8>>> {
    if let Some(path) = cfg.get(location_key).filter(|p| !p.trim().is_empty()) {
        return std::fs::read(path.trim())
            .map(Some)
            .map_err(|e| cfg.bad(location_key, format!("cannot read: {e}")));
    }
    Ok(cfg
        .get(inline_key)
        .filter(|v| !v.trim().is_empty())
        .map(|v| v.as_bytes().to_vec()))
}

fn pem_type(cfg: &ClientConfig, key: &str) -> Result<()> {
    match cfg.get(key) {
        None => Ok(()),
        Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(()),
        Some(_) => Err(cfg.bad(key, "only PEM stores are supported (set it to PEM)")),
    }
}

impl ClientSecurity {
    /// No TLS, no SASL.
    pub fn plaintext() -> ClientSecurity {
        ClientSecurity::default()
    }

    pub fn from_config(cfg: &ClientConfig) -> Result<ClientSecurity> {
        let protocol = cfg
            .get("security.protocol")
            .unwrap_or("PLAINTEXT")
            .trim()
            .to_ascii_uppercase();
        let (tls, sasl) = match protocol.as_str() {
            "PLAINTEXT" => (false, false),
            "SSL" => (true, false),
            "SASL_PLAINTEXT" => (false, true),
            "SASL_SSL" => (true, true),
            _ => {
                return Err(cfg.bad(
                    "security.protocol",
                    "expected PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL",
                ))
            }
        };
        Ok(ClientSecurity {
            tls: if tls { Some(tls_config(cfg)?) } else { None },
            sasl: if sasl {
                Some(sasl_credentials(cfg)?)
            } else {
                None
            },
        })
    }
}

fn tls_config(cfg: &ClientConfig) -> Result<Arc<rustls::ClientConfig>> {
    if let Some(alg) = cfg.get("ssl.endpoint.identification.algorithm") {
        if !alg.eq_ignore_ascii_case("https") {
            return Err(cfg.bad(
                "ssl.endpoint.identification.algorithm",
                "only https (hostname verification) is supported",
            ));
        }
    }
    pem_type(cfg, "ssl.truststore.type")?;
    let trust = read_pem(cfg, "ssl.truststore.location", "ssl.truststore.certificates")?
        .ok_or_else(|| {
            cfg.bad(
                "ssl.truststore.location",
                "TLS needs the CA certificates in PEM (ssl.truststore.location or ssl.truststore.certificates)",
            )
        })?;
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(&trust) {
        let cert = cert.map_err(|e| cfg.bad("ssl.truststore.location", e.to_string()))?;
        roots
            .add(cert)
            .map_err(|e| cfg.bad("ssl.truststore.location", e.to_string()))?;
    }
    if roots.is_empty() {
        return Err(cfg.bad("ssl.truststore.location", "no certificate in it"));
    }
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| cfg.bad("ssl.enabled.protocols", e.to_string()))?
        .with_root_certificates(roots);
    pem_type(cfg, "ssl.keystore.type")?;
    let keystore = match read_pem(
        cfg,
        "ssl.keystore.location",
        "ssl.keystore.certificate.chain",
    )? {
        Some(mut pem) if cfg.get("ssl.keystore.location").is_none() => {
            pem.push(b'\n');
            pem.extend_from_slice(cfg.get("ssl.keystore.key").unwrap_or_default().as_bytes());
            Some(pem)
        }
        other => other,
    };
    let config = match keystore {
        None => builder.with_no_client_auth(),
        Some(pem) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
                .collect::<std::result::Result<_, _>>()
                .map_err(|e| cfg.bad("ssl.keystore.location", e.to_string()))?;
            let key = PrivateKeyDer::from_pem_slice(&pem)
                .map_err(|e| cfg.bad("ssl.keystore.location", format!("no private key: {e}")))?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| cfg.bad("ssl.keystore.location", e.to_string()))?
        }
    };
    Ok(Arc::new(config))
}

fn sasl_credentials(cfg: &ClientConfig) -> Result<SaslCredentials> {
    let name = cfg.get("sasl.mechanism").unwrap_or("GSSAPI").trim();
    let mechanism = match name {
        "PLAIN" => SaslMechanism::Plain,
        "OAUTHBEARER" => return oauthbearer_credentials(cfg),
        other => ScramMechanism::from_name(other)
            .map(SaslMechanism::Scram)
            .ok_or_else(|| {
                cfg.bad(
                    "sasl.mechanism",
                    "oxka-client speaks PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 and OAUTHBEARER",
                )
            })?,
    };
    let (mut username, mut password) = (
        cfg.get("sasl.username").map(str::to_string),
        cfg.get("sasl.password").map(str::to_string),
    );
    if let Some(j) = cfg.get("sasl.jaas.config") {
        // the value holds a password: never echoed in the error
        let entries = jaas::parse(j).map_err(|e| Error::Config {
            key: "sasl.jaas.config".into(),
            value: "(hidden)".into(),
            reason: e,
        })?;
        if let Some(e) = entries.first() {
            username = e.options.get("username").cloned().or(username);
            password = e.options.get("password").cloned().or(password);
        }
    }
    match (username, password) {
        (Some(username), Some(password)) => Ok(SaslCredentials {
            mechanism,
            username,
            password,
            oauthbearer: None,
        }),
        _ => Err(Error::Config {
            key: "sasl.jaas.config".into(),
            value: "(hidden)".into(),
            reason: format!(
                "{} needs username and password (sasl.jaas.config, or sasl.username and sasl.password)",
                mechanism.name()
            ),
        }),
    }
}

/// OAUTHBEARER with unsecured tokens: the first JAAS entry's
/// `unsecuredLogin*` options (Kafka's OAuthBearerLoginModule), else
/// librdkafka's `sasl.oauthbearer.config`.
fn oauthbearer_credentials(cfg: &ClientConfig) -> Result<SaslCredentials> {
    let bad = |key: &str, reason: String| Error::Config {
        key: key.into(),
        value: "(hidden)".into(),
        reason,
    };
    let login = match (cfg.get("sasl.jaas.config"), cfg.get("sasl.oauthbearer.config")) {
        (Some(j), _) => {
            let entries = jaas::parse(j).map_err(|e| bad("sasl.jaas.config", e))?;
            let options = entries.first().map(|e| e.options.clone()).unwrap_or_default();
            crate::sasl::oauthbearer::UnsecuredLogin::from_jaas(&options)
                .map_err(|e| bad("sasl.jaas.config", e))?
        }
        (None, Some(c)) => crate::sasl::oauthbearer::UnsecuredLogin::from_librdkafka(c)
            .map_err(|e| bad("sasl.oauthbearer.config", e))?,
        (None, None) => {
            return Err(bad(
                "sasl.jaas.config",
                "OAUTHBEARER needs OAuthBearerLoginModule's unsecuredLoginStringClaim_sub (or sasl.oauthbearer.config principal=...)".into(),
            ))
        }
    };
    let username = login
        .principal()
        .map_err(|e| bad("sasl.jaas.config", e))?
        .to_string();
    Ok(SaslCredentials {
        mechanism: SaslMechanism::OAuthBearer,
        username,
        password: String::new(),
        oauthbearer: Some(login),
    })
}
