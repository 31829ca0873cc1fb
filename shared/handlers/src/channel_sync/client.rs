//! The channel's client, built from its settings and its secret, and its item for a listing.

use std::sync::Arc;

use serde_json::Value;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_channels::{
    AmazonConfig, ChannelClient, ChannelConfig, ChannelKind, EbayConfig, Listing, ShopifyConfig,
    WalmartConfig,
};
use stockguard_domain::channel::ListingMapping;

use super::ChannelSync;

impl ChannelSync {
    pub(crate) async fn client_for(
        &self,
        settings: &ChannelSettings,
    ) -> Result<Arc<ChannelClient>, String> {
        let mut cached = self.client.lock().await;
        if let Some((s, c)) = cached.as_ref()
            && s == settings
        {
            return Ok(c.clone());
        }
        let secret = self
            .deps
            .clients
            .secrets
            .get_secret_value()
            .secret_id(&settings.credentials)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading secret {}: {}",
                    settings.credentials,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
        let creds: Value = serde_json::from_str(secret.secret_string().unwrap_or("{}"))
            .map_err(|e| format!("secret {} is not JSON: {e}", settings.credentials))?;
        // Missing credentials or ids are an error: a call with empty ones would only be refused.
        let field = |name: &str| {
            creds[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!(
                        "secret {} has no `{name}`, which a {} channel needs",
                        settings.credentials, settings.kind
                    )
                })
        };
        let setting = |value: &Option<String>, option: &str| {
            value.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                format!(
                    "channel {} has no {option}: set it with `stockguard channels set {} --{option} ...`",
                    settings.name, settings.name
                )
            })
        };
        let config: ChannelConfig = match settings.kind {
            ChannelKind::Shopify => {
                ShopifyConfig::new(&settings.endpoint, field("access_token")?).into()
            }
            ChannelKind::Amazon => AmazonConfig::new(
                &settings.endpoint,
                field("access_token")?,
                setting(&settings.seller_id, "seller-id")?,
                setting(&settings.marketplace_id, "marketplace-id")?,
            )
            .into(),
            ChannelKind::Walmart => WalmartConfig::new(
                &settings.endpoint,
                field("client_id")?,
                field("client_secret")?,
            )
            .into(),
            ChannelKind::Ebay => {
                let config = EbayConfig::new(&settings.endpoint, field("access_token")?);
                match settings.marketplace_id.as_deref().filter(|m| !m.is_empty()) {
                    Some(marketplace) => config.with_marketplace(marketplace),
                    None => config,
                }
                .into()
            }
        };
        let client = Arc::new(ChannelClient::new(config).map_err(|e| e.to_string())?);
        *cached = Some((settings.clone(), client.clone()));
        Ok(client)
    }
}

/// The channel's item for a listing, shaped by the channel's kind (not its name: a channel named
/// `amazon-eu` is an Amazon channel).
pub fn to_channel_listing(kind: ChannelKind, l: &ListingMapping) -> Listing {
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    match kind {
        ChannelKind::Shopify => Listing::Shopify {
            inventory_item_id: l.listing_id.clone(),
            location_id: or_empty(&l.location_id),
        },
        ChannelKind::Amazon => Listing::Amazon {
            seller_sku: l.listing_id.clone(),
            product_type: or_empty(&l.product_type),
        },
        ChannelKind::Ebay => Listing::Ebay {
            sku: l.listing_id.clone(),
            offer_id: or_empty(&l.offer_id),
        },
        ChannelKind::Walmart => Listing::Walmart {
            sku: l.listing_id.clone(),
        },
    }
}
