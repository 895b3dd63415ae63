//! SASL/OAUTHBEARER (RFC 7628) with Kafka's default server handler for
//! unsecured tokens (`OAuthBearerUnsecuredValidatorCallbackHandler`): a
//! JWS with `"alg":"none"` and no signature, whose principal claim (`sub`
//! unless `unsecuredValidatorPrincipalClaimName` says otherwise) names the
//! user and whose `exp` bounds the session. For development, as in Kafka:
//! anyone can mint such a token.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use base64::Engine;

use super::{AuthenticationFailed, MechanismServer, Step};

/// The unsecured validator's options from the listener's JAAS config.
#[derive(Debug, Clone)]
pub struct UnsecuredValidatorOptions {
    pub principal_claim: String,
    pub scope_claim: String,
    pub required_scope: Vec<String>,
    pub allowable_clock_skew_ms: i64,
}

impl Default for UnsecuredValidatorOptions {
    fn default() -> Self {
        UnsecuredValidatorOptions {
            principal_claim: "sub".into(),
            scope_claim: "scope".into(),
            required_scope: Vec::new(),
            allowable_clock_skew_ms: 0,
        }
    }
}

impl UnsecuredValidatorOptions {
    /// Kafka's option names (`unsecuredValidator*`).
    pub fn from_jaas(options: &BTreeMap<String, String>) -> Result<Self, String> {
        let mut o = UnsecuredValidatorOptions::default();
        if let Some(v) = options.get("unsecuredValidatorPrincipalClaimName") {
            o.principal_claim = v.trim().to_string();
        }
        if let Some(v) = options.get("unsecuredValidatorScopeClaimName") {
            o.scope_claim = v.trim().to_string();
        }
        if let Some(v) = options.get("unsecuredValidatorRequiredScope") {
            o.required_scope = v
                .split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect();
        }
        if let Some(v) = options.get("unsecuredValidatorAllowableClockSkewMs") {
            o.allowable_clock_skew_ms = v
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or("unsecuredValidatorAllowableClockSkewMs is not a non-negative number")?;
        }
        Ok(o)
    }
}

pub struct OAuthBearerServer {
    options: UnsecuredValidatorOptions,
}

impl OAuthBearerServer {
    pub fn new(options: UnsecuredValidatorOptions) -> OAuthBearerServer {
        OAuthBearerServer { options }
    }
}

fn fail(msg: impl Into<String>) -> AuthenticationFailed {
    AuthenticationFailed(msg.into())
}

/// The token and authorization id of an RFC 7628 client response:
/// `gs2-header \x01 auth=Bearer <token> \x01 (key=value \x01)* \x01`.
fn parse_client_response(msg: &str) -> Result<(Option<String>, &str), AuthenticationFailed> {
    let bad = || fail("Invalid OAUTHBEARER client first message");
    let (gs2, rest) = msg.split_once('\u{1}').ok_or_else(bad)?;
    let mut gs2_parts = gs2.splitn(3, ',');
    if gs2_parts.next() != Some("n") {
        return Err(bad());
    }
    let authzid = match gs2_parts.next() {
        Some("") => None,
        Some(a) => Some(a.strip_prefix("a=").ok_or_else(bad)?.to_string()),
        None => return Err(bad()),
    };
    if gs2_parts.next() != Some("") {
        return Err(bad());
    }
    let rest = rest.strip_suffix("\u{1}\u{1}").ok_or_else(bad)?;
    let mut token = None;
    for kv in rest.split('\u{1}') {
        let (k, v) = kv.split_once('=').ok_or_else(bad)?;
        if k == "auth" {
            let t = v
                .strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .ok_or_else(bad)?;
            token = Some(t.trim());
        }
    }
    Ok((authzid, token.ok_or_else(bad)?))
}

fn decode_part(
    part: &str,
) -> Result<serde_json::Map<String, serde_json::Value>, AuthenticationFailed> {
    let bytes = B64URL
        .decode(part.trim_end_matches('='))
        .map_err(|_| fail("Invalid unsecured token: not base64url"))?;
    match serde_json::from_slice(&bytes) {
        Ok(serde_json::Value::Object(m)) => Ok(m),
        _ => Err(fail("Invalid unsecured token: not a JSON object")),
    }
}

impl OAuthBearerServer {
    /// Kafka's OAuthBearerUnsecuredJws checks: alg none, the principal
    /// claim, `exp` in the future (with the allowed skew), the scope.
    fn validate(&self, token: &str, now_ms: i64) -> Result<(String, i64), AuthenticationFailed> {
        let parts: Vec<&str> = token.split('.').collect();
        let [header, payload, signature] = parts[..] else {
            return Err(fail(
                "Invalid unsecured token: not a JWS compact serialization",
            ));
        };
        if !signature.is_empty() {
            return Err(fail(
                "Invalid unsecured token: it is signed (only unsecured tokens are validated)",
            ));
        }
        let header = decode_part(header)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("none") {
            return Err(fail("Invalid unsecured token: the alg header is not none"));
        }
        let claims = decode_part(payload)?;
        let principal = claims
            .get(&self.options.principal_claim)
            .and_then(|s| s.as_str())
            .filter(|s| !s.trim().is_empty())
            .ok_or_else(|| {
                fail(format!(
                    "Invalid unsecured token: no '{}' claim",
                    self.options.principal_claim
                ))
            })?;
        let exp_ms = claims
            .get("exp")
            .and_then(|e| e.as_f64())
            .map(|secs| (secs * 1000.0) as i64)
            .ok_or_else(|| fail("Invalid unsecured token: no 'exp' claim"))?;
        if exp_ms.saturating_add(self.options.allowable_clock_skew_ms) <= now_ms {
            return Err(fail("Invalid unsecured token: it has expired"));
        }
        if let Some(iat) = claims.get("iat").and_then(|i| i.as_f64()) {
            let iat_ms = (iat * 1000.0) as i64;
            if iat_ms - self.options.allowable_clock_skew_ms > now_ms {
                return Err(fail("Invalid unsecured token: issued in the future"));
            }
        }
        if !self.options.required_scope.is_empty() {
            let scope: Vec<String> = match claims.get(&self.options.scope_claim) {
                Some(serde_json::Value::String(s)) => s.split(' ').map(str::to_string).collect(),
                Some(serde_json::Value::Array(a)) => a
                    .iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(missing) = self
                .options
                .required_scope
                .iter()
                .find(|r| !scope.contains(r))
            {
                return Err(fail(format!(
                    "Invalid unsecured token: the required scope {missing} is missing"
                )));
            }
        }
        Ok((principal.to_string(), exp_ms))
    }
}

impl MechanismServer for OAuthBearerServer {
    fn evaluate(&mut self, token: &[u8], now_ms: i64) -> Result<Step, AuthenticationFailed> {
        let msg = std::str::from_utf8(token)
            .map_err(|_| fail("Invalid OAUTHBEARER message: not UTF-8"))?;
        let (authzid, jws) = parse_client_response(msg)?;
        let (principal, exp_ms) = self.validate(jws, now_ms)?;
        if authzid.is_some_and(|a| a != principal) {
            return Err(fail(
                "Authentication failed: Client requested an authorization id that is different from the token's principal",
            ));
        }
        Ok(Step::Complete {
            response: Vec::new(),
            authorization_id: principal,
            expires_at_ms: Some(exp_ms),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(claims: &str) -> String {
        format!(
            "{}.{}.",
            B64URL.encode(r#"{"alg":"none"}"#),
            B64URL.encode(claims)
        )
    }

    fn message(t: &str) -> Vec<u8> {
        format!("n,,\u{1}auth=Bearer {t}\u{1}\u{1}").into_bytes()
    }

    #[test]
    fn unsecured_tokens() {
        let now = 1_000_000_000_000i64;
        let mut s = OAuthBearerServer::new(UnsecuredValidatorOptions::default());
        let ok = s
            .evaluate(
                &message(&token(
                    r#"{"sub":"alice","exp":1000000100,"iat":1000000000}"#,
                )),
                now,
            )
            .unwrap();
        assert!(
            matches!(ok, Step::Complete { authorization_id, expires_at_ms: Some(e), .. }
            if authorization_id == "alice" && e == 1_000_000_100_000)
        );
        for bad in [
            token(r#"{"sub":"alice","exp":999999999}"#),
            token(r#"{"exp":1000000100}"#),
            token(r#"{"sub":"alice"}"#),
            format!("{}x", token(r#"{"sub":"alice","exp":1000000100}"#)),
            "a.b".into(),
            "!!.??.".into(),
        ] {
            assert!(s.evaluate(&message(&bad), now).is_err(), "{bad}");
        }
        for bad in [
            &b""[..],
            b"n,,",
            b"n,,\x01auth=Basic x\x01\x01",
            b"y,,\x01\x01",
        ] {
            assert!(s.evaluate(bad, now).is_err(), "{bad:?}");
        }
        let mut scoped = OAuthBearerServer::new(UnsecuredValidatorOptions {
            required_scope: vec!["kafka".into()],
            ..Default::default()
        });
        let t = token(r#"{"sub":"alice","exp":1000000100,"scope":"a kafka"}"#);
        assert!(scoped.evaluate(&message(&t), now).is_ok());
        let t = token(r#"{"sub":"alice","exp":1000000100,"scope":"a"}"#);
        assert!(scoped.evaluate(&message(&t), now).is_err());
    }
}
