//! The replay (contract section 7): orders and restocks in time order, one pass per strategy.
//!
//! - An order on channel `c` for `q` units at `t` is taken iff `c` shows at least `q` at `t`;
//!   taking it lowers what `c` shows and the true `available` by `q` at once. Taken with
//!   `available < q` just before: an oversell of `q - max(0, available)` units. Refused with
//!   `available ≥ q`: a lost sale. The storefront sees the true `available`.
//! - A push computed at `t` with value `v` sets what `c` shows to `v` at `t + delay(c)`. A channel
//!   applies its pushes in the order they were sent, so a push never lands before an earlier one.
//! - At one instant, restocks apply before orders, orders in file order, and a push that lands
//!   then shows before the next event: with zero delay every channel is always exact. Batch ticks
//!   at an instant are computed after its events.
//!
//! Batch pushes are generated lazily per SKU, when the SKU next has an event: `available` has not
//! moved since, so every tick carries the same value, and ticks that have surely landed need not
//! be drawn one by one.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use rand::SeedableRng;
use rand::rngs::StdRng;
use stockguard_domain::ChannelKind;
use stockguard_domain::Millis;
use stockguard_domain::buffer::{
    BufferMode, ChannelBufferView, DynamicPolicy, RiskInputs, dynamic_buffer,
};
use stockguard_domain::channel::BufferPolicy;
use stockguard_domain::delay::{ChannelHealth, SyncWindow, assess};
use stockguard_domain::velocity::{HourOfWeekProfile, Velocity, hour_of_week};

use crate::model::{AuditInput, Channel, Order, Restock, SkuIndex};
use crate::outcome::{
    AuditOutcome, Bins, Counts, SkuTrace, Steps, Strategy, StrategyOutcome, Timeline,
};
use crate::settings::{Delay, Settings};

/// Bins in the report's time charts.
pub const TIMELINE_BINS: usize = 240;

/// Replays `input` under every strategy. `progress` is told the events replayed so far, out of
/// `3 × (orders + restocks)`.
pub fn run(input: &AuditInput, settings: &Settings, progress: &mut dyn FnMut(u64)) -> AuditOutcome {
    let channels = counted_channels(input, settings);
    let bins = Bins::over(input.start, input.end, TIMELINE_BINS);
    let traced = most_ordered(input, settings.traced_skus);
    let events = (input.orders.len() + input.restocks.len()) as u64;
    let strategies = Strategy::ALL
        .into_iter()
        .enumerate()
        .map(|(i, strategy)| {
            let done = i as u64 * events;
            let mut pass = Pass::new(strategy, input, settings, &channels, &bins, &traced);
            pass.replay(&mut |n| progress(done + n));
            pass.finish()
        })
        .collect();
    AuditOutcome {
        orders: input.orders.len() as u64,
        skus: input.skus.len() as u64,
        start: input.start,
        end: input.end,
        bins,
        channels,
        strategies,
    }
}

/// The marketplace channels with orders or a `CHANNELS.toml` table, in a fixed order.
fn counted_channels(input: &AuditInput, settings: &Settings) -> Vec<Channel> {
    Channel::MARKETPLACES
        .into_iter()
        .filter(|c| settings.configured.contains(c) || input.orders.iter().any(|o| o.channel == *c))
        .collect()
}

/// The `n` SKUs with the most orders (ties: first seen first).
fn most_ordered(input: &AuditInput, n: usize) -> Vec<SkuIndex> {
    let mut orders = vec![0u64; input.skus.len()];
    for o in &input.orders {
        orders[o.sku as usize] += 1;
    }
    let mut ranked: Vec<SkuIndex> = (0..input.skus.len() as SkuIndex).collect();
    ranked.sort_by_key(|&s| Reverse(orders[s as usize]));
    ranked.truncate(n);
    ranked
}

#[derive(Debug, Clone, Copy)]
struct Push {
    arrival: Millis,
    value: i64,
}

/// One marketplace channel's view of one SKU.
#[derive(Debug, Default)]
struct Listing {
    shown: i64,
    /// The buffer behind the last push (dynamic), for the held-back measure.
    buffer: i64,
    pending: VecDeque<Push>,
    last_arrival: Millis,
}

/// A channel's measured delays, as the dynamic buffer sees them: a push's delay is known once it
/// has landed.
struct MeasuredDelay {
    window: SyncWindow,
    in_flight: BinaryHeap<Reverse<(Millis, Millis)>>,
    health: Option<ChannelHealth>,
}

/// Sums over time into the shared bins.
struct BinSums {
    full: Vec<f64>,
    /// Rates over whole bins, as differences (one add per interval, however long).
    rate_steps: Vec<f64>,
}

impl BinSums {
    fn new(count: usize) -> Self {
        Self {
            full: vec![0.0; count],
            rate_steps: vec![0.0; count + 1],
        }
    }

    /// Adds `rate` (units) held over `[from, to)`.
    fn add(&mut self, bins: &Bins, from: Millis, to: Millis, rate: f64) {
        if to <= from || rate == 0.0 {
            return;
        }
        let (i, j) = (bins.of(from), bins.of(to));
        if i == j {
            self.full[i] += rate * (to - from) as f64;
            return;
        }
        self.full[i] += rate * (bins.time_of(i + 1) - from) as f64;
        self.full[j] += rate * (to - bins.time_of(j)) as f64;
        self.rate_steps[i + 1] += rate;
        self.rate_steps[j] -= rate;
    }

    /// Mean units per bin.
    fn means(self, bins: &Bins) -> Vec<f64> {
        let width = bins.width_ms as f64;
        let mut rate = 0.0;
        self.full
            .iter()
            .zip(&self.rate_steps)
            .map(|(sum, step)| {
                rate += step;
                (sum + rate * width) / width
            })
            .collect()
    }
}

struct Trace {
    available: Steps,
    shown: Vec<Steps>,
}

struct Pass<'a> {
    strategy: Strategy,
    input: &'a AuditInput,
    settings: &'a Settings,
    channels: &'a [Channel],
    bins: &'a Bins,
    /// By SKU then channel: `sku * channels.len() + slot`.
    listings: Vec<Listing>,
    available: Vec<i64>,
    /// When each SKU's held-back measure was last brought up to date.
    measured_to: Vec<Millis>,
    /// The next batch tick not yet pushed, per SKU; under event_dynamic, the next recompute.
    next_tick: Vec<Millis>,
    velocity: Vec<Velocity>,
    profile: HourOfWeekProfile,
    /// The profile's factor and the time it was taken at: one sum per instant, not per channel.
    time_of_day: (Millis, f64),
    delays: Vec<MeasuredDelay>,
    policies: Vec<DynamicPolicy>,
    rng: StdRng,
    counts: Counts,
    oversells: Vec<u64>,
    held_back: BinSums,
    available_sum: BinSums,
    /// Trace index per SKU (`usize::MAX`: not traced).
    trace_of: Vec<usize>,
    traced: &'a [SkuIndex],
    traces: Vec<Trace>,
}

impl<'a> Pass<'a> {
    fn new(
        strategy: Strategy,
        input: &'a AuditInput,
        settings: &'a Settings,
        channels: &'a [Channel],
        bins: &'a Bins,
        traced: &'a [SkuIndex],
    ) -> Self {
        let skus = input.skus.len();
        let mut trace_of = vec![usize::MAX; skus];
        for (i, &s) in traced.iter().enumerate() {
            trace_of[s as usize] = i;
        }
        let dynamic = strategy == Strategy::EventDynamic;
        let mut pass = Self {
            strategy,
            input,
            settings,
            channels,
            bins,
            listings: (0..skus * channels.len())
                .map(|_| Listing::default())
                .collect(),
            available: input.start_stock.clone(),
            measured_to: vec![input.start; skus],
            next_tick: vec![
                input.start
                    + match strategy {
                        Strategy::EventDynamic => settings.buffer_recompute_ms,
                        _ => settings.batch_interval_ms,
                    };
                skus
            ],
            velocity: if dynamic {
                vec![Velocity::default(); skus]
            } else {
                Vec::new()
            },
            profile: HourOfWeekProfile::default(),
            time_of_day: (Millis::MIN, 1.0),
            delays: channels
                .iter()
                .map(|_| MeasuredDelay {
                    window: SyncWindow::default(),
                    in_flight: BinaryHeap::new(),
                    health: None,
                })
                .collect(),
            policies: channels
                .iter()
                .map(|&c| settings.dynamic_policy(c))
                .collect(),
            // The same seed in every strategy: each draws its own delays from it.
            rng: StdRng::seed_from_u64(settings.seed),
            counts: Counts::default(),
            oversells: vec![0; bins.count],
            held_back: BinSums::new(bins.count),
            available_sum: BinSums::new(bins.count),
            trace_of,
            traced,
            traces: traced
                .iter()
                .map(|_| Trace {
                    available: Vec::new(),
                    shown: vec![Vec::new(); channels.len()],
                })
                .collect(),
        };
        // Every channel starts out showing its quantity for the start stock.
        for sku in 0..skus as SkuIndex {
            pass.trace_available(sku, input.start);
            for slot in 0..channels.len() {
                let (shown, buffer) = pass.quantity(sku, slot, input.start);
                let listing = &mut pass.listings[sku as usize * channels.len() + slot];
                listing.shown = shown;
                listing.buffer = buffer;
                listing.last_arrival = input.start;
                pass.trace_shown(sku, slot, input.start, shown);
            }
        }
        pass
    }

    fn replay(&mut self, progress: &mut dyn FnMut(u64)) {
        let (orders, restocks) = (&self.input.orders, &self.input.restocks);
        let (mut o, mut r) = (0, 0);
        while o < orders.len() || r < restocks.len() {
            // Restocks first at the same instant.
            if r < restocks.len() && (o == orders.len() || restocks[r].at <= orders[o].at) {
                self.restock(restocks[r]);
                r += 1;
            } else {
                self.order(orders[o]);
                o += 1;
            }
            if (o + r) % 65_536 == 0 {
                progress((o + r) as u64);
            }
        }
        progress((o + r) as u64);
    }

    fn slot_of(&self, channel: Channel) -> Option<usize> {
        self.channels.iter().position(|&c| c == channel)
    }

    fn listing_index(&self, sku: SkuIndex, slot: usize) -> usize {
        sku as usize * self.channels.len() + slot
    }

    fn restock(&mut self, restock: Restock) {
        self.catch_up(restock.sku, restock.at);
        self.available[restock.sku as usize] += i64::from(restock.quantity);
        self.changed(restock.sku, restock.at);
    }

    fn order(&mut self, order: Order) {
        let Order {
            at,
            channel,
            sku,
            quantity,
        } = order;
        let q = i64::from(quantity);
        self.catch_up(sku, at);
        let available = self.available[sku as usize];
        let slot = self.slot_of(channel);
        let taken = match slot {
            None => available >= q,
            Some(slot) => {
                let i = self.listing_index(sku, slot);
                self.land(i, sku, slot, at);
                self.listings[i].shown >= q
            }
        };
        if !taken {
            if available >= q {
                self.counts.lost_sales += 1;
                self.counts.lost_units += u64::from(quantity);
            }
            return;
        }
        if let Some(slot) = slot {
            let i = self.listing_index(sku, slot);
            self.listings[i].shown -= q;
            let shown = self.listings[i].shown;
            self.trace_shown(sku, slot, at, shown);
        }
        if available < q {
            self.counts.oversells += 1;
            self.counts.oversold_units += (q - available.max(0)) as u64;
            self.oversells[self.bins.of(at)] += 1;
        }
        self.counts.orders_taken += 1;
        self.available[sku as usize] -= q;
        if self.strategy == Strategy::EventDynamic {
            self.velocity[sku as usize].record(channel.as_str(), q, at);
            self.profile.units[hour_of_week(at)] += q as f64;
            self.time_of_day.0 = Millis::MIN;
        }
        self.changed(sku, at);
    }

    /// Brings a SKU up to `at` before an event of it: the held-back measure since its last event,
    /// and the batch ticks in between.
    fn catch_up(&mut self, sku: SkuIndex, at: Millis) {
        match self.strategy {
            Strategy::Batch => {
                self.measure(sku, at);
                self.batch_ticks(sku, at);
            }
            Strategy::EventStatic => self.measure(sku, at),
            Strategy::EventDynamic => {
                self.recompute_buffers(sku, at);
                self.measure(sku, at);
            }
        }
    }

    /// The stack's scheduled recompute between a SKU's events: as its sales rate decays, each
    /// buffer that moves is pushed. A SKU whose buffers are all at their minimum is left until its
    /// next event, as the stack leaves a SKU that stopped selling.
    fn recompute_buffers(&mut self, sku: SkuIndex, at: Millis) {
        let every = self.settings.buffer_recompute_ms;
        while self.next_tick[sku as usize] < at {
            let now = self.next_tick[sku as usize];
            let at_minimum = (0..self.channels.len()).all(|slot| {
                self.listings[self.listing_index(sku, slot)].buffer <= self.policies[slot].min_units
            });
            if at_minimum {
                self.next_tick[sku as usize] = Millis::MAX;
                return;
            }
            self.measure(sku, now);
            for slot in 0..self.channels.len() {
                let (value, buffer) = self.quantity(sku, slot, now);
                let i = self.listing_index(sku, slot);
                if buffer != self.listings[i].buffer {
                    self.listings[i].buffer = buffer;
                    self.land(i, sku, slot, now);
                    self.send(i, slot, now, value);
                }
            }
            self.next_tick[sku as usize] = now + every;
        }
    }

    /// Adds `[measured_to, to)` to the held-back measure, at the SKU's current buffers.
    fn measure(&mut self, sku: SkuIndex, to: Millis) {
        let from = std::mem::replace(&mut self.measured_to[sku as usize], to);
        let available = self.available[sku as usize];
        if to <= from || available <= 0 {
            return;
        }
        let buffers: i64 = (0..self.channels.len())
            .map(|slot| match self.strategy {
                Strategy::EventDynamic => self.listings[self.listing_index(sku, slot)].buffer,
                _ => self.static_buffer(available),
            })
            .sum();
        let dt = (to - from) as f64;
        let channels = self.channels.len() as f64;
        self.counts.held_back_unit_ms += buffers as f64 * dt;
        self.counts.available_unit_ms += available as f64 * channels * dt;
        self.held_back.add(self.bins, from, to, buffers as f64);
        self.available_sum
            .add(self.bins, from, to, available as f64 * channels);
    }

    fn static_buffer(&self, available: i64) -> i64 {
        self.static_view().apply(available).buffer
    }

    fn static_view(&self) -> ChannelBufferView {
        ChannelBufferView {
            mode: BufferMode::Static,
            static_policy: BufferPolicy {
                units: 0,
                percent: self.settings.static_buffer_percent,
            },
            dynamic: DynamicPolicy::default(),
            maximum: None,
            stored_dynamic: None,
            delay_ms: 0,
        }
    }

    /// What `slot` should show for `sku` at `at`, and the buffer behind it.
    fn quantity(&mut self, sku: SkuIndex, slot: usize, at: Millis) -> (i64, i64) {
        let available = self.available[sku as usize];
        let view = match self.strategy {
            Strategy::Batch | Strategy::EventStatic => self.static_view(),
            Strategy::EventDynamic => self.dynamic_view(sku, slot, at),
        };
        let applied = view.apply(available);
        (applied.shown, applied.buffer)
    }

    /// Section 5's buffer from what is known at `at`: the SKU's sales so far on every other
    /// channel, the channel's delays measured from pushes that have landed, the hour of week.
    fn dynamic_view(&mut self, sku: SkuIndex, slot: usize, at: Millis) -> ChannelBufferView {
        let channel = self.channels[slot];
        let health = self.measured_health(slot, at);
        let inputs = RiskInputs {
            velocity_elsewhere_per_s: self.velocity[sku as usize]
                .elsewhere_per_second(channel.as_str(), at),
            delay_p95_ms: health.delay_p95_ms,
            health_factor: health.health_factor,
            // Never down: every push in the replay succeeds.
            effective_delay_ms: health.effective_delay_ms(0),
            time_of_day_factor: self.time_of_day_factor(at),
            signal_factor: 1.0,
        };
        let policy = self.policies[slot];
        ChannelBufferView {
            mode: BufferMode::Dynamic,
            static_policy: BufferPolicy::default(),
            dynamic: policy,
            maximum: None,
            stored_dynamic: Some(dynamic_buffer(&inputs, &policy)),
            delay_ms: inputs.effective_delay_ms,
        }
    }

    fn time_of_day_factor(&mut self, at: Millis) -> f64 {
        if self.time_of_day.0 != at {
            self.time_of_day = (at, self.profile.factor(at));
        }
        self.time_of_day.1
    }

    fn measured_health(&mut self, slot: usize, at: Millis) -> ChannelHealth {
        // Only marketplaces are counted (`counted_channels`): each has a kind.
        let kind = self.channels[slot].kind();
        let measured = &mut self.delays[slot];
        while let Some(&Reverse((arrival, delay))) = measured.in_flight.peek() {
            if arrival > at {
                break;
            }
            measured.in_flight.pop();
            measured.window.pushes += 1;
            measured.window.acknowledged.add(delay);
            measured.window.shown.add(delay);
            measured.health = None;
        }
        *measured.health.get_or_insert_with(|| {
            assess(
                &measured.window,
                kind.map_or(0, ChannelKind::prior_delay_ms),
                kind.is_none_or(ChannelKind::shows_on_acknowledge),
            )
        })
    }

    /// After `available` moved: the event strategies push every channel.
    fn changed(&mut self, sku: SkuIndex, at: Millis) {
        self.trace_available(sku, at);
        if self.strategy == Strategy::Batch {
            return;
        }
        if self.strategy == Strategy::EventDynamic {
            self.next_tick[sku as usize] = at + self.settings.buffer_recompute_ms;
        }
        for slot in 0..self.channels.len() {
            let (value, buffer) = self.quantity(sku, slot, at);
            let i = self.listing_index(sku, slot);
            self.listings[i].buffer = buffer;
            // What has landed is applied first, so that a quiet channel's queue stays short.
            self.land(i, sku, slot, at);
            self.send(i, slot, at, value);
        }
    }

    /// Sends a push computed at `at`; it lands after its delay, never before an earlier push.
    fn send(&mut self, i: usize, slot: usize, at: Millis, value: i64) {
        let delay: Delay = self.settings.delay(self.channels[slot]);
        let listing = &mut self.listings[i];
        let arrival = (at + delay.draw(&mut self.rng)).max(listing.last_arrival);
        listing.last_arrival = arrival;
        listing.pending.push_back(Push { arrival, value });
        if self.strategy == Strategy::EventDynamic {
            self.delays[slot]
                .in_flight
                .push(Reverse((arrival, arrival - at)));
        }
    }

    /// Applies the pushes that show by `at`.
    fn land(&mut self, i: usize, sku: SkuIndex, slot: usize, at: Millis) {
        while let Some(&push) = self.listings[i].pending.front() {
            if push.arrival > at {
                break;
            }
            self.listings[i].pending.pop_front();
            self.listings[i].shown = push.value;
            self.trace_shown(sku, slot, push.arrival, push.value);
        }
    }

    /// Sends the batch ticks before `at` that `sku` has not had. `available` has not moved since
    /// the SKU's last event, so they all carry one value. A tick that lands before `at` whatever
    /// its delay need not be drawn, except the first (when the value shows) and the last few
    /// (the latest arrival, which holds back later pushes).
    fn batch_ticks(&mut self, sku: SkuIndex, at: Millis) {
        let interval = self.settings.batch_interval_ms;
        let first = self.next_tick[sku as usize];
        if first >= at {
            return;
        }
        let ticks = (at - 1 - first) / interval + 1;
        self.next_tick[sku as usize] = first + ticks * interval;
        for slot in 0..self.channels.len() {
            let (value, _) = self.quantity(sku, slot, first);
            let delay = self.settings.delay(self.channels[slot]);
            let (min, max) = match delay {
                Delay::Fixed(ms) => (ms, ms),
                Delay::Uniform { min, max } => (min, max),
            };
            // Ticks `0..landed` land before `at`.
            let landed = if first + max < at {
                ((at - 1 - max - first) / interval + 1).min(ticks)
            } else {
                0
            };
            let latest = (max - min + interval - 1) / interval;
            let i = self.listing_index(sku, slot);
            for k in 0..ticks {
                let skippable = k > 0 && k + latest < landed;
                if !skippable {
                    self.send(i, slot, first + k * interval, value);
                }
            }
        }
    }

    fn trace_available(&mut self, sku: SkuIndex, at: Millis) {
        if let Some(trace) = self.traces.get_mut(self.trace_of[sku as usize]) {
            trace.available.push((at, self.available[sku as usize]));
        }
    }

    fn trace_shown(&mut self, sku: SkuIndex, slot: usize, at: Millis, shown: i64) {
        if let Some(trace) = self.traces.get_mut(self.trace_of[sku as usize]) {
            trace.shown[slot].push((at, shown));
        }
    }

    fn finish(mut self) -> StrategyOutcome {
        let end = self.input.end;
        for sku in 0..self.input.skus.len() as SkuIndex {
            if self.strategy == Strategy::EventDynamic {
                self.recompute_buffers(sku, end);
            }
            self.measure(sku, end);
        }
        // What the traced channels show by the end.
        for &sku in self.traced {
            if self.strategy == Strategy::Batch {
                self.batch_ticks(sku, end);
            }
            for slot in 0..self.channels.len() {
                let i = self.listing_index(sku, slot);
                self.land(i, sku, slot, end);
            }
        }
        let traces = self
            .traced
            .iter()
            .zip(self.traces)
            .map(|(&sku, trace)| SkuTrace {
                sku: self.input.skus[sku as usize].clone(),
                available: trace.available,
                shown: self.channels.iter().copied().zip(trace.shown).collect(),
            })
            .collect();
        StrategyOutcome {
            strategy: self.strategy,
            counts: self.counts,
            timeline: Timeline {
                oversells: self.oversells,
                held_back_units: self.held_back.means(self.bins),
                available_units: self.available_sum.means(self.bins),
            },
            traces,
        }
    }
}
