//! What the inventory handlers read and commit, as traits: the DynamoDB state table implements
//! them, and so does the in-memory twin (`memory`), so that handler logic runs in fast tests.

use std::collections::{HashMap, HashSet};
use std::future::Future;

use stockguard_domain::buffer::StoredSignal;
use stockguard_domain::plan::{IdempotencyRecord, OrderRecord, ReservationRecord, Write};
use stockguard_domain::reservation::SoftHold;
use stockguard_domain::{EntityId, Millis, Notification, Position, Sku};

use crate::error::AdapterError;
use crate::publisher::EventPublisher;
use crate::store::StateStore;

/// How a committed change is stamped: `write_id` on every position it writes (so a read after
/// the commit tells whose a position is), `now` as its write time.
#[derive(Debug, Clone)]
pub struct Stamp {
    pub write_id: String,
    pub now: Millis,
}

impl Stamp {
    pub fn new(now: Millis) -> Self {
        Self {
            write_id: format!("{:016x}", rand::random::<u64>()),
            now,
        }
    }
}

type Res<T> = Result<T, AdapterError>;

/// Strongly consistent reads of the state and one all-or-nothing commit of planned writes.
pub trait InventoryStore: Send + Sync {
    /// Positions with the stamp of the change that wrote each last (zero position and `None`
    /// when never written).
    fn stamped_positions(
        &self,
        skus: &[Sku],
    ) -> impl Future<Output = Res<HashMap<Sku, (Position, Option<String>)>>> + Send;
    /// Positions and the SKUs with an active add-to-cart surge.
    fn positions_and_surges(
        &self,
        skus: &[Sku],
        now: Millis,
    ) -> impl Future<Output = Res<(HashMap<Sku, Position>, HashSet<Sku>)>> + Send;
    fn idempotency(
        &self,
        event_id: &str,
    ) -> impl Future<Output = Res<Option<IdempotencyRecord>>> + Send;
    fn mark_published(&self, event_id: &str) -> impl Future<Output = Res<()>> + Send;
    fn reservation(
        &self,
        id: &EntityId,
    ) -> impl Future<Output = Res<Option<ReservationRecord>>> + Send;
    fn order(&self, id: &EntityId) -> impl Future<Output = Res<Option<OrderRecord>>> + Send;
    fn signal(
        &self,
        sku: &Sku,
        signal: &str,
    ) -> impl Future<Output = Res<Option<StoredSignal>>> + Send;
    fn sequence(&self, source: &str, sku: &Sku) -> impl Future<Output = Res<Option<u64>>> + Send;
    /// Sum of the on-hand deltas of `sku` logged with an `occurred_at` after `after`.
    fn on_hand_deltas_after(
        &self,
        sku: &Sku,
        after: Millis,
    ) -> impl Future<Output = Res<i64>> + Send;
    /// Up to `limit` holds of `sku` expired by `now`, oldest first.
    fn expired_holds(
        &self,
        sku: &Sku,
        now: Millis,
        limit: i32,
    ) -> impl Future<Output = Res<Vec<SoftHold>>> + Send;
    /// Up to `limit` reservations still held whose expiry passed, oldest first (may lag).
    fn lapsed_reservations(
        &self,
        now: Millis,
        limit: i32,
    ) -> impl Future<Output = Res<Vec<EntityId>>> + Send;
    fn add_to_profile(&self, sales: &[(i64, Millis)]) -> impl Future<Output = Res<()>> + Send;
    /// Writes every item or none: more than 100 items or an item touched twice is refused; a
    /// condition that does not hold cancels the transaction (`is_condition_failed`, with the
    /// reason of each item).
    fn commit(&self, writes: &[Write], stamp: &Stamp) -> impl Future<Output = Res<()>> + Send;

    fn positions(&self, skus: &[Sku]) -> impl Future<Output = Res<HashMap<Sku, Position>>> + Send {
        async move {
            Ok(self
                .stamped_positions(skus)
                .await?
                .into_iter()
                .map(|(sku, (p, _))| (sku, p))
                .collect())
        }
    }
}

/// Publishes stockguard's events.
pub trait Publish: Send + Sync {
    fn publish(
        &self,
        source: &str,
        notifications: &[Notification],
    ) -> impl Future<Output = Res<()>> + Send;
}

impl Publish for EventPublisher {
    async fn publish(&self, source: &str, notifications: &[Notification]) -> Res<()> {
        EventPublisher::publish(self, source, notifications).await
    }
}

impl InventoryStore for StateStore {
    async fn stamped_positions(
        &self,
        skus: &[Sku],
    ) -> Res<HashMap<Sku, (Position, Option<String>)>> {
        StateStore::stamped_positions(self, skus).await
    }
    async fn positions_and_surges(
        &self,
        skus: &[Sku],
        now: Millis,
    ) -> Res<(HashMap<Sku, Position>, HashSet<Sku>)> {
        StateStore::positions_and_surges(self, skus, now).await
    }
    async fn idempotency(&self, event_id: &str) -> Res<Option<IdempotencyRecord>> {
        StateStore::idempotency(self, event_id).await
    }
    async fn mark_published(&self, event_id: &str) -> Res<()> {
        StateStore::mark_published(self, event_id).await
    }
    async fn reservation(&self, id: &EntityId) -> Res<Option<ReservationRecord>> {
        StateStore::reservation(self, id).await
    }
    async fn order(&self, id: &EntityId) -> Res<Option<OrderRecord>> {
        StateStore::order(self, id).await
    }
    async fn signal(&self, sku: &Sku, signal: &str) -> Res<Option<StoredSignal>> {
        StateStore::signal(self, sku, signal).await
    }
    async fn sequence(&self, source: &str, sku: &Sku) -> Res<Option<u64>> {
        StateStore::sequence(self, source, sku).await
    }
    async fn on_hand_deltas_after(&self, sku: &Sku, after: Millis) -> Res<i64> {
        StateStore::on_hand_deltas_after(self, sku, after).await
    }
    async fn expired_holds(&self, sku: &Sku, now: Millis, limit: i32) -> Res<Vec<SoftHold>> {
        StateStore::expired_holds(self, sku, now, limit).await
    }
    async fn lapsed_reservations(&self, now: Millis, limit: i32) -> Res<Vec<EntityId>> {
        StateStore::lapsed_reservations(self, now, limit).await
    }
    async fn add_to_profile(&self, sales: &[(i64, Millis)]) -> Res<()> {
        StateStore::add_to_profile(self, sales).await
    }
    async fn commit(&self, writes: &[Write], stamp: &Stamp) -> Res<()> {
        let mut tx = crate::tx::StateTx::stamped(
            self.table.clone(),
            self.horizons,
            &stamp.write_id,
            stamp.now,
        );
        for w in writes {
            tx.add(w, stamp.now);
        }
        StateStore::commit(self, tx).await
    }
}
