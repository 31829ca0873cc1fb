//! Made-up but realistic order histories (`stockguard simulate`), in the contract's own formats:
//! `ORDERS.csv`, `STOCK.csv` and `RESTOCKS.csv`, for sellers who want to try the audit before
//! exporting anything, and for tests and benchmarks. The demand model and its numbers are
//! documented in docs/audit-inputs.md.
//!
//! Orders are written as they are generated, in time order: demand is a Poisson process whose rate
//! is constant within each 30-second slice, so only the per-SKU plan is held in memory.

use std::f64::consts::TAU;
use std::fmt;
use std::io::{self, BufWriter, Write};

use chrono::DateTime;
use rand::rngs::StdRng;
use rand::seq::index;
use rand::{Rng, SeedableRng};
use stockguard_domain::Millis;

use crate::model::Channel;

pub const ORDERS_HEADER: &str = "occurred_at,channel,sku,quantity,order_id";
pub const STOCK_HEADER: &str = "sku,on_hand";
pub const RESTOCKS_HEADER: &str = "occurred_at,sku,quantity";

/// Every scenario starts at 2026-03-02T00:00:00Z, a Monday, so a seed always gives the same files.
pub const START_MS: Millis = 1_772_409_600_000;

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// The demand rate is held constant over slices this long (exact for a piecewise-constant rate;
/// short enough that a five-minute ramp has ten steps).
const SLICE_MS: Millis = 30 * SECOND;
/// The daily cycle follows a seller on US Eastern time (UTC−5).
const LOCAL_OFFSET_MS: Millis = -5 * HOUR;
/// Orders per SKU per day at the catalogue's mean, when no order count is asked for.
const DEFAULT_ORDERS_PER_SKU_PER_DAY: f64 = 4.0;
/// The popularity of the SKU of rank `k` (from 1) is `1 / k^ZIPF_EXPONENT`.
const ZIPF_EXPONENT: f64 = 1.0;

/// Channels with the share of orders each takes.
type Mix = &'static [(Channel, f64)];
/// Units per order with their probabilities.
type Units = &'static [(u32, f64)];

/// The everyday channel mix.
const BASELINE_MIX: [(Channel, f64); 5] = [
    (Channel::Amazon, 0.40),
    (Channel::Shopify, 0.30),
    (Channel::Walmart, 0.12),
    (Channel::Ebay, 0.08),
    (Channel::Storefront, 0.10),
];
/// A seller's own sale is announced to their own customers: the extra demand lands on the store.
const FLASH_SALE_MIX: [(Channel, f64); 5] = [
    (Channel::Shopify, 0.45),
    (Channel::Storefront, 0.35),
    (Channel::Amazon, 0.10),
    (Channel::Walmart, 0.05),
    (Channel::Ebay, 0.05),
];
/// A social mention mostly links to a marketplace listing or the brand's shop.
const VIRAL_MIX: [(Channel, f64); 5] = [
    (Channel::Amazon, 0.55),
    (Channel::Shopify, 0.30),
    (Channel::Storefront, 0.05),
    (Channel::Walmart, 0.05),
    (Channel::Ebay, 0.05),
];
/// A competitor out of stock on the marketplaces sends its shoppers to the other marketplace
/// listings.
const COMPETITOR_MIX: [(Channel, f64); 5] = [
    (Channel::Amazon, 0.55),
    (Channel::Walmart, 0.25),
    (Channel::Ebay, 0.15),
    (Channel::Shopify, 0.05),
    (Channel::Storefront, 0.0),
];

/// Units per order: mostly one.
const BASELINE_UNITS: [(u32, f64); 3] = [(1, 0.80), (2, 0.15), (3, 0.05)];
/// Deal buyers stock up.
const SALE_UNITS: [(u32, f64); 3] = [(1, 0.65), (2, 0.25), (3, 0.10)];

/// The demand curves `stockguard simulate` can write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scenario {
    Steady,
    FlashSale,
    ViralSpike,
    CompetitorStockout,
}

impl Scenario {
    pub const ALL: [Scenario; 4] = [
        Scenario::Steady,
        Scenario::FlashSale,
        Scenario::ViralSpike,
        Scenario::CompetitorStockout,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Scenario::Steady => "steady",
            Scenario::FlashSale => "flash-sale",
            Scenario::ViralSpike => "viral-spike",
            Scenario::CompetitorStockout => "competitor-stockout",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Scenario::ALL
            .into_iter()
            .find(|s| s.as_str() == raw)
            .ok_or_else(|| {
                format!(
                    "scenario {raw:?} is not one of: steady, flash-sale, viral-spike, \
                     competitor-stockout"
                )
            })
    }

    /// One sentence for `--help` and the summary.
    pub fn describe(self) -> &'static str {
        match self {
            Scenario::Steady => {
                "a normal week: long-tail demand with a daily cycle, popular SKUs running low and \
                 some restocks"
            }
            Scenario::FlashSale => {
                "a planned sale on the seller's own store: demand on a set of popular SKUs ramps \
                 over 5-15 minutes (add-to-cart surges lead the orders) to 10-30x, holds for one to \
                 two hours, then decays"
            }
            Scenario::ViralSpike => {
                "a social mention: one to three SKUs climb over 30-60 minutes to 20-50x and decay \
                 over hours"
            }
            Scenario::CompetitorStockout => {
                "a competitor runs out: several SKUs step up 3-5x over a few hours on the \
                 marketplaces and stay there for one to two days"
            }
        }
    }

    /// The window when `days` is not given.
    pub fn default_days(self) -> u32 {
        match self {
            Scenario::Steady | Scenario::CompetitorStockout => 7,
            Scenario::FlashSale | Scenario::ViralSpike => 3,
        }
    }

    /// The demand signal a live stack would receive for this scenario's event (section 5).
    fn signal(self) -> Option<&'static str> {
        match self {
            Scenario::Steady => None,
            Scenario::FlashSale => Some("add_to_cart_surge"),
            Scenario::ViralSpike => Some("social_mention_velocity"),
            Scenario::CompetitorStockout => Some("competitor_stockout"),
        }
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What to generate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioSpec {
    pub scenario: Scenario,
    pub skus: usize,
    pub seed: u64,
    /// The window's length; the scenario's default when `None`.
    pub days: Option<u32>,
    /// The expected number of orders (met within Poisson noise); about four per SKU per day when
    /// `None`.
    pub orders: Option<u64>,
}

impl ScenarioSpec {
    pub fn new(scenario: Scenario, skus: usize, seed: u64) -> Self {
        Self {
            scenario,
            skus,
            seed,
            days: None,
            orders: None,
        }
    }

    pub fn days(&self) -> u32 {
        self.days.unwrap_or_else(|| self.scenario.default_days())
    }

    fn validate(&self) -> Result<(), String> {
        if self.skus == 0 || self.skus > 1_000_000 {
            return Err(format!(
                "--skus {} must be between 1 and 1000000",
                self.skus
            ));
        }
        let days = self.days();
        if days == 0 || days > 366 {
            return Err(format!("--days {days} must be between 1 and 366"));
        }
        if self.orders.is_some_and(|n| n > 100_000_000) {
            return Err("--orders must be at most 100000000".to_string());
        }
        Ok(())
    }
}

/// One demand event: when its signal starts, when orders peak, and how high each SKU goes.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioEvent {
    /// The `DemandSignal` kind a live stack would receive at `signal_at`.
    pub signal: &'static str,
    pub signal_at: Millis,
    /// `peak_at - signal_at` is the lead time a signal gives the buffers.
    pub peak_at: Millis,
    /// When demand starts falling back.
    pub decay_from: Millis,
    /// Each SKU and its peak demand as a multiple of its usual rate.
    pub peaks: Vec<(String, f64)>,
}

/// What [`write_scenario`] wrote.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSummary {
    pub scenario: Scenario,
    pub start: Millis,
    /// The window's end (exclusive); the last order is before it.
    pub end: Millis,
    pub skus: usize,
    pub orders: u64,
    pub ordered_units: u64,
    pub stocked_units: u64,
    pub restocks: u64,
    pub restocked_units: u64,
    pub events: Vec<ScenarioEvent>,
}

/// How a SKU's demand rises and falls during an event: a smooth ramp from 1× to `peak` over
/// `ramp_ms` from `start`, a hold, then an exponential decay back towards 1×.
#[derive(Debug, Clone, Copy)]
struct Envelope {
    start: Millis,
    ramp_ms: Millis,
    hold_ms: Millis,
    half_life_ms: Millis,
}

impl Envelope {
    /// 0 before the event, 1 at its height.
    fn level(&self, t: Millis) -> f64 {
        let since = t - self.start;
        if since <= 0 {
            0.0
        } else if since < self.ramp_ms {
            let x = since as f64 / self.ramp_ms as f64;
            x * x * (3.0 - 2.0 * x)
        } else if since < self.ramp_ms + self.hold_ms {
            1.0
        } else {
            let after = (since - self.ramp_ms - self.hold_ms) as f64;
            (-after * std::f64::consts::LN_2 / self.half_life_ms as f64).exp()
        }
    }

    fn peak_at(&self) -> Millis {
        self.start + self.ramp_ms
    }

    fn decay_from(&self) -> Millis {
        self.peak_at() + self.hold_ms
    }
}

/// One SKU's extra demand during an event.
#[derive(Debug, Clone, Copy)]
struct Boost {
    sku: usize,
    envelope: Envelope,
    peak: f64,
    /// Whether the seller stocked for it (a planned sale) or not.
    planned: bool,
    mix: Mix,
    units: Units,
}

impl Boost {
    /// The extra rate as a multiple of the SKU's usual rate.
    fn extra(&self, t: Millis) -> f64 {
        (self.peak - 1.0) * self.envelope.level(t)
    }
}

/// Writes a scenario's three files: stock first, then restocks, then the orders as they are
/// generated. Wrap nothing: each writer is buffered here.
pub fn write_scenario(
    spec: &ScenarioSpec,
    orders: &mut impl Write,
    stock: &mut impl Write,
    restocks: &mut impl Write,
) -> io::Result<ScenarioSummary> {
    spec.validate()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut rng = StdRng::seed_from_u64(spec.seed);
    let n = spec.skus;
    let start = START_MS;
    let end = start + i64::from(spec.days()) * DAY;
    let names = sku_names(n);

    // Popularity: a long tail, SKU-0001 the best seller.
    let weights: Vec<f64> = {
        let raw: Vec<f64> = (1..=n)
            .map(|k| 1.0 / (k as f64).powf(ZIPF_EXPONENT))
            .collect();
        let total: f64 = raw.iter().sum();
        raw.into_iter().map(|w| w / total).collect()
    };
    let cdf: Vec<f64> = weights
        .iter()
        .scan(0.0, |acc, w| {
            *acc += w;
            Some(*acc)
        })
        .collect();

    let (boosts, events) = plan_events(spec.scenario, spec.days(), &names, &mut rng);

    // First pass over the slices, at one order per ms per unit of catalogue weight: the integral of
    // the daily cycle and of each boost, to scale the rate to the order count asked for and to
    // size each SKU's stock.
    let mut cycle_integral = 0.0;
    let mut boost_integrals = vec![0.0; boosts.len()];
    let mut slice_start = start;
    while slice_start < end {
        let slice_end = (slice_start + SLICE_MS).min(end);
        let mid = slice_start + (slice_end - slice_start) / 2;
        let dt = (slice_end - slice_start) as f64;
        let d = daily_cycle(mid);
        cycle_integral += d * dt;
        for (b, boost) in boosts.iter().enumerate() {
            boost_integrals[b] += d * dt * weights[boost.sku] * boost.extra(mid);
        }
        slice_start = slice_end;
    }
    let unit_total = cycle_integral + boost_integrals.iter().sum::<f64>();
    let scale = match spec.orders {
        Some(target) => target as f64 / unit_total,
        None => n as f64 * DEFAULT_ORDERS_PER_SKU_PER_DAY / DAY as f64,
    };

    // Stock: enough for between half and 1.4 times what the seller planned for (the everyday rate,
    // and a planned sale), never below a few units. The popular SKUs run low or out; events the
    // seller did not plan for run them out sooner.
    let mean_units =
        |units: &[(u32, f64)]| units.iter().map(|(q, p)| f64::from(*q) * p).sum::<f64>();
    let mut planned_units: Vec<f64> = weights
        .iter()
        .map(|w| scale * w * cycle_integral * mean_units(&BASELINE_UNITS))
        .collect();
    let mut expected_units = planned_units.clone();
    for (b, boost) in boosts.iter().enumerate() {
        let extra = scale * boost_integrals[b] * mean_units(boost.units);
        expected_units[boost.sku] += extra;
        if boost.planned {
            planned_units[boost.sku] += extra;
        }
    }
    let on_hand: Vec<u64> = planned_units
        .iter()
        .map(|planned| {
            let coverage = rng.random_range(0.5..1.4);
            let floor = rng.random_range(3..=12u64);
            ((planned * coverage).round() as u64).max(floor)
        })
        .collect();

    let mut stock = BufWriter::new(stock);
    writeln!(stock, "{STOCK_HEADER}")?;
    for (name, units) in names.iter().zip(&on_hand) {
        writeln!(stock, "{name},{units}")?;
    }
    stock.flush()?;

    // Restocks: most SKUs expected to sell out get a delivery in the later part of the window,
    // during receiving hours, in case packs of six.
    let days = i64::from(spec.days());
    let mut planned_restocks: Vec<(Millis, usize, u64)> = Vec::new();
    for sku in 0..n {
        if expected_units[sku] <= on_hand[sku] as f64 || !rng.random_bool(0.6) {
            continue;
        }
        let first_day = (days * 3 / 10).min(days - 1);
        let day = rng.random_range(first_day..days);
        let local_hour = rng.random_range(8..17);
        let at =
            start + day * DAY + local_hour * HOUR - LOCAL_OFFSET_MS + rng.random_range(0..HOUR);
        if at >= end {
            continue;
        }
        let units = (expected_units[sku] * rng.random_range(0.4..0.9)).ceil() as u64;
        let units = units.div_ceil(6).max(1) * 6;
        planned_restocks.push((at, sku, units));
    }
    planned_restocks.sort_unstable();
    let mut restocks = BufWriter::new(restocks);
    let mut clock = Clock::default();
    writeln!(restocks, "{RESTOCKS_HEADER}")?;
    for (at, sku, units) in &planned_restocks {
        clock.write(&mut restocks, *at)?;
        writeln!(restocks, ",{},{units}", names[*sku])?;
    }
    restocks.flush()?;

    // Orders: arrivals of a Poisson process, the rate constant within each slice (memorylessness
    // lets each slice start afresh at its boundary). Each arrival is a baseline order, drawn from
    // the whole catalogue, or one of a boosted SKU's extra orders.
    let mut out = BufWriter::with_capacity(1 << 16, orders);
    writeln!(out, "{ORDERS_HEADER}")?;
    let mut extras = vec![0.0; boosts.len()];
    let mut order_count = 0u64;
    let mut ordered_units = 0u64;
    let mut slice_start = start;
    while slice_start < end {
        let slice_end = (slice_start + SLICE_MS).min(end);
        let mid = slice_start + (slice_end - slice_start) / 2;
        let d = daily_cycle(mid);
        let base = scale * d;
        let mut total = base;
        for (b, boost) in boosts.iter().enumerate() {
            extras[b] = scale * d * weights[boost.sku] * boost.extra(mid);
            total += extras[b];
        }
        let mut t = slice_start as f64;
        if total > 0.0 {
            loop {
                t += -(1.0 - rng.random::<f64>()).ln() / total;
                if t >= slice_end as f64 {
                    break;
                }
                let mut pick = rng.random::<f64>() * total;
                let (sku, mix, units): (usize, Mix, Units) = if pick < base {
                    let u: f64 = rng.random();
                    let sku = cdf.partition_point(|&c| c < u).min(n - 1);
                    (sku, &BASELINE_MIX, &BASELINE_UNITS)
                } else {
                    pick -= base;
                    let mut chosen = boosts.len() - 1;
                    for (b, extra) in extras.iter().enumerate() {
                        if pick < *extra {
                            chosen = b;
                            break;
                        }
                        pick -= extra;
                    }
                    let boost = &boosts[chosen];
                    (boost.sku, boost.mix, boost.units)
                };
                let channel = draw(&mut rng, mix);
                let quantity = draw(&mut rng, units);
                order_count += 1;
                ordered_units += u64::from(quantity);
                clock.write(&mut out, t as Millis)?;
                writeln!(
                    out,
                    ",{},{},{quantity},SIM-{order_count:07}",
                    channel.as_str(),
                    names[sku]
                )?;
            }
        }
        slice_start = slice_end;
    }
    out.flush()?;

    Ok(ScenarioSummary {
        scenario: spec.scenario,
        start,
        end,
        skus: n,
        orders: order_count,
        ordered_units,
        stocked_units: on_hand.iter().sum(),
        restocks: planned_restocks.len() as u64,
        restocked_units: planned_restocks.iter().map(|r| r.2).sum(),
        events,
    })
}

/// `SKU-0001` … with as many digits as the count needs (at least four).
fn sku_names(n: usize) -> Vec<String> {
    let width = n.to_string().len().max(4);
    (1..=n).map(|i| format!("SKU-{i:0width$}")).collect()
}

/// Demand relative to the day's mean at `t`: quietest around 03:00 local (about 0.3), busiest
/// around 20:00 local (about 1.55), averaging exactly 1 over a day.
fn daily_cycle(t: Millis) -> f64 {
    let local_hour = ((t + LOCAL_OFFSET_MS).rem_euclid(DAY)) as f64 / HOUR as f64;
    1.0 + 0.55 * (TAU * (local_hour - 17.0) / 24.0).cos()
        + 0.2 * (2.0 * TAU * (local_hour - 21.0) / 24.0).cos()
}

/// Draws from a small discrete distribution whose probabilities sum to 1.
fn draw<T: Copy>(rng: &mut StdRng, table: &[(T, f64)]) -> T {
    let mut u: f64 = rng.random();
    for (value, p) in table {
        if u < *p {
            return *value;
        }
        u -= p;
    }
    table[table.len() - 1].0
}

/// `count` distinct SKU ranks from `lo..hi` (clamped to the catalogue), in rank order.
fn pick_skus(rng: &mut StdRng, n: usize, lo: usize, hi: usize, count: usize) -> Vec<usize> {
    let lo = lo.min(n - 1);
    let hi = hi.clamp(lo + 1, n);
    let count = count.clamp(1, hi - lo);
    let mut picked: Vec<usize> = index::sample(rng, hi - lo, count)
        .into_iter()
        .map(|i| lo + i)
        .collect();
    picked.sort_unstable();
    picked
}

/// The scenario's events: which SKUs, when, how high. Events happen on the middle day of the
/// window at a local hour typical of their kind.
fn plan_events(
    scenario: Scenario,
    days: u32,
    names: &[String],
    rng: &mut StdRng,
) -> (Vec<Boost>, Vec<ScenarioEvent>) {
    let n = names.len();
    let event_day = START_MS + i64::from(days / 2) * DAY;
    let at_local = |hour: i64| event_day + hour * HOUR - LOCAL_OFFSET_MS;
    let mut boosts = Vec::new();
    let mut events = Vec::new();
    let mut add_event =
        |envelope: Envelope, skus: Vec<(usize, f64)>, planned: bool, mix: Mix, units: Units| {
            for &(sku, peak) in &skus {
                boosts.push(Boost {
                    sku,
                    envelope,
                    peak,
                    planned,
                    mix,
                    units,
                });
            }
            events.push(ScenarioEvent {
                signal: scenario.signal().unwrap_or(""),
                signal_at: envelope.start,
                peak_at: envelope.peak_at(),
                decay_from: envelope.decay_from(),
                peaks: skus
                    .into_iter()
                    .map(|(sku, peak)| (names[sku].clone(), peak))
                    .collect(),
            });
        };
    match scenario {
        Scenario::Steady => {}
        Scenario::FlashSale => {
            // A sale at noon on a set of the popular SKUs.
            let count = (n / 20).clamp(1, 50);
            let skus = pick_skus(rng, n, 0, (n / 5).max(count), count);
            let envelope = Envelope {
                start: at_local(12),
                ramp_ms: rng.random_range(5..=15) * MINUTE,
                hold_ms: rng.random_range(60..=120) * MINUTE,
                half_life_ms: 45 * MINUTE,
            };
            let skus = skus
                .into_iter()
                .map(|sku| (sku, rng.random_range(10.0..30.0)))
                .collect();
            add_event(envelope, skus, true, &FLASH_SALE_MIX, &SALE_UNITS);
        }
        Scenario::ViralSpike => {
            // A mention in the afternoon of one to three SKUs that sell, but are not the best
            // sellers; each takes off a few minutes apart.
            let count = rng.random_range(1..=3);
            let skus = pick_skus(rng, n, 2, (n / 10).max(2 + count), count);
            let first = at_local(14);
            for sku in skus {
                let envelope = Envelope {
                    start: first + rng.random_range(0..=30) * MINUTE,
                    ramp_ms: rng.random_range(30..=60) * MINUTE,
                    hold_ms: rng.random_range(0..=20) * MINUTE,
                    half_life_ms: rng.random_range(120..=240) * MINUTE,
                };
                let peak = rng.random_range(20.0..50.0);
                add_event(
                    envelope,
                    vec![(sku, peak)],
                    false,
                    &VIRAL_MIX,
                    &BASELINE_UNITS,
                );
            }
        }
        Scenario::CompetitorStockout => {
            // From the morning, shoppers find the seller's listings over a few hours and keep
            // coming for a day or two, until the competitor restocks.
            let count = (n / 25).clamp(1, 100);
            let skus = pick_skus(rng, n, 0, (n * 3 / 10).max(count), count);
            let envelope = Envelope {
                start: at_local(9),
                ramp_ms: rng.random_range(120..=240) * MINUTE,
                hold_ms: rng.random_range(24..=48) * HOUR,
                half_life_ms: 6 * HOUR,
            };
            let skus = skus
                .into_iter()
                .map(|sku| (sku, rng.random_range(3.0..5.0)))
                .collect();
            add_event(envelope, skus, false, &COMPETITOR_MIX, &BASELINE_UNITS);
        }
    }
    (boosts, events)
}

/// Writes times as RFC 3339 UTC with milliseconds, formatting the date only when the day changes.
#[derive(Default)]
struct Clock {
    day: Option<i64>,
    date: String,
}

impl Clock {
    fn write(&mut self, out: &mut impl Write, ms: Millis) -> io::Result<()> {
        let day = ms.div_euclid(DAY);
        if self.day != Some(day) {
            let midnight = DateTime::from_timestamp_millis(day * DAY)
                .expect("scenario times are within chrono's range");
            self.date = midnight.format("%Y-%m-%d").to_string();
            self.day = Some(day);
        }
        let in_day = ms.rem_euclid(DAY);
        write!(
            out,
            "{}T{:02}:{:02}:{:02}.{:03}Z",
            self.date,
            in_day / HOUR,
            in_day % HOUR / MINUTE,
            in_day % MINUTE / SECOND,
            in_day % SECOND
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_start_is_a_monday_at_midnight_utc() {
        let start = DateTime::from_timestamp_millis(START_MS).unwrap();
        assert_eq!(start.to_rfc3339(), "2026-03-02T00:00:00+00:00");
        assert_eq!(start.format("%A").to_string(), "Monday");
    }

    #[test]
    fn the_daily_cycle_averages_one_and_is_quiet_at_night() {
        let samples: Vec<f64> = (0..24 * 60)
            .map(|m| daily_cycle(START_MS + m * MINUTE))
            .collect();
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((mean - 1.0).abs() < 1e-9, "{mean}");
        let at_local = |h: i64| daily_cycle(START_MS + h * HOUR - LOCAL_OFFSET_MS);
        assert!(at_local(3) < 0.4, "{}", at_local(3));
        assert!(at_local(20) > 1.5, "{}", at_local(20));
    }

    #[test]
    fn the_clock_writes_rfc3339_utc_with_millis() {
        let mut out = Vec::new();
        let mut clock = Clock::default();
        clock
            .write(&mut out, START_MS + 13 * HOUR + 5 * MINUTE + 7_089)
            .unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "2026-03-02T13:05:07.089Z");
    }

    #[test]
    fn an_envelope_ramps_holds_and_decays() {
        let e = Envelope {
            start: 0,
            ramp_ms: 10 * MINUTE,
            hold_ms: HOUR,
            half_life_ms: 30 * MINUTE,
        };
        assert_eq!(e.level(-1), 0.0);
        assert!((e.level(5 * MINUTE) - 0.5).abs() < 1e-9);
        assert_eq!(e.level(30 * MINUTE), 1.0);
        assert!((e.level(e.decay_from() + 30 * MINUTE) - 0.5).abs() < 1e-9);
    }
}
