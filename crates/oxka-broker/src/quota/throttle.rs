//! How a throttle reaches the client (KIP-219): the response carries
//! `throttle_time_ms` and the connection reads nothing more from the
//! client for that long. Clients of a version that throttles itself get
//! the response at once (and back off on their side); older versions get
//! it only after the throttle time, as Kafka holds it.

use kafka_protocol::messages::*;

/// A response's `throttle_time_ms`, where its type has one.
pub trait ThrottleTime {
    fn set_throttle_time_ms(&mut self, ms: i32);
}

macro_rules! throttle_time {
    ($($t:ty),* $(,)?) => {
        $(impl ThrottleTime for $t {
            fn set_throttle_time_ms(&mut self, ms: i32) {
                self.throttle_time_ms = self.throttle_time_ms.max(ms);
            }
        })*
    };
}

macro_rules! no_throttle_time {
    ($($t:ty),* $(,)?) => {
        $(impl ThrottleTime for $t {
            fn set_throttle_time_ms(&mut self, _ms: i32) {}
        })*
    };
}

throttle_time!(
    ProduceResponse,
    FetchResponse,
    ListOffsetsResponse,
    MetadataResponse,
    ApiVersionsResponse,
    CreateTopicsResponse,
    DeleteTopicsResponse,
    DescribeConfigsResponse,
    CreatePartitionsResponse,
    DescribeClusterResponse,
    InitProducerIdResponse,
    AlterConfigsResponse,
    IncrementalAlterConfigsResponse,
    DeleteRecordsResponse,
    FindCoordinatorResponse,
    JoinGroupResponse,
    SyncGroupResponse,
    HeartbeatResponse,
    LeaveGroupResponse,
    OffsetCommitResponse,
    OffsetFetchResponse,
    ListGroupsResponse,
    DescribeGroupsResponse,
    DeleteGroupsResponse,
    OffsetDeleteResponse,
    ConsumerGroupHeartbeatResponse,
    ConsumerGroupDescribeResponse,
    AddPartitionsToTxnResponse,
    AddOffsetsToTxnResponse,
    EndTxnResponse,
    TxnOffsetCommitResponse,
    ListTransactionsResponse,
    DescribeTransactionsResponse,
    DescribeProducersResponse,
    OffsetForLeaderEpochResponse,
    ElectLeadersResponse,
    AlterPartitionReassignmentsResponse,
    ListPartitionReassignmentsResponse,
    DescribeUserScramCredentialsResponse,
    AlterUserScramCredentialsResponse,
    DescribeAclsResponse,
    CreateAclsResponse,
    DeleteAclsResponse,
    DescribeClientQuotasResponse,
    AlterClientQuotasResponse,
);

no_throttle_time!(
    WriteTxnMarkersResponse,
    DescribeQuorumResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse,
);

/// Whether a client of `version` throttles itself on `throttle_time_ms`
/// (Kafka's `AbstractResponse.shouldClientThrottle`): from the versions
/// KIP-219 added, or every version of APIs newer than it. Otherwise the
/// broker holds the response for the throttle time.
pub fn client_throttles(api: ApiKey, version: i16) -> bool {
    use ApiKey::*;
    let since = match api {
        Produce => 6,
        Fetch => 8,
        ListOffsets => 3,
        Metadata => 6,
        OffsetCommit | OffsetFetch => 4,
        FindCoordinator | Heartbeat | LeaveGroup | SyncGroup | DescribeGroups | ListGroups
        | ApiVersions | DeleteTopics | DescribeConfigs => 2,
        JoinGroup | CreateTopics => 3,
        AddOffsetsToTxn | AddPartitionsToTxn | AlterConfigs | CreateAcls | CreatePartitions
        | DeleteAcls | DeleteGroups | DeleteRecords | DescribeAcls | EndTxn | InitProducerId
        | TxnOffsetCommit => 1,
        IncrementalAlterConfigs
        | OffsetDelete
        | AlterPartitionReassignments
        | ListPartitionReassignments
        | AlterUserScramCredentials
        | DescribeUserScramCredentials
        | ElectLeaders => 0,
        // the rest never say so: the broker holds their responses
        _ => return false,
    };
    version >= since
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kip219_versions() {
        assert!(!client_throttles(ApiKey::Produce, 5));
        assert!(client_throttles(ApiKey::Produce, 6));
        assert!(!client_throttles(ApiKey::Fetch, 7));
        assert!(client_throttles(ApiKey::Fetch, 8));
        assert!(client_throttles(ApiKey::ElectLeaders, 0));
        assert!(!client_throttles(ApiKey::DescribeClientQuotas, 1));
        let mut r = ProduceResponse::default();
        r.set_throttle_time_ms(30);
        r.set_throttle_time_ms(10);
        assert_eq!(r.throttle_time_ms, 30, "the largest throttle wins");
    }
}
