//! A SKU's buffers as things stand, with every factor: `GET /v1/buffers/{sku}` and
//! `stockguard buffers explain`.

use stockguard_domain::buffer::{BufferMode, RiskInputs, explain, signal_factor};
use stockguard_domain::decayed::velocity_at;
use stockguard_domain::inbound::{DEFAULT_TTL_SECONDS, SURGE_TTL_SECONDS};
use stockguard_domain::{Millis, Sku};

use crate::deps::Deps;

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
        let health = health.remove(&s.name);
        let risk = s
            .buffer_channel(health)
            .risk_inputs(&velocity, signal, &profile, now);
        let view = s.buffer_view(overrides.get(sku), input.stored.as_ref(), health.as_ref());
        let applied = view.apply(available);
        channels.insert(
            s.name.to_string(),
            ChannelBufferReport {
                mode: s.buffer_mode,
                buffer: applied.buffer,
                shown: applied.shown,
                risk_target: s.dynamic.risk_target,
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
