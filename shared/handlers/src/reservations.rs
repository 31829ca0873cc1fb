//! Soft reservations at checkout: reserve all lines or none, confirm into hard, release (expiry is
//! `expiry.rs`). Shared by the `Reservation*` event handlers and the synchronous HTTP API. Here are
//! the reads; the decisions are `stockguard_domain::reservation_plan`'s.

use std::collections::{HashMap, HashSet};

use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::outbound::Cause;
use stockguard_domain::plan::{Plan, ReservationRecord};
use stockguard_domain::reservation::SoftHold;
use stockguard_domain::reservation_plan::{
    self as decide, Reserve, ReserveInput, confirm_reads_order, confirm_reads_positions,
    release_candidates, short_skus,
};
use stockguard_domain::{EntityId, Millis, Notification, Position, ReservationRequest, Sku};

pub use crate::expiry::{SweepReport, expire_lapsed};
pub use stockguard_domain::reservation_plan::{
    ConfirmAnswer, OnLapse, ReleaseAnswer, ReserveAnswer, request_hash,
};

use crate::deps::Deps;
use crate::effect::{Inventory, Step, Written};
use crate::error::ApplyError;

/// Rounds of expiring lapsed holds that did not fit in a reservation's transaction. Each round
/// releases at least one lapsed reservation for good, so few are needed.
const RELEASE_ROUNDS: usize = 4;

/// Expired holds read per short SKU.
const EXPIRED_HOLDS_READ: i32 = 50;

/// Reads of a reservation attempt taken again when positions moved while they were taken.
const CONSISTENT_READ_ATTEMPTS: u32 = 4;

struct ReserveReads {
    existing: Option<ReservationRecord>,
    positions: HashMap<Sku, Position>,
    surging: HashSet<Sku>,
    expired_holds: HashMap<Sku, Vec<SoftHold>>,
    lapsed: HashMap<EntityId, ReservationRecord>,
}

/// The cause recorded for a change made through the HTTP API.
fn api_cause(operation: &str, reservation_id: &EntityId, detail_type: &str, now: Millis) -> Cause {
    Cause {
        event_id: format!("api:{operation}:{reservation_id}"),
        detail_type: detail_type.to_owned(),
        occurred_at: now,
    }
}

impl<S: InventoryStore, P: Publish> Inventory<'_, S, P> {
    /// Reads what a reservation needs and plans it, leaving `reserved_items` of the transaction
    /// to the caller. Lapsed holds that do not fit are expired first, each in its own
    /// transaction as the sweeper would, and the reservation is planned again.
    pub(crate) async fn read_and_plan_reserve(
        &self,
        req: &ReservationRequest,
        now: Millis,
        reserved_items: usize,
    ) -> Result<(ReserveAnswer, Plan), ApplyError> {
        for _ in 0..RELEASE_ROUNDS {
            let reads = self.read_for_reserve(req, now).await?;
            let input = ReserveInput {
                request: req,
                existing: reads.existing.as_ref(),
                positions: &reads.positions,
                surging: &reads.surging,
                expired_holds: &reads.expired_holds,
                lapsed: &reads.lapsed,
                now,
                reserved_items,
            };
            match decide::plan_reserve(&input)? {
                Reserve::Decided(ReserveAnswer::Insufficient { .. }, _)
                    if reads.existing.is_none()
                        && self.store.reservation(&req.reservation_id).await?.is_some() =>
                {
                    // A rejection writes nothing, so no condition guards its reading that the id
                    // was free: taken meanwhile (by another cart), it is answered as taken.
                    continue;
                }
                Reserve::Decided(answer, plan) => return Ok((answer, plan)),
                Reserve::ReleaseFirst(ids) => {
                    for id in &ids {
                        self.expire(id, now).await?;
                    }
                }
            }
        }
        Err(ApplyError::Transient(format!(
            "reservation {}: lapsed holds kept needing release after {RELEASE_ROUNDS} rounds",
            req.reservation_id
        )))
    }

    /// What a reservation decides on. Positions are read first (they say which lines are short),
    /// then the expired holds and their records. A rejection writes nothing, so no condition
    /// would catch holds released between the two reads (their units counted neither as held
    /// nor as available): when holds were read, the positions are read again, and the reads are
    /// taken again if they moved meanwhile. Under sustained contention the last reads are used;
    /// a rejection may then be pessimistic, never an oversell (a hold's plan is conditional).
    async fn read_for_reserve(
        &self,
        req: &ReservationRequest,
        now: Millis,
    ) -> Result<ReserveReads, ApplyError> {
        let skus: Vec<Sku> = req.lines.iter().map(|l| l.sku.clone()).collect();
        let mut attempt = 0;
        loop {
            let reads = self.read_for_reserve_once(req, &skus, now).await?;
            attempt += 1;
            if reads.expired_holds.is_empty() || attempt >= CONSISTENT_READ_ATTEMPTS {
                return Ok(reads);
            }
            let again = self.store.positions(&skus).await?;
            let version = |p: &HashMap<Sku, Position>, s: &Sku| p.get(s).map(|p| p.version);
            if skus
                .iter()
                .all(|s| version(&again, s) == version(&reads.positions, s))
            {
                return Ok(reads);
            }
        }
    }

    async fn read_for_reserve_once(
        &self,
        req: &ReservationRequest,
        skus: &[Sku],
        now: Millis,
    ) -> Result<ReserveReads, ApplyError> {
        let existing = self.store.reservation(&req.reservation_id).await?;
        let (positions, surging) = match existing {
            Some(_) => Default::default(),
            None => self.store.positions_and_surges(skus, now).await?,
        };
        let mut expired_holds = HashMap::new();
        let mut short = short_skus(&req.lines, &positions);
        short.dedup();
        for sku in short {
            let holds = self
                .store
                .expired_holds(&sku, now, EXPIRED_HOLDS_READ)
                .await?;
            expired_holds.insert(sku, holds);
        }
        let mut lapsed: HashMap<EntityId, ReservationRecord> = HashMap::new();
        for id in release_candidates(&req.lines, &positions, &expired_holds, now) {
            if let Some(record) = self.store.reservation(&id).await? {
                lapsed.insert(id, record);
            }
        }
        Ok(ReserveReads {
            existing,
            positions,
            surging,
            expired_holds,
            lapsed,
        })
    }

    pub(crate) async fn read_and_plan_confirm(
        &self,
        reservation_id: &EntityId,
        order_id: &EntityId,
        on_lapse: OnLapse,
        now: Millis,
    ) -> Result<(ConfirmAnswer, Plan), ApplyError> {
        let record = self.store.reservation(reservation_id).await?;
        let mut order_recorded = false;
        let mut positions = HashMap::new();
        if let Some(r) = &record {
            if confirm_reads_order(r) {
                order_recorded = self.store.order(order_id).await?.is_some();
            }
            if confirm_reads_positions(r) && !order_recorded {
                let skus: Vec<Sku> = r.lines.iter().map(|l| l.sku.clone()).collect();
                positions = self.store.positions(&skus).await?;
            }
        }
        Ok(decide::plan_confirmation(
            record.as_ref(),
            order_id,
            order_recorded,
            &positions,
            on_lapse,
            now,
        )?)
    }

    pub(crate) async fn read_and_plan_release(
        &self,
        reservation_id: &EntityId,
    ) -> Result<(ReleaseAnswer, Plan), ApplyError> {
        let record = self.store.reservation(reservation_id).await?;
        Ok(decide::plan_release(record.as_ref()))
    }

    /// `POST /v1/reservations`. The reservation record is this path's idempotency: nothing else
    /// joins the transaction.
    pub async fn reserve(&self, req: &ReservationRequest) -> Result<ReserveAnswer, ApplyError> {
        let cause = api_cause(
            "reserve",
            &req.reservation_id,
            "ReservationRequested",
            self.now(),
        );
        let (answer, _) = self
            .commit(&cause, |now| {
                Box::pin(async move {
                    let (answer, plan) = self.read_and_plan_reserve(req, now, 0).await?;
                    Ok(Step::Commit(answer, plan))
                })
            })
            .await?;
        if let ReserveAnswer::Held {
            expires_at,
            lines,
            repeat: true,
        } = &answer
        {
            // The first answer may have been lost with its notifications; announcing again is
            // harmless.
            let accepted = Notification::reservation_accepted(
                req.reservation_id.as_str(),
                req.channel.as_str(),
                lines,
                *expires_at,
            );
            let skus: Vec<Sku> = lines.iter().map(|l| l.sku.clone()).collect();
            // Its positions only while no later change has written them (that one announces them).
            let stamp = self
                .store
                .reservation(&req.reservation_id)
                .await?
                .and_then(|r| r.write_id);
            self.publish_outcome(&cause, &[accepted], &skus, &Written::stamped(stamp))
                .await?;
        }
        Ok(answer)
    }

    /// `POST /v1/reservations/{id}/confirm`.
    pub async fn confirm(
        &self,
        reservation_id: &EntityId,
        order_id: &EntityId,
    ) -> Result<ConfirmAnswer, ApplyError> {
        let cause = api_cause(
            "confirm",
            reservation_id,
            "ReservationConfirmed",
            self.now(),
        );
        let (answer, _) = self
            .commit(&cause, |now| {
                Box::pin(async move {
                    let (answer, plan) = self
                        .read_and_plan_confirm(reservation_id, order_id, OnLapse::Reject, now)
                        .await?;
                    Ok(Step::Commit(answer, plan))
                })
            })
            .await?;
        Ok(answer)
    }

    /// `DELETE /v1/reservations/{id}`.
    pub async fn release(&self, reservation_id: &EntityId) -> Result<ReleaseAnswer, ApplyError> {
        let cause = api_cause("release", reservation_id, "ReservationReleased", self.now());
        let (answer, _) = self
            .commit(&cause, |_| {
                Box::pin(async move {
                    let (answer, plan) = self.read_and_plan_release(reservation_id).await?;
                    Ok(Step::Commit(answer, plan))
                })
            })
            .await?;
        Ok(answer)
    }
}

/// `POST /v1/reservations` on the state table.
pub async fn reserve(deps: &Deps, req: &ReservationRequest) -> Result<ReserveAnswer, ApplyError> {
    deps.inventory().reserve(req).await
}

/// `POST /v1/reservations/{id}/confirm` on the state table.
pub async fn confirm(
    deps: &Deps,
    reservation_id: &EntityId,
    order_id: &EntityId,
) -> Result<ConfirmAnswer, ApplyError> {
    deps.inventory().confirm(reservation_id, order_id).await
}

/// `DELETE /v1/reservations/{id}` on the state table.
pub async fn release(deps: &Deps, reservation_id: &EntityId) -> Result<ReleaseAnswer, ApplyError> {
    deps.inventory().release(reservation_id).await
}
