//! The `detail` of every event on the bus, as types. `parse_inbound` decodes inbound details into
//! them and `Notification` builds published details from them, so the JSON Schemas generated from
//! them (`schemas/` and the schema registry in `template.yaml`, see [`schema`]) describe what the
//! code accepts and what it publishes. Doc comments here become the schemas' descriptions.

pub mod schema;

use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::inbound::SignalKind;
use crate::reservation::Shortfall;
use crate::types::{ChannelName, EntityId, EventId, Line, Sku};

/// A type that is the `detail` of one detail-type of the contract.
pub trait EventDetail: Serialize + DeserializeOwned + JsonSchema {
    const DETAIL_TYPE: &'static str;
    /// The `source` stockguard publishes it with; `None` for inbound events, which come from the
    /// producers' own sources.
    const SOURCE: Option<&'static str>;
}

/// Fields every inbound `detail` carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InboundCommon {
    /// Idempotency key. The same `event_id` with the same payload is applied once however often
    /// it is delivered; with a different payload it is refused (`idempotency_key_reused`).
    pub event_id: EventId,
    /// When it happened at the producer: an RFC 3339 timestamp with an offset, compared at
    /// millisecond precision.
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: String,
    /// Optional per (`source`, SKU) counter of the producer. An event with a new `event_id` whose
    /// `sequence` is at or below the last one applied is a replay: recorded, not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequence: Option<u64>,
}

/// The fields of a reservation request, shared by `ReservationRequested` and
/// `POST /v1/reservations`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationRequestFields {
    /// Identifier chosen by the checkout.
    pub reservation_id: EntityId,
    /// Channel name of the checkout, for example `storefront`.
    pub channel: ChannelName,
    /// 1 to 25 lines, each SKU at most once. Every line is reserved or none.
    #[schemars(length(min = 1, max = 25))]
    pub lines: Vec<Line>,
    /// How long the hold lasts, in seconds. Absent: 900, or 300 while an `add_to_cart_surge`
    /// signal is active on any line's SKU.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 3600))]
    pub ttl_seconds: Option<u32>,
}

/// Goods arrived: on hand goes up by `quantity`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockReceived {
    #[serde(flatten)]
    pub common: InboundCommon,
    pub sku: Sku,
    /// Units received.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub quantity: i64,
    /// Free text such as a purchase order number; checked, not stored, not a deduplication key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub reference: Option<String>,
}

/// A physical count: on hand as of `occurred_at`, plus the on-hand changes that occurred after it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockCounted {
    #[serde(flatten)]
    pub common: InboundCommon,
    pub sku: Sku,
    /// Units counted.
    #[schemars(range(min = 0, max = 1_000_000_000))]
    pub on_hand: i64,
}

/// Damage, shrinkage or a correction: on hand changes by `delta`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StockAdjusted {
    #[serde(flatten)]
    pub common: InboundCommon,
    pub sku: Sku,
    /// Units added (positive) or removed (negative); never 0.
    #[schemars(range(min = -1_000_000, max = 1_000_000), extend("not" = {"const": 0}))]
    pub delta: i64,
    /// Why, in free text; checked, not stored.
    #[schemars(length(min = 1, max = 256))]
    pub reason: String,
}

/// A checkout soft-reserves every line or none; answered with `ReservationAccepted` or
/// `ReservationRejected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationRequested {
    #[serde(flatten)]
    pub common: InboundCommon,
    #[serde(flatten)]
    pub request: ReservationRequestFields,
}

/// The checkout completed: its soft reservation becomes a hard one, atomically.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationConfirmed {
    #[serde(flatten)]
    pub common: InboundCommon,
    /// The reservation from `ReservationRequested` or `POST /v1/reservations`.
    pub reservation_id: EntityId,
    /// The order it becomes, which `OrderShipped` and `OrderCancelled` name.
    pub order_id: EntityId,
}

/// The checkout was abandoned or cancelled before payment: the held units go back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationReleased {
    #[serde(flatten)]
    pub common: InboundCommon,
    pub reservation_id: EntityId,
    /// Why, in free text; checked, not stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub reason: Option<String>,
}

/// An order taken without a reservation (a marketplace order): every line is hard-reserved. An
/// order is a fact and is never refused; a line short of stock publishes `OversellDetected`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderPlaced {
    #[serde(flatten)]
    pub common: InboundCommon,
    /// The order; one already recorded is not allocated again, whatever the `event_id`.
    pub order_id: EntityId,
    /// Channel name where the order was taken, for example `amazon`.
    pub channel: ChannelName,
    /// 1 or more lines, each SKU at most once; no upper limit (an order of more lines than one
    /// transaction holds applies in parts).
    #[schemars(length(min = 1))]
    pub lines: Vec<Line>,
}

/// Units left the warehouse: on hand and hard reserved go down.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderShipped {
    #[serde(flatten)]
    pub common: InboundCommon,
    /// An order from `OrderPlaced` or `ReservationConfirmed`.
    pub order_id: EntityId,
    /// 1 or more lines, each SKU at most once. Absent: every unit not yet shipped or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub lines: Option<Vec<Line>>,
}

/// An order, or part of it, will not ship: its hard reservation is released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OrderCancelled {
    #[serde(flatten)]
    pub common: InboundCommon,
    /// An order from `OrderPlaced` or `ReservationConfirmed`.
    pub order_id: EntityId,
    /// 1 or more lines, each SKU at most once. Absent: every unit not yet shipped or cancelled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1))]
    pub lines: Option<Vec<Line>>,
}

/// A customer return arrived; restocked units go back on hand.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReturnReceived {
    #[serde(flatten)]
    pub common: InboundCommon,
    /// The return; checked, not a deduplication key.
    pub return_id: EntityId,
    pub sku: Sku,
    /// Units returned.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub quantity: i64,
    /// Whether the units go back on hand.
    pub restock: bool,
    /// The order returned from; checked, not used.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub order_id: Option<EntityId>,
}

/// Something that predicts sales: it scales the SKU's dynamic buffers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DemandSignal {
    #[serde(flatten)]
    pub common: InboundCommon,
    pub sku: Sku,
    pub signal: SignalKind,
    /// Ratio to the baseline sales rate, finite and greater than 0; below 1 lowers the expected
    /// sales.
    #[schemars(extend("exclusiveMinimum" = 0))]
    pub strength: f64,
    /// When the signal stops counting (RFC 3339). Absent: one hour after `occurred_at`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: Option<String>,
}

/// The inbound event, API call or sweep that caused a position change.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Cause {
    /// The inbound `event_id`; `api:reserve:<id>`, `api:confirm:<id>` or `api:release:<id>` for
    /// the HTTP API; `sweep:expire:<id>` for the expiry sweep.
    pub event_id: String,
    /// The inbound detail-type; `ReservationExpired` for the expiry sweep.
    pub detail_type: String,
    /// The inbound `occurred_at`, or when the API call or sweep ran.
    #[schemars(extend("format" = "date-time"))]
    pub occurred_at: String,
}

/// A SKU's position changed. Keep the highest `version` per SKU: a version may arrive twice and
/// not every version is announced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct InventoryPositionChanged {
    pub sku: Sku,
    /// Units in stock.
    pub on_hand: i64,
    /// Units of recorded orders not yet shipped or cancelled.
    pub hard_reserved: i64,
    /// Units held by checkouts that are not yet released.
    pub soft_reserved: i64,
    /// `on_hand - hard_reserved - soft_reserved`; below zero only after a fact (an order, a
    /// count, an adjustment).
    pub available: i64,
    /// Per SKU, strictly increasing with every change.
    pub version: u64,
    /// When stockguard announced it (RFC 3339, UTC, milliseconds).
    #[schemars(extend("format" = "date-time"))]
    pub changed_at: String,
    /// What made the change.
    pub cause: Cause,
}

/// A reservation holds its units (from the event or the HTTP API).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationAccepted {
    pub reservation_id: String,
    /// The checkout's channel.
    pub channel: String,
    /// The units held.
    pub lines: Vec<Line>,
    /// When the hold stops blocking other checkouts (RFC 3339, UTC, milliseconds).
    #[schemars(extend("format" = "date-time"))]
    pub expires_at: String,
}

/// A reservation request found too few units; nothing was reserved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationRejected {
    pub reservation_id: String,
    pub channel: String,
    /// `insufficient_stock`.
    pub reason: String,
    /// Only the lines that did not fit.
    pub shortfalls: Vec<Shortfall>,
}

/// A lapsed hold was released.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ReservationExpired {
    pub reservation_id: String,
    pub channel: String,
    /// The units given back.
    pub lines: Vec<Line>,
}

/// An order was recorded for units that were not available; compensate the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OversellDetected {
    pub sku: Sku,
    /// The order that took units that were not there.
    pub order_id: String,
    /// Where the order was taken.
    pub channel: String,
    /// Units missing for this line (at least 1).
    pub shortfall: i64,
    /// When stockguard recorded the order (RFC 3339, UTC, milliseconds).
    #[schemars(extend("format" = "date-time"))]
    pub detected_at: String,
}

/// A channel acknowledged a quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelQuantityPushed {
    pub channel: String,
    pub sku: Sku,
    /// What the channel acknowledged it shows.
    pub quantity: i64,
    /// The position version it reflects.
    pub version: u64,
    /// From the `occurred_at` of the inbound event behind the newest change to the channel's
    /// acknowledgement; 0 when a buffer change caused the push.
    pub latency_ms: i64,
}

/// A push to a channel failed for good; the change sits in the channel's dead-letter queue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelSyncFailed {
    pub channel: String,
    pub sku: Sku,
    /// The channel's error, for example `shopify: HTTP 401: ...`.
    pub reason: String,
    /// Deliveries of the change so far.
    pub attempts: u32,
}

/// A channel's dynamic buffer for a SKU moved; the channel is pushed its new quantity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ChannelBufferChanged {
    pub channel: String,
    pub sku: Sku,
    /// Units the channel now holds back.
    pub buffer: i64,
    /// Units it held back before.
    pub previous: i64,
    /// What set the new buffer: `velocity_and_delay`, `signal`, `health`, `time_of_day`,
    /// `min_buffer`, `max_buffer`, `available`, `low_stock` or `no_demand`.
    pub reason: String,
}

/// Reconciliation found a channel showing the wrong quantity. It pushes `expected` at once when
/// the channel shows more; when it shows fewer (maybe an order not heard of yet), once a later
/// run finds the channel still showing the same past the channel's order grace.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct DriftDetected {
    pub channel: String,
    pub sku: Sku,
    /// What the channel should show.
    pub expected: i64,
    /// What it showed.
    pub reported: i64,
    /// `reported - expected`.
    pub drift: i64,
}

/// What was done about an oversell (`OversellDetected`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct OversellCompensated {
    pub sku: Sku,
    /// The order acted on: the one cancelled, else the one reported short.
    pub order_id: String,
    /// That order's channel.
    pub channel: String,
    /// `cancel` (the order was cancelled through its channel), `wait` (inbound stock covers it
    /// in time; decided again at its deadline), `notify_only` (the policy says so, or nothing can
    /// be cancelled there) or `restocked` (stock arrived before compensation ran, or before a
    /// wait's deadline).
    pub action: String,
    /// Units the action covers.
    pub units: i64,
}

macro_rules! event_details {
    ($($source:expr => [$($ty:ident),+ $(,)?]),+ $(,)?) => {
        $($(
            impl EventDetail for $ty {
                const DETAIL_TYPE: &'static str = stringify!($ty);
                const SOURCE: Option<&'static str> = $source;
            }
        )+)+

        /// Every event of the contract: the inbound ones, then the published ones by source.
        pub fn events() -> Vec<schema::EventType> {
            vec![$($(schema::EventType::of::<$ty>()),+),+]
        }
    };
}

event_details! {
    None => [
        StockReceived, StockCounted, StockAdjusted, ReservationRequested, ReservationConfirmed,
        ReservationReleased, OrderPlaced, OrderShipped, OrderCancelled, ReturnReceived,
        DemandSignal,
    ],
    Some(crate::outbound::SOURCE_CORE) => [
        InventoryPositionChanged, ReservationAccepted, ReservationRejected, ReservationExpired,
        OversellDetected, ChannelBufferChanged,
    ],
    Some(crate::outbound::SOURCE_SYNC) => [ChannelQuantityPushed, ChannelSyncFailed],
    Some(crate::outbound::SOURCE_OPS) => [DriftDetected, OversellCompensated],
}
