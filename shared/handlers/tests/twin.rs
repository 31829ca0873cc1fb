//! Handler logic on the in-memory twin of the state table and the bus: the same code paths as the
//! emulator tests (`tests/tests/*.rs`), in milliseconds and without the emulator.

use futures::future::join_all;
use serde_json::{Value, json};
use stockguard_adapters::{InventoryStore, Read, Stamp};
use stockguard_domain::reservation::ReservationStatus;
use stockguard_domain::reservation_plan::plan_release;
use stockguard_domain::types::format_timestamp;
use stockguard_domain::{EntityId, Line, Millis, ReservationRequest, Sku};
use stockguard_handlers::reservations::{ConfirmAnswer, ReleaseAnswer, ReserveAnswer};
use stockguard_handlers::twin::Twin;
use stockguard_handlers::{Applied, ApplyError};

const T0: Millis = 1_800_000_000_000;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}
fn at(ms: Millis) -> String {
    format_timestamp(ms)
}
fn received(event_id: &str, s: &str, quantity: i64, occurred_at: Millis) -> Value {
    json!({"event_id": event_id, "occurred_at": at(occurred_at), "sku": s, "quantity": quantity})
}
fn request(rid: &str, lines: &[(&str, i64)], ttl_seconds: u32) -> ReservationRequest {
    ReservationRequest {
        reservation_id: id(rid),
        channel: stockguard_domain::ChannelName::parse("shopify").unwrap(),
        lines: lines
            .iter()
            .map(|(s, q)| Line {
                sku: sku(s),
                quantity: *q,
            })
            .collect(),
        ttl_seconds,
        ttl_defaulted: false,
    }
}

async fn receive(twin: &Twin, s: &str, quantity: i64) {
    let event_id = format!("rcv-{s}-{quantity}-{}", twin.now());
    let applied = twin
        .inventory()
        .apply(
            "erp",
            "StockReceived",
            &received(&event_id, s, quantity, twin.now()),
        )
        .await
        .unwrap();
    assert_eq!(applied, Applied::Applied { outcome: "applied" });
}

fn published(twin: &Twin, detail_type: &str) -> Vec<Value> {
    twin.bus
        .published()
        .into_iter()
        .filter(|(_, n)| n.detail_type == detail_type)
        .map(|(_, n)| n.detail)
        .collect()
}

#[tokio::test(start_paused = true)]
async fn the_same_event_five_times_is_applied_once_and_a_reused_id_is_refused() {
    let twin = Twin::new(T0);
    let detail = received("dup-1", "DUP-1", 7, T0);
    let inv = twin.inventory();
    assert_eq!(
        inv.apply("erp", "StockReceived", &detail).await.unwrap(),
        Applied::Applied { outcome: "applied" }
    );
    for _ in 0..4 {
        assert_eq!(
            inv.apply("erp", "StockReceived", &detail).await.unwrap(),
            Applied::Repeat
        );
    }
    let p = twin.store.position_of(&sku("DUP-1"));
    assert_eq!((p.on_hand, p.version), (7, 1));
    let mut reused = detail.clone();
    reused["quantity"] = json!(9);
    let err = inv
        .apply("erp", "StockReceived", &reused)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_key_reused");
    assert_eq!(twin.store.position_of(&sku("DUP-1")), p);
    let changes = published(&twin, "InventoryPositionChanged");
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0]["cause"]["event_id"], "dup-1");
}

#[tokio::test(start_paused = true)]
async fn concurrent_deliveries_of_one_event_apply_it_once() {
    let twin = Twin::new(T0);
    let detail = received("dup-2", "DUP-2", 3, T0);
    let inv = twin.inventory();
    let results = join_all((0..8).map(|_| inv.apply("erp", "StockReceived", &detail))).await;
    let applied = results
        .iter()
        .filter(|r| matches!(r, Ok(Applied::Applied { .. })))
        .count();
    assert_eq!(applied, 1, "{results:?}");
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert_eq!(twin.store.position_of(&sku("DUP-2")).on_hand, 3);
}

#[tokio::test(start_paused = true)]
async fn a_lost_acknowledgement_is_redelivered_and_applied_once() {
    let twin = Twin::new(T0);
    let detail = received("lost-1", "LOST-1", 4, T0);
    let inv = twin.inventory();
    twin.store.lose_acks(1);
    let err = inv
        .apply("erp", "StockReceived", &detail)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    // Written, but its events are not out yet: the redelivery publishes them.
    assert!(published(&twin, "InventoryPositionChanged").is_empty());
    assert_eq!(
        inv.apply("erp", "StockReceived", &detail).await.unwrap(),
        Applied::Repeat
    );
    assert_eq!(twin.store.position_of(&sku("LOST-1")).on_hand, 4);
    assert_eq!(published(&twin, "InventoryPositionChanged").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_bus_outage_after_the_write_is_published_by_the_redelivery() {
    let twin = Twin::new(T0);
    let detail = received("bus-1", "BUS-1", 2, T0);
    let inv = twin.inventory();
    twin.bus.fail_next(1);
    assert!(
        inv.apply("erp", "StockReceived", &detail)
            .await
            .unwrap_err()
            .is_retryable()
    );
    assert_eq!(
        inv.apply("erp", "StockReceived", &detail).await.unwrap(),
        Applied::Repeat
    );
    assert_eq!(published(&twin, "InventoryPositionChanged").len(), 1);
    // Now marked published: a third delivery publishes nothing more.
    inv.apply("erp", "StockReceived", &detail).await.unwrap();
    assert_eq!(published(&twin, "InventoryPositionChanged").len(), 1);
}

#[tokio::test(start_paused = true)]
async fn producer_replays_by_sequence_are_recorded_not_applied() {
    let twin = Twin::new(T0);
    let inv = twin.inventory();
    let with_seq = |event_id: &str, q: i64, seq: u64| {
        let mut d = received(event_id, "SEQ-1", q, T0);
        d["sequence"] = json!(seq);
        d
    };
    inv.apply("pos", "StockReceived", &with_seq("s5", 5, 5))
        .await
        .unwrap();
    assert_eq!(
        inv.apply("pos", "StockReceived", &with_seq("s5-again", 5, 5))
            .await
            .unwrap(),
        Applied::ProducerReplay
    );
    inv.apply("pos", "StockReceived", &with_seq("s6", 1, 6))
        .await
        .unwrap();
    assert_eq!(twin.store.position_of(&sku("SEQ-1")).on_hand, 6);
}

#[tokio::test(start_paused = true)]
async fn a_count_is_a_watermark_whatever_the_arrival_order() {
    let orders = [[0, 1, 2, 3], [3, 2, 1, 0], [1, 3, 0, 2], [2, 0, 3, 1]];
    let mut finals = Vec::new();
    for order in orders {
        let twin = Twin::new(T0);
        let inv = twin.inventory();
        let events = [
            ("StockReceived", received("before", "WM-1", 5, T0 - 50_000)),
            (
                "StockCounted",
                json!({"event_id": "cnt", "occurred_at": at(T0 - 40_000), "sku": "WM-1", "on_hand": 20}),
            ),
            (
                "StockAdjusted",
                json!({"event_id": "sale", "occurred_at": at(T0 - 30_000), "sku": "WM-1", "delta": -3, "reason": "sale"}),
            ),
            ("StockReceived", received("after", "WM-1", 4, T0 - 20_000)),
        ];
        for i in order {
            let (detail_type, detail) = &events[i];
            inv.apply("erp", detail_type, detail).await.unwrap();
        }
        finals.push(twin.store.position_of(&sku("WM-1")).on_hand);
    }
    assert_eq!(finals, [21, 21, 21, 21]);
}

#[tokio::test(start_paused = true)]
async fn a_flash_sale_never_reserves_more_than_is_there() {
    let twin = Twin::new(T0);
    receive(&twin, "FLASH-1", 5).await;
    let inv = twin.inventory();
    let requests: Vec<ReservationRequest> = (0..30)
        .map(|i| request(&format!("buyer-{i}"), &[("FLASH-1", 1)], 600))
        .collect();
    let answers = join_all(requests.iter().map(|r| inv.reserve(r))).await;
    let held = answers
        .iter()
        .filter(|a| matches!(a, Ok(ReserveAnswer::Held { .. })))
        .count();
    assert_eq!(held, 5, "{answers:?}");
    let p = twin.store.position_of(&sku("FLASH-1"));
    assert_eq!((p.soft_reserved, p.available()), (5, 0));
    assert_eq!(published(&twin, "ReservationRejected").len(), 25);
}

#[tokio::test(start_paused = true)]
async fn one_short_line_rejects_the_whole_cart() {
    let twin = Twin::new(T0);
    receive(&twin, "CART-A", 3).await;
    let inv = twin.inventory();
    let answer = inv
        .reserve(&request("cart-1", &[("CART-A", 2), ("CART-B", 1)], 600))
        .await
        .unwrap();
    let ReserveAnswer::Insufficient { shortfalls } = answer else {
        panic!("{answer:?}")
    };
    assert_eq!(shortfalls[0].sku, sku("CART-B"));
    assert_eq!(twin.store.position_of(&sku("CART-A")).soft_reserved, 0);
    assert!(
        twin.store
            .reservation(&id("cart-1"))
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_checkout_takes_the_units_of_a_lapsed_hold_and_the_sweeper_the_rest() {
    let twin = Twin::new(T0);
    receive(&twin, "EXP-1", 2).await;
    let inv = twin.inventory();
    for rid in ["old-1", "old-2"] {
        let answer = inv
            .reserve(&request(rid, &[("EXP-1", 1)], 60))
            .await
            .unwrap();
        assert!(matches!(answer, ReserveAnswer::Held { .. }));
    }
    twin.advance(61_000);
    // Needs one unit: the oldest lapsed hold is released in the same transaction.
    let answer = inv
        .reserve(&request("new-1", &[("EXP-1", 1)], 600))
        .await
        .unwrap();
    assert!(matches!(answer, ReserveAnswer::Held { .. }), "{answer:?}");
    let status = |rid: &str| twin.store.snapshot().reservations[&id(rid)].status;
    assert_eq!(status("old-1"), ReservationStatus::Expired);
    assert_eq!(status("old-2"), ReservationStatus::Held);
    let report = inv
        .expire_lapsed(std::time::Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!((report.expired, report.already_settled), (1, 0));
    assert_eq!(status("old-2"), ReservationStatus::Expired);
    let p = twin.store.position_of(&sku("EXP-1"));
    assert_eq!((p.soft_reserved, p.available()), (1, 1));
    assert_eq!(published(&twin, "ReservationExpired").len(), 2);
}

/// 60 lapsed one-line reservations hold every unit; a cart needing all of them cannot release
/// them in one transaction (3 items each): they are expired first, and the cart is then held.
#[tokio::test(start_paused = true)]
async fn lapsed_holds_beyond_one_transaction_are_expired_first() {
    let twin = Twin::new(T0);
    receive(&twin, "BIG-1", 60).await;
    let inv = twin.inventory();
    for i in 0..60 {
        inv.reserve(&request(&format!("lapsed-{i}"), &[("BIG-1", 1)], 1))
            .await
            .unwrap();
    }
    twin.advance(2_000);
    let answer = inv
        .reserve(&request("all", &[("BIG-1", 60)], 600))
        .await
        .unwrap();
    assert!(matches!(answer, ReserveAnswer::Held { .. }), "{answer:?}");
    let p = twin.store.position_of(&sku("BIG-1"));
    assert_eq!((p.soft_reserved, p.available()), (60, 0));
    assert_eq!(published(&twin, "ReservationExpired").len(), 60);
}

/// A release that commits between a checkout's read of the positions and its read of the expired
/// holds: the units were releasable or available at every instant, so the cart is held. (Found
/// by the model-based test: the checkout saw the units neither as held nor as available, and a
/// rejection has no condition to catch that.)
#[tokio::test(start_paused = true)]
async fn a_release_between_the_reads_of_a_checkout_does_not_reject_it() {
    let twin = Twin::new(T0);
    receive(&twin, "RACE-1", 3).await;
    let inv = twin.inventory();
    inv.reserve(&request("r0", &[("RACE-1", 2)], 30))
        .await
        .unwrap();
    twin.advance(60_000);
    let record = twin.store.snapshot().reservations[&id("r0")].clone();
    let (_, release) = plan_release(Some(&record));
    let stamp = Stamp::new(twin.now());
    twin.store.before_next(Read::ExpiredHolds, move |t| {
        t.transact(&release.writes, &stamp).unwrap()
    });
    let answer = inv
        .reserve(&request("r1", &[("RACE-1", 2)], 30))
        .await
        .unwrap();
    assert!(matches!(answer, ReserveAnswer::Held { .. }), "{answer:?}");
    let p = twin.store.position_of(&sku("RACE-1"));
    assert_eq!((p.soft_reserved, p.available()), (2, 1));
}

/// The same reservation id taken with another cart between a request's read of the id and of the
/// positions: the request is a reused id, not a rejection of a reservation that is held. (Found
/// by the model-based test.)
#[tokio::test(start_paused = true)]
async fn an_id_taken_by_another_cart_meanwhile_is_a_conflict_not_a_rejection() {
    let twin = Twin::new(T0);
    receive(&twin, "RACE-2", 3).await;
    let inv = twin.inventory();
    let taken = request("r0", &[("RACE-2", 3)], 30);
    let read = twin.store.snapshot().positions[&sku("RACE-2")].0;
    let other = stockguard_domain::reservation_plan::plan_reserve(
        &stockguard_domain::reservation_plan::ReserveInput {
            request: &taken,
            existing: None,
            positions: &std::collections::HashMap::from([(sku("RACE-2"), read)]),
            surging: &Default::default(),
            expired_holds: &Default::default(),
            lapsed: &Default::default(),
            now: twin.now(),
            reserved_items: 0,
        },
    )
    .unwrap();
    let stockguard_domain::reservation_plan::Reserve::Decided(_, other) = other else {
        panic!("{other:?}")
    };
    let stamp = Stamp::new(twin.now());
    twin.store.before_next(Read::Positions, move |t| {
        t.transact(&other.writes, &stamp).unwrap()
    });
    let requested = json!({"event_id": "req-r0", "occurred_at": at(twin.now()),
        "reservation_id": "r0", "channel": "shopify", "lines": [{"sku": "RACE-2", "quantity": 1}],
        "ttl_seconds": 30});
    let err = inv
        .apply("shop", "ReservationRequested", &requested)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_key_reused");
    assert!(published(&twin, "ReservationRejected").is_empty());
    assert_eq!(twin.store.position_of(&sku("RACE-2")).soft_reserved, 3);
}

#[tokio::test(start_paused = true)]
async fn confirming_a_lapsed_reservation_whose_units_were_taken() {
    let twin = Twin::new(T0);
    receive(&twin, "LAPSE-1", 1).await;
    let inv = twin.inventory();
    inv.reserve(&request("slow", &[("LAPSE-1", 1)], 1))
        .await
        .unwrap();
    twin.advance(2_000);
    inv.reserve(&request("fast", &[("LAPSE-1", 1)], 600))
        .await
        .unwrap();
    // The API refuses: the checkout can still stop.
    let answer = inv.confirm(&id("slow"), &id("order-slow")).await.unwrap();
    assert!(matches!(answer, ConfirmAnswer::Lapsed { .. }), "{answer:?}");
    assert_eq!(twin.store.position_of(&sku("LAPSE-1")).hard_reserved, 0);
    // The event is a completed checkout: recorded, with the oversell reported.
    let confirmed = json!({"event_id": "conf-slow", "occurred_at": at(twin.now()),
        "reservation_id": "slow", "order_id": "order-slow"});
    inv.apply("shop", "ReservationConfirmed", &confirmed)
        .await
        .unwrap();
    let p = twin.store.position_of(&sku("LAPSE-1"));
    assert_eq!(
        (p.hard_reserved, p.soft_reserved, p.available()),
        (1, 1, -1)
    );
    assert_eq!(published(&twin, "OversellDetected").len(), 1);
    // Confirming `fast` into the order id already used is a conflict.
    let err = inv
        .confirm(&id("fast"), &id("order-slow"))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "order_id_in_use");
}

#[tokio::test(start_paused = true)]
async fn release_gives_units_back_once_and_a_confirmed_one_cannot_be_released() {
    let twin = Twin::new(T0);
    receive(&twin, "REL-1", 2).await;
    let inv = twin.inventory();
    inv.reserve(&request("r1", &[("REL-1", 1)], 600))
        .await
        .unwrap();
    inv.reserve(&request("r2", &[("REL-1", 1)], 600))
        .await
        .unwrap();
    let r1 = id("r1");
    let answers = join_all((0..3).map(|_| inv.release(&r1))).await;
    assert!(
        answers
            .iter()
            .all(|a| matches!(a, Ok(ReleaseAnswer::Released)))
    );
    assert_eq!(twin.store.position_of(&sku("REL-1")).soft_reserved, 1);
    assert_eq!(
        inv.confirm(&id("r2"), &id("o2")).await.unwrap(),
        ConfirmAnswer::Confirmed
    );
    assert_eq!(
        inv.release(&id("r2")).await.unwrap(),
        ReleaseAnswer::AlreadyConfirmed
    );
    let released =
        json!({"event_id": "rel-r2", "occurred_at": at(twin.now()), "reservation_id": "r2"});
    let err = inv
        .apply("shop", "ReservationReleased", &released)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "reservation_confirmed");
    let p = twin.store.position_of(&sku("REL-1"));
    assert_eq!((p.on_hand, p.hard_reserved, p.soft_reserved), (2, 1, 0));
}

#[tokio::test(start_paused = true)]
async fn orders_are_facts_and_settle_by_shipment_and_cancellation() {
    let twin = Twin::new(T0);
    receive(&twin, "ORD-1", 2).await;
    let inv = twin.inventory();
    let placed = json!({"event_id": "o1", "occurred_at": at(T0), "order_id": "order-1",
        "channel": "ebay", "lines": [{"sku": "ORD-1", "quantity": 3}]});
    inv.apply("ebay", "OrderPlaced", &placed).await.unwrap();
    let oversells = published(&twin, "OversellDetected");
    assert_eq!(oversells.len(), 1);
    assert_eq!(oversells[0]["shortfall"], 1);
    // The same order under another event id changes nothing.
    let mut again = placed.clone();
    again["event_id"] = json!("o1-again");
    assert_eq!(
        inv.apply("ebay", "OrderPlaced", &again).await.unwrap(),
        Applied::Applied {
            outcome: "order_already_recorded"
        }
    );
    let ship = json!({"event_id": "s1", "occurred_at": at(T0 + 1), "order_id": "order-1",
        "lines": [{"sku": "ORD-1", "quantity": 2}]});
    inv.apply("wms", "OrderShipped", &ship).await.unwrap();
    let too_many = json!({"event_id": "s2", "occurred_at": at(T0 + 2), "order_id": "order-1",
        "lines": [{"sku": "ORD-1", "quantity": 2}]});
    let err = inv
        .apply("wms", "OrderShipped", &too_many)
        .await
        .unwrap_err();
    assert!(matches!(err, ApplyError::Invalid(_)), "{err}");
    let cancel = json!({"event_id": "c1", "occurred_at": at(T0 + 3), "order_id": "order-1"});
    inv.apply("ebay", "OrderCancelled", &cancel).await.unwrap();
    let p = twin.store.position_of(&sku("ORD-1"));
    assert_eq!((p.on_hand, p.hard_reserved, p.soft_reserved), (0, 0, 0));
    let unknown = json!({"event_id": "c2", "occurred_at": at(T0), "order_id": "nope"});
    let err = inv
        .apply("ebay", "OrderCancelled", &unknown)
        .await
        .unwrap_err();
    assert!(err.is_retryable() && err.code() == "not_yet_known", "{err}");
}

#[tokio::test(start_paused = true)]
async fn a_25_line_cart_with_a_sequence_fits_in_one_transaction() {
    let twin = Twin::new(T0);
    let inv = twin.inventory();
    let lines: Vec<Value> = (0..25)
        .map(|i| json!({"sku": format!("WIDE-{i}"), "quantity": 1}))
        .collect();
    for i in 0..25 {
        receive(&twin, &format!("WIDE-{i}"), 1).await;
    }
    let requested = json!({"event_id": "wide", "occurred_at": at(T0), "sequence": 1,
        "reservation_id": "wide-1", "channel": "shopify", "lines": lines, "ttl_seconds": 600});
    assert_eq!(
        inv.apply("shop", "ReservationRequested", &requested)
            .await
            .unwrap(),
        Applied::Applied { outcome: "applied" }
    );
    assert_eq!(twin.store.position_of(&sku("WIDE-24")).soft_reserved, 1);
}

/// An order of `n` SKUs `BIG-00`..: one unit each.
fn big_order(event_id: &str, order_id: &str, n: usize) -> Value {
    let lines: Vec<Value> = (0..n)
        .map(|i| json!({"sku": format!("BIG-{i:02}"), "quantity": 1}))
        .collect();
    json!({"event_id": event_id, "occurred_at": at(T0), "order_id": order_id,
        "channel": "amazon", "lines": lines})
}

fn big_sku(i: usize) -> Sku {
    sku(&format!("BIG-{i:02}"))
}

#[tokio::test(start_paused = true)]
async fn an_order_of_70_skus_applies_in_three_parts_once_however_often_it_is_delivered() {
    let twin = Twin::new(T0);
    for i in 0..60 {
        receive(&twin, &format!("BIG-{i:02}"), 2).await;
    }
    let inv = twin.inventory();
    let placed = big_order("big-1", "big-order", 70);
    let results = join_all((0..4).map(|_| inv.apply("amazon", "OrderPlaced", &placed))).await;
    assert!(results.iter().all(|r| r.is_ok()), "{results:?}");
    assert!(
        results
            .iter()
            .any(|r| matches!(r, Ok(Applied::Applied { outcome: "applied" })))
    );
    assert_eq!(
        inv.apply("amazon", "OrderPlaced", &placed).await.unwrap(),
        Applied::Repeat
    );
    for i in 0..70 {
        let p = twin.store.position_of(&big_sku(i));
        let on_hand = if i < 60 { 2 } else { 0 };
        assert_eq!((p.on_hand, p.hard_reserved), (on_hand, 1), "BIG-{i:02}");
    }
    let tables = twin.store.snapshot();
    let keys: Vec<&String> = tables
        .idempotency
        .keys()
        .filter(|k| k.starts_with("big-1"))
        .collect();
    assert_eq!(keys, ["big-1", "big-1#1", "big-1#2"]);
    assert_eq!(tables.idempotency["big-1"].later.len(), 38);
    let order = &tables.orders[&id("big-order")];
    assert_eq!((order.lines.len(), order.recording), (70, false));
    assert_eq!(tables.sales.len(), 70, "each line one sale, once");
    // What consumers see is what one transaction would have published: one position per SKU
    // with the order's cause, and an oversell for each of the ten SKUs without stock.
    let changes: Vec<Value> = published(&twin, "InventoryPositionChanged")
        .into_iter()
        .filter(|c| c["cause"]["event_id"] == "big-1")
        .collect();
    let mut skus: Vec<&str> = changes.iter().map(|c| c["sku"].as_str().unwrap()).collect();
    skus.sort();
    skus.dedup();
    assert_eq!(skus.len(), 70);
    let oversells = published(&twin, "OversellDetected");
    assert_eq!(oversells.len(), 10);
    assert!(oversells.iter().all(|o| o["order_id"] == "big-order"));
}

#[tokio::test(start_paused = true)]
async fn an_order_cut_short_between_parts_is_finished_once_by_its_redelivery() {
    let twin = Twin::new(T0);
    let inv = twin.inventory();
    let placed = big_order("cut-1", "cut-order", 70);
    // The second part is written but its acknowledgement is lost: the delivery fails.
    twin.store.lose_acks_after(1, 1);
    let err = inv
        .apply("amazon", "OrderPlaced", &placed)
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let hard = |i| twin.store.position_of(&big_sku(i)).hard_reserved;
    assert_eq!((hard(0), hard(63), hard(64), hard(69)), (1, 1, 0, 0));
    let order = twin.store.snapshot().orders[&id("cut-order")].clone();
    assert!(order.recording, "recorded whole, parts still to apply");

    // Meanwhile: a shipment waits for the order to be recorded in full, and a reused event id
    // is refused whatever part of it applied.
    let ship = json!({"event_id": "cut-ship", "occurred_at": at(T0 + 1), "order_id": "cut-order"});
    let err = inv.apply("wms", "OrderShipped", &ship).await.unwrap_err();
    assert_eq!(err.code(), "not_yet_known");
    let mut reused = placed.clone();
    reused["lines"][69]["quantity"] = json!(2);
    let err = inv
        .apply("amazon", "OrderPlaced", &reused)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "idempotency_key_reused");
    assert_eq!(hard(69), 0);

    // The redelivery: the first part is a repeat, the second publishes what its lost
    // acknowledgement kept back, the third applies.
    assert_eq!(
        inv.apply("amazon", "OrderPlaced", &placed).await.unwrap(),
        Applied::Applied { outcome: "applied" }
    );
    assert!((0..70).all(|i| hard(i) == 1));
    assert_eq!(twin.store.snapshot().sales.len(), 70);
    assert!(!twin.store.snapshot().orders[&id("cut-order")].recording);
    let announced = |i: usize| {
        published(&twin, "InventoryPositionChanged")
            .iter()
            .filter(|c| c["sku"] == big_sku(i).as_str())
            .count()
    };
    assert_eq!((announced(40), announced(69)), (1, 1));

    // Now it ships in parts too: every remaining unit, once, though the second part's
    // acknowledgement is lost.
    twin.store.lose_acks_after(1, 1);
    assert!(inv.apply("wms", "OrderShipped", &ship).await.is_err());
    assert_eq!(
        inv.apply("wms", "OrderShipped", &ship).await.unwrap(),
        Applied::Applied { outcome: "applied" }
    );
    assert_eq!(
        inv.apply("wms", "OrderShipped", &ship).await.unwrap(),
        Applied::Repeat
    );
    for i in 0..70 {
        let p = twin.store.position_of(&big_sku(i));
        assert_eq!((p.on_hand, p.hard_reserved), (-1, 0), "BIG-{i:02}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_settlement_in_parts_is_decided_whole_before_a_concurrent_one() {
    let twin = Twin::new(T0);
    let inv = twin.inventory();
    inv.apply("amazon", "OrderPlaced", &big_order("p", "o", 70))
        .await
        .unwrap();
    // The shipment of everything applies its first part, then its delivery fails.
    twin.store.lose_acks(1);
    let ship = json!({"event_id": "s", "occurred_at": at(T0 + 1), "order_id": "o"});
    assert!(inv.apply("wms", "OrderShipped", &ship).await.is_err());
    // A cancellation of everything remaining, meanwhile, finds nothing left: the shipment
    // settled every line on the order at once.
    let cancel = json!({"event_id": "c", "occurred_at": at(T0 + 2), "order_id": "o"});
    assert_eq!(
        inv.apply("amazon", "OrderCancelled", &cancel)
            .await
            .unwrap(),
        Applied::Applied {
            outcome: "nothing_remaining"
        }
    );
    inv.apply("wms", "OrderShipped", &ship).await.unwrap();
    for i in 0..70 {
        let p = twin.store.position_of(&big_sku(i));
        assert_eq!((p.on_hand, p.hard_reserved), (-1, 0), "BIG-{i:02}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_order_of_70_skus_with_a_sequence_advances_every_sku_once() {
    let twin = Twin::new(T0);
    let inv = twin.inventory();
    let mut placed = big_order("seq-o", "seq-order", 70);
    placed["sequence"] = json!(7);
    inv.apply("erp", "OrderPlaced", &placed).await.unwrap();
    let sequences = twin.store.snapshot().sequences;
    assert!((0..70).all(|i| sequences[&("erp".to_owned(), big_sku(i))] == 7));
    let mut replay = big_order("seq-o-again", "seq-order-2", 70);
    replay["sequence"] = json!(7);
    assert_eq!(
        inv.apply("erp", "OrderPlaced", &replay).await.unwrap(),
        Applied::ProducerReplay
    );
    assert!((0..70).all(|i| twin.store.position_of(&big_sku(i)).hard_reserved == 1));
}
