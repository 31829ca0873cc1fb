//! The events stockguard publishes, built from their types in [`crate::wire`].

use serde::Serialize;
use serde_json::Value;

use crate::position::Position;
use crate::reservation::Shortfall;
use crate::types::{Line, Millis, Sku, format_timestamp};
use crate::wire::{self, EventDetail};

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
    /// The notification of a published detail; its type names the detail-type.
    pub fn of<E: EventDetail>(detail: E) -> Self {
        Self {
            detail_type: E::DETAIL_TYPE.to_owned(),
            detail: serde_json::to_value(detail).unwrap_or(Value::Null),
        }
    }

    pub fn position_changed(sku: &Sku, p: &Position, changed_at: Millis, cause: &Cause) -> Self {
        Self::of(wire::InventoryPositionChanged {
            sku: sku.clone(),
            on_hand: p.on_hand,
            hard_reserved: p.hard_reserved,
            soft_reserved: p.soft_reserved,
            available: p.available(),
            version: p.version,
            changed_at: format_timestamp(changed_at),
            // `occurred_at` (beyond the contract's fields) lets channel sync measure latency
            // from the producer's event to the channel's acknowledgement.
            cause: wire::Cause {
                event_id: cause.event_id.clone(),
                detail_type: cause.detail_type.clone(),
                occurred_at: format_timestamp(cause.occurred_at),
            },
        })
    }

    pub fn reservation_accepted(
        reservation_id: &str,
        channel: &str,
        lines: &[Line],
        expires_at: Millis,
    ) -> Self {
        Self::of(wire::ReservationAccepted {
            reservation_id: reservation_id.to_owned(),
            channel: channel.to_owned(),
            lines: lines.to_vec(),
            expires_at: format_timestamp(expires_at),
        })
    }

    pub fn reservation_rejected(
        reservation_id: &str,
        channel: &str,
        reason: &str,
        shortfalls: &[Shortfall],
    ) -> Self {
        Self::of(wire::ReservationRejected {
            reservation_id: reservation_id.to_owned(),
            channel: channel.to_owned(),
            reason: reason.to_owned(),
            shortfalls: shortfalls.to_vec(),
        })
    }

    pub fn reservation_expired(reservation_id: &str, channel: &str, lines: &[Line]) -> Self {
        Self::of(wire::ReservationExpired {
            reservation_id: reservation_id.to_owned(),
            channel: channel.to_owned(),
            lines: lines.to_vec(),
        })
    }

    pub fn oversell_detected(
        sku: &Sku,
        order_id: &str,
        channel: &str,
        shortfall: i64,
        detected_at: Millis,
    ) -> Self {
        Self::of(wire::OversellDetected {
            sku: sku.clone(),
            order_id: order_id.to_owned(),
            channel: channel.to_owned(),
            shortfall,
            detected_at: format_timestamp(detected_at),
        })
    }

    pub fn channel_quantity_pushed(
        channel: &str,
        sku: &Sku,
        quantity: i64,
        version: u64,
        latency_ms: i64,
    ) -> Self {
        Self::of(wire::ChannelQuantityPushed {
            channel: channel.to_owned(),
            sku: sku.clone(),
            quantity,
            version,
            latency_ms,
        })
    }

    pub fn channel_sync_failed(channel: &str, sku: &Sku, reason: &str, attempts: u32) -> Self {
        Self::of(wire::ChannelSyncFailed {
            channel: channel.to_owned(),
            sku: sku.clone(),
            reason: reason.to_owned(),
            attempts,
        })
    }

    pub fn channel_buffer_changed(
        channel: &str,
        sku: &Sku,
        buffer: i64,
        previous: i64,
        reason: &str,
    ) -> Self {
        Self::of(wire::ChannelBufferChanged {
            channel: channel.to_owned(),
            sku: sku.clone(),
            buffer,
            previous,
            reason: reason.to_owned(),
        })
    }

    pub fn oversell_compensated(
        sku: &Sku,
        order_id: &str,
        channel: &str,
        action: &str,
        units: i64,
    ) -> Self {
        Self::of(wire::OversellCompensated {
            sku: sku.clone(),
            order_id: order_id.to_owned(),
            channel: channel.to_owned(),
            action: action.to_owned(),
            units,
        })
    }

    pub fn drift_detected(channel: &str, sku: &Sku, expected: i64, reported: i64) -> Self {
        Self::of(wire::DriftDetected {
            channel: channel.to_owned(),
            sku: sku.clone(),
            expected,
            reported,
            drift: reported - expected,
        })
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn sku(s: &str) -> Sku {
        Sku::parse(s).unwrap()
    }

    /// The details as the contract and docs/events.md give them, field for field.
    #[test]
    fn details_are_the_contracts() {
        let at = 1_795_000_000_000; // 2026-11-18T11:06:40.000Z
        let lines = vec![Line {
            sku: sku("A"),
            quantity: 2,
        }];
        let position = Position {
            on_hand: 9,
            hard_reserved: 3,
            soft_reserved: 1,
            version: 12,
            counted_at: Some(at),
        };
        let cause = Cause {
            event_id: "e-1".into(),
            detail_type: "StockReceived".into(),
            occurred_at: at,
        };
        let shortfall = Shortfall {
            sku: sku("A"),
            requested: 2,
            available: 1,
        };
        let t = "2026-11-18T11:06:40.000Z";
        let cases = [
            (
                Notification::position_changed(&sku("A"), &position, at, &cause),
                "InventoryPositionChanged",
                json!({"sku": "A", "on_hand": 9, "hard_reserved": 3, "soft_reserved": 1,
                       "available": 5, "version": 12, "changed_at": t,
                       "cause": {"event_id": "e-1", "detail_type": "StockReceived", "occurred_at": t}}),
            ),
            (
                Notification::reservation_accepted("r", "web", &lines, at),
                "ReservationAccepted",
                json!({"reservation_id": "r", "channel": "web",
                       "lines": [{"sku": "A", "quantity": 2}], "expires_at": t}),
            ),
            (
                Notification::reservation_rejected("r", "web", "insufficient_stock", &[shortfall]),
                "ReservationRejected",
                json!({"reservation_id": "r", "channel": "web", "reason": "insufficient_stock",
                       "shortfalls": [{"sku": "A", "requested": 2, "available": 1}]}),
            ),
            (
                Notification::reservation_expired("r", "web", &lines),
                "ReservationExpired",
                json!({"reservation_id": "r", "channel": "web", "lines": [{"sku": "A", "quantity": 2}]}),
            ),
            (
                Notification::oversell_detected(&sku("A"), "o", "amazon", 1, at),
                "OversellDetected",
                json!({"sku": "A", "order_id": "o", "channel": "amazon", "shortfall": 1, "detected_at": t}),
            ),
            (
                Notification::channel_quantity_pushed("ebay", &sku("A"), 5, 12, 140),
                "ChannelQuantityPushed",
                json!({"channel": "ebay", "sku": "A", "quantity": 5, "version": 12, "latency_ms": 140}),
            ),
            (
                Notification::channel_sync_failed("ebay", &sku("A"), "ebay: HTTP 400", 3),
                "ChannelSyncFailed",
                json!({"channel": "ebay", "sku": "A", "reason": "ebay: HTTP 400", "attempts": 3}),
            ),
            (
                Notification::channel_buffer_changed("ebay", &sku("A"), 4, 1, "signal"),
                "ChannelBufferChanged",
                json!({"channel": "ebay", "sku": "A", "buffer": 4, "previous": 1, "reason": "signal"}),
            ),
            (
                Notification::drift_detected("ebay", &sku("A"), 73, 75),
                "DriftDetected",
                json!({"channel": "ebay", "sku": "A", "expected": 73, "reported": 75, "drift": 2}),
            ),
        ];
        for (notification, detail_type, detail) in cases {
            assert_eq!(notification.detail_type, detail_type);
            assert_eq!(notification.detail, detail, "{detail_type}");
        }
    }
}
