//! One module per Kafka API. Each takes the decoded request and returns the
//! response (or `None` where Kafka sends nothing back).

pub mod acls;
pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod alter_configs;
pub mod api_versions;
pub mod client_quotas;
pub mod consumer_group_describe;
pub mod consumer_group_heartbeat;
pub mod create_partitions;
pub mod create_topics;
pub mod delete_groups;
pub mod delete_records;
pub mod delete_topics;
pub mod describe_cluster;
pub mod describe_configs;
pub mod describe_groups;
pub mod describe_producers;
pub mod describe_quorum;
pub mod describe_transactions;
pub mod elect_leaders;
pub mod end_txn;
pub mod fetch;
pub mod find_coordinator;
pub mod heartbeat;
pub mod incremental_alter_configs;
pub mod init_producer_id;
pub mod join_group;
pub mod leave_group;
pub mod list_groups;
pub mod list_offsets;
pub mod list_transactions;
pub mod metadata;
pub mod offset_commit;
pub mod offset_delete;
pub mod offset_fetch;
pub mod offset_for_leader_epoch;
pub mod partition_reassignments;
pub mod produce;
pub mod sasl;
pub mod sync_group;
pub mod txn_offset_commit;
pub mod user_scram_credentials;
pub mod write_txn_markers;

use kafka_protocol::protocol::StrBytes;

use crate::network::ConnectionInfo;
use crate::server::BrokerState;

/// The error code of a transaction API's failure: PRODUCER_FENCED (KIP-588)
/// only to request versions that know it (InitProducerId v4+, EndTxn,
/// AddPartitionsToTxn and AddOffsetsToTxn v2+), INVALID_PRODUCER_EPOCH to
/// older ones, as Kafka answers them.
pub(crate) fn txn_error_code(
    e: kafka_protocol::error::ResponseError,
    api: kafka_protocol::messages::ApiKey,
    version: i16,
) -> i16 {
    use kafka_protocol::error::ResponseError;
    let first_fenced_version = match api {
        kafka_protocol::messages::ApiKey::InitProducerId => 4,
        _ => 2,
    };
    match e {
        ResponseError::ProducerFenced if version < first_fenced_version => {
            ResponseError::InvalidProducerEpoch.code()
        }
        e => e.code(),
    }
}

pub(crate) fn s(v: impl Into<String>) -> StrBytes {
    StrBytes::from_string(v.into())
}

/// Sent where Kafka reports authorized operations that were not requested.
pub(crate) const AUTHORIZED_OPERATIONS_OMITTED: i32 = i32::MIN;

/// The host and port this broker gives clients: the advertised listener when
/// configured, else the address the client reached us on, so that both
/// local and remote clients get an address that works for them.
pub(crate) fn advertised_endpoint(state: &BrokerState, conn: &ConnectionInfo) -> (String, i32) {
    let port = conn.local.port();
    let bound = state
        .config
        .listeners
        .iter()
        .find(|l| l.port == port)
        .or_else(|| state.config.listeners.first());
    if let Some(adv) = bound
        .and_then(|b| {
            state
                .config
                .advertised_listeners
                .iter()
                .find(|a| a.name == b.name)
        })
        .or_else(|| state.config.advertised_listeners.first())
    {
        if !adv.host.is_empty() {
            return (adv.host.clone(), adv.port as i32);
        }
    }
    match bound {
        Some(b) if !b.host.is_empty() && b.host != "0.0.0.0" && b.host != "::" => {
            (b.host.clone(), port as i32)
        }
        _ => (conn.local.ip().to_string(), port as i32),
    }
}

/// A broker as Metadata and DescribeCluster list it.
pub(crate) struct BrokerView {
    pub id: i32,
    pub host: String,
    pub port: i32,
    pub rack: Option<String>,
}

/// The registered, unfenced brokers (Kafka's getAliveBrokerNodes) with
/// the endpoint of the listener this client connected to; this node as
/// [`advertised_endpoint`] gives it (the address the client reached when
/// nothing is advertised).
pub(crate) fn live_broker_views(state: &BrokerState, conn: &ConnectionInfo) -> Vec<BrokerView> {
    let image = state.controller.image();
    let listener = state
        .config
        .listeners
        .iter()
        .find(|l| l.port == conn.local.port())
        .map(|l| l.name.clone());
    image
        .live_brokers()
        .filter_map(|b| {
            if b.id == state.config.node_id {
                let (host, port) = advertised_endpoint(state, conn);
                return Some(BrokerView {
                    id: b.id,
                    host,
                    port,
                    rack: state.config.broker_rack.clone(),
                });
            }
            let e = b.endpoint(listener.as_deref())?;
            Some(BrokerView {
                id: b.id,
                host: e.host.clone(),
                port: e.port as i32,
                rack: b.rack.clone(),
            })
        })
        .collect()
}

/// The controller id a KRaft broker reports to clients: clients cannot
/// reach the controllers, and every broker forwards admin requests to the
/// active controller, so any live broker will do (Kafka picks a random
/// one). This broker itself is the one the client certainly reaches; a
/// dead active controller is never named.
pub(crate) fn reported_controller_id(state: &BrokerState) -> i32 {
    state.config.node_id
}
