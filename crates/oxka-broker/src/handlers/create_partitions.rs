//! CreatePartitions: grow a topic (never shrink it).

use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::{CreatePartitionsRequest, CreatePartitionsResponse};

use super::s;
use kafka_protocol::error::ResponseError;

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: CreatePartitionsRequest,
) -> Option<CreatePartitionsResponse> {
    let timeout = crate::controller::request_timeout(req.timeout_ms);
    let results = req
        .topics
        .into_iter()
        .map(|t| {
            let assignments = t.assignments.map(|a| {
                a.into_iter()
                    .map(|x| x.broker_ids.into_iter().map(|b| b.0).collect())
                    .collect()
            });
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            // Kafka: ALTER on the topic
            if !authorize(
                state,
                ctx,
                AclOperation::Alter,
                ResourceType::Topic,
                t.name.0.as_str(),
            ) {
                return result.with_error_code(ResponseError::TopicAuthorizationFailed.code());
            }
            // KIP-599: the partitions added against the client's
            // controller_mutation_rate (strict from v3)
            if !req.validate_only {
                let current = state
                    .controller
                    .image()
                    .topic(t.name.0.as_str())
                    .map_or(0, |info| info.partitions.len());
                let added = (t.count.max(0) as usize).saturating_sub(current);
                if let Err(e) = crate::quota::record_mutation(ctx, added, 3) {
                    return result
                        .with_error_code(e.code.code())
                        .with_error_message(Some(s(e.message)));
                }
            }
            match state.controller.create_partitions_within(
                t.name.0.as_str(),
                t.count,
                assignments,
                req.validate_only,
                timeout,
            ) {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(e.code.code())
                    .with_error_message(Some(s(e.message))),
            }
        })
        .collect();
    Some(CreatePartitionsResponse::default().with_results(results))
}
