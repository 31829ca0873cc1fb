//! Receipts, adjustments, restocked returns, counts and demand signals.

use stockguard_domain::position::CountOutcome;
use stockguard_domain::{Millis, Sku};

use crate::deps::Deps;
use crate::effect::Effect;
use crate::error::ApplyError;

/// An on-hand delta (`StockReceived`, `StockAdjusted`, a restocked `ReturnReceived`). It is
/// skipped when the latest count already includes it (occurred at or before the count).
pub(crate) async fn plan_on_hand_delta(
    deps: &Deps,
    sku: &Sku,
    delta: i64,
    occurred_at: Millis,
    event_id: &str,
    now: Millis,
) -> Result<Effect, ApplyError> {
    let read = deps.store.position(sku).await?;
    let mut new = read;
    if !new.apply_on_hand_delta(delta, occurred_at) {
        return Ok(Effect::new(deps, "inside_latest_count"));
    }
    let mut effect = Effect::new(deps, "applied");
    effect.tx.replace_position(sku, &read, &new);
    effect
        .tx
        .log_on_hand_delta(sku, occurred_at, event_id, delta, now);
    effect.touch(sku);
    Ok(effect)
}

/// An absolute count: on hand becomes the count plus every delta that occurred after it.
pub(crate) async fn plan_count(
    deps: &Deps,
    sku: &Sku,
    on_hand: i64,
    counted_at: Millis,
) -> Result<Effect, ApplyError> {
    let read = deps.store.position(sku).await?;
    // Any delta committed after this read bumps the version, so the write below fails and the
    // count is re-planned with it included.
    let later = deps.store.on_hand_deltas_after(sku, counted_at).await?;
    let mut new = read;
    if new.apply_count(on_hand, counted_at, later) == CountOutcome::Stale {
        return Ok(Effect::new(deps, "stale_count"));
    }
    let mut effect = Effect::new(deps, "applied");
    effect.tx.replace_position(sku, &read, &new);
    effect.touch(sku);
    Ok(effect)
}

/// Stores the newest demand signal of its kind for the buffer logic.
pub(crate) async fn plan_signal(
    deps: &Deps,
    sku: &Sku,
    signal: &str,
    strength: f64,
    occurred_at: Millis,
    expires_at: Option<Millis>,
) -> Result<Effect, ApplyError> {
    let stored = deps.store.signal(sku, signal).await?;
    if stored.as_ref().is_some_and(|s| s.occurred_at > occurred_at) {
        return Ok(Effect::new(deps, "older_than_stored_signal"));
    }
    let mut effect = Effect::new(deps, "applied");
    effect.tx.put_signal(
        sku,
        signal,
        strength,
        occurred_at,
        expires_at,
        stored.map(|s| s.occurred_at),
    );
    effect.tx.mark_active(sku);
    Ok(effect)
}
