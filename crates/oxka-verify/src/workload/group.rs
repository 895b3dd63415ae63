//! A consumer group under churn: members poll, commit what they read after
//! every poll (commitSync of the next offsets), and every few seconds one
//! member leaves cleanly or crashes (dropped without leaving, so the
//! coordinator expires it) and a new one joins.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxka_client::{Consumer, RebalanceListener, TopicPartition};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::task::JoinSet;

use super::append::{reader_config, record_read};
use super::{nap, Ctx};
use crate::history::Event;

#[derive(Debug, Clone)]
pub struct GroupSpec {
    pub group: String,
    pub members: u32,
    /// Mean time between membership changes.
    pub churn: Duration,
}

/// The member's assignment counter, bumped by the rebalance callback.
struct Session {
    n: u32,
}

struct Listener {
    name: String,
    ctx: Ctx,
    session: Arc<Mutex<Session>>,
}

impl RebalanceListener for Listener {
    fn on_partitions_assigned(&mut self, partitions: &[TopicPartition]) {
        let mut s = self.session.lock().unwrap_or_else(|p| p.into_inner());
        s.n += 1;
        let t = self.ctx.recorder.now();
        for tp in partitions {
            self.ctx.recorder.record(Event::Assigned {
                t,
                reader: self.name.clone(),
                session: s.n,
                partition: tp.partition,
            });
        }
    }
}

/// How a member's run ends.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Exit {
    Leave,
    Crash,
}

/// Set to tell a member how to end.
type ExitFlag = Arc<Mutex<Option<Exit>>>;

/// Starts the group: `spec.members` members at all times, one replaced
/// every `spec.churn` on average.
pub fn spawn(ctx: &Ctx, spec: &GroupSpec, tasks: &mut JoinSet<()>) {
    let ctx = ctx.clone();
    let spec = spec.clone();
    tasks.spawn(async move { supervise(ctx, spec).await });
}

async fn supervise(ctx: Ctx, spec: GroupSpec) {
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x6770);
    let mut next_id = 0u32;
    let mut members: Vec<(ExitFlag, tokio::task::JoinHandle<()>)> = Vec::new();
    let start = |next_id: &mut u32| {
        let name = format!("m{next_id}");
        *next_id += 1;
        let exit = Arc::new(Mutex::new(None));
        let h = tokio::spawn(member(ctx.clone(), spec.group.clone(), name, exit.clone()));
        (exit, h)
    };
    for _ in 0..spec.members.max(1) {
        members.push(start(&mut next_id));
    }
    while !ctx.stopped() {
        let wait = spec.churn.mul_f64(rng.gen_range(0.5..1.5));
        nap(&ctx, wait).await;
        if ctx.stopped() {
            break;
        }
        let i = rng.gen_range(0..members.len());
        let how = if rng.gen_bool(0.5) {
            Exit::Leave
        } else {
            Exit::Crash
        };
        let (exit, h) = members.swap_remove(i);
        *exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(how);
        let _ = h.await;
        members.push(start(&mut next_id));
    }
    for (exit, _) in &members {
        *exit.lock().unwrap_or_else(|p| p.into_inner()) = Some(Exit::Leave);
    }
    for (_, h) in members {
        let _ = h.await;
    }
}

async fn member(ctx: Ctx, group: String, name: String, exit: Arc<Mutex<Option<Exit>>>) {
    let mut cfg = reader_config(&ctx, &name, false);
    cfg.set("group.id", group);
    cfg.set("enable.auto.commit", "false");
    cfg.set("partition.assignment.strategy", "range");
    // a crashed member is noticed after this (Kafka's default is 45 s)
    cfg.set("session.timeout.ms", "6000");
    cfg.set("heartbeat.interval.ms", "1000");
    let mut consumer = match Consumer::new(&cfg) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{name}: {e}");
            return;
        }
    };
    let session = Arc::new(Mutex::new(Session { n: 0 }));
    let listener = Listener {
        name: name.clone(),
        ctx: ctx.clone(),
        session: session.clone(),
    };
    if let Err(e) = consumer.subscribe_with_listener(&[ctx.topic.as_str()], Box::new(listener)) {
        tracing::error!("{name}: {e}");
        return;
    }
    let how = loop {
        if let Some(how) = *exit.lock().unwrap_or_else(|p| p.into_inner()) {
            break how;
        }
        let records = match consumer.poll(Duration::from_millis(200)).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!("{name}: {e}");
                nap(&ctx, Duration::from_millis(200)).await;
                continue;
            }
        };
        if records.is_empty() {
            continue;
        }
        let n = session.lock().unwrap_or_else(|p| p.into_inner()).n;
        let t = ctx.recorder.now();
        let mut next: BTreeMap<TopicPartition, i64> = BTreeMap::new();
        for r in &records {
            next.insert(
                TopicPartition::new(ctx.topic.clone(), r.partition),
                r.offset + 1,
            );
            record_read(&ctx, t, &name, n, false, r);
        }
        let sent = ctx.recorder.now();
        let r = consumer.commit_sync(Some(next.clone())).await;
        let t = ctx.recorder.now();
        if let Err(e) = &r {
            tracing::debug!("{name}: commit: {e}");
        }
        for (tp, offset) in next {
            ctx.recorder.record(Event::Commit {
                t,
                sent,
                reader: name.clone(),
                partition: tp.partition,
                offset,
                acked: r.is_ok(),
            });
        }
    };
    match how {
        Exit::Leave => {
            let _ = tokio::time::timeout(Duration::from_secs(10), consumer.close_without_commit())
                .await;
        }
        Exit::Crash => drop(consumer),
    }
    ctx.recorder.record(Event::Fault {
        t: ctx.recorder.now(),
        what: format!(
            "group member {name} {}",
            if how == Exit::Leave {
                "left"
            } else {
                "crashed"
            }
        ),
    });
}
