//! DescribeCluster (KIP-700): cluster id, controller and brokers.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{BrokerId, DescribeClusterRequest, DescribeClusterResponse};

use super::{live_broker_views, reported_controller_id, s, AUTHORIZED_OPERATIONS_OMITTED};
use crate::authorizer::{authorized_operations, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

const ENDPOINT_TYPE_BROKERS: i8 = 1;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeClusterRequest,
) -> Option<DescribeClusterResponse> {
    let mut resp = DescribeClusterResponse::default()
        .with_cluster_id(s(state.cluster_id.clone()))
        .with_endpoint_type(ENDPOINT_TYPE_BROKERS)
        .with_cluster_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
    if ctx.version >= 1 && req.endpoint_type != ENDPOINT_TYPE_BROKERS {
        return Some(
            resp.with_error_code(ResponseError::MismatchedEndpointType.code())
                .with_error_message(Some(s("This broker serves the broker endpoint type only."))),
        );
    }
    if req.include_cluster_authorized_operations {
        resp.cluster_authorized_operations = authorized_operations(
            state,
            ctx.conn,
            ResourceType::Cluster,
            crate::authorizer::CLUSTER_NAME,
        );
    }
    resp.controller_id = BrokerId(reported_controller_id(state));
    resp.brokers = live_broker_views(state, ctx.conn)
        .into_iter()
        .map(|b| {
            DescribeClusterBroker::default()
                .with_broker_id(BrokerId(b.id))
                .with_host(s(b.host))
                .with_port(b.port)
                .with_rack(b.rack.map(s))
        })
        .collect();
    Some(resp)
}
