use std::time::Duration;

use stockguard_channels::QuantityUpdate;
use tokio::time::Instant;

use crate::common::*;

#[tokio::test]
async fn a_push_is_accepted_at_once_but_shows_only_after_the_processing_delay() -> anyhow::Result<()>
{
    let fakes = start_fakes().await?;
    let delay = Duration::from_millis(1000);
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 1000);
    fakes
        .amazon
        .register_listing("AMZ-TEE-RED-M", "TEE-RED-M", 3);
    let client = amazon_client(&fakes, TOKEN)?;
    let listing = amazon_listing("AMZ-TEE-RED-M");

    let pushed_at = Instant::now();
    let outcomes = client
        .push(&[QuantityUpdate::new("TEE-RED-M", listing.clone(), 9)])
        .await;
    assert_all_acknowledged(&outcomes);
    let shown_right_after = client.read_shown(&listing).await?;
    let first_read_done = pushed_at.elapsed();

    let mut shown = shown_right_after;
    while shown != 9 && pushed_at.elapsed() < Duration::from_secs(10) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        shown = client.read_shown(&listing).await?;
    }

    // The quantity is due no earlier than `delay` after `pushed_at`; a read that had come back
    // before then must have seen the old one.
    if first_read_done < delay {
        assert_eq!(
            shown_right_after, 3,
            "the new quantity showed before the delay"
        );
    }
    assert_eq!(shown, 9, "the new quantity never showed");
    assert_eq!(fakes.amazon.shown("AMZ-TEE-RED-M"), Some(9));
    Ok(())
}

#[tokio::test]
async fn the_old_quantity_shows_until_the_delay_has_passed() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    // Long enough that no slow machine reads after it.
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 60_000);
    fakes.amazon.register_listing("AMZ-1", "S1", 3);
    let client = amazon_client(&fakes, TOKEN)?;

    let outcomes = client
        .push(&[QuantityUpdate::new("S1", amazon_listing("AMZ-1"), 9)])
        .await;

    assert_all_acknowledged(&outcomes);
    assert_eq!(client.read_shown(&amazon_listing("AMZ-1")).await?, 3);
    assert_eq!(fakes.amazon.shown("AMZ-1"), Some(3));
    Ok(())
}

#[tokio::test]
async fn a_429_is_retried_after_the_rate_limit_signal() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    // Slower than the client's own 5/s pacing, so the fake has to say 429.
    fakes.amazon.update_settings(|s| {
        s.amazon_processing_delay_ms = 0;
        s.amazon_requests_per_second = 1.0;
        s.amazon_burst = 1.0;
    });
    let client = amazon_client(&fakes, TOKEN)?;
    let updates: Vec<QuantityUpdate> = ["A", "B", "C"]
        .iter()
        .map(|sku| QuantityUpdate::new(*sku, amazon_listing(sku), 4))
        .collect();

    let outcomes = client.push(&updates).await;

    assert_all_acknowledged(&outcomes);
    let stats = fakes.amazon.stats();
    assert!(stats.throttled >= 1, "never throttled: {stats:?}");
    assert_eq!(stats.push_calls, 3);
    for sku in ["A", "B", "C"] {
        assert_eq!(fakes.amazon.shown(sku), Some(4));
    }
    Ok(())
}

#[tokio::test]
async fn the_client_paces_itself_to_stay_under_the_limit() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    // The fake refills twice as fast as the client's 5/s, so only an unpaced client meets a 429.
    fakes.amazon.update_settings(|s| {
        s.amazon_processing_delay_ms = 0;
        s.amazon_requests_per_second = 10.0;
        s.amazon_burst = 5.0;
    });
    let client = amazon_client(&fakes, TOKEN)?;
    let updates: Vec<QuantityUpdate> = (0..12)
        .map(|i| QuantityUpdate::new(format!("S{i}"), amazon_listing(&format!("S{i}")), i))
        .collect();

    let outcomes = client.push(&updates).await;

    assert_all_acknowledged(&outcomes);
    assert_eq!(fakes.amazon.stats().throttled, 0);
    Ok(())
}

#[tokio::test]
async fn an_unknown_listing_is_invalid_and_permanent() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes
        .amazon
        .update_settings(|s| s.accept_any_listing = false);
    let client = amazon_client(&fakes, TOKEN)?;

    let outcomes = client
        .push(&[QuantityUpdate::new("S1", amazon_listing("NOPE"), 1)])
        .await;

    assert_permanent_with(&outcomes[0], "INVALID");
    assert_eq!(fakes.amazon.stats().items_rejected, 1);
    let read = client.read_shown(&amazon_listing("NOPE")).await;
    assert!(
        read.as_ref()
            .is_err_and(|e| e.is_unknown_listing() && e.status() == Some(404)),
        "{read:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_permanent() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = amazon_client(&fakes, "expired-lwa-token")?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("S1", amazon_listing("S1"), 1),
            QuantityUpdate::new("S2", amazon_listing("S2"), 1),
        ])
        .await;

    assert_permanent_with(&outcomes[0], "HTTP 401");
    assert_permanent_with(&outcomes[1], "not sent");
    assert_eq!(fakes.amazon.stats().requests, 1);
    let read = client.read_shown(&amazon_listing("S1")).await;
    assert!(
        read.as_ref()
            .is_err_and(|e| e.is_unauthorized() && !e.is_retryable()),
        "{read:?}"
    );
    Ok(())
}

/// The fake Amazon, started with a sink that keeps every notification it sends.
async fn start_notifying() -> anyhow::Result<(
    stockguard_fake_channels::FakeChannels,
    std::sync::Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
)> {
    use std::sync::{Arc, Mutex};
    let sent = Arc::new(Mutex::new(Vec::new()));
    let keep = sent.clone();
    let fakes = stockguard_fake_channels::FakeChannels::start(
        stockguard_fake_channels::FakeOptions::default().with_notification_sink(move |body| {
            let body = serde_json::from_str(&body).unwrap_or_default();
            keep.lock().unwrap_or_else(|e| e.into_inner()).push(body);
        }),
    )
    .await?;
    Ok((fakes, sent))
}

#[tokio::test]
async fn a_cancellation_is_announced_as_amazon_announces_it_and_a_repeat_changes_nothing()
-> anyhow::Result<()> {
    use stockguard_fake_channels::OrderRequest;
    let (fakes, sent) = start_notifying().await?;
    fakes.amazon.register_listing("AMZ-C1", "TEE", 5);
    fakes
        .amazon
        .place_order(&OrderRequest::new([("AMZ-C1", 2)]).with_order_id("113-0000001-0000009"))?;
    let client = amazon_client(&fakes, TOKEN)?;

    client.cancel_order("113-0000001-0000009").await?;
    assert_eq!(fakes.amazon.stats().orders_cancelled, 1);
    let notifications = sent.lock().unwrap_or_else(|e| e.into_inner()).clone();
    assert_eq!(notifications.len(), 2, "placed, then cancelled");
    let change = &notifications[1]["Payload"]["OrderChangeNotification"];
    assert_eq!(notifications[1]["NotificationType"], "ORDER_CHANGE");
    assert_eq!(change["AmazonOrderId"], "113-0000001-0000009");
    assert_eq!(change["Summary"]["OrderStatus"], "Canceled");

    // Again, as a retried compensation would: Amazon refuses it, getOrder shows the order
    // cancelled, and that is done.
    client.cancel_order("113-0000001-0000009").await?;
    assert_eq!(fakes.amazon.stats().orders_cancelled, 1);
    assert_eq!(sent.lock().unwrap_or_else(|e| e.into_inner()).len(), 2);

    let unknown = client
        .cancel_order("113-9999999-9999999")
        .await
        .unwrap_err();
    assert_eq!(unknown.status(), Some(404), "{unknown}");
    assert!(!unknown.is_retryable(), "{unknown}");
    Ok(())
}

#[tokio::test]
async fn our_order_ids_are_cancelled_through_the_channel_client() -> anyhow::Result<()> {
    use stockguard_channels::ChannelClient;
    use stockguard_fake_channels::OrderRequest;
    let (fakes, _sent) = start_notifying().await?;
    fakes.amazon.register_listing("AMZ-C2", "TEE", 5);
    let placed = fakes
        .amazon
        .place_order(&OrderRequest::new([("AMZ-C2", 1)]))?;
    let ours = placed["order_id"].as_str().unwrap_or_default();
    let client = ChannelClient::new(amazon_config(&fakes, TOKEN))?;

    assert!(client.cancel_order(ours).await?);
    assert_eq!(fakes.amazon.stats().orders_cancelled, 1);
    // An order that reached stockguard some other way: nothing to ask Amazon.
    let requests = fakes.amazon.stats().requests;
    assert!(!client.cancel_order("amz-2").await?);
    assert_eq!(fakes.amazon.stats().requests, requests);
    Ok(())
}

#[tokio::test]
async fn the_fake_takes_cancel_order_only_as_amazon_defines_it() -> anyhow::Result<()> {
    use stockguard_fake_channels::OrderRequest;
    let (fakes, _sent) = start_notifying().await?;
    fakes.amazon.register_listing("AMZ-C3", "TEE", 5);
    fakes
        .amazon
        .place_order(&OrderRequest::new([("AMZ-C3", 1)]).with_order_id("114-0000001-0000001"))?;
    let http = reqwest::Client::new();
    let cancel = |id: &str, token: &str, body: serde_json::Value| {
        http.put(format!(
            "{}/orders/2026-01-01/orders/{id}/cancellation",
            fakes.amazon.url()
        ))
        .header("x-amz-access-token", token)
        .json(&body)
        .send()
    };
    let reason = serde_json::json!({"cancelReasonCode": "NO_INVENTORY"});
    let status = |r: reqwest::Response| r.status().as_u16();

    assert_eq!(
        status(cancel("114-0000001-0000001", "wrong", reason.clone()).await?),
        401
    );
    for bad in [
        serde_json::json!({"cancelReasonCode": "OUT_OF_STOCK"}),
        serde_json::json!({"reason": "NO_INVENTORY"}),
        serde_json::json!({"cancelReasonCode": 1}),
    ] {
        let answer = cancel("114-0000001-0000001", TOKEN, bad.clone()).await?;
        assert_eq!(answer.status().as_u16(), 400, "{bad}");
        let body: serde_json::Value = answer.json().await?;
        assert_eq!(body["errors"][0]["code"], "InvalidInput", "{body}");
    }
    assert_eq!(
        status(cancel("TEST_CASE_400", TOKEN, reason.clone()).await?),
        400
    );
    assert_eq!(
        status(cancel("114-9999999-0000001", TOKEN, reason.clone()).await?),
        404
    );
    assert_eq!(fakes.amazon.stats().orders_cancelled, 0);
    // Five calls made the burst: the sixth waits for cancelOrder's one request a second.
    let throttled = cancel("114-0000001-0000001", TOKEN, reason.clone()).await?;
    assert_eq!(throttled.status().as_u16(), 429);
    assert_eq!(throttled.headers()["x-amzn-RateLimit-Limit"], "1");
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;

    let answer = cancel("114-0000001-0000001", TOKEN, reason.clone()).await?;
    assert_eq!(answer.status().as_u16(), 202);
    assert_eq!(fakes.amazon.stats().orders_cancelled, 1);
    let order: serde_json::Value = http
        .get(format!(
            "{}/orders/2026-01-01/orders/114-0000001-0000001?includedData=FULFILLMENT",
            fakes.amazon.url()
        ))
        .header("x-amz-access-token", TOKEN)
        .send()
        .await?
        .json()
        .await?;
    assert_eq!(
        order["order"]["fulfillment"]["fulfillmentStatus"],
        "CANCELLED"
    );
    assert_eq!(
        order["order"]["orderItems"][0]["product"]["sellerSku"],
        "AMZ-C3"
    );
    Ok(())
}

/// The fake Amazon with three listings and an order of all three, placed without a notification
/// sink: the client has to read the items.
async fn three_line_order(
    order_id: &str,
) -> anyhow::Result<stockguard_fake_channels::FakeChannels> {
    use stockguard_fake_channels::OrderRequest;
    let fakes = start_fakes().await?;
    for (key, sku) in [("AMZ-L1", "TEE-S"), ("AMZ-L2", "TEE-M"), ("AMZ-L3", "CAP")] {
        fakes.amazon.register_listing(key, sku, 10);
    }
    fakes.amazon.place_order(
        &OrderRequest::new([("AMZ-L1", 2), ("AMZ-L2", 1), ("AMZ-L3", 4)]).with_order_id(order_id),
    )?;
    Ok(fakes)
}

#[tokio::test]
async fn an_orders_items_are_read_with_one_get_order_in_amazons_shape() -> anyhow::Result<()> {
    let fakes = three_line_order("115-0000001-0000001").await?;
    let client = amazon_client(&fakes, TOKEN)?;

    let items = client.order_items("115-0000001-0000001").await?;

    let stats = fakes.amazon.stats();
    assert_eq!((stats.requests, stats.order_reads), (1, 1), "{stats:?}");
    // Orders API v2026-01-01 names: the seller SKU under `product`.
    assert_eq!(items.len(), 3, "{items:?}");
    assert_eq!(items[0]["product"]["sellerSku"], "AMZ-L1");
    assert_eq!(items[2]["quantityOrdered"], 4);
    assert!(
        items.iter().all(|i| i["orderItemId"].is_string()),
        "{items:?}"
    );
    let lines = stockguard_domain::amazon::parse_order_items(&items)?;
    let read: Vec<(&str, i64)> = lines
        .iter()
        .map(|l| (l.seller_sku.as_str(), l.quantity))
        .collect();
    assert_eq!(read, [("AMZ-L1", 2), ("AMZ-L2", 1), ("AMZ-L3", 4)]);
    let mut ids: Vec<&str> = lines.iter().map(|l| l.order_item_id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), 3, "one id per item: {ids:?}");

    let unknown = client.order_items("115-9999999-9999999").await.unwrap_err();
    assert_eq!(unknown.status(), Some(404), "{unknown}");
    assert!(!unknown.is_retryable(), "{unknown}");
    Ok(())
}

#[tokio::test]
async fn reading_items_keeps_to_get_orders_limit() -> anyhow::Result<()> {
    let fakes = three_line_order("115-0000001-0000002").await?;
    let client = std::sync::Arc::new(amazon_client(&fakes, TOKEN)?);
    let started = Instant::now();
    // getOrder allows a burst of 30, then one request every 2 s.
    let reads = tokio::spawn({
        let client = client.clone();
        async move {
            for _ in 0..32 {
                let items = client.order_items("115-0000001-0000002").await?;
                anyhow::ensure!(items.len() == 3, "{items:?}");
            }
            anyhow::Ok(())
        }
    });
    // Only a lower bound: a slow machine makes the reads slower, never faster than the limit.
    reads.await??;
    assert!(
        started.elapsed() >= Duration::from_millis(3900),
        "two reads beyond the burst take 4 s: {:?}",
        started.elapsed()
    );
    let stats = fakes.amazon.stats();
    assert_eq!(stats.order_reads, 32);
    // The client waits its turn rather than learning the limit from 429s (one may slip in when
    // its clock and the channel's differ by a millisecond at a refill).
    assert!(stats.throttled <= 1, "{stats:?}");
    Ok(())
}

#[tokio::test]
async fn the_fake_serves_get_order_as_amazon_defines_it() -> anyhow::Result<()> {
    let fakes = three_line_order("115-0000001-0000003").await?;
    let http = reqwest::Client::new();
    let get = |path: &str| {
        http.get(format!("{}{path}", fakes.amazon.url()))
            .header("x-amz-access-token", TOKEN)
            .send()
    };
    let order = "/orders/2026-01-01/orders/115-0000001-0000003";

    // The items always come; FULFILLMENT adds the order's status; values may be repeated.
    let plain: serde_json::Value = get(order).await?.json().await?;
    assert_eq!(
        plain["order"]["orderItems"].as_array().map(Vec::len),
        Some(3)
    );
    assert!(plain["order"]["fulfillment"].is_null(), "{plain}");
    for query in [
        "?includedData=BUYER,FULFILLMENT",
        "?includedData=BUYER&includedData=FULFILLMENT",
    ] {
        let answer = get(&format!("{order}{query}")).await?;
        assert_eq!(answer.status().as_u16(), 200, "{query}");
        let body: serde_json::Value = answer.json().await?;
        assert_eq!(
            body["order"]["fulfillment"]["fulfillmentStatus"], "UNSHIPPED",
            "{query}"
        );
        assert_eq!(
            body["order"]["orderItems"].as_array().map(Vec::len),
            Some(3)
        );
    }
    // Only Amazon's datasets: not an items dataset, not another case, not an empty one.
    for query in [
        "?includedData=ORDER_ITEMS",
        "?includedData=fulfillment",
        "?includedData=FULFILLMENT,",
        "?includedData=",
    ] {
        let answer = get(&format!("{order}{query}")).await?;
        assert_eq!(answer.status().as_u16(), 400, "{query}");
        let body: serde_json::Value = answer.json().await?;
        assert_eq!(body["errors"][0]["code"], "InvalidInput", "{body}");
    }
    // Orders API v0 getOrderItems is gone, as it is from Amazon after 2027-03-27.
    let v0 = get("/orders/v0/orders/115-0000001-0000003/orderItems").await?;
    assert_eq!(v0.status().as_u16(), 404);

    // getOrder's own limit: a burst of 30 (seven calls made above, refusals count too), then 429
    // saying the rate.
    for _ in 0..23 {
        assert_eq!(get(order).await?.status().as_u16(), 200);
    }
    let throttled = get(order).await?;
    assert_eq!(throttled.status().as_u16(), 429);
    assert_eq!(throttled.headers()["x-amzn-RateLimit-Limit"], "0.5");
    Ok(())
}
