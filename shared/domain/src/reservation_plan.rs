//! What reserving, confirming, releasing and expiring a reservation write, as plans.
//!
//! Taking units is the hot path of a flash sale, so it does not conflict on `version`: each
//! position is moved by arithmetic under the condition `available >= quantity`, and expired holds
//! of the same SKU are released inside the same transaction when their units are needed.

use std::collections::{HashMap, HashSet};

use serde_json::json;

use crate::idempotency::payload_hash;
use crate::inbound::SURGE_TTL_SECONDS;
use crate::inventory::allocate_hard_even_if_short;
use crate::order::OrderLine;
use crate::plan::{Conflict, MAX_TX_ITEMS, Plan, ReservationRecord, Write};
use crate::position::PositionDelta;
use crate::reservation::{
    ConfirmPath, ReservationStatus, Shortfall, SoftHold, confirm_path, decide_reservation,
    pick_expired_to_release,
};
use crate::{EntityId, Line, Millis, Notification, Position, ReservationRequest, Sku};

#[derive(Debug, Clone, PartialEq)]
pub enum ReserveAnswer {
    Held {
        expires_at: Millis,
        lines: Vec<Line>,
        repeat: bool,
    },
    Insufficient {
        shortfalls: Vec<Shortfall>,
    },
}

/// Hash of what a reservation asks for, so a repeated request is recognised and a reused id with
/// a different cart is refused.
pub fn request_hash(req: &ReservationRequest) -> String {
    payload_hash(
        "ReservationRequested",
        &json!({"reservation_id": req.reservation_id, "channel": req.channel, "lines": req.lines, "ttl_seconds": req.ttl_seconds}),
    )
}

/// Transaction items a reservation of `lines` writes before any release: its record and, per
/// line, a hold and a position, plus one spare.
pub fn reserve_items(lines: &[Line]) -> usize {
    2 + 2 * lines.len()
}

/// Items releasing a reservation adds: its status and, per line, a hold and a position.
pub fn release_items(record: &ReservationRecord) -> usize {
    1 + 2 * record.lines.len()
}

fn available(positions: &HashMap<Sku, Position>, sku: &Sku) -> i64 {
    positions.get(sku).map_or(0, Position::available)
}

/// The SKUs of lines that `available` alone cannot cover: only these need their expired holds read.
pub fn short_skus(lines: &[Line], positions: &HashMap<Sku, Position>) -> Vec<Sku> {
    lines
        .iter()
        .filter(|l| l.quantity > available(positions, &l.sku))
        .map(|l| l.sku.clone())
        .collect()
}

/// Every lapsed reservation [`plan_reserve`] may release, given the expired holds read for the
/// short SKUs; the caller reads these records.
pub fn release_candidates(
    lines: &[Line],
    positions: &HashMap<Sku, Position>,
    expired_holds: &HashMap<Sku, Vec<SoftHold>>,
    now: Millis,
) -> Vec<EntityId> {
    let mut ids: Vec<EntityId> = Vec::new();
    for line in lines {
        let needed = line.quantity - available(positions, &line.sku);
        let holds = expired_holds.get(&line.sku).map_or(&[][..], Vec::as_slice);
        for id in pick_expired_to_release(holds, now, needed) {
            if !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    ids
}

/// What a reservation attempt read.
pub struct ReserveInput<'a> {
    pub request: &'a ReservationRequest,
    /// The stored reservation of the same id, if any.
    pub existing: Option<&'a ReservationRecord>,
    pub positions: &'a HashMap<Sku, Position>,
    /// SKUs with an active add-to-cart surge: a defaulted hold is shorter.
    pub surging: &'a HashSet<Sku>,
    /// Expired holds of the short SKUs, and the records of [`release_candidates`].
    pub expired_holds: &'a HashMap<Sku, Vec<SoftHold>>,
    pub lapsed: &'a HashMap<EntityId, ReservationRecord>,
    pub now: Millis,
    /// Transaction items the caller adds (an idempotency record, sequence items).
    pub reserved_items: usize,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Reserve {
    Decided(ReserveAnswer, Plan),
    /// Short only because these lapsed reservations did not fit in the transaction: expire them
    /// first, each in its own transaction, then plan again.
    ReleaseFirst(Vec<EntityId>),
}

/// Reserves every line or none. Expired holds of a short SKU are released in the same
/// transaction, oldest first, as long as the transaction stays within DynamoDB's 100 items.
pub fn plan_reserve(input: &ReserveInput) -> Result<Reserve, Conflict> {
    let req = input.request;
    let hash = request_hash(req);
    if let Some(existing) = input.existing {
        if existing.request_hash != hash {
            return Err(Conflict {
                code: "idempotency_key_reused",
                message: format!(
                    "reservation {} exists with a different request",
                    req.reservation_id
                ),
            });
        }
        let answer = ReserveAnswer::Held {
            expires_at: existing.expires_at,
            lines: existing.lines.clone(),
            repeat: true,
        };
        return Ok(Reserve::Decided(answer, Plan::new("repeat")));
    }
    let limit = MAX_TX_ITEMS.saturating_sub(input.reserved_items);
    let avail: Vec<i64> = req
        .lines
        .iter()
        .map(|l| available(input.positions, &l.sku))
        .collect();

    // Only when a line is short: release expired holds of that SKU, oldest first.
    let mut releases: Vec<&ReservationRecord> = Vec::new();
    let mut released: HashMap<Sku, i64> = HashMap::new();
    let mut items = reserve_items(&req.lines);
    let mut did_not_fit: Vec<EntityId> = Vec::new();
    for (line, &a) in req.lines.iter().zip(&avail) {
        let needed = line.quantity - a - released.get(&line.sku).copied().unwrap_or(0);
        if needed <= 0 {
            continue;
        }
        let holds = input
            .expired_holds
            .get(&line.sku)
            .map_or(&[][..], Vec::as_slice);
        for id in pick_expired_to_release(holds, input.now, needed) {
            if releases.iter().any(|r| r.id == id) {
                continue;
            }
            let Some(record) = input.lapsed.get(&id) else {
                continue;
            };
            if record.status != ReservationStatus::Held {
                continue;
            }
            let cost = release_items(record);
            if items + cost > limit {
                did_not_fit.push(record.id.clone());
                continue;
            }
            items += cost;
            for l in &record.lines {
                *released.entry(l.sku.clone()).or_default() += l.quantity;
            }
            releases.push(record);
        }
    }
    let takeable: Vec<i64> = req
        .lines
        .iter()
        .zip(&avail)
        .map(|(l, a)| a + released.get(&l.sku).copied().unwrap_or(0))
        .collect();
    if let Err(shortfalls) = decide_reservation(&req.lines, &takeable) {
        if !did_not_fit.is_empty() {
            return Ok(Reserve::ReleaseFirst(did_not_fit));
        }
        let mut plan = Plan::new("insufficient_stock");
        plan.notifications.push(Notification::reservation_rejected(
            req.reservation_id.as_str(),
            req.channel.as_str(),
            "insufficient_stock",
            &shortfalls,
        ));
        return Ok(Reserve::Decided(
            ReserveAnswer::Insufficient { shortfalls },
            plan,
        ));
    }

    let ttl_seconds = if req.ttl_defaulted && !input.surging.is_empty() {
        req.ttl_seconds.min(SURGE_TTL_SECONDS)
    } else {
        req.ttl_seconds
    };
    let expires_at = input.now + i64::from(ttl_seconds) * 1000;
    let mut plan = Plan::new("applied");
    plan.write(Write::CreateReservation {
        id: req.reservation_id.clone(),
        channel: req.channel.clone(),
        lines: req.lines.clone(),
        expires_at,
        request_hash: hash,
    });
    let mut take: HashMap<Sku, i64> = HashMap::new();
    for line in &req.lines {
        plan.write(Write::PutHold {
            sku: line.sku.clone(),
            reservation_id: req.reservation_id.clone(),
            quantity: line.quantity,
            expires_at,
        });
        take.insert(line.sku.clone(), line.quantity);
        plan.touch(&line.sku);
    }
    for record in &releases {
        drop_holds(&mut plan, record, ReservationStatus::Expired, None);
    }
    // One position item per SKU (a transaction may touch an item once): what is taken net of
    // what is released.
    for sku in plan.skus.clone() {
        let taking = take.get(&sku).copied().unwrap_or(0);
        let net = taking - released.get(&sku).copied().unwrap_or(0);
        plan.write(Write::ShiftPosition {
            sku,
            delta: PositionDelta {
                soft_reserved: net,
                ..Default::default()
            },
            // Taking needs the units to be there once the released ones are back.
            min_available: (taking > 0).then_some(net),
        });
    }
    plan.notifications.push(Notification::reservation_accepted(
        req.reservation_id.as_str(),
        req.channel.as_str(),
        &req.lines,
        expires_at,
    ));
    Ok(Reserve::Decided(
        ReserveAnswer::Held {
            expires_at,
            lines: req.lines.clone(),
            repeat: false,
        },
        plan,
    ))
}

/// Deletes a held reservation's holds and moves it to `to` (released, expired, confirmed); the
/// caller adds the position shifts.
fn drop_holds(
    plan: &mut Plan,
    record: &ReservationRecord,
    to: ReservationStatus,
    order_id: Option<&str>,
) {
    plan.write(Write::SetReservationStatus {
        id: record.id.clone(),
        from: ReservationStatus::Held,
        to,
        order_id: order_id.map(str::to_owned),
    });
    for line in &record.lines {
        plan.write(Write::DeleteHold {
            sku: line.sku.clone(),
            reservation_id: record.id.clone(),
            expires_at: record.expires_at,
        });
        plan.touch(&line.sku);
    }
    if to == ReservationStatus::Expired {
        plan.notifications.push(Notification::reservation_expired(
            record.id.as_str(),
            record.channel.as_str(),
            &record.lines,
        ));
    }
}

/// Gives a held reservation's units back to `available` and moves it to `to`.
fn release_held(plan: &mut Plan, record: &ReservationRecord, to: ReservationStatus) {
    drop_holds(plan, record, to, None);
    for line in &record.lines {
        plan.write(Write::ShiftPosition {
            sku: line.sku.clone(),
            delta: PositionDelta {
                soft_reserved: -line.quantity,
                ..Default::default()
            },
            min_available: None,
        });
    }
}

/// What a confirmation does when the reservation lapsed and its units were taken meanwhile.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnLapse {
    /// The HTTP API: refuse (`reservation_expired`), change nothing; the checkout can stop.
    Reject,
    /// The event: the checkout already completed, so it is a fact; record it and report the oversell.
    RecordOversell,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ConfirmAnswer {
    Confirmed,
    NotFound,
    Lapsed { shortfalls: Vec<Shortfall> },
    OtherOrder { order_id: String },
}

/// Whether confirming a reservation in this state needs the positions of its SKUs read.
pub fn confirm_reads_positions(record: &ReservationRecord) -> bool {
    matches!(
        confirm_path(record.status),
        ConfirmPath::Retake | ConfirmPath::WasReleased
    )
}

/// Whether confirming needs to know if `order_id` is already recorded under another event.
pub fn confirm_reads_order(record: &ReservationRecord) -> bool {
    confirm_path(record.status) != ConfirmPath::AlreadyConfirmed
}

/// Confirms a reservation into the order `order_id`: held units harden; a lapsed reservation
/// takes its units again, or per `on_lapse` is refused or recorded as an oversell.
/// `order_recorded`: the order id is already stored (read when [`confirm_reads_order`]);
/// `positions`: read when [`confirm_reads_positions`].
pub fn plan_confirmation(
    record: Option<&ReservationRecord>,
    order_id: &EntityId,
    order_recorded: bool,
    positions: &HashMap<Sku, Position>,
    on_lapse: OnLapse,
    now: Millis,
) -> Result<(ConfirmAnswer, Plan), Conflict> {
    let Some(record) = record else {
        return Ok((ConfirmAnswer::NotFound, Plan::new("not_found")));
    };
    let path = confirm_path(record.status);
    if path != ConfirmPath::AlreadyConfirmed && order_recorded {
        return Err(Conflict {
            code: "order_id_in_use",
            message: format!(
                "order {order_id} is already recorded; it cannot confirm reservation {}",
                record.id
            ),
        });
    }
    let mut plan = Plan::new("applied");
    match path {
        ConfirmPath::AlreadyConfirmed => {
            return Ok(match &record.order_id {
                Some(o) if o == order_id.as_str() => {
                    (ConfirmAnswer::Confirmed, Plan::new("already_confirmed"))
                }
                other => (
                    ConfirmAnswer::OtherOrder {
                        order_id: other.clone().unwrap_or_default(),
                    },
                    Plan::new("other_order"),
                ),
            });
        }
        ConfirmPath::HardenHeld => {
            drop_holds(
                &mut plan,
                record,
                ReservationStatus::Confirmed,
                Some(order_id.as_str()),
            );
            for line in &record.lines {
                plan.write(Write::ShiftPosition {
                    sku: line.sku.clone(),
                    delta: PositionDelta {
                        hard_reserved: line.quantity,
                        soft_reserved: -line.quantity,
                        ..Default::default()
                    },
                    min_available: None,
                });
            }
        }
        ConfirmPath::Retake | ConfirmPath::WasReleased => {
            let avail: Vec<i64> = record
                .lines
                .iter()
                .map(|l| available(positions, &l.sku))
                .collect();
            match (decide_reservation(&record.lines, &avail), on_lapse) {
                (Ok(()), _) => {
                    for line in &record.lines {
                        plan.write(Write::ShiftPosition {
                            sku: line.sku.clone(),
                            delta: PositionDelta {
                                hard_reserved: line.quantity,
                                ..Default::default()
                            },
                            min_available: Some(line.quantity),
                        });
                        plan.touch(&line.sku);
                    }
                }
                (Err(shortfalls), OnLapse::Reject) => {
                    return Ok((
                        ConfirmAnswer::Lapsed { shortfalls },
                        Plan::new("reservation_expired"),
                    ));
                }
                (Err(_), OnLapse::RecordOversell) => allocate_hard_even_if_short(
                    &mut plan,
                    positions,
                    &record.lines,
                    order_id.as_str(),
                    &record.channel,
                    now,
                ),
            }
            plan.write(Write::SetReservationStatus {
                id: record.id.clone(),
                from: record.status,
                to: ReservationStatus::Confirmed,
                order_id: Some(order_id.to_string()),
            });
        }
    }
    // A confirmed checkout is a sale on its channel: it feeds the other channels' buffers.
    for line in &record.lines {
        plan.write(Write::RecordSale {
            sku: line.sku.clone(),
            channel: record.channel.clone(),
            units: line.quantity,
            at: now,
        });
    }
    plan.write(Write::WriteOrder {
        id: order_id.clone(),
        channel: record.channel.clone(),
        lines: record.lines.iter().map(OrderLine::new).collect(),
        read_revision: None,
        recording: false,
    });
    Ok((ConfirmAnswer::Confirmed, plan))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseAnswer {
    Released,
    NotFound,
    AlreadyConfirmed,
}

/// The checkout gave up: a held reservation's units go back to `available`.
pub fn plan_release(record: Option<&ReservationRecord>) -> (ReleaseAnswer, Plan) {
    let Some(record) = record else {
        return (ReleaseAnswer::NotFound, Plan::new("not_found"));
    };
    match record.status {
        ReservationStatus::Held => {
            let mut plan = Plan::new("applied");
            release_held(&mut plan, record, ReservationStatus::Released);
            (ReleaseAnswer::Released, plan)
        }
        ReservationStatus::Released | ReservationStatus::Expired => {
            (ReleaseAnswer::Released, Plan::new("already_released"))
        }
        ReservationStatus::Confirmed => (
            ReleaseAnswer::AlreadyConfirmed,
            Plan::new("already_confirmed"),
        ),
    }
}

/// A lapsed reservation becomes `expired` and gives its units back, if it is still held and its
/// expiry has passed; otherwise nothing (`false`).
pub fn plan_expiry(record: Option<&ReservationRecord>, now: Millis) -> (bool, Plan) {
    match record {
        Some(r) if r.status == ReservationStatus::Held && r.expires_at <= now => {
            let mut plan = Plan::new("expired");
            release_held(&mut plan, r, ReservationStatus::Expired);
            (true, plan)
        }
        _ => (false, Plan::new("not_lapsed")),
    }
}

#[cfg(test)]
#[path = "reservation_plan_tests.rs"]
mod tests;
