//! AddOffsetsToTxn: the group's `__consumer_offsets` partition joins the
//! transaction, so TxnOffsetCommit may follow and the markers reach it.

use kafka_protocol::messages::{AddOffsetsToTxnRequest, AddOffsetsToTxnResponse};

use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext<'_>,
    req: AddOffsetsToTxnRequest,
) -> Option<AddOffsetsToTxnResponse> {
    let code = state
        .txn_coordinator
        .add_offsets(
            &req.transactional_id.0,
            req.producer_id.0,
            req.producer_epoch,
            &req.group_id.0,
        )
        .err()
        .map_or(0, |e| e.code());
    Some(AddOffsetsToTxnResponse::default().with_error_code(code))
}
