use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use stockguard_fake_channels::{FakeChannels, FakeOptions, FakeStats, OrderError, OrderRequest};
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn settings_shown_quantities_and_stats_over_http() -> anyhow::Result<()> {
    let fakes = FakeChannels::start(FakeOptions::default()).await?;
    let http = reqwest::Client::new();
    let base = fakes.walmart.url();

    let settings: Value = http
        .put(format!("{base}/_fake/settings"))
        .json(&json!({"latency_ms": 5, "accept_any_listing": false}))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(settings["latency_ms"], json!(5));
    assert_eq!(settings["throttle_rate"], json!(0.0));
    assert!(!fakes.walmart.settings().accept_any_listing);
    let refused = http
        .put(format!("{base}/_fake/settings"))
        .json(&json!({"error_rate": 3}))
        .send()
        .await?;
    assert_eq!(refused.status(), 400);

    let put = http
        .put(format!("{base}/_fake/shown/WM-1"))
        .json(&json!({"quantity": 4}))
        .send()
        .await?;
    assert!(put.status().is_success());
    let shown: Value = http
        .get(format!("{base}/_fake/shown/WM-1"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(shown, json!({"listing_key": "WM-1", "quantity": 4}));
    let missing = http.get(format!("{base}/_fake/shown/WM-2")).send().await?;
    assert_eq!(missing.status(), 404);

    let registered = http
        .post(format!("{base}/_fake/listings"))
        .json(&json!({"listing_key": "WM-3", "sku": "TEE-3", "quantity": 2}))
        .send()
        .await?;
    assert_eq!(registered.status(), 201);
    assert_eq!(fakes.walmart.shown("WM-3"), Some(2));

    let stats: FakeStats = http
        .get(format!("{base}/_fake/stats"))
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(stats, fakes.walmart.stats());
    Ok(())
}

#[tokio::test]
async fn an_order_takes_shown_units_and_is_sent_as_the_channel_sends_it() -> anyhow::Result<()> {
    let sent: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = Arc::clone(&sent);
    let options = FakeOptions::default().with_notification_sink(move |body| {
        sink.lock().unwrap_or_else(|e| e.into_inner()).push(body);
    });
    let fakes = FakeChannels::start(options).await?;
    fakes.amazon.register_listing("AMZ-RED-M", "TEE-RED-M", 5);
    fakes.amazon.register_listing("AMZ-RED-M-B", "TEE-RED-M", 5);
    let http = reqwest::Client::new();
    let orders = format!("{}/_fake/orders", fakes.amazon.url());

    let placed = http
        .post(&orders)
        .json(&json!({"order_id": "113-1", "lines": [
            {"listing_key": "AMZ-RED-M", "quantity": 2},
            {"listing_key": "AMZ-RED-M-B", "quantity": 1}]}))
        .send()
        .await?;
    assert_eq!(placed.status(), 201);
    let answer: Value = placed.json().await?;
    assert_eq!(
        answer,
        json!({"order_id": "amazon-113-1", "channel": "amazon"})
    );
    assert_eq!(fakes.amazon.shown("AMZ-RED-M"), Some(3));
    assert_eq!(fakes.amazon.shown("AMZ-RED-M-B"), Some(4));
    // Amazon's own word for the order: an ORDER_CHANGE naming each listing sold.
    let notification: Value =
        serde_json::from_str(&sent.lock().unwrap_or_else(|e| e.into_inner())[0])?;
    assert_eq!(notification["NotificationType"], "ORDER_CHANGE");
    let items = &notification["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"];
    assert_eq!(items[0]["SellerSKU"], "AMZ-RED-M");
    assert_eq!(items[1]["Quantity"], 1);

    // A marketplace sells only what it shows.
    let too_many = http
        .post(&orders)
        .json(&json!({"lines": [{"listing_key": "AMZ-RED-M", "quantity": 4}]}))
        .send()
        .await?;
    assert_eq!(too_many.status(), 409);
    assert_eq!(fakes.amazon.shown("AMZ-RED-M"), Some(3));

    let unknown = fakes.amazon.place_order(&OrderRequest::new([("NOPE", 1)]));
    assert_eq!(unknown, Err(OrderError::UnknownListing("NOPE".into())));
    let by_api = fakes
        .amazon
        .place_order(&OrderRequest::new([("AMZ-RED-M", 3)]))?;
    assert!(
        by_api["order_id"]
            .as_str()
            .is_some_and(|id| id.starts_with("amazon-"))
    );
    assert_eq!(fakes.amazon.shown("AMZ-RED-M"), Some(0));
    assert_eq!(sent.lock().unwrap_or_else(|e| e.into_inner()).len(), 2);
    assert_eq!(fakes.amazon.stats().orders, 2);
    Ok(())
}

#[tokio::test]
async fn the_binary_prints_the_urls_of_four_working_fakes() -> anyhow::Result<()> {
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_fake-channels"))
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow::anyhow!("no stdout"))?;
    let mut lines = BufReader::new(stdout).lines();
    let first = lines
        .next_line()
        .await?
        .ok_or_else(|| anyhow::anyhow!("the binary printed nothing"))?;
    let urls: Value = serde_json::from_str(&first)?;

    let http = reqwest::Client::new();
    for channel in ["shopify", "amazon", "walmart", "ebay"] {
        let url = urls[channel]
            .as_str()
            .ok_or_else(|| anyhow::anyhow!("no {channel} url in {first}"))?;
        let stats = http.get(format!("{url}/_fake/stats")).send().await?;
        assert!(stats.status().is_success(), "{channel}");
    }
    let ebay = urls["ebay"].as_str().unwrap_or_default();
    http.put(format!("{ebay}/_fake/shown/EB-1"))
        .json(&json!({"quantity": 2}))
        .send()
        .await?;
    let placed: Value = http
        .post(format!("{ebay}/_fake/orders"))
        .json(&json!({"lines": [{"listing_key": "EB-1", "quantity": 1}]}))
        .send()
        .await?
        .json()
        .await?;
    // eBay lists the order in its orders API, for the seller to poll.
    let listed: Value = http
        .get(format!("{ebay}/sell/fulfillment/v1/order"))
        .bearer_auth("test-token")
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(listed["total"], json!(1));
    let id = placed["order_id"].as_str().unwrap_or_default();
    assert_eq!(
        format!(
            "ebay-{}",
            listed["orders"][0]["orderId"].as_str().unwrap_or_default()
        ),
        id
    );
    assert_eq!(listed["orders"][0]["lineItems"][0]["sku"], json!("EB-1"));

    child.kill().await?;
    Ok(())
}
