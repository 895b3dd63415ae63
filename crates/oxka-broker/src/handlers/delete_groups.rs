//! DeleteGroups: only empty groups; their offsets and metadata are
//! tombstoned in `__consumer_offsets`.

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::{DeleteGroupsRequest, DeleteGroupsResponse};

use crate::coordinator::group::code;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext<'_>,
    req: DeleteGroupsRequest,
) -> Option<DeleteGroupsResponse> {
    let results = req
        .groups_names
        .iter()
        .map(|g| {
            DeletableGroupResult::default()
                .with_group_id(g.clone())
                .with_error_code(code(state.group_coordinator.delete_group(g)))
        })
        .collect();
    Some(DeleteGroupsResponse::default().with_results(results))
}
