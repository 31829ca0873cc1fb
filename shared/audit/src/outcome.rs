//! What an audit finds, per strategy: the counts of the contract's `summary.json`, and the
//! timelines the report draws.

use stockguard_domain::Millis;

use crate::model::Channel;

/// The three ways of keeping channels in step that an audit compares (contract section 7).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Strategy {
    /// Pushes at multiples of the interval from the start, with the static buffer.
    Batch,
    /// A push after every change, with the static buffer.
    EventStatic,
    /// A push after every change, with the dynamic buffer of section 5.
    EventDynamic,
}

impl Strategy {
    pub const ALL: [Strategy; 3] = [
        Strategy::Batch,
        Strategy::EventStatic,
        Strategy::EventDynamic,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::Batch => "batch",
            Strategy::EventStatic => "event_static",
            Strategy::EventDynamic => "event_dynamic",
        }
    }
}

/// One strategy's counts over the whole input.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Counts {
    pub orders_taken: u64,
    /// Taken orders with fewer units truly available than they asked for.
    pub oversells: u64,
    pub oversold_units: u64,
    /// Orders refused while enough units were truly available.
    pub lost_sales: u64,
    pub lost_units: u64,
    /// Σ buffer·dt over every SKU and marketplace channel while `available > 0`, in unit·ms.
    pub held_back_unit_ms: f64,
    /// Σ available·dt over the same, in unit·ms.
    pub available_unit_ms: f64,
}

impl Counts {
    /// `100 × Σ buffer·dt ÷ Σ available·dt`; 0 when nothing was ever available.
    pub fn held_back_percent(&self) -> f64 {
        if self.available_unit_ms > 0.0 {
            100.0 * self.held_back_unit_ms / self.available_unit_ms
        } else {
            0.0
        }
    }
}

/// Equal time bins from the start to the end, for charts.
#[derive(Debug, Clone, PartialEq)]
pub struct Bins {
    pub start: Millis,
    pub width_ms: Millis,
    pub count: usize,
}

impl Bins {
    /// At most `max` bins of at least one second each over `[start, end]`.
    pub fn over(start: Millis, end: Millis, max: usize) -> Self {
        let span = (end - start).max(1);
        let width_ms = ((span + max as i64 - 1) / max as i64).max(1000);
        let count = (span / width_ms + 1) as usize;
        Self {
            start,
            width_ms,
            count,
        }
    }

    /// The bin of `at`, clamped to the range.
    pub fn of(&self, at: Millis) -> usize {
        (((at - self.start).max(0) / self.width_ms) as usize).min(self.count - 1)
    }

    /// The start of bin `i`.
    pub fn time_of(&self, i: usize) -> Millis {
        self.start + i as i64 * self.width_ms
    }
}

/// One strategy over time, in the shared [`Bins`].
#[derive(Debug, Clone, PartialEq)]
pub struct Timeline {
    /// Oversold orders per bin.
    pub oversells: Vec<u64>,
    /// Mean units held back per bin, summed over every SKU and marketplace channel.
    pub held_back_units: Vec<f64>,
    /// Mean units available per bin, summed over every SKU (once per marketplace channel, the
    /// same weighting as `held_back_units`).
    pub available_units: Vec<f64>,
}

/// A step function: the value holds from each time until the next.
pub type Steps = Vec<(Millis, i64)>;

/// One of the most-ordered SKUs, step by step, under one strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct SkuTrace {
    pub sku: String,
    /// The true `available`.
    pub available: Steps,
    /// What each marketplace channel showed.
    pub shown: Vec<(Channel, Steps)>,
}

/// One strategy's result.
#[derive(Debug, Clone, PartialEq)]
pub struct StrategyOutcome {
    pub strategy: Strategy,
    pub counts: Counts,
    pub timeline: Timeline,
    /// The most-ordered SKUs, most orders first.
    pub traces: Vec<SkuTrace>,
}

/// A whole audit: the input's extent and each strategy.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditOutcome {
    pub orders: u64,
    pub skus: u64,
    pub start: Millis,
    pub end: Millis,
    pub bins: Bins,
    /// The marketplace channels the audit counted (those with orders or a delay setting).
    pub channels: Vec<Channel>,
    pub strategies: Vec<StrategyOutcome>,
}

impl AuditOutcome {
    pub fn strategy(&self, strategy: Strategy) -> Option<&StrategyOutcome> {
        self.strategies.iter().find(|s| s.strategy == strategy)
    }
}
