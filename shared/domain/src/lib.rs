//! stockguard's inventory rules, free of I/O: what an inbound event means, whether a cart can be
//! reserved, how counts and deltas combine, and when a delivery is a repeat.

pub mod amazon;
pub mod buffer;
pub mod channel;
pub mod compensation;
pub mod csv_lines;
pub mod decayed;
pub mod delay;
pub mod drift;
pub mod ebay;
pub mod error;
pub mod idempotency;
pub mod inbound;
pub mod inventory;
pub mod order;
pub mod order_polls;
pub mod outbound;
pub mod plan;
pub mod position;
pub mod recompute;
pub mod reservation;
pub mod reservation_plan;
pub mod shopify;
pub mod types;
pub mod velocity;
pub mod walmart;
pub mod wire;

pub use channel::ChannelKind;
pub use error::InvalidInput;
pub use inbound::{Command, Common, InboundEvent, ReservationRequest, SignalKind};
pub use outbound::Notification;
pub use position::Position;
pub use reservation::Shortfall;
pub use types::{ChannelName, EntityId, EventId, Line, Millis, Sku};
