//! TLS on SSL and SASL_SSL listeners, with rustls: PEM keystores and
//! truststores as Kafka reads them (`ssl.keystore.type=PEM` with
//! `ssl.keystore.location`, a file holding the private key and the
//! certificate chain, or `ssl.keystore.certificate.chain` and
//! `ssl.keystore.key` inline; `ssl.key.password` for an encrypted PKCS#8
//! key; `ssl.truststore.type=PEM` with `ssl.truststore.location` or
//! `ssl.truststore.certificates`), `ssl.enabled.protocols` (TLSv1.2,
//! TLSv1.3), `ssl.client.auth`, the principal from the client
//! certificate's subject through `ssl.principal.mapping.rules`.
//!
//! Keystore and truststore files are read again when their modification
//! time changes (checked at an accept at most every [`RELOAD_CHECK`]):
//! renewed certificates apply to new connections without a restart. A
//! file that does not load keeps the previous configuration in force.

pub mod subject;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use parking_lot::Mutex;
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig, ServerConnection};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::net::TcpStream;
use tokio_rustls::server::TlsStream;

use super::principal::KafkaPrincipal;
use crate::config::{ConfigError, KafkaConfig};

/// How often an accept looks at the keystore's and truststore's files.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// A TLS handshake (and, on SASL listeners, the authentication) must end
/// within this time after the connection is accepted; a client that
/// stalls is closed instead of holding a connection slot for the idle
/// timeout.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

/// The listener's TLS settings, as read from the config.
#[derive(Debug, Clone)]
struct TlsSettings {
    listener: String,
    keystore_location: Option<PathBuf>,
    keystore_chain: Option<String>,
    keystore_key: Option<String>,
    key_password: Option<String>,
    truststore_location: Option<PathBuf>,
    truststore_certificates: Option<String>,
    versions: Vec<&'static rustls::SupportedProtocolVersion>,
    client_auth: ClientAuth,
}

fn invalid(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

impl TlsSettings {
    fn from_config(cfg: &KafkaConfig, listener: &str) -> Result<TlsSettings, ConfigError> {
        let get = |k: &str| {
            cfg.listener_value(listener, k)
                .filter(|v| !v.trim().is_empty())
        };
        let pem_only = |key: &str, what: &str| -> Result<(), ConfigError> {
            let ty = get(key).unwrap_or_default();
            if ty.eq_ignore_ascii_case("PEM") {
                Ok(())
            } else {
                Err(ConfigError::Unsupported {
                    key: key.to_string(),
                    value: ty,
                    what: format!("a {what} that is not PEM on listener {listener} (oxka reads PEM: set {key}=PEM)"),
                })
            }
        };
        let keystore_location = get("ssl.keystore.location").map(PathBuf::from);
        let keystore_chain = get("ssl.keystore.certificate.chain");
        let keystore_key = get("ssl.keystore.key");
        if keystore_location.is_none() && (keystore_chain.is_none() || keystore_key.is_none()) {
            return Err(invalid(
                "ssl.keystore.location",
                "",
                format!("listener {listener} uses TLS: set ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key"),
            ));
        }
        pem_only("ssl.keystore.type", "keystore")?;
        let truststore_location = get("ssl.truststore.location").map(PathBuf::from);
        let truststore_certificates = get("ssl.truststore.certificates");
        if truststore_location.is_some() || truststore_certificates.is_some() {
            pem_only("ssl.truststore.type", "truststore")?;
        }
        let protocols = get("ssl.enabled.protocols").unwrap_or_default();
        let mut versions = Vec::new();
        for p in protocols
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            match p {
                "TLSv1.2" => versions.push(&rustls::version::TLS12),
                "TLSv1.3" => versions.push(&rustls::version::TLS13),
                other => tracing::warn!(
                    listener,
                    protocol = other,
                    "ssl.enabled.protocols: only TLSv1.2 and TLSv1.3 are served"
                ),
            }
        }
        if versions.is_empty() {
            return Err(invalid(
                "ssl.enabled.protocols",
                &protocols,
                "neither TLSv1.2 nor TLSv1.3 is enabled",
            ));
        }
        let client_auth = match get("ssl.client.auth")
            .unwrap_or_default()
            .to_ascii_lowercase()
            .as_str()
        {
            "required" => ClientAuth::Required,
            "requested" => ClientAuth::Requested,
            _ => ClientAuth::None,
        };
        if client_auth != ClientAuth::None
            && truststore_location.is_none()
            && truststore_certificates.is_none()
        {
            return Err(invalid(
                "ssl.client.auth",
                &format!("{client_auth:?}").to_lowercase(),
                format!("listener {listener} verifies client certificates: set ssl.truststore.location or ssl.truststore.certificates"),
            ));
        }
        Ok(TlsSettings {
            listener: listener.to_string(),
            keystore_location,
            keystore_chain,
            keystore_key,
            key_password: get("ssl.key.password"),
            truststore_location,
            truststore_certificates,
            versions,
            client_auth,
        })
    }

    /// The files whose changes trigger a reload.
    fn files(&self) -> Vec<PathBuf> {
        self.keystore_location
            .iter()
            .chain(self.truststore_location.iter())
            .cloned()
            .collect()
    }

    fn read(&self, path: &PathBuf, key: &str) -> Result<Vec<u8>, String> {
        std::fs::read(path).map_err(|e| format!("{key} {}: {e}", path.display()))
    }

    /// Builds the rustls configuration from the files as they are now.
    fn build(&self) -> Result<Arc<ServerConfig>, String> {
        let keystore = match &self.keystore_location {
            Some(p) => self.read(p, "ssl.keystore.location")?,
            None => {
                let mut pem = self.keystore_chain.clone().unwrap_or_default().into_bytes();
                pem.push(b'\n');
                pem.extend_from_slice(self.keystore_key.clone().unwrap_or_default().as_bytes());
                pem
            }
        };
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&keystore)
            .collect::<Result<_, _>>()
            .map_err(|e| format!("keystore certificates: {e}"))?;
        if chain.is_empty() {
            return Err("the keystore holds no certificate".into());
        }
        let key = private_key(&keystore, self.key_password.as_deref())?;
        // ring rather than aws-lc-rs: no cmake/NASM build; its deprecation
        // is about post-quantum key exchange, which Kafka clients do not offer
        #[allow(deprecated)]
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&self.versions)
            .map_err(|e| format!("ssl.enabled.protocols: {e}"))?;
        let builder = match self.client_auth {
            ClientAuth::None => builder.with_no_client_auth(),
            auth => {
                let roots = Arc::new(self.trust_roots()?);
                let verifier = WebPkiClientVerifier::builder_with_provider(roots, provider);
                let verifier = if auth == ClientAuth::Requested {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier.build().map_err(|e| format!("truststore: {e}"))?,
                )
            }
        };
        let config = builder
            .with_single_cert(chain, key)
            .map_err(|e| format!("keystore: {e}"))?;
        Ok(Arc::new(config))
    }

    fn trust_roots(&self) -> Result<RootCertStore, String> {
        let pem = match (&self.truststore_location, &self.truststore_certificates) {
            (Some(p), _) => self.read(p, "ssl.truststore.location")?,
            (None, Some(inline)) => inline.clone().into_bytes(),
            (None, None) => return Err("no truststore".into()),
        };
        let mut roots = RootCertStore::empty();
        for cert in CertificateDer::pem_slice_iter(&pem) {
            let cert = cert.map_err(|e| format!("truststore: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("truststore certificate: {e}"))?;
        }
        if roots.is_empty() {
            return Err("the truststore holds no certificate".into());
        }
        Ok(roots)
    }
}

/// The private key of a PEM keystore: PKCS#8, PKCS#1 (RSA) or SEC1 (EC),
/// or an encrypted PKCS#8 key opened with `ssl.key.password`.
fn private_key(pem: &[u8], password: Option<&str>) -> Result<PrivateKeyDer<'static>, String> {
    let text = String::from_utf8_lossy(pem);
    if let Some(start) = text.find("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let end_marker = "-----END ENCRYPTED PRIVATE KEY-----";
        let end = text[start..]
            .find(end_marker)
            .map(|e| start + e + end_marker.len())
            .ok_or("the encrypted private key is not terminated")?;
        let password = password.ok_or("the private key is encrypted: set ssl.key.password")?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(&text[start..end])
            .map_err(|e| format!("encrypted private key: {e}"))?;
        let info = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| format!("encrypted private key: {e}"))?;
        let der = info
            .decrypt(password)
            .map_err(|_| "the private key does not decrypt with ssl.key.password".to_string())?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            der.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem)
        .map_err(|e| format!("the keystore holds no usable private key: {e}"))
}

struct Loaded {
    config: Arc<ServerConfig>,
    checked: Instant,
    mtimes: Vec<Option<SystemTime>>,
}

/// One TLS listener's acceptor: the current rustls configuration, reloaded
/// when its files change, and the principal mapping.
pub struct TlsListener {
    settings: TlsSettings,
    mapper: subject::PrincipalMapper,
    loaded: Mutex<Loaded>,
}

fn mtimes(files: &[PathBuf]) -> Vec<Option<SystemTime>> {
    files
        .iter()
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

impl TlsListener {
    /// Reads the listener's settings and loads its keystore and truststore;
    /// any problem stops the start, naming the key.
    pub fn from_config(cfg: &KafkaConfig, listener: &str) -> Result<TlsListener, ConfigError> {
        let settings = TlsSettings::from_config(cfg, listener)?;
        let rules = cfg
            .listener_value(listener, "ssl.principal.mapping.rules")
            .unwrap_or_else(|| "DEFAULT".into());
        let mapper = subject::PrincipalMapper::parse(&rules)
            .map_err(|e| invalid("ssl.principal.mapping.rules", &rules, e))?;
        let files = settings.files();
        let stamps = mtimes(&files);
        let config = settings.build().map_err(|e| {
            invalid(
                "ssl.keystore.location",
                &settings
                    .keystore_location
                    .as_ref()
                    .map(|p| p.display().to_string())
                    .unwrap_or_default(),
                format!("listener {listener}: {e}"),
            )
        })?;
        Ok(TlsListener {
            settings,
            mapper,
            loaded: Mutex::new(Loaded {
                config,
                checked: Instant::now(),
                mtimes: stamps,
            }),
        })
    }

    /// The configuration for a new connection, reloaded first if a file
    /// changed since the last look.
    fn current(&self) -> Arc<ServerConfig> {
        let due = self.loaded.lock().checked.elapsed() >= RELOAD_CHECK;
        if due {
            self.reload_if_changed();
        }
        self.loaded.lock().config.clone()
    }

    /// Rebuilds the configuration if a keystore or truststore file's
    /// modification time changed.
    fn reload_if_changed(&self) {
        let mut loaded = self.loaded.lock();
        {
            loaded.checked = Instant::now();
            let files = self.settings.files();
            let now = mtimes(&files);
            if now != loaded.mtimes {
                match self.settings.build() {
                    Ok(config) => {
                        tracing::info!(listener = %self.settings.listener, "reloaded the TLS keystore/truststore");
                        loaded.config = config;
                        loaded.mtimes = now;
                    }
                    Err(e) => {
                        // keep serving with what loaded before; try again next time
                        tracing::warn!(listener = %self.settings.listener, error = %e, "TLS files changed but do not load; keeping the previous ones");
                    }
                }
            }
        }
    }

    /// The TLS handshake (the caller bounds it in time).
    pub async fn accept(&self, stream: TcpStream) -> std::io::Result<TlsStream<TcpStream>> {
        tokio_rustls::TlsAcceptor::from(self.current())
            .accept(stream)
            .await
    }

    /// The principal of an SSL connection: `User:<mapped subject>` of the
    /// client's certificate, `User:ANONYMOUS` without one; `Err` when no
    /// mapping rule applies (the connection is refused, as in Kafka).
    pub fn principal(&self, conn: &ServerConnection) -> Result<KafkaPrincipal, String> {
        let Some(cert) = conn.peer_certificates().and_then(|c| c.first()) else {
            return Ok(KafkaPrincipal::anonymous());
        };
        let subject =
            subject::subject_name(cert).ok_or("the client certificate's subject does not parse")?;
        self.mapper
            .name(&subject)
            .map(KafkaPrincipal::user)
            .ok_or_else(|| format!("no ssl.principal.mapping.rules rule applies to {subject}"))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use rcgen::{CertificateParams, DnType, KeyPair};
    use tokio::net::TcpListener;

    use super::*;

    /// A self-signed certificate for `cn` (org unit `ou`): (cert PEM, key PEM, DER).
    fn cert(cn: &str) -> (String, String, Vec<u8>) {
        let mut p = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
        // DER order: O, OU, CN (the default DN holds a CN first)
        p.distinguished_name = rcgen::DistinguishedName::new();
        p.distinguished_name
            .push(DnType::OrganizationName, "acme, inc");
        p.distinguished_name
            .push(DnType::OrganizationalUnitName, "eng");
        p.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let c = p.self_signed(&key).unwrap();
        (c.pem(), key.serialize_pem(), c.der().to_vec())
    }

    fn config(kv: &[(&str, String)]) -> KafkaConfig {
        let mut props: BTreeMap<String, String> =
            kv.iter().map(|(k, v)| (k.to_string(), v.clone())).collect();
        props.insert("listeners".into(), "SSL://127.0.0.1:0".into());
        KafkaConfig::from_props(props).unwrap().0
    }

    #[test]
    fn subjects_in_kafkas_form() {
        let (_, _, der) = cert("alice");
        assert_eq!(
            subject::subject_name(&der).as_deref(),
            Some("CN=alice,OU=eng,O=acme\\, inc")
        );
    }

    #[test]
    fn keystores_must_be_pem_and_present() {
        let (c, k, _) = cert("broker");
        let jks = config(&[
            ("ssl.keystore.certificate.chain", c.clone()),
            ("ssl.keystore.key", k.clone()),
        ]);
        assert!(matches!(
            TlsListener::from_config(&jks, "SSL"),
            Err(ConfigError::Unsupported { key, .. }) if key == "ssl.keystore.type"
        ));
        let none = config(&[("ssl.keystore.type", "PEM".into())]);
        assert!(TlsListener::from_config(&none, "SSL").is_err());
        let inline = config(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.certificate.chain", c),
            ("ssl.keystore.key", k),
        ]);
        TlsListener::from_config(&inline, "SSL").unwrap();
    }

    /// A handshake with the keystore file, then a renewed certificate
    /// written over it is what the next connection gets.
    #[tokio::test]
    async fn handshake_and_reload() {
        let dir = tempfile::tempdir().unwrap();
        let ks = dir.path().join("keystore.pem");
        let (c, k, der1) = cert("broker-1");
        std::fs::write(&ks, format!("{k}{c}")).unwrap();
        let cfg = config(&[
            ("ssl.keystore.type", "PEM".into()),
            ("ssl.keystore.location", ks.display().to_string()),
        ]);
        let tls = Arc::new(TlsListener::from_config(&cfg, "SSL").unwrap());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = {
            let tls = tls.clone();
            tokio::spawn(async move {
                for _ in 0..2 {
                    let (s, _) = listener.accept().await.unwrap();
                    let _ = tls.accept(s).await;
                }
            })
        };
        // the client trusts whatever it is shown and reports it
        let seen = |der: Vec<u8>| async move {
            let mut roots = RootCertStore::empty();
            roots.add(CertificateDer::from(der)).unwrap();
            #[allow(deprecated)]
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let client = rustls::ClientConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
            tokio_rustls::TlsConnector::from(Arc::new(client))
                .connect(name, tcp)
                .await
                .map(|s| s.get_ref().1.peer_certificates().unwrap()[0].to_vec())
        };
        assert_eq!(seen(der1.clone()).await.unwrap(), der1);
        let (c, k, der2) = cert("broker-2");
        std::fs::write(&ks, format!("{k}{c}")).unwrap();
        // a later modification time, whatever the file system's resolution
        let later = SystemTime::now() + Duration::from_secs(10);
        std::fs::File::options()
            .write(true)
            .open(&ks)
            .unwrap()
            .set_modified(later)
            .unwrap();
        tls.reload_if_changed();
        assert_eq!(seen(der2.clone()).await.unwrap(), der2);
        server.await.unwrap();
    }
}
