//! What applying one command does: a transaction, the events it announces and the SKUs whose
//! positions changed. Shared by the event path and the HTTP API.

use std::collections::BTreeMap;
use std::time::Duration;

use stockguard_adapters::StateTx;
use stockguard_domain::outbound::{Cause, SOURCE_CORE};
use stockguard_domain::{Notification, Position, Sku};

use crate::deps::{Deps, now_ms};
use crate::error::ApplyError;
use crate::metrics::{Metrics, Unit};

pub(crate) struct Effect {
    pub tx: StateTx,
    pub notifications: Vec<Notification>,
    pub skus: Vec<Sku>,
    pub outcome: &'static str,
}

impl Effect {
    pub fn new(deps: &Deps, outcome: &'static str) -> Self {
        Self {
            tx: deps.store.tx(),
            notifications: Vec::new(),
            skus: Vec::new(),
            outcome,
        }
    }

    pub fn touch(&mut self, sku: &Sku) {
        if !self.skus.contains(sku) {
            self.skus.push(sku.clone());
        }
    }
}

/// Attempts at an optimistic change before giving up as contended (the message is then retried).
pub(crate) const MAX_ATTEMPTS: u32 = 40;

/// Jittered exponential back-off between optimistic attempts.
pub(crate) async fn backoff(attempt: u32) {
    let cap = 2u64 << attempt.min(5);
    let ms = 1 + rand::random::<u64>() % cap;
    tokio::time::sleep(Duration::from_millis(ms)).await;
}

pub(crate) fn contended(what: &str) -> ApplyError {
    ApplyError::Transient(format!(
        "{what}: still contended after {MAX_ATTEMPTS} attempts"
    ))
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
    sales: Vec<(i64, stockguard_domain::Millis)>,
}

impl Written {
    pub fn by(tx: &StateTx) -> Self {
        Self {
            positions: tx.positions_written(),
            write_id: Some(tx.write_id().to_owned()),
            sales: tx.sales().to_vec(),
        }
    }

    pub fn unknown() -> Self {
        Self::stamped(None)
    }

    /// A change known only by its stamp (read from a record it wrote).
    pub fn stamped(write_id: Option<String>) -> Self {
        Self {
            positions: BTreeMap::new(),
            write_id,
            sales: Vec::new(),
        }
    }
}

/// Publishes a change's events and the position of every SKU it touched, each a coherent
/// snapshot with its `version`. A position moved by arithmetic is read after the write; if a later
/// change has written it since, that change announces it (with its own cause), so it is skipped
/// here rather than credited to this one.
pub(crate) async fn publish_outcome(
    deps: &Deps,
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
        deps.store.stamped_positions(&unknown).await?
    };
    let now = now_ms();
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
        deps.publisher
            .publish(SOURCE_CORE, &all)
            .await
            .map_err(|e| ApplyError::Transient(format!("publishing after the write: {e}")))?;
    }
    // After the events, so that channels hear of the change first. The profile is a long-run
    // statistic: one lost increment only skews it slightly.
    if let Err(e) = deps.store.add_to_profile(&written.sales).await {
        tracing::warn!(error = %e, "could not add sales to the hour-of-week profile");
    }
    Ok(())
}

/// Reservation and oversell counts for the timeout-rate and oversell alarms.
fn count_outcomes(cause: &Cause, notifications: &[Notification], skus: &[Sku]) {
    let mut metrics = Metrics::new(&[]);
    for n in notifications {
        let name = match n.detail_type.as_str() {
            "ReservationAccepted" => "ReservationsCreated",
            "ReservationRejected" => "ReservationsRejected",
            "ReservationExpired" => "ReservationsExpired",
            "OversellDetected" => "OversellsDetected",
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
