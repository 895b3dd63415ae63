//! SASL/SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server's
//! side, against the credentials in the cluster metadata. The arithmetic
//! is `oxka_client::sasl::scram`'s, shared with the client and with
//! AlterUserScramCredentials.

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use oxka_client::sasl::scram::{attributes, nonce, unescape_username, ScramMechanism};
use oxka_controller::records::ScramCredential;
use subtle::ConstantTimeEq;

use super::{AuthenticationFailed, MechanismServer, Step};

/// Where the server finds a user's credential (the metadata image).
pub type CredentialLookup =
    Arc<dyn Fn(&str, ScramMechanism) -> Option<ScramCredential> + Send + Sync>;

enum State {
    /// Waiting for client-first-message.
    Initial,
    /// server-first-message sent.
    ServerFirstSent {
        username: String,
        gs2_header: String,
        nonce: String,
        auth_prefix: String,
        credential: ScramCredential,
    },
    Done,
}

pub struct ScramServer {
    mechanism: ScramMechanism,
    lookup: CredentialLookup,
    state: State,
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism, lookup: CredentialLookup) -> ScramServer {
        ScramServer {
            mechanism,
            lookup,
            state: State::Initial,
        }
    }

    fn invalid_credentials(&self) -> AuthenticationFailed {
        AuthenticationFailed(format!(
            "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
            self.mechanism.name()
        ))
    }

    fn client_first(&mut self, msg: &str) -> Result<Step, AuthenticationFailed> {
        let bad = |what: &str| {
            AuthenticationFailed(format!("Invalid SCRAM client first message: {what}"))
        };
        // gs2-header: channel-binding flag, authzid, then the bare message
        let (flag, rest) = msg.split_once(',').ok_or_else(|| bad("no GS2 header"))?;
        match flag {
            "n" | "y" => {}
            _ => return Err(bad("channel binding is not supported")),
        }
        let (authzid_raw, bare) = rest.split_once(',').ok_or_else(|| bad("no GS2 header"))?;
        let authzid = match authzid_raw {
            "" => None,
            a => Some(
                a.strip_prefix("a=")
                    .and_then(unescape_username)
                    .ok_or_else(|| bad("malformed authorization id"))?,
            ),
        };
        let gs2_header = format!("{flag},{authzid_raw},");
        let attrs = attributes(bare);
        if attrs.iter().any(|(k, _)| *k == 'm') {
            return Err(bad("mandatory extensions are not supported"));
        }
        let mut it = attrs.iter();
        let username = match it.next() {
            Some(('n', u)) => unescape_username(u).ok_or_else(|| bad("malformed user name"))?,
            _ => return Err(bad("no user name")),
        };
        let client_nonce = match it.next() {
            Some(('r', n)) if !n.is_empty() => *n,
            _ => return Err(bad("no nonce")),
        };
        // Kafka's extension for delegation tokens, which oxka has none of
        if bare.split(',').any(|a| a.starts_with("tokenauth=")) {
            return Err(AuthenticationFailed(
                "Authentication failed: delegation tokens are not supported".into(),
            ));
        }
        if authzid.as_deref().is_some_and(|a| a != username) {
            return Err(AuthenticationFailed(
                "Authentication failed: Client requested an authorization id that is different from username".into(),
            ));
        }
        let credential = (self.lookup)(&username, self.mechanism).ok_or_else(|| {
            AuthenticationFailed("Authentication failed: Invalid user credentials".into())
        })?;
        let nonce = format!("{client_nonce}{}", nonce());
        let server_first = format!(
            "r={nonce},s={},i={}",
            B64.encode(&credential.salt),
            credential.iterations
        );
        self.state = State::ServerFirstSent {
            username,
            gs2_header,
            nonce,
            auth_prefix: format!("{bare},{server_first}"),
            credential,
        };
        Ok(Step::Challenge(server_first.into_bytes()))
    }

    fn client_final(&mut self, msg: &str) -> Result<Step, AuthenticationFailed> {
        let State::ServerFirstSent {
            username,
            gs2_header,
            nonce,
            auth_prefix,
            credential,
        } = std::mem::replace(&mut self.state, State::Done)
        else {
            return Err(AuthenticationFailed("Unexpected SCRAM message".into()));
        };
        let bad = |what: &str| {
            AuthenticationFailed(format!("Invalid SCRAM client final message: {what}"))
        };
        let (without_proof, proof) = msg.rsplit_once(",p=").ok_or_else(|| bad("no proof"))?;
        let attrs = attributes(without_proof);
        let channel_binding = match attrs.first() {
            Some(('c', c)) => B64
                .decode(c)
                .map_err(|_| bad("malformed channel binding"))?,
            _ => return Err(bad("no channel binding")),
        };
        if channel_binding != gs2_header.as_bytes() {
            return Err(bad("the channel binding does not match the GS2 header"));
        }
        // Kafka's check is `endsWith`, not equality: librdkafka before 2.x
        // fixed it sent its own nonce again in front of the combined one
        match attrs.get(1) {
            Some(('r', r)) if r.ends_with(nonce.as_str()) => {}
            _ => return Err(bad("the nonce does not match")),
        }
        let proof = B64.decode(proof).map_err(|_| bad("malformed proof"))?;
        let m = self.mechanism;
        if proof.len() != m.key_len() {
            return Err(self.invalid_credentials());
        }
        let auth_message = format!("{auth_prefix},{without_proof}");
        let signature = m.hmac(&credential.stored_key.0, auth_message.as_bytes());
        let client_key: Vec<u8> = proof.iter().zip(&signature).map(|(a, b)| a ^ b).collect();
        if !bool::from(m.hash(&client_key).ct_eq(&credential.stored_key.0)) {
            return Err(self.invalid_credentials());
        }
        let server_signature = m.hmac(&credential.server_key.0, auth_message.as_bytes());
        Ok(Step::Complete {
            response: format!("v={}", B64.encode(server_signature)).into_bytes(),
            authorization_id: username,
            expires_at_ms: None,
        })
    }
}

impl MechanismServer for ScramServer {
    fn evaluate(&mut self, token: &[u8], _now_ms: i64) -> Result<Step, AuthenticationFailed> {
        let msg = std::str::from_utf8(token)
            .map_err(|_| AuthenticationFailed("Invalid SCRAM message: not UTF-8".into()))?;
        match self.state {
            State::Initial => self.client_first(msg),
            State::ServerFirstSent { .. } => self.client_final(msg),
            State::Done => Err(AuthenticationFailed("Unexpected SCRAM message".into())),
        }
    }
}

/// The credential AlterUserScramCredentials stores for a salted password.
pub fn credential(
    mechanism: ScramMechanism,
    salt: Vec<u8>,
    salted_password: &[u8],
    iterations: i32,
) -> ScramCredential {
    use oxka_controller::records::Secret;
    ScramCredential {
        salt,
        stored_key: Secret(mechanism.stored_key(salted_password)),
        server_key: Secret(mechanism.server_key(salted_password)),
        iterations,
    }
}

#[cfg(test)]
mod tests {
    use oxka_client::sasl::scram::ScramClient;
    use proptest::prelude::*;

    use super::*;

    fn lookup() -> CredentialLookup {
        Arc::new(|user: &str, m: ScramMechanism| {
            (user == "alice").then(|| {
                let salt = b"salt-of-alice".to_vec();
                let salted = m.salted_password(b"alice-secret", &salt, 4096);
                credential(m, salt, &salted, 4096)
            })
        })
    }

    fn exchange(m: ScramMechanism, user: &str, password: &str) -> Result<String, String> {
        let mut server = ScramServer::new(m, lookup());
        let mut client = ScramClient::new(m, user, password);
        let first = match server
            .evaluate(&client.client_first(), 0)
            .map_err(|e| e.0)?
        {
            Step::Challenge(c) => c,
            Step::Complete { .. } => return Err("completed early".into()),
        };
        let fin = client.client_final(&first).map_err(|e| e.0)?;
        match server.evaluate(&fin, 0).map_err(|e| e.0)? {
            Step::Complete {
                response,
                authorization_id,
                ..
            } => {
                client.verify_server_final(&response).map_err(|e| e.0)?;
                Ok(authorization_id)
            }
            Step::Challenge(_) => Err("no completion".into()),
        }
    }

    #[test]
    fn both_mechanisms_authenticate_and_refuse() {
        for m in [ScramMechanism::Sha256, ScramMechanism::Sha512] {
            assert_eq!(exchange(m, "alice", "alice-secret").unwrap(), "alice");
            let wrong = exchange(m, "alice", "wrong").unwrap_err();
            assert!(wrong.contains("invalid credentials"), "{wrong}");
            assert!(exchange(m, "bob", "alice-secret").is_err());
        }
    }

    #[test]
    fn malformed_messages_are_refused() {
        for first in [
            &b"p=tls-unique,,n=alice,r=x"[..],
            b"n,,r=x,n=alice",
            b"n,,n=alice",
            b"n,a=bob,n=alice,r=x",
            b"n,,n=al=ice,r=x",
            b"n,,m=x,n=alice,r=x",
            b"",
            b"n",
        ] {
            let mut s = ScramServer::new(ScramMechanism::Sha256, lookup());
            assert!(s.evaluate(first, 0).is_err(), "{first:?}");
        }
    }

    proptest! {
        /// Random bytes at either step never panic the server.
        #[test]
        fn random_messages_do_not_panic(
            first in proptest::collection::vec(any::<u8>(), 0..200),
            second in proptest::collection::vec(any::<u8>(), 0..200),
            prefix in any::<bool>(),
        ) {
            let mut s = ScramServer::new(ScramMechanism::Sha512, lookup());
            let mut msg = if prefix { b"n,,n=alice,r=abc".to_vec() } else { Vec::new() };
            msg.extend_from_slice(&first);
            let _ = s.evaluate(&msg, 0);
            let _ = s.evaluate(&second, 0);
            let mut p = super::super::plain::PlainServer::new(Default::default());
            let _ = p.evaluate(&first, 0);
        }
    }
}
