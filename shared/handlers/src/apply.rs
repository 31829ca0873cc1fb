//! Applies one inbound event exactly once: validate, check its idempotency record, plan the change
//! from a consistent read, commit it with the record in one transaction, then publish. An order
//! event of more lines than one transaction holds does this once per part of its lines.

use std::collections::HashSet;

use serde_json::Value;
use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::idempotency::{
    Delivery, classify_delivery, is_producer_replay, part_key, payload_hash,
};
use stockguard_domain::inbound::parse_inbound;
use stockguard_domain::order::{ORDER_LINES_PER_PART, Settlement};
use stockguard_domain::outbound::Cause;
use stockguard_domain::plan::{IdempotencyRecord, Plan, Write};
use stockguard_domain::reservation_plan::{ConfirmAnswer, OnLapse, ReleaseAnswer};
use stockguard_domain::{Command, InboundEvent, Line, Millis, Sku};

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

/// What planning one part of a delivery decided.
enum Delivered {
    /// Seen before: the part's record, and whether its events may not be out yet.
    Repeat {
        record: IdempotencyRecord,
        publish_pending: bool,
    },
    /// Applied now; `later`: the lines the event's later parts apply (first part only).
    Planned {
        outcome: &'static str,
        later: Vec<Line>,
    },
}

impl Delivered {
    fn later(&self) -> &[Line] {
        match self {
            Delivered::Repeat { record, .. } => &record.later,
            Delivered::Planned { later, .. } => later,
        }
    }
}

/// Which part of an event a delivery applies. Every event has a first part, which decides what
/// the event does and applies it, all of it unless it is an order event of more lines than one
/// transaction holds; such an event leaves the rest to later parts, one transaction each
/// ([`ORDER_LINES_PER_PART`] lines a part), each recorded under its own key.
#[derive(Clone, Copy)]
enum Part<'a> {
    First,
    Later {
        index: usize,
        lines: &'a [Line],
        last: bool,
    },
}

impl Part<'_> {
    fn index(self) -> usize {
        match self {
            Part::First => 0,
            Part::Later { index, .. } => index,
        }
    }
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

    /// Applies the event's first part, then any later part not applied yet, in order. A failure
    /// leaves the event to be delivered again: parts already applied are then repeats, so each
    /// part applies exactly once, and the event succeeds only once all of them have.
    async fn apply_event(
        &self,
        source: &str,
        detail_type: &str,
        detail: &Value,
        event: &InboundEvent,
    ) -> Result<Applied, ApplyError> {
        let hash = payload_hash(detail_type, detail);
        let cause = Cause {
            event_id: event.common.event_id.as_str().to_owned(),
            detail_type: detail_type.to_owned(),
            occurred_at: event.common.occurred_at,
        };
        // Boxed: the future of a whole event nests deep enough without one more level per part.
        let first = Box::pin(self.apply_part(&cause, source, event, &hash, Part::First)).await?;
        let parts: Vec<&[Line]> = first.later().chunks(ORDER_LINES_PER_PART).collect();
        let mut later_applied = false;
        for (i, lines) in parts.iter().enumerate() {
            let part = Part::Later {
                index: i + 1,
                lines,
                last: i + 1 == parts.len(),
            };
            let delivered = Box::pin(self.apply_part(&cause, source, event, &hash, part)).await?;
            later_applied |= matches!(delivered, Delivered::Planned { .. });
        }
        Ok(match first {
            Delivered::Repeat { .. } if later_applied => Applied::Applied { outcome: "applied" },
            Delivered::Repeat { .. } => Applied::Repeat,
            Delivered::Planned {
                outcome: "producer_replay",
                ..
            } => Applied::ProducerReplay,
            Delivered::Planned { outcome, .. } => Applied::Applied { outcome },
        })
    }

    /// Applies one part of a delivery exactly once, recorded under the part's key; a repeat
    /// publishes again what may not have gone out.
    async fn apply_part(
        &self,
        cause: &Cause,
        source: &str,
        event: &InboundEvent,
        hash: &str,
        part: Part<'_>,
    ) -> Result<Delivered, ApplyError> {
        let key = part_key(event.common.event_id.as_str(), part.index());
        let (delivered, _) = self
            .commit(cause, |now| {
                Box::pin(self.plan_delivery(source, event, hash, &key, part, now))
            })
            .await?;
        match &delivered {
            Delivered::Repeat {
                record,
                publish_pending: true,
            } => {
                let written = Written::stamped(None);
                self.publish_outcome(cause, &record.notifications, &record.skus, &written)
                    .await?;
                self.store.mark_published(&key).await?;
            }
            Delivered::Repeat { .. } => {}
            Delivered::Planned { .. } => {
                // Best effort: a redelivery of an `APPLIED` record only publishes again.
                if let Err(e) = self.store.mark_published(&key).await {
                    tracing::warn!(key, error = %e, "could not mark the delivery published");
                }
            }
        }
        Ok(delivered)
    }

    /// Reads and plans one part of a delivery, with its idempotency record (under `key`) in the
    /// plan.
    async fn plan_delivery(
        &self,
        source: &str,
        event: &InboundEvent,
        hash: &str,
        key: &str,
        part: Part<'_>,
        now: Millis,
    ) -> Result<Step<Delivered>, ApplyError> {
        let stored = self.store.idempotency(key).await?;
        match classify_delivery(
            stored.as_ref().map(|r| (r.payload_hash.as_str(), r.status)),
            hash,
        ) {
            Delivery::KeyReused => {
                return Err(ApplyError::KeyReused {
                    event_id: event.common.event_id.as_str().to_owned(),
                });
            }
            Delivery::Repeat { publish_pending } => {
                if let Some(record) = stored {
                    return Ok(Step::Answer(Delivered::Repeat {
                        record,
                        publish_pending,
                    }));
                }
            }
            Delivery::First => {}
        }
        let mut plan = match part {
            Part::First => self.plan_first_part(source, event, now).await?,
            Part::Later { lines, last, .. } => {
                let mut plan = self.plan_later_part(event, lines, last, now).await?;
                self.advance_sequences(source, event, lines, &mut plan)
                    .await?;
                plan
            }
        };
        plan.write(Write::PutIdempotency {
            event_id: key.to_owned(),
            payload_hash: hash.to_owned(),
            outcome: plan.outcome.to_owned(),
            notifications: plan.notifications.clone(),
            skus: plan.skus.clone(),
            later: plan.later.clone(),
        });
        let delivered = Delivered::Planned {
            outcome: plan.outcome,
            later: plan.later.clone(),
        };
        Ok(Step::Commit(delivered, plan))
    }

    /// An event's first part: a producer replay is recorded and not applied; otherwise the
    /// command is planned and each of its SKUs' sequences advanced, as far as the first part goes
    /// (later parts advance those of their own lines).
    async fn plan_first_part(
        &self,
        source: &str,
        event: &InboundEvent,
        now: Millis,
    ) -> Result<Plan, ApplyError> {
        let Some(previous) = self.sequence_check(source, event).await? else {
            return Ok(Plan::new("producer_replay"));
        };
        let mut plan = self.plan_command(event, now).await?;
        if let Some(sequence) = event.common.sequence {
            let later: HashSet<&Sku> = plan.later.iter().map(|l| &l.sku).collect();
            let first: Vec<(Sku, Option<u64>)> = previous
                .into_iter()
                .filter(|(sku, _)| !later.contains(sku))
                // An order event that changes nothing (an order already recorded) has no later
                // parts: it advances at most one transaction's worth and leaves the other SKUs'
                // sequences where they were, as if the event, which applied nothing, had not come.
                .take(ORDER_LINES_PER_PART)
                .collect();
            for (sku, previous) in first {
                plan.write(Write::AdvanceSequence {
                    source: source.to_owned(),
                    sku,
                    previous,
                    sequence,
                });
            }
        }
        Ok(plan)
    }

    /// A later part advances the sequences of its lines' SKUs, if the event has a sequence and
    /// names them. The event was found not to be a replay by its first part: a SKU whose
    /// sequence a newer event of the same source advanced meanwhile is left as it is.
    async fn advance_sequences(
        &self,
        source: &str,
        event: &InboundEvent,
        lines: &[Line],
        plan: &mut Plan,
    ) -> Result<(), ApplyError> {
        let Some(sequence) = event.common.sequence else {
            return Ok(());
        };
        let named = event.command.skus();
        for line in lines.iter().filter(|l| named.contains(&l.sku)) {
            let last = self.store.sequence(source, &line.sku).await?;
            if !is_producer_replay(last, Some(sequence)) {
                plan.write(Write::AdvanceSequence {
                    source: source.to_owned(),
                    sku: line.sku.clone(),
                    previous: last,
                    sequence,
                });
            }
        }
        Ok(())
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
