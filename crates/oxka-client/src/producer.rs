//! The producer: an accumulator of per-partition batches and one sender
//! task that drains them to partition leaders.
//!
//! - Memory: each batch takes its whole buffer from `buffer.memory` when
//!   it opens and gives it back (to be reused) when it completes, as Java's
//!   producer does (`buffer_pool`), so `send` waits (up to `max.block.ms`)
//!   instead of growing without bound, and a batch never grows.
//! - Batching: a batch is sent when it reaches `batch.size`, when its
//!   oldest record has waited `linger.ms`, or on `flush`.
//! - Pipelining: as Java's producer, up to
//!   `max.in.flight.requests.per.connection` batches of a partition are in
//!   flight at once (one per request; the same number bounds requests per
//!   broker). Requests to a broker are queued on its connection in the
//!   order the sender drained them, and the broker handles a connection's
//!   requests in order, so batches arrive in sequence order.
//! - Ordering with idempotence: the broker accepts only the next sequence.
//!   When a batch fails retriably, the batches sent after it come back
//!   OUT_OF_ORDER_SEQUENCE_NUMBER, which is then retriable too (their
//!   sequence is not the next one the broker acknowledged); all go back to
//!   the queue in sequence order, and a batch sent before is re-sent only
//!   when nothing of its partition is in flight, so retries go one at a
//!   time, in order (Java's Sender and TransactionManager do the same).
//!   A batch the broker refuses for good leaves a gap: the later batches
//!   of its partition are renumbered (Java's
//!   `adjustSequencesDueToFailedBatch`). Only a refusal (a non-retriable
//!   error from the broker) counts: a batch that ran out of retries or of
//!   `delivery.timeout.ms` after it was sent may have been written (an
//!   acks=all produce times out after its append), so its sequence is
//!   unresolved and never used again under that epoch: once nothing is in
//!   flight the producer moves to the next epoch (KIP-360; Java bumps an
//!   idempotent producer's epoch the same way) and numbers the batches it
//!   never sent from 0. The batches it had sent and was retrying fail
//!   with a timeout (written or not, unknown): re-sent under the new epoch
//!   the broker could not recognise them, and one written before would be
//!   written twice (Java re-sends them; `oxka verify` saw the duplicates). Renumbering over such a batch made the broker take a
//!   later batch for its duplicate and acknowledge it at the earlier one's
//!   offset: a lost write `oxka verify` found. DUPLICATE_SEQUENCE_NUMBER
//!   means the broker already has the batch: success.
//! - Without idempotence Kafka's rule holds: a retry may reorder a
//!   partition's records unless `max.in.flight.requests.per.connection=1`.
//! - Retries: retriable errors (leader moved, broker unreachable) requeue
//!   the batch after `retry.backoff.ms` with the same sequence number,
//!   until `delivery.timeout.ms` since the record was queued.
//! - Transactions (`transactional.id`, Kafka's classic protocol; the
//!   state machine and coordinator requests are in `transaction`): sends
//!   go through the same accumulator. The first record for a partition
//!   in a transaction marks it pending; the sender adds every pending
//!   partition in one AddPartitionsToTxn before its pass drains, and
//!   drains a partition only once it is in the transaction. Batches carry
//!   the transactional bit, Produce the transactional id. A send that
//!   fails for good makes the transaction abortable (a fenced producer is
//!   fatal); then, and on abort, the batches not yet sent fail at once.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use tokio::sync::{Notify, Semaphore};

use crate::buffer_pool::{AllocError, BufferPool};
use crate::cluster::Cluster;
use crate::config::{ClientConfig, CommonConfig};
use crate::consumer::ConsumerGroupMetadata;
use crate::error::{Error, KafkaCode, Result};
use crate::partitioner::{partition_for_key, XorShift};
use crate::records::{BatchBuilder, Compression, Header, BATCH_HEADER_SIZE};
pub use crate::transaction::TransactionState;
use crate::transaction::{
    classify, produce_failure_is_fatal, Disposition, TxnCoordinator, TxnMachine,
};

use crate::{now_ms, tn, TopicPartition};

/// A record to send.
#[derive(Debug, Clone, Default)]
pub struct ProducerRecord {
    pub topic: String,
    /// `None`: chosen by the partitioner.
    pub partition: Option<i32>,
    pub key: Option<Bytes>,
    pub value: Option<Bytes>,
    pub headers: Vec<Header>,
    /// `None`: now.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record for `topic` with no key and no value.
    pub fn new(topic: impl Into<String>) -> ProducerRecord {
        ProducerRecord {
            topic: topic.into(),
            ..Default::default()
        }
    }
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }
    pub fn value(mut self, value: impl Into<Bytes>) -> Self {
        self.value = Some(value.into());
        self
    }
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }
    pub fn header(mut self, key: impl Into<String>, value: impl Into<Bytes>) -> Self {
        self.headers.push(Header::new(key, value));
        self
    }
    pub fn timestamp(mut self, ms: i64) -> Self {
        self.timestamp = Some(ms);
        self
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    pub topic: String,
    pub partition: i32,
    /// -1 with acks=0 (the broker does not answer).
    pub offset: i64,
    pub timestamp: i64,
}

/// Resolves when the record is acknowledged (or has failed for good).
///
/// The records of a batch share one [`BatchOutcome`]: a record costs its
/// future no allocation and no channel, which at a million records a
/// second is most of what the producer would otherwise spend.
pub struct DeliveryFuture {
    outcome: Arc<BatchOutcome>,
    delta: i32,
    timestamp: i64,
    /// Where this future's waker sits in the outcome's list, once polled.
    waker_slot: Option<usize>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata>;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        let mut st = this.outcome.lock();
        if let Some(result) = &st.result {
            return Poll::Ready(
                this.outcome
                    .record_result(result, this.delta, this.timestamp),
            );
        }
        match this.waker_slot {
            Some(i) if i < st.wakers.len() => {
                if !st.wakers[i].will_wake(cx.waker()) {
                    st.wakers[i] = cx.waker().clone();
                }
            }
            _ => {
                this.waker_slot = Some(st.wakers.len());
                st.wakers.push(cx.waker().clone());
            }
        }
        Poll::Pending
    }
}

/// What became of a batch: set once by the sender, read by every record's
/// [`DeliveryFuture`].
struct BatchOutcome {
    tp: TopicPartition,
    state: Mutex<OutcomeState>,
}

#[derive(Default)]
struct OutcomeState {
    /// `Ok((base offset, log append time))`; both -1 when unknown (acks=0,
    /// CreateTime).
    result: Option<std::result::Result<(i64, i64), Error>>,
    wakers: Vec<Waker>,
}

impl BatchOutcome {
    fn new(tp: TopicPartition) -> Arc<BatchOutcome> {
        Arc::new(BatchOutcome {
            tp,
            state: Mutex::new(OutcomeState::default()),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, OutcomeState> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Records the result (the first one wins) and wakes the waiting records.
    fn set(&self, result: std::result::Result<(i64, i64), Error>) {
        let wakers = {
            let mut st = self.lock();
            if st.result.is_some() {
                return;
            }
            st.result = Some(result);
            std::mem::take(&mut st.wakers)
        };
        for w in wakers {
            w.wake();
        }
    }

    fn record_result(
        &self,
        result: &std::result::Result<(i64, i64), Error>,
        delta: i32,
        timestamp: i64,
    ) -> Result<RecordMetadata> {
        match result {
            Ok((base, append_time)) => Ok(RecordMetadata {
                topic: self.tp.topic.clone(),
                partition: self.tp.partition,
                offset: if *base >= 0 { base + delta as i64 } else { -1 },
                timestamp: if *append_time >= 0 {
                    *append_time
                } else {
                    timestamp
                },
            }),
            Err(Error::Timeout(m)) => Err(Error::Timeout(m.clone())),
            Err(Error::Closed) => Err(Error::Closed),
            Err(Error::Transaction {
                fatal,
                code,
                message,
            }) => Err(Error::Transaction {
                fatal: *fatal,
                code: *code,
                message: message.clone(),
            }),
            Err(e) => match e.kafka_code() {
                Some(code) => Err(Error::Kafka {
                    code,
                    message: None,
                    context: format!("producing to {}", self.tp),
                }),
                None => Err(Error::Protocol(e.to_string())),
            },
        }
    }
}

#[derive(Debug, Clone)]
struct ProducerConfig {
    acks: i16,
    batch_size: usize,
    linger: Duration,
    buffer_memory: usize,
    max_block: Duration,
    max_request_size: usize,
    compression: Compression,
    retries: u32,
    delivery_timeout: Duration,
    max_in_flight: usize,
    idempotence: bool,
    /// Idempotence was asked for explicitly (fail rather than fall back).
    idempotence_explicit: bool,
    request_timeout_ms: i32,
    /// `transactional.id`; its Produce field, built once.
    transactional_id: Option<String>,
    txn_id_field: Option<TransactionalId>,
    transaction_timeout_ms: i32,
}

impl ProducerConfig {
    /// The bytes a batch's buffer holds: `batch.size` within the request
    /// and memory limits. A larger record gets a batch of its own size.
    fn batch_capacity(&self) -> usize {
        self.batch_size
            .min(self.max_request_size)
            .min(self.buffer_memory)
            .max(1)
    }

    fn parse(cfg: &ClientConfig) -> Result<ProducerConfig> {
        let acks = match cfg.get_str("acks", "all") {
            "all" | "-1" => -1,
            "1" => 1,
            "0" => 0,
            _ => return Err(cfg.bad("acks", "expected all, -1, 0 or 1")),
        };
        let max_in_flight =
            cfg.get_i64("max.in.flight.requests.per.connection", 5, 1, 1000)? as usize;
        let transactional_id = cfg
            .get("transactional.id")
            .filter(|t| !t.is_empty())
            .map(str::to_string);
        let mut explicit = cfg.get("enable.idempotence").is_some();
        let mut idempotence = cfg.get_bool("enable.idempotence", true)?;
        if transactional_id.is_some() {
            // Java: a transactional producer is idempotent; saying
            // otherwise is a config error, and the conflicts below are too
            if !idempotence {
                return Err(cfg.bad(
                    "enable.idempotence",
                    "must be true (or unset) with transactional.id",
                ));
            }
            explicit = true;
        }
        if idempotence && (acks != -1 || max_in_flight > 5) {
            // Kafka 3+: the default yields to conflicting settings; an
            // explicit request does not.
            if explicit {
                return Err(cfg.bad(
                    "enable.idempotence",
                    "idempotence needs acks=all and max.in.flight.requests.per.connection <= 5",
                ));
            }
            idempotence = false;
        }
        let compression =
            Compression::parse(cfg.get_str("compression.type", "none")).ok_or_else(|| {
                cfg.bad(
                    "compression.type",
                    "expected none, gzip, snappy, lz4 or zstd",
                )
            })?;
        let linger = cfg.get_ms("linger.ms", 5)?;
        let request_timeout = cfg.get_ms("request.timeout.ms", 30_000)?;
        let mut delivery_timeout = cfg.get_ms("delivery.timeout.ms", 120_000)?;
        if delivery_timeout < linger + request_timeout {
            if cfg.get("delivery.timeout.ms").is_some() {
                return Err(cfg.bad(
                    "delivery.timeout.ms",
                    "must be at least linger.ms + request.timeout.ms",
                ));
            }
            delivery_timeout = linger + request_timeout;
        }
        Ok(ProducerConfig {
            acks,
            batch_size: cfg
                .get_i64("batch.size", 16_384, 0, i32::MAX as i64)?
                .max(1) as usize,
            linger,
            buffer_memory: cfg.get_i64("buffer.memory", 33_554_432, 1, u32::MAX as i64)? as usize,
            max_block: cfg.get_ms("max.block.ms", 60_000)?,
            max_request_size: cfg.get_i64("max.request.size", 1_048_576, 1, i32::MAX as i64)?
                as usize,
            compression,
            retries: cfg.get_i64("retries", i32::MAX as i64, 0, i32::MAX as i64)? as u32,
            delivery_timeout,
            max_in_flight,
            idempotence,
            idempotence_explicit: explicit,
            request_timeout_ms: request_timeout.as_millis().min(i32::MAX as u128) as i32,
            txn_id_field: transactional_id
                .as_ref()
                .map(|t| TransactionalId(crate::sb(t.clone()))),
            transactional_id,
            transaction_timeout_ms: cfg.get_i64(
                "transaction.timeout.ms",
                60_000,
                1,
                i32::MAX as i64,
            )? as i32,
        })
    }
}

struct Batch {
    tp: TopicPartition,
    builder: BatchBuilder,
    outcome: Arc<BatchOutcome>,
    created: Instant,
    /// Bytes of `buffer.memory` this batch's buffer holds.
    reserved: usize,
    attempts: u32,
    /// Sealed bytes; kept across retries so the sequence only changes
    /// when an earlier batch's failure leaves a gap.
    sealed: Option<Bytes>,
    /// Its base sequence once sealed (-1 without idempotence).
    seq: i32,
    /// Its place among its partition's sealed batches: retries go back
    /// into the queue in this order.
    order: u64,
    /// How many of its partition's sequence gaps it has been renumbered for.
    gaps_seen: usize,
    /// Sent and not yet answered: counts in its partition's in-flight batches.
    in_flight: bool,
    retry_at: Option<Instant>,
}

impl Batch {
    fn complete(self, result: std::result::Result<(i64, i64), Error>) {
        self.outcome.set(result);
    }

    fn records(&self) -> usize {
        self.builder.count() as usize
    }

    /// The buffer the records were built in, for the pool: the sealed
    /// bytes themselves when uncompressed (if nothing else holds them).
    fn take_buffer(&mut self) -> Option<BytesMut> {
        self.builder
            .take_buffer()
            .or_else(|| self.sealed.take().and_then(|s| s.try_into_mut().ok()))
    }
}

/// Completes a batch and gives its memory back.
fn settle(inner: &Inner, mut b: Batch, result: std::result::Result<(i64, i64), Error>) {
    let (tp, reserved, n) = (b.tp.clone(), b.reserved, b.records());
    let buf = b.take_buffer();
    let was_in_flight = b.in_flight;
    b.complete(result);
    inner.finish(&tp, reserved, n, buf, was_in_flight);
}

impl Drop for Batch {
    /// A batch dropped unanswered (the producer went away) fails its
    /// records rather than leaving their futures pending forever.
    fn drop(&mut self) {
        self.outcome.set(Err(Error::Closed));
    }
}

#[derive(Default)]
struct PartQueue {
    batches: VecDeque<Batch>,
    /// Batches sent and not yet answered (at most max.in.flight).
    in_flight: usize,
    next_seq: i32,
    /// The sequence after the highest one acknowledged: the broker's next
    /// expected sequence as far as this producer knows.
    acked_next: i32,
    /// Batches sealed so far (`Batch::order`).
    sealed: u64,
    /// Sequence gaps left by batches refused for good, as (base sequence,
    /// records): batches sent after them are renumbered when they return.
    /// Cleared whenever nothing is in flight (nothing left to renumber).
    gaps: Vec<(i32, i32)>,
    /// Transactional producers: whether the partition is in the current
    /// transaction (its batches are drained only once it is).
    txn: TxnMark,
}

/// A partition's place in the current transaction.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum TxnMark {
    #[default]
    NotAdded,
    /// A record waits for the partition's AddPartitionsToTxn.
    Pending,
    Added,
}

impl PartQueue {
    /// Puts a batch that was sent back into the queue, before the batches
    /// never sent and among the other returned ones in drain order.
    fn insert_in_order(&mut self, b: Batch) {
        let at = self
            .batches
            .iter()
            .position(|x| x.sealed.is_none() || x.order > b.order)
            .unwrap_or(self.batches.len());
        self.batches.insert(at, b);
    }

    /// Renumbers a sealed batch for the gaps recorded since it was
    /// numbered (only those before its sequence).
    fn renumber(&self, b: &mut Batch) {
        if b.seq < 0 || b.gaps_seen >= self.gaps.len() {
            b.gaps_seen = self.gaps.len();
            return;
        }
        let shift: i32 = self.gaps[b.gaps_seen..]
            .iter()
            .filter(|(start, _)| *start < b.seq)
            .map(|(_, n)| *n)
            .sum();
        b.gaps_seen = self.gaps.len();
        if shift == 0 {
            return;
        }
        let seq = b.seq.wrapping_sub(shift) & i32::MAX;
        if let Some(sealed) = b.sealed.take() {
            b.sealed = Some(crate::records::with_base_sequence(sealed, seq));
            b.seq = seq;
        }
    }
}

/// One topic's partition queues and its sticky partition.
struct TopicQueues {
    name: String,
    /// The partition keyless records stick to, and the bytes sent to it.
    sticky: (i32, usize),
    partitions: BTreeMap<i32, PartQueue>,
}

/// The accumulator's queues, by topic then partition. Records of one topic
/// tend to follow each other, so the topic of the last lookup is compared
/// before the map is hashed: a record usually finds its queue without
/// hashing or allocating.
#[derive(Default)]
struct Topics {
    list: Vec<TopicQueues>,
    index: HashMap<String, usize>,
    last: usize,
}

impl Topics {
    fn position(&self, name: &str) -> Option<usize> {
        match self.list.get(self.last) {
            Some(t) if t.name == name => Some(self.last),
            _ => self.index.get(name).copied(),
        }
    }

    fn get_or_insert(&mut self, name: &str) -> &mut TopicQueues {
        let i = match self.position(name) {
            Some(i) => i,
            None => {
                self.list.push(TopicQueues {
                    name: name.to_string(),
                    sticky: (-1, 0),
                    partitions: BTreeMap::new(),
                });
                self.index.insert(name.to_string(), self.list.len() - 1);
                self.list.len() - 1
            }
        };
        self.last = i;
        &mut self.list[i]
    }

    fn partition_mut(&mut self, tp: &TopicPartition) -> Option<&mut PartQueue> {
        let i = self.position(&tp.topic)?;
        self.list[i].partitions.get_mut(&tp.partition)
    }

    fn queues_mut(&mut self) -> impl Iterator<Item = &mut PartQueue> {
        self.list.iter_mut().flat_map(|t| t.partitions.values_mut())
    }

    fn names(&self) -> Vec<String> {
        self.list.iter().map(|t| t.name.clone()).collect()
    }
}

/// Tests read a topic's queues as `topics["t"]`.
#[cfg(test)]
impl std::ops::Index<&str> for Topics {
    type Output = BTreeMap<i32, PartQueue>;

    fn index(&self, name: &str) -> &Self::Output {
        match self.position(name) {
            Some(i) => &self.list[i].partitions,
            None => panic!("no queues for topic {name}"),
        }
    }
}

struct State {
    topics: Topics,
    rng: XorShift,
    outstanding: usize,
    flushing: usize,
    producer_id: i64,
    producer_epoch: i16,
    /// An idempotent producer without a transactional id sent a batch
    /// whose fate it will never learn: the next epoch is due (see the
    /// module doc).
    sequences_unresolved: bool,
    closing: bool,
    /// The transaction state machine (`transactional.id` set).
    txn: Option<TxnMachine>,
}

struct Inner {
    cluster: Arc<Cluster>,
    cfg: ProducerConfig,
    state: Mutex<State>,
    pool: BufferPool,
    wake: Notify,
    idle: Notify,
    per_broker: Mutex<HashMap<i32, Arc<Semaphore>>>,
    send_order: Mutex<HashMap<i32, Arc<tokio::sync::Mutex<()>>>>,
    sender_started: AtomicBool,
    /// `State::closing`, readable without the lock: a send to a closing
    /// producer fails at once instead of waiting for buffer memory.
    closed: AtomicBool,
    /// The transaction and group coordinators (`transactional.id` set).
    txn: Option<TxnCoordinator>,
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        match self.state.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Whose turn it is to queue a request on broker `id`'s connection.
    fn broker_order(&self, id: i32) -> Arc<tokio::sync::Mutex<()>> {
        let mut m = match self.send_order.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        m.entry(id).or_default().clone()
    }

    fn broker_slots(&self, id: i32) -> Arc<Semaphore> {
        let mut m = match self.per_broker.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        };
        m.entry(id)
            .or_insert_with(|| Arc::new(Semaphore::new(self.cfg.max_in_flight)))
            .clone()
    }

    /// Returns a batch's memory and wakes `flush` waiters when idle.
    /// A batch that was never sent (expired in its queue) leaves its
    /// partition's in-flight mark alone: a later batch may hold it.
    fn finish(
        &self,
        tp: &TopicPartition,
        reserved: usize,
        records: usize,
        buf: Option<BytesMut>,
        was_in_flight: bool,
    ) {
        self.pool.deallocate(buf, reserved);
        let mut st = self.lock();
        st.outstanding = st.outstanding.saturating_sub(records);
        if let Some(q) = st.topics.partition_mut(tp) {
            if was_in_flight {
                q.in_flight = q.in_flight.saturating_sub(1);
            }
            if q.in_flight == 0 && !q.gaps.is_empty() {
                q.gaps.clear();
                for b in q.batches.iter_mut() {
                    b.gaps_seen = 0;
                }
            }
        }
        let idle = st.outstanding == 0;
        drop(st);
        if idle {
            self.idle.notify_waiters();
        }
        self.wake.notify_one();
    }
}

/// Closes the producer (drains what is queued) when the last clone drops.
struct Handle(Arc<Inner>);

impl Drop for Handle {
    fn drop(&mut self) {
        self.0.lock().closing = true;
        self.0.closed.store(true, Ordering::Release);
        self.0.wake.notify_one();
    }
}

/// The producer. Cheap to clone; clones share batches and connections.
///
/// With `transactional.id` set it is transactional (and idempotent:
/// `enable.idempotence=false` is then a config error): after
/// [`Producer::init_transactions`], the records sent between
/// [`Producer::begin_transaction`] and [`Producer::commit_transaction`]
/// (and offsets given to [`Producer::send_offsets_to_transaction`]) are
/// committed together, or none of them with
/// [`Producer::abort_transaction`]; `read_committed` consumers see only
/// committed ones. `transaction.timeout.ms` (default 60000) is how long
/// the coordinator lets a transaction stay open; every transactional call
/// waits at most `max.block.ms` (default 60000). Errors follow Java's
/// model: [`Error::Transaction`] with `fatal` (fenced by a newer producer
/// with the same id, not authorized, ...: every later call returns it,
/// close the producer) or abortable (a send of the transaction failed:
/// `commit_transaction` returns it, call `abort_transaction` and go on);
/// calls in the wrong state return [`Error::TransactionState`];
/// `Error::Timeout` means the same call may be made again.
///
/// ```no_run
/// # async fn demo() -> Result<(), oxka_client::Error> {
/// use oxka_client::{ClientConfig, Producer, ProducerRecord};
/// let mut cfg = ClientConfig::with_bootstrap("localhost:9092");
/// cfg.set("transactional.id", "payments-1");
/// let producer = Producer::new(&cfg)?;
/// producer.init_transactions().await?;
/// producer.begin_transaction().await?;
/// for i in 0..3 {
///     producer.enqueue(ProducerRecord::new("ledger").partition(i).value("debit")).await?;
/// }
/// match producer.commit_transaction().await {
///     Ok(()) => {}
///     Err(e) if e.is_abortable_transaction_error() => producer.abort_transaction().await?,
///     Err(e) => return Err(e), // fatal (fenced) or timed out
/// }
/// # Ok(()) }
/// ```
///
/// ```no_run
/// # async fn demo() -> Result<(), oxka_client::Error> {
/// use oxka_client::{ClientConfig, Producer, ProducerRecord};
/// let mut cfg = ClientConfig::with_bootstrap("localhost:9092");
/// cfg.set("compression.type", "zstd").set("linger.ms", "10");
/// let producer = Producer::new(&cfg)?;
/// // Queue many, then await them: records batch together.
/// let mut pending = Vec::new();
/// for i in 0..1000 {
///     let rec = ProducerRecord::new("events").key(format!("user-{}", i % 10)).value(format!("event {i}"));
///     pending.push(producer.enqueue(rec).await?);
/// }
/// for p in pending {
///     let meta = p.await?;
///     assert!(meta.offset >= 0);
/// }
/// producer.close().await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

impl Producer {
    /// Builds a producer; the first send connects and (with idempotence)
    /// obtains a producer id.
    pub fn new(cfg: &ClientConfig) -> Result<Producer> {
        let common = CommonConfig::parse(cfg, "oxka-producer")?;
        let pcfg = ProducerConfig::parse(cfg)?;
        let cluster = Arc::new(Cluster::new(common, true));
        let txn = pcfg.transactional_id.as_ref().map(|tid| {
            TxnCoordinator::new(cluster.clone(), tid.clone(), pcfg.transaction_timeout_ms)
        });
        let machine = txn.as_ref().map(|_| TxnMachine::new());
        let inner = Arc::new(Inner {
            txn,
            cluster,
            pool: BufferPool::new(pcfg.buffer_memory, pcfg.batch_capacity()),
            cfg: pcfg,
            state: Mutex::new(State {
                topics: Topics::default(),
                rng: XorShift::seeded(),
                outstanding: 0,
                flushing: 0,
                producer_id: -1,
                producer_epoch: -1,
                sequences_unresolved: false,
                closing: false,
                txn: machine,
            }),
            wake: Notify::new(),
            idle: Notify::new(),
            per_broker: Mutex::new(HashMap::new()),
            send_order: Mutex::new(HashMap::new()),
            sender_started: AtomicBool::new(false),
            closed: AtomicBool::new(false),
        });
        Ok(Producer {
            handle: Arc::new(Handle(inner)),
        })
    }

    fn inner(&self) -> &Arc<Inner> {
        &self.handle.0
    }

    /// Sends a record and waits for its acknowledgement.
    pub async fn send(&self, record: ProducerRecord) -> Result<RecordMetadata> {
        self.enqueue(record).await?.await
    }

    /// Queues a record (waiting for buffer memory if needed) and returns a
    /// future for its acknowledgement. Awaiting many of these together is
    /// how records batch.
    pub async fn enqueue(&self, record: ProducerRecord) -> Result<DeliveryFuture> {
        let inner = self.inner();
        if inner.closed.load(Ordering::Acquire) {
            return Err(Error::Closed);
        }
        if !inner.sender_started.load(Ordering::Acquire)
            && !inner.sender_started.swap(true, Ordering::SeqCst)
        {
            tokio::spawn(sender_loop(inner.clone()));
        }
        let cfg = &inner.cfg;
        // Clock reads are a real share of a small record's cost: the
        // max.block.ms deadline is only taken when something must wait.
        let (num_partitions, deadline) =
            partitions_of(&inner.cluster, &record.topic, cfg.max_block).await?;
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let size = crate::records::record_size(
            record.key.as_deref(),
            record.value.as_deref(),
            &record.headers,
            0,
            0,
        ) + 8;
        if size + BATCH_HEADER_SIZE > cfg.max_request_size {
            return Err(Error::RecordTooLarge {
                size,
                limit: cfg.max_request_size,
                key: "max.request.size",
            });
        }
        if size + BATCH_HEADER_SIZE > cfg.buffer_memory {
            return Err(Error::RecordTooLarge {
                size,
                limit: cfg.buffer_memory,
                key: "buffer.memory",
            });
        }
        let partition = match record.partition {
            Some(p) if p < 0 || p >= num_partitions => {
                return Err(Error::InvalidArgument(format!(
                    "partition {p} does not exist: topic `{}` has {num_partitions} partitions",
                    record.topic
                )))
            }
            Some(p) => Some(p),
            None => record
                .key
                .as_ref()
                .map(|k| partition_for_key(k, num_partitions)),
        };
        let need = cfg.batch_capacity().max(size + BATCH_HEADER_SIZE);
        let mut partition = partition;
        // Memory for a new batch, taken while the lock was not held.
        let mut allocated: Option<BytesMut> = None;
        let (future, wake) = loop {
            let appended = append_record(
                inner,
                &record,
                timestamp,
                (size, need),
                num_partitions,
                &mut partition,
                &mut allocated,
            );
            match appended {
                Ok(Some(done)) => break done,
                Ok(None) => {
                    // the sender sends lingering batches while memory is
                    // awaited: make it look now, not at its next deadline
                    inner.wake.notify_one();
                    let deadline = deadline.unwrap_or_else(|| Instant::now() + cfg.max_block);
                    let buf = inner.pool.allocate(need, deadline).await.map_err(|e| match e {
                        AllocError::Closed => Error::Closed,
                        AllocError::TooLarge => Error::RecordTooLarge {
                            size,
                            limit: cfg.buffer_memory,
                            key: "buffer.memory",
                        },
                        AllocError::Timeout => Error::Timeout(format!(
                            "buffer.memory ({} bytes) stayed full for max.block.ms ({:?}); the broker is slower than the producer",
                            cfg.buffer_memory, cfg.max_block
                        )),
                    })?;
                    allocated = Some(buf);
                }
                Err(e) => {
                    if let Some(b) = allocated {
                        inner.pool.deallocate(Some(b), need);
                    }
                    return Err(e);
                }
            }
        };
        if wake || cfg.linger.is_zero() {
            inner.wake.notify_one();
        }
        Ok(future)
    }

    /// Sends everything queued now and waits until every record is
    /// acknowledged or failed.
    pub async fn flush(&self) -> Result<()> {
        flush_until(self.inner(), None).await
    }

    /// Flushes, then stops the sender. Later sends fail with `Error::Closed`.
    pub async fn close(&self) -> Result<()> {
        self.flush().await?;
        self.inner().lock().closing = true;
        self.inner().closed.store(true, Ordering::Release);
        // a send on another clone waiting for memory fails now, not after
        // max.block.ms
        self.inner().pool.close();
        self.inner().wake.notify_one();
        Ok(())
    }

    /// Partitions of a topic (from metadata, refreshed if stale).
    pub async fn partitions(&self, topic: &str) -> Result<i32> {
        let (n, _) =
            partitions_of(&self.inner().cluster, topic, self.inner().cfg.max_block).await?;
        Ok(n)
    }

    /// Where the transactional producer stands; `None` without
    /// `transactional.id`.
    pub fn transaction_state(&self) -> Option<TransactionState> {
        self.inner().lock().txn.as_ref().map(|m| m.state())
    }

    /// The transaction coordinator's side, or the error of a producer
    /// without `transactional.id`.
    fn txn(&self, operation: &'static str) -> Result<&TxnCoordinator> {
        self.inner()
            .txn
            .as_ref()
            .ok_or_else(|| Error::TransactionState {
                operation,
                state: "not transactional (set transactional.id)".into(),
            })
    }

    /// Registers the `transactional.id` with its coordinator and obtains
    /// the producer id and a new epoch (InitProducerId): an earlier
    /// producer with the same id is fenced and its open transaction
    /// aborted. Call once, before anything else. Waits up to
    /// `max.block.ms`; after `Error::Timeout` it may be called again.
    pub async fn init_transactions(&self) -> Result<()> {
        const OP: &str = "init_transactions";
        let tx = self.txn(OP)?;
        let inner = self.inner();
        let deadline = Instant::now() + inner.cfg.max_block;
        with_txn(inner, |m| match m.state() {
            TransactionState::Initializing => Ok(()),
            _ => m.transition(TransactionState::Initializing, OP),
        })?;
        let _turn = tx.ops.lock().await;
        let r = tx
            .retry_until(deadline, "InitProducerId", || tx.init_producer_id(None))
            .await;
        let (pid, epoch) = r.map_err(|e| txn_failed(inner, e, true))?;
        let mut st = inner.lock();
        st.producer_id = pid;
        st.producer_epoch = epoch;
        reset_sequences(&mut st);
        match st.txn.as_mut() {
            Some(m) => m.transition(TransactionState::Ready, OP),
            None => Err(Error::Closed),
        }
    }

    /// Starts a transaction: the records sent until it ends, and the
    /// offsets sent with [`Producer::send_offsets_to_transaction`], are
    /// committed or aborted together. Local (nothing is sent); fails when
    /// a transaction is open or the producer is not initialized.
    pub async fn begin_transaction(&self) -> Result<()> {
        self.txn("begin_transaction")?;
        with_txn(self.inner(), |m| {
            m.transition(TransactionState::InTransaction, "begin_transaction")
        })
    }

    /// Commits the transaction: sends everything queued, waits for every
    /// record's acknowledgement, then EndTxn(commit). If a record of the
    /// transaction failed, nothing is committed: the error (abortable) is
    /// returned and the transaction must be aborted. Waits up to
    /// `max.block.ms`; after `Error::Timeout`, call it again.
    pub async fn commit_transaction(&self) -> Result<()> {
        self.end_transaction(true).await
    }

    /// Aborts the transaction: records not sent yet fail (their futures
    /// return an abortable `Error::Transaction`), those in flight are
    /// awaited, then EndTxn(abort); read_committed consumers never see
    /// the transaction's records. Allowed after an abortable error. Waits
    /// up to `max.block.ms`; after `Error::Timeout`, call it again.
    pub async fn abort_transaction(&self) -> Result<()> {
        self.end_transaction(false).await
    }

    async fn end_transaction(&self, commit: bool) -> Result<()> {
        let op = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let tx = self.txn(op)?;
        let inner = self.inner();
        let deadline = Instant::now() + inner.cfg.max_block;
        let (ending, resuming) = if commit {
            (TransactionState::Committing, TransactionState::Committing)
        } else {
            (TransactionState::Aborting, TransactionState::Aborting)
        };
        with_txn(inner, |m| {
            if m.state() == resuming {
                Ok(())
            } else {
                m.transition(ending, op)
            }
        })?;
        if !commit {
            abort_undrained(inner);
        }
        inner.wake.notify_one();
        flush_until(inner, Some(deadline)).await?;
        let turn = tx.ops.lock().await;
        let (started, pid, epoch, bump) = {
            let st = inner.lock();
            let Some(m) = st.txn.as_ref() else {
                return Err(Error::Closed);
            };
            if m.state() != ending {
                // a record of the transaction failed while it was flushed
                return Err(m.refusal(op));
            }
            (
                m.started,
                st.producer_id,
                st.producer_epoch,
                m.epoch_bump_required,
            )
        };
        if started {
            let what = if commit {
                "EndTxn(commit)"
            } else {
                "EndTxn(abort)"
            };
            tx.retry_until(deadline, what, || tx.end_txn(pid, epoch, commit))
                .await
                .map_err(|e| txn_failed(inner, e, false))?;
            with_txn(inner, |m| {
                m.started = false;
                Ok(())
            })?;
        }
        if !commit && bump && tx.can_bump_epoch().await {
            // KIP-360: a batch of the aborted transaction failed, so what
            // the broker holds of its sequences is unknown: a new epoch
            // starts every partition again at sequence 0
            let (pid, epoch) = tx
                .retry_until(deadline, "InitProducerId (epoch bump)", || {
                    tx.init_producer_id(Some((pid, epoch)))
                })
                .await
                .map_err(|e| txn_failed(inner, e, true))?;
            let mut st = inner.lock();
            st.producer_id = pid;
            st.producer_epoch = epoch;
            reset_sequences(&mut st);
            if let Some(m) = st.txn.as_mut() {
                m.epoch_bump_required = false;
            }
        }
        drop(turn);
        let mut st = inner.lock();
        for q in st.topics.queues_mut() {
            q.txn = TxnMark::NotAdded;
        }
        match st.txn.as_mut() {
            Some(m) => m.complete(),
            None => Err(Error::Closed),
        }
    }

    /// Commits a consumer group's offsets as part of the transaction
    /// (AddOffsetsToTxn, then TxnOffsetCommit to the group coordinator):
    /// they take effect only if the transaction commits. `offsets` are
    /// the next offsets to read (as `Consumer::commit_sync`'s). `group`:
    /// [`crate::Consumer::group_metadata`] (the coordinator then fences
    /// a member a rebalance replaced), or a bare group id. Waits up to
    /// `max.block.ms`.
    pub async fn send_offsets_to_transaction(
        &self,
        offsets: &BTreeMap<TopicPartition, i64>,
        group: impl Into<ConsumerGroupMetadata>,
    ) -> Result<()> {
        const OP: &str = "send_offsets_to_transaction";
        let tx = self.txn(OP)?;
        let inner = self.inner();
        let group: ConsumerGroupMetadata = group.into();
        if group.group_id.is_empty() {
            return Err(Error::InvalidArgument(
                "send_offsets_to_transaction needs a group id".into(),
            ));
        }
        let deadline = Instant::now() + inner.cfg.max_block;
        let (pid, epoch) = {
            let st = inner.lock();
            let Some(m) = st.txn.as_ref() else {
                return Err(Error::Closed);
            };
            if m.state() != TransactionState::InTransaction {
                return Err(m.refusal(OP));
            }
            (st.producer_id, st.producer_epoch)
        };
        let _turn = tx.ops.lock().await;
        tx.retry_until(deadline, "AddOffsetsToTxn", || {
            tx.add_offsets(pid, epoch, &group.group_id)
        })
        .await
        .map_err(|e| txn_failed(inner, e, false))?;
        with_txn(inner, |m| {
            m.started = true;
            Ok(())
        })?;
        if offsets.is_empty() {
            return Ok(());
        }
        tx.retry_until(deadline, "TxnOffsetCommit", || {
            tx.txn_offset_commit(pid, epoch, &group, offsets)
        })
        .await
        .map_err(|e| txn_failed(inner, e, false))
    }
}

/// Runs `f` on the transaction state machine under the producer's lock.
fn with_txn<T>(inner: &Inner, f: impl FnOnce(&mut TxnMachine) -> Result<T>) -> Result<T> {
    let mut st = inner.lock();
    match st.txn.as_mut() {
        Some(m) => f(m),
        None => Err(Error::Closed),
    }
}

/// A transactional request failed for good: a timeout is returned as it
/// is (the call may be repeated), anything else moves the state machine
/// (`init`: every failure of InitProducerId is fatal, as Java's) and comes
/// back as `Error::Transaction`.
fn txn_failed(inner: &Inner, e: Error, init: bool) -> Error {
    if matches!(e, Error::Timeout(_)) {
        return e;
    }
    let fatal = init || classify(&e, Duration::ZERO) != Disposition::Abortable;
    let mut st = inner.lock();
    let Some(m) = st.txn.as_mut() else {
        return e;
    };
    let code = e.kafka_code();
    m.fail(fatal, code, e.to_string());
    drop(st);
    // queued records of a transaction that cannot commit fail now
    inner.wake.notify_one();
    Error::Transaction {
        fatal,
        code,
        message: e.to_string(),
    }
}

/// A new epoch: every partition starts again at sequence 0. Only called
/// when nothing is queued or in flight.
fn reset_sequences(st: &mut State) {
    for q in st.topics.queues_mut() {
        q.next_seq = 0;
        q.acked_next = 0;
        q.gaps.clear();
    }
}

/// Waits until every queued record is acknowledged or failed (the sender
/// sends lingering batches at once meanwhile); `Error::Timeout` at
/// `deadline`.
async fn flush_until(inner: &Inner, deadline: Option<Instant>) -> Result<()> {
    inner.lock().flushing += 1;
    inner.wake.notify_one();
    let result = loop {
        let idle = inner.idle.notified();
        tokio::pin!(idle);
        idle.as_mut().enable();
        let outstanding = inner.lock().outstanding;
        if outstanding == 0 {
            break Ok(());
        }
        match deadline {
            None => idle.await,
            Some(at) => {
                if tokio::time::timeout_at(at.into(), idle).await.is_err() {
                    break Err(Error::Timeout(format!(
                        "{outstanding} record(s) still unacknowledged after max.block.ms ({:?})",
                        inner.cfg.max_block
                    )));
                }
            }
        }
    };
    inner.lock().flushing -= 1;
    result
}

/// Fails the records the current transaction will never send: with an
/// abortable error or an abort under way, the batches not sent yet (a
/// batch sent before finishes its retries: its sequence is taken); with
/// a fatal error, every queued batch. Partitions waiting to join the
/// transaction no longer need to.
fn abort_undrained(inner: &Inner) {
    let mut guard = inner.lock();
    let st = &mut *guard;
    let Some(m) = st.txn.as_mut() else {
        return;
    };
    let state = m.state();
    if !matches!(
        state,
        TransactionState::AbortableError
            | TransactionState::FatalError
            | TransactionState::Aborting
    ) {
        return;
    }
    m.pending_adds = false;
    m.add_retry_at = None;
    let fatal = state == TransactionState::FatalError;
    let mut failed = Vec::new();
    for q in st.topics.queues_mut() {
        if q.txn == TxnMark::Pending {
            q.txn = TxnMark::NotAdded;
        }
        if fatal {
            failed.extend(q.batches.drain(..));
        } else {
            while q.batches.back().is_some_and(|b| b.sealed.is_none()) {
                failed.extend(q.batches.pop_back());
            }
        }
    }
    if failed.is_empty() {
        return;
    }
    let errors: Vec<Error> = failed.iter().map(|_| m.error()).collect();
    drop(guard);
    for (b, e) in failed.into_iter().zip(errors) {
        settle(inner, b, Err(e));
    }
}

/// A batch of the transaction failed for good (`sent`: it had a sequence):
/// the transaction can no longer commit, or the producer is done.
fn note_batch_failure(inner: &Inner, e: &Error, sent: bool) {
    let mut st = inner.lock();
    let Some(m) = st.txn.as_mut() else {
        return;
    };
    if sent {
        m.epoch_bump_required = true;
    }
    m.fail(
        produce_failure_is_fatal(e),
        e.kafka_code(),
        format!("a send of the transaction failed: {e}"),
    );
    drop(st);
    inner.wake.notify_one();
}

/// The sender's transactional step before it drains: fails what an
/// aborted or failed transaction will not send, then adds the partitions
/// waiting to join the transaction, all in one AddPartitionsToTxn.
/// Returns when to try again after a retriable failure.
async fn txn_housekeeping(inner: &Arc<Inner>) -> Option<Instant> {
    let tx = inner.txn.as_ref()?;
    abort_undrained(inner);
    let now = Instant::now();
    let (pending, pid, epoch) = {
        let mut guard = inner.lock();
        let st = &mut *guard;
        let m = st.txn.as_mut()?;
        if !m.pending_adds
            || !matches!(
                m.state(),
                TransactionState::InTransaction | TransactionState::Committing
            )
        {
            return None;
        }
        if let Some(at) = m.add_retry_at.filter(|at| *at > now) {
            return Some(at);
        }
        m.pending_adds = false;
        let mut pending = Vec::new();
        for t in &st.topics.list {
            for (p, q) in &t.partitions {
                if q.txn == TxnMark::Pending {
                    pending.push(TopicPartition::new(t.name.clone(), *p));
                }
            }
        }
        (pending, st.producer_id, st.producer_epoch)
    };
    if pending.is_empty() {
        return None;
    }
    let turn = tx.ops.lock().await;
    let result = tx.add_partitions(pid, epoch, &pending).await;
    let mut guard = inner.lock();
    let st = &mut *guard;
    let m = st.txn.as_mut()?;
    let e = match result {
        Ok(()) => {
            m.started = true;
            m.add_retry_at = None;
            for tp in &pending {
                if let Some(q) = st.topics.partition_mut(tp) {
                    if q.txn == TxnMark::Pending {
                        q.txn = TxnMark::Added;
                    }
                }
            }
            drop(guard);
            drop(turn);
            return None;
        }
        Err(e) => e,
    };
    match classify(&e, inner.cluster.cfg.retry_backoff) {
        Disposition::Retry {
            rediscover,
            backoff,
        } => {
            tracing::debug!(error = %e, "retrying AddPartitionsToTxn");
            m.pending_adds = true;
            let at = Instant::now() + backoff;
            m.add_retry_at = Some(at);
            drop(guard);
            if rediscover {
                tx.forget();
            }
            Some(at)
        }
        d => {
            m.fail(d == Disposition::Fatal, e.kafka_code(), e.to_string());
            drop(guard);
            drop(turn);
            abort_undrained(inner);
            None
        }
    }
}

/// Appends `record` to its partition's open batch, or opens a batch with
/// the buffer in `allocated` or one the pool has free now. `Ok(None)`: no
/// memory without waiting (the caller waits, then calls again with it).
/// Returns the record's future and whether the sender must look now.
/// `size`: the record's; `need`: a new batch's buffer (the batch capacity,
/// or the record's own size with the batch header).
fn append_record(
    inner: &Inner,
    record: &ProducerRecord,
    timestamp: i64,
    (size, need): (usize, usize),
    num_partitions: i32,
    partition: &mut Option<i32>,
    allocated: &mut Option<BytesMut>,
) -> Result<Option<(DeliveryFuture, bool)>> {
    let cfg = &inner.cfg;
    let capacity = cfg.batch_capacity();
    let mut guard = inner.lock();
    let st = &mut *guard;
    if st.closing {
        return Err(Error::Closed);
    }
    if let Some(m) = &st.txn {
        m.check_send()?;
    }
    let topic = st.topics.get_or_insert(&record.topic);
    let p = *partition.get_or_insert_with(|| {
        sticky_partition(topic, &mut st.rng, num_partitions, size, cfg.batch_size)
    });
    let q = topic.partitions.entry(p).or_default();
    let mut wake = false;
    if let Some(m) = st.txn.as_mut() {
        if q.txn == TxnMark::NotAdded {
            // the sender adds it to the transaction before draining it
            q.txn = TxnMark::Pending;
            m.pending_adds = true;
            wake = true;
        }
    }
    let fits = q.batches.back().is_some_and(|b| {
        b.sealed.is_none()
            && b.builder.size()
                + b.builder.size_of(
                    record.key.as_deref(),
                    record.value.as_deref(),
                    &record.headers,
                    timestamp,
                )
                <= capacity
    });
    if fits {
        if let Some(b) = allocated.take() {
            // another record opened a batch while this one waited
            inner.pool.deallocate(Some(b), need);
        }
    } else {
        let buf = match allocated.take() {
            Some(b) => b,
            None => match inner.pool.try_allocate(need) {
                Ok(Some(b)) => b,
                Ok(None) => return Ok(None),
                Err(_) => return Err(Error::Closed),
            },
        };
        // A new batch: the sender must learn its linger deadline (and a
        // full predecessor is ready now).
        wake = true;
        let tp = TopicPartition::new(record.topic.clone(), p);
        q.batches.push_back(Batch {
            outcome: BatchOutcome::new(tp.clone()),
            tp,
            builder: BatchBuilder::with_buffer(buf),
            created: Instant::now(),
            reserved: need,
            attempts: 0,
            sealed: None,
            seq: -1,
            order: 0,
            gaps_seen: 0,
            in_flight: false,
            retry_at: None,
        });
    }
    let Some(b) = q.batches.back_mut() else {
        return Err(Error::Closed);
    };
    let delta = b.builder.push(
        record.key.as_deref(),
        record.value.as_deref(),
        &record.headers,
        timestamp,
    );
    if b.builder.size() >= capacity {
        wake = true;
    }
    let outcome = b.outcome.clone();
    st.outstanding += 1;
    let future = DeliveryFuture {
        outcome,
        delta,
        timestamp,
        waker_slot: None,
    };
    Ok(Some((future, wake)))
}

/// Kafka 3.3's uniform sticky partitioner: keyless records stick to one
/// partition until `batch.size` bytes went to it, then move to another at
/// random, so batches fill up instead of spreading thin.
fn sticky_partition(
    topic: &mut TopicQueues,
    rng: &mut XorShift,
    n: i32,
    size: usize,
    batch_size: usize,
) -> i32 {
    let entry = &mut topic.sticky;
    if entry.0 < 0 || entry.0 >= n || entry.1 >= batch_size {
        let mut next = rng.next_below(n as usize) as i32;
        if n > 1 && next == entry.0 {
            next = (next + 1) % n;
        }
        *entry = (next, 0);
    }
    entry.1 += size;
    entry.0
}

/// Partitions of `topic`: from the metadata held, else fetched until
/// `max_block` runs out. Also returns the deadline when one was taken (the
/// caller waits for memory within the same `max.block.ms`).
async fn partitions_of(
    cluster: &Cluster,
    topic: &str,
    max_block: Duration,
) -> Result<(i32, Option<Instant>)> {
    if topic.is_empty() {
        return Err(Error::InvalidArgument("empty topic name".into()));
    }
    if let Some(t) = cluster.metadata().topic(topic) {
        if !t.partitions.is_empty() {
            return Ok((t.partitions.len() as i32, None));
        }
    }
    let deadline = Instant::now() + max_block;
    loop {
        match cluster.topic(topic).await {
            Ok(t) if !t.partitions.is_empty() => {
                return Ok((t.partitions.len() as i32, Some(deadline)))
            }
            Ok(_) => {}
            Err(e) if e.is_retriable() => {
                if Instant::now() >= deadline {
                    return Err(e);
                }
            }
            Err(e) => return Err(e),
        }
        if Instant::now() >= deadline {
            return Err(Error::Timeout(format!(
                "metadata for topic `{topic}` within max.block.ms"
            )));
        }
        tokio::time::sleep(cluster.cfg.retry_backoff).await;
        cluster.refresh(Some(&[topic.to_string()])).await.ok();
    }
}

async fn init_producer_id(inner: &Inner) -> Result<()> {
    let deadline = Instant::now() + inner.cfg.delivery_timeout;
    loop {
        let r = async {
            let conn = inner.cluster.any_conn().await?;
            if !conn.supports(ApiKey::InitProducerId) {
                return Err(Error::UnsupportedApi {
                    api: "InitProducerId".into(),
                    addr: conn.addr.clone(),
                    min: 0,
                    max: 4,
                });
            }
            let mut req = InitProducerIdRequest::default();
            req.transactional_id = None;
            req.transaction_timeout_ms = 60_000;
            req.producer_id = ProducerId(-1);
            req.producer_epoch = -1;
            let resp = conn.send(req).await?;
            crate::error::check(resp.error_code, None, || "InitProducerId".into())?;
            Ok((resp.producer_id.0, resp.producer_epoch))
        }
        .await;
        match r {
            Ok((id, epoch)) => {
                let mut st = inner.lock();
                st.producer_id = id;
                st.producer_epoch = epoch;
                return Ok(());
            }
            Err(e) if e.is_retriable() && Instant::now() < deadline => {
                tokio::time::sleep(inner.cluster.cfg.retry_backoff).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Fails everything queued (the producer cannot work at all).
fn fail_all(inner: &Inner, e: &Error) {
    let mut st = inner.lock();
    let mut done = Vec::new();
    for q in st.topics.queues_mut() {
        done.extend(q.batches.drain(..));
    }
    drop(st);
    for b in done {
        settle(inner, b, Err(Error::Protocol(e.to_string())));
    }
}

async fn sender_loop(inner: Arc<Inner>) {
    let mut idempotent = inner.cfg.idempotence;
    // a transactional producer's id comes from init_transactions
    if idempotent && inner.txn.is_none() {
        if let Err(e) = init_producer_id(&inner).await {
            if inner.cfg.idempotence_explicit || !matches!(e, Error::UnsupportedApi { .. }) {
                tracing::error!(error = %e, "cannot start an idempotent producer");
                fail_all(&inner, &e);
                // Keep failing new records rather than hanging them.
                loop {
                    let notified = inner.wake.notified();
                    if inner.lock().closing {
                        fail_all(&inner, &e);
                        return;
                    }
                    fail_all(&inner, &e);
                    let _ = tokio::time::timeout(Duration::from_millis(100), notified).await;
                }
            }
            tracing::warn!("broker lacks InitProducerId: producing without idempotence");
            idempotent = false;
        }
    }
    let mut refresh_needed = false;
    loop {
        let notified = inner.wake.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        if refresh_needed {
            refresh_needed = false;
            let topics = inner.lock().topics.names();
            if let Err(e) = inner.cluster.refresh(Some(&topics)).await {
                tracing::debug!(error = %e, "metadata refresh failed");
            }
        }
        let txn_wake = match inner.txn {
            Some(_) => txn_housekeeping(&inner).await,
            None => None,
        };
        if idempotent && inner.txn.is_none() && next_epoch_due(&inner) {
            next_epoch(&inner).await;
        }
        let (ready, next_wake, expired, exit) = collect_ready(&inner, idempotent);
        let next_wake = match (next_wake, txn_wake) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        for b in expired {
            let msg = format!(
                "{} record(s) for {} not acknowledged within delivery.timeout.ms ({:?})",
                b.records(),
                b.tp,
                inner.cfg.delivery_timeout
            );
            let e = Error::Timeout(msg);
            note_batch_failure(&inner, &e, b.sealed.is_some());
            settle(&inner, b, Err(e));
        }
        if exit {
            return;
        }
        if !ready.is_empty() {
            refresh_needed |= dispatch(&inner, ready).await;
            continue;
        }
        match next_wake {
            Some(at) => {
                let _ = tokio::time::timeout_at(at.into(), notified).await;
            }
            None => notified.await,
        }
    }
}

/// Picks the batches to send now. Returns (ready, when to look again,
/// batches past their delivery timeout, whether the sender may exit).
fn collect_ready(
    inner: &Inner,
    idempotent: bool,
) -> (Vec<Batch>, Option<Instant>, Vec<Batch>, bool) {
    let cfg = &inner.cfg;
    let now = Instant::now();
    let mut st = inner.lock();
    let flushing = st.flushing > 0 || st.closing;
    // someone waits for buffer memory: send what there is now
    let exhausted = inner.pool.has_waiters();
    let (pid, epoch) = if idempotent {
        (st.producer_id, st.producer_epoch)
    } else {
        (-1, -1)
    };
    let transactional = st.txn.is_some();
    // nothing goes out under an epoch with an unresolved sequence
    let hold = st.sequences_unresolved;
    let mut unresolved = false;
    let mut ready = Vec::new();
    let mut to_seal = Vec::new();
    let mut expired = Vec::new();
    let mut next: Option<Instant> = None;
    let mut soonest = |t: Instant| next = Some(next.map_or(t, |n: Instant| n.min(t)));
    for q in st.topics.queues_mut() {
        // delivery.timeout.ms bounds a record's whole life, retries and
        // leaderless waits included.
        while q.in_flight == 0
            && q.batches
                .front()
                .is_some_and(|b| now.duration_since(b.created) >= cfg.delivery_timeout)
        {
            if let Some(b) = q.batches.pop_front() {
                // sent before: whether the broker has it is unknown
                unresolved |= idempotent && !transactional && b.seq >= 0 && b.sealed.is_some();
                expired.push(b);
            }
        }
        if hold || q.in_flight >= cfg.max_in_flight {
            continue;
        }
        // not in the transaction yet: the sender's AddPartitionsToTxn
        // comes first
        if transactional && q.txn != TxnMark::Added {
            continue;
        }
        let Some(b) = q.batches.front() else { continue };
        // a batch sent before goes again only alone: every earlier one of
        // its partition is answered, so it reaches the broker in order
        if b.sealed.is_some() && q.in_flight > 0 {
            continue;
        }
        let linger_due = b.created + cfg.linger;
        let is_ready = match b.retry_at {
            Some(t) if t > now => {
                soonest(t);
                false
            }
            Some(_) => true,
            None => {
                flushing
                    || exhausted
                    || q.batches.len() > 1
                    || b.builder.size() >= cfg.batch_capacity()
                    || linger_due <= now
            }
        };
        if !is_ready {
            if b.retry_at.is_none() {
                soonest(linger_due);
            }
            continue;
        }
        let Some(mut b) = q.batches.pop_front() else {
            continue;
        };
        q.in_flight += 1;
        b.in_flight = true;
        if b.sealed.is_none() {
            let seq = if idempotent { q.next_seq } else { -1 };
            if idempotent {
                q.next_seq = q.next_seq.wrapping_add(b.builder.count()) & i32::MAX;
            }
            b.seq = seq;
            b.order = q.sealed;
            q.sealed += 1;
            b.gaps_seen = q.gaps.len();
            to_seal.push((b, seq));
        } else {
            ready.push(b);
        }
    }
    st.sequences_unresolved |= unresolved;
    let exit = st.closing && st.outstanding == 0 && to_seal.is_empty();
    drop(st);
    // Sealing (the CRC, compression) runs without the lock, so sends to
    // other partitions go on meanwhile. Batches of one partition are
    // sealed here in sequence order within one pass, and the next pass
    // starts after this one's are dispatched.
    for (mut b, seq) in to_seal {
        match b
            .builder
            .build_with(pid, epoch, seq, cfg.compression, transactional)
        {
            Ok(bytes) => {
                b.sealed = Some(bytes);
                ready.push(b);
            }
            Err(e) => {
                tracing::error!(error = %e, "sealing a batch");
                if idempotent {
                    // nothing went out with this sequence: a gap for the
                    // batches numbered after it
                    refused_for_good(inner, &b);
                }
                expired.push(b);
            }
        }
    }
    (ready, next, expired, exit)
}

/// Groups ready batches by leader and starts one request per leader (more
/// when `max.request.size` splits them). Returns whether metadata must be
/// refreshed (a partition without a known leader).
async fn dispatch(inner: &Arc<Inner>, ready: Vec<Batch>) -> bool {
    let topics: Vec<String> = ready
        .iter()
        .map(|b| b.tp.topic.clone())
        .collect::<std::collections::BTreeSet<_>>()
        .into_iter()
        .collect();
    let meta = match inner.cluster.refresh_if_stale(Some(&topics)).await {
        Ok(m) => m,
        Err(_) => inner.cluster.metadata(),
    };
    let mut refresh = false;
    let mut by_leader: BTreeMap<i32, Vec<Batch>> = BTreeMap::new();
    for b in ready {
        match crate::admin::leader_of(&meta, &b.tp) {
            Ok(l) => by_leader.entry(l).or_default().push(b),
            Err(_) => {
                refresh = true;
                requeue(inner, b);
            }
        }
    }
    for (leader, batches) in by_leader {
        let slots = inner.broker_slots(leader);
        let order = inner.broker_order(leader);
        let mut chunk: Vec<Batch> = Vec::new();
        let mut chunk_size = 0;
        let mut chunks = Vec::new();
        for b in batches {
            let sz = b.sealed.as_ref().map_or(0, |s| s.len());
            if !chunk.is_empty() && chunk_size + sz > inner.cfg.max_request_size {
                chunks.push(std::mem::take(&mut chunk));
                chunk_size = 0;
            }
            chunk_size += sz;
            chunk.push(b);
        }
        if !chunk.is_empty() {
            chunks.push(chunk);
        }
        for chunk in chunks {
            // Waits while the broker has max.in.flight requests outstanding:
            // that is the back-pressure from a slow broker.
            let Ok(permit) = slots.clone().acquire_owned().await else {
                for b in chunk {
                    requeue(inner, b);
                }
                continue;
            };
            // Held until the request is queued on the connection: requests
            // to one broker leave in the order they were drained here.
            let turn = order.clone().lock_owned().await;
            let inner = inner.clone();
            tokio::spawn(async move {
                produce_request(&inner, leader, chunk, turn).await;
                drop(permit);
            });
        }
    }
    refresh
}

fn requeue(inner: &Inner, mut b: Batch) {
    // Always push the next attempt out by the backoff: a partition without
    // a leader must not spin the sender.
    b.retry_at = Some(Instant::now() + inner.cluster.cfg.retry_backoff);
    let mut st = inner.lock();
    let q = st
        .topics
        .get_or_insert(&b.tp.topic)
        .partitions
        .entry(b.tp.partition)
        .or_default();
    if b.in_flight {
        q.in_flight = q.in_flight.saturating_sub(1);
        b.in_flight = false;
    }
    q.renumber(&mut b);
    q.insert_in_order(b);
}

/// The broker answered this (sealed, idempotent) batch with success:
/// its sequence is the broker's.
fn acknowledged(inner: &Inner, b: &Batch) {
    if b.seq < 0 {
        return;
    }
    let mut st = inner.lock();
    if let Some(q) = st.topics.partition_mut(&b.tp) {
        let next = b.seq.wrapping_add(b.builder.count()) & i32::MAX;
        // sequences wrap at 2^31: ahead means less than half way round
        let ahead = next.wrapping_sub(q.acked_next) & i32::MAX;
        if ahead > 0 && ahead < 1 << 30 {
            q.acked_next = next;
        }
    }
}

/// Whether the broker's OUT_OF_ORDER_SEQUENCE_NUMBER for `b` only means an
/// earlier batch of its partition is unresolved (failed and being retried,
/// or refused and renumbered): `b` is then retried in its turn. When `b`
/// is the very next sequence, the broker lost the producer's state and the
/// error stands (Java bumps the epoch then; not done here).
fn out_of_order_is_retriable(inner: &Inner, b: &Batch) -> bool {
    let st = inner.lock();
    let acked_next = st
        .topics
        .position(&b.tp.topic)
        .and_then(|i| st.topics.list[i].partitions.get(&b.tp.partition))
        .map_or(0, |q| q.acked_next);
    b.seq >= 0 && b.seq != acked_next
}

/// A sealed idempotent batch the broker refused for good (nothing of it
/// was written): the batches numbered after it move down by its size,
/// those queued now, those in flight when they come back.
fn refused_for_good(inner: &Inner, b: &Batch) {
    if b.seq < 0 {
        return;
    }
    let n = b.builder.count();
    let mut st = inner.lock();
    let Some(q) = st.topics.partition_mut(&b.tp) else {
        return;
    };
    q.gaps.push((b.seq, n));
    q.next_seq = q.next_seq.wrapping_sub(n) & i32::MAX;
    let mut batches = std::mem::take(&mut q.batches);
    for x in batches.iter_mut().filter(|x| x.sealed.is_some()) {
        q.renumber(x);
    }
    q.batches = batches;
}

/// What a sent batch that failed for good leaves of its sequence: a gap
/// when the broker refused it (a non-retriable error: nothing of it was
/// written), else an unresolved sequence (timed out, the leader moved or
/// the connection dropped after it was sent: it may have been written).
fn failed_sequence(inner: &Inner, b: &Batch, err: &Error, retriable: bool) {
    if matches!(err, Error::Kafka { .. }) && !retriable {
        refused_for_good(inner, b);
    } else {
        sequence_unresolved(inner, b);
    }
}

/// A sent batch failed without the broker saying it was refused: an
/// idempotent producer without a transactional id must leave this epoch
/// (a transactional one aborts, which bumps the epoch: `note_batch_failure`).
fn sequence_unresolved(inner: &Inner, b: &Batch) {
    if b.seq < 0 || inner.txn.is_some() {
        return;
    }
    inner.lock().sequences_unresolved = true;
}

/// Whether the producer must move to its next epoch now: a sequence is
/// unresolved and nothing is in flight (every answer under the old epoch
/// is in).
fn next_epoch_due(inner: &Inner) -> bool {
    let mut st = inner.lock();
    st.sequences_unresolved && st.topics.queues_mut().all(|q| q.in_flight == 0)
}

/// KIP-360 for an idempotent producer: the next epoch of the same producer
/// id (a new id from InitProducerId once the epoch is exhausted) and every
/// partition's sequence from 0. The queued batches sealed under the old
/// epoch were sent before: they fail (see the module doc).
async fn next_epoch(inner: &Inner) {
    let (pid, epoch) = {
        let st = inner.lock();
        (st.producer_id, st.producer_epoch)
    };
    let (pid, epoch) = if epoch < i16::MAX {
        (pid, epoch + 1)
    } else {
        if let Err(e) = init_producer_id(inner).await {
            tracing::warn!(error = %e, "a new producer id after the epoch ran out");
            return;
        }
        let st = inner.lock();
        (st.producer_id, st.producer_epoch)
    };
    tracing::debug!(
        producer_id = pid,
        epoch,
        "unresolved sequence: next producer epoch"
    );
    let mut st = inner.lock();
    st.producer_id = pid;
    st.producer_epoch = epoch;
    st.sequences_unresolved = false;
    let mut sent_before = Vec::new();
    for q in st.topics.queues_mut() {
        let (sealed, fresh): (VecDeque<Batch>, VecDeque<Batch>) = std::mem::take(&mut q.batches)
            .into_iter()
            .partition(|b| b.sealed.is_some());
        sent_before.extend(sealed);
        q.batches = fresh;
        for b in q.batches.iter_mut() {
            b.gaps_seen = 0;
        }
        q.next_seq = 0;
        q.acked_next = 0;
        q.gaps.clear();
    }
    drop(st);
    for b in sent_before {
        let e = Error::Timeout(format!(
            "{} record(s) for {} not acknowledged: an earlier send's outcome was lost, so the \
             producer moved to a new epoch; these were sent before and may or may not be written",
            b.records(),
            b.tp
        ));
        settle(inner, b, Err(e));
    }
}

/// Sends one request; `turn` is released once it is queued on the
/// connection (see `dispatch`).
async fn produce_request(
    inner: &Arc<Inner>,
    leader: i32,
    batches: Vec<Batch>,
    turn: tokio::sync::OwnedMutexGuard<()>,
) {
    let cfg = &inner.cfg;
    let mut req = ProduceRequest::default();
    req.acks = cfg.acks;
    req.timeout_ms = cfg.request_timeout_ms;
    req.transactional_id = cfg.txn_id_field.clone();
    let mut by_topic: BTreeMap<&str, Vec<produce_request::PartitionProduceData>> = BTreeMap::new();
    for b in &batches {
        let mut p = produce_request::PartitionProduceData::default();
        p.index = b.tp.partition;
        p.records = b.sealed.clone();
        by_topic.entry(&b.tp.topic).or_default().push(p);
    }
    for (t, ps) in by_topic {
        let mut td = produce_request::TopicProduceData::default();
        td.name = tn(t);
        td.partition_data = ps;
        req.topic_data.push(td);
    }
    // in the order the codec writes them (see `FrameBuf`)
    let shared: Vec<Bytes> = req
        .topic_data
        .iter()
        .flat_map(|t| t.partition_data.iter().filter_map(|p| p.records.clone()))
        .collect();
    let result = async {
        let conn = inner.cluster.conn_to_broker(leader).await?;
        if cfg.acks == 0 {
            let sent = conn.send_no_response(req, &shared).await.map(|_| None);
            drop(turn);
            sent
        } else {
            conn.send_sharing_queued(req, &shared, turn).await.map(Some)
        }
    }
    .await;
    // the batches' buffers go back to the pool only if nothing else holds them
    drop(shared);
    let mut outcomes: HashMap<TopicPartition, (i16, i64, i64, Option<String>)> = HashMap::new();
    let transport_err = match result {
        Ok(None) => {
            for b in &batches {
                outcomes.insert(b.tp.clone(), (0, -1, -1, None));
            }
            None
        }
        Ok(Some(resp)) => {
            for t in resp.responses {
                for p in t.partition_responses {
                    outcomes.insert(
                        TopicPartition::new(t.name.0.to_string(), p.index),
                        (
                            p.error_code,
                            p.base_offset,
                            p.log_append_time_ms,
                            p.error_message.map(|m| m.to_string()),
                        ),
                    );
                }
            }
            None
        }
        Err(e) => Some(e),
    };
    let mut refresh = false;
    for mut b in batches {
        let tp = b.tp.clone();
        let (err, retriable) = match (&transport_err, outcomes.get(&tp)) {
            (Some(e), _) => (Some(Error::Protocol(e.to_string())), e.is_retriable()),
            (None, Some((0, base, t, _)))
            | (None, Some((KafkaCode::DUPLICATE_SEQUENCE_NUMBER, base, t, _))) => {
                acknowledged(inner, &b);
                settle(inner, b, Ok((*base, *t)));
                continue;
            }
            (None, Some((code, _, _, msg))) => {
                let e = Error::kafka(*code, msg.clone(), format!("producing to {tp}"));
                let r = e.is_retriable()
                    || (*code == KafkaCode::OUT_OF_ORDER_SEQUENCE_NUMBER
                        && out_of_order_is_retriable(inner, &b));
                if matches!(
                    *code,
                    KafkaCode::NOT_LEADER_OR_FOLLOWER
                        | KafkaCode::UNKNOWN_TOPIC_OR_PARTITION
                        | KafkaCode::LEADER_NOT_AVAILABLE
                ) {
                    refresh = true;
                }
                (Some(e), r)
            }
            (None, None) => (
                Some(Error::Protocol(format!("no produce result for {tp}"))),
                true,
            ),
        };
        let err = err.unwrap_or(Error::Closed);
        b.attempts += 1;
        let in_time = b.created.elapsed() + inner.cluster.cfg.retry_backoff < cfg.delivery_timeout;
        if retriable && in_time && b.attempts <= cfg.retries {
            tracing::debug!(%tp, error = %err, attempt = b.attempts, "retrying batch");
            b.retry_at = Some(Instant::now() + inner.cluster.cfg.retry_backoff);
            refresh = true;
            requeue(inner, b);
            inner.wake.notify_one();
        } else {
            let err = match err {
                Error::Protocol(m) if !retriable || !in_time => Error::Timeout(m),
                e => e,
            };
            failed_sequence(inner, &b, &err, retriable);
            note_batch_failure(inner, &err, true);
            settle(inner, b, Err(err));
        }
    }
    if refresh {
        let topics: Vec<String> = outcomes.keys().map(|t| t.topic.clone()).collect();
        let _ = inner.cluster.refresh(Some(&topics)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state() -> State {
        State {
            topics: Topics::default(),
            rng: XorShift::seeded(),
            outstanding: 0,
            flushing: 0,
            producer_id: -1,
            producer_epoch: -1,
            sequences_unresolved: false,
            closing: false,
            txn: None,
        }
    }

    #[test]
    fn topics_find_their_queues_whichever_came_last() {
        let mut topics = Topics::default();
        for name in ["a", "b", "c", "b", "a"] {
            let t = topics.get_or_insert(name);
            assert_eq!(t.name, name);
            t.partitions.entry(name.len() as i32).or_default().next_seq += 1;
        }
        assert_eq!(topics.names(), ["a", "b", "c"]);
        assert_eq!(topics["a"][&1].next_seq, 2);
        assert_eq!(topics["c"][&1].next_seq, 1);
        assert!(topics.partition_mut(&TopicPartition::new("b", 1)).is_some());
        assert!(topics.partition_mut(&TopicPartition::new("b", 2)).is_none());
        assert!(topics.partition_mut(&TopicPartition::new("d", 1)).is_none());
        assert_eq!(topics.queues_mut().count(), 3);
    }

    #[test]
    fn sticky_partition_switches_after_batch_size() {
        let mut st = state();
        let State { topics, rng, .. } = &mut st;
        let mut sticky =
            |t: &str, n, size| sticky_partition(topics.get_or_insert(t), rng, n, size, 1000);
        let first = sticky("t", 4, 100);
        for _ in 0..9 {
            assert_eq!(sticky("t", 4, 100), first);
        }
        assert_ne!(sticky("t", 4, 100), first);
        // One partition: always 0, and each topic sticks on its own.
        for _ in 0..50 {
            assert_eq!(sticky("one", 1, 500), 0);
        }
    }

    #[test]
    fn config_defaults_and_conflicts() {
        let c = ProducerConfig::parse(&ClientConfig::new()).unwrap();
        assert!(c.idempotence);
        assert_eq!(c.acks, -1);
        assert_eq!(c.batch_size, 16_384);
        assert_eq!(c.linger, Duration::from_millis(5));
        let c = ProducerConfig::parse(&[("acks", "1")].into_iter().collect()).unwrap();
        assert!(!c.idempotence, "default idempotence yields to acks=1");
        assert!(ProducerConfig::parse(
            &[("acks", "1"), ("enable.idempotence", "true")]
                .into_iter()
                .collect()
        )
        .is_err());
        assert!(
            ProducerConfig::parse(&[("compression.type", "brotli")].into_iter().collect()).is_err()
        );
        let c =
            ProducerConfig::parse(&[("compression.type", "zstd")].into_iter().collect()).unwrap();
        assert_eq!(c.compression, Compression::Zstd);
    }

    /// A producer whose sender never runs, over injected metadata: the
    /// accumulator can be inspected without a broker.
    fn offline(extra: &[(&str, &str)]) -> Producer {
        let mut cfg: ClientConfig = [("bootstrap.servers", "127.0.0.1:1"), ("linger.ms", "60000")]
            .into_iter()
            .collect();
        for (k, v) in extra {
            cfg.set(*k, *v);
        }
        let p = Producer::new(&cfg).unwrap();
        p.inner().sender_started.store(true, Ordering::SeqCst);
        p.inner().cluster.set_test_metadata(&[("t", 4)]);
        p
    }

    #[tokio::test]
    async fn batches_fill_to_batch_size() {
        let p = offline(&[("batch.size", "1000")]);
        let mut futures = Vec::new();
        for i in 0..100 {
            let rec = ProducerRecord::new("t")
                .partition(1)
                .value(format!("value-{i:04}-{}", "x".repeat(40)));
            futures.push(p.enqueue(rec).await.unwrap());
        }
        let st = p.inner().lock();
        let q = &st.topics["t"][&1];
        assert!(q.batches.len() > 5, "{} batches", q.batches.len());
        for b in &q.batches {
            assert!(b.builder.size() <= 1000);
        }
        let n: i32 = q.batches.iter().map(|b| b.builder.count()).sum();
        assert_eq!(n, 100);
        assert_eq!(st.outstanding, 100);
    }

    #[tokio::test]
    async fn keys_follow_murmur2_and_keyless_records_stick() {
        let p = offline(&[]);
        let mut want = [0i32; 4];
        for i in 0..50 {
            let key = format!("k{i}");
            want[partition_for_key(key.as_bytes(), 4) as usize] += 1;
            p.enqueue(ProducerRecord::new("t").key(key).value("v"))
                .await
                .unwrap();
        }
        let count = |p: &Producer| {
            let st = p.inner().lock();
            let mut got = [0i32; 4];
            for (partition, q) in st.topics.list.iter().flat_map(|t| &t.partitions) {
                got[*partition as usize] +=
                    q.batches.iter().map(|b| b.builder.count()).sum::<i32>();
            }
            got
        };
        assert_eq!(count(&p), want);
        // Keyless records all go to one (sticky) partition while it fills.
        for _ in 0..10 {
            p.enqueue(ProducerRecord::new("t").value("v"))
                .await
                .unwrap();
        }
        let after = count(&p);
        let grew: Vec<usize> = (0..4).filter(|i| after[*i] != want[*i]).collect();
        assert_eq!(grew.len(), 1);
        assert_eq!(after[grew[0]] - want[grew[0]], 10);
        // Explicit partitions are validated against the metadata.
        let e = p
            .enqueue(ProducerRecord::new("t").partition(9).value("v"))
            .await;
        assert!(matches!(e, Err(Error::InvalidArgument(_))));
    }

    #[tokio::test]
    async fn buffer_memory_applies_back_pressure() {
        let p = offline(&[
            ("buffer.memory", "2000"),
            ("max.block.ms", "200"),
            ("batch.size", "100000"),
        ]);
        let started = Instant::now();
        let mut result = Ok(());
        for _ in 0..100 {
            if let Err(e) = p
                .enqueue(ProducerRecord::new("t").partition(0).value(vec![0u8; 100]))
                .await
            {
                result = Err(e);
                break;
            }
        }
        let e = result.unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(e.to_string().contains("buffer.memory"));
        assert!(started.elapsed() >= Duration::from_millis(200));
        assert!(p.inner().lock().outstanding < 20);
        // A record larger than the whole buffer is rejected at once.
        let big = p
            .enqueue(ProducerRecord::new("t").value(vec![0u8; 5000]))
            .await;
        assert!(matches!(big, Err(Error::RecordTooLarge { .. })));
    }

    #[tokio::test]
    async fn unreachable_leader_fails_after_delivery_timeout() {
        let cfg: ClientConfig = [
            ("bootstrap.servers", "127.0.0.1:1"),
            ("enable.idempotence", "false"),
            ("linger.ms", "0"),
            ("request.timeout.ms", "100"),
            ("delivery.timeout.ms", "400"),
            ("retry.backoff.ms", "20"),
        ]
        .into_iter()
        .collect();
        let p = Producer::new(&cfg).unwrap();
        p.inner().cluster.set_test_metadata(&[("t", 1)]);
        let started = Instant::now();
        let e = p
            .send(ProducerRecord::new("t").value("v"))
            .await
            .unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        // not before delivery.timeout.ms (how long after is the machine's)
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(350), "{took:?}");
        // Memory came back and nothing is outstanding.
        assert_eq!(p.inner().lock().outstanding, 0);
        assert_eq!(p.inner().pool.available(), 33_554_432);
    }

    #[tokio::test]
    async fn buffer_memory_counts_each_open_batch_at_its_capacity() {
        // room for three 1,000-byte batches
        let p = offline(&[
            ("buffer.memory", "3000"),
            ("batch.size", "1000"),
            ("max.block.ms", "100"),
        ]);
        for partition in 0..3 {
            p.enqueue(ProducerRecord::new("t").partition(partition).value("v"))
                .await
                .unwrap();
        }
        assert_eq!(p.inner().pool.available(), 0);
        // more records for an open batch need no memory
        p.enqueue(ProducerRecord::new("t").partition(0).value("w"))
            .await
            .unwrap();
        // a fourth batch must wait for one to complete
        let e = p
            .enqueue(ProducerRecord::new("t").partition(3).value("v"))
            .await
            .err()
            .expect("no memory for a fourth batch");
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert_eq!(p.inner().lock().outstanding, 4);
    }

    #[tokio::test]
    async fn a_completed_batch_gives_its_buffer_to_the_next() {
        let p = offline(&[("batch.size", "4096"), ("enable.idempotence", "false")]);
        let inner = p.inner().clone();
        p.enqueue(ProducerRecord::new("t").partition(0).value("v"))
            .await
            .unwrap();
        let mut b = {
            let mut st = inner.lock();
            st.topics
                .partition_mut(&TopicPartition::new("t", 0))
                .unwrap()
                .batches
                .pop_front()
                .unwrap()
        };
        let sealed = b.builder.build(-1, -1, -1, Compression::None).unwrap();
        let ptr = sealed.as_ptr();
        b.sealed = Some(sealed);
        settle(&inner, b, Ok((0, -1)));
        assert_eq!(inner.pool.available(), 33_554_432);
        p.enqueue(ProducerRecord::new("t").partition(1).value("v"))
            .await
            .unwrap();
        let st = inner.lock();
        let reused = &st.topics["t"][&1].batches[0];
        assert_eq!(reused.reserved, 4096);
        assert_eq!(
            reused.builder.buffer_ptr(),
            ptr,
            "the sealed batch's buffer was reused, not a fresh one"
        );
    }

    #[tokio::test]
    async fn an_expired_batch_leaves_the_next_one_in_flight() {
        let p = offline(&[
            ("batch.size", "1"),
            ("linger.ms", "0"),
            ("request.timeout.ms", "10"),
            ("delivery.timeout.ms", "50"),
            ("enable.idempotence", "false"),
        ]);
        let inner = p.inner().clone();
        p.enqueue(ProducerRecord::new("t").partition(0).value("old"))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(60)).await;
        p.enqueue(ProducerRecord::new("t").partition(0).value("new"))
            .await
            .unwrap();
        let (ready, _, expired, _) = collect_ready(&inner, false);
        assert_eq!((ready.len(), expired.len()), (1, 1));
        for b in expired {
            settle(&inner, b, Err(Error::Timeout("expired".into())));
        }
        assert_eq!(
            inner.lock().topics["t"][&0].in_flight,
            1,
            "the batch sent in the same pass is still in flight"
        );
        settle(&inner, ready.into_iter().next().unwrap(), Ok((0, -1)));
        assert_eq!(inner.lock().topics["t"][&0].in_flight, 0);
        assert_eq!(inner.pool.available(), 33_554_432);
    }

    /// An offline producer with `n` one-record batches queued for
    /// partition 0 of `t`.
    async fn one_record_batches(extra: &[(&str, &str)], n: usize) -> Producer {
        let mut cfg = vec![("batch.size", "80"), ("retry.backoff.ms", "1")];
        cfg.extend_from_slice(extra);
        let p = offline(&cfg);
        for i in 0..n {
            p.enqueue(
                ProducerRecord::new("t")
                    .partition(0)
                    .value(format!("{i:040}")),
            )
            .await
            .unwrap();
        }
        assert_eq!(p.inner().lock().topics["t"][&0].batches.len(), n);
        p
    }

    /// Drains as the sender does, one batch per partition per pass.
    fn drain(inner: &Inner, passes: usize) -> Vec<Batch> {
        let mut out = Vec::new();
        for _ in 0..passes {
            let (ready, _, expired, _) = collect_ready(inner, true);
            assert!(expired.is_empty());
            out.extend(ready);
        }
        out
    }

    fn base_sequence(b: &Batch) -> i32 {
        let s = b.sealed.as_ref().expect("sealed");
        i32::from_be_bytes([s[53], s[54], s[55], s[56]])
    }

    #[tokio::test]
    async fn batches_of_one_partition_pipeline_up_to_max_in_flight() {
        let p = one_record_batches(&[("max.in.flight.requests.per.connection", "3")], 6).await;
        let inner = p.inner().clone();
        let sent = drain(&inner, 5);
        let seqs: Vec<i32> = sent.iter().map(|b| b.seq).collect();
        assert_eq!(seqs, [0, 1, 2], "three in flight, in sequence order");
        assert_eq!(sent.iter().map(base_sequence).collect::<Vec<_>>(), seqs);
        assert_eq!(inner.lock().topics["t"][&0].in_flight, 3);
        // one answered: one more goes
        let mut sent = sent.into_iter();
        settle(&inner, sent.next().unwrap(), Ok((0, -1)));
        let next = drain(&inner, 2);
        assert_eq!(next.iter().map(|b| b.seq).collect::<Vec<_>>(), [3]);
        // with max.in.flight 1, one at a time (Kafka's rule for order
        // without idempotence)
        let p = one_record_batches(&[("max.in.flight.requests.per.connection", "1")], 3).await;
        assert_eq!(drain(p.inner(), 3).len(), 1);
    }

    #[tokio::test]
    async fn returned_batches_go_again_in_sequence_order_one_at_a_time() {
        let p = one_record_batches(&[], 5).await;
        let inner = p.inner().clone();
        let mut sent = drain(&inner, 3).into_iter();
        let (b0, b1, b2) = (
            sent.next().unwrap(),
            sent.next().unwrap(),
            sent.next().unwrap(),
        );
        // answered out of order: 2 and 1 come back (say OUT_OF_ORDER after
        // a failure of 0), 0 is still in flight
        requeue(&inner, b2);
        requeue(&inner, b1);
        let no_backoff = |inner: &Inner| {
            let mut st = inner.lock();
            let q = st
                .topics
                .partition_mut(&TopicPartition::new("t", 0))
                .unwrap();
            for b in q.batches.iter_mut() {
                b.retry_at = None;
            }
            q.batches.iter().map(|b| b.seq).collect::<Vec<_>>()
        };
        assert_eq!(
            no_backoff(&inner),
            [1, 2, -1, -1],
            "sent ones first, in order"
        );
        assert!(
            drain(&inner, 2).is_empty(),
            "a retry waits while 0 is in flight"
        );
        settle(&inner, b0, Ok((0, -1)));
        let again = drain(&inner, 3);
        assert_eq!(
            again.iter().map(|b| b.seq).collect::<Vec<_>>(),
            [1],
            "alone"
        );
        settle(&inner, again.into_iter().next().unwrap(), Ok((1, -1)));
        let again = drain(&inner, 1);
        assert_eq!(again.iter().map(|b| b.seq).collect::<Vec<_>>(), [2]);
    }

    #[tokio::test]
    async fn a_batch_refused_for_good_renumbers_the_ones_after_it() {
        let p = one_record_batches(&[], 5).await;
        let inner = p.inner().clone();
        let mut sent = drain(&inner, 3).into_iter();
        let (b0, b1, b2) = (
            sent.next().unwrap(),
            sent.next().unwrap(),
            sent.next().unwrap(),
        );
        acknowledged(&inner, &b0);
        settle(&inner, b0, Ok((0, -1)));
        // 1 refused (INVALID_RECORD, say); 2 comes back OUT_OF_ORDER: its
        // sequence is not the next the broker expects, so it is retriable
        assert!(out_of_order_is_retriable(&inner, &b2));
        assert!(!out_of_order_is_retriable(&inner, &b1), "1 is the next one");
        let refused = Error::kafka(87, None, "producing");
        failed_sequence(&inner, &b1, &refused, false);
        settle(&inner, b1, Err(refused));
        requeue(&inner, b2);
        {
            let st = inner.lock();
            let q = &st.topics["t"][&0];
            assert_eq!(q.batches[0].seq, 1, "renumbered into the gap");
            assert_eq!(base_sequence(&q.batches[0]), 1);
            assert_eq!(q.next_seq, 2, "the next new batch follows it");
        }
        inner
            .lock()
            .topics
            .partition_mut(&TopicPartition::new("t", 0))
            .unwrap()
            .batches[0]
            .retry_at = None;
        let again = drain(&inner, 1);
        assert_eq!(again[0].seq, 1);
        settle(&inner, again.into_iter().next().unwrap(), Ok((1, -1)));
        let fresh = drain(&inner, 1);
        assert_eq!(fresh.iter().map(|b| b.seq).collect::<Vec<_>>(), [2]);
    }

    #[tokio::test]
    async fn a_batch_of_unknown_fate_moves_the_producer_to_its_next_epoch() {
        let p = one_record_batches(&[], 5).await;
        let inner = p.inner().clone();
        {
            let mut st = inner.lock();
            st.producer_id = 7;
            st.producer_epoch = 0;
        }
        let mut sent = drain(&inner, 3).into_iter();
        let (b0, b1, b2) = (
            sent.next().unwrap(),
            sent.next().unwrap(),
            sent.next().unwrap(),
        );
        acknowledged(&inner, &b0);
        settle(&inner, b0, Ok((0, -1)));
        // 1: an acks=all produce timed out after its append
        // (REQUEST_TIMED_OUT, retriable) and delivery.timeout.ms ran out:
        // the broker may hold it at sequence 1
        let timed_out = Error::kafka(7, None, "producing");
        failed_sequence(&inner, &b1, &timed_out, true);
        settle(&inner, b1, Err(timed_out));
        requeue(&inner, b2);
        {
            let st = inner.lock();
            assert!(st.sequences_unresolved);
            let q = &st.topics["t"][&0];
            // renumbered into sequence 1, the broker would take it for 1's
            // duplicate and acknowledge it at 1's offset: a lost write
            assert_eq!(q.batches[0].seq, 2, "no sequence is used twice");
            assert_eq!(q.next_seq, 3);
        }
        inner
            .lock()
            .topics
            .partition_mut(&TopicPartition::new("t", 0))
            .unwrap()
            .batches[0]
            .retry_at = None;
        assert!(drain(&inner, 1).is_empty(), "nothing more under epoch 0");
        assert!(next_epoch_due(&inner));
        next_epoch(&inner).await;
        {
            let st = inner.lock();
            assert_eq!((st.producer_id, st.producer_epoch), (7, 1));
            assert!(!st.sequences_unresolved);
        }
        // 2 was sent under epoch 0 and may be written: re-sent under
        // epoch 1 it could be written twice, so it failed; 3 is the first
        // batch of epoch 1
        assert_eq!(inner.lock().topics["t"][&0].batches.len(), 2);
        let next = drain(&inner, 1);
        assert_eq!(next.len(), 1);
        assert_eq!((next[0].seq, base_sequence(&next[0])), (0, 0));
        let sealed = next[0].sealed.as_ref().unwrap();
        assert_eq!(i16::from_be_bytes([sealed[51], sealed[52]]), 1, "epoch 1");
        let b3 = next.into_iter().next().unwrap();
        acknowledged(&inner, &b3);
        settle(&inner, b3, Ok((3, -1)));
        let fresh = drain(&inner, 1);
        assert_eq!(fresh.iter().map(|b| b.seq).collect::<Vec<_>>(), [1]);
    }

    #[test]
    fn a_batch_filled_to_capacity_never_reallocates() {
        // 859-byte records: the last one that fits leaves less than the
        // 5 spare bytes a loose reserve would ask for
        let mut b = BatchBuilder::with_buffer(BytesMut::with_capacity(16_384));
        let ptr = b.buffer_ptr();
        let value = vec![7u8; 850];
        loop {
            let add = b.size_of(None, Some(&value), &[], 0);
            if b.size() + add > 16_384 {
                break;
            }
            b.push(None, Some(&value), &[], 0);
        }
        assert!(b.size() > 16_384 - 859, "filled to the brim: {}", b.size());
        assert_eq!(b.buffer_ptr(), ptr, "the buffer was reallocated");
    }

    fn test_batch(tp: TopicPartition) -> Batch {
        Batch {
            outcome: BatchOutcome::new(tp.clone()),
            tp,
            builder: BatchBuilder::new(),
            created: Instant::now(),
            reserved: 0,
            attempts: 0,
            sealed: None,
            seq: -1,
            order: 0,
            gaps_seen: 0,
            in_flight: false,
            retry_at: None,
        }
    }

    fn future_of(b: &Batch, delta: i32, timestamp: i64) -> DeliveryFuture {
        DeliveryFuture {
            outcome: b.outcome.clone(),
            delta,
            timestamp,
            waker_slot: None,
        }
    }

    #[tokio::test]
    async fn records_of_a_batch_share_one_outcome() {
        let b = test_batch(TopicPartition::new("t", 2));
        let first = future_of(&b, 0, 10);
        let second = future_of(&b, 1, 11);
        // One record waits before the batch completes, the other after.
        let waiting = tokio::spawn(first);
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished());
        b.complete(Ok((100, -1)));
        let m = waiting.await.unwrap().unwrap();
        assert_eq!(
            (m.topic.as_str(), m.partition, m.offset, m.timestamp),
            ("t", 2, 100, 10)
        );
        let m = second.await.unwrap();
        assert_eq!((m.offset, m.timestamp), (101, 11));
    }

    #[tokio::test]
    async fn log_append_time_and_errors_reach_every_record() {
        let b = test_batch(TopicPartition::new("t", 0));
        let f = future_of(&b, 3, 10);
        b.complete(Ok((-1, 777)));
        let m = f.await.unwrap();
        assert_eq!((m.offset, m.timestamp), (-1, 777));

        let b = test_batch(TopicPartition::new("t", 0));
        let (f1, f2) = (future_of(&b, 0, 1), future_of(&b, 1, 1));
        b.complete(Err(Error::kafka(10, None, "producing")));
        for f in [f1, f2] {
            assert_eq!(f.await.unwrap_err().kafka_code(), Some(KafkaCode(10)));
        }
    }

    #[test]
    fn transactional_config_implies_idempotence() {
        let tid = |extra: &[(&str, &str)]| {
            let mut cfg: ClientConfig = [("transactional.id", "tx")].into_iter().collect();
            for (k, v) in extra {
                cfg.set(*k, *v);
            }
            ProducerConfig::parse(&cfg)
        };
        let c = tid(&[]).unwrap();
        assert!(c.idempotence && c.idempotence_explicit);
        assert_eq!(c.transactional_id.as_deref(), Some("tx"));
        assert_eq!(c.transaction_timeout_ms, 60_000);
        let e = tid(&[("enable.idempotence", "false")]).unwrap_err();
        assert!(e.to_string().contains("enable.idempotence"), "{e}");
        // the idempotence conflicts are errors, not a silent fallback
        assert!(tid(&[("acks", "1")]).is_err());
        assert!(tid(&[("max.in.flight.requests.per.connection", "6")]).is_err());
        assert_eq!(
            tid(&[("transaction.timeout.ms", "9000")])
                .unwrap()
                .transaction_timeout_ms,
            9000
        );
        assert!(tid(&[("transaction.timeout.ms", "0")]).is_err());
        let plain = ProducerConfig::parse(&ClientConfig::new()).unwrap();
        assert!(plain.transactional_id.is_none());
    }

    /// An offline transactional producer, initialized as if InitProducerId
    /// had answered.
    fn offline_txn() -> Producer {
        let p = offline(&[("transactional.id", "tx"), ("max.block.ms", "300")]);
        with_txn(p.inner(), |m| {
            m.transition(TransactionState::Initializing, "init")?;
            m.transition(TransactionState::Ready, "init")
        })
        .unwrap();
        let mut st = p.inner().lock();
        st.producer_id = 7;
        st.producer_epoch = 0;
        drop(st);
        p
    }

    fn record() -> ProducerRecord {
        ProducerRecord::new("t").partition(0).value("v")
    }

    #[tokio::test]
    async fn transactional_calls_need_init_and_a_transaction() {
        let p = offline(&[("transactional.id", "tx")]);
        assert_eq!(p.transaction_state(), Some(TransactionState::Uninitialized));
        for e in [
            p.enqueue(record()).await.err().unwrap(),
            p.begin_transaction().await.unwrap_err(),
            p.commit_transaction().await.unwrap_err(),
            p.abort_transaction().await.unwrap_err(),
        ] {
            assert!(matches!(e, Error::TransactionState { .. }), "{e}");
            assert!(e.to_string().contains("init_transactions"), "{e}");
        }
        let p = offline_txn();
        let e = p.enqueue(record()).await.err().unwrap();
        assert!(e.to_string().contains("begin_transaction"), "{e}");
        p.begin_transaction().await.unwrap();
        let e = p.begin_transaction().await.unwrap_err();
        assert!(
            matches!(
                &e,
                Error::TransactionState {
                    operation: "begin_transaction",
                    ..
                }
            ),
            "{e}"
        );
        // a producer without transactional.id has no transactions
        let plain = offline(&[]);
        assert_eq!(plain.transaction_state(), None);
        assert!(matches!(
            plain.begin_transaction().await,
            Err(Error::TransactionState { .. })
        ));
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 1)]);
        assert!(plain
            .send_offsets_to_transaction(&offsets, "g")
            .await
            .is_err());
    }

    #[tokio::test]
    async fn a_partition_is_drained_only_once_added_to_the_transaction() {
        let p = offline_txn();
        let inner = p.inner().clone();
        p.begin_transaction().await.unwrap();
        for partition in [0, 1, 0] {
            p.enqueue(ProducerRecord::new("t").partition(partition).value("v"))
                .await
                .unwrap();
        }
        {
            let st = inner.lock();
            assert!(st.txn.as_ref().unwrap().pending_adds);
            assert_eq!(st.topics["t"][&0].txn, TxnMark::Pending);
            assert_eq!(st.topics["t"][&1].txn, TxnMark::Pending);
        }
        inner.lock().flushing += 1;
        let (ready, _, expired, _) = collect_ready(&inner, true);
        assert!(
            ready.is_empty() && expired.is_empty(),
            "nothing before AddPartitionsToTxn"
        );
        // as the sender marks them once the coordinator added them
        inner
            .lock()
            .topics
            .partition_mut(&TopicPartition::new("t", 1))
            .unwrap()
            .txn = TxnMark::Added;
        let (ready, _, _, _) = collect_ready(&inner, true);
        assert_eq!(ready.len(), 1);
        let sealed = ready[0].sealed.as_ref().unwrap();
        let attributes = i16::from_be_bytes([sealed[21], sealed[22]]);
        assert_ne!(attributes & 0x10, 0, "the batch is marked transactional");
        assert_eq!(i64::from_be_bytes(sealed[43..51].try_into().unwrap()), 7);
    }

    #[tokio::test]
    async fn abort_fails_the_unsent_records_and_ends_locally_when_nothing_started() {
        let p = offline_txn();
        p.begin_transaction().await.unwrap();
        let pending = p.enqueue(record()).await.unwrap();
        p.abort_transaction().await.unwrap();
        let e = pending.await.unwrap_err();
        assert!(e.is_abortable_transaction_error(), "{e}");
        assert_eq!(p.transaction_state(), Some(TransactionState::Ready));
        assert_eq!(p.inner().lock().outstanding, 0);
        assert_eq!(p.inner().pool.available(), 33_554_432);
        assert_eq!(
            p.inner().lock().topics["t"][&0].txn,
            TxnMark::NotAdded,
            "the next transaction adds the partition again"
        );
        // an empty transaction commits without a coordinator
        p.begin_transaction().await.unwrap();
        p.commit_transaction().await.unwrap();
        assert_eq!(p.transaction_state(), Some(TransactionState::Ready));
    }

    #[tokio::test]
    async fn a_failed_send_makes_commit_fail_until_the_abort() {
        let p = offline_txn();
        p.begin_transaction().await.unwrap();
        let queued = p.enqueue(record()).await.unwrap();
        // what produce_request does when a batch fails for good
        note_batch_failure(
            p.inner(),
            &Error::kafka(KafkaCode::INVALID_PRODUCER_EPOCH, None, "producing to t-0"),
            true,
        );
        assert_eq!(
            p.transaction_state(),
            Some(TransactionState::AbortableError)
        );
        let e = p.commit_transaction().await.unwrap_err();
        assert!(e.is_abortable_transaction_error(), "{e}");
        assert_eq!(
            e.kafka_code(),
            Some(KafkaCode(KafkaCode::INVALID_PRODUCER_EPOCH))
        );
        assert!(p
            .enqueue(record())
            .await
            .err()
            .unwrap()
            .is_abortable_transaction_error());
        // the sender fails what was queued
        abort_undrained(p.inner());
        assert!(queued.await.unwrap_err().is_abortable_transaction_error());
        assert!(p.inner().lock().txn.as_ref().unwrap().epoch_bump_required);
        p.abort_transaction().await.unwrap();
        assert_eq!(p.transaction_state(), Some(TransactionState::Ready));
        p.begin_transaction().await.unwrap();
    }

    #[tokio::test]
    async fn a_fatal_error_fails_every_later_call() {
        let p = offline_txn();
        p.begin_transaction().await.unwrap();
        let queued = p.enqueue(record()).await.unwrap();
        note_batch_failure(
            p.inner(),
            &Error::kafka(KafkaCode::PRODUCER_FENCED, None, "producing to t-0"),
            true,
        );
        abort_undrained(p.inner());
        let fenced = Some(KafkaCode(KafkaCode::PRODUCER_FENCED));
        let e = queued.await.unwrap_err();
        assert!(
            e.is_fatal_transaction_error() && e.kafka_code() == fenced,
            "{e}"
        );
        let offsets = BTreeMap::from([(TopicPartition::new("t", 0), 1)]);
        for e in [
            p.enqueue(record()).await.err().unwrap(),
            p.commit_transaction().await.unwrap_err(),
            p.abort_transaction().await.unwrap_err(),
            p.begin_transaction().await.unwrap_err(),
            p.send_offsets_to_transaction(&offsets, "g")
                .await
                .unwrap_err(),
            p.init_transactions().await.unwrap_err(),
        ] {
            assert!(e.is_fatal_transaction_error(), "{e}");
            assert_eq!(e.kafka_code(), fenced);
        }
    }

    #[tokio::test]
    async fn commit_is_bounded_by_max_block_and_can_be_called_again() {
        let p = offline_txn();
        p.begin_transaction().await.unwrap();
        // never added, never sent: the offline sender does not run
        let _queued = p.enqueue(record()).await.unwrap();
        let started = Instant::now();
        let e = p.commit_transaction().await.unwrap_err();
        assert!(matches!(e, Error::Timeout(_)), "{e}");
        assert!(started.elapsed() >= Duration::from_millis(300));
        assert_eq!(p.transaction_state(), Some(TransactionState::Committing));
        assert!(matches!(
            p.abort_transaction().await,
            Err(Error::TransactionState { .. })
        ));
        assert_eq!(p.inner().lock().flushing, 0);
        let e = p.commit_transaction().await.unwrap_err();
        assert!(
            matches!(e, Error::Timeout(_)),
            "a second commit waits again: {e}"
        );
    }

    #[tokio::test]
    async fn a_batch_dropped_unanswered_fails_its_records() {
        let b = test_batch(TopicPartition::new("t", 0));
        let f = future_of(&b, 0, 1);
        let waiting = tokio::spawn(f);
        tokio::task::yield_now().await;
        drop(b);
        assert!(matches!(waiting.await.unwrap(), Err(Error::Closed)));
    }
}
