//! What is pushed where, and how each push ended.

use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::error::ChannelError;

/// The sales channels stockguard pushes quantities to: the domain's one kind enum.
pub use stockguard_domain::channel::{ChannelKind, UnknownChannelKind};

/// Where one of our SKUs is listed on one channel, in the channel's own identifiers.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "channel", rename_all = "lowercase")]
pub enum Listing {
    /// Ids as decimal strings (they exceed 2^53) or as full `gid://shopify/...` ids.
    Shopify {
        inventory_item_id: String,
        location_id: String,
    },
    /// The seller and marketplace come from the client's configuration.
    Amazon {
        seller_sku: String,
        product_type: String,
    },
    Walmart {
        sku: String,
    },
    Ebay {
        sku: String,
        offer_id: String,
    },
}

impl Listing {
    pub fn kind(&self) -> ChannelKind {
        match self {
            Listing::Shopify { .. } => ChannelKind::Shopify,
            Listing::Amazon { .. } => ChannelKind::Amazon,
            Listing::Walmart { .. } => ChannelKind::Walmart,
            Listing::Ebay { .. } => ChannelKind::Ebay,
        }
    }

    /// A stable, readable key of the listing on its channel: the channel's SKU, or
    /// `{inventory_item_id}:{location_id}` (numeric ids) for Shopify. The fake channels name
    /// listings by this key.
    pub fn key(&self) -> String {
        match self {
            Listing::Shopify {
                inventory_item_id,
                location_id,
            } => format!(
                "{}:{}",
                numeric_tail(inventory_item_id),
                numeric_tail(location_id)
            ),
            Listing::Amazon { seller_sku, .. } => seller_sku.clone(),
            Listing::Walmart { sku } | Listing::Ebay { sku, .. } => sku.clone(),
        }
    }
}

/// `gid://shopify/InventoryItem/123` → `123`; a bare id stays as it is.
fn numeric_tail(id: &str) -> &str {
    id.rsplit('/').next().unwrap_or(id)
}

/// Set the quantity a channel shows for one listing of one of our SKUs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuantityUpdate {
    /// Our SKU, for logs and reasons; the channel only sees the listing.
    pub sku: String,
    pub listing: Listing,
    /// The absolute quantity to show.
    pub quantity: i64,
    /// Shopify only: the quantity the caller last saw on the channel. The push is then refused
    /// (`CHANGE_FROM_QUANTITY_STALE`, permanent) if the channel has moved since. `None` skips the
    /// check, which is right when our own version already gates the push.
    #[serde(default)]
    pub change_from_quantity: Option<i64>,
}

impl QuantityUpdate {
    pub fn new(sku: impl Into<String>, listing: Listing, quantity: i64) -> Self {
        Self {
            sku: sku.into(),
            listing,
            quantity,
            change_from_quantity: None,
        }
    }

    pub fn with_change_from_quantity(mut self, last_known: i64) -> Self {
        self.change_from_quantity = Some(last_known);
        self
    }
}

/// How the push of one update ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushOutcome {
    /// The channel took the quantity. For Amazon this means accepted for processing: the quantity
    /// shows only later.
    Acknowledged { acknowledged_at: SystemTime },
    /// The channel throttled the push, and still did after the waits the client allows itself.
    /// The same push may succeed after `retry_after`: the channel's own signal (`Retry-After`,
    /// Amazon's `x-amzn-RateLimit-Limit`, Shopify's throttle status) or the client's fallback.
    Throttled {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// A timeout, a server error, an unreachable channel or an unreadable answer: the same push
    /// may succeed later.
    Retryable { reason: String },
    /// The channel will never take this push as it is (credentials, unknown listing, bad value).
    Permanent { reason: String },
}

impl PushOutcome {
    pub fn acknowledged_now() -> Self {
        PushOutcome::Acknowledged {
            acknowledged_at: SystemTime::now(),
        }
    }

    pub fn is_acknowledged(&self) -> bool {
        matches!(self, PushOutcome::Acknowledged { .. })
    }

    /// Whether the same push may succeed later (throttled or otherwise retryable).
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            PushOutcome::Throttled { .. } | PushOutcome::Retryable { .. }
        )
    }

    pub fn is_throttled(&self) -> bool {
        matches!(self, PushOutcome::Throttled { .. })
    }

    pub fn is_permanent(&self) -> bool {
        matches!(self, PushOutcome::Permanent { .. })
    }

    /// Why the push did not go through; `None` when it did.
    pub fn reason(&self) -> Option<&str> {
        match self {
            PushOutcome::Acknowledged { .. } => None,
            PushOutcome::Throttled { reason, .. }
            | PushOutcome::Retryable { reason }
            | PushOutcome::Permanent { reason } => Some(reason),
        }
    }

    pub(crate) fn from_error(err: &ChannelError) -> Self {
        if err.is_throttled() {
            PushOutcome::Throttled {
                reason: err.to_string(),
                retry_after: err.retry_after(),
            }
        } else if err.is_retryable() {
            PushOutcome::Retryable {
                reason: err.to_string(),
            }
        } else {
            PushOutcome::Permanent {
                reason: err.to_string(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kinds_round_trip_through_their_names() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>(), Ok(kind));
        }
        assert!("etsy".parse::<ChannelKind>().is_err());
    }

    #[test]
    fn throttling_is_its_own_outcome_and_keeps_the_channels_wait() {
        let wait = Some(Duration::from_secs(3));
        let throttled = ChannelError::throttled(ChannelKind::Walmart, wait, "slow down");
        let outcome = PushOutcome::from_error(&throttled);
        assert_eq!(
            outcome,
            PushOutcome::Throttled {
                reason: "walmart: slow down".into(),
                retry_after: wait,
            }
        );
        assert!(outcome.is_retryable() && outcome.is_throttled());
        let timeout = ChannelError::from_status(ChannelKind::Ebay, 504, false, wait, "late");
        let outcome = PushOutcome::from_error(&timeout);
        assert!(
            outcome.is_retryable() && !outcome.is_throttled(),
            "{outcome:?}"
        );
    }

    #[test]
    fn shopify_listing_keys_use_the_numeric_ids() {
        let listing = Listing::Shopify {
            inventory_item_id: "gid://shopify/InventoryItem/30322695".into(),
            location_id: "124656943".into(),
        };
        assert_eq!(listing.key(), "30322695:124656943");
    }

    #[test]
    fn listings_serialize_with_their_channel_tag() {
        let listing = Listing::Ebay {
            sku: "A".into(),
            offer_id: "9".into(),
        };
        let json = serde_json::to_value(&listing).unwrap_or_default();
        assert_eq!(
            json,
            serde_json::json!({"channel": "ebay", "sku": "A", "offer_id": "9"})
        );
    }
}
