//! `fake-channels`: starts the four fake channels, prints their URLs as one JSON line, then one
//! JSON line per SP-API notification the Amazon fake sends, until Ctrl-C. Orders placed through
//! `POST /_fake/orders` reach a seller as each marketplace sends them: Shopify posts webhooks to
//! the URL in its `/_fake/settings`, Walmart and eBay list them in their orders APIs.
//!
//! The Shopify, Amazon and eBay token is `FAKE_CHANNELS_TOKEN` (default `test-token`); Walmart's
//! client credentials are `test-client-id` / `test-client-secret`. Everything else is changed
//! through each fake's `/_fake/settings`.

use serde_json::json;
use stockguard_fake_channels::{FakeChannels, FakeOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut options = FakeOptions::default().with_notification_sink(|body| {
        println!("{}", json!({"amazon_notification": body}));
    });
    if let Ok(token) = std::env::var("FAKE_CHANNELS_TOKEN") {
        options.access_token = token;
    }
    let fakes = FakeChannels::start(options).await?;
    println!("{}", fakes.urls());
    tokio::signal::ctrl_c().await?;
    drop(fakes);
    Ok(())
}
