//! The local flash-sale demo: the whole stack on one machine (emulator, every function hosted
//! in-process, the four fake channels) and the same flash sale played twice, each time on its own
//! freshly provisioned stack: first with zero buffers on every channel (static mode), then with
//! dynamic buffers (contract section 5). Every shopper decision comes from a seeded random
//! stream, one per worker, so both runs see the same sale. Each run gets the detailed report;
//! a final table sets the two side by side with the measures of contract section 7 (oversells,
//! lost sales, held-back share). Exits non-zero if an invariant broke in either run.

use std::collections::{BTreeMap, HashMap};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use stockguard_adapters::buffer_store::{BufferInputs, StoredHealth};
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::buffer::AppliedBuffer;
use stockguard_domain::channel::BufferPolicy;
use stockguard_domain::{ChannelKind, ChannelName, Sku};
use stockguard_fake_channels::{FakeChannels, FakeOptions, OrderError, OrderLine, OrderRequest};
use stockguard_handlers::{Deps, Settings, reconcile};
use stockguard_local::fake_wiring::{
    KINDS, amazon_notification_feed, configure_fake_channels, fake, listing_key, map_on_fakes,
    send_shopify_webhooks, static_buffers,
};
use stockguard_local::tap::{EventTap, put_event, queue_depth};
use stockguard_local::{LocalRuntime, RuntimeOptions, ScheduledTally, StackSpec, provision};

const SKUS: [(&str, i64); 5] = [
    ("SNEAKER-RED-42", 12),
    ("SNEAKER-RED-43", 8),
    ("HOODIE-BLK-M", 6),
    ("CAP-LOGO", 20),
    ("WATCH-LTD", 4),
];
const CHECKOUTS: usize = 120;
const MARKETPLACE_ORDERS: usize = 30;
/// The channels whose own buyers place orders in the sale (Shopify only shows stock here).
const MARKETPLACES: [&str; 3] = ["amazon", "walmart", "ebay"];
/// Amazon shows a push only after processing; minutes in reality, scaled down for the demo.
const AMAZON_DELAY_MS: u64 = 2_000;
/// The demo runs time 150 times faster than a real sale: Amazon's 5 minutes of processing take
/// 2 s, and so the sales-rate horizons that buffers are sized from shrink by as much (15 minutes
/// to 6 s, 24 hours to 9.6 minutes). Without that, two seconds of lag would meet rates averaged
/// over a quarter of an hour, a proportion no real channel has.
const TIME_COMPRESSION: f64 = 150.0;
const CHECKOUT_TTL_SECONDS: u64 = 3;
const CHECKOUT_WORKERS: usize = 6;
/// Every schedule (expiry sweep, reconciliation, buffer recompute) fires this often here.
const SCHEDULE_INTERVAL: Duration = Duration::from_secs(2);
const DEFAULT_SEED: u64 = 20_240_611;
const SEED_ENV: &str = "STOCKGUARD_DEMO_SEED";
/// How late reconciliation assumes a marketplace order may reach stockguard.
const ORDER_GRACE_ENV: &str = "STOCKGUARD_ORDER_GRACE_MS";
/// Stock arrives SKU by SKU, this far apart, so Amazon's pushes land in separate sync batches
/// and each leaves a read-back probe that measures Amazon's processing delay.
const RECEIVE_PAUSE: Duration = Duration::from_millis(300);
/// Below this many read-backs the recompute uses Amazon's documented prior (15 minutes).
const AMAZON_SAMPLES_WANTED: u64 = 5;
const AMAZON_SAMPLES_WAIT: Duration = Duration::from_secs(20);
const SURGE_STRENGTH: f64 = 10.0;
/// Before the sale every SKU sells a unit on each of these: its baseline, which a signal multiplies.
const BASELINE_ORDERS: [&str; 2] = ["walmart", "ebay"];
const SURGE_SECONDS: i64 = 60;
const SAMPLE_EVERY: Duration = Duration::from_millis(250);

/// One storefront checkout, decided before the sale.
#[derive(Debug, Clone)]
struct Checkout {
    index: usize,
    pause_ms: u64,
    /// (SKU, quantity), distinct SKUs.
    lines: Vec<(&'static str, i64)>,
    /// 0..100: confirm below 55, abandon below 75, walk away otherwise (and come back late
    /// from 92).
    roll: u32,
}

/// One marketplace buyer's order, decided before the sale.
#[derive(Debug, Clone)]
struct MarketOrder {
    index: usize,
    pause_ms: u64,
    kind: &'static str,
    sku_index: usize,
    quantity: i64,
}

/// Every random decision of the sale, drawn from the seed: one stream per checkout worker and one
/// for the marketplace buyers, so that both runs replay exactly the same shoppers.
#[derive(Debug, Clone)]
struct SalePlan {
    workers: Vec<Vec<Checkout>>,
    marketplace: Vec<MarketOrder>,
}

/// The seed of stream `stream`: far apart for neighbouring streams.
fn stream_rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ (stream + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

impl SalePlan {
    fn new(seed: u64) -> Self {
        let workers = (0..CHECKOUT_WORKERS)
            .map(|w| {
                let mut rng = stream_rng(seed, w as u64);
                (w..CHECKOUTS)
                    .step_by(CHECKOUT_WORKERS)
                    .map(|index| {
                        // Shoppers arrive over the sale, not all in the same millisecond.
                        let pause_ms = rng.random_range(50..250);
                        let n = rng.random_range(1..=2);
                        let mut lines: Vec<(&'static str, i64)> = Vec::new();
                        while lines.len() < n {
                            let (sku, _) = SKUS[rng.random_range(0..SKUS.len())];
                            let quantity = rng.random_range(1..=2);
                            if !lines.iter().any(|(s, _)| *s == sku) {
                                lines.push((sku, quantity));
                            }
                        }
                        let roll = rng.random_range(0..100);
                        Checkout {
                            index,
                            pause_ms,
                            lines,
                            roll,
                        }
                    })
                    .collect()
            })
            .collect();
        let mut rng = stream_rng(seed, CHECKOUT_WORKERS as u64);
        let marketplace = (0..MARKETPLACE_ORDERS)
            .map(|index| MarketOrder {
                index,
                pause_ms: rng.random_range(100..400),
                kind: MARKETPLACES[rng.random_range(0..MARKETPLACES.len())],
                sku_index: rng.random_range(0..SKUS.len()),
                quantity: 1,
            })
            .collect();
        Self {
            workers,
            marketplace,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// Static mode, `BufferPolicy::default()` (0 units, 0 %) on every channel.
    ZeroBuffers,
    /// The default mode with the default dynamic policy.
    Dynamic,
}

impl Mode {
    fn title(self) -> &'static str {
        match self {
            Mode::ZeroBuffers => "zero buffers (static mode, 0 units + 0 % on every channel)",
            Mode::Dynamic => "dynamic buffers (the default mode and policy on every channel)",
        }
    }
    fn short(self) -> &'static str {
        match self {
            Mode::ZeroBuffers => "zero buffers",
            Mode::Dynamic => "dynamic buffers",
        }
    }
    fn prefix(self) -> &'static str {
        match self {
            Mode::ZeroBuffers => "demo-zero-",
            Mode::Dynamic => "demo-dynamic-",
        }
    }
    fn customise(self) -> Box<dyn Fn(&mut ChannelSettings)> {
        match self {
            Mode::ZeroBuffers => Box::new(static_buffers(BufferPolicy::default())),
            Mode::Dynamic => Box::new(|_: &mut ChannelSettings| {}),
        }
    }
}

#[derive(Default)]
struct Tally {
    held: AtomicUsize,
    rejected: AtomicUsize,
    confirmed: AtomicUsize,
    confirmed_units: AtomicUsize,
    abandoned: AtomicUsize,
    walked_away: AtomicUsize,
    late_retaken: AtomicUsize,
    late_refused: AtomicUsize,
    attempts: AtomicUsize,
}

fn add(a: &AtomicUsize, n: usize) {
    a.fetch_add(n, Ordering::Relaxed);
}
fn get(a: &AtomicUsize) -> usize {
    a.load(Ordering::Relaxed)
}

/// What the marketplace buyers got.
#[derive(Default)]
struct Market {
    taken: Vec<Taken>,
    refused: Vec<Refusal>,
}

/// An order a channel took, with what the state said right after the channel took it (before
/// the order itself reached the state, most of the time).
struct Taken {
    kind: &'static str,
    order_id: String,
    /// Into the sale.
    at: Duration,
    /// What the channel showed just before.
    shown: Option<i64>,
    available: Option<i64>,
    /// The channel's buffer for the SKU by the state then.
    buffer: Option<i64>,
}

/// An order a channel refused because it showed too few units.
struct Refusal {
    kind: &'static str,
    order_id: String,
    sku: &'static str,
    quantity: i64,
    shown: Option<i64>,
    /// The true `available` read from the state right after the refusal.
    available: Option<i64>,
}

impl Refusal {
    /// Contract section 7: refused while the true `available` covered the order.
    fn is_lost_sale(&self) -> bool {
        self.available.is_some_and(|a| a >= self.quantity)
    }
}

/// Buffer·time and available·time over the sale (contract section 7's held-back share).
#[derive(Default)]
struct HeldBack {
    /// Per channel: Σ buffer·dt (unit·ms) over SKUs with `available > 0`.
    buffer_unit_ms: BTreeMap<&'static str, f64>,
    /// Σ available·dt (unit·ms) over SKUs with `available > 0`: the same for every channel.
    available_unit_ms: f64,
    /// Per channel: the largest buffer seen on any SKU.
    peak: BTreeMap<&'static str, i64>,
    samples: usize,
    failed_reads: usize,
}

impl HeldBack {
    /// `100 × Σ buffer·dt ÷ Σ available·dt` over every SKU and channel while `available > 0`.
    fn percent(&self) -> Option<f64> {
        let denominator = self.available_unit_ms * KINDS.len() as f64;
        (denominator > 0.0).then(|| 100.0 * self.buffer_unit_ms.values().sum::<f64>() / denominator)
    }
    fn channel_percent(&self, kind: &str) -> Option<f64> {
        (self.available_unit_ms > 0.0).then(|| {
            100.0 * self.buffer_unit_ms.get(kind).copied().unwrap_or(0.0) / self.available_unit_ms
        })
    }
}

/// The measures of one run, for the side-by-side table.
struct Outcome {
    mode: Mode,
    oversells: usize,
    oversold_units: i64,
    lost_sales: usize,
    lost_units: i64,
    orders_taken: usize,
    held_back: Option<f64>,
    /// Reconciliation's pushes that raised what a channel showed.
    repaired_upward: i64,
    invariants_held: bool,
}

fn main() -> ExitCode {
    // Orders reach stockguard within a poll or two (2 s here, a minute in AWS): reconciliation
    // holds back pushing a channel up for as long. Set before any thread exists.
    if std::env::var_os(ORDER_GRACE_ENV).is_none() {
        let grace = 2 * SCHEDULE_INTERVAL.as_millis();
        // SAFETY: no other thread runs yet.
        unsafe { std::env::set_var(ORDER_GRACE_ENV, grace.to_string()) };
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .expect("tokio runtime");
    match runtime.block_on(run()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("demo failed: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run() -> Result<bool> {
    std::env::var("AWS_ENDPOINT_URL").context("AWS_ENDPOINT_URL is not set: run `make demo`")?;
    let seed = match std::env::var(SEED_ENV) {
        Ok(raw) => raw
            .trim()
            .parse()
            .with_context(|| format!("{SEED_ENV} is not a number: {raw}"))?,
        Err(_) => DEFAULT_SEED,
    };
    let started = Instant::now();
    println!(
        "stockguard demo: the same flash sale twice, with zero buffers and with dynamic buffers\n"
    );
    let units: i64 = SKUS.iter().map(|(_, q)| q).sum();
    println!(
        "The sale: {CHECKOUTS} storefront checkouts ({CHECKOUT_WORKERS} shoppers at a time) race {MARKETPLACE_ORDERS} marketplace orders \
         on amazon, walmart and ebay for {} SKUs, {units} units in all. Amazon shows a push {} s after acknowledging it. \
         Time runs {TIME_COMPRESSION} times faster than in a real sale (Amazon's 5 minutes take 2 s), and so do the \
         sales-rate horizons the buffers are sized from (15 minutes become 6 s).",
        SKUS.len(),
        AMAZON_DELAY_MS / 1000
    );
    println!(
        "Seed {seed} ({SEED_ENV} overrides it): every shopper decision (checkout lines, pauses, confirm/abandon rolls, \
         marketplace channel, SKU and timing) comes from it, one random stream per worker, so both runs see the same \
         shoppers. Wall-clock timing still differs a little between the runs (HTTP and emulator latency), so a \
         decision can meet a slightly different state."
    );
    println!(
        "Every schedule fires every {} s here (the expiry sweep, reconciliation, the buffer recompute, and the Walmart and \
         eBay order polls; in AWS these are 1, 15, 5 and 1 minutes). Marketplace orders reach stockguard as each \
         marketplace sends them: Amazon's SP-API notifications, Walmart's and eBay's orders APIs, read by the polls. \
         Reconciliation leaves an Amazon listing alone for {} s after an acknowledged \
         push (Amazon may still be processing it), so within this demo it does not check Amazon. It pushes a \
         channel that shows fewer units than it should back up only when a later run, at least {:.0} s on, finds it \
         showing the same: until then the difference may be an order not heard of yet.\n",
        SCHEDULE_INTERVAL.as_secs(),
        reconcile::processing_window(ChannelKind::Amazon).as_secs(),
        reconcile::order_grace(ChannelKind::Walmart).as_secs_f64()
    );
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let spec = StackSpec::load_default()?;
    let plan = SalePlan::new(seed);

    let mut outcomes = Vec::new();
    for (n, mode) in [Mode::ZeroBuffers, Mode::Dynamic].into_iter().enumerate() {
        println!(
            "\n################ run {} of 2: {} ################\n",
            n + 1,
            mode.title()
        );
        outcomes.push(run_sale(&config, &spec, &plan, mode).await?);
    }
    Ok(compare(&outcomes, seed, started))
}

/// Provisions a fresh stack, plays the sale on it and reports.
async fn run_sale(
    config: &aws_config::SdkConfig,
    spec: &StackSpec,
    plan: &SalePlan,
    mode: Mode,
) -> Result<Outcome> {
    let started = Instant::now();
    let prefix = mode.prefix();
    step(&format!(
        "provisioning template.yaml's table, bus, rules and queues in the emulator (prefix {prefix})"
    ));
    let stack = provision(config, spec, prefix, &format!("{prefix}bus")).await?;
    let tap = EventTap::create(config, &stack.bus, &format!("{prefix}tap")).await?;
    let deps = Deps::new(config, &stack.table, &stack.bus, None, Settings::default());
    let events = aws_sdk_eventbridge::Client::new(config);

    step("starting the four fake channels (Amazon shows pushes after a 2 s processing delay)");
    // Marketplace orders reach stockguard as each marketplace sends them: Amazon's SP-API
    // notifications on their queue, Shopify's webhooks, Walmart's and eBay's orders APIs polled.
    let amazon_queue = stack.queue("AmazonNotificationsQueue")?.url.clone();
    let (notifications, notification_feed) = amazon_notification_feed(config, &amazon_queue);
    let fakes =
        FakeChannels::start(FakeOptions::default().with_notification_sink(notifications)).await?;
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = AMAZON_DELAY_MS);
    configure_fake_channels(config, &deps.store, prefix, &fakes, mode.customise()).await?;
    let skus: Vec<Sku> = SKUS
        .iter()
        .map(|(s, _)| Sku::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    map_on_fakes(&deps.store, &fakes, &skus).await?;

    step("starting the functions in-process and the reservations API on 127.0.0.1");
    let options = RuntimeOptions {
        api_addr: Some("127.0.0.1:0".parse()?),
        // The expiry sweep runs every minute in AWS, the buffer recompute every 5: here every 2 s.
        schedule_interval: Some(SCHEDULE_INTERVAL),
        rate_horizon_compression: TIME_COMPRESSION,
        ..Default::default()
    };
    let runtime = LocalRuntime::start(config, spec, &stack, options).await?;
    let api = format!("http://{}", runtime.api_addr.context("API address")?);
    send_shopify_webhooks(&fakes, &api);

    step(&format!(
        "receiving stock from the ERP, one SKU every {} ms (separate sync batches for Amazon to read back)",
        RECEIVE_PAUSE.as_millis()
    ));
    for (i, (sku, q)) in SKUS.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(RECEIVE_PAUSE).await;
        }
        put_event(&events, &stack.bus, "erp.netsuite", "StockReceived", &json!({"event_id": format!("po-{i}"), "occurred_at": now(), "sku": sku, "quantity": q + BASELINE_ORDERS.len() as i64})).await?;
    }
    wait_until_quiet(&deps, &stack, &fakes, &skus, Duration::from_secs(30)).await?;
    step(&format!(
        "ordinary sales before the sale: one unit of every SKU on {}, which gives each SKU its baseline rate",
        BASELINE_ORDERS.join(" and ")
    ));
    let mut baseline = Vec::new();
    for (sku, _) in SKUS {
        for channel in BASELINE_ORDERS {
            let placed = fake(&fakes, channel)
                .place_order(&OrderRequest::new([(listing_key(channel, sku), 1)]))
                .with_context(|| format!("the baseline order of {sku} on {channel}"))?;
            baseline.push(placed["order_id"].as_str().unwrap_or_default().to_owned());
        }
    }
    // The pollers read them within a schedule interval.
    await_orders_applied(&deps, &baseline, Duration::from_secs(30)).await?;
    wait_until_quiet(&deps, &stack, &fakes, &skus, Duration::from_secs(30)).await?;
    for (sku, q) in SKUS {
        println!("    {sku:<16} {q:>3} units, shown on every channel");
    }
    step(&format!(
        "waiting (at most {} s) for Amazon's delay to be measured by read-back ({AMAZON_SAMPLES_WANTED} samples)",
        AMAZON_SAMPLES_WAIT.as_secs()
    ));
    let waited = Instant::now();
    let health = wait_for_amazon_samples(&deps).await?;
    print_health(&health, waited.elapsed());
    let overrides = read_overrides(&deps, &skus).await?;

    step(&format!(
        "flash sale: the storefront's analytics signal an add-to-cart surge (strength {SURGE_STRENGTH}, {SURGE_SECONDS} s) \
         on every SKU; {CHECKOUTS} storefront checkouts race {MARKETPLACE_ORDERS} marketplace orders"
    ));
    let sale_started = Instant::now();
    let expires_at = (chrono::Utc::now() + chrono::Duration::seconds(SURGE_SECONDS))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    for (sku, _) in SKUS {
        put_event(&events, &stack.bus, "storefront.analytics", "DemandSignal", &json!({"event_id": format!("surge-{sku}"), "occurred_at": now(), "sku": sku, "signal": "add_to_cart_surge", "strength": SURGE_STRENGTH, "expires_at": expires_at})).await?;
    }
    let tally = Arc::new(Tally::default());
    let client = reqwest::Client::new();
    let checkouts = {
        let (tally, api, client) = (tally.clone(), api.clone(), client.clone());
        let workers = plan.workers.clone();
        tokio::spawn(async move { run_checkouts(&client, &api, &tally, workers).await })
    };
    let marketplace = run_marketplace(&deps, &fakes, &skus, &overrides, &plan.marketplace);
    let restock = async {
        tokio::time::sleep(Duration::from_secs(4)).await;
        let _ = put_event(&events, &stack.bus, "erp.netsuite", "StockReceived", &json!({"event_id": "po-restock-1", "occurred_at": now(), "sku": "WATCH-LTD", "quantity": 3})).await;
        let _ = put_event(&events, &stack.bus, "wms.main", "ReturnReceived", &json!({"event_id": "ret-1", "occurred_at": now(), "return_id": "RMA-1", "sku": "HOODIE-BLK-M", "quantity": 1, "restock": true})).await;
    };
    let progress = {
        let tally = tally.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                println!(
                    "    checkouts {:>3}/{CHECKOUTS}: {} held, {} rejected, {} confirmed",
                    get(&tally.attempts),
                    get(&tally.held),
                    get(&tally.rejected),
                    get(&tally.confirmed)
                );
            }
        })
    };
    let sale_over = AtomicBool::new(false);
    let sale = async {
        let out = tokio::join!(checkouts, marketplace, restock);
        sale_over.store(true, Ordering::SeqCst);
        out
    };
    let ((latencies, market, _), held_back) =
        tokio::join!(sale, sample_held_back(&deps, &skus, &overrides, &sale_over));
    let mut latencies = latencies?;
    let market = market?;
    progress.abort();
    let sale_took = sale_started.elapsed();

    step("waiting for every queue to drain and every channel to settle");
    // Let walked-away reservations lapse and Amazon finish processing.
    tokio::time::sleep(Duration::from_millis(AMAZON_DELAY_MS)).await;
    wait_until_quiet(&deps, &stack, &fakes, &skus, Duration::from_secs(60)).await?;
    let taken: Vec<String> = market.taken.iter().map(|t| t.order_id.clone()).collect();
    await_orders_applied(&deps, &taken, Duration::from_secs(30)).await?;
    wait_until_quiet(&deps, &stack, &fakes, &skus, Duration::from_secs(30)).await?;
    let published = tap.drain(Duration::from_millis(500)).await?;
    notification_feed.abort();
    let reconciliations = runtime.scheduled.tally("ReconcileChannelsFunction");

    let outcome = report(Report {
        mode,
        deps: &deps,
        stack: &stack,
        fakes: &fakes,
        skus: &skus,
        tally: &tally,
        market: &market,
        held_back: &held_back,
        published: &published,
        reconciliations: &reconciliations,
        latencies: &mut latencies,
        sale_took,
        started,
    })
    .await?;
    drop(runtime);
    Ok(outcome)
}

fn step(what: &str) {
    println!("==> {what}");
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Waits until the recompute has stored an Amazon health with enough read-back samples; returns
/// every channel's stored health as it stands then.
async fn wait_for_amazon_samples(deps: &Deps) -> Result<HashMap<ChannelName, StoredHealth>> {
    let amazon = ChannelName::parse("amazon").map_err(anyhow::Error::msg)?;
    let deadline = Instant::now() + AMAZON_SAMPLES_WAIT;
    loop {
        let (_, health) = deps.store.channels_and_health().await?;
        let samples = health.get(&amazon).map_or(0, |h| h.health.samples);
        if samples >= AMAZON_SAMPLES_WANTED || Instant::now() > deadline {
            return Ok(health);
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn print_health(health: &HashMap<ChannelName, StoredHealth>, waited: Duration) {
    println!(
        "    after {:.1} s, the channels' delay as the recompute last stored it:",
        waited.as_secs_f64()
    );
    for kind in KINDS {
        match ChannelName::parse(kind).ok().and_then(|n| health.get(&n)) {
            Some(h) => println!(
                "    {kind:<9} p95 {:>6} ms from {:>2} samples{}",
                h.effective_delay_ms,
                h.health.samples,
                if h.health.samples < AMAZON_SAMPLES_WANTED {
                    " (too few: the documented prior)"
                } else {
                    ""
                }
            ),
            None => println!("    {kind:<9} nothing assessed yet (the documented prior applies)"),
        }
    }
}

/// Storefront checkouts through the HTTP API, as planned: most confirm, some are abandoned, some
/// walk away and let their reservation expire (a third of those come back late and try to
/// confirm).
async fn run_checkouts(
    client: &reqwest::Client,
    api: &str,
    tally: &Arc<Tally>,
    plan: Vec<Vec<Checkout>>,
) -> Vec<Duration> {
    let workers = plan.into_iter().map(|checkouts| {
        let (client, api, tally) = (client.clone(), api.to_owned(), tally.clone());
        tokio::spawn(async move {
            let mut latencies = Vec::new();
            for Checkout {
                index: i,
                pause_ms,
                lines,
                roll,
            } in checkouts
            {
                tokio::time::sleep(Duration::from_millis(pause_ms)).await;
                let lines: Vec<Value> = lines
                    .iter()
                    .map(|(sku, quantity)| json!({"sku": sku, "quantity": quantity}))
                    .collect();
                let id = format!("web-{i}");
                let t = Instant::now();
                let body = json!({"reservation_id": id, "channel": "storefront", "lines": lines, "ttl_seconds": CHECKOUT_TTL_SECONDS});
                let status = client.post(format!("{api}/v1/reservations")).json(&body).send().await.map(|r| r.status().as_u16()).unwrap_or(0);
                latencies.push(t.elapsed());
                add(&tally.attempts, 1);
                if status != 201 {
                    add(&tally.rejected, 1);
                    continue;
                }
                add(&tally.held, 1);
                tokio::time::sleep(Duration::from_millis(200)).await;
                let units: i64 = lines.iter().filter_map(|l| l["quantity"].as_i64()).sum();
                if roll < 55 {
                    let r = client.post(format!("{api}/v1/reservations/{id}/confirm")).json(&json!({"order_id": format!("WEB-{i}")})).send().await;
                    if r.is_ok_and(|r| r.status().as_u16() == 200) {
                        add(&tally.confirmed, 1);
                        add(&tally.confirmed_units, units as usize);
                    }
                } else if roll < 75 {
                    let _ = client.delete(format!("{api}/v1/reservations/{id}")).send().await;
                    add(&tally.abandoned, 1);
                } else {
                    add(&tally.walked_away, 1);
                    if roll >= 92 {
                        // Comes back after the reservation lapsed.
                        let (client, api, tally) = (client.clone(), api.clone(), tally.clone());
                        tokio::spawn(async move {
                            tokio::time::sleep(Duration::from_secs(CHECKOUT_TTL_SECONDS + 1)).await;
                            let r = client.post(format!("{api}/v1/reservations/{id}/confirm")).json(&json!({"order_id": format!("WEB-{i}")})).send().await;
                            match r.map(|r| r.status().as_u16()) {
                                Ok(200) => {
                                    add(&tally.late_retaken, 1);
                                    add(&tally.confirmed_units, units as usize);
                                }
                                _ => add(&tally.late_refused, 1),
                            }
                        });
                    }
                }
            }
            latencies
        })
    });
    let mut all = Vec::new();
    for w in futures::future::join_all(workers).await {
        all.extend(w.unwrap_or_default());
    }
    // Late confirmations finish after the last worker.
    tokio::time::sleep(Duration::from_secs(CHECKOUT_TTL_SECONDS + 2)).await;
    all
}

/// Marketplace buyers, as planned. A channel takes an order only if it shows enough units; when
/// it refuses, the true `available` is read from the state at once, to tell an oversell prevented
/// from a lost sale.
async fn run_marketplace(
    deps: &Deps,
    fakes: &FakeChannels,
    skus: &[Sku],
    overrides: &Overrides,
    plan: &[MarketOrder],
) -> Result<Market> {
    let started = Instant::now();
    let mut market = Market::default();
    for o in plan {
        tokio::time::sleep(Duration::from_millis(o.pause_ms)).await;
        let (sku, _) = SKUS[o.sku_index];
        // The channel names the order; a refused one keeps this label in the report.
        let mut order_id = format!("{}-{}", o.kind, o.index);
        let order = OrderRequest {
            order_id: None,
            lines: vec![OrderLine {
                listing_key: listing_key(o.kind, sku),
                quantity: o.quantity,
            }],
        };
        let channel = fake(fakes, o.kind);
        let shown = channel.shown(&listing_key(o.kind, sku));
        match channel.place_order(&order) {
            Ok(placed) => {
                if let Some(id) = placed["order_id"].as_str() {
                    order_id = id.to_owned();
                }
                let at = started.elapsed();
                let sku = &skus[o.sku_index];
                let state = BufferState::read(deps, std::slice::from_ref(sku))
                    .await
                    .ok();
                market.taken.push(Taken {
                    kind: o.kind,
                    order_id,
                    at,
                    shown,
                    available: state.as_ref().map(|s| s.available(sku)),
                    buffer: state
                        .as_ref()
                        .and_then(|s| s.applied(overrides, o.kind, sku))
                        .map(|a| a.buffer),
                });
            }
            Err(e) => {
                let available = deps
                    .store
                    .positions(std::slice::from_ref(&skus[o.sku_index]))
                    .await
                    .ok()
                    .and_then(|p| p.get(&skus[o.sku_index]).map(|p| p.available()));
                let shown = match e {
                    OrderError::NotEnoughShown { shown, .. } => Some(shown),
                    _ => None,
                };
                market.refused.push(Refusal {
                    kind: o.kind,
                    order_id,
                    sku,
                    quantity: o.quantity,
                    shown,
                    available,
                });
            }
        }
    }
    Ok(market)
}

/// Static buffer overrides per channel and SKU (the demo sets none; read so that the rule below
/// is the sync's own).
type Overrides = HashMap<String, HashMap<Sku, BufferPolicy>>;

async fn read_overrides(deps: &Deps, skus: &[Sku]) -> Result<Overrides> {
    let mut out = HashMap::new();
    for kind in KINDS {
        let name = ChannelName::parse(kind).map_err(anyhow::Error::msg)?;
        out.insert(
            kind.to_owned(),
            deps.store.buffer_overrides(&name, skus).await?,
        );
    }
    Ok(out)
}

/// What the state says about buffers at one moment: channel settings and health, and per SKU
/// the position and the stored dynamic buffers.
struct BufferState {
    settings: HashMap<String, ChannelSettings>,
    health: HashMap<ChannelName, StoredHealth>,
    inputs: HashMap<Sku, BufferInputs>,
}

impl BufferState {
    async fn read(deps: &Deps, skus: &[Sku]) -> Result<Self> {
        let (settings, health) = deps.store.channels_and_health().await?;
        let inputs = deps.store.buffer_inputs(skus).await?;
        Ok(Self {
            settings: settings
                .into_iter()
                .filter(|s| s.enabled)
                .map(|s| (s.name.to_string(), s))
                .collect(),
            health,
            inputs,
        })
    }

    fn available(&self, sku: &Sku) -> i64 {
        self.inputs.get(sku).map_or(0, |i| i.position.available())
    }

    /// The channel's buffer and shown quantity for `sku`, by the sync's own rule.
    fn applied(&self, overrides: &Overrides, kind: &str, sku: &Sku) -> Option<AppliedBuffer> {
        let settings = self.settings.get(kind)?;
        let input = self.inputs.get(sku)?;
        let view = settings.buffer_view(
            overrides.get(kind).and_then(|o| o.get(sku)),
            input.stored.as_ref(),
            self.health.get(&settings.name),
        );
        Some(view.apply(input.position.available()))
    }
}

/// Samples the state every `SAMPLE_EVERY` until `over`, integrating buffer·dt and
/// available·dt for SKUs with `available > 0` (each sample holds until the next).
async fn sample_held_back(
    deps: &Deps,
    skus: &[Sku],
    overrides: &Overrides,
    over: &AtomicBool,
) -> HeldBack {
    let mut held = HeldBack::default();
    let mut last: Option<(Instant, f64, BTreeMap<&'static str, f64>)> = None;
    loop {
        let finished = over.load(Ordering::SeqCst);
        let at = Instant::now();
        match BufferState::read(deps, skus).await {
            Ok(state) => {
                if let Some((t, available, buffers)) = &last {
                    let dt = at.duration_since(*t).as_secs_f64() * 1000.0;
                    held.available_unit_ms += available * dt;
                    for (kind, b) in buffers {
                        *held.buffer_unit_ms.entry(kind).or_default() += b * dt;
                    }
                }
                let mut available = 0.0;
                let mut buffers: BTreeMap<&'static str, f64> = BTreeMap::new();
                for sku in skus {
                    let a = state.available(sku);
                    if a <= 0 {
                        continue;
                    }
                    available += a as f64;
                    for kind in KINDS {
                        let b = state.applied(overrides, kind, sku).map_or(0, |x| x.buffer);
                        *buffers.entry(kind).or_default() += b as f64;
                        let peak = held.peak.entry(kind).or_default();
                        *peak = (*peak).max(b);
                    }
                }
                held.samples += 1;
                last = Some((at, available, buffers));
            }
            Err(_) => held.failed_reads += 1,
        }
        if finished {
            return held;
        }
        tokio::time::sleep(SAMPLE_EVERY.saturating_sub(at.elapsed())).await;
    }
}

/// Waits until every inbound and sync queue is empty and every channel shows what state says.
async fn wait_until_quiet(
    deps: &Deps,
    stack: &stockguard_local::Stack,
    fakes: &FakeChannels,
    skus: &[Sku],
    timeout: Duration,
) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    );
    let deadline = Instant::now() + timeout;
    loop {
        let mut busy = 0;
        for (name, q) in &stack.queues {
            if name.ends_with("Queue") {
                busy += queue_depth(&sqs, &q.url).await?;
            }
        }
        if busy == 0 && mismatches(deps, fakes, skus).await?.is_empty() {
            return Ok(());
        }
        if Instant::now() > deadline {
            return Ok(()); // the report shows what did not converge
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Waits until every order in `order_ids` (stockguard's ids) is recorded in the state: the
/// marketplaces' own protocols deliver them a little later (a poll interval for Walmart and eBay).
async fn await_orders_applied(deps: &Deps, order_ids: &[String], timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    for id in order_ids {
        let id = stockguard_domain::EntityId::parse(id).map_err(anyhow::Error::msg)?;
        while deps.store.order(&id).await?.is_none() {
            if Instant::now() > deadline {
                anyhow::bail!("order {id} did not reach the state within {timeout:?}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    Ok(())
}

/// (channel, sku, shown, expected) where a channel shows something other than what it should:
/// expected by the sync's own rule (the channel's mode, the stored dynamic buffers, its health).
async fn mismatches(
    deps: &Deps,
    fakes: &FakeChannels,
    skus: &[Sku],
) -> Result<Vec<(String, String, i64, i64)>> {
    let overrides = read_overrides(deps, skus).await?;
    let state = BufferState::read(deps, skus).await?;
    let mut out = Vec::new();
    for kind in KINDS {
        for sku in skus {
            let expected = state
                .applied(&overrides, kind, sku)
                .with_context(|| format!("channel {kind} or SKU {sku} missing"))?
                .shown;
            let shown = fake(fakes, kind)
                .shown(&listing_key(kind, sku.as_str()))
                .unwrap_or(-1);
            if shown != expected {
                out.push((kind.to_owned(), sku.to_string(), shown, expected));
            }
        }
    }
    Ok(out)
}

fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    sorted[((sorted.len() as f64 * q) as usize).min(sorted.len() - 1)]
}

fn percent(p: Option<f64>) -> String {
    p.map_or_else(|| "n/a".to_owned(), |p| format!("{p:.1} %"))
}

struct Report<'a> {
    mode: Mode,
    deps: &'a Deps,
    stack: &'a stockguard_local::Stack,
    fakes: &'a FakeChannels,
    skus: &'a [Sku],
    tally: &'a Tally,
    market: &'a Market,
    held_back: &'a HeldBack,
    published: &'a [Value],
    /// The scheduled reconciliations' answers, summed.
    reconciliations: &'a ScheduledTally,
    latencies: &'a mut [Duration],
    sale_took: Duration,
    started: Instant,
}

async fn report(r: Report<'_>) -> Result<Outcome> {
    let Report {
        mode,
        deps,
        stack,
        fakes,
        skus,
        tally,
        market,
        held_back,
        published,
        reconciliations,
        latencies,
        sale_took,
        started,
    } = r;
    let of = |t: &'static str| published.iter().filter(move |e| e["detail-type"] == t);
    let mut broken: Vec<String> = Vec::new();
    println!(
        "\n================ report: {} ================",
        mode.short()
    );

    println!("\nOrders taken per channel");
    let mut by_channel: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    by_channel.insert(
        "storefront".into(),
        (
            get(&tally.confirmed) + get(&tally.late_retaken),
            get(&tally.confirmed_units) as i64,
        ),
    );
    for (channel, (orders, units)) in count_marketplace_orders(deps, market).await {
        by_channel.insert(channel, (orders, units));
    }
    for (channel, (orders, units)) in &by_channel {
        if channel == "storefront" {
            println!("    {channel:<11} {orders:>3} checkouts confirmed, {units:>3} units");
        } else {
            println!(
                "    {channel:<11} {orders:>3} orders, {units:>3} units (as recorded in the state)"
            );
        }
    }
    let lost: Vec<&Refusal> = market.refused.iter().filter(|r| r.is_lost_sale()).collect();
    println!(
        "    marketplace orders: {} taken, {} refused because the channel showed too few: {} of them prevented an oversell, \
         {} were lost sales (the true available covered the order)",
        market.taken.len(),
        market.refused.len(),
        market.refused.len() - lost.len(),
        lost.len()
    );
    for l in &lost {
        println!(
            "      lost: {} order {} for {} x{}: the channel showed {}, available was {}",
            l.kind,
            l.order_id,
            l.sku,
            l.quantity,
            l.shown.map_or_else(|| "?".to_owned(), |s| s.to_string()),
            l.available
                .map_or_else(|| "?".to_owned(), |a| a.to_string())
        );
    }
    let unknown = market
        .refused
        .iter()
        .filter(|r| r.available.is_none())
        .count();
    if unknown > 0 {
        println!(
            "      ({unknown} refusals whose available could not be read: not counted as lost)"
        );
    }

    println!("\nCheckouts (reservations HTTP API)");
    println!(
        "    {} attempted: {} held, {} rejected for insufficient stock (nothing reserved on any line)",
        get(&tally.attempts),
        get(&tally.held),
        get(&tally.rejected)
    );
    println!(
        "    of those held: {} confirmed, {} abandoned and released, {} walked away and expired; late confirmations: \
         {} re-taken, {} refused",
        get(&tally.confirmed),
        get(&tally.abandoned),
        get(&tally.walked_away),
        get(&tally.late_retaken),
        get(&tally.late_refused)
    );
    let mut lat: Vec<i64> = latencies.iter().map(|d| d.as_millis() as i64).collect();
    lat.sort();
    println!(
        "    lapsed reservations released: {}; answer latency p50 {} ms, p95 {} ms",
        of("ReservationExpired").count(),
        percentile(&lat, 0.5),
        percentile(&lat, 0.95)
    );

    println!("\nOversells");
    let oversells: Vec<&Value> = of("OversellDetected").collect();
    let oversold_units: i64 = oversells
        .iter()
        .filter_map(|o| o["detail"]["shortfall"].as_i64())
        .sum();
    if oversells.is_empty() {
        println!("    none");
    }
    let opt = |v: Option<i64>| v.map_or_else(|| "?".to_owned(), |v| v.to_string());
    for o in &oversells {
        let d = &o["detail"];
        let order_id = d["order_id"].as_str().unwrap_or("");
        let taken = market
            .taken
            .iter()
            .find(|t| t.order_id == order_id)
            .map(|t| {
                format!(
                    " (taken {:.1} s into the sale: the channel showed {}; the state said available {}, buffer {})",
                    t.at.as_secs_f64(),
                    opt(t.shown),
                    opt(t.available),
                    opt(t.buffer)
                )
            })
            .unwrap_or_default();
        println!(
            "    {} order {order_id} on {}: short {}{taken}",
            d["sku"].as_str().unwrap_or(""),
            d["channel"].as_str().unwrap_or(""),
            d["shortfall"]
        );
    }
    if !oversells.is_empty() {
        println!(
            "    (each time the channel still showed stock whose newer, lower quantity had not reached it yet)"
        );
    }
    // Every oversell ends in a recorded compensation (OversellCompensated, from stockguard.ops).
    let compensations: Vec<&Value> = of("OversellCompensated").collect();
    for c in &compensations {
        let d = &c["detail"];
        let what = match d["action"].as_str().unwrap_or("") {
            "cancel" => "cancelled through the channel's API",
            "wait" => "waits for stock due in time",
            "restocked" => "covered by stock that arrived first",
            "notify_only" => "left to a person (the policy, or no channel could be asked)",
            other => other,
        };
        println!(
            "    compensated: {} order {} on {}, {} unit(s): {what}",
            d["sku"].as_str().unwrap_or(""),
            d["order_id"].as_str().unwrap_or(""),
            d["channel"].as_str().unwrap_or(""),
            d["units"]
        );
    }
    if compensations.len() < oversells.len() {
        broken.push(format!(
            "{}: {} oversells but {} compensations recorded",
            mode.short(),
            oversells.len(),
            compensations.len()
        ));
    }
    // A reservation never takes available below zero. Oversold orders (facts) can leave it
    // negative, and a reservation that releases lapsed holds then raises it while it stays
    // negative: what counts is that no reservation lowered it to below zero, so each change is
    // compared with the SKU's previous published position.
    let mut available_at: HashMap<String, BTreeMap<u64, i64>> = HashMap::new();
    for e in of("InventoryPositionChanged") {
        let d = &e["detail"];
        if let (Some(sku), Some(version), Some(available)) = (
            d["sku"].as_str(),
            d["version"].as_u64(),
            d["available"].as_i64(),
        ) {
            available_at
                .entry(sku.to_owned())
                .or_default()
                .insert(version, available);
        }
    }
    for e in of("InventoryPositionChanged") {
        let d = &e["detail"];
        let available = d["available"].as_i64().unwrap_or(0);
        if d["cause"]["detail_type"] != "ReservationRequested" || available >= 0 {
            continue;
        }
        let before = d["sku"]
            .as_str()
            .zip(d["version"].as_u64())
            .and_then(|(sku, v)| {
                available_at
                    .get(sku)?
                    .range(..v)
                    .next_back()
                    .map(|(_, a)| *a)
            });
        match before {
            Some(b) if available >= b => println!(
                "    {}: a checkout released lapsed holds while oversells kept available below zero \
                 ({b} -> {available}; it took nothing)",
                d["sku"].as_str().unwrap_or("")
            ),
            _ => broken.push(format!(
                "a reservation took available below zero (from {}): {d}",
                before.map_or_else(|| "unknown".to_owned(), |b| b.to_string())
            )),
        }
    }

    println!(
        "\nBuffers during the sale ({:.1} s, {} samples of the state about every {} ms)",
        sale_took.as_secs_f64(),
        held_back.samples,
        SAMPLE_EVERY.as_millis()
    );
    println!(
        "    held back: {} of available unit-time (every SKU and channel while available > 0)",
        percent(held_back.percent())
    );
    for kind in KINDS {
        println!(
            "    {kind:<9} {:>7} held back, largest buffer {}",
            percent(held_back.channel_percent(kind)),
            held_back.peak.get(kind).copied().unwrap_or(0)
        );
    }
    if held_back.failed_reads > 0 {
        println!(
            "    ({} state reads failed; the sample before each held until the next)",
            held_back.failed_reads
        );
    }
    println!(
        "    buffer changes announced (ChannelBufferChanged): {}",
        of("ChannelBufferChanged").count()
    );

    println!("\nChannels          pushes  calls  throttled  held back now  latency p50/p95 (ms)");
    let overrides = read_overrides(deps, skus).await?;
    let state = BufferState::read(deps, skus).await?;
    for kind in KINDS {
        let mut lat: Vec<i64> = of("ChannelQuantityPushed")
            .filter(|e| e["detail"]["channel"] == kind)
            .filter_map(|e| e["detail"]["latency_ms"].as_i64())
            .collect();
        lat.sort();
        let held_back_now: i64 = skus
            .iter()
            .map(|s| {
                let shown = state.applied(&overrides, kind, s).map_or(0, |a| a.shown);
                state.available(s).max(0) - shown
            })
            .sum();
        let stats = fake(fakes, kind).stats();
        println!(
            "    {kind:<12} {:>7} {:>6} {:>10} {:>14}  {:>6} / {}",
            lat.len(),
            stats.push_calls,
            stats.throttled,
            held_back_now,
            percentile(&lat, 0.5),
            percentile(&lat, 0.95)
        );
    }
    println!(
        "    (latency: producer event to channel acknowledgement; Amazon then shows it after its processing delay)"
    );

    println!("\nFinal positions                on_hand  hard  soft  available");
    let positions = deps.store.positions(skus).await?;
    for sku in skus {
        let p = positions[sku];
        println!(
            "    {:<26} {:>7} {:>5} {:>5} {:>10}",
            sku.as_str(),
            p.on_hand,
            p.hard_reserved,
            p.soft_reserved,
            p.available()
        );
        let holds: i64 = deps
            .store
            .expired_holds(sku, i64::MAX, 1000)
            .await?
            .iter()
            .map(|h| h.quantity)
            .sum();
        if holds != p.soft_reserved {
            broken.push(format!(
                "{sku}: soft reserved {} but holds add up to {holds}",
                p.soft_reserved
            ));
        }
    }

    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    );
    let mut dlq = 0;
    for (name, q) in &stack.queues {
        if name.ends_with("DLQ") {
            dlq += queue_depth(&sqs, &q.url).await?;
        }
    }
    let drift: Vec<&Value> = of("DriftDetected").collect();
    let drift_units: i64 = drift
        .iter()
        .filter_map(|d| d["detail"]["drift"].as_i64())
        .map(i64::abs)
        .sum();
    let total = |field: &str| reconciliations.totals.get(field).copied().unwrap_or(0);
    println!(
        "\nReconciliation (every 2 s here, every 15 min in AWS): {} runs, {} drifted listings seen ({drift_units} units); \
         {} repaired, {} of them pushing a channel up from what it showed; {} deferred (the channel showed fewer, \
         maybe for an order not heard of yet)",
        reconciliations.runs,
        drift.len(),
        total("repaired"),
        total("repaired_upward"),
        total("deferred")
    );
    for d in &drift {
        let d = &d["detail"];
        println!(
            "    {} {}: showed {}, should have shown {}",
            d["channel"].as_str().unwrap_or(""),
            d["sku"].as_str().unwrap_or(""),
            d["reported"],
            d["expected"]
        );
    }
    println!("Dead-letter queues: {dlq} messages");
    if dlq > 0 {
        broken.push(format!("{dlq} messages in dead-letter queues"));
    }
    // Dynamic buffers keep moving after the sale (the signal expires, rates decay): a channel
    // converges when it catches up with the state, so the check allows a few sync round trips.
    let deadline = Instant::now() + Duration::from_secs(15);
    let diverged = loop {
        let diverged = mismatches(deps, fakes, skus).await?;
        if diverged.is_empty() || Instant::now() > deadline {
            break diverged;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    if diverged.is_empty() {
        println!("Channels converged: every channel shows exactly what the state says it should");
    } else {
        for (kind, sku, shown, expected) in &diverged {
            broken.push(format!(
                "{kind} shows {shown} of {sku}, state says {expected}; {}",
                explain_divergence(deps, &of, kind, sku).await
            ));
        }
    }
    println!("\nRun took {:.1} s.", started.elapsed().as_secs_f64());
    if broken.is_empty() {
        println!("All invariants held.");
    } else {
        println!("INVARIANTS BROKEN:");
        for b in &broken {
            println!("    {b}");
        }
    }
    Ok(Outcome {
        mode,
        oversells: oversells.len(),
        oversold_units,
        lost_sales: lost.len(),
        lost_units: lost.iter().map(|l| l.quantity).sum(),
        orders_taken: market.taken.len(),
        held_back: held_back.percent(),
        repaired_upward: total("repaired_upward"),
        invariants_held: broken.is_empty(),
    })
}

/// What the state and the announcements say about a listing that did not converge: the position's
/// version, the channel's sync record, and the pushes the channel acknowledged (version:quantity,
/// in the order they were announced).
async fn explain_divergence<'a, I>(
    deps: &Deps,
    of: &impl Fn(&'static str) -> I,
    kind: &str,
    sku: &str,
) -> String
where
    I: Iterator<Item = &'a Value>,
{
    let (Ok(channel), Ok(parsed)) = (ChannelName::parse(kind), Sku::parse(sku)) else {
        return String::new();
    };
    let skus = std::slice::from_ref(&parsed);
    let version = deps
        .store
        .positions(skus)
        .await
        .ok()
        .and_then(|p| p.get(&parsed).map(|p| p.version));
    let record = deps
        .store
        .sync_records(&channel, skus)
        .await
        .ok()
        .and_then(|r| r.get(&parsed).copied());
    let pushes: Vec<(u64, i64)> = of("ChannelQuantityPushed")
        .filter(|e| e["detail"]["channel"] == kind && e["detail"]["sku"] == sku)
        .filter_map(|e| {
            Some((
                e["detail"]["version"].as_u64()?,
                e["detail"]["quantity"].as_i64()?,
            ))
        })
        .collect();
    let mut out = format!(
        "position v{}, sync record {}; pushes acknowledged, as announced: {}",
        version.map_or_else(|| "?".to_owned(), |v| v.to_string()),
        record.map_or_else(
            || "none".to_owned(),
            |r| format!("v{} quantity {}", r.version, r.quantity)
        ),
        pushes
            .iter()
            .map(|(v, q)| format!("v{v}:{q}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    if pushes.windows(2).any(|w| w[1].0 < w[0].0) {
        out.push_str(" (an older version's push was acknowledged after a newer one's)");
    }
    out
}

/// Orders and units per marketplace channel, from the orders recorded in state.
async fn count_marketplace_orders(deps: &Deps, market: &Market) -> BTreeMap<String, (usize, i64)> {
    let mut out: BTreeMap<String, (usize, i64)> = BTreeMap::new();
    for t in &market.taken {
        let Ok(id) = stockguard_domain::EntityId::parse(&t.order_id) else {
            continue;
        };
        if let Ok(Some(order)) = deps.store.order(&id).await {
            let e = out.entry(t.kind.to_owned()).or_default();
            e.0 += 1;
            e.1 += order.lines.iter().map(|l| l.quantity).sum::<i64>();
        }
    }
    out
}

/// The side-by-side table. Returns whether every invariant held in every run.
fn compare(outcomes: &[Outcome], seed: u64, started: Instant) -> bool {
    println!("\n================ zero buffers vs dynamic buffers (seed {seed}) ================\n");
    let row = |name: &str, cell: &dyn Fn(&Outcome) -> String| {
        print!("    {name:<28}");
        for o in outcomes {
            print!(" {:>16}", cell(o));
        }
        println!();
    };
    row("", &|o| o.mode.short().to_owned());
    row("oversells", &|o| o.oversells.to_string());
    row("oversold units", &|o| o.oversold_units.to_string());
    row("lost sales (units)", &|o| {
        format!("{} ({})", o.lost_sales, o.lost_units)
    });
    row("marketplace orders taken", &|o| o.orders_taken.to_string());
    row("held back", &|o| percent(o.held_back));
    row("reconciliation pushes up", &|o| {
        o.repaired_upward.to_string()
    });
    if let [zero, dynamic] = outcomes {
        if zero.oversells == 0 {
            println!(
                "\n    Oversells: none with zero buffers, {} with dynamic buffers: no relative change to compute.",
                dynamic.oversells
            );
        } else {
            let change =
                100.0 * (dynamic.oversells as f64 - zero.oversells as f64) / zero.oversells as f64;
            println!(
                "\n    Oversells: {} with zero buffers, {} with dynamic buffers: {change:+.0} %.",
                zero.oversells, dynamic.oversells
            );
        }
    }
    println!(
        "\n    Held back is 100 x sum(buffer x dt) / sum(available x dt) over every SKU and the four channels while \
         available > 0, sampled from the state every {} ms during the sale, with the sync's own buffer rule.",
        SAMPLE_EVERY.as_millis()
    );
    println!(
        "    This sale is extreme: a few units per SKU and a shopper every few hundred ms, with the buffer recompute \
         every {} s. Its held-back share says little on its own about a real catalogue.",
        SCHEDULE_INTERVAL.as_secs()
    );
    println!(
        "    Both runs replay the same shopper decisions (seed {seed}); wall-clock timing still differs a little, \
         so small differences between the runs can come from timing alone."
    );
    println!("\nRan in {:.1} s.", started.elapsed().as_secs_f64());
    let broken: Vec<&str> = outcomes
        .iter()
        .filter(|o| !o.invariants_held)
        .map(|o| o.mode.short())
        .collect();
    if broken.is_empty() {
        println!("All invariants held in both runs.");
        true
    } else {
        println!("INVARIANTS BROKEN in: {}", broken.join(", "));
        false
    }
}
