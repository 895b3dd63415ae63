//! Kafka's `KafkaPrincipal`: who a connection authenticated as. The
//! authorizer (ACLs, a later step) decides on it; until then it is
//! carried on every connection and reachable from each request's context.

use std::fmt;

/// `type:name`, e.g. `User:alice` (Kafka's `KafkaPrincipal`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct KafkaPrincipal {
    pub principal_type: String,
    pub name: String,
}

impl KafkaPrincipal {
    /// Kafka's `KafkaPrincipal.USER_TYPE`.
    pub const USER_TYPE: &'static str = "User";

    /// `User:ANONYMOUS`: PLAINTEXT connections, TLS clients without a
    /// certificate, and SASL connections before they authenticate.
    pub fn anonymous() -> KafkaPrincipal {
        KafkaPrincipal::user("ANONYMOUS")
    }

    pub fn user(name: impl Into<String>) -> KafkaPrincipal {
        KafkaPrincipal {
            principal_type: Self::USER_TYPE.to_string(),
            name: name.into(),
        }
    }

    pub fn is_anonymous(&self) -> bool {
        self.principal_type == Self::USER_TYPE && self.name == "ANONYMOUS"
    }
}

impl fmt::Display for KafkaPrincipal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.principal_type, self.name)
    }
}
