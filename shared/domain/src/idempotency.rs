//! Idempotency by event id: the decision, not the storage.
//!
//! A record is written in the same transaction as the effect, already `Applied`: there is no
//! in-progress lock that a timed-out invocation could leave behind to block retries. `Applied`
//! means the notifications may not be out yet; any redelivery publishes them and marks the
//! record `Completed`.

use serde_json::Value;
use sha2::{Digest, Sha256};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdempotencyStatus {
    /// The effect is stored; its notifications may not have been published.
    Applied,
    /// The effect is stored and its notifications were published.
    Completed,
}

impl IdempotencyStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            IdempotencyStatus::Applied => "APPLIED",
            IdempotencyStatus::Completed => "COMPLETED",
        }
    }

    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "APPLIED" => Some(IdempotencyStatus::Applied),
            "COMPLETED" => Some(IdempotencyStatus::Completed),
            _ => None,
        }
    }
}

/// What to do with a delivery, given the record found for its id.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Never seen: apply it.
    First,
    /// Seen with the same payload: do not apply again; publish again if that may not have happened.
    Repeat { publish_pending: bool },
    /// Seen with a different payload: reject, change nothing.
    KeyReused,
}

pub fn classify_delivery(
    stored: Option<(&str, IdempotencyStatus)>,
    payload_hash: &str,
) -> Delivery {
    match stored {
        None => Delivery::First,
        Some((hash, _)) if hash != payload_hash => Delivery::KeyReused,
        Some((_, status)) => Delivery::Repeat {
            publish_pending: status == IdempotencyStatus::Applied,
        },
    }
}

/// SHA-256 of the detail-type and the detail in canonical JSON (keys sorted), hex.
pub fn payload_hash(detail_type: &str, detail: &Value) -> String {
    let mut hasher = Sha256::new();
    hasher.update(detail_type.as_bytes());
    hasher.update(b"\n");
    // serde_json's default map is ordered by key, so this serialisation is canonical.
    hasher.update(detail.to_string().as_bytes());
    hex::encode(hasher.finalize())
}

/// The key of an event's idempotency record for one part of it. Every event has part 0, keyed
/// by its `event_id`; an order event of more lines than one transaction holds has later parts,
/// keyed `<event_id>#<part>`. `#` is never in an `event_id`, so no event's key is another's.
pub fn part_key(event_id: &str, part: usize) -> String {
    if part == 0 {
        event_id.to_owned()
    } else {
        format!("{event_id}#{part}")
    }
}

/// A producer replay: an event whose per-(source, sku) sequence is at or below the last applied one.
pub fn is_producer_replay(last_applied: Option<u64>, sequence: Option<u64>) -> bool {
    matches!((last_applied, sequence), (Some(last), Some(seq)) if seq <= last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn classifies_deliveries() {
        let h = payload_hash("StockReceived", &json!({"b": 1, "a": 2}));
        assert_eq!(h, payload_hash("StockReceived", &json!({"a": 2, "b": 1})));
        assert_ne!(h, payload_hash("StockAdjusted", &json!({"a": 2, "b": 1})));
        assert_eq!(classify_delivery(None, &h), Delivery::First);
        assert_eq!(
            classify_delivery(Some((&h, IdempotencyStatus::Applied)), &h),
            Delivery::Repeat {
                publish_pending: true
            }
        );
        assert_eq!(
            classify_delivery(Some((&h, IdempotencyStatus::Completed)), &h),
            Delivery::Repeat {
                publish_pending: false
            }
        );
        assert_eq!(
            classify_delivery(Some(("other", IdempotencyStatus::Completed)), &h),
            Delivery::KeyReused
        );
    }

    #[test]
    fn a_part_key_is_never_an_event_id() {
        assert_eq!(part_key("ord-7", 0), "ord-7");
        assert_eq!(part_key("ord-7", 2), "ord-7#2");
        assert!(crate::EventId::parse(&part_key("ord-7", 1)).is_err());
    }

    #[test]
    fn sequences() {
        assert!(!is_producer_replay(None, Some(0)));
        assert!(!is_producer_replay(Some(4), None));
        assert!(is_producer_replay(Some(4), Some(4)));
        assert!(!is_producer_replay(Some(4), Some(5)));
    }
}
