//! Orders without a reservation (facts, never rejected), shipments and cancellations: the reads
//! their plans need (the rules are `stockguard_domain::inventory`'s).

use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::inventory;
use stockguard_domain::order::Settlement;
use stockguard_domain::plan::Plan;
use stockguard_domain::{ChannelName, EntityId, Line, Millis, Sku};

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
}
