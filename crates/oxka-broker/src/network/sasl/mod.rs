//! SASL authentication on SASL_PLAINTEXT and SASL_SSL listeners (Kafka's
//! `SaslServerAuthenticator`): before a connection is authenticated only
//! ApiVersions, SaslHandshake (17) and SaslAuthenticate (36) are served;
//! anything else closes it. SaslHandshake v1 is followed by
//! SaslAuthenticate requests; after SaslHandshake v0 the tokens come raw
//! (size-prefixed, no request header), as Kafka still accepts.
//!
//! A failed authentication is answered with SASL_AUTHENTICATION_FAILED (58)
//! after `connection.failed.authentication.delay.ms`, then the connection
//! is closed. With `connections.max.reauth.ms` (KIP-368) the session's
//! lifetime goes back in SaslAuthenticate v1+; the client re-authenticates
//! on the same connection (SaslHandshake + SaslAuthenticate, same
//! mechanism, same principal) or is closed at its first request after
//! the session expired.

pub mod oauthbearer;
pub mod plain;
pub mod scram;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse, SaslHandshakeRequest,
    SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use oxka_client::sasl::jaas;
use oxka_client::sasl::scram::ScramMechanism;

use super::principal::KafkaPrincipal;
use super::Response;
use crate::config::{ConfigError, KafkaConfig};

/// What a mechanism's server answers to one client token.
pub enum Step {
    /// More to exchange: this challenge goes to the client.
    Challenge(Vec<u8>),
    /// Authenticated as `authorization_id`; `response` is the last token
    /// for the client; `expires_at_ms` bounds the session (a token's `exp`).
    Complete {
        response: Vec<u8>,
        authorization_id: String,
        expires_at_ms: Option<i64>,
    },
}

/// Why authentication failed: the message the client is given (never a
/// password or a key).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct AuthenticationFailed(pub String);

/// The server's side of one mechanism, for one exchange.
pub trait MechanismServer: Send {
    fn evaluate(&mut self, token: &[u8], now_ms: i64) -> Result<Step, AuthenticationFailed>;
}

/// The mechanisms oxka serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
    OAuthBearer,
}

impl Mechanism {
    pub fn from_name(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "OAUTHBEARER" => Some(Mechanism::OAuthBearer),
            other => ScramMechanism::from_name(other).map(Mechanism::Scram),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
            Mechanism::OAuthBearer => "OAUTHBEARER",
        }
    }
}

/// One SASL listener's settings.
pub struct SaslServerConfig {
    pub listener: String,
    pub mechanisms: Vec<Mechanism>,
    plain_users: Arc<BTreeMap<String, String>>,
    oauth: oauthbearer::UnsecuredValidatorOptions,
    /// `connections.max.reauth.ms`; 0 for sessions without expiry.
    pub reauth_ms: i64,
    /// `connection.failed.authentication.delay.ms`.
    pub failed_delay: Duration,
}

impl std::fmt::Debug for SaslServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslServerConfig")
            .field("listener", &self.listener)
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.len())
            .finish()
    }
}

fn bad(key: &str, value: &str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.into(),
    }
}

/// The JAAS config of one mechanism on one listener
/// (`listener.name.<l>.<mechanism>.sasl.jaas.config`); the value is never
/// put in an error (it holds passwords).
fn jaas_options(
    cfg: &KafkaConfig,
    listener: &str,
    mechanism: Mechanism,
    module: &str,
) -> Result<Option<BTreeMap<String, String>>, ConfigError> {
    let key_tail = format!("{}.sasl.jaas.config", mechanism.name().to_ascii_lowercase());
    let key = format!("listener.name.{}.{key_tail}", listener.to_ascii_lowercase());
    let Some(value) = cfg.listener_only(listener, &key_tail) else {
        return Ok(None);
    };
    let entries = jaas::parse(&value).map_err(|e| bad(&key, "(hidden)", e))?;
    let entry = entries
        .into_iter()
        .find(|e| e.login_module.ends_with(module))
        .ok_or_else(|| bad(&key, "(hidden)", format!("no {module} entry")))?;
    Ok(Some(entry.options))
}

impl SaslServerConfig {
    /// Reads the listener's SASL settings; refuses mechanisms oxka does not
    /// serve (GSSAPI, Kafka's default, among them) and PLAIN without users.
    pub fn from_config(cfg: &KafkaConfig, listener: &str) -> Result<SaslServerConfig, ConfigError> {
        const KEY: &str = "sasl.enabled.mechanisms";
        let value = cfg.listener_value(listener, KEY).unwrap_or_default();
        let mut mechanisms = Vec::new();
        for name in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            let m = Mechanism::from_name(name).ok_or_else(|| ConfigError::Unsupported {
                key: KEY.to_string(),
                value: value.clone(),
                what: format!(
                    "the SASL mechanism {name} on listener {listener} (oxka serves PLAIN, SCRAM-SHA-256, SCRAM-SHA-512, OAUTHBEARER)"
                ),
            })?;
            if !mechanisms.contains(&m) {
                mechanisms.push(m);
            }
        }
        if mechanisms.is_empty() {
            return Err(bad(
                KEY,
                &value,
                format!("no SASL mechanism for listener {listener}"),
            ));
        }
        let mut plain_users = BTreeMap::new();
        if mechanisms.contains(&Mechanism::Plain) {
            let options = jaas_options(cfg, listener, Mechanism::Plain, "PlainLoginModule")?
                .ok_or_else(|| {
                    bad(
                        &format!("listener.name.{}.plain.sasl.jaas.config", listener.to_ascii_lowercase()),
                        "",
                        "PLAIN is enabled but no users are configured (PlainLoginModule with user_<name>=\"<password>\" options)",
                    )
                })?;
            for (k, v) in options {
                if let Some(user) = k.strip_prefix("user_") {
                    plain_users.insert(user.to_string(), v);
                }
            }
        }
        let oauth = match jaas_options(
            cfg,
            listener,
            Mechanism::OAuthBearer,
            "OAuthBearerLoginModule",
        )? {
            Some(o) => oauthbearer::UnsecuredValidatorOptions::from_jaas(&o).map_err(|e| {
                bad(
                    &format!(
                        "listener.name.{}.oauthbearer.sasl.jaas.config",
                        listener.to_ascii_lowercase()
                    ),
                    "(hidden)",
                    e,
                )
            })?,
            None => Default::default(),
        };
        let reauth_ms = cfg
            .listener_value(listener, "connections.max.reauth.ms")
            .and_then(|v| v.trim().parse::<i64>().ok())
            .unwrap_or(0)
            .max(0);
        let failed_delay = cfg
            .value("connection.failed.authentication.delay.ms")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(100);
        Ok(SaslServerConfig {
            listener: listener.to_string(),
            mechanisms,
            plain_users: Arc::new(plain_users),
            oauth,
            reauth_ms,
            failed_delay: Duration::from_millis(failed_delay),
        })
    }

    fn server(&self, m: Mechanism, scram: &scram::CredentialLookup) -> Box<dyn MechanismServer> {
        match m {
            Mechanism::Plain => Box::new(plain::PlainServer::new(self.plain_users.clone())),
            Mechanism::Scram(s) => Box::new(scram::ScramServer::new(s, scram.clone())),
            Mechanism::OAuthBearer => {
                Box::new(oauthbearer::OAuthBearerServer::new(self.oauth.clone()))
            }
        }
    }

    fn mechanism_names(&self) -> Vec<StrBytes> {
        self.mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect()
    }
}

/// What the connection does with a frame the authenticator looked at.
pub enum Intercept {
    /// Not the authenticator's: serve it as a request.
    Pass,
    /// Answer it; the exchange goes on.
    Respond(Response),
    /// Answer it; the connection is authenticated as `principal` now.
    Authenticated {
        response: Response,
        principal: KafkaPrincipal,
    },
    /// Authentication failed: wait `delay`, send `response` if any, close.
    Fail {
        response: Option<Response>,
        delay: Duration,
        reason: String,
    },
    /// A protocol violation: close at once.
    Close(String),
}

enum State {
    /// Before SaslHandshake.
    Handshake,
    /// After SaslHandshake: tokens for `mechanism` (raw after v0).
    Authenticate {
        mechanism: Mechanism,
        server: Box<dyn MechanismServer>,
        raw: bool,
    },
    /// Requests are served.
    Authenticated,
}

/// An authenticated session (kept across re-authentications).
struct Session {
    principal: KafkaPrincipal,
    mechanism: Mechanism,
    /// Wall-clock end of the session (ms), when it has one.
    expires_at_ms: Option<i64>,
}

/// One connection's authentication state.
pub struct Authenticator {
    config: Arc<SaslServerConfig>,
    scram: scram::CredentialLookup,
    state: State,
    session: Option<Session>,
}

impl Authenticator {
    pub fn new(config: Arc<SaslServerConfig>, scram: scram::CredentialLookup) -> Authenticator {
        Authenticator {
            config,
            scram,
            state: State::Handshake,
            session: None,
        }
    }

    /// Whether frames are raw SASL tokens (after SaslHandshake v0) rather
    /// than requests: they may then be shorter than a request header.
    pub fn expects_raw_token(&self) -> bool {
        matches!(self.state, State::Authenticate { raw: true, .. })
    }

    /// Whether requests other than the SASL ones may be served.
    pub fn is_authenticated(&self) -> bool {
        self.session.is_some()
    }

    /// Looks at a frame first; see [`Intercept`].
    pub fn intercept(&mut self, frame: &Bytes, now_ms: i64) -> Intercept {
        if self.expects_raw_token() {
            return self.token(frame, now_ms, None);
        }
        if frame.len() < 8 {
            return Intercept::Close("frame shorter than a request header".into());
        }
        let mut peek = &frame[..];
        let raw_key = peek.get_i16();
        let key = ApiKey::try_from(raw_key).ok();
        let authenticated = matches!(self.state, State::Authenticated);
        match key {
            Some(ApiKey::SaslHandshake) => {
                if let State::Authenticate { .. } = self.state {
                    return Intercept::Close("SaslHandshake during authentication".into());
                }
                self.handshake(frame)
            }
            Some(ApiKey::SaslAuthenticate) => match self.state {
                State::Authenticate { raw: false, .. } => self.authenticate(frame, now_ms),
                _ => Intercept::Close("SaslAuthenticate without a SaslHandshake".into()),
            },
            Some(ApiKey::ApiVersions) if !matches!(self.state, State::Authenticate { .. }) => {
                Intercept::Pass
            }
            _ if authenticated => {
                let expired = self
                    .session
                    .as_ref()
                    .and_then(|s| s.expires_at_ms)
                    .is_some_and(|e| now_ms >= e);
                if expired {
                    Intercept::Close("the SASL session expired without re-authentication (connections.max.reauth.ms)".into())
                } else {
                    Intercept::Pass
                }
            }
            _ => Intercept::Close(format!(
                "unexpected request (api key {raw_key}) before SASL authentication"
            )),
        }
    }

    fn handshake(&mut self, frame: &Bytes) -> Intercept {
        let (header, version, mut body) = match header(frame, ApiKey::SaslHandshake) {
            Ok(h) => h,
            Err(reason) => return Intercept::Close(reason),
        };
        let req = match SaslHandshakeRequest::decode(&mut body, version) {
            Ok(r) => r,
            Err(e) => return Intercept::Close(format!("malformed SaslHandshake: {e}")),
        };
        let requested = req.mechanism.as_str();
        let mechanism =
            Mechanism::from_name(requested).filter(|m| self.config.mechanisms.contains(m));
        let reauth_mechanism = self.session.as_ref().map(|s| s.mechanism);
        let resp = |error_code: i16| {
            let r = SaslHandshakeResponse::default()
                .with_error_code(error_code)
                .with_mechanisms(self.config.mechanism_names());
            encode(ApiKey::SaslHandshake, version, header.correlation_id, &r)
        };
        let refused = match (mechanism, reauth_mechanism) {
            (None, _) => Some(format!("unsupported SASL mechanism {requested}")),
            (Some(m), Some(prev)) if m != prev => Some(format!(
                "re-authentication with {} instead of {}",
                m.name(),
                prev.name()
            )),
            (Some(_), Some(_)) if version == 0 => {
                Some("re-authentication needs SaslHandshake v1".to_string())
            }
            _ => None,
        };
        if let Some(reason) = refused {
            return match resp(ResponseError::UnsupportedSaslMechanism.code()) {
                Ok(r) => Intercept::Fail {
                    response: Some(r),
                    delay: self.config.failed_delay,
                    reason,
                },
                Err(e) => Intercept::Close(e),
            };
        }
        let Some(mechanism) = mechanism else {
            return Intercept::Close("unsupported SASL mechanism".into());
        };
        match resp(0) {
            Ok(r) => {
                self.state = State::Authenticate {
                    mechanism,
                    server: self.config.server(mechanism, &self.scram),
                    raw: version == 0,
                };
                Intercept::Respond(r)
            }
            Err(e) => Intercept::Close(e),
        }
    }

    fn authenticate(&mut self, frame: &Bytes, now_ms: i64) -> Intercept {
        let (header, version, mut body) = match header(frame, ApiKey::SaslAuthenticate) {
            Ok(h) => h,
            Err(reason) => return Intercept::Close(reason),
        };
        let req = match SaslAuthenticateRequest::decode(&mut body, version) {
            Ok(r) => r,
            Err(e) => return Intercept::Close(format!("malformed SaslAuthenticate: {e}")),
        };
        self.token(
            &req.auth_bytes,
            now_ms,
            Some((version, header.correlation_id)),
        )
    }

    /// One client token; `framing` is the SaslAuthenticate version and
    /// correlation id, `None` for raw tokens.
    fn token(&mut self, token: &[u8], now_ms: i64, framing: Option<(i16, i32)>) -> Intercept {
        let State::Authenticate {
            mechanism, server, ..
        } = &mut self.state
        else {
            return Intercept::Close("SASL token outside authentication".into());
        };
        let mechanism = *mechanism;
        let reply =
            |error: Option<&str>, bytes: Vec<u8>, lifetime_ms: i64| -> Result<Response, String> {
                match framing {
                    None => {
                        let mut b = BytesMut::with_capacity(4 + bytes.len());
                        b.put_u32(bytes.len() as u32);
                        b.put_slice(&bytes);
                        Ok(Response::from(b.freeze()))
                    }
                    Some((version, correlation_id)) => {
                        let mut r = SaslAuthenticateResponse::default()
                            .with_auth_bytes(Bytes::from(bytes))
                            .with_session_lifetime_ms(lifetime_ms);
                        if let Some(msg) = error {
                            r = r
                                .with_error_code(ResponseError::SaslAuthenticationFailed.code())
                                .with_error_message(Some(StrBytes::from_string(msg.to_string())));
                        }
                        encode(ApiKey::SaslAuthenticate, version, correlation_id, &r)
                    }
                }
            };
        match server.evaluate(token, now_ms) {
            Ok(Step::Challenge(c)) => match reply(None, c, 0) {
                Ok(r) => Intercept::Respond(r),
                Err(e) => Intercept::Close(e),
            },
            Ok(Step::Complete {
                response,
                authorization_id,
                expires_at_ms,
            }) => {
                let principal = KafkaPrincipal::user(authorization_id);
                if let Some(s) = &self.session {
                    if s.principal != principal {
                        let msg = format!(
                            "Cannot change principals during re-authentication from {}: {principal}",
                            s.principal
                        );
                        return self.failed(msg, |m| reply(Some(m), Vec::new(), 0).ok());
                    }
                }
                // KIP-368: the session ends at the re-authentication
                // deadline or the credential's own expiry, whichever is first
                let reauth_end =
                    (self.config.reauth_ms > 0).then(|| now_ms + self.config.reauth_ms);
                let end = match (reauth_end, expires_at_ms) {
                    (Some(a), Some(b)) => Some(a.min(b)),
                    (a, b) => a.or(b),
                };
                // only reported when re-authentication is on, as Kafka does
                let lifetime = match (reauth_end, end) {
                    (Some(_), Some(e)) => (e - now_ms).max(0),
                    _ => 0,
                };
                match reply(None, response, lifetime) {
                    Ok(r) => {
                        self.state = State::Authenticated;
                        self.session = Some(Session {
                            principal: principal.clone(),
                            mechanism,
                            expires_at_ms: end,
                        });
                        Intercept::Authenticated {
                            response: r,
                            principal,
                        }
                    }
                    Err(e) => Intercept::Close(e),
                }
            }
            Err(AuthenticationFailed(msg)) => {
                self.failed(msg, |m| reply(Some(m), Vec::new(), 0).ok())
            }
        }
    }

    fn failed(&mut self, msg: String, response: impl Fn(&str) -> Option<Response>) -> Intercept {
        let framed = !self.expects_raw_token();
        self.state = State::Handshake;
        Intercept::Fail {
            // raw tokens have no way to carry an error: the close says it
            response: if framed { response(&msg) } else { None },
            delay: self.config.failed_delay,
            reason: msg,
        }
    }
}

/// The request header of a SASL request, with its version checked.
fn header(frame: &Bytes, key: ApiKey) -> Result<(RequestHeader, i16, Bytes), String> {
    let mut peek = &frame[2..];
    let version = peek.get_i16();
    let range = key.valid_versions();
    if version < range.min || version > range.max {
        return Err(format!("unsupported version {version} of {key:?}"));
    }
    let mut body = frame.clone();
    let header = RequestHeader::decode(&mut body, key.request_header_version(version))
        .map_err(|e| format!("malformed request header: {e}"))?;
    Ok((header, version, body))
}

fn encode<R: Encodable>(
    key: ApiKey,
    version: i16,
    correlation_id: i32,
    r: &R,
) -> Result<Response, String> {
    crate::request::encode_response(key, version, correlation_id, r)
        .map(Response::from)
        .map_err(|e| format!("cannot encode {key:?} response: {e}"))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use kafka_protocol::messages::{MetadataRequest, RequestHeader};

    use super::*;

    fn config(reauth_ms: i64) -> Arc<SaslServerConfig> {
        Arc::new(SaslServerConfig {
            listener: "SASL_PLAINTEXT".into(),
            mechanisms: vec![Mechanism::Plain, Mechanism::Scram(ScramMechanism::Sha256)],
            plain_users: Arc::new(BTreeMap::from([
                ("alice".to_string(), "pw".to_string()),
                ("bob".to_string(), "pw".to_string()),
            ])),
            oauth: Default::default(),
            reauth_ms,
            failed_delay: Duration::from_millis(100),
        })
    }

    fn authenticator(reauth_ms: i64) -> Authenticator {
        Authenticator::new(config(reauth_ms), Arc::new(|_: &str, _| None))
    }

    fn frame<R: Encodable>(key: ApiKey, version: i16, body: &R) -> Bytes {
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(5);
        let mut b = BytesMut::new();
        header
            .encode(&mut b, key.request_header_version(version))
            .unwrap();
        body.encode(&mut b, version).unwrap();
        b.freeze()
    }

    fn handshake(m: &str) -> Bytes {
        frame(
            ApiKey::SaslHandshake,
            1,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(m.into())),
        )
    }

    fn authenticate(token: &[u8]) -> Bytes {
        frame(
            ApiKey::SaslAuthenticate,
            2,
            &SaslAuthenticateRequest::default().with_auth_bytes(Bytes::copy_from_slice(token)),
        )
    }

    fn metadata() -> Bytes {
        frame(ApiKey::Metadata, 12, &MetadataRequest::default())
    }

    /// The SaslAuthenticate response's session lifetime.
    fn lifetime(r: &Response) -> i64 {
        let mut b = r.to_bytes().unwrap().slice(4..);
        // SaslAuthenticate v2 has the flexible response header
        kafka_protocol::messages::ResponseHeader::decode(&mut b, 1).unwrap();
        SaslAuthenticateResponse::decode(&mut b, 2)
            .unwrap()
            .session_lifetime_ms
    }

    #[test]
    fn only_sasl_and_api_versions_before_authentication() {
        let mut a = authenticator(0);
        assert!(matches!(a.intercept(&metadata(), 0), Intercept::Close(_)));
        let mut a = authenticator(0);
        let versions = frame(
            ApiKey::ApiVersions,
            3,
            &kafka_protocol::messages::ApiVersionsRequest::default(),
        );
        assert!(matches!(a.intercept(&versions, 0), Intercept::Pass));
        assert!(matches!(
            a.intercept(&authenticate(b"x"), 0),
            Intercept::Close(_)
        ));
    }

    #[test]
    fn unknown_mechanism_and_wrong_password_fail() {
        let mut a = authenticator(0);
        assert!(matches!(
            a.intercept(&handshake("GSSAPI"), 0),
            Intercept::Fail {
                response: Some(_),
                ..
            }
        ));
        let mut a = authenticator(0);
        assert!(matches!(
            a.intercept(&handshake("PLAIN"), 0),
            Intercept::Respond(_)
        ));
        // anything but SaslAuthenticate during the exchange closes
        assert!(matches!(a.intercept(&metadata(), 0), Intercept::Close(_)));
        let mut a = authenticator(0);
        a.intercept(&handshake("PLAIN"), 0);
        match a.intercept(&authenticate(b"\0alice\0nope"), 0) {
            Intercept::Fail {
                response: Some(_),
                delay,
                ..
            } => assert_eq!(delay, Duration::from_millis(100)),
            _ => panic!("wrong password accepted"),
        }
        assert!(!a.is_authenticated());
    }

    /// KIP-368: the lifetime goes back to the client, requests after the
    /// expiry close the connection, re-authentication extends the session
    /// but may not change the principal.
    #[test]
    fn reauthentication() {
        let mut a = authenticator(1_000);
        a.intercept(&handshake("PLAIN"), 0);
        match a.intercept(&authenticate(b"\0alice\0pw"), 10_000) {
            Intercept::Authenticated {
                response,
                principal,
            } => {
                assert_eq!(principal.to_string(), "User:alice");
                assert_eq!(lifetime(&response), 1_000);
            }
            _ => panic!("not authenticated"),
        }
        assert!(matches!(a.intercept(&metadata(), 10_500), Intercept::Pass));
        // re-authentication on the same connection
        assert!(matches!(
            a.intercept(&handshake("PLAIN"), 10_900),
            Intercept::Respond(_)
        ));
        assert!(matches!(
            a.intercept(&authenticate(b"\0alice\0pw"), 10_900),
            Intercept::Authenticated { .. }
        ));
        assert!(matches!(a.intercept(&metadata(), 11_500), Intercept::Pass));
        assert!(matches!(
            a.intercept(&metadata(), 11_900),
            Intercept::Close(_)
        ));
        // another principal is refused
        let mut a = authenticator(1_000);
        a.intercept(&handshake("PLAIN"), 0);
        a.intercept(&authenticate(b"\0alice\0pw"), 0);
        a.intercept(&handshake("PLAIN"), 10);
        assert!(matches!(
            a.intercept(&authenticate(b"\0bob\0pw"), 10),
            Intercept::Fail { .. }
        ));
        // a different mechanism is refused
        let mut a = authenticator(1_000);
        a.intercept(&handshake("PLAIN"), 0);
        a.intercept(&authenticate(b"\0alice\0pw"), 0);
        assert!(matches!(
            a.intercept(&handshake("SCRAM-SHA-256"), 10),
            Intercept::Fail { .. }
        ));
    }

    #[test]
    fn handshake_v0_takes_raw_tokens() {
        let mut a = authenticator(0);
        let v0 = frame(
            ApiKey::SaslHandshake,
            0,
            &SaslHandshakeRequest::default().with_mechanism(StrBytes::from_static_str("PLAIN")),
        );
        assert!(matches!(a.intercept(&v0, 0), Intercept::Respond(_)));
        assert!(a.expects_raw_token());
        match a.intercept(&Bytes::from_static(b"\0alice\0pw"), 0) {
            Intercept::Authenticated { response, .. } => {
                // an empty size-prefixed token
                assert_eq!(&response.to_bytes().unwrap()[..], &[0, 0, 0, 0]);
            }
            _ => panic!("raw PLAIN token refused"),
        }
        let mut a = authenticator(0);
        a.intercept(&v0, 0);
        assert!(matches!(
            a.intercept(&Bytes::from_static(b"x"), 0),
            Intercept::Fail { response: None, .. }
        ));
    }
}
