//! Reservations per second against the emulator: 16 concurrent clients on one hot SKU through the
//! reservations HTTP API, and the oversell count (must be 0); channel sync's coalescing and
//! pipeline latency; and the AWS requests each operation costs, with what they come to in dollars.
//! Prints figures; asserts nothing about time.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::json;
use stockguard_adapters::request_count::{RequestKey, Tally, counted_between};
use stockguard_domain::Sku;
use stockguard_domain::channel::BufferPolicy;
use stockguard_fake_channels::{FakeChannels, FakeOptions, OrderRequest};
use stockguard_handlers::{Deps, Settings};
use stockguard_local::cost::Usage;
use stockguard_local::fake_wiring::{
    KINDS, amazon_notification_feed, configure_fake_channels, fake, listing_key, map_on_fakes,
    send_shopify_webhooks, static_buffers,
};
use stockguard_local::tap::{EventTap, queue_depth};
use stockguard_local::{LocalRuntime, RuntimeOptions, StackSpec, provision};

const CLIENTS: usize = 16;
const STOCK: i64 = 600;
const ATTEMPTS_PER_CLIENT: usize = 50;
const ROUNDS: usize = 3;
const STEADY_CHANGES: usize = 100;

/// `stockguard-bench [reservations|channels|functions|buffers|orders]`: every part unless one is
/// named.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    std::env::var("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL is not set: run through infra/with-emulator.sh (make bench)")?;
    let part = std::env::args().nth(1);
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let spec = StackSpec::load_default()?;
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    match part.as_deref() {
        None => {
            function_figures(&spec).await?;
            reservation_figures(&config, &spec).await?;
            channel_sync_figures(&config, &spec).await?;
            order_figures(&config, &spec).await?;
            buffer_recompute_figures(&config, &spec).await
        }
        Some("orders") => order_figures(&config, &spec).await,
        Some("buffers") => buffer_recompute_figures(&config, &spec).await,
        Some("reservations") => reservation_figures(&config, &spec).await,
        Some("channels") => channel_sync_figures(&config, &spec).await,
        Some("functions") => function_figures(&spec).await,
        Some(other) => {
            bail!(
                "unknown part {other:?}: expected reservations, channels, functions, buffers or orders"
            )
        }
    }
}

/// Per function binary: the arm64 artefact's size (from `make build`) and the cold-start init
/// time of the native release build, from process start to its first request for an invocation.
async fn function_figures(spec: &StackSpec) -> Result<()> {
    const STARTS: usize = 7;
    let root = stockguard_local::template::workspace_root();
    println!(
        "function binaries: arm64 artefact size, and init time of the native build ({STARTS} cold starts each)"
    );
    let mut seen = std::collections::BTreeSet::new();
    for f in &spec.functions {
        if !seen.insert(f.binary.clone()) {
            continue;
        }
        let arm64 = root.join(format!("target/lambda/{}/bootstrap", f.binary));
        let size = match std::fs::metadata(&arm64) {
            Ok(m) => format!("{:.1} MB", m.len() as f64 / 1e6),
            Err(_) => "not built (make build)".into(),
        };
        let native = root.join(format!("target/release/{}", f.binary));
        // Parameters take their defaults; resources get placeholders (init calls nothing).
        let mut env: BTreeMap<String, String> = f.env_values.clone();
        for (var, target) in &f.env_refs {
            let value = if let Some(default) = spec.parameters.get(target) {
                default.clone()
            } else if var.ends_with("_URL") {
                "http://127.0.0.1:9/000000000000/placeholder".to_owned()
            } else {
                "placeholder".to_owned()
            };
            env.insert(var.clone(), value);
        }
        let mut times = Vec::new();
        for _ in 0..STARTS {
            times.push(
                stockguard_local::cold_start::init_time(&native, &f.logical_id, f.memory_mb, &env)
                    .await?,
            );
        }
        times.sort();
        println!(
            "  {:<22} {size:>24}   init p50 {:.1} ms (min {:.1}, max {:.1})",
            f.binary,
            ms(times[STARTS / 2]),
            ms(times[0]),
            ms(times[STARTS - 1])
        );
    }
    Ok(())
}

/// Reservation decisions per second on one hot SKU through the HTTP API, and the oversell count.
async fn reservation_figures(config: &aws_config::SdkConfig, spec: &StackSpec) -> Result<()> {
    let stack = provision(config, spec, "bench-", "bench-bus").await?;
    let options = RuntimeOptions {
        api_addr: Some("127.0.0.1:0".parse()?),
        ..Default::default()
    };
    let rt = LocalRuntime::start(config, spec, &stack, options).await?;
    let api = format!(
        "http://{}/v1/reservations",
        rt.api_addr.context("API address")?
    );
    let deps = Deps::new(config, &stack.table, &stack.bus, None, Settings::default());
    let client = reqwest::Client::new();
    println!(
        "{CLIENTS} clients x {ATTEMPTS_PER_CLIENT} single-unit reservations on one SKU holding {STOCK} units, {ROUNDS} rounds (HTTP API -> DynamoDB in moto)"
    );

    let mut rates = Vec::new();
    let mut latencies = Vec::new();
    let mut oversells = 0i64;
    let requests_before = rt.requests.snapshot();
    for round in 0..ROUNDS {
        let sku = Sku::parse(&format!("BENCH-HOT-{round}")).map_err(anyhow::Error::msg)?;
        receive_stock(&deps, std::slice::from_ref(&sku), "bench-rcv", STOCK).await?;
        let start = Instant::now();
        let tasks = (0..CLIENTS).map(|c| {
            let client = client.clone();
            let api = api.clone();
            let sku = sku.clone();
            tokio::spawn(async move {
                let mut held = 0i64;
                let mut lat = Vec::new();
                for i in 0..ATTEMPTS_PER_CLIENT {
                    let body = json!({"reservation_id": format!("b{round}-{c}-{i}"), "channel": "storefront", "lines": [{"sku": sku, "quantity": 1}]});
                    let t = Instant::now();
                    let status = client.post(&api).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                    lat.push(t.elapsed());
                    match status {
                        201 => held += 1,
                        409 => {}
                        other => eprintln!("unexpected status {other}"),
                    }
                }
                (held, lat)
            })
        });
        let mut held = 0;
        for t in futures::future::join_all(tasks).await {
            let (h, lat) = t?;
            held += h;
            latencies.extend(lat);
        }
        let secs = start.elapsed().as_secs_f64();
        let p = deps.store.position(&sku).await?;
        let over = (held - STOCK).max(0) + (-p.available()).max(0);
        oversells += over;
        if p.soft_reserved != held {
            bail!(
                "position disagrees with the answers: soft {} vs held {held}",
                p.soft_reserved
            );
        }
        let rate = (CLIENTS * ATTEMPTS_PER_CLIENT) as f64 / secs;
        println!(
            "  round {round}: {rate:.0} reservation decisions/s, {held} held, available {} at the end",
            p.available()
        );
        rates.push(rate);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    latencies.sort();
    let pct = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    println!(
        "emulator reservations/s with {CLIENTS} clients on one hot SKU: median {:.0} (min {:.0}, max {:.0})",
        rates[rates.len() / 2],
        rates[0],
        rates[rates.len() - 1]
    );
    println!(
        "reservation answer latency: p50 {:.1} ms, p95 {:.1} ms",
        ms(pct(0.5)),
        ms(pct(0.95))
    );
    println!("oversells: {oversells}");
    let decisions = ROUNDS * CLIENTS * ATTEMPTS_PER_CLIENT;
    let counted = counted_between(&requests_before, &rt.requests.snapshot());
    print_requests_per("reservation decision", decisions, &counted, |f| {
        f == "ReservationsApiFunction"
    });
    // Lambda time per request: bounded by the answer latency the clients saw.
    let busy: Duration = latencies.iter().sum();
    let memory = memory_mb(spec, "ReservationsApiFunction")?;
    let mut usage = Usage::from_requests(&counted).with_lambda(decisions as u64, busy, memory);
    usage.http_api_requests = decisions as f64;
    println!(
        "  AWS cost per million reservation decisions: ${:.2} (Lambda time bounded by the answer latency above)",
        usage.per_million(decisions).dollars()
    );
    drop(rt);
    if oversells != 0 {
        bail!("oversold {oversells} units");
    }
    Ok(())
}

/// Channel sync against the fake channels: pushes per position change in a burst (coalescing),
/// and the pipeline's latency from a producer's event to each channel's acknowledgement when
/// changes arrive at a steady rate.
async fn channel_sync_figures(config: &aws_config::SdkConfig, spec: &StackSpec) -> Result<()> {
    let stack = provision(config, spec, "bench-sync-", "bench-sync-bus").await?;
    let deps = Deps::new(config, &stack.table, &stack.bus, None, Settings::default());
    let fakes = FakeChannels::start(FakeOptions::default()).await?;
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    configure_fake_channels(
        config,
        &deps.store,
        "bench-sync-",
        &fakes,
        static_buffers(BufferPolicy::default()),
    )
    .await?;
    let skus: Vec<Sku> = (0..10)
        .map(|i| Sku::parse(&format!("BURST-{i}")).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    map_on_fakes(&deps.store, &fakes, &skus).await?;
    let tap = EventTap::create(config, &stack.bus, "bench-sync-tap").await?;
    let rt = LocalRuntime::start(config, spec, &stack, RuntimeOptions::default()).await?;
    let events = aws_sdk_eventbridge::Client::new(config);
    let sqs = aws_sdk_sqs::Client::new(config);

    // Burst: 1,000 position changes over 10 SKUs, as fast as the state store takes them.
    receive_stock(&deps, &skus, "bench", 100).await?;
    wait_drained(&sqs, &stack).await?;
    tap.drain(Duration::from_millis(300)).await?;
    let before: u64 = KINDS
        .iter()
        .map(|k| fake(&fakes, k).stats().quantities_pushed)
        .sum();
    let changes = 1000;
    // Real changes: each applied to state, which publishes its position change to the channels.
    for round in 0..changes / 10 {
        let applies = skus.iter().map(|sku| {
            let detail = json!({"event_id": format!("burst-{round}-{sku}"), "occurred_at": chrono::Utc::now().to_rfc3339(),
                "sku": sku, "delta": -1, "reason": "sale"});
            let deps = &deps;
            async move { stockguard_handlers::apply_inbound(deps, "pos.bench", "StockAdjusted", &detail).await }
        });
        for result in futures::future::join_all(applies).await {
            result.map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    wait_drained(&sqs, &stack).await?;
    let pushed: u64 = KINDS
        .iter()
        .map(|k| fake(&fakes, k).stats().quantities_pushed)
        .sum::<u64>()
        - before;
    println!(
        "burst of {changes} position changes over 10 SKUs: {pushed} channel pushes across 4 channels ({:.3} pushes per change per channel)",
        pushed as f64 / (changes as f64 * 4.0)
    );

    // Steady rate: 50 changes/s for 2 s through the whole pipeline (bus -> state -> bus -> sync).
    // Restock first: the burst sold every SKU out, and below zero a channel's quantity stays 0,
    // which channel sync rightly does not push again.
    receive_stock(&deps, &skus, "bench-restock", 100).await?;
    wait_drained(&sqs, &stack).await?;
    tap.drain(Duration::from_millis(300)).await?;
    let requests_before = rt.requests.snapshot();
    let invocations_before = rt.invocations.snapshot();
    let rate_start = Instant::now();
    // Each producer call starts on its own schedule, so a slow PutEvents does not lower the rate.
    let sends = (0..STEADY_CHANGES).map(|i| {
        let (events, bus, sku) = (events.clone(), stack.bus.clone(), skus[i % 10].clone());
        tokio::spawn(async move {
            let due = rate_start + Duration::from_millis(20 * i as u64);
            tokio::time::sleep_until(due.into()).await;
            let detail = json!({"event_id": format!("steady-{i}"), "occurred_at": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                "sku": sku, "delta": -1, "reason": "sale"});
            let entry = PutEventsRequestEntry::builder()
                .event_bus_name(bus)
                .source("pos.bench")
                .detail_type("StockAdjusted")
                .detail(detail.to_string())
                .build();
            events.put_events().entries(entry).send().await
        })
    });
    for sent in futures::future::join_all(sends).await {
        sent??;
    }
    let sent_secs = rate_start.elapsed().as_secs_f64();
    wait_drained(&sqs, &stack).await?;
    let published = tap.drain(Duration::from_millis(500)).await?;
    println!(
        "steady rate: {STEADY_CHANGES} changes in {sent_secs:.1} s ({:.0} changes/s offered)",
        STEADY_CHANGES as f64 / sent_secs
    );
    for kind in KINDS {
        let mut lat: Vec<i64> = published
            .iter()
            .filter(|e| {
                e["detail-type"] == "ChannelQuantityPushed" && e["detail"]["channel"] == kind
            })
            .filter_map(|e| e["detail"]["latency_ms"].as_i64())
            .collect();
        lat.sort();
        let p = |q: f64| {
            lat.get(((lat.len() as f64 * q) as usize).min(lat.len().saturating_sub(1)))
                .copied()
                .unwrap_or(0)
        };
        println!(
            "  {kind:<8} event -> channel acknowledgement: p50 {} ms, p95 {} ms over {} pushes",
            p(0.5),
            p(0.95),
            lat.len()
        );
    }
    let counted = counted_between(&requests_before, &rt.requests.snapshot());
    print_requests_per("inbound event", STEADY_CHANGES, &counted, |f| {
        f == "StockAdjustedFunction"
    });
    let pushes = published
        .iter()
        .filter(|e| e["detail-type"] == "ChannelQuantityPushed")
        .count();
    print_requests_per("channel push", pushes, &counted, |f| {
        f.ends_with("SyncFunction")
    });
    // Usage of the state side (the producer's PutEvents included) and of the channel side.
    let invocations = rt.invocations.snapshot();
    let usage_of = |sync: bool| -> Result<Usage> {
        let mine = |f: &str| f.ends_with("SyncFunction") == sync;
        let requests: BTreeMap<RequestKey, Tally> = counted
            .iter()
            .filter(|(k, _)| mine(&k.function))
            .map(|(k, t)| (k.clone(), *t))
            .collect();
        let mut usage = Usage::from_requests(&requests);
        for (function, after) in invocations.iter().filter(|(f, _)| mine(f)) {
            let before = invocations_before
                .get(function)
                .copied()
                .unwrap_or_default();
            let memory = memory_mb(spec, function)?;
            usage = usage.with_lambda(after.count - before.count, after.busy - before.busy, memory);
        }
        Ok(usage)
    };
    let mut state = usage_of(false)?;
    state.eventbridge_events += STEADY_CHANGES as f64;
    let state = state.per_million(STEADY_CHANGES);
    let channel = usage_of(true)?.per_million(pushes);
    println!("AWS cost at list prices (Lambda GB-s from handler time here, an upper bound):");
    for (what, u) in [
        ("million inbound events (state side)", state),
        ("million channel pushes", channel),
    ] {
        println!(
            "  per {what}: ${:.2}: DynamoDB {:.2} M write + {:.2} M read units, {:.2} M EventBridge events, {:.2} M SQS requests, {:.2} M Lambda invocations, {:.0} GB-s",
            u.dollars(),
            u.dynamodb_write_units / 1e6,
            u.dynamodb_read_units / 1e6,
            u.eventbridge_events / 1e6,
            u.sqs_requests / 1e6,
            u.lambda_invocations / 1e6,
            u.lambda_gb_seconds,
        );
    }
    let pushes_per_change = pushes as f64 / STEADY_CHANGES as f64;
    println!(
        "  per million changes here ({pushes_per_change:.2} pushes each): ${:.2}",
        state.dollars() + pushes_per_change * channel.dollars()
    );
    drop(rt);
    Ok(())
}

const CATALOGUE: usize = 50_000;
const CHANGED: usize = CATALOGUE / 100;

/// One buffer recompute over a 50,000-SKU catalogue in which 1% of the SKUs sold since the last
/// run: its time and the DynamoDB requests it makes (only the changed SKUs should be read); then
/// the same catalogue once every SKU has gone quiet.
async fn buffer_recompute_figures(config: &aws_config::SdkConfig, spec: &StackSpec) -> Result<()> {
    use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
    use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;
    use stockguard_adapters::{AwsClients, RequestCounter};
    use stockguard_handlers::buffers::{BufferRecompute, DEFAULT_RECONCILE_INTERVAL_MS};

    let stack = provision(config, spec, "bench-buffers-", "bench-buffers-bus").await?;
    let deps = Deps::new(config, &stack.table, &stack.bus, None, Settings::default());
    let fakes = FakeChannels::start(FakeOptions::default()).await?;
    configure_fake_channels(config, &deps.store, "bench-buffers-", &fakes, |_| {}).await?;
    println!("buffer recompute: writing a {CATALOGUE}-SKU catalogue");
    let dynamodb = aws_sdk_dynamodb::Client::new(config);
    let n = |v: i64| AttributeValue::N(v.to_string());
    let sku_of = |i: usize| format!("CAT-{i:05}");
    let started = Instant::now();
    for chunk in (0..CATALOGUE).collect::<Vec<_>>().chunks(25) {
        let mut requests = Vec::new();
        for &i in chunk {
            let sku = sku_of(i);
            let item = std::collections::HashMap::from([
                ("pk".to_owned(), AttributeValue::S(format!("SKU#{sku}"))),
                ("sk".to_owned(), AttributeValue::S("POSITION".into())),
                ("sku".to_owned(), AttributeValue::S(sku)),
                ("on_hand".to_owned(), n(100)),
                ("hard_reserved".to_owned(), n(0)),
                ("soft_reserved".to_owned(), n(0)),
                ("available".to_owned(), n(100)),
                ("version".to_owned(), n(1)),
            ]);
            let put = PutRequest::builder().set_item(Some(item)).build()?;
            requests.push(WriteRequest::builder().put_request(put).build());
        }
        let mut pending = Some(requests);
        while let Some(requests) = pending.take().filter(|r| !r.is_empty()) {
            let out = dynamodb
                .batch_write_item()
                .request_items(&stack.table, requests)
                .send()
                .await?;
            pending = out
                .unprocessed_items
                .and_then(|mut u| u.remove(&stack.table));
        }
    }
    println!("  written in {:.0} s", started.elapsed().as_secs_f64());
    // 1% of the catalogue sells (through the order function's own code).
    let orders = (0..CHANGED).map(|k| {
        let deps = deps.clone();
        let sku = sku_of(k * 100);
        async move {
            let channel = ["shopify", "walmart", "ebay"][k % 3];
            let detail = json!({"event_id": format!("bench-order-{k}"), "occurred_at": chrono::Utc::now().to_rfc3339(),
                "order_id": format!("BO-{k}"), "channel": channel, "lines": [{"sku": sku, "quantity": 2}]});
            stockguard_handlers::apply_inbound(&deps, "marketplace.bench", "OrderPlaced", &detail)
                .await
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("{e}"))
        }
    });
    let applied: Vec<Result<()>> = futures::StreamExt::collect(
        futures::StreamExt::buffer_unordered(futures::stream::iter(orders), 16),
    )
    .await;
    applied.into_iter().collect::<Result<()>>()?;
    let counter = RequestCounter::new();
    let clients = AwsClients::with_interceptors(
        config,
        &[SharedInterceptor::new(counter.tagged("recompute"))],
    );
    let counted = Deps::from_clients(clients, &stack.table, &stack.bus, None, Settings::default());
    let recompute = BufferRecompute::new(counted, DEFAULT_RECONCILE_INTERVAL_MS);
    let now = stockguard_handlers::deps::now_ms();
    for (label, at) in [
        ("1% of SKUs changed", now),
        ("the same, one run later", now + 60_000),
        ("every SKU quiet (days later)", now + 10 * 86_400_000),
        ("quiet, the next run", now + 10 * 86_400_000 + 60_000),
    ] {
        let before = counter.snapshot();
        let t = Instant::now();
        let report = recompute.run(at).await;
        let took = t.elapsed();
        anyhow::ensure!(
            report.errors.is_empty(),
            "recompute failed: {:?}",
            report.errors
        );
        let counted = counted_between(&before, &counter.snapshot());
        let usage = Usage::from_requests(&counted);
        println!(
            "  {label}: {:.0} ms, {} SKUs read, {} buffers moved, {} left the active list; ${:.6} of DynamoDB",
            ms(took),
            report.skus_recomputed,
            report.buffers_changed,
            report.deactivated,
            usage.dollars()
        );
        for (key, t) in &counted {
            println!(
                "      {:<10} {:<16} {:>6} requests {:>7} items",
                key.service, key.operation, t.requests, t.items
            );
        }
    }
    Ok(())
}

fn memory_mb(spec: &StackSpec, function: &str) -> Result<u32> {
    spec.functions
        .iter()
        .find(|f| f.logical_id == function)
        .map(|f| f.memory_mb)
        .with_context(|| format!("{function} is not in the template"))
}

/// AWS requests of the functions `of` selects, per `unit`, by service and operation.
fn print_requests_per(
    unit: &str,
    units: usize,
    counted: &BTreeMap<RequestKey, Tally>,
    of: impl Fn(&str) -> bool,
) {
    let mut by_op: BTreeMap<(String, String), Tally> = BTreeMap::new();
    for (key, t) in counted.iter().filter(|(k, _)| of(&k.function)) {
        let cell = by_op
            .entry((key.service.clone(), key.operation.clone()))
            .or_default();
        cell.requests += t.requests;
        cell.items += t.items;
    }
    let total: u64 = by_op.values().map(|t| t.requests).sum();
    let per = |n: u64| n as f64 / units.max(1) as f64;
    println!("AWS requests per {unit}: {:.2} over {units}", per(total));
    for ((service, op), t) in &by_op {
        println!(
            "  {service:<12} {op:<20} {:>6.2} requests, {:>6.2} items",
            per(t.requests),
            per(t.items)
        );
    }
}

/// `StockReceived` of `quantity` for every SKU, applied straight to state.
/// Orders placed on each fake channel, through that channel's own protocol (Shopify webhooks,
/// Amazon notifications on their queue, Walmart's and eBay's orders APIs polled), to the
/// position changing in the state: p50 and p95 per channel. One order at a time, each at a
/// random moment of the poll interval.
async fn order_figures(config: &aws_config::SdkConfig, spec: &StackSpec) -> Result<()> {
    const ORDERS: usize = 15;
    const POLL_EVERY: Duration = Duration::from_secs(5);
    let stack = provision(config, spec, "bench-orders-", "bench-orders-bus").await?;
    let deps = Deps::new(config, &stack.table, &stack.bus, None, Settings::default());
    let amazon_queue = stack.queue("AmazonNotificationsQueue")?.url.clone();
    let (notifications, _feed) = amazon_notification_feed(config, &amazon_queue);
    let fakes =
        FakeChannels::start(FakeOptions::default().with_notification_sink(notifications)).await?;
    configure_fake_channels(
        config,
        &deps.store,
        "bench-orders-",
        &fakes,
        static_buffers(BufferPolicy::default()),
    )
    .await?;
    let skus: Vec<Sku> = KINDS
        .iter()
        .map(|k| Sku::parse(&format!("ORDERS-{}", k.to_uppercase())).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    map_on_fakes(&deps.store, &fakes, &skus).await?;
    let options = RuntimeOptions {
        api_addr: Some("127.0.0.1:0".parse()?),
        order_poll_interval: POLL_EVERY,
        ..Default::default()
    };
    let rt = LocalRuntime::start(config, spec, &stack, options).await?;
    send_shopify_webhooks(
        &fakes,
        &format!("http://{}", rt.api_addr.context("API address")?),
    );
    receive_stock(&deps, &skus, "bench-orders", 1000).await?;
    println!(
        "order on a fake channel -> position changed, {ORDERS} orders per channel one at a time, at random moments (Walmart and eBay polled every {} s here; deployed, every 60 s)",
        POLL_EVERY.as_secs()
    );
    for (kind, sku) in KINDS.iter().zip(&skus) {
        let key = listing_key(kind, sku.as_str());
        let mut times = Vec::new();
        for _ in 0..ORDERS {
            // Buyers come at random moments, not just after a poll (which would make every
            // polled order wait a whole interval).
            let jitter = rand::random::<u64>() % POLL_EVERY.as_millis() as u64;
            tokio::time::sleep(Duration::from_millis(jitter)).await;
            // Shows enough whatever the sync pushed meanwhile.
            fake(&fakes, kind).set_shown(&key, 1000);
            let before = deps.store.position(sku).await?.hard_reserved;
            let start = Instant::now();
            fake(&fakes, kind).place_order(&OrderRequest::new([(key.as_str(), 1)]))?;
            loop {
                if deps.store.position(sku).await?.hard_reserved > before {
                    break;
                }
                if start.elapsed() > Duration::from_secs(120) {
                    bail!("a {kind} order did not reach the state in 120 s");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            times.push(start.elapsed());
        }
        times.sort();
        println!(
            "  {kind:<8} p50 {:>8.0} ms   p95 {:>8.0} ms   (min {:.0}, max {:.0})",
            ms(times[ORDERS / 2]),
            ms(times[(ORDERS * 95).div_ceil(100) - 1]),
            ms(times[0]),
            ms(times[ORDERS - 1])
        );
    }
    drop(rt);
    Ok(())
}

async fn receive_stock(deps: &Deps, skus: &[Sku], prefix: &str, quantity: i64) -> Result<()> {
    for sku in skus {
        let detail = json!({"event_id": format!("{prefix}-{sku}"), "occurred_at": chrono::Utc::now().to_rfc3339(), "sku": sku, "quantity": quantity});
        stockguard_handlers::apply_inbound(deps, "bench.erp", "StockReceived", &detail)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    Ok(())
}

async fn wait_drained(sqs: &aws_sdk_sqs::Client, stack: &stockguard_local::Stack) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(600);
    while Instant::now() < deadline {
        let mut depth = 0;
        for (name, q) in &stack.queues {
            if name.ends_with("Queue") {
                depth += queue_depth(sqs, &q.url).await?;
            }
        }
        if depth == 0 {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    bail!("queues did not drain in 10 minutes")
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
