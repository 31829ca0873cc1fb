//! The dynamic-buffer recompute (contract section 5). On its schedule it assesses each channel's
//! delay and sync health from the samples the sync functions record (reading Amazon's listings
//! back to measure when a push shows), then recomputes the buffers of the active SKUs that are due:
//! those that sold or got a demand signal since the last run, and, less and less often, those that
//! stopped selling. Quiet SKUs sit at their minimum and are not read. A buffer that moves is stored
//! with a new revision and announced as `ChannelBufferChanged`, which the channel's sync queue
//! turns into a version-gated push. A demand signal recomputes its SKU at once.

use std::collections::HashMap;
use std::time::Instant;

use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::delay::{SyncWindow, assess};
use stockguard_domain::outbound::SOURCE_CORE;
use stockguard_domain::recompute::{
    BufferChannel, BufferInputs, StoredHealth, next_check, plan_buffers,
};
use stockguard_domain::velocity::HourOfWeekProfile;
use stockguard_domain::{ChannelName, Millis, Notification, Sku};
use tokio::sync::Mutex;

use crate::channel_sync::ChannelSync;
use crate::deps::Deps;
use crate::metrics::{Metrics, Unit};

mod explain;
mod read_back;

pub use explain::{ChannelBufferReport, SkuBuffers, buffers_of};
pub use stockguard_domain::recompute::MAX_CHECK_INTERVAL_MS;

/// Delay samples are kept over this sliding window (its p95 is the channel's delay).
pub const DELAY_WINDOW_MS: Millis = 60 * 60 * 1000;
/// Failures, throttling and queue wait count over this shorter window, so that a recovered
/// channel's buffers shrink again within minutes.
pub const HEALTH_WINDOW_MS: Millis = 10 * 60 * 1000;
/// The reconciliation interval when none is configured (`ReconcileEveryMinutes`' default).
pub const DEFAULT_RECONCILE_INTERVAL_MS: Millis = 15 * 60 * 1000;
/// Read-backs a run makes per channel, at most.
pub const PROBES_PER_RUN: usize = 10;
/// SKUs per batch read (7 items each, 100 keys a BatchGetItem).
const SKUS_PER_READ: usize = 14;

/// What one run did, for logs, tests and benchmarks.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct RecomputeReport {
    pub channels_assessed: usize,
    pub health_changed: usize,
    pub probes_shown: usize,
    pub skus_recomputed: usize,
    pub buffers_changed: usize,
    pub deactivated: usize,
    pub errors: Vec<String>,
}

pub struct BufferRecompute {
    pub deps: Deps,
    /// The reconciliation interval: a channel whose sync is down counts as late by this much.
    pub reconcile_interval_ms: Millis,
    /// Channel clients for read-backs, kept across runs of a warm function.
    syncs: Mutex<HashMap<ChannelName, ChannelSync>>,
}

impl BufferRecompute {
    pub fn new(deps: Deps, reconcile_interval_ms: Millis) -> Self {
        Self {
            deps,
            reconcile_interval_ms,
            syncs: Mutex::new(HashMap::new()),
        }
    }

    /// The interval from `STOCKGUARD_RECONCILE_MINUTES` (15 when unset).
    pub fn from_env(deps: Deps, env: crate::functions::Env) -> Result<Self, String> {
        let minutes: i64 = match env("STOCKGUARD_RECONCILE_MINUTES") {
            Some(v) => v
                .parse()
                .map_err(|_| format!("STOCKGUARD_RECONCILE_MINUTES is not a number: {v}"))?,
            None => return Ok(Self::new(deps, DEFAULT_RECONCILE_INTERVAL_MS)),
        };
        Ok(Self::new(deps, minutes * 60_000))
    }

    /// One scheduled run as of `now`: assess every channel, then recompute the active SKUs.
    pub async fn run(&self, now: Millis) -> RecomputeReport {
        let started = Instant::now();
        let mut report = RecomputeReport::default();
        let channels = match self.assess_channels(now, &mut report).await {
            Ok(c) => c,
            Err(e) => {
                report.errors.push(e);
                return report;
            }
        };
        // A channel whose delay or health moved changes the risk of every active SKU: then all of
        // them are recomputed, else only those due.
        let due_by = (report.health_changed == 0).then_some(now);
        match self.deps.store.active_skus(due_by).await {
            Ok(active) => self.recompute(&channels, &active, now, &mut report).await,
            Err(e) => report.errors.push(format!("listing active SKUs: {e}")),
        }
        let mut metrics = Metrics::new(&[]);
        metrics.add(
            "BufferSkusRecomputed",
            Unit::Count,
            report.skus_recomputed as f64,
        );
        metrics.add("BuffersChanged", Unit::Count, report.buffers_changed as f64);
        metrics.add(
            "BufferRecomputeDuration",
            Unit::Milliseconds,
            started.elapsed().as_millis() as f64,
        );
        metrics.flush();
        report
    }

    /// Recomputes `skus` at once with the channels' last assessed health (a demand signal).
    pub async fn recompute_skus(&self, skus: &[Sku], now: Millis) -> RecomputeReport {
        let mut report = RecomputeReport::default();
        match self.deps.store.channels_and_health().await {
            Ok((settings, mut health)) => {
                let channels: Vec<BufferChannel> = settings
                    .into_iter()
                    .filter(|s| s.enabled)
                    .map(|s| s.buffer_channel(health.remove(&s.name)))
                    .collect();
                // Not deactivated here: the scheduled run owns the active list.
                let skus: Vec<(Sku, Option<Millis>)> =
                    skus.iter().map(|s| (s.clone(), None)).collect();
                self.recompute_list(&channels, &skus, now, &mut report)
                    .await;
            }
            Err(e) => report.errors.push(format!("reading channels: {e}")),
        }
        report
    }

    async fn assess_channels(
        &self,
        now: Millis,
        report: &mut RecomputeReport,
    ) -> Result<Vec<BufferChannel>, String> {
        let store = &self.deps.store;
        let (settings, mut stored) = store
            .channels_and_health()
            .await
            .map_err(|e| format!("reading channels: {e}"))?;
        let mut channels = Vec::new();
        for s in settings.into_iter().filter(|s| s.enabled) {
            let previous = stored.remove(&s.name);
            let health = match self.assess_channel(&s, now, report).await {
                Ok(h) => h,
                Err(e) => {
                    report.errors.push(format!("{}: {e}", s.name));
                    channels.push(s.buffer_channel(previous));
                    continue;
                }
            };
            report.channels_assessed += 1;
            if previous.is_none_or(|p| health.differs_materially_from(&p)) {
                store
                    .put_channel_health(&s.name, &health)
                    .await
                    .map_err(|e| format!("storing {}'s health: {e}", s.name))?;
                report.health_changed += 1;
            }
            channels.push(s.buffer_channel(Some(health)));
        }
        Ok(channels)
    }

    async fn assess_channel(
        &self,
        settings: &ChannelSettings,
        now: Millis,
        report: &mut RecomputeReport,
    ) -> Result<StoredHealth, String> {
        let (minutes, probes) = self
            .deps
            .store
            .sync_minutes(&settings.name, now - DELAY_WINDOW_MS)
            .await
            .map_err(|e| e.to_string())?;
        let mut window = SyncWindow::default();
        for (start, m) in &minutes {
            window.acknowledged.merge(&m.acknowledged);
            window.shown.merge(&m.shown);
            if *start >= now - HEALTH_WINDOW_MS {
                window.pushes += m.pushes;
                window.failures += m.failures;
                window.throttled += m.throttled;
                window.queue_wait.merge(&m.queue_wait);
            }
        }
        let shows = settings.kind.shows_on_acknowledge();
        if !shows {
            for delay in self.read_back(settings, probes, now).await {
                window.shown.add(delay);
                report.probes_shown += 1;
            }
        }
        let health = assess(&window, settings.kind.prior_delay_ms(), shows);
        Ok(StoredHealth {
            effective_delay_ms: health.effective_delay_ms(self.reconcile_interval_ms),
            health,
            assessed_at: now,
        })
    }

    async fn recompute(
        &self,
        channels: &[BufferChannel],
        active: &[(Sku, Millis)],
        now: Millis,
        report: &mut RecomputeReport,
    ) {
        let list: Vec<(Sku, Option<Millis>)> =
            active.iter().map(|(s, t)| (s.clone(), Some(*t))).collect();
        self.recompute_list(channels, &list, now, report).await;
    }

    /// Recomputes each SKU's buffers; `touched_at` (when known) lets a quiet SKU leave the list.
    async fn recompute_list(
        &self,
        channels: &[BufferChannel],
        skus: &[(Sku, Option<Millis>)],
        now: Millis,
        report: &mut RecomputeReport,
    ) {
        if skus.is_empty() {
            return;
        }
        let store = &self.deps.store;
        let profile = match store.hour_profile().await {
            Ok(p) => p,
            Err(e) => {
                report
                    .errors
                    .push(format!("reading the hour-of-week profile: {e}"));
                HourOfWeekProfile::default()
            }
        };
        let mut notifications = Vec::new();
        for chunk in skus.chunks(SKUS_PER_READ) {
            let names: Vec<Sku> = chunk.iter().map(|(s, _)| s.clone()).collect();
            let mut inputs = match store.buffer_inputs(&names).await {
                Ok(i) => i,
                Err(e) => {
                    report.errors.push(format!("reading buffer inputs: {e}"));
                    continue;
                }
            };
            for (sku, touched_at) in chunk {
                let Some(input) = inputs.remove(sku) else {
                    continue;
                };
                report.skus_recomputed += 1;
                match self
                    .recompute_sku(channels, sku, &input, &profile, now, &mut notifications)
                    .await
                {
                    Ok(quiet) => {
                        let result = match touched_at {
                            Some(t) if quiet => store.deactivate(sku, *t).await.map(|gone| {
                                report.deactivated += usize::from(gone);
                            }),
                            Some(t) => {
                                let due = next_check(now, *t, &input.signals);
                                store.schedule_check(sku, *t, due).await
                            }
                            None => Ok(()),
                        };
                        if let Err(e) = result {
                            report.errors.push(format!("{sku}: {e}"));
                        }
                    }
                    Err(e) => report.errors.push(format!("{sku}: {e}")),
                }
                let stale: Vec<String> = input
                    .accumulators
                    .iter()
                    .filter(|a| a.horizon.is_stale(a.epoch, now))
                    .map(|a| {
                        stockguard_domain::decayed::Accumulator::attribute(
                            &a.horizon, &a.channel, a.epoch,
                        )
                    })
                    .collect();
                if let Err(e) = store.drop_accumulators(sku, &stale).await {
                    report.errors.push(format!("{sku}: {e}"));
                }
            }
        }
        report.buffers_changed += notifications.len();
        for batch in notifications.chunks(10) {
            if let Err(e) = self.deps.publisher.publish(SOURCE_CORE, batch).await {
                report
                    .errors
                    .push(format!("publishing ChannelBufferChanged: {e}"));
            }
        }
    }

    /// Recomputes one SKU; stores and announces the buffers that moved. Returns whether the SKU is
    /// quiet: its buffers are then the minimum.
    async fn recompute_sku(
        &self,
        channels: &[BufferChannel],
        sku: &Sku,
        input: &BufferInputs,
        profile: &HourOfWeekProfile,
        now: Millis,
        notifications: &mut Vec<Notification>,
    ) -> Result<bool, String> {
        let plan = plan_buffers(channels, sku, input, profile, now);
        if let Some(new) = &plan.store {
            let read = input.stored.as_ref().map(|b| b.revision);
            let stored = self
                .deps
                .store
                .put_buffers(sku, new, read)
                .await
                .map_err(|e| e.to_string())?;
            // Another run stored a newer revision meanwhile: it announced its own changes.
            if stored {
                notifications.extend(plan.announce);
            }
        }
        Ok(plan.quiet)
    }
}
