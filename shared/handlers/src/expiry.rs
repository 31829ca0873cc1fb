//! The expiry sweeper: every held reservation whose expiry passed gives its units back.

use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::outbound::Cause;
use stockguard_domain::reservation_plan as decide;
use stockguard_domain::{EntityId, Millis};

use crate::deps::Deps;
use crate::effect::{Inventory, Step};
use crate::error::ApplyError;

/// What one sweep did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: usize,
    /// Found lapsed in the index but settled meanwhile (confirmed, released, or expired by a
    /// concurrent sweep or checkout).
    pub already_settled: usize,
}

impl<S: InventoryStore, P: Publish> Inventory<'_, S, P> {
    /// Expires one lapsed reservation if it is still held; `true` if this call expired it.
    pub(crate) async fn expire(&self, id: &EntityId, now: Millis) -> Result<bool, ApplyError> {
        let cause = Cause {
            event_id: format!("sweep:expire:{id}"),
            detail_type: "ReservationExpired".into(),
            occurred_at: now,
        };
        let (expired, _) = self
            .commit(&cause, |at| {
                Box::pin(async move {
                    let record = self.store.reservation(id).await?;
                    let (expired, plan) = decide::plan_expiry(record.as_ref(), at);
                    Ok(Step::Commit(expired, plan))
                })
            })
            .await?;
        Ok(expired)
    }

    /// The expiry sweeper: releases every held reservation whose expiry passed, publishing
    /// `ReservationExpired` and the positions, until none is left or `budget` is spent. Safe to
    /// run twice at once and after a crash: each release is conditional on the reservation still
    /// being held, so a unit is released once.
    pub async fn expire_lapsed(
        &self,
        budget: std::time::Duration,
    ) -> Result<SweepReport, ApplyError> {
        let deadline = std::time::Instant::now() + budget;
        let mut report = SweepReport::default();
        while std::time::Instant::now() < deadline {
            let now = self.now();
            let lapsed = self.store.lapsed_reservations(now, 25).await?;
            if lapsed.is_empty() {
                break;
            }
            let before = report;
            for id in &lapsed {
                if self.expire(id, now).await? {
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
}

/// The expiry sweeper on the state table.
pub async fn expire_lapsed(
    deps: &Deps,
    budget: std::time::Duration,
) -> Result<SweepReport, ApplyError> {
    deps.inventory().expire_lapsed(budget).await
}
