//! DescribeClientQuotas (48) and AlterClientQuotas (49), KIP-546: the
//! client quotas kept in the cluster metadata. Describing reads this
//! node's image (Kafka's ClientQuotasImage.describe, DESCRIBE_CONFIGS on
//! the cluster); altering is decided by the active controller
//! (ALTER_CONFIGS on the cluster).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::describe_client_quotas_response::{EntityData, EntryData, ValueData};
use kafka_protocol::messages::{
    alter_client_quotas_response, AlterClientQuotasRequest, AlterClientQuotasResponse,
    DescribeClientQuotasRequest, DescribeClientQuotasResponse,
};
use oxka_controller::quota::{ClientQuotaEntity, ENTITY_CLIENT_ID, ENTITY_IP, ENTITY_USER};

use super::s;
use crate::authorizer::{authorize_cluster, AclOperation};
use crate::quorum::protocol::QuotaAlteration;
use crate::request::RequestContext;
use crate::server::BrokerState;

/// An entity's (type, name) pairs as the request named them.
type Components = Vec<(String, Option<String>)>;

const MATCH_EXACT: i8 = 0;
const MATCH_DEFAULT: i8 = 1;
const MATCH_SPECIFIED: i8 = 2;

/// A describe filter: entity types that must have a given name (`None`:
/// the default) and types that must merely be present.
#[derive(Default)]
struct Filter {
    exact: Vec<(String, Option<String>)>,
    specified: Vec<String>,
    strict: bool,
}

fn parse_filter(req: &DescribeClientQuotasRequest) -> Result<Filter, (ResponseError, String)> {
    let invalid = |m: String| (ResponseError::InvalidRequest, m);
    let mut f = Filter {
        strict: req.strict,
        ..Filter::default()
    };
    for c in &req.components {
        let t = c.entity_type.as_str();
        if t.is_empty() {
            return Err(invalid("Invalid empty entity type.".into()));
        }
        if f.exact.iter().any(|(e, _)| e == t) || f.specified.iter().any(|e| e == t) {
            return Err(invalid(format!(
                "Entity type {t} cannot appear more than once in the filter."
            )));
        }
        if ![ENTITY_IP, ENTITY_USER, ENTITY_CLIENT_ID].contains(&t) {
            return Err((
                ResponseError::UnsupportedVersion,
                format!("Unsupported entity type {t}"),
            ));
        }
        let m = c._match.as_ref().map(|m| m.to_string());
        match c.match_type {
            MATCH_EXACT => match m {
                Some(m) => f.exact.push((t.to_string(), Some(m))),
                None => {
                    return Err(invalid(
                        "Request specified MATCH_TYPE_EXACT, but set match string to null.".into(),
                    ))
                }
            },
            MATCH_DEFAULT if m.is_some() => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_DEFAULT, but also specified a match string."
                        .into(),
                ))
            }
            MATCH_DEFAULT => f.exact.push((t.to_string(), None)),
            MATCH_SPECIFIED if m.is_some() => {
                return Err(invalid(
                    "Request specified MATCH_TYPE_SPECIFIED, but also specified a match string."
                        .into(),
                ))
            }
            MATCH_SPECIFIED => f.specified.push(t.to_string()),
            other => return Err(invalid(format!("Unknown match type {other}"))),
        }
    }
    let has = |t: &str| f.exact.iter().any(|(e, _)| e == t) || f.specified.iter().any(|e| e == t);
    if has(ENTITY_IP) && (has(ENTITY_USER) || has(ENTITY_CLIENT_ID)) {
        return Err(invalid(
            "Invalid entity filter component combination. IP filter component should not be used with user or clientId filter component.".into(),
        ));
    }
    Ok(f)
}

fn matches(entity: &ClientQuotaEntity, f: &Filter) -> bool {
    let parts = entity.components();
    if f.strict && parts.len() != f.exact.len() + f.specified.len() {
        return false;
    }
    let name_of = |t: &str| parts.iter().find(|(e, _)| *e == t).map(|(_, n)| *n);
    f.exact
        .iter()
        .all(|(t, want)| name_of(t).is_some_and(|n| n == want.as_deref()))
        && f.specified.iter().all(|t| name_of(t).is_some())
}

pub async fn describe(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeClientQuotasRequest,
) -> Option<DescribeClientQuotasResponse> {
    let fail = |code: ResponseError, message: String| {
        Some(
            DescribeClientQuotasResponse::default()
                .with_error_code(code.code())
                .with_error_message(Some(s(message))),
        )
    };
    if !authorize_cluster(state, ctx, AclOperation::DescribeConfigs) {
        return fail(
            ResponseError::ClusterAuthorizationFailed,
            "Cluster authorization failed.".into(),
        );
    }
    let filter = match parse_filter(&req) {
        Ok(f) => f,
        Err((code, message)) => return fail(code, message),
    };
    let image = state.controller.image();
    let entries = image
        .client_quotas
        .iter()
        .filter(|(entity, _)| matches(entity, &filter))
        .map(|(entity, values)| {
            EntryData::default()
                .with_entity(
                    entity
                        .components()
                        .into_iter()
                        .map(|(t, n)| {
                            EntityData::default()
                                .with_entity_type(s(t))
                                .with_entity_name(n.map(s))
                        })
                        .collect(),
                )
                .with_values(
                    values
                        .iter()
                        .map(|(k, v)| ValueData::default().with_key(s(k.as_str())).with_value(*v))
                        .collect(),
                )
        })
        .collect();
    Some(DescribeClientQuotasResponse::default().with_entries(Some(entries)))
}

pub async fn alter(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: AlterClientQuotasRequest,
) -> Option<AlterClientQuotasResponse> {
    let entries: Vec<QuotaAlteration> = req
        .entries
        .iter()
        .map(|e| QuotaAlteration {
            entity: e
                .entity
                .iter()
                .map(|c| {
                    (
                        c.entity_type.to_string(),
                        c.entity_name.as_ref().map(|n| n.to_string()),
                    )
                })
                .collect(),
            ops: e
                .ops
                .iter()
                .map(|o| (o.key.to_string(), (!o.remove).then_some(o.value)))
                .collect(),
        })
        .collect();
    let results: Vec<(i16, Option<String>)> =
        if !authorize_cluster(state, ctx, AclOperation::AlterConfigs) {
            vec![(ResponseError::ClusterAuthorizationFailed.code(), None); entries.len()]
        } else {
            match state
                .controller
                .alter_client_quotas(entries.clone(), req.validate_only)
            {
                Ok(r) => r
                    .into_iter()
                    .map(|r| match r {
                        Ok(()) => (0, None),
                        Err(e) => (e.code.code(), Some(e.message)),
                    })
                    .collect(),
                Err(e) => vec![(e.code.code(), Some(e.message)); entries.len()],
            }
        };
    // one answer per entity, as Kafka's map of results gives: the first
    // error of an entity named more than once
    let mut out: Vec<(Components, (i16, Option<String>))> = Vec::new();
    for (entry, result) in entries.into_iter().zip(results) {
        let mut key = entry.entity;
        key.sort();
        match out.iter_mut().find(|(k, _)| *k == key) {
            Some((_, r)) if r.0 == 0 => *r = result,
            Some(_) => {}
            None => out.push((key, result)),
        }
    }
    Some(
        AlterClientQuotasResponse::default().with_entries(
            out.into_iter()
                .map(|(entity, (code, message))| {
                    alter_client_quotas_response::EntryData::default()
                        .with_error_code(code)
                        .with_error_message(message.map(s))
                        .with_entity(
                            entity
                                .into_iter()
                                .map(|(t, n)| {
                                    alter_client_quotas_response::EntityData::default()
                                        .with_entity_type(s(t))
                                        .with_entity_name(n.map(s))
                                })
                                .collect(),
                        )
                })
                .collect(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use kafka_protocol::messages::describe_client_quotas_request::ComponentData;
    use oxka_controller::quota::EntityName;

    use super::*;

    fn component(t: &str, match_type: i8, m: Option<&str>) -> ComponentData {
        ComponentData::default()
            .with_entity_type(s(t))
            .with_match_type(match_type)
            .with_match(m.map(s))
    }

    fn filter(
        components: Vec<ComponentData>,
        strict: bool,
    ) -> Result<Filter, (ResponseError, String)> {
        parse_filter(
            &DescribeClientQuotasRequest::default()
                .with_components(components)
                .with_strict(strict),
        )
    }

    #[test]
    fn filters_match_exact_default_and_any() {
        let both = ClientQuotaEntity {
            ip: None,
            user: Some(EntityName::Named("alice".into())),
            client_id: Some(EntityName::Default),
        };
        let user = ClientQuotaEntity {
            ip: None,
            user: Some(EntityName::Named("alice".into())),
            client_id: None,
        };
        let f = filter(vec![component("user", MATCH_EXACT, Some("alice"))], false).unwrap();
        assert!(matches(&both, &f) && matches(&user, &f));
        let f = filter(vec![component("user", MATCH_EXACT, Some("alice"))], true).unwrap();
        assert!(!matches(&both, &f) && matches(&user, &f));
        let f = filter(
            vec![
                component("user", MATCH_SPECIFIED, None),
                component("client-id", MATCH_DEFAULT, None),
            ],
            true,
        )
        .unwrap();
        assert!(matches(&both, &f) && !matches(&user, &f));
        let f = filter(vec![], false).unwrap();
        assert!(matches(&both, &f));
        let f = filter(vec![], true).unwrap();
        assert!(!matches(&both, &f));
        let code = |r: Result<Filter, (ResponseError, String)>| r.err().map(|e| e.0);
        assert_eq!(
            code(filter(vec![component("user", MATCH_EXACT, None)], false)),
            Some(ResponseError::InvalidRequest)
        );
        assert_eq!(
            code(filter(
                vec![component("group", MATCH_SPECIFIED, None)],
                false
            )),
            Some(ResponseError::UnsupportedVersion)
        );
        assert_eq!(
            code(filter(
                vec![
                    component("ip", MATCH_SPECIFIED, None),
                    component("user", MATCH_SPECIFIED, None)
                ],
                false
            )),
            Some(ResponseError::InvalidRequest)
        );
    }
}
