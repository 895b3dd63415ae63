//! DeleteTopics: by name (all versions) or by topic id (v6+).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::{DeleteTopicsRequest, DeleteTopicsResponse, TopicName};
use uuid::Uuid;

use super::s;
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
    let responses = targets
        .into_iter()
        .map(|(name, id)| {
            let resolved = match &name {
                Some(n) => Ok(n.clone()),
                None => state
                    .controller
                    .image()
                    .topic_by_id(&id)
                    .map(|t| t.name.clone())
                    .ok_or(ResponseError::UnknownTopicId),
            };
            let result = DeletableTopicResult::default()
                .with_name(name.clone().map(|n| TopicName(s(n))))
                .with_topic_id(id);
            match resolved {
                Err(code) => result
                    .with_error_code(code.code())
                    .with_error_message(Some(s(format!("Topic id {id} does not exist")))),
                Ok(n) => match state.controller.delete_topic(&n) {
                    Ok(t) => result
                        .with_name(Some(TopicName(s(t.name))))
                        .with_topic_id(t.id),
                    Err(e) => result
                        .with_error_code(e.code.code())
                        .with_error_message(Some(s(e.message))),
                },
            }
        })
        .collect();
    Some(DeleteTopicsResponse::default().with_responses(responses))
}
