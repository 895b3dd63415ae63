//! SASL/PLAIN (RFC 4616) against the users of the listener's JAAS config
//! (`user_<name>="<password>"` options of Kafka's PlainLoginModule).

use std::collections::BTreeMap;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use super::{AuthenticationFailed, MechanismServer, Step};

pub struct PlainServer {
    users: Arc<BTreeMap<String, String>>,
}

impl PlainServer {
    pub fn new(users: Arc<BTreeMap<String, String>>) -> PlainServer {
        PlainServer { users }
    }
}

fn fail(msg: &str) -> AuthenticationFailed {
    AuthenticationFailed(msg.to_string())
}

impl MechanismServer for PlainServer {
    fn evaluate(&mut self, token: &[u8], _now_ms: i64) -> Result<Step, AuthenticationFailed> {
        // authzid NUL authcid NUL passwd
        let parts: Vec<&[u8]> = token.split(|b| *b == 0).collect();
        let [authzid, username, password] = parts[..] else {
            return Err(AuthenticationFailed(format!(
                "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
                parts.len()
            )));
        };
        let (Ok(authzid), Ok(username)) =
            (std::str::from_utf8(authzid), std::str::from_utf8(username))
        else {
            return Err(fail("Invalid SASL/PLAIN response: not UTF-8"));
        };
        if username.is_empty() {
            return Err(fail("Authentication failed: username not specified"));
        }
        if password.is_empty() {
            return Err(fail("Authentication failed: password not specified"));
        }
        if !authzid.is_empty() && authzid != username {
            return Err(fail(
                "Authentication failed: Client requested an authorization id that is different from username",
            ));
        }
        let known = self
            .users
            .get(username)
            .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password)));
        if !known {
            return Err(fail("Authentication failed: Invalid username or password"));
        }
        Ok(Step::Complete {
            response: Vec::new(),
            authorization_id: username.to_string(),
            expires_at_ms: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server() -> PlainServer {
        PlainServer::new(Arc::new(BTreeMap::from([(
            "alice".to_string(),
            "alice-secret".to_string(),
        )])))
    }

    #[test]
    fn users_and_passwords() {
        let ok = server().evaluate(b"\0alice\0alice-secret", 0).unwrap();
        assert!(
            matches!(ok, Step::Complete { authorization_id, .. } if authorization_id == "alice")
        );
        assert!(server().evaluate(b"alice\0alice\0alice-secret", 0).is_ok());
        for bad in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0alice-secret",
            b"bob\0alice\0alice-secret",
            b"\0alice",
            b"\0\0x",
            b"\0alice\0",
            b"\0alice\0alice-secret\0",
            b"\0\xff\0x",
            b"",
        ] {
            assert!(server().evaluate(bad, 0).is_err(), "{bad:?}");
        }
    }
}
