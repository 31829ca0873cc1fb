use std::time::Duration;

use stockguard_channels::{PushOutcome, QuantityUpdate, WalmartClient};

use crate::common::*;

#[tokio::test]
async fn a_push_reads_back_with_one_token() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = walmart_client(&fakes)?;
    let listing = walmart_listing("WM-TEE-RED-M");

    let outcomes = client
        .push(&[QuantityUpdate::new("TEE-RED-M", listing.clone(), 12)])
        .await;

    assert_all_acknowledged(&outcomes);
    assert_eq!(client.read_shown(&listing).await?, 12);
    assert_eq!(fakes.walmart.shown("WM-TEE-RED-M"), Some(12));
    assert_eq!(fakes.walmart.stats().token_calls, 1);
    Ok(())
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes
        .walmart
        .update_settings(|s| s.walmart_token_ttl_secs = 1);
    let client = walmart_client(&fakes)?;
    let listing = walmart_listing("S1");

    assert_all_acknowledged(
        &client
            .push(&[QuantityUpdate::new("S1", listing.clone(), 1)])
            .await,
    );
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_all_acknowledged(&client.push(&[QuantityUpdate::new("S1", listing, 2)]).await);

    let stats = fakes.walmart.stats();
    assert_eq!(stats.token_calls, 2);
    // Refreshed ahead of time: no call went out with the dead token.
    assert_eq!(stats.unauthorized, 0);
    assert_eq!(fakes.walmart.shown("S1"), Some(2));
    Ok(())
}

#[tokio::test]
async fn a_token_rejected_early_is_replaced_once() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = walmart_client(&fakes)?;
    let listing = walmart_listing("S1");

    assert_all_acknowledged(
        &client
            .push(&[QuantityUpdate::new("S1", listing.clone(), 1)])
            .await,
    );
    fakes.walmart.expire_tokens();
    assert_all_acknowledged(&client.push(&[QuantityUpdate::new("S1", listing, 2)]).await);

    let stats = fakes.walmart.stats();
    assert_eq!(stats.token_calls, 2);
    assert_eq!(stats.unauthorized, 1);
    assert_eq!(fakes.walmart.shown("S1"), Some(2));
    Ok(())
}

#[tokio::test]
async fn wrong_client_credentials_are_permanent() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = WalmartClient::new(walmart_config(&fakes, "wrong-secret"))?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("S1", walmart_listing("S1"), 1),
            QuantityUpdate::new("S2", walmart_listing("S2"), 1),
        ])
        .await;

    assert_permanent_with(&outcomes[0], "HTTP 401");
    assert_permanent_with(&outcomes[1], "not sent");
    let stats = fakes.walmart.stats();
    assert_eq!((stats.token_calls, stats.unauthorized), (0, 1));
    Ok(())
}

#[tokio::test]
async fn throttling_waits_as_retry_after_says() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.walmart.update_settings(|s| {
        s.throttle_rate = 1.0;
        s.walmart_retry_after_secs = 1;
    });
    let mut config = walmart_config(
        &fakes,
        stockguard_fake_channels::DEFAULT_WALMART_CLIENT_SECRET,
    );
    config.options.max_throttle_retries = 1;
    let client = WalmartClient::new(config)?;

    let outcomes = client
        .push(&[QuantityUpdate::new("S1", walmart_listing("S1"), 1)])
        .await;

    match &outcomes[..] {
        [
            PushOutcome::Throttled {
                reason,
                retry_after,
            },
        ] => {
            assert!(reason.contains("HTTP 429"), "{reason}");
            assert_eq!(*retry_after, Some(Duration::from_secs(1)));
        }
        other => panic!("expected one throttled outcome, got {other:?}"),
    }
    assert_eq!(fakes.walmart.stats().throttled, 2);
    Ok(())
}

#[tokio::test]
async fn an_unknown_sku_is_a_permanent_404() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes
        .walmart
        .update_settings(|s| s.accept_any_listing = false);
    fakes.walmart.register_listing("KNOWN", "K", 1);
    let client = walmart_client(&fakes)?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("U", walmart_listing("UNKNOWN"), 1),
            QuantityUpdate::new("K", walmart_listing("KNOWN"), 5),
        ])
        .await;

    assert_permanent_with(&outcomes[0], "HTTP 404");
    assert_permanent_with(&outcomes[0], "CONTENT_NOT_FOUND");
    assert!(outcomes[1].is_acknowledged(), "{:?}", outcomes[1]);
    assert_eq!(fakes.walmart.shown("KNOWN"), Some(5));
    let read = client.read_shown(&walmart_listing("UNKNOWN")).await;
    assert!(
        read.as_ref().is_err_and(|e| e.is_unknown_listing()),
        "{read:?}"
    );
    Ok(())
}

#[tokio::test]
async fn orders_are_read_page_by_page_through_next_cursor() -> anyhow::Result<()> {
    use stockguard_channels::WalmartOrdersPage;
    use stockguard_fake_channels::OrderRequest;
    let fakes = start_fakes().await?;
    fakes.walmart.register_listing("WM-1", "TEE", 10);
    fakes.walmart.update_settings(|s| s.orders_page_limit = 2);
    for _ in 0..5 {
        fakes
            .walmart
            .place_order(&OrderRequest::new([("WM-1", 1)]))?;
    }
    let client = walmart_client(&fakes)?;
    let now = chrono::Utc::now();
    let iso =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut page = WalmartOrdersPage::First {
        from: iso(now - chrono::Duration::minutes(1)),
        to: iso(now + chrono::Duration::minutes(1)),
        created_from: iso(now - chrono::Duration::days(1)),
        limit: 100,
    };
    let mut seen = Vec::new();
    loop {
        let body = client.orders_page(&page).await?;
        let read = stockguard_domain::walmart::parse_orders_page(&body)?;
        assert_eq!(read.total, Some(5));
        seen.extend(read.orders.into_iter().map(|o| o.order_id));
        match read.next {
            Some(cursor) => page = WalmartOrdersPage::Next(cursor),
            None => break,
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 5);
    assert_eq!(fakes.walmart.stats().order_pages, 3);
    Ok(())
}
