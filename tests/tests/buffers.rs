//! Dynamic buffers end to end (contract section 5): the real functions on the local runtime, the
//! emulator, and the four fake channels (local servers honouring the channels' contracts; the
//! real APIs cannot be reached from here). The recompute's schedule is parked; each test runs it
//! itself, with a chosen "now" where it needs time to pass.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use stockguard_adapters::buffer_store::StoredBuffers;
use stockguard_adapters::request_count::counted_between;
use stockguard_adapters::{AwsClients, RequestCounter};
use stockguard_domain::buffer::DynamicPolicy;
use stockguard_domain::{ChannelName, Sku};
use stockguard_handlers::buffers::{BufferRecompute, DEFAULT_RECONCILE_INTERVAL_MS};
use stockguard_handlers::deps::now_ms;
use stockguard_handlers::{Deps, Settings};
use stockguard_local::{LocalRuntime, RuntimeOptions};
use stockguard_tests::channels::{FakeChannels, FakeOptions, fake, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, of_type, unique};

const DAY_MS: i64 = 86_400_000;

async fn fakes(amazon_delay_ms: u64) -> FakeChannels {
    let f = FakeChannels::start(FakeOptions::default())
        .await
        .expect("fake channels");
    f.amazon
        .update_settings(|s| s.amazon_processing_delay_ms = amazon_delay_ms);
    f
}

async fn runtime(stack: &TestStack) -> LocalRuntime {
    stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            // Parked: the tests run the recompute themselves.
            buffer_recompute_interval: Duration::from_secs(3600),
            ..Default::default()
        })
        .await
}

fn recompute(stack: &TestStack) -> BufferRecompute {
    BufferRecompute::new(stack.deps.clone(), DEFAULT_RECONCILE_INTERVAL_MS)
}

async fn event(stack: &TestStack, source: &str, detail_type: &str, detail: Value) {
    stack.put_event(source, detail_type, &detail).await;
}

async fn receive(stack: &TestStack, sku: &str, quantity: i64) {
    let detail = json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": quantity});
    event(stack, "erp.test", "StockReceived", detail).await;
}

async fn order(stack: &TestStack, channel: &str, sku: &str, quantity: i64) {
    let detail = json!({"event_id": unique("ord"), "occurred_at": now_rfc3339(), "order_id": unique("o"), "channel": channel, "lines": [{"sku": sku, "quantity": quantity}]});
    event(
        stack,
        &format!("marketplace.{channel}"),
        "OrderPlaced",
        detail,
    )
    .await;
}

async fn await_available(stack: &TestStack, sku: &str, available: i64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let p = stack.position(sku).await;
        if p.available() == available {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sku}: available {} never became {available}",
            p.available()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until each listed channel shows its quantity for `sku`.
async fn await_shown(fakes: &FakeChannels, sku: &str, expected: &[(&str, i64)]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let shown: Vec<Option<i64>> = expected
            .iter()
            .map(|(k, _)| fake(fakes, k).shown(&listing_key(k, sku)))
            .collect();
        if shown.iter().zip(expected).all(|(s, (_, e))| *s == Some(*e)) {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{sku}: channels show {shown:?}, expected {expected:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn stored(stack: &TestStack, sku: &str) -> StoredBuffers {
    stack
        .deps
        .store
        .stored_buffers(&Sku::parse(sku).unwrap())
        .await
        .unwrap()
        .unwrap_or_default()
}

fn buffer(b: &StoredBuffers, channel: &str) -> i64 {
    b.channels.get(channel).map_or(0, |c| c.buffer)
}

async fn health(
    stack: &TestStack,
) -> BTreeMap<String, stockguard_adapters::buffer_store::StoredHealth> {
    let (_, health) = stack.deps.store.channels_and_health().await.unwrap();
    health
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fast_sales_elsewhere_buffer_the_slowest_channel_most_then_decay_to_the_minimum() {
    let stack = TestStack::new().await;
    let fakes = fakes(10_000).await;
    let probes: Vec<String> = (0..6).map(|i| format!("PROBE-{i}")).collect();
    let mut skus = vec!["FAST-1"];
    skus.extend(probes.iter().map(String::as_str));
    stack.configure_channels_with(&fakes, |_| {}, &skus).await;
    let _rt = runtime(&stack).await;

    // Stock on several SKUs, one after another, so several sync batches each leave a probe.
    for sku in &skus {
        receive(&stack, sku, 100).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    for sku in &skus {
        let all: Vec<(&str, i64)> = ["shopify", "amazon", "walmart", "ebay"]
            .iter()
            .map(|k| (*k, 100))
            .collect();
        await_shown(&fakes, sku, &all).await;
    }
    let report = recompute(&stack).run(now_ms()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    assert!(report.probes_shown >= 5, "{report:?}");
    let h = health(&stack).await;
    let amazon = h["amazon"].health;
    // Measured by reading Amazon back, not its 15-minute prior: about the 4 s processing delay.
    assert!(amazon.samples >= 5, "{amazon:?}");
    assert!((4_000..60_000).contains(&amazon.delay_p95_ms), "{amazon:?}");
    assert!(
        h["shopify"].health.delay_p95_ms < 4_000,
        "{:?}",
        h["shopify"]
    );

    // A burst of sales on walmart and ebay.
    for _ in 0..30 {
        order(&stack, "walmart", "FAST-1", 1).await;
        order(&stack, "ebay", "FAST-1", 1).await;
    }
    await_available(&stack, "FAST-1", 40).await;
    let report = recompute(&stack).run(now_ms()).await;
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let b = stored(&stack, "FAST-1").await;
    let (amazon_b, shopify_b) = (buffer(&b, "amazon"), buffer(&b, "shopify"));
    assert!(
        amazon_b > shopify_b,
        "amazon {amazon_b}, shopify {shopify_b}: {b:?}"
    );
    assert!(amazon_b >= 2, "{b:?}");
    // Walmart's own sales do not count towards walmart's risk: only ebay's do.
    let v = |c: &str| b.channels[c].inputs.velocity_elsewhere_per_s;
    assert!((v("walmart") - v("amazon") / 2.0).abs() < 1e-3, "{b:?}");
    // The moved buffers reach the channels as pushes.
    await_shown(
        &fakes,
        "FAST-1",
        &[("amazon", 40 - amazon_b), ("shopify", 40 - shopify_b)],
    )
    .await;
    let events = stack
        .await_published(Duration::from_secs(5), |e| {
            !of_type(e, "ChannelBufferChanged").is_empty()
        })
        .await;
    let changed = of_type(&events, "ChannelBufferChanged");
    assert!(
        changed
            .iter()
            .any(|e| e["detail"]["channel"] == "amazon" && e["detail"]["buffer"] == amazon_b),
        "{changed:?}"
    );

    // Hours later, with no more sales, the SKU is checked less often: a run soon after the last
    // one (the channels' health unchanged) reads no SKU.
    let hours = now_ms() + 2 * 3_600_000;
    let report = recompute(&stack).run(hours).await;
    assert_eq!(report.skus_recomputed, 1, "{report:?}");
    let report = recompute(&stack).run(hours + 60_000).await;
    assert_eq!(
        (report.health_changed, report.skus_recomputed),
        (0, 0),
        "{report:?}"
    );

    // Days later, with no more sales, every buffer is back at the minimum and the SKU is quiet.
    let later = now_ms() + 10 * DAY_MS;
    let report = recompute(&stack).run(later).await;
    assert!(report.deactivated >= 1, "{report:?}");
    let b = stored(&stack, "FAST-1").await;
    assert!(b.channels.values().all(|c| c.buffer == 0), "{b:?}");
    await_shown(
        &fakes,
        "FAST-1",
        &[
            ("amazon", 40),
            ("shopify", 40),
            ("walmart", 40),
            ("ebay", 40),
        ],
    )
    .await;

    // A recompute of a catalogue where nothing sells reads no SKU at all: the channels, each
    // channel's samples and the (empty) active index, nothing else.
    let counter = RequestCounter::new();
    let clients = AwsClients::with_interceptors(
        &stack.config,
        &[
            aws_smithy_runtime_api::client::interceptors::SharedInterceptor::new(
                counter.tagged("recompute"),
            ),
        ],
    );
    let counted = Deps::from_clients(
        clients,
        &stack.stack.table,
        &stack.stack.bus,
        None,
        Settings::default(),
    );
    let quiet = BufferRecompute::new(counted, DEFAULT_RECONCILE_INTERVAL_MS);
    // The first quiet run drops the read-back probes the last pushes left (unread: too old).
    quiet.run(later + 60_000).await;
    let before = counter.snapshot();
    let report = quiet.run(later + 120_000).await;
    assert_eq!(report.skus_recomputed, 0, "{report:?}");
    let requests: BTreeMap<String, u64> = counted_between(&before, &counter.snapshot())
        .into_iter()
        .map(|(k, t)| (format!("{}.{}", k.service, k.operation), t.requests))
        .collect();
    assert_eq!(
        requests,
        BTreeMap::from([("DynamoDB.Query".to_owned(), 1 + 4 + 1)]),
        "one query for the channels, one per channel's samples, one for the active SKUs"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_demand_signal_raises_buffers_before_any_order_and_they_return_after_it_expires() {
    let stack = TestStack::new().await;
    let fakes = fakes(0).await;
    stack
        .configure_channels_with(&fakes, |_| {}, &["SIG-1"])
        .await;
    let rt = runtime(&stack).await;
    receive(&stack, "SIG-1", 50).await;
    for _ in 0..5 {
        order(&stack, "walmart", "SIG-1", 1).await;
    }
    await_available(&stack, "SIG-1", 45).await;
    recompute(&stack).run(now_ms()).await;
    let before = stored(&stack, "SIG-1").await;
    let amazon_before = buffer(&before, "amazon");
    assert!(amazon_before > 0, "{before:?}");

    // The storefront's analytics see carts filling up: a surge at four times the baseline.
    // Long enough for the checks during the surge on a slow machine.
    let expires_in_ms = 8_000;
    let detail = json!({"event_id": unique("sig"), "occurred_at": now_rfc3339(), "sku": "SIG-1",
        "signal": "add_to_cart_surge", "strength": 4.0, "expires_at": stockguard_tests::at(expires_in_ms)});
    let sent = std::time::Instant::now();
    event(&stack, "storefront.analytics", "DemandSignal", detail).await;
    // No scheduled recompute runs here: the signal itself moves the buffers, within seconds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let during = loop {
        let b = stored(&stack, "SIG-1").await;
        if buffer(&b, "amazon") > amazon_before {
            break b;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "no buffer moved: {b:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(sent.elapsed() < Duration::from_millis(expires_in_ms as u64));
    assert_eq!(during.channels["amazon"].inputs.signal_factor, 4.0);
    assert_eq!(
        stack.position("SIG-1").await.available(),
        45,
        "no order came in"
    );
    let report = stockguard_handlers::buffers::buffers_of(
        &stack.deps,
        &Sku::parse("SIG-1").unwrap(),
        now_ms(),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(report.channels["amazon"].decided_by.as_str(), "signal");
    assert_eq!(report.default_reservation_ttl_seconds, 300);
    // During the surge a checkout that names no hold time holds for 5 minutes, not 15; one that
    // names it keeps it.
    let api = format!("http://{}", rt.api_addr.unwrap());
    let http = reqwest::Client::new();
    for (ttl, expected_s) in [(None, 300), (Some(600), 600)] {
        let mut body = json!({"reservation_id": unique("r"), "channel": "storefront", "lines": [{"sku": "SIG-1", "quantity": 1}]});
        if let Some(t) = ttl {
            body["ttl_seconds"] = json!(t);
        }
        let answer: Value = http
            .post(format!("{api}/v1/reservations"))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let expires = chrono::DateTime::parse_from_rfc3339(answer["expires_at"].as_str().unwrap())
            .unwrap()
            .timestamp_millis();
        let held_s = (expires - now_ms()) / 1000;
        assert!(
            (expected_s - 5..=expected_s).contains(&held_s),
            "{ttl:?}: {answer}"
        );
    }

    // Once it expires, the next recompute moves them back.
    tokio::time::sleep(
        Duration::from_millis(expires_in_ms as u64 + 500).saturating_sub(sent.elapsed()),
    )
    .await;
    recompute(&stack).run(now_ms()).await;
    let after = stored(&stack, "SIG-1").await;
    assert_eq!(buffer(&after, "amazon"), amazon_before, "{after:?}");
    assert_eq!(after.channels["amazon"].inputs.signal_factor, 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_channel_gets_a_larger_buffer_and_recovery_shrinks_it() {
    let stack = TestStack::new().await;
    let fakes = fakes(0).await;
    stack
        .configure_channels_with(&fakes, |_| {}, &["SICK-1"])
        .await;
    let _rt = runtime(&stack).await;
    receive(&stack, "SICK-1", 100).await;
    await_shown(&fakes, "SICK-1", &[("walmart", 100), ("ebay", 100)]).await;

    // Walmart answers 5xx to every push while the SKU sells on shopify.
    fakes.walmart.update_settings(|s| s.error_rate = 1.0);
    for _ in 0..20 {
        order(&stack, "shopify", "SICK-1", 1).await;
    }
    await_available(&stack, "SICK-1", 80).await;
    let walmart = ChannelName::parse("walmart").unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (minutes, _) = stack
            .deps
            .store
            .sync_minutes(&walmart, now_ms() - 600_000)
            .await
            .unwrap();
        if minutes.iter().map(|(_, m)| m.failures).sum::<u64>() >= 10 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "walmart's failures were never recorded"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    recompute(&stack).run(now_ms()).await;
    let sick = stored(&stack, "SICK-1").await;
    let inputs = sick.channels["walmart"].inputs;
    assert!(inputs.health_factor > 1.0, "{inputs:?}");
    // eBay carries the same sales risk (shopify's) and is healthy: walmart holds back more.
    let ebay = sick.channels["ebay"].inputs;
    assert_eq!(ebay.health_factor, 1.0, "{ebay:?}");
    assert!((ebay.velocity_elsewhere_per_s - inputs.velocity_elsewhere_per_s).abs() < 1e-9);
    assert!(buffer(&sick, "walmart") > buffer(&sick, "ebay"), "{sick:?}");

    // Walmart recovers; once the failures are out of the health window the buffer shrinks.
    fakes.walmart.update_settings(|s| s.error_rate = 0.0);
    await_shown(
        &fakes,
        "SICK-1",
        &[("walmart", 80 - buffer(&sick, "walmart"))],
    )
    .await;
    recompute(&stack)
        .run(now_ms() + stockguard_handlers::buffers::HEALTH_WINDOW_MS + 60_000)
        .await;
    let recovered = stored(&stack, "SICK-1").await;
    assert_eq!(
        recovered.channels["walmart"].inputs.health_factor, 1.0,
        "{recovered:?}"
    );
    assert!(
        buffer(&recovered, "walmart") < buffer(&sick, "walmart"),
        "{recovered:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn at_low_stock_the_slow_channel_shows_zero_while_fast_ones_keep_selling() {
    let stack = TestStack::new().await;
    let fakes = fakes(0).await;
    let low_stock = |s: &mut stockguard_adapters::channel_store::ChannelSettings| {
        s.dynamic = DynamicPolicy {
            low_stock_units: 3,
            ..DynamicPolicy::default()
        };
    };
    stack
        .configure_channels_with(&fakes, low_stock, &["LOW-1"])
        .await;
    let rt = runtime(&stack).await;
    receive(&stack, "LOW-1", 5).await;
    await_shown(
        &fakes,
        "LOW-1",
        &[("shopify", 5), ("amazon", 5), ("walmart", 5), ("ebay", 5)],
    )
    .await;
    order(&stack, "ebay", "LOW-1", 2).await;
    await_available(&stack, "LOW-1", 3).await;
    // Amazon's delay (its 15-minute prior; nothing measured yet) is above the 60 s the rule allows.
    await_shown(
        &fakes,
        "LOW-1",
        &[("shopify", 3), ("amazon", 0), ("walmart", 3), ("ebay", 3)],
    )
    .await;

    // What the API says about it.
    let api = format!("http://{}", rt.api_addr.unwrap());
    let http = reqwest::Client::new();
    let body: Value = http
        .get(format!("{api}/v1/buffers/LOW-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(body["sku"], "LOW-1");
    assert_eq!(body["available"], 3);
    let amazon = &body["channels"]["amazon"];
    assert_eq!(amazon["mode"], "dynamic");
    assert_eq!(
        (amazon["buffer"].as_i64(), amazon["shown"].as_i64()),
        (Some(3), Some(0))
    );
    assert_eq!(amazon["factors"]["low_stock"], true);
    assert_eq!(amazon["decided_by"], "low_stock");
    for factor in [
        "velocity_elsewhere_per_min",
        "delay_p95_ms",
        "risk_target",
        "health_factor",
        "time_of_day_factor",
        "signal_factor",
    ] {
        assert!(amazon["factors"][factor].is_number(), "{factor}: {amazon}");
    }
    assert_eq!(body["channels"]["shopify"]["factors"]["low_stock"], false);
    let availability: Value = http
        .get(format!("{api}/v1/availability/LOW-1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        availability["buffers"],
        json!({"amazon": 3, "ebay": 0, "shopify": 0, "walmart": 0})
    );
    let missing = http
        .get(format!("{api}/v1/buffers/NO-SUCH-SKU"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}
