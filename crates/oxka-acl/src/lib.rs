//! Kafka's ACL vocabulary, the one definition the client (what an admin
//! sends and prints) and the metadata quorum (what the authorizer decides
//! on) share: the codes of `ResourceType`, `PatternType`, `AclOperation`
//! and `AclPermissionType` as they go on the wire, and Kafka's names for
//! them (as logged and as kafka-acls.sh takes them). No dependencies, so
//! any crate may use it.

/// Kafka's `ResourceType` codes.
pub mod resource_type {
    pub const UNKNOWN: i8 = 0;
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
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const MATCH: i8 = 2;
    pub const LITERAL: i8 = 3;
    pub const PREFIXED: i8 = 4;
}

/// Kafka's `AclPermissionType` codes.
pub mod permission_type {
    pub const UNKNOWN: i8 = 0;
    pub const ANY: i8 = 1;
    pub const DENY: i8 = 2;
    pub const ALLOW: i8 = 3;
}

/// The name of the one CLUSTER resource (Kafka's `CLUSTER_NAME`).
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// Kafka's wildcard resource name (`ResourcePattern.WILDCARD_RESOURCE`)
/// and wildcard host.
pub const WILDCARD: &str = "*";

/// Kafka's `AclOperation` codes (also the bit positions of KIP-430's
/// authorized-operations bitfield).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(i8)]
pub enum AclOperation {
    Unknown = 0,
    Any = 1,
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
}

impl AclOperation {
    /// Every operation, by code.
    pub const ALL_CODES: [AclOperation; 15] = {
        use AclOperation::*;
        [
            Unknown,
            Any,
            All,
            Read,
            Write,
            Create,
            Delete,
            Alter,
            Describe,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            CreateTokens,
            DescribeTokens,
        ]
    };

    /// The operation of a code; codes Kafka does not know are UNKNOWN.
    pub fn from_code(code: i8) -> AclOperation {
        usize::try_from(code)
            .ok()
            .and_then(|i| Self::ALL_CODES.get(i).copied())
            .unwrap_or(AclOperation::Unknown)
    }

    pub fn code(self) -> i8 {
        self as i8
    }

    /// Kafka's name (`READ`, `DESCRIBE_CONFIGS`, ...), as logged and as
    /// kafka-acls.sh spells it.
    pub fn name(self) -> &'static str {
        use AclOperation::*;
        match self {
            Unknown => "UNKNOWN",
            Any => "ANY",
            All => "ALL",
            Read => "READ",
            Write => "WRITE",
            Create => "CREATE",
            Delete => "DELETE",
            Alter => "ALTER",
            Describe => "DESCRIBE",
            ClusterAction => "CLUSTER_ACTION",
            DescribeConfigs => "DESCRIBE_CONFIGS",
            AlterConfigs => "ALTER_CONFIGS",
            IdempotentWrite => "IDEMPOTENT_WRITE",
            CreateTokens => "CREATE_TOKENS",
            DescribeTokens => "DESCRIBE_TOKENS",
        }
    }

    /// The operation for a name as kafka-acls.sh takes it (`Read`,
    /// `IdempotentWrite`, `DESCRIBE_CONFIGS`; case and underscores
    /// ignored); UNKNOWN is no operation one can name.
    pub fn from_name(name: &str) -> Option<AclOperation> {
        let norm = |s: &str| s.replace('_', "").to_ascii_uppercase();
        let wanted = norm(name);
        Self::ALL_CODES
            .into_iter()
            .filter(|o| *o != AclOperation::Unknown)
            .find(|o| norm(o.name()) == wanted)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for op in AclOperation::ALL_CODES {
            assert_eq!(AclOperation::from_code(op.code()), op);
        }
        assert_eq!(AclOperation::from_code(99), AclOperation::Unknown);
        assert_eq!(AclOperation::from_code(-1), AclOperation::Unknown);
        assert_eq!(AclOperation::ClusterAction.name(), "CLUSTER_ACTION");
    }

    #[test]
    fn operation_names_as_kafka_acls_takes_them() {
        let code = |n: &str| AclOperation::from_name(n).map(AclOperation::code);
        assert_eq!(code("Read"), Some(3));
        assert_eq!(code("IdempotentWrite"), Some(12));
        assert_eq!(code("describe_configs"), Some(10));
        assert_eq!(code("All"), Some(2));
        assert_eq!(code("nope"), None);
        assert_eq!(code("unknown"), None);
    }
}
