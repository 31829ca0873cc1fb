//! `stockguard position SKU`: the SKU's buckets and, per enabled channel, the quantity it should
//! show against what it last acknowledged.

use std::io::Write;

use anyhow::{Context, Result};
use serde::Serialize;
use stockguard_adapters::StateStore;
use stockguard_domain::buffer::BufferMode;
use stockguard_domain::types::format_timestamp;
use stockguard_domain::{Position, Sku};

use crate::Terminal;
use crate::report::{Report, emit};
use crate::table::{buffer_text, write_table};

/// `position SKU`: the SKU's buckets and what each enabled channel should show.
#[derive(Debug, Serialize)]
pub struct PositionReport {
    pub sku: String,
    pub on_hand: i64,
    pub hard_reserved: i64,
    pub soft_reserved: i64,
    pub available: i64,
    /// 0: no stock event has been applied for the SKU.
    pub version: u64,
    pub channels: Vec<ChannelPosition>,
    pub disabled_channels: Vec<String>,
}

/// One row of the channel table.
#[derive(Debug, Serialize)]
pub struct ChannelPosition {
    pub channel: String,
    pub should_show: i64,
    pub buffer_mode: String,
    /// Units held back now.
    pub buffer: i64,
    /// Static mode: the policy (the SKU's override, if any); `null` in dynamic mode.
    pub static_buffer_units: Option<i64>,
    pub static_buffer_percent: Option<f64>,
    pub sku_override: bool,
    /// Dynamic mode: the low-stock rule holds everything back.
    pub low_stock: bool,
    pub maximum: Option<i64>,
    pub listing: Option<String>,
    /// `null`: never pushed.
    pub last_acknowledged: Option<Acknowledged>,
}

#[derive(Debug, Serialize)]
pub struct Acknowledged {
    pub version: u64,
    pub quantity: i64,
    pub at: String,
}

impl Report for PositionReport {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "SKU {}", self.sku)?;
        for (label, value) in [
            ("on hand", self.on_hand),
            ("hard reserved", self.hard_reserved),
            ("soft reserved", self.soft_reserved),
            ("available", self.available),
        ] {
            writeln!(out, "  {label:<14} {value}")?;
        }
        let never = if self.version == 0 {
            "  (no stock event has been applied for this SKU)"
        } else {
            ""
        };
        writeln!(out, "  {:<14} {}{never}", "version", self.version)?;
        writeln!(out)?;
        if self.channels.is_empty() {
            writeln!(out, "No channel is enabled.")?;
        } else {
            let rows: Vec<[String; 6]> = self
                .channels
                .iter()
                .map(|c| {
                    let buffer_cell = match (c.static_buffer_units, c.static_buffer_percent) {
                        (Some(units), Some(percent)) => {
                            let mut cell = buffer_text(units, percent);
                            if c.sku_override {
                                cell.push_str(" (SKU override)");
                            }
                            cell
                        }
                        _ if c.low_stock => format!("dynamic: {} (low stock)", c.buffer),
                        _ => format!("dynamic: {}", c.buffer),
                    };
                    let last = match &c.last_acknowledged {
                        Some(a) => format!("v{} qty {} at {}", a.version, a.quantity, a.at),
                        None => "never pushed".into(),
                    };
                    [
                        c.channel.clone(),
                        c.should_show.to_string(),
                        buffer_cell,
                        c.maximum.map_or_else(|| "-".into(), |m| m.to_string()),
                        c.listing.clone().unwrap_or_else(|| "none".into()),
                        last,
                    ]
                })
                .collect();
            write_table(
                out,
                [
                    "CHANNEL",
                    "SHOULD SHOW",
                    "BUFFER",
                    "MAXIMUM",
                    "LISTING",
                    "LAST ACKNOWLEDGED",
                ],
                &rows,
            )?;
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

pub async fn show(
    store: &StateStore,
    sku: &Sku,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let skus = std::slice::from_ref(sku);
    let position: Position = store
        .position(sku)
        .await
        .with_context(|| format!("reading the position of {sku}"))?;
    let available = position.available();

    let (mut channels, health) = store
        .channels_and_health()
        .await
        .context("reading channels")?;
    let stored = store
        .stored_buffers(sku)
        .await
        .with_context(|| format!("reading the dynamic buffers of {sku}"))?;
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    let (enabled, disabled): (Vec<_>, Vec<_>) = channels.into_iter().partition(|c| c.enabled);
    let mut rows = Vec::new();
    for c in &enabled {
        let name = &c.name;
        let over = store
            .buffer_overrides(name, skus)
            .await
            .with_context(|| format!("reading buffer overrides of {name}"))?
            .remove(sku);
        let synced = store
            .sync_records(name, skus)
            .await
            .with_context(|| format!("reading sync records of {name}"))?
            .remove(sku);
        let listing = store
            .listings(name, skus)
            .await
            .with_context(|| format!("reading listings of {name}"))?
            .remove(sku);
        // The rule the sync pushes with: static policy or the recompute's dynamic buffer.
        let view = c.buffer_view(over.as_ref(), stored.as_ref(), health.get(name));
        let applied = view.apply(available);
        let is_static = c.buffer_mode == BufferMode::Static;
        rows.push(ChannelPosition {
            channel: name.to_string(),
            should_show: applied.shown,
            buffer_mode: c.buffer_mode.as_str().into(),
            buffer: applied.buffer,
            static_buffer_units: is_static.then_some(view.static_policy.units),
            static_buffer_percent: is_static.then_some(view.static_policy.percent),
            sku_override: is_static && over.is_some(),
            low_stock: !is_static && applied.low_stock,
            maximum: c.maximum,
            listing: listing.map(|l| l.listing_id),
            last_acknowledged: synced.map(|r| Acknowledged {
                version: r.version,
                quantity: r.quantity,
                at: format_timestamp(r.acknowledged_at),
            }),
        });
    }
    let report = PositionReport {
        sku: sku.to_string(),
        on_hand: position.on_hand,
        hard_reserved: position.hard_reserved,
        soft_reserved: position.soft_reserved,
        available,
        version: position.version,
        channels: rows,
        disabled_channels: disabled.iter().map(|c| c.name.to_string()).collect(),
    };
    emit(out, terminal, &report)
}
