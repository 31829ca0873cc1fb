//! One chaos run: a fresh stack (template.yaml's resources in the emulator, every function hosted
//! in-process, the four fake channels), a mixed load for a bounded time with faults at every
//! layer, then quiet, one expiry sweep and two reconciliations an order grace apart (the first
//! defers pushing up a channel that shows fewer units than it should), and the observations the
//! checker needs. Every decision of the load and of the faults comes from the seed (one random
//! stream per task); wall-clock interleavings still differ from run to run.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};
use stockguard_domain::channel::BufferPolicy;
use stockguard_domain::compensation::{CompensationPolicy, Policy};
use stockguard_domain::{EntityId, Sku};
use stockguard_fake_channels::{FakeChannels, FakeOptions, FakeSettings, OrderRequest};
use stockguard_handlers::{Deps, Settings, reconcile, reservations};

use super::check::{DeadLetter, Observed, ObservedPosition, PublishedPosition, Shown};
use super::ledger::{FaultKind, Ledger};
use super::queue::{QueueFaultCounts, QueueFaultTally, QueueFaults};
use crate::fake_wiring::{
    KINDS, amazon_notification_feed, configure_fake_channels, fake, listing_key, map_on_fakes,
    send_shopify_webhooks, static_buffers,
};
use crate::tap::{EventTap, put_event, queue_depth};
use crate::{LocalRuntime, RuntimeOptions, Stack, StackSpec, provision};

pub const SKUS: [&str; 8] = [
    "CHAOS-TEE-S",
    "CHAOS-TEE-M",
    "CHAOS-TEE-L",
    "CHAOS-MUG",
    "CHAOS-CAP",
    "CHAOS-SOCKS",
    "CHAOS-BAG",
    "CHAOS-PIN",
];
/// Little stock, so that checkouts and marketplace orders contend for the last units.
const INITIAL_UNITS: i64 = 30;
/// The queues' visibility timeout here (180 s in the template): how long a delivery lost in
/// flight, or in flight when the runtime is killed, stays invisible before it comes back.
pub const VISIBILITY_TIMEOUT_SECONDS: i64 = 8;
/// Amazon shows a push this long after acknowledging it (minutes in reality).
const AMAZON_PROCESSING_MS: u64 = 500;
/// What reconciliation assumes Amazon may still be processing (env of the reconcile function).
pub const AMAZON_PROCESSING_ENV: (&str, &str) = ("STOCKGUARD_AMAZON_PROCESSING_MS", "1000");
/// How often the runtime polls Walmart's and eBay's orders APIs here (every minute in AWS).
const ORDER_POLL_INTERVAL: Duration = Duration::from_secs(5);
/// How late reconciliation assumes an order may reach us: two polls (env of the reconcile
/// function).
pub const ORDER_GRACE_ENV: (&str, &str) = ("STOCKGUARD_ORDER_GRACE_MS", "10000");
const CHECKOUT_WORKERS: u64 = 3;
const MAX_TTL_SECONDS: u64 = 4;

/// A deliberate violation, to show the checker catches one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inject {
    /// An accepted receipt is applied a second time (published again under a fresh event id,
    /// as a broken idempotency check would let it through). The ledger does not know.
    DoubleApply,
    /// The ledger records a receipt as accepted that never reaches the bus.
    LoseEvent,
}

#[derive(Debug, Clone)]
pub struct ChaosOptions {
    pub seed: u64,
    /// How long the load runs (the run takes longer: set-up, quiet, sweep, reconciliation).
    pub load: Duration,
    pub drop: f64,
    pub duplicate: f64,
    /// Kills of the runtime during the load.
    pub kills: u32,
    pub inject: Option<Inject>,
}

/// What a run did and saw, for the table.
pub struct ChaosRun {
    pub ledger: Ledger,
    pub queue: QueueFaultTally,
    pub channel_requests_faulted: BTreeMap<&'static str, u64>,
    pub in_flight_at_kills: Vec<i64>,
    pub observed: Observed,
    pub load_took: Duration,
    pub drained_after: Duration,
    pub reconcile: String,
}

/// A logical clock for `occurred_at`: wall-clock milliseconds, strictly increasing, so the
/// ledger's watermark rule never meets a tie.
#[derive(Default)]
struct Clock(AtomicI64);

impl Clock {
    fn tick(&self) -> i64 {
        let now = chrono::Utc::now().timestamp_millis();
        let mut last = self.0.load(Ordering::SeqCst);
        loop {
            let next = now.max(last + 1);
            match self
                .0
                .compare_exchange(last, next, Ordering::SeqCst, Ordering::SeqCst)
            {
                Ok(_) => return next,
                Err(seen) => last = seen,
            }
        }
    }
}

fn timestamp(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn stream_rng(seed: u64, stream: u64) -> StdRng {
    StdRng::seed_from_u64(seed ^ (stream + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15))
}

/// What every load task shares.
struct Load {
    config: aws_config::SdkConfig,
    deps: Deps,
    events: aws_sdk_eventbridge::Client,
    bus: String,
    api: String,
    http: reqwest::Client,
    ledger: Mutex<Ledger>,
    clock: Clock,
    until: Instant,
    seed: u64,
    /// ERP events sent so far (source, detail-type, detail) for replays and reused ids.
    history: Mutex<Vec<(String, String, Value)>>,
    /// Ids already reused once, so each dead letter names one injected fault.
    reused: Mutex<std::collections::BTreeSet<String>>,
    ids: AtomicI64,
}

impl Load {
    fn ledger<T>(&self, f: impl FnOnce(&mut Ledger) -> T) -> T {
        f(&mut self.ledger.lock().expect("ledger"))
    }

    fn next_id(&self, prefix: &str) -> String {
        format!("{prefix}-{:06}", self.ids.fetch_add(1, Ordering::SeqCst))
    }

    fn running(&self) -> bool {
        Instant::now() < self.until
    }

    async fn put(&self, source: &str, detail_type: &str, detail: &Value) -> Result<()> {
        put_event(&self.events, &self.bus, source, detail_type, detail).await?;
        self.ledger(|l| l.sent(detail_type));
        Ok(())
    }

    /// An ERP event the contract applies: sent, remembered, and put in the ledger by `account`.
    async fn erp(
        &self,
        source: &str,
        detail_type: &str,
        detail: Value,
        account: impl FnOnce(&mut Ledger),
    ) -> Result<()> {
        self.ledger(account);
        self.put(source, detail_type, &detail).await?;
        self.history.lock().expect("history").push((
            source.to_owned(),
            detail_type.to_owned(),
            detail,
        ));
        Ok(())
    }

    /// An HTTP call to the reservations API, repeated on no answer or a 5xx (the outcome is then
    /// unknown; the contract makes every call safe to repeat) until one is definitive.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.api))
                .timeout(Duration::from_secs(15));
            if let Some(b) = body {
                req = req.json(b);
            }
            if let Ok(r) = req.send().await {
                let status = r.status().as_u16();
                let body = r.json().await.unwrap_or(Value::Null);
                if status < 500 || Instant::now() > deadline {
                    return (status, body);
                }
            } else if Instant::now() > deadline {
                return (0, Value::Null);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

/// The runtime, which the killer stops and starts again.
struct Host {
    config: aws_config::SdkConfig,
    spec: StackSpec,
    stack: Stack,
    options: RuntimeOptions,
    runtime: tokio::sync::Mutex<Option<LocalRuntime>>,
}

impl Host {
    async fn start(&self) -> Result<LocalRuntime> {
        // The killed runtime's listener goes away as its task is dropped: the port comes free
        // within moments.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            match LocalRuntime::start(&self.config, &self.spec, &self.stack, self.options.clone())
                .await
            {
                Ok(r) => return Ok(r),
                Err(e) if Instant::now() < deadline => {
                    tracing::debug!(error = %e, "restarting the runtime");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(e) => return Err(e),
            }
        }
    }
}

pub async fn run(config: &aws_config::SdkConfig, opts: &ChaosOptions) -> Result<ChaosRun> {
    let mut spec = StackSpec::load_default()?;
    for q in &mut spec.queues {
        if q.visibility_timeout.is_some() {
            q.visibility_timeout = Some(VISIBILITY_TIMEOUT_SECONDS);
        }
    }
    let prefix = format!("chaos{}-", opts.seed % 100_000);
    step(&format!(
        "provisioning template.yaml's resources (prefix {prefix}, visibility timeout {VISIBILITY_TIMEOUT_SECONDS} s)"
    ));
    let stack = provision(config, &spec, &prefix, &format!("{prefix}bus")).await?;
    let tap = EventTap::create(config, &stack.bus, &format!("{prefix}tap")).await?;
    let deps = Deps::new(config, &stack.table, &stack.bus, None, Settings::default());
    // Oversells are reported, not compensated: a cancellation by policy would be a change the
    // ledger cannot foresee.
    deps.store
        .put_compensation_policy(&CompensationPolicy {
            policy: Policy::NotifyOnly,
            ..CompensationPolicy::default()
        })
        .await?;

    step("starting the fake channels (Shopify webhooks, Amazon notifications on their queue)");
    let amazon_queue = stack.queue("AmazonNotificationsQueue")?.url.clone();
    let (notifications, notification_feed) = amazon_notification_feed(config, &amazon_queue);
    let fakes = FakeChannels::start(
        FakeOptions::default()
            .with_settings(base_settings())
            .with_notification_sink(notifications),
    )
    .await?;
    configure_fake_channels(
        config,
        &deps.store,
        &prefix,
        &fakes,
        static_buffers(BufferPolicy::default()),
    )
    .await?;
    let skus: Vec<Sku> = SKUS
        .iter()
        .map(|s| Sku::parse(s).map_err(anyhow::Error::msg))
        .collect::<Result<_>>()?;
    map_on_fakes(&deps.store, &fakes, &skus).await?;

    let counts = QueueFaultCounts::default();
    let host = Arc::new(Host {
        config: config.clone(),
        spec: spec.clone(),
        stack: stack.clone(),
        options: RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse()?),
            order_poll_interval: ORDER_POLL_INTERVAL,
            queue_faults: Some(QueueFaults {
                drop: opts.drop,
                duplicate: opts.duplicate,
                reorder: true,
                seed: opts.seed,
                last_delivery: Settings::default().retry_budget,
                counts: counts.clone(),
            }),
            ..Default::default()
        },
        runtime: tokio::sync::Mutex::new(None),
    });
    step(&format!(
        "starting the runtime: every queue loses {:.0} % of deliveries in flight, duplicates {:.0} %, reorders every batch",
        opts.drop * 100.0,
        opts.duplicate * 100.0
    ));
    let runtime = host.start().await?;
    let addr = runtime.api_addr.context("API address")?;
    // Restarts listen where the first one did, as an API Gateway URL stays put.
    let host = Arc::new(Host {
        options: RuntimeOptions {
            api_addr: Some(addr),
            ..host.options.clone()
        },
        config: host.config.clone(),
        spec: host.spec.clone(),
        stack: host.stack.clone(),
        runtime: tokio::sync::Mutex::new(Some(runtime)),
    });
    let api = format!("http://{addr}");
    send_shopify_webhooks(&fakes, &api);

    let load = Arc::new(Load {
        config: config.clone(),
        deps: deps.clone(),
        events: aws_sdk_eventbridge::Client::new(config),
        bus: stack.bus.clone(),
        api: api.clone(),
        http: reqwest::Client::new(),
        ledger: Mutex::new(Ledger::default()),
        clock: Clock::default(),
        until: Instant::now(),
        seed: opts.seed,
        history: Mutex::new(Vec::new()),
        reused: Mutex::new(Default::default()),
        ids: AtomicI64::new(1),
    });

    step(&format!(
        "receiving {INITIAL_UNITS} units of each of {} SKUs",
        SKUS.len()
    ));
    for sku in SKUS {
        receive(&load, sku, INITIAL_UNITS).await?;
    }
    wait_for_quiet(&stack, &fakes, Duration::from_secs(60)).await?;

    step(&format!(
        "the load, {} s: ERP events, {CHECKOUT_WORKERS} checkout workers, marketplace buyers, producer faults, channel fault spells, {} runtime kills",
        opts.load.as_secs(),
        opts.kills
    ));
    let load = Arc::new(Load {
        until: Instant::now() + opts.load,
        ..Arc::into_inner(load).context("the load is still shared")?
    });
    let fakes = Arc::new(fakes);
    let started = Instant::now();
    let mut tasks = Vec::new();
    tasks.push(tokio::spawn(erp_events(load.clone(), fakes.clone(), 1)));
    tasks.push(tokio::spawn(sequenced_producer(load.clone(), 2)));
    for w in 0..CHECKOUT_WORKERS {
        tasks.push(tokio::spawn(checkouts(load.clone(), 10 + w)));
    }
    tasks.push(tokio::spawn(marketplace_buyers(
        load.clone(),
        fakes.clone(),
        3,
    )));
    tasks.push(tokio::spawn(channel_faults(load.clone(), fakes.clone(), 4)));
    let killer = tokio::spawn(kill_and_restart(
        load.clone(),
        host.clone(),
        opts.kills,
        opts.load,
    ));
    let progress = {
        let load = load.clone();
        let counts = counts.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let sent: u64 = load.ledger(|l| l.sent.values().sum());
                let q = counts.tally();
                println!(
                    "    {:>4} s: {sent} events and calls sent; queues: {} deliveries, {} lost in flight, {} duplicated",
                    started.elapsed().as_secs(),
                    q.received,
                    q.dropped,
                    q.duplicated
                );
            }
        })
    };
    for t in tasks {
        t.await.context("a load task panicked")??;
    }
    let in_flight_at_kills = killer.await.context("the killer panicked")??;
    progress.abort();
    let load_took = started.elapsed();

    if opts.inject == Some(Inject::LoseEvent) {
        let id = load.next_id("lost");
        let t = load.clock.tick();
        load.ledger(|l| {
            l.on_hand_delta(SKUS[0], t, 5, &id);
            l.accept(
                &id,
                "StockReceived",
                vec!["applied"],
                vec![(SKUS[0].into(), 5, 0)],
            );
        });
        step(&format!(
            "injected: {id} is in the ledger but was never sent"
        ));
    }
    if opts.inject == Some(Inject::DoubleApply) {
        // The newest receipt no later count holds: applying it again must show.
        let (source, detail_type, mut detail) = load
            .history
            .lock()
            .expect("history")
            .iter()
            .rev()
            .find(|(_, t, d)| {
                t == "StockReceived"
                    && load.ledger(|l| {
                        l.delta_counts(
                            d["sku"].as_str().unwrap_or_default(),
                            d["event_id"].as_str().unwrap_or_default(),
                        )
                    })
            })
            .cloned()
            .context("no receipt to apply twice")?;
        let original = detail["event_id"].as_str().unwrap_or_default().to_owned();
        detail["event_id"] = json!(format!("{original}-again"));
        put_event(&load.events, &stack.bus, &source, &detail_type, &detail).await?;
        step(&format!(
            "injected: receipt {original} applied a second time (a fresh event id the ledger does not know)"
        ));
    }

    step(
        "load stopped; faults off; waiting for every queue to drain (lost deliveries come back after the visibility timeout)",
    );
    for kind in KINDS {
        fake(&fakes, kind).update_settings(|s| *s = quiet_settings(s));
    }
    let quiet_started = Instant::now();
    // Walk-aways' holds lapse; late and duplicated webhooks arrive; the order polls, now free
    // of faults, read the last Walmart and eBay orders and cancellations.
    tokio::time::sleep(
        Duration::from_secs(MAX_TTL_SECONDS + 2)
            .max(2 * ORDER_POLL_INTERVAL + Duration::from_secs(1)),
    )
    .await;
    wait_for_quiet(&stack, &fakes, Duration::from_secs(240)).await?;
    step("one expiry sweep");
    let sweep = reservations::expire_lapsed(&deps, Duration::from_secs(50)).await?;
    println!("    {sweep:?}");
    wait_for_quiet(&stack, &fakes, Duration::from_secs(120)).await?;
    // A channel changes quantities behind our back when no further change is on its way:
    // only the reconciliation can repair these.
    let mut rng = stream_rng(opts.seed, 5);
    let mut raised = Vec::new();
    for _ in 0..3 {
        let channel = KINDS[rng.random_range(0..KINDS.len())];
        let sku = SKUS[rng.random_range(0..SKUS.len())];
        raised.push((channel, sku));
        let shown = fake(&fakes, channel)
            .shown(&listing_key(channel, sku))
            .unwrap_or(0);
        fake(&fakes, channel)
            .set_shown(&listing_key(channel, sku), shown + rng.random_range(1..=9));
    }
    // And one lowered, as an order not heard of yet would: only the second reconciliation, an
    // order grace later, pushes it back up.
    let lowered = (0..KINDS.len() * SKUS.len())
        .map(|i| (KINDS[i % KINDS.len()], SKUS[i / KINDS.len()]))
        .filter(|(channel, sku)| {
            !raised.contains(&(*channel, *sku))
                && fake(&fakes, channel)
                    .shown(&listing_key(channel, sku))
                    .is_some_and(|q| q > 0)
        })
        .nth(rng.random_range(0..4));
    if let Some((channel, sku)) = lowered {
        let key = listing_key(channel, sku);
        let shown = fake(&fakes, channel).shown(&key).unwrap_or(1);
        fake(&fakes, channel).set_shown(&key, shown - 1);
    }
    load.ledger(|l| {
        l.fault(
            FaultKind::ChannelBehindOurBack,
            3 + u64::from(lowered.is_some()),
        )
    });
    // Past the window in which reconciliation leaves a just-pushed Amazon listing alone.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    // A channel that shows fewer than it should may have sold units in an order not heard of
    // yet: the first run defers that push, and the second, an order grace later, makes it.
    let syncs = reconcile::channel_syncs(&deps)
        .await
        .map_err(anyhow::Error::msg)?;
    let grace = reconcile::order_grace(stockguard_domain::ChannelKind::Walmart);
    let mut reconcile = Vec::new();
    for n in 1..=2 {
        if n > 1 {
            tokio::time::sleep(grace).await;
        }
        step(&format!("reconciliation {n} of 2"));
        let report = reconcile::reconcile_all(&syncs, Duration::from_secs(120)).await;
        for d in &report.drift {
            println!(
                "    {} {}: showed {}, should show {}{}",
                d.channel,
                d.sku,
                d.reported,
                d.expected,
                if d.repaired {
                    ", repaired"
                } else if d.deferred {
                    ", deferred"
                } else {
                    ""
                }
            );
        }
        let line = format!(
            "{n}: {} listings checked, {} drifted ({} units), {} repaired, {} deferred; skipped: {} in flight, {} in Amazon's processing window; {} acknowledged late; errors: {:?}",
            report.checked,
            report.drift.len(),
            report.drift_units,
            report.drift.iter().filter(|d| d.repaired).count(),
            report.deferred(),
            report.in_flight,
            report.in_processing_window,
            report.acknowledged_late,
            report.errors
        );
        println!("    {line}");
        reconcile.push(line);
    }
    let reconcile = reconcile.join("\n    ");
    wait_for_quiet(&stack, &fakes, Duration::from_secs(120)).await?;
    tokio::time::sleep(Duration::from_millis(AMAZON_PROCESSING_MS + 500)).await;
    let drained_after = quiet_started.elapsed();

    step(
        "observing: positions, records, reservations, orders, dead letters, channels, published events",
    );
    let ledger = Arc::into_inner(load)
        .context("the load is still shared")?
        .ledger
        .into_inner()
        .expect("ledger");
    let mut observed = observe(&deps, &stack, &fakes, &tap, &ledger, &skus).await?;
    observed.lost_on_last_delivery = counts.lost_on_last_delivery();
    notification_feed.abort();
    let mut channel_requests_faulted = BTreeMap::new();
    for kind in KINDS {
        let s = fake(&fakes, kind).stats();
        *channel_requests_faulted.entry("throttled").or_default() += s.throttled;
        *channel_requests_faulted.entry("5xx").or_default() += s.server_errors;
        *channel_requests_faulted.entry("timed out").or_default() += s.timeouts;
    }
    drop(host.runtime.lock().await.take());
    Ok(ChaosRun {
        ledger,
        queue: counts.tally(),
        channel_requests_faulted,
        in_flight_at_kills,
        observed,
        load_took,
        drained_after,
        reconcile,
    })
}

fn step(what: &str) {
    println!("==> {what}");
}

/// The fakes as they run between fault spells: Amazon processes in half a second; Shopify and
/// Amazon deliver some notifications twice or late, as they do; a hang outlasts the client.
fn base_settings() -> FakeSettings {
    FakeSettings {
        amazon_processing_delay_ms: AMAZON_PROCESSING_MS,
        shopify_webhook_duplicate_rate: 0.1,
        shopify_webhook_late_rate: 0.1,
        shopify_webhook_late_ms: 1_500,
        amazon_notification_duplicate_rate: 0.1,
        timeout_hang_ms: 6_000,
        ..FakeSettings::default()
    }
}

/// `s` with every fault switched off.
fn quiet_settings(s: &FakeSettings) -> FakeSettings {
    FakeSettings {
        latency_ms: 0,
        error_rate: 0.0,
        throttle_rate: 0.0,
        timeout_rate: 0.0,
        ..s.clone()
    }
}

async fn receive(load: &Load, sku: &str, quantity: i64) -> Result<()> {
    let id = load.next_id("erp");
    let t = load.clock.tick();
    let detail = json!({"event_id": id, "occurred_at": timestamp(t), "sku": sku, "quantity": quantity, "reference": format!("PO-{id}")});
    load.erp("erp.netsuite", "StockReceived", detail, |l| {
        l.on_hand_delta(sku, t, quantity, &id);
        l.accept(
            &id,
            "StockReceived",
            vec!["applied", "inside_latest_count"],
            vec![(sku.to_owned(), quantity, 0)],
        );
    })
    .await
}

/// The ERP and WMS: receipts, adjustments, counts, returns, shipments; and the producers'
/// mistakes: replays, reused ids with other payloads, garbage.
async fn erp_events(load: Arc<Load>, fakes: Arc<FakeChannels>, stream: u64) -> Result<()> {
    let mut rng = stream_rng(load.seed, stream);
    while load.running() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(40..120))).await;
        let sku = SKUS[rng.random_range(0..SKUS.len())];
        let roll = rng.random_range(0..100);
        let t = load.clock.tick();
        if roll < 26 {
            receive(&load, sku, rng.random_range(1..=6)).await?;
        } else if roll < 44 {
            let id = load.next_id("erp");
            let delta = [-3, -2, -1, 1, 2, 3][rng.random_range(0..6)];
            let detail = json!({"event_id": id, "occurred_at": timestamp(t), "sku": sku, "delta": delta, "reason": "shrink"});
            load.erp("wms.main", "StockAdjusted", detail, |l| {
                l.on_hand_delta(sku, t, delta, &id);
                l.accept(
                    &id,
                    "StockAdjusted",
                    vec!["applied", "inside_latest_count"],
                    vec![(sku.to_owned(), delta, 0)],
                );
            })
            .await?;
        } else if roll < 50 {
            let id = load.next_id("erp");
            // A count finds a unit or two missing now and then.
            let on_hand = (load.ledger(|l| l.on_hand_now(sku)) + rng.random_range(-2..=1)).max(0);
            let detail = json!({"event_id": id, "occurred_at": timestamp(t), "sku": sku, "on_hand": on_hand});
            load.erp("wms.main", "StockCounted", detail, |l| {
                l.count(sku, t, on_hand);
                l.accept(&id, "StockCounted", vec!["applied", "stale_count"], vec![]);
            })
            .await?;
        } else if roll < 58 {
            let id = load.next_id("erp");
            let quantity = rng.random_range(1..=2);
            let restock = rng.random_bool(0.7);
            let detail = json!({"event_id": id, "occurred_at": timestamp(t), "return_id": format!("RMA-{id}"), "sku": sku, "quantity": quantity, "restock": restock});
            load.erp("wms.main", "ReturnReceived", detail, |l| {
                if restock {
                    l.on_hand_delta(sku, t, quantity, &id);
                    l.accept(
                        &id,
                        "ReturnReceived",
                        vec!["applied", "inside_latest_count"],
                        vec![(sku.to_owned(), quantity, 0)],
                    );
                } else {
                    l.accept(&id, "ReturnReceived", vec!["not_restocked"], vec![]);
                }
            })
            .await?;
        } else if roll < 74 {
            settle_an_order(&load, &fakes, &mut rng, t).await?;
        } else if roll < 84 {
            let sent = {
                let h = load.history.lock().expect("history");
                (!h.is_empty()).then(|| h[rng.random_range(0..h.len())].clone())
            };
            if let Some((source, detail_type, detail)) = sent {
                load.put(&source, &detail_type, &detail).await?;
                load.ledger(|l| l.fault(FaultKind::ProducerReplay, 1));
            }
        } else if roll < 90 {
            reuse_an_id(&load, &mut rng).await?;
        } else if roll < 95 {
            let marker = load.next_id("garbage");
            let (detail_type, detail) = match rng.random_range(0..4) {
                0 => (
                    "StockReceived",
                    json!({"event_id": marker, "occurred_at": timestamp(t), "sku": "not a sku!", "quantity": 3}),
                ),
                1 => (
                    "StockAdjusted",
                    json!({"event_id": marker, "occurred_at": timestamp(t), "sku": sku, "delta": 0, "reason": "none"}),
                ),
                2 => (
                    "OrderPlaced",
                    json!({"event_id": marker, "occurred_at": "yesterday", "order_id": "X", "channel": "shopify", "lines": []}),
                ),
                _ => ("StockReceived", json!({"note": marker, "quantity": "lots"})),
            };
            load.ledger(|l| {
                l.fault(FaultKind::GarbageEvent, 1);
                l.expect_dead_letter(&marker, FaultKind::GarbageEvent, None);
            });
            load.put("erp.netsuite", detail_type, &detail).await?;
        }
    }
    Ok(())
}

/// Ships (through the WMS) or cancels (through the channel itself) one marketplace order that
/// stockguard has recorded.
async fn settle_an_order(
    load: &Load,
    fakes: &FakeChannels,
    rng: &mut StdRng,
    t: i64,
) -> Result<()> {
    let candidates: Vec<usize> = load.ledger(|l| {
        l.orders
            .iter()
            .enumerate()
            .filter(|(_, o)| !o.settled)
            .map(|(i, _)| i)
            .collect()
    });
    if candidates.is_empty() {
        return Ok(());
    }
    let i = candidates[rng.random_range(0..candidates.len())];
    let order = load.ledger(|l| l.orders[i].clone());
    let id = EntityId::parse(&order.order_id).map_err(anyhow::Error::msg)?;
    // Settling an order stockguard has not heard of yet would be retried and, past the
    // budget, dead-lettered: the WMS ships what the order system knows.
    if load.deps.store.order(&id).await?.is_none() {
        return Ok(());
    }
    load.ledger(|l| l.orders[i].settled = true);
    if rng.random_bool(0.7) {
        let event_id = load.next_id("ship");
        let detail =
            json!({"event_id": event_id, "occurred_at": timestamp(t), "order_id": order.order_id});
        load.erp("wms.main", "OrderShipped", detail, |l| {
            let mut effect = Vec::new();
            for (sku, q) in &order.lines {
                l.hard(sku, -q);
                l.on_hand_delta(sku, t, -q, &event_id);
                effect.push((sku.clone(), -q, -q));
            }
            l.accept(
                &event_id,
                "OrderShipped",
                vec!["applied", "nothing_remaining"],
                effect,
            );
        })
        .await?;
    } else {
        fake(fakes, &order.channel)
            .cancel_order(&order.order_id)
            .map_err(|e| anyhow::anyhow!("cancelling {}: {e}", order.order_id))?;
        load.ledger(|l| {
            l.sent(&format!("{} cancellation", order.channel));
            for (sku, q) in &order.lines {
                l.hard(sku, -q);
            }
        });
    }
    Ok(())
}

/// Sends an applied event's id again with another payload: it must be dead-lettered with
/// `idempotency_key_reused` and change nothing.
async fn reuse_an_id(load: &Load, rng: &mut StdRng) -> Result<()> {
    let candidates: Vec<(String, String, Value)> = load
        .history
        .lock()
        .expect("history")
        .iter()
        .filter(|(_, t, _)| t == "StockReceived" || t == "StockAdjusted")
        .cloned()
        .collect();
    if candidates.is_empty() {
        return Ok(());
    }
    let (source, detail_type, mut detail) =
        candidates[rng.random_range(0..candidates.len())].clone();
    let id = detail["event_id"].as_str().unwrap_or_default().to_owned();
    // Only once the original is applied (else the other payload could be the one applied), and
    // each id reused once, so that each dead letter names one fault.
    if load.reused.lock().expect("reused").contains(&id)
        || load.deps.store.idempotency(&id).await?.is_none()
    {
        return Ok(());
    }
    load.reused.lock().expect("reused").insert(id.clone());
    if let Some(q) = detail["quantity"].as_i64() {
        detail["quantity"] = json!(q + 100);
    } else {
        detail["delta"] = json!(7);
    }
    // A marker that only the reused copy carries.
    detail["reference"] = json!(format!("reused-{id}"));
    if detail_type == "StockAdjusted" {
        detail["reason"] = json!(format!("reused-{id}"));
        detail.as_object_mut().map(|o| o.remove("reference"));
    }
    load.ledger(|l| {
        l.fault(FaultKind::ReusedId, 1);
        l.expect_dead_letter(
            &format!("reused-{id}"),
            FaultKind::ReusedId,
            Some("idempotency_key_reused"),
        );
    });
    load.put(&source, &detail_type, &detail).await?;
    Ok(())
}

/// A point-of-sale producer that numbers its events per SKU: each waits until the previous is
/// applied (so the queue's reordering cannot make a fresh one look stale), and now and then it
/// sends a stale sequence with a new id, which must be recorded and not applied.
async fn sequenced_producer(load: Arc<Load>, stream: u64) -> Result<()> {
    let mut rng = stream_rng(load.seed, stream);
    let skus = [SKUS[3], SKUS[4]];
    let mut applied: [u64; 2] = [0, 0];
    while load.running() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(300..800))).await;
        let k = rng.random_range(0..2);
        let sku = skus[k];
        let id = load.next_id("pos");
        let t = load.clock.tick();
        let delta = if rng.random_bool(0.5) { -1 } else { 1 };
        if applied[k] > 0 && rng.random_bool(0.3) {
            let sequence = applied[k] - rng.random_range(0..=applied[k].min(2));
            let detail = json!({"event_id": id, "occurred_at": timestamp(t), "sequence": sequence, "sku": sku, "delta": delta, "reason": "pos_sale"});
            load.ledger(|l| {
                l.fault(FaultKind::StaleSequence, 1);
                l.accept(&id, "StockAdjusted", vec!["producer_replay"], vec![]);
            });
            load.put("pos.store-12", "StockAdjusted", &detail).await?;
            continue;
        }
        let sequence = applied[k] + 1;
        let detail = json!({"event_id": id, "occurred_at": timestamp(t), "sequence": sequence, "sku": sku, "delta": delta, "reason": "pos_sale"});
        load.erp("pos.store-12", "StockAdjusted", detail, |l| {
            l.on_hand_delta(sku, t, delta, &id);
            l.accept(
                &id,
                "StockAdjusted",
                vec!["applied", "inside_latest_count"],
                vec![(sku.to_owned(), delta, 0)],
            );
        })
        .await?;
        let deadline = Instant::now() + Duration::from_secs(60);
        while load.deps.store.idempotency(&id).await?.is_none() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        applied[k] = sequence;
    }
    Ok(())
}

/// Storefront checkouts through the HTTP API: hold, then confirm, abandon, or walk away and let
/// the hold expire (some come back late and try to confirm). Now and then a garbage request.
async fn checkouts(load: Arc<Load>, stream: u64) -> Result<()> {
    let mut rng = stream_rng(load.seed, stream);
    let mut late = Vec::new();
    while load.running() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(80..300))).await;
        if rng.random_bool(0.05) {
            let bodies = [
                json!({"reservation_id": "", "channel": "storefront", "lines": []}),
                json!({"reservation_id": load.next_id("bad"), "channel": "storefront", "lines": [{"sku": SKUS[0], "quantity": -1}]}),
                json!({"reservation_id": load.next_id("bad"), "channel": "storefront", "lines": [{"sku": SKUS[0], "quantity": 1}, {"sku": SKUS[0], "quantity": 1}]}),
            ];
            let body = &bodies[rng.random_range(0..bodies.len())];
            let (status, _) = load
                .call(reqwest::Method::POST, "/v1/reservations", Some(body))
                .await;
            load.ledger(|l| {
                l.fault(FaultKind::GarbageRequest, 1);
                l.sent("garbage request");
                if status != 400 {
                    l.answers_wrong.push(format!(
                        "garbage reservation {body} answered {status}, not 400"
                    ));
                }
            });
            continue;
        }
        let n = rng.random_range(1..=2);
        let mut lines: Vec<(String, i64)> = Vec::new();
        while lines.len() < n {
            let sku = SKUS[rng.random_range(0..SKUS.len())];
            if !lines.iter().any(|(s, _)| s == sku) {
                lines.push((sku.to_owned(), rng.random_range(1..=3)));
            }
        }
        let ttl = rng.random_range(2..=MAX_TTL_SECONDS);
        let id = load.next_id("web");
        let body = json!({"reservation_id": id, "channel": "storefront", "ttl_seconds": ttl,
            "lines": lines.iter().map(|(s, q)| json!({"sku": s, "quantity": q})).collect::<Vec<_>>()});
        let (status, answer) = load
            .call(reqwest::Method::POST, "/v1/reservations", Some(&body))
            .await;
        load.ledger(|l| l.sent("POST /v1/reservations"));
        match status {
            200 | 201 => load.ledger(|l| {
                l.held.insert(id.clone());
            }),
            409 => {
                load.ledger(|l| l.checkout("refused: insufficient stock"));
                continue;
            }
            other => {
                load.ledger(|l| {
                    l.answers_wrong
                        .push(format!("reservation {id} answered {other}: {answer}"))
                });
                continue;
            }
        }
        let roll = rng.random_range(0..100);
        tokio::time::sleep(Duration::from_millis(rng.random_range(100..400))).await;
        if roll < 55 {
            confirm(&load, &id, &lines).await;
        } else if roll < 80 {
            let (status, answer) = load
                .call(
                    reqwest::Method::DELETE,
                    &format!("/v1/reservations/{id}"),
                    None,
                )
                .await;
            load.ledger(|l| {
                l.sent("DELETE /v1/reservations/{id}");
                if status == 200 {
                    l.checkout("released");
                } else {
                    l.answers_wrong
                        .push(format!("release of {id} answered {status}: {answer}"));
                }
            });
        } else {
            load.ledger(|l| l.checkout("walked away (hold expires)"));
            if roll >= 93 {
                let load = load.clone();
                late.push(tokio::spawn(async move {
                    tokio::time::sleep(Duration::from_secs(ttl + 1)).await;
                    confirm(&load, &id, &lines).await;
                }));
            }
        }
    }
    for l in late {
        l.await?;
    }
    Ok(())
}

async fn confirm(load: &Load, id: &str, lines: &[(String, i64)]) {
    let body = json!({"order_id": format!("WEB-{id}")});
    let (status, answer) = load
        .call(
            reqwest::Method::POST,
            &format!("/v1/reservations/{id}/confirm"),
            Some(&body),
        )
        .await;
    load.ledger(|l| {
        l.sent("POST /v1/reservations/{id}/confirm");
        match (status, answer["error"].as_str()) {
            (200, _) => {
                l.confirmed.insert(id.to_owned());
                l.checkout("confirmed");
                for (sku, q) in lines {
                    l.hard(sku, *q);
                }
            }
            (409, Some("reservation_expired")) => l.checkout("confirm refused: lapsed, stock gone"),
            _ => l
                .answers_wrong
                .push(format!("confirm of {id} answered {status}: {answer}")),
        }
    });
}

/// Marketplace buyers on Shopify (orders reach stockguard as signed webhooks), Amazon (as
/// SP-API notifications on a queue, items read with getOrder), Walmart and eBay (listed in
/// their orders APIs, read by the order polls); and now and then a forged webhook, which must be
/// refused.
async fn marketplace_buyers(load: Arc<Load>, fakes: Arc<FakeChannels>, stream: u64) -> Result<()> {
    let mut rng = stream_rng(load.seed, stream);
    while load.running() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(150..450))).await;
        if rng.random_bool(0.05) {
            let body = json!({"id": rng.random_range(1_000_000u64..9_000_000), "line_items": [{"sku": SKUS[0], "quantity": 50}]}).to_string();
            let status = load
                .http
                .post(format!("{}/v1/webhooks/shopify", load.api))
                .header("X-Shopify-Topic", "orders/create")
                .header("X-Shopify-Hmac-Sha256", "Zm9yZ2Vk")
                .header("X-Shopify-Webhook-Id", load.next_id("forged"))
                .header("X-Shopify-Shop-Domain", "chaos.myshopify.com")
                .body(body)
                .send()
                .await
                .map(|r| r.status().as_u16());
            load.ledger(|l| {
                l.fault(FaultKind::ForgedWebhook, 1);
                l.sent("forged webhook");
                // No answer: the runtime was down at that moment; nothing can have been applied.
                if let Ok(status) = status
                    && status != 401
                {
                    l.answers_wrong
                        .push(format!("a forged webhook answered {status}, not 401"));
                }
            });
            continue;
        }
        let channel = KINDS[rng.random_range(0..KINDS.len())];
        let sku = SKUS[rng.random_range(0..SKUS.len())];
        let quantity = rng.random_range(1..=2);
        let n = load.ids.fetch_add(1, Ordering::SeqCst);
        // Each channel's own form of order id.
        let order_id = match channel {
            "shopify" => (5_000_000_000 + n).to_string(),
            "walmart" => (1_800_000_000_000 + n).to_string(),
            "ebay" => format!("27-{:05}-{:05}", n / 100_000 % 100_000, n % 100_000),
            _ => format!("113-{n:07}-0000001"),
        };
        let order =
            OrderRequest::new([(listing_key(channel, sku), quantity)]).with_order_id(order_id);
        match fake(&fakes, channel).place_order(&order) {
            Ok(detail) => {
                let order_id = detail["order_id"].as_str().unwrap_or_default().to_owned();
                load.ledger(|l| {
                    l.sent(&format!("{channel} order"));
                    l.hard(sku, quantity);
                    l.orders.push(super::ledger::MarketplaceOrder {
                        order_id,
                        channel: channel.to_owned(),
                        lines: vec![(sku.to_owned(), quantity)],
                        settled: false,
                    });
                });
            }
            Err(_) => load.ledger(|l| l.sent(&format!("{channel} order refused (shows too few)"))),
        }
    }
    Ok(())
}

/// Fault spells on the fake channels: 429 storms, 5xx bursts, hangs past the client's timeout,
/// slow answers, and a listing changed behind stockguard's back.
async fn channel_faults(load: Arc<Load>, fakes: Arc<FakeChannels>, stream: u64) -> Result<()> {
    let mut rng = stream_rng(load.seed, stream);
    let mut spell = 0;
    while load.running() {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_500..3_500))).await;
        let channel = KINDS[rng.random_range(0..KINDS.len())];
        let target = fake(&fakes, channel);
        // Every kind in turn, so that even a short run meets each.
        spell += 1;
        let kind = match spell % 5 {
            0 => FaultKind::ChannelThrottleStorm,
            1 => FaultKind::ChannelServerErrors,
            2 => FaultKind::ChannelTimeouts,
            3 => FaultKind::ChannelSlow,
            _ => FaultKind::ChannelBehindOurBack,
        };
        load.ledger(|l| {
            l.fault(kind, 1);
            l.faulted_channels.insert(channel.to_owned());
        });
        if kind == FaultKind::ChannelBehindOurBack {
            let sku = SKUS[rng.random_range(0..SKUS.len())];
            target.set_shown(&listing_key(channel, sku), rng.random_range(0..60));
            continue;
        }
        let latency = rng.random_range(300..900);
        target.update_settings(|s| match kind {
            FaultKind::ChannelThrottleStorm => s.throttle_rate = 0.9,
            FaultKind::ChannelServerErrors => s.error_rate = 0.7,
            FaultKind::ChannelTimeouts => s.timeout_rate = 0.3,
            _ => s.latency_ms = latency,
        });
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..2_500))).await;
        target.update_settings(|s| *s = quiet_settings(s));
    }
    Ok(())
}

/// Kills the runtime `kills` times, spread over the load, while batches are in flight; starts it
/// again a moment later. Returns the messages in flight (received, not deleted) at each kill.
async fn kill_and_restart(
    load: Arc<Load>,
    host: Arc<Host>,
    kills: u32,
    over: Duration,
) -> Result<Vec<i64>> {
    let sqs = aws_sdk_sqs::Client::new(&load.config);
    let mut in_flight = Vec::new();
    for k in 1..=kills {
        let at = over.mul_f64(f64::from(k) / f64::from(kills + 1));
        tokio::time::sleep_until((load.until - over + at).into()).await;
        let mut flying = 0;
        for (name, q) in &host.stack.queues {
            if name.ends_with("Queue") {
                flying += not_visible(&sqs, &q.url).await?;
            }
        }
        drop(host.runtime.lock().await.take());
        in_flight.push(flying);
        load.ledger(|l| l.fault(FaultKind::RuntimeKill, 1));
        println!("    runtime killed with {flying} messages in flight; restarting");
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let runtime = host.start().await?;
        *host.runtime.lock().await = Some(runtime);
    }
    Ok(in_flight)
}

async fn not_visible(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<i64> {
    use aws_sdk_sqs::types::QueueAttributeName;
    Ok(sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?
        .attributes
        .and_then(|a| {
            a.get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0))
}

/// Until every queue feeding a function is empty (in-flight messages included) for a moment.
async fn wait_for_quiet(stack: &Stack, _fakes: &FakeChannels, timeout: Duration) -> Result<()> {
    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    );
    let deadline = Instant::now() + timeout;
    let mut quiet_since: Option<Instant> = None;
    loop {
        let mut busy = 0;
        for (name, q) in &stack.queues {
            if name.ends_with("Queue") {
                busy += queue_depth(&sqs, &q.url).await?;
            }
        }
        if busy == 0 {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= Duration::from_secs(2) {
                return Ok(());
            }
        } else {
            quiet_since = None;
        }
        if Instant::now() > deadline {
            println!(
                "    still {busy} messages queued after {} s; checking anyway",
                timeout.as_secs()
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

async fn observe(
    deps: &Deps,
    stack: &Stack,
    fakes: &FakeChannels,
    tap: &EventTap,
    ledger: &Ledger,
    skus: &[Sku],
) -> Result<Observed> {
    let mut o = Observed::default();
    for (sku, p) in deps.store.positions(skus).await? {
        o.positions.insert(
            sku.to_string(),
            ObservedPosition {
                on_hand: p.on_hand,
                hard_reserved: p.hard_reserved,
                soft_reserved: p.soft_reserved,
                available: p.available(),
            },
        );
    }
    for a in &ledger.accepted {
        if let Some(r) = deps.store.idempotency(&a.event_id).await? {
            o.records.insert(a.event_id.clone(), r.outcome);
        }
    }
    for id in ledger.held.iter().chain(&ledger.confirmed) {
        let rid = EntityId::parse(id).map_err(anyhow::Error::msg)?;
        if let Some(r) = deps.store.reservation(&rid).await? {
            o.reservations
                .insert(id.clone(), r.status.as_str().to_owned());
        }
    }
    for order in &ledger.orders {
        let id = EntityId::parse(&order.order_id).map_err(anyhow::Error::msg)?;
        if deps.store.order(&id).await?.is_some() {
            o.orders.insert(order.order_id.clone());
        }
    }
    let sqs = aws_sdk_sqs::Client::new(
        &aws_config::defaults(aws_config::BehaviorVersion::latest())
            .load()
            .await,
    );
    for (name, q) in &stack.queues {
        if name.ends_with("DLQ") {
            for (body, reason_code) in read_all(&sqs, &q.url).await? {
                o.dead_letters.push(DeadLetter {
                    queue: name.clone(),
                    body,
                    reason_code,
                });
            }
        }
    }
    for kind in KINDS {
        for sku in SKUS {
            o.shown.push(Shown {
                channel: kind.to_owned(),
                sku: sku.to_owned(),
                quantity: fake(fakes, kind).shown(&listing_key(kind, sku)),
            });
        }
    }
    let published = read_all(&sqs, &tap.queue_url).await?;
    for e in published
        .iter()
        .filter_map(|(b, _)| serde_json::from_str::<Value>(b).ok())
    {
        if e["detail-type"] != "InventoryPositionChanged" {
            continue;
        }
        let d = &e["detail"];
        o.published.push(PublishedPosition {
            sku: d["sku"].as_str().unwrap_or_default().to_owned(),
            version: d["version"].as_i64().unwrap_or(-1),
            available: d["available"].as_i64().unwrap_or(0),
            cause_detail_type: d["cause"]["detail_type"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        });
    }
    Ok(o)
}

/// Every message of a queue that nothing else reads any more, with its `reason_code`: received
/// ten at a time and left invisible rather than deleted one by one.
async fn read_all(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut empty = 0;
    while empty < 3 {
        let messages = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .visibility_timeout(3_600)
            .message_attribute_names("All")
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            empty += 1;
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        empty = 0;
        out.extend(messages.into_iter().map(|m| {
            let reason = m
                .message_attributes()
                .and_then(|a| a.get("reason_code"))
                .and_then(|v| v.string_value())
                .map(str::to_owned);
            (m.body.unwrap_or_default(), reason)
        }));
    }
    Ok(out)
}
