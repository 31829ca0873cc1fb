//! The scenario generator's files parse under the contract and behave as documented.

use std::collections::HashMap;

use chrono::DateTime;
use stockguard_audit::Channel;
use stockguard_audit::scenario::{
    ORDERS_HEADER, RESTOCKS_HEADER, STOCK_HEADER, Scenario, ScenarioSpec, ScenarioSummary,
    write_scenario,
};

struct Files {
    orders: String,
    stock: String,
    restocks: String,
    summary: ScenarioSummary,
}

fn generate(spec: &ScenarioSpec) -> Files {
    let (mut orders, mut stock, mut restocks) = (Vec::new(), Vec::new(), Vec::new());
    let summary = write_scenario(spec, &mut orders, &mut stock, &mut restocks).unwrap();
    Files {
        orders: String::from_utf8(orders).unwrap(),
        stock: String::from_utf8(stock).unwrap(),
        restocks: String::from_utf8(restocks).unwrap(),
        summary,
    }
}

fn ms(raw: &str) -> i64 {
    // The contract's times, as the generator writes them: UTC with milliseconds.
    assert!(raw.ends_with('Z') && raw.len() == 24, "{raw}");
    DateTime::parse_from_rfc3339(raw)
        .unwrap_or_else(|e| panic!("{raw}: {e}"))
        .timestamp_millis()
}

/// (time, channel, sku, quantity) per order, checking every field as the contract reads it.
fn orders(files: &Files) -> Vec<(i64, Channel, String, u32)> {
    let mut lines = files.orders.lines();
    assert_eq!(lines.next(), Some(ORDERS_HEADER));
    let mut ids = std::collections::HashSet::new();
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 5, "{line}");
            let quantity: u32 = f[3].parse().unwrap();
            assert!(quantity >= 1, "{line}");
            assert!(ids.insert(f[4].to_string()), "repeated order id: {line}");
            (
                ms(f[0]),
                Channel::parse(f[1]).unwrap(),
                f[2].to_string(),
                quantity,
            )
        })
        .collect()
}

#[test]
fn files_have_the_contract_headers_and_parse_under_it() {
    for scenario in Scenario::ALL {
        let files = generate(&ScenarioSpec::new(scenario, 40, 7));
        let rows = orders(&files);
        assert_eq!(rows.len() as u64, files.summary.orders, "{scenario}");
        assert!(
            rows.windows(2).all(|w| w[0].0 <= w[1].0),
            "{scenario}: orders are sorted by time"
        );
        assert!(
            rows.iter()
                .all(|r| r.0 >= files.summary.start && r.0 < files.summary.end)
        );
        assert_eq!(
            rows.iter().map(|r| u64::from(r.3)).sum::<u64>(),
            files.summary.ordered_units
        );

        let mut stock = files.stock.lines();
        assert_eq!(stock.next(), Some(STOCK_HEADER));
        let stock: Vec<(String, u64)> = stock
            .map(|line| {
                let (sku, units) = line.split_once(',').unwrap();
                (sku.to_string(), units.parse().unwrap())
            })
            .collect();
        assert_eq!(stock.len(), 40);
        assert_eq!(stock[0].0, "SKU-0001");
        assert_eq!(
            stock.iter().map(|s| s.1).sum::<u64>(),
            files.summary.stocked_units
        );
        let skus: std::collections::HashSet<&str> = stock.iter().map(|s| s.0.as_str()).collect();
        assert!(rows.iter().all(|r| skus.contains(r.2.as_str())));

        let mut restocks = files.restocks.lines();
        assert_eq!(restocks.next(), Some(RESTOCKS_HEADER));
        let restocks: Vec<(i64, String, u64)> = restocks
            .map(|line| {
                let f: Vec<&str> = line.split(',').collect();
                assert_eq!(f.len(), 3, "{line}");
                (ms(f[0]), f[1].to_string(), f[2].parse().unwrap())
            })
            .collect();
        assert_eq!(restocks.len() as u64, files.summary.restocks);
        assert!(restocks.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(
            restocks
                .iter()
                .all(|r| r.2 > 0 && skus.contains(r.1.as_str()))
        );
    }
}

#[test]
fn a_seed_gives_the_same_files_and_another_seed_does_not() {
    let spec = ScenarioSpec::new(Scenario::ViralSpike, 50, 42);
    let a = generate(&spec);
    let b = generate(&spec);
    assert_eq!(a.orders, b.orders);
    assert_eq!(a.stock, b.stock);
    assert_eq!(a.restocks, b.restocks);
    assert_eq!(a.summary, b.summary);
    let c = generate(&ScenarioSpec { seed: 43, ..spec });
    assert_ne!(a.orders, c.orders);
}

#[test]
fn the_order_count_asked_for_is_met() {
    for scenario in Scenario::ALL {
        let spec = ScenarioSpec {
            orders: Some(20_000),
            ..ScenarioSpec::new(scenario, 300, 1)
        };
        let files = generate(&spec);
        let n = files.summary.orders as f64;
        // Poisson noise is about ±1% (one standard deviation is √20000 ≈ 141).
        assert!((n - 20_000.0).abs() < 600.0, "{scenario}: {n}");
        assert_eq!(orders(&files).len() as f64, n);
    }
}

#[test]
fn days_set_the_window() {
    let files = generate(&ScenarioSpec {
        days: Some(2),
        ..ScenarioSpec::new(Scenario::Steady, 20, 3)
    });
    assert_eq!(files.summary.end - files.summary.start, 2 * 86_400_000);
    let bad = write_scenario(
        &ScenarioSpec::new(Scenario::Steady, 0, 3),
        &mut Vec::new(),
        &mut Vec::new(),
        &mut Vec::new(),
    );
    assert!(bad.unwrap_err().to_string().contains("--skus 0"));
}

#[test]
fn a_flash_sale_has_its_peak_where_the_summary_says() {
    let files = generate(&ScenarioSpec {
        orders: Some(30_000),
        ..ScenarioSpec::new(Scenario::FlashSale, 200, 9)
    });
    let [event] = files.summary.events.as_slice() else {
        panic!("one sale: {:?}", files.summary.events)
    };
    assert_eq!(event.signal, "add_to_cart_surge");
    let lead = event.peak_at - event.signal_at;
    assert!((5 * 60_000..=15 * 60_000).contains(&lead), "{lead}");
    let sale: std::collections::HashSet<&str> =
        event.peaks.iter().map(|(sku, _)| sku.as_str()).collect();
    assert_eq!(sale.len(), 10);

    let rows = orders(&files);
    let in_hour = |from: i64, only_sale: bool| {
        rows.iter()
            .filter(|r| r.0 >= from && r.0 < from + 3_600_000)
            .filter(|r| !only_sale || sale.contains(r.2.as_str()))
            .count() as f64
    };
    let peak = event.peak_at;
    let day_before = peak - 86_400_000;
    // The sale SKUs sell at 10-30x; the whole catalogue visibly more.
    let (sale_peak, sale_before) = (in_hour(peak, true), in_hour(day_before, true));
    assert!(
        sale_peak > 8.0 * sale_before.max(1.0),
        "{sale_peak} vs {sale_before}"
    );
    let (all_peak, all_before) = (in_hour(peak, false), in_hour(day_before, false));
    assert!(all_peak > 2.0 * all_before, "{all_peak} vs {all_before}");

    // The extra demand lands on the seller's own store.
    let mut by_channel: HashMap<Channel, usize> = HashMap::new();
    for r in rows
        .iter()
        .filter(|r| r.0 >= peak && r.0 < peak + 3_600_000)
    {
        *by_channel.entry(r.1).or_default() += 1;
    }
    assert!(by_channel[&Channel::Shopify] > by_channel[&Channel::Amazon]);
}

#[test]
fn the_popular_skus_run_out_and_some_are_restocked() {
    let files = generate(&ScenarioSpec::new(Scenario::Steady, 100, 5));
    let rows = orders(&files);
    let stock: HashMap<String, u64> = files
        .stock
        .lines()
        .skip(1)
        .map(|l| {
            let (s, u) = l.split_once(',').unwrap();
            (s.to_string(), u.parse().unwrap())
        })
        .collect();
    let mut demand: HashMap<&str, u64> = HashMap::new();
    for r in &rows {
        *demand.entry(r.2.as_str()).or_default() += u64::from(r.3);
    }
    // A long tail: the best seller alone outsells the bottom half.
    let bottom_half: u64 = (51..=100)
        .map(|i| {
            demand
                .get(format!("SKU-{i:04}").as_str())
                .copied()
                .unwrap_or(0)
        })
        .sum();
    assert!(
        demand["SKU-0001"] > bottom_half,
        "{} vs {bottom_half}",
        demand["SKU-0001"]
    );
    let short = (1..=10)
        .filter(|i| {
            let sku = format!("SKU-{i:04}");
            demand.get(sku.as_str()).copied().unwrap_or(0) > stock[&sku]
        })
        .count();
    assert!(short >= 3, "only {short} of the top 10 SKUs sell out");
    assert!(files.summary.restocks > 0);
}

/// `cargo test --release -p stockguard-audit --test scenario -- --ignored --nocapture`: the
/// benchmark's input size, written to a sink.
#[test]
#[ignore]
fn a_million_orders_over_five_thousand_skus() {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len() as u64;
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    for scenario in Scenario::ALL {
        let spec = ScenarioSpec {
            orders: Some(1_000_000),
            ..ScenarioSpec::new(scenario, 5_000, 1)
        };
        let started = std::time::Instant::now();
        let (mut orders, mut stock, mut restocks) = (Count(0), Count(0), Count(0));
        let summary = write_scenario(&spec, &mut orders, &mut stock, &mut restocks).unwrap();
        println!(
            "{scenario}: {} orders, {} units, {} stocked, {} restocks ({} units), {} MB in {:?}",
            summary.orders,
            summary.ordered_units,
            summary.stocked_units,
            summary.restocks,
            summary.restocked_units,
            orders.0 / 1_000_000,
            started.elapsed()
        );
        assert!((summary.orders as f64 - 1e6).abs() < 5_000.0);
    }
}

/// The contract's own readers take the files as they are, and a flash sale gives batch sync
/// something to oversell that event-driven sync with dynamic buffers mostly avoids.
#[test]
fn a_simulated_flash_sale_oversells_under_batch_sync() {
    use stockguard_audit::{Settings, Strategy, input, sim};

    let files = generate(&ScenarioSpec {
        orders: Some(20_000),
        ..ScenarioSpec::new(Scenario::FlashSale, 200, 11)
    });
    let audit_input = input::assemble(
        input::read_orders("ORDERS.csv", &files.orders).unwrap(),
        input::read_stock("STOCK.csv", &files.stock).unwrap(),
        input::read_restocks("RESTOCKS.csv", &files.restocks).unwrap(),
        "ORDERS.csv",
    )
    .unwrap();
    assert_eq!(audit_input.orders.len() as u64, files.summary.orders);
    assert!(audit_input.unstocked_skus.is_empty());

    let outcome = sim::run(&audit_input, &Settings::default(), &mut |_| {});
    let oversells = |s: Strategy| outcome.strategy(s).unwrap().counts.oversells;
    assert!(oversells(Strategy::Batch) > 0);
    assert!(
        oversells(Strategy::EventDynamic) < oversells(Strategy::Batch),
        "{} vs {}",
        oversells(Strategy::EventDynamic),
        oversells(Strategy::Batch)
    );
}
