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
        todo!()
    }
}

/// The smallest `b ≥ 0` with `P(N > b) ≤ risk_target` for `N ~ Poisson(mean)`. Exact for small
/// means; for large ones a bound that is never below the exact quantile.
pub fn risk_units(mean: f64, risk_target: f64) -> i64 {
    todo!("{mean} {risk_target}")
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
        todo!()
    }
}

/// The part of a dynamic buffer that does not depend on `available`:
/// `clamp(min_units, risk_units(λ·d), max_units)`. The recompute stores it.
pub fn dynamic_buffer(inputs: &RiskInputs, policy: &DynamicPolicy) -> i64 {
    todo!("{inputs:?} {policy:?}")
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
        todo!()
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
        todo!("{available}")
    }
}

/// The factor that decided a buffer: the clamps and the low-stock rule when they bind; otherwise
/// the factor whose removal (setting it to 1) would lower the buffer most; otherwise velocity and
/// delay themselves.
pub fn explain(
    inputs: &RiskInputs,
    view: &ChannelBufferView,
    available: i64,
) -> Decider {
    todo!("{inputs:?} {view:?} {available}")
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
    todo!("{now}")
}
