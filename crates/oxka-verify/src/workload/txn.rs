//! Transactional producers: each transaction writes 1–5 values to random
//! partitions and then commits (about two in three) or aborts; the
//! outcome is what the producer was told (unknown when the end failed or
//! the producer had to be rebuilt). Readers read with read_committed.

use std::time::Duration;

use oxka_client::{Producer, ProducerRecord};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use super::{nap, Ctx, ProduceSpec};
use crate::history::{value_of, Event, TxnOutcome, TxnWrite};

/// A transaction's writes at most.
const MAX_WRITES: usize = 5;

pub fn spawn_producers(ctx: &Ctx, spec: &ProduceSpec, tasks: &mut JoinSet<()>) {
    // the rate counts records; a transaction has three on average
    let per = (spec.rate / spec.producers.max(1) / 3).max(1);
    for id in 0..spec.producers {
        let ctx = ctx.clone();
        tasks.spawn(async move { run(ctx, id, per).await });
    }
}

fn config(ctx: &Ctx, id: u32) -> oxka_client::ClientConfig {
    let mut cfg = ctx.client.clone();
    cfg.set("transactional.id", format!("oxka-verify-{}-{id}", ctx.seed));
    cfg.set("acks", "all");
    // a transaction left open by a lost producer ends within the run's
    // final read (Kafka's default is a minute)
    cfg.set("transaction.timeout.ms", "10000");
    cfg.set("max.block.ms", "20000");
    cfg.set("linger.ms", "2");
    if cfg.get("request.timeout.ms").is_none() {
        cfg.set("request.timeout.ms", "10000");
    }
    cfg.set("client.id", format!("oxka-verify-txn-{id}"));
    cfg
}

async fn fresh(ctx: &Ctx, id: u32) -> Option<Producer> {
    while !ctx.stopped() {
        match Producer::new(&config(ctx, id)) {
            Ok(p) => match p.init_transactions().await {
                Ok(()) => return Some(p),
                Err(e) => {
                    tracing::debug!("txn producer {id}: init: {e}");
                    let _ = p.close().await;
                }
            },
            Err(e) => {
                tracing::error!("txn producer {id}: {e}");
                return None;
            }
        }
        nap(ctx, Duration::from_millis(500)).await;
    }
    None
}

async fn run(ctx: Ctx, id: u32, txns_per_sec: u32) {
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ (0x7478 + u64::from(id)));
    let Some(mut producer) = fresh(&ctx, id).await else {
        return;
    };
    let period = Duration::from_secs_f64(1.0 / f64::from(txns_per_sec));
    let mut seq = 0u64;
    let mut txn = 0u64;
    while !ctx.stopped() {
        tokio::time::sleep(period).await;
        txn += 1;
        let n = rng.gen_range(1..=MAX_WRITES);
        let writes: Vec<TxnWrite> = (0..n)
            .map(|_| {
                seq += 1;
                TxnWrite {
                    partition: rng.gen_range(0..ctx.partitions),
                    value: value_of("t", id, seq),
                }
            })
            .collect();
        let commit = rng.gen_bool(0.67);
        let outcome = one(&producer, &ctx, &writes, commit).await;
        ctx.recorder.record(Event::Txn {
            t: ctx.recorder.now(),
            producer: id,
            txn,
            writes,
            outcome: outcome.unwrap_or(TxnOutcome::Unknown),
        });
        if outcome.is_none() {
            // a fatal error or an end that failed: a new producer (its
            // InitProducerId aborts whatever this one left open)
            let _ = producer.close().await;
            match fresh(&ctx, id).await {
                Some(p) => producer = p,
                None => return,
            }
        }
    }
    let _ = producer.close().await;
}

/// One transaction; `None` when its outcome is unknown.
async fn one(p: &Producer, ctx: &Ctx, writes: &[TxnWrite], commit: bool) -> Option<TxnOutcome> {
    if let Err(e) = p.begin_transaction().await {
        tracing::debug!("begin: {e}");
        return None;
    }
    let mut pending = Vec::new();
    let mut failed = false;
    for w in writes {
        let rec = ProducerRecord::new(ctx.topic.clone())
            .partition(w.partition)
            .value(w.value.clone());
        match p.enqueue(rec).await {
            Ok(f) => pending.push(f),
            Err(e) => {
                tracing::debug!("send: {e}");
                failed = true;
                break;
            }
        }
    }
    if commit && !failed {
        match p.commit_transaction().await {
            Ok(()) => return Some(TxnOutcome::Committed),
            Err(e) if e.is_abortable_transaction_error() => {
                tracing::debug!("commit: {e}");
            }
            Err(e) => {
                tracing::debug!("commit: {e}");
                return None;
            }
        }
    }
    match p.abort_transaction().await {
        Ok(()) => {
            // the sends' own outcomes do not matter once aborted
            drop(pending);
            Some(TxnOutcome::Aborted)
        }
        Err(e) => {
            tracing::debug!("abort: {e}");
            None
        }
    }
}
