//! InitProducerId: for idempotent producers a fresh producer id, or an
//! epoch bump for a producer that asks to keep its id (KIP-360); with a
//! transactional id the transaction coordinator answers (fencing older
//! epochs and aborting their open transaction).

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};

use crate::authorizer::{
    authorize, authorize_by_resource_type, authorize_cluster, AclOperation, ResourceType,
};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: InitProducerIdRequest,
) -> Option<InitProducerIdResponse> {
    let resp = InitProducerIdResponse::default()
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    if req
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.0.is_empty())
    {
        let id = req.transactional_id.as_ref().map_or("", |t| t.0.as_str());
        // Kafka: WRITE on the transactional id
        if !authorize(
            state,
            ctx,
            AclOperation::Write,
            ResourceType::TransactionalId,
            id,
        ) {
            return Some(resp.with_error_code(
                kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed.code(),
            ));
        }
        let r = match state.txn_coordinator.init_producer_id(
            id,
            req.transaction_timeout_ms,
            req.producer_id.0,
            req.producer_epoch,
        ) {
            // the new epoch is replicated before the producer uses it
            Ok(ids) => state.txn_coordinator.replicated(id).await.map(|()| ids),
            Err(e) => Err(e),
        };
        return Some(match r {
            Ok((pid, epoch)) => resp
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch),
            Err(e) => resp.with_error_code(super::txn_error_code(
                e,
                ApiKey::InitProducerId,
                ctx.version,
            )),
        });
    }
    // Kafka (KIP-679): an idempotent producer needs IDEMPOTENT_WRITE on
    // the cluster or WRITE on some topic
    if !authorize_cluster(state, ctx, AclOperation::IdempotentWrite)
        && !authorize_by_resource_type(state, ctx, AclOperation::Write, ResourceType::Topic)
    {
        return Some(resp.with_error_code(
            kafka_protocol::error::ResponseError::ClusterAuthorizationFailed.code(),
        ));
    }
    let (pid, epoch) = (req.producer_id.0, req.producer_epoch);
    if pid >= 0 && (0..i16::MAX - 1).contains(&epoch) {
        return Some(
            resp.with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch + 1),
        );
    }
    match state.controller.allocate_producer_id() {
        Ok(id) => Some(resp.with_producer_id(ProducerId(id)).with_producer_epoch(0)),
        Err(e) => {
            tracing::error!(error = %e.message, "cannot allocate a producer id");
            Some(resp.with_error_code(e.code.code()))
        }
    }
}
