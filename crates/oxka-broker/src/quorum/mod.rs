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
