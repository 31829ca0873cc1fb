use std::time::Duration;

use stockguard_channels::{
    ChannelClient, ChannelConfig, ChannelKind, EbayConfig, PushOutcome, QuantityUpdate,
    ShopifyConfig, WalmartConfig,
};
use stockguard_fake_channels::DEFAULT_WALMART_CLIENT_SECRET;

use crate::common::*;

#[tokio::test]
async fn a_hanging_channel_times_out_as_retryable() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.ebay.update_settings(|s| s.timeout_rate = 1.0);
    let mut config = EbayConfig::new(fakes.ebay.url(), TOKEN);
    config.options.timeout = Duration::from_millis(300);
    let client = ChannelClient::new(config)?;

    let outcomes = client
        .push(&[QuantityUpdate::new("A", ebay_listing("A"), 1)])
        .await;

    match &outcomes[..] {
        [PushOutcome::Retryable { reason, .. }] => {
            assert!(reason.contains("no answer in time"), "{reason}")
        }
        other => panic!("expected one retryable outcome, got {other:?}"),
    }
    let read = client.read_shown(&ebay_listing("A")).await;
    assert!(
        read.as_ref()
            .is_err_and(|e| e.is_timeout() && e.is_retryable()),
        "{read:?}"
    );
    assert_eq!(fakes.ebay.stats().timeouts, 2);
    Ok(())
}

#[tokio::test]
async fn server_errors_are_retryable() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.amazon.update_settings(|s| s.error_rate = 1.0);
    fakes.shopify.update_settings(|s| s.error_rate = 1.0);
    let amazon = amazon_client(&fakes, TOKEN)?;
    let shopify = shopify_client(&fakes, TOKEN)?;

    let from_amazon = amazon
        .push(&[
            QuantityUpdate::new("A", amazon_listing("A"), 1),
            QuantityUpdate::new("B", amazon_listing("B"), 1),
        ])
        .await;
    let from_shopify = shopify
        .push(&[QuantityUpdate::new("A", shopify_listing(1, 1), 1)])
        .await;

    for outcome in from_amazon.iter().chain(&from_shopify) {
        match outcome {
            PushOutcome::Retryable { reason, .. } => {
                assert!(reason.contains("HTTP 500"), "{reason}")
            }
            other => panic!("expected a retryable outcome, got {other:?}"),
        }
    }
    // A 5xx is about one call; the next update was still sent.
    assert_eq!(fakes.amazon.stats().server_errors, 2);
    Ok(())
}

#[tokio::test]
async fn an_unreachable_channel_fails_the_whole_push_as_retryable() -> anyhow::Result<()> {
    // A port that was free a moment ago and has no listener now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let config = WalmartConfig::new(
        format!("http://127.0.0.1:{port}"),
        "id",
        DEFAULT_WALMART_CLIENT_SECRET,
    );
    let client = ChannelClient::new(config)?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("A", walmart_listing("A"), 1),
            QuantityUpdate::new("B", walmart_listing("B"), 1),
        ])
        .await;

    assert!(
        outcomes.iter().all(PushOutcome::is_retryable),
        "{outcomes:?}"
    );
    assert!(
        outcomes[0]
            .reason()
            .is_some_and(|r| r.contains("cannot connect")),
        "{outcomes:?}"
    );
    assert!(
        outcomes[1]
            .reason()
            .is_some_and(|r| r.starts_with("not sent")),
        "{outcomes:?}"
    );
    Ok(())
}

#[tokio::test]
async fn a_listing_of_another_channel_is_refused_without_a_call() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = ChannelClient::new(ShopifyConfig::new(fakes.shopify.url(), TOKEN))?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("A", ebay_listing("A"), 1),
            QuantityUpdate::new("B", shopify_listing(2, 1), 1),
        ])
        .await;

    assert_permanent_with(
        &outcomes[0],
        "ebay listing was handed to the shopify client",
    );
    assert!(outcomes[1].is_acknowledged(), "{:?}", outcomes[1]);
    let read = client.read_shown(&walmart_listing("A")).await;
    assert!(read.as_ref().is_err_and(|e| !e.is_retryable()), "{read:?}");
    assert_eq!(fakes.shopify.stats().requests, 1);
    Ok(())
}

#[tokio::test]
async fn the_channel_client_reaches_every_channel() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    let configs: Vec<(ChannelConfig, _)> = vec![
        (
            ShopifyConfig::new(fakes.shopify.url(), TOKEN).into(),
            shopify_listing(5, 6),
        ),
        (amazon_config(&fakes, TOKEN).into(), amazon_listing("AMZ-5")),
        (
            walmart_config(&fakes, DEFAULT_WALMART_CLIENT_SECRET).into(),
            walmart_listing("WM-5"),
        ),
        (
            EbayConfig::new(fakes.ebay.url(), TOKEN).into(),
            ebay_listing("EB-5"),
        ),
    ];

    for (config, listing) in configs {
        let kind = config.kind();
        let client = ChannelClient::new(config)?;
        assert_eq!(client.kind(), kind);
        assert_eq!(listing.kind(), kind);

        let outcomes = client
            .push(&[QuantityUpdate::new("TEE", listing.clone(), 11)])
            .await;

        assert_all_acknowledged(&outcomes);
        assert_eq!(client.read_shown(&listing).await?, 11, "{kind}");
        let fake = fakes.get(match kind {
            ChannelKind::Shopify => stockguard_fake_channels::FakeKind::Shopify,
            ChannelKind::Amazon => stockguard_fake_channels::FakeKind::Amazon,
            ChannelKind::Walmart => stockguard_fake_channels::FakeKind::Walmart,
            ChannelKind::Ebay => stockguard_fake_channels::FakeKind::Ebay,
        });
        assert_eq!(fake.shown(&listing.key()), Some(11), "{kind}");
    }
    Ok(())
}
