//! Inbound events through the real handlers against the emulator: exactly once, ordering,
//! orders and oversells, bad input, and the bus round trip.

use std::time::Duration;

use serde_json::{Value, json};
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

/// The largest order the validation accepts, with a `sequence` (one more item per SKU), applies
/// and ships in one DynamoDB transaction each.
#[tokio::test]
async fn an_order_of_the_most_lines_allowed_applies_and_ships_in_one_transaction() {
    use stockguard_domain::inbound::MAX_ORDER_LINES;
    let stack = TestStack::new().await;
    let skus: Vec<String> = (0..MAX_ORDER_LINES).map(|i| format!("BIG-{i}")).collect();
    for sku in &skus {
        stack
            .apply(
                "StockReceived",
                received(&format!("r-{sku}"), sku, 2, &now_rfc3339()),
            )
            .await;
    }
    let lines: Vec<Value> = skus
        .iter()
        .map(|s| json!({"sku": s, "quantity": 1}))
        .collect();
    stack
        .apply(
            "OrderPlaced",
            json!({"event_id": "big-1", "occurred_at": now_rfc3339(), "sequence": 7,
            "order_id": "BIG-ORDER", "channel": "amazon", "lines": lines}),
        )
        .await;
    for sku in &skus {
        let p = stack.position(sku).await;
        assert_eq!((p.on_hand, p.hard_reserved), (2, 1), "{sku} placed");
    }
    stack
        .apply(
            "OrderShipped",
            json!({"event_id": "big-ship", "occurred_at": now_rfc3339(), "sequence": 8,
            "order_id": "BIG-ORDER"}),
        )
        .await;
    for sku in &skus {
        let p = stack.position(sku).await;
        assert_eq!((p.on_hand, p.hard_reserved), (1, 0), "{sku} shipped");
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
        // Let each land before the next so the expected numbers are exact.
        let id = d["event_id"].as_str().unwrap().to_owned();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while stack.deps.store.idempotency(&id).await.unwrap().is_none() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{dt} {id} was not applied"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
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
