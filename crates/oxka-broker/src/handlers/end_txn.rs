//! EndTxn: commit or abort; the coordinator writes the markers before it
//! answers, so a read_committed consumer sees the outcome right after.

use kafka_protocol::messages::{EndTxnRequest, EndTxnResponse, ProducerId};

use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: EndTxnRequest,
) -> Option<EndTxnResponse> {
    let r = state.txn_coordinator.end_txn(
        &req.transactional_id.0,
        req.producer_id.0,
        req.producer_epoch,
        req.committed,
    );
    let mut resp = EndTxnResponse::default();
    match r {
        // v5+ (KIP-890) returns the producer id and epoch to use next
        Ok((pid, epoch)) if ctx.version >= 5 => {
            resp = resp
                .with_producer_id(ProducerId(pid))
                .with_producer_epoch(epoch);
        }
        Ok(_) => {}
        Err(e) => resp = resp.with_error_code(e.code()),
    }
    Some(resp)
}
