//! Wires the fake channel servers into a stack as configured channels: credentials in Secrets
//! Manager, channel settings, listings, and the listings registered on the fakes.

use anyhow::{Context, Result};
use stockguard_adapters::StateStore;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::buffer::{BufferMode, DynamicPolicy};
use stockguard_domain::channel::{BufferPolicy, ChannelKind, ListingMapping};
use stockguard_domain::{ChannelName, Sku};
use stockguard_fake_channels::{FakeChannel, FakeChannels};

/// The fakes, named as the channels wired to them (each channel named after its kind).
pub const KINDS: [&str; 4] = ["shopify", "amazon", "walmart", "ebay"];
const SHOPIFY_LOCATION: &str = "77001";

/// A stable numeric Shopify inventory item id for a SKU (Shopify ids are numbers).
pub fn shopify_item_id(sku: &str) -> String {
    let h = sku.bytes().fold(1469598103934665603u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(1099511628211)
    });
    (h % 9_000_000_000_000 + 1_000_000_000_000).to_string()
}

/// The key a fake channel names a listing by.
pub fn listing_key(kind: &str, sku: &str) -> String {
    match kind.parse() {
        Ok(ChannelKind::Shopify) => format!("{}:{SHOPIFY_LOCATION}", shopify_item_id(sku)),
        _ => sku.to_owned(),
    }
}

/// The listing row a seller would import for `sku` on the fake `kind`.
pub fn mapping(name: &str, sku: &Sku) -> Result<ListingMapping> {
    let kind: ChannelKind = name.parse()?;
    Ok(ListingMapping {
        channel: ChannelName::parse(name).map_err(anyhow::Error::msg)?,
        sku: sku.clone(),
        listing_id: match kind {
            ChannelKind::Shopify => shopify_item_id(sku.as_str()),
            _ => sku.to_string(),
        },
        location_id: (kind == ChannelKind::Shopify).then(|| SHOPIFY_LOCATION.to_owned()),
        offer_id: (kind == ChannelKind::Ebay).then(|| format!("OFFER-{sku}")),
        product_type: (kind == ChannelKind::Amazon).then(|| "PRODUCT".to_owned()),
    })
}

pub fn fake<'a>(fakes: &'a FakeChannels, kind: &str) -> &'a FakeChannel {
    match kind {
        "shopify" => &fakes.shopify,
        "amazon" => &fakes.amazon,
        "walmart" => &fakes.walmart,
        _ => &fakes.ebay,
    }
}

/// The secret holding a channel's credentials in a stack provisioned with `prefix`: named as a
/// deployed stack names it (`stockguard/channels/<channel>`, which that channel's sync function
/// alone may read), with the prefix as a suffix so stacks sharing an emulator keep apart.
pub fn secret_name(prefix: &str, kind: &str) -> String {
    stack_secret_name(&format!("stockguard/channels/{kind}"), prefix)
}

/// A secret named `base` in a deployment, in a stack provisioned with `prefix`.
pub fn stack_secret_name(base: &str, prefix: &str) -> String {
    match prefix.trim_end_matches('-') {
        "" => base.to_owned(),
        stack => format!("{base}-{stack}"),
    }
}

/// The Shopify app's client secret that the fake Shopify signs its webhooks with.
pub const SHOPIFY_WEBHOOK_SECRET: &str = "fake-shopify-app-secret";

/// The template's default name of the webhook secret (parameter `ShopifyWebhookSecretName`).
pub const SHOPIFY_WEBHOOK_SECRET_NAME: &str = "stockguard/webhooks/shopify";

/// Makes the fake Shopify post its orders as signed webhooks to the stack's API at `api_url`,
/// as a Shopify app subscribed to `orders/create`, `orders/cancelled` and `refunds/create` does.
pub fn send_shopify_webhooks(fakes: &FakeChannels, api_url: &str) {
    let url = format!("{}/v1/webhooks/shopify", api_url.trim_end_matches('/'));
    fakes.shopify.update_settings(|s| {
        s.shopify_webhook_url = Some(url);
        s.shopify_webhook_secret = SHOPIFY_WEBHOOK_SECRET.to_owned();
    });
}

/// Configures the four channels against `fakes`: credentials in the secret [`secret_name`]
/// holding the fakes' credentials, the channel enabled with dynamic buffers at their defaults,
/// then `customise(settings)` for what a caller wants otherwise.
pub async fn configure_fake_channels(
    config: &aws_config::SdkConfig,
    store: &StateStore,
    prefix: &str,
    fakes: &FakeChannels,
    customise: impl Fn(&mut ChannelSettings),
) -> Result<()> {
    let secrets = aws_sdk_secretsmanager::Client::new(config);
    let webhook_secret = stack_secret_name(SHOPIFY_WEBHOOK_SECRET_NAME, prefix);
    secrets
        .create_secret()
        .name(&webhook_secret)
        .secret_string(SHOPIFY_WEBHOOK_SECRET)
        .send()
        .await
        .with_context(|| format!("creating secret {webhook_secret}"))?;
    for kind in KINDS {
        let name = secret_name(prefix, kind);
        let creds = serde_json::json!({"access_token": "test-token", "client_id": "test-client-id", "client_secret": "test-client-secret"});
        secrets
            .create_secret()
            .name(&name)
            .secret_string(creds.to_string())
            .send()
            .await
            .with_context(|| format!("creating secret {name}"))?;
        let mut settings = ChannelSettings {
            name: ChannelName::parse(kind).map_err(anyhow::Error::msg)?,
            kind: kind.parse()?,
            enabled: true,
            endpoint: fake(fakes, kind).url().to_owned(),
            credentials: name,
            buffer_mode: BufferMode::Dynamic,
            buffer: BufferPolicy::default(),
            dynamic: DynamicPolicy::default(),
            maximum: None,
            seller_id: None,
            marketplace_id: None,
        };
        // Amazon's seller and marketplace; eBay's marketplace stays the default, EBAY_US.
        if settings.kind == ChannelKind::Amazon {
            settings.seller_id = Some("A1SELLER".into());
            settings.marketplace_id = Some("ATVPDKIKX0DER".into());
        }
        customise(&mut settings);
        store.put_channel(&settings).await?;
    }
    Ok(())
}

/// A `customise` for [`configure_fake_channels`]: static mode with `policy` on every channel.
pub fn static_buffers(policy: BufferPolicy) -> impl Fn(&mut ChannelSettings) {
    move |s| {
        s.buffer_mode = BufferMode::Static;
        s.buffer = policy;
    }
}

/// Maps `skus` on every channel and registers the listings on the fakes.
pub async fn map_on_fakes(store: &StateStore, fakes: &FakeChannels, skus: &[Sku]) -> Result<()> {
    for kind in KINDS {
        let rows = skus
            .iter()
            .map(|s| mapping(kind, s))
            .collect::<Result<Vec<_>>>()?;
        store.put_listings(&rows).await?;
        for s in skus {
            fake(fakes, kind).register_listing(&listing_key(kind, s.as_str()), s.as_str(), 0);
        }
    }
    Ok(())
}

/// Puts the notifications the Amazon fake sends on `queue_url`, as SP-API delivers to an SQS
/// destination. Returns the sink to give the fakes and the sending task.
pub fn amazon_notification_feed(
    config: &aws_config::SdkConfig,
    queue_url: &str,
) -> (
    impl Fn(String) + Send + Sync + 'static,
    tokio::task::JoinHandle<()>,
) {
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    let sqs = aws_sdk_sqs::Client::new(config);
    let queue_url = queue_url.to_owned();
    let task = tokio::spawn(async move {
        while let Some(body) = rx.recv().await {
            if let Err(e) = sqs
                .send_message()
                .queue_url(&queue_url)
                .message_body(body)
                .send()
                .await
            {
                tracing::error!(error = %aws_sdk_sqs::error::DisplayErrorContext(e), "could not send an Amazon notification");
            }
        }
    });
    (move |body| drop(tx.send(body)), task)
}
