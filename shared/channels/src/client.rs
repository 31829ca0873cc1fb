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

    /// Cancels one of our orders on its channel because its stock is gone: Shopify's
    /// `orderCancel`, Amazon's cancelOrder, Walmart's order cancellation, eBay's Post-Order
    /// cancellation. `our_order_id` is the id stockguard gave the order when the channel reported
    /// it, `<channel>-<the channel's order id>` (`shopify-820982911946154508`,
    /// `amazon-113-4567890-1234567`, `walmart-1796277083022`, `ebay-27-05871-19632`). Each
    /// channel then reports the cancellation as it reports any (webhook, notification, orders
    /// API), which releases the order. An order the channel shows cancelled already is left as
    /// it is. `false`: nothing was asked of the channel, since the id is not in that form (the
    /// order reached stockguard some other way, and the channel's own id for it is unknown).
    pub async fn cancel_order(&self, our_order_id: &str) -> Result<bool, ChannelError> {
        let Some(id) = channel_order_id(self.kind(), our_order_id) else {
            return Ok(false);
        };
        match self {
            ChannelClient::Shopify(c) => c.cancel_order(id).await?,
            ChannelClient::Amazon(c) => c.cancel_order(id).await?,
            ChannelClient::Walmart(c) => c.cancel_order(id).await?,
            ChannelClient::Ebay(c) => c.cancel_order(id).await?,
        }
        Ok(true)
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

/// The channel's own id of one of our orders on `kind`: what follows `<channel>-`.
fn channel_order_id(kind: ChannelKind, our_order_id: &str) -> Option<&str> {
    our_order_id
        .strip_prefix(kind.as_str())?
        .strip_prefix('-')
        .filter(|id| !id.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_channels_order_id_is_what_follows_its_name() {
        assert_eq!(
            channel_order_id(ChannelKind::Amazon, "amazon-113-4567890-1234567"),
            Some("113-4567890-1234567")
        );
        assert_eq!(
            channel_order_id(ChannelKind::Shopify, "shopify-820982911946154508"),
            Some("820982911946154508")
        );
        assert_eq!(
            channel_order_id(ChannelKind::Ebay, "ebay-27-05871-19632"),
            Some("27-05871-19632")
        );
        // Another channel's order, or one that reached stockguard some other way.
        assert_eq!(
            channel_order_id(ChannelKind::Walmart, "ebay-27-05871-19632"),
            None
        );
        assert_eq!(channel_order_id(ChannelKind::Amazon, "amz-2"), None);
        assert_eq!(channel_order_id(ChannelKind::Amazon, "amazon-"), None);
        assert_eq!(channel_order_id(ChannelKind::Amazon, "amazonian-1"), None);
    }
}
