//! The replay on inputs small enough to work out on paper, and its properties on generated ones.

use proptest::prelude::{ProptestConfig, prop, prop_assert, prop_assert_eq, proptest};
use proptest::strategy::Strategy as _;
use stockguard_audit::input::{assemble, read_orders, read_restocks, read_stock};
use stockguard_audit::outcome::Counts;
use stockguard_audit::sim::run;
use stockguard_audit::{AuditInput, AuditOutcome, Channel, Delay, Settings, Strategy};
use stockguard_domain::buffer::risk_units;

fn input(orders: &str, stock: &str, restocks: &str) -> AuditInput {
    let orders = read_orders(
        "ORDERS.csv",
        &format!("occurred_at,channel,sku,quantity\n{orders}"),
    )
    .expect("orders");
    let stock = read_stock("STOCK.csv", &format!("sku,on_hand\n{stock}")).expect("stock");
    let restocks = read_restocks(
        "RESTOCKS.csv",
        &format!("occurred_at,sku,quantity\n{restocks}"),
    )
    .expect("restocks");
    assemble(orders, stock, restocks, "ORDERS.csv").expect("assembled")
}

fn settings(percent: f64, delays: &[(Channel, Delay)]) -> Settings {
    let mut settings = Settings {
        static_buffer_percent: percent,
        ..Settings::default()
    };
    settings.delays.extend(delays.iter().copied());
    settings
}

fn counts(outcome: &AuditOutcome, strategy: Strategy) -> &Counts {
    &outcome
        .strategy(strategy)
        .expect("every strategy runs")
        .counts
}

/// (orders taken, oversells, oversold units, lost sales, lost units)
fn tally(c: &Counts) -> (u64, u64, u64, u64, u64) {
    (
        c.orders_taken,
        c.oversells,
        c.oversold_units,
        c.lost_sales,
        c.lost_units,
    )
}

const MINUTE: i64 = 60_000;

/// 2 units. Shopify shows at once, Amazon a minute after a push; no static buffer.
/// - 10:00:00 shopify 1: taken everywhere, 1 left.
///   event_static pushes 1 to Amazon (shows at 10:01); event_dynamic pushes 0: one unit sold
///   elsewhere in the last 15 minutes is λ = 1/900 per second, Amazon's delay is its 15-minute
///   prior (nothing measured yet), so λ·d = 1 and the buffer is the Poisson quantile 4, capped by
///   the 1 unit available.
/// - 10:05:00 shopify 1: taken everywhere (Shopify's own buffer is 0: no sales elsewhere), 0 left;
///   the event strategies push 0 to Amazon, showing at 10:06.
/// - 10:05:30 amazon 1: batch still shows the start's 2, event_static the 1 of 10:01: both take it
///   and oversell 1 unit. event_dynamic shows 0 and refuses; with 0 available that is no lost sale.
#[test]
fn a_late_channel_oversells_unless_its_buffer_covers_the_sales_elsewhere() {
    assert_eq!(risk_units(1.0, 0.01), 4);
    let input = input(
        "2026-03-02T10:00:00Z,shopify,A,1\n\
         2026-03-02T10:05:00Z,shopify,A,1\n\
         2026-03-02T10:05:30Z,amazon,A,1\n",
        "A,2\n",
        "",
    );
    let settings = settings(
        0.0,
        &[
            (Channel::Shopify, Delay::Fixed(0)),
            (Channel::Amazon, Delay::Fixed(MINUTE)),
        ],
    );
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(tally(counts(&outcome, Strategy::Batch)), (3, 1, 1, 0, 0));
    assert_eq!(
        tally(counts(&outcome, Strategy::EventStatic)),
        (3, 1, 1, 0, 0)
    );
    assert_eq!(
        tally(counts(&outcome, Strategy::EventDynamic)),
        (2, 0, 0, 0, 0)
    );
    // From 10:00 to 10:05 one unit was available on two channels, and only Amazon held it back.
    let dynamic = counts(&outcome, Strategy::EventDynamic);
    assert_eq!(dynamic.held_back_percent(), 50.0);
    assert_eq!(counts(&outcome, Strategy::Batch).held_back_percent(), 0.0);
    assert_eq!(outcome.channels, [Channel::Shopify, Channel::Amazon]);
}

/// The recompute every 5 minutes gives units back as sales elsewhere cool down. 5 units; Shopify
/// sells 1 at 10:00, so Amazon's buffer is 4 (λ·d = 1, as above) and it is pushed 0. At the 10:05
/// recompute the 15-minute rate has decayed by e^(-1/3): λ·d = 0.72, whose 1% quantile is 3, so
/// Amazon is pushed 1 (showing at 10:06) and takes the order of 10:07. Without the recompute it
/// would still show 0 and refuse a unit that was there.
#[test]
fn the_recompute_gives_units_back_as_sales_elsewhere_cool_down() {
    assert_eq!(risk_units((-1.0f64 / 3.0).exp(), 0.01), 3);
    let input = input(
        "2026-03-02T10:00:00Z,shopify,A,1\n\
         2026-03-02T10:07:00Z,amazon,A,1\n",
        "A,5\n",
        "",
    );
    let mut settings = settings(
        0.0,
        &[
            (Channel::Shopify, Delay::Fixed(0)),
            (Channel::Amazon, Delay::Fixed(MINUTE)),
        ],
    );
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(
        tally(counts(&outcome, Strategy::EventDynamic)),
        (2, 0, 0, 0, 0)
    );
    settings.buffer_recompute_ms = 60 * MINUTE;
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(
        tally(counts(&outcome, Strategy::EventDynamic)),
        (1, 0, 0, 1, 1)
    );
}

/// A CHANNELS.toml `low_stock_units` reaches the domain's low-stock rule: at 2 units or fewer,
/// Amazon (its delay is its 15-minute prior, above the 1-minute limit) shows 0.
#[test]
fn the_low_stock_rule_hides_the_last_units_from_a_slow_channel() {
    let input = input(
        "2026-03-02T10:00:00Z,amazon,A,1\n\
         2026-03-02T10:05:00Z,amazon,A,1\n",
        "A,3\n",
        "",
    );
    let mut settings = settings(0.0, &[(Channel::Amazon, Delay::Fixed(MINUTE))]);
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(
        tally(counts(&outcome, Strategy::EventDynamic)),
        (2, 0, 0, 0, 0)
    );
    stockguard_audit::input::read_channels(
        "CHANNELS.toml",
        "[amazon]\ndelay = \"1m\"\nlow_stock_units = 2\n",
        &mut settings,
    )
    .unwrap();
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(
        tally(counts(&outcome, Strategy::EventDynamic)),
        (1, 0, 0, 1, 1)
    );
}

/// 1 unit, a 10% buffer: `ceil(1 × 10%) = 1` hides it on every marketplace.
/// - 10:00 amazon 1: refused with the unit in stock: a lost sale, under every strategy (the dynamic
///   buffer is 0 with no sales, but nothing has been pushed yet: Amazon shows the start's value).
///   Under event_dynamic the start shows 1 (no demand, no buffer), so it is taken.
/// - 10:10 storefront 1: the storefront sees the true 1 (or 0 under event_dynamic).
#[test]
fn a_static_buffer_turns_the_last_unit_into_a_lost_sale() {
    let input = input(
        "2026-03-02T10:00:00Z,amazon,A,1\n\
         2026-03-02T10:10:00Z,storefront,A,1\n",
        "A,1\n",
        "",
    );
    let settings = settings(10.0, &[(Channel::Amazon, Delay::Fixed(0))]);
    let outcome = run(&input, &settings, &mut |_| {});
    for strategy in [Strategy::Batch, Strategy::EventStatic] {
        let c = counts(&outcome, strategy);
        assert_eq!(tally(c), (1, 0, 0, 1, 1), "{strategy:?}");
        // The one unit was held back on the one marketplace for the whole 10 minutes.
        assert_eq!(c.held_back_percent(), 100.0, "{strategy:?}");
    }
    let dynamic = counts(&outcome, Strategy::EventDynamic);
    assert_eq!(tally(dynamic), (1, 0, 0, 0, 0));
    assert_eq!(dynamic.held_back_percent(), 0.0);
}

/// Batch pushes only every 15 minutes: a restock at 10:02 shows on Amazon at the 10:15 tick.
/// - 10:01 amazon 1: 1 unit, shown 1: taken, 0 left (Amazon shows 0).
/// - 10:02 restock 5.
/// - 10:10 amazon 2: batch shows 0: refused with 5 available: a lost sale of 2 units. The event
///   strategies pushed the restock at 10:02 (Amazon delay 0): taken.
/// - 10:20 amazon 5: batch's 10:15 tick shows 5: taken (5 left, no oversell); event_static shows
///   3 and refuses with 3 available (3 < 5): no lost sale.
#[test]
fn batch_shows_a_restock_only_at_its_next_tick() {
    let input = input(
        "2026-03-02T10:01:00Z,amazon,A,1\n\
         2026-03-02T10:10:00Z,amazon,A,2\n\
         2026-03-02T10:20:00Z,amazon,A,5\n",
        "A,1\n",
        "2026-03-02T10:02:00Z,A,5\n",
    );
    let settings = settings(0.0, &[(Channel::Amazon, Delay::Fixed(0))]);
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(tally(counts(&outcome, Strategy::Batch)), (2, 0, 0, 1, 2));
    assert_eq!(
        tally(counts(&outcome, Strategy::EventStatic)),
        (2, 0, 0, 0, 0)
    );
}

/// Batch's stale count oversells: 3 units, Amazon and eBay both show 3 until the 10:15 tick.
/// - 10:01 amazon 2 (1 left), 10:02 ebay 2: eBay still shows 3: taken with 1 available, an
///   oversell of 1 unit; -1 left.
/// - 10:16 ebay 1: the 10:15 tick pushed max(0, -1) = 0: refused, and not a lost sale.
#[test]
fn batch_oversells_between_ticks_and_counts_only_the_missing_units() {
    let input = input(
        "2026-03-02T10:00:00Z,storefront,B,1\n\
         2026-03-02T10:01:00Z,amazon,A,2\n\
         2026-03-02T10:02:00Z,ebay,A,2\n\
         2026-03-02T10:16:00Z,ebay,A,1\n",
        "A,3\nB,1\n",
        "",
    );
    let settings = settings(
        0.0,
        &[
            (Channel::Amazon, Delay::Fixed(0)),
            (Channel::Ebay, Delay::Fixed(0)),
        ],
    );
    let outcome = run(&input, &settings, &mut |_| {});
    assert_eq!(tally(counts(&outcome, Strategy::Batch)), (3, 1, 1, 0, 0));
    // Pushed after every change with no delay, nothing oversells.
    assert_eq!(
        tally(counts(&outcome, Strategy::EventStatic)),
        (3, 0, 0, 0, 0)
    );
    assert_eq!(outcome.orders, 4);
    assert_eq!(outcome.skus, 2);
}

/// A channel delay longer than the batch interval: ticks pile up and land in order.
#[test]
fn pushes_land_in_the_order_they_were_sent_whatever_their_delays() {
    let input = input(
        "2026-03-02T10:00:00Z,storefront,A,1\n\
         2026-03-02T13:00:00Z,storefront,A,1\n\
         2026-03-02T16:00:00Z,amazon,A,10\n",
        "A,10\n",
        "",
    );
    let mut settings = settings(
        0.0,
        &[(
            Channel::Amazon,
            Delay::Uniform {
                min: MINUTE,
                max: 60 * MINUTE,
            },
        )],
    );
    settings.batch_interval_ms = 5 * MINUTE;
    for seed in 0..20 {
        settings.seed = seed;
        let outcome = run(&input, &settings, &mut |_| {});
        // By 16:00 every push before 15:00 has landed: Amazon shows the 8 of 13:00 or later.
        let batch = counts(&outcome, Strategy::Batch);
        // 10 asked, 8 shown and 8 available: refused, and not a lost sale.
        assert_eq!(tally(batch), (2, 0, 0, 0, 0), "seed {seed}");
        let trace = &outcome.strategy(Strategy::Batch).unwrap().traces[0];
        let amazon = &trace.shown[0].1;
        assert!(
            amazon.windows(2).all(|w| w[0].0 <= w[1].0),
            "seed {seed}: {amazon:?}"
        );
        assert_eq!(amazon.last().unwrap().1, 8, "seed {seed}");
    }
}

/// Why "a longer interval never oversells less" holds only in aggregate: 7 units, a 10% buffer.
/// Shopify sells 4 at 10:05; Amazon asks for 3 at 10:11. Every 5 minutes, the 10:10 tick shows
/// Amazon `3 - ceil(0.3) = 2`: refused, a lost sale, and 3 units stay. Amazon sells 2 of them at
/// 12:41; at 12:45 Shopify still shows the 12:40 tick's 2 and oversells 1. Every 15 minutes,
/// Amazon still shows the start's 6 at 10:11 and takes the 3: nothing is left to oversell later.
#[test]
fn a_shorter_interval_can_oversell_more_after_a_lost_sale() {
    let input = input(
        "2026-03-02T10:05:00Z,shopify,A,1\n\
         2026-03-02T10:05:00Z,shopify,A,3\n\
         2026-03-02T10:11:00Z,amazon,A,3\n\
         2026-03-02T12:41:00Z,amazon,A,2\n\
         2026-03-02T12:45:00Z,shopify,A,2\n",
        "A,7\n",
        "",
    );
    let batch_every = |minutes: i64| {
        let mut settings = no_delays(10.0);
        settings.batch_interval_ms = minutes * MINUTE;
        let outcome = run(&input, &settings, &mut |_| {});
        tally(counts(&outcome, Strategy::Batch))
    };
    assert_eq!(batch_every(5), (4, 1, 1, 1, 3));
    assert_eq!(batch_every(15), (3, 0, 0, 0, 0));
}

fn arbitrary_history(
    restocks: bool,
    max_quantity: u32,
) -> impl proptest::strategy::Strategy<Value = AuditInput> {
    let order = (0i64..600, 0usize..5, 0u32..3, 1u32..=max_quantity);
    let restock = (0i64..600, 0u32..3, 1u32..6);
    (
        prop::collection::vec(order, 1..60),
        prop::collection::vec(restock, 0..(if restocks { 8 } else { 1 })),
        prop::collection::vec(0i64..8, 3),
    )
        .prop_map(move |(orders, restock_rows, stock)| {
            let at = |minute: i64| {
                stockguard_domain::types::format_timestamp(1_772_445_600_000 + minute * MINUTE)
            };
            let orders: String = orders
                .iter()
                .map(|(m, c, s, q)| format!("{},{},S{s},{q}\n", at(*m), Channel::ALL[*c]))
                .collect();
            let stock: String = stock
                .iter()
                .enumerate()
                .map(|(s, n)| format!("S{s},{n}\n"))
                .collect();
            let restock_rows: String = if restocks {
                restock_rows
                    .iter()
                    .map(|(m, s, q)| format!("{},S{s},{q}\n", at(*m)))
                    .collect()
            } else {
                String::new()
            };
            input(&orders, &stock, &restock_rows)
        })
}

fn no_delays(percent: f64) -> Settings {
    let zero: Vec<(Channel, Delay)> = Channel::MARKETPLACES
        .into_iter()
        .map(|c| (c, Delay::Fixed(0)))
        .collect();
    settings(percent, &zero)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// With every channel exact at once, pushing after every change oversells nothing, and with
    /// no buffer it refuses nothing that was in stock.
    #[test]
    fn zero_delay_and_zero_buffer_event_sync_is_exact(input in arbitrary_history(true, 3)) {
        let outcome = run(&input, &no_delays(0.0), &mut |_| {});
        let c = counts(&outcome, Strategy::EventStatic);
        prop_assert_eq!(c.oversells, 0);
        prop_assert_eq!(c.lost_sales, 0);
    }

    /// On the same orders, a longer batch interval never oversells less: with stock only falling,
    /// orders of one unit and no static buffer. Beyond that it does not hold order by order:
    /// see `a_shorter_interval_can_oversell_more_after_a_lost_sale`.
    #[test]
    fn batch_oversells_never_fall_as_the_interval_grows(input in arbitrary_history(false, 1)) {
        let mut previous = 0;
        for minutes in [1, 5, 15, 60, 240] {
            let mut settings = no_delays(0.0);
            settings.batch_interval_ms = minutes * MINUTE;
            let outcome = run(&input, &settings, &mut |_| {});
            let oversells = counts(&outcome, Strategy::Batch).oversells;
            prop_assert!(oversells >= previous, "{} min: {} < {}", minutes, oversells, previous);
            previous = oversells;
        }
    }

    /// The counts add up, the held-back share is a percentage, and a seed repeats a run.
    #[test]
    fn counts_are_consistent_and_repeatable(input in arbitrary_history(true, 3), seed in 0u64..4) {
        let settings = Settings { seed, ..Settings::default() };
        let outcome = run(&input, &settings, &mut |_| {});
        prop_assert_eq!(&outcome, &run(&input, &settings, &mut |_| {}));
        for s in &outcome.strategies {
            let c = &s.counts;
            prop_assert!(c.orders_taken + c.lost_sales <= outcome.orders);
            prop_assert!(c.oversells <= c.orders_taken);
            prop_assert!(c.oversold_units >= c.oversells);
            let held = c.held_back_percent();
            prop_assert!((0.0..=100.0).contains(&held), "{}", held);
            let timeline: u64 = s.timeline.oversells.iter().sum();
            prop_assert_eq!(timeline, c.oversells);
        }
    }
}
