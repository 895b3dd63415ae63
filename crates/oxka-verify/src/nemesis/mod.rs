//! The nemesis: faults injected into a local cluster while the workload
//! runs, one at a time, each held for a while and then healed, every
//! injection and heal recorded in the history.
//!
//! Faults (`--nemesis`, comma-separated):
//! - `kill`: kill -9, the node restarted when healed;
//! - `pause`: SIGSTOP, then SIGCONT: the node comes back as a zombie that
//!   must find out it was replaced;
//! - `isolate`: the node cut off from every other node (clients still
//!   reach it: a leader cut off from its followers but not from clients);
//! - `split`: the nodes split into a majority and a minority;
//! - `bridge`: two halves that cannot talk, one node seeing both;
//! - `power-cut`: kill -9 and everything the node had not fsynced is lost
//!   (its data dir is on `oxka-lossyfs`), restarted when healed.
//!
//! `kill`, `pause`, `isolate` and `power-cut` aim at any node, or with `-leader` at the
//! leader of one of the workload's partitions, or with `-controller` at
//! the active controller. The network faults and power cuts need root
//! (namespaces, see [`netns`]; a FUSE mount); without it they are skipped
//! with a message.

pub mod cluster;
pub mod netns;

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
    Isolate,
    Split,
    Bridge,
    PowerCut,
}

impl Action {
    /// Cuts the network (needs namespaces).
    pub fn is_network(&self) -> bool {
        matches!(self, Action::Isolate | Action::Split | Action::Bridge)
    }
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
    pub const NAMES: [&'static str; 14] = [
        "kill",
        "kill-leader",
        "kill-controller",
        "pause",
        "pause-leader",
        "pause-controller",
        "isolate",
        "isolate-leader",
        "isolate-controller",
        "split",
        "bridge",
        "power-cut",
        "power-cut-leader",
        "power-cut-controller",
    ];

    pub fn parse(name: &str) -> Option<Fault> {
        let (a, t) = match name.strip_prefix("power-cut") {
            Some(rest) => ("power-cut", rest.trim_start_matches('-')),
            None => name.split_once('-').unwrap_or((name, "")),
        };
        let action = match a {
            "kill" => Action::Kill,
            "pause" => Action::Pause,
            "isolate" => Action::Isolate,
            "split" => Action::Split,
            "bridge" => Action::Bridge,
            "power-cut" => Action::PowerCut,
            _ => return None,
        };
        let target = match t {
            "" => Target::Any,
            "leader" => Target::Leader,
            "controller" => Target::Controller,
            _ => return None,
        };
        if matches!(action, Action::Split | Action::Bridge) && target != Target::Any {
            return None;
        }
        Some(Fault { action, target })
    }

    /// The name `--nemesis` knows it by.
    pub fn name(&self) -> String {
        let a = match self.action {
            Action::Kill => "kill",
            Action::Pause => "pause",
            Action::Isolate => "isolate",
            Action::Split => "split",
            Action::Bridge => "bridge",
            Action::PowerCut => "power-cut",
        };
        match self.target {
            Target::Any => a.to_string(),
            Target::Leader => format!("{a}-leader"),
            Target::Controller => format!("{a}-controller"),
        }
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
        let what = {
            let mut c = cluster.lock().unwrap_or_else(|p| p.into_inner());
            match inject(&mut c, fault.action, id, &ids, &mut rng) {
                Ok(what) if matches!(fault.action, Action::Split | Action::Bridge) => what,
                Ok(what) => format!("{what} ({why})"),
                Err(e) => {
                    tracing::warn!("nemesis: {e}");
                    continue;
                }
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

/// Injects one fault; what was done.
fn inject(
    c: &mut LocalCluster,
    action: Action,
    id: i32,
    ids: &[i32],
    rng: &mut StdRng,
) -> Result<String, String> {
    match action {
        Action::Kill => {
            c.kill(id);
            return Ok(format!("kill -9 node {id}"));
        }
        Action::Pause => {
            c.pause(id);
            return Ok(format!("SIGSTOP node {id}"));
        }
        Action::PowerCut => {
            return match c.power_cut(id) {
                Some(Ok(r)) => Ok(format!(
                    "power cut of node {id}: {} files back to their last fsync, {} bytes lost",
                    r.files_reverted, r.bytes_cut
                )),
                Some(Err(e)) => Err(format!("power cut of node {id}: {e}")),
                None => Err("power cuts need the lossy mount".into()),
            };
        }
        _ => {}
    }
    let net = c
        .net()
        .ok_or_else(|| "network faults need namespaces".to_string())?;
    let cut = |a: &[i32], b: &[i32]| -> Result<(), String> {
        for x in a {
            for y in b {
                net.cut(*x, *y).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    };
    let mut all = ids.to_vec();
    all.shuffle(rng);
    match action {
        Action::Split => {
            let (minority, majority) = all.split_at(ids.len() / 2);
            cut(minority, majority)?;
            Ok(format!("network split {minority:?} | {majority:?}"))
        }
        Action::Bridge => {
            let (bridge, rest) = all.split_first().ok_or("no nodes")?;
            let (a, b) = rest.split_at(rest.len() / 2);
            cut(a, b)?;
            Ok(format!(
                "network split {a:?} | {b:?}, node {bridge} sees both"
            ))
        }
        _ => {
            let others: Vec<i32> = ids.iter().copied().filter(|o| *o != id).collect();
            cut(&[id], &others)?;
            Ok(format!("node {id} cut off from nodes {others:?}"))
        }
    }
}

async fn heal(ctx: &Ctx, cluster: &Arc<Mutex<LocalCluster>>, action: Action, id: i32) {
    let what = {
        let mut c = cluster.lock().unwrap_or_else(|p| p.into_inner());
        match action {
            Action::Kill | Action::PowerCut => match c.spawn(id) {
                Ok(()) => format!("restart node {id}"),
                Err(e) => format!("restart node {id} failed: {e}"),
            },
            Action::Pause => {
                c.resume(id);
                format!("SIGCONT node {id}")
            }
            Action::Isolate | Action::Split | Action::Bridge => match c.net().map(|n| n.heal()) {
                Some(Ok(())) | None => "network healed".to_string(),
                Some(Err(e)) => format!("network heal failed: {e}"),
            },
        }
    };
    ctx.recorder.record(Event::Fault {
        t: ctx.recorder.now(),
        what: what.clone(),
    });
    tracing::info!("nemesis: {what}");
    // the node listens again before the next fault (bounded)
    let addr = cluster
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .node(id)
        .map(|n| (n.host, n.port));
    if let Some(addr) = addr {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while tokio::time::Instant::now() < deadline {
            let connect = tokio::net::TcpStream::connect(addr);
            if let Ok(Ok(_)) = tokio::time::timeout(Duration::from_millis(500), connect).await {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
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
        assert!(Fault::parse_list("split-leader").is_err());
        assert_eq!(
            Fault::parse("isolate-controller").unwrap().action,
            Action::Isolate
        );
        assert!(Fault::parse_list("kill,explode")
            .unwrap_err()
            .contains("explode"));
    }
}
