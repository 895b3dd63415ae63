//! One verification run: (start a local cluster,) create the topic, run
//! the workload with the nemesis, heal, read everything back, check.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use oxka_client::admin::NewTopic;
use oxka_client::{Admin, ClientConfig, Consumer, TopicPartition};
use serde::Serialize;
use thiserror::Error;
use tokio::task::JoinSet;

use crate::check::{check, Analysis, Expect, FINAL_READER};
use crate::history::{Event, Recorder};
use crate::nemesis::{self, Action, LocalCluster, NemesisReport, NemesisSpec};
use crate::workload::append::{reader_config, record_read, spawn_producers, spawn_readers};
use crate::workload::group::{self, GroupSpec};
use crate::workload::txn;
use crate::workload::{Ctx, ProduceSpec};

#[derive(Debug, Error)]
pub enum VerifyError {
    #[error(transparent)]
    Cluster(#[from] nemesis::ClusterError),
    #[error("{0}")]
    Client(#[from] oxka_client::Error),
    #[error("{0}")]
    Setup(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Workload {
    Append,
    Group,
    Txn,
}

impl Workload {
    pub fn name(&self) -> &'static str {
        match self {
            Workload::Append => "append",
            Workload::Group => "group",
            Workload::Txn => "txn",
        }
    }

    pub fn parse(s: &str) -> Option<Workload> {
        match s {
            "append" => Some(Workload::Append),
            "group" => Some(Workload::Group),
            "txn" => Some(Workload::Txn),
            _ => None,
        }
    }
}

/// A local cluster to start (and attack).
#[derive(Debug, Clone)]
pub struct ClusterSpec {
    pub nodes: usize,
    pub bin: PathBuf,
    pub dir: PathBuf,
    pub keep: bool,
    /// `key=value` broker settings for every node.
    pub settings: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RunSpec {
    pub workload: Workload,
    pub client: ClientConfig,
    pub topic: Option<String>,
    pub partitions: i32,
    /// -1: the broker's default (3 at most on a local cluster).
    pub replication_factor: i16,
    pub min_insync_replicas: Option<u32>,
    pub produce: ProduceSpec,
    pub readers: u32,
    pub group: GroupSpec,
    pub duration: Duration,
    pub cluster: Option<ClusterSpec>,
    pub nemesis: Option<NemesisSpec>,
    pub unclean: bool,
    pub seed: u64,
    /// Progress lines on stderr.
    pub progress: bool,
}

/// What a run did and found.
#[derive(Debug, Serialize)]
pub struct RunReport {
    pub workload: Workload,
    pub topic: String,
    pub seed: u64,
    pub duration_s: f64,
    pub nodes: Option<usize>,
    pub expect: Expect,
    pub faults_injected: u64,
    /// Faults asked for but not possible here (network faults without root).
    pub faults_skipped: Vec<String>,
    pub node_crashes: Vec<String>,
    /// Every fault with its time, to read anomalies against.
    pub faults: Vec<Event>,
    pub analysis: Analysis,
    pub interrupted: bool,
    #[serde(skip)]
    pub history: Vec<Event>,
}

impl RunReport {
    /// Anomalies plus nodes that crashed by themselves.
    pub fn failed(&self) -> bool {
        self.analysis.failures() > 0 || !self.node_crashes.is_empty()
    }
}

/// Runs `spec` until its duration passes or `interrupt` resolves.
pub async fn run(
    spec: RunSpec,
    interrupt: impl std::future::Future<Output = ()>,
) -> Result<RunReport, VerifyError> {
    let started = Instant::now();
    let mut client = spec.client.clone();
    // network faults need namespaces, which need root: without, they are
    // skipped (said on stderr and in the report), the others still run
    let mut nemesis_spec = spec.nemesis.clone();
    let mut skipped = Vec::new();
    let namespaces = match &mut nemesis_spec {
        Some(n) if n.faults.iter().any(|f| f.action.is_network()) => {
            match nemesis::netns::available() {
                Ok(()) => true,
                Err(e) => {
                    skipped = n
                        .faults
                        .iter()
                        .filter(|f| f.action.is_network())
                        .map(|f| f.name())
                        .collect();
                    n.faults.retain(|f| !f.action.is_network());
                    eprintln!("warning: {e}: the network faults are left out");
                    false
                }
            }
        }
        _ => false,
    };
    // power cuts need a FUSE mount (root): the same
    let lossy = match &mut nemesis_spec {
        Some(n) if n.faults.iter().any(|f| f.action == Action::PowerCut) => {
            match oxka_lossyfs::fuse_available() {
                Ok(()) => true,
                Err(e) => {
                    skipped.extend(
                        n.faults
                            .iter()
                            .filter(|f| f.action == Action::PowerCut)
                            .map(|f| f.name()),
                    );
                    n.faults.retain(|f| f.action != Action::PowerCut);
                    eprintln!("warning: power cuts need a FUSE mount: {e}: they are left out");
                    false
                }
            }
        }
        _ => false,
    };
    let cluster = match &spec.cluster {
        Some(c) => {
            let lc = LocalCluster::start(
                &c.bin,
                &c.dir,
                c.nodes,
                &c.settings,
                c.keep,
                namespaces,
                lossy,
            )?;
            client.set("bootstrap.servers", lc.bootstrap());
            if spec.progress {
                eprintln!(
                    "started {} node(s) in {} (logs node-N.log)",
                    c.nodes,
                    lc.root().display()
                );
            }
            Some(Arc::new(Mutex::new(lc)))
        }
        None => None,
    };
    if spec.nemesis.is_some() && cluster.is_none() {
        return Err(VerifyError::Setup(
            "--nemesis needs --cluster N: faults are injected into nodes this command starts"
                .into(),
        ));
    }
    let recorder = Arc::new(Recorder::new());
    let stop = Arc::new(AtomicBool::new(false));
    let nodes = spec.cluster.as_ref().map(|c| c.nodes);
    let work = body(
        &spec,
        client,
        nemesis_spec,
        cluster.clone(),
        recorder.clone(),
        stop.clone(),
        started,
    );
    // an interrupt (Ctrl-C, SIGTERM) at any stage ends the run; the local
    // cluster goes either way, whatever task still holds it
    tokio::pin!(interrupt);
    let outcome = tokio::select! {
        r = work => Some(r),
        _ = &mut interrupt => None,
    };
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(c) = &cluster {
        c.lock().unwrap_or_else(|p| p.into_inner()).shutdown();
    }
    let (topic, nemesis_report, interrupted) = match outcome {
        Some(r) => {
            let (topic, n) = r?;
            (topic, n, false)
        }
        None => (String::new(), NemesisReport::default(), true),
    };
    Ok(report(
        &spec,
        skipped,
        topic,
        started,
        nodes,
        nemesis_report,
        recorder.take(),
        interrupted,
    ))
}

/// Everything between starting the nodes and stopping them: the topic,
/// the workload with the nemesis, healing, the final read.
async fn body(
    spec: &RunSpec,
    client: ClientConfig,
    nemesis_spec: Option<NemesisSpec>,
    cluster: Option<Arc<Mutex<LocalCluster>>>,
    recorder: Arc<Recorder>,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Result<(String, NemesisReport), VerifyError> {
    let admin = Admin::new(&client)?;
    let nodes = spec.cluster.as_ref().map(|c| c.nodes);
    wait_brokers(&admin, nodes.unwrap_or(1), Duration::from_secs(60)).await?;
    let topic = spec.topic.clone().unwrap_or_else(|| {
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("oxka-verify-{}", stamp % 1_000_000_000)
    });
    let rf = match (spec.replication_factor, nodes) {
        (-1, Some(n)) => n.min(3) as i16,
        (rf, _) => rf,
    };
    let mut new = NewTopic::new(topic.clone(), spec.partitions, rf);
    if let Some(m) = spec.min_insync_replicas {
        new = new.config("min.insync.replicas", m.to_string());
    }
    if spec.unclean {
        new = new.config("unclean.leader.election.enable", "true");
    }
    admin.create_topic(new).await.or_else(|e| match &e {
        oxka_client::Error::Kafka { code, .. } if code.name() == "TOPIC_ALREADY_EXISTS" => Ok(()),
        _ => Err(e),
    })?;
    wait_leaders(&admin, &topic, false, Duration::from_secs(60)).await?;

    let ctx = Ctx {
        client: client.clone(),
        topic: topic.clone(),
        partitions: spec.partitions,
        recorder: recorder.clone(),
        stop: stop.clone(),
        seed: spec.seed,
    };
    let mut tasks = JoinSet::new();
    match spec.workload {
        Workload::Append => {
            spawn_producers(&ctx, &spec.produce, &mut tasks);
            spawn_readers(&ctx, spec.readers, false, &mut tasks);
        }
        Workload::Group => {
            spawn_producers(&ctx, &spec.produce, &mut tasks);
            group::spawn(&ctx, &spec.group, &mut tasks);
        }
        Workload::Txn => {
            txn::spawn_producers(&ctx, &spec.produce, &mut tasks);
            spawn_readers(&ctx, spec.readers, true, &mut tasks);
        }
    }
    let nemesis_task = match (&nemesis_spec, &cluster) {
        (Some(n), Some(c)) => Some(tokio::spawn(nemesis::run(
            ctx.clone(),
            n.clone(),
            c.clone(),
            Admin::new(&client)?,
        ))),
        _ => None,
    };

    // the run itself, with progress
    let end = tokio::time::Instant::now() + spec.duration;
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = tokio::time::sleep_until(end) => break,
            _ = tick.tick() => {
                if spec.progress {
                    eprint!("\r{:>4}s  {} events recorded ", started.elapsed().as_secs(), recorder.len());
                }
            }
        }
    }
    if spec.progress {
        eprintln!();
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let nemesis_report = match nemesis_task {
        Some(t) => t.await.unwrap_or_default(),
        None => NemesisReport::default(),
    };
    // the clients finish what they have in flight (bounded by their
    // delivery timeout); then abandoned
    let drain = tokio::time::timeout(Duration::from_secs(45), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    if drain.is_err() {
        tasks.abort_all();
    }

    // heal and read everything back
    if spec.progress {
        eprintln!("faults healed; waiting for every partition's replicas, then reading back");
    }
    let _ = wait_leaders(&admin, &topic, true, Duration::from_secs(60)).await;
    let read_committed = spec.workload == Workload::Txn;
    final_read(&ctx, &admin, read_committed, Duration::from_secs(120)).await;
    Ok((topic, nemesis_report))
}

#[allow(clippy::too_many_arguments)]
fn report(
    spec: &RunSpec,
    skipped: Vec<String>,
    topic: String,
    started: Instant,
    nodes: Option<usize>,
    nemesis: NemesisReport,
    history: Vec<Event>,
    interrupted: bool,
) -> RunReport {
    let acks_all = matches!(spec.produce.acks.as_str(), "all" | "-1");
    let power_cuts = spec
        .nemesis
        .as_ref()
        .is_some_and(|n| n.faults.iter().any(|f| f.action == Action::PowerCut));
    let expect = Expect {
        acks_all,
        idempotent: acks_all,
        unclean: spec.unclean,
        unsynced_loss: power_cuts && spec.min_insync_replicas.unwrap_or(1) < 2,
    };
    let analysis = check(&history, expect);
    RunReport {
        workload: spec.workload,
        topic,
        seed: spec.seed,
        duration_s: started.elapsed().as_secs_f64(),
        nodes,
        expect,
        faults_injected: nemesis.injected,
        faults_skipped: skipped,
        node_crashes: nemesis.node_crashes,
        faults: history
            .iter()
            .filter(|e| matches!(e, Event::Fault { .. }))
            .cloned()
            .collect(),
        analysis,
        interrupted,
        history,
    }
}

async fn wait_brokers(admin: &Admin, n: usize, timeout: Duration) -> Result<(), VerifyError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), admin.metadata()).await {
            Ok(Ok(m)) if m.brokers.len() >= n => return Ok(()),
            Ok(Ok(m)) => last = format!("{} of {n} brokers registered", m.brokers.len()),
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "metadata request timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(VerifyError::Setup(format!(
        "the cluster did not come up within {timeout:?}: {last}"
    )))
}

/// Until every partition has a leader (and, with `full`, every replica in
/// its ISR).
async fn wait_leaders(
    admin: &Admin,
    topic: &str,
    full: bool,
    timeout: Duration,
) -> Result<(), VerifyError> {
    let deadline = Instant::now() + timeout;
    let mut last = String::from("no answer");
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(5), admin.describe_topic(topic)).await {
            Ok(Ok(t)) => {
                let ready = !t.partitions.is_empty()
                    && t.partitions
                        .iter()
                        .all(|p| p.leader >= 0 && (!full || p.isr.len() >= p.replicas.len()));
                if ready {
                    return Ok(());
                }
                last = format!(
                    "partitions (leader, isr): {:?}",
                    t.partitions
                        .iter()
                        .map(|p| (p.id, p.leader, p.isr.clone()))
                        .collect::<Vec<_>>()
                );
            }
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "metadata request timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    Err(VerifyError::Setup(format!(
        "topic {topic} not ready within {timeout:?}: {last}"
    )))
}

/// Reads every partition from its start to its high watermark with a new
/// consumer (reader `final`), recording each record and, per partition,
/// whether the read reached the end.
async fn final_read(ctx: &Ctx, admin: &Admin, read_committed: bool, timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let mut ends: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
    while Instant::now() < deadline {
        if let Ok(Ok(offs)) =
            tokio::time::timeout(Duration::from_secs(10), admin.topic_offsets(&ctx.topic)).await
        {
            if offs.len() == ctx.partitions as usize && offs.iter().all(|o| o.1 >= 0 && o.2 >= 0) {
                ends = offs.into_iter().map(|(p, lo, hi)| (p, (lo, hi))).collect();
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut reached: BTreeMap<i32, bool> =
        ends.iter().map(|(p, (lo, hi))| (*p, lo >= hi)).collect();
    if let Ok(mut consumer) = Consumer::new(&reader_config(ctx, FINAL_READER, read_committed)) {
        let tps: Vec<TopicPartition> = ends
            .keys()
            .map(|p| TopicPartition::new(ctx.topic.clone(), *p))
            .collect();
        if consumer.assign(tps.clone()).is_ok() {
            for tp in &tps {
                let _ = consumer.seek(tp, ends[&tp.partition].0);
            }
            while Instant::now() < deadline && reached.values().any(|r| !r) {
                match consumer.poll(Duration::from_millis(500)).await {
                    Ok(records) => {
                        let t = ctx.recorder.now();
                        for r in records {
                            let end = ends.get(&r.partition).map_or(0, |e| e.1);
                            if r.offset >= end {
                                continue; // past the end taken above
                            }
                            if r.offset + 1 >= end {
                                reached.insert(r.partition, true);
                            }
                            record_read(ctx, t, FINAL_READER, 0, read_committed, &r);
                        }
                        for tp in &tps {
                            if consumer
                                .position(tp)
                                .is_some_and(|p| p >= ends[&tp.partition].1)
                            {
                                reached.insert(tp.partition, true);
                            }
                        }
                    }
                    Err(e) => {
                        tracing::debug!("final read: {e}");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                }
            }
        }
    }
    let t = ctx.recorder.now();
    for p in 0..ctx.partitions {
        let (start, end) = ends.get(&p).copied().unwrap_or((-1, -1));
        ctx.recorder.record(Event::FinalRead {
            t,
            partition: p,
            start,
            end,
            complete: reached.get(&p).copied().unwrap_or(false),
        });
    }
}
