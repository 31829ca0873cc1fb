//! Inbound events through the real handlers against the emulator: exactly once, ordering,
//! orders and oversells (orders of any size), bad input, and the bus round trip.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use stockguard_adapters::{AdapterError, InventoryStore, Stamp, StateStore};
use stockguard_domain::buffer::StoredSignal;
use stockguard_domain::plan::{IdempotencyRecord, OrderRecord, ReservationRecord, Write};
use stockguard_domain::reservation::SoftHold;
use stockguard_domain::{EntityId, Millis, Position, Sku};
use stockguard_handlers::Inventory;
use stockguard_handlers::deps::now_ms;
use stockguard_tests::{TestStack, at, envelope, now_rfc3339, of_type, unique};

fn received(id: &str, sku: &str, quantity: i64, occurred_at: &str) -> Value {
    json!({"event_id": id, "occurred_at": occurred_at, "sku": sku, "quantity": quantity})
}

#[tokio::test]
async fn the_same_event_five_times_is_applied_once_and_a_reused_id_is_refused() {
    let stack = TestStack::new().await;
    let detail = received("dup-1", "DUP-1", 7, &now_rfc3339());
    let body = envelope("erp.netsuite", "StockReceived", &detail);
    let records: Vec<(String, u32)> = (0..5).map(|_| (body.clone(), 1)).collect();
    let resp = stack.run_batch("StockReceived", &records).await;
    assert!(resp.batch_item_failures.is_empty());
    for _ in 0..2 {
        stack.apply("StockReceived", detail.clone()).await;
    }
    let p = stack.position("DUP-1").await;
    assert_eq!((p.on_hand, p.version), (7, 1), "applied once");

    let mut reused = detail.clone();
    reused["quantity"] = json!(9);
    let resp = stack
        .run_batch(
            "StockReceived",
            &[(envelope("erp.netsuite", "StockReceived", &reused), 1)],
        )
        .await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "a permanent failure is dead-lettered, not retried"
    );
    assert_eq!(stack.position("DUP-1").await, p, "state unchanged");
    let dead = stack.dead_letters("StockReceivedDLQ").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.as_deref(), Some("idempotency_key_reused"));

    let published = stack.drain_published(Duration::from_millis(300)).await;
    let changes = of_type(&published, "InventoryPositionChanged");
    assert!(!changes.is_empty());
    assert!(
        changes
            .iter()
            .all(|e| e["detail"]["version"] == 1 && e["detail"]["cause"]["event_id"] == "dup-1")
    );
}

#[tokio::test]
async fn producer_replays_by_sequence_are_recorded_not_applied() {
    let stack = TestStack::new().await;
    let mut d = received("seq-5", "SEQ-1", 5, &now_rfc3339());
    d["sequence"] = json!(5);
    stack.apply("StockReceived", d).await;
    let mut replay = received("seq-5-again", "SEQ-1", 5, &now_rfc3339());
    replay["sequence"] = json!(5);
    stack.apply("StockReceived", replay).await;
    let mut next = received("seq-6", "SEQ-1", 1, &now_rfc3339());
    next["sequence"] = json!(6);
    stack.apply("StockReceived", next).await;
    assert_eq!(stack.position("SEQ-1").await.on_hand, 6);
}

#[tokio::test]
async fn counts_are_watermarks_and_the_final_position_does_not_depend_on_arrival_order() {
    let stack = TestStack::new().await;
    // Timeline at the producer: receipt(t-50s) count=20(t-40s) sale-shipped... modelled as adjustments.
    let count =
        json!({"event_id": "cnt", "occurred_at": at(-40_000), "sku": "WM-1", "on_hand": 20});
    let before = received("rcv-before", "WM-1", 5, &at(-50_000));
    let after_sale = json!({"event_id": "adj-after", "occurred_at": at(-30_000), "sku": "WM-1", "delta": -3, "reason": "sale"});
    let late_receipt = received("rcv-after", "WM-1", 4, &at(-20_000));

    // The sale that occurred after the count arrives before it.
    stack.apply("StockAdjusted", after_sale.clone()).await;
    stack.apply("StockCounted", count.clone()).await;
    assert_eq!(
        stack.position("WM-1").await.on_hand,
        17,
        "the later sale stays subtracted once the count lands"
    );
    stack.apply("StockReceived", before.clone()).await;
    assert_eq!(
        stack.position("WM-1").await.on_hand,
        17,
        "a receipt before the count is inside it"
    );
    stack.apply("StockReceived", late_receipt.clone()).await;
    assert_eq!(stack.position("WM-1").await.on_hand, 21);
    let older_count =
        json!({"event_id": "cnt-old", "occurred_at": at(-60_000), "sku": "WM-1", "on_hand": 99});
    stack.apply("StockCounted", older_count.clone()).await;
    assert_eq!(
        stack.position("WM-1").await.on_hand,
        21,
        "an older count is ignored"
    );

    // Every permutation-like shuffle of the same events on fresh SKUs ends in the same place.
    let events = [
        ("StockCounted", count),
        ("StockReceived", before),
        ("StockAdjusted", after_sale),
        ("StockReceived", late_receipt),
        ("StockCounted", older_count),
    ];
    let orders: [[usize; 5]; 4] = [
        [0, 1, 2, 3, 4],
        [4, 3, 2, 1, 0],
        [2, 4, 0, 3, 1],
        [3, 0, 4, 1, 2],
    ];
    for (n, order) in orders.iter().enumerate() {
        let sku = format!("WM-SHUF-{n}");
        for &i in order {
            let (dt, d) = &events[i];
            let mut d = d.clone();
            d["sku"] = json!(sku);
            d["event_id"] = json!(format!("{}-{n}", d["event_id"].as_str().unwrap()));
            stack.apply(dt, d).await;
        }
        assert_eq!(stack.position(&sku).await.on_hand, 21, "order {order:?}");
    }
}

#[tokio::test]
async fn an_order_beyond_stock_is_recorded_and_reported_then_settled() {
    let stack = TestStack::new().await;
    stack
        .apply("StockReceived", received("r", "OS-1", 3, &now_rfc3339()))
        .await;
    stack.drain_published(Duration::from_millis(100)).await;
    let order = json!({"event_id": "ord-1", "occurred_at": now_rfc3339(), "order_id": "AMZ-1", "channel": "amazon",
        "lines": [{"sku": "OS-1", "quantity": 5}]});
    stack.apply("OrderPlaced", order).await;
    let p = stack.position("OS-1").await;
    assert_eq!(
        (p.on_hand, p.hard_reserved, p.available()),
        (3, 5, -2),
        "a fact is recorded even when short"
    );
    let published = stack
        .await_published(Duration::from_secs(5), |e| {
            !of_type(e, "OversellDetected").is_empty()
        })
        .await;
    let oversell = of_type(&published, "OversellDetected");
    assert_eq!(oversell.len(), 1);
    let d = &oversell[0]["detail"];
    assert_eq!(
        (
            d["sku"].as_str(),
            d["order_id"].as_str(),
            d["channel"].as_str(),
            d["shortfall"].as_i64()
        ),
        (Some("OS-1"), Some("AMZ-1"), Some("amazon"), Some(2))
    );
    assert!(d["detected_at"].is_string());

    stack
        .apply("OrderShipped", json!({"event_id": "ship-1", "occurred_at": now_rfc3339(), "order_id": "AMZ-1", "lines": [{"sku": "OS-1", "quantity": 3}]}))
        .await;
    let p = stack.position("OS-1").await;
    assert_eq!((p.on_hand, p.hard_reserved, p.available()), (0, 2, -2));
    stack
        .apply(
            "OrderCancelled",
            json!({"event_id": "cancel-1", "occurred_at": now_rfc3339(), "order_id": "AMZ-1"}),
        )
        .await;
    let p = stack.position("OS-1").await;
    assert_eq!(
        (p.on_hand, p.hard_reserved, p.available()),
        (0, 0, 0),
        "the unshipped rest is released"
    );
    // Nothing remains to settle: shipping more is refused with a reason.
    let resp = stack
        .run_batch("OrderShipped", &[(envelope("wms.main", "OrderShipped", &json!({"event_id": "ship-2", "occurred_at": now_rfc3339(), "order_id": "AMZ-1", "lines": [{"sku": "OS-1", "quantity": 1}]})), 1)])
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        stack.dead_letters("OrderShippedDLQ").await[0].1.as_deref(),
        Some("exceeds_remaining")
    );
}

/// `BIG-00`.. `BIG-{n-1}`, one unit each.
fn big_lines(n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| json!({"sku": format!("BIG-{i:02}"), "quantity": 1}))
        .collect()
}

fn big(i: usize) -> String {
    format!("BIG-{i:02}")
}

/// Receives 2 units of each of the first `n` big SKUs.
async fn stock_big_skus(stack: &TestStack, n: usize) {
    for i in 0..n {
        stack
            .apply(
                "StockReceived",
                received(&format!("r-{}", big(i)), &big(i), 2, &now_rfc3339()),
            )
            .await;
    }
}

/// A marketplace order is a fact whatever its size: 70 SKUs apply in three transactions (32, 32
/// and 6 lines, each with its sequence item, the most one holds), once however often the event
/// is delivered; then one line is cancelled and the rest shipped, in parts as well.
#[tokio::test]
async fn an_order_of_70_skus_applies_in_parts_once_then_ships_and_cancels() {
    let stack = TestStack::new().await;
    stock_big_skus(&stack, 60).await;
    stack.drain_published(Duration::from_millis(100)).await;
    let placed = json!({"event_id": "big-1", "occurred_at": now_rfc3339(), "sequence": 7,
        "order_id": "BIG-ORDER", "channel": "amazon", "lines": big_lines(70)});
    stack.apply("OrderPlaced", placed.clone()).await;
    let mut before = Vec::new();
    for i in 0..70 {
        let p = stack.position(&big(i)).await;
        let on_hand = if i < 60 { 2 } else { 0 };
        assert_eq!(
            (p.on_hand, p.hard_reserved),
            (on_hand, 1),
            "{} placed",
            big(i)
        );
        before.push(p);
    }
    let order = stack
        .deps
        .store
        .order(&EntityId::parse("BIG-ORDER").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!((order.lines.len(), order.recording), (70, false));
    for key in ["big-1", "big-1#1", "big-1#2"] {
        assert!(
            stack.deps.store.idempotency(key).await.unwrap().is_some(),
            "{key}"
        );
    }

    // Replayed: every part is a repeat. The same id with another payload: refused.
    let body = envelope("marketplace.amazon", "OrderPlaced", &placed);
    let mut reused = placed.clone();
    reused["lines"][69]["quantity"] = json!(3);
    let reused = envelope("marketplace.amazon", "OrderPlaced", &reused);
    let resp = stack
        .run_batch("OrderPlaced", &[(body.clone(), 2), (body, 3), (reused, 1)])
        .await;
    assert!(resp.batch_item_failures.is_empty());
    for (i, p) in before.iter().enumerate() {
        assert_eq!(stack.position(&big(i)).await, *p, "{} applied once", big(i));
    }
    let dead = stack.dead_letters("OrderPlacedDLQ").await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0].1.as_deref(), Some("idempotency_key_reused"));

    // Consumers see what one transaction would have published: each SKU's position with the
    // order as its cause, and an oversell for each of the ten SKUs that had no stock.
    let published = stack
        .await_published(Duration::from_secs(10), |e| {
            of_type(e, "OversellDetected").len() >= 10
        })
        .await;
    let mut announced: Vec<&str> = of_type(&published, "InventoryPositionChanged")
        .iter()
        .filter(|e| e["detail"]["cause"]["event_id"] == "big-1")
        .map(|e| e["detail"]["sku"].as_str().unwrap())
        .collect();
    announced.sort();
    announced.dedup();
    assert_eq!(announced.len(), 70);
    let mut short: Vec<&str> = of_type(&published, "OversellDetected")
        .iter()
        .map(|e| e["detail"]["sku"].as_str().unwrap())
        .collect();
    short.sort();
    assert_eq!(short, (60..70).map(big).collect::<Vec<_>>());

    stack
        .apply(
            "OrderCancelled",
            json!({"event_id": "big-cancel", "occurred_at": now_rfc3339(), "sequence": 8,
            "order_id": "BIG-ORDER", "lines": [{"sku": big(5), "quantity": 1}]}),
        )
        .await;
    // Every unit not cancelled: 69 lines, three parts again.
    let ship = json!({"event_id": "big-ship", "occurred_at": now_rfc3339(), "sequence": 9,
        "order_id": "BIG-ORDER"});
    stack.apply("OrderShipped", ship.clone()).await;
    stack.apply("OrderShipped", ship).await;
    for i in 0..70 {
        let p = stack.position(&big(i)).await;
        let expected = match i {
            5 => (2, 0),
            0..60 => (1, 0),
            _ => (-1, 0),
        };
        assert_eq!((p.on_hand, p.hard_reserved), expected, "{} settled", big(i));
    }
    assert!(
        stack
            .deps
            .store
            .idempotency("big-ship#2")
            .await
            .unwrap()
            .is_some()
    );
}

/// The state table, with one commit failing the way a throttled request does (nothing written,
/// a retryable error): a delivery cut short between the parts of an order.
struct FailingCommit<'a> {
    inner: &'a StateStore,
    /// Commits that succeed before the one that fails.
    fail_after: u32,
    commits: AtomicU32,
}

impl InventoryStore for FailingCommit<'_> {
    async fn stamped_positions(
        &self,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, (Position, Option<String>)>, AdapterError> {
        self.inner.stamped_positions(skus).await
    }
    async fn positions_and_surges(
        &self,
        skus: &[Sku],
        now: Millis,
    ) -> Result<(HashMap<Sku, Position>, HashSet<Sku>), AdapterError> {
        self.inner.positions_and_surges(skus, now).await
    }
    async fn idempotency(&self, event_id: &str) -> Result<Option<IdempotencyRecord>, AdapterError> {
        self.inner.idempotency(event_id).await
    }
    async fn mark_published(&self, event_id: &str) -> Result<(), AdapterError> {
        self.inner.mark_published(event_id).await
    }
    async fn reservation(&self, id: &EntityId) -> Result<Option<ReservationRecord>, AdapterError> {
        self.inner.reservation(id).await
    }
    async fn order(&self, id: &EntityId) -> Result<Option<OrderRecord>, AdapterError> {
        self.inner.order(id).await
    }
    async fn signal(&self, sku: &Sku, signal: &str) -> Result<Option<StoredSignal>, AdapterError> {
        self.inner.signal(sku, signal).await
    }
    async fn sequence(&self, source: &str, sku: &Sku) -> Result<Option<u64>, AdapterError> {
        self.inner.sequence(source, sku).await
    }
    async fn on_hand_deltas_after(&self, sku: &Sku, after: Millis) -> Result<i64, AdapterError> {
        self.inner.on_hand_deltas_after(sku, after).await
    }
    async fn expired_holds(
        &self,
        sku: &Sku,
        now: Millis,
        limit: i32,
    ) -> Result<Vec<SoftHold>, AdapterError> {
        self.inner.expired_holds(sku, now, limit).await
    }
    async fn lapsed_reservations(
        &self,
        now: Millis,
        limit: i32,
    ) -> Result<Vec<EntityId>, AdapterError> {
        self.inner.lapsed_reservations(now, limit).await
    }
    async fn add_to_profile(&self, sales: &[(i64, Millis)]) -> Result<(), AdapterError> {
        self.inner.add_to_profile(sales).await
    }
    async fn commit(&self, writes: &[Write], stamp: &Stamp) -> Result<(), AdapterError> {
        if self.commits.fetch_add(1, Ordering::SeqCst) == self.fail_after {
            return Err(AdapterError::transient(
                "TransactWriteItems: ProvisionedThroughputExceededException (injected)",
            ));
        }
        InventoryStore::commit(self.inner, writes, stamp).await
    }
}

/// A delivery that fails after the second of three parts leaves the event in its queue (a
/// retryable failure) with the order recorded but not all of it allocated: a shipment waits,
/// a reused event id is refused, and the redelivery applies the third part only, once.
#[tokio::test]
async fn an_order_cut_short_between_parts_is_finished_once_by_its_redelivery() {
    let stack = TestStack::new().await;
    stock_big_skus(&stack, 70).await;
    let placed = json!({"event_id": "cut-1", "occurred_at": now_rfc3339(),
        "order_id": "CUT-ORDER", "channel": "walmart", "lines": big_lines(70)});
    let store = FailingCommit {
        inner: &stack.deps.store,
        fail_after: 2,
        commits: AtomicU32::new(0),
    };
    let failed = Inventory::new(&store, &stack.deps.publisher, &now_ms)
        .apply("marketplace.walmart", "OrderPlaced", &placed)
        .await
        .unwrap_err();
    assert!(failed.is_retryable(), "{failed}");
    for i in 0..70 {
        let expected = if i < 64 { 1 } else { 0 };
        assert_eq!(stack.hard_reserved(&big(i)).await, expected, "{}", big(i));
    }
    let order_id = EntityId::parse("CUT-ORDER").unwrap();
    let order = stack.deps.store.order(&order_id).await.unwrap().unwrap();
    assert!(order.recording);

    let ship = envelope(
        "wms.main",
        "OrderShipped",
        &json!({"event_id": "cut-ship", "occurred_at": now_rfc3339(), "order_id": "CUT-ORDER"}),
    );
    let resp = stack.run_batch("OrderShipped", &[(ship.clone(), 1)]).await;
    assert_eq!(
        resp.batch_item_failures.len(),
        1,
        "the shipment waits in its queue for the order to be recorded in full"
    );
    let mut reused = placed.clone();
    reused["channel"] = json!("ebay");
    let resp = stack
        .run_batch(
            "OrderPlaced",
            &[(envelope("marketplace.walmart", "OrderPlaced", &reused), 1)],
        )
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(
        stack.dead_letters("OrderPlacedDLQ").await[0].1.as_deref(),
        Some("idempotency_key_reused")
    );
    assert_eq!(stack.hard_reserved(&big(69)).await, 0);

    let body = envelope("marketplace.walmart", "OrderPlaced", &placed);
    for receive_count in [2, 3] {
        let resp = stack
            .run_batch("OrderPlaced", &[(body.clone(), receive_count)])
            .await;
        assert!(resp.batch_item_failures.is_empty());
        for i in 0..70 {
            let p = stack.position(&big(i)).await;
            assert_eq!(
                (p.on_hand, p.hard_reserved, p.version),
                (2, 1, 2),
                "{}",
                big(i)
            );
        }
    }
    let order = stack.deps.store.order(&order_id).await.unwrap().unwrap();
    assert!(!order.recording);
    let resp = stack.run_batch("OrderShipped", &[(ship, 2)]).await;
    assert!(resp.batch_item_failures.is_empty());
    for i in 0..70 {
        let p = stack.position(&big(i)).await;
        assert_eq!((p.on_hand, p.hard_reserved), (1, 0), "{} shipped", big(i));
    }
}

#[tokio::test]
async fn bad_input_is_dead_lettered_with_a_specific_reason_and_the_rest_of_the_batch_applies() {
    let stack = TestStack::new().await;
    let ok = |id: &str| {
        envelope(
            "erp.x",
            "StockReceived",
            &received(id, "BAD-OK", 1, &now_rfc3339()),
        )
    };
    let bad = |detail: Value| envelope("erp.x", "StockReceived", &detail);
    let lines26: Vec<Value> = (0..26)
        .map(|i| json!({"sku": format!("L{i}"), "quantity": 1}))
        .collect();
    let cases: Vec<(String, &str)> = vec![
        (
            bad(json!({"event_id": "b1", "occurred_at": now_rfc3339(), "quantity": 1})),
            "missing_field",
        ),
        (
            bad(
                json!({"event_id": "b2", "occurred_at": now_rfc3339(), "sku": "BAD-1", "quantity": "1"}),
            ),
            "wrong_type",
        ),
        (
            bad(
                json!({"event_id": "b3", "occurred_at": now_rfc3339(), "sku": "no spaces", "quantity": 1}),
            ),
            "invalid_sku",
        ),
        (
            bad(
                json!({"event_id": "b4", "occurred_at": now_rfc3339(), "sku": "BAD-1", "quantity": 0}),
            ),
            "quantity_out_of_range",
        ),
        (
            bad(
                json!({"event_id": "b5", "occurred_at": now_rfc3339(), "sku": "BAD-1", "quantity": -4}),
            ),
            "quantity_out_of_range",
        ),
        (
            bad(
                json!({"event_id": "b6", "occurred_at": now_rfc3339(), "sku": "BAD-1", "quantity": 1_000_001}),
            ),
            "quantity_out_of_range",
        ),
        (
            bad(
                json!({"event_id": "b7", "occurred_at": now_rfc3339(), "sku": "BAD-1", "quantity": 1, "reference": "x".repeat(20_000)}),
            ),
            "payload_too_large",
        ),
        ("this is not json".to_owned(), "malformed_envelope"),
        (
            envelope("erp.x", "StockTeleported", &json!({"event_id": "b8"})),
            "misrouted",
        ),
        (
            envelope(
                "stockguard.core",
                "StockReceived",
                &received("b9", "BAD-1", 1, &now_rfc3339()),
            ),
            "own_event",
        ),
    ];
    let mut records: Vec<(String, u32)> = vec![(ok("good-1"), 1)];
    records.extend(cases.iter().map(|(b, _)| (b.clone(), 1)));
    records.push((ok("good-2"), 1));
    let resp = stack.run_batch("StockReceived", &records).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "permanent failures never come back"
    );
    assert_eq!(
        stack.position("BAD-OK").await.on_hand,
        2,
        "the good records of the batch applied"
    );
    assert_eq!(
        stack.position("BAD-1").await.version,
        0,
        "no bad record changed state"
    );
    let mut dead: Vec<Option<String>> = stack
        .dead_letters("StockReceivedDLQ")
        .await
        .into_iter()
        .map(|(_, r)| r)
        .collect();
    let mut expected: Vec<Option<String>> =
        cases.iter().map(|(_, r)| Some(r.to_string())).collect();
    dead.sort();
    expected.sort();
    assert_eq!(dead, expected);

    // Cart rules on the reservation path.
    let cart = |lines: Value| {
        envelope(
            "web",
            "ReservationRequested",
            &json!({"event_id": unique("c"), "occurred_at": now_rfc3339(), "reservation_id": "r", "channel": "web", "lines": lines}),
        )
    };
    let resp = stack
        .run_batch(
            "ReservationRequested",
            &[
                (cart(json!(lines26)), 1),
                (
                    cart(json!([{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 1}])),
                    1,
                ),
            ],
        )
        .await;
    assert!(resp.batch_item_failures.is_empty());
    let mut reasons: Vec<_> = stack
        .dead_letters("ReservationRequestedDLQ")
        .await
        .into_iter()
        .map(|(_, r)| r.unwrap_or_default())
        .collect();
    reasons.sort();
    assert_eq!(reasons, ["duplicate_sku", "too_many_lines"]);
}

#[tokio::test]
async fn a_retryable_failure_is_retried_then_dead_lettered_after_the_budget() {
    let stack = TestStack::new().await;
    let confirm = envelope(
        "web",
        "ReservationConfirmed",
        &json!({"event_id": "c-early", "occurred_at": now_rfc3339(), "reservation_id": "unknown", "order_id": "o"}),
    );
    let resp = stack
        .run_batch("ReservationConfirmed", &[(confirm.clone(), 1)])
        .await;
    assert_eq!(resp.batch_item_failures.len(), 1, "not known yet: retried");
    assert!(
        stack
            .dead_letters("ReservationConfirmedDLQ")
            .await
            .is_empty()
    );
    let resp = stack
        .run_batch("ReservationConfirmed", &[(confirm, 5)])
        .await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "out of retries: dead-lettered with its reason"
    );
    assert_eq!(
        stack.dead_letters("ReservationConfirmedDLQ").await[0]
            .1
            .as_deref(),
        Some("not_yet_known")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_inbound_event_on_the_bus_produces_its_core_events() {
    let stack = TestStack::new().await;
    let _rt = stack.start_runtime(Default::default()).await;
    let now = now_rfc3339;
    // A confirm published before its request is retried until the request lands.
    stack.put_event("storefront.web", "ReservationConfirmed", &json!({"event_id": "b-conf", "occurred_at": now(), "reservation_id": "bus-r1", "order_id": "web-1"})).await;
    let steps: Vec<(&str, Value)> = vec![
        (
            "StockReceived",
            json!({"event_id": "b-rcv", "occurred_at": now(), "sku": "BUS-1", "quantity": 10, "reference": "po-1"}),
        ),
        (
            "StockAdjusted",
            json!({"event_id": "b-adj", "occurred_at": now(), "sku": "BUS-1", "delta": -1, "reason": "damage"}),
        ),
        (
            "ReservationRequested",
            json!({"event_id": "b-req", "occurred_at": now(), "reservation_id": "bus-r1", "channel": "storefront", "lines": [{"sku": "BUS-1", "quantity": 2}], "ttl_seconds": 600}),
        ),
        (
            "ReservationRequested",
            json!({"event_id": "b-req2", "occurred_at": now(), "reservation_id": "bus-r2", "channel": "storefront", "lines": [{"sku": "BUS-1", "quantity": 1}]}),
        ),
        (
            "ReservationReleased",
            json!({"event_id": "b-rel", "occurred_at": now(), "reservation_id": "bus-r2", "reason": "abandoned"}),
        ),
        (
            "ReservationRequested",
            json!({"event_id": "b-req3", "occurred_at": now(), "reservation_id": "bus-r3", "channel": "storefront", "lines": [{"sku": "BUS-1", "quantity": 100}]}),
        ),
        (
            "OrderPlaced",
            json!({"event_id": "b-ord", "occurred_at": now(), "order_id": "ebay-1", "channel": "ebay", "lines": [{"sku": "BUS-1", "quantity": 3}]}),
        ),
        (
            "OrderShipped",
            json!({"event_id": "b-ship", "occurred_at": now(), "order_id": "ebay-1"}),
        ),
        (
            "ReturnReceived",
            json!({"event_id": "b-ret", "occurred_at": now(), "return_id": "ret-1", "sku": "BUS-1", "quantity": 1, "restock": true, "order_id": "ebay-1"}),
        ),
        (
            "OrderPlaced",
            json!({"event_id": "b-ord2", "occurred_at": now(), "order_id": "ebay-2", "channel": "ebay", "lines": [{"sku": "BUS-1", "quantity": 1}]}),
        ),
        (
            "OrderCancelled",
            json!({"event_id": "b-can", "occurred_at": now(), "order_id": "ebay-2"}),
        ),
        (
            "StockCounted",
            json!({"event_id": "b-cnt", "occurred_at": now(), "sku": "BUS-2", "on_hand": 4}),
        ),
        (
            "DemandSignal",
            json!({"event_id": "b-sig", "occurred_at": now(), "sku": "BUS-1", "signal": "add_to_cart_surge", "strength": 3.5}),
        ),
    ];
    for (dt, d) in &steps {
        stack.put_event("erp.netsuite", dt, d).await;
        // Let each land before the next so the expected numbers are exact. The early confirm
        // lands on its retry once its request has: waited for too, so that no two changes of
        // BUS-1 interleave (a position written again before its change reads it back is
        // announced by the later change only).
        let id = d["event_id"].as_str().unwrap();
        let landed: &[&str] = if id == "b-req" {
            &[id, "b-conf"]
        } else {
            &[id]
        };
        for id in landed {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while stack.deps.store.idempotency(id).await.unwrap().is_none() {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{dt} {id} was not applied"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
    let published = stack
        .await_published(Duration::from_secs(30), |e| {
            e.iter().any(|x| {
                x["detail-type"] == "InventoryPositionChanged"
                    && x["detail"]["cause"]["event_id"] == "b-conf"
            })
        })
        .await;
    let by_cause = |id: &str| -> Vec<&Value> {
        published
            .iter()
            .filter(|e| {
                e["detail-type"] == "InventoryPositionChanged"
                    && e["detail"]["cause"]["event_id"] == id
            })
            .collect()
    };
    for (dt, d) in &steps {
        let id = d["event_id"].as_str().unwrap();
        // A demand signal and a rejected reservation change no position.
        if *dt != "DemandSignal" && id != "b-req3" {
            let ev = by_cause(id);
            assert!(
                !ev.is_empty(),
                "{dt} {id} published no InventoryPositionChanged"
            );
            assert_eq!(ev[0]["source"], "stockguard.core");
            assert_eq!(ev[0]["detail"]["cause"]["detail_type"], *dt);
        }
    }
    assert_eq!(of_type(&published, "ReservationAccepted").len(), 2);
    let rejected = of_type(&published, "ReservationRejected");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0]["detail"]["reservation_id"], "bus-r3");
    assert_eq!(rejected[0]["detail"]["shortfalls"][0]["requested"], 100);
    // 10 - 1 = 9 on hand; r1 2 soft then confirmed hard; ebay-1 3 shipped; +1 return.
    let p = stack.position("BUS-1").await;
    assert_eq!(
        (p.on_hand, p.hard_reserved, p.soft_reserved),
        (7, 2, 0),
        "{p:?}"
    );
    assert_eq!(stack.position("BUS-2").await.on_hand, 4);
    let versions: Vec<i64> = of_type(&published, "InventoryPositionChanged")
        .iter()
        .filter(|e| e["detail"]["sku"] == "BUS-1")
        .map(|e| e["detail"]["version"].as_i64().unwrap())
        .collect();
    assert_eq!(
        versions.iter().max().copied(),
        Some(p.version as i64),
        "the newest published version is the stored one"
    );
    assert!(
        !by_cause("b-conf").is_empty(),
        "the early confirm was retried and applied"
    );
}
