//! Reconciliation leaves a listing alone while a push for its latest change may still be on its
//! way (the in-flight grace). A buffer recompute moves nothing a static channel shows and pushes
//! it nothing, so it must not make that channel's last push look unacknowledged: a quantity
//! changed behind our back there would otherwise wait for a later reconciliation. (Found by
//! `make chaos`.) Its own test binary: it needs the grace on, which reconcile.rs turns off.

use std::time::Duration;

use serde_json::json;
use stockguard_domain::ChannelName;
use stockguard_domain::channel::BufferPolicy;
use stockguard_handlers::channel_sync::ChannelSync;
use stockguard_handlers::reconcile::{channel_syncs, reconcile_all};
use stockguard_tests::channels::{FakeChannels, FakeOptions, KINDS, fake, listing_key};
use stockguard_tests::{TestStack, first_deliveries, now_rfc3339, of_type};

const SKU: &str = "STATIC-GRACE-1";

/// Delivers every position change published so far to every channel's sync function.
async fn sync_every_channel(stack: &TestStack) {
    let published = stack.drain_published(Duration::from_millis(300)).await;
    let bodies: Vec<String> = of_type(&published, "InventoryPositionChanged")
        .into_iter()
        .map(|e| e.to_string())
        .collect();
    assert!(!bodies.is_empty(), "a position change was published");
    for kind in KINDS {
        let event = first_deliveries(&bodies);
        let sync = ChannelSync::new(stack.deps.clone(), ChannelName::parse(kind).unwrap());
        let (response, _) = sync.handle_batch(event).await;
        assert!(
            response.batch_item_failures.is_empty(),
            "{kind} sync failed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recompute_does_not_hide_a_drift_on_a_static_channel_from_reconciliation() {
    // SAFETY: set before any thread of this test process reads the environment.
    unsafe { std::env::set_var("STOCKGUARD_AMAZON_PROCESSING_MS", "0") };
    // Every change here is recent: only an acknowledged push lets reconciliation look at it.
    unsafe { std::env::set_var("STOCKGUARD_IN_FLIGHT_GRACE_MS", "600000") };
    let stack = TestStack::new().await;
    let fakes = FakeChannels::start(FakeOptions::default())
        .await
        .expect("fake channels");
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &[SKU])
        .await;
    stack
        .apply(
            "StockReceived",
            json!({"event_id": "sg-rcv", "occurred_at": now_rfc3339(), "sku": SKU, "quantity": 40}),
        )
        .await;
    // A sale elsewhere gives the SKU a rate, which a strong signal multiplies: the recompute then
    // stores dynamic buffers (a new revision), although every channel here is static.
    stack.apply("OrderPlaced", json!({"event_id": "sg-ord", "occurred_at": now_rfc3339(), "order_id": "SG-1", "channel": "ebay", "lines": [{"sku": SKU, "quantity": 1}]})).await;
    sync_every_channel(&stack).await;
    for kind in KINDS {
        assert_eq!(fake(&fakes, kind).shown(&listing_key(kind, SKU)), Some(39));
    }
    stack.apply("DemandSignal", json!({"event_id": "sg-sig", "occurred_at": now_rfc3339(), "sku": SKU, "signal": "add_to_cart_surge", "strength": 1000.0})).await;
    let sku = stockguard_domain::Sku::parse(SKU).unwrap();
    let ctx = stack
        .deps
        .store
        .sync_context(
            &ChannelName::parse("shopify").unwrap(),
            std::slice::from_ref(&sku),
        )
        .await
        .unwrap();
    assert!(
        ctx.dynamic.get(&sku).is_some_and(|b| b.revision > 0),
        "the signal's recompute stored buffers"
    );

    // Someone raises the quantity in Shopify's admin (a lowered one could be a sale not heard of
    // yet, which reconciliation leaves for a later run).
    fakes.shopify.set_shown(&listing_key("shopify", SKU), 45);
    let syncs = channel_syncs(&stack.deps).await.unwrap();
    let report = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(report.in_flight, 0, "{report:?}");
    let drift: Vec<_> = report
        .drift
        .iter()
        .map(|d| (d.channel.as_str(), d.expected, d.reported, d.repaired))
        .collect();
    assert_eq!(drift, vec![("shopify", 39, 45, true)]);
    assert_eq!(fakes.shopify.shown(&listing_key("shopify", SKU)), Some(39));
}
