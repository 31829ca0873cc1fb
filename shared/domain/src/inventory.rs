//! What stock facts and orders write, as plans: receipts, adjustments, restocked returns, counts,
//! demand signals, orders placed without a reservation, shipments and cancellations.
//!
//! Each of these writes its positions whole under the version read, so any concurrent change
//! makes the commit fail and the decision is taken again on a fresh read.

use std::collections::HashMap;

use crate::buffer::StoredSignal;
use crate::error::InvalidInput;
use crate::order::{OrderLine, Settlement, settle, split_lines};
use crate::plan::{OrderRecord, Plan, Write};
use crate::position::CountOutcome;
use crate::{ChannelName, EntityId, Line, Millis, Notification, Position, Sku};

/// An on-hand delta (`StockReceived`, `StockAdjusted`, a restocked `ReturnReceived`), logged so a
/// later-arriving older count keeps it. Skipped when the latest count already includes it
/// (occurred at or before the count).
pub fn plan_on_hand_delta(
    sku: &Sku,
    read: Position,
    delta: i64,
    occurred_at: Millis,
    event_id: &str,
) -> Plan {
    let mut new = read;
    if !new.apply_on_hand_delta(delta, occurred_at) {
        return Plan::new("inside_latest_count");
    }
    let mut plan = Plan::new("applied");
    plan.write(Write::ReplacePosition {
        sku: sku.clone(),
        read,
        new,
    });
    plan.write(Write::LogOnHandDelta {
        sku: sku.clone(),
        occurred_at,
        event_id: event_id.to_owned(),
        delta,
    });
    plan.touch(sku);
    plan
}

/// An absolute count: on hand becomes the count plus every delta that occurred after it
/// (`later_deltas`, read after `read`: a delta committed in between bumps the version, so the
/// write fails and the count is planned again with it included). An older count is stale.
pub fn plan_count(
    sku: &Sku,
    read: Position,
    on_hand: i64,
    counted_at: Millis,
    later_deltas: i64,
) -> Plan {
    let mut new = read;
    if new.apply_count(on_hand, counted_at, later_deltas) == CountOutcome::Stale {
        return Plan::new("stale_count");
    }
    let mut plan = Plan::new("applied");
    plan.write(Write::ReplacePosition {
        sku: sku.clone(),
        read,
        new,
    });
    plan.touch(sku);
    plan
}

/// Stores the newest demand signal of its kind for the buffer logic; an older one is ignored.
pub fn plan_signal(
    sku: &Sku,
    signal: &str,
    strength: f64,
    occurred_at: Millis,
    expires_at: Option<Millis>,
    stored: Option<&StoredSignal>,
) -> Plan {
    if stored.is_some_and(|s| s.occurred_at > occurred_at) {
        return Plan::new("older_than_stored_signal");
    }
    let mut plan = Plan::new("applied");
    plan.write(Write::PutSignal {
        sku: sku.clone(),
        signal: signal.to_owned(),
        strength,
        occurred_at,
        expires_at,
        read_occurred_at: stored.map(|s| s.occurred_at),
    });
    plan.write(Write::MarkActive { sku: sku.clone() });
    plan
}

/// Hard-allocates every line from the positions read, however short each is (an order is a fact),
/// and publishes `OversellDetected` with the shortfall of each line that was.
pub fn allocate_hard_even_if_short(
    plan: &mut Plan,
    positions: &HashMap<Sku, Position>,
    lines: &[Line],
    order_id: &str,
    channel: &ChannelName,
    now: Millis,
) {
    for line in lines {
        let read = positions.get(&line.sku).copied().unwrap_or_default();
        let mut new = read;
        let shortfall = new.allocate_hard(line.quantity);
        if shortfall > 0 {
            plan.notifications.push(Notification::oversell_detected(
                &line.sku,
                order_id,
                channel.as_str(),
                shortfall,
                now,
            ));
        }
        plan.write(Write::ReplacePosition {
            sku: line.sku.clone(),
            read,
            new,
        });
        plan.touch(&line.sku);
    }
}

/// `OrderPlaced` without a reservation: a fact, never rejected. Every line is hard-allocated even
/// when short, recorded as a sale, and the order stored for its settlements. An order id already
/// recorded (under another event id) changes nothing.
///
/// This is the event's first part: it records the whole order and applies the lines of the first
/// of [`split_lines`]; an order of more lines leaves the rest to later parts ([`Plan::later`],
/// [`plan_order_part`]) and is stored `recording` until the last of them.
pub fn plan_order(
    order_id: &EntityId,
    channel: &ChannelName,
    lines: &[Line],
    already_recorded: bool,
    positions: &HashMap<Sku, Position>,
    now: Millis,
) -> Plan {
    if already_recorded {
        return Plan::new("order_already_recorded");
    }
    let (first, later) = first_part(lines);
    let mut plan = Plan::new("applied");
    place(&mut plan, order_id, channel, &first, positions, now);
    plan.write(Write::WriteOrder {
        id: order_id.clone(),
        channel: channel.clone(),
        lines: lines.iter().map(OrderLine::new).collect(),
        read_revision: None,
        recording: !later.is_empty(),
    });
    plan.later = later;
    plan
}

/// A later part of an `OrderPlaced` recorded by [`plan_order`]: its lines are allocated and
/// recorded as sales as the first part's were. The last part (`finishing`: the order as read)
/// also clears the order's `recording`, after which it can be settled.
pub fn plan_order_part(
    order_id: &EntityId,
    channel: &ChannelName,
    lines: &[Line],
    finishing: Option<&OrderRecord>,
    positions: &HashMap<Sku, Position>,
    now: Millis,
) -> Plan {
    let mut plan = Plan::new("applied");
    place(&mut plan, order_id, channel, lines, positions, now);
    if let Some(order) = finishing {
        plan.write(Write::WriteOrder {
            id: order.id.clone(),
            channel: order.channel.clone(),
            lines: order.lines.clone(),
            read_revision: Some(order.revision),
            recording: false,
        });
    }
    plan
}

/// An order's lines allocated and recorded as sales.
fn place(
    plan: &mut Plan,
    order_id: &EntityId,
    channel: &ChannelName,
    lines: &[Line],
    positions: &HashMap<Sku, Position>,
    now: Millis,
) {
    allocate_hard_even_if_short(plan, positions, lines, order_id.as_str(), channel, now);
    for line in lines {
        plan.write(Write::RecordSale {
            sku: line.sku.clone(),
            channel: channel.clone(),
            units: line.quantity,
            at: now,
        });
    }
}

/// The first part's lines and the lines left to later parts.
fn first_part(lines: &[Line]) -> (Vec<Line>, Vec<Line>) {
    let mut parts = split_lines(lines).into_iter();
    let first = parts.next().unwrap_or_default();
    (first, parts.flatten().collect())
}

/// `OrderShipped` / `OrderCancelled`: settles the order's remaining hard allocation (`requested`
/// of `None`: all of it). A shipment also takes the units off hand, unless the latest count
/// already did. `positions` holds at least the SKUs of the order's lines.
///
/// This is the event's first part: the whole settlement is decided here and written to the order
/// at once (so a concurrent settlement sees it whole), and the positions of the first of
/// [`split_lines`] of the settled lines move; more settled lines are left to later parts
/// ([`Plan::later`], [`plan_settlement_part`]).
pub fn plan_settlement(
    order: &OrderRecord,
    requested: Option<&[Line]>,
    kind: Settlement,
    positions: &HashMap<Sku, Position>,
    occurred_at: Millis,
    event_id: &str,
) -> Result<Plan, InvalidInput> {
    let mut lines = order.lines.clone();
    let settled = settle(&mut lines, requested, kind)?;
    if settled.is_empty() {
        return Ok(Plan::new("nothing_remaining"));
    }
    let (first, later) = first_part(&settled);
    let mut plan = plan_settlement_part(&first, kind, positions, occurred_at, event_id);
    plan.write(Write::WriteOrder {
        id: order.id.clone(),
        channel: order.channel.clone(),
        lines,
        read_revision: Some(order.revision),
        recording: false,
    });
    plan.later = later;
    Ok(plan)
}

/// The positions of settled `lines` move: hard reserved goes down, and for a shipment on hand
/// too (logged, unless the latest count already includes it). A later part of a settlement
/// is this alone: its lines were settled on the order by the first part.
pub fn plan_settlement_part(
    lines: &[Line],
    kind: Settlement,
    positions: &HashMap<Sku, Position>,
    occurred_at: Millis,
    event_id: &str,
) -> Plan {
    let mut plan = Plan::new("applied");
    for line in lines {
        let read = positions.get(&line.sku).copied().unwrap_or_default();
        let mut new = read;
        new.release_hard(line.quantity);
        if kind == Settlement::Ship && new.apply_on_hand_delta(-line.quantity, occurred_at) {
            plan.write(Write::LogOnHandDelta {
                sku: line.sku.clone(),
                occurred_at,
                event_id: event_id.to_owned(),
                delta: -line.quantity,
            });
        }
        plan.write(Write::ReplacePosition {
            sku: line.sku.clone(),
            read,
            new,
        });
        plan.touch(&line.sku);
    }
    plan
}

#[cfg(test)]
#[path = "inventory_tests.rs"]
mod tests;
