//! DescribeAcls (29), CreateAcls (30) and DeleteAcls (31): the ACLs of the
//! cluster metadata. Describing needs DESCRIBE on the cluster, creating
//! and deleting ALTER (CLUSTER_AUTHORIZATION_FAILED otherwise); changes
//! are decided by the active controller (`controller/decide/acls.rs`).
//! Without an authorizer Kafka answers SECURITY_DISABLED; so does oxka.

use std::collections::BTreeMap;

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::create_acls_response::AclCreationResult;
use kafka_protocol::messages::delete_acls_response::{
    DeleteAclsFilterResult, DeleteAclsMatchingAcl,
};
use kafka_protocol::messages::describe_acls_response::{AclDescription, DescribeAclsResource};
use kafka_protocol::messages::{
    CreateAclsRequest, CreateAclsResponse, DeleteAclsRequest, DeleteAclsResponse,
    DescribeAclsRequest, DescribeAclsResponse,
};
use oxka_controller::acl::{AclBinding, AclBindingFilter};

use super::s;
use crate::authorizer::{authorize_cluster, AclOperation};
use crate::controller::{ApiError, Controller};
use crate::request::RequestContext;
use crate::server::BrokerState;

/// Runs a controller call (which waits for the quorum) off the async
/// workers.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(ApiError::new(
            ResponseError::UnknownServerError,
            format!("ACL task failed: {e}"),
        ))
    })
}

const SECURITY_DISABLED: &str = "No Authorizer is configured on the broker";

fn filter(
    resource_type: i8,
    resource_name: Option<&str>,
    pattern_type: i8,
    principal: Option<&str>,
    host: Option<&str>,
    operation: i8,
    permission_type: i8,
) -> AclBindingFilter {
    AclBindingFilter {
        resource_type,
        resource_name: resource_name.map(String::from),
        pattern_type,
        principal: principal.map(String::from),
        host: host.map(String::from),
        operation,
        permission_type,
    }
}

pub async fn describe(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeAclsRequest,
) -> Option<DescribeAclsResponse> {
    let error = |code: ResponseError, msg: &str| {
        Some(
            DescribeAclsResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(s(msg))),
        )
    };
    if !state.authorizer.enabled() {
        return error(ResponseError::SecurityDisabled, SECURITY_DISABLED);
    }
    if !authorize_cluster(state, ctx, AclOperation::Describe) {
        return error(ResponseError::ClusterAuthorizationFailed, "");
    }
    let f = filter(
        req.resource_type_filter,
        req.resource_name_filter.as_deref(),
        req.pattern_type_filter,
        req.principal_filter.as_deref(),
        req.host_filter.as_deref(),
        req.operation,
        req.permission_type,
    );
    if let Err(reason) = f.validate() {
        return error(ResponseError::InvalidRequest, &reason);
    }
    let image = state.controller.image();
    let mut by_resource: BTreeMap<(i8, &str, i8), Vec<AclDescription>> = BTreeMap::new();
    for b in image.acls.values().filter(|b| f.matches(b)) {
        by_resource
            .entry((b.resource_type, &b.resource_name, b.pattern_type))
            .or_default()
            .push(
                AclDescription::default()
                    .with_principal(s(b.principal.as_str()))
                    .with_host(s(b.host.as_str()))
                    .with_operation(b.operation)
                    .with_permission_type(b.permission_type),
            );
    }
    let resources = by_resource
        .into_iter()
        .map(|((rt, name, pt), acls)| {
            DescribeAclsResource::default()
                .with_resource_type(rt)
                .with_resource_name(s(name))
                .with_pattern_type(pt)
                .with_acls(acls)
        })
        .collect();
    Some(DescribeAclsResponse::default().with_resources(resources))
}

/// CreateAcls and DeleteAcls: an authorizer and ALTER on the cluster, then
/// the controller's decision; a failure of the whole request (no
/// authorizer, not authorized, the controller unreachable) is the error of
/// every entry of the reply, as Kafka answers.
async fn alter_acls<T: Send + 'static, R: Clone>(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    entries: usize,
    call: impl FnOnce(&Controller) -> Result<Vec<Result<T, ApiError>>, ApiError> + Send + 'static,
    ok: impl Fn(T) -> R,
    failed: impl Fn(ApiError) -> R,
) -> Vec<R> {
    let checked = if !state.authorizer.enabled() {
        Err(ApiError::new(
            ResponseError::SecurityDisabled,
            SECURITY_DISABLED,
        ))
    } else if !authorize_cluster(state, ctx, AclOperation::Alter) {
        Err(ApiError::new(ResponseError::ClusterAuthorizationFailed, ""))
    } else {
        Ok(())
    };
    let results = match checked {
        Ok(()) => {
            let controller = state.controller.clone();
            blocking(move || call(&controller)).await
        }
        Err(e) => Err(e),
    };
    match results {
        Ok(results) => results
            .into_iter()
            .map(|r| r.map_or_else(&failed, &ok))
            .collect(),
        Err(e) => vec![failed(e); entries],
    }
}

pub async fn create(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: CreateAclsRequest,
) -> Option<CreateAclsResponse> {
    let acls: Vec<AclBinding> = req
        .creations
        .iter()
        .map(|c| AclBinding {
            resource_type: c.resource_type,
            resource_name: c.resource_name.to_string(),
            pattern_type: c.resource_pattern_type,
            principal: c.principal.to_string(),
            host: c.host.to_string(),
            operation: c.operation,
            permission_type: c.permission_type,
        })
        .collect();
    let results = alter_acls(
        state,
        ctx,
        req.creations.len(),
        move |c| c.create_acls(acls),
        |()| AclCreationResult::default(),
        |e| {
            AclCreationResult::default()
                .with_error_code(e.code.code())
                .with_error_message(Some(s(e.message)))
        },
    )
    .await;
    Some(CreateAclsResponse::default().with_results(results))
}

pub async fn delete(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DeleteAclsRequest,
) -> Option<DeleteAclsResponse> {
    let filters = req
        .filters
        .iter()
        .map(|f| {
            filter(
                f.resource_type_filter,
                f.resource_name_filter.as_deref(),
                f.pattern_type_filter,
                f.principal_filter.as_deref(),
                f.host_filter.as_deref(),
                f.operation,
                f.permission_type,
            )
        })
        .collect();
    let results = alter_acls(
        state,
        ctx,
        req.filters.len(),
        move |c| c.delete_acls(filters),
        |matched: Vec<AclBinding>| {
            DeleteAclsFilterResult::default().with_matching_acls(
                matched
                    .into_iter()
                    .map(|b| {
                        DeleteAclsMatchingAcl::default()
                            .with_resource_type(b.resource_type)
                            .with_resource_name(s(b.resource_name))
                            .with_pattern_type(b.pattern_type)
                            .with_principal(s(b.principal))
                            .with_host(s(b.host))
                            .with_operation(b.operation)
                            .with_permission_type(b.permission_type)
                    })
                    .collect(),
            )
        },
        |e| {
            DeleteAclsFilterResult::default()
                .with_error_code(e.code.code())
                .with_error_message(Some(s(e.message)))
        },
    )
    .await;
    Some(DeleteAclsResponse::default().with_filter_results(results))
}
