//! Reconciliation: lost position events and quantities changed behind stockguard's back are
//! found, reported as DriftDetected and repaired; a channel showing fewer units than it should
//! (an order not heard of yet, as far as reconciliation can tell) is pushed up only when a later
//! run finds it showing the same.

use std::time::Duration;

use serde_json::json;
use stockguard_domain::channel::{BufferPolicy, shown_quantity};
use stockguard_domain::drift::PendingDrift;
use stockguard_domain::{ChannelName, Sku};
use stockguard_fake_channels::OrderRequest;
use stockguard_handlers::deps::now_ms;
use stockguard_handlers::order_polls::{OrderPoller, PollSettings, PolledChannel};
use stockguard_handlers::reconcile::{DriftRow, channel_syncs, reconcile_all};
use stockguard_local::tap::drain_queue;
use stockguard_tests::channels::{FakeChannels, FakeOptions, KINDS, fake, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, of_type};

async fn fakes() -> FakeChannels {
    // Amazon shows pushes at once here, and reconciliation does not wait for its processing.
    // SAFETY: set before any thread of this test process reads the environment.
    unsafe { std::env::set_var("STOCKGUARD_AMAZON_PROCESSING_MS", "0") };
    // Every test here lets its queues drain first, so nothing is in flight when it reconciles.
    unsafe { std::env::set_var("STOCKGUARD_IN_FLIGHT_GRACE_MS", "0") };
    // A shortfall is pushed up by the next run that finds it unchanged, however soon.
    unsafe { std::env::set_var("STOCKGUARD_ORDER_GRACE_MS", "0") };
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

/// A lost event leaves a channel showing what it last acknowledged: one run repairs it. Two
/// concurrent sync batches' pushes of one listing can land out of order and leave it below what
/// it acknowledged, which reconciliation cannot tell from a sale not heard of yet: the next run
/// repairs those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_position_events_dropped_reconciliation_converges_every_channel() {
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
    assert!(
        report
            .drift
            .iter()
            .all(|d| d.repaired || (d.deferred && d.reported < d.expected)),
        "{:?}",
        report.drift
    );
    let again = reconcile_all(&syncs, Duration::from_secs(120)).await;
    assert_eq!(again.drift.len(), report.deferred(), "{:?}", again.drift);
    assert!(again.drift.iter().all(|d| d.repaired), "{:?}", again.drift);
    assert!(
        mismatches(&stack, &fakes, &skus).await.is_empty(),
        "every channel converged"
    );
    let reported = before.len() + again.drift.len();
    if reported > 0 {
        let published = stack
            .await_published(Duration::from_secs(10), |e| {
                of_type(e, "DriftDetected").len() >= reported
            })
            .await;
        assert_eq!(of_type(&published, "DriftDetected").len(), reported);
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

    // Someone raises the quantity in Shopify's admin: it may sell units that are gone.
    fakes
        .shopify
        .set_shown(&listing_key("shopify", "DRIFT-1"), 13);
    let report = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(
        rows(&report.drift),
        vec![("shopify", "DRIFT-1", 10, 13, true, false)]
    );
    assert_eq!(
        fakes.shopify.shown(&listing_key("shopify", "DRIFT-1")),
        Some(10),
        "repaired at once"
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
        (Some("shopify"), Some(10), Some(13), Some(3))
    );

    // Someone lowers it: as far as reconciliation can tell, an order not heard of yet. It is
    // reported at once and pushed back up by the next run that finds it unchanged.
    fakes
        .shopify
        .set_shown(&listing_key("shopify", "DRIFT-1"), 3);
    let first = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(
        rows(&first.drift),
        vec![("shopify", "DRIFT-1", 10, 3, false, true)]
    );
    assert_eq!(
        fakes.shopify.shown(&listing_key("shopify", "DRIFT-1")),
        Some(3)
    );
    let second = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(
        rows(&second.drift),
        vec![("shopify", "DRIFT-1", 10, 3, true, false)]
    );
    assert_eq!(
        fakes.shopify.shown(&listing_key("shopify", "DRIFT-1")),
        Some(10)
    );
    let published = stack
        .await_published(Duration::from_secs(10), |e| {
            of_type(e, "DriftDetected").len() >= 2
        })
        .await;
    let drift: Vec<i64> = of_type(&published, "DriftDetected")
        .iter()
        .map(|e| e["detail"]["drift"].as_i64().unwrap())
        .collect();
    assert_eq!(drift, vec![-7, -7], "each run that sees it reports it");
}

/// (channel, sku, expected, reported, repaired, deferred) of each drift row.
fn rows(drift: &[DriftRow]) -> Vec<(&str, &str, i64, i64, bool, bool)> {
    drift
        .iter()
        .map(|d| {
            (
                d.channel.as_str(),
                d.sku.as_str(),
                d.expected,
                d.reported,
                d.repaired,
                d.deferred,
            )
        })
        .collect()
}

/// The held-back sighting stored for a listing, if any.
async fn pending(stack: &TestStack, channel: &str, sku: &str) -> Option<PendingDrift> {
    let sku = Sku::parse(sku).unwrap();
    let ctx = stack
        .deps
        .store
        .sync_context(
            &ChannelName::parse(channel).unwrap(),
            std::slice::from_ref(&sku),
        )
        .await
        .unwrap();
    ctx.pending_drift.get(&sku).copied()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_that_sold_units_we_have_not_heard_of_is_not_pushed_back_up() {
    let stack = TestStack::new().await;
    let fakes = fakes().await;
    let (a, b) = ("UNHEARD-A", "UNHEARD-B");
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &[a, b])
        .await;
    for sku in [a, b] {
        stack.apply("StockReceived", json!({"event_id": format!("{sku}-rcv"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": 10})).await;
    }
    let syncs = channel_syncs(&stack.deps).await.unwrap();
    let first = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert!(
        first.drift.len() == 8 && first.drift.iter().all(|d| d.repaired),
        "never pushed: every listing is pushed at once: {:?}",
        first.drift
    );
    stack.drain_published(Duration::from_millis(300)).await;

    // A buyer takes one of A on Walmart and one of B on eBay; neither order is polled yet.
    for (channel, sku) in [("walmart", a), ("ebay", b)] {
        fake(&fakes, channel)
            .place_order(&OrderRequest::new([(listing_key(channel, sku), 1)]))
            .unwrap();
    }
    let held = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert!(held.errors.is_empty(), "{:?}", held.errors);
    assert_eq!(
        rows(&held.drift),
        vec![
            ("ebay", b, 10, 9, false, true),
            ("walmart", a, 10, 9, false, true)
        ],
        "reported, not pushed up"
    );
    assert_eq!(fakes.walmart.shown(&listing_key("walmart", a)), Some(9));
    assert_eq!(fakes.ebay.shown(&listing_key("ebay", b)), Some(9));
    let sighting = pending(&stack, "walmart", a)
        .await
        .expect("the sighting is kept");
    assert_eq!((sighting.expected, sighting.reported), (10, 9));
    let published = stack
        .await_published(Duration::from_secs(10), |e| {
            of_type(e, "DriftDetected").len() >= 2
        })
        .await;
    assert_eq!(of_type(&published, "DriftDetected").len(), 2);

    // Walmart's order reaches us by its poll; eBay's does not.
    let poller = OrderPoller::new(
        stack
            .deps
            .with_dead_letters(&stack.stack.queues["OrderPollsDLQ"].url),
        PolledChannel::Walmart,
        PollSettings::default(),
    );
    assert_eq!(poller.poll(now_ms()).await.unwrap().published, 1);
    // Its OrderPlaced waits on its queue (no runtime here): applied as Lambda would deliver it.
    let queued = drain_queue(
        &stack.sqs,
        &stack.stack.queues["OrderPlacedQueue"].url,
        Duration::from_secs(2),
    )
    .await
    .unwrap();
    assert_eq!(queued.len(), 1);
    let answer = stack
        .run_batch("OrderPlaced", &[(queued[0].0.clone(), 1)])
        .await;
    assert!(answer.batch_item_failures.is_empty());
    assert_eq!(stack.position(a).await.available(), 9);

    let next = reconcile_all(&syncs, Duration::from_secs(60)).await;
    assert_eq!(
        rows(&next.drift),
        vec![
            ("amazon", a, 9, 10, true, false),
            ("ebay", a, 9, 10, true, false),
            ("ebay", b, 10, 9, true, false),
            ("shopify", a, 9, 10, true, false),
        ],
        "Walmart now shows what it should; the channels that show more are repaired at once; \
         eBay's shortfall persisted and is pushed up"
    );
    assert_eq!(fakes.walmart.shown(&listing_key("walmart", a)), Some(9));
    assert_eq!(fakes.ebay.shown(&listing_key("ebay", b)), Some(10));
    assert_eq!(
        pending(&stack, "walmart", a).await,
        None,
        "forgotten once in sync"
    );
    assert_eq!(
        pending(&stack, "ebay", b).await,
        None,
        "forgotten once repaired"
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
