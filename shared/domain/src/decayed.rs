//! The decayed rates of [`crate::velocity`] in an additive form, so that recording a sale is one
//! `ADD` with no read: each sale adds `units · e^((t − start of its epoch)/τ)` to its epoch's
//! accumulator, and the rate at `now` is the sum of the accumulators decayed from their epochs'
//! starts. Epochs are short enough that an accumulator never overflows, and old ones decay to
//! nothing and can be dropped.

use std::collections::BTreeMap;

use crate::types::Millis;
use crate::velocity::{LONG_HORIZON_MS, Rate, SHORT_HORIZON_MS, Velocity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizon {
    /// Short name used in stored attribute names.
    pub tag: &'static str,
    pub tau_ms: Millis,
    pub epoch_ms: Millis,
    /// Epochs older than this many before the current one contribute less than e^-16.
    pub keep_epochs: i64,
}

pub const SHORT: Horizon = Horizon {
    tag: "s",
    tau_ms: SHORT_HORIZON_MS,
    epoch_ms: 60 * 60 * 1000,
    keep_epochs: 4,
};
pub const LONG: Horizon = Horizon {
    tag: "l",
    tau_ms: LONG_HORIZON_MS,
    epoch_ms: 24 * 60 * 60 * 1000,
    keep_epochs: 16,
};
pub const HORIZONS: [Horizon; 2] = [SHORT, LONG];

/// The two horizons a deployment uses: 15 minutes and 24 hours, or both shortened by the same
/// factor where a demo or a test compresses time (its channel delays and schedules too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Horizons {
    pub short: Horizon,
    pub long: Horizon,
}

impl Default for Horizons {
    fn default() -> Self {
        Self {
            short: SHORT,
            long: LONG,
        }
    }
}

impl Horizons {
    /// Both horizons and their epochs divided by `factor` (1 or less: the defaults).
    pub fn compressed(factor: f64) -> Self {
        let shorten = |h: Horizon| {
            if factor.is_nan() || factor <= 1.0 {
                return h;
            }
            let by = |ms: Millis| ((ms as f64 / factor).round() as Millis).max(1);
            Horizon {
                tau_ms: by(h.tau_ms),
                epoch_ms: by(h.epoch_ms),
                ..h
            }
        };
        Self {
            short: shorten(SHORT),
            long: shorten(LONG),
        }
    }

    pub fn all(&self) -> [Horizon; 2] {
        [self.short, self.long]
    }

    fn by_tag(&self, tag: &str) -> Option<Horizon> {
        self.all().into_iter().find(|h| h.tag == tag)
    }
}

impl Horizon {
    pub fn epoch_of(&self, at: Millis) -> i64 {
        at.div_euclid(self.epoch_ms)
    }

    /// What a sale of `units` at `at` adds, and to which epoch.
    pub fn contribution(&self, units: i64, at: Millis) -> (i64, f64) {
        let epoch = self.epoch_of(at);
        let into = (at - epoch * self.epoch_ms) as f64 / self.tau_ms as f64;
        (epoch, units as f64 * into.exp())
    }

    /// Units per second at `now` from one epoch's accumulator.
    pub fn rate(&self, epoch: i64, amount: f64, now: Millis) -> f64 {
        let age = (now - epoch * self.epoch_ms).max(0) as f64 / self.tau_ms as f64;
        amount * (-age).exp() / (self.tau_ms as f64 / 1000.0)
    }

    /// An epoch whose accumulator no longer matters at `now`.
    pub fn is_stale(&self, epoch: i64, now: Millis) -> bool {
        epoch < self.epoch_of(now) - self.keep_epochs
    }
}

/// One stored accumulator: horizon, channel, epoch and amount.
#[derive(Debug, Clone, PartialEq)]
pub struct Accumulator {
    pub horizon: Horizon,
    pub channel: String,
    pub epoch: i64,
    pub amount: f64,
}

impl Accumulator {
    /// The stored attribute name: `{tag}|{channel}|{epoch}`.
    pub fn attribute(horizon: &Horizon, channel: &str, epoch: i64) -> String {
        format!("{}|{channel}|{epoch}", horizon.tag)
    }

    /// Reads an attribute name written by [`Accumulator::attribute`] with `horizons`.
    pub fn parse(attribute: &str, amount: f64, horizons: &Horizons) -> Option<Self> {
        let mut parts = attribute.splitn(3, '|');
        let horizon = horizons.by_tag(parts.next()?)?;
        let channel = parts.next()?.to_owned();
        let epoch = parts.next()?.parse().ok()?;
        Some(Self {
            horizon,
            channel,
            epoch,
            amount,
        })
    }
}

/// The velocity the accumulators add up to at `now`.
pub fn velocity_at(accumulators: &[Accumulator], now: Millis) -> Velocity {
    let mut channels: BTreeMap<String, Rate> = BTreeMap::new();
    for a in accumulators {
        let rate = channels.entry(a.channel.clone()).or_insert(Rate {
            short: 0.0,
            long: 0.0,
            at: now,
        });
        let r = a.horizon.rate(a.epoch, a.amount, now);
        if a.horizon.tag == SHORT.tag {
            rate.short += r;
        } else {
            rate.long += r;
        }
    }
    Velocity { channels }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sale_decays_with_its_horizon() {
        let at = 1_700_000_123_456;
        for h in HORIZONS {
            let (epoch, amount) = h.contribution(3, at);
            let tau_s = h.tau_ms as f64 / 1000.0;
            assert!((h.rate(epoch, amount, at) - 3.0 / tau_s).abs() < 1e-12);
            let later = at + h.tau_ms;
            let expected = 3.0 / tau_s / std::f64::consts::E;
            assert!((h.rate(epoch, amount, later) - expected).abs() < 1e-12);
        }
    }

    #[test]
    fn attributes_round_trip_and_age_out() {
        let name = Accumulator::attribute(&SHORT, "amazon", 472_222);
        let a = Accumulator::parse(&name, 2.5, &Horizons::default()).unwrap();
        assert_eq!(
            (a.channel.as_str(), a.epoch, a.amount),
            ("amazon", 472_222, 2.5)
        );
        assert!(Accumulator::parse("x|amazon|1", 1.0, &Horizons::default()).is_none());
        let now = 472_230 * SHORT.epoch_ms;
        assert!(SHORT.is_stale(472_222, now));
        assert!(!SHORT.is_stale(472_227, now));
    }

    #[test]
    fn compressed_horizons_keep_their_proportions() {
        let h = Horizons::compressed(150.0);
        assert_eq!((h.short.tau_ms, h.short.epoch_ms), (6_000, 24_000));
        assert_eq!(h.long.tau_ms, 576_000);
        assert_eq!(Horizons::compressed(1.0), Horizons::default());
        let a = Accumulator::parse("s|amazon|7", 1.0, &h).unwrap();
        assert_eq!(a.horizon, h.short);
    }

    #[test]
    fn accumulators_sum_per_channel_and_horizon() {
        let at = 1_700_000_000_000;
        let mut acc = Vec::new();
        for (channel, units) in [("shopify", 2), ("walmart", 1), ("shopify", 1)] {
            for h in HORIZONS {
                let (epoch, amount) = h.contribution(units, at);
                acc.push(Accumulator {
                    horizon: h,
                    channel: channel.into(),
                    epoch,
                    amount,
                });
            }
        }
        let v = velocity_at(&acc, at);
        let shopify = v.channels["shopify"];
        assert!((shopify.short - 3.0 / 900.0).abs() < 1e-12);
        assert!((shopify.long - 3.0 / 86_400.0).abs() < 1e-12);
    }
}
