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
        todo!("{units} {at}")
    }

    /// The rates decayed to `now` (never grown: `now` before `at` leaves them as they are).
    pub fn as_of(&self, now: Millis) -> Rate {
        todo!("{now}")
    }
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
        todo!("{channel} {now}")
    }

    /// Below this total rate (about one unit a month) a SKU is quiet: its buffers are the minimum.
    pub fn is_quiet(&self, now: Millis) -> bool {
        todo!("{now}")
    }
}

pub const HOURS_PER_WEEK: usize = 168;
/// Below this many units recorded the profile is too thin to trust: the factor stays 1.
pub const MIN_PROFILE_UNITS: f64 = 500.0;
pub const TIME_OF_DAY_FACTOR_RANGE: (f64, f64) = (0.5, 2.0);

/// The hour of the week, UTC, 0 = Monday 00:00 to 00:59.
pub fn hour_of_week(at: Millis) -> usize {
    todo!("{at}")
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
        todo!("{now}")
    }
}
