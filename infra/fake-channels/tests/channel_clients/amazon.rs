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
