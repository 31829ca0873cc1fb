//! The `stockguard.core` events of the contract.

use serde::Serialize;
use serde_json::Value;

use crate::position::Position;
use crate::reservation::Shortfall;
use crate::types::{Line, Millis, Sku, format_timestamp};

pub const SOURCE_CORE: &str = "stockguard.core";
pub const SOURCE_SYNC: &str = "stockguard.sync";
pub const SOURCE_OPS: &str = "stockguard.ops";

/// The inbound event (or API call) that caused a change.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cause {
    pub event_id: String,
    pub detail_type: String,
    pub occurred_at: Millis,
}

/// An event to publish: its detail-type and detail.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct Notification {
    pub detail_type: String,
    pub detail: Value,
}

impl Notification {
    fn new(detail_type: &str, detail: impl Serialize) -> Self {
        Self {
            detail_type: detail_type.to_owned(),
            detail: serde_json::to_value(detail).unwrap_or(Value::Null),
        }
    }

    pub fn position_changed(sku: &Sku, p: &Position, changed_at: Millis, cause: &Cause) -> Self {
        Self::new(
            "InventoryPositionChanged",
            serde_json::json!({
                "sku": sku,
                "on_hand": p.on_hand,
                "hard_reserved": p.hard_reserved,
                "soft_reserved": p.soft_reserved,
                "available": p.available(),
                "version": p.version,
                "changed_at": format_timestamp(changed_at),
                // `occurred_at` (beyond the contract's fields) lets channel sync measure latency
                // from the producer's event to the channel's acknowledgement.
                "cause": {
                    "event_id": cause.event_id,
                    "detail_type": cause.detail_type,
                    "occurred_at": format_timestamp(cause.occurred_at),
                },
            }),
        )
    }

    pub fn reservation_accepted(
        reservation_id: &str,
        channel: &str,
        lines: &[Line],
        expires_at: Millis,
    ) -> Self {
        Self::new(
            "ReservationAccepted",
            serde_json::json!({
                "reservation_id": reservation_id,
                "channel": channel,
                "lines": lines,
                "expires_at": format_timestamp(expires_at),
            }),
        )
    }

    pub fn reservation_rejected(
        reservation_id: &str,
        channel: &str,
        reason: &str,
        shortfalls: &[Shortfall],
    ) -> Self {
        Self::new(
            "ReservationRejected",
            serde_json::json!({
                "reservation_id": reservation_id,
                "channel": channel,
                "reason": reason,
                "shortfalls": shortfalls,
            }),
        )
    }

    pub fn reservation_expired(reservation_id: &str, channel: &str, lines: &[Line]) -> Self {
        Self::new(
            "ReservationExpired",
            serde_json::json!({"reservation_id": reservation_id, "channel": channel, "lines": lines}),
        )
    }

    pub fn oversell_detected(
        sku: &Sku,
        order_id: &str,
        channel: &str,
        shortfall: i64,
        detected_at: Millis,
    ) -> Self {
        Self::new(
            "OversellDetected",
            serde_json::json!({
                "sku": sku,
                "order_id": order_id,
                "channel": channel,
                "shortfall": shortfall,
                "detected_at": format_timestamp(detected_at),
            }),
        )
    }

    pub fn channel_quantity_pushed(
        channel: &str,
        sku: &Sku,
        quantity: i64,
        version: u64,
        latency_ms: i64,
    ) -> Self {
        Self::new(
            "ChannelQuantityPushed",
            serde_json::json!({"channel": channel, "sku": sku, "quantity": quantity, "version": version, "latency_ms": latency_ms}),
        )
    }

    pub fn channel_sync_failed(channel: &str, sku: &Sku, reason: &str, attempts: u32) -> Self {
        Self::new(
            "ChannelSyncFailed",
            serde_json::json!({"channel": channel, "sku": sku, "reason": reason, "attempts": attempts}),
        )
    }

    pub fn channel_buffer_changed(
        channel: &str,
        sku: &Sku,
        buffer: i64,
        previous: i64,
        reason: &str,
    ) -> Self {
        Self::new(
            "ChannelBufferChanged",
            serde_json::json!({"channel": channel, "sku": sku, "buffer": buffer, "previous": previous, "reason": reason}),
        )
    }

    pub fn drift_detected(channel: &str, sku: &Sku, expected: i64, reported: i64) -> Self {
        Self::new(
            "DriftDetected",
            serde_json::json!({"channel": channel, "sku": sku, "expected": expected, "reported": reported, "drift": reported - expected}),
        )
    }
}
