//! Coordinators: broker-side state machines that clients find through
//! FindCoordinator: the group coordinator and the transaction coordinator.

pub mod group;
pub mod txn;

pub use group::GroupCoordinator;
pub use txn::TransactionCoordinator;
