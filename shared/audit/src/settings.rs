//! How an audit is run: the batch interval, the static buffer, each channel's delay from a push to
//! showing it (`CHANNELS.toml`), the seed, and what an oversell and a lost unit cost.

use std::collections::BTreeMap;

use rand::Rng;
use stockguard_domain::Millis;
use stockguard_domain::buffer::DynamicPolicy;

use crate::model::Channel;

/// A channel's delay from a push to showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delay {
    Fixed(Millis),
    /// Uniform between the two, inclusive.
    Uniform {
        min: Millis,
        max: Millis,
    },
}

impl Delay {
    pub fn max_ms(self) -> Millis {
        match self {
            Delay::Fixed(ms) => ms,
            Delay::Uniform { max, .. } => max,
        }
    }

    pub fn draw(self, rng: &mut impl Rng) -> Millis {
        match self {
            Delay::Fixed(ms) => ms,
            Delay::Uniform { min, max } => rng.random_range(min..=max),
        }
    }

    /// How a delay is written in `CHANNELS.toml` and in the report.
    pub fn describe(self) -> String {
        match self {
            Delay::Fixed(ms) => format_duration(ms),
            Delay::Uniform { min, max } => {
                format!("{} to {}", format_duration(min), format_duration(max))
            }
        }
    }

    /// What a channel does when `CHANNELS.toml` does not say (see docs/audit.md): Shopify shows a
    /// quantity within seconds; Amazon processes an accepted update in its 5 to 15 minute window;
    /// Walmart's and eBay's single-item updates show within a minute.
    pub fn default_for(channel: Channel) -> Delay {
        const S: Millis = 1000;
        const M: Millis = 60 * S;
        match channel {
            Channel::Shopify => Delay::Uniform { min: S, max: 5 * S },
            Channel::Amazon => Delay::Uniform {
                min: 5 * M,
                max: 15 * M,
            },
            Channel::Walmart => Delay::Uniform {
                min: 5 * S,
                max: 60 * S,
            },
            Channel::Ebay => Delay::Uniform {
                min: 2 * S,
                max: 30 * S,
            },
            Channel::Storefront => Delay::Fixed(0),
        }
    }
}

/// `N` followed by `ms`, `s`, `m` or `h`: "90s", "15m", "250ms".
pub fn parse_duration(raw: &str) -> Result<Millis, String> {
    let raw = raw.trim();
    let split = raw.find(|c: char| !c.is_ascii_digit()).ok_or_else(|| {
        format!(
            "duration {raw:?} has no unit: write it as N followed by ms, s, m or h, e.g. \"90s\""
        )
    })?;
    let (number, unit) = raw.split_at(split);
    let n: Millis = number.parse().map_err(|_| {
        format!("duration {raw:?} must start with a whole number, e.g. \"90s\" or \"15m\"")
    })?;
    let per_unit = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => {
            return Err(format!(
                "duration {raw:?} has unit {unit:?}; use ms, s, m or h"
            ));
        }
    };
    n.checked_mul(per_unit)
        .ok_or_else(|| format!("duration {raw:?} is too long"))
}

/// The shortest exact way to write `ms` in the units `parse_duration` reads.
pub fn format_duration(ms: Millis) -> String {
    for (per, unit) in [(3_600_000, "h"), (60_000, "m"), (1000, "s")] {
        if ms != 0 && ms % per == 0 {
            return format!("{}{unit}", ms / per);
        }
    }
    format!("{ms}ms")
}

/// The money an audit puts on its counts. The defaults are stated in docs/audit.md and printed with
/// every table; a seller sets their own.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Costs {
    /// What one oversold order costs: the cancellation, the marketplace's defect-rate and
    /// late-shipment penalties, the support contact.
    pub per_oversell: f64,
    /// The margin lost on each unit of a refused sale that the seller had in stock.
    pub per_lost_unit: f64,
}

impl Default for Costs {
    fn default() -> Self {
        Self {
            per_oversell: 25.0,
            per_lost_unit: 8.0,
        }
    }
}

/// Everything an audit needs besides its input.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub batch_interval_ms: Millis,
    pub static_buffer_percent: f64,
    /// How often event_dynamic recomputes a selling SKU's buffers as its sales rate decays
    /// (the stack's `BufferRecomputeEveryMinutes`).
    pub buffer_recompute_ms: Millis,
    /// Each marketplace channel's delay (its default unless `CHANNELS.toml` sets it).
    pub delays: BTreeMap<Channel, Delay>,
    /// Channels that `CHANNELS.toml` names: counted even without orders.
    pub configured: Vec<Channel>,
    /// The dynamic buffer's policy per channel (the contract's defaults unless set).
    pub dynamic: BTreeMap<Channel, DynamicPolicy>,
    pub seed: u64,
    pub costs: Costs,
    /// How many of the most-ordered SKUs the report traces.
    pub traced_skus: usize,
}

pub const DEFAULT_BATCH_INTERVAL_MS: Millis = 15 * 60 * 1000;
pub const DEFAULT_STATIC_BUFFER_PERCENT: f64 = 10.0;
/// The template's default `BufferRecomputeEveryMinutes`.
pub const DEFAULT_BUFFER_RECOMPUTE_MS: Millis = 5 * 60 * 1000;

impl Default for Settings {
    fn default() -> Self {
        Self {
            batch_interval_ms: DEFAULT_BATCH_INTERVAL_MS,
            static_buffer_percent: DEFAULT_STATIC_BUFFER_PERCENT,
            buffer_recompute_ms: DEFAULT_BUFFER_RECOMPUTE_MS,
            delays: Channel::MARKETPLACES
                .into_iter()
                .map(|c| (c, Delay::default_for(c)))
                .collect(),
            configured: Vec::new(),
            dynamic: BTreeMap::new(),
            seed: 0,
            costs: Costs::default(),
            traced_skus: 3,
        }
    }
}

impl Settings {
    pub fn delay(&self, channel: Channel) -> Delay {
        self.delays
            .get(&channel)
            .copied()
            .unwrap_or_else(|| Delay::default_for(channel))
    }

    pub fn dynamic_policy(&self, channel: Channel) -> DynamicPolicy {
        self.dynamic.get(&channel).copied().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_every_unit() {
        assert_eq!(parse_duration("250ms"), Ok(250));
        assert_eq!(parse_duration("90s"), Ok(90_000));
        assert_eq!(parse_duration("15m"), Ok(900_000));
        assert_eq!(parse_duration("2h"), Ok(7_200_000));
        assert_eq!(parse_duration("0s"), Ok(0));
    }

    #[test]
    fn a_bad_duration_says_how_to_write_one() {
        for bad in ["", "15", "m", "1.5m", "15 min", "-5s", "15d"] {
            let err = parse_duration(bad).unwrap_err();
            assert!(err.contains(&format!("{bad:?}")), "{bad}: {err}");
        }
    }

    #[test]
    fn durations_are_written_back_in_their_largest_exact_unit() {
        for ms in [0, 250, 1000, 90_000, 900_000, 7_200_000, 61_001] {
            assert_eq!(parse_duration(&format_duration(ms)), Ok(ms));
        }
        assert_eq!(format_duration(900_000), "15m");
        assert_eq!(format_duration(90_000), "90s");
    }
}
