//! Sales velocity per SKU and channel: exponentially decayed rates, updated in O(1) per sale, and
//! the catalogue's hour-of-week profile for the time-of-day factor.
//!
//! Two horizons: 15 minutes, the longest delay a channel normally has (Amazon's processing window),
//! so a flash sale moves the buffers within one recompute; and 24 hours, one full daily cycle, so
//! the baseline is not dominated by the hour it was measured in.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::types::Millis;

pub const SHORT_HORIZON_MS: Millis = 15 * 60 * 1000;
pub const LONG_HORIZON_MS: Millis = 24 * 60 * 60 * 1000;

/// A channel's decayed sales rates in units per second, as of `at`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Rate {
    pub short: f64,
    pub long: f64,
    pub at: Millis,
}

impl Rate {
    /// Adds a sale of `units` at `at`. A sale older than `self.at` (a late delivery) is added
    /// decayed by its age, so the result does not depend on arrival order.
    pub fn record(&mut self, units: i64, at: Millis) {
        let units = units as f64;
        let fresh = self.at == 0 && self.short == 0.0 && self.long == 0.0;
        if fresh || at >= self.at {
            let decayed = self.as_of(at);
            self.short = decayed.short + units / horizon_s(SHORT_HORIZON_MS);
            self.long = decayed.long + units / horizon_s(LONG_HORIZON_MS);
            self.at = at;
        } else {
            let age = self.at - at;
            self.short += units / horizon_s(SHORT_HORIZON_MS) * decay(age, SHORT_HORIZON_MS);
            self.long += units / horizon_s(LONG_HORIZON_MS) * decay(age, LONG_HORIZON_MS);
        }
    }

    /// The rates decayed to `now` (never grown: `now` before `at` leaves them as they are).
    pub fn as_of(&self, now: Millis) -> Rate {
        if now <= self.at {
            return *self;
        }
        let age = now - self.at;
        Rate {
            short: self.short * decay(age, SHORT_HORIZON_MS),
            long: self.long * decay(age, LONG_HORIZON_MS),
            at: now,
        }
    }
}

/// A horizon in seconds: the time constant τ of its rate.
fn horizon_s(horizon_ms: Millis) -> f64 {
    horizon_ms as f64 / 1000.0
}

/// `exp(-age / τ)`: what is left of a rate after `age` ms.
fn decay(age_ms: Millis, horizon_ms: Millis) -> f64 {
    (-(age_ms as f64) / horizon_ms as f64).exp()
}

/// The summed recent and baseline rates of `rates`, as of `now`.
fn summed<'a>(rates: impl Iterator<Item = &'a Rate>, now: Millis) -> (f64, f64) {
    rates.fold((0.0, 0.0), |(short, long), rate| {
        let r = rate.as_of(now);
        (short + r.short, long + r.long)
    })
}

/// A SKU's sales rates on each channel. The rate on "every channel other than c" is derived.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Velocity {
    pub channels: BTreeMap<String, Rate>,
}

impl Velocity {
    pub fn record(&mut self, channel: &str, units: i64, at: Millis) {
        self.channels
            .entry(channel.to_owned())
            .or_default()
            .record(units, at);
    }

    /// Units per second sold on every channel other than `channel`: the larger of the summed
    /// recent rates and the summed baselines.
    pub fn elsewhere_per_second(&self, channel: &str, now: Millis) -> f64 {
        let others = self
            .channels
            .iter()
            .filter(|(name, _)| name.as_str() != channel)
            .map(|(_, rate)| rate);
        let (short, long) = summed(others, now);
        short.max(long)
    }

    /// Below this total rate (about one unit a month) a SKU is quiet: its buffers are the minimum.
    pub fn is_quiet(&self, now: Millis) -> bool {
        let (short, long) = summed(self.channels.values(), now);
        short.max(long) < QUIET_UNITS_PER_SECOND
    }
}

/// About one unit a month, in units per second: below it a SKU is quiet.
pub const QUIET_UNITS_PER_SECOND: f64 = 1.0 / (30.0 * 86_400.0);

pub const HOURS_PER_WEEK: usize = 168;
/// Below this many units recorded the profile is too thin to trust: the factor stays 1.
pub const MIN_PROFILE_UNITS: f64 = 500.0;
pub const TIME_OF_DAY_FACTOR_RANGE: (f64, f64) = (0.5, 2.0);

/// The hour of the week, UTC, 0 = Monday 00:00 to 00:59.
pub fn hour_of_week(at: Millis) -> usize {
    const MS_PER_HOUR: Millis = 3_600_000;
    /// The Unix epoch was a Thursday 00:00: 3 days after Monday 00:00.
    const EPOCH_HOUR_OF_WEEK: Millis = 72;
    (at.div_euclid(MS_PER_HOUR) + EPOCH_HOUR_OF_WEEK).rem_euclid(HOURS_PER_WEEK as Millis) as usize
}

/// Units sold in each hour of the week, across the catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HourOfWeekProfile {
    pub units: Vec<f64>,
}

impl Default for HourOfWeekProfile {
    fn default() -> Self {
        Self {
            units: vec![0.0; HOURS_PER_WEEK],
        }
    }
}

impl HourOfWeekProfile {
    /// This hour's share of sales against the weekly mean, clamped to
    /// `TIME_OF_DAY_FACTOR_RANGE`; 1 while the profile holds fewer than `MIN_PROFILE_UNITS`.
    pub fn factor(&self, now: Millis) -> f64 {
        if self.units.len() != HOURS_PER_WEEK {
            return 1.0;
        }
        let total: f64 = self.units.iter().sum();
        if !total.is_finite() || total < MIN_PROFILE_UNITS {
            return 1.0;
        }
        let mean = total / HOURS_PER_WEEK as f64;
        let ratio = self.units[hour_of_week(now)] / mean;
        if ratio.is_nan() {
            return 1.0;
        }
        let (low, high) = TIME_OF_DAY_FACTOR_RANGE;
        ratio.clamp(low, high)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: Millis = 60_000;
    const HOUR: Millis = 60 * MINUTE;
    const DAY: Millis = 24 * HOUR;
    /// 2024-01-01 00:00 UTC, a Monday.
    const MONDAY: Millis = 1_704_067_200_000;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-12 * a.abs().max(b.abs()).max(1e-300)
    }

    #[test]
    fn a_fresh_rate_takes_the_time_of_its_first_sale() {
        let mut r = Rate::default();
        r.record(3, MONDAY);
        assert_eq!(r.at, MONDAY);
        assert!(close(r.short, 3.0 / 900.0));
        assert!(close(r.long, 3.0 / 86_400.0));
    }

    #[test]
    fn a_fresh_rate_takes_a_time_before_the_epoch_too() {
        let mut r = Rate::default();
        r.record(1, -5 * HOUR);
        assert_eq!(r.at, -5 * HOUR);
        assert!(close(r.short, 1.0 / 900.0));
    }

    #[test]
    fn rates_decay_by_their_horizon() {
        let mut r = Rate::default();
        r.record(9, MONDAY);
        let later = r.as_of(MONDAY + SHORT_HORIZON_MS);
        assert_eq!(later.at, MONDAY + SHORT_HORIZON_MS);
        assert!(close(later.short, 9.0 / 900.0 / std::f64::consts::E));
        let day = r.as_of(MONDAY + LONG_HORIZON_MS);
        assert!(close(day.long, 9.0 / 86_400.0 / std::f64::consts::E));
    }

    #[test]
    fn as_of_never_grows_a_rate() {
        let mut r = Rate::default();
        r.record(2, MONDAY);
        assert_eq!(r.as_of(MONDAY), r);
        assert_eq!(r.as_of(MONDAY - HOUR), r);
        let later = r.as_of(MONDAY + MINUTE);
        assert!(later.short < r.short && later.long < r.long);
    }

    #[test]
    fn a_late_sale_counts_as_if_it_had_arrived_in_order() {
        let mut in_order = Rate::default();
        in_order.record(1, MONDAY);
        in_order.record(2, MONDAY + 5 * MINUTE);
        in_order.record(4, MONDAY + 20 * MINUTE);
        let mut late = Rate::default();
        late.record(4, MONDAY + 20 * MINUTE);
        late.record(1, MONDAY);
        late.record(2, MONDAY + 5 * MINUTE);
        assert_eq!(late.at, MONDAY + 20 * MINUTE);
        let now = MONDAY + HOUR;
        assert!(close(in_order.as_of(now).short, late.as_of(now).short));
        assert!(close(in_order.as_of(now).long, late.as_of(now).long));
    }

    #[test]
    fn elsewhere_leaves_out_the_channel_and_takes_the_larger_horizon() {
        let mut v = Velocity::default();
        v.record("shopify", 10, MONDAY);
        v.record("amazon", 5, MONDAY);
        v.record("walmart", 1, MONDAY);
        // Just after the sales the recent rates dominate.
        let now = MONDAY;
        assert!(close(v.elsewhere_per_second("shopify", now), 6.0 / 900.0));
        assert!(close(v.elsewhere_per_second("amazon", now), 11.0 / 900.0));
        assert!(close(v.elsewhere_per_second("ebay", now), 16.0 / 900.0));
        // A day later the baseline dominates.
        let later = MONDAY + DAY;
        let expected = 6.0 / 86_400.0 * (-1.0f64).exp();
        assert!(close(v.elsewhere_per_second("shopify", later), expected));
        let recent: f64 = ["amazon", "walmart"]
            .iter()
            .map(|c| v.channels[*c].as_of(later).short)
            .sum();
        assert!(recent < expected);
    }

    #[test]
    fn elsewhere_is_zero_with_only_the_channel_itself() {
        let mut v = Velocity::default();
        assert_eq!(v.elsewhere_per_second("shopify", MONDAY), 0.0);
        v.record("shopify", 10, MONDAY);
        assert_eq!(v.elsewhere_per_second("shopify", MONDAY), 0.0);
    }

    #[test]
    fn quiet_below_about_a_unit_a_month() {
        let mut v = Velocity::default();
        assert!(v.is_quiet(MONDAY));
        v.record("shopify", 1, MONDAY);
        assert!(!v.is_quiet(MONDAY));
        // One unit's baseline decays below one a month after ln(30) days.
        assert!(v.is_quiet(MONDAY + 4 * DAY));
        assert!(!v.is_quiet(MONDAY + 3 * DAY));
    }

    #[test]
    fn hour_of_week_starts_on_monday_utc() {
        assert_eq!(hour_of_week(0), 72); // Thursday 1970-01-01 00:00
        assert_eq!(hour_of_week(MONDAY), 0);
        assert_eq!(hour_of_week(MONDAY + HOUR - 1), 0);
        assert_eq!(hour_of_week(MONDAY + HOUR), 1);
        assert_eq!(hour_of_week(MONDAY + 7 * DAY - 1), 167);
        assert_eq!(hour_of_week(MONDAY + 7 * DAY), 0);
        assert_eq!(
            hour_of_week(MONDAY + 4 * DAY + 13 * HOUR + 30 * MINUTE),
            4 * 24 + 13
        );
        // Before the epoch: Wednesday 1969-12-31 23:59:59.999.
        assert_eq!(hour_of_week(-1), 71);
        assert_eq!(hour_of_week(-3 * DAY), 0);
    }

    #[test]
    fn a_thin_profile_leaves_the_factor_at_one() {
        assert_eq!(HourOfWeekProfile::default().factor(MONDAY), 1.0);
        let mut thin = HourOfWeekProfile::default();
        thin.units[0] = MIN_PROFILE_UNITS - 1.0;
        assert_eq!(thin.factor(MONDAY), 1.0);
        let malformed = HourOfWeekProfile {
            units: vec![100.0; 24],
        };
        assert_eq!(malformed.factor(MONDAY), 1.0);
    }

    #[test]
    fn the_factor_is_the_hour_against_the_weekly_mean_clamped() {
        let mut p = HourOfWeekProfile {
            units: vec![10.0; HOURS_PER_WEEK],
        };
        assert!(close(p.factor(MONDAY), 1.0));
        p.units[1] = 15.0;
        let mean = (10.0 * 167.0 + 15.0) / 168.0;
        assert!(close(p.factor(MONDAY + HOUR), 15.0 / mean));
        assert!(close(p.factor(MONDAY), 10.0 / mean));
        p.units[2] = 1000.0;
        p.units[3] = 0.0;
        assert_eq!(p.factor(MONDAY + 2 * HOUR), TIME_OF_DAY_FACTOR_RANGE.1);
        assert_eq!(p.factor(MONDAY + 3 * HOUR), TIME_OF_DAY_FACTOR_RANGE.0);
    }
}
