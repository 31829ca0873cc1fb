//! How a fake channel behaves; changeable while it runs.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The behaviour of one fake channel. Fields named after a channel only affect that channel.
/// Figures the channels do not publish are settings rather than constants.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FakeSettings {
    /// Added before every channel API request is handled.
    pub latency_ms: u64,
    /// Share of requests answered with the channel's 5xx.
    pub error_rate: f64,
    /// Share of requests answered with the channel's throttling signal, on top of the real limits.
    pub throttle_rate: f64,
    /// Share of requests that hang for `timeout_hang_ms`, longer than any client waits.
    pub timeout_rate: f64,
    pub timeout_hang_ms: u64,
    /// Accept pushes to listings never registered; otherwise they get the channel's "unknown
    /// listing" error.
    pub accept_any_listing: bool,
    /// Listing keys refused as unknown even when registered, to inject per-item failures.
    pub reject_listings: BTreeSet<String>,
    /// How long after an ACCEPTED submission Amazon shows the new quantity (unverified; minutes).
    pub amazon_processing_delay_ms: u64,
    /// Amazon's Listings API limit per seller and operation.
    pub amazon_requests_per_second: f64,
    pub amazon_burst: f64,
    /// Shopify's leaky bucket of query cost.
    pub shopify_bucket_size: f64,
    pub shopify_restore_rate: f64,
    /// The cost of `inventorySetQuantities` per quantity, capped at the bucket size.
    pub shopify_cost_per_quantity: f64,
    /// `expires_in` of the tokens the Walmart fake issues.
    pub walmart_token_ttl_secs: u64,
    /// The `Retry-After` of Walmart's 429.
    pub walmart_retry_after_secs: u64,
    /// Shopify: where order webhooks are posted (`POST /v1/webhooks/shopify` of the stack);
    /// unset, orders go to the order sink instead.
    pub shopify_webhook_url: Option<String>,
    /// Shopify: the app's client secret the webhooks are signed with.
    pub shopify_webhook_secret: String,
    /// Shopify: deliveries of one webhook before it gives up (Shopify itself retries 8 times
    /// over 4 hours), and the first wait between them, doubling.
    pub shopify_webhook_attempts: u32,
    pub shopify_webhook_retry_ms: u64,
    /// Shopify: share of webhooks delivered twice, as its at-least-once delivery does; the copy
    /// comes `shopify_webhook_late_ms` after the first.
    pub shopify_webhook_duplicate_rate: f64,
    /// Shopify: share of webhooks delivered late, by `shopify_webhook_late_ms`.
    pub shopify_webhook_late_rate: f64,
    pub shopify_webhook_late_ms: u64,
    /// Amazon: whether an `ORDER_CHANGE` carries `Summary.OrderItems` (otherwise the items are
    /// read with getOrder of the Orders API v2026-01-01).
    pub amazon_notification_items: bool,
    /// Amazon: share of notifications sent twice (SQS and SP-API deliver at least once).
    pub amazon_notification_duplicate_rate: f64,
    /// Walmart, eBay: the most orders one page of the orders API holds, whatever `limit` asks.
    pub orders_page_limit: usize,
    /// Walmart, eBay: the orders API answers 200 with a body that is not an orders page.
    pub orders_page_garbled: bool,
}

impl Default for FakeSettings {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            error_rate: 0.0,
            throttle_rate: 0.0,
            timeout_rate: 0.0,
            timeout_hang_ms: 30_000,
            accept_any_listing: true,
            reject_listings: BTreeSet::new(),
            amazon_processing_delay_ms: 5 * 60 * 1000,
            amazon_requests_per_second: 5.0,
            amazon_burst: 5.0,
            shopify_bucket_size: 1000.0,
            shopify_restore_rate: 100.0,
            shopify_cost_per_quantity: 10.0,
            walmart_token_ttl_secs: 900,
            walmart_retry_after_secs: 1,
            shopify_webhook_url: None,
            shopify_webhook_secret: String::new(),
            shopify_webhook_attempts: 8,
            shopify_webhook_retry_ms: 500,
            shopify_webhook_duplicate_rate: 0.0,
            shopify_webhook_late_rate: 0.0,
            shopify_webhook_late_ms: 2_000,
            amazon_notification_items: true,
            amazon_notification_duplicate_rate: 0.0,
            orders_page_limit: 200,
            orders_page_garbled: false,
        }
    }
}

impl FakeSettings {
    /// These settings with the fields present in `patch` (a JSON object) replaced.
    pub(crate) fn merged(&self, patch: &Value) -> Result<Self, String> {
        let Value::Object(fields) = patch else {
            return Err("settings must be a JSON object".to_owned());
        };
        let mut current = serde_json::to_value(self).map_err(|e| e.to_string())?;
        if let Value::Object(current) = &mut current {
            for (name, value) in fields {
                current.insert(name.clone(), value.clone());
            }
        }
        let merged: Self = serde_json::from_value(current).map_err(|e| e.to_string())?;
        merged.check()?;
        Ok(merged)
    }

    pub(crate) fn check(&self) -> Result<(), String> {
        for (name, rate) in [
            ("error_rate", self.error_rate),
            ("throttle_rate", self.throttle_rate),
            ("timeout_rate", self.timeout_rate),
            (
                "shopify_webhook_duplicate_rate",
                self.shopify_webhook_duplicate_rate,
            ),
            ("shopify_webhook_late_rate", self.shopify_webhook_late_rate),
            (
                "amazon_notification_duplicate_rate",
                self.amazon_notification_duplicate_rate,
            ),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                return Err(format!("{name} must be between 0 and 1, not {rate}"));
            }
        }
        for (name, figure) in [
            (
                "amazon_requests_per_second",
                self.amazon_requests_per_second,
            ),
            ("amazon_burst", self.amazon_burst),
            ("shopify_bucket_size", self.shopify_bucket_size),
            ("shopify_restore_rate", self.shopify_restore_rate),
        ] {
            if !(figure.is_finite() && figure > 0.0) {
                return Err(format!("{name} must be positive, not {figure}"));
            }
        }
        const DAY_MS: u64 = 24 * 3600 * 1000;
        for (name, ms) in [
            ("latency_ms", self.latency_ms),
            ("timeout_hang_ms", self.timeout_hang_ms),
            (
                "amazon_processing_delay_ms",
                self.amazon_processing_delay_ms,
            ),
            (
                "walmart_token_ttl_secs",
                self.walmart_token_ttl_secs.saturating_mul(1000),
            ),
            (
                "walmart_retry_after_secs",
                self.walmart_retry_after_secs.saturating_mul(1000),
            ),
            ("shopify_webhook_retry_ms", self.shopify_webhook_retry_ms),
            ("shopify_webhook_late_ms", self.shopify_webhook_late_ms),
        ] {
            if ms > DAY_MS {
                return Err(format!("{name} must not exceed a day"));
            }
        }
        if !(self.shopify_cost_per_quantity.is_finite() && self.shopify_cost_per_quantity >= 0.0) {
            return Err(format!(
                "shopify_cost_per_quantity must not be negative, not {}",
                self.shopify_cost_per_quantity
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_patch_changes_only_the_fields_it_names() {
        let merged = FakeSettings::default()
            .merged(&json!({"throttle_rate": 0.5, "accept_any_listing": false}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(merged.throttle_rate, 0.5);
        assert!(!merged.accept_any_listing);
        assert_eq!(merged.latency_ms, 0);
    }

    #[test]
    fn unknown_fields_and_impossible_rates_are_refused() {
        let settings = FakeSettings::default();
        assert!(settings.merged(&json!({"latency": 5})).is_err());
        assert!(settings.merged(&json!({"error_rate": 2.0})).is_err());
        assert!(
            settings
                .merged(&json!({"shopify_restore_rate": 0}))
                .is_err()
        );
        assert!(settings.merged(&json!([1])).is_err());
    }
}
