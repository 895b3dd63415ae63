//! The oxka broker: Kafka's wire protocol over the `oxka-log` storage engine.
//!
//! Data path: [`network`] reads frames, [`request`] decodes and dispatches to
//! one module per API in [`handlers`], which go through the
//! [`replica_manager::ReplicaManager`] (partitions, logs, high watermark) and
//! the [`controller::Controller`] (topic metadata). [`server::Broker`] wires
//! it together and owns start-up and shutdown.

pub mod authorizer;
pub mod config;
pub mod console_host;
pub mod controller;
/// The coordinators live in `oxka-coordinator`; the old path still works.
pub use oxka_coordinator as coordinator;
pub mod coordinator_host;
pub mod group_lag;
pub mod handlers;
pub mod http;
pub mod internal_client;
pub mod limits;
pub mod memory;
pub mod metadata;
pub mod metrics;
pub mod network;
pub mod quorum;
pub mod quota;
pub mod rate;
pub mod replica_manager;
pub mod replication;
pub mod request;
pub mod server;

pub use config::KafkaConfig;
pub use server::{Broker, BrokerError};
