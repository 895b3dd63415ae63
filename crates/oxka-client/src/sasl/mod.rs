//! SASL mechanisms as Kafka clients speak them (see `connection` for the
//! SaslHandshake / SaslAuthenticate exchange).

pub mod jaas;
pub mod oauthbearer;
pub mod scram;
