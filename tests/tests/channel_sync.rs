//! Channel sync against the emulator and the four fake channels (local servers that honour the
//! channels' real contracts; the real APIs cannot be reached from here).

use std::time::Duration;

use serde_json::{Value, json};
use stockguard_adapters::channel_store::SyncRecord;
use stockguard_domain::channel::BufferPolicy;
use stockguard_domain::{ChannelName, Sku};
use stockguard_handlers::channel_sync::ChannelSync;
use stockguard_tests::channels::{FakeChannels, FakeOptions, KINDS, fake, listing_key};
use stockguard_tests::{TestStack, envelope, first_deliveries, now_rfc3339, of_type, unique};

async fn fakes() -> FakeChannels {
    let f = FakeChannels::start(FakeOptions::default())
        .await
        .expect("fake channels");
    f.amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    f
}

async fn receive(stack: &TestStack, sku: &str, quantity: i64) {
    stack.apply("StockReceived", json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": quantity})).await;
}

/// Waits until every channel shows what `expected` says (kind → quantity).
async fn await_shown(fakes: &FakeChannels, sku: &str, expected: &[(&str, i64)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shown: Vec<(&str, Option<i64>)> = expected
            .iter()
            .map(|(k, _)| (*k, fake(fakes, k).shown(&listing_key(k, sku))))
            .collect();
        if shown
            .iter()
            .zip(expected)
            .all(|((_, s), (_, e))| *s == Some(*e))
        {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sku}: channels show {shown:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// (version, quantity) the channel last acknowledged for the SKU.
async fn acknowledged(stack: &TestStack, channel: &str, sku: &str) -> Option<(u64, i64)> {
    let records = stack
        .deps
        .store
        .sync_records(
            &ChannelName::parse(channel).unwrap(),
            &[Sku::parse(sku).unwrap()],
        )
        .await
        .unwrap();
    records.values().next().map(|r| (r.version, r.quantity))
}

fn sync_for(stack: &TestStack, channel: &str) -> ChannelSync {
    let name = format!(
        "{}Sync",
        match channel {
            "shopify" => "Shopify",
            "amazon" => "Amazon",
            "walmart" => "Walmart",
            _ => "Ebay",
        }
    );
    let deps = stack
        .deps
        .with_dead_letters(&stack.stack.queues[&format!("{name}DLQ")].url);
    ChannelSync::new(deps, ChannelName::parse(channel).unwrap())
}

fn position_event(sku: &str, version: u64) -> String {
    envelope(
        "stockguard.core",
        "InventoryPositionChanged",
        &json!({"sku": sku, "version": version, "on_hand": 0, "hard_reserved": 0,
        "soft_reserved": 0, "available": 0, "changed_at": now_rfc3339(), "cause": {"event_id": "x", "detail_type": "StockReceived", "occurred_at": now_rfc3339()}}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_position_change_reaches_all_four_channels_with_buffers_applied() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["CH-1"])
        .await;
    let walmart = ChannelName::parse("walmart").unwrap();
    let mut settings = stack.deps.store.channel(&walmart).await.unwrap().unwrap();
    settings.buffer = BufferPolicy {
        units: 2,
        percent: 0.0,
    };
    stack.deps.store.put_channel(&settings).await.unwrap();
    let ebay = ChannelName::parse("ebay").unwrap();
    stack
        .deps
        .store
        .put_buffer_override(
            &ebay,
            &Sku::parse("CH-1").unwrap(),
            &BufferPolicy {
                units: 0,
                percent: 50.0,
            },
        )
        .await
        .unwrap();
    let (_rt, api) = stack.start_runtime_with_api().await;

    stack.put_event("erp.netsuite", "StockReceived", &json!({"event_id": "ch-rcv", "occurred_at": now_rfc3339(), "sku": "CH-1", "quantity": 10})).await;
    await_shown(
        &fakes,
        "CH-1",
        &[("shopify", 10), ("amazon", 10), ("walmart", 8), ("ebay", 5)],
    )
    .await;

    let published = stack
        .await_published(Duration::from_secs(10), |e| {
            of_type(e, "ChannelQuantityPushed").len() >= 4
        })
        .await;
    let pushed = of_type(&published, "ChannelQuantityPushed");
    assert_eq!(pushed.len(), 4);
    for p in &pushed {
        assert_eq!(p["source"], "stockguard.sync");
        assert_eq!(p["detail"]["version"], 1);
        assert!(p["detail"]["latency_ms"].as_i64().unwrap() >= 0);
    }
    // A sale moves every channel; nothing is ever shown below zero.
    stack.put_event("pos.store-1", "StockAdjusted", &json!({"event_id": "ch-adj", "occurred_at": now_rfc3339(), "sku": "CH-1", "delta": -9, "reason": "sale"})).await;
    await_shown(
        &fakes,
        "CH-1",
        &[("shopify", 1), ("amazon", 1), ("walmart", 0), ("ebay", 0)],
    )
    .await;
    // The availability API reports what each channel shows (its last acknowledged quantity).
    let expected = json!({"shopify": 1, "amazon": 1, "walmart": 0, "ebay": 0});
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let body: Value = reqwest::get(format!("{api}/v1/availability/CH-1"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if body["channels"] == expected {
            assert_eq!(body["available"], 1);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "availability shows {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn stale_duplicated_and_reordered_events_never_show_an_older_quantity() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["ORD-1"])
        .await;
    for q in [3, 2, 2] {
        receive(&stack, "ORD-1", q).await; // versions 1..3, available 7
    }
    let sync = sync_for(&stack, "shopify");
    let key = listing_key("shopify", "ORD-1");
    // Old events arrive late: the push is state's newest quantity, not theirs.
    let (resp, report) = sync
        .handle_batch(first_deliveries(&[
            position_event("ORD-1", 2),
            position_event("ORD-1", 1),
        ]))
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!((report.pushed, fakes.shopify.shown(&key)), (1, Some(7)));
    let calls = fakes.shopify.stats().push_calls;
    // A duplicate of an acknowledged version pushes nothing.
    let (_, report) = sync
        .handle_batch(first_deliveries(&[
            position_event("ORD-1", 3),
            position_event("ORD-1", 2),
        ]))
        .await;
    assert_eq!((report.pushed, report.skipped_already_acknowledged), (0, 1));
    assert_eq!(fakes.shopify.stats().push_calls, calls);
    // A newer change, then a reordered older event: the channel ends at the newest.
    stack.apply("StockAdjusted", json!({"event_id": "ord-adj", "occurred_at": now_rfc3339(), "sku": "ORD-1", "delta": -1, "reason": "sale"})).await;
    sync.handle_batch(first_deliveries(&[position_event("ORD-1", 4)]))
        .await;
    sync.handle_batch(first_deliveries(&[position_event("ORD-1", 3)]))
        .await;
    assert_eq!(fakes.shopify.shown(&key), Some(6));
    assert_eq!(acknowledged(&stack, "shopify", "ORD-1").await, Some((4, 6)));
}

#[tokio::test]
async fn a_burst_of_a_thousand_changes_over_ten_skus_is_one_push_per_sku_per_batch() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    let skus: Vec<String> = (0..10).map(|i| format!("BURST-{i}")).collect();
    let sku_refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &sku_refs)
        .await;
    let syncs: Vec<(&str, ChannelSync)> = KINDS.iter().map(|k| (*k, sync_for(&stack, k))).collect();
    for round in 0..10u64 {
        for s in &skus {
            receive(&stack, s, 1).await;
        }
        // 100 change events: 10 per SKU, duplicated and out of order.
        let bodies: Vec<String> = (0..100)
            .map(|i| position_event(&skus[i % 10], round + 1 - (i as u64 / 10) % 2))
            .collect();
        for (kind, sync) in &syncs {
            let before = fake(&fakes, kind).stats();
            let (resp, report) = sync.handle_batch(first_deliveries(&bodies)).await;
            assert!(resp.batch_item_failures.is_empty(), "{kind}");
            let after = fake(&fakes, kind).stats();
            assert_eq!(report.pushed, 10, "{kind}: one push per SKU");
            assert_eq!(
                after.quantities_pushed - before.quantities_pushed,
                10,
                "{kind}"
            );
            let calls = after.push_calls - before.push_calls;
            match *kind {
                "shopify" | "ebay" => assert_eq!(calls, 1, "{kind} uses one bulk call"),
                _ => assert_eq!(calls, 10, "{kind} has one call per item"),
            }
        }
    }
    for kind in KINDS {
        for s in &skus {
            assert_eq!(fake(&fakes, kind).shown(&listing_key(kind, s)), Some(10));
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_is_retried_by_its_signal_and_permanent_failures_are_dead_lettered() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["THR-1"])
        .await;
    // Every call is throttled until both channels have said so, then the throttle lifts.
    fakes.shopify.update_settings(|s| s.throttle_rate = 1.0);
    fakes.amazon.update_settings(|s| s.throttle_rate = 1.0);
    // Walmart's credentials are wrong: every call is a 401, which no retry can fix.
    let walmart = ChannelName::parse("walmart").unwrap();
    let mut settings = stack.deps.store.channel(&walmart).await.unwrap().unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    secrets
        .put_secret_value()
        .secret_id(&settings.credentials)
        .secret_string(r#"{"client_id":"nope","client_secret":"wrong"}"#)
        .send()
        .await
        .unwrap();
    settings.endpoint = fakes.walmart.url().to_owned();
    stack.deps.store.put_channel(&settings).await.unwrap();
    let _rt = stack.start_runtime(Default::default()).await;

    for i in 0..5 {
        stack.put_event("erp.x", "StockReceived", &json!({"event_id": format!("thr-{i}"), "occurred_at": now_rfc3339(), "sku": "THR-1", "quantity": 2})).await;
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while fakes.shopify.stats().throttled == 0 || fakes.amazon.stats().throttled == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the channels never throttled"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    fakes.shopify.update_settings(|s| s.throttle_rate = 0.0);
    fakes.amazon.update_settings(|s| s.throttle_rate = 0.0);
    await_shown(
        &fakes,
        "THR-1",
        &[("shopify", 10), ("amazon", 10), ("ebay", 10)],
    )
    .await;
    let published = stack
        .await_published(Duration::from_secs(20), |e| {
            !of_type(e, "ChannelSyncFailed").is_empty()
        })
        .await;
    let failed = of_type(&published, "ChannelSyncFailed");
    assert_eq!(failed[0]["detail"]["channel"], "walmart");
    assert!(
        failed[0]["detail"]["reason"]
            .as_str()
            .unwrap()
            .contains("401"),
        "{}",
        failed[0]
    );
    let dead = stack.dead_letters("WalmartSyncDLQ").await;
    assert!(!dead.is_empty());
    assert_eq!(dead[0].1.as_deref(), Some("channel_rejected"));
}

#[tokio::test]
async fn an_ebay_partial_failure_fails_only_that_sku() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["EB-A", "EB-B", "EB-C"])
        .await;
    for s in ["EB-A", "EB-B", "EB-C"] {
        receive(&stack, s, 4).await;
    }
    fakes.ebay.update_settings(|s| {
        s.reject_listings.insert("EB-B".into());
    });
    let sync = sync_for(&stack, "ebay");
    let before = fakes.ebay.stats().push_calls;
    let (resp, report) = sync
        .handle_batch(first_deliveries(&[
            position_event("EB-A", 1),
            position_event("EB-B", 1),
            position_event("EB-C", 1),
        ]))
        .await;
    assert_eq!(
        fakes.ebay.stats().push_calls - before,
        1,
        "one bulk call, answered 207"
    );
    assert_eq!((report.pushed, report.failed), (2, 1));
    assert!(
        resp.batch_item_failures.is_empty(),
        "an unknown listing is permanent: dead-lettered, not retried"
    );
    assert_eq!(fakes.ebay.shown("EB-A"), Some(4));
    assert_eq!(fakes.ebay.shown("EB-C"), Some(4));
    let dead = stack.dead_letters("EbaySyncDLQ").await;
    assert_eq!(dead.len(), 1);
    let body: Value = serde_json::from_str(&dead[0].0).unwrap();
    assert_eq!(body["detail"]["sku"], "EB-B");
}

#[tokio::test]
async fn amazon_acknowledges_at_once_and_shows_after_its_processing_delay() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 1500);
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["AMZ-1"])
        .await;
    receive(&stack, "AMZ-1", 6).await;
    let (_, report) = sync_for(&stack, "amazon")
        .handle_batch(first_deliveries(&[position_event("AMZ-1", 1)]))
        .await;
    assert_eq!(report.pushed, 1, "acknowledged (ACCEPTED) at once");
    assert_eq!(fakes.amazon.shown("AMZ-1"), Some(0), "not shown yet");
    tokio::time::sleep(Duration::from_millis(1700)).await;
    assert_eq!(fakes.amazon.shown("AMZ-1"), Some(6));
}

/// Confirming a checkout moves units from soft to hard: a new version, the same `available`. The
/// channel already shows that quantity, so nothing is pushed (its rate limit is spent only on
/// changes it can see), and the newer version is recorded as acknowledged.
#[tokio::test]
async fn a_change_that_leaves_the_shown_quantity_alone_pushes_nothing() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["SAME-1"])
        .await;
    receive(&stack, "SAME-1", 5).await;
    stack.apply("ReservationRequested", json!({"event_id": unique("req"), "occurred_at": now_rfc3339(), "reservation_id": "same-cart", "channel": "storefront", "lines": [{"sku": "SAME-1", "quantity": 2}]})).await;
    let sync = sync_for(&stack, "walmart");
    let key = listing_key("walmart", "SAME-1");
    let (_, report) = sync
        .handle_batch(first_deliveries(&[position_event("SAME-1", 2)]))
        .await;
    assert_eq!((report.pushed, fakes.walmart.shown(&key)), (1, Some(3)));
    let calls = fakes.walmart.stats().push_calls;

    stack.apply("ReservationConfirmed", json!({"event_id": unique("conf"), "occurred_at": now_rfc3339(), "reservation_id": "same-cart", "order_id": "same-order"})).await;
    let (resp, report) = sync
        .handle_batch(first_deliveries(&[position_event("SAME-1", 3)]))
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!((report.pushed, report.skipped_unchanged), (0, 1));
    assert_eq!(fakes.walmart.stats().push_calls, calls);
    assert_eq!(
        acknowledged(&stack, "walmart", "SAME-1").await,
        Some((3, 3))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_push_overtaken_by_a_newer_one_is_followed_by_the_current_state() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["RACE-1"])
        .await;
    receive(&stack, "RACE-1", 10).await;
    let (slow, fast) = (sync_for(&stack, "shopify"), sync_for(&stack, "shopify"));
    // Two sync runs of one channel: the first one's push is slow to be acknowledged...
    fakes.shopify.update_settings(|s| s.latency_ms = 1_500);
    let first = tokio::spawn(async move {
        slow.handle_batch(first_deliveries(&[position_event("RACE-1", 1)]))
            .await
            .1
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    // ...and meanwhile three units go and a second run pushes and records the newer quantity.
    fakes.shopify.update_settings(|s| s.latency_ms = 0);
    stack.apply("StockAdjusted", json!({"event_id": unique("adj"), "occurred_at": now_rfc3339(), "sku": "RACE-1", "delta": -3, "reason": "damage"})).await;
    let (_, second) = fast
        .handle_batch(first_deliveries(&[position_event("RACE-1", 2)]))
        .await;
    assert_eq!(second.pushed, 1, "{second:?}");
    assert_eq!(
        fakes.shopify.shown(&listing_key("shopify", "RACE-1")),
        Some(7)
    );
    // The first push lands last and shows 10; its run finds the newer push recorded and pushes
    // the current state again.
    let first = first.await.unwrap();
    assert_eq!(first.repushed, 1, "{first:?}");
    assert_eq!(
        fakes.shopify.shown(&listing_key("shopify", "RACE-1")),
        Some(7)
    );
    assert_eq!(
        acknowledged(&stack, "shopify", "RACE-1").await,
        Some((2, 7))
    );
}

#[tokio::test]
async fn an_unchanged_version_is_recorded_only_against_the_acknowledgement_it_was_compared_with() {
    let stack = TestStack::new().await;
    let (channel, sku) = (
        ChannelName::parse("amazon").unwrap(),
        Sku::parse("UNCH-1").unwrap(),
    );
    let record = |version, quantity| SyncRecord {
        version,
        buffer_revision: 0,
        quantity,
        acknowledged_at: 1,
    };
    let store = &stack.deps.store;
    assert!(
        store
            .record_acknowledged(&channel, &sku, record(1, 5))
            .await
            .unwrap()
    );
    // A run read v1 showing 5; meanwhile another run's push of 3 was recorded as v2.
    assert!(
        store
            .record_acknowledged(&channel, &sku, record(2, 3))
            .await
            .unwrap()
    );
    let unchanged = store
        .record_unchanged(&channel, &sku, record(3, 5), &record(1, 5))
        .await
        .unwrap();
    assert!(
        !unchanged,
        "the channel may show 3 now: v3 must be pushed, not recorded"
    );
    assert!(
        store
            .record_unchanged(&channel, &sku, record(3, 3), &record(2, 3))
            .await
            .unwrap()
    );
    assert_eq!(acknowledged(&stack, "amazon", "UNCH-1").await, Some((3, 3)));
}

/// A channel that cannot be synced as configured fails its sync loudly (the batch is retried and,
/// after its budget, dead-lettered with the reason); it never pushes with a guess.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sync_that_cannot_run_as_configured_fails_loudly_and_pushes_nothing() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["CONF-1"])
        .await;
    receive(&stack, "CONF-1", 10).await;
    let shopify = ChannelName::parse("shopify").unwrap();
    let good = stack.deps.store.channel(&shopify).await.unwrap().unwrap();
    let secrets = aws_sdk_secretsmanager::Client::new(&stack.config);
    let empty_secret = format!("stockguard/{}empty", stack.stack.prefix);
    secrets
        .create_secret()
        .name(&empty_secret)
        .secret_string("{}")
        .send()
        .await
        .unwrap();
    let dynamodb = aws_sdk_dynamodb::Client::new(&stack.config);
    let mut no_token = good.clone();
    no_token.credentials = empty_secret.clone();
    // A kind no adapter serves can only be stored by writing the table directly.
    let set_kind = |kind: &'static str| {
        dynamodb
            .update_item()
            .table_name(&stack.stack.table)
            .key(
                "pk",
                aws_sdk_dynamodb::types::AttributeValue::S("CHANNELS".into()),
            )
            .key(
                "sk",
                aws_sdk_dynamodb::types::AttributeValue::S("shopify".into()),
            )
            .update_expression("SET kind = :k")
            .expression_attribute_values(
                ":k",
                aws_sdk_dynamodb::types::AttributeValue::S(kind.into()),
            )
            .send()
    };
    for (case, settings, raw_kind) in [
        ("a secret without its token", no_token, None),
        ("an unknown kind", good.clone(), Some("etsy")),
    ] {
        stack.deps.store.put_channel(&settings).await.unwrap();
        if let Some(kind) = raw_kind {
            set_kind(kind).await.unwrap();
        }
        let before = fakes.shopify.stats().push_calls;
        let (response, report) = sync_for(&stack, "shopify")
            .handle_batch(first_deliveries(&[position_event("CONF-1", 1)]))
            .await;
        assert_eq!((report.pushed, report.failed), (0, 1), "{case}: {report:?}");
        assert_eq!(response.batch_item_failures.len(), 1, "{case}: retried");
        assert_eq!(
            fakes.shopify.stats().push_calls,
            before,
            "{case}: nothing pushed"
        );
    }
    // A buffer percent that is not a number is not read as 0%.
    stack.deps.store.put_channel(&good).await.unwrap();
    dynamodb
        .update_item()
        .table_name(&stack.stack.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("CHANNELS".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("shopify".into()),
        )
        .update_expression("SET buffer_percent = :p")
        .expression_attribute_values(
            ":p",
            aws_sdk_dynamodb::types::AttributeValue::S("ten".into()),
        )
        .send()
        .await
        .unwrap();
    let (_, report) = sync_for(&stack, "shopify")
        .handle_batch(first_deliveries(&[position_event("CONF-1", 1)]))
        .await;
    assert_eq!((report.pushed, report.failed), (0, 1), "{report:?}");
}
