//! Scheduled reconciliation, the last net: for every enabled channel and mapped SKU, read what
//! the channel shows, compare it with what it should show, report real differences as
//! `DriftDetected` and repair them by pushing; and push positions whose newest version the
//! channel never acknowledged (lost or dead-lettered events). A channel showing fewer units than
//! it should may have sold them in an order not heard of yet: that push waits for a later run
//! ([`stockguard_domain::drift`]). Pages through listings and stops inside its time budget,
//! reporting where the next run resumes.

use std::time::{Duration, Instant};

use stockguard_adapters::channel_store::SyncRecord;
use stockguard_channels::QuantityUpdate;
use stockguard_domain::drift::{self, DriftDecision, PendingDrift};
use stockguard_domain::outbound::SOURCE_OPS;
use stockguard_domain::{ChannelKind, ChannelName, Notification, Sku};

use crate::channel_sync::{ChannelSync, to_channel_listing};
use crate::deps::now_ms;
use crate::metrics::{Metrics, Unit};

/// How long after an acknowledged push a channel may still show the old quantity. Amazon
/// processes listing updates asynchronously (minutes; configurable, since it is not published).
pub fn processing_window(kind: ChannelKind) -> Duration {
    let amazon_ms = std::env::var("STOCKGUARD_AMAZON_PROCESSING_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(300_000);
    match kind {
        ChannelKind::Amazon => Duration::from_millis(amazon_ms),
        ChannelKind::Shopify | ChannelKind::Walmart | ChannelKind::Ebay => Duration::ZERO,
    }
}

/// How late an order on a channel of this kind may reach us, before reconciliation pushes a
/// channel that shows fewer units back up: `STOCKGUARD_ORDER_GRACE_MS` for every kind when set
/// (local runs that compress time), else the kind's own.
pub fn order_grace(kind: ChannelKind) -> Duration {
    let ms = std::env::var("STOCKGUARD_ORDER_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| kind.order_grace_ms().max(0) as u64);
    Duration::from_millis(ms)
}

/// How long after a position change its push counts as in flight rather than missing.
pub fn in_flight_grace() -> Duration {
    let ms = std::env::var("STOCKGUARD_IN_FLIGHT_GRACE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    Duration::from_millis(ms)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriftRow {
    pub channel: String,
    pub sku: String,
    pub expected: i64,
    pub reported: i64,
    pub repaired: bool,
    /// Shows fewer than it should, maybe for an order not heard of yet: not pushed this run.
    pub deferred: bool,
}

#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReconcileReport {
    pub checked: usize,
    pub drift: Vec<DriftRow>,
    /// Newest versions never acknowledged by the channel although it shows the right quantity
    /// (the push's acknowledgement or event was lost): recorded now, nothing pushed.
    pub acknowledged_late: usize,
    /// Skipped because an acknowledged push may still be processing (Amazon).
    pub in_processing_window: usize,
    /// Skipped because the position changed moments ago and its push is still on its way.
    pub in_flight: usize,
    /// Units of drift, summed as absolute values.
    pub drift_units: i64,
    /// Units the channels should show in total, for drift as a share.
    pub expected_units: i64,
    pub errors: Vec<String>,
    /// When the budget ran out: (channel, SKU) the next run resumes after.
    pub resume_after: Option<(String, String)>,
}

impl ReconcileReport {
    /// Drifted listings whose push this run deferred.
    pub fn deferred(&self) -> usize {
        self.drift.iter().filter(|d| d.deferred).count()
    }

    /// Repairs that pushed a channel up from what it showed.
    pub fn repaired_upward(&self) -> usize {
        self.drift
            .iter()
            .filter(|d| d.repaired && d.expected > d.reported)
            .count()
    }
}

impl ChannelSync {
    /// Reconciles this channel, adding to `report`. Returns false when the budget ran out.
    /// `resume_at`: skip listings before this SKU (an earlier run stopped there).
    pub async fn reconcile(
        &self,
        deadline: Instant,
        resume_at: Option<&Sku>,
        report: &mut ReconcileReport,
    ) -> bool {
        let store = &self.deps.store;
        let (settings, health) = match store.channels_and_health().await {
            Ok((channels, mut health)) => {
                match channels.into_iter().find(|c| c.name == self.channel) {
                    Some(s) if s.enabled => (s, health.remove(&self.channel)),
                    _ => return true,
                }
            }
            Err(e) => {
                report.errors.push(format!("{}: {e}", self.channel));
                return true;
            }
        };
        let listings = match store.all_listings(&self.channel).await {
            Ok(l) => l
                .into_iter()
                .filter(|l| resume_at.is_none_or(|r| &l.sku >= r))
                .collect::<Vec<_>>(),
            Err(e) => {
                report
                    .errors
                    .push(format!("{}: listing the mappings: {e}", self.channel));
                return true;
            }
        };
        let client = match self.client_for(&settings).await {
            Ok(c) => c,
            Err(e) => {
                report.errors.push(format!("{}: {e}", self.channel));
                return true;
            }
        };
        let window = processing_window(settings.kind);
        let grace = in_flight_grace().as_millis() as i64;
        let order_grace = order_grace(settings.kind).as_millis() as i64;
        let (drift_before, units_before, expected_before) = (
            report.drift.len(),
            report.drift_units,
            report.expected_units,
        );
        for page in listings.chunks(25) {
            if Instant::now() >= deadline {
                report.resume_after = page
                    .first()
                    .map(|l| (self.channel.to_string(), l.sku.to_string()));
                self.flush_drift_metrics(report, drift_before, units_before, expected_before);
                return false;
            }
            let skus: Vec<Sku> = page.iter().map(|l| l.sku.clone()).collect();
            let ctx = match store.sync_context(&self.channel, &skus).await {
                Ok(c) => c,
                Err(e) => {
                    report.errors.push(format!("{}: {e}", self.channel));
                    continue;
                }
            };
            let now = now_ms();
            let mut repairs = Vec::new();
            let mut notes = Vec::new();
            for listing in page {
                let sku = &listing.sku;
                let position = ctx.positions.get(sku).copied().unwrap_or_default();
                let stored = ctx.dynamic.get(sku);
                let revision = settings.buffer_revision(stored);
                let view = settings.buffer_view(ctx.overrides.get(sku), stored, health.as_ref());
                let expected = view.apply(position.available()).shown;
                report.checked += 1;
                report.expected_units += expected;
                let acked = ctx.acknowledged.get(sku);
                let unacknowledged = acked.is_none_or(|a| !a.covers(position.version, revision));
                if acked.is_some_and(|a| now - a.acknowledged_at < window.as_millis() as i64) {
                    report.in_processing_window += 1;
                    continue;
                }
                if unacknowledged && ctx.changed_at.get(sku).is_some_and(|c| now - c < grace) {
                    report.in_flight += 1;
                    continue;
                }
                let channel_listing = to_channel_listing(settings.kind, listing);
                let reported = match client.read_shown(&channel_listing).await {
                    Ok(q) => q,
                    Err(e) => {
                        report.errors.push(format!(
                            "{} {sku}: reading the shown quantity: {e}",
                            self.channel
                        ));
                        continue;
                    }
                };
                let pending = ctx.pending_drift.get(sku);
                let decision = drift::decide(
                    expected,
                    reported,
                    acked.map(|a| a.quantity),
                    pending,
                    now,
                    order_grace,
                );
                let deferred = match decision {
                    DriftDecision::InSync => {
                        if unacknowledged {
                            // Shows the right number but never acknowledged it: record it,
                            // nothing to push (the record drops any deferred sighting too).
                            self.acknowledge(sku, (position.version, revision), expected, now)
                                .await;
                            report.acknowledged_late += 1;
                        } else if let (Some(a), Some(_)) = (acked, pending) {
                            // The order behind the shortfall arrived (or it was none).
                            self.set_pending(sku, a, None).await;
                        }
                        continue;
                    }
                    DriftDecision::Repair => None,
                    DriftDecision::Defer(p) => Some(p),
                };
                report.drift_units += (reported - expected).abs();
                notes.push(Notification::drift_detected(
                    self.channel.as_str(),
                    sku,
                    expected,
                    reported,
                ));
                report.drift.push(DriftRow {
                    channel: self.channel.to_string(),
                    sku: sku.to_string(),
                    expected,
                    reported,
                    repaired: false,
                    deferred: deferred.is_some(),
                });
                match (deferred, acked) {
                    (Some(p), Some(a)) => {
                        tracing::info!(channel = %self.channel, sku = %sku, expected, reported, seen_at = p.seen_at, "shows fewer than it should: push deferred");
                        if pending != Some(&p) {
                            self.set_pending(sku, a, Some(&p)).await;
                        }
                    }
                    _ => repairs.push((
                        QuantityUpdate::new(sku.as_str(), channel_listing, expected),
                        (position.version, revision),
                        acked.filter(|_| pending.is_some()).copied(),
                    )),
                }
            }
            let updates: Vec<QuantityUpdate> = repairs.iter().map(|(u, ..)| u.clone()).collect();
            if !updates.is_empty() {
                let outcomes = client.push(&updates).await;
                for ((update, version, sighted), outcome) in repairs.iter().zip(outcomes) {
                    if outcome.is_acknowledged() {
                        let Ok(sku) = Sku::parse(&update.sku) else {
                            continue;
                        };
                        self.acknowledge(&sku, *version, update.quantity, now_ms())
                            .await;
                        // An acknowledgement of the same version is not recorded again, and
                        // would leave the sighting behind.
                        if let Some(a) = sighted {
                            self.set_pending(&sku, a, None).await;
                        }
                        if let Some(row) = report
                            .drift
                            .iter_mut()
                            .rev()
                            .find(|r| r.sku == update.sku && r.channel == self.channel.as_str())
                        {
                            row.repaired = true;
                        }
                    } else {
                        report.errors.push(format!(
                            "{} {}: repair push failed: {}",
                            self.channel,
                            update.sku,
                            outcome.reason().unwrap_or_default()
                        ));
                    }
                }
            }
            if let Err(e) = self.deps.publisher.publish(SOURCE_OPS, &notes).await {
                report.errors.push(format!("publishing DriftDetected: {e}"));
            }
        }
        self.flush_drift_metrics(report, drift_before, units_before, expected_before);
        true
    }

    /// This channel's drift: SKUs, units, and units as a share of what it should show in total.
    fn flush_drift_metrics(
        &self,
        report: &ReconcileReport,
        drift_before: usize,
        units_before: i64,
        expected_before: i64,
    ) {
        let units = report.drift_units - units_before;
        let expected = report.expected_units - expected_before;
        let mut metrics = Metrics::new(&[("channel", self.channel.as_str())]);
        metrics.add(
            "DriftSkus",
            Unit::Count,
            (report.drift.len() - drift_before) as f64,
        );
        metrics.add("DriftUnits", Unit::Count, units as f64);
        // Only when there are any: a custom metric costs in each hour it is emitted.
        let deferred = report.drift[drift_before..]
            .iter()
            .filter(|d| d.deferred)
            .count();
        if deferred > 0 {
            metrics.add("DriftRepairsDeferred", Unit::Count, deferred as f64);
        }
        metrics.add(
            "DriftPercent",
            Unit::Percent,
            if expected > 0 {
                100.0 * units as f64 / expected as f64
            } else {
                0.0
            },
        );
        metrics.flush();
    }

    /// Keeps or drops a deferred repair's sighting; a failed condition means a push came in between.
    async fn set_pending(&self, sku: &Sku, acked: &SyncRecord, pending: Option<&PendingDrift>) {
        if let Err(e) = self
            .deps
            .store
            .set_pending_drift(&self.channel, sku, acked, pending)
            .await
        {
            tracing::warn!(channel = %self.channel, sku = %sku, error = %e, "could not record the deferred repair");
        }
    }

    async fn acknowledge(&self, sku: &Sku, version: (u64, i64), quantity: i64, at: i64) {
        let record = SyncRecord {
            version: version.0,
            buffer_revision: version.1,
            quantity,
            acknowledged_at: at,
        };
        if let Err(e) = self
            .deps
            .store
            .record_acknowledged(&self.channel, sku, record)
            .await
        {
            tracing::warn!(channel = %self.channel, sku = %sku, error = %e, "could not record the acknowledgement");
        }
    }
}

/// Reconciles every enabled channel within `budget`, resuming where an interrupted run stopped
/// and saving where this one stops if the budget runs out.
pub async fn reconcile_all(syncs: &[ChannelSync], budget: Duration) -> ReconcileReport {
    let deadline = Instant::now() + budget;
    let mut report = ReconcileReport::default();
    let Some(store) = syncs.first().map(|s| &s.deps.store) else {
        return report;
    };
    let cursor = store.reconcile_cursor().await.unwrap_or_else(|e| {
        report
            .errors
            .push(format!("reading the reconciliation cursor: {e}"));
        None
    });
    let mut finished = true;
    for sync in syncs {
        let resume_at = match &cursor {
            // Channels before the interrupted one were done by the earlier run.
            Some((channel, _)) if sync.channel < *channel => continue,
            Some((channel, sku)) if sync.channel == *channel => Some(sku),
            _ => None,
        };
        if !sync.reconcile(deadline, resume_at, &mut report).await {
            finished = false;
            break;
        }
    }
    let next = if finished {
        None
    } else {
        report.resume_after.clone()
    };
    let saved = match &next {
        Some((channel, sku)) => match (ChannelName::parse(channel), Sku::parse(sku)) {
            (Ok(c), Ok(s)) => store.set_reconcile_cursor(Some((&c, &s))).await,
            _ => Ok(()),
        },
        None => store.set_reconcile_cursor(None).await,
    };
    if let Err(e) = saved {
        report
            .errors
            .push(format!("saving the reconciliation cursor: {e}"));
    }
    report
}

/// One `ChannelSync` per configured channel, for reconciliation.
pub async fn channel_syncs(deps: &crate::Deps) -> Result<Vec<ChannelSync>, String> {
    let channels = deps.store.channels().await.map_err(|e| e.to_string())?;
    Ok(channels
        .into_iter()
        .filter(|c| c.enabled)
        .map(|c| ChannelSync::new(deps.clone(), c.name))
        .collect())
}
