//! Coordinators: broker-side state machines that clients find through
//! FindCoordinator. Today the group coordinator; the transaction
//! coordinator joins it with the transactions issue.

pub mod group;

pub use group::GroupCoordinator;
