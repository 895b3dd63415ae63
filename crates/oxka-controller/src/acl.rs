//! ACLs as the metadata image holds them and Kafka's StandardAuthorizer
//! decides on them (`org.apache.kafka.metadata.authorizer`): the binding
//! (resource pattern + access control entry) an AccessControlEntryRecord
//! carries, the filters DescribeAcls and DeleteAcls match with, and the
//! decision for one principal, host, operation and resource. Pure: the
//! broker's authorizer asks [`authorize`] with the image's ACLs.
//!
//! Codes are Kafka's (`ResourceType`, `PatternType`, `AclOperation`,
//! `AclPermissionType`, defined once in `oxka-acl`), so they go on the
//! wire unchanged.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use oxka_acl::{
    pattern_type, permission_type, resource_type, AclOperation, CLUSTER_NAME, WILDCARD,
};

/// Whether an ALLOW entry for `acl_op` grants `op`: the operation itself,
/// ALL, and Kafka's implications (READ, WRITE, DELETE, ALTER imply
/// DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
fn granted_by(op: AclOperation, acl_op: AclOperation) -> bool {
    use AclOperation::*;
    acl_op == op
        || acl_op == All
        || match op {
            Describe => matches!(acl_op, Read | Write | Delete | Alter),
            DescribeConfigs => acl_op == AlterConfigs,
            _ => false,
        }
}

/// One ACL: a resource pattern and an access control entry, as the
/// AccessControlEntryRecord stores it. `principal` is `Type:name`
/// (`User:alice`, `User:*`), `host` an address or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    pub principal: String,
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// Why a new binding is refused (Kafka answers INVALID_REQUEST).
pub fn validate_new(b: &AclBinding) -> Result<(), String> {
    use resource_type as r;
    if !matches!(
        b.resource_type,
        r::TOPIC | r::GROUP | r::CLUSTER | r::TRANSACTIONAL_ID | r::DELEGATION_TOKEN | r::USER
    ) {
        return Err(format!("Invalid resourceType {}", b.resource_type));
    }
    if !matches!(
        b.pattern_type,
        pattern_type::LITERAL | pattern_type::PREFIXED
    ) {
        return Err(format!("Invalid patternType {}", b.pattern_type));
    }
    if matches!(
        AclOperation::from_code(b.operation),
        AclOperation::Unknown | AclOperation::Any
    ) {
        return Err(format!("Invalid operation {}", b.operation));
    }
    if !matches!(
        b.permission_type,
        permission_type::ALLOW | permission_type::DENY
    ) {
        return Err(format!("Invalid permissionType {}", b.permission_type));
    }
    if b.resource_name.is_empty() {
        return Err("Invalid empty resource name specified".into());
    }
    if b.resource_type == r::CLUSTER && b.resource_name != CLUSTER_NAME {
        return Err(format!(
            "The only valid name for the CLUSTER resource is {CLUSTER_NAME}"
        ));
    }
    match b.principal.split_once(':') {
        Some((t, n)) if !t.is_empty() && !n.is_empty() => {}
        _ => return Err(format!("Could not parse principal from `{}`", b.principal)),
    }
    if b.host.is_empty() {
        return Err("Invalid empty host".into());
    }
    Ok(())
}

/// DescribeAcls' and DeleteAcls' filter: `None` fields and the ANY codes
/// match everything; pattern type MATCH matches the bindings that would
/// apply to a resource of that name (literal, wildcard, prefixes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AclBindingFilter {
    pub resource_type: i8,
    pub resource_name: Option<String>,
    pub pattern_type: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: i8,
    pub permission_type: i8,
}

impl AclBindingFilter {
    /// Why Kafka refuses the filter (INVALID_REQUEST): UNKNOWN codes.
    pub fn validate(&self) -> Result<(), String> {
        if self.resource_type == resource_type::UNKNOWN || self.resource_type > resource_type::USER
        {
            return Err("Unknown resourceType".into());
        }
        if self.pattern_type == pattern_type::UNKNOWN || self.pattern_type > pattern_type::PREFIXED
        {
            return Err("Unknown patternType".into());
        }
        if AclOperation::from_code(self.operation) == AclOperation::Unknown {
            return Err("Unknown operation".into());
        }
        if self.permission_type == permission_type::UNKNOWN
            || self.permission_type > permission_type::ALLOW
        {
            return Err("Unknown permissionType".into());
        }
        Ok(())
    }

    pub fn matches(&self, b: &AclBinding) -> bool {
        self.matches_pattern(b)
            && self.principal.as_ref().is_none_or(|p| *p == b.principal)
            && self.host.as_ref().is_none_or(|h| *h == b.host)
            && (self.operation == AclOperation::Any.code() || self.operation == b.operation)
            && (self.permission_type == permission_type::ANY
                || self.permission_type == b.permission_type)
    }

    fn matches_pattern(&self, b: &AclBinding) -> bool {
        if self.resource_type != resource_type::ANY && self.resource_type != b.resource_type {
            return false;
        }
        match self.pattern_type {
            pattern_type::ANY => self
                .resource_name
                .as_ref()
                .is_none_or(|n| *n == b.resource_name),
            pattern_type::MATCH => match &self.resource_name {
                None => true,
                Some(n) => pattern_applies(b, n),
            },
            p => {
                p == b.pattern_type
                    && self
                        .resource_name
                        .as_ref()
                        .is_none_or(|n| *n == b.resource_name)
            }
        }
    }
}

/// Whether the binding's pattern covers a resource named `name`: the
/// literal name, the literal wildcard `*`, or a prefix of it.
fn pattern_applies(b: &AclBinding, name: &str) -> bool {
    match b.pattern_type {
        pattern_type::LITERAL => b.resource_name == name || b.resource_name == WILDCARD,
        pattern_type::PREFIXED => name.starts_with(b.resource_name.as_str()),
        _ => false,
    }
}

/// Whether the entry names this principal: exactly, or the wildcard
/// `User:*` (Kafka's WILDCARD_PRINCIPAL, matching any principal).
fn principal_applies(b: &AclBinding, principal: &str) -> bool {
    b.principal == principal || b.principal == "User:*"
}

fn host_applies(b: &AclBinding, host: &str) -> bool {
    b.host == WILDCARD || b.host == host
}

/// What the authorizer's settings add to the ACLs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizerSettings {
    /// `super.users`: principals allowed everything, whatever the ACLs.
    pub super_users: Vec<String>,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_everyone_if_no_acl_found: bool,
}

impl AuthorizerSettings {
    pub fn is_super_user(&self, principal: &str) -> bool {
        self.super_users.iter().any(|s| s == principal)
    }
}

/// The StandardAuthorizer's decision: super users may do anything; else
/// a matching DENY wins over any ALLOW; a matching ALLOW (with the
/// operation implications) allows; with no ACL on the resource at all,
/// `allow.everyone.if.no.acl.found` decides; otherwise denied.
pub fn authorize<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding>,
    settings: &AuthorizerSettings,
    principal: &str,
    host: &str,
    op: AclOperation,
    resource_type: i8,
    name: &str,
) -> bool {
    if settings.is_super_user(principal) {
        return true;
    }
    let mut resource_has_acls = false;
    let mut allowed = false;
    for b in acls {
        if b.resource_type != resource_type || !pattern_applies(b, name) {
            continue;
        }
        resource_has_acls = true;
        if !principal_applies(b, principal) || !host_applies(b, host) {
            continue;
        }
        let acl_op = AclOperation::from_code(b.operation);
        match b.permission_type {
            permission_type::DENY if acl_op == op || acl_op == AclOperation::All => return false,
            permission_type::ALLOW if granted_by(op, acl_op) => allowed = true,
            _ => {}
        }
    }
    allowed || (!resource_has_acls && settings.allow_everyone_if_no_acl_found)
}

/// Kafka's `Authorizer.authorizeByResourceType` (KIP-679): may the
/// principal perform `op` on at least one resource of the type? True
/// for super users and for an ALLOW (literal or prefixed) that no DENY
/// covers; a DENY on the literal wildcard denies all.
pub fn authorize_by_resource_type<'a>(
    acls: impl IntoIterator<Item = &'a AclBinding> + Clone,
    settings: &AuthorizerSettings,
    principal: &str,
    host: &str,
    op: AclOperation,
    resource_type: i8,
) -> bool {
    // Kafka first asks about a made-up name, so super users and
    // allow.everyone.if.no.acl.found pass whatever the ACLs on others.
    if authorize(
        acls.clone(),
        settings,
        principal,
        host,
        op,
        resource_type,
        "hardcode",
    ) {
        return true;
    }
    let applies = |b: &&AclBinding| {
        b.resource_type == resource_type
            && principal_applies(b, principal)
            && host_applies(b, host)
            && (b.operation == op.code() || b.operation == AclOperation::All.code())
    };
    let mut deny_literals = Vec::new();
    let mut deny_prefixes = Vec::new();
    for b in acls.clone().into_iter().filter(applies) {
        if b.permission_type != permission_type::DENY {
            continue;
        }
        match b.pattern_type {
            pattern_type::LITERAL if b.resource_name == WILDCARD => return false,
            pattern_type::LITERAL => deny_literals.push(b.resource_name.as_str()),
            pattern_type::PREFIXED => deny_prefixes.push(b.resource_name.as_str()),
            _ => {}
        }
    }
    let denied_prefix = |name: &str| deny_prefixes.iter().any(|p| name.starts_with(p));
    acls.into_iter().filter(applies).any(|b| {
        b.permission_type == permission_type::ALLOW
            && match b.pattern_type {
                pattern_type::LITERAL => {
                    b.resource_name == WILDCARD
                        || (!deny_literals.contains(&b.resource_name.as_str())
                            && !denied_prefix(&b.resource_name))
                }
                pattern_type::PREFIXED => !denied_prefix(&b.resource_name),
                _ => false,
            }
    })
}

/// The image's ACLs by id (the AccessControlEntryRecord's id).
pub type AclMap = BTreeMap<Uuid, AclBinding>;

#[cfg(test)]
mod tests {
    use super::*;
    use resource_type::*;

    fn acl(rt: i8, name: &str, pt: i8, principal: &str, op: AclOperation, perm: i8) -> AclBinding {
        AclBinding {
            resource_type: rt,
            resource_name: name.into(),
            pattern_type: pt,
            principal: principal.into(),
            host: "*".into(),
            operation: op.code(),
            permission_type: perm,
        }
    }

    const ALLOW: i8 = permission_type::ALLOW;
    const DENY: i8 = permission_type::DENY;
    const LIT: i8 = pattern_type::LITERAL;
    const PRE: i8 = pattern_type::PREFIXED;

    #[test]
    fn deny_wins_implications_prefixes_wildcards() {
        use AclOperation::*;
        let s = AuthorizerSettings::default();
        let acls = [
            acl(TOPIC, "orders", LIT, "User:alice", Read, ALLOW),
            acl(TOPIC, "pay-", PRE, "User:alice", Write, ALLOW),
            acl(TOPIC, "pay-secret", LIT, "User:alice", All, DENY),
            acl(TOPIC, "*", LIT, "User:*", Describe, ALLOW),
            acl(GROUP, "g", LIT, "User:bob", Read, ALLOW),
        ];
        let a = |p: &str, op, rt, n: &str| authorize(&acls, &s, p, "10.0.0.1", op, rt, n);
        assert!(a("User:alice", Read, TOPIC, "orders"));
        assert!(!a("User:alice", Write, TOPIC, "orders"));
        assert!(a("User:alice", Write, TOPIC, "pay-eu"));
        assert!(a("User:alice", Describe, TOPIC, "pay-eu")); // WRITE implies DESCRIBE
        assert!(!a("User:alice", Write, TOPIC, "pay-secret")); // DENY wins
        assert!(a("User:carol", Describe, TOPIC, "anything")); // User:* on *
        assert!(!a("User:carol", Read, TOPIC, "orders"));
        assert!(a("User:bob", Describe, GROUP, "g")); // READ implies DESCRIBE
        assert!(!a("User:bob", Delete, GROUP, "g"));
        // no ACL on the resource: allow.everyone.if.no.acl.found decides
        assert!(!a("User:bob", Read, GROUP, "other"));
        let open = AuthorizerSettings {
            allow_everyone_if_no_acl_found: true,
            ..Default::default()
        };
        assert!(authorize(&acls, &open, "User:x", "h", Read, GROUP, "other"));
        assert!(!authorize(&acls, &open, "User:x", "h", Read, GROUP, "g"));
        let sup = AuthorizerSettings {
            super_users: vec!["User:admin".into()],
            ..Default::default()
        };
        assert!(authorize(
            &acls,
            &sup,
            "User:admin",
            "h",
            Write,
            TOPIC,
            "pay-secret"
        ));
    }

    #[test]
    fn host_and_config_implication() {
        use AclOperation::*;
        let s = AuthorizerSettings::default();
        let mut b = acl(TOPIC, "t", LIT, "User:a", AlterConfigs, ALLOW);
        b.host = "10.0.0.1".into();
        let acls = [b];
        assert!(authorize(
            &acls,
            &s,
            "User:a",
            "10.0.0.1",
            DescribeConfigs,
            TOPIC,
            "t"
        ));
        assert!(!authorize(
            &acls,
            &s,
            "User:a",
            "10.0.0.2",
            DescribeConfigs,
            TOPIC,
            "t"
        ));
        assert!(!authorize(
            &acls, &s, "User:a", "10.0.0.1", Describe, TOPIC, "t"
        ));
    }

    #[test]
    fn by_resource_type() {
        use AclOperation::*;
        let s = AuthorizerSettings::default();
        let acls = [
            acl(TOPIC, "a-", PRE, "User:u", Write, ALLOW),
            acl(TOPIC, "a", PRE, "User:u", Write, DENY),
            acl(TOPIC, "b", LIT, "User:v", Write, ALLOW),
        ];
        let by = |p: &str| authorize_by_resource_type(&acls, &s, p, "h", Write, TOPIC);
        assert!(!by("User:u")); // its only allow is under a denied prefix
        assert!(by("User:v"));
        assert!(!by("User:w"));
    }

    #[test]
    fn filters_and_validation() {
        use AclOperation::*;
        let b = acl(TOPIC, "pay-", PRE, "User:a", Write, ALLOW);
        let any = AclBindingFilter {
            resource_type: resource_type::ANY,
            resource_name: None,
            pattern_type: pattern_type::ANY,
            principal: None,
            host: None,
            operation: Any.code(),
            permission_type: permission_type::ANY,
        };
        assert!(any.matches(&b));
        let matching = AclBindingFilter {
            resource_type: TOPIC,
            resource_name: Some("pay-eu".into()),
            pattern_type: pattern_type::MATCH,
            ..any.clone()
        };
        assert!(matching.matches(&b));
        let literal = AclBindingFilter {
            pattern_type: pattern_type::LITERAL,
            ..matching.clone()
        };
        assert!(!literal.matches(&b));
        assert!(validate_new(&b).is_ok());
        let mut bad = b.clone();
        bad.resource_type = CLUSTER;
        assert!(validate_new(&bad).is_err());
        bad = b.clone();
        bad.pattern_type = pattern_type::MATCH;
        assert!(validate_new(&bad).is_err());
        bad = b;
        bad.principal = "alice".into();
        assert!(validate_new(&bad).is_err());
        assert!(AclBindingFilter {
            operation: 0,
            ..any
        }
        .validate()
        .is_err());
    }
}
