//! The metadata quorum (Kafka's KRaft): the metadata records, the
//! `MetadataImage` every node folds them into, the Raft-replicated
//! `__cluster_metadata` log, and the active controller's decisions
//! (replica placement). No network and no clock of its own: time, messages
//! and I/O results come in as inputs, so a simulator can drive a cluster.

pub mod acl;
pub mod image;
pub mod placement;
pub mod quorum;
pub mod quota;
pub mod records;
