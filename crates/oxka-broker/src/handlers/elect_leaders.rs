//! ElectLeaders (API 43, KIP-460): a preferred election moves leadership
//! back to each partition's first replica (ELECTION_NOT_NEEDED where it
//! leads already); an unclean one gives a leaderless partition any live
//! replica. Decided by the active controller.

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::elect_leaders_response::{PartitionResult, ReplicaElectionResult};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse, TopicName};

use super::s;
use crate::authorizer::{authorize_cluster, AclOperation};
use crate::quorum::protocol::{Command, CommandOutcome};
use crate::request::RequestContext;
use crate::server::BrokerState;

/// One partition's outcome: success or (error code, message).
type Outcome = ((String, i32), Result<(), (i16, String)>);

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ElectLeadersRequest,
) -> Option<ElectLeadersResponse> {
    let partitions: Option<Vec<(String, i32)>> = req.topic_partitions.as_ref().map(|ts| {
        ts.iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.topic.0.to_string(), *p)))
            .collect()
    });
    // Kafka: ALTER on the cluster
    if !authorize_cluster(state, ctx, AclOperation::Alter) {
        return Some(error_response(
            partitions,
            ctx.version,
            ResponseError::ClusterAuthorizationFailed.code(),
            "",
        ));
    }
    // v0 has no election type: preferred
    let election_type = if ctx.version >= 1 {
        req.election_type
    } else {
        0
    };
    let cmd = Command::ElectLeaders {
        election_type,
        partitions: partitions.clone(),
    };
    let timeout = crate::controller::request_timeout(req.timeout_ms);
    let results: Vec<Outcome> = match state.controller.submit(cmd, timeout) {
        Ok(CommandOutcome::Elections(r)) => r
            .into_iter()
            .map(|(tp, r)| (tp, r.map_err(|e| (e.code, e.message))))
            .collect(),
        Ok(_) => {
            return Some(error_response(
                partitions,
                ctx.version,
                ResponseError::UnknownServerError.code(),
                "",
            ))
        }
        Err(e) => {
            return Some(error_response(
                partitions,
                ctx.version,
                e.code.code(),
                &e.message,
            ))
        }
    };
    Some(ElectLeadersResponse::default().with_replica_election_results(by_topic(results)))
}

/// Kafka's error response for the whole request
/// (`ElectLeadersRequest.getErrorResponse`): the top-level code from v1
/// (v0 has none), and the code and message on every partition asked for
/// (none when all partitions were asked for).
fn error_response(
    partitions: Option<Vec<(String, i32)>>,
    version: i16,
    code: i16,
    message: &str,
) -> ElectLeadersResponse {
    let results = partitions
        .unwrap_or_default()
        .into_iter()
        .map(|tp| (tp, Err((code, message.to_string()))))
        .collect();
    let resp = ElectLeadersResponse::default().with_replica_election_results(by_topic(results));
    if version >= 1 {
        resp.with_error_code(code)
    } else {
        resp
    }
}

/// Outcomes grouped by topic, in the order topics first appear.
fn by_topic(results: Vec<Outcome>) -> Vec<ReplicaElectionResult> {
    let mut by_topic: Vec<ReplicaElectionResult> = Vec::new();
    for ((topic, partition), r) in results {
        let (code, message) = match r {
            Ok(()) => (0, None),
            Err((code, message)) => (code, Some(s(message))),
        };
        let pr = PartitionResult::default()
            .with_partition_id(partition)
            .with_error_code(code)
            .with_error_message(message);
        match by_topic.iter_mut().find(|t| t.topic.0.as_str() == topic) {
            Some(t) => t.partition_result.push(pr),
            None => by_topic.push(
                ReplicaElectionResult::default()
                    .with_topic(TopicName(s(topic)))
                    .with_partition_result(vec![pr]),
            ),
        }
    }
    by_topic
}
