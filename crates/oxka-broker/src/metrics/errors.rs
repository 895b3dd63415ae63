//! The error codes a response carries, as Kafka's `AbstractResponse.errorCounts`
//! counts them for RequestMetrics' ErrorsPerSec: one per partition, topic,
//! group or resource result, or the top-level code where that is the only
//! one. Version-specific layouts (FindCoordinator v4+, OffsetFetch v8+,
//! AddPartitionsToTxn v4+) are told apart by which part is filled.

use kafka_protocol::messages::*;

/// A response's error codes, each passed to `f` (NONE included).
pub trait ErrorCounts {
    fn error_codes(&self, f: &mut dyn FnMut(i16));
}

macro_rules! error_counts {
    ($($t:ty => |$r:ident, $f:ident| $body:expr;)*) => {
        $(impl ErrorCounts for $t {
            fn error_codes(&self, $f: &mut dyn FnMut(i16)) {
                let $r = self;
                $body
            }
        })*
    };
}

error_counts! {
    ApiVersionsResponse => |r, f| f(r.error_code);
    MetadataResponse => |r, f| for t in &r.topics {
        f(t.error_code);
        t.partitions.iter().for_each(|p| f(p.error_code));
    };
    ListOffsetsResponse => |r, f| r.topics.iter()
        .flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    CreateTopicsResponse => |r, f| r.topics.iter().for_each(|t| f(t.error_code));
    DeleteTopicsResponse => |r, f| r.responses.iter().for_each(|t| f(t.error_code));
    DescribeConfigsResponse => |r, f| r.results.iter().for_each(|t| f(t.error_code));
    CreatePartitionsResponse => |r, f| r.results.iter().for_each(|t| f(t.error_code));
    DescribeClusterResponse => |r, f| f(r.error_code);
    InitProducerIdResponse => |r, f| f(r.error_code);
    AlterConfigsResponse => |r, f| r.responses.iter().for_each(|t| f(t.error_code));
    IncrementalAlterConfigsResponse => |r, f| r.responses.iter().for_each(|t| f(t.error_code));
    DeleteRecordsResponse => |r, f| r.topics.iter()
        .flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    FindCoordinatorResponse => |r, f| if r.coordinators.is_empty() {
        f(r.error_code)
    } else {
        r.coordinators.iter().for_each(|c| f(c.error_code))
    };
    JoinGroupResponse => |r, f| f(r.error_code);
    SyncGroupResponse => |r, f| f(r.error_code);
    HeartbeatResponse => |r, f| f(r.error_code);
    LeaveGroupResponse => |r, f| {
        f(r.error_code);
        r.members.iter().for_each(|m| f(m.error_code));
    };
    OffsetCommitResponse => |r, f| r.topics.iter()
        .flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    OffsetFetchResponse => |r, f| if r.groups.is_empty() {
        f(r.error_code);
        r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    } else {
        for g in &r.groups {
            f(g.error_code);
            g.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
        }
    };
    ListGroupsResponse => |r, f| f(r.error_code);
    DescribeGroupsResponse => |r, f| r.groups.iter().for_each(|g| f(g.error_code));
    DeleteGroupsResponse => |r, f| r.results.iter().for_each(|g| f(g.error_code));
    OffsetDeleteResponse => |r, f| {
        f(r.error_code);
        r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    };
    ConsumerGroupHeartbeatResponse => |r, f| f(r.error_code);
    ConsumerGroupDescribeResponse => |r, f| r.groups.iter().for_each(|g| f(g.error_code));
    AddPartitionsToTxnResponse => |r, f| if r.results_by_topic_v3_and_below.is_empty() {
        f(r.error_code);
        r.results_by_transaction.iter()
            .flat_map(|t| &t.topic_results)
            .flat_map(|t| &t.results_by_partition)
            .for_each(|p| f(p.partition_error_code));
    } else {
        r.results_by_topic_v3_and_below.iter()
            .flat_map(|t| &t.results_by_partition)
            .for_each(|p| f(p.partition_error_code));
    };
    AddOffsetsToTxnResponse => |r, f| f(r.error_code);
    EndTxnResponse => |r, f| f(r.error_code);
    TxnOffsetCommitResponse => |r, f| r.topics.iter()
        .flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    WriteTxnMarkersResponse => |r, f| r.markers.iter()
        .flat_map(|m| &m.topics).flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    ListTransactionsResponse => |r, f| f(r.error_code);
    DescribeTransactionsResponse => |r, f| r.transaction_states.iter().for_each(|t| f(t.error_code));
    DescribeProducersResponse => |r, f| r.topics.iter()
        .flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    DescribeQuorumResponse => |r, f| {
        f(r.error_code);
        r.topics.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    };
    OffsetForLeaderEpochResponse => |r, f| r.topics.iter()
        .flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    ElectLeadersResponse => |r, f| {
        f(r.error_code);
        r.replica_election_results.iter()
            .flat_map(|t| &t.partition_result).for_each(|p| f(p.error_code));
    };
    AlterPartitionReassignmentsResponse => |r, f| {
        f(r.error_code);
        r.responses.iter().flat_map(|t| &t.partitions).for_each(|p| f(p.error_code));
    };
    ListPartitionReassignmentsResponse => |r, f| f(r.error_code);
    SaslHandshakeResponse => |r, f| f(r.error_code);
    SaslAuthenticateResponse => |r, f| f(r.error_code);
    DescribeUserScramCredentialsResponse => |r, f| {
        f(r.error_code);
        r.results.iter().for_each(|u| f(u.error_code));
    };
    AlterUserScramCredentialsResponse => |r, f| r.results.iter().for_each(|u| f(u.error_code));
    DescribeAclsResponse => |r, f| f(r.error_code);
    CreateAclsResponse => |r, f| r.results.iter().for_each(|c| f(c.error_code));
    DeleteAclsResponse => |r, f| r.filter_results.iter().for_each(|d| f(d.error_code));
    DescribeClientQuotasResponse => |r, f| f(r.error_code);
    AlterClientQuotasResponse => |r, f| r.entries.iter().for_each(|e| f(e.error_code));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(r: &dyn ErrorCounts) -> Vec<i16> {
        let mut v = Vec::new();
        r.error_codes(&mut |c| v.push(c));
        v
    }

    #[test]
    fn nested_and_versioned_layouts() {
        let md = MetadataResponse::default().with_topics(vec![
            metadata_response::MetadataResponseTopic::default()
                .with_error_code(3)
                .with_partitions(vec![Default::default(), Default::default()]),
        ]);
        assert_eq!(codes(&md), vec![3, 0, 0]);
        let old = FindCoordinatorResponse::default().with_error_code(15);
        assert_eq!(codes(&old), vec![15]);
        let new = FindCoordinatorResponse::default().with_coordinators(vec![
            find_coordinator_response::Coordinator::default().with_error_code(16),
            Default::default(),
        ]);
        assert_eq!(codes(&new), vec![16, 0]);
    }
}
