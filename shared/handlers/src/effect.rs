//! The one commit path of inventory changes, shared by inbound events, the reservations API and
//! the expiry sweeper: read, let the domain plan, commit the plan in one transaction; when a
//! condition fails (a concurrent writer won), read and plan again, a bounded number of times;
//! once committed, publish the plan's events and the positions it changed.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use stockguard_adapters::{EventPublisher, InventoryStore, Publish, Stamp, StateStore};
use stockguard_domain::outbound::{Cause, SOURCE_CORE};
use stockguard_domain::plan::Plan;
use stockguard_domain::{Millis, Notification, Position, Sku};

use crate::deps::{Deps, now_ms};
use crate::error::ApplyError;
use crate::metrics::{Metrics, Unit};

/// What inventory changes run on: a store, a bus and a clock. On AWS the state table and
/// EventBridge ([`Deps::inventory`]); in fast tests the in-memory twin and a manual clock.
pub struct Inventory<'a, S, P> {
    pub store: &'a S,
    pub publisher: &'a P,
    pub clock: &'a (dyn Fn() -> Millis + Send + Sync),
}

impl<S, P> Clone for Inventory<'_, S, P> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S, P> Copy for Inventory<'_, S, P> {}

impl<'a, S, P> Inventory<'a, S, P> {
    pub fn new(
        store: &'a S,
        publisher: &'a P,
        clock: &'a (dyn Fn() -> Millis + Send + Sync),
    ) -> Self {
        Self {
            store,
            publisher,
            clock,
        }
    }

    pub fn now(&self) -> Millis {
        (self.clock)()
    }
}

impl Deps {
    /// The inventory changes on the state table and the bus, with the wall clock.
    pub fn inventory(&self) -> Inventory<'_, StateStore, EventPublisher> {
        Inventory::new(&self.store, &self.publisher, &now_ms)
    }
}

/// What one planning attempt decided.
pub(crate) enum Step<A> {
    /// Commit this plan, then answer.
    Commit(A, Plan),
    /// Nothing to commit (a repeat): answer at once.
    Answer(A),
}

pub(crate) type PlanFuture<'a, A> =
    Pin<Box<dyn Future<Output = Result<Step<A>, ApplyError>> + Send + 'a>>;

/// Attempts at an optimistic change before giving up as contended (the message is then retried).
pub(crate) const MAX_ATTEMPTS: u32 = 40;

/// Jittered exponential back-off between optimistic attempts.
async fn backoff(attempt: u32) {
    let cap = 2u64 << attempt.min(5);
    let ms = 1 + rand::random::<u64>() % cap;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

/// What a committed change wrote to positions, so that each version is announced with the
/// cause that produced it.
pub(crate) struct Written {
    /// Positions written whole under their version: exactly these once committed.
    positions: BTreeMap<Sku, Position>,
    /// The change's stamp on every position it wrote; `None` when it is not known (a redelivery
    /// announcing again), and then the current position is announced.
    write_id: Option<String>,
    /// Units the change sold, for the hour-of-week profile of the dynamic buffers.
    sales: Vec<(i64, Millis)>,
}

impl Written {
    fn by(plan: &Plan, stamp: &Stamp) -> Self {
        Self {
            positions: plan.positions_written(),
            write_id: Some(stamp.write_id.clone()),
            sales: plan.sales(),
        }
    }

    /// A change known only by its stamp (read from a record it wrote), or not at all.
    pub fn stamped(write_id: Option<String>) -> Self {
        Self {
            positions: BTreeMap::new(),
            write_id,
            sales: Vec::new(),
        }
    }
}

impl<S: InventoryStore, P: Publish> Inventory<'_, S, P> {
    /// Plans with `plan(now)` and commits, re-planning on a lost race; publishes once committed.
    /// Returns the answer and whether a plan was committed. Any idempotency record is part of
    /// the plan, so it is written in the same transaction as the change.
    pub(crate) async fn commit<'p, A>(
        &self,
        cause: &Cause,
        mut plan: impl FnMut(Millis) -> PlanFuture<'p, A>,
    ) -> Result<(A, bool), ApplyError> {
        for attempt in 0..MAX_ATTEMPTS {
            let now = self.now();
            let (answer, plan) = match plan(now).await? {
                Step::Answer(answer) => return Ok((answer, false)),
                Step::Commit(answer, plan) => (answer, plan),
            };
            let stamp = Stamp::new(now);
            match self.store.commit(&plan.writes, &stamp).await {
                Ok(()) => {
                    let written = Written::by(&plan, &stamp);
                    self.publish_outcome(cause, &plan.notifications, &plan.skus, &written)
                        .await?;
                    return Ok((answer, true));
                }
                Err(e) if e.is_condition_failed() => backoff(attempt).await,
                Err(e) => return Err(e.into()),
            }
        }
        Err(ApplyError::Transient(format!(
            "{}: still contended after {MAX_ATTEMPTS} attempts",
            cause.detail_type
        )))
    }

    /// Publishes a change's events and the position of every SKU it touched, each a coherent
    /// snapshot with its `version`. A position moved by arithmetic is read after the write; if a
    /// later change has written it since, that change announces it (with its own cause), so it
    /// is skipped here rather than credited to this one.
    pub(crate) async fn publish_outcome(
        &self,
        cause: &Cause,
        notifications: &[Notification],
        skus: &[Sku],
        written: &Written,
    ) -> Result<(), ApplyError> {
        count_outcomes(cause, notifications, skus);
        let mut all = notifications.to_vec();
        let unknown: Vec<Sku> = skus
            .iter()
            .filter(|s| !written.positions.contains_key(*s))
            .cloned()
            .collect();
        let read = if unknown.is_empty() {
            Default::default()
        } else {
            self.store.stamped_positions(&unknown).await?
        };
        let now = self.now();
        for sku in skus {
            let position = written.positions.get(sku).or_else(|| {
                read.get(sku)
                    .filter(|(_, stamp)| written.write_id.is_none() || *stamp == written.write_id)
                    .map(|(p, _)| p)
            });
            if let Some(p) = position {
                all.push(Notification::position_changed(sku, p, now, cause));
            }
        }
        if !all.is_empty() {
            self.publisher
                .publish(SOURCE_CORE, &all)
                .await
                .map_err(|e| ApplyError::Transient(format!("publishing after the write: {e}")))?;
        }
        // After the events, so that channels hear of the change first. The profile is a long-run
        // statistic: one lost increment only skews it slightly.
        if let Err(e) = self.store.add_to_profile(&written.sales).await {
            tracing::warn!(error = %e, "could not add sales to the hour-of-week profile");
        }
        Ok(())
    }
}

/// Reservation and oversell counts for the timeout-rate and oversell alarms.
fn count_outcomes(cause: &Cause, notifications: &[Notification], skus: &[Sku]) {
    let mut metrics = Metrics::new(&[]);
    for n in notifications {
        let name = match n.detail_type.as_str() {
            "ReservationAccepted" => "ReservationsCreated",
            "ReservationRejected" => "ReservationsRejected",
            "ReservationExpired" => "ReservationsExpired",
            "OversellDetected" => {
                tracing::warn!(cause = %cause.event_id, detail = %n.detail, "oversell detected");
                "OversellsDetected"
            }
            _ => continue,
        };
        metrics.add(name, Unit::Count, 1.0);
    }
    // A confirmation that changed positions (a repeat changes none).
    if cause.detail_type == "ReservationConfirmed" && !skus.is_empty() {
        metrics.add("ReservationsConfirmed", Unit::Count, 1.0);
    }
    metrics.flush();
}
