//! Authorized operations (KIP-430): the bitfield Metadata, DescribeCluster,
//! DescribeGroups and ConsumerGroupDescribe report when a client asks which
//! operations it may perform on a resource. oxka has no authorizer yet, so
//! every principal may perform every operation that applies to the resource
//! type, as on Kafka without `authorizer.class.name`; the authorizer will
//! filter [`supported_operations`] in [`authorized_operations`], the one
//! place every handler asks.

use crate::network::ConnectionInfo;

/// Kafka's `AclOperation` codes (the bit positions of the bitfield).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum AclOperation {
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
}

/// The resource types whose operations oxka reports (Kafka's
/// `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResourceType {
    Topic,
    Group,
    Cluster,
    TransactionalId,
}

/// The operations that apply to a resource type: Kafka's
/// `AclEntry.supportedOperations`.
pub fn supported_operations(resource: ResourceType) -> &'static [AclOperation] {
    use AclOperation::*;
    match resource {
        ResourceType::Topic => &[
            Read,
            Write,
            Create,
            Describe,
            Delete,
            Alter,
            DescribeConfigs,
            AlterConfigs,
        ],
        ResourceType::Group => &[Read, Describe, Delete, DescribeConfigs, AlterConfigs],
        ResourceType::Cluster => &[
            Create,
            ClusterAction,
            DescribeConfigs,
            AlterConfigs,
            IdempotentWrite,
            Alter,
            Describe,
        ],
        ResourceType::TransactionalId => &[Describe, Write],
    }
}

/// The operations the client on `conn` may perform on the named resource,
/// one bit per operation code (Kafka's `Utils.to32BitField`). Without an
/// authorizer: all of [`supported_operations`].
pub fn authorized_operations(
    _conn: &ConnectionInfo,
    resource: ResourceType,
    _resource_name: &str,
) -> i32 {
    supported_operations(resource)
        .iter()
        .fold(0, |bits, op| bits | 1 << (*op as i8))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The values Kafka without an authorizer reports (topic 3576: READ,
    /// WRITE, CREATE, DELETE, ALTER, DESCRIBE, DESCRIBE_CONFIGS,
    /// ALTER_CONFIGS).
    #[test]
    fn bitfields_match_kafka_without_authorizer() {
        let c = ConnectionInfo::new(
            "127.0.0.1:1".parse().unwrap(),
            "127.0.0.1:9092".parse().unwrap(),
        );
        let ops = |r| authorized_operations(&c, r, "name");
        assert_eq!(ops(ResourceType::Topic), 3576);
        assert_eq!(ops(ResourceType::Group), 3400);
        assert_eq!(ops(ResourceType::Cluster), 8096);
        assert_eq!(ops(ResourceType::TransactionalId), 272);
    }
}
