//! Applies one inbound event exactly once: validate, check its idempotency record, plan the change
//! from a consistent read, commit it with the record in one transaction, then publish.

use serde_json::Value;
use stockguard_domain::idempotency::{
    Delivery, classify_delivery, is_producer_replay, payload_hash,
};
use stockguard_domain::inbound::parse_inbound;
use stockguard_domain::outbound::Cause;
use stockguard_domain::{Command, InboundEvent, Millis};

use crate::buffers::{BufferRecompute, DEFAULT_RECONCILE_INTERVAL_MS};
use crate::deps::{Deps, now_ms};
use crate::effect::{Effect, MAX_ATTEMPTS, Written, backoff, contended, publish_outcome};
use crate::error::ApplyError;
use crate::{orders, reservations, stock};

/// What happened to a delivery that did not fail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// Applied now; `outcome` says how (e.g. `applied`, `insufficient_stock`, `stale_count`).
    Applied { outcome: &'static str },
    /// The same event was applied before; nothing changed (its events were re-published if needed).
    Repeat,
    /// Its producer `sequence` was at or below the last applied one: recorded, not applied.
    ProducerReplay,
}

pub async fn apply_inbound(
    deps: &Deps,
    source: &str,
    detail_type: &str,
    detail: &Value,
) -> Result<Applied, ApplyError> {
    let event = parse_inbound(detail_type, detail)?;
    let hash = payload_hash(detail_type, detail);
    let event_id = event.common.event_id.as_str();
    let cause = Cause {
        event_id: event_id.to_owned(),
        detail_type: detail_type.to_owned(),
        occurred_at: event.common.occurred_at,
    };
    for attempt in 0..MAX_ATTEMPTS {
        let stored = deps.store.idempotency(event_id).await?;
        match classify_delivery(
            stored.as_ref().map(|r| (r.payload_hash.as_str(), r.status)),
            &hash,
        ) {
            Delivery::KeyReused => {
                return Err(ApplyError::KeyReused {
                    event_id: event_id.to_owned(),
                });
            }
            Delivery::Repeat { publish_pending } => {
                if let (true, Some(record)) = (publish_pending, stored) {
                    let written = Written::unknown();
                    publish_outcome(deps, &cause, &record.notifications, &record.skus, &written)
                        .await?;
                    deps.store.mark_published(event_id).await?;
                }
                return Ok(Applied::Repeat);
            }
            Delivery::First => {}
        }
        let now = now_ms();
        let mut effect = match sequence_check(deps, source, &event).await? {
            SequenceCheck::Replay => Effect::new(deps, "producer_replay"),
            SequenceCheck::Advance(previous) => {
                let mut effect = plan(deps, &event, now).await?;
                if let Some(seq) = event.common.sequence {
                    for (sku, prev) in previous {
                        effect.tx.advance_sequence(source, &sku, prev, seq);
                    }
                }
                effect
            }
        };
        effect.tx.put_idempotency(
            event_id,
            &hash,
            effect.outcome,
            &effect.notifications,
            &effect.skus,
            now,
        );
        let written = Written::by(&effect.tx);
        match deps.store.commit(effect.tx).await {
            Ok(()) => {
                publish_outcome(deps, &cause, &effect.notifications, &effect.skus, &written)
                    .await?;
                // Best effort: a redelivery of an `APPLIED` record only publishes again.
                if let Err(e) = deps.store.mark_published(event_id).await {
                    tracing::warn!(event_id, error = %e, "could not mark the delivery published");
                }
                if let (Command::DemandSignal { sku, .. }, "applied") =
                    (&event.command, effect.outcome)
                {
                    // A signal moves its SKU's buffers within seconds, not at the next scheduled
                    // recompute (which retries this SKU anyway: the signal put it on its list).
                    let report = BufferRecompute::new(deps.clone(), DEFAULT_RECONCILE_INTERVAL_MS)
                        .recompute_skus(std::slice::from_ref(sku), now_ms())
                        .await;
                    if !report.errors.is_empty() {
                        tracing::warn!(errors = ?report.errors, "recomputing buffers after a signal");
                    }
                }
                return Ok(match effect.outcome {
                    "producer_replay" => Applied::ProducerReplay,
                    outcome => Applied::Applied { outcome },
                });
            }
            Err(e) if e.is_condition_failed() => backoff(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(contended(detail_type))
}

enum SequenceCheck {
    Replay,
    /// Apply, advancing each SKU's sequence from the value read.
    Advance(Vec<(stockguard_domain::Sku, Option<u64>)>),
}

async fn sequence_check(
    deps: &Deps,
    source: &str,
    event: &InboundEvent,
) -> Result<SequenceCheck, ApplyError> {
    let Some(seq) = event.common.sequence else {
        return Ok(SequenceCheck::Advance(Vec::new()));
    };
    let mut previous = Vec::new();
    for sku in event.command.skus() {
        let last = deps.store.sequence(source, &sku).await?;
        if is_producer_replay(last, Some(seq)) {
            tracing::info!(sku = %sku, sequence = seq, last_applied = last, "producer replay: recorded, not applied");
            return Ok(SequenceCheck::Replay);
        }
        previous.push((sku, last));
    }
    Ok(SequenceCheck::Advance(previous))
}

async fn plan(deps: &Deps, event: &InboundEvent, now: Millis) -> Result<Effect, ApplyError> {
    let occurred_at = event.common.occurred_at;
    let event_id = event.common.event_id.as_str();
    match &event.command {
        Command::StockReceived { sku, quantity, .. } => {
            stock::plan_on_hand_delta(deps, sku, *quantity, occurred_at, event_id, now).await
        }
        Command::StockAdjusted { sku, delta, .. } => {
            stock::plan_on_hand_delta(deps, sku, *delta, occurred_at, event_id, now).await
        }
        Command::ReturnReceived {
            sku,
            quantity,
            restock: true,
            ..
        } => stock::plan_on_hand_delta(deps, sku, *quantity, occurred_at, event_id, now).await,
        Command::ReturnReceived { restock: false, .. } => Ok(Effect::new(deps, "not_restocked")),
        Command::StockCounted { sku, on_hand } => {
            stock::plan_count(deps, sku, *on_hand, occurred_at).await
        }
        Command::DemandSignal {
            sku,
            signal,
            strength,
            expires_at,
        } => {
            stock::plan_signal(
                deps,
                sku,
                signal.as_str(),
                *strength,
                occurred_at,
                *expires_at,
            )
            .await
        }
        Command::ReservationRequested(request) => {
            // The idempotency record and, with a sequence, one item per SKU join the transaction.
            let reserved = 1 + event.common.sequence.map_or(0, |_| request.lines.len());
            let (_, effect) = reservations::plan_reserve(deps, request, now, reserved).await?;
            Ok(effect)
        }
        Command::ReservationConfirmed {
            reservation_id,
            order_id,
        } => {
            let (answer, effect) = reservations::read_and_plan_confirm(
                deps,
                reservation_id,
                order_id,
                reservations::OnLapse::RecordOversell,
                now,
            )
            .await?;
            match answer {
                reservations::ConfirmAnswer::NotFound => Err(ApplyError::NotYetKnown(format!(
                    "reservation {reservation_id} is not known yet (confirm before its request?)"
                ))),
                _ => Ok(effect),
            }
        }
        Command::ReservationReleased { reservation_id, .. } => {
            let (answer, effect) = reservations::plan_release(deps, reservation_id).await?;
            match answer {
                reservations::ReleaseAnswer::NotFound => Err(ApplyError::NotYetKnown(format!(
                    "reservation {reservation_id} is not known yet (release before its request?)"
                ))),
                reservations::ReleaseAnswer::AlreadyConfirmed => Err(ApplyError::Conflict {
                    code: "reservation_confirmed",
                    message: format!(
                        "reservation {reservation_id} was confirmed; cancel its order instead"
                    ),
                }),
                reservations::ReleaseAnswer::Released => Ok(effect),
            }
        }
        Command::OrderPlaced {
            order_id,
            channel,
            lines,
        } => orders::plan_order_placed(deps, order_id, channel, lines, now).await,
        Command::OrderShipped { order_id, lines } => {
            orders::plan_settlement(
                deps,
                order_id,
                lines.as_deref(),
                orders::Kind::Ship,
                occurred_at,
                event_id,
                now,
            )
            .await
        }
        Command::OrderCancelled { order_id, lines } => {
            orders::plan_settlement(
                deps,
                order_id,
                lines.as_deref(),
                orders::Kind::Cancel,
                occurred_at,
                event_id,
                now,
            )
            .await
        }
    }
}
