//! The broker's side of the metadata quorum: the Raft node's thread
//! (`raft_manager`), the controller listener and the connections to the
//! voters (`transport`, `protocol`), the publisher that folds the committed
//! log into this node's image (`publisher`), a following broker's fetcher
//! (`follower`), the broker's registration and heartbeats (`lifecycle`)
//! and the migration of a single-node release's metadata (`migration`).

pub mod follower;
pub mod lifecycle;
pub mod migration;
pub mod node;
pub mod protocol;
pub mod publisher;
pub mod raft_manager;
pub mod service;
pub mod transport;

/// Runs a thread the node cannot live without (the Raft node, the metadata
/// publisher): if it panics, the process stops with the panic logged,
/// as Kafka halts on a fatal metadata error. Left alone, a node whose
/// quorum thread died stays up, answers clients and never learns another
/// change (found by `oxka verify`'s power cuts, docs/reliability.md).
pub(crate) fn halt_on_panic<F: FnOnce()>(thread: &str, f: F) {
    if std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).is_err() {
        tracing::error!(
            thread,
            "a thread of the metadata quorum panicked; stopping the process"
        );
        std::process::exit(1);
    }
}
