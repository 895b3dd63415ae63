//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677): the primitives
//! both sides use, and the client's side of the exchange. The broker's
//! side (`oxka-broker`'s `network/sasl/scram`) and its
//! AlterUserScramCredentials use the same primitives, so the two can never
//! disagree on a key.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256, Sha512};

/// A SCRAM mechanism, with Kafka's `ScramMechanism` type codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

/// Kafka's bounds on iterations (`ScramMechanism.minIterations` and the
/// controller's 16384 maximum).
pub const MIN_ITERATIONS: i32 = 4096;
pub const MAX_ITERATIONS: i32 = 16384;

impl ScramMechanism {
    /// By SASL mechanism name (`SCRAM-SHA-256`, `SCRAM-SHA-512`).
    pub fn from_name(name: &str) -> Option<ScramMechanism> {
        match name {
            "SCRAM-SHA-256" => Some(ScramMechanism::Sha256),
            "SCRAM-SHA-512" => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    /// Kafka's type code in AlterUserScramCredentials and the metadata.
    pub fn from_type(code: i8) -> Option<ScramMechanism> {
        match code {
            1 => Some(ScramMechanism::Sha256),
            2 => Some(ScramMechanism::Sha512),
            _ => None,
        }
    }

    pub fn type_code(self) -> i8 {
        match self {
            ScramMechanism::Sha256 => 1,
            ScramMechanism::Sha512 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            ScramMechanism::Sha256 => "SCRAM-SHA-256",
            ScramMechanism::Sha512 => "SCRAM-SHA-512",
        }
    }

    /// The hash's output length: the length of every key and proof.
    pub fn key_len(self) -> usize {
        match self {
            ScramMechanism::Sha256 => 32,
            ScramMechanism::Sha512 => 64,
        }
    }

    /// RFC 5802's `Hi`: PBKDF2 with HMAC of the mechanism's hash.
    pub fn salted_password(self, password: &[u8], salt: &[u8], iterations: u32) -> Vec<u8> {
        let mut out = vec![0u8; self.key_len()];
        match self {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac::<Sha256>(password, salt, iterations, &mut out)
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac::<Sha512>(password, salt, iterations, &mut out)
            }
        }
        out
    }

    pub fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => {
                let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            ScramMechanism::Sha512 => {
                let mut m = <Hmac<Sha512> as Mac>::new_from_slice(key)
                    .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    pub fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            ScramMechanism::Sha256 => Sha256::digest(data).to_vec(),
            ScramMechanism::Sha512 => Sha512::digest(data).to_vec(),
        }
    }

    /// `ClientKey = HMAC(SaltedPassword, "Client Key")`.
    pub fn client_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Client Key")
    }

    /// `StoredKey = H(ClientKey)`: what the server keeps to check proofs.
    pub fn stored_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hash(&self.client_key(salted_password))
    }

    /// `ServerKey = HMAC(SaltedPassword, "Server Key")`.
    pub fn server_key(self, salted_password: &[u8]) -> Vec<u8> {
        self.hmac(salted_password, b"Server Key")
    }
}

/// A random printable nonce (no ',' so it needs no escaping).
pub fn nonce() -> String {
    use rand::distributions::Alphanumeric;
    use rand::Rng;
    rand::thread_rng()
        .sample_iter(&Alphanumeric)
        .take(32)
        .map(char::from)
        .collect()
}

/// A random salt for a new credential.
pub fn salt() -> Vec<u8> {
    use rand::RngCore;
    let mut s = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut s);
    s
}

/// RFC 5802's `saslname`: ',' and '=' escaped.
pub fn escape_username(name: &str) -> String {
    name.replace('=', "=3D").replace(',', "=2C")
}

/// The inverse of [`escape_username`]; `None` for a stray '='.
pub fn unescape_username(name: &str) -> Option<String> {
    let mut out = String::with_capacity(name.len());
    let mut rest = name;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        let code = rest.get(i + 1..i + 3)?;
        out.push(match code {
            "2C" => ',',
            "3D" => '=',
            _ => return None,
        });
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// `key=value` attributes of a SCRAM message, in order.
pub fn attributes(msg: &str) -> Vec<(char, &str)> {
    msg.split(',')
        .filter_map(|a| {
            let mut c = a.chars();
            let key = c.next()?;
            a.get(1..)?.strip_prefix('=').map(|v| (key, v))
        })
        .collect()
}

#[derive(Debug, thiserror::Error)]
#[error("SCRAM: {0}")]
pub struct ScramError(pub String);

/// The client's side of one SCRAM exchange.
pub struct ScramClient {
    mechanism: ScramMechanism,
    username: String,
    password: String,
    client_nonce: String,
    client_first_bare: String,
    expected_server_signature: Option<Vec<u8>>,
}

impl ScramClient {
    pub fn new(mechanism: ScramMechanism, username: &str, password: &str) -> ScramClient {
        ScramClient::with_nonce(mechanism, username, password, nonce())
    }

    pub fn with_nonce(
        mechanism: ScramMechanism,
        username: &str,
        password: &str,
        client_nonce: String,
    ) -> ScramClient {
        let client_first_bare = format!("n={},r={client_nonce}", escape_username(username));
        ScramClient {
            mechanism,
            username: username.to_string(),
            password: password.to_string(),
            client_nonce,
            client_first_bare,
            expected_server_signature: None,
        }
    }

    /// client-first-message (no channel binding, no authzid).
    pub fn client_first(&self) -> Vec<u8> {
        format!("n,,{}", self.client_first_bare).into_bytes()
    }

    /// client-final-message from the server-first-message.
    pub fn client_final(&mut self, server_first: &[u8]) -> Result<Vec<u8>, ScramError> {
        let server_first = std::str::from_utf8(server_first)
            .map_err(|_| ScramError("server-first-message is not UTF-8".into()))?;
        if let Some(e) = server_first.strip_prefix("e=") {
            return Err(ScramError(format!("server error: {e}")));
        }
        let attrs = attributes(server_first);
        let get = |k: char| attrs.iter().find(|(key, _)| *key == k).map(|(_, v)| *v);
        let nonce = get('r').ok_or_else(|| ScramError("no nonce from the server".into()))?;
        if !nonce.starts_with(&self.client_nonce) || nonce.len() == self.client_nonce.len() {
            return Err(ScramError("the server's nonce does not extend ours".into()));
        }
        let salt = get('s')
            .and_then(|s| B64.decode(s).ok())
            .ok_or_else(|| ScramError("no valid salt from the server".into()))?;
        let iterations: u32 = get('i')
            .and_then(|i| i.parse().ok())
            .filter(|i| *i > 0 && *i <= 1_000_000)
            .ok_or_else(|| ScramError("no valid iteration count from the server".into()))?;
        let m = self.mechanism;
        let salted = m.salted_password(self.password.as_bytes(), &salt, iterations);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let client_key = m.client_key(&salted);
        let signature = m.hmac(&m.hash(&client_key), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        self.expected_server_signature =
            Some(m.hmac(&m.server_key(&salted), auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)).into_bytes())
    }

    /// Checks the server-final-message: the server knew the credential too.
    pub fn verify_server_final(&self, server_final: &[u8]) -> Result<(), ScramError> {
        let msg = std::str::from_utf8(server_final)
            .map_err(|_| ScramError("server-final-message is not UTF-8".into()))?;
        if let Some(e) = msg.strip_prefix("e=") {
            return Err(ScramError(format!("server error: {e}")));
        }
        let v = msg
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.split(',').next().unwrap_or(v)).ok())
            .ok_or_else(|| ScramError("no server signature".into()))?;
        match &self.expected_server_signature {
            Some(expected) if *expected == v => Ok(()),
            _ => Err(ScramError(format!(
                "the server's signature is wrong: it does not know {}'s credential",
                self.username
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's SCRAM-SHA-256 example (user "user", password "pencil").
    #[test]
    fn rfc7677_example() {
        let mut c = ScramClient::with_nonce(
            ScramMechanism::Sha256,
            "user",
            "pencil",
            "rOprNGfwEbeRWgbNEkqO".into(),
        );
        assert_eq!(c.client_first(), b"n,,n=user,r=rOprNGfwEbeRWgbNEkqO");
        let server_first = b"r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let fin = c.client_final(server_first).unwrap();
        assert_eq!(
            String::from_utf8(fin).unwrap(),
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        c.verify_server_final(b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .unwrap();
        assert!(c.verify_server_final(b"v=AAAA").is_err());
    }

    #[test]
    fn usernames_escape_both_ways() {
        assert_eq!(escape_username("a,b=c"), "a=2Cb=3Dc");
        assert_eq!(unescape_username("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(unescape_username("a=4"), None);
        assert_eq!(unescape_username("a=zz"), None);
    }
}
