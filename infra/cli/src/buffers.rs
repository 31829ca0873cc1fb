//! `stockguard buffers explain SKU`: every enabled channel's buffer for a SKU, the factors it is
//! made of and which one set it (contract section 5). The numbers are `buffers_of`'s, the same as
//! `GET /v1/buffers/{sku}`; this module only reads the channels' settings to say them in words.

use std::collections::HashMap;
use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::Sku;
use stockguard_domain::buffer::{BufferMode, Decider};
use stockguard_domain::types::format_timestamp;
use stockguard_handlers::buffers::{ChannelBufferReport, SkuBuffers, buffers_of};
use stockguard_handlers::deps::now_ms;
use stockguard_handlers::{Deps, Settings};

use crate::Connection;
use crate::table::{buffer_text, decimal, duration_text, factor_text, write_table};

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

pub async fn explain(connection: &Connection, sku: &Sku, out: &mut impl Write) -> Result<()> {
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

    writeln!(out, "SKU {sku}")?;
    writeln!(out, "  {:<10} {}", "available", buffers.available)?;
    writeln!(out, "  {:<10} {}", "as of", format_timestamp(now))?;
    let ttl = buffers.default_reservation_ttl_seconds;
    let why = if ttl < stockguard_domain::inbound::DEFAULT_TTL_SECONDS {
        " (shortened: an add_to_cart_surge is active)"
    } else {
        ""
    };
    writeln!(
        out,
        "  {:<10} reservations without ttl_seconds hold {}{why}",
        "holds",
        duration_text(i64::from(ttl) * 1000)
    )?;
    writeln!(out)?;
    if buffers.channels.is_empty() {
        writeln!(out, "No channel is enabled.")?;
    } else {
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
            &rows(&buffers),
        )?;
        writeln!(out)?;
        writeln!(out, "Why:")?;
        let width = buffers.channels.keys().map(String::len).max().unwrap_or(0);
        for (name, report) in &buffers.channels {
            let reason = match channels.get(name) {
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
            writeln!(out, "  {name:<width$}  {reason}")?;
        }
    }
    let mut disabled: Vec<String> = channels
        .drain()
        .filter(|(_, c)| !c.enabled)
        .map(|(name, _)| name)
        .collect();
    if !disabled.is_empty() {
        disabled.sort();
        writeln!(
            out,
            "Disabled channels (not shown): {}",
            disabled.join(", ")
        )?;
    }
    Ok(())
}

fn rows(buffers: &SkuBuffers) -> Vec<[String; 13]> {
    buffers
        .channels
        .iter()
        .map(|(name, c)| {
            let i = &c.inputs;
            [
                name.clone(),
                c.mode.as_str().into(),
                format!("{}/min", decimal(i.velocity_elsewhere_per_s * 60.0)),
                duration_text(i.delay_p95_ms),
                factor_text(i.health_factor),
                duration_text(i.effective_delay_ms),
                factor_text(i.time_of_day_factor),
                factor_text(i.signal_factor),
                c.risk_target.to_string(),
                if c.low_stock { "yes" } else { "no" }.into(),
                c.buffer.to_string(),
                c.shown.to_string(),
                c.decided_by.as_str().replace('_', " "),
            ]
        })
        .collect()
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
