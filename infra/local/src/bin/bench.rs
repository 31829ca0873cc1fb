//! Reservations per second against the emulator: 16 concurrent clients on one hot SKU through the
//! reservations HTTP API, and the oversell count (must be 0). Prints figures; asserts nothing
//! about time.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::json;
use stockguard_domain::Sku;
use stockguard_handlers::{Deps, Settings};
use stockguard_local::{LocalRuntime, RuntimeOptions, StackSpec, provision};

const CLIENTS: usize = 16;
const STOCK: i64 = 600;
const ATTEMPTS_PER_CLIENT: usize = 50;
const ROUNDS: usize = 3;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    std::env::var("AWS_ENDPOINT_URL")
        .context("AWS_ENDPOINT_URL is not set: run through infra/with-emulator.sh (make bench)")?;
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let spec = StackSpec::load_default()?;
    let stack = provision(&config, &spec, "bench-", "bench-bus").await?;
    let options = RuntimeOptions {
        api_addr: Some("127.0.0.1:0".parse()?),
        ..Default::default()
    };
    let rt = LocalRuntime::start(&config, &spec, &stack, options).await?;
    let api = format!(
        "http://{}/v1/reservations",
        rt.api_addr.context("API address")?
    );
    let deps = Deps::new(&config, &stack.table, &stack.bus, None, Settings::default());
    let client = reqwest::Client::new();
    println!(
        "machine: {} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        cpu_model()
    );
    println!(
        "{CLIENTS} clients x {ATTEMPTS_PER_CLIENT} single-unit reservations on one SKU holding {STOCK} units, {ROUNDS} rounds (HTTP API -> DynamoDB in moto)"
    );

    let mut rates = Vec::new();
    let mut latencies = Vec::new();
    let mut oversells = 0i64;
    for round in 0..ROUNDS {
        let sku = format!("BENCH-HOT-{round}");
        let detail = json!({"event_id": format!("bench-rcv-{round}"), "occurred_at": chrono::Utc::now().to_rfc3339(), "sku": sku, "quantity": STOCK});
        stockguard_handlers::apply_inbound(&deps, "bench.erp", "StockReceived", &detail)
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
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
        let sku = Sku::parse(&sku).map_err(anyhow::Error::msg)?;
        let p = deps
            .store
            .positions(std::slice::from_ref(&sku))
            .await?
            .remove(&sku)
            .unwrap_or_default();
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
    drop(rt);
    if oversells != 0 {
        bail!("oversold {oversells} units");
    }
    Ok(())
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
