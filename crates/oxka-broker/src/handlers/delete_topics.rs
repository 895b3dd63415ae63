//! DeleteTopics: by name (all versions) or by topic id (v6+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::s;
use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DeleteTopicsRequest,
) -> Option<DeleteTopicsResponse> {
    let targets: Vec<(Option<String>, Uuid)> = if ctx.version >= 6 {
        req.topics
            .into_iter()
            .map(|t| (t.name.map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        req.topic_names
            .into_iter()
            .map(|n| (Some(n.0.to_string()), Uuid::nil()))
            .collect()
    };
    let image = state.controller.image();
    let resolved: Vec<Result<String, ResponseError>> = targets
        .iter()
        .map(|(name, id)| match name {
            Some(n) => Ok(n.clone()),
            None => image
                .topic_by_id(id)
                .map(|t| t.name.clone())
                .ok_or(ResponseError::UnknownTopicId),
        })
        .collect();
    // Kafka: DELETE on each topic
    let resolved: Vec<Result<String, ResponseError>> = resolved
        .into_iter()
        .map(|r| {
            r.and_then(|name| {
                if !authorize(state, ctx, AclOperation::Delete, ResourceType::Topic, &name) {
                    return Err(ResponseError::TopicAuthorizationFailed);
                }
                // KIP-599: its partitions against the client's
                // controller_mutation_rate (strict from v5)
                let partitions = image.topic(&name).map_or(0, |t| t.partitions.len());
                crate::quota::record_mutation(ctx, partitions, 5).map_err(|e| e.code)?;
                Ok(name)
            })
        })
        .collect();
    // every named topic in one metadata batch, within the request's timeout
    let names: Vec<String> = resolved.iter().filter_map(|r| r.clone().ok()).collect();
    let controller = state.controller.clone();
    let timeout = crate::controller::request_timeout(req.timeout_ms);
    let deleted = {
        let names = names.clone();
        tokio::task::spawn_blocking(move || controller.delete_topics(&names, timeout))
            .await
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "topic deletion task failed");
                Vec::new()
            })
    };
    let mut deleted = deleted.into_iter();
    let responses = targets
        .into_iter()
        .zip(resolved)
        .map(|((name, id), resolved)| {
            let result = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(s(n))))
                .with_topic_id(id);
            match resolved {
                Err(code) if code == ResponseError::UnknownTopicId => result
                    .with_error_code(code.code())
                    .with_error_message(Some(s(format!("Topic id {id} does not exist")))),
                Err(code) if code == ResponseError::ThrottlingQuotaExceeded => result
                    .with_error_code(code.code())
                    .with_error_message(Some(s("The throttling quota has been exceeded."))),
                Err(code) => result.with_error_code(code.code()),
                Ok(_) => match deleted.next() {
                    Some(Ok(t)) => result
                        .with_name(Some(TopicName(s(t.name))))
                        .with_topic_id(t.id),
                    Some(Err(e)) => result
                        .with_error_code(e.code.code())
                        .with_error_message(Some(s(e.message))),
                    None => result.with_error_code(ResponseError::UnknownServerError.code()),
                },
            }
        })
        .collect();
    Some(DeleteTopicsResponse::default().with_responses(responses))
}
