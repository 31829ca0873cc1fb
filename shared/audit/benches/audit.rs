//! The sync-gap audit's figures (`make bench`): replay throughput on one million orders over
//! 5,000 SKUs, and the outcome of each strategy on the flash-sale and steady scenarios. Prints
//! figures; asserts nothing.

use std::time::Instant;

use stockguard_audit::input::{assemble, read_orders, read_restocks, read_stock};
use stockguard_audit::scenario::{Scenario, ScenarioSpec, write_scenario};
use stockguard_audit::sim::run;
use stockguard_audit::{AuditInput, Settings, Strategy};

/// Writes a scenario and reads it back through the audit's own readers.
fn scenario(spec: &ScenarioSpec) -> (AuditInput, f64) {
    let (mut orders, mut stock, mut restocks) = (Vec::new(), Vec::new(), Vec::new());
    write_scenario(spec, &mut orders, &mut stock, &mut restocks).expect("a valid scenario");
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).expect("UTF-8");
    let (orders, stock, restocks) = (text(orders), text(stock), text(restocks));
    let started = Instant::now();
    let input = assemble(
        read_orders("ORDERS.csv", &orders).expect("orders"),
        read_stock("STOCK.csv", &stock).expect("stock"),
        read_restocks("RESTOCKS.csv", &restocks).expect("restocks"),
        "ORDERS.csv",
    )
    .expect("assembled");
    (input, started.elapsed().as_secs_f64())
}

/// The peak resident memory of this process so far, in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

fn throughput() {
    let spec = ScenarioSpec {
        orders: Some(1_000_000),
        ..ScenarioSpec::new(Scenario::Steady, 5_000, 1)
    };
    let (input, read_s) = scenario(&spec);
    let settings = Settings::default();
    let mut seconds = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let outcome = run(&input, &settings, &mut |_| {});
        seconds.push(started.elapsed().as_secs_f64());
        std::hint::black_box(outcome);
    }
    let replay = median(seconds.clone());
    let orders = input.orders.len() as f64;
    println!(
        "replay: {} orders, {} restocks over {} SKUs, all three strategies, one core: median {replay:.2} s of 3 \
         ({:.0} orders/s through all three; runs {}); reading the CSV files {read_s:.2} s; peak memory {} (target: under 60 s)",
        input.orders.len(),
        input.restocks.len(),
        input.skus.len(),
        orders / replay,
        seconds
            .iter()
            .map(|s| format!("{s:.2} s"))
            .collect::<Vec<_>>()
            .join(", "),
        peak_rss_mb().map_or("unknown".to_owned(), |mb| format!("{mb:.0} MB")),
    );
}

/// `event_dynamic` with Amazon's last units held back: the low-stock rule of section 5.
fn low_stock_amazon(settings: &mut Settings) {
    stockguard_audit::input::read_channels("CHANNELS.toml", LOW_STOCK_AMAZON, settings)
        .expect("valid settings");
}

const LOW_STOCK_AMAZON: &str = "[amazon]\nlow_stock_units = 3\n";

fn outcomes(scenario_kind: Scenario, skus: usize) {
    const SEEDS: u64 = 5;
    println!(
        "{scenario_kind}, {skus} SKUs, seeds 1 to {SEEDS}; batch every 15m with a 10% buffer, default channel delays:"
    );
    let mut oversells = [0u64; 3];
    let mut held = [Vec::new(), Vec::new(), Vec::new()];
    let (mut tuned_oversells, mut tuned_lost, mut tuned_held) = (0u64, 0u64, Vec::new());
    for seed in 1..=SEEDS {
        let (input, _) = scenario(&ScenarioSpec::new(scenario_kind, skus, seed));
        let settings = Settings {
            seed,
            ..Settings::default()
        };
        let outcome = run(&input, &settings, &mut |_| {});
        let mut tuned = settings.clone();
        low_stock_amazon(&mut tuned);
        let dynamic = run(&input, &tuned, &mut |_| {})
            .strategy(Strategy::EventDynamic)
            .expect("every strategy")
            .counts
            .clone();
        tuned_oversells += dynamic.oversells;
        tuned_lost += dynamic.lost_sales;
        tuned_held.push(dynamic.held_back_percent());
        let counts: Vec<_> = Strategy::ALL
            .into_iter()
            .map(|s| outcome.strategy(s).expect("every strategy").counts.clone())
            .collect();
        for (i, c) in counts.iter().enumerate() {
            oversells[i] += c.oversells;
            held[i].push(c.held_back_percent());
        }
        println!(
            "  seed {seed}: {} orders; oversells batch {}, event_static {}, event_dynamic {}; \
             lost sales {} / {} / {}; held back {:.2}% / {:.2}% / {:.2}%",
            input.orders.len(),
            counts[0].oversells,
            counts[1].oversells,
            counts[2].oversells,
            counts[0].lost_sales,
            counts[1].lost_sales,
            counts[2].lost_sales,
            counts[0].held_back_percent(),
            counts[1].held_back_percent(),
            counts[2].held_back_percent(),
        );
    }
    // Oversells are rare events: the fraction is taken over every seed's total, not per seed.
    let cut = if oversells[0] == 0 {
        "batch oversold nothing".to_owned()
    } else {
        format!(
            "{} oversells against batch's {} ({:.0}% fewer)",
            oversells[2],
            oversells[0],
            100.0 * (oversells[0] as f64 - oversells[2] as f64) / oversells[0] as f64
        )
    };
    println!(
        "  all seeds: event_dynamic {cut}; event_static {}; median held back: batch {:.2}%, \
         event_static {:.2}%, event_dynamic {:.2}% (goal: 99% fewer oversells, at most 1% held back)",
        oversells[1],
        median(held[0].clone()),
        median(held[1].clone()),
        median(held[2].clone()),
    );
    println!(
        "  event_dynamic with `{}` in CHANNELS.toml: {tuned_oversells} oversells, {tuned_lost} lost sales, \
         median held back {:.2}%",
        LOW_STOCK_AMAZON.replace('\n', " ").trim(),
        median(tuned_held),
    );
}

fn main() {
    // `cargo bench` passes --bench; nothing to filter.
    println!(
        "machine: {} cores",
        std::thread::available_parallelism().map_or(0, |n| n.get())
    );
    throughput();
    outcomes(Scenario::FlashSale, 500);
    outcomes(Scenario::Steady, 500);
}
