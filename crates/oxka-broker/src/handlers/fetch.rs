//! Fetch: read whole batches up to the byte limits, long-polling until
//! `min_bytes` are there or `max_wait_ms` passes.
//!
//! The batches are not read: the log returns where they are in its segment
//! files, and the response carries those regions to the connection writer,
//! which sends them with `sendfile` (see `fetch/encode.rs`). Record bytes
//! never enter user space, and a long poll that re-reads the logs costs
//! index lookups, not copies.
//!
//! Fetch sessions (KIP-227) are declined the way the protocol allows: every
//! response carries session id 0, so clients keep sending full requests.

mod encode;

pub use encode::{FetchEncodeError, FetchReply};

use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{BrokerId, FetchRequest, FetchResponse, ProducerId, TopicName};
use oxka_log::{FileRegion, LogError, TopicPartition};
use tokio::time::Instant;

use super::s;
use crate::authorizer::{authorize, authorize_cluster, AclOperation, ResourceType};
use crate::metadata::MetadataImage;
use crate::replica_manager::log_error_code;
use crate::request::RequestContext;
use crate::server::BrokerState;

/// An upper bound on how long one fetch may park, whatever the client asks.
const MAX_WAIT_CAP_MS: i32 = 60_000;

pub async fn handle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    req: FetchRequest,
) -> FetchReply {
    let from_follower = fetching_replica(ctx.version, &req) >= 0;
    if from_follower {
        ctx.slot.note_follower_fetch();
    }
    state
        .metrics
        .requests
        .fetch_received(from_follower, ctx.version);
    if req.session_id != 0 {
        return FetchResponse::default()
            .with_error_code(ResponseError::FetchSessionIdNotFound.code())
            .with_session_id(0)
            .into();
    }
    let wait = Duration::from_millis(req.max_wait_ms.clamp(0, MAX_WAIT_CAP_MS) as u64);
    let deadline = Instant::now() + wait;
    let denied = denied_topics(state, ctx, &req);
    // KIP-55: a consumer with a consumer_byte_rate gets at most what its
    // quota allows over the window in one response
    let quota_max = if from_follower {
        None
    } else {
        let image = state.controller.image();
        state
            .quotas
            .fetch
            .max_value_in_window(
                &image.client_quotas,
                &ctx.conn.principal.name,
                ctx.client_id(),
            )
            .map(|b| b as usize)
    };
    let mut changes = state.replica_manager.subscribe();
    let mut shutdown = state.shutdown.clone();
    loop {
        changes.borrow_and_update();
        let image = state.controller.image();
        let read = read_all(state, ctx.version, &req, &image, &denied, quota_max);
        let stopping = *shutdown.borrow();
        let min_bytes = (req.min_bytes.max(0) as usize).min(quota_max.unwrap_or(usize::MAX));
        if read.bytes >= min_bytes || read.errored || stopping || Instant::now() >= deadline {
            state.metrics.requests.fetch_error(from_follower, 0);
            for p in read.responses.iter().flat_map(|t| t.partitions.iter()) {
                state
                    .metrics
                    .requests
                    .fetch_error(from_follower, p.error_code);
            }
            if !from_follower {
                if let Some(throttled) = consumer_throttle(state, ctx, &image, read.bytes) {
                    return throttled;
                }
            }
            let mut reply = FetchReply::from(
                FetchResponse::default()
                    .with_session_id(0)
                    .with_responses(read.responses),
            );
            for (stats, bytes, failed) in &read.stats {
                stats.fetched(read.from_follower, *bytes, *failed);
            }
            for (topic, partition, region) in read.files {
                // the indexes are those of the responses just built
                let attached = reply.set_file_records(topic, partition, region);
                debug_assert!(attached, "fetch built no partition {topic}/{partition}");
            }
            return reply;
        }
        // parked until data or the deadline: not a request in progress
        ctx.slot.release();
        tokio::select! {
            _ = changes.changed() => {}
            _ = tokio::time::sleep_until(deadline) => {}
            _ = shutdown.changed() => {}
        }
    }
}

/// A consumer's bytes against its `consumer_byte_rate` and its request
/// time against `request_percentage`: when either is exceeded the bytes
/// are taken back and the answer is an empty response carrying the
/// throttle (Kafka's throttled fetch response); the consumer fetches them
/// again once the connection is unmuted.
fn consumer_throttle(
    state: &BrokerState,
    ctx: &RequestContext<'_>,
    image: &MetadataImage,
    bytes: usize,
) -> Option<FetchReply> {
    let quotas = &image.client_quotas;
    if quotas.is_empty() {
        return None;
    }
    let (user, client) = (ctx.conn.principal.name.as_str(), ctx.client_id());
    let now = state.quotas.now_ms();
    let bandwidth = state
        .quotas
        .fetch
        .record(quotas, user, client, bytes as f64, now);
    let throttle = ctx.throttle(bandwidth);
    if throttle == 0 {
        return None;
    }
    state
        .quotas
        .fetch
        .unrecord(quotas, user, client, bytes as f64, now);
    Some(
        FetchResponse::default()
            .with_throttle_time_ms(throttle.min(i32::MAX as u64) as i32)
            .with_session_id(0)
            .into(),
    )
}

/// The replica that fetches (a broker id), or -1 for a consumer: v15+
/// names it in ReplicaState (KIP-903), older versions in replica_id.
fn fetching_replica(version: i16, req: &FetchRequest) -> i32 {
    if version >= 15 {
        req.replica_state.replica_id.0
    } else {
        req.replica_id.0
    }
}

/// The request's topics the principal may not fetch from, by index
/// (Kafka's checks, made once for all passes of a long poll): a follower
/// needs CLUSTER_ACTION on the cluster, a consumer READ on each topic.
fn denied_topics(state: &BrokerState, ctx: &RequestContext<'_>, req: &FetchRequest) -> Vec<bool> {
    if fetching_replica(ctx.version, req) >= 0 {
        let denied = !authorize_cluster(state, ctx, AclOperation::ClusterAction);
        return vec![denied; req.topics.len()];
    }
    let image = state.controller.image();
    req.topics
        .iter()
        .map(|t| {
            let name = if ctx.version >= 13 {
                match image.topic_by_id(&t.topic_id) {
                    Some(info) => info.name.as_str(),
                    // answered UNKNOWN_TOPIC_ID
                    None => return false,
                }
            } else {
                t.topic.0.as_str()
            };
            !authorize(state, ctx, AclOperation::Read, ResourceType::Topic, name)
        })
        .collect()
}

/// What one pass over the requested partitions found.
struct ReadResult {
    /// The responses, records empty where `files` has them.
    responses: Vec<FetchableTopicResponse>,
    /// (topic index, partition index, batches) in response order.
    files: Vec<(usize, usize, FileRegion)>,
    /// Record bytes found.
    bytes: usize,
    /// Some partition answered with an error (the fetch returns at once).
    errored: bool,
    /// Per partition read: its topic's stats, record bytes, whether the
    /// read failed (BrokerTopicMetrics, counted for the pass answered).
    stats: Vec<(std::sync::Arc<crate::metrics::TopicStats>, u64, bool)>,
    from_follower: bool,
}

fn read_all(
    state: &BrokerState,
    version: i16,
    req: &FetchRequest,
    image: &MetadataImage,
    denied: &[bool],
    quota_max: Option<usize>,
) -> ReadResult {
    // The broker's `fetch.max.bytes` bounds the response whatever the
    // client asks for (the bytes stay in the page cache until sent, but a
    // consumer must be able to take the response in).
    let broker_max = state
        .config
        .value("fetch.max.bytes")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(57_671_680);
    let mut budget = if req.max_bytes > 0 {
        (req.max_bytes as usize).min(broker_max)
    } else {
        broker_max
    };
    if let Some(q) = quota_max {
        budget = budget.min(q.max(1));
    }
    let mut total = 0usize;
    let mut errored = false;
    let replica_id = fetching_replica(version, req);
    let is_follower = replica_id >= 0;
    // KIP-392: the consumer's rack, when a rack-aware selector is set
    let selector_rack = (!is_follower && version >= 11 && rack_aware_selector(state))
        .then_some(req.rack_id.as_str())
        .filter(|r| !r.is_empty());
    let read_committed = req.isolation_level == 1;
    let mut out = Vec::with_capacity(req.topics.len());
    let mut files = Vec::new();
    // zero-copy regions one response may hold (see below)
    let pinned_files = (oxka_log::open_file_budget() / 4).max(16);
    let mut stats = Vec::new();
    for (topic_index, topic) in req.topics.iter().enumerate() {
        let info = if version >= 13 {
            image.topic_by_id(&topic.topic_id)
        } else {
            image.topic(topic.topic.0.as_str())
        };
        let partitions = topic
            .partitions
            .iter()
            .enumerate()
            .map(|(partition_index, p)| {
                let base = PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_aborted_transactions(read_committed.then(Vec::new))
                    .with_records(Some(Bytes::new()));
                if denied.get(topic_index).copied().unwrap_or(false) {
                    errored = true;
                    return with_error(base, ResponseError::TopicAuthorizationFailed);
                }
                let Some(info) = info else {
                    errored = true;
                    let code = if version >= 13 {
                        ResponseError::UnknownTopicId
                    } else {
                        ResponseError::UnknownTopicOrPartition
                    };
                    return with_error(base, code);
                };
                let tp = TopicPartition::new(info.name.clone(), p.partition);
                if p.partition < 0 || p.partition as usize >= info.partitions.len() {
                    errored = true;
                    return with_error(base, ResponseError::UnknownTopicOrPartition);
                }
                // KIP-392: consumers with client metadata (v11+) may read
                // from a follower
                let partition = match state
                    .replica_manager
                    .readable_partition(&tp, !is_follower && version >= 11)
                    .map_err(|e| e.error)
                    .and_then(|part| {
                        part.check_leader_epoch(p.current_leader_epoch)?;
                        Ok(part)
                    }) {
                    Ok(partition) => partition,
                    Err(code) => {
                        errored = true;
                        return with_error(base, code);
                    }
                };
                if is_follower {
                    if version >= 12 && p.last_fetched_epoch >= 0 {
                        if let Some(diverging) =
                            diverging_epoch(&partition, p.last_fetched_epoch, p.fetch_offset)
                        {
                            // KIP-320: no records; the follower truncates
                            // and fetches again
                            errored = true;
                            return base
                                .with_high_watermark(partition.high_watermark())
                                .with_last_stable_offset(-1)
                                .with_log_start_offset(partition.log_start_offset())
                                .with_diverging_epoch(diverging);
                        }
                    }
                    // KIP-903: v15+ says which incarnation fetches
                    let broker_epoch = if version >= 15 {
                        req.replica_state.replica_epoch
                    } else {
                        -1
                    };
                    state.replica_manager.follower_fetched(
                        &partition,
                        replica_id,
                        broker_epoch,
                        p.fetch_offset,
                    );
                }
                if let Some(rack) = selector_rack.filter(|_| partition.is_leader()) {
                    let preferred = state.replica_manager.preferred_read_replica(
                        &partition,
                        rack,
                        p.fetch_offset,
                        |id| image.brokers.get(&id).and_then(|b| b.rack.clone()),
                    );
                    if let Some(replica) = preferred {
                        // no records: the consumer goes to that replica
                        errored = true;
                        return base
                            .with_high_watermark(partition.high_watermark())
                            .with_last_stable_offset(-1)
                            .with_log_start_offset(partition.log_start_offset())
                            .with_preferred_read_replica(BrokerId(replica));
                    }
                }
                let hw = partition.high_watermark();
                let log = partition.log.lock();
                let lso = partition.last_stable_offset(&log);
                let upper = if is_follower {
                    log.log_end_offset()
                } else if read_committed {
                    lso
                } else {
                    hw
                };
                let base = base
                    .with_high_watermark(hw)
                    .with_last_stable_offset(lso)
                    .with_log_start_offset(log.log_start_offset());
                let limit = (p.partition_max_bytes.max(0) as usize).min(budget);
                let min_one = total == 0;
                if limit == 0 && !min_one {
                    return base;
                }
                match log.read_region(p.fetch_offset, limit, upper, min_one) {
                    Ok(data) => {
                        let n = data.len();
                        stats.push((partition.stats.clone(), n as u64, false));
                        total += n;
                        budget = budget.saturating_sub(n);
                        let base = if read_committed && n > 0 {
                            // the aborted transactions the records overlap,
                            // from the .txnindex entries
                            base.with_aborted_transactions(Some(
                                log.collect_aborted_transactions(p.fetch_offset, upper)
                                    .into_iter()
                                    .map(|t| {
                                        AbortedTransaction::default()
                                            .with_producer_id(ProducerId(t.producer_id))
                                            .with_first_offset(t.first_offset)
                                    })
                                    .collect(),
                            ))
                        } else {
                            base
                        };
                        match data.records {
                            Some(region) if files.len() < pinned_files => {
                                files.push((topic_index, partition_index, region));
                                base
                            }
                            // A region holds its segment file open until the
                            // response is sent, outside the segment-file
                            // budget (`oxka_log::open_files`): past a share
                            // of it the records are copied and the file let
                            // go, so one fetch of many partitions cannot run
                            // the process out of descriptors.
                            Some(region) => match region.to_bytes() {
                                Ok(bytes) => base.with_records(Some(bytes)),
                                Err(e) => {
                                    errored = true;
                                    tracing::error!(partition = %tp, error = %e, "fetch read failed");
                                    with_error(base, ResponseError::KafkaStorageError)
                                }
                            },
                            None => base,
                        }
                    }
                    Err(e) => {
                        errored = true;
                        // Kafka counts a failed fetch for errors other
                        // than the partition's or the offset's state
                        let failed = !matches!(e, LogError::OffsetOutOfRange { .. });
                        stats.push((partition.stats.clone(), 0, failed));
                        if failed {
                            tracing::error!(partition = %tp, error = %e, "fetch read failed");
                        }
                        with_error(base, log_error_code(&e))
                    }
                }
            })
            .collect();
        out.push(topic_response(
            topic,
            info.map(|t| t.name.as_str()),
            partitions,
        ));
    }
    ReadResult {
        responses: out,
        files,
        bytes: total,
        errored,
        stats,
        from_follower: is_follower,
    }
}

/// The leader's end of the follower's last fetched epoch, when the
/// follower's log diverged from it (Kafka: the leader's epoch there is
/// older, or it ended before the follower's fetch offset).
fn diverging_epoch(
    partition: &crate::replica_manager::Partition,
    last_fetched_epoch: i32,
    fetch_offset: i64,
) -> Option<EpochEndOffset> {
    let end = partition
        .log
        .lock()
        .end_offset_for_epoch(last_fetched_epoch);
    let (epoch, end_offset) = end.unwrap_or((-1, -1));
    if epoch == last_fetched_epoch && end_offset >= fetch_offset {
        return None;
    }
    Some(
        EpochEndOffset::default()
            .with_epoch(epoch)
            .with_end_offset(end_offset),
    )
}

/// Kafka's `replica.selector.class` values that pick by rack (its own
/// class, or oxka's short alias).
fn rack_aware_selector(state: &BrokerState) -> bool {
    state
        .config
        .value("replica.selector.class")
        .is_some_and(|v| {
            matches!(
                v.trim(),
                "org.apache.kafka.common.replica.RackAwareReplicaSelector" | "rack-aware"
            )
        })
}

fn with_error(p: PartitionData, code: ResponseError) -> PartitionData {
    p.with_error_code(code.code())
        .with_high_watermark(-1)
        .with_last_stable_offset(-1)
        .with_log_start_offset(-1)
}

fn topic_response(
    topic: &FetchTopic,
    name: Option<&str>,
    partitions: Vec<PartitionData>,
) -> FetchableTopicResponse {
    FetchableTopicResponse::default()
        .with_topic(
            name.map(|n| TopicName(s(n)))
                .unwrap_or_else(|| topic.topic.clone()),
        )
        .with_topic_id(topic.topic_id)
        .with_partitions(partitions)
}
