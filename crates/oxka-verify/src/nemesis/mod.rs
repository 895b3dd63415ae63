//! The nemesis: faults injected into a local cluster while the workload
//! runs, one at a time, each held for a while and then healed, every
//! injection and heal recorded in the history.
//!
//! Faults: `kill` (kill -9, restarted when healed), `pause` (SIGSTOP, a
//! zombie once SIGCONT heals it); each aimed at any node, at the leader of
//! one of the workload's partitions (`kill-leader`, `pause-leader`) or at
//! the active controller (`kill-controller`, `pause-controller`).

pub mod cluster;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use oxka_client::Admin;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};

pub use cluster::{ClusterError, LocalCluster};

use crate::history::Event;
use crate::workload::{nap, Ctx};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Kill,
    Pause,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Any,
    Leader,
    Controller,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fault {
    pub action: Action,
    pub target: Target,
}

impl Fault {
    /// Every fault name `--nemesis` takes.
    pub const NAMES: [&'static str; 6] = [
        "kill",
        "pause",
        "kill-leader",
        "pause-leader",
        "kill-controller",
        "pause-controller",
    ];

    pub fn parse(name: &str) -> Option<Fault> {
        let (a, t) = name.split_once('-').unwrap_or((name, ""));
        let action = match a {
            "kill" => Action::Kill,
            "pause" => Action::Pause,
            _ => return None,
        };
        let target = match t {
            "" => Target::Any,
            "leader" => Target::Leader,
            "controller" => Target::Controller,
            _ => return None,
        };
        Some(Fault { action, target })
    }

    /// A comma-separated list; `all` means every fault.
    pub fn parse_list(list: &str) -> Result<Vec<Fault>, String> {
        let mut out = Vec::new();
        for name in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
            if name == "all" {
                out.extend(Self::NAMES.iter().filter_map(|n| Fault::parse(n)));
                continue;
            }
            out.push(Fault::parse(name).ok_or_else(|| {
                format!(
                    "unknown fault `{name}` (known: {}, all)",
                    Self::NAMES.join(", ")
                )
            })?);
        }
        Ok(out)
    }
}

#[derive(Debug, Clone)]
pub struct NemesisSpec {
    pub faults: Vec<Fault>,
    /// Mean quiet time between a heal and the next fault.
    pub interval: Duration,
    /// How long a fault is held, at most (at least a quarter of it).
    pub hold: Duration,
}

/// What the nemesis saw of the nodes: exits it did not cause.
#[derive(Debug, Default, Clone)]
pub struct NemesisReport {
    pub injected: u64,
    pub node_crashes: Vec<String>,
}

/// Runs faults until `ctx.stop`, then heals whatever is still broken.
pub async fn run(
    ctx: Ctx,
    spec: NemesisSpec,
    cluster: Arc<Mutex<LocalCluster>>,
    admin: Admin,
) -> NemesisReport {
    let mut rng = StdRng::seed_from_u64(ctx.seed ^ 0x6e656d);
    let mut report = NemesisReport::default();
    let lock = |c: &Arc<Mutex<LocalCluster>>| {
        c.lock()
            .unwrap_or_else(|p| p.into_inner())
            .nodes
            .iter()
            .map(|n| n.id)
            .collect::<Vec<i32>>()
    };
    let ids = lock(&cluster);
    while !ctx.stopped() && !spec.faults.is_empty() {
        let quiet = spec.interval.mul_f64(rng.gen_range(0.5..1.5));
        nap(&ctx, quiet).await;
        if ctx.stopped() {
            break;
        }
        note_crashes(&ctx, &cluster, &ids, &mut report);
        let Some(fault) = spec.faults.choose(&mut rng).copied() else {
            break;
        };
        let (id, why) = match target(&ctx, &admin, fault.target, &mut rng).await {
            Some(x) => x,
            None => match ids.choose(&mut rng) {
                Some(id) => (*id, "a node".to_string()),
                None => break,
            },
        };
        let what = match fault.action {
            Action::Kill => {
                cluster.lock().unwrap_or_else(|p| p.into_inner()).kill(id);
                format!("kill -9 node {id} ({why})")
            }
            Action::Pause => {
                cluster.lock().unwrap_or_else(|p| p.into_inner()).pause(id);
                format!("SIGSTOP node {id} ({why})")
            }
        };
        report.injected += 1;
        ctx.recorder.record(Event::Fault {
            t: ctx.recorder.now(),
            what: what.clone(),
        });
        tracing::info!("nemesis: {what}");
        let hold = spec.hold.mul_f64(rng.gen_range(0.25..1.0));
        // held for its time even when the run stops meanwhile: the heal
        // must come after it
        tokio::time::sleep(hold).await;
        heal(&ctx, &cluster, fault.action, id).await;
    }
    note_crashes(&ctx, &cluster, &ids, &mut report);
    report
}

async fn heal(ctx: &Ctx, cluster: &Arc<Mutex<LocalCluster>>, action: Action, id: i32) {
    let what = match action {
        Action::Kill => {
            let r = cluster.lock().unwrap_or_else(|p| p.into_inner()).spawn(id);
            match r {
                Ok(()) => format!("restart node {id}"),
                Err(e) => format!("restart node {id} failed: {e}"),
            }
        }
        Action::Pause => {
            cluster.lock().unwrap_or_else(|p| p.into_inner()).resume(id);
            format!("SIGCONT node {id}")
        }
    };
    ctx.recorder.record(Event::Fault {
        t: ctx.recorder.now(),
        what: what.clone(),
    });
    tracing::info!("nemesis: {what}");
    // the node listens again before the next fault (bounded)
    let c = cluster.clone();
    let _ = tokio::task::spawn_blocking(move || {
        let port_of = c
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .node(id)
            .map(|n| n.port);
        let Some(port) = port_of else { return };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while std::time::Instant::now() < deadline {
            if std::net::TcpStream::connect_timeout(
                &([127, 0, 0, 1], port).into(),
                Duration::from_millis(200),
            )
            .is_ok()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    })
    .await;
}

/// Records nodes that exited without the nemesis killing them.
fn note_crashes(
    ctx: &Ctx,
    cluster: &Arc<Mutex<LocalCluster>>,
    ids: &[i32],
    report: &mut NemesisReport,
) {
    let mut c = cluster.lock().unwrap_or_else(|p| p.into_inner());
    for id in ids {
        if let Some(status) = c.reap(*id) {
            let what = format!(
                "node {id} exited by itself ({status}); its log ends:\n{}",
                c.log_tail(*id, 20)
            );
            ctx.recorder.record(Event::Fault {
                t: ctx.recorder.now(),
                what: format!("node {id} exited by itself ({status})"),
            });
            report.node_crashes.push(what);
            // bring it back so the run can go on
            let _ = c.spawn(*id);
        }
    }
}

/// The node a fault aims at, with why it was chosen.
async fn target(ctx: &Ctx, admin: &Admin, t: Target, rng: &mut StdRng) -> Option<(i32, String)> {
    let ask = Duration::from_secs(5);
    match t {
        Target::Any => None,
        Target::Leader => {
            let topic = tokio::time::timeout(ask, admin.describe_topic(&ctx.topic))
                .await
                .ok()?
                .ok()?;
            let with_leader: Vec<_> = topic.partitions.iter().filter(|p| p.leader >= 0).collect();
            let p = with_leader.choose(rng)?;
            Some((p.leader, format!("leader of partition {}", p.id)))
        }
        Target::Controller => {
            let q = tokio::time::timeout(ask, admin.describe_quorum())
                .await
                .ok()?
                .ok()?;
            (q.leader_id >= 0).then(|| (q.leader_id, "the active controller".to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fault_lists_parse() {
        let f = Fault::parse_list("kill, pause-leader").unwrap();
        assert_eq!(
            f,
            vec![
                Fault {
                    action: Action::Kill,
                    target: Target::Any
                },
                Fault {
                    action: Action::Pause,
                    target: Target::Leader
                }
            ]
        );
        assert_eq!(Fault::parse_list("all").unwrap().len(), Fault::NAMES.len());
        assert!(Fault::parse_list("kill,explode")
            .unwrap_err()
            .contains("explode"));
    }
}
