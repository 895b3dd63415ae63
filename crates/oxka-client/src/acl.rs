//! ACL bindings and filters as the Admin client sends and receives them
//! (Kafka's `AclBinding` / `AclBindingFilter`), with Kafka's codes and the
//! names kafka-acls.sh accepts.

pub use oxka_acl::{
    pattern_type, pattern_type_name, permission_type, permission_type_name, resource_type,
    resource_type_name, AclOperation, CLUSTER_NAME,
};

/// The operation code for a name as kafka-acls.sh takes it (`Read`,
/// `IdempotentWrite`, `DESCRIBE_CONFIGS`; case and underscores ignored).
pub fn operation_code(name: &str) -> Option<i8> {
    AclOperation::from_name(name).map(AclOperation::code)
}

/// Kafka's name of an operation code.
pub fn operation_name(code: i8) -> &'static str {
    AclOperation::from_code(code).name()
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
            operation: AclOperation::Any.code(),
            permission_type: permission_type::ANY,
        }
    }
}
