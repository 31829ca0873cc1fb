//! Receipts, adjustments, restocked returns, counts and demand signals: the reads their plans
//! need (the rules are `stockguard_domain::inventory`'s).

use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::inventory;
use stockguard_domain::plan::Plan;
use stockguard_domain::{Millis, Sku};

use crate::effect::Inventory;
use crate::error::ApplyError;

impl<S: InventoryStore, P: Publish> Inventory<'_, S, P> {
    /// An on-hand delta (`StockReceived`, `StockAdjusted`, a restocked `ReturnReceived`).
    pub(crate) async fn plan_on_hand_delta(
        &self,
        sku: &Sku,
        delta: i64,
        occurred_at: Millis,
        event_id: &str,
    ) -> Result<Plan, ApplyError> {
        let read = self.position(sku).await?;
        Ok(inventory::plan_on_hand_delta(
            sku,
            read,
            delta,
            occurred_at,
            event_id,
        ))
    }

    /// An absolute count.
    pub(crate) async fn plan_count(
        &self,
        sku: &Sku,
        on_hand: i64,
        counted_at: Millis,
    ) -> Result<Plan, ApplyError> {
        let read = self.position(sku).await?;
        // Read after the position: a delta committed in between bumps the version, so the
        // count's write fails and it is planned again with that delta included.
        let later = self.store.on_hand_deltas_after(sku, counted_at).await?;
        Ok(inventory::plan_count(sku, read, on_hand, counted_at, later))
    }

    /// The newest demand signal of its kind, for the buffer logic.
    pub(crate) async fn plan_signal(
        &self,
        sku: &Sku,
        signal: &str,
        strength: f64,
        occurred_at: Millis,
        expires_at: Option<Millis>,
    ) -> Result<Plan, ApplyError> {
        let stored = self.store.signal(sku, signal).await?;
        Ok(inventory::plan_signal(
            sku,
            signal,
            strength,
            occurred_at,
            expires_at,
            stored.as_ref(),
        ))
    }

    async fn position(&self, sku: &Sku) -> Result<stockguard_domain::Position, ApplyError> {
        let mut found = self.store.positions(std::slice::from_ref(sku)).await?;
        Ok(found.remove(sku).unwrap_or_default())
    }
}
