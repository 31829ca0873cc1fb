//! The expiry sweeper releases every lapsed reservation exactly once, even with two racing.

use std::time::Duration;

use serde_json::json;
use stockguard_domain::inbound::parse_reservation_request;
use stockguard_handlers::reservations::{ReserveAnswer, expire_lapsed, reserve};
use stockguard_tests::{TestStack, now_rfc3339, of_type};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_racing_sweepers_release_each_lapsed_reservation_once() {
    let stack = TestStack::new().await;
    for sku in ["SW-1", "SW-2"] {
        stack.apply("StockReceived", json!({"event_id": format!("rcv-{sku}"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": 50})).await;
    }
    for i in 0..10 {
        let ttl = if i < 8 { 1 } else { 600 };
        let req = parse_reservation_request(&json!({"reservation_id": format!("sw-{i}"), "channel": "storefront", "ttl_seconds": ttl,
            "lines": [{"sku": "SW-1", "quantity": 2}, {"sku": "SW-2", "quantity": 1}]}))
        .unwrap();
        assert!(matches!(
            reserve(&stack.deps, &req).await.unwrap(),
            ReserveAnswer::Held { .. }
        ));
    }
    stack.drain_published(Duration::from_millis(100)).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;

    let (a, b) = tokio::join!(
        expire_lapsed(&stack.deps, Duration::from_secs(20)),
        expire_lapsed(&stack.deps, Duration::from_secs(20))
    );
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(
        a.expired + b.expired,
        8,
        "each lapsed reservation released once: {a:?} {b:?}"
    );
    let (p1, p2) = (stack.position("SW-1").await, stack.position("SW-2").await);
    assert_eq!(
        (p1.soft_reserved, p1.available()),
        (4, 46),
        "the two live reservations still hold their units"
    );
    assert_eq!((p2.soft_reserved, p2.available()), (2, 48));

    let published = stack
        .await_published(Duration::from_secs(10), |e| {
            of_type(e, "ReservationExpired").len() >= 8
        })
        .await;
    let mut ids: Vec<&str> = of_type(&published, "ReservationExpired")
        .iter()
        .map(|e| e["detail"]["reservation_id"].as_str().unwrap())
        .collect();
    ids.sort();
    assert_eq!(
        ids,
        [
            "sw-0", "sw-1", "sw-2", "sw-3", "sw-4", "sw-5", "sw-6", "sw-7"
        ],
        "announced once each"
    );
    let again = expire_lapsed(&stack.deps, Duration::from_secs(5))
        .await
        .unwrap();
    assert_eq!(again.expired, 0, "a later sweep finds nothing left");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_scheduled_sweeper_gives_abandoned_units_back_to_the_channels() {
    let stack = TestStack::new().await;
    let options = stockguard_local::RuntimeOptions {
        schedule_interval: Some(Duration::from_millis(500)),
        ..Default::default()
    };
    let _rt = stack.start_runtime(options).await;
    stack
        .apply(
            "StockReceived",
            json!({"event_id": "rcv", "occurred_at": now_rfc3339(), "sku": "SW-3", "quantity": 5}),
        )
        .await;
    let req = parse_reservation_request(&json!({"reservation_id": "gone", "channel": "storefront", "ttl_seconds": 1, "lines": [{"sku": "SW-3", "quantity": 5}]})).unwrap();
    reserve(&stack.deps, &req).await.unwrap();
    assert_eq!(stack.position("SW-3").await.available(), 0);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while stack.position("SW-3").await.available() != 5 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the sweeper never released the lapsed hold"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let published = stack
        .await_published(Duration::from_secs(5), |e| {
            !of_type(e, "ReservationExpired").is_empty()
        })
        .await;
    let changed = of_type(&published, "InventoryPositionChanged");
    assert!(changed.iter().any(|e| e["detail"]["available"] == 5
        && e["detail"]["cause"]["detail_type"] == "ReservationExpired"));
}
