//! What a fake channel remembers: its listings, settings, limits, tokens and counters.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::settings::FakeSettings;
use crate::{FakeKind, FakeOptions};

/// Counters of what a fake channel was asked and how it answered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FakeStats {
    /// Every channel API request, whatever its answer (admin calls are not counted).
    pub requests: u64,
    /// Push requests that got past authentication, injected faults and throttling.
    pub push_calls: u64,
    /// Read-back requests that got that far.
    pub read_calls: u64,
    /// Tokens issued (Walmart).
    pub token_calls: u64,
    /// Quantities taken by pushes.
    pub quantities_pushed: u64,
    /// Quantities refused by pushes: unknown listings, invalid values.
    pub items_rejected: u64,
    /// Throttled answers, injected or from the channel's limits.
    pub throttled: u64,
    /// Injected 5xx answers.
    pub server_errors: u64,
    /// Injected hangs.
    pub timeouts: u64,
    pub unauthorized: u64,
    pub orders: u64,
    /// Orders cancelled, by the buyer or through the API.
    pub orders_cancelled: u64,
    /// Pages of orders served (Walmart, eBay).
    pub order_pages: u64,
    /// Orders served one by one (Amazon's getOrder).
    pub order_reads: u64,
}

pub(crate) struct Credentials {
    pub access_token: String,
    pub walmart_client_id: String,
    pub walmart_client_secret: String,
}

pub(crate) struct Shared {
    pub kind: FakeKind,
    pub credentials: Credentials,
    pub on_notification: Option<crate::NotificationSink>,
    /// Becomes true when the fake is dropped; hanging requests give up then.
    pub stopping: watch::Receiver<bool>,
    state: Mutex<State>,
}

impl Shared {
    pub fn new(kind: FakeKind, options: &FakeOptions, stopping: watch::Receiver<bool>) -> Self {
        Self {
            kind,
            credentials: Credentials {
                access_token: options.access_token.clone(),
                walmart_client_id: options.walmart_client_id.clone(),
                walmart_client_secret: options.walmart_client_secret.clone(),
            },
            on_notification: options.on_notification.clone(),
            stopping,
            state: Mutex::new(State::new(options.settings.clone(), Instant::now())),
        }
    }

    /// Runs `f` on the state. Never held across an await.
    pub fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        f(&mut state)
    }

    pub fn settings(&self) -> FakeSettings {
        self.with(|state| state.settings.clone())
    }

    pub fn is_access_token(&self, presented: Option<&str>) -> bool {
        presented == Some(self.credentials.access_token.as_str())
    }
}

pub(crate) struct ListingState {
    /// Our SKU, named in the orders the channel reports.
    pub sku: String,
    pub registered: bool,
    shown: i64,
    /// Accepted quantities not shown yet (Amazon), oldest first.
    pending: VecDeque<(Instant, i64)>,
}

impl ListingState {
    fn new(sku: String, registered: bool, shown: i64) -> Self {
        Self {
            sku,
            registered,
            shown,
            pending: VecDeque::new(),
        }
    }

    fn settle(&mut self, now: Instant) {
        while let Some(&(due, quantity)) = self.pending.front() {
            if due > now {
                break;
            }
            self.shown = quantity;
            self.pending.pop_front();
        }
    }
}

/// cancelOrder's published limit: 1 request a second, burst 5.
pub(crate) const AMAZON_CANCEL_PER_SECOND: f64 = 1.0;
pub(crate) const AMAZON_CANCEL_BURST: f64 = 5.0;

/// getOrder's (Orders API v2026-01-01) published limit: 0.5 requests a second, burst 30.
pub(crate) const AMAZON_GET_ORDER_PER_SECOND: f64 = 0.5;
pub(crate) const AMAZON_GET_ORDER_BURST: f64 = 30.0;

/// One item of an order placed on the Amazon fake.
#[derive(Debug, Clone)]
pub(crate) struct AmazonItem {
    pub order_item_id: String,
    pub seller_sku: String,
    pub quantity: i64,
}

/// An order placed on the Amazon fake.
pub(crate) struct AmazonOrder {
    pub items: Vec<AmazonItem>,
    /// RFC 3339, as getOrder answers `createdTime` and `lastUpdatedTime`.
    pub created: String,
    pub updated: String,
    pub cancelled: bool,
}

pub(crate) struct State {
    pub settings: FakeSettings,
    pub stats: FakeStats,
    listings: HashMap<String, ListingState>,
    pub shopify_bucket: Bucket,
    pub amazon_patch_bucket: Bucket,
    pub amazon_read_bucket: Bucket,
    /// cancelOrder's own limit, as Amazon publishes it.
    pub amazon_cancel_bucket: Bucket,
    /// getOrder's own limit, as Amazon publishes it.
    pub amazon_get_order_bucket: Bucket,
    /// Walmart access tokens and when each stops working.
    pub walmart_tokens: HashMap<String, Instant>,
    /// Shopify idempotency keys: the input first sent with each and the answer it got.
    pub shopify_idempotency: HashMap<String, (Value, Value)>,
    /// Shopify orders by number, as their webhooks carry them.
    pub shopify_orders: HashMap<String, Value>,
    /// Amazon orders by id.
    pub amazon_orders: HashMap<String, AmazonOrder>,
    /// Walmart and eBay orders, as their orders APIs serve them.
    pub market_orders: Vec<crate::market_orders::MarketOrder>,
}

impl State {
    fn new(settings: FakeSettings, now: Instant) -> Self {
        let mut state = Self {
            settings,
            stats: FakeStats::default(),
            listings: HashMap::new(),
            shopify_bucket: Bucket::full(0.0, now),
            amazon_patch_bucket: Bucket::full(0.0, now),
            amazon_read_bucket: Bucket::full(0.0, now),
            amazon_cancel_bucket: Bucket::full(0.0, now),
            amazon_get_order_bucket: Bucket::full(0.0, now),
            walmart_tokens: HashMap::new(),
            shopify_idempotency: HashMap::new(),
            shopify_orders: HashMap::new(),
            amazon_orders: HashMap::new(),
            market_orders: Vec::new(),
        };
        state.refill_buckets(now);
        state
    }

    /// New limits start with full buckets, so a test that changes them knows where it stands.
    pub fn replace_settings(&mut self, settings: FakeSettings, now: Instant) {
        self.settings = settings;
        self.refill_buckets(now);
    }

    fn refill_buckets(&mut self, now: Instant) {
        self.shopify_bucket = Bucket::full(self.settings.shopify_bucket_size, now);
        self.amazon_patch_bucket = Bucket::full(self.settings.amazon_burst, now);
        self.amazon_read_bucket = Bucket::full(self.settings.amazon_burst, now);
        self.amazon_cancel_bucket = Bucket::full(AMAZON_CANCEL_BURST, now);
        self.amazon_get_order_bucket = Bucket::full(AMAZON_GET_ORDER_BURST, now);
    }

    /// Whether a push to this listing is taken.
    pub fn accepts(&self, key: &str) -> bool {
        if self.settings.reject_listings.contains(key) {
            return false;
        }
        self.settings.accept_any_listing || self.listings.get(key).is_some_and(|l| l.registered)
    }

    /// The listing with every quantity that is due by now shown.
    pub fn listing(&mut self, key: &str, now: Instant) -> Option<&mut ListingState> {
        let listing = self.listings.get_mut(key)?;
        listing.settle(now);
        Some(listing)
    }

    /// The quantity the channel shows now; `None` for a listing it does not have.
    pub fn shown(&mut self, key: &str, now: Instant) -> Option<i64> {
        self.listing(key, now).map(|listing| listing.shown)
    }

    pub fn has_listing_where(&self, predicate: impl Fn(&str) -> bool) -> bool {
        self.listings.keys().any(|key| predicate(key))
    }

    /// Takes a pushed quantity, shown after `delay` (at once when zero).
    pub fn push_quantity(&mut self, key: &str, quantity: i64, delay: Duration, now: Instant) {
        let listing = self
            .listings
            .entry(key.to_owned())
            .or_insert_with(|| ListingState::new(key.to_owned(), false, 0));
        if delay.is_zero() {
            listing.pending.clear();
            listing.shown = quantity;
        } else {
            listing
                .pending
                .push_back((now.checked_add(delay).unwrap_or(now), quantity));
        }
        self.stats.quantities_pushed += 1;
    }

    pub fn register(&mut self, key: &str, sku: &str, shown: i64, now: Instant) {
        let listing = self
            .listings
            .entry(key.to_owned())
            .or_insert_with(|| ListingState::new(sku.to_owned(), true, shown));
        listing.settle(now);
        listing.sku = sku.to_owned();
        listing.registered = true;
        listing.shown = shown;
    }

    /// Changes what the channel shows behind our back. Quantities still being processed land
    /// later as they would on the channel.
    pub fn set_shown(&mut self, key: &str, shown: i64, now: Instant) {
        let listing = self
            .listings
            .entry(key.to_owned())
            .or_insert_with(|| ListingState::new(key.to_owned(), true, shown));
        listing.settle(now);
        listing.shown = shown;
    }

    pub fn take_shown(&mut self, key: &str, quantity: i64, now: Instant) {
        if let Some(listing) = self.listing(key, now) {
            listing.shown -= quantity;
        }
    }
}

/// A token bucket: `capacity` tokens, refilled at `rate` per second.
pub(crate) struct Bucket {
    level: f64,
    updated_at: Instant,
}

impl Bucket {
    pub fn full(capacity: f64, now: Instant) -> Self {
        Self {
            level: capacity,
            updated_at: now,
        }
    }

    pub fn level(&mut self, capacity: f64, rate: f64, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.updated_at).as_secs_f64();
        self.level = (self.level + elapsed * rate).min(capacity);
        self.updated_at = now;
        self.level
    }

    pub fn try_take(&mut self, cost: f64, capacity: f64, rate: f64, now: Instant) -> bool {
        if self.level(capacity, rate, now) < cost {
            return false;
        }
        self.level -= cost;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bucket_refills_at_its_rate_up_to_its_capacity() {
        let start = Instant::now();
        let mut bucket = Bucket::full(50.0, start);
        assert!(bucket.try_take(50.0, 50.0, 100.0, start));
        assert!(!bucket.try_take(10.0, 50.0, 100.0, start));
        let later = start + Duration::from_millis(100);
        assert!(bucket.try_take(10.0, 50.0, 100.0, later));
        assert_eq!(
            bucket.level(50.0, 100.0, start + Duration::from_secs(10)),
            50.0
        );
    }

    #[test]
    fn accepted_quantities_show_once_due_in_order() {
        let start = Instant::now();
        let mut state = State::new(FakeSettings::default(), start);
        state.register("A", "SKU-A", 3, start);
        state.push_quantity("A", 10, Duration::from_secs(1), start);
        state.push_quantity("A", 8, Duration::from_secs(2), start);
        assert_eq!(state.shown("A", start), Some(3));
        assert_eq!(state.shown("A", start + Duration::from_secs(1)), Some(10));
        assert_eq!(state.shown("A", start + Duration::from_secs(3)), Some(8));
        assert_eq!(state.shown("B", start), None);
    }
}
