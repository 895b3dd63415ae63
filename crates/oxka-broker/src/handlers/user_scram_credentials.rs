//! DescribeUserScramCredentials (50) and AlterUserScramCredentials (51)
//! (KIP-554): SCRAM credentials kept in the cluster metadata. The client
//! sends a salted password; only the salt, the iteration count and the
//! StoredKey / ServerKey derived from it are stored (and never logged).

use std::collections::{BTreeMap, HashMap};

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::alter_user_scram_credentials_response::AlterUserScramCredentialsResult;
use kafka_protocol::messages::describe_user_scram_credentials_response::{
    CredentialInfo, DescribeUserScramCredentialsResult,
};
use kafka_protocol::messages::{
    AlterUserScramCredentialsRequest, AlterUserScramCredentialsResponse,
    DescribeUserScramCredentialsRequest, DescribeUserScramCredentialsResponse,
};
use oxka_client::sasl::scram::{ScramMechanism, MAX_ITERATIONS, MIN_ITERATIONS};

use super::s;
use crate::authorizer::{authorize_cluster, AclOperation};
use crate::controller::ApiError;
use crate::network::sasl::scram::credential;
use crate::quorum::protocol::ScramAlteration;
use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn describe(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: DescribeUserScramCredentialsRequest,
) -> Option<DescribeUserScramCredentialsResponse> {
    // Kafka: DESCRIBE on the cluster
    if !authorize_cluster(state, ctx, AclOperation::Describe) {
        return Some(
            DescribeUserScramCredentialsResponse::default()
                .with_error_code(ResponseError::ClusterAuthorizationFailed.code()),
        );
    }
    let image = state.controller.image();
    let info = |user: &str| -> Option<Vec<CredentialInfo>> {
        image.scram_credentials.get(user).map(|m| {
            m.iter()
                .map(|(mechanism, c)| {
                    CredentialInfo::default()
                        .with_mechanism(*mechanism)
                        .with_iterations(c.iterations)
                })
                .collect()
        })
    };
    let result = |user: &str| DescribeUserScramCredentialsResult::default().with_user(s(user));
    let results = match req.users.filter(|u| !u.is_empty()) {
        // null or empty: all users
        None => image
            .scram_credentials
            .keys()
            .map(|u| result(u).with_credential_infos(info(u).unwrap_or_default()))
            .collect(),
        Some(users) => {
            let mut seen: HashMap<&str, usize> = HashMap::new();
            for u in &users {
                *seen.entry(u.name.as_str()).or_default() += 1;
            }
            let mut out = Vec::new();
            let mut done = std::collections::HashSet::new();
            for u in &users {
                let name = u.name.as_str();
                if !done.insert(name) {
                    continue;
                }
                let r = result(name);
                out.push(if seen[name] > 1 {
                    r.with_error_code(ResponseError::DuplicateResource.code())
                        .with_error_message(Some(s(
                            "Cannot describe SCRAM credentials for the same user twice in a single request",
                        )))
                } else {
                    match info(name) {
                        Some(infos) => r.with_credential_infos(infos),
                        None => r
                            .with_error_code(ResponseError::ResourceNotFound.code())
                            .with_error_message(Some(s(
                                "Attempt to describe a user credential that does not exist",
                            ))),
                    }
                });
            }
            out
        }
    };
    Some(DescribeUserScramCredentialsResponse::default().with_results(results))
}

pub async fn alter(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: AlterUserScramCredentialsRequest,
) -> Option<AlterUserScramCredentialsResponse> {
    // Kafka: ALTER on the cluster, else every user's result fails
    if !authorize_cluster(state, ctx, AclOperation::Alter) {
        let mut users: Vec<String> = Vec::new();
        for name in req
            .deletions
            .iter()
            .map(|d| d.name.to_string())
            .chain(req.upsertions.iter().map(|u| u.name.to_string()))
        {
            if !users.contains(&name) {
                users.push(name);
            }
        }
        return Some(
            AlterUserScramCredentialsResponse::default().with_results(
                users
                    .into_iter()
                    .map(|u| {
                        AlterUserScramCredentialsResult::default()
                            .with_user(s(u))
                            .with_error_code(ResponseError::ClusterAuthorizationFailed.code())
                    })
                    .collect(),
            ),
        );
    }
    // users in the order they first appear, each with its first error
    let mut users: Vec<String> = Vec::new();
    let mut errors: BTreeMap<String, ApiError> = BTreeMap::new();
    let mut seen: HashMap<(String, i8), usize> = HashMap::new();
    let mut items: Vec<ScramAlteration> = Vec::new();
    let note = |name: &str, users: &mut Vec<String>| {
        if !users.iter().any(|u| u == name) {
            users.push(name.to_string());
        }
    };
    for d in &req.deletions {
        *seen.entry((d.name.to_string(), d.mechanism)).or_default() += 1;
    }
    for u in &req.upsertions {
        *seen.entry((u.name.to_string(), u.mechanism)).or_default() += 1;
    }
    let check =
        |name: &str, mechanism: i8, iterations: Option<i32>| -> Result<ScramMechanism, ApiError> {
            if name.is_empty() {
                return Err(ApiError::new(
                    ResponseError::UnacceptableCredential,
                    "Username must not be empty",
                ));
            }
            if seen
                .get(&(name.to_string(), mechanism))
                .copied()
                .unwrap_or(0)
                > 1
            {
                return Err(ApiError::new(
                    ResponseError::DuplicateResource,
                    "A user credential cannot be altered twice in the same request",
                ));
            }
            let m = ScramMechanism::from_type(mechanism).ok_or_else(|| {
                ApiError::new(
                    ResponseError::UnsupportedSaslMechanism,
                    "Unknown SCRAM mechanism",
                )
            })?;
            match iterations {
                Some(i) if i < MIN_ITERATIONS => Err(ApiError::new(
                    ResponseError::UnacceptableCredential,
                    "Too few iterations",
                )),
                Some(i) if i > MAX_ITERATIONS => Err(ApiError::new(
                    ResponseError::UnacceptableCredential,
                    "Too many iterations",
                )),
                _ => Ok(m),
            }
        };
    for d in &req.deletions {
        let name = d.name.as_str();
        note(name, &mut users);
        match check(name, d.mechanism, None) {
            Ok(_) => items.push(ScramAlteration {
                name: name.to_string(),
                mechanism: d.mechanism,
                credential: None,
            }),
            Err(e) => {
                errors.entry(name.to_string()).or_insert(e);
            }
        }
    }
    for u in &req.upsertions {
        let name = u.name.as_str();
        note(name, &mut users);
        let checked = check(name, u.mechanism, Some(u.iterations)).and_then(|m| {
            if u.salt.is_empty() || u.salted_password.is_empty() {
                Err(ApiError::new(
                    ResponseError::UnacceptableCredential,
                    "The salt and the salted password must not be empty",
                ))
            } else {
                Ok(m)
            }
        });
        match checked {
            Ok(m) => items.push(ScramAlteration {
                name: name.to_string(),
                mechanism: u.mechanism,
                credential: Some(credential(
                    m,
                    u.salt.to_vec(),
                    &u.salted_password,
                    u.iterations,
                )),
            }),
            Err(e) => {
                errors.entry(name.to_string()).or_insert(e);
            }
        }
    }
    // a user with an invalid alteration has none of them applied
    items.retain(|i| !errors.contains_key(&i.name));
    let names: Vec<String> = items.iter().map(|i| i.name.clone()).collect();
    match state.controller.alter_scram_credentials(items) {
        Ok(results) => {
            for (name, r) in names.into_iter().zip(results) {
                if let Err(e) = r {
                    errors.entry(name).or_insert(e);
                }
            }
        }
        Err(e) => {
            for name in names {
                errors.entry(name).or_insert_with(|| e.clone());
            }
        }
    }
    let results = users
        .into_iter()
        .map(|u| {
            let r = AlterUserScramCredentialsResult::default().with_user(s(u.clone()));
            match errors.get(&u) {
                Some(e) => r
                    .with_error_code(e.code.code())
                    .with_error_message(Some(s(e.message.clone()))),
                None => r,
            }
        })
        .collect();
    Some(AlterUserScramCredentialsResponse::default().with_results(results))
}
