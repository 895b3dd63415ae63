//! Producers and plain readers.

use std::collections::VecDeque;
use std::time::Duration;

use oxka_client::producer::DeliveryFuture;
use oxka_client::{Consumer, Producer, ProducerRecord, TopicPartition};
use tokio::task::JoinSet;

use super::{nap, Ctx, ProduceSpec};
use crate::history::{value_of, Event, Outcome};

/// Records a producer may have in flight before it waits for the oldest:
/// bounds memory and keeps the history's outcomes close to their sends.
const IN_FLIGHT: usize = 64;

/// Starts the producers; they stop when `ctx.stop` is set, after their
/// outstanding sends are answered.
pub fn spawn_producers(ctx: &Ctx, spec: &ProduceSpec, tasks: &mut JoinSet<()>) {
    let per = (spec.rate / spec.producers.max(1)).max(1);
    for id in 0..spec.producers {
        let ctx = ctx.clone();
        let acks = spec.acks.clone();
        tasks.spawn(async move { produce(ctx, id, per, acks).await });
    }
}

fn producer_config(ctx: &Ctx, acks: &str, id: u32) -> oxka_client::ClientConfig {
    let mut cfg = ctx.client.clone();
    cfg.set("acks", acks);
    // Kafka's producer needs acks=all for idempotence; below that the run
    // checks at-most-once-per-send ordering with one request in flight
    let idempotent = acks == "all" || acks == "-1";
    cfg.set(
        "enable.idempotence",
        if idempotent { "true" } else { "false" },
    );
    if !idempotent {
        cfg.set("max.in.flight.requests.per.connection", "1");
    }
    cfg.set("linger.ms", "2");
    if cfg.get("delivery.timeout.ms").is_none() {
        cfg.set("delivery.timeout.ms", "30000");
    }
    if cfg.get("request.timeout.ms").is_none() {
        cfg.set("request.timeout.ms", "10000");
    }
    cfg.set("client.id", format!("oxka-verify-producer-{id}"));
    cfg
}

async fn produce(ctx: Ctx, id: u32, rate: u32, acks: String) {
    let producer = match Producer::new(&producer_config(&ctx, &acks, id)) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!("producer {id}: {e}");
            return;
        }
    };
    let period = Duration::from_secs_f64(1.0 / f64::from(rate));
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut pending: VecDeque<(String, i32, DeliveryFuture)> = VecDeque::new();
    let mut seq: u64 = 0;
    // partitions round-robin, shifted per producer
    while !ctx.stopped() {
        tick.tick().await;
        let partition = ((seq + u64::from(id)) % ctx.partitions as u64) as i32;
        let value = value_of("a", id, seq);
        seq += 1;
        let rec = ProducerRecord::new(ctx.topic.clone())
            .partition(partition)
            .key(format!("p{id}"))
            .value(value.clone());
        match producer.enqueue(rec).await {
            Ok(f) => pending.push_back((value, partition, f)),
            Err(e) => record_send(&ctx, id, partition, value, Err(e)),
        }
        while pending.len() >= IN_FLIGHT {
            if let Some((v, p, f)) = pending.pop_front() {
                let r = f.await;
                record_send(&ctx, id, p, v, r.map(|m| m.offset));
            }
        }
    }
    while let Some((v, p, f)) = pending.pop_front() {
        let r = f.await;
        record_send(&ctx, id, p, v, r.map(|m| m.offset));
    }
    let _ = producer.close().await;
}

fn record_send(
    ctx: &Ctx,
    producer: u32,
    partition: i32,
    value: String,
    r: oxka_client::Result<i64>,
) {
    let outcome = match r {
        Ok(offset) => Outcome::Acked { offset },
        Err(e) => Outcome::Failed {
            error: e.to_string(),
        },
    };
    ctx.recorder.record(Event::Send {
        t: ctx.recorder.now(),
        producer,
        partition,
        value,
        outcome,
    });
}

/// Starts `n` readers that read every partition from the start, outside
/// any group, recording what they see.
pub fn spawn_readers(ctx: &Ctx, n: u32, read_committed: bool, tasks: &mut JoinSet<()>) {
    for id in 0..n {
        let ctx = ctx.clone();
        tasks.spawn(async move { read(ctx, format!("r{id}"), read_committed).await });
    }
}

pub(crate) fn reader_config(
    ctx: &Ctx,
    name: &str,
    read_committed: bool,
) -> oxka_client::ClientConfig {
    let mut cfg = ctx.client.clone();
    cfg.set("client.id", format!("oxka-verify-{name}"));
    cfg.set("auto.offset.reset", "earliest");
    cfg.set(
        "isolation.level",
        if read_committed {
            "read_committed"
        } else {
            "read_uncommitted"
        },
    );
    if cfg.get("request.timeout.ms").is_none() {
        cfg.set("request.timeout.ms", "10000");
    }
    cfg
}

async fn read(ctx: Ctx, name: String, read_committed: bool) {
    let tps: Vec<TopicPartition> = (0..ctx.partitions)
        .map(|p| TopicPartition::new(ctx.topic.clone(), p))
        .collect();
    let mut consumer = match Consumer::new(&reader_config(&ctx, &name, read_committed)) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{name}: {e}");
            return;
        }
    };
    if let Err(e) = consumer.assign(tps) {
        tracing::error!("{name}: {e}");
        return;
    }
    // errors (a leader gone, a broker down) are retried: the consumer
    // keeps its positions
    while !ctx.stopped() {
        match consumer.poll(Duration::from_millis(200)).await {
            Ok(records) => {
                let t = ctx.recorder.now();
                for r in &records {
                    record_read(&ctx, t, &name, 0, read_committed, r);
                }
            }
            Err(e) => {
                tracing::debug!("{name}: {e}");
                nap(&ctx, Duration::from_millis(200)).await;
            }
        }
    }
}

/// Records one record a consumer returned (every reader: plain, group
/// member, final read).
pub(crate) fn record_read(
    ctx: &Ctx,
    t: u64,
    reader: &str,
    session: u32,
    read_committed: bool,
    r: &oxka_client::ConsumerRecord,
) {
    ctx.recorder.record(Event::Read {
        t,
        reader: reader.to_string(),
        session,
        partition: r.partition,
        offset: r.offset,
        value: value_string(r.value.as_deref()),
        read_committed,
    });
}

/// A record's value as the history keeps it (values are ASCII; anything
/// else is shown escaped, and then names no send: a phantom).
pub(crate) fn value_string(v: Option<&[u8]>) -> String {
    match v {
        None => "<null>".into(),
        Some(b) => String::from_utf8_lossy(b).into_owned(),
    }
}
