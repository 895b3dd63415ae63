//! One request frame: header, version check, decode, dispatch to the API's
//! handler, encode the response with the header version the API expects.

use std::future::Future;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable};

use crate::handlers;
use crate::network::{ConnectionInfo, Response};
use crate::server::BrokerState;

pub enum Outcome {
    /// A response frame to send (Fetch's may carry file regions).
    Respond(Response),
    /// acks=0 produce: Kafka sends nothing back.
    NoResponse,
    Close(String),
}

pub struct RequestContext<'a> {
    pub header: RequestHeader,
    pub api_key: ApiKey,
    pub version: i16,
    pub conn: &'a ConnectionInfo,
    pub slot: &'a RequestSlot,
    /// Where the response's error codes are counted (RequestMetrics).
    pub metrics: &'a crate::metrics::RequestMetrics,
    /// The request's size (header and body, as Kafka's `sizeInBytes`):
    /// what a produce counts against `producer_byte_rate`.
    pub size: usize,
    pub state: &'a BrokerState,
}

impl RequestContext<'_> {
    /// The request header's client id ("" when null).
    pub fn client_id(&self) -> &str {
        self.header.client_id.as_deref().unwrap_or("")
    }

    /// Records the request's handling time against the client's
    /// `request_percentage` (KIP-124) and notes `bandwidth_ms` (a byte
    /// rate's throttle) beside it: the larger is the request's throttle,
    /// returned, in its response and muting the connection. Followers'
    /// fetches and inter-broker requests are exempt, as in Kafka.
    pub fn throttle(&self, bandwidth_ms: u64) -> u64 {
        let image = self.state.controller.image();
        let mut ms = bandwidth_ms;
        let (_, follower_fetch) = self.slot.marks();
        if !image.client_quotas.is_empty()
            && !follower_fetch
            && self.api_key != ApiKey::WriteTxnMarkers
        {
            let quotas = &self.state.quotas;
            let spent = crate::quota::time_to_percentage(self.slot.handling_time());
            ms = ms.max(quotas.request.record(
                &image.client_quotas,
                &self.conn.principal.name,
                self.client_id(),
                spent,
                quotas.now_ms(),
            ));
        }
        if ms > 0 {
            self.slot.throttle(
                ms,
                !crate::quota::throttle::client_throttles(self.api_key, self.version),
            );
        }
        // a controller mutation throttle noted while handling counts too
        ms.max(self.slot.throttled().0)
    }
}

/// The request's share of `queued.max.requests`. A handler that parks the
/// request (a long-poll Fetch, a JoinGroup or SyncGroup waiting for the
/// rest of the group) gives it back first, as Kafka's purgatory frees its
/// request queue: otherwise a few hundred idle consumers would hold every
/// slot and stall all other clients for up to a rebalance timeout.
#[derive(Default)]
pub struct RequestSlot(parking_lot::Mutex<SlotState>);

#[derive(Default)]
struct SlotState {
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
    /// When the request was first parked: its local time ends there and
    /// its remote (purgatory) time begins (RequestMetrics).
    parked: Option<std::time::Instant>,
    /// A Fetch from a follower (RequestMetrics' FetchFollower, not
    /// FetchConsumer).
    follower_fetch: bool,
    /// When handling began (set by `new`).
    started: Option<std::time::Instant>,
    /// The client's throttle (KIP-219) and whether its response is held
    /// for that time (clients too old to throttle themselves).
    throttle_ms: u64,
    hold_response: bool,
}

impl RequestSlot {
    pub fn new(permit: tokio::sync::OwnedSemaphorePermit) -> RequestSlot {
        RequestSlot(parking_lot::Mutex::new(SlotState {
            permit: Some(permit),
            started: Some(std::time::Instant::now()),
            ..SlotState::default()
        }))
    }

    /// Frees the slot while the request waits; idempotent.
    pub fn release(&self) {
        let mut s = self.0.lock();
        if s.parked.is_none() {
            s.parked = Some(std::time::Instant::now());
        }
        s.permit.take();
    }

    /// When the request was parked (if it was) and whether it is a
    /// follower's Fetch: what its metrics need, read once it is handled.
    pub fn marks(&self) -> (Option<std::time::Instant>, bool) {
        let s = self.0.lock();
        (s.parked, s.follower_fetch)
    }

    /// The request is a follower's Fetch (its metrics go under
    /// FetchFollower, as Kafka's do).
    pub fn note_follower_fetch(&self) {
        self.0.lock().follower_fetch = true;
    }

    /// The time the request was handled, up to now or to when it was
    /// parked (its wait is not handling time): what `request_percentage`
    /// counts.
    pub fn handling_time(&self) -> std::time::Duration {
        let s = self.0.lock();
        match s.started {
            Some(t) => s
                .parked
                .unwrap_or_else(std::time::Instant::now)
                .saturating_duration_since(t),
            None => std::time::Duration::ZERO,
        }
    }

    /// The client is throttled for `ms` (the largest throttle wins);
    /// `hold_response`: its version does not throttle itself.
    pub fn throttle(&self, ms: u64, hold_response: bool) {
        let mut s = self.0.lock();
        if ms > s.throttle_ms {
            s.throttle_ms = ms;
            s.hold_response = hold_response;
        }
    }

    /// (throttle ms, hold the response) for the network loop.
    pub fn throttled(&self) -> (u64, bool) {
        let s = self.0.lock();
        (s.throttle_ms, s.hold_response)
    }
}

/// The APIs oxka implements and the versions it advertises: every version
/// Kafka 4.x accepts that the codec supports, and the older ones Kafka 3.9
/// still accepted (KIP-896 removed them in 4.0) where no old message format
/// is involved: ListOffsets v0, OffsetCommit v0–1, OffsetFetch v0,
/// DescribeConfigs v0, CreateTopics v0–1, DeleteTopics v0 (restored in the
/// vendored codec, see vendor/README.md), so that clients pinned to them
/// (Debian's sarama 1.22) keep working. Produce below v3 and Fetch below v4
/// stay out (message formats v0/v1). Nothing is listed that has no handler;
/// README.md's API table is checked against this list by a test.
pub const SUPPORTED_APIS: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DescribeConfigs,
    ApiKey::CreatePartitions,
    ApiKey::DescribeCluster,
    ApiKey::InitProducerId,
    // log lifecycle
    ApiKey::AlterConfigs,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DeleteRecords,
    // consumer groups (crate::coordinator::group)
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::ConsumerGroupHeartbeat,
    ApiKey::ConsumerGroupDescribe,
    // exactly-once (crate::coordinator::txn, oxka-log producer_state)
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::EndTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::WriteTxnMarkers,
    ApiKey::ListTransactions,
    ApiKey::DescribeTransactions,
    ApiKey::DescribeProducers,
    ApiKey::DescribeQuorum,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::ElectLeaders,
    ApiKey::AlterPartitionReassignments,
    ApiKey::ListPartitionReassignments,
    // security (crate::network::sasl; answered here only where no SASL runs)
    ApiKey::SaslHandshake,
    ApiKey::SaslAuthenticate,
    ApiKey::DescribeUserScramCredentials,
    ApiKey::AlterUserScramCredentials,
    ApiKey::DescribeAcls,
    ApiKey::CreateAcls,
    ApiKey::DeleteAcls,
    ApiKey::DescribeClientQuotas,
    ApiKey::AlterClientQuotas,
];

/// Where the codec decodes fewer request versions than `valid_versions`
/// claims (its OffsetCommit/OffsetFetch v10 requests are not implemented).
fn decodable_max(key: ApiKey) -> i16 {
    match key {
        ApiKey::OffsetCommit | ApiKey::OffsetFetch => 9,
        _ => i16::MAX,
    }
}

pub fn supported_versions(key: ApiKey) -> Option<(i16, i16)> {
    if SUPPORTED_APIS.contains(&key) {
        let r = key.valid_versions();
        Some((r.min, r.max.min(decodable_max(key))))
    } else {
        None
    }
}

/// [`handle_frame_in_slot`] without a `queued.max.requests` slot (tests).
pub async fn handle_frame(state: &BrokerState, conn: &ConnectionInfo, frame: Bytes) -> Outcome {
    handle_frame_in_slot(state, conn, &RequestSlot::default(), frame).await
}

pub async fn handle_frame_in_slot(
    state: &BrokerState,
    conn: &ConnectionInfo,
    slot: &RequestSlot,
    frame: Bytes,
) -> Outcome {
    // The frame reader guarantees at least 8 bytes.
    let size = frame.len();
    let mut peek = &frame[..];
    let raw_key = peek.get_i16();
    let version = peek.get_i16();
    let correlation_id = peek.get_i32();
    let Ok(api_key) = ApiKey::try_from(raw_key) else {
        return Outcome::Close(format!("unknown api key {raw_key}"));
    };
    let Some((min, max)) = supported_versions(api_key) else {
        return Outcome::Close(format!("unsupported api {api_key:?}"));
    };
    if version < min || version > max {
        if api_key == ApiKey::ApiVersions {
            return Outcome::Respond(
                handlers::api_versions::unsupported_version(correlation_id).into(),
            );
        }
        return Outcome::Close(format!("unsupported version {version} of {api_key:?}"));
    }
    let mut body = frame;
    let header = match RequestHeader::decode(&mut body, api_key.request_header_version(version)) {
        Ok(h) => h,
        Err(e) => return Outcome::Close(format!("malformed request header: {e}")),
    };
    let ctx = RequestContext {
        header,
        api_key,
        version,
        conn,
        slot,
        metrics: &state.metrics.requests,
        size,
        state,
    };
    let ctx = &ctx;
    match api_key {
        ApiKey::ApiVersions => {
            run(ctx, body, |r| async {
                Some(handlers::api_versions::handle(ctx, r))
            })
            .await
        }
        ApiKey::Metadata => run(ctx, body, |r| handlers::metadata::handle(state, ctx, r)).await,
        ApiKey::Produce => produce(state, ctx, body).await,
        ApiKey::Fetch => fetch(state, ctx, body).await,
        ApiKey::ListOffsets => {
            run(ctx, body, |r| handlers::list_offsets::handle(state, ctx, r)).await
        }
        ApiKey::CreateTopics => {
            run(ctx, body, |r| {
                handlers::create_topics::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DescribeQuorum => {
            run(ctx, body, |r| {
                handlers::describe_quorum::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DeleteTopics => {
            run(ctx, body, |r| {
                handlers::delete_topics::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::CreatePartitions => {
            run(ctx, body, |r| {
                handlers::create_partitions::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DescribeConfigs => {
            run(ctx, body, |r| {
                handlers::describe_configs::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::InitProducerId => {
            run(ctx, body, |r| {
                handlers::init_producer_id::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::AlterConfigs => {
            run(ctx, body, |r| {
                handlers::alter_configs::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::IncrementalAlterConfigs => {
            run(ctx, body, |r| {
                handlers::incremental_alter_configs::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DeleteRecords => {
            run(ctx, body, |r| {
                handlers::delete_records::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DescribeCluster => {
            run(ctx, body, |r| {
                handlers::describe_cluster::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::FindCoordinator => {
            run(ctx, body, |r| {
                handlers::find_coordinator::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::JoinGroup => run(ctx, body, |r| handlers::join_group::handle(state, ctx, r)).await,
        ApiKey::SyncGroup => run(ctx, body, |r| handlers::sync_group::handle(state, ctx, r)).await,
        ApiKey::Heartbeat => run(ctx, body, |r| handlers::heartbeat::handle(state, ctx, r)).await,
        ApiKey::LeaveGroup => {
            run(ctx, body, |r| handlers::leave_group::handle(state, ctx, r)).await
        }
        ApiKey::OffsetCommit => {
            run(ctx, body, |r| {
                handlers::offset_commit::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::OffsetFetch => {
            run(ctx, body, |r| handlers::offset_fetch::handle(state, ctx, r)).await
        }
        ApiKey::ListGroups => {
            run(ctx, body, |r| handlers::list_groups::handle(state, ctx, r)).await
        }
        ApiKey::DescribeGroups => {
            run(ctx, body, |r| {
                handlers::describe_groups::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DeleteGroups => {
            run(ctx, body, |r| {
                handlers::delete_groups::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::OffsetDelete => {
            run(ctx, body, |r| {
                handlers::offset_delete::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::ConsumerGroupHeartbeat => {
            run(ctx, body, |r| {
                handlers::consumer_group_heartbeat::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::ConsumerGroupDescribe => {
            run(ctx, body, |r| {
                handlers::consumer_group_describe::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::AddPartitionsToTxn => {
            run(ctx, body, |r| {
                handlers::add_partitions_to_txn::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::AddOffsetsToTxn => {
            run(ctx, body, |r| {
                handlers::add_offsets_to_txn::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::EndTxn => run(ctx, body, |r| handlers::end_txn::handle(state, ctx, r)).await,
        ApiKey::TxnOffsetCommit => {
            run(ctx, body, |r| {
                handlers::txn_offset_commit::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::WriteTxnMarkers => {
            run(ctx, body, |r| {
                handlers::write_txn_markers::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::ListTransactions => {
            run(ctx, body, |r| {
                handlers::list_transactions::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DescribeTransactions => {
            run(ctx, body, |r| {
                handlers::describe_transactions::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::DescribeProducers => {
            run(ctx, body, |r| {
                handlers::describe_producers::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::OffsetForLeaderEpoch => {
            run(ctx, body, |r| {
                handlers::offset_for_leader_epoch::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::ElectLeaders => {
            run(ctx, body, |r| {
                handlers::elect_leaders::handle(state, ctx, r)
            })
            .await
        }
        ApiKey::AlterPartitionReassignments => {
            run(ctx, body, |r| {
                handlers::partition_reassignments::alter(state, ctx, r)
            })
            .await
        }
        ApiKey::ListPartitionReassignments => {
            run(ctx, body, |r| {
                handlers::partition_reassignments::list(state, ctx, r)
            })
            .await
        }
        ApiKey::SaslHandshake => run(ctx, body, |r| handlers::sasl::handshake(ctx, r)).await,
        ApiKey::SaslAuthenticate => run(ctx, body, |r| handlers::sasl::authenticate(ctx, r)).await,
        ApiKey::DescribeUserScramCredentials => {
            run(ctx, body, |r| {
                handlers::user_scram_credentials::describe(state, ctx, r)
            })
            .await
        }
        ApiKey::AlterUserScramCredentials => {
            run(ctx, body, |r| {
                handlers::user_scram_credentials::alter(state, ctx, r)
            })
            .await
        }
        ApiKey::DescribeAcls => run(ctx, body, |r| handlers::acls::describe(state, ctx, r)).await,
        ApiKey::CreateAcls => run(ctx, body, |r| handlers::acls::create(state, ctx, r)).await,
        ApiKey::DeleteAcls => run(ctx, body, |r| handlers::acls::delete(state, ctx, r)).await,
        ApiKey::DescribeClientQuotas => {
            run(ctx, body, |r| {
                handlers::client_quotas::describe(state, ctx, r)
            })
            .await
        }
        ApiKey::AlterClientQuotas => {
            run(ctx, body, |r| handlers::client_quotas::alter(state, ctx, r)).await
        }
        other => Outcome::Close(format!("no handler for {other:?}")),
    }
}

async fn run<Req, Resp, F, Fut>(ctx: &RequestContext<'_>, body: Bytes, handler: F) -> Outcome
where
    Req: Decodable,
    Resp: Encodable + crate::metrics::errors::ErrorCounts + crate::quota::throttle::ThrottleTime,
    F: FnOnce(Req) -> Fut,
    Fut: Future<Output = Option<Resp>>,
{
    let req = match decode::<Req>(ctx, body) {
        Ok(r) => r,
        Err(closed) => return closed,
    };
    match handler(req).await {
        Some(mut resp) => {
            let throttle = ctx.throttle(0);
            if throttle > 0 {
                resp.set_throttle_time_ms(throttle.min(i32::MAX as u64) as i32);
            }
            resp.error_codes(&mut |code| ctx.metrics.error(ctx.api_key, code));
            respond(ctx, &resp)
        }
        None => Outcome::NoResponse,
    }
}

fn decode<Req: Decodable>(ctx: &RequestContext<'_>, mut body: Bytes) -> Result<Req, Outcome> {
    Req::decode(&mut body, ctx.version).map_err(|e| {
        Outcome::Close(format!(
            "malformed {:?} v{} request: {e}",
            ctx.api_key, ctx.version
        ))
    })
}

fn respond<Resp: Encodable>(ctx: &RequestContext<'_>, resp: &Resp) -> Outcome {
    match encode_response(ctx.api_key, ctx.version, ctx.header.correlation_id, resp) {
        Ok(b) => Outcome::Respond(b.into()),
        Err(e) => Outcome::Close(format!("cannot encode {:?} response: {e}", ctx.api_key)),
    }
}

/// Fetch: the response frame leaves the record batches in their segment
/// files for the connection writer to `sendfile`.
async fn fetch(state: &BrokerState, ctx: &RequestContext<'_>, body: Bytes) -> Outcome {
    let req = match decode::<FetchRequest>(ctx, body) {
        Ok(r) => r,
        Err(closed) => return closed,
    };
    let reply = handlers::fetch::handle(state, ctx, req).await;
    match reply.encode(ctx.version, ctx.header.correlation_id) {
        Ok(resp) => Outcome::Respond(resp),
        Err(e) => Outcome::Close(e.to_string()),
    }
}

/// Produce, with Kafka's acks=0 rule: no response at all, and when such a
/// produce fails the connection is closed instead, the only way the client
/// learns of it (it then refreshes metadata and reconnects).
async fn produce(state: &BrokerState, ctx: &RequestContext<'_>, body: Bytes) -> Outcome {
    let req = match decode::<ProduceRequest>(ctx, body) {
        Ok(r) => r,
        Err(closed) => return closed,
    };
    let acks = req.acks;
    let response = handlers::produce::handle(state, ctx, req).await;
    // KIP-55: the request's bytes count against producer_byte_rate
    // whatever became of them, acks=0 included
    let bandwidth = {
        let image = state.controller.image();
        if image.client_quotas.is_empty() {
            0
        } else {
            state.quotas.produce.record(
                &image.client_quotas,
                &ctx.conn.principal.name,
                ctx.client_id(),
                ctx.size as f64,
                state.quotas.now_ms(),
            )
        }
    };
    let throttle = ctx.throttle(bandwidth);
    let Some(mut resp) = response else {
        return Outcome::NoResponse;
    };
    if throttle > 0 {
        use crate::quota::throttle::ThrottleTime;
        resp.set_throttle_time_ms(throttle.min(i32::MAX as u64) as i32);
    }
    if acks != 0 {
        return respond(ctx, &resp);
    }
    let failed = resp
        .responses
        .iter()
        .flat_map(|t| t.partition_responses.iter().map(move |p| (t, p)))
        .find(|(_, p)| p.error_code != 0);
    match failed {
        Some((t, p)) => Outcome::Close(format!(
            "acks=0 produce to {}-{} failed with error {}",
            t.name.0.as_str(),
            p.index,
            p.error_code
        )),
        None => Outcome::NoResponse,
    }
}

/// Size prefix, response header (v0 or flexible v1 as the API dictates) and body.
pub fn encode_response<Resp: Encodable>(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    resp: &Resp,
) -> anyhow::Result<Bytes> {
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let header_version = api_key.response_header_version(version);
    let size = header.compute_size(header_version)? + resp.compute_size(version)?;
    let mut buf = BytesMut::with_capacity(4 + size);
    buf.put_i32(size as i32);
    header.encode(&mut buf, header_version)?;
    resp.encode(&mut buf, version)?;
    Ok(buf.freeze())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// README.md's "Kafka APIs" table: API name → (min, max) as written.
    fn readme_table() -> Vec<(String, (i16, i16))> {
        let readme = include_str!("../../../README.md");
        let section = readme
            .split("\n## Kafka APIs\n")
            .nth(1)
            .expect("README has a Kafka APIs section");
        let section = section.split("\n## ").next().unwrap_or(section);
        section
            .lines()
            .filter_map(|l| {
                let cells: Vec<&str> = l.split('|').map(str::trim).collect();
                let (name, versions) = (cells.get(1)?, cells.get(2)?);
                let range = versions.split_whitespace().next()?;
                let (min, max) = range.split_once('–').unwrap_or((range, range));
                Some((name.to_string(), (min.parse().ok()?, max.parse().ok()?)))
            })
            .collect()
    }

    /// Users read the README's table to know what oxka speaks: it must say
    /// exactly what ApiVersions advertises.
    #[test]
    fn readme_api_table_matches_advertised_versions() {
        let table = readme_table();
        let advertised: Vec<(String, (i16, i16))> = SUPPORTED_APIS
            .iter()
            .map(|k| {
                let range = supported_versions(*k).expect("supported");
                (format!("{k:?}"), range)
            })
            .collect();
        for (name, range) in &advertised {
            let row = table.iter().find(|(n, _)| n == name);
            assert_eq!(
                row.map(|(_, r)| r),
                Some(range),
                "README's row for {name} (advertised {}–{})",
                range.0,
                range.1
            );
        }
        for (name, _) in &table {
            assert!(
                advertised.iter().any(|(n, _)| n == name),
                "README lists {name}, which is not advertised"
            );
        }
    }
}
