//! Orders without a reservation (facts, never rejected), shipments and cancellations: the reads
//! their plans need (the rules are `stockguard_domain::inventory`'s).

use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::inventory;
use stockguard_domain::order::Settlement;
use stockguard_domain::plan::Plan;
use stockguard_domain::{ChannelName, Command, EntityId, InboundEvent, Line, Millis, Sku};

use crate::effect::Inventory;
use crate::error::ApplyError;

impl<S: InventoryStore, P: Publish> Inventory<'_, S, P> {
    /// `OrderPlaced`: hard-allocate every line even when stock is short.
    pub(crate) async fn plan_order_placed(
        &self,
        order_id: &EntityId,
        channel: &ChannelName,
        lines: &[Line],
        now: Millis,
    ) -> Result<Plan, ApplyError> {
        if self.store.order(order_id).await?.is_some() {
            tracing::info!(order_id = %order_id, "order already recorded under another event id");
            return Ok(Plan::new("order_already_recorded"));
        }
        let skus: Vec<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
        let positions = self.store.positions(&skus).await?;
        Ok(inventory::plan_order(
            order_id, channel, lines, false, &positions, now,
        ))
    }

    /// `OrderShipped` / `OrderCancelled`: settle the order's remaining hard allocation.
    pub(crate) async fn plan_settlement(
        &self,
        order_id: &EntityId,
        requested: Option<&[Line]>,
        kind: Settlement,
        occurred_at: Millis,
        event_id: &str,
    ) -> Result<Plan, ApplyError> {
        let Some(order) = self.store.order(order_id).await? else {
            return Err(ApplyError::NotYetKnown(format!(
                "order {order_id} is not known yet"
            )));
        };
        if order.recording {
            // Some of its lines are not hard-reserved yet: settling them now would free units
            // the order has not taken.
            return Err(ApplyError::NotYetKnown(format!(
                "order {order_id} is still being recorded (its OrderPlaced applies in parts)"
            )));
        }
        let skus: Vec<Sku> = order.lines.iter().map(|l| l.sku.clone()).collect();
        let positions = self.store.positions(&skus).await?;
        Ok(inventory::plan_settlement(
            &order,
            requested,
            kind,
            &positions,
            occurred_at,
            event_id,
        )?)
    }

    /// A later part of an order event of more lines than one transaction holds: its `lines`
    /// (what the first part left to it) are placed, shipped or cancelled. The last part of an
    /// `OrderPlaced` also marks the order recorded in full.
    pub(crate) async fn plan_later_part(
        &self,
        event: &InboundEvent,
        lines: &[Line],
        last: bool,
        now: Millis,
    ) -> Result<Plan, ApplyError> {
        let skus: Vec<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
        let positions = self.store.positions(&skus).await?;
        let occurred_at = event.common.occurred_at;
        let event_id = event.common.event_id.as_str();
        match &event.command {
            Command::OrderPlaced {
                order_id, channel, ..
            } => {
                let finishing = if last {
                    let order = self.store.order(order_id).await?.ok_or_else(|| {
                        ApplyError::Store(format!(
                            "order {order_id} lacks its record, which the first part wrote"
                        ))
                    })?;
                    Some(order)
                } else {
                    None
                };
                Ok(inventory::plan_order_part(
                    order_id,
                    channel,
                    lines,
                    finishing.as_ref(),
                    &positions,
                    now,
                ))
            }
            Command::OrderShipped { .. } => Ok(inventory::plan_settlement_part(
                lines,
                Settlement::Ship,
                &positions,
                occurred_at,
                event_id,
            )),
            Command::OrderCancelled { .. } => Ok(inventory::plan_settlement_part(
                lines,
                Settlement::Cancel,
                &positions,
                occurred_at,
                event_id,
            )),
            other => Err(ApplyError::Store(format!(
                "a {} has no later parts",
                other.detail_type()
            ))),
        }
    }
}
