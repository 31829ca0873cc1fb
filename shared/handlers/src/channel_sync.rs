//! Channel sync: one function per channel, fed by a queue of `InventoryPositionChanged` events.
//! Events only trigger; state is the truth. Each batch is grouped by SKU, the current position
//! is read strongly consistently, the quantity to show is computed with the channel's buffer,
//! and it is pushed only when the channel has not acknowledged that version or a newer one.
//! Many changes of one SKU in a batch are therefore one push, and many SKUs one bulk call.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use serde_json::Value;
use stockguard_adapters::buffer_store::{Probe, SyncSample};
use stockguard_adapters::channel_store::{ChannelSettings, SyncContext, SyncRecord};
use stockguard_channels::{
    AmazonConfig, ChannelClient, ChannelConfig, ChannelKind, EbayConfig, Listing, PushOutcome,
    QuantityUpdate, ShopifyConfig, WalmartConfig,
};
use stockguard_domain::channel::ListingMapping;
use stockguard_domain::outbound::SOURCE_SYNC;
use stockguard_domain::types::parse_timestamp;
use stockguard_domain::wire;
use stockguard_domain::{ChannelName, Millis, Notification, Sku};
use tokio::sync::Mutex;

use crate::batch::receive_count;
use crate::deps::{Deps, now_ms};
use crate::metrics::{Metrics, Unit};

/// Passes of one batch's pushes: the first, and re-pushes of SKUs a concurrent run overtook.
const SYNC_PASSES: usize = 3;

pub struct ChannelSync {
    pub deps: Deps,
    pub channel: ChannelName,
    /// The client built for the settings last seen; rebuilt when the configuration changes.
    client: Mutex<Option<(ChannelSettings, Arc<ChannelClient>)>>,
}

/// What one batch did, for logs and benchmarks.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SyncReport {
    pub records: usize,
    pub pushed: usize,
    pub skipped_already_acknowledged: usize,
    /// Newer versions whose quantity the channel already shows (a confirmation, a shipment):
    /// recorded as acknowledged, nothing pushed.
    pub skipped_unchanged: usize,
    pub unmapped: usize,
    pub failed: usize,
    /// SKUs pushed again because a newer push was recorded while theirs was on its way.
    pub repushed: usize,
    pub throttled: usize,
    /// From each pushed change's cause to the channel's acknowledgement.
    pub latencies_ms: Vec<i64>,
}

struct SkuWork {
    message_ids: Vec<String>,
    max_receive_count: u32,
    /// `occurred_at` of the producer event behind the newest change in the batch.
    cause_occurred_at: Option<Millis>,
    bodies: Vec<String>,
}

impl ChannelSync {
    pub fn new(deps: Deps, channel: ChannelName) -> Self {
        Self {
            deps,
            channel,
            client: Mutex::new(None),
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> (SqsBatchResponse, SyncReport) {
        let mut response = SqsBatchResponse::default();
        let mut report = SyncReport {
            records: event.records.len(),
            ..Default::default()
        };
        let mut work: BTreeMap<Sku, SkuWork> = BTreeMap::new();
        let oldest_sent = event
            .records
            .iter()
            .filter_map(|r| r.attributes.get("SentTimestamp")?.parse::<Millis>().ok())
            .min();
        for record in &event.records {
            match parse_record(record) {
                Ok((sku, occurred_at)) => {
                    let w = work.entry(sku).or_insert_with(|| SkuWork {
                        message_ids: vec![],
                        max_receive_count: 0,
                        cause_occurred_at: None,
                        bodies: vec![],
                    });
                    w.message_ids
                        .push(record.message_id.clone().unwrap_or_default());
                    w.bodies.push(record.body.clone().unwrap_or_default());
                    w.max_receive_count = w.max_receive_count.max(receive_count(record));
                    if occurred_at.is_some() {
                        w.cause_occurred_at = w.cause_occurred_at.max(occurred_at);
                    }
                }
                Err(reason) => {
                    // A record that is not a position change can never be pushed.
                    if !self
                        .dead_letter(
                            record.body.as_deref().unwrap_or_default(),
                            "malformed_event",
                            &reason,
                            1,
                        )
                        .await
                    {
                        response.batch_item_failures.push(failure(record));
                    }
                }
            }
        }
        if work.is_empty() {
            return (response, report);
        }
        let outcome = AssertUnwindSafe(self.sync_skus(&work, &mut report))
            .catch_unwind()
            .await;
        let failed_skus: Vec<FailedPush> = match outcome {
            Ok(Ok(failed)) => failed,
            Ok(Err(e)) => work
                .keys()
                .map(|s| FailedPush::retryable(s, e.clone()))
                .collect(),
            Err(_) => work
                .keys()
                .map(|s| FailedPush::retryable(s, "the sync panicked".to_owned()))
                .collect(),
        };
        report.failed = failed_skus.len();
        self.record_health(&report, oldest_sent).await;
        for FailedPush { sku, failure } in failed_skus {
            let Some(w) = work.get(&sku) else { continue };
            let out_of_retries = w.max_receive_count >= self.deps.settings.retry_budget;
            let retryable = failure.is_retryable();
            let reason = failure.reason();
            if retryable && !out_of_retries {
                let retry_after_ms = failure.retry_after().map(|d| d.as_millis() as u64);
                tracing::warn!(channel = %self.channel, sku = %sku, %reason, ?retry_after_ms, "push failed; will be retried");
                for id in &w.message_ids {
                    response.batch_item_failures.push(failure_id(id));
                }
                continue;
            }
            let failed = Notification::channel_sync_failed(
                self.channel.as_str(),
                &sku,
                reason,
                w.max_receive_count,
            );
            if let Err(e) = self.deps.publisher.publish(SOURCE_SYNC, &[failed]).await {
                tracing::error!(error = %e, "could not publish ChannelSyncFailed");
            }
            let code = if retryable {
                "retries_exhausted"
            } else {
                "channel_rejected"
            };
            for (id, body) in w.message_ids.iter().zip(&w.bodies) {
                if !self
                    .dead_letter(body, code, reason, w.max_receive_count)
                    .await
                {
                    response.batch_item_failures.push(failure_id(id));
                }
            }
        }
        (response, report)
    }

    /// Pushes what each SKU should show. Returns the SKUs that failed.
    ///
    /// Two sync runs of one channel can overtake each other: an older push acknowledged after a
    /// newer one may be what the channel shows now, although the newer one was recorded; and a
    /// version found "unchanged" against an acknowledgement may meet a push recorded meanwhile. A
    /// push whose acknowledgement finds a newer one recorded, and an "unchanged" whose
    /// acknowledgement moved, are therefore followed by a push of the current state (a few passes
    /// at most; reconciliation is the net behind them).
    async fn sync_skus(
        &self,
        work: &BTreeMap<Sku, SkuWork>,
        report: &mut SyncReport,
    ) -> Result<Vec<FailedPush>, String> {
        let mut skus: Vec<Sku> = work.keys().cloned().collect();
        let mut failed = Vec::new();
        for pass in 0..SYNC_PASSES {
            if pass > 0 {
                tracing::info!(channel = %self.channel, skus = ?skus, "a newer push was recorded before this one; pushing the current state again");
                report.repushed += skus.len();
            }
            skus = self
                .push_current(&skus, pass > 0, work, report, &mut failed)
                .await?;
            if skus.is_empty() {
                break;
            }
        }
        if !skus.is_empty() {
            tracing::warn!(channel = %self.channel, skus = ?skus, "still overtaken after {SYNC_PASSES} passes; reconciliation will repair what the channel shows");
        }
        Ok(failed)
    }

    /// One pass: pushes what `skus` should show now (with `force`, even what looks acknowledged),
    /// adding failures to `failed`. Returns the SKUs whose push may have landed after a newer one.
    async fn push_current(
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

    /// Adds what this batch measured to the channel's sync health (delay, failures, queue wait).
    /// A lost sample only thins the statistics, so a failure here is logged, not retried.
    async fn record_health(&self, report: &SyncReport, oldest_sent: Option<Millis>) {
        let now = now_ms();
        let sample = SyncSample {
            pushes: report.pushed as u64,
            failures: report.failed as u64,
            throttled: report.throttled as u64,
            acknowledged_ms: report.latencies_ms.clone(),
            oldest_wait_ms: oldest_sent.map(|sent| (now - sent).max(0)),
        };
        if sample.pushes + sample.failures == 0 {
            return;
        }
        if let Err(e) = self
            .deps
            .store
            .record_sync_sample(&self.channel, &sample, now)
            .await
        {
            tracing::warn!(channel = %self.channel, error = %e, "could not record sync health");
        }
    }

    pub(crate) async fn client_for(
        &self,
        settings: &ChannelSettings,
    ) -> Result<Arc<ChannelClient>, String> {
        let mut cached = self.client.lock().await;
        if let Some((s, c)) = cached.as_ref()
            && s == settings
        {
            return Ok(c.clone());
        }
        let secret = self
            .deps
            .clients
            .secrets
            .get_secret_value()
            .secret_id(&settings.credentials)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading secret {}: {}",
                    settings.credentials,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
        let creds: Value = serde_json::from_str(secret.secret_string().unwrap_or("{}"))
            .map_err(|e| format!("secret {} is not JSON: {e}", settings.credentials))?;
        // Missing credentials or ids are an error: a call with empty ones would only be refused.
        let field = |name: &str| {
            creds[name]
                .as_str()
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
                .ok_or_else(|| {
                    format!(
                        "secret {} has no `{name}`, which a {} channel needs",
                        settings.credentials, settings.kind
                    )
                })
        };
        let setting = |value: &Option<String>, option: &str| {
            value.clone().filter(|v| !v.is_empty()).ok_or_else(|| {
                format!(
                    "channel {} has no {option}: set it with `stockguard channels set {} --{option} ...`",
                    settings.name, settings.name
                )
            })
        };
        let config: ChannelConfig = match settings.kind {
            ChannelKind::Shopify => {
                ShopifyConfig::new(&settings.endpoint, field("access_token")?).into()
            }
            ChannelKind::Amazon => AmazonConfig::new(
                &settings.endpoint,
                field("access_token")?,
                setting(&settings.seller_id, "seller-id")?,
                setting(&settings.marketplace_id, "marketplace-id")?,
            )
            .into(),
            ChannelKind::Walmart => WalmartConfig::new(
                &settings.endpoint,
                field("client_id")?,
                field("client_secret")?,
            )
            .into(),
            ChannelKind::Ebay => EbayConfig::new(&settings.endpoint, field("access_token")?).into(),
        };
        let client = Arc::new(ChannelClient::new(config).map_err(|e| e.to_string())?);
        *cached = Some((settings.clone(), client.clone()));
        Ok(client)
    }

    async fn dead_letter(&self, body: &str, code: &str, reason: &str, receive_count: u32) -> bool {
        match &self.deps.dead_letters {
            Some(dlq) => dlq.send(body, code, reason, receive_count).await.is_ok(),
            None => false,
        }
    }
}

/// The channel's item for a listing, shaped by the channel's kind (not its name: a channel named
/// `amazon-eu` is an Amazon channel).
pub fn to_channel_listing(kind: ChannelKind, l: &ListingMapping) -> Listing {
    let or_empty = |v: &Option<String>| v.clone().unwrap_or_default();
    match kind {
        ChannelKind::Shopify => Listing::Shopify {
            inventory_item_id: l.listing_id.clone(),
            location_id: or_empty(&l.location_id),
        },
        ChannelKind::Amazon => Listing::Amazon {
            seller_sku: l.listing_id.clone(),
            product_type: or_empty(&l.product_type),
        },
        ChannelKind::Ebay => Listing::Ebay {
            sku: l.listing_id.clone(),
            offer_id: or_empty(&l.offer_id),
        },
        ChannelKind::Walmart => Listing::Walmart {
            sku: l.listing_id.clone(),
        },
    }
}

/// The SKU of a position change (or of a buffer change) and when its producer event occurred.
/// Its version and numbers are not used: the push is computed from the current state.
fn parse_record(record: &SqsMessage) -> Result<(Sku, Option<Millis>), String> {
    let event: EventBridgeEvent<Value> =
        serde_json::from_str(record.body.as_deref().unwrap_or_default())
            .map_err(|e| format!("body is not an EventBridge event: {e}"))?;
    match event.detail_type.as_str() {
        "InventoryPositionChanged" => {
            let change: wire::InventoryPositionChanged = serde_json::from_value(event.detail)
                .map_err(|e| format!("not an InventoryPositionChanged detail: {e}"))?;
            Ok((change.sku, parse_timestamp(&change.cause.occurred_at)))
        }
        // A buffer moved: no producer event behind it, so no latency to measure.
        "ChannelBufferChanged" => {
            let change: wire::ChannelBufferChanged = serde_json::from_value(event.detail)
                .map_err(|e| format!("not a ChannelBufferChanged detail: {e}"))?;
            Ok((change.sku, None))
        }
        other => Err(format!(
            "expected InventoryPositionChanged or ChannelBufferChanged, got {other:?}"
        )),
    }
}

/// A SKU whose push did not go through, and why.
struct FailedPush {
    sku: Sku,
    failure: SyncFailure,
}

impl FailedPush {
    fn retryable(sku: &Sku, reason: String) -> Self {
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

fn failure(record: &SqsMessage) -> BatchItemFailure {
    failure_id(record.message_id.as_deref().unwrap_or_default())
}

fn failure_id(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}
