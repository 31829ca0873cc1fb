//! The dynamic-buffer recompute's decisions (contract section 5), as pure functions: each
//! channel's risk inputs for a SKU, the buffers a SKU gets and which changes are announced, when a
//! SKU that stopped selling is next worth recomputing, and whether a channel's new assessment is
//! worth storing. The handler reads the inputs, calls these, and writes what they return.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::buffer::{
    BufferMode, ChannelBufferView, RiskInputs, StoredSignal, dynamic_buffer, explain, signal_factor,
};
use crate::decayed::{Accumulator, velocity_at};
use crate::delay::ChannelHealth;
use crate::velocity::{HourOfWeekProfile, Velocity};
use crate::{ChannelName, Millis, Notification, Position, Sku};

/// One channel's buffer for one SKU as the recompute stored it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredChannelBuffer {
    /// `clamp(min, risk_units(λ·d), max)`: the buffer while `available` exceeds it.
    pub buffer: i64,
    pub inputs: RiskInputs,
}

/// A SKU's dynamic buffers. `revision` increases with every change, so that a channel push caused
/// by a buffer change is gated as a position change is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StoredBuffers {
    pub revision: i64,
    pub computed_at: Millis,
    pub channels: BTreeMap<String, StoredChannelBuffer>,
}

/// A channel's delay and health as the recompute last assessed them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StoredHealth {
    pub health: ChannelHealth,
    /// `d` as the risk uses it (p95 widened by health; the reconciliation interval when down).
    pub effective_delay_ms: i64,
    pub assessed_at: Millis,
}

impl StoredHealth {
    /// Whether `self`, newly assessed, is worth storing over `old`: the delay moved by more than
    /// a tenth, or the sync went down or came back.
    pub fn differs_materially_from(&self, old: &StoredHealth) -> bool {
        let (a, b) = (
            old.effective_delay_ms as f64,
            self.effective_delay_ms as f64,
        );
        old.health.down != self.health.down || (a - b).abs() > 0.1 * a.max(b)
    }
}

/// Everything the recompute needs about one SKU.
#[derive(Debug, Clone, Default)]
pub struct BufferInputs {
    pub position: Position,
    pub accumulators: Vec<Accumulator>,
    pub signals: Vec<StoredSignal>,
    /// The `add_to_cart_surge` among `signals` (it also shortens default reservation holds).
    pub surge: Option<StoredSignal>,
    pub stored: Option<StoredBuffers>,
}

/// An enabled channel as the buffers see it.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferChannel {
    pub name: ChannelName,
    /// The channel's settings as a view with no stored dynamic buffer: the recompute sets it.
    pub view: ChannelBufferView,
    /// The documented delay of the channel's kind, used until one is measured.
    pub prior_delay_ms: i64,
    pub health: Option<StoredHealth>,
}

impl BufferChannel {
    /// The view with this SKU's stored dynamic buffer (if any).
    pub fn view_with(&self, stored: Option<&StoredBuffers>) -> ChannelBufferView {
        ChannelBufferView {
            stored_dynamic: stored
                .and_then(|b| b.channels.get(self.name.as_str()))
                .map(|c| c.buffer),
            ..self.view
        }
    }

    /// The channel's risk inputs for a SKU selling at `velocity` with `signal` as of `now`.
    pub fn risk_inputs(
        &self,
        velocity: &Velocity,
        signal: f64,
        profile: &HourOfWeekProfile,
        now: Millis,
    ) -> RiskInputs {
        let prior = self.prior_delay_ms;
        let (delay_p95_ms, health_factor, effective_delay_ms) = match &self.health {
            Some(h) => (
                h.health.delay_p95_ms,
                h.health.health_factor,
                h.effective_delay_ms,
            ),
            None => (prior, 1.0, prior.max(0)),
        };
        RiskInputs {
            velocity_elsewhere_per_s: velocity.elsewhere_per_second(self.name.as_str(), now),
            delay_p95_ms,
            health_factor,
            effective_delay_ms,
            time_of_day_factor: profile.factor(now),
            signal_factor: signal,
        }
    }
}

/// What recomputing one SKU decided.
#[derive(Debug, Clone, PartialEq)]
pub struct BufferPlan {
    /// The buffers to store, at the next revision; `None` when none moved (nothing is written).
    pub store: Option<StoredBuffers>,
    /// `ChannelBufferChanged` for each dynamic channel whose buffer in force moves, announced
    /// only if `store` is written (a newer revision stored meanwhile announced its own).
    pub announce: Vec<Notification>,
    /// No sales left in its rates and no active signal: its buffers are the minimum and it can
    /// leave the active list.
    pub quiet: bool,
}

/// Recomputes a SKU's buffers on every enabled channel as of `now`.
pub fn plan_buffers(
    channels: &[BufferChannel],
    sku: &Sku,
    input: &BufferInputs,
    profile: &HourOfWeekProfile,
    now: Millis,
) -> BufferPlan {
    let mut new = StoredBuffers {
        revision: input.stored.as_ref().map_or(0, |b| b.revision) + 1,
        computed_at: now,
        channels: Default::default(),
    };
    let velocity = velocity_at(&input.accumulators, now);
    let signal = signal_factor(&input.signals, now);
    let available = input.position.available();
    let mut announce = Vec::new();
    for c in channels {
        let risk = c.risk_inputs(&velocity, signal, profile, now);
        let buffer = dynamic_buffer(&risk, &c.view.dynamic);
        new.channels.insert(
            c.name.to_string(),
            StoredChannelBuffer {
                buffer,
                inputs: risk,
            },
        );
        if c.view.mode != BufferMode::Dynamic {
            continue;
        }
        let before = c.view_with(input.stored.as_ref()).apply(available).buffer;
        let after_view = c.view_with(Some(&new));
        let after = after_view.apply(available).buffer;
        if before != after {
            announce.push(Notification::channel_buffer_changed(
                c.name.as_str(),
                sku,
                after,
                before,
                explain(&risk, &after_view, available).as_str(),
            ));
        }
    }
    let moved = input.stored.as_ref().is_none_or(|old| {
        old.channels.len() != new.channels.len()
            || old
                .channels
                .iter()
                .any(|(name, b)| new.channels.get(name).is_none_or(|n| n.buffer != b.buffer))
    });
    BufferPlan {
        store: moved.then_some(new),
        announce,
        quiet: velocity.is_quiet(now) && signal == 1.0,
    }
}

/// Checks of a SKU that stopped selling are spaced out up to this.
pub const MAX_CHECK_INTERVAL_MS: Millis = 6 * 60 * 60 * 1000;

/// When a SKU that has not sold since `touched_at` is next worth recomputing. Its rates only decay
/// from here, so its buffers can only fall, and a later check only holds units back a little
/// longer: the wait is a quarter of its quiet time (at most six hours), and an active signal is
/// checked as it expires. A sale or a signal makes it due at once.
pub fn next_check(now: Millis, touched_at: Millis, signals: &[StoredSignal]) -> Millis {
    let wait = ((now - touched_at) / 4).clamp(0, MAX_CHECK_INTERVAL_MS);
    signals
        .iter()
        .filter(|s| s.is_active(now))
        .map(StoredSignal::active_until)
        .fold(now + wait, Millis::min)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::buffer::DynamicPolicy;
    use crate::channel::BufferPolicy;
    use crate::decayed::HORIZONS;

    const NOW: Millis = 1_800_000_000_000;

    fn channel(name: &str, mode: BufferMode, delay_ms: i64) -> BufferChannel {
        BufferChannel {
            name: ChannelName::parse(name).unwrap(),
            view: ChannelBufferView {
                mode,
                static_policy: BufferPolicy::default(),
                dynamic: DynamicPolicy::default(),
                maximum: None,
                stored_dynamic: None,
                delay_ms,
            },
            prior_delay_ms: delay_ms,
            health: None,
        }
    }

    /// A SKU with 100 available that sold `units` on the storefront a minute ago.
    fn selling(units: i64) -> BufferInputs {
        let accumulators = HORIZONS
            .into_iter()
            .map(|horizon| {
                let (epoch, amount) = horizon.contribution(units, NOW - 60_000);
                Accumulator {
                    horizon,
                    channel: "storefront".into(),
                    epoch,
                    amount,
                }
            })
            .collect();
        BufferInputs {
            position: Position {
                on_hand: 100,
                version: 1,
                ..Position::default()
            },
            accumulators,
            ..BufferInputs::default()
        }
    }

    fn sku() -> Sku {
        Sku::parse("PLAN-1").unwrap()
    }

    #[test]
    fn a_selling_sku_stores_its_buffers_and_announces_the_dynamic_channels_that_moved() {
        let channels = [
            channel("amazon", BufferMode::Dynamic, 15 * 60_000),
            channel("walmart", BufferMode::Static, 60_000),
        ];
        let plan = plan_buffers(&channels, &sku(), &selling(20), &Default::default(), NOW);
        let stored = plan.store.expect("first buffers are stored");
        assert_eq!(stored.revision, 1);
        assert_eq!(
            stored.channels.len(),
            2,
            "static channels keep their figures too"
        );
        assert!(stored.channels["amazon"].buffer > 0, "{stored:?}");
        assert_eq!(
            plan.announce.len(),
            1,
            "only the dynamic channel is announced"
        );
        assert!(!plan.quiet);
    }

    #[test]
    fn unchanged_buffers_write_nothing_and_announce_nothing() {
        let channels = [channel("amazon", BufferMode::Dynamic, 15 * 60_000)];
        let mut input = selling(20);
        let first = plan_buffers(&channels, &sku(), &input, &Default::default(), NOW);
        input.stored = first.store;
        let again = plan_buffers(&channels, &sku(), &input, &Default::default(), NOW);
        assert_eq!(again.store, None);
        assert!(again.announce.is_empty());
    }

    #[test]
    fn a_sku_with_no_sales_and_no_signal_is_quiet_at_the_minimum() {
        let channels = [channel("amazon", BufferMode::Dynamic, 15 * 60_000)];
        let input = BufferInputs::default();
        let plan = plan_buffers(&channels, &sku(), &input, &Default::default(), NOW);
        assert!(plan.quiet);
        let stored = plan
            .store
            .expect("a SKU never computed stores its first buffers");
        assert_eq!(
            stored.channels["amazon"].buffer,
            DynamicPolicy::default().min_units
        );
        assert!(plan.announce.is_empty(), "the minimum was already in force");
    }

    #[test]
    fn a_channel_without_an_assessment_uses_its_prior_delay() {
        let c = channel("amazon", BufferMode::Dynamic, 15 * 60_000);
        let velocity = velocity_at(&[], NOW);
        let risk = c.risk_inputs(&velocity, 1.0, &Default::default(), NOW);
        assert_eq!(
            (
                risk.delay_p95_ms,
                risk.effective_delay_ms,
                risk.health_factor
            ),
            (15 * 60_000, 15 * 60_000, 1.0)
        );
    }

    #[test]
    fn a_quiet_sku_is_checked_after_a_quarter_of_its_quiet_time_at_most_six_hours() {
        assert_eq!(next_check(NOW, NOW - 4 * 60_000, &[]), NOW + 60_000);
        assert_eq!(
            next_check(NOW, NOW - 7 * 24 * 3_600_000, &[]),
            NOW + MAX_CHECK_INTERVAL_MS
        );
        assert_eq!(
            next_check(NOW, NOW + 1, &[]),
            NOW,
            "a clock behind waits nothing"
        );
    }

    fn health(delay: i64, down: bool) -> StoredHealth {
        StoredHealth {
            health: ChannelHealth {
                delay_p95_ms: delay,
                health_factor: 1.0,
                down,
                samples: 10,
            },
            effective_delay_ms: delay,
            assessed_at: NOW,
        }
    }

    #[test]
    fn a_health_assessment_is_stored_when_the_delay_moves_a_tenth_or_the_sync_goes_down() {
        let old = health(10_000, false);
        assert!(!health(10_900, false).differs_materially_from(&old));
        assert!(health(11_200, false).differs_materially_from(&old));
        assert!(health(8_800, false).differs_materially_from(&old));
        assert!(health(10_000, true).differs_materially_from(&old));
    }
}
