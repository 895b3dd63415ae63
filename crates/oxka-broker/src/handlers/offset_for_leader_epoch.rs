//! OffsetForLeaderEpoch (API 23): the end offset of a leader epoch in this
//! leader's log: the start of the next larger epoch, or the log end for
//! the current one (KIP-101, KIP-279). Followers used it to find where to
//! truncate before Fetch carried diverging epochs; consumers use it after
//! a leader change to check that their position still exists (KIP-320).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use oxka_log::TopicPartition;

use crate::request::RequestContext;
use crate::server::BrokerState;

pub async fn handle(
    state: &BrokerState,
    _ctx: &RequestContext<'_>,
    req: OffsetForLeaderEpochRequest,
) -> Option<OffsetForLeaderEpochResponse> {
    let image = state.controller.image();
    let topics = req
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(t.topic.0.to_string(), p.partition);
                    let base = EpochEndOffset::default()
                        .with_partition(p.partition)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1);
                    let known = image
                        .topic(&tp.topic)
                        .is_some_and(|i| (0..i.partitions.len() as i32).contains(&tp.partition));
                    if !known {
                        return base.with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    }
                    let partition = match state.replica_manager.leader_partition(&tp) {
                        Ok(part) => part,
                        Err(e) => return base.with_error_code(e.error.code()),
                    };
                    if let Err(code) = partition.check_leader_epoch(p.current_leader_epoch) {
                        return base.with_error_code(code.code());
                    }
                    let found = partition.log.lock().end_offset_for_epoch(p.leader_epoch);
                    match found {
                        Some((epoch, end)) => base.with_leader_epoch(epoch).with_end_offset(end),
                        None => base,
                    }
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic.clone())
                .with_partitions(partitions)
        })
        .collect();
    Some(OffsetForLeaderEpochResponse::default().with_topics(topics))
}
