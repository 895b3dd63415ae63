//! The controller listener and the connections to the voters: Raft's
//! messages one way, requests to the active controller and their answers.
//! Every node dials each voter (itself excepted) once and keeps the
//! connection, redialling after a failure; a voter's listener takes Raft
//! messages and requests from whoever dialled it and answers on the same
//! connection. Queues are bounded: Raft messages beyond them are dropped
//! (Raft retries), requests fail at once.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use oxka_controller::quorum::WireMessage;
use parking_lot::Mutex;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot, watch};

use super::protocol::{encode, read_frame, Frame, Request, Response};
use super::raft_manager::{RaftManager, RaftTransport};

const PEER_QUEUE: usize = 1024;
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
const REDIAL_BACKOFF: Duration = Duration::from_millis(200);
/// Requests awaiting an answer on one node; more fail at once.
const MAX_PENDING: usize = 4096;
/// Requests from one peer being answered at once (each may hold a
/// blocking thread while it waits for the quorum).
const IN_FLIGHT_PER_PEER: usize = 64;

#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("no connection to node {0}")]
    Unreachable(i32),
    #[error("node {0} did not answer in time")]
    Timeout(i32),
    #[error("too many requests in flight to the controllers")]
    Busy,
}

/// Answers requests that reach this node's controller listener.
pub trait RequestHandler: Send + Sync {
    fn handle(
        self: Arc<Self>,
        from: i32,
        req: Request,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Response> + Send>>;
}

struct Peer {
    tx: mpsc::Sender<Frame>,
}

pub struct ControllerNet {
    node_id: i32,
    cluster_id: String,
    peers: HashMap<i32, Peer>,
    /// Requests awaiting an answer: the node asked, and where the answer goes.
    pending: Mutex<HashMap<u64, (i32, oneshot::Sender<Response>)>>,
    next_id: AtomicU64,
    raft: OnceLock<Arc<RaftManager>>,
    handler: OnceLock<Arc<dyn RequestHandler>>,
    runtime: tokio::runtime::Handle,
    /// Set once a majority of the voters refused this node as one of
    /// another cluster (one refusal alone may be the odd node out).
    refused: watch::Sender<Option<String>>,
    refused_by: Mutex<std::collections::BTreeSet<i32>>,
    voter_count: usize,
}

impl ControllerNet {
    /// Starts a connection task per voter in `voters` (id, "host:port")
    /// other than this node.
    pub fn start(
        node_id: i32,
        cluster_id: String,
        voters: &[(i32, String)],
        shutdown: watch::Receiver<bool>,
    ) -> Arc<ControllerNet> {
        let mut peers = HashMap::new();
        let mut rxs = Vec::new();
        for (id, addr) in voters.iter().filter(|(id, _)| *id != node_id) {
            let (tx, rx) = mpsc::channel(PEER_QUEUE);
            peers.insert(*id, Peer { tx });
            rxs.push((*id, addr.clone(), rx));
        }
        let net = Arc::new(ControllerNet {
            node_id,
            cluster_id,
            peers,
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            raft: OnceLock::new(),
            handler: OnceLock::new(),
            runtime: tokio::runtime::Handle::current(),
            refused: watch::channel(None).0,
            refused_by: Mutex::new(Default::default()),
            voter_count: voters.len(),
        });
        for (id, addr, rx) in rxs {
            tokio::spawn(peer_task(net.clone(), id, addr, rx, shutdown.clone()));
        }
        net
    }

    pub fn set_raft(&self, raft: Arc<RaftManager>) {
        let _ = self.raft.set(raft);
    }

    pub fn set_handler(&self, handler: Arc<dyn RequestHandler>) {
        let _ = self.handler.set(handler);
    }

    pub fn refused(&self) -> watch::Receiver<Option<String>> {
        self.refused.subscribe()
    }

    /// Sends a request to node `to` and waits for its answer.
    pub async fn request(
        &self,
        to: i32,
        body: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let peer = self.peers.get(&to).ok_or(NetError::Unreachable(to))?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        {
            let mut p = self.pending.lock();
            if p.len() >= MAX_PENDING {
                return Err(NetError::Busy);
            }
            p.insert(id, (to, tx));
        }
        let sent = peer.tx.try_send(Frame::Request { id, body }).is_ok();
        let result = if !sent {
            Err(NetError::Unreachable(to))
        } else {
            match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(r)) => Ok(r),
                Ok(Err(_)) => Err(NetError::Unreachable(to)),
                Err(_) => Err(NetError::Timeout(to)),
            }
        };
        self.pending.lock().remove(&id);
        result
    }

    /// [`Self::request`] for threads outside the runtime (the controller's
    /// callers are synchronous).
    pub fn request_blocking(
        self: &Arc<Self>,
        to: i32,
        body: Request,
        timeout: Duration,
    ) -> Result<Response, NetError> {
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let me = self.clone();
        self.runtime.spawn(async move {
            let _ = tx.send(me.request(to, body, timeout).await);
        });
        rx.recv_timeout(timeout + Duration::from_secs(1))
            .unwrap_or(Err(NetError::Timeout(to)))
    }

    /// A voter refused this node: a majority of them doing so means this
    /// node is the one of another cluster.
    fn note_refusal(&self, voter: i32, reason: String) {
        let mut by = self.refused_by.lock();
        by.insert(voter);
        if by.len() > self.voter_count / 2 {
            let _ = self.refused.send(Some(format!(
                "this node's cluster.id (meta.properties) is not the cluster's: voters {by:?} refused it ({reason})"
            )));
        }
    }

    fn complete(&self, id: u64, resp: Response) {
        if let Some((_, tx)) = self.pending.lock().remove(&id) {
            let _ = tx.send(resp);
        }
    }

    /// The connection to `node` broke: what was asked of it will not be
    /// answered, so its callers learn at once (and ask another node)
    /// instead of waiting out their timeouts.
    fn fail_pending_to(&self, node: i32) {
        self.pending.lock().retain(|_, (to, _)| *to != node);
    }

    /// Serves the controller listener until shutdown.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            tokio::select! {
                _ = shutdown.changed() => break,
                r = listener.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        tokio::spawn(self.clone().serve_connection(stream, shutdown.clone()));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "controller listener accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                }
            }
        }
    }

    async fn serve_connection(
        self: Arc<Self>,
        stream: TcpStream,
        mut shutdown: watch::Receiver<bool>,
    ) {
        let (mut r, mut w) = stream.into_split();
        let from = match read_frame(&mut r).await {
            Ok(Some(Frame::Hello {
                node_id,
                cluster_id,
            })) => {
                if cluster_id != self.cluster_id {
                    let reason = format!(
                        "node {node_id} belongs to cluster {cluster_id}, this node ({}) to cluster {}",
                        self.node_id, self.cluster_id
                    );
                    tracing::error!("refused a controller connection: {reason}");
                    let _ = w.write_all(&encode(&Frame::Refused { reason })).await;
                    return;
                }
                node_id
            }
            _ => return,
        };
        let (tx, mut rx) = mpsc::channel::<Frame>(PEER_QUEUE);
        let in_flight = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_PER_PEER));
        let writer = tokio::spawn(async move {
            while let Some(f) = rx.recv().await {
                if w.write_all(&encode(&f)).await.is_err() {
                    break;
                }
            }
        });
        loop {
            let frame = tokio::select! {
                _ = shutdown.changed() => break,
                f = read_frame(&mut r) => f,
            };
            match frame {
                Ok(Some(Frame::Raft(m))) => {
                    if let Some(raft) = self.raft.get() {
                        raft.deliver(m);
                    }
                }
                Ok(Some(Frame::Request { id, body })) => {
                    let Some(handler) = self.handler.get().cloned() else {
                        continue;
                    };
                    // at most IN_FLIGHT_PER_PEER answered at once; past it
                    // this connection is not read until one finishes
                    let Ok(permit) = in_flight.clone().acquire_owned().await else {
                        break;
                    };
                    let tx = tx.clone();
                    tokio::spawn(async move {
                        let body = handler.handle(from, body).await;
                        let _ = tx.send(Frame::Response { id, body }).await;
                        drop(permit);
                    });
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => break,
            }
        }
        writer.abort();
    }
}

impl RaftTransport for ControllerNet {
    fn send(&self, msg: WireMessage) -> bool {
        match self.peers.get(&(msg.to as i32)) {
            Some(p) => p.tx.try_send(Frame::Raft(msg)).is_ok(),
            None => false,
        }
    }
}

/// One outgoing connection to a voter, redialled until shutdown.
async fn peer_task(
    net: Arc<ControllerNet>,
    id: i32,
    addr: String,
    mut rx: mpsc::Receiver<Frame>,
    mut shutdown: watch::Receiver<bool>,
) {
    loop {
        if *shutdown.borrow() {
            return;
        }
        let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(&addr)).await {
            Ok(Ok(s)) => s,
            _ => {
                // Raft messages queued meanwhile are stale; drop them, but
                // fail requests at once rather than let them time out.
                while let Ok(f) = rx.try_recv() {
                    fail_unsent(&net, f);
                }
                tokio::select! {
                    _ = shutdown.changed() => return,
                    _ = tokio::time::sleep(REDIAL_BACKOFF) => {}
                }
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let (mut r, mut w) = stream.into_split();
        let hello = Frame::Hello {
            node_id: net.node_id,
            cluster_id: net.cluster_id.clone(),
        };
        if w.write_all(&encode(&hello)).await.is_err() {
            continue;
        }
        let reader_net = net.clone();
        let mut reader = tokio::spawn(async move {
            loop {
                match read_frame(&mut r).await {
                    Ok(Some(Frame::Response { id, body })) => reader_net.complete(id, body),
                    Ok(Some(Frame::Refused { reason })) => {
                        tracing::error!(node = id, "refused by voter: {reason}");
                        reader_net.note_refusal(id, reason);
                        return;
                    }
                    Ok(Some(_)) => {}
                    Ok(None) | Err(_) => return,
                }
            }
        });
        loop {
            tokio::select! {
                _ = shutdown.changed() => { reader.abort(); return; }
                _ = &mut reader => {
                    net.fail_pending_to(id);
                    break;
                }
                f = rx.recv() => {
                    let Some(f) = f else { reader.abort(); return; };
                    let snapshot_to = match &f {
                        Frame::Raft(m) if m.is_snapshot() => Some(m.to),
                        _ => None,
                    };
                    let ok = w.write_all(&encode(&f)).await.is_ok();
                    if let (Some(to), Some(raft)) = (snapshot_to, net.raft.get()) {
                        raft.report_snapshot(to, ok);
                    }
                    if !ok {
                        fail_unsent(&net, f);
                        net.fail_pending_to(id);
                        reader.abort();
                        break;
                    }
                }
            }
        }
        tokio::select! {
            _ = shutdown.changed() => return,
            _ = tokio::time::sleep(REDIAL_BACKOFF) => {}
        }
    }
}

fn fail_unsent(net: &ControllerNet, f: Frame) {
    if let Frame::Request { id, .. } = f {
        net.pending.lock().remove(&id);
    }
}
