//! Dynamic channel buffers (contract section 5): the units a channel does not show, sized from the
//! risk that it sells units it no longer has while a change is still on its way to it.
//!
//! `buffer(c, s) = min(available, clamp(min_units, risk_units(λ·d, risk_target), max_units))`.

use serde::{Deserialize, Serialize};

use crate::channel::BufferPolicy;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BufferMode {
    Static,
    /// The default for the marketplace adapters.
    #[default]
    Dynamic,
}

impl BufferMode {
    pub fn as_str(self) -> &'static str {
        match self {
            BufferMode::Static => "static",
            BufferMode::Dynamic => "dynamic",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        match raw {
            "static" => Ok(BufferMode::Static),
            "dynamic" => Ok(BufferMode::Dynamic),
            other => Err(format!(
                "buffer mode {other:?} is not one of: static, dynamic"
            )),
        }
    }
}

/// A channel's dynamic-mode settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DynamicPolicy {
    /// The accepted probability of selling a unit that is gone while a change is on its way.
    pub risk_target: f64,
    pub min_units: i64,
    pub max_units: Option<i64>,
    /// At or below this `available` a slow channel shows 0 (0: off).
    pub low_stock_units: i64,
    /// "Slow" for the low-stock rule: a measured delay above this.
    pub low_stock_max_delay_ms: i64,
}

pub const DEFAULT_RISK_TARGET: f64 = 0.01;
/// Seconds-fast channels (Shopify, Walmart, eBay) stay below it; Amazon's processing is above.
pub const DEFAULT_LOW_STOCK_MAX_DELAY_MS: i64 = 60_000;

impl Default for DynamicPolicy {
    fn default() -> Self {
        Self {
            risk_target: DEFAULT_RISK_TARGET,
            min_units: 0,
            max_units: None,
            low_stock_units: 0,
            low_stock_max_delay_ms: DEFAULT_LOW_STOCK_MAX_DELAY_MS,
        }
    }
}

impl DynamicPolicy {
    /// Rejects settings that would make the buffer meaningless, with the reason.
    pub fn validate(&self) -> Result<(), String> {
        // Written so that NaN fails too.
        if !(self.risk_target > 0.0 && self.risk_target < 1.0) {
            return Err(format!(
                "--risk-target must be between 0 and 1 (exclusive), got {}",
                self.risk_target
            ));
        }
        if self.min_units < 0 {
            return Err(format!(
                "--min-buffer must be 0 or more, got {}",
                self.min_units
            ));
        }
        if let Some(max) = self.max_units {
            if max < 0 {
                return Err(format!("--max-buffer must be 0 or more, got {max}"));
            }
            if max < self.min_units {
                return Err(format!(
                    "--max-buffer ({max}) must not be below --min-buffer ({})",
                    self.min_units
                ));
            }
        }
        if self.low_stock_units < 0 {
            return Err(format!(
                "--low-stock-units must be 0 or more, got {}",
                self.low_stock_units
            ));
        }
        if self.low_stock_max_delay_ms < 0 {
            return Err(format!(
                "--low-stock-max-delay-ms must be 0 or more, got {}",
                self.low_stock_max_delay_ms
            ));
        }
        Ok(())
    }
}

/// Up to this mean `risk_units` is the exact Poisson quantile; above it, a Chernoff bound.
pub const EXACT_MEAN_LIMIT: f64 = 200.0;
/// The range a risk target is taken in: 0 would hold back everything, 1 nothing.
pub const RISK_TARGET_RANGE: (f64, f64) = (1e-12, 0.999_999);

/// The smallest `b` with `P(N > b) ≤ target`, `N ~ Poisson(mean)`, `0 < mean ≤ EXACT_MEAN_LIMIT`.
///
/// The probabilities come from `pmf(0) = e^-mean`, `pmf(k) = pmf(k-1) · mean / k` up to
/// `mean + 50·√mean + 100` (far beyond any target: the rest is below 1e-300). The tails are summed
/// from that far end rather than taken as `1 - cdf`, which would lose a small target to
/// cancellation (1e-12 is within a few rounding errors of 1).
fn exact_quantile(mean: f64, target: f64) -> i64 {
    let limit = (mean + 50.0 * mean.sqrt() + 100.0).ceil() as usize;
    let mut pmf = Vec::with_capacity(limit + 1);
    let mut p = (-mean).exp();
    pmf.push(p);
    for k in 1..=limit {
        p *= mean / k as f64;
        pmf.push(p);
    }
    // P(N > b) for b = limit - 1 down to 0; the first that exceeds the target is one below the
    // answer.
    let mut tail = 0.0;
    for b in (0..limit).rev() {
        tail += pmf[b + 1];
        if tail > target {
            return b as i64 + 1;
        }
    }
    0
}

/// The smallest `b ≥ ceil(mean)` whose Chernoff bound
/// `P(N ≥ b+1) ≤ e^-mean · (e·mean / (b+1))^(b+1)` (valid for `b + 1 > mean`) is within the target.
/// The bound is above the true tail, so the result is never below the exact quantile. The bound
/// falls as `b` grows past the mean, so the search gallops upward and then bisects.
fn chernoff_quantile(mean: f64, target: f64) -> i64 {
    let log_target = target.ln();
    // ln of the bound with x = b + 1 = mean + d: d - x·ln(1 + d/mean), in that form so that it
    // keeps its precision for large means.
    let within = |b: i64| {
        let x = b as f64 + 1.0;
        let d = x - mean;
        d - x * (d / mean).ln_1p() <= log_target
    };
    let start = mean.ceil();
    if start >= i64::MAX as f64 {
        return i64::MAX;
    }
    let mut low = start as i64;
    if within(low) {
        return low;
    }
    // `within(low)` is false from here on; find a `high` where it is true.
    let mut step: i64 = 1;
    let mut high = low.saturating_add(step);
    while !within(high) {
        if high == i64::MAX {
            return i64::MAX;
        }
        low = high;
        step = step.saturating_mul(2);
        high = low.saturating_add(step);
    }
    while high - low > 1 {
        let mid = low + (high - low) / 2;
        if within(mid) {
            high = mid;
        } else {
            low = mid;
        }
    }
    high
}

/// The smallest `b ≥ 0` with `P(N > b) ≤ risk_target` for `N ~ Poisson(mean)`. Exact for small
/// means; for large ones a bound that is never below the exact quantile.
pub fn risk_units(mean: f64, risk_target: f64) -> i64 {
    if !mean.is_finite() || mean <= 0.0 {
        return 0;
    }
    let (lowest, highest) = RISK_TARGET_RANGE;
    // A NaN target is taken as the most cautious one.
    let target = if risk_target.is_nan() {
        lowest
    } else {
        risk_target.clamp(lowest, highest)
    };
    if mean <= EXACT_MEAN_LIMIT {
        exact_quantile(mean, target)
    } else {
        chernoff_quantile(mean, target)
    }
}

/// What the risk of one channel and SKU is made of.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct RiskInputs {
    /// λ before factors: units per second sold on every other channel.
    pub velocity_elsewhere_per_s: f64,
    /// The channel's measured p95 delay.
    pub delay_p95_ms: i64,
    /// ≥ 1: widens the delay while the sync is unhealthy.
    pub health_factor: f64,
    /// Widens the delay to the reconciliation interval when the sync is down: the effective delay
    /// in ms (`delay_p95_ms × health_factor`, or more).
    pub effective_delay_ms: i64,
    pub time_of_day_factor: f64,
    /// The strength of the strongest unexpired demand signal (1 with none).
    pub signal_factor: f64,
}

impl RiskInputs {
    /// `λ · d`: expected units sold elsewhere while a change is on its way to this channel.
    pub fn mean_units(&self) -> f64 {
        let mean = self.velocity_elsewhere_per_s
            * self.time_of_day_factor
            * self.signal_factor
            * (self.effective_delay_ms as f64 / 1000.0);
        // `max` also turns a NaN into 0.
        mean.max(0.0)
    }
}

/// The part of a dynamic buffer that does not depend on `available`:
/// `clamp(min_units, risk_units(λ·d), max_units)`. The recompute stores it.
pub fn dynamic_buffer(inputs: &RiskInputs, policy: &DynamicPolicy) -> i64 {
    clamp_to_policy(risk_units(inputs.mean_units(), policy.risk_target), policy)
}

/// `max(min_units)`, then `min(max_units)`.
fn clamp_to_policy(units: i64, policy: &DynamicPolicy) -> i64 {
    let units = units.max(policy.min_units);
    match policy.max_units {
        Some(max) => units.min(max),
        None => units,
    }
}

/// Which factor set a buffer, for `buffers explain`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decider {
    /// Static mode: the channel's units and percent.
    StaticPolicy,
    /// No sales elsewhere and no signal: nothing at risk.
    NoDemand,
    /// Velocity elsewhere times the measured delay, no factor changing the result.
    VelocityAndDelay,
    Health,
    TimeOfDay,
    Signal,
    MinBuffer,
    MaxBuffer,
    /// The buffer would exceed what is available: everything is held back.
    Available,
    LowStock,
}

impl Decider {
    pub fn as_str(self) -> &'static str {
        match self {
            Decider::StaticPolicy => "static_policy",
            Decider::NoDemand => "no_demand",
            Decider::VelocityAndDelay => "velocity_and_delay",
            Decider::Health => "health",
            Decider::TimeOfDay => "time_of_day",
            Decider::Signal => "signal",
            Decider::MinBuffer => "min_buffer",
            Decider::MaxBuffer => "max_buffer",
            Decider::Available => "available",
            Decider::LowStock => "low_stock",
        }
    }
}

/// How a channel's buffer for one SKU is set, as things stand now.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChannelBufferView {
    pub mode: BufferMode,
    /// The static policy (the channel's, or the SKU's override).
    pub static_policy: BufferPolicy,
    pub dynamic: DynamicPolicy,
    pub maximum: Option<i64>,
    /// What the recompute stored for this SKU (`dynamic_buffer`); `None` when the SKU is quiet,
    /// which means `min_units`.
    pub stored_dynamic: Option<i64>,
    /// The channel's measured delay (`ChannelHealth::effective_delay_ms`), for the low-stock rule.
    pub delay_ms: i64,
}

/// The buffer now and whether the low-stock rule applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedBuffer {
    pub buffer: i64,
    pub shown: i64,
    pub low_stock: bool,
}

impl ChannelBufferView {
    /// The buffer and the quantity shown for `available` (contract sections 3 and 5):
    /// `shown = max(0, available - buffer)`, capped by the maximum; with `available ≥ 0` and no
    /// maximum, `shown + buffer = available`.
    pub fn apply(&self, available: i64) -> AppliedBuffer {
        let avail = available.max(0);
        let (buffer, low_stock) = match self.mode {
            BufferMode::Static => (self.static_policy.held_back(available).min(avail), false),
            BufferMode::Dynamic => {
                let policy = &self.dynamic;
                let low_stock = policy.low_stock_units > 0
                    && available <= policy.low_stock_units
                    && self.delay_ms > policy.low_stock_max_delay_ms;
                if low_stock {
                    (avail, true)
                } else {
                    // Clamped again with the current policy, so a changed policy applies at once.
                    let stored = clamp_to_policy(self.stored_dynamic.unwrap_or(0), policy);
                    (stored.min(avail), false)
                }
            }
        };
        // A buffer holds units back; it never adds any.
        let buffer = buffer.max(0);
        let shown = (available - buffer).max(0);
        let shown = match self.maximum {
            Some(max) => shown.min(max.max(0)),
            None => shown,
        };
        AppliedBuffer {
            buffer,
            shown,
            low_stock,
        }
    }
}

/// The factor that decided a buffer: the clamps and the low-stock rule when they bind; otherwise
/// the factor whose removal (setting it to 1) would lower the buffer most; otherwise velocity and
/// delay themselves.
pub fn explain(inputs: &RiskInputs, view: &ChannelBufferView, available: i64) -> Decider {
    if view.mode == BufferMode::Static {
        return Decider::StaticPolicy;
    }
    if view.apply(available).low_stock {
        return Decider::LowStock;
    }
    let policy = &view.dynamic;
    let raw_of = |i: &RiskInputs| risk_units(i.mean_units(), policy.risk_target);
    let raw = raw_of(inputs);
    // Everything available is held back: that, not what sized the buffer, is what the seller sees.
    if dynamic_buffer(inputs, policy) > available.max(0) {
        return Decider::Available;
    }
    if inputs.velocity_elsewhere_per_s * inputs.signal_factor == 0.0 {
        return if policy.min_units > 0 {
            Decider::MinBuffer
        } else {
            Decider::NoDemand
        };
    }
    if let Some(max) = policy.max_units
        && raw > max
    {
        return Decider::MaxBuffer;
    }
    if raw < policy.min_units {
        return Decider::MinBuffer;
    }
    // In order of precedence on a tie.
    let without = [
        (
            Decider::Signal,
            RiskInputs {
                signal_factor: 1.0,
                ..*inputs
            },
        ),
        (
            Decider::Health,
            RiskInputs {
                effective_delay_ms: inputs.delay_p95_ms,
                health_factor: 1.0,
                ..*inputs
            },
        ),
        (
            Decider::TimeOfDay,
            RiskInputs {
                time_of_day_factor: 1.0,
                ..*inputs
            },
        ),
    ];
    let mut decider = Decider::VelocityAndDelay;
    let mut largest_drop = 0;
    for (factor, reduced) in &without {
        let drop = raw - raw_of(reduced);
        if drop > largest_drop {
            largest_drop = drop;
            decider = *factor;
        }
    }
    decider
}

/// A stored demand signal of one kind for a SKU.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredSignal {
    pub strength: f64,
    pub occurred_at: crate::Millis,
    pub expires_at: Option<crate::Millis>,
}

/// How long a signal sent without `expires_at` counts.
pub const DEFAULT_SIGNAL_LIFETIME_MS: crate::Millis = 60 * 60 * 1000;

impl StoredSignal {
    pub fn active_until(&self) -> crate::Millis {
        self.expires_at
            .unwrap_or(self.occurred_at + DEFAULT_SIGNAL_LIFETIME_MS)
    }

    pub fn is_active(&self, now: crate::Millis) -> bool {
        now < self.active_until()
    }
}

/// The strength of the strongest unexpired signal, or 1 with none.
pub fn signal_factor<'a>(
    signals: impl IntoIterator<Item = &'a StoredSignal>,
    now: crate::Millis,
) -> f64 {
    signals
        .into_iter()
        .filter(|s| s.is_active(now) && !s.strength.is_nan())
        .map(|s| s.strength)
        .reduce(f64::max)
        .unwrap_or(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// P(N > b) for N ~ Poisson(mean), by direct summation (small means only).
    fn tail(mean: f64, b: i64) -> f64 {
        let mut p = (-mean).exp();
        let mut cdf = p;
        for k in 1..=b {
            p *= mean / k as f64;
            cdf += p;
        }
        1.0 - cdf
    }

    fn inputs(velocity_per_s: f64, delay_ms: i64) -> RiskInputs {
        RiskInputs {
            velocity_elsewhere_per_s: velocity_per_s,
            delay_p95_ms: delay_ms,
            health_factor: 1.0,
            effective_delay_ms: delay_ms,
            time_of_day_factor: 1.0,
            signal_factor: 1.0,
        }
    }

    fn dynamic_view(stored: Option<i64>) -> ChannelBufferView {
        ChannelBufferView {
            mode: BufferMode::Dynamic,
            static_policy: BufferPolicy::default(),
            dynamic: DynamicPolicy::default(),
            maximum: None,
            stored_dynamic: stored,
            delay_ms: 1_000,
        }
    }

    #[test]
    fn buffer_mode_round_trips() {
        for mode in [BufferMode::Static, BufferMode::Dynamic] {
            assert_eq!(BufferMode::parse(mode.as_str()), Ok(mode));
        }
        assert!(BufferMode::parse("adaptive").is_err());
        assert_eq!(BufferMode::default(), BufferMode::Dynamic);
    }

    #[test]
    fn the_default_policy_is_valid() {
        assert_eq!(DynamicPolicy::default().validate(), Ok(()));
        let p = DynamicPolicy {
            min_units: 2,
            max_units: Some(2),
            low_stock_units: 5,
            low_stock_max_delay_ms: 0,
            ..DynamicPolicy::default()
        };
        assert_eq!(p.validate(), Ok(()));
    }

    #[test]
    fn invalid_policies_name_the_option() {
        let d = DynamicPolicy::default();
        for rt in [0.0, 1.0, -0.5, 1.5, f64::NAN] {
            let err = DynamicPolicy {
                risk_target: rt,
                ..d
            }
            .validate()
            .unwrap_err();
            assert!(err.starts_with("--risk-target must be between 0 and 1 (exclusive), got"));
        }
        assert_eq!(
            DynamicPolicy {
                risk_target: 1.5,
                ..d
            }
            .validate(),
            Err("--risk-target must be between 0 and 1 (exclusive), got 1.5".to_owned())
        );
        let err = DynamicPolicy { min_units: -1, ..d }.validate().unwrap_err();
        assert!(err.contains("--min-buffer") && err.contains("-1"), "{err}");
        let err = DynamicPolicy {
            max_units: Some(-1),
            ..d
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("--max-buffer"), "{err}");
        let err = DynamicPolicy {
            min_units: 5,
            max_units: Some(4),
            ..d
        }
        .validate()
        .unwrap_err();
        assert!(
            err.contains("--max-buffer") && err.contains("--min-buffer"),
            "{err}"
        );
        let err = DynamicPolicy {
            low_stock_units: -3,
            ..d
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("--low-stock-units"), "{err}");
        let err = DynamicPolicy {
            low_stock_max_delay_ms: -1,
            ..d
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("--low-stock-max-delay-ms"), "{err}");
    }

    #[test]
    fn risk_units_known_values() {
        assert_eq!(risk_units(0.67, 0.01), 3);
        assert_eq!(risk_units(1.0, 0.01), 4);
        assert_eq!(risk_units(0.0, 0.01), 0);
        assert_eq!(risk_units(-1.0, 0.01), 0);
        assert_eq!(risk_units(f64::NAN, 0.01), 0);
        assert_eq!(risk_units(f64::INFINITY, 0.01), 0);
        // P(N > 0) = 1 - e^-0.005 ≈ 0.005 ≤ 0.01.
        assert_eq!(risk_units(0.005, 0.01), 0);
        assert_eq!(risk_units(0.011, 0.01), 1);
        // Poisson(10): P(N > 17) ≈ 0.0143, P(N > 18) ≈ 0.0072.
        assert_eq!(risk_units(10.0, 0.01), 18);
        // A larger target holds back less.
        assert_eq!(risk_units(1.0, 0.5), 1);
        assert_eq!(risk_units(1.0, 0.999), 0);
    }

    #[test]
    fn risk_units_is_the_exact_quantile_for_small_means() {
        for mean in [0.01, 0.1, 0.5, 0.67, 1.0, 2.5, 7.0, 30.0] {
            for target in [0.5, 0.1, 0.01, 0.001] {
                let b = risk_units(mean, target);
                assert!(tail(mean, b) <= target, "{mean} {target}");
                if b > 0 {
                    assert!(tail(mean, b - 1) > target, "{mean} {target}");
                }
            }
        }
    }

    #[test]
    fn risk_targets_are_clamped() {
        assert_eq!(risk_units(5.0, 0.0), risk_units(5.0, RISK_TARGET_RANGE.0));
        assert_eq!(risk_units(5.0, -1.0), risk_units(5.0, RISK_TARGET_RANGE.0));
        assert_eq!(
            risk_units(5.0, f64::NAN),
            risk_units(5.0, RISK_TARGET_RANGE.0)
        );
        assert_eq!(risk_units(5.0, 1.0), risk_units(5.0, RISK_TARGET_RANGE.1));
        assert_eq!(risk_units(5.0, 2.0), risk_units(5.0, RISK_TARGET_RANGE.1));
        assert!(risk_units(5.0, 0.0) > risk_units(5.0, 1e-6));
    }

    #[test]
    fn large_means_use_a_bound_that_is_close_and_never_below() {
        // Normal approximation of Poisson(1000)'s 99th percentile: 1000 + 2.326·√1000 ≈ 1074.
        let b = risk_units(1_000.0, 0.01);
        assert!((1_074..=1_110).contains(&b), "{b}");
        // Across the switch the result does not drop.
        assert!(risk_units(200.0 + 1e-9, 0.01) >= risk_units(200.0, 0.01));
        assert!(risk_units(200.0, 0.01) >= 233);
        // Even a large target stays at the mean or above.
        assert_eq!(risk_units(500.0, 0.999_999), 500);
        assert_eq!(risk_units(500.5, 0.999_999), 501);
        // Huge means do not overflow.
        assert!(risk_units(1e12, 0.01) > 1_000_000_000_000);
        assert_eq!(risk_units(1e300, 0.01), i64::MAX);
    }

    #[test]
    fn mean_units_is_velocity_times_factors_times_delay() {
        let i = RiskInputs {
            velocity_elsewhere_per_s: 0.5,
            delay_p95_ms: 1_000,
            health_factor: 2.0,
            effective_delay_ms: 2_000,
            time_of_day_factor: 1.5,
            signal_factor: 3.0,
        };
        assert!((i.mean_units() - 0.5 * 1.5 * 3.0 * 2.0).abs() < 1e-12);
        let negative = RiskInputs {
            signal_factor: -1.0,
            ..i
        };
        assert_eq!(negative.mean_units(), 0.0);
        let nan = RiskInputs {
            velocity_elsewhere_per_s: f64::NAN,
            ..i
        };
        assert_eq!(nan.mean_units(), 0.0);
    }

    #[test]
    fn dynamic_buffer_is_clamped_by_the_policy() {
        // 1 unit a second elsewhere, 1 s delay: mean 1, 4 units at 1%.
        let i = inputs(1.0, 1_000);
        let mut p = DynamicPolicy::default();
        assert_eq!(dynamic_buffer(&i, &p), 4);
        p.min_units = 6;
        assert_eq!(dynamic_buffer(&i, &p), 6);
        p.min_units = 0;
        p.max_units = Some(2);
        assert_eq!(dynamic_buffer(&i, &p), 2);
        assert_eq!(
            dynamic_buffer(&inputs(0.0, 1_000), &DynamicPolicy::default()),
            0
        );
    }

    #[test]
    fn decider_names() {
        let all = [
            (Decider::StaticPolicy, "static_policy"),
            (Decider::NoDemand, "no_demand"),
            (Decider::VelocityAndDelay, "velocity_and_delay"),
            (Decider::Health, "health"),
            (Decider::TimeOfDay, "time_of_day"),
            (Decider::Signal, "signal"),
            (Decider::MinBuffer, "min_buffer"),
            (Decider::MaxBuffer, "max_buffer"),
            (Decider::Available, "available"),
            (Decider::LowStock, "low_stock"),
        ];
        for (d, name) in all {
            assert_eq!(d.as_str(), name);
            // The serde name is the same.
            assert_eq!(serde_json::to_value(d).unwrap(), serde_json::json!(name));
        }
    }

    #[test]
    fn static_mode_uses_units_and_percent() {
        let view = ChannelBufferView {
            mode: BufferMode::Static,
            static_policy: BufferPolicy {
                units: 2,
                percent: 10.0,
            },
            stored_dynamic: Some(50),
            ..dynamic_view(None)
        };
        let a = view.apply(10);
        assert_eq!((a.buffer, a.shown, a.low_stock), (3, 7, false));
        let a = view.apply(2);
        assert_eq!((a.buffer, a.shown), (2, 0));
        let a = view.apply(-4);
        assert_eq!((a.buffer, a.shown), (0, 0));
        for available in -5..30 {
            assert_eq!(
                view.apply(available).shown,
                crate::channel::shown_quantity(available, &view.static_policy, None)
            );
        }
    }

    #[test]
    fn dynamic_mode_uses_the_stored_buffer_clamped_again() {
        let view = dynamic_view(Some(4));
        let a = view.apply(10);
        assert_eq!((a.buffer, a.shown, a.low_stock), (4, 6, false));
        assert_eq!(view.apply(3).buffer, 3);
        assert_eq!(view.apply(3).shown, 0);
        assert_eq!(view.apply(-2).buffer, 0);
        assert_eq!(view.apply(-2).shown, 0);
        // Quiet SKU: min_units.
        let quiet = dynamic_view(None);
        assert_eq!(quiet.apply(10).buffer, 0);
        let quiet = ChannelBufferView {
            dynamic: DynamicPolicy {
                min_units: 2,
                ..DynamicPolicy::default()
            },
            ..quiet
        };
        assert_eq!(quiet.apply(10).buffer, 2);
        // A policy changed since the recompute applies at once.
        let capped = ChannelBufferView {
            dynamic: DynamicPolicy {
                max_units: Some(1),
                ..DynamicPolicy::default()
            },
            ..view
        };
        assert_eq!(capped.apply(10).buffer, 1);
    }

    #[test]
    fn the_maximum_caps_what_is_shown() {
        let view = ChannelBufferView {
            maximum: Some(5),
            ..dynamic_view(Some(1))
        };
        let a = view.apply(100);
        assert_eq!((a.buffer, a.shown), (1, 5));
        let view = ChannelBufferView {
            maximum: Some(-3),
            ..view
        };
        assert_eq!(view.apply(100).shown, 0);
    }

    #[test]
    fn low_stock_hides_everything_from_slow_channels_only() {
        let policy = DynamicPolicy {
            low_stock_units: 5,
            ..DynamicPolicy::default()
        };
        let slow = ChannelBufferView {
            dynamic: policy,
            delay_ms: 120_000,
            ..dynamic_view(Some(1))
        };
        let fast = ChannelBufferView {
            delay_ms: 2_000,
            ..slow
        };
        let a = slow.apply(5);
        assert_eq!((a.buffer, a.shown, a.low_stock), (5, 0, true));
        let a = slow.apply(6);
        assert_eq!((a.buffer, a.shown, a.low_stock), (1, 5, false));
        let a = fast.apply(5);
        assert_eq!((a.buffer, a.shown, a.low_stock), (1, 4, false));
        let a = slow.apply(-1);
        assert_eq!((a.buffer, a.shown, a.low_stock), (0, 0, true));
        // Exactly at the threshold delay is not slow.
        let at = ChannelBufferView {
            delay_ms: DEFAULT_LOW_STOCK_MAX_DELAY_MS,
            ..slow
        };
        assert!(!at.apply(1).low_stock);
        // Off by default.
        let off = ChannelBufferView {
            dynamic: DynamicPolicy::default(),
            ..slow
        };
        assert!(!off.apply(0).low_stock);
        // Static mode has no low-stock rule.
        let stat = ChannelBufferView {
            mode: BufferMode::Static,
            ..slow
        };
        assert!(!stat.apply(1).low_stock);
    }

    fn view_for(i: &RiskInputs, policy: DynamicPolicy) -> ChannelBufferView {
        ChannelBufferView {
            dynamic: policy,
            stored_dynamic: Some(dynamic_buffer(i, &policy)),
            delay_ms: i.effective_delay_ms,
            ..dynamic_view(None)
        }
    }

    #[test]
    fn explain_names_the_clamps_and_rules_first() {
        let base = inputs(1.0, 1_000);
        let d = DynamicPolicy::default();
        let stat = ChannelBufferView {
            mode: BufferMode::Static,
            ..view_for(&base, d)
        };
        assert_eq!(explain(&base, &stat, 100), Decider::StaticPolicy);

        let low = DynamicPolicy {
            low_stock_units: 10,
            low_stock_max_delay_ms: 500,
            ..d
        };
        assert_eq!(explain(&base, &view_for(&base, low), 10), Decider::LowStock);
        assert_ne!(explain(&base, &view_for(&base, low), 11), Decider::LowStock);

        let idle = inputs(0.0, 1_000);
        assert_eq!(explain(&idle, &view_for(&idle, d), 100), Decider::NoDemand);
        let with_min = DynamicPolicy { min_units: 1, ..d };
        assert_eq!(
            explain(&idle, &view_for(&idle, with_min), 100),
            Decider::MinBuffer
        );
        // A signal of strength 0 also means no demand.
        let zero_signal = RiskInputs {
            signal_factor: 0.0,
            ..base
        };
        assert_eq!(
            explain(&zero_signal, &view_for(&zero_signal, d), 100),
            Decider::NoDemand
        );

        let capped = DynamicPolicy {
            max_units: Some(3),
            ..d
        };
        assert_eq!(
            explain(&base, &view_for(&base, capped), 100),
            Decider::MaxBuffer
        );
        let at_cap = DynamicPolicy {
            max_units: Some(4),
            ..d
        };
        assert_ne!(
            explain(&base, &view_for(&base, at_cap), 100),
            Decider::MaxBuffer
        );

        let floor = DynamicPolicy { min_units: 5, ..d };
        assert_eq!(
            explain(&base, &view_for(&base, floor), 100),
            Decider::MinBuffer
        );

        // Buffer 4, 3 available.
        assert_eq!(explain(&base, &view_for(&base, d), 3), Decider::Available);
        assert_eq!(explain(&base, &view_for(&base, d), -2), Decider::Available);
        assert_eq!(
            explain(&base, &view_for(&base, d), 4),
            Decider::VelocityAndDelay
        );
    }

    #[test]
    fn explain_names_the_factor_whose_removal_lowers_the_buffer_most() {
        let d = DynamicPolicy::default();
        let base = inputs(1.0, 1_000);
        assert_eq!(
            explain(&base, &view_for(&base, d), 1_000),
            Decider::VelocityAndDelay
        );

        let signal = RiskInputs {
            signal_factor: 5.0,
            time_of_day_factor: 1.2,
            ..base
        };
        assert_eq!(
            explain(&signal, &view_for(&signal, d), 1_000),
            Decider::Signal
        );

        let unhealthy = RiskInputs {
            health_factor: 4.0,
            effective_delay_ms: 4_000,
            time_of_day_factor: 1.5,
            signal_factor: 1.2,
            ..base
        };
        assert_eq!(
            explain(&unhealthy, &view_for(&unhealthy, d), 1_000),
            Decider::Health
        );

        // Down: the effective delay is the reconciliation interval, far above p95 × factor.
        let down = RiskInputs {
            health_factor: 1.0,
            effective_delay_ms: 900_000,
            ..base
        };
        assert_eq!(
            explain(&down, &view_for(&down, d), 1_000_000),
            Decider::Health
        );

        let peak = RiskInputs {
            time_of_day_factor: 2.0,
            ..base
        };
        assert_eq!(
            explain(&peak, &view_for(&peak, d), 1_000),
            Decider::TimeOfDay
        );

        // A factor below 1 lowers the buffer; removing it would raise it: not the decider.
        let trough = RiskInputs {
            time_of_day_factor: 0.5,
            ..base
        };
        assert_eq!(
            explain(&trough, &view_for(&trough, d), 1_000),
            Decider::VelocityAndDelay
        );
    }

    #[test]
    fn explain_breaks_ties_signal_then_health_then_time_of_day() {
        let d = DynamicPolicy::default();
        let base = inputs(1.0, 1_000);
        let all = RiskInputs {
            signal_factor: 2.0,
            health_factor: 2.0,
            effective_delay_ms: 2_000,
            time_of_day_factor: 2.0,
            ..base
        };
        assert_eq!(explain(&all, &view_for(&all, d), 1_000), Decider::Signal);
        let two = RiskInputs {
            signal_factor: 1.0,
            ..all
        };
        assert_eq!(explain(&two, &view_for(&two, d), 1_000), Decider::Health);
    }

    #[test]
    fn signal_factor_is_the_strongest_active_signal() {
        let now = 1_000_000;
        let signals = [
            StoredSignal {
                strength: 3.0,
                occurred_at: now - 10,
                expires_at: Some(now + 10),
            },
            StoredSignal {
                strength: 8.0,
                occurred_at: now - 100,
                expires_at: Some(now),
            },
            StoredSignal {
                strength: 2.0,
                occurred_at: now - DEFAULT_SIGNAL_LIFETIME_MS + 1,
                expires_at: None,
            },
        ];
        assert_eq!(signal_factor(&signals, now), 3.0);
        assert_eq!(signal_factor(&signals, now - 1), 8.0);
        assert_eq!(signal_factor(&signals, now + 10), 1.0);
        assert_eq!(signal_factor(&signals[2..], now), 2.0);
        assert_eq!(signal_factor(&signals[2..], now + 1), 1.0);
        assert_eq!(signal_factor(&[], now), 1.0);
        // A weak signal counts as what it says.
        let weak = [StoredSignal {
            strength: 0.5,
            occurred_at: now,
            expires_at: None,
        }];
        assert_eq!(signal_factor(&weak, now), 0.5);
    }
}
