//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the
//! transaction, so TxnOffsetCommit may follow and the markers reach it.
//! (Transaction version 2 clients do not send it: TxnOffsetCommit v5 adds
//! the partition itself.)

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::txn::TV_0;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: AddOffsetsToTxnRequest,
) -> Option<AddOffsetsToTxnResponse> {
    // Kafka: WRITE on the transactional id
    if !authorize(
        state,
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id.0,
    ) {
        return Some(AddOffsetsToTxnResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed.code(),
        ));
    }
    // and READ on the group
    if !authorize(
        state,
        ctx,
        AclOperation::Read,
        ResourceType::Group,
        &req.group_id.0,
    ) {
        return Some(AddOffsetsToTxnResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::GroupAuthorizationFailed.code(),
        ));
    }
    let code = match state.txn_coordinator.add_offsets(
        &req.transactional_id.0,
        req.producer_id.0,
        req.producer_epoch,
        &req.group_id.0,
        // Kafka's handleAddOffsetsToTxnRequest passes TV_0 at every version
        TV_0,
    ) {
        Ok(()) => match state
            .txn_coordinator
            .replicated(&req.transactional_id.0)
            .await
        {
            Ok(()) => 0,
            Err(e) => super::txn_error_code(e, ApiKey::AddOffsetsToTxn, ctx.version),
        },
        Err(e) => super::txn_error_code(e, ApiKey::AddOffsetsToTxn, ctx.version),
    };
    Some(AddOffsetsToTxnResponse::default().with_error_code(code))
}
