//! Applies one inbound event exactly once: validate, check its idempotency record, plan the change
//! from a consistent read, commit it with the record in one transaction, then publish.

use serde_json::Value;
use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::idempotency::{
    Delivery, classify_delivery, is_producer_replay, payload_hash,
};
use stockguard_domain::inbound::parse_inbound;
use stockguard_domain::order::Settlement;
use stockguard_domain::outbound::Cause;
use stockguard_domain::plan::{IdempotencyRecord, Plan, Write};
use stockguard_domain::reservation_plan::{ConfirmAnswer, OnLapse, ReleaseAnswer};
use stockguard_domain::{Command, InboundEvent, Millis, Sku};

use crate::buffers::{BufferRecompute, DEFAULT_RECONCILE_INTERVAL_MS};
use crate::deps::{Deps, now_ms};
use crate::effect::{Inventory, Step, Written};
use crate::error::ApplyError;

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
    let applied = deps
        .inventory()
        .apply_event(source, detail_type, detail, &event)
        .await?;
    if let (Command::DemandSignal { sku, .. }, Applied::Applied { outcome: "applied" }) =
        (&event.command, &applied)
    {
        // A signal moves its SKU's buffers within seconds, not at the next scheduled recompute
        // (which retries this SKU anyway: the signal put it on its list).
        let report = BufferRecompute::new(deps.clone(), DEFAULT_RECONCILE_INTERVAL_MS)
            .recompute_skus(std::slice::from_ref(sku), now_ms())
            .await;
        if !report.errors.is_empty() {
            tracing::warn!(errors = ?report.errors, "recomputing buffers after a signal");
        }
    }
    Ok(applied)
}

/// What planning a delivery decided.
enum Delivered {
    /// Seen before; `pending` holds its record when its events may not be out yet.
    Repeat {
        pending: Option<IdempotencyRecord>,
    },
    Planned {
        outcome: &'static str,
    },
}

impl<S: InventoryStore, P: Publish> Inventory<'_, S, P> {
    /// Applies one inbound event (validated first) exactly once.
    pub async fn apply(
        &self,
        source: &str,
        detail_type: &str,
        detail: &Value,
    ) -> Result<Applied, ApplyError> {
        let event = parse_inbound(detail_type, detail)?;
        self.apply_event(source, detail_type, detail, &event).await
    }

    async fn apply_event(
        &self,
        source: &str,
        detail_type: &str,
        detail: &Value,
        event: &InboundEvent,
    ) -> Result<Applied, ApplyError> {
        let hash = payload_hash(detail_type, detail);
        let event_id = event.common.event_id.as_str();
        let cause = Cause {
            event_id: event_id.to_owned(),
            detail_type: detail_type.to_owned(),
            occurred_at: event.common.occurred_at,
        };
        let hash = hash.as_str();
        let (delivered, _) = self
            .commit(&cause, |now| {
                Box::pin(self.plan_delivery(source, event, hash, now))
            })
            .await?;
        match delivered {
            Delivered::Repeat { pending } => {
                if let Some(record) = pending {
                    let written = Written::stamped(None);
                    self.publish_outcome(&cause, &record.notifications, &record.skus, &written)
                        .await?;
                    self.store.mark_published(event_id).await?;
                }
                Ok(Applied::Repeat)
            }
            Delivered::Planned { outcome } => {
                // Best effort: a redelivery of an `APPLIED` record only publishes again.
                if let Err(e) = self.store.mark_published(event_id).await {
                    tracing::warn!(event_id, error = %e, "could not mark the delivery published");
                }
                Ok(match outcome {
                    "producer_replay" => Applied::ProducerReplay,
                    outcome => Applied::Applied { outcome },
                })
            }
        }
    }

    /// Reads and plans one delivery, with its idempotency record in the plan.
    async fn plan_delivery(
        &self,
        source: &str,
        event: &InboundEvent,
        hash: &str,
        now: Millis,
    ) -> Result<Step<Delivered>, ApplyError> {
        let event_id = event.common.event_id.as_str();
        let stored = self.store.idempotency(event_id).await?;
        match classify_delivery(
            stored.as_ref().map(|r| (r.payload_hash.as_str(), r.status)),
            hash,
        ) {
            Delivery::KeyReused => {
                return Err(ApplyError::KeyReused {
                    event_id: event_id.to_owned(),
                });
            }
            Delivery::Repeat { publish_pending } => {
                let pending = stored.filter(|_| publish_pending);
                return Ok(Step::Answer(Delivered::Repeat { pending }));
            }
            Delivery::First => {}
        }
        let mut plan = match self.sequence_check(source, event).await? {
            None => Plan::new("producer_replay"),
            Some(previous) => {
                let mut plan = self.plan_command(event, now).await?;
                if let Some(sequence) = event.common.sequence {
                    for (sku, previous) in previous {
                        plan.write(Write::AdvanceSequence {
                            source: source.to_owned(),
                            sku,
                            previous,
                            sequence,
                        });
                    }
                }
                plan
            }
        };
        plan.write(Write::PutIdempotency {
            event_id: event_id.to_owned(),
            payload_hash: hash.to_owned(),
            outcome: plan.outcome.to_owned(),
            notifications: plan.notifications.clone(),
            skus: plan.skus.clone(),
        });
        let outcome = plan.outcome;
        Ok(Step::Commit(Delivered::Planned { outcome }, plan))
    }

    /// `None` for a producer replay; otherwise each SKU's last applied sequence, to advance.
    async fn sequence_check(
        &self,
        source: &str,
        event: &InboundEvent,
    ) -> Result<Option<Vec<(Sku, Option<u64>)>>, ApplyError> {
        let Some(seq) = event.common.sequence else {
            return Ok(Some(Vec::new()));
        };
        let mut previous = Vec::new();
        for sku in event.command.skus() {
            let last = self.store.sequence(source, &sku).await?;
            if is_producer_replay(last, Some(seq)) {
                tracing::info!(sku = %sku, sequence = seq, last_applied = last, "producer replay: recorded, not applied");
                return Ok(None);
            }
            previous.push((sku, last));
        }
        Ok(Some(previous))
    }

    async fn plan_command(&self, event: &InboundEvent, now: Millis) -> Result<Plan, ApplyError> {
        let occurred_at = event.common.occurred_at;
        let event_id = event.common.event_id.as_str();
        match &event.command {
            Command::StockReceived { sku, quantity, .. } => {
                self.plan_on_hand_delta(sku, *quantity, occurred_at, event_id)
                    .await
            }
            Command::StockAdjusted { sku, delta, .. } => {
                self.plan_on_hand_delta(sku, *delta, occurred_at, event_id)
                    .await
            }
            Command::ReturnReceived {
                sku,
                quantity,
                restock: true,
                ..
            } => {
                self.plan_on_hand_delta(sku, *quantity, occurred_at, event_id)
                    .await
            }
            Command::ReturnReceived { restock: false, .. } => Ok(Plan::new("not_restocked")),
            Command::StockCounted { sku, on_hand } => {
                self.plan_count(sku, *on_hand, occurred_at).await
            }
            Command::DemandSignal {
                sku,
                signal,
                strength,
                expires_at,
            } => {
                self.plan_signal(sku, signal.as_str(), *strength, occurred_at, *expires_at)
                    .await
            }
            Command::ReservationRequested(request) => {
                // The idempotency record and, with a sequence, one item per SKU join the
                // transaction.
                let reserved = 1 + event.common.sequence.map_or(0, |_| request.lines.len());
                let (_, plan) = self.read_and_plan_reserve(request, now, reserved).await?;
                Ok(plan)
            }
            Command::ReservationConfirmed {
                reservation_id,
                order_id,
            } => {
                let (answer, plan) = self
                    .read_and_plan_confirm(reservation_id, order_id, OnLapse::RecordOversell, now)
                    .await?;
                match answer {
                    ConfirmAnswer::NotFound => Err(ApplyError::NotYetKnown(format!(
                        "reservation {reservation_id} is not known yet (confirm before its request?)"
                    ))),
                    _ => Ok(plan),
                }
            }
            Command::ReservationReleased { reservation_id, .. } => {
                let (answer, plan) = self.read_and_plan_release(reservation_id).await?;
                match answer {
                    ReleaseAnswer::NotFound => Err(ApplyError::NotYetKnown(format!(
                        "reservation {reservation_id} is not known yet (release before its request?)"
                    ))),
                    ReleaseAnswer::AlreadyConfirmed => Err(ApplyError::Conflict {
                        code: "reservation_confirmed",
                        message: format!(
                            "reservation {reservation_id} was confirmed; cancel its order instead"
                        ),
                    }),
                    ReleaseAnswer::Released => Ok(plan),
                }
            }
            Command::OrderPlaced {
                order_id,
                channel,
                lines,
            } => self.plan_order_placed(order_id, channel, lines, now).await,
            Command::OrderShipped { order_id, lines } => {
                self.plan_settlement(
                    order_id,
                    lines.as_deref(),
                    Settlement::Ship,
                    occurred_at,
                    event_id,
                )
                .await
            }
            Command::OrderCancelled { order_id, lines } => {
                self.plan_settlement(
                    order_id,
                    lines.as_deref(),
                    Settlement::Cancel,
                    occurred_at,
                    event_id,
                )
                .await
            }
        }
    }
}
