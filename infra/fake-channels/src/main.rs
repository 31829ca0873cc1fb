//! `fake-channels`: starts the four fake channels, prints their URLs as one JSON line, then one
//! JSON line per order placed through `POST /_fake/orders`, until Ctrl-C.
//!
//! The Shopify, Amazon and eBay token is `FAKE_CHANNELS_TOKEN` (default `test-token`); Walmart's
//! client credentials are `test-client-id` / `test-client-secret`. Everything else is changed
//! through each fake's `/_fake/settings`.

use serde_json::json;
use stockguard_fake_channels::{FakeChannels, FakeOptions};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut options = FakeOptions::default().with_order_sink(|detail| {
        println!(
            "{}",
            json!({"detail_type": "OrderPlaced", "detail": detail})
        );
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
