//! End to end: a flash sale played against the local runtime (every function hosted as Lambda
//! would, fed by the template's rules and queues) through the public contract only: inbound events
//! on the bus, the reservations HTTP API, orders taken on the fake channels, the fakes' read-back
//! and the events stockguard publishes. Channels and listings are set up as configuration first.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use stockguard_domain::channel::BufferPolicy;
use stockguard_fake_channels::{OrderLine, OrderRequest};
use stockguard_local::RuntimeOptions;
use stockguard_local::fake_wiring::{amazon_notification_feed, send_shopify_webhooks};
use stockguard_local::tap::queue_depth;
use stockguard_tests::channels::{FakeChannels, FakeOptions, KINDS, fake, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, of_type};

/// Contested by checkouts: single units and carts.
const SNEAKER: &str = "E2E-SNEAKER";
/// The second line of every cart.
const HOODIE: &str = "E2E-HOODIE";
/// Sold on the marketplaces until it runs out.
const CAP: &str = "E2E-CAP";
const STOCK: [(&str, i64); 3] = [(SNEAKER, 10), (HOODIE, 6), (CAP, 5)];
const SINGLE_CHECKOUTS: usize = 20;
const CART_CHECKOUTS: usize = 8;
const WALK_AWAY_TTL: u64 = 10;

struct Checkout {
    id: String,
    lines: Vec<(&'static str, i64)>,
    walks_away: bool,
}

#[derive(Default)]
struct Outcome {
    held: Vec<(usize, Value)>,
    rejected: Vec<Value>,
}

fn checkouts() -> Vec<Checkout> {
    let singles = (0..SINGLE_CHECKOUTS).map(|i| (vec![(SNEAKER, 1)], i));
    let carts =
        (0..CART_CHECKOUTS).map(|i| (vec![(SNEAKER, 1), (HOODIE, 2)], SINGLE_CHECKOUTS + i));
    singles
        .chain(carts)
        .map(|(lines, i)| Checkout {
            id: format!("e2e-web-{i}"),
            lines,
            // One in four shoppers leaves the payment page open and never comes back.
            walks_away: i % 4 == 3,
        })
        .collect()
}

async fn get_json(client: &reqwest::Client, url: &str) -> (u16, Value) {
    let r = client.get(url).send().await.expect("HTTP GET");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = client.post(url).json(body).send().await.expect("HTTP POST");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// The API's answer for `sku`, and each channel whose fake shows, or whose acknowledgement the
/// API reports, something other than `available` (zero buffers).
async fn settled(
    client: &reqwest::Client,
    api: &str,
    fakes: &FakeChannels,
    sku: &str,
) -> (Value, Vec<String>) {
    let (status, body) = get_json(client, &format!("{api}/v1/availability/{sku}")).await;
    let available = body["available"].as_i64();
    let differs = KINDS
        .iter()
        .filter_map(|kind| {
            let shown = fake(fakes, kind).shown(&listing_key(kind, sku));
            let acked = body["channels"][kind].as_i64();
            (status != 200 || shown != available || acked != available).then(|| {
                format!(
                    "{kind}/{sku}: shows {shown:?}, acknowledged {acked:?}, available {available:?}"
                )
            })
        })
        .collect();
    (body, differs)
}

/// What the API says of each SKU, once every fake shows exactly its `available` (zero buffers)
/// and the API reports that same quantity as acknowledged by every channel; on timeout, what
/// still differs.
async fn converged(
    client: &reqwest::Client,
    api: &str,
    fakes: &FakeChannels,
    timeout: Duration,
) -> Result<BTreeMap<&'static str, Value>, String> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let mut positions = BTreeMap::new();
        let mut diverged = Vec::new();
        for (sku, _) in STOCK {
            let (body, differs) = settled(client, api, fakes, sku).await;
            diverged.extend(differs);
            positions.insert(sku, body);
        }
        if diverged.is_empty() {
            return Ok(positions);
        }
        if tokio::time::Instant::now() > deadline {
            return Err(diverged.join("; "));
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn race_checkouts(client: &reqwest::Client, api: &str, all: &[Checkout]) -> Outcome {
    let answers = futures::future::join_all(all.iter().map(|c| {
        let lines: Vec<Value> = c
            .lines
            .iter()
            .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
            .collect();
        let ttl = if c.walks_away { WALK_AWAY_TTL } else { 300 };
        let body = json!({"reservation_id": c.id, "channel": "storefront", "lines": lines, "ttl_seconds": ttl});
        let url = format!("{api}/v1/reservations");
        async move { post_json(client, &url, &body).await }
    }))
    .await;
    let mut outcome = Outcome::default();
    for (i, (status, body)) in answers.into_iter().enumerate() {
        match status {
            201 => outcome.held.push((i, body)),
            409 => outcome.rejected.push(body),
            other => panic!("checkout {} answered {other}: {body}", all[i].id),
        }
    }
    outcome
}

fn units_of(all: &[Checkout], picked: impl Iterator<Item = usize>, sku: &str) -> i64 {
    picked
        .flat_map(|i| all[i].lines.iter())
        .filter(|(s, _)| *s == sku)
        .map(|(_, q)| q)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flash_sale_through_the_public_contract_never_oversells_and_every_channel_converges() {
    let stack = TestStack::new().await;
    // Marketplace orders reach stockguard only in the marketplaces' own words: Shopify's signed
    // webhooks, Amazon's SP-API notifications on their queue, Walmart's and eBay's orders APIs.
    let amazon_queue = stack.stack.queues["AmazonNotificationsQueue"].url.clone();
    let (notifications, _feed) = amazon_notification_feed(&stack.config, &amazon_queue);
    let fakes = FakeChannels::start(FakeOptions::default().with_notification_sink(notifications))
        .await
        .expect("fake channels");
    // Amazon shows a push only after processing (minutes in reality, a second here).
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 1_000);
    let skus: Vec<&str> = STOCK.iter().map(|(s, _)| *s).collect();
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &skus)
        .await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            // The expiry sweep and reconciliation, every two seconds instead of minutes.
            schedule_interval: Some(Duration::from_secs(2)),
            ..Default::default()
        })
        .await;
    let api = format!("http://{}", rt.api_addr.unwrap());
    send_shopify_webhooks(&fakes, &api);
    let client = reqwest::Client::new();
    let wait = Duration::from_secs(120);

    // The ERP receives the stock; every channel shows it.
    for (i, (sku, quantity)) in STOCK.iter().enumerate() {
        stack.put_event("erp.netsuite", "StockReceived", &json!({"event_id": format!("e2e-po-{i}"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": quantity})).await;
    }
    converged(&client, &api, &fakes, wait)
        .await
        .expect("channels show the received stock");

    // Checkouts race for more sneakers than exist, while the marketplaces sell caps.
    let all = checkouts();
    let marketplaces = sell_caps_until_refused(&client, &api, &fakes, wait);
    let race = async {
        let outcome = race_checkouts(&client, &api, &all).await;
        (outcome, chrono::Utc::now())
    };
    let ((outcome, race_ended), (cap_orders, cap_refused)) = tokio::join!(race, marketplaces);
    let held: Vec<usize> = outcome.held.iter().map(|(i, _)| *i).collect();
    // A hold that lapsed before the race ended may have handed its units to a later checkout.
    let lapsed_in_race: Vec<usize> = outcome
        .held
        .iter()
        .filter(|(_, body)| {
            let expires = body["expires_at"].as_str().expect("expires_at");
            chrono::DateTime::parse_from_rfc3339(expires).expect("RFC 3339") < race_ended
        })
        .map(|(i, _)| *i)
        .collect();
    let held_sneakers = units_of(&all, held.iter().copied(), SNEAKER);
    let held_hoodies = units_of(&all, held.iter().copied(), HOODIE);
    assert!(
        held_sneakers <= 10 + units_of(&all, lapsed_in_race.iter().copied(), SNEAKER)
            && held_hoodies <= 6 + units_of(&all, lapsed_in_race.iter().copied(), HOODIE),
        "held {held_sneakers} sneakers and {held_hoodies} hoodies of 10 and 6"
    );
    assert!(
        !outcome.rejected.is_empty(),
        "demand exceeded stock, yet nothing was rejected"
    );
    for body in &outcome.rejected {
        assert_eq!(body["error"], "insufficient_stock", "{body}");
        let short = body["shortfalls"].as_array().expect("shortfalls");
        assert!(
            short
                .iter()
                .any(|s| s["available"].as_i64() < s["requested"].as_i64()),
            "a rejection names no short line: {body}"
        );
    }
    for (_, body) in &outcome.held {
        assert_eq!(body["status"], "held", "{body}");
    }
    assert_eq!(cap_orders, 5, "the marketplaces sold every cap");
    assert!(cap_refused >= 1, "a marketplace showing 0 refused an order");

    // Shoppers who stayed pay or abandon; the rest walk away and their holds lapse.
    let mut confirmed = Vec::new();
    for (n, i) in held.iter().copied().enumerate() {
        let c = &all[i];
        if c.walks_away {
            continue;
        }
        if n % 3 == 2 {
            let r = client
                .delete(format!("{api}/v1/reservations/{}", c.id))
                .send()
                .await
                .expect("HTTP DELETE");
            assert_eq!(r.status().as_u16(), 200, "release {}", c.id);
        } else {
            let order = format!("E2E-ORDER-{i}");
            let (status, body) = post_json(
                &client,
                &format!("{api}/v1/reservations/{}/confirm", c.id),
                &json!({"order_id": order}),
            )
            .await;
            assert_eq!(status, 200, "confirm {}: {body}", c.id);
            assert_eq!(body["status"], "confirmed", "{body}");
            confirmed.push(i);
        }
    }
    let walked: Vec<usize> = held
        .iter()
        .copied()
        .filter(|i| all[*i].walks_away)
        .collect();

    // The warehouse ships the first confirmed order; a returned hoodie goes back on the shelf;
    // a late delivery restocks sneakers.
    let shipped: Vec<usize> = confirmed.iter().copied().take(1).collect();
    for i in &shipped {
        stack.put_event("wms.main", "OrderShipped", &json!({"event_id": format!("e2e-ship-{i}"), "occurred_at": now_rfc3339(), "order_id": format!("E2E-ORDER-{i}")})).await;
    }
    stack.put_event("wms.main", "ReturnReceived", &json!({"event_id": "e2e-rma-1", "occurred_at": now_rfc3339(), "return_id": "E2E-RMA-1", "sku": HOODIE, "quantity": 1, "restock": true})).await;
    stack.put_event("erp.netsuite", "StockReceived", &json!({"event_id": "e2e-po-late", "occurred_at": now_rfc3339(), "sku": SNEAKER, "quantity": 5})).await;

    // Walked-away holds lapse, are swept, and every channel shows the final state.
    let published = stack
        .await_published(wait, |events| {
            of_type(events, "ReservationExpired").len() >= walked.len()
        })
        .await;
    let expired = of_type(&published, "ReservationExpired");
    assert_eq!(
        expired.len(),
        walked.len(),
        "every walked-away hold lapsed once"
    );
    let positions = converged(&client, &api, &fakes, wait)
        .await
        .unwrap_or_else(|diverged| panic!("channels did not converge: {diverged}"));

    let units = |picked: &[usize], sku| units_of(&all, picked.iter().copied(), sku);
    let expect = |sku: &str, on_hand: i64, hard: i64| {
        let p = &positions[sku];
        assert_eq!(
            (
                p["on_hand"].as_i64(),
                p["hard_reserved"].as_i64(),
                p["soft_reserved"].as_i64(),
                p["available"].as_i64()
            ),
            (Some(on_hand), Some(hard), Some(0), Some(on_hand - hard)),
            "{sku}: {p}"
        );
    };
    expect(
        SNEAKER,
        10 + 5 - units(&shipped, SNEAKER),
        units(&confirmed, SNEAKER) - units(&shipped, SNEAKER),
    );
    expect(
        HOODIE,
        6 + 1 - units(&shipped, HOODIE),
        units(&confirmed, HOODIE) - units(&shipped, HOODIE),
    );
    expect(CAP, 5, 5);

    // Nothing oversold, no request ever took available below zero, nothing dead-lettered.
    let published = [
        published,
        stack.drain_published(Duration::from_secs(1)).await,
    ]
    .concat();
    let oversells = of_type(&published, "OversellDetected");
    assert!(oversells.is_empty(), "oversold: {oversells:?}");
    for e in of_type(&published, "InventoryPositionChanged") {
        assert!(
            e["detail"]["available"].as_i64() >= Some(0),
            "went below zero: {e}"
        );
    }
    for (name, q) in &stack.stack.queues {
        if name.ends_with("DLQ") {
            let depth = queue_depth(&stack.sqs, &q.url).await.unwrap();
            assert_eq!(depth, 0, "{name} holds {depth} messages");
        }
    }
}

/// Sells caps one unit at a time, rotating over the marketplaces, each order taken by a channel
/// that shows the current quantity, until a channel showing 0 refuses. Returns (sold, refused).
async fn sell_caps_until_refused(
    client: &reqwest::Client,
    api: &str,
    fakes: &FakeChannels,
    wait: Duration,
) -> (usize, usize) {
    let (mut sold, mut refused) = (0, 0);
    for n in 0.. {
        let kind = ["shopify", "amazon", "walmart", "ebay"][n % 4];
        let order = OrderRequest {
            order_id: None,
            lines: vec![OrderLine {
                listing_key: listing_key(kind, CAP),
                quantity: 1,
            }],
        };
        match fake(fakes, kind).place_order(&order) {
            Ok(_) => sold += 1,
            Err(_) => {
                refused += 1;
                break;
            }
        }
        // The next shopper arrives once the sale has reached every channel.
        wait_for_cap(client, api, fakes, 5 - sold as i64, wait).await;
    }
    (sold, refused)
}

async fn wait_for_cap(
    client: &reqwest::Client,
    api: &str,
    fakes: &FakeChannels,
    left: i64,
    wait: Duration,
) {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let (body, differs) = settled(client, api, fakes, CAP).await;
        if body["available"].as_i64() == Some(left) && differs.is_empty() {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "caps never settled at {left}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
