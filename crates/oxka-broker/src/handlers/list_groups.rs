//! ListGroups with the state (v4+) and type (v5+) filters, over classic
//! and KIP-848 consumer groups.

use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::{GroupId, ListGroupsRequest, ListGroupsResponse};

use super::s;
use crate::authorizer::{is_authorized, AclOperation, ResourceType, CLUSTER_NAME};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ListGroupsRequest,
) -> Option<ListGroupsResponse> {
    let groups = match state.group_coordinator.list_groups() {
        Ok(g) => g,
        Err(e) => return Some(ListGroupsResponse::default().with_error_code(e.code())),
    };
    let states: Vec<String> = req.states_filter.iter().map(|s| s.to_lowercase()).collect();
    let types: Vec<String> = req.types_filter.iter().map(|s| s.to_lowercase()).collect();
    // Kafka: all groups with DESCRIBE on the cluster, else those the
    // principal may DESCRIBE (denials not logged)
    let all = is_authorized(
        state,
        ctx,
        AclOperation::Describe,
        ResourceType::Cluster,
        CLUSTER_NAME,
    );
    let listed = groups
        .into_iter()
        .filter(|g| {
            all || is_authorized(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Group,
                &g.group_id,
            )
        })
        .filter(|g| types.is_empty() || types.iter().any(|t| t == g.group_type))
        .filter(|g| states.is_empty() || states.contains(&g.state.to_lowercase()))
        .map(|g| {
            let mut l = ListedGroup::default()
                .with_group_id(GroupId(s(g.group_id)))
                .with_protocol_type(s(g.protocol_type));
            if ctx.version >= 4 {
                l = l.with_group_state(s(g.state));
            }
            if ctx.version >= 5 {
                l = l.with_group_type(s(g.group_type));
            }
            l
        })
        .collect();
    Some(ListGroupsResponse::default().with_groups(listed))
}
