//! The report as a seller sees it: a three-day audit rendered by headless Chromium through
//! `infra/check-report.sh`, which fails on console messages and on a blank screenshot. Skipped,
//! with a notice, only where Chromium is not installed (`make setup` installs it).

use std::path::{Path, PathBuf};
use std::process::Command;

use stockguard_audit::outcome::{Bins, Counts, SkuTrace, Steps, StrategyOutcome, Timeline};
use stockguard_audit::report::render_report;
use stockguard_audit::{AuditInput, AuditOutcome, Channel, Order, Restock, Settings, Strategy};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 60 * MINUTE;
/// 2026-11-02T00:00:00Z.
const START: i64 = 1_793_577_600_000;
const END: i64 = START + 72 * HOUR - 7 * MINUTE;

/// A small deterministic generator, so the fixture is the same on every run.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> f64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Evening peaks: orders come faster between 17:00 and 22:00 UTC.
fn demand(at: i64) -> f64 {
    let hour = (at - START).rem_euclid(24 * HOUR) / HOUR;
    if (17..22).contains(&hour) { 3.0 } else { 1.0 }
}

/// One SKU's orders: (time, channel), one unit each.
fn orders(seed: u64, per_hour: f64) -> Vec<(i64, Channel)> {
    let mut rng = Lcg(seed);
    let mut at = START;
    let mut out = Vec::new();
    while at < END {
        let gap = -(1.0 - rng.next()).ln() * HOUR as f64 / (per_hour * demand(at));
        at += gap as i64 + 1;
        let channel = Channel::MARKETPLACES[(rng.next() * 4.0) as usize % 4];
        out.push((at.min(END), channel));
    }
    out
}

fn delay(channel: Channel) -> i64 {
    match channel {
        Channel::Amazon => 10 * MINUTE,
        Channel::Walmart => MINUTE / 2,
        Channel::Ebay => MINUTE / 4,
        _ => 3_000,
    }
}

/// A rough single-SKU replay for the traces: what is true and what each channel shows.
fn trace(sku: &str, stock: i64, sales: &[(i64, Channel)], strategy: Strategy) -> SkuTrace {
    let buffer = |available: i64| match strategy {
        Strategy::EventDynamic => (available as f64 * 0.04).ceil() as i64,
        _ => (available as f64 * 0.10).ceil() as i64,
    };
    let restock_at = START + 40 * HOUR;
    let mut available = stock;
    let mut shown: Vec<i64> = vec![stock - buffer(stock); 4];
    let mut available_steps: Steps = vec![(START, available)];
    let mut shown_steps: Vec<Steps> = shown.iter().map(|v| vec![(START, *v)]).collect();
    let mut pending: Vec<(i64, usize, i64)> = Vec::new();
    let mut restocked = false;
    let mut next_batch = START + 15 * MINUTE;
    let push_all = |at: i64, value: i64, pending: &mut Vec<(i64, usize, i64)>| {
        for (i, c) in Channel::MARKETPLACES.iter().enumerate() {
            pending.push((at + delay(*c), i, value));
        }
    };
    for &(at, channel) in sales {
        // Apply pushes and batch ticks due before this sale.
        loop {
            if strategy == Strategy::Batch && next_batch <= at {
                push_all(next_batch, available - buffer(available), &mut pending);
                next_batch += 15 * MINUTE;
                continue;
            }
            if !restocked && restock_at <= at {
                restocked = true;
                available += stock;
                available_steps.push((restock_at, available));
                if strategy != Strategy::Batch {
                    push_all(restock_at, available - buffer(available), &mut pending);
                }
                continue;
            }
            pending.sort_by_key(|p| p.0);
            if let Some(&(due, i, value)) = pending.first().filter(|p| p.0 <= at) {
                pending.remove(0);
                shown[i] = value.max(0);
                shown_steps[i].push((due, shown[i]));
                continue;
            }
            break;
        }
        let i = Channel::MARKETPLACES
            .iter()
            .position(|c| *c == channel)
            .unwrap();
        if shown[i] >= 1 {
            shown[i] -= 1;
            shown_steps[i].push((at, shown[i]));
            available -= 1;
            available_steps.push((at, available));
            if strategy != Strategy::Batch {
                push_all(at, available - buffer(available), &mut pending);
            }
        }
    }
    SkuTrace {
        sku: sku.to_owned(),
        available: available_steps,
        shown: Channel::MARKETPLACES.into_iter().zip(shown_steps).collect(),
    }
}

fn fixture() -> AuditOutcome {
    let bins = Bins::over(START, END, 288);
    let skus = [
        ("MUG-BLK-12OZ", 160, 11, 3.0),
        ("Socks & Tights <3-pack>", 45, 12, 0.9),
        ("TEE-\"CLASSIC\"-M", 30, 13, 0.9),
    ];
    let mut strategies = Vec::new();
    for (s, strategy) in Strategy::ALL.into_iter().enumerate() {
        let mut rng = Lcg(7 + s as u64);
        let rate = [0.22, 0.08, 0.025][s];
        let buffer = [0.10, 0.10, 0.035][s];
        let mut timeline = Timeline {
            oversells: Vec::new(),
            held_back_units: Vec::new(),
            available_units: Vec::new(),
        };
        for i in 0..bins.count {
            let at = bins.time_of(i);
            let hours = (at - START) as f64 / HOUR as f64;
            let stock = 4200.0 - 1500.0 * (hours % 40.0) / 40.0 + 150.0 * rng.next();
            let chance = rate * demand(at);
            timeline
                .oversells
                .push(u64::from(rng.next() < chance) + u64::from(rng.next() < chance / 4.0));
            timeline
                .held_back_units
                .push(stock * buffer * (0.9 + 0.2 * rng.next()));
            timeline.available_units.push(stock);
        }
        let oversells: u64 = timeline.oversells.iter().sum();
        let counts = Counts {
            orders_taken: [5812, 5874, 5931][s],
            oversells,
            oversold_units: oversells + oversells / 5,
            lost_sales: [131, 96, 31][s],
            lost_units: [164, 118, 37][s],
            held_back_unit_ms: timeline.held_back_units.iter().sum::<f64>() * bins.width_ms as f64,
            available_unit_ms: timeline.available_units.iter().sum::<f64>() * bins.width_ms as f64,
        };
        let traces = skus
            .iter()
            .map(|(sku, stock, seed, rate)| trace(sku, *stock, &orders(*seed, *rate), strategy))
            .collect();
        strategies.push(StrategyOutcome {
            strategy,
            counts,
            timeline,
            traces,
        });
    }
    AuditOutcome {
        orders: 6012,
        skus: 148,
        start: START,
        end: END,
        bins,
        channels: Channel::MARKETPLACES.to_vec(),
        strategies,
    }
}

fn chromium() -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| [dir.join("chromium"), dir.join("chromium-browser")])
        .find(|p| p.is_file())
}

/// Runs `infra/check-report.sh` on `html`: whether it passed, and what it said.
fn run_check(name: &str, html: &str) -> (bool, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-renders");
    std::fs::create_dir_all(&dir).unwrap();
    let report = dir.join(format!("{name}.html"));
    let shot = dir.join(format!("{name}.png"));
    std::fs::write(&report, html).unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/check-report.sh");
    let output = Command::new("bash")
        .arg(&script)
        .arg(&report)
        .arg(&shot)
        .output()
        .unwrap();
    let said = format!(
        "{}{}screenshot: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
        shot.display()
    );
    (output.status.success(), said)
}

fn check(name: &str, html: &str) {
    let (passed, said) = run_check(name, html);
    assert!(passed, "{name}: {said}");
    println!("{said}");
}

fn have_chromium() -> bool {
    let found = chromium().is_some();
    if !found {
        println!(
            "SKIPPED: chromium is not installed (make setup installs it); report not rendered"
        );
    }
    found
}

#[test]
fn a_three_day_audit_renders_in_a_browser() {
    if chromium().is_none() {
        println!(
            "SKIPPED: chromium is not installed (make setup installs it); report not rendered"
        );
        return;
    }
    check(
        "three-days",
        &render_report(&fixture(), &Settings::default()),
    );
}

/// A six-hour flash sale on four SKUs, replayed by the audit's own simulation, so the browser sees
/// the shapes the replay really produces.
fn flash_sale() -> AuditInput {
    let skus = [
        "HOODIE-GRY-L",
        "CAP-RED",
        "BOTTLE-1L",
        "<script>alert(1)</script>",
    ];
    let mut rng = Lcg(42);
    let mut orders = Vec::new();
    let mut at = START + 18 * HOUR;
    while at < START + 24 * HOUR {
        // The sale peaks in its second hour.
        let peak = ((at - START - 18 * HOUR) as f64 / HOUR as f64 - 1.5).abs();
        let per_hour = 240.0 / (1.0 + peak * peak);
        at += (-(1.0 - rng.next()).ln() * HOUR as f64 / per_hour) as i64 + 1;
        let sku = (rng.next().powi(2) * skus.len() as f64) as u32;
        let channel = Channel::ALL[(rng.next() * 5.0) as usize % 5];
        orders.push(Order {
            at,
            channel,
            sku,
            quantity: 1 + u32::from(rng.next() < 0.15),
        });
    }
    AuditInput {
        skus: skus.iter().map(|s| s.to_string()).collect(),
        start_stock: vec![220, 140, 90, 40],
        start: orders[0].at,
        end: orders.last().unwrap().at,
        restocks: vec![Restock {
            at: START + 21 * HOUR,
            sku: 0,
            quantity: 120,
        }],
        orders,
        unstocked_skus: Vec::new(),
    }
}

#[test]
fn a_replayed_flash_sale_renders_in_a_browser() {
    if !have_chromium() {
        return;
    }
    let settings = Settings::default();
    let outcome = stockguard_audit::sim::run(&flash_sale(), &settings, &mut |_| {});
    let html = render_report(&outcome, &settings);
    assert!(!html.contains("<script>alert"));
    check("flash-sale", &html);
}

#[test]
fn a_one_order_audit_renders_in_a_browser() {
    if chromium().is_none() {
        println!(
            "SKIPPED: chromium is not installed (make setup installs it); report not rendered"
        );
        return;
    }
    let mut outcome = fixture();
    outcome.end = outcome.start;
    outcome.orders = 1;
    outcome.bins = Bins::over(outcome.start, outcome.end, 288);
    for s in &mut outcome.strategies {
        s.counts = Counts {
            orders_taken: 1,
            ..Counts::default()
        };
        s.timeline = Timeline {
            oversells: vec![0],
            held_back_units: vec![0.0],
            available_units: vec![3.0],
        };
        s.traces.clear();
    }
    check("one-order", &render_report(&outcome, &Settings::default()));
}

/// The check itself is checked: it must catch the failures it exists for.
#[test]
fn the_check_fails_on_a_blank_page() {
    if !have_chromium() {
        return;
    }
    let (passed, said) = run_check(
        "blank",
        "<!DOCTYPE html><html><head><title>x</title></head><body></body></html>",
    );
    assert!(!passed && said.contains("looks blank"), "{said}");
}

#[test]
fn the_check_fails_on_a_console_error() {
    if !have_chromium() {
        return;
    }
    let mut html = render_report(&fixture(), &Settings::default());
    html = html.replace("</main>", "<script>notDefined();</script></main>");
    let (passed, said) = run_check("console-error", &html);
    assert!(
        !passed && said.contains("Uncaught ReferenceError"),
        "{said}"
    );
}
