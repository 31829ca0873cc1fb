use stockguard_channels::QuantityUpdate;

use crate::common::*;

#[tokio::test]
async fn a_push_reads_back() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = ebay_client(&fakes, TOKEN)?;
    let listing = ebay_listing("EB-TEE-RED-M");

    let outcomes = client
        .push(&[QuantityUpdate::new("TEE-RED-M", listing.clone(), 6)])
        .await;

    assert_all_acknowledged(&outcomes);
    assert_eq!(client.read_shown(&listing).await?, 6);
    assert_eq!(fakes.ebay.shown("EB-TEE-RED-M"), Some(6));
    Ok(())
}

#[tokio::test]
async fn a_207_fails_only_the_sku_it_names() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.ebay.update_settings(|s| s.accept_any_listing = false);
    fakes.ebay.register_listing("A", "A", 0);
    fakes.ebay.register_listing("C", "C", 0);
    let client = ebay_client(&fakes, TOKEN)?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("A", ebay_listing("A"), 1),
            QuantityUpdate::new("B", ebay_listing("B"), 2),
            QuantityUpdate::new("C", ebay_listing("C"), 3),
        ])
        .await;

    assert!(outcomes[0].is_acknowledged(), "{:?}", outcomes[0]);
    assert_permanent_with(&outcomes[1], "25702");
    assert!(outcomes[2].is_acknowledged(), "{:?}", outcomes[2]);
    assert_eq!(fakes.ebay.shown("A"), Some(1));
    assert_eq!(fakes.ebay.shown("B"), None);
    assert_eq!(fakes.ebay.shown("C"), Some(3));
    assert_eq!(fakes.ebay.stats().push_calls, 1);
    Ok(())
}

#[tokio::test]
async fn an_injected_item_failure_fails_only_that_item() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.ebay.update_settings(|s| {
        s.reject_listings.insert("S7".to_owned());
    });
    let client = ebay_client(&fakes, TOKEN)?;
    let updates: Vec<QuantityUpdate> = (0..30)
        .map(|i| QuantityUpdate::new(format!("S{i}"), ebay_listing(&format!("S{i}")), 2))
        .collect();

    let outcomes = client.push(&updates).await;

    for (i, outcome) in outcomes.iter().enumerate() {
        assert_eq!(outcome.is_permanent(), i == 7, "update {i}: {outcome:?}");
    }
    assert_eq!(fakes.ebay.stats().quantities_pushed, 29);
    Ok(())
}

#[tokio::test]
async fn pushes_go_25_skus_a_call() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = ebay_client(&fakes, TOKEN)?;
    // The fake refuses more than 25 a call, so exactly 2 calls means chunks of exactly 25.
    let updates: Vec<QuantityUpdate> = (0..50)
        .map(|i| QuantityUpdate::new(format!("S{i}"), ebay_listing(&format!("S{i}")), i))
        .collect();

    let outcomes = client.push(&updates).await;

    assert_eq!(outcomes.len(), 50);
    assert_all_acknowledged(&outcomes);
    let stats = fakes.ebay.stats();
    assert_eq!(stats.push_calls, 2);
    assert_eq!(stats.quantities_pushed, 50);
    assert_eq!(fakes.ebay.shown("S49"), Some(49));

    let outcomes = client.push(&updates[..26]).await;
    assert_all_acknowledged(&outcomes);
    assert_eq!(fakes.ebay.stats().push_calls, 4);
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_permanent() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = ebay_client(&fakes, "stale-user-token")?;

    let outcomes = client
        .push(&[QuantityUpdate::new("A", ebay_listing("A"), 1)])
        .await;

    assert_permanent_with(&outcomes[0], "HTTP 401");
    assert_permanent_with(&outcomes[0], "Invalid access token");
    Ok(())
}

#[tokio::test]
async fn orders_are_read_by_modification_window_limit_and_offset() -> anyhow::Result<()> {
    use stockguard_fake_channels::OrderRequest;
    let fakes = start_fakes().await?;
    fakes.ebay.register_listing("EB-1", "TEE", 10);
    fakes.ebay.update_settings(|s| s.orders_page_limit = 2);
    let mut placed = Vec::new();
    for _ in 0..3 {
        placed.push(fakes.ebay.place_order(&OrderRequest::new([("EB-1", 1)]))?);
    }
    let client = ebay_client(&fakes, stockguard_fake_channels::DEFAULT_ACCESS_TOKEN)?;
    let now = chrono::Utc::now().timestamp_millis();
    let filter = stockguard_domain::ebay::modified_filter(now - 60_000, now + 60_000);
    let first =
        stockguard_domain::ebay::parse_orders_page(&client.orders_page(&filter, 50, 0).await?)?;
    assert_eq!(
        (first.total, first.next, first.orders.len()),
        (Some(3), Some(2), 2)
    );
    let last =
        stockguard_domain::ebay::parse_orders_page(&client.orders_page(&filter, 50, 2).await?)?;
    assert_eq!((last.next, last.orders.len()), (None, 1));
    // A window that ended before the orders were placed lists none of them.
    let before = stockguard_domain::ebay::modified_filter(now - 120_000, now - 60_000);
    let none =
        stockguard_domain::ebay::parse_orders_page(&client.orders_page(&before, 50, 0).await?)?;
    assert_eq!(none.total, Some(0));
    // A cancellation lists the order again, cancelled.
    let id = placed[0]["order_id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    fakes.ebay.cancel_order(&id)?;
    let again =
        stockguard_domain::ebay::parse_orders_page(&client.orders_page(&filter, 50, 0).await?)?;
    let cancelled = again
        .orders
        .iter()
        .chain(
            stockguard_domain::ebay::parse_orders_page(&client.orders_page(&filter, 50, 2).await?)?
                .orders
                .iter(),
        )
        .find(|o| format!("ebay-{}", o.order_id) == id)
        .cloned()
        .ok_or_else(|| anyhow::anyhow!("the cancelled order is listed"))?;
    assert_eq!(cancelled.changes.len(), 2);
    Ok(())
}

#[tokio::test]
async fn a_seller_cancellation_lists_the_order_cancelled_and_a_repeat_changes_nothing()
-> anyhow::Result<()> {
    use stockguard_fake_channels::OrderRequest;
    let fakes = start_fakes().await?;
    fakes.ebay.register_listing("EB-2", "TEE", 10);
    let placed = fakes.ebay.place_order(&OrderRequest::new([("EB-2", 2)]))?;
    let ours = placed["order_id"].as_str().unwrap_or_default();
    let order_id = ours.strip_prefix("ebay-").unwrap_or(ours);
    let client = ebay_client(&fakes, stockguard_fake_channels::DEFAULT_ACCESS_TOKEN)?;

    client.cancel_order(order_id).await?;
    assert_eq!(fakes.ebay.stats().orders_cancelled, 1);
    let now = chrono::Utc::now().timestamp_millis();
    let filter = stockguard_domain::ebay::modified_filter(now - 60_000, now + 60_000);
    let page =
        stockguard_domain::ebay::parse_orders_page(&client.orders_page(&filter, 50, 0).await?)?;
    assert_eq!(page.orders[0].changes.len(), 2, "placed, then cancelled");

    // Already cancelled: nothing more is asked of eBay.
    client.cancel_order(order_id).await?;
    assert_eq!(fakes.ebay.stats().orders_cancelled, 1);
    let unknown = client.cancel_order("99-99999-99999").await.unwrap_err();
    assert!(unknown.to_string().contains("404"), "{unknown}");
    Ok(())
}

#[tokio::test]
async fn a_cancellation_names_the_channels_marketplace() -> anyhow::Result<()> {
    use stockguard_channels::{EbayClient, EbayConfig};
    use stockguard_fake_channels::OrderRequest;
    let fakes = start_fakes().await?;
    fakes.ebay.register_listing("EB-3", "TEE", 10);
    let client = |marketplace: &str| {
        let mut config = EbayConfig::new(fakes.ebay.url(), TOKEN).with_marketplace(marketplace);
        config.options = options();
        EbayClient::new(config)
    };
    let placed = fakes.ebay.place_order(&OrderRequest::new([("EB-3", 1)]))?;
    let ours = placed["order_id"].as_str().unwrap_or_default();
    let order_id = ours.strip_prefix("ebay-").unwrap_or(ours);
    let refused = client("EBAY_XX")?.cancel_order(order_id).await.unwrap_err();
    assert!(refused.to_string().contains("EBAY_XX"), "{refused}");
    assert_eq!(fakes.ebay.stats().orders_cancelled, 0);
    client("EBAY_GB")?.cancel_order(order_id).await?;
    assert_eq!(fakes.ebay.stats().orders_cancelled, 1);
    Ok(())
}
