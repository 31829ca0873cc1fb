//! Soft reservations at checkout: reserve all lines or none, confirm into hard, release. Shared by
//! the `Reservation*` event handlers and the synchronous HTTP API.
//!
//! Taking units is the hot path of a flash sale, so it does not conflict on `version`: each
//! position is moved by arithmetic under the condition `available >= quantity`, and expired holds
//! of the same SKU are released inside the same transaction when their units are needed.

use std::collections::HashMap;

use serde_json::json;
use stockguard_adapters::store::ReservationRecord;
use stockguard_adapters::tx::{MAX_TX_ITEMS, PositionDelta};
use stockguard_domain::idempotency::payload_hash;
use stockguard_domain::inbound::SURGE_TTL_SECONDS;
use stockguard_domain::order::OrderLine;
use stockguard_domain::outbound::Cause;
use stockguard_domain::reservation::{
    ConfirmPlan, ReservationStatus, Shortfall, decide_reservation, pick_expired_to_release,
};
use stockguard_domain::{EntityId, Line, Millis, Notification, ReservationRequest, Sku};

use crate::deps::{Deps, now_ms};
use crate::effect::{Effect, MAX_ATTEMPTS, Written, backoff, contended, publish_outcome};
use crate::error::ApplyError;
use crate::orders::allocate_hard_even_if_short;

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

/// Plans a reservation whose transaction leaves `reserved_items` of DynamoDB's 100 to the caller
/// (an idempotency record, sequence items). Expired holds are released inside the same
/// transaction when a line needs their units; those that do not fit are released first, each in
/// its own transaction as the expiry sweeper would, and the reservation is planned again.
pub(crate) async fn plan_reserve(
    deps: &Deps,
    req: &ReservationRequest,
    now: Millis,
    reserved_items: usize,
) -> Result<(ReserveAnswer, Effect), ApplyError> {
    let limit = MAX_TX_ITEMS.saturating_sub(reserved_items);
    // Each round releases at least one lapsed reservation for good, so few rounds are needed.
    for _ in 0..RELEASE_ROUNDS {
        match plan_reserve_within(deps, req, now, limit).await? {
            Planned::Decided(decided) => return Ok(*decided),
            Planned::ReleaseFirst(lapsed) => {
                for id in &lapsed {
                    let cause = Cause {
                        event_id: format!("sweep:expire:{id}"),
                        detail_type: "ReservationExpired".into(),
                        occurred_at: now,
                    };
                    commit_planned(deps, &cause, |at| Box::pin(plan_expire(deps, id, at))).await?;
                }
            }
        }
    }
    Err(ApplyError::Transient(format!(
        "reservation {}: lapsed holds kept needing release after {RELEASE_ROUNDS} rounds",
        req.reservation_id
    )))
}

const RELEASE_ROUNDS: usize = 4;

enum Planned {
    Decided(Box<(ReserveAnswer, Effect)>),
    /// Short only because these lapsed reservations did not fit in the transaction.
    ReleaseFirst(Vec<EntityId>),
}

async fn plan_reserve_within(
    deps: &Deps,
    req: &ReservationRequest,
    now: Millis,
    limit: usize,
) -> Result<Planned, ApplyError> {
    let hash = request_hash(req);
    if let Some(existing) = deps.store.reservation(&req.reservation_id).await? {
        if existing.request_hash != hash {
            return Err(ApplyError::Conflict {
                code: "idempotency_key_reused",
                message: format!(
                    "reservation {} exists with a different request",
                    req.reservation_id
                ),
            });
        }
        let answer = ReserveAnswer::Held {
            expires_at: existing.expires_at,
            lines: existing.lines,
            repeat: true,
        };
        return Ok(Planned::Decided(Box::new((
            answer,
            Effect::new(deps, "repeat"),
        ))));
    }
    let skus: Vec<Sku> = req.lines.iter().map(|l| l.sku.clone()).collect();
    let (positions, surging) = deps.store.positions_and_surges(&skus, now).await?;
    let available: Vec<i64> = req
        .lines
        .iter()
        .map(|l| positions.get(&l.sku).map_or(0, |p| p.available()))
        .collect();

    // Only when a line is short: release expired holds of that SKU, oldest first.
    let mut releases: Vec<ReservationRecord> = Vec::new();
    let mut released: HashMap<Sku, i64> = HashMap::new();
    let mut items = 2 + 2 * req.lines.len();
    let mut did_not_fit: Vec<EntityId> = Vec::new();
    for (line, &avail) in req.lines.iter().zip(&available) {
        let needed = line.quantity - avail - released.get(&line.sku).copied().unwrap_or(0);
        if needed <= 0 {
            continue;
        }
        let holds = deps.store.expired_holds(&line.sku, now, 50).await?;
        for id in pick_expired_to_release(&holds, now, needed) {
            if releases.iter().any(|r| r.id == id) {
                continue;
            }
            let Some(record) = deps.store.reservation(&id).await? else {
                continue;
            };
            if record.status != ReservationStatus::Held {
                continue;
            }
            let cost = 1 + 2 * record.lines.len();
            if items + cost > limit {
                did_not_fit.push(record.id);
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
        .zip(&available)
        .map(|(l, a)| a + released.get(&l.sku).copied().unwrap_or(0))
        .collect();
    if let Err(shortfalls) = decide_reservation(&req.lines, &takeable) {
        if !did_not_fit.is_empty() {
            return Ok(Planned::ReleaseFirst(did_not_fit));
        }
        let mut effect = Effect::new(deps, "insufficient_stock");
        effect
            .notifications
            .push(Notification::reservation_rejected(
                req.reservation_id.as_str(),
                req.channel.as_str(),
                "insufficient_stock",
                &shortfalls,
            ));
        return Ok(Planned::Decided(Box::new((
            ReserveAnswer::Insufficient { shortfalls },
            effect,
        ))));
    }

    let ttl_seconds = if req.ttl_defaulted && !surging.is_empty() {
        req.ttl_seconds.min(SURGE_TTL_SECONDS)
    } else {
        req.ttl_seconds
    };
    let expires_at = now + i64::from(ttl_seconds) * 1000;
    let mut effect = Effect::new(deps, "applied");
    effect.tx.create_reservation(
        &req.reservation_id,
        &req.channel,
        &req.lines,
        expires_at,
        &hash,
        now,
    );
    let mut take: HashMap<Sku, i64> = HashMap::new();
    for line in &req.lines {
        effect
            .tx
            .put_hold(&line.sku, &req.reservation_id, line.quantity, expires_at);
        take.insert(line.sku.clone(), line.quantity);
        effect.touch(&line.sku);
    }
    for record in &releases {
        drop_holds(&mut effect, record, ReservationStatus::Expired, None);
    }
    for sku in effect.skus.clone() {
        let taking = take.get(&sku).copied().unwrap_or(0);
        let net = taking - released.get(&sku).copied().unwrap_or(0);
        let delta = PositionDelta {
            soft_reserved: net,
            ..Default::default()
        };
        // Taking needs the units to be there once the released ones are back.
        effect
            .tx
            .shift_position(&sku, delta, (taking > 0).then_some(net));
    }
    effect
        .notifications
        .push(Notification::reservation_accepted(
            req.reservation_id.as_str(),
            req.channel.as_str(),
            &req.lines,
            expires_at,
        ));
    Ok(Planned::Decided(Box::new((
        ReserveAnswer::Held {
            expires_at,
            lines: req.lines.clone(),
            repeat: false,
        },
        effect,
    ))))
}

/// Deletes a held reservation's holds and moves it to `to` (released, expired); the caller adds
/// the position shifts (merged per SKU: a transaction may touch an item once).
fn drop_holds(
    effect: &mut Effect,
    record: &ReservationRecord,
    to: ReservationStatus,
    order_id: Option<&str>,
) {
    effect
        .tx
        .set_reservation_status(&record.id, ReservationStatus::Held, to, order_id);
    for line in &record.lines {
        effect
            .tx
            .delete_hold(&line.sku, &record.id, record.expires_at);
        effect.touch(&line.sku);
    }
    if to == ReservationStatus::Expired {
        effect.notifications.push(Notification::reservation_expired(
            record.id.as_str(),
            record.channel.as_str(),
            &record.lines,
        ));
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

/// Reads the reservation and plans its confirmation: the decision itself is the domain's
/// `plan_confirm`.
pub(crate) async fn read_and_plan_confirm(
    deps: &Deps,
    reservation_id: &EntityId,
    order_id: &EntityId,
    on_lapse: OnLapse,
    now: Millis,
) -> Result<(ConfirmAnswer, Effect), ApplyError> {
    let Some(record) = deps.store.reservation(reservation_id).await? else {
        return Ok((ConfirmAnswer::NotFound, Effect::new(deps, "not_found")));
    };
    let plan = stockguard_domain::reservation::plan_confirm(record.status);
    if plan != ConfirmPlan::AlreadyConfirmed && deps.store.order(order_id).await?.is_some() {
        return Err(ApplyError::Conflict {
            code: "order_id_in_use",
            message: format!(
                "order {order_id} is already recorded; it cannot confirm reservation {reservation_id}"
            ),
        });
    }
    let order_lines: Vec<OrderLine> = record.lines.iter().map(OrderLine::new).collect();
    let mut effect = Effect::new(deps, "applied");
    match plan {
        ConfirmPlan::AlreadyConfirmed => {
            return Ok(match &record.order_id {
                Some(o) if o == order_id.as_str() => (
                    ConfirmAnswer::Confirmed,
                    Effect::new(deps, "already_confirmed"),
                ),
                other => (
                    ConfirmAnswer::OtherOrder {
                        order_id: other.clone().unwrap_or_default(),
                    },
                    Effect::new(deps, "other_order"),
                ),
            });
        }
        ConfirmPlan::HardenHeld => {
            drop_holds(
                &mut effect,
                &record,
                ReservationStatus::Confirmed,
                Some(order_id.as_str()),
            );
            for line in &record.lines {
                let delta = PositionDelta {
                    hard_reserved: line.quantity,
                    soft_reserved: -line.quantity,
                    ..Default::default()
                };
                effect.tx.shift_position(&line.sku, delta, None);
            }
        }
        ConfirmPlan::Retake | ConfirmPlan::WasReleased => {
            let skus: Vec<Sku> = record.lines.iter().map(|l| l.sku.clone()).collect();
            let positions = deps.store.positions(&skus).await?;
            let available: Vec<i64> = record
                .lines
                .iter()
                .map(|l| positions.get(&l.sku).map_or(0, |p| p.available()))
                .collect();
            match (decide_reservation(&record.lines, &available), on_lapse) {
                (Ok(()), _) => {
                    for line in &record.lines {
                        let delta = PositionDelta {
                            hard_reserved: line.quantity,
                            ..Default::default()
                        };
                        effect
                            .tx
                            .shift_position(&line.sku, delta, Some(line.quantity));
                        effect.touch(&line.sku);
                    }
                }
                (Err(shortfalls), OnLapse::Reject) => {
                    return Ok((
                        ConfirmAnswer::Lapsed { shortfalls },
                        Effect::new(deps, "reservation_expired"),
                    ));
                }
                (Err(_), OnLapse::RecordOversell) => allocate_hard_even_if_short(
                    &mut effect,
                    &positions,
                    &record.lines,
                    order_id.as_str(),
                    &record.channel,
                    now,
                ),
            }
            effect.tx.set_reservation_status(
                &record.id,
                record.status,
                ReservationStatus::Confirmed,
                Some(order_id.as_str()),
            );
        }
    }
    // A confirmed checkout is a sale on its channel: it feeds the other channels' buffers.
    for line in &record.lines {
        effect
            .tx
            .record_sale(&line.sku, &record.channel, line.quantity, now);
    }
    effect
        .tx
        .write_order(order_id, &record.channel, &order_lines, None);
    Ok((ConfirmAnswer::Confirmed, effect))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReleaseAnswer {
    Released,
    NotFound,
    AlreadyConfirmed,
}

pub(crate) async fn plan_release(
    deps: &Deps,
    reservation_id: &EntityId,
) -> Result<(ReleaseAnswer, Effect), ApplyError> {
    let Some(record) = deps.store.reservation(reservation_id).await? else {
        return Ok((ReleaseAnswer::NotFound, Effect::new(deps, "not_found")));
    };
    match record.status {
        ReservationStatus::Held => {
            let mut effect = Effect::new(deps, "applied");
            release_held(&mut effect, &record, ReservationStatus::Released);
            Ok((ReleaseAnswer::Released, effect))
        }
        ReservationStatus::Released | ReservationStatus::Expired => Ok((
            ReleaseAnswer::Released,
            Effect::new(deps, "already_released"),
        )),
        ReservationStatus::Confirmed => Ok((
            ReleaseAnswer::AlreadyConfirmed,
            Effect::new(deps, "already_confirmed"),
        )),
    }
}

/// Gives a held reservation's units back to `available` and moves it to `to`.
fn release_held(effect: &mut Effect, record: &ReservationRecord, to: ReservationStatus) {
    drop_holds(effect, record, to, None);
    for line in &record.lines {
        let delta = PositionDelta {
            soft_reserved: -line.quantity,
            ..Default::default()
        };
        effect.tx.shift_position(&line.sku, delta, None);
    }
}

/// Expires one lapsed reservation, if it is still held and its expiry has passed.
async fn plan_expire(
    deps: &Deps,
    reservation_id: &EntityId,
    now: Millis,
) -> Result<(bool, Effect), ApplyError> {
    match deps.store.reservation(reservation_id).await? {
        Some(record) if record.status == ReservationStatus::Held && record.expires_at <= now => {
            let mut effect = Effect::new(deps, "expired");
            release_held(&mut effect, &record, ReservationStatus::Expired);
            Ok((true, effect))
        }
        _ => Ok((false, Effect::new(deps, "not_lapsed"))),
    }
}

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
    /// Found lapsed in the index but settled meanwhile (confirmed, released, or expired by a
    /// concurrent sweep or checkout).
    pub already_settled: usize,
}

/// The expiry sweeper: releases every held reservation whose expiry passed, publishing
/// `ReservationExpired` and the positions, until none is left or `budget` is spent. Safe to run
/// twice at once and after a crash: each release is conditional on the reservation still being
/// held, so a unit is released once.
pub async fn expire_lapsed(
    deps: &Deps,
    budget: std::time::Duration,
) -> Result<SweepReport, ApplyError> {
    let deadline = std::time::Instant::now() + budget;
    let mut report = SweepReport::default();
    while std::time::Instant::now() < deadline {
        let now = now_ms();
        let lapsed = deps.store.lapsed_reservations(now, 25).await?;
        if lapsed.is_empty() {
            break;
        }
        let before = report;
        for id in &lapsed {
            let cause = Cause {
                event_id: format!("sweep:expire:{id}"),
                detail_type: "ReservationExpired".into(),
                occurred_at: now,
            };
            if commit_planned(deps, &cause, |at| Box::pin(plan_expire(deps, id, at))).await? {
                report.expired += 1;
            } else {
                report.already_settled += 1;
            }
        }
        if report.expired == before.expired {
            // The index lags behind the table; what it still lists is settled. Next sweep.
            break;
        }
    }
    Ok(report)
}

type PlanFuture<'a, A> = std::pin::Pin<
    Box<dyn std::future::Future<Output = Result<(A, Effect), ApplyError>> + Send + 'a>,
>;

/// Runs a plan to completion outside the event path (no idempotency record: the reservation
/// record itself makes these calls repeatable), retrying when a concurrent writer won the race.
async fn commit_planned<'a, A: Clone>(
    deps: &Deps,
    cause: &Cause,
    mut plan: impl FnMut(Millis) -> PlanFuture<'a, A>,
) -> Result<A, ApplyError> {
    for attempt in 0..MAX_ATTEMPTS {
        let (answer, effect) = plan(now_ms()).await?;
        let Effect {
            tx,
            notifications,
            skus,
            ..
        } = effect;
        let written = Written::by(&tx);
        match deps.store.commit(tx).await {
            Ok(()) => {
                publish_outcome(deps, cause, &notifications, &skus, &written).await?;
                return Ok(answer);
            }
            Err(e) if e.is_condition_failed() => backoff(attempt).await,
            Err(e) => return Err(e.into()),
        }
    }
    Err(contended(&cause.detail_type))
}

/// The cause recorded for a change made through the HTTP API.
fn api_cause(operation: &str, reservation_id: &EntityId, detail_type: &str) -> Cause {
    Cause {
        event_id: format!("api:{operation}:{reservation_id}"),
        detail_type: detail_type.to_owned(),
        occurred_at: now_ms(),
    }
}

/// `POST /v1/reservations`.
pub async fn reserve(deps: &Deps, req: &ReservationRequest) -> Result<ReserveAnswer, ApplyError> {
    let cause = api_cause("reserve", &req.reservation_id, "ReservationRequested");
    // The reservation record is this path's idempotency: nothing else joins the transaction.
    let answer = commit_planned(deps, &cause, |now| {
        Box::pin(plan_reserve(deps, req, now, 0))
    })
    .await?;
    if let ReserveAnswer::Held {
        expires_at,
        lines,
        repeat: true,
    } = &answer
    {
        // The first answer may have been lost with its notifications; announcing again is harmless.
        let accepted = Notification::reservation_accepted(
            req.reservation_id.as_str(),
            req.channel.as_str(),
            lines,
            *expires_at,
        );
        let skus: Vec<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
        // Its positions only while no later change has written them (that one announces them).
        let stamp = deps
            .store
            .reservation(&req.reservation_id)
            .await?
            .and_then(|r| r.write_id);
        publish_outcome(deps, &cause, &[accepted], &skus, &Written::stamped(stamp)).await?;
    }
    Ok(answer)
}

/// `POST /v1/reservations/{id}/confirm`.
pub async fn confirm(
    deps: &Deps,
    reservation_id: &EntityId,
    order_id: &EntityId,
) -> Result<ConfirmAnswer, ApplyError> {
    let cause = api_cause("confirm", reservation_id, "ReservationConfirmed");
    commit_planned(deps, &cause, |now| {
        Box::pin(read_and_plan_confirm(
            deps,
            reservation_id,
            order_id,
            OnLapse::Reject,
            now,
        ))
    })
    .await
}

/// `DELETE /v1/reservations/{id}`.
pub async fn release(deps: &Deps, reservation_id: &EntityId) -> Result<ReleaseAnswer, ApplyError> {
    let cause = api_cause("release", reservation_id, "ReservationReleased");
    commit_planned(deps, &cause, |_| {
        Box::pin(plan_release(deps, reservation_id))
    })
    .await
}
