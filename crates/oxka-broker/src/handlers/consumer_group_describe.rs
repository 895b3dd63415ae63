//! ConsumerGroupDescribe (KIP-848, v0–1). Classic and unknown groups answer
//! GROUP_ID_NOT_FOUND with Kafka's messages, which is what makes clients
//! fall back to DescribeGroups for them.

use kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, DescribedGroup, Member, TopicPartitions,
};
use kafka_protocol::messages::{
    ConsumerGroupDescribeRequest, ConsumerGroupDescribeResponse, TopicName,
};

use super::{s, AUTHORIZED_OPERATIONS_OMITTED};
use crate::authorizer::{authorize, authorized_operations, AclOperation, ResourceType};
use crate::coordinator::group::assignor;
use crate::metadata::MetadataImage;
use crate::request::RequestContext;
use crate::server::BrokerState;

/// Member type reported from v1: the member uses the consumer protocol.
const CONSUMER_MEMBER_TYPE: i8 = 1;

/// Topic ids resolved to names; topics deleted meanwhile are left out.
fn assignment(a: &assignor::Assignment, image: &MetadataImage) -> Assignment {
    Assignment::default().with_topic_partitions(
        a.iter()
            .filter_map(|(id, ps)| {
                let t = image.topic_by_id(id)?;
                Some(
                    TopicPartitions::default()
                        .with_topic_id(*id)
                        .with_topic_name(TopicName(s(t.name.clone())))
                        .with_partitions(ps.iter().copied().collect()),
                )
            })
            .collect(),
    )
}

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ConsumerGroupDescribeRequest,
) -> Option<ConsumerGroupDescribeResponse> {
    let image = state.controller.image();
    let mut groups: Vec<DescribedGroup> = req
        .group_ids
        .iter()
        .map(|id| {
            let base = DescribedGroup::default()
                .with_group_id(id.clone())
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED);
            // Kafka: DESCRIBE on the group
            if !authorize(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Group,
                id.0.as_str(),
            ) {
                return base.with_error_code(
                    kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
                );
            }
            match state.group_coordinator.describe_consumer_group(id) {
                Err((e, msg)) => base
                    .with_error_code(e.code())
                    .with_error_message(Some(s(msg))),
                Ok(d) => base
                    .with_group_state(s(d.state))
                    .with_group_epoch(d.group_epoch)
                    .with_assignment_epoch(d.assignment_epoch)
                    .with_assignor_name(s(d.assignor))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|dm| {
                                let m = dm.member;
                                let r = Member::default()
                                    .with_member_id(s(m.member_id))
                                    .with_instance_id(m.instance_id.map(s))
                                    .with_rack_id(m.rack_id.map(s))
                                    .with_member_epoch(m.member_epoch)
                                    .with_client_id(s(m.client_id))
                                    .with_client_host(s(m.client_host))
                                    .with_subscribed_topic_names(
                                        m.subscribed_topic_names
                                            .into_iter()
                                            .map(|t| TopicName(s(t)))
                                            .collect(),
                                    )
                                    .with_subscribed_topic_regex(m.subscribed_topic_regex.map(s))
                                    .with_assignment(assignment(&m.assigned, &image))
                                    .with_target_assignment(assignment(&dm.target, &image));
                                if ctx.version >= 1 {
                                    r.with_member_type(CONSUMER_MEMBER_TYPE)
                                } else {
                                    r
                                }
                            })
                            .collect(),
                    ),
            }
        })
        .collect();
    // KAFKA-18813: a group whose members are assigned (or are to be
    // assigned) a topic the caller may not describe is not described
    for g in groups.iter_mut().filter(|g| g.error_code == 0) {
        let topics: std::collections::BTreeSet<&str> = g
            .members
            .iter()
            .flat_map(|m| {
                m.assignment
                    .topic_partitions
                    .iter()
                    .chain(&m.target_assignment.topic_partitions)
            })
            .map(|tp| tp.topic_name.0.as_str())
            .collect();
        let visible = topics
            .into_iter()
            .all(|t| authorize(state, ctx, AclOperation::Describe, ResourceType::Topic, t));
        if !visible {
            *g = DescribedGroup::default()
                .with_group_id(g.group_id.clone())
                .with_authorized_operations(AUTHORIZED_OPERATIONS_OMITTED)
                .with_error_code(
                    kafka_protocol::error::ResponseError::TopicAuthorizationFailed.code(),
                );
        }
    }
    // as Kafka: only for groups described without error
    if req.include_authorized_operations {
        for g in groups.iter_mut().filter(|g| g.error_code == 0) {
            g.authorized_operations =
                authorized_operations(state, ctx.conn, ResourceType::Group, g.group_id.0.as_str());
        }
    }
    Some(ConsumerGroupDescribeResponse::default().with_groups(groups))
}
