//! Reconciliation: lost position events and quantities changed behind stockguard's back are
//! found, reported as DriftDetected and repaired.

use std::time::Duration;

use serde_json::json;
use stockguard_domain::Sku;
use stockguard_domain::channel::{BufferPolicy, shown_quantity};
use stockguard_handlers::reconcile::{channel_syncs, reconcile_all};
use stockguard_tests::channels::{FakeChannels, FakeOptions, KINDS, fake, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, of_type};

async fn fakes() -> FakeChannels {
    // Amazon shows pushes at once here, and reconciliation does not wait for its processing.
    // SAFETY: set before any thread of this test process reads the environment.
    unsafe { std::env::set_var("STOCKGUARD_AMAZON_PROCESSING_MS", "0") };
    // Every test here lets its queues drain first, so nothing is in flight when it reconciles.
    unsafe { std::env::set_var("STOCKGUARD_IN_FLIGHT_GRACE_MS", "0") };
    let f = FakeChannels::start(FakeOptions::default())
        .await
        .expect("fake channels");
    f.amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    f
}

/// (channel, sku) pairs where a fake shows something other than what state says.
async fn mismatches(
    stack: &TestStack,
    fakes: &FakeChannels,
    skus: &[String],
) -> Vec<(String, String, Option<i64>, i64)> {
    let parsed: Vec<Sku> = skus.iter().map(|s| Sku::parse(s).unwrap()).collect();
    let positions = stack.deps.store.positions(&parsed).await.unwrap();
    let mut out = Vec::new();
    for kind in KINDS {
        for sku in &parsed {
            let expected =
                shown_quantity(positions[sku].available(), &BufferPolicy::default(), None);
            let shown = fake(fakes, kind).shown(&listing_key(kind, sku.as_str()));
            if shown != Some(expected) {
                out.push((kind.to_owned(), sku.to_string(), shown, expected));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_position_events_dropped_one_reconciliation_converges_every_channel() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    let skus: Vec<String> = (0..20).map(|i| format!("LOSS-{i}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &refs)
        .await;
    let options = stockguard_local::RuntimeOptions {
        drop_position_events: 0.05,
        ..Default::default()
    };
    let _rt = stack.start_runtime(options).await;
    for round in 0..5 {
        for s in &skus {
            stack.put_event("erp.x", "StockReceived", &json!({"event_id": format!("{s}-{round}"), "occurred_at": now_rfc3339(), "sku": s, "quantity": 1 + round})).await;
        }
    }
    // Let every delivered event be applied and pushed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    loop {
        let mut depth = 0;
        for (name, q) in &stack.stack.queues {
            if name.ends_with("Queue") {
                depth += stockguard_local::tap::queue_depth(&stack.sqs, &q.url)
                    .await
                    .unwrap();
            }
        }
        if depth == 0 || tokio::time::Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let before = mismatches(&stack, &fakes, &skus).await;

    let syncs = channel_syncs(&stack.deps).await.unwrap();
    let report = reconcile_all(&syncs, Duration::from_secs(120)).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert_eq!(report.checked, 4 * skus.len());
    assert_eq!(
        report.drift.len(),
        before.len(),
        "every difference is reported: {before:?} vs {:?}",
        report.drift
    );
    assert!(report.drift.iter().all(|d| d.repaired));
    assert!(
        mismatches(&stack, &fakes, &skus).await.is_empty(),
        "every channel converged after one run"
    );
    if !before.is_empty() {
        let published = stack
            .await_published(Duration::from_secs(10), |e| {
                of_type(e, "DriftDetected").len() >= before.len()
            })
            .await;
        assert_eq!(of_type(&published, "DriftDetected").len(), before.len());
    }
}

#[tokio::test]
async fn a_quantity_changed_behind_our_back_is_detected_reported_and_repaired() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["DRIFT-1"])
        .await;
    stack.apply("StockReceived", json!({"event_id": "d-rcv", "occurred_at": now_rfc3339(), "sku": "DRIFT-1", "quantity": 10})).await;
    let syncs = channel_syncs(&stack.deps).await.unwrap();
    let first = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(
        first.drift.len(),
        4,
        "nothing was pushed yet: every channel drifts from 0 to 10"
    );
    assert!(
        mismatches(&stack, &fakes, &["DRIFT-1".into()])
            .await
            .is_empty()
    );
    stack.drain_published(Duration::from_millis(300)).await;

    // Someone edits the quantity in Shopify's admin.
    fakes
        .shopify
        .set_shown(&listing_key("shopify", "DRIFT-1"), 3);
    let report = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(report.drift.len(), 1);
    let row = &report.drift[0];
    assert_eq!(
        (
            row.channel.as_str(),
            row.sku.as_str(),
            row.expected,
            row.reported,
            row.repaired
        ),
        ("shopify", "DRIFT-1", 10, 3, true)
    );
    assert_eq!(
        fakes.shopify.shown(&listing_key("shopify", "DRIFT-1")),
        Some(10)
    );
    let published = stack
        .await_published(Duration::from_secs(10), |e| {
            !of_type(e, "DriftDetected").is_empty()
        })
        .await;
    let drift = of_type(&published, "DriftDetected");
    assert_eq!(drift.len(), 1);
    assert_eq!(drift[0]["source"], "stockguard.ops");
    let d = &drift[0]["detail"];
    assert_eq!(
        (
            d["channel"].as_str(),
            d["expected"].as_i64(),
            d["reported"].as_i64(),
            d["drift"].as_i64()
        ),
        (Some("shopify"), Some(10), Some(3), Some(-7))
    );
}

#[tokio::test]
async fn a_run_out_of_time_saves_where_the_next_run_resumes() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    let skus: Vec<String> = (0..30).map(|i| format!("PAGE-{i:02}")).collect();
    let refs: Vec<&str> = skus.iter().map(String::as_str).collect();
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &refs)
        .await;
    let syncs = channel_syncs(&stack.deps).await.unwrap();
    let cut = reconcile_all(&syncs, Duration::ZERO).await;
    assert_eq!(cut.checked, 0);
    assert_eq!(
        cut.resume_after,
        Some(("amazon".to_owned(), "PAGE-00".to_owned()))
    );
    let cursor = stack.deps.store.reconcile_cursor().await.unwrap();
    assert_eq!(
        cursor.map(|(c, s)| (c.to_string(), s.to_string())),
        Some(("amazon".to_owned(), "PAGE-00".to_owned()))
    );
    let full = reconcile_all(&syncs, Duration::from_secs(120)).await;
    assert_eq!(
        (full.checked, full.resume_after),
        (4 * 30, None),
        "it resumed and finished"
    );
    assert!(
        stack.deps.store.reconcile_cursor().await.unwrap().is_none(),
        "a finished run clears the cursor"
    );
}
