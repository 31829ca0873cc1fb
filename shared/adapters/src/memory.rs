//! The in-memory twin of the state table and the bus, for fast tests of handler logic. It keeps
//! DynamoDB's semantics where stockguard relies on them: every read is strongly consistent; a
//! commit is all or nothing, at most 100 items, each item touched once, and cancelled with a
//! reason per item when any condition does not hold. Reads and commits yield to the scheduler
//! first, so concurrent deliveries interleave between a read and its commit as they do on AWS.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use stockguard_domain::buffer::StoredSignal;
use stockguard_domain::idempotency::IdempotencyStatus;
use stockguard_domain::plan::{
    IdempotencyRecord, MAX_TX_ITEMS, OrderRecord, ReservationRecord, Write,
};
use stockguard_domain::reservation::{ReservationStatus, SoftHold};
use stockguard_domain::{ChannelName, EntityId, Millis, Notification, Position, SignalKind, Sku};

use crate::error::AdapterError;
use crate::inventory::{InventoryStore, Publish, Stamp};

type Res<T> = Result<T, AdapterError>;

/// Everything the twin stores, readable by tests.
#[derive(Debug, Clone, Default)]
pub struct Tables {
    /// Each position with the stamp of the change that wrote it last.
    pub positions: BTreeMap<Sku, (Position, Option<String>)>,
    pub deltas: BTreeMap<(Sku, Millis, String), i64>,
    pub idempotency: BTreeMap<String, IdempotencyRecord>,
    pub sequences: BTreeMap<(String, Sku), u64>,
    /// Soft holds by (SKU, expiry, reservation), as the table sorts them.
    pub holds: BTreeMap<(Sku, Millis, EntityId), i64>,
    pub reservations: BTreeMap<EntityId, ReservationRecord>,
    pub orders: BTreeMap<EntityId, OrderRecord>,
    pub signals: BTreeMap<(Sku, String), StoredSignal>,
    pub sales: Vec<(Sku, ChannelName, i64, Millis)>,
    /// SKUs on the buffer recompute's list.
    pub active: BTreeSet<Sku>,
    pub profile_units: i64,
}

#[derive(Clone, Default)]
pub struct MemoryStore {
    tables: Arc<Mutex<Tables>>,
    faults: Arc<Mutex<Faults>>,
}

/// A change another writer makes at a chosen instant.
type Interleaved = Box<dyn FnOnce(&mut Tables) + Send>;

#[derive(Default)]
struct Faults {
    /// Commits that are written but answer with a transient error (a lost response).
    lost_acks: u32,
    /// Commits answered normally before the lost acknowledgements start.
    acks_before_loss: u32,
    /// Runs just before the next read of that kind.
    before_read: HashMap<Read, Interleaved>,
}

/// Reads before which a test can interleave another writer's change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Read {
    Positions,
    ExpiredHolds,
}

/// The item a write touches, for DynamoDB's rule that a transaction touches an item once.
#[derive(Debug, PartialEq, Eq, Hash)]
enum ItemKey {
    Position(Sku),
    Delta(Sku, Millis, String),
    Event(String),
    Sequence(String, Sku),
    Hold(Sku, Millis, EntityId),
    Reservation(EntityId),
    Order(EntityId),
    Velocity(Sku),
    Signal(Sku, String),
}

fn item_key(w: &Write) -> ItemKey {
    match w {
        Write::ReplacePosition { sku, .. } | Write::ShiftPosition { sku, .. } => {
            ItemKey::Position(sku.clone())
        }
        Write::LogOnHandDelta {
            sku,
            occurred_at,
            event_id,
            ..
        } => ItemKey::Delta(sku.clone(), *occurred_at, event_id.clone()),
        Write::PutIdempotency { event_id, .. } => ItemKey::Event(event_id.clone()),
        Write::AdvanceSequence { source, sku, .. } => {
            ItemKey::Sequence(source.clone(), sku.clone())
        }
        Write::PutHold {
            sku,
            reservation_id,
            expires_at,
            ..
        }
        | Write::DeleteHold {
            sku,
            reservation_id,
            expires_at,
        } => ItemKey::Hold(sku.clone(), *expires_at, reservation_id.clone()),
        Write::CreateReservation { id, .. } | Write::SetReservationStatus { id, .. } => {
            ItemKey::Reservation(id.clone())
        }
        Write::WriteOrder { id, .. } => ItemKey::Order(id.clone()),
        Write::RecordSale { sku, .. } | Write::MarkActive { sku } => ItemKey::Velocity(sku.clone()),
        Write::PutSignal { sku, signal, .. } => ItemKey::Signal(sku.clone(), signal.clone()),
    }
}

impl Tables {
    /// Whether a write's condition holds on the current state.
    fn condition_holds(&self, w: &Write) -> bool {
        match w {
            Write::ReplacePosition { sku, read, .. } => match self.positions.get(sku) {
                None => read.version == 0,
                Some((p, _)) => read.version != 0 && p.version == read.version,
            },
            // A condition on an absent attribute is false, as in DynamoDB.
            Write::ShiftPosition {
                sku, min_available, ..
            } => min_available.is_none_or(|need| {
                self.positions
                    .get(sku)
                    .is_some_and(|(p, _)| p.available() >= need)
            }),
            Write::LogOnHandDelta {
                sku,
                occurred_at,
                event_id,
                ..
            } => !self
                .deltas
                .contains_key(&(sku.clone(), *occurred_at, event_id.clone())),
            Write::PutIdempotency { event_id, .. } => !self.idempotency.contains_key(event_id),
            Write::AdvanceSequence {
                source,
                sku,
                previous,
                ..
            } => self.sequences.get(&(source.clone(), sku.clone())).copied() == *previous,
            Write::PutHold {
                sku,
                reservation_id,
                expires_at,
                ..
            } => !self
                .holds
                .contains_key(&(sku.clone(), *expires_at, reservation_id.clone())),
            Write::DeleteHold {
                sku,
                reservation_id,
                expires_at,
            } => self
                .holds
                .contains_key(&(sku.clone(), *expires_at, reservation_id.clone())),
            Write::CreateReservation { id, .. } => !self.reservations.contains_key(id),
            Write::SetReservationStatus { id, from, .. } => {
                self.reservations.get(id).is_some_and(|r| r.status == *from)
            }
            Write::WriteOrder {
                id, read_revision, ..
            } => self.orders.get(id).map(|o| o.revision) == *read_revision,
            Write::RecordSale { .. } | Write::MarkActive { .. } => true,
            Write::PutSignal {
                sku,
                signal,
                read_occurred_at,
                ..
            } => {
                self.signals
                    .get(&(sku.clone(), signal.clone()))
                    .map(|s| s.occurred_at)
                    == *read_occurred_at
            }
        }
    }

    fn apply(&mut self, w: &Write, stamp: &Stamp) {
        let wid = Some(stamp.write_id.clone());
        match w {
            Write::ReplacePosition { sku, read, new } => {
                let p = Position {
                    version: read.version + 1,
                    ..*new
                };
                self.positions.insert(sku.clone(), (p, wid));
            }
            Write::ShiftPosition { sku, delta, .. } => {
                let (p, stamp) = self.positions.entry(sku.clone()).or_default();
                p.on_hand += delta.on_hand;
                p.hard_reserved += delta.hard_reserved;
                p.soft_reserved += delta.soft_reserved;
                p.version += 1;
                *stamp = wid;
            }
            Write::LogOnHandDelta {
                sku,
                occurred_at,
                event_id,
                delta,
            } => {
                self.deltas
                    .insert((sku.clone(), *occurred_at, event_id.clone()), *delta);
            }
            Write::PutIdempotency {
                event_id,
                payload_hash,
                outcome,
                notifications,
                skus,
                later,
            } => {
                self.idempotency.insert(
                    event_id.clone(),
                    IdempotencyRecord {
                        payload_hash: payload_hash.clone(),
                        status: IdempotencyStatus::Applied,
                        notifications: notifications.clone(),
                        skus: skus.clone(),
                        outcome: outcome.clone(),
                        later: later.clone(),
                    },
                );
            }
            Write::AdvanceSequence {
                source,
                sku,
                sequence,
                ..
            } => {
                self.sequences
                    .insert((source.clone(), sku.clone()), *sequence);
            }
            Write::PutHold {
                sku,
                reservation_id,
                quantity,
                expires_at,
            } => {
                self.holds.insert(
                    (sku.clone(), *expires_at, reservation_id.clone()),
                    *quantity,
                );
            }
            Write::DeleteHold {
                sku,
                reservation_id,
                expires_at,
            } => {
                self.holds
                    .remove(&(sku.clone(), *expires_at, reservation_id.clone()));
            }
            Write::CreateReservation {
                id,
                channel,
                lines,
                expires_at,
                request_hash,
            } => {
                self.reservations.insert(
                    id.clone(),
                    ReservationRecord {
                        id: id.clone(),
                        channel: channel.clone(),
                        lines: lines.clone(),
                        status: ReservationStatus::Held,
                        expires_at: *expires_at,
                        request_hash: request_hash.clone(),
                        order_id: None,
                        write_id: wid,
                    },
                );
            }
            Write::SetReservationStatus {
                id, to, order_id, ..
            } => {
                if let Some(r) = self.reservations.get_mut(id) {
                    r.status = *to;
                    if order_id.is_some() {
                        r.order_id.clone_from(order_id);
                    }
                }
            }
            Write::WriteOrder {
                id,
                channel,
                lines,
                read_revision,
                recording,
            } => {
                self.orders.insert(
                    id.clone(),
                    OrderRecord {
                        id: id.clone(),
                        channel: channel.clone(),
                        lines: lines.clone(),
                        revision: read_revision.map_or(1, |r| r + 1),
                        recording: *recording,
                    },
                );
            }
            Write::RecordSale {
                sku,
                channel,
                units,
                at,
            } => {
                self.sales.push((sku.clone(), channel.clone(), *units, *at));
                self.active.insert(sku.clone());
            }
            Write::MarkActive { sku } => {
                self.active.insert(sku.clone());
            }
            Write::PutSignal {
                sku,
                signal,
                strength,
                occurred_at,
                expires_at,
                ..
            } => {
                self.signals.insert(
                    (sku.clone(), signal.clone()),
                    StoredSignal {
                        strength: *strength,
                        occurred_at: *occurred_at,
                        expires_at: *expires_at,
                    },
                );
            }
        }
    }

    /// DynamoDB's `TransactWriteItems`, minus the network.
    pub fn transact(&mut self, writes: &[Write], stamp: &Stamp) -> Res<()> {
        if writes.is_empty() {
            return Ok(());
        }
        if writes.len() > MAX_TX_ITEMS {
            return Err(AdapterError::permanent(format!(
                "a change of {} items exceeds DynamoDB's {MAX_TX_ITEMS}-item transaction limit",
                writes.len()
            )));
        }
        let mut seen = HashSet::new();
        for w in writes {
            let key = item_key(w);
            if !seen.insert(key) {
                return Err(AdapterError::permanent(format!(
                    "TransactWriteItems: ValidationException: an item is touched twice ({:?})",
                    item_key(w)
                )));
            }
        }
        let reasons: Vec<String> = writes
            .iter()
            .map(|w| {
                if self.condition_holds(w) {
                    "None"
                } else {
                    "ConditionalCheckFailed"
                }
                .to_owned()
            })
            .collect();
        if reasons.iter().any(|r| r != "None") {
            return Err(AdapterError::cancelled(
                format!("TransactWriteItems cancelled: {reasons:?}"),
                reasons,
            ));
        }
        for w in writes {
            self.apply(w, stamp);
        }
        Ok(())
    }
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// A copy of everything stored.
    pub fn snapshot(&self) -> Tables {
        self.lock().clone()
    }

    /// The next `n` commits are written but answer with a transient error, as when a response
    /// is lost: the caller retries and must not apply the change twice.
    pub fn lose_acks(&self, n: u32) {
        self.lose_acks_after(0, n);
    }

    /// As [`Self::lose_acks`], once `commits` more commits have been answered normally: a change
    /// of several transactions (an order applied in parts) fails at the part a test chooses.
    pub fn lose_acks_after(&self, commits: u32, n: u32) {
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        faults.acks_before_loss = commits;
        faults.lost_acks = n;
    }

    /// The stored position of `sku` (zero if never written).
    pub fn position_of(&self, sku: &Sku) -> Position {
        self.lock()
            .positions
            .get(sku)
            .map(|p| p.0)
            .unwrap_or_default()
    }

    /// Runs `change` just before the next read of kind `read`, as a concurrent writer
    /// committing at that instant would.
    pub fn before_next(&self, read: Read, change: impl FnOnce(&mut Tables) + Send + 'static) {
        self.faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .before_read
            .insert(read, Box::new(change));
    }

    /// Lets other tasks run, then runs any change armed before this kind of read.
    async fn read(&self, read: Read) -> MutexGuard<'_, Tables> {
        let mut t = self.io().await;
        let change = self
            .faults
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .before_read
            .remove(&read);
        if let Some(change) = change {
            change(&mut t);
        }
        t
    }

    fn lock(&self) -> MutexGuard<'_, Tables> {
        self.tables.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Lets other tasks run before a read or a commit, as a network call would.
    async fn io(&self) -> MutexGuard<'_, Tables> {
        tokio::task::yield_now().await;
        self.lock()
    }
}

impl InventoryStore for MemoryStore {
    async fn stamped_positions(
        &self,
        skus: &[Sku],
    ) -> Res<HashMap<Sku, (Position, Option<String>)>> {
        let t = self.read(Read::Positions).await;
        Ok(skus
            .iter()
            .map(|s| (s.clone(), t.positions.get(s).cloned().unwrap_or_default()))
            .collect())
    }

    async fn positions_and_surges(
        &self,
        skus: &[Sku],
        now: Millis,
    ) -> Res<(HashMap<Sku, Position>, HashSet<Sku>)> {
        let t = self.read(Read::Positions).await;
        let surge = SignalKind::AddToCartSurge.as_str().to_owned();
        let positions = skus
            .iter()
            .map(|s| {
                (
                    s.clone(),
                    t.positions.get(s).map(|p| p.0).unwrap_or_default(),
                )
            })
            .collect();
        let surging = skus
            .iter()
            .filter(|s| {
                t.signals
                    .get(&((*s).clone(), surge.clone()))
                    .is_some_and(|sig| sig.is_active(now))
            })
            .cloned()
            .collect();
        Ok((positions, surging))
    }

    async fn idempotency(&self, event_id: &str) -> Res<Option<IdempotencyRecord>> {
        Ok(self.io().await.idempotency.get(event_id).cloned())
    }

    async fn mark_published(&self, event_id: &str) -> Res<()> {
        match self.io().await.idempotency.get_mut(event_id) {
            Some(r) => {
                r.status = IdempotencyStatus::Completed;
                Ok(())
            }
            None => Err(AdapterError::condition_failed(
                "UpdateItem: ConditionalCheckFailedException: no idempotency record",
            )),
        }
    }

    async fn reservation(&self, id: &EntityId) -> Res<Option<ReservationRecord>> {
        Ok(self.io().await.reservations.get(id).cloned())
    }

    async fn order(&self, id: &EntityId) -> Res<Option<OrderRecord>> {
        Ok(self.io().await.orders.get(id).cloned())
    }

    async fn signal(&self, sku: &Sku, signal: &str) -> Res<Option<StoredSignal>> {
        let t = self.io().await;
        Ok(t.signals.get(&(sku.clone(), signal.to_owned())).copied())
    }

    async fn sequence(&self, source: &str, sku: &Sku) -> Res<Option<u64>> {
        let t = self.io().await;
        Ok(t.sequences.get(&(source.to_owned(), sku.clone())).copied())
    }

    async fn on_hand_deltas_after(&self, sku: &Sku, after: Millis) -> Res<i64> {
        let t = self.io().await;
        Ok(t.deltas
            .iter()
            .filter(|((s, at, _), _)| s == sku && *at > after)
            .map(|(_, d)| d)
            .sum())
    }

    async fn expired_holds(&self, sku: &Sku, now: Millis, limit: i32) -> Res<Vec<SoftHold>> {
        let t = self.read(Read::ExpiredHolds).await;
        Ok(t.holds
            .iter()
            .filter(|((s, expires_at, _), _)| s == sku && *expires_at <= now)
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|((s, expires_at, id), q)| SoftHold {
                reservation_id: id.clone(),
                sku: s.clone(),
                quantity: *q,
                expires_at: *expires_at,
            })
            .collect())
    }

    async fn lapsed_reservations(&self, now: Millis, limit: i32) -> Res<Vec<EntityId>> {
        let t = self.io().await;
        let mut lapsed: Vec<(Millis, &EntityId)> = t
            .reservations
            .values()
            .filter(|r| r.status == ReservationStatus::Held && r.expires_at <= now)
            .map(|r| (r.expires_at, &r.id))
            .collect();
        lapsed.sort();
        Ok(lapsed
            .into_iter()
            .take(usize::try_from(limit).unwrap_or(0))
            .map(|(_, id)| id.clone())
            .collect())
    }

    async fn add_to_profile(&self, sales: &[(i64, Millis)]) -> Res<()> {
        self.io().await.profile_units += sales.iter().map(|(u, _)| u).sum::<i64>();
        Ok(())
    }

    async fn commit(&self, writes: &[Write], stamp: &Stamp) -> Res<()> {
        let mut t = self.io().await;
        t.transact(writes, stamp)?;
        drop(t);
        let mut faults = self.faults.lock().unwrap_or_else(|e| e.into_inner());
        if faults.lost_acks > 0 && !writes.is_empty() {
            if faults.acks_before_loss > 0 {
                faults.acks_before_loss -= 1;
                return Ok(());
            }
            faults.lost_acks -= 1;
            return Err(AdapterError::transient(
                "TransactWriteItems: the response was lost (injected)",
            ));
        }
        Ok(())
    }
}

/// The in-memory bus: keeps every published event, in order.
#[derive(Clone, Default)]
pub struct MemoryPublisher {
    published: Arc<Mutex<Vec<(String, Notification)>>>,
    failures: Arc<Mutex<u32>>,
}

impl MemoryPublisher {
    pub fn new() -> Self {
        Self::default()
    }

    /// Every event published so far, with its source.
    pub fn published(&self) -> Vec<(String, Notification)> {
        self.published
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The next `n` publishes fail (a bus outage): the delivery is retried.
    pub fn fail_next(&self, n: u32) {
        *self.failures.lock().unwrap_or_else(|e| e.into_inner()) = n;
    }
}

impl Publish for MemoryPublisher {
    async fn publish(&self, source: &str, notifications: &[Notification]) -> Res<()> {
        tokio::task::yield_now().await;
        {
            let mut failures = self.failures.lock().unwrap_or_else(|e| e.into_inner());
            if *failures > 0 {
                *failures -= 1;
                return Err(AdapterError::transient("PutEvents: unavailable (injected)"));
            }
        }
        let mut published = self.published.lock().unwrap_or_else(|e| e.into_inner());
        published.extend(notifications.iter().map(|n| (source.to_owned(), n.clone())));
        Ok(())
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
