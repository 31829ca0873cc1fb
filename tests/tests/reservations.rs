//! Reservations against the emulator: races, all-or-nothing carts, exact expiry, confirmation.

use std::time::Duration;

use serde_json::{Value, json};
use stockguard_tests::{TestStack, at, envelope, now_rfc3339, of_type, raw_http, unique};

async fn receive(stack: &TestStack, sku: &str, quantity: i64) {
    stack
        .apply("StockReceived", json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": quantity}))
        .await;
}

async fn post(client: &reqwest::Client, url: &str, body: Value) -> (u16, Value) {
    let r = client
        .post(url)
        .json(&body)
        .send()
        .await
        .expect("HTTP request");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_checkouts_race_for_the_last_ten_units() {
    let stack = TestStack::new().await;
    let (_rt, api) = stack.start_runtime_with_api().await;
    receive(&stack, "HOT-1", 10).await;
    stack.drain_published(Duration::from_millis(100)).await;
    let client = reqwest::Client::new();

    // 32 through the HTTP API and 32 as events on the bus, all at once.
    let http = (0..32).map(|i| {
        let client = client.clone();
        let url = format!("{api}/v1/reservations");
        async move {
            post(&client, &url, json!({"reservation_id": format!("h{i}"), "channel": "storefront", "lines": [{"sku": "HOT-1", "quantity": 1}]})).await
        }
    });
    let events = (0..32).map(|i| {
        let stack = &stack;
        async move {
            let detail = json!({"event_id": format!("ev-{i}"), "occurred_at": now_rfc3339(), "reservation_id": format!("e{i}"),
                "channel": "web", "lines": [{"sku": "HOT-1", "quantity": 1}]});
            stack.put_event("storefront.web", "ReservationRequested", &detail).await;
        }
    });
    let (answers, _) = tokio::join!(
        futures::future::join_all(http),
        futures::future::join_all(events)
    );
    let published = stack
        .await_published(Duration::from_secs(60), |evs| {
            of_type(evs, "ReservationAccepted")
                .iter()
                .chain(of_type(evs, "ReservationRejected").iter())
                .filter(|e| {
                    e["detail"]["reservation_id"]
                        .as_str()
                        .unwrap()
                        .starts_with('e')
                })
                .count()
                == 32
        })
        .await;

    let http_held = answers.iter().filter(|(s, _)| *s == 201).count();
    let http_rejected: Vec<&Value> = answers
        .iter()
        .filter(|(s, _)| *s == 409)
        .map(|(_, b)| b)
        .collect();
    for b in &http_rejected {
        assert_eq!(b["error"], "insufficient_stock");
        assert_eq!(b["shortfalls"][0]["sku"], "HOT-1");
        assert_eq!(b["shortfalls"][0]["requested"], 1);
    }
    let event_held = of_type(&published, "ReservationAccepted")
        .into_iter()
        .filter(|e| {
            e["detail"]["reservation_id"]
                .as_str()
                .unwrap()
                .starts_with('e')
        })
        .count();
    let from_events = |e: &&Value| {
        e["detail"]["reservation_id"]
            .as_str()
            .unwrap()
            .starts_with('e')
    };
    let event_rejected: Vec<&Value> = of_type(&published, "ReservationRejected")
        .into_iter()
        .filter(from_events)
        .collect();
    for e in &event_rejected {
        assert_eq!(e["detail"]["reason"], "insufficient_stock");
        assert_eq!(e["detail"]["shortfalls"][0]["available"], 0);
    }
    assert_eq!(
        http_held + http_rejected.len(),
        32,
        "every HTTP checkout got an answer: {answers:?}"
    );
    assert_eq!(
        http_held + event_held,
        10,
        "exactly the last 10 units are held"
    );
    assert_eq!(http_rejected.len() + event_rejected.len(), 54);

    let p = stack.position("HOT-1").await;
    assert_eq!(
        (p.on_hand, p.soft_reserved, p.hard_reserved, p.available()),
        (10, 10, 0, 0)
    );
    for e in of_type(&published, "InventoryPositionChanged") {
        assert!(
            e["detail"]["available"].as_i64().unwrap() >= 0,
            "available went below zero: {e}"
        );
        let d = &e["detail"];
        assert_eq!(
            d["available"].as_i64(),
            Some(
                d["on_hand"].as_i64().unwrap()
                    - d["hard_reserved"].as_i64().unwrap()
                    - d["soft_reserved"].as_i64().unwrap()
            )
        );
    }
}

#[tokio::test]
async fn a_cart_with_one_short_line_reserves_nothing() {
    let stack = TestStack::new().await;
    let (_rt, api) = stack.start_runtime_with_api().await;
    for (sku, q) in [("CART-A", 5), ("CART-B", 1), ("CART-C", 5)] {
        receive(&stack, sku, q).await;
    }
    let before = [
        stack.position("CART-A").await,
        stack.position("CART-B").await,
        stack.position("CART-C").await,
    ];
    let (status, body) = post(
        &reqwest::Client::new(),
        &format!("{api}/v1/reservations"),
        json!({"reservation_id": "cart-1", "channel": "storefront", "lines": [
            {"sku": "CART-A", "quantity": 2}, {"sku": "CART-B", "quantity": 2}, {"sku": "CART-C", "quantity": 2}]}),
    )
    .await;
    assert_eq!(status, 409);
    assert_eq!(
        body["shortfalls"],
        json!([{"sku": "CART-B", "requested": 2, "available": 1}])
    );
    let after = [
        stack.position("CART-A").await,
        stack.position("CART-B").await,
        stack.position("CART-C").await,
    ];
    assert_eq!(before, after, "no line was reserved");
}

#[tokio::test]
async fn an_expired_hold_stops_blocking_at_once_without_a_sweeper() {
    let stack = TestStack::new().await;
    let (_rt, api) = stack.start_runtime_with_api().await;
    receive(&stack, "EXP-1", 3).await;
    let client = reqwest::Client::new();
    let url = format!("{api}/v1/reservations");
    let held_at = std::time::Instant::now();
    let (s, first) = post(&client, &url, json!({"reservation_id": "short", "channel": "storefront", "ttl_seconds": 2, "lines": [{"sku": "EXP-1", "quantity": 3}]})).await;
    assert_eq!(s, 201, "{first}");
    let (s, _) = post(&client, &url, json!({"reservation_id": "blocked", "channel": "storefront", "lines": [{"sku": "EXP-1", "quantity": 2}]})).await;
    // Only meaningful while the hold is surely live (a loaded machine may take seconds).
    if held_at.elapsed() < Duration::from_millis(1500) {
        assert_eq!(s, 409, "the live hold blocks");
    } else if s == 201 {
        // Too late to prove blocking: give the units back so the rest of the test holds.
        client
            .delete(format!("{url}/blocked"))
            .send()
            .await
            .unwrap();
    }
    tokio::time::sleep_until((held_at + Duration::from_millis(2100)).into()).await;
    let (s, body) = post(&client, &url, json!({"reservation_id": "after", "channel": "storefront", "lines": [{"sku": "EXP-1", "quantity": 2}]})).await;
    assert_eq!(s, 201, "the expired hold no longer blocks: {body}");
    let p = stack.position("EXP-1").await;
    assert_eq!(
        (p.soft_reserved, p.available()),
        (2, 1),
        "the expired hold was released in the same transaction"
    );
    let published = stack
        .await_published(Duration::from_secs(5), |e| {
            !of_type(e, "ReservationExpired").is_empty()
        })
        .await;
    assert_eq!(
        of_type(&published, "ReservationExpired")[0]["detail"]["reservation_id"],
        "short"
    );
}

#[tokio::test]
async fn confirm_hardens_and_a_lapsed_confirm_retakes_or_refuses() {
    let stack = TestStack::new().await;
    let (_rt, api) = stack.start_runtime_with_api().await;
    receive(&stack, "CNF-1", 4).await;
    let client = reqwest::Client::new();
    let url = format!("{api}/v1/reservations");

    let (s, _) = post(&client, &url, json!({"reservation_id": "r1", "channel": "storefront", "lines": [{"sku": "CNF-1", "quantity": 2}]})).await;
    assert_eq!(s, 201);
    let (s, body) = post(
        &client,
        &format!("{url}/r1/confirm"),
        json!({"order_id": "o1"}),
    )
    .await;
    assert_eq!((s, body["status"].as_str()), (200, Some("confirmed")));
    let p = stack.position("CNF-1").await;
    assert_eq!(
        (p.on_hand, p.hard_reserved, p.soft_reserved, p.available()),
        (4, 2, 0, 2),
        "soft became hard, availability unchanged"
    );
    let (s, _) = post(
        &client,
        &format!("{url}/r1/confirm"),
        json!({"order_id": "o1"}),
    )
    .await;
    assert_eq!(s, 200, "confirming again is idempotent");
    assert_eq!(stack.position("CNF-1").await.hard_reserved, 2);

    // Lapsed, stock still there: re-taken and confirmed.
    let (s, _) = post(&client, &url, json!({"reservation_id": "r2", "channel": "storefront", "ttl_seconds": 1, "lines": [{"sku": "CNF-1", "quantity": 1}]})).await;
    assert_eq!(s, 201);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // Another checkout releases r2's expired hold while taking its own unit.
    let (s, _) = post(&client, &url, json!({"reservation_id": "r3", "channel": "storefront", "lines": [{"sku": "CNF-1", "quantity": 2}]})).await;
    assert_eq!(s, 201);
    let p = stack.position("CNF-1").await;
    assert_eq!((p.soft_reserved, p.available()), (2, 0));
    let (s, body) = post(
        &client,
        &format!("{url}/r2/confirm"),
        json!({"order_id": "o2"}),
    )
    .await;
    assert_eq!(s, 409, "lapsed and the stock is gone: {body}");
    assert_eq!(body["error"], "reservation_expired");
    assert_eq!(
        stack.position("CNF-1").await,
        p,
        "a refused confirm changes nothing"
    );

    // Free a unit; now the lapsed reservation can be re-taken.
    let r = client.delete(format!("{url}/r3")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = client.delete(format!("{url}/r3")).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200, "release is idempotent");
    let (s, body) = post(
        &client,
        &format!("{url}/r2/confirm"),
        json!({"order_id": "o2"}),
    )
    .await;
    assert_eq!(s, 200, "{body}");
    let p = stack.position("CNF-1").await;
    assert_eq!((p.hard_reserved, p.soft_reserved, p.available()), (3, 0, 1));

    let (s, _) = post(
        &client,
        &format!("{url}/nope/confirm"),
        json!({"order_id": "o9"}),
    )
    .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn the_http_api_answers_repeats_and_bad_requests() {
    let stack = TestStack::new().await;
    let (_rt, api) = stack.start_runtime_with_api().await;
    receive(&stack, "API-1", 5).await;
    let client = reqwest::Client::new();
    let url = format!("{api}/v1/reservations");
    let body = json!({"reservation_id": "same", "channel": "storefront", "ttl_seconds": 600, "lines": [{"sku": "API-1", "quantity": 2}]});
    let (s1, a1) = post(&client, &url, body.clone()).await;
    let (s2, a2) = post(&client, &url, body).await;
    assert_eq!((s1, s2), (201, 200));
    assert_eq!(a1, a2, "a repeat returns the first answer");
    assert_eq!(a1["status"], "held");
    assert_eq!(stack.position("API-1").await.soft_reserved, 2, "held once");
    let (s, e) = post(&client, &url, json!({"reservation_id": "same", "channel": "storefront", "lines": [{"sku": "API-1", "quantity": 3}]})).await;
    assert_eq!(
        (s, e["error"].as_str()),
        (409, Some("idempotency_key_reused"))
    );

    let (s, e) = post(&client, &url, json!({"reservation_id": "bad", "channel": "storefront", "lines": [{"sku": "API-1", "quantity": 0}]})).await;
    assert_eq!(
        (s, e["error"].as_str(), e["field"].as_str()),
        (400, Some("invalid_request"), Some("lines[0].quantity"))
    );
    let r = client.post(&url).body("{not json").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 400);

    let r: Value = client
        .get(format!("{api}/v1/availability/API-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (
            r["on_hand"].as_i64(),
            r["soft_reserved"].as_i64(),
            r["available"].as_i64()
        ),
        (Some(5), Some(2), Some(3))
    );
    let r = client
        .get(format!("{api}/v1/availability/NEVER-SEEN"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 404);
    let _ = at(0);
}

/// The API refuses a body over its limit before reading it whole: by its declared length with
/// none of it sent, and a chunked one (no declared length) as soon as the limit is passed.
#[tokio::test]
async fn an_oversized_reservation_body_is_refused_before_it_is_read() {
    let stack = TestStack::new().await;
    let (_rt, api) = stack.start_runtime_with_api().await;
    receive(&stack, "BIG-1", 5).await;
    let url = format!("{api}/v1/reservations");
    let head = |framing: &str| {
        format!("POST /v1/reservations HTTP/1.1\r\nContent-Type: application/json\r\n{framing}\r\n")
    };
    let declared = head(&format!("Content-Length: {}", 10 * 1024 * 1024));
    assert_eq!(raw_http(&url, &declared, b"").await.status, 413);

    // A valid reservation padded past 64 KiB with whitespace: only its size is wrong.
    let cart =
        r#"{"reservation_id":"big","channel":"storefront","lines":[{"sku":"BIG-1","quantity":1}]}"#;
    let padded = format!("{cart}{}", " ".repeat(70 * 1024));
    let chunked = format!("{:x}\r\n{padded}\r\n0\r\n\r\n", padded.len());
    let answer = raw_http(
        &url,
        &head("Transfer-Encoding: chunked"),
        chunked.as_bytes(),
    )
    .await;
    assert_eq!(answer.status, 413, "{answer:?}");
    assert!(answer.body.contains("payload_too_large"), "{answer:?}");
    let just_under = format!("{cart}{}", " ".repeat(60 * 1024));
    let small = format!("{:x}\r\n{just_under}\r\n0\r\n\r\n", just_under.len());
    let answer = raw_http(&url, &head("Transfer-Encoding: chunked"), small.as_bytes()).await;
    assert_eq!(
        answer.status, 201,
        "a body under the limit is read and applied: {answer:?}"
    );
    assert_eq!(
        stack.position("BIG-1").await.soft_reserved,
        1,
        "only the small one held"
    );
}

/// A reservation moves a position by arithmetic, so it reads the position back to announce it. If
/// another change wrote the position in between, the read shows that change's stamp, and the
/// position is then announced by that change, never credited to the reservation.
#[tokio::test]
async fn a_position_read_back_names_the_change_that_wrote_it_last() {
    use stockguard_adapters::tx::PositionDelta;
    use stockguard_domain::Sku;
    let stack = TestStack::new().await;
    let sku = Sku::parse("STAMP-1").unwrap();
    let store = &stack.deps.store;
    let shift = |soft| PositionDelta {
        soft_reserved: soft,
        ..Default::default()
    };
    let mut first = store.tx();
    first.shift_position(&sku, shift(1), None);
    let first_id = first.write_id().to_owned();
    store.commit(first).await.unwrap();
    let read = store
        .stamped_positions(std::slice::from_ref(&sku))
        .await
        .unwrap();
    assert_eq!(read[&sku].1.as_deref(), Some(first_id.as_str()));

    let mut second = store.tx();
    second.shift_position(&sku, shift(-1), None);
    let second_id = second.write_id().to_owned();
    store.commit(second).await.unwrap();
    assert_ne!(first_id, second_id);
    let read = store
        .stamped_positions(std::slice::from_ref(&sku))
        .await
        .unwrap();
    assert_eq!(read[&sku].1.as_deref(), Some(second_id.as_str()));
    assert_eq!(read[&sku].0.version, 2);
}

/// DynamoDB takes at most 100 items in a transaction. A 25-line cart sent with `sequence` (25
/// sequence items and its idempotency record besides the reservation) over SKUs whose stock sits
/// in expired holds must still be decided: the releases that do not fit alongside it are made
/// first, each in its own transaction, as the expiry sweeper would.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_cart_with_sequence_over_expired_holds_fits_dynamodbs_transaction_limit() {
    let stack = TestStack::new().await;
    let sku = |i: usize| format!("TXL-{i:02}");
    for i in 0..25 {
        stack.apply("StockReceived", json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": sku(i), "quantity": 1})).await;
    }
    // The stock of 15 SKUs is held by checkouts that walked away.
    for i in 0..15 {
        stack
            .apply(
                "ReservationRequested",
                json!({"event_id": unique("hold"), "occurred_at": now_rfc3339(),
            "reservation_id": format!("walked-{i}"), "channel": "storefront", "ttl_seconds": 1,
            "lines": [{"sku": sku(i), "quantity": 1}]}),
            )
            .await;
    }
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let lines: Vec<_> = (0..25)
        .map(|i| json!({"sku": sku(i), "quantity": 1}))
        .collect();
    let cart = json!({"event_id": unique("cart"), "occurred_at": now_rfc3339(), "sequence": 1,
        "reservation_id": "full-cart", "channel": "storefront", "lines": lines});
    let resp = stack
        .run_batch(
            "ReservationRequested",
            &[(envelope("erp.test", "ReservationRequested", &cart), 1)],
        )
        .await;
    assert!(resp.batch_item_failures.is_empty(), "{resp:?}");
    let decided = |e: &[Value]| {
        e.iter()
            .find(|e| {
                e["detail"]["reservation_id"] == "full-cart"
                    && matches!(
                        e["detail-type"].as_str(),
                        Some("ReservationAccepted" | "ReservationRejected")
                    )
            })
            .cloned()
    };
    let events = stack
        .await_published(Duration::from_secs(5), |e| decided(e).is_some())
        .await;
    let answer = decided(&events).expect("the cart was neither accepted nor rejected");
    assert_eq!(answer["detail-type"], "ReservationAccepted", "{answer}");
    for i in 0..25 {
        let p = stack.position(&sku(i)).await;
        assert_eq!((p.soft_reserved, p.available()), (1, 0), "{}", sku(i));
    }
}
