//! What each client needs: where the channel is, the credentials, and how patient to be.

use std::fmt;
use std::time::Duration;

use crate::model::ChannelKind;

/// A credential. Its `Debug` never shows the value, so configurations can be logged.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Timeouts and the throttling retry budget, common to every client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientOptions {
    /// The whole of one HTTP request, connection included.
    pub timeout: Duration,
    /// How many times one call is sent again after the channel throttled it.
    pub max_throttle_retries: u32,
    /// A throttled call whose channel asks for a longer wait than this is not waited for inside
    /// the client; it comes back Retryable with the wait, for the caller to schedule.
    pub max_throttle_wait: Duration,
    /// The wait after a 429 that carries no signal of its own.
    pub fallback_throttle_wait: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(5),
            max_throttle_retries: 3,
            max_throttle_wait: Duration::from_secs(30),
            fallback_throttle_wait: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone)]
pub struct ShopifyConfig {
    /// `https://{shop}.myshopify.com`, or a fake's URL.
    pub base_url: String,
    pub access_token: Secret,
    pub api_version: String,
    pub options: ClientOptions,
}

impl ShopifyConfig {
    pub const DEFAULT_API_VERSION: &'static str = "2026-04";

    pub fn new(base_url: impl Into<String>, access_token: impl Into<Secret>) -> Self {
        Self {
            base_url: base_url.into(),
            access_token: access_token.into(),
            api_version: Self::DEFAULT_API_VERSION.to_owned(),
            options: ClientOptions::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct AmazonConfig {
    /// `https://sellingpartnerapi-na.amazon.com`, or a fake's URL.
    pub base_url: String,
    /// The LWA access token.
    pub access_token: Secret,
    pub seller_id: String,
    pub marketplace_id: String,
    /// Our side of the Listings API limit (5 requests/s, burst 5, per seller).
    pub requests_per_second: f64,
    pub burst: u32,
    pub options: ClientOptions,
}

impl AmazonConfig {
    pub fn new(
        base_url: impl Into<String>,
        access_token: impl Into<Secret>,
        seller_id: impl Into<String>,
        marketplace_id: impl Into<String>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            access_token: access_token.into(),
            seller_id: seller_id.into(),
            marketplace_id: marketplace_id.into(),
            requests_per_second: 5.0,
            burst: 5,
            options: ClientOptions::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct WalmartConfig {
    /// `https://marketplace.walmartapis.com`, or a fake's URL.
    pub base_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Sent as `WM_SVC.NAME`.
    pub service_name: String,
    pub options: ClientOptions,
}

impl WalmartConfig {
    pub fn new(
        base_url: impl Into<String>,
        client_id: impl Into<String>,
        client_secret: impl Into<Secret>,
    ) -> Self {
        Self {
            base_url: base_url.into(),
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            service_name: "Walmart Marketplace".to_owned(),
            options: ClientOptions::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct EbayConfig {
    /// `https://api.ebay.com`, or a fake's URL.
    pub base_url: String,
    /// A user access token with the `sell.inventory` and `sell.fulfillment` scopes.
    pub access_token: Secret,
    /// The seller's eBay marketplace (`EBAY_US`, `EBAY_GB`, `EBAY_DE`, ...), which the Post-Order
    /// API's cancellation needs.
    pub marketplace_id: String,
    pub options: ClientOptions,
}

/// The marketplace of an eBay channel that names none.
pub const EBAY_DEFAULT_MARKETPLACE: &str = "EBAY_US";

impl EbayConfig {
    pub fn new(base_url: impl Into<String>, access_token: impl Into<Secret>) -> Self {
        Self {
            base_url: base_url.into(),
            access_token: access_token.into(),
            marketplace_id: EBAY_DEFAULT_MARKETPLACE.to_owned(),
            options: ClientOptions::default(),
        }
    }

    /// On another marketplace than [`EBAY_DEFAULT_MARKETPLACE`].
    pub fn with_marketplace(mut self, marketplace_id: impl Into<String>) -> Self {
        self.marketplace_id = marketplace_id.into();
        self
    }
}

/// The configuration of any one channel client.
#[derive(Debug, Clone)]
pub enum ChannelConfig {
    Shopify(ShopifyConfig),
    Amazon(AmazonConfig),
    Walmart(WalmartConfig),
    Ebay(EbayConfig),
}

impl ChannelConfig {
    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelConfig::Shopify(_) => ChannelKind::Shopify,
            ChannelConfig::Amazon(_) => ChannelKind::Amazon,
            ChannelConfig::Walmart(_) => ChannelKind::Walmart,
            ChannelConfig::Ebay(_) => ChannelKind::Ebay,
        }
    }

    pub fn options_mut(&mut self) -> &mut ClientOptions {
        match self {
            ChannelConfig::Shopify(c) => &mut c.options,
            ChannelConfig::Amazon(c) => &mut c.options,
            ChannelConfig::Walmart(c) => &mut c.options,
            ChannelConfig::Ebay(c) => &mut c.options,
        }
    }
}

impl From<ShopifyConfig> for ChannelConfig {
    fn from(config: ShopifyConfig) -> Self {
        ChannelConfig::Shopify(config)
    }
}

impl From<AmazonConfig> for ChannelConfig {
    fn from(config: AmazonConfig) -> Self {
        ChannelConfig::Amazon(config)
    }
}

impl From<WalmartConfig> for ChannelConfig {
    fn from(config: WalmartConfig) -> Self {
        ChannelConfig::Walmart(config)
    }
}

impl From<EbayConfig> for ChannelConfig {
    fn from(config: EbayConfig) -> Self {
        ChannelConfig::Ebay(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let config = EbayConfig::new("http://127.0.0.1:1", "very-secret");
        assert!(!format!("{config:?}").contains("very-secret"));
    }
}
