//! A channel's measured delay (from a change to the channel showing it) and the health of its
//! sync, from per-minute samples kept over a sliding window.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Latencies in logarithmic buckets (each 25% wider than the last), so a window of any size is a
/// bounded number of counters that add without reading (DynamoDB `ADD`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LatencyHistogram {
    pub counts: BTreeMap<u16, u64>,
}

/// The bucket a latency falls in: bucket 0 holds 0 to 10 ms.
pub fn bucket_of(ms: i64) -> u16 {
    todo!("{ms}")
}

/// The largest latency bucket `b` holds.
pub fn bucket_upper_ms(b: u16) -> i64 {
    todo!("{b}")
}

impl LatencyHistogram {
    pub fn add(&mut self, ms: i64) {
        *self.counts.entry(bucket_of(ms)).or_default() += 1;
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (b, c) in &other.counts {
            *self.counts.entry(*b).or_default() += c;
        }
    }

    pub fn count(&self) -> u64 {
        self.counts.values().sum()
    }

    /// The upper bound of the bucket holding the 95th percentile: never below the true p95.
    pub fn p95_ms(&self) -> Option<i64> {
        todo!()
    }
}

/// What a channel's sync did over the window.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncWindow {
    pub pushes: u64,
    pub failures: u64,
    pub throttled: u64,
    /// From the causing event to the channel's acknowledgement.
    pub acknowledged: LatencyHistogram,
    /// From the causing event to the channel showing it, by read-back (channels that process
    /// pushes asynchronously: Amazon).
    pub shown: LatencyHistogram,
    /// How long the oldest message of each batch waited on the channel's queue.
    pub queue_wait: LatencyHistogram,
}

/// Below this many samples a measured p95 is not trusted over the channel's documented prior.
pub const MIN_DELAY_SAMPLES: u64 = 5;
/// The largest factor by which failures widen a channel's delay.
pub const MAX_HEALTH_FACTOR: f64 = 10.0;

/// A channel's delay and sync health as the buffers use them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ChannelHealth {
    /// p95 from a change to the channel showing it (measured, or the prior when too few samples).
    pub delay_p95_ms: i64,
    /// ≥ 1: how much failures, throttling and queue wait widen the delay.
    pub health_factor: f64,
    /// The sync is down: the channel counts as late by the reconciliation interval.
    pub down: bool,
    pub samples: u64,
}

impl ChannelHealth {
    /// The delay `d` the risk uses: the p95 widened by the health factor, and at least the
    /// reconciliation interval while the sync is down.
    pub fn effective_delay_ms(&self, reconcile_interval_ms: i64) -> i64 {
        todo!("{reconcile_interval_ms}")
    }
}

/// Judges a channel from its window. `prior_delay_ms` is the documented delay of its kind, used
/// until `MIN_DELAY_SAMPLES` are measured; `shows_on_acknowledge` is false for channels that
/// process pushes after acknowledging them (their delay comes from `shown`).
pub fn assess(window: &SyncWindow, prior_delay_ms: i64, shows_on_acknowledge: bool) -> ChannelHealth {
    todo!("{window:?} {prior_delay_ms} {shows_on_acknowledge}")
}
