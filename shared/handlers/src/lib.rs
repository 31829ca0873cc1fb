//! stockguard's Lambda glue: applying inbound events to the state table, SQS batches with partial
//! failures and dead letters, and the synchronous reservations API. Each function's `main` is a
//! few lines around one of these.

pub mod amazon_notifications;
pub mod apply;
pub mod batch;
pub mod buffers;
pub mod channel_skus;
pub mod channel_sync;
pub mod compensation;
pub mod deps;
mod effect;
pub mod error;
mod expiry;
pub mod functions;
pub mod http_api;
pub mod metrics;
pub mod order_polls;
pub mod orders;
pub mod reconcile;
pub mod records;
pub mod reservations;
pub mod runtime;
pub mod shopify_partner_events;
pub mod shopify_webhooks;
pub mod stock;
pub mod twin;

pub use apply::{Applied, apply_inbound};
pub use batch::handle_batch;
pub use deps::{Deps, Settings};
pub use effect::Inventory;
pub use error::ApplyError;
