//! The dynamic-buffer recompute (contract section 5). On its schedule it assesses each channel's
//! delay and sync health from the samples the sync functions record (reading Amazon's listings
//! back to measure when a push shows), then recomputes the buffers of the active SKUs that are due:
//! those that sold or got a demand signal since the last run, and, less and less often, those that
//! stopped selling. Quiet SKUs sit at their minimum and are not read. A buffer that moves is stored
//! with a new revision and announced as `ChannelBufferChanged`, which the channel's sync queue
//! turns into a version-gated push. A demand signal recomputes its SKU at once.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use stockguard_adapters::buffer_store::{
    BufferInputs, Probe, StoredBuffers, StoredChannelBuffer, StoredHealth,
};
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::buffer::{
    BufferMode, ChannelBufferView, RiskInputs, StoredSignal, dynamic_buffer, explain, signal_factor,
};
use stockguard_domain::decayed::velocity_at;
use stockguard_domain::delay::{SyncWindow, assess};
use stockguard_domain::inbound::{DEFAULT_TTL_SECONDS, SURGE_TTL_SECONDS};
use stockguard_domain::outbound::SOURCE_CORE;
use stockguard_domain::velocity::HourOfWeekProfile;
use stockguard_domain::{ChannelName, Millis, Notification, Sku};
use tokio::sync::Mutex;

use crate::channel_sync::{ChannelSync, to_channel_listing};
use crate::deps::{Deps, now_ms};
use crate::metrics::{Metrics, Unit};

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

/// A channel as the buffers see it: its settings and its assessed health.
struct Channel {
    settings: ChannelSettings,
    health: Option<StoredHealth>,
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
                let channels: Vec<Channel> = settings
                    .into_iter()
                    .filter(|s| s.enabled)
                    .map(|s| Channel {
                        health: health.remove(&s.name),
                        settings: s,
                    })
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
    ) -> Result<Vec<Channel>, String> {
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
                    channels.push(Channel {
                        settings: s,
                        health: previous,
                    });
                    continue;
                }
            };
            report.channels_assessed += 1;
            if previous.is_none_or(|p| materially_different(&p, &health)) {
                store
                    .put_channel_health(&s.name, &health)
                    .await
                    .map_err(|e| format!("storing {}'s health: {e}", s.name))?;
                report.health_changed += 1;
            }
            channels.push(Channel {
                settings: s,
                health: Some(health),
            });
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

    /// Reads back the oldest open probes: a channel showing a probe's quantity measures its delay
    /// (from the change's cause to now, an upper bound by at most one run's interval). Only a SKU's
    /// newest probe, and only while no newer push of the SKU was acknowledged, can still be shown:
    /// the others are dropped unread, as are probes older than the window.
    async fn read_back(
        &self,
        settings: &ChannelSettings,
        probes: Vec<Probe>,
        now: Millis,
    ) -> Vec<i64> {
        let store = &self.deps.store;
        let mut newest: BTreeMap<Sku, Probe> = BTreeMap::new();
        let mut dropped = Vec::new();
        for probe in probes {
            if now - probe.acknowledged_at > DELAY_WINDOW_MS {
                dropped.push(probe);
            } else if let Some(older) = newest.insert(probe.sku.clone(), probe) {
                // Probes sort by acknowledgement time, so the one replaced is the older.
                dropped.push(older);
            }
        }
        let mut open: Vec<Probe> = newest.into_values().collect();
        open.sort_by_key(|p| p.acknowledged_at);
        open.truncate(PROBES_PER_RUN);
        let skus: Vec<Sku> = open.iter().map(|p| p.sku.clone()).collect();
        let acknowledged = match store.sync_records(&settings.name, &skus).await {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "could not read acknowledgements for read-backs");
                return Vec::new();
            }
        };
        let mut syncs = self.syncs.lock().await;
        let sync = syncs
            .entry(settings.name.clone())
            .or_insert_with(|| ChannelSync::new(self.deps.clone(), settings.name.clone()));
        let mut delays = Vec::new();
        for probe in open {
            if acknowledged
                .get(&probe.sku)
                .is_some_and(|a| a.version > probe.version)
            {
                dropped.push(probe);
                continue;
            }
            let measured = now_ms();
            let shown = match store
                .listings(&settings.name, std::slice::from_ref(&probe.sku))
                .await
            {
                Ok(listings) => match (listings.get(&probe.sku), sync.client_for(settings).await) {
                    (Some(listing), Ok(client)) => client
                        .read_shown(&to_channel_listing(settings.kind, listing))
                        .await
                        .ok(),
                    _ => None,
                },
                Err(_) => None,
            };
            if shown != Some(probe.quantity) {
                continue;
            }
            let delay = (measured - probe.cause_at).max(0);
            if let Err(e) = store.record_shown(&settings.name, delay, measured).await {
                tracing::warn!(error = %e, "could not record a read-back");
            }
            delays.push(delay);
            dropped.push(probe);
        }
        for probe in &dropped {
            if let Err(e) = store.delete_probe(&settings.name, probe).await {
                tracing::warn!(error = %e, "could not delete a read-back probe");
            }
        }
        delays
    }

    async fn recompute(
        &self,
        channels: &[Channel],
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
        channels: &[Channel],
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
    /// quiet (no sales left in its rates, no active signal): its buffers are then the minimum.
    async fn recompute_sku(
        &self,
        channels: &[Channel],
        sku: &Sku,
        input: &BufferInputs,
        profile: &HourOfWeekProfile,
        now: Millis,
        notifications: &mut Vec<Notification>,
    ) -> Result<bool, String> {
        let mut new = StoredBuffers {
            revision: input.stored.as_ref().map_or(0, |b| b.revision) + 1,
            computed_at: now,
            channels: Default::default(),
        };
        let velocity = velocity_at(&input.accumulators, now);
        let signal = signal_factor(&input.signals, now);
        let mut changes = Vec::new();
        for c in channels {
            let risk = risk_inputs(c, &velocity, signal, profile, now);
            let buffer = dynamic_buffer(&risk, &c.settings.dynamic);
            new.channels.insert(
                c.settings.name.to_string(),
                StoredChannelBuffer {
                    buffer,
                    inputs: risk,
                },
            );
            if c.settings.buffer_mode != BufferMode::Dynamic {
                continue;
            }
            let view = |stored: Option<&StoredBuffers>| {
                c.settings.buffer_view(None, stored, c.health.as_ref())
            };
            let available = input.position.available();
            let before = view(input.stored.as_ref()).apply(available).buffer;
            let after_view: ChannelBufferView = view(Some(&new));
            let after = after_view.apply(available).buffer;
            if before != after {
                changes.push(Notification::channel_buffer_changed(
                    c.settings.name.as_str(),
                    sku,
                    after,
                    before,
                    explain(&risk, &after_view, available).as_str(),
                ));
            }
        }
        let moved = input.stored.as_ref().is_none_or(|old| {
            old.channels.len() != new.channels.len()
                || old
                    .channels
                    .iter()
                    .any(|(name, b)| new.channels.get(name).is_none_or(|n| n.buffer != b.buffer))
        });
        if moved {
            let read = input.stored.as_ref().map(|b| b.revision);
            let stored = self
                .deps
                .store
                .put_buffers(sku, &new, read)
                .await
                .map_err(|e| e.to_string())?;
            // Another run stored a newer revision meanwhile: it announced its own changes.
            if stored {
                notifications.extend(changes);
            }
        }
        let quiet = velocity.is_quiet(now) && signal == 1.0;
        Ok(quiet)
    }
}

/// The risk inputs of one channel for a SKU.
fn risk_inputs(
    c: &Channel,
    velocity: &stockguard_domain::velocity::Velocity,
    signal: f64,
    profile: &HourOfWeekProfile,
    now: Millis,
) -> RiskInputs {
    let prior = c.settings.kind.prior_delay_ms();
    let (delay_p95_ms, health_factor, effective_delay_ms) = match &c.health {
        Some(h) => (
            h.health.delay_p95_ms,
            h.health.health_factor,
            h.effective_delay_ms,
        ),
        None => (prior, 1.0, prior.max(0)),
    };
    RiskInputs {
        velocity_elsewhere_per_s: velocity.elsewhere_per_second(c.settings.name.as_str(), now),
        delay_p95_ms,
        health_factor,
        effective_delay_ms,
        time_of_day_factor: profile.factor(now),
        signal_factor: signal,
    }
}

/// Checks of a SKU that stopped selling are spaced out up to this.
pub const MAX_CHECK_INTERVAL_MS: Millis = 6 * 60 * 60 * 1000;

/// When a SKU that has not sold since `touched_at` is next worth recomputing. Its rates only decay
/// from here, so its buffers can only fall, and a later check only holds units back a little
/// longer: the wait is a quarter of its quiet time (at most six hours), and an active signal is
/// checked as it expires. A sale or a signal makes it due at once.
fn next_check(now: Millis, touched_at: Millis, signals: &[StoredSignal]) -> Millis {
    let wait = ((now - touched_at) / 4).clamp(0, MAX_CHECK_INTERVAL_MS);
    signals
        .iter()
        .filter(|s| s.is_active(now))
        .map(StoredSignal::active_until)
        .fold(now + wait, Millis::min)
}

/// Whether a new assessment is worth storing: the delay moved by more than a tenth, or the sync
/// went down or came back.
fn materially_different(old: &StoredHealth, new: &StoredHealth) -> bool {
    let (a, b) = (old.effective_delay_ms as f64, new.effective_delay_ms as f64);
    old.health.down != new.health.down || (a - b).abs() > 0.1 * a.max(b)
}

/// One channel's buffer for a SKU as things stand, with every factor (`GET /v1/buffers/{sku}`,
/// `stockguard buffers explain`).
#[derive(Debug, Clone, PartialEq)]
pub struct ChannelBufferReport {
    pub mode: BufferMode,
    pub buffer: i64,
    pub shown: i64,
    pub risk_target: f64,
    /// The factors as of now (the buffer in force is the last recompute's).
    pub inputs: RiskInputs,
    pub low_stock: bool,
    pub decided_by: stockguard_domain::buffer::Decider,
}

#[derive(Debug, Clone, PartialEq)]
pub struct SkuBuffers {
    pub sku: Sku,
    pub available: i64,
    /// How long a reservation without `ttl_seconds` holds now (shorter during a cart surge).
    pub default_reservation_ttl_seconds: u32,
    pub channels: std::collections::BTreeMap<String, ChannelBufferReport>,
}

impl SkuBuffers {
    /// The contract's JSON (section 5), with `decided_by` besides the factors and the default
    /// reservation hold.
    pub fn to_json(&self) -> serde_json::Value {
        let channels: serde_json::Map<String, serde_json::Value> = self
            .channels
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    serde_json::json!({
                        "mode": c.mode.as_str(),
                        "buffer": c.buffer,
                        "shown": c.shown,
                        "decided_by": c.decided_by.as_str(),
                        "factors": {
                            "velocity_elsewhere_per_min": c.inputs.velocity_elsewhere_per_s * 60.0,
                            "delay_p95_ms": c.inputs.delay_p95_ms,
                            "risk_target": c.risk_target,
                            "health_factor": c.inputs.health_factor,
                            "time_of_day_factor": c.inputs.time_of_day_factor,
                            "signal_factor": c.inputs.signal_factor,
                            "low_stock": c.low_stock,
                        },
                    }),
                )
            })
            .collect();
        serde_json::json!({
            "sku": self.sku,
            "available": self.available,
            "default_reservation_ttl_seconds": self.default_reservation_ttl_seconds,
            "channels": channels,
        })
    }
}

/// Every enabled channel's buffer for `sku` with its factors; `None` for an unknown SKU.
pub async fn buffers_of(deps: &Deps, sku: &Sku, now: Millis) -> Result<Option<SkuBuffers>, String> {
    let store = &deps.store;
    let (settings, mut health) = store
        .channels_and_health()
        .await
        .map_err(|e| e.to_string())?;
    let mut inputs = store
        .buffer_inputs(std::slice::from_ref(sku))
        .await
        .map_err(|e| e.to_string())?;
    let input = inputs.remove(sku).unwrap_or_default();
    if input.position.version == 0 {
        return Ok(None);
    }
    let profile = store.hour_profile().await.map_err(|e| e.to_string())?;
    let velocity = velocity_at(&input.accumulators, now);
    let signal = signal_factor(&input.signals, now);
    let available = input.position.available();
    let mut channels = std::collections::BTreeMap::new();
    for s in settings.into_iter().filter(|s| s.enabled) {
        let overrides = store
            .buffer_overrides(&s.name, std::slice::from_ref(sku))
            .await
            .map_err(|e| e.to_string())?;
        let c = Channel {
            health: health.remove(&s.name),
            settings: s,
        };
        let risk = risk_inputs(&c, &velocity, signal, &profile, now);
        let view =
            c.settings
                .buffer_view(overrides.get(sku), input.stored.as_ref(), c.health.as_ref());
        let applied = view.apply(available);
        channels.insert(
            c.settings.name.to_string(),
            ChannelBufferReport {
                mode: c.settings.buffer_mode,
                buffer: applied.buffer,
                shown: applied.shown,
                risk_target: c.settings.dynamic.risk_target,
                inputs: risk,
                low_stock: applied.low_stock,
                decided_by: explain(&risk, &view, available),
            },
        );
    }
    let surging = input.surge.is_some_and(|s| s.is_active(now));
    Ok(Some(SkuBuffers {
        sku: sku.clone(),
        available,
        default_reservation_ttl_seconds: if surging {
            SURGE_TTL_SECONDS
        } else {
            DEFAULT_TTL_SECONDS
        },
        channels,
    }))
}
