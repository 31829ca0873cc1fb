//! One pass of pushes: what each SKU should show now, pushed unless the channel already has it,
//! with each acknowledgement recorded and each failure typed.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use stockguard_adapters::buffer_store::Probe;
use stockguard_adapters::channel_store::{SyncContext, SyncRecord};
use stockguard_channels::{PushOutcome, QuantityUpdate};
use stockguard_domain::outbound::SOURCE_SYNC;
use stockguard_domain::{Notification, Sku};

use super::{ChannelSync, SkuWork, SyncReport, to_channel_listing};
use crate::deps::now_ms;
use crate::metrics::{Metrics, Unit};

impl ChannelSync {
    /// One pass: pushes what `skus` should show now (with `force`, even what looks acknowledged),
    /// adding failures to `failed`. Returns the SKUs whose push may have landed after a newer one.
    pub(super) async fn push_current(
        &self,
        skus: &[Sku],
        force: bool,
        work: &BTreeMap<Sku, SkuWork>,
        report: &mut SyncReport,
        failed: &mut Vec<FailedPush>,
    ) -> Result<Vec<Sku>, String> {
        let store = &self.deps.store;
        let (channels, mut health) = store
            .channels_and_health()
            .await
            .map_err(|e| e.to_string())?;
        let health = health.remove(&self.channel);
        let Some(settings) = channels.into_iter().find(|c| c.name == self.channel) else {
            tracing::warn!(channel = %self.channel, "channel is not configured; nothing to push");
            return Ok(vec![]);
        };
        if !settings.enabled {
            return Ok(vec![]);
        }
        let SyncContext {
            positions,
            listings,
            acknowledged,
            overrides,
            dynamic,
            ..
        } = store
            .sync_context(&self.channel, skus)
            .await
            .map_err(|e| e.to_string())?;

        let mut updates = Vec::new();
        let mut versions: HashMap<String, (u64, i64)> = HashMap::new();
        // SKUs whose push may have landed after a newer one, or whose "unchanged" was not.
        let mut overtaken = Vec::new();
        for sku in skus {
            let Some(listing) = listings.get(sku) else {
                report.unmapped += 1;
                continue;
            };
            let position = positions.get(sku).copied().unwrap_or_default();
            let stored = dynamic.get(sku);
            let revision = settings.buffer_revision(stored);
            if !force
                && acknowledged
                    .get(sku)
                    .is_some_and(|a| a.covers(position.version, revision))
            {
                report.skipped_already_acknowledged += 1;
                continue;
            }
            let view = settings.buffer_view(overrides.get(sku), stored, health.as_ref());
            let quantity = view.apply(position.available()).shown;
            if let Some(last) = acknowledged
                .get(sku)
                .filter(|a| !force && a.quantity == quantity)
            {
                // Most changes of an order's life (confirm, ship) leave `available` alone: the
                // channel already shows this quantity, so a push would only spend its rate limit.
                let record = SyncRecord {
                    version: position.version,
                    buffer_revision: revision,
                    quantity,
                    acknowledged_at: last.acknowledged_at,
                };
                if store
                    .record_unchanged(&self.channel, sku, record, last)
                    .await
                    .map_err(|e| e.to_string())?
                {
                    report.skipped_unchanged += 1;
                } else {
                    // A push was recorded since the read: what the channel shows may have moved.
                    overtaken.push(sku.clone());
                }
                continue;
            }
            versions.insert(sku.to_string(), (position.version, revision));
            updates.push(QuantityUpdate::new(
                sku.as_str(),
                to_channel_listing(settings.kind, listing),
                quantity,
            ));
        }
        if updates.is_empty() {
            return Ok(overtaken);
        }
        let client = self.client_for(&settings).await?;
        let outcomes = client.push(&updates).await;
        let mut pushed = Vec::new();
        let mut not_recorded = Vec::new();
        let mut metrics = Metrics::new(&[("channel", self.channel.as_str())]);
        let mut probe = None;
        for (update, outcome) in updates.iter().zip(outcomes) {
            let sku = Sku::parse(&update.sku).map_err(|e| e.to_string())?;
            match outcome {
                PushOutcome::Acknowledged { acknowledged_at } => {
                    let at = acknowledged_at
                        .duration_since(std::time::UNIX_EPOCH)
                        .map_or(now_ms(), |d| d.as_millis() as i64);
                    let (version, buffer_revision) = versions[&update.sku];
                    let record = SyncRecord {
                        version,
                        buffer_revision,
                        quantity: update.quantity,
                        acknowledged_at: at,
                    };
                    if !store
                        .record_acknowledged(&self.channel, &sku, record)
                        .await
                        .map_err(|e| e.to_string())?
                    {
                        not_recorded.push((sku.clone(), (version, buffer_revision)));
                    }
                    let latency = work[&sku].cause_occurred_at.map_or(0, |o| (at - o).max(0));
                    pushed.push(Notification::channel_quantity_pushed(
                        self.channel.as_str(),
                        &sku,
                        update.quantity,
                        version,
                        latency,
                    ));
                    report.pushed += 1;
                    if work[&sku].cause_occurred_at.is_some() {
                        report.latencies_ms.push(latency);
                    }
                    if probe.is_none() && !settings.kind.shows_on_acknowledge() {
                        probe = work[&sku].cause_occurred_at.map(|cause_at| Probe {
                            sk: String::new(),
                            sku: sku.clone(),
                            quantity: update.quantity,
                            version,
                            cause_at,
                            acknowledged_at: at,
                        });
                    }
                    metrics.add("PushLatency", Unit::Milliseconds, latency as f64);
                    metrics.add("PushesDelivered", Unit::Count, 1.0);
                }
                PushOutcome::Throttled {
                    reason,
                    retry_after,
                } => {
                    report.throttled += 1;
                    metrics.add("Throttled", Unit::Count, 1.0);
                    metrics.add("PushesFailed", Unit::Count, 1.0);
                    failed.push(FailedPush {
                        sku,
                        failure: SyncFailure::Throttled {
                            reason,
                            retry_after,
                        },
                    });
                }
                PushOutcome::Retryable { reason } => {
                    metrics.add("PushesFailed", Unit::Count, 1.0);
                    failed.push(FailedPush::retryable(&sku, reason));
                }
                PushOutcome::Permanent { reason } => {
                    metrics.add("PushesFailed", Unit::Count, 1.0);
                    failed.push(FailedPush {
                        sku,
                        failure: SyncFailure::Permanent { reason },
                    });
                }
            }
        }
        metrics.flush();
        if let Some(probe) = probe {
            // One push a batch is read back later to measure when the channel showed it.
            if let Err(e) = store.put_probe(&self.channel, &probe).await {
                tracing::warn!(error = %e, "could not store a read-back probe");
            }
        }
        if let Err(e) = self.deps.publisher.publish(SOURCE_SYNC, &pushed).await {
            // The push itself is recorded; a lost notification is only a missing metric.
            tracing::error!(error = %e, "could not publish ChannelQuantityPushed");
        }
        if not_recorded.is_empty() {
            return Ok(overtaken);
        }
        // Not recorded: the same or a newer push was. Only a newer one can have been overwritten.
        let names: Vec<Sku> = not_recorded.iter().map(|(s, _)| s.clone()).collect();
        let records = store
            .sync_records(&self.channel, &names)
            .await
            .map_err(|e| e.to_string())?;
        overtaken.extend(
            not_recorded
                .into_iter()
                .filter(|(sku, ours)| {
                    records
                        .get(sku)
                        .is_some_and(|r| (r.version, r.buffer_revision) > *ours)
                })
                .map(|(sku, _)| sku),
        );
        Ok(overtaken)
    }
}

/// A SKU whose push did not go through, and why.
pub(super) struct FailedPush {
    pub(super) sku: Sku,
    pub(super) failure: SyncFailure,
}

impl FailedPush {
    pub(super) fn retryable(sku: &Sku, reason: String) -> Self {
        Self {
            sku: sku.clone(),
            failure: SyncFailure::Retryable { reason },
        }
    }
}

/// Why a push did not go through, and whether a later delivery may still push it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncFailure {
    /// The channel throttled it; it may go through after `retry_after` (the channel's signal).
    Throttled {
        reason: String,
        retry_after: Option<Duration>,
    },
    /// A timeout, a server error, or our own reads and writes failed: a later delivery may push.
    Retryable { reason: String },
    /// The channel will never take this push as it is: dead-lettered at once.
    Permanent { reason: String },
}

impl SyncFailure {
    pub fn is_retryable(&self) -> bool {
        !matches!(self, SyncFailure::Permanent { .. })
    }

    pub fn reason(&self) -> &str {
        match self {
            SyncFailure::Throttled { reason, .. }
            | SyncFailure::Retryable { reason }
            | SyncFailure::Permanent { reason } => reason,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            SyncFailure::Throttled { retry_after, .. } => *retry_after,
            SyncFailure::Retryable { .. } | SyncFailure::Permanent { .. } => None,
        }
    }
}
