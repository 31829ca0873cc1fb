//! One all-or-nothing change of the state table (`TransactWriteItems`, at most 100 items).
//! Each method adds one item with the condition that makes it safe under concurrency.

use std::collections::{BTreeMap, HashMap};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::types::{AttributeValue, Delete, Put, TransactWriteItem, Update};
use stockguard_domain::decayed::{Accumulator, Horizons};
use stockguard_domain::idempotency::IdempotencyStatus;
use stockguard_domain::order::OrderLine;
use stockguard_domain::reservation::ReservationStatus;
use stockguard_domain::{ChannelName, EntityId, Line, Millis, Notification, Position, Sku};

use crate::error::AdapterError;
use crate::items::*;

/// DynamoDB's limit on items in one transaction.
pub use stockguard_domain::plan::MAX_TX_ITEMS;
use stockguard_domain::plan::Write;
/// How long idempotency records and the on-hand delta log are kept.
pub const RETENTION_DAYS: i64 = 30;

#[derive(Debug)]
pub struct StateTx {
    table: String,
    /// When this change is written; positions record it as `changed_at`.
    now_ms: i64,
    items: Vec<Result<TransactWriteItem, String>>,
    /// Each position this change writes: `Some` when written whole under its version, `None`
    /// when moved by arithmetic (its result is known only to DynamoDB).
    positions: BTreeMap<Sku, Option<Position>>,
    /// Stamped on every position this change writes (`write_id`), so a read after the commit
    /// tells whether the position is still this change's or a later one's.
    write_id: String,
    /// Units sold (with when) by this change, for the catalogue's hour-of-week profile.
    sales: Vec<(i64, Millis)>,
    horizons: Horizons,
}

/// Position arithmetic is the domain's; the transaction writes it.
pub use stockguard_domain::position::PositionDelta;

impl StateTx {
    pub(crate) fn new(table: String, horizons: Horizons) -> Self {
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        Self {
            table,
            now_ms,
            items: Vec::new(),
            positions: BTreeMap::new(),
            write_id: format!("{:016x}", rand::random::<u64>()),
            sales: Vec::new(),
            horizons,
        }
    }

    /// A transaction with a given stamp and clock, for a plan committed through the store trait.
    pub(crate) fn stamped(table: String, horizons: Horizons, write_id: &str, now: Millis) -> Self {
        Self {
            now_ms: now,
            write_id: write_id.to_owned(),
            ..Self::new(table, horizons)
        }
    }

    /// Adds one planned item, with its condition, as a DynamoDB transaction item.
    pub fn add(&mut self, write: &Write, now: Millis) {
        match write {
            Write::ReplacePosition { sku, read, new } => self.replace_position(sku, read, new),
            Write::ShiftPosition {
                sku,
                delta,
                min_available,
            } => self.shift_position(sku, *delta, *min_available),
            Write::LogOnHandDelta {
                sku,
                occurred_at,
                event_id,
                delta,
            } => self.log_on_hand_delta(sku, *occurred_at, event_id, *delta, now),
            Write::PutIdempotency {
                event_id,
                payload_hash,
                outcome,
                notifications,
                skus,
                later,
            } => self.put_idempotency(
                event_id,
                payload_hash,
                outcome,
                notifications,
                skus,
                later,
                now,
            ),
            Write::AdvanceSequence {
                source,
                sku,
                previous,
                sequence,
            } => self.advance_sequence(source, sku, *previous, *sequence),
            Write::PutHold {
                sku,
                reservation_id,
                quantity,
                expires_at,
            } => self.put_hold(sku, reservation_id, *quantity, *expires_at),
            Write::DeleteHold {
                sku,
                reservation_id,
                expires_at,
            } => self.delete_hold(sku, reservation_id, *expires_at),
            Write::CreateReservation {
                id,
                channel,
                lines,
                expires_at,
                request_hash,
            } => self.create_reservation(id, channel, lines, *expires_at, request_hash, now),
            Write::SetReservationStatus {
                id,
                from,
                to,
                order_id,
            } => self.set_reservation_status(id, *from, *to, order_id.as_deref()),
            Write::WriteOrder {
                id,
                channel,
                lines,
                read_revision,
                recording,
            } => self.write_order(id, channel, lines, *read_revision, *recording),
            Write::RecordSale {
                sku,
                channel,
                units,
                at,
            } => self.record_sale(sku, channel, *units, *at),
            Write::MarkActive { sku } => self.mark_active(sku),
            Write::PutSignal {
                sku,
                signal,
                strength,
                occurred_at,
                expires_at,
                read_occurred_at,
            } => self.put_signal(
                sku,
                signal,
                *strength,
                *occurred_at,
                *expires_at,
                *read_occurred_at,
            ),
        }
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn write_id(&self) -> &str {
        &self.write_id
    }

    /// The positions this change writes whole. Once it commits each is exactly what is returned
    /// here (its version condition guarantees it), so announcing them needs no read-back.
    pub fn positions_written(&self) -> BTreeMap<Sku, Position> {
        self.positions
            .iter()
            .filter_map(|(sku, p)| p.map(|p| (sku.clone(), p)))
            .collect()
    }

    fn put(&mut self, item: Item, condition: &str, values: HashMap<String, AttributeValue>) {
        // An empty condition writes unconditionally.
        let mut b = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(Some(condition.to_owned()).filter(|c| !c.is_empty()));
        if !values.is_empty() {
            b = b.set_expression_attribute_values(Some(values));
        }
        if condition.contains("#s") {
            b = b.expression_attribute_names("#s", "status");
        }
        self.items.push(
            b.build()
                .map(|p| TransactWriteItem::builder().put(p).build())
                .map_err(|e| e.to_string()),
        );
    }

    fn update(
        &mut self,
        key: Item,
        expression: &str,
        condition: Option<&str>,
        values: HashMap<String, AttributeValue>,
    ) {
        let mut b = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expression)
            .set_condition_expression(condition.map(str::to_owned))
            .set_expression_attribute_values(Some(values));
        if expression.contains("#s") || condition.is_some_and(|c| c.contains("#s")) {
            b = b.expression_attribute_names("#s", "status");
        }
        self.items.push(
            b.build()
                .map(|u| TransactWriteItem::builder().update(u).build())
                .map_err(|e| e.to_string()),
        );
    }

    fn delete(&mut self, key: Item, condition: &str) {
        let d = Delete::builder()
            .table_name(&self.table)
            .set_key(Some(key))
            .condition_expression(condition)
            .build();
        self.items.push(
            d.map(|d| TransactWriteItem::builder().delete(d).build())
                .map_err(|e| e.to_string()),
        );
    }

    /// Writes `new` as the next version of a position read at `read.version` (0: never stored).
    /// Fails with a condition error if anything changed the position since it was read.
    pub fn replace_position(&mut self, sku: &Sku, read: &Position, new: &Position) {
        let mut item = key(sku_pk(sku), POSITION);
        item.insert("sku".into(), s(sku.as_str()));
        item.insert("on_hand".into(), n(new.on_hand));
        item.insert("hard_reserved".into(), n(new.hard_reserved));
        item.insert("soft_reserved".into(), n(new.soft_reserved));
        item.insert("available".into(), n(new.available()));
        item.insert("version".into(), n(read.version + 1));
        item.insert("changed_at".into(), n(self.now_ms));
        item.insert(WRITE_ID.into(), s(&self.write_id));
        if let Some(c) = new.counted_at {
            item.insert("counted_at".into(), n(c));
        }
        let written = Position {
            version: read.version + 1,
            ..*new
        };
        self.positions.insert(sku.clone(), Some(written));
        if read.version == 0 {
            self.put(item, "attribute_not_exists(pk)", HashMap::new());
        } else {
            self.put(
                item,
                "version = :v",
                HashMap::from([(":v".into(), n(read.version))]),
            );
        }
    }

    /// Moves units by arithmetic, keeping `available` equal to `on_hand - hard - soft` in the same
    /// expression. With `min_available`, the write happens only if `available >= min_available`
    /// beforehand: DynamoDB conditions cannot do arithmetic, which is why `available` is stored.
    pub fn shift_position(&mut self, sku: &Sku, delta: PositionDelta, min_available: Option<i64>) {
        self.positions.insert(sku.clone(), None);
        let mut values = HashMap::from([
            (":oh".into(), n(delta.on_hand)),
            (":hr".into(), n(delta.hard_reserved)),
            (":sr".into(), n(delta.soft_reserved)),
            (":av".into(), n(delta.available())),
            (":one".into(), n(1)),
            (":sku".into(), s(sku.as_str())),
            (":now".into(), n(self.now_ms)),
            (":wid".into(), s(&self.write_id)),
        ]);
        let condition = min_available.map(|need| {
            values.insert(":need".into(), n(need));
            "available >= :need"
        });
        self.update(
            key(sku_pk(sku), POSITION),
            "SET sku = :sku, changed_at = :now, write_id = :wid ADD on_hand :oh, hard_reserved :hr, soft_reserved :sr, available :av, version :one",
            condition,
            values,
        );
    }

    /// Records an applied on-hand delta so that a count that occurred before it can add it back.
    pub fn log_on_hand_delta(
        &mut self,
        sku: &Sku,
        occurred_at: Millis,
        event_id: &str,
        delta: i64,
        now: Millis,
    ) {
        let mut item = key(sku_pk(sku), &delta_sk(occurred_at, event_id));
        item.insert("delta".into(), n(delta));
        item.insert("ttl".into(), ttl_after(now, RETENTION_DAYS));
        self.put(item, "attribute_not_exists(pk)", HashMap::new());
    }

    /// The record of a delivery (or of one part of an order event: `event_id` is then the
    /// part's key). `later`: the lines an order event's later parts apply, on its first part's
    /// record only.
    #[allow(clippy::too_many_arguments)] // the record's fields, as the plan carries them
    pub fn put_idempotency(
        &mut self,
        event_id: &str,
        payload_hash: &str,
        outcome: &str,
        notifications: &[Notification],
        skus: &[Sku],
        later: &[Line],
        now: Millis,
    ) {
        let mut item = key(event_pk(event_id), IDEMPOTENCY);
        item.insert("payload_hash".into(), s(payload_hash));
        item.insert("status".into(), s(IdempotencyStatus::Applied.as_str()));
        item.insert("outcome".into(), s(outcome));
        item.insert("notifications".into(), json(&notifications));
        item.insert("skus".into(), json(&skus));
        if !later.is_empty() {
            item.insert("later_lines".into(), json(&later));
        }
        item.insert("ttl".into(), ttl_after(now, RETENTION_DAYS));
        self.put(item, "attribute_not_exists(pk)", HashMap::new());
    }

    /// Advances the producer sequence of (`source`, `sku`) from `previous` to `sequence`.
    pub fn advance_sequence(
        &mut self,
        source: &str,
        sku: &Sku,
        previous: Option<u64>,
        sequence: u64,
    ) {
        let mut item = key(sku_pk(sku), &sequence_sk(source));
        item.insert("applied_sequence".into(), n(sequence));
        match previous {
            None => self.put(item, "attribute_not_exists(pk)", HashMap::new()),
            Some(p) => self.put(
                item,
                "applied_sequence = :p",
                HashMap::from([(":p".into(), n(p))]),
            ),
        }
    }

    pub fn put_hold(
        &mut self,
        sku: &Sku,
        reservation_id: &EntityId,
        quantity: i64,
        expires_at: Millis,
    ) {
        let mut item = key(sku_pk(sku), &hold_sk(expires_at, reservation_id));
        item.insert("reservation_id".into(), s(reservation_id.as_str()));
        item.insert("quantity".into(), n(quantity));
        item.insert("expires_at".into(), n(expires_at));
        self.put(item, "attribute_not_exists(pk)", HashMap::new());
    }

    pub fn delete_hold(&mut self, sku: &Sku, reservation_id: &EntityId, expires_at: Millis) {
        self.delete(
            key(sku_pk(sku), &hold_sk(expires_at, reservation_id)),
            "attribute_exists(pk)",
        );
    }

    pub fn create_reservation(
        &mut self,
        id: &EntityId,
        channel: &ChannelName,
        lines: &[Line],
        expires_at: Millis,
        request_hash: &str,
        now: Millis,
    ) {
        let mut item = key(reservation_pk(id), RESERVATION);
        item.insert("channel".into(), s(channel.as_str()));
        item.insert("lines".into(), json(&lines));
        item.insert("status".into(), s(ReservationStatus::Held.as_str()));
        item.insert("expires_at".into(), n(expires_at));
        item.insert("request_hash".into(), s(request_hash));
        item.insert("created_at".into(), n(now));
        item.insert(WRITE_ID.into(), s(&self.write_id));
        item.insert("ttl".into(), ttl_after(expires_at, RETENTION_DAYS));
        // Indexed while held, so the expiry sweeper finds lapsed reservations in expiry order.
        item.insert(EXPIRY_INDEX_PK.into(), s(HELD));
        item.insert(EXPIRY_INDEX_SK.into(), s(expiry_sk(expires_at, id)));
        self.put(item, "attribute_not_exists(pk)", HashMap::new());
    }

    /// Moves a reservation from `from` to `to`; fails if another writer moved it first.
    pub fn set_reservation_status(
        &mut self,
        id: &EntityId,
        from: ReservationStatus,
        to: ReservationStatus,
        order_id: Option<&str>,
    ) {
        let mut values = HashMap::from([
            (":from".into(), s(from.as_str())),
            (":to".into(), s(to.as_str())),
        ]);
        // Leaving `held` also leaves the expiry index.
        let expression = match order_id {
            Some(o) => {
                values.insert(":order".into(), s(o));
                "SET #s = :to, order_id = :order REMOVE expiry_pk, expiry_sk"
            }
            None => "SET #s = :to REMOVE expiry_pk, expiry_sk",
        };
        self.update(
            key(reservation_pk(id), RESERVATION),
            expression,
            Some("#s = :from"),
            values,
        );
    }

    /// Writes an order; `read_revision` of `None` means it must not exist yet. `recording`: its
    /// `OrderPlaced` still has parts to apply (stored only while true).
    pub fn write_order(
        &mut self,
        id: &EntityId,
        channel: &ChannelName,
        lines: &[OrderLine],
        read_revision: Option<i64>,
        recording: bool,
    ) {
        let mut item = key(order_pk(id), ORDER);
        item.insert("channel".into(), s(channel.as_str()));
        item.insert("lines".into(), json(&lines));
        item.insert("revision".into(), n(read_revision.map_or(1, |r| r + 1)));
        if recording {
            item.insert("recording".into(), AttributeValue::Bool(true));
        }
        match read_revision {
            None => self.put(item, "attribute_not_exists(pk)", HashMap::new()),
            Some(r) => self.put(item, "revision = :r", HashMap::from([(":r".into(), n(r))])),
        }
    }

    /// Records a sale of `units` of `sku` on `channel` for the dynamic buffers: one `ADD` per
    /// horizon to the SKU's decayed-rate accumulators (no read, so it adds no conflict of its
    /// own), which also puts the SKU on the next buffer recompute's list.
    pub fn record_sale(&mut self, sku: &Sku, channel: &ChannelName, units: i64, at: Millis) {
        let mut names = HashMap::new();
        let mut values = HashMap::new();
        let mut adds = Vec::new();
        for (i, h) in self.horizons.all().iter().enumerate() {
            let (epoch, amount) = h.contribution(units, at);
            names.insert(
                format!("#a{i}"),
                Accumulator::attribute(h, channel.as_str(), epoch),
            );
            values.insert(format!(":a{i}"), AttributeValue::N(amount.to_string()));
            adds.push(format!("#a{i} :a{i}"));
        }
        self.touch_velocity(sku, &format!(" ADD {}", adds.join(", ")), names, values);
        self.sales.push((units, at));
    }

    /// Puts `sku` on the next buffer recompute's list (a demand signal arrived).
    pub fn mark_active(&mut self, sku: &Sku) {
        self.touch_velocity(sku, "", HashMap::new(), HashMap::new());
    }

    fn touch_velocity(
        &mut self,
        sku: &Sku,
        more: &str,
        names: HashMap<String, String>,
        mut values: HashMap<String, AttributeValue>,
    ) {
        values.insert(":sku".into(), s(sku.as_str()));
        values.insert(":active".into(), s(ACTIVE));
        values.insert(":now".into(), n(self.now_ms));
        let update = Update::builder()
            .table_name(&self.table)
            .set_key(Some(key(sku_pk(sku), VELOCITY)))
            .update_expression(format!(
                "SET sku = :sku, {ACTIVE_INDEX_PK} = :active, touched_at = :now, due_at = :now{more}"
            ))
            .set_expression_attribute_names(Some(names).filter(|n| !n.is_empty()))
            .set_expression_attribute_values(Some(values))
            .build();
        self.items.push(
            update
                .map(|u| TransactWriteItem::builder().update(u).build())
                .map_err(|e| e.to_string()),
        );
    }

    /// Units sold by this change, with when.
    pub fn sales(&self) -> &[(i64, Millis)] {
        &self.sales
    }

    /// Stores the latest demand signal of a kind for a SKU, unless a newer one was stored meanwhile.
    pub fn put_signal(
        &mut self,
        sku: &Sku,
        signal: &str,
        strength: f64,
        occurred_at: Millis,
        expires_at: Option<Millis>,
        read_occurred_at: Option<Millis>,
    ) {
        let mut item = key(sku_pk(sku), &signal_sk(signal));
        item.insert("signal".into(), s(signal));
        item.insert("strength".into(), AttributeValue::N(strength.to_string()));
        item.insert("occurred_at".into(), n(occurred_at));
        if let Some(e) = expires_at {
            item.insert("expires_at".into(), n(e));
            item.insert("ttl".into(), ttl_after(e, 1));
        }
        match read_occurred_at {
            None => self.put(item, "attribute_not_exists(pk)", HashMap::new()),
            Some(t) => self.put(
                item,
                "occurred_at = :t",
                HashMap::from([(":t".into(), n(t))]),
            ),
        }
    }

    pub(crate) async fn commit(self, client: &Client) -> Result<(), AdapterError> {
        if self.items.is_empty() {
            return Ok(());
        }
        if self.items.len() > MAX_TX_ITEMS {
            return Err(AdapterError::permanent(format!(
                "a change of {} items exceeds DynamoDB's {MAX_TX_ITEMS}-item transaction limit",
                self.items.len()
            )));
        }
        let items = self
            .items
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(AdapterError::permanent)?;
        let result = client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(err) => {
                use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
                if let Some(TransactWriteItemsError::TransactionCanceledException(c)) =
                    err.as_service_error()
                {
                    let codes: Vec<&str> = c
                        .cancellation_reasons()
                        .iter()
                        .filter_map(|r| r.code())
                        .collect();
                    let raced = codes
                        .iter()
                        .any(|c| matches!(*c, "ConditionalCheckFailed" | "TransactionConflict"));
                    let msg = format!("TransactWriteItems cancelled: {codes:?}");
                    // moto may omit per-item reasons; a cancellation without one is treated as a race.
                    return Err(
                        if raced || codes.iter().all(|c| *c == "None") || codes.is_empty() {
                            let reasons = codes.iter().map(|c| (*c).to_owned()).collect();
                            AdapterError::cancelled(msg, reasons)
                        } else {
                            AdapterError::transient(msg)
                        },
                    );
                }
                Err(crate::error::classify("TransactWriteItems", err))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_written_whole_is_known_after_commit_and_one_moved_by_arithmetic_is_not() {
        let (a, b) = (Sku::parse("A").unwrap(), Sku::parse("B").unwrap());
        let read = Position {
            on_hand: 5,
            version: 7,
            ..Default::default()
        };
        let new = Position { on_hand: 3, ..read };
        let mut tx = StateTx::new("t".into(), Horizons::default());
        tx.replace_position(&a, &read, &new);
        tx.shift_position(
            &b,
            PositionDelta {
                soft_reserved: 1,
                ..Default::default()
            },
            Some(1),
        );
        let written = tx.positions_written();
        assert_eq!(written.len(), 1);
        assert_eq!(
            written[&a],
            Position {
                on_hand: 3,
                version: 8,
                ..Default::default()
            }
        );
    }
}
