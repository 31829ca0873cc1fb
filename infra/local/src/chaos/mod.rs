//! `make chaos`: the whole local stack under a mixed, seeded load with faults injected at every
//! layer, then one expiry sweep and two reconciliations, then every invariant checked against the
//! load generator's own ledger.
//!
//! - [`queue`]: the queue layer's faults, applied by the local runtime's pollers;
//! - [`ledger`]: what the generator did and what the contract says must follow;
//! - [`check`]: the final state held against the ledger (pure);
//! - [`run`]: the stack, the load, the faults and the observations.

pub mod check;
pub mod ledger;
pub mod queue;
pub mod run;

pub use queue::{QueueFaultCounts, QueueFaultTally, QueueFaults};
