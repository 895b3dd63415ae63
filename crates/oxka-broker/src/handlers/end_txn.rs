//! EndTxn: commit or abort; the coordinator writes the markers before it
//! answers, so a read_committed consumer sees the outcome right after.
//! v5+ is transaction version 2 (KIP-890 part 2): every end bumps the
//! producer epoch and the answer carries the producer id and epoch to use
//! next.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::coordinator::txn::{FIRST_TV2_END_TXN_VERSION, TV_0, TV_2};
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: EndTxnRequest,
) -> Option<EndTxnResponse> {
    // Kafka: WRITE on the transactional id
    if !authorize(
        state,
        ctx,
        AclOperation::Write,
        ResourceType::TransactionalId,
        &req.transactional_id.0,
    ) {
        return Some(EndTxnResponse::default().with_error_code(
            kafka_protocol::error::ResponseError::TransactionalIdAuthorizationFailed.code(),
        ));
    }
    let tv = if ctx.version >= FIRST_TV2_END_TXN_VERSION {
        TV_2
    } else {
        TV_0
    };
    let r = state.txn_coordinator.end_txn(
        &req.transactional_id.0,
        req.producer_id.0,
        req.producer_epoch,
        req.committed,
        tv,
    );
    // the decision (Prepare*, or Complete* when finished inline) is
    // replicated before the client learns it (Kafka answers EndTxn then)
    let r = match r {
        Ok(ids) => state
            .txn_coordinator
            .replicated(&req.transactional_id.0)
            .await
            .map(|()| ids),
        Err(e) => Err(e),
    };
    let mut resp = EndTxnResponse::default();
    match r {
        // v5+ returns the producer id and epoch to use next (bumped)
        Ok((pid, epoch)) if ctx.version >= FIRST_TV2_END_TXN_VERSION => {
            resp = resp
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch);
        }
        Ok(_) => {}
        Err(e) => {
            resp = resp.with_error_code(super::txn_error_code(e, ApiKey::EndTxn, ctx.version))
        }
    }
    Some(resp)
}
