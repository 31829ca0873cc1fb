//! Property tests of the dynamic-buffer rules (contract section 5): the buffer follows demand and
//! delay, never holds back more than is available, and what is shown and held back add up; the
//! rates and delays it is built from are order-independent and never understated.

use proptest::prelude::*;
use stockguard_domain::buffer::{
    BufferMode, ChannelBufferView, Decider, DynamicPolicy, EXACT_MEAN_LIMIT, RiskInputs,
    StoredSignal, dynamic_buffer, explain, risk_units, signal_factor,
};
use stockguard_domain::channel::BufferPolicy;
use stockguard_domain::delay::{LatencyHistogram, MAX_BUCKET, bucket_of, bucket_upper_ms};
use stockguard_domain::velocity::{LONG_HORIZON_MS, Rate, Velocity};

const DAY_MS: i64 = 24 * 60 * 60 * 1000;
/// 2024-01-01 00:00 UTC.
const T0: i64 = 1_704_067_200_000;

/// The smallest `b` with `P(N > b) ≤ target` for `N ~ Poisson(mean)`, from probabilities built in
/// log space (no underflow for large means) and tails summed from the far end (no cancellation).
fn exact_quantile(mean: f64, target: f64) -> i64 {
    if mean <= 0.0 {
        return 0;
    }
    let limit = (mean + 60.0 * mean.sqrt() + 200.0) as usize;
    let ln_mean = mean.ln();
    let mut ln_p = -mean;
    let mut pmf = Vec::with_capacity(limit + 1);
    pmf.push(ln_p.exp());
    for k in 1..=limit {
        ln_p += ln_mean - (k as f64).ln();
        pmf.push(ln_p.exp());
    }
    let mut tail = 0.0;
    for b in (0..limit).rev() {
        tail += pmf[b + 1];
        if tail > target {
            return b as i64 + 1;
        }
    }
    0
}

fn mean() -> impl Strategy<Value = f64> {
    prop_oneof![0.0..5.0, 5.0..EXACT_MEAN_LIMIT, EXACT_MEAN_LIMIT..1_000.0]
}

/// Risk targets spread evenly in order of magnitude.
fn target() -> impl Strategy<Value = f64> {
    (-9.0f64..-0.1).prop_map(|e| 10f64.powf(e))
}

fn velocity() -> impl Strategy<Value = f64> {
    prop_oneof![Just(0.0), 0.0..0.01, 0.0..1.0, 0.0..20.0]
}

fn delay_ms() -> impl Strategy<Value = i64> {
    prop_oneof![0i64..10_000, 0i64..1_000_000, 0i64..3_600_000]
}

fn risk_inputs() -> impl Strategy<Value = RiskInputs> {
    (
        velocity(),
        delay_ms(),
        1.0f64..10.0,
        0.5f64..2.0,
        prop_oneof![Just(1.0), 0.5f64..10.0],
    )
        .prop_map(|(v, delay, health, tod, signal)| RiskInputs {
            velocity_elsewhere_per_s: v,
            delay_p95_ms: delay,
            health_factor: health,
            effective_delay_ms: (delay as f64 * health).round() as i64,
            time_of_day_factor: tod,
            signal_factor: signal,
        })
}

fn valid_policy() -> impl Strategy<Value = DynamicPolicy> {
    (
        target(),
        prop_oneof![Just(0i64), 0i64..20],
        prop::option::of(0i64..200),
        prop_oneof![Just(0i64), 0i64..50],
        prop_oneof![Just(60_000i64), 0i64..1_000_000],
    )
        .prop_map(|(risk_target, min, max, low, low_delay)| DynamicPolicy {
            risk_target,
            min_units: min,
            max_units: max.map(|m| m.max(min)),
            low_stock_units: low,
            low_stock_max_delay_ms: low_delay,
        })
}

/// Any policy, including ones `validate` rejects: `apply` must still hold its invariants.
fn any_policy() -> impl Strategy<Value = DynamicPolicy> {
    (
        target(),
        -5i64..20,
        prop::option::of(-5i64..200),
        -5i64..50,
        -10i64..1_000_000,
    )
        .prop_map(|(risk_target, min, max, low, low_delay)| DynamicPolicy {
            risk_target,
            min_units: min,
            max_units: max,
            low_stock_units: low,
            low_stock_max_delay_ms: low_delay,
        })
}

fn view(maximum: impl Strategy<Value = Option<i64>>) -> impl Strategy<Value = ChannelBufferView> {
    (
        prop_oneof![Just(BufferMode::Static), Just(BufferMode::Dynamic)],
        (0i64..20, 0.0f64..100.0),
        any_policy(),
        maximum,
        prop::option::of(-10i64..500),
        0i64..2_000_000,
    )
        .prop_map(
            |(mode, (units, percent), dynamic, maximum, stored, delay)| ChannelBufferView {
                mode,
                static_policy: BufferPolicy { units, percent },
                dynamic,
                maximum,
                stored_dynamic: stored,
                delay_ms: delay,
            },
        )
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()) + 1e-300
}

#[test]
fn every_bucket_boundary_is_in_its_own_bucket() {
    for b in 0..=MAX_BUCKET {
        assert_eq!(bucket_of(bucket_upper_ms(b)), b, "bucket {b}");
    }
}

proptest! {
    #[test]
    fn no_velocity_and_no_signal_hold_nothing_back(
        inputs in risk_inputs(),
        policy in valid_policy(),
    ) {
        let idle = RiskInputs { velocity_elsewhere_per_s: 0.0, signal_factor: 1.0, ..inputs };
        let policy = DynamicPolicy { min_units: 0, ..policy };
        prop_assert_eq!(dynamic_buffer(&idle, &policy), 0);
        let view = ChannelBufferView {
            mode: BufferMode::Dynamic,
            static_policy: BufferPolicy::default(),
            dynamic: DynamicPolicy { low_stock_units: 0, ..policy },
            maximum: None,
            stored_dynamic: Some(dynamic_buffer(&idle, &policy)),
            delay_ms: idle.effective_delay_ms,
        };
        prop_assert_eq!(view.apply(100).buffer, 0);
        prop_assert_eq!(explain(&idle, &view, 100), Decider::NoDemand);
    }

    #[test]
    fn the_buffer_grows_with_velocity(
        inputs in risk_inputs(),
        policy in valid_policy(),
        a in velocity(),
        b in velocity(),
    ) {
        let (low, high) = (a.min(b), a.max(b));
        let slow = RiskInputs { velocity_elsewhere_per_s: low, ..inputs };
        let fast = RiskInputs { velocity_elsewhere_per_s: high, ..inputs };
        prop_assert!(dynamic_buffer(&slow, &policy) <= dynamic_buffer(&fast, &policy));
    }

    #[test]
    fn the_buffer_grows_with_delay(
        inputs in risk_inputs(),
        policy in valid_policy(),
        a in delay_ms(),
        b in delay_ms(),
    ) {
        let (low, high) = (a.min(b), a.max(b));
        let short = RiskInputs { effective_delay_ms: low, ..inputs };
        let long = RiskInputs { effective_delay_ms: high, ..inputs };
        prop_assert!(dynamic_buffer(&short, &policy) <= dynamic_buffer(&long, &policy));
    }

    #[test]
    fn the_buffer_grows_with_signal_strength(
        inputs in risk_inputs(),
        policy in valid_policy(),
        a in 0.0f64..20.0,
        b in 0.0f64..20.0,
        age in 0i64..60 * 60 * 1000,
    ) {
        let (low, high) = (a.min(b), a.max(b));
        let weak = StoredSignal { strength: low, occurred_at: T0, expires_at: None };
        let strong = StoredSignal { strength: high, ..weak };
        let now = T0 + age; // within the default lifetime
        let with_weak = RiskInputs { signal_factor: signal_factor(&[weak], now), ..inputs };
        let with_both = RiskInputs { signal_factor: signal_factor(&[weak, strong], now), ..inputs };
        prop_assert_eq!(with_both.signal_factor, high);
        prop_assert!(dynamic_buffer(&with_weak, &policy) <= dynamic_buffer(&with_both, &policy));
    }

    #[test]
    fn risk_units_is_never_below_the_exact_quantile(mean in mean(), target in target()) {
        let units = risk_units(mean, target);
        // A hair of tolerance on the target, for a tail that equals it to rounding.
        prop_assert!(units >= exact_quantile(mean, target * (1.0 + 1e-9)), "{} {}", mean, target);
        if mean <= EXACT_MEAN_LIMIT {
            prop_assert!(units <= exact_quantile(mean, target * (1.0 - 1e-9)), "{} {}", mean, target);
        } else {
            // The bound costs a little, not a lot.
            let exact = exact_quantile(mean, target);
            prop_assert!((units - exact) as f64 <= 0.5 * exact as f64, "{} {} {}", mean, target, units);
        }
    }

    #[test]
    fn risk_units_is_monotone(a in mean(), b in mean(), s in target(), t in target()) {
        let (low, high) = (a.min(b), a.max(b));
        prop_assert!(risk_units(low, s) <= risk_units(high, s));
        let (strict, loose) = (s.min(t), s.max(t));
        prop_assert!(risk_units(a, strict) >= risk_units(a, loose));
    }

    #[test]
    fn the_applied_buffer_is_never_above_what_is_available(
        view in view(prop::option::of(-5i64..500)),
        available in prop_oneof![-100i64..0, 0i64..20, 0i64..2_000],
    ) {
        let applied = view.apply(available);
        prop_assert!(applied.buffer <= available.max(0));
        prop_assert!(applied.buffer >= 0);
        prop_assert!(applied.shown >= 0);
        prop_assert!(applied.shown <= available.max(0));
        if let Some(max) = view.maximum {
            prop_assert!(applied.shown <= max.max(0));
        }
    }

    #[test]
    fn shown_and_buffer_add_up_to_available(
        view in view(Just(None)),
        available in prop_oneof![0i64..20, 0i64..2_000, 0i64..1_000_000],
    ) {
        let applied = view.apply(available);
        prop_assert_eq!(applied.shown + applied.buffer, available);
    }

    #[test]
    fn a_stored_buffer_in_the_policy_applies_as_stored(
        inputs in risk_inputs(),
        policy in valid_policy(),
        available in 0i64..2_000,
    ) {
        let stored = dynamic_buffer(&inputs, &policy);
        let view = ChannelBufferView {
            mode: BufferMode::Dynamic,
            static_policy: BufferPolicy::default(),
            dynamic: DynamicPolicy { low_stock_units: 0, ..policy },
            maximum: None,
            stored_dynamic: Some(stored),
            delay_ms: inputs.effective_delay_ms,
        };
        let applied = view.apply(available);
        prop_assert_eq!(applied.buffer, stored.min(available));
        // The clamps come first; past them, "available" exactly when the buffer exceeds it.
        match explain(&inputs, &view, available) {
            Decider::NoDemand | Decider::MinBuffer | Decider::MaxBuffer => {}
            Decider::Available => prop_assert!(stored > available),
            other => prop_assert!(stored <= available, "{:?}", other),
        }
    }

    #[test]
    fn rates_do_not_depend_on_arrival_order(
        (sales, shuffled) in prop::collection::vec((1i64..20, 0i64..3 * DAY_MS), 1..30)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
        later in 0i64..LONG_HORIZON_MS,
    ) {
        let mut in_order = Rate::default();
        let mut sorted = sales.clone();
        sorted.sort_by_key(|&(_, at)| at);
        for &(units, at) in &sorted {
            in_order.record(units, T0 + at);
        }
        let mut arrived = Rate::default();
        for &(units, at) in &shuffled {
            arrived.record(units, T0 + at);
        }
        let now = T0 + 3 * DAY_MS + later;
        let (a, b) = (in_order.as_of(now), arrived.as_of(now));
        prop_assert!(close(a.short, b.short), "{} {}", a.short, b.short);
        prop_assert!(close(a.long, b.long), "{} {}", a.long, b.long);
        prop_assert_eq!(a.at, b.at);
    }

    #[test]
    fn velocity_elsewhere_does_not_depend_on_arrival_order(
        (sales, shuffled) in prop::collection::vec((0usize..3, 1i64..20, 0i64..DAY_MS), 1..30)
            .prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle())),
    ) {
        const CHANNELS: [&str; 3] = ["shopify", "amazon", "walmart"];
        let mut a = Velocity::default();
        for &(c, units, at) in &sales {
            a.record(CHANNELS[c], units, T0 + at);
        }
        let mut b = Velocity::default();
        for &(c, units, at) in &shuffled {
            b.record(CHANNELS[c], units, T0 + at);
        }
        let now = T0 + DAY_MS;
        for c in CHANNELS.into_iter().chain(["ebay"]) {
            prop_assert!(close(a.elsewhere_per_second(c, now), b.elsewhere_per_second(c, now)));
        }
        // Every channel but one: never more than all of them.
        let all = a.elsewhere_per_second("ebay", now);
        for c in CHANNELS {
            prop_assert!(a.elsewhere_per_second(c, now) <= all);
        }
    }

    #[test]
    fn a_latency_is_within_its_bucket(ms in prop_oneof![0i64..100, 0i64..100_000, 0i64..1_000_000_000]) {
        let b = bucket_of(ms);
        prop_assert!(ms <= bucket_upper_ms(b));
        if b > 0 {
            prop_assert!(ms > bucket_upper_ms(b - 1));
        }
    }

    #[test]
    fn p95_is_never_below_the_true_p95_and_at_most_a_bucket_above(
        samples in prop::collection::vec(
            prop_oneof![0i64..50, 0i64..10_000, (0.0f64..9.0).prop_map(|e| 10f64.powf(e) as i64)],
            1..300,
        ),
    ) {
        let mut h = LatencyHistogram::default();
        for &ms in &samples {
            h.add(ms);
        }
        let mut sorted = samples.clone();
        sorted.sort_unstable();
        let rank = (sorted.len() * 95).div_ceil(100);
        let truth = sorted[rank - 1];
        let p95 = h.p95_ms().unwrap();
        prop_assert!(p95 >= truth, "{} < {}", p95, truth);
        // Bucket 0 reports 10 ms for anything from 0 to 10.
        prop_assert!(p95 as f64 <= (1.25 * truth as f64 + 1.0).max(10.0), "{} vs {}", p95, truth);
        prop_assert_eq!(h.count(), samples.len() as u64);
    }
}
