//! What a voter answers on its controller listener: forwarded commands
//! (decided if it is the active controller), metadata log fetches from
//! brokers that follow the log, and DescribeQuorum.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use oxka_controller::quorum::{Committed, MetadataLog};

use super::protocol::{MetadataChunk, Request, Response};
use super::raft_manager::CommitSignal;
use super::transport::RequestHandler;
use crate::controller::Controller;

/// A fetch returns at most about this many bytes of batches.
const FETCH_BYTES: usize = 4 << 20;
/// Longest a fetch waits for news.
const MAX_FETCH_WAIT: Duration = Duration::from_secs(2);

pub struct ControllerService {
    pub controller: Arc<Controller>,
    pub log: MetadataLog,
    pub commit: Arc<CommitSignal>,
}

impl RequestHandler for ControllerService {
    fn handle(
        self: Arc<Self>,
        _from: i32,
        req: Request,
    ) -> Pin<Box<dyn Future<Output = Response> + Send>> {
        Box::pin(async move {
            let me = self.clone();
            match tokio::task::spawn_blocking(move || me.answer(req)).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "answering a controller request failed");
                    Response::NotController { leader: None }
                }
            }
        })
    }
}

impl ControllerService {
    fn answer(&self, req: Request) -> Response {
        match req {
            Request::Command { cmd, timeout_ms } => {
                let timeout =
                    Duration::from_millis(timeout_ms).min(crate::controller::DEFAULT_TIMEOUT);
                self.controller.execute(cmd, Instant::now() + timeout)
            }
            Request::FetchMetadata {
                replica_id,
                after,
                wait_ms,
            } => {
                self.controller.note_observer(replica_id, after);
                let wait = Duration::from_millis(wait_ms).min(MAX_FETCH_WAIT);
                self.commit.wait_past(after, wait);
                let (snapshot, entries) = match self.log.committed_after(after, FETCH_BYTES) {
                    Committed::Entries(e) => (None, e),
                    Committed::Snapshot { .. } => {
                        let s = self.log.snapshot();
                        let from = s.index;
                        let rest = match self.log.committed_after(from, FETCH_BYTES) {
                            Committed::Entries(e) => e,
                            Committed::Snapshot { .. } => Vec::new(),
                        };
                        (Some(s), rest)
                    }
                };
                Response::Metadata(MetadataChunk {
                    leader: self.controller.active_controller(),
                    commit: self.log.commit_index(),
                    snapshot,
                    entries,
                })
            }
            Request::DescribeQuorum => {
                if self.controller.active_controller() == Some(self.controller.config().node_id) {
                    Response::Quorum(self.controller.local_quorum_description())
                } else {
                    Response::NotController {
                        leader: self.controller.active_controller(),
                    }
                }
            }
        }
    }
}
