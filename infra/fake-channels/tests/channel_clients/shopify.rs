use serde_json::{Value, json};
use stockguard_channels::{Listing, PushOutcome, QuantityUpdate};

use crate::common::*;

#[tokio::test]
async fn a_push_shows_at_once_and_reads_back() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = shopify_client(&fakes, TOKEN)?;
    let listing = shopify_listing(30322695, 124656943);

    let outcomes = client
        .push(&[QuantityUpdate::new("TEE-RED-M", listing.clone(), 7)])
        .await;

    assert_all_acknowledged(&outcomes);
    assert_eq!(client.read_shown(&listing).await?, 7);
    assert_eq!(fakes.shopify.shown("30322695:124656943"), Some(7));
    // Full gids name the same listing.
    let by_gid = Listing::Shopify {
        inventory_item_id: "gid://shopify/InventoryItem/30322695".into(),
        location_id: "gid://shopify/Location/124656943".into(),
    };
    assert_eq!(client.read_shown(&by_gid).await?, 7);
    assert_eq!(listing.key(), "30322695:124656943");
    Ok(())
}

#[tokio::test]
async fn a_throttled_call_waits_for_the_points_it_needs_and_goes_through() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    // Five quantities cost the whole bucket; refilling it takes 2.5 s.
    fakes.shopify.update_settings(|s| {
        s.shopify_bucket_size = 50.0;
        s.shopify_restore_rate = 20.0;
        s.shopify_cost_per_quantity = 10.0;
    });
    let client = shopify_client(&fakes, TOKEN)?;
    let updates = |quantity: i64| -> Vec<QuantityUpdate> {
        (1..=5)
            .map(|item| QuantityUpdate::new(format!("S{item}"), shopify_listing(item, 1), quantity))
            .collect()
    };

    assert_all_acknowledged(&client.push(&updates(3)).await);
    assert_all_acknowledged(&client.push(&updates(4)).await);

    let stats = fakes.shopify.stats();
    assert!(
        stats.throttled >= 1,
        "the second call was never throttled: {stats:?}"
    );
    assert_eq!(stats.push_calls, 2);
    for item in 1..=5 {
        assert_eq!(fakes.shopify.shown(&format!("{item}:1")), Some(4));
    }
    Ok(())
}

#[tokio::test]
async fn a_throttle_that_does_not_lift_comes_back_retryable_with_a_wait() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.shopify.update_settings(|s| s.throttle_rate = 1.0);
    let client = shopify_client(&fakes, TOKEN)?;

    let outcomes = client
        .push(&[QuantityUpdate::new("A", shopify_listing(1, 1), 2)])
        .await;

    match &outcomes[..] {
        [
            PushOutcome::Throttled {
                reason,
                retry_after,
            },
        ] => {
            assert!(reason.contains("THROTTLED"), "{reason}");
            assert!(retry_after.is_some());
        }
        other => panic!("expected one throttled outcome, got {other:?}"),
    }
    // The first call and the three retries the client allows itself.
    assert_eq!(fakes.shopify.stats().throttled, 4);
    assert_eq!(fakes.shopify.shown("1:1"), None);
    Ok(())
}

#[tokio::test]
async fn an_unknown_listing_is_permanent_and_holds_back_no_other() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes
        .shopify
        .update_settings(|s| s.accept_any_listing = false);
    fakes.shopify.register_listing("1:9", "A", 0);
    fakes.shopify.register_listing("3:9", "C", 0);
    let client = shopify_client(&fakes, TOKEN)?;

    let outcomes = client
        .push(&[
            QuantityUpdate::new("A", shopify_listing(1, 9), 5),
            QuantityUpdate::new("B", shopify_listing(2, 9), 5),
            QuantityUpdate::new("C", shopify_listing(3, 9), 6),
        ])
        .await;

    assert!(outcomes[0].is_acknowledged(), "{:?}", outcomes[0]);
    assert_permanent_with(&outcomes[1], "ITEM_NOT_STOCKED_AT_LOCATION");
    assert!(outcomes[2].is_acknowledged(), "{:?}", outcomes[2]);
    assert_eq!(fakes.shopify.shown("1:9"), Some(5));
    assert_eq!(fakes.shopify.shown("3:9"), Some(6));
    assert_eq!(fakes.shopify.shown("2:9"), None);
    // Shopify sets all or nothing: the refused call, then the two good quantities again.
    assert_eq!(fakes.shopify.stats().push_calls, 2);
    Ok(())
}

#[tokio::test]
async fn a_wrong_token_is_permanent_and_stops_the_push() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let client = shopify_client(&fakes, "not-the-token")?;
    let updates: Vec<QuantityUpdate> = (1..=300)
        .map(|item| QuantityUpdate::new(format!("S{item}"), shopify_listing(item, 1), 1))
        .collect();

    let outcomes = client.push(&updates).await;

    assert_eq!(outcomes.len(), 300);
    assert_permanent_with(&outcomes[0], "HTTP 401");
    assert_permanent_with(&outcomes[299], "not sent");
    // The second chunk of 50 was not sent after the first met a 401.
    assert_eq!(fakes.shopify.stats().requests, 1);
    assert_eq!(fakes.shopify.stats().unauthorized, 1);
    Ok(())
}

#[tokio::test]
async fn pushes_go_250_quantities_a_call() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes
        .shopify
        .update_settings(|s| s.shopify_restore_rate = 1_000_000.0);
    let client = shopify_client(&fakes, TOKEN)?;
    // The fake refuses more than 250 a call, so exactly 2 calls means chunks of exactly 250.
    let updates: Vec<QuantityUpdate> = (1..=500)
        .map(|item| QuantityUpdate::new(format!("S{item}"), shopify_listing(item, 1), 5))
        .collect();

    let outcomes = client.push(&updates).await;

    assert_eq!(outcomes.len(), 500);
    assert_all_acknowledged(&outcomes);
    let stats = fakes.shopify.stats();
    assert_eq!(stats.push_calls, 2);
    assert_eq!(stats.quantities_pushed, 500);
    assert_eq!(fakes.shopify.shown("500:1"), Some(5));

    let outcomes = client.push(&updates[..251]).await;
    assert_all_acknowledged(&outcomes);
    assert_eq!(fakes.shopify.stats().push_calls, 4);
    Ok(())
}

#[tokio::test]
async fn a_stale_change_from_quantity_is_refused() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.shopify.register_listing("1:1", "A", 4);
    let client = shopify_client(&fakes, TOKEN)?;
    let update = QuantityUpdate::new("A", shopify_listing(1, 1), 9);

    let stale = client
        .push(&[update.clone().with_change_from_quantity(3)])
        .await;
    assert_permanent_with(&stale[0], "CHANGE_FROM_QUANTITY_STALE");
    assert_eq!(fakes.shopify.shown("1:1"), Some(4));

    let current = client.push(&[update.with_change_from_quantity(4)]).await;
    assert_all_acknowledged(&current);
    assert_eq!(fakes.shopify.shown("1:1"), Some(9));
    Ok(())
}

#[tokio::test]
async fn reading_a_listing_the_channel_does_not_have_says_so() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    fakes.shopify.register_listing("1:1", "A", 4);
    let client = shopify_client(&fakes, TOKEN)?;

    let no_item = client.read_shown(&shopify_listing(2, 1)).await;
    let not_at_location = client.read_shown(&shopify_listing(1, 2)).await;

    assert!(
        no_item.as_ref().is_err_and(|e| e.is_unknown_listing()),
        "{no_item:?}"
    );
    assert!(
        not_at_location
            .as_ref()
            .is_err_and(|e| e.is_unknown_listing()),
        "{not_at_location:?}"
    );
    Ok(())
}

/// The fake itself: a repeated idempotency key answers the first result without applying again,
/// and the same key with other quantities is refused.
#[tokio::test]
async fn the_fake_honours_idempotency_keys() -> anyhow::Result<()> {
    let fakes = start_fakes().await?;
    let http = reqwest::Client::new();
    let url = format!("{}/admin/api/2026-04/graphql.json", fakes.shopify.url());
    let mutation = "mutation M($input: InventorySetQuantitiesInput!, $key: String!) { \
        inventorySetQuantities(input: $input) @idempotent(key: $key) { userErrors { field message code } } }";
    let body = |quantity: i64| {
        json!({"query": mutation, "variables": {"key": "k-1", "input": {
            "name": "available", "reason": "correction",
            "quantities": [{"inventoryItemId": "gid://shopify/InventoryItem/1",
                            "locationId": "gid://shopify/Location/1",
                            "quantity": quantity, "changeFromQuantity": null}]}}})
    };
    let send = |body: Value| {
        http.post(&url)
            .header("X-Shopify-Access-Token", TOKEN)
            .json(&body)
            .send()
    };

    let first: Value = send(body(5)).await?.json().await?;
    fakes.shopify.set_shown("1:1", 2);
    let repeated: Value = send(body(5)).await?.json().await?;
    let mismatched: Value = send(body(6)).await?.json().await?;

    assert_eq!(first["data"], repeated["data"]);
    assert_eq!(fakes.shopify.shown("1:1"), Some(2));
    assert_eq!(fakes.shopify.stats().quantities_pushed, 1);
    assert_eq!(
        mismatched.pointer("/data/inventorySetQuantities/userErrors/0/code"),
        Some(&json!("IDEMPOTENCY_KEY_PARAMETER_MISMATCH"))
    );
    let without_key = json!({"query": "mutation { inventorySetQuantities(input: $input) { userErrors { code } } }",
                             "variables": body(5)["variables"].clone()});
    let refused: Value = send(without_key).await?.json().await?;
    assert_eq!(
        refused.pointer("/errors/0/extensions/code"),
        Some(&json!("BAD_REQUEST"))
    );
    Ok(())
}
