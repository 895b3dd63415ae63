//! ListOffsets: earliest (-2), latest (-1), max timestamp (-3, KIP-734),
//! earliest local (-4) and the first offset at or after a timestamp; v0's
//! list of segment boundaries (`max_num_offsets`, `old_style_offsets`).

use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use oxka_log::TopicPartition;

use crate::authorizer::{authorize, AclOperation, ResourceType};
use crate::replica_manager::log_error_code;
use crate::replica_manager::Partition;
use crate::request::RequestContext;
use crate::server::{now_ms, BrokerState};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;
/// The replica id of an ordinary client (brokers send their own id).
const CONSUMER_REPLICA_ID: i32 = -1;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: ListOffsetsRequest,
) -> Option<ListOffsetsResponse> {
    let read_committed = req.isolation_level == 1;
    let from_consumer = req.replica_id.0 == CONSUMER_REPLICA_ID;
    let image = state.controller.image();
    let topics = req
        .topics
        .into_iter()
        .map(|topic| {
            // Kafka: DESCRIBE on the topic
            let denied = !authorize(
                state,
                ctx,
                AclOperation::Describe,
                ResourceType::Topic,
                topic.name.0.as_str(),
            );
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    let tp = TopicPartition::new(topic.name.0.to_string(), p.partition_index);
                    let resp = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index)
                        .with_timestamp(-1)
                        .with_offset(-1)
                        .with_leader_epoch(-1);
                    if denied {
                        return resp.with_error_code(ResponseError::TopicAuthorizationFailed.code());
                    }
                    if ctx.version == 0 && p.timestamp < EARLIEST {
                        // v0 knows only latest and earliest among the
                        // negative timestamps (Kafka answers the same)
                        return resp.with_error_code(ResponseError::UnsupportedVersion.code());
                    }
                    let Some(partition) = state.replica_manager.get_partition(&tp) else {
                        let known = image
                            .topic(&tp.topic)
                            .is_some_and(|t| (0..t.partitions.len() as i32).contains(&tp.partition));
                        let code = if known {
                            ResponseError::NotLeaderOrFollower
                        } else {
                            ResponseError::UnknownTopicOrPartition
                        };
                        return resp.with_error_code(code.code());
                    };
                    if !partition.is_leader() {
                        return resp.with_error_code(ResponseError::NotLeaderOrFollower.code());
                    }
                    if ctx.version >= 4 {
                        if let Err(code) = partition.check_leader_epoch(p.current_leader_epoch) {
                            return resp.with_error_code(code.code());
                        }
                    }
                    if ctx.version == 0 {
                        return match legacy(
                            &partition,
                            p.timestamp,
                            p.max_num_offsets,
                            from_consumer,
                        ) {
                            Ok(offsets) => resp.with_old_style_offsets(offsets),
                            Err(e) => resp.with_error_code(e.code()),
                        };
                    }
                    // the field exists from v4 on; the codec refuses it before
                    let epoch = if ctx.version >= 4 {
                        partition.leader_epoch()
                    } else {
                        -1
                    };
                    let hw = partition.high_watermark();
                    let log = partition.log.lock();
                    let found = match p.timestamp {
                        EARLIEST | EARLIEST_LOCAL => Ok(Some((log.log_start_offset(), -1))),
                        // read_committed (v2+): the last stable offset
                        LATEST if read_committed => {
                            Ok(Some((partition.last_stable_offset(&log), -1)))
                        }
                        // a follower resetting its fetch offset: the log end
                        LATEST if req.replica_id.0 >= 0 => Ok(Some((log.log_end_offset(), -1))),
                        LATEST => Ok(Some((hw, -1))),
                        LATEST_TIERED => Ok(None),
                        MAX_TIMESTAMP => log
                            .max_timestamp_and_offset()
                            .map(|r| r.filter(|(o, _)| *o < hw)),
                        t if t >= 0 => log
                            .fetch_offset_by_timestamp(t)
                            .map(|r| r.filter(|(o, _)| *o < hw)),
                        other => {
                            return resp
                                .with_error_code(ResponseError::InvalidRequest.code())
                                .with_timestamp(other);
                        }
                    };
                    match found {
                        Ok(Some((offset, ts))) => resp
                            .with_offset(offset)
                            .with_timestamp(ts)
                            .with_leader_epoch(epoch),
                        Ok(None) => resp,
                        Err(e) => {
                            tracing::error!(partition = %tp, error = %e, "list offsets read failed");
                            resp.with_error_code(log_error_code(&e).code())
                        }
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(topic.name)
                .with_partitions(partitions)
        })
        .collect();
    Some(ListOffsetsResponse::default().with_topics(topics))
}

/// v0: segment boundaries before the timestamp (see
/// `Log::legacy_offsets_before`). A consumer never sees an offset past the
/// high watermark: those are replaced by the high watermark, as Kafka does.
fn legacy(
    partition: &Partition,
    timestamp: i64,
    max_num_offsets: i32,
    from_consumer: bool,
) -> Result<Vec<i64>, ResponseError> {
    let hw = partition.high_watermark();
    let offsets = partition
        .log
        .lock()
        .legacy_offsets_before(timestamp, max_num_offsets, now_ms())
        .map_err(|e| {
            tracing::error!(partition = %partition.tp, error = %e, "list offsets read failed");
            log_error_code(&e)
        })?;
    if !from_consumer || offsets.iter().all(|o| *o <= hw) {
        return Ok(offsets);
    }
    Ok(std::iter::once(hw)
        .chain(offsets.into_iter().skip_while(|o| *o > hw))
        .collect())
}
