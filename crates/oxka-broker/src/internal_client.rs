//! The clients a broker runs against Kafka listeners of its own cluster
//! (the console's admin client and message-browser consumer, the consumer
//! lag's ListOffsets): built here, once, like the replica fetchers' and
//! transaction markers' connections, on this node's inter-broker endpoint
//! with the inter-broker listener's protocol, TLS trust and SASL user
//! ([`crate::config::security::inter_broker_client`]). They authenticate
//! as the broker does, so with an authorizer they act with the
//! inter-broker principal's rights (which Kafka deployments make a super
//! user), never as `User:ANONYMOUS` on a protected listener.

use std::time::Duration;

use oxka_client::{Admin, ClientConfig};

use crate::server::BrokerState;

/// Why an internal client cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum InternalClientError {
    #[error("this node has not registered with the controller yet")]
    NotRegistered,
    /// The inter-broker listener's client settings are unusable (a node
    /// alone starts anyway; see `KafkaConfig::inter_broker_client`).
    #[error("the inter-broker client settings: {0}")]
    Settings(String),
    #[error(transparent)]
    Client(#[from] oxka_client::Error),
}

/// A client config bootstrapped at this node's inter-broker endpoint,
/// with that listener's security, `client.id` and both request timeouts
/// set to `timeout`. The client finds every other broker from there.
pub fn client_config(
    state: &BrokerState,
    client_id: &str,
    timeout: Duration,
) -> Result<ClientConfig, InternalClientError> {
    let security = state
        .config
        .inter_broker_client
        .as_ref()
        .map_err(|e| InternalClientError::Settings(e.clone()))?;
    let bootstrap = own_endpoint(state).ok_or(InternalClientError::NotRegistered)?;
    let mut cfg = security.settings.clone();
    cfg.set("bootstrap.servers", bootstrap);
    cfg.set("client.id", client_id);
    cfg.set("request.timeout.ms", timeout.as_millis().to_string());
    cfg.set("default.api.timeout.ms", timeout.as_millis().to_string());
    Ok(cfg)
}

/// An admin client over [`client_config`].
pub fn admin(
    state: &BrokerState,
    client_id: &str,
    timeout: Duration,
) -> Result<Admin, InternalClientError> {
    Ok(Admin::new(&client_config(state, client_id, timeout)?)?)
}

/// `host:port` of this node's inter-broker endpoint as registered (the
/// address other brokers reach it on, and the name its certificate must
/// carry); a wildcard host becomes loopback.
pub fn own_endpoint(state: &BrokerState) -> Option<String> {
    let image = state.controller.image();
    let me = image.brokers.get(&state.config.node_id)?;
    let e = me.endpoint(state.config.inter_broker_endpoint_listener())?;
    let host = match e.host.as_str() {
        "" | "0.0.0.0" | "::" => "127.0.0.1",
        h => h,
    };
    Some(if host.contains(':') {
        format!("[{host}]:{}", e.port)
    } else {
        format!("{host}:{}", e.port)
    })
}
