//! SASL/OAUTHBEARER (RFC 7628) with unsecured tokens, as Kafka's default
//! client login handler (`OAuthBearerUnsecuredLoginCallbackHandler`) makes
//! them: a JWS with `"alg":"none"` and no signature whose claims the JAAS
//! options give (`unsecuredLoginStringClaim_sub="alice"`, ...), `iat` now
//! and `exp` `unsecuredLoginLifetimeSeconds` later. librdkafka's
//! `sasl.oauthbearer.config` (`principal=alice scope=... lifeSeconds=...`)
//! is read too. For development only, as in Kafka: the broker trusts any
//! such token.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;
use serde_json::{Map, Value};

/// What the unsecured login handler puts in each token.
#[derive(Debug, Clone, PartialEq)]
pub struct UnsecuredLogin {
    /// The claims besides `iat` and `exp`, the principal claim among them.
    claims: Map<String, Value>,
    principal_claim: String,
    lifetime_secs: f64,
    /// SASL extensions (`unsecuredLoginExtension_<name>`), sent with the
    /// token.
    extensions: BTreeMap<String, String>,
}

const STRING_CLAIM: &str = "unsecuredLoginStringClaim_";
const NUMBER_CLAIM: &str = "unsecuredLoginNumberClaim_";
const LIST_CLAIM: &str = "unsecuredLoginListClaim_";
const EXTENSION: &str = "unsecuredLoginExtension_";

impl UnsecuredLogin {
    /// From Kafka's JAAS options for `OAuthBearerLoginModule`.
    pub fn from_jaas(options: &BTreeMap<String, String>) -> Result<UnsecuredLogin, String> {
        let principal_claim = options
            .get("unsecuredLoginPrincipalClaimName")
            .map_or("sub", |s| s.trim())
            .to_string();
        let lifetime_secs = match options.get("unsecuredLoginLifetimeSeconds") {
            None => 3600.0,
            Some(v) => v
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n > 0.0)
                .ok_or("unsecuredLoginLifetimeSeconds is not a positive number")?,
        };
        let mut claims = Map::new();
        let mut extensions = BTreeMap::new();
        for (k, v) in options {
            let (name, value) = if let Some(n) = k.strip_prefix(STRING_CLAIM) {
                (n, Value::String(v.clone()))
            } else if let Some(n) = k.strip_prefix(NUMBER_CLAIM) {
                let num = v
                    .trim()
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                    .ok_or_else(|| format!("{k} is not a number"))?;
                (n, Value::Number(num))
            } else if let Some(n) = k.strip_prefix(LIST_CLAIM) {
                // Kafka's rule: the first character is the delimiter
                let mut chars = v.chars();
                let items = match chars.next() {
                    None => Vec::new(),
                    Some(d) => chars
                        .as_str()
                        .split(d)
                        .filter(|s| !s.is_empty())
                        .map(|s| Value::String(s.to_string()))
                        .collect(),
                };
                (n, Value::Array(items))
            } else if let Some(n) = k.strip_prefix(EXTENSION) {
                extensions.insert(n.to_string(), v.clone());
                continue;
            } else {
                continue;
            };
            if name == "iat" || name == "exp" {
                return Err(format!("{k}: the {name} claim is set by the login handler"));
            }
            claims.insert(name.to_string(), value);
        }
        let login = UnsecuredLogin {
            claims,
            principal_claim,
            lifetime_secs,
            extensions,
        };
        login.principal()?;
        Ok(login)
    }

    /// From librdkafka's `sasl.oauthbearer.config`: space-separated
    /// `principal=`, `principalClaimName=`, `scope=` (comma-separated),
    /// `scopeClaimName=`, `lifeSeconds=`, `extension_<name>=`.
    pub fn from_librdkafka(value: &str) -> Result<UnsecuredLogin, String> {
        let mut options = BTreeMap::new();
        let mut principal_claim = "sub".to_string();
        let mut scope_claim = "scope".to_string();
        let mut principal = None;
        let mut scope = None;
        for kv in value.split_whitespace() {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| format!("'{kv}' is not key=value"))?;
            match k {
                "principal" => principal = Some(v.to_string()),
                "principalClaimName" => principal_claim = v.to_string(),
                "scope" => scope = Some(v.to_string()),
                "scopeClaimName" => scope_claim = v.to_string(),
                "lifeSeconds" => {
                    options.insert("unsecuredLoginLifetimeSeconds".to_string(), v.to_string());
                }
                _ => match k.strip_prefix("extension_") {
                    Some(n) => {
                        options.insert(format!("{EXTENSION}{n}"), v.to_string());
                    }
                    None => return Err(format!("unknown key {k}")),
                },
            }
        }
        let principal = principal.ok_or("principal=... is required")?;
        options.insert(
            "unsecuredLoginPrincipalClaimName".to_string(),
            principal_claim.clone(),
        );
        options.insert(format!("{STRING_CLAIM}{principal_claim}"), principal);
        if let Some(s) = scope {
            options.insert(format!("{LIST_CLAIM}{scope_claim}"), format!(",{s}"));
        }
        UnsecuredLogin::from_jaas(&options)
    }

    /// The principal the tokens name.
    pub fn principal(&self) -> Result<&str, String> {
        self.claims
            .get(&self.principal_claim)
            .and_then(Value::as_str)
            .filter(|p| !p.trim().is_empty())
            .ok_or_else(|| {
                format!(
                    "{STRING_CLAIM}{} must name the principal",
                    self.principal_claim
                )
            })
    }

    /// A fresh unsecured token issued at `now_ms` (compact JWS, empty
    /// signature).
    pub fn token(&self, now_ms: u64) -> String {
        let iat = now_ms as f64 / 1000.0;
        let mut claims = self.claims.clone();
        let num = |n: f64| serde_json::Number::from_f64(n).map_or(Value::Null, Value::Number);
        claims.insert("iat".into(), num(iat));
        claims.insert("exp".into(), num(iat + self.lifetime_secs));
        format!(
            "{}.{}.",
            B64URL.encode(br#"{"alg":"none"}"#),
            B64URL.encode(Value::Object(claims).to_string())
        )
    }

    /// The RFC 7628 client response: `n,,` `\x01auth=Bearer <token>`, the
    /// extensions as `\x01key=value`, then `\x01\x01`.
    pub fn client_response(&self, now_ms: u64) -> Vec<u8> {
        let mut msg = format!("n,,\u{1}auth=Bearer {}", self.token(now_ms));
        for (k, v) in &self.extensions {
            msg.push('\u{1}');
            msg.push_str(k);
            msg.push('=');
            msg.push_str(v);
        }
        msg.push_str("\u{1}\u{1}");
        msg.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jaas(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn claims_of(token: &str) -> Map<String, Value> {
        let parts: Vec<&str> = token.split('.').collect();
        assert_eq!(parts.len(), 3);
        assert_eq!(parts[2], "");
        let header: Value = serde_json::from_slice(&B64URL.decode(parts[0]).unwrap()).unwrap();
        assert_eq!(header["alg"], "none");
        match serde_json::from_slice(&B64URL.decode(parts[1]).unwrap()).unwrap() {
            Value::Object(m) => m,
            other => panic!("{other}"),
        }
    }

    #[test]
    fn tokens_as_kafkas_unsecured_login_handler_makes_them() {
        let l = UnsecuredLogin::from_jaas(&jaas(&[
            ("unsecuredLoginStringClaim_sub", "alice"),
            ("unsecuredLoginListClaim_scope", ",a,b"),
            ("unsecuredLoginNumberClaim_n", "7"),
            ("unsecuredLoginLifetimeSeconds", "60"),
            ("unsecuredLoginExtension_traceId", "x1"),
        ]))
        .unwrap();
        assert_eq!(l.principal().unwrap(), "alice");
        let c = claims_of(&l.token(1_000_000));
        assert_eq!(c["sub"], "alice");
        assert_eq!(c["scope"], serde_json::json!(["a", "b"]));
        assert_eq!(c["n"].as_f64(), Some(7.0));
        assert_eq!(c["iat"].as_f64(), Some(1000.0));
        assert_eq!(c["exp"].as_f64(), Some(1060.0));
        let msg = String::from_utf8(l.client_response(1_000_000)).unwrap();
        assert!(msg.starts_with("n,,\u{1}auth=Bearer "), "{msg}");
        assert!(msg.ends_with("\u{1}traceId=x1\u{1}\u{1}"), "{msg}");
    }

    #[test]
    fn librdkafka_config_and_refusals() {
        let l = UnsecuredLogin::from_librdkafka("principal=bob scope=x,y lifeSeconds=5").unwrap();
        let c = claims_of(&l.token(0));
        assert_eq!(c["sub"], "bob");
        assert_eq!(c["scope"], serde_json::json!(["x", "y"]));
        assert_eq!(c["exp"].as_f64(), Some(5.0));
        assert!(UnsecuredLogin::from_jaas(&jaas(&[])).is_err());
        assert!(UnsecuredLogin::from_jaas(&jaas(&[
            ("unsecuredLoginStringClaim_sub", "a"),
            ("unsecuredLoginStringClaim_exp", "1"),
        ]))
        .is_err());
        assert!(UnsecuredLogin::from_librdkafka("scope=a").is_err());
    }
}
