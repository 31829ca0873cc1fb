//! Channel sync: one function per channel, fed by a queue of `InventoryPositionChanged` events.
//! Events only trigger; state is the truth. Each batch is grouped by SKU, the current position
//! is read strongly consistently, the quantity to show is computed with the channel's buffer,
//! and it is pushed only when the channel has not acknowledged that version or a newer one.
//! Many changes of one SKU in a batch are therefore one push, and many SKUs one bulk call.

use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use serde_json::Value;
use stockguard_adapters::buffer_store::SyncSample;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_channels::ChannelClient;
use stockguard_domain::outbound::SOURCE_SYNC;
use stockguard_domain::types::parse_timestamp;
use stockguard_domain::wire;
use stockguard_domain::{ChannelName, Millis, Notification, Sku};
use tokio::sync::Mutex;

use crate::batch::receive_count;
use crate::deps::{Deps, now_ms};

mod client;
mod push;

pub use client::to_channel_listing;
use push::FailedPush;
pub use push::SyncFailure;

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

    async fn dead_letter(&self, body: &str, code: &str, reason: &str, receive_count: u32) -> bool {
        match &self.deps.dead_letters {
            Some(dlq) => dlq.send(body, code, reason, receive_count).await.is_ok(),
            None => false,
        }
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

fn failure(record: &SqsMessage) -> BatchItemFailure {
    failure_id(record.message_id.as_deref().unwrap_or_default())
}

fn failure_id(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}
