use std::time::Duration;

use stockguard_channels::{
    AmazonClient, AmazonConfig, ClientOptions, EbayClient, EbayConfig, Listing, PushOutcome,
    ShopifyClient, ShopifyConfig, WalmartClient, WalmartConfig,
};
use stockguard_fake_channels::{
    DEFAULT_ACCESS_TOKEN, DEFAULT_WALMART_CLIENT_ID, DEFAULT_WALMART_CLIENT_SECRET, FakeChannels,
    FakeOptions,
};

pub const SELLER_ID: &str = "A2SELLER";
pub const MARKETPLACE_ID: &str = "ATVPDKIKX0DER";

pub async fn start_fakes() -> anyhow::Result<FakeChannels> {
    Ok(FakeChannels::start(FakeOptions::default()).await?)
}

pub fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(5),
        ..ClientOptions::default()
    }
}

pub fn shopify_client(fakes: &FakeChannels, token: &str) -> anyhow::Result<ShopifyClient> {
    let mut config = ShopifyConfig::new(fakes.shopify.url(), token);
    config.options = options();
    Ok(ShopifyClient::new(config)?)
}

pub fn amazon_config(fakes: &FakeChannels, token: &str) -> AmazonConfig {
    let mut config = AmazonConfig::new(fakes.amazon.url(), token, SELLER_ID, MARKETPLACE_ID);
    config.options = options();
    config
}

pub fn amazon_client(fakes: &FakeChannels, token: &str) -> anyhow::Result<AmazonClient> {
    Ok(AmazonClient::new(amazon_config(fakes, token))?)
}

pub fn walmart_config(fakes: &FakeChannels, secret: &str) -> WalmartConfig {
    let mut config = WalmartConfig::new(fakes.walmart.url(), DEFAULT_WALMART_CLIENT_ID, secret);
    config.options = options();
    config
}

pub fn walmart_client(fakes: &FakeChannels) -> anyhow::Result<WalmartClient> {
    Ok(WalmartClient::new(walmart_config(
        fakes,
        DEFAULT_WALMART_CLIENT_SECRET,
    ))?)
}

pub fn ebay_client(fakes: &FakeChannels, token: &str) -> anyhow::Result<EbayClient> {
    let mut config = EbayConfig::new(fakes.ebay.url(), token);
    config.options = options();
    Ok(EbayClient::new(config)?)
}

pub const TOKEN: &str = DEFAULT_ACCESS_TOKEN;

pub fn shopify_listing(item: u64, location: u64) -> Listing {
    Listing::Shopify {
        inventory_item_id: item.to_string(),
        location_id: location.to_string(),
    }
}

pub fn amazon_listing(sku: &str) -> Listing {
    Listing::Amazon {
        seller_sku: sku.to_owned(),
        product_type: "SHIRT".to_owned(),
    }
}

pub fn walmart_listing(sku: &str) -> Listing {
    Listing::Walmart {
        sku: sku.to_owned(),
    }
}

pub fn ebay_listing(sku: &str) -> Listing {
    Listing::Ebay {
        sku: sku.to_owned(),
        offer_id: format!("offer-{sku}"),
    }
}

#[track_caller]
pub fn assert_all_acknowledged(outcomes: &[PushOutcome]) {
    for (index, outcome) in outcomes.iter().enumerate() {
        assert!(
            outcome.is_acknowledged(),
            "update {index} was not acknowledged: {outcome:?}"
        );
    }
}

#[track_caller]
pub fn assert_permanent_with(outcome: &PushOutcome, words: &str) {
    match outcome {
        PushOutcome::Permanent { reason } => assert!(
            reason.contains(words),
            "the reason {reason:?} does not say {words:?}"
        ),
        other => panic!("expected a permanent failure saying {words:?}, got {other:?}"),
    }
}
