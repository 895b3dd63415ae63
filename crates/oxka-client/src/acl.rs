//! ACL bindings and filters as the Admin client sends and receives them
//! (Kafka's `AclBinding` / `AclBindingFilter`), with Kafka's codes and the
//! names kafka-acls.sh accepts.

/// Kafka's `ResourceType` codes.
pub mod resource_type {
    pub const ANY: i8 = 1;
    pub const TOPIC: i8 = 2;
    pub const GROUP: i8 = 3;
    pub const CLUSTER: i8 = 4;
    pub const TRANSACTIONAL_ID: i8 = 5;
    pub const DELEGATION_TOKEN: i8 = 6;
    pub const USER: i8 = 7;
}

/// Kafka's `PatternType` codes.
pub mod pattern_type {
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclPermissionType` codes.
pub mod permission_type {
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// Kafka's `AclOperation` codes and names (index = code).
const OPERATIONS: &[&str] = &[
    "UNKNOWN",
    "ANY",
    "ALL",
    "READ",
    "WRITE",
    "CREATE",
    "DELETE",
    "ALTER",
    "DESCRIBE",
    "CLUSTER_ACTION",
    "DESCRIBE_CONFIGS",
    "ALTER_CONFIGS",
    "IDEMPOTENT_WRITE",
    "CREATE_TOKENS",
    "DESCRIBE_TOKENS",
];

/// The operation code for a name as kafka-acls.sh takes it (`Read`,
/// `IdempotentWrite`, `DESCRIBE_CONFIGS`; case and underscores ignored).
pub fn operation_code(name: &str) -> Option<i8> {
    let norm = |s: &str| s.replace('_', "").to_ascii_uppercase();
    let wanted = norm(name);
    OPERATIONS
        .iter()
        .position(|o| norm(o) == wanted)
        .filter(|&i| i > 0)
        .map(|i| i as i8)
}

/// Kafka's name of an operation code.
pub fn operation_name(code: i8) -> &'static str {
    OPERATIONS
        .get(code.max(0) as usize)
        .copied()
        .unwrap_or("UNKNOWN")
}

/// Kafka's name of a resource type code.
pub fn resource_type_name(code: i8) -> &'static str {
    match code {
        resource_type::ANY => "ANY",
        resource_type::TOPIC => "TOPIC",
        resource_type::GROUP => "GROUP",
        resource_type::CLUSTER => "CLUSTER",
        resource_type::TRANSACTIONAL_ID => "TRANSACTIONAL_ID",
        resource_type::DELEGATION_TOKEN => "DELEGATION_TOKEN",
        resource_type::USER => "USER",
        _ => "UNKNOWN",
    }
}

/// Kafka's name of a pattern type code.
pub fn pattern_type_name(code: i8) -> &'static str {
    match code {
        pattern_type::ANY => "ANY",
        pattern_type::MATCH => "MATCH",
        pattern_type::LITERAL => "LITERAL",
        pattern_type::PREFIXED => "PREFIXED",
        _ => "UNKNOWN",
    }
}

/// Kafka's name of a permission type code.
pub fn permission_type_name(code: i8) -> &'static str {
    match code {
        permission_type::ANY => "ANY",
        permission_type::DENY => "DENY",
        permission_type::ALLOW => "ALLOW",
        _ => "UNKNOWN",
    }
}

/// One ACL: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct AclBinding {
    pub resource_type: i8,
    pub resource_name: String,
    pub pattern_type: i8,
    /// `User:alice`, `User:*`.
    pub principal: String,
    /// An address or `*`.
    pub host: String,
    pub operation: i8,
    pub permission_type: i8,
}

/// What DescribeAcls and DeleteAcls match: `None` and the ANY codes match
/// everything; pattern MATCH matches the bindings that apply to a name.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// Every binding.
    pub fn any() -> AclBindingFilter {
        AclBindingFilter {
            resource_type: resource_type::ANY,
            resource_name: None,
            pattern_type: pattern_type::ANY,
            principal: None,
            host: None,
            operation: 1,
            permission_type: permission_type::ANY,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operation_names_as_kafka_acls_takes_them() {
        assert_eq!(operation_code("Read"), Some(3));
        assert_eq!(operation_code("IdempotentWrite"), Some(12));
        assert_eq!(operation_code("describe_configs"), Some(10));
        assert_eq!(operation_code("All"), Some(2));
        assert_eq!(operation_code("nope"), None);
        assert_eq!(operation_code("unknown"), None);
        assert_eq!(operation_name(9), "CLUSTER_ACTION");
        assert_eq!(operation_name(99), "UNKNOWN");
    }
}
