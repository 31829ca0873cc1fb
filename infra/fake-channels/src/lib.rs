//! Local fakes of the Shopify, Amazon, Walmart and eBay inventory APIs, one HTTP server each on
//! `127.0.0.1` and a free port. They honour the real paths, auth headers, bodies, status codes,
//! throttling signals, partial failures and Amazon's processing delay (see
//! `shared/reference/channels.md`), and let tests inject latency, 5xx, throttling and hangs.
//!
//! Listings are named by a key: the channel's SKU, or `{inventory_item_id}:{location_id}` (numeric
//! ids) on Shopify. Each fake also serves an admin API under `/_fake/...`:
//!
//! | call | what it does |
//! |---|---|
//! | `GET`/`PUT /_fake/settings` | read or patch [`FakeSettings`] (fields absent from the body keep their values) |
//! | `GET /_fake/shown/{listing_key}` | `{listing_key, quantity}` the channel shows now; 404 if it has no such listing |
//! | `PUT /_fake/shown/{listing_key}` | `{quantity}`: change what it shows behind our back |
//! | `POST /_fake/listings` | `{listing_key, sku?, quantity?}`: register a listing (and our SKU for it) |
//! | `GET`/`DELETE /_fake/stats` | read or reset [`FakeStats`] |
//! | `POST /_fake/orders` | `{order_id?, lines: [{listing_key, quantity}]}`: a buyer's order, made known as the channel does (Shopify webhook, Amazon notification, Walmart/eBay orders API); answers `{order_id, channel}` with stockguard's order id |
//! | `POST /_fake/expire_tokens` | Walmart: every issued token stops working |

mod admin;
mod amazon;
mod ebay;
mod gate;
mod market_orders;
mod orders;
mod settings;
mod shopify;
mod state;
mod walmart;
mod webhooks;

use std::fmt;
use std::io;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;

pub use orders::{OrderError, OrderLine, OrderRequest};
pub use settings::FakeSettings;
pub use shopify::variant_id_of;
pub use state::FakeStats;
pub use webhooks::shopify_signature;

use state::Shared;

/// Receives each SP-API notification body the Amazon fake sends, e.g. to put it on a queue.
pub type NotificationSink = Arc<dyn Fn(String) + Send + Sync>;

pub const DEFAULT_ACCESS_TOKEN: &str = "test-token";
pub const DEFAULT_WALMART_CLIENT_ID: &str = "test-client-id";
pub const DEFAULT_WALMART_CLIENT_SECRET: &str = "test-client-secret";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FakeKind {
    Shopify,
    Amazon,
    Walmart,
    Ebay,
}

impl FakeKind {
    pub const ALL: [FakeKind; 4] = [
        FakeKind::Shopify,
        FakeKind::Amazon,
        FakeKind::Walmart,
        FakeKind::Ebay,
    ];

    /// The channel name orders carry.
    pub fn as_str(self) -> &'static str {
        match self {
            FakeKind::Shopify => "shopify",
            FakeKind::Amazon => "amazon",
            FakeKind::Walmart => "walmart",
            FakeKind::Ebay => "ebay",
        }
    }
}

impl fmt::Display for FakeKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the fakes start.
#[derive(Clone)]
pub struct FakeOptions {
    /// The token Shopify, Amazon and eBay accept (`X-Shopify-Access-Token`, `x-amz-access-token`,
    /// `Authorization: Bearer`).
    pub access_token: String,
    /// The client credentials Walmart's token endpoint accepts.
    pub walmart_client_id: String,
    pub walmart_client_secret: String,
    /// The settings every fake starts with.
    pub settings: FakeSettings,
    /// Where the Amazon fake sends its SP-API notifications (an SQS destination's messages).
    pub on_notification: Option<NotificationSink>,
}

impl Default for FakeOptions {
    fn default() -> Self {
        Self {
            access_token: DEFAULT_ACCESS_TOKEN.to_owned(),
            walmart_client_id: DEFAULT_WALMART_CLIENT_ID.to_owned(),
            walmart_client_secret: DEFAULT_WALMART_CLIENT_SECRET.to_owned(),
            settings: FakeSettings::default(),
            on_notification: None,
        }
    }
}

impl fmt::Debug for FakeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOptions")
            .field("walmart_client_id", &self.walmart_client_id)
            .field("settings", &self.settings)
            .field("on_notification", &self.on_notification.is_some())
            .finish_non_exhaustive()
    }
}

impl FakeOptions {
    pub fn with_settings(mut self, settings: FakeSettings) -> Self {
        self.settings = settings;
        self
    }

    pub fn with_notification_sink(mut self, sink: impl Fn(String) + Send + Sync + 'static) -> Self {
        self.on_notification = Some(Arc::new(sink));
        self
    }
}

/// The four fakes. Dropping it stops them.
pub struct FakeChannels {
    pub shopify: FakeChannel,
    pub amazon: FakeChannel,
    pub walmart: FakeChannel,
    pub ebay: FakeChannel,
}

impl FakeChannels {
    pub async fn start(options: FakeOptions) -> io::Result<Self> {
        Ok(Self {
            shopify: FakeChannel::start(FakeKind::Shopify, &options).await?,
            amazon: FakeChannel::start(FakeKind::Amazon, &options).await?,
            walmart: FakeChannel::start(FakeKind::Walmart, &options).await?,
            ebay: FakeChannel::start(FakeKind::Ebay, &options).await?,
        })
    }

    pub fn get(&self, kind: FakeKind) -> &FakeChannel {
        match kind {
            FakeKind::Shopify => &self.shopify,
            FakeKind::Amazon => &self.amazon,
            FakeKind::Walmart => &self.walmart,
            FakeKind::Ebay => &self.ebay,
        }
    }

    /// `{"shopify": url, "amazon": url, "walmart": url, "ebay": url}`.
    pub fn urls(&self) -> Value {
        json!({
            "shopify": self.shopify.url(),
            "amazon": self.amazon.url(),
            "walmart": self.walmart.url(),
            "ebay": self.ebay.url(),
        })
    }
}

/// One running fake channel. Dropping it stops its server.
pub struct FakeChannel {
    kind: FakeKind,
    url: String,
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
}

impl FakeChannel {
    /// Starts one fake on `127.0.0.1` and a free port.
    pub async fn start(kind: FakeKind, options: &FakeOptions) -> io::Result<Self> {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await?;
        let url = format!("http://{}", listener.local_addr()?);
        let (stop, stopping) = watch::channel(false);
        let shared = Arc::new(Shared::new(kind, options, stopping.clone()));
        let channel_routes = match kind {
            FakeKind::Shopify => shopify::routes(),
            FakeKind::Amazon => amazon::routes(),
            FakeKind::Walmart => walmart::routes(),
            FakeKind::Ebay => ebay::routes(),
        };
        let app = channel_routes
            .merge(admin::routes())
            .with_state(Arc::clone(&shared));
        let mut until_stopped = stopping;
        tokio::spawn(async move {
            let served = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = until_stopped.wait_for(|stop| *stop).await;
                })
                .await;
            if let Err(err) = served {
                tracing::warn!(channel = %kind, error = %err, "fake channel server failed");
            }
        });
        Ok(Self {
            kind,
            url,
            shared,
            stop,
        })
    }

    pub fn kind(&self) -> FakeKind {
        self.kind
    }

    /// `http://127.0.0.1:{port}`: the base URL for the channel's client.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Puts a listing on the channel, showing `shown`, sold as our `sku`.
    pub fn register_listing(&self, listing_key: &str, sku: &str, shown: i64) {
        let now = Instant::now();
        self.shared
            .with(|state| state.register(listing_key, sku, shown, now));
    }

    /// The quantity the channel shows now; `None` if it has no such listing.
    pub fn shown(&self, listing_key: &str) -> Option<i64> {
        let now = Instant::now();
        self.shared.with(|state| state.shown(listing_key, now))
    }

    /// Changes what the channel shows, behind our back.
    pub fn set_shown(&self, listing_key: &str, quantity: i64) {
        let now = Instant::now();
        self.shared
            .with(|state| state.set_shown(listing_key, quantity, now));
    }

    pub fn settings(&self) -> FakeSettings {
        self.shared.settings()
    }

    /// Changes the settings; rate limit buckets start full again.
    ///
    /// # Panics
    /// If the changed settings are impossible (a rate outside 0..=1, a zero restore rate): a
    /// mistake in the test, not a condition to handle.
    pub fn update_settings(&self, change: impl FnOnce(&mut FakeSettings)) {
        let mut settings = self.settings();
        change(&mut settings);
        if let Err(why) = settings.check() {
            panic!("impossible {} fake settings: {why}", self.kind);
        }
        let now = Instant::now();
        self.shared
            .with(|state| state.replace_settings(settings, now));
    }

    pub fn stats(&self) -> FakeStats {
        self.shared.with(|state| state.stats.clone())
    }

    pub fn reset_stats(&self) {
        self.shared.with(|state| state.stats = FakeStats::default());
    }

    /// A buyer's order: takes the units off what the channel shows and makes the order known as
    /// the marketplace does: Shopify posts `orders/create` (when its webhook URL is set), Amazon
    /// sends `ORDER_CHANGE` (to the notification sink), Walmart and eBay list it in their orders
    /// APIs. Answers `{order_id, channel}`, `order_id` as stockguard names the order. Refused when
    /// the channel shows fewer units than ordered.
    pub fn place_order(&self, order: &OrderRequest) -> Result<Value, OrderError> {
        orders::place(&self.shared, order)
    }

    /// Shopify: the buyer's order is cancelled, and an `orders/cancelled` webhook is sent.
    /// Amazon: an `ORDER_CHANGE` with status `Canceled` is sent. Walmart, eBay: the order is
    /// listed cancelled, modified now.
    /// `order_id` is what [`FakeChannel::place_order`] answered.
    pub fn cancel_order(&self, order_id: &str) -> Result<(), OrderError> {
        orders::cancel(&self.shared, order_id)
    }

    /// Walmart: every token issued so far stops working, as if revoked or expired.
    pub fn expire_tokens(&self) {
        self.shared.with(|state| state.walmart_tokens.clear());
    }
}

impl Drop for FakeChannel {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
