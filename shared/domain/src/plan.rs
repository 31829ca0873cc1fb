//! A change to the state as data. Every decision returns a [`Plan`]: the items one all-or-nothing
//! transaction writes, each carrying the condition that makes it safe under concurrency, and the
//! events to publish once it commits. The domain decides plans; a store commits them (DynamoDB,
//! or the in-memory twin that keeps DynamoDB's semantics).

use std::collections::BTreeMap;

use crate::idempotency::IdempotencyStatus;
use crate::order::OrderLine;
use crate::position::PositionDelta;
use crate::reservation::ReservationStatus;
use crate::{ChannelName, EntityId, Line, Millis, Notification, Position, Sku};

/// DynamoDB's limit on items in one transaction.
pub const MAX_TX_ITEMS: usize = 100;

/// One item of a transaction. The doc of each variant says its condition: if any condition does
/// not hold when the transaction commits, nothing is written.
#[derive(Debug, Clone, PartialEq)]
pub enum Write {
    /// The position's next version, written whole. Condition: still at `read.version` (0: absent).
    ReplacePosition {
        sku: Sku,
        read: Position,
        new: Position,
    },
    /// Units moved by arithmetic, so that concurrent holds do not conflict on `version`.
    /// Condition: with `min_available`, `available >= min_available` beforehand (an absent
    /// position fails it); none otherwise.
    ShiftPosition {
        sku: Sku,
        delta: PositionDelta,
        min_available: Option<i64>,
    },
    /// An applied on-hand delta, so a count that occurred before it adds it back.
    /// Condition: absent.
    LogOnHandDelta {
        sku: Sku,
        occurred_at: Millis,
        event_id: String,
        delta: i64,
    },
    /// The delivery's idempotency record, already `APPLIED`, under the event's id, or for a later
    /// part of an order event under that part's key ([`crate::idempotency::part_key`]).
    /// Condition: absent.
    PutIdempotency {
        event_id: String,
        payload_hash: String,
        outcome: String,
        notifications: Vec<Notification>,
        skus: Vec<Sku>,
        /// The lines the event's later parts apply (see [`Plan::later`]).
        later: Vec<Line>,
    },
    /// Condition: the last applied sequence of (`source`, `sku`) is still `previous` (`None`:
    /// absent).
    AdvanceSequence {
        source: String,
        sku: Sku,
        previous: Option<u64>,
        sequence: u64,
    },
    /// A reservation's soft hold of one SKU, sorted by expiry. Condition: absent.
    PutHold {
        sku: Sku,
        reservation_id: EntityId,
        quantity: i64,
        expires_at: Millis,
    },
    /// Condition: present.
    DeleteHold {
        sku: Sku,
        reservation_id: EntityId,
        expires_at: Millis,
    },
    /// A new held reservation. Condition: absent.
    CreateReservation {
        id: EntityId,
        channel: ChannelName,
        lines: Vec<Line>,
        expires_at: Millis,
        request_hash: String,
    },
    /// Condition: the reservation's status is still `from`.
    SetReservationStatus {
        id: EntityId,
        from: ReservationStatus,
        to: ReservationStatus,
        order_id: Option<String>,
    },
    /// An order's lines. Condition: `read_revision` of `None` means absent, otherwise the stored
    /// revision is still it.
    WriteOrder {
        id: EntityId,
        channel: ChannelName,
        lines: Vec<OrderLine>,
        read_revision: Option<i64>,
        /// Its `OrderPlaced` still has parts to apply (see [`OrderRecord::recording`]).
        recording: bool,
    },
    /// A sale on a channel for the dynamic buffers (an `ADD`: no condition).
    RecordSale {
        sku: Sku,
        channel: ChannelName,
        units: i64,
        at: Millis,
    },
    /// Puts the SKU on the next buffer recompute's list. No condition.
    MarkActive { sku: Sku },
    /// The newest demand signal of a kind. Condition: `read_occurred_at` of `None` means absent,
    /// otherwise the stored one still occurred then.
    PutSignal {
        sku: Sku,
        signal: String,
        strength: f64,
        occurred_at: Millis,
        expires_at: Option<Millis>,
        read_occurred_at: Option<Millis>,
    },
}

/// What one decision does: the transaction, the events it announces and the SKUs whose
/// positions it changes (announced with their new version after the commit).
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    pub writes: Vec<Write>,
    pub notifications: Vec<Notification>,
    pub skus: Vec<Sku>,
    /// Short outcome, e.g. `applied`, `insufficient_stock`, `stale_count`.
    pub outcome: &'static str,
    /// Lines of an order event too many for this transaction: the event's later parts apply
    /// them, [`crate::order::ORDER_LINES_PER_PART`] a part, each in its own transaction. Empty
    /// for every other change.
    pub later: Vec<Line>,
}

impl Plan {
    /// A plan that writes nothing (yet).
    pub fn new(outcome: &'static str) -> Self {
        Self {
            writes: Vec::new(),
            notifications: Vec::new(),
            skus: Vec::new(),
            outcome,
            later: Vec::new(),
        }
    }

    /// Marks a SKU's position as changed by this plan.
    pub fn touch(&mut self, sku: &Sku) {
        if !self.skus.contains(sku) {
            self.skus.push(sku.clone());
        }
    }

    pub fn write(&mut self, w: Write) {
        self.writes.push(w);
    }

    /// The positions this plan writes whole. Once it commits each is exactly this (its version
    /// condition guarantees it), so announcing it needs no read-back. A position moved by
    /// arithmetic is known only after the commit.
    pub fn positions_written(&self) -> BTreeMap<Sku, Position> {
        let mut last: BTreeMap<&Sku, Option<Position>> = BTreeMap::new();
        for w in &self.writes {
            match w {
                Write::ReplacePosition { sku, read, new } => {
                    last.insert(
                        sku,
                        Some(Position {
                            version: read.version + 1,
                            ..*new
                        }),
                    );
                }
                Write::ShiftPosition { sku, .. } => {
                    last.insert(sku, None);
                }
                _ => {}
            }
        }
        last.into_iter()
            .filter_map(|(sku, p)| p.map(|p| (sku.clone(), p)))
            .collect()
    }

    /// Units sold by this plan, with when (the catalogue's hour-of-week profile).
    pub fn sales(&self) -> Vec<(i64, Millis)> {
        self.writes
            .iter()
            .filter_map(|w| match w {
                Write::RecordSale { units, at, .. } => Some((*units, *at)),
                _ => None,
            })
            .collect()
    }
}

/// A stored delivery's idempotency record.
#[derive(Debug, Clone, PartialEq)]
pub struct IdempotencyRecord {
    pub payload_hash: String,
    pub status: IdempotencyStatus,
    /// Events to publish for this delivery, besides the positions of `skus`.
    pub notifications: Vec<Notification>,
    pub skus: Vec<Sku>,
    /// Short outcome, e.g. `applied`, `producer_replay`, for operators reading the table.
    pub outcome: String,
    /// On the record of an order event's first part: the lines its later parts apply (each part
    /// has its own record). Empty when the event applied in one transaction.
    pub later: Vec<Line>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRecord {
    pub id: EntityId,
    pub channel: ChannelName,
    pub lines: Vec<Line>,
    pub status: ReservationStatus,
    pub expires_at: Millis,
    pub request_hash: String,
    pub order_id: Option<String>,
    /// The stamp of the change that created it (the commit's `write_id`).
    pub write_id: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OrderRecord {
    pub id: EntityId,
    pub channel: ChannelName,
    pub lines: Vec<OrderLine>,
    /// Bumped on every change; guards concurrent settlements.
    pub revision: i64,
    /// Its `OrderPlaced` has more lines than one transaction holds and its later parts are not
    /// all applied yet: some lines are not hard-reserved yet, so shipments and cancellations wait
    /// (`not_yet_known`) until the last part clears it.
    pub recording: bool,
}

/// A decision that contradicts recorded state (e.g. releasing a confirmed reservation).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conflict {
    pub code: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_position_written_whole_is_known_and_one_moved_by_arithmetic_is_not() {
        let (a, b) = (Sku::parse("A").unwrap(), Sku::parse("B").unwrap());
        let read = Position {
            on_hand: 5,
            version: 7,
            ..Default::default()
        };
        let mut plan = Plan::new("applied");
        plan.write(Write::ReplacePosition {
            sku: a.clone(),
            read,
            new: Position { on_hand: 3, ..read },
        });
        plan.write(Write::ReplacePosition {
            sku: b.clone(),
            read,
            new: read,
        });
        plan.write(Write::ShiftPosition {
            sku: b,
            delta: PositionDelta::default(),
            min_available: None,
        });
        let written = plan.positions_written();
        assert_eq!(written.len(), 1);
        assert_eq!(written[&a].version, 8);
        assert_eq!(written[&a].on_hand, 3);
    }
}
