use crate::amazon::AmazonClient;
use crate::config::ChannelConfig;
use crate::ebay::EbayClient;
use crate::error::ChannelError;
use crate::model::{ChannelKind, Listing, PushOutcome, QuantityUpdate};
use crate::shopify::ShopifyClient;
use crate::walmart::WalmartClient;

/// Any one channel's client, for code that handles every channel the same way.
pub enum ChannelClient {
    Shopify(ShopifyClient),
    Amazon(AmazonClient),
    Walmart(WalmartClient),
    Ebay(EbayClient),
}

impl ChannelClient {
    pub fn new(config: impl Into<ChannelConfig>) -> Result<Self, ChannelError> {
        Ok(match config.into() {
            ChannelConfig::Shopify(c) => ChannelClient::Shopify(ShopifyClient::new(c)?),
            ChannelConfig::Amazon(c) => ChannelClient::Amazon(AmazonClient::new(c)?),
            ChannelConfig::Walmart(c) => ChannelClient::Walmart(WalmartClient::new(c)?),
            ChannelConfig::Ebay(c) => ChannelClient::Ebay(EbayClient::new(c)?),
        })
    }

    pub fn kind(&self) -> ChannelKind {
        match self {
            ChannelClient::Shopify(_) => ChannelKind::Shopify,
            ChannelClient::Amazon(_) => ChannelKind::Amazon,
            ChannelClient::Walmart(_) => ChannelKind::Walmart,
            ChannelClient::Ebay(_) => ChannelKind::Ebay,
        }
    }

    /// Pushes absolute quantities; one outcome per update, in the order given. Updates whose
    /// listing belongs to another channel are Permanent.
    pub async fn push(&self, updates: &[QuantityUpdate]) -> Vec<PushOutcome> {
        match self {
            ChannelClient::Shopify(c) => c.push(updates).await,
            ChannelClient::Amazon(c) => c.push(updates).await,
            ChannelClient::Walmart(c) => c.push(updates).await,
            ChannelClient::Ebay(c) => c.push(updates).await,
        }
    }

    /// The quantity the channel shows for the listing now.
    pub async fn read_shown(&self, listing: &Listing) -> Result<i64, ChannelError> {
        match self {
            ChannelClient::Shopify(c) => c.read_shown(listing).await,
            ChannelClient::Amazon(c) => c.read_shown(listing).await,
            ChannelClient::Walmart(c) => c.read_shown(listing).await,
            ChannelClient::Ebay(c) => c.read_shown(listing).await,
        }
    }
}
