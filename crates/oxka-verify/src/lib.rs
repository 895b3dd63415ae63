//! `oxka verify`: a safety checker for Kafka-compatible clusters.
//!
//! Workloads drive a cluster through the Kafka protocol (`oxka-client`)
//! and record what the clients saw ([`history`]); a [`nemesis`] injects
//! faults meanwhile into a local cluster it started; after the faults
//! heal, every partition is read back and [`check()`] looks for anomalies:
//! lost or duplicated writes, reordering, an offset holding two values,
//! read_committed seeing an aborted or partial transaction, a consumer
//! group resuming below its commit or skipping records, reads of values
//! nobody wrote.
//!
//! The checker is pure (a history in, an analysis out), so it is tested on
//! recorded histories holding each anomaly; it cannot pass a bad history.

pub mod check;
pub mod history;
pub mod nemesis;
pub mod report;
pub mod run;
pub mod workload;

pub use check::{check, Analysis, Anomaly, Expect, Kind};
pub use history::{Event, Outcome, Recorder, TxnOutcome, TxnWrite};
pub use run::{run, ClusterSpec, RunReport, RunSpec, VerifyError, Workload};
