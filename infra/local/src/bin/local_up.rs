//! `make local-up`: the whole stack on this machine, left running for exploring with the CLI and
//! the AWS CLI. Provisions template.yaml's resources in the emulator, starts the fake channels
//! (enabled, zero buffers, no listings), hosts every function and the reservations API, writes
//! `.local/stack.json` (contract section 4), and runs until interrupted (`make local-down`).

use anyhow::{Context, Result};
use serde_json::json;
use stockguard_fake_channels::{FakeChannels, FakeOptions};
use stockguard_handlers::{Deps, Settings};
use stockguard_local::fake_wiring::{
    SHOPIFY_WEBHOOK_SECRET, amazon_notification_feed, configure_fake_channels,
    send_shopify_webhooks,
};
use stockguard_local::template::workspace_root;
use stockguard_local::{LocalRuntime, RuntimeOptions, StackSpec, provision};

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let endpoint = std::env::var("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL is not set: run `make local-up`")?;
    // DynamoDB runs in its own emulator process unless STOCKGUARD_EMULATOR=plain.
    let dynamodb_endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let region = config
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into());
    let spec = StackSpec::load_default()?;
    let bus = spec
        .parameters
        .get(&spec.bus_name_parameter)
        .cloned()
        .unwrap_or_else(|| "stockguard".into());
    let stack = provision(&config, &spec, "", &bus).await?;
    let deps = Deps::new(&config, &stack.table, &stack.bus, None, Settings::default());
    // Marketplace orders come only as each marketplace sends them: Amazon's SP-API notifications
    // on their queue, Shopify's signed webhooks, Walmart's and eBay's orders APIs, polled.
    let amazon_queue = stack.queue("AmazonNotificationsQueue")?.url.clone();
    let (notifications, _notification_feed) = amazon_notification_feed(&config, &amazon_queue);
    let fakes =
        FakeChannels::start(FakeOptions::default().with_notification_sink(notifications)).await?;
    // Dynamic buffers (the default): zero until something sells or a demand signal arrives.
    configure_fake_channels(&config, &deps.store, "", &fakes, |_| {}).await?;
    let options = RuntimeOptions {
        api_addr: Some("127.0.0.1:0".parse()?),
        ..Default::default()
    };
    let runtime = LocalRuntime::start(&config, &spec, &stack, options).await?;
    let api_url = format!("http://{}", runtime.api_addr.context("API address")?);
    send_shopify_webhooks(&fakes, &api_url);
    let description = json!({
        "aws_endpoint_url": endpoint,
        "aws_endpoint_url_dynamodb": dynamodb_endpoint,
        "region": region,
        "table": stack.table,
        "event_bus": stack.bus,
        "api_url": api_url,
        "channels": {
            "shopify": fakes.shopify.url(),
            "amazon": fakes.amazon.url(),
            "walmart": fakes.walmart.url(),
            "ebay": fakes.ebay.url(),
        },
        "webhook_secrets": {"shopify": SHOPIFY_WEBHOOK_SECRET},
        "amazon_notifications_queue_url": amazon_queue,
    });
    let dir = workspace_root().join(".local");
    std::fs::create_dir_all(&dir)?;
    // Written last and atomically: its presence means the stack is ready.
    let tmp = dir.join("stack.json.tmp");
    std::fs::write(&tmp, serde_json::to_string_pretty(&description)?)?;
    std::fs::rename(&tmp, dir.join("stack.json"))?;
    println!("stockguard is up: {description}");
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    let _ = std::fs::remove_file(dir.join("stack.json"));
    drop(runtime);
    Ok(())
}
