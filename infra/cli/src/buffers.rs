//! `stockguard buffers explain SKU`: every enabled channel's buffer for a SKU, the factors it is
//! made of and which one set it (contract section 5). The numbers are `buffers_of`'s, the same as
//! `GET /v1/buffers/{sku}`; this module only reads the channels' settings to say them in words.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::Sku;
use stockguard_domain::buffer::{BufferMode, Decider};
use stockguard_domain::types::format_timestamp;
use stockguard_handlers::buffers::{ChannelBufferReport, buffers_of};
use stockguard_handlers::deps::now_ms;
use stockguard_handlers::{Deps, Settings};

use crate::report::{Report, emit};
use crate::table::{buffer_text, decimal, duration_text, factor_text, write_table};
use crate::{Connection, Terminal};

pub const EXPLAIN_HELP: &str = "\
Columns, per enabled channel:
  MODE                dynamic (sized from the risk below) or static (units + percent)
  VELOCITY ELSEWHERE  units a minute the SKU sells on every other channel
  DELAY P95           the channel's measured delay from a change to it showing it
  HEALTH              how much an unhealthy sync (failures, throttling, a growing queue) widens
                      that delay; EFFECTIVE DELAY is the result (the reconciliation interval
                      while the sync is down)
  TIME OF DAY         this hour's sales against the week's average
  SIGNAL              the strongest unexpired demand signal (x1: none)
  RISK TARGET         the accepted chance of selling a unit that is gone
  LOW STOCK           yes: stock is at the channel's low-stock level and the channel is slow, so it
                      shows 0
  BUFFER, SHOWN       units held back and the quantity the channel should show
  DECIDED BY          what set the buffer; the lines under the table say it in words
The factors are as of now; a dynamic buffer is the one the last recompute stored (every few
minutes, at once after a demand signal), within the channel's current --min-buffer and
--max-buffer.";

/// `buffers explain SKU`: each enabled channel's buffer, its factors and why.
#[derive(Debug, Serialize)]
pub struct ExplainReport {
    pub sku: String,
    pub available: i64,
    pub as_of: String,
    /// How long a reservation without ttl_seconds holds.
    pub default_reservation_ttl_seconds: u32,
    /// The hold is shortened: an add_to_cart_surge is active.
    pub reservation_ttl_shortened: bool,
    pub channels: Vec<ChannelExplained>,
    pub disabled_channels: Vec<String>,
}

/// One row of the table, with its line under "Why:".
#[derive(Debug, Serialize)]
pub struct ChannelExplained {
    pub channel: String,
    pub mode: String,
    pub velocity_elsewhere_per_min: f64,
    pub delay_p95_ms: i64,
    pub health_factor: f64,
    pub effective_delay_ms: i64,
    pub time_of_day_factor: f64,
    pub signal_factor: f64,
    pub risk_target: f64,
    pub low_stock: bool,
    pub buffer: i64,
    pub shown: i64,
    pub decided_by: String,
    pub why: String,
}

impl Report for ExplainReport {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "SKU {}", self.sku)?;
        writeln!(out, "  {:<10} {}", "available", self.available)?;
        writeln!(out, "  {:<10} {}", "as of", self.as_of)?;
        let why = if self.reservation_ttl_shortened {
            " (shortened: an add_to_cart_surge is active)"
        } else {
            ""
        };
        writeln!(
            out,
            "  {:<10} reservations without ttl_seconds hold {}{why}",
            "holds",
            duration_text(i64::from(self.default_reservation_ttl_seconds) * 1000)
        )?;
        writeln!(out)?;
        if self.channels.is_empty() {
            writeln!(out, "No channel is enabled.")?;
        } else {
            let rows: Vec<[String; 13]> = self
                .channels
                .iter()
                .map(|c| {
                    [
                        c.channel.clone(),
                        c.mode.clone(),
                        format!("{}/min", decimal(c.velocity_elsewhere_per_min)),
                        duration_text(c.delay_p95_ms),
                        factor_text(c.health_factor),
                        duration_text(c.effective_delay_ms),
                        factor_text(c.time_of_day_factor),
                        factor_text(c.signal_factor),
                        c.risk_target.to_string(),
                        if c.low_stock { "yes" } else { "no" }.into(),
                        c.buffer.to_string(),
                        c.shown.to_string(),
                        c.decided_by.replace('_', " "),
                    ]
                })
                .collect();
            write_table(
                out,
                [
                    "CHANNEL",
                    "MODE",
                    "VELOCITY ELSEWHERE",
                    "DELAY P95",
                    "HEALTH",
                    "EFFECTIVE DELAY",
                    "TIME OF DAY",
                    "SIGNAL",
                    "RISK TARGET",
                    "LOW STOCK",
                    "BUFFER",
                    "SHOWN",
                    "DECIDED BY",
                ],
                &rows,
            )?;
            writeln!(out)?;
            writeln!(out, "Why:")?;
            let width = self
                .channels
                .iter()
                .map(|c| c.channel.len())
                .max()
                .unwrap_or(0);
            for c in &self.channels {
                writeln!(out, "  {:<width$}  {}", c.channel, c.why)?;
            }
        }
        if !self.disabled_channels.is_empty() {
            writeln!(
                out,
                "Disabled channels (not shown): {}",
                self.disabled_channels.join(", ")
            )?;
        }
        Ok(())
    }
}

pub async fn explain(
    connection: &Connection,
    sku: &Sku,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    // Only the state store is read; the event bus is never published to here.
    let deps = Deps::new(
        &connection.config,
        &connection.table,
        connection.bus.as_deref().unwrap_or_default(),
        None,
        Settings::default(),
    );
    let now = now_ms();
    let Some(buffers) = buffers_of(&deps, sku, now)
        .await
        .map_err(|e| anyhow!("reading the buffers of {sku}: {e}"))?
    else {
        bail!(
            "SKU {sku} is unknown: no stock event has been applied for it, so no channel \
             holds a buffer of it"
        );
    };
    let mut channels: HashMap<String, ChannelSettings> = connection
        .store
        .channels()
        .await
        .context("reading channels")?
        .into_iter()
        .map(|c| (c.name.to_string(), c))
        .collect();

    let mut explained = Vec::with_capacity(buffers.channels.len());
    for (name, report) in &buffers.channels {
        let why = match channels.get(name) {
            Some(settings) => {
                let static_override = if report.mode == BufferMode::Static {
                    connection
                        .store
                        .buffer_overrides(&settings.name, std::slice::from_ref(sku))
                        .await
                        .with_context(|| format!("reading buffer overrides of {name}"))?
                        .remove(sku)
                } else {
                    None
                };
                let static_text = match static_override {
                    Some(o) => format!(
                        "{} (its override for this SKU)",
                        buffer_text(o.units, o.percent)
                    ),
                    None => buffer_text(settings.buffer.units, settings.buffer.percent),
                };
                in_words(report, settings, &static_text, buffers.available)
            }
            // Removed since: the table still says what decided.
            None => report.decided_by.as_str().replace('_', " "),
        };
        explained.push(row(name, report, why));
    }
    let mut disabled: Vec<String> = channels
        .drain()
        .filter(|(_, c)| !c.enabled)
        .map(|(name, _)| name)
        .collect();
    disabled.sort();
    let ttl = buffers.default_reservation_ttl_seconds;
    let report = ExplainReport {
        sku: sku.to_string(),
        available: buffers.available,
        as_of: format_timestamp(now),
        default_reservation_ttl_seconds: ttl,
        reservation_ttl_shortened: ttl < stockguard_domain::inbound::DEFAULT_TTL_SECONDS,
        channels: explained,
        disabled_channels: disabled,
    };
    emit(out, terminal, &report)
}

fn row(name: &str, c: &ChannelBufferReport, why: String) -> ChannelExplained {
    let i = &c.inputs;
    ChannelExplained {
        channel: name.to_owned(),
        mode: c.mode.as_str().into(),
        velocity_elsewhere_per_min: i.velocity_elsewhere_per_s * 60.0,
        delay_p95_ms: i.delay_p95_ms,
        health_factor: i.health_factor,
        effective_delay_ms: i.effective_delay_ms,
        time_of_day_factor: i.time_of_day_factor,
        signal_factor: i.signal_factor,
        risk_target: c.risk_target,
        low_stock: c.low_stock,
        buffer: c.buffer,
        shown: c.shown,
        decided_by: c.decided_by.as_str().into(),
        why,
    }
}

/// What set a channel's buffer, in words.
fn in_words(
    c: &ChannelBufferReport,
    settings: &ChannelSettings,
    static_text: &str,
    available: i64,
) -> String {
    let i = &c.inputs;
    let d = &settings.dynamic;
    let units = |n: i64| {
        if n == 1 {
            "1 unit".into()
        } else {
            format!("{n} units")
        }
    };
    let why = match c.decided_by {
        Decider::StaticPolicy => format!("static mode, its buffer of {static_text}"),
        Decider::NoDemand => {
            "no sales on other channels and no demand signal, so nothing is at risk".into()
        }
        Decider::VelocityAndDelay => format!(
            "sales on other channels ({}/min) during its delay ({}), at risk target {}",
            decimal(i.velocity_elsewhere_per_s * 60.0),
            duration_text(i.effective_delay_ms),
            c.risk_target
        ),
        Decider::Health => format!(
            "its sync is unhealthy (failures, throttling or a growing queue), widening its delay \
             from {} to {}",
            duration_text(i.delay_p95_ms),
            duration_text(i.effective_delay_ms)
        ),
        Decider::TimeOfDay => format!(
            "the time of day: this hour sells {} the average rate",
            factor_text(i.time_of_day_factor)
        ),
        Decider::Signal => format!(
            "a demand signal: sales elsewhere are expected at {} their rate",
            factor_text(i.signal_factor)
        ),
        Decider::MinBuffer => format!("its minimum buffer (--min-buffer {})", d.min_units),
        Decider::MaxBuffer => format!(
            "its maximum buffer (--max-buffer {}); the risk alone would hold back more",
            d.max_units.map_or_else(|| "-".into(), |m| m.to_string())
        ),
        Decider::Available => format!(
            "the buffer it needs is more than the {} available, so all are held back",
            units(available.max(0))
        ),
        Decider::LowStock => format!(
            "low stock ({available} available, at or below --low-stock-units {}) on a channel \
             slower than {} (its delay is {}), so it shows 0",
            d.low_stock_units,
            duration_text(d.low_stock_max_delay_ms),
            duration_text(i.effective_delay_ms)
        ),
    };
    let mut text = format!("{} held back: {why}", units(c.buffer));
    let uncapped = (available - c.buffer).max(0);
    if let Some(max) = settings.maximum
        && c.shown < uncapped
    {
        text.push_str(&format!("; it shows at most its --maximum, {max}"));
    }
    text
}
