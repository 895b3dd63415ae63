//! DescribeGroups: state, protocol and members (with metadata and
//! assignment while Stable, as Kafka reports them). KIP-848 consumer groups
//! are not classic groups: Dead (v6+: GROUP_ID_NOT_FOUND), as on Kafka.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::{DescribeGroupsRequest, DescribeGroupsResponse};

use super::{s, AUTHORIZED_OPERATIONS_OMITTED};
use crate::authorizer::{authorize, authorized_operations, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeGroupsRequest,
) -> Option<DescribeGroupsResponse> {
    let mut groups: Vec<DescribedGroup> = req
        .groups
        .iter()
        .map(|id| {
            let base = DescribedGroup::default().with_group_id(id.clone());
            let base = if ctx.version >= 3 {
                base.with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
            } else {
                base
            };
            // Kafka: DESCRIBE on the group
            if !authorize(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Group,
                id.0.as_str(),
            ) {
                return base.with_error_code(ResponseError::GroupAuthorizationFailed.code());
            }
            if state.group_coordinator.is_consumer_group(id) {
                // Kafka describes only classic groups here; clients fall
                // back to ConsumerGroupDescribe for the others.
                return if ctx.version >= 6 {
                    base.with_group_state(s("Dead"))
                        .with_error_code(ResponseError::GroupIdNotFound.code())
                        .with_error_message(Some(s(format!(
                            "Group {} is not a classic group.",
                            id.0
                        ))))
                } else {
                    base.with_group_state(s("Dead"))
                };
            }
            match state.group_coordinator.describe_group(id) {
                Err(e) => base.with_error_code(e.code()),
                Ok(None) if ctx.version >= 6 => base
                    .with_group_state(s("Dead"))
                    .with_error_code(ResponseError::GroupIdNotFound.code())
                    .with_error_message(Some(s(format!("Group {} not found.", id.0)))),
                Ok(None) => base.with_group_state(s("Dead")),
                Ok(Some(d)) => base
                    .with_group_state(s(d.state.name()))
                    .with_protocol_type(s(d.protocol_type))
                    .with_protocol_data(s(d.protocol_data))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|m| {
                                let r = DescribedGroupMember::default()
                                    .with_member_id(s(m.member_id))
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_member_metadata(m.metadata)
                                    .with_member_assignment(m.assignment);
                                if ctx.version >= 4 {
                                    r.with_group_instance_id(m.group_instance_id.map(s))
                                } else {
                                    r
                                }
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    // KIP-430, as Kafka: only for groups described without error
    if ctx.version >= 3 && req.include_authorized_operations {
        for g in groups.iter_mut().filter(|g| g.error_code == 0) {
            g.authorized_operations =
                authorized_operations(state, ctx.conn, ResourceType::Group, g.group_id.0.as_str());
        }
    }
    Some(DescribeGroupsResponse::default().with_groups(groups))
}
