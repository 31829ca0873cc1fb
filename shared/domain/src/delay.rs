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

/// The last bucket: it also holds every latency above its upper bound (about 1.5 years).
pub const MAX_BUCKET: u16 = 100;
/// Each bucket's upper bound is this much above the last one's.
const BUCKET_GROWTH: f64 = 1.25;
/// Bucket 0's upper bound.
const FIRST_UPPER_MS: i64 = 10;

/// `ceil(10 × 1.25^b)` for every bucket, computed exactly at compile time: with `1.25 = 5/4`,
/// `10 × 1.25^b = 5^(b+1) / 2^(2b-1)` for `b ≥ 1`, never a whole number (`5^(b+1)` is odd), so its
/// ceiling is the integer quotient plus one. `5^101` needs 235 bits: four 64-bit limbs.
const UPPER_MS: [i64; MAX_BUCKET as usize + 1] = upper_bounds();

const fn upper_bounds() -> [i64; MAX_BUCKET as usize + 1] {
    const LIMBS: usize = 4;
    let mut table = [0i64; MAX_BUCKET as usize + 1];
    table[0] = FIRST_UPPER_MS;
    // 5^(b+1), least significant limb first; 5^2 for b = 1.
    let mut pow5: [u64; LIMBS] = [25, 0, 0, 0];
    let mut b = 1;
    while b <= MAX_BUCKET as usize {
        let shift = 2 * b - 1;
        let limb = shift / 64;
        let bits = shift % 64;
        // The quotient is below 2^64, so it lies within limbs `limb` and `limb + 1`.
        let low = pow5[limb] >> bits;
        let high = if bits == 0 || limb + 1 >= LIMBS {
            0
        } else {
            pow5[limb + 1] << (64 - bits)
        };
        table[b] = (low | high) as i64 + 1;
        let mut carry: u128 = 0;
        let mut i = 0;
        while i < LIMBS {
            let v = pow5[i] as u128 * 5 + carry;
            pow5[i] = v as u64;
            carry = v >> 64;
            i += 1;
        }
        b += 1;
    }
    table
}

/// The bucket a latency falls in: bucket 0 holds 0 to 10 ms, bucket `b` holds
/// `(bucket_upper_ms(b - 1), bucket_upper_ms(b)]` (roughly `ceil(log_1.25(ms / 10))`, but by the
/// whole-millisecond bounds: 13 ms is in bucket 1, whose bound 12.5 rounds up to 13), and the last
/// bucket everything above.
pub fn bucket_of(ms: i64) -> u16 {
    if ms <= FIRST_UPPER_MS {
        return 0;
    }
    let estimate = ((ms as f64 / FIRST_UPPER_MS as f64).ln() / BUCKET_GROWTH.ln()).ceil();
    let mut b = (estimate.max(0.0) as usize).min(MAX_BUCKET as usize);
    // The float estimate can be one off at the boundaries (and `ceil` of the bound is not the
    // bound): settle on the smallest bucket whose integer upper bound holds `ms`.
    while b > 0 && ms <= UPPER_MS[b - 1] {
        b -= 1;
    }
    while b < MAX_BUCKET as usize && ms > UPPER_MS[b] {
        b += 1;
    }
    b as u16
}

/// The largest latency bucket `b` holds: `ceil(10 × 1.25^b)` (buckets past the last one count as
/// the last one).
pub fn bucket_upper_ms(b: u16) -> i64 {
    UPPER_MS[usize::from(b.min(MAX_BUCKET))]
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
        let count = self.count();
        if count == 0 {
            return None;
        }
        // Nearest rank: ceil(0.95 × count), in integers.
        let rank = (u128::from(count) * 95).div_ceil(100);
        let mut seen: u128 = 0;
        let mut last = None;
        for (&b, &c) in &self.counts {
            seen += u128::from(c);
            last = Some(b);
            if seen >= rank {
                return Some(bucket_upper_ms(b));
            }
        }
        last.map(bucket_upper_ms)
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
/// The failure rate at which retries stop widening the delay further (a factor of 10).
pub const MAX_FAILURE_RATE: f64 = 0.9;
/// This many failures and not one successful push in the window: the sync is down.
pub const DOWN_AFTER_FAILURES: u64 = 3;

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
        let widened = (self.delay_p95_ms as f64 * self.health_factor).round() as i64;
        if self.down {
            widened.max(reconcile_interval_ms)
        } else {
            widened
        }
    }
}

/// Judges a channel from its window. `prior_delay_ms` is the documented delay of its kind, used
/// until `MIN_DELAY_SAMPLES` are measured; `shows_on_acknowledge` is false for channels that
/// process pushes after acknowledging them (their delay comes from `shown`).
pub fn assess(
    window: &SyncWindow,
    prior_delay_ms: i64,
    shows_on_acknowledge: bool,
) -> ChannelHealth {
    let measured = if shows_on_acknowledge {
        &window.acknowledged
    } else {
        &window.shown
    };
    let samples = measured.count();
    let measured_p95 = measured.p95_ms();
    let mut delay_p95_ms = match measured_p95 {
        Some(p95) if samples >= MIN_DELAY_SAMPLES => p95,
        _ => prior_delay_ms.max(measured_p95.unwrap_or(0)),
    };
    if !shows_on_acknowledge && window.acknowledged.count() >= MIN_DELAY_SAMPLES {
        // A channel cannot show a change before it has acknowledged it.
        if let Some(acknowledged) = window.acknowledged.p95_ms() {
            delay_p95_ms = delay_p95_ms.max(acknowledged);
        }
    }

    // `throttled` is a subset of `failures`: already counted there.
    let attempts = window.pushes + window.failures;
    let failure_rate = if attempts == 0 {
        0.0
    } else {
        window.failures as f64 / attempts as f64
    };
    let retry_factor = 1.0 / (1.0 - failure_rate.min(MAX_FAILURE_RATE));
    let wait_factor = match window.queue_wait.p95_ms() {
        Some(wait) => wait as f64 / delay_p95_ms.max(1) as f64,
        None => 1.0,
    };
    let health_factor = 1.0f64
        .max(retry_factor)
        .max(wait_factor)
        .min(MAX_HEALTH_FACTOR);

    ChannelHealth {
        delay_p95_ms,
        health_factor,
        down: window.failures >= DOWN_AFTER_FAILURES && window.pushes == 0,
        samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn histogram(samples: &[i64]) -> LatencyHistogram {
        let mut h = LatencyHistogram::default();
        for &ms in samples {
            h.add(ms);
        }
        h
    }

    fn window_with(pushes: u64, failures: u64) -> SyncWindow {
        SyncWindow {
            pushes,
            failures,
            ..SyncWindow::default()
        }
    }

    #[test]
    fn first_buckets() {
        assert_eq!(bucket_upper_ms(0), 10);
        assert_eq!(bucket_upper_ms(1), 13); // 12.5
        assert_eq!(bucket_upper_ms(2), 16); // 15.625
        assert_eq!(bucket_upper_ms(3), 20); // 19.53125
        assert_eq!(bucket_upper_ms(4), 25); // 24.4140625
        assert_eq!(bucket_upper_ms(5), 31); // 30.517578125
        for ms in [-5, 0, 1, 10] {
            assert_eq!(bucket_of(ms), 0, "{ms}");
        }
        assert_eq!(bucket_of(11), 1);
        assert_eq!(bucket_of(13), 1);
        assert_eq!(bucket_of(14), 2);
        assert_eq!(bucket_of(16), 2);
        assert_eq!(bucket_of(17), 3);
        assert_eq!(bucket_of(25), 4);
        assert_eq!(bucket_of(26), 5);
    }

    #[test]
    fn upper_bounds_match_the_float_formula() {
        // A float can only be off by rounding (it is not, for these buckets, on this platform);
        // the table is exact everywhere.
        for b in 0..=MAX_BUCKET {
            let float = (10.0 * BUCKET_GROWTH.powi(i32::from(b))).ceil() as i64;
            assert!((bucket_upper_ms(b) - float).abs() <= 1, "bucket {b}");
        }
        assert_eq!(bucket_upper_ms(7), 48);
        assert_eq!(bucket_upper_ms(MAX_BUCKET), 49_090_934_653);
    }

    #[test]
    fn every_boundary_lands_in_its_own_bucket() {
        for b in 0..=MAX_BUCKET {
            let upper = bucket_upper_ms(b);
            assert_eq!(bucket_of(upper), b, "upper bound of {b}");
            if b < MAX_BUCKET {
                assert_eq!(bucket_of(upper + 1), b + 1, "just above {b}");
            }
            if b > 0 {
                assert!(upper > bucket_upper_ms(b - 1));
                assert!(upper as f64 <= bucket_upper_ms(b - 1) as f64 * 1.25 + 1.0);
            }
        }
    }

    #[test]
    fn the_last_bucket_holds_everything_above() {
        assert_eq!(bucket_of(i64::MAX), MAX_BUCKET);
        assert_eq!(bucket_of(bucket_upper_ms(MAX_BUCKET) + 1), MAX_BUCKET);
        assert_eq!(bucket_upper_ms(MAX_BUCKET + 7), bucket_upper_ms(MAX_BUCKET));
    }

    #[test]
    fn p95_is_none_when_empty() {
        assert_eq!(LatencyHistogram::default().p95_ms(), None);
    }

    #[test]
    fn p95_is_the_upper_bound_of_the_nearest_rank_bucket() {
        // 20 samples: rank 19.
        let mut samples = vec![5; 18];
        samples.extend([1_000, 100_000]);
        assert_eq!(
            histogram(&samples).p95_ms(),
            Some(bucket_upper_ms(bucket_of(1_000)))
        );
        let mut samples = vec![5; 19];
        samples.push(100_000);
        assert_eq!(histogram(&samples).p95_ms(), Some(10));
        // 1 sample: itself.
        assert_eq!(
            histogram(&[2_000]).p95_ms(),
            Some(bucket_upper_ms(bucket_of(2_000)))
        );
        assert!(histogram(&[2_000]).p95_ms().unwrap() >= 2_000);
        // 100 samples 1..=100: rank 95 is 95 ms.
        let samples: Vec<i64> = (1..=100).collect();
        let p95 = histogram(&samples).p95_ms().unwrap();
        assert_eq!(p95, bucket_upper_ms(bucket_of(95)));
        assert!((95..=120).contains(&p95));
    }

    #[test]
    fn merge_adds_counts() {
        let mut a = histogram(&[5, 50, 500]);
        a.merge(&histogram(&[50, 5_000]));
        assert_eq!(a.count(), 5);
        assert_eq!(a.counts[&bucket_of(50)], 2);
    }

    #[test]
    fn too_few_samples_keep_the_prior_unless_they_are_slower() {
        let mut w = SyncWindow {
            acknowledged: histogram(&[200, 300]),
            ..SyncWindow::default()
        };
        let h = assess(&w, 2_000, true);
        assert_eq!(h.delay_p95_ms, 2_000);
        assert_eq!(h.samples, 2);
        assert_eq!(h.health_factor, 1.0);
        assert!(!h.down);
        w.acknowledged.add(9_000);
        assert_eq!(
            assess(&w, 2_000, true).delay_p95_ms,
            bucket_upper_ms(bucket_of(9_000))
        );
        assert_eq!(
            assess(&SyncWindow::default(), 2_000, true).delay_p95_ms,
            2_000
        );
    }

    #[test]
    fn enough_samples_replace_the_prior() {
        let w = SyncWindow {
            acknowledged: histogram(&[200; 5]),
            ..SyncWindow::default()
        };
        let h = assess(&w, 2_000, true);
        assert_eq!(h.delay_p95_ms, bucket_upper_ms(bucket_of(200)));
        assert_eq!(h.samples, 5);
    }

    #[test]
    fn channels_that_process_later_are_measured_by_what_they_show() {
        let w = SyncWindow {
            acknowledged: histogram(&[300; 10]),
            shown: histogram(&[120_000; 3]),
            ..SyncWindow::default()
        };
        let h = assess(&w, 900_000, false);
        assert_eq!(h.samples, 3);
        assert_eq!(h.delay_p95_ms, 900_000);
        let w = SyncWindow {
            shown: histogram(&[120_000; 6]),
            ..w
        };
        let h = assess(&w, 900_000, false);
        assert_eq!(h.delay_p95_ms, bucket_upper_ms(bucket_of(120_000)));
        // Never faster than its acknowledgement, once that is measured.
        let w = SyncWindow {
            acknowledged: histogram(&[500_000; 5]),
            shown: histogram(&[120_000; 6]),
            ..SyncWindow::default()
        };
        assert_eq!(
            assess(&w, 0, false).delay_p95_ms,
            bucket_upper_ms(bucket_of(500_000))
        );
        // An acknowledgement with too few samples does not count.
        let w = SyncWindow {
            acknowledged: histogram(&[500_000; 4]),
            shown: histogram(&[120_000; 6]),
            ..SyncWindow::default()
        };
        assert_eq!(
            assess(&w, 0, false).delay_p95_ms,
            bucket_upper_ms(bucket_of(120_000))
        );
    }

    #[test]
    fn failures_widen_the_delay() {
        assert_eq!(assess(&window_with(10, 0), 1_000, true).health_factor, 1.0);
        // p = 1/2: retries double the delay.
        let h = assess(&window_with(5, 5), 1_000, true);
        assert!((h.health_factor - 2.0).abs() < 1e-12);
        assert!(!h.down);
        // p = 3/4 with throttling counted once (it is part of the failures).
        let w = SyncWindow {
            throttled: 3,
            ..window_with(1, 3)
        };
        assert!((assess(&w, 1_000, true).health_factor - 4.0).abs() < 1e-12);
        // p capped at 0.9.
        let h = assess(&window_with(1, 99), 1_000, true);
        assert!((h.health_factor - 10.0).abs() < 1e-9);
    }

    #[test]
    fn a_sync_with_failures_and_no_push_is_down() {
        let h = assess(&window_with(0, 3), 1_000, true);
        assert!(h.down);
        assert_eq!(h.health_factor, MAX_HEALTH_FACTOR);
        assert!(!assess(&window_with(0, 2), 1_000, true).down);
        assert!(!assess(&window_with(1, 50), 1_000, true).down);
    }

    #[test]
    fn queue_wait_widens_the_delay_in_proportion() {
        let w = SyncWindow {
            acknowledged: histogram(&[1_000; 20]),
            queue_wait: histogram(&[4_000; 20]),
            ..SyncWindow::default()
        };
        let h = assess(&w, 0, true);
        let expected =
            bucket_upper_ms(bucket_of(4_000)) as f64 / bucket_upper_ms(bucket_of(1_000)) as f64;
        assert!((h.health_factor - expected).abs() < 1e-12);
        // A short wait does not shrink the delay.
        let w = SyncWindow {
            queue_wait: histogram(&[5; 20]),
            ..w
        };
        assert_eq!(assess(&w, 0, true).health_factor, 1.0);
        // A delay of 0 counts as 1 ms; the factor stays capped.
        let w = SyncWindow {
            queue_wait: histogram(&[60_000]),
            ..SyncWindow::default()
        };
        assert_eq!(assess(&w, 0, true).health_factor, MAX_HEALTH_FACTOR);
    }

    #[test]
    fn effective_delay() {
        let healthy = ChannelHealth {
            delay_p95_ms: 1_000,
            health_factor: 1.0,
            down: false,
            samples: 10,
        };
        assert_eq!(healthy.effective_delay_ms(900_000), 1_000);
        let slowed = ChannelHealth {
            health_factor: 2.5,
            delay_p95_ms: 333,
            ..healthy
        };
        assert_eq!(slowed.effective_delay_ms(900_000), 833); // 832.5 rounds away from zero
        let down = ChannelHealth {
            down: true,
            health_factor: MAX_HEALTH_FACTOR,
            ..healthy
        };
        assert_eq!(down.effective_delay_ms(900_000), 900_000);
        assert_eq!(down.effective_delay_ms(5_000), 10_000);
    }
}
