//! The sync-gap audit (contract section 7): a seller's own orders replayed under 15-minute batch
//! sync with a static buffer, event-driven sync with the same buffer, and event-driven sync with
//! the dynamic buffers of section 5, computed by the domain crate's own rules.
//!
//! Pure: files are read and written by the caller; this crate takes their text and returns what
//! to write.

pub mod import;
pub mod input;
pub mod model;
pub mod outcome;
pub mod report;
pub mod scenario;
pub mod settings;
pub mod sim;
pub mod summary;

pub use model::{AuditInput, Channel, Order, OrderRow, Restock, RowError};
pub use outcome::{AuditOutcome, Strategy};
pub use settings::{Costs, Delay, Settings};
