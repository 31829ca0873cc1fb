//! `stockguard position SKU`: the SKU's buckets and, per enabled channel, the quantity it should
//! show against what it last acknowledged.

use std::io::Write;

use anyhow::{Context, Result};
use stockguard_adapters::StateStore;
use stockguard_domain::buffer::BufferMode;
use stockguard_domain::types::format_timestamp;
use stockguard_domain::{Position, Sku};

use crate::table::{buffer_text, write_table};

pub async fn show(store: &StateStore, sku: &Sku, out: &mut impl Write) -> Result<()> {
    let skus = std::slice::from_ref(sku);
    let position: Position = store
        .position(sku)
        .await
        .with_context(|| format!("reading the position of {sku}"))?;
    let available = position.available();

    writeln!(out, "SKU {sku}")?;
    for (label, value) in [
        ("on hand", position.on_hand),
        ("hard reserved", position.hard_reserved),
        ("soft reserved", position.soft_reserved),
        ("available", available),
    ] {
        writeln!(out, "  {label:<14} {value}")?;
    }
    let never = if position.version == 0 {
        "  (no stock event has been applied for this SKU)"
    } else {
        ""
    };
    writeln!(out, "  {:<14} {}{never}", "version", position.version)?;
    writeln!(out)?;

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
    if enabled.is_empty() {
        writeln!(out, "No channel is enabled.")?;
    } else {
        let mut rows: Vec<[String; 6]> = Vec::new();
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
            let shown = applied.shown;
            let buffer_cell = match c.buffer_mode {
                BufferMode::Static => {
                    let mut cell =
                        buffer_text(view.static_policy.units, view.static_policy.percent);
                    if over.is_some() {
                        cell.push_str(" (SKU override)");
                    }
                    cell
                }
                BufferMode::Dynamic if applied.low_stock => {
                    format!("dynamic: {} (low stock)", applied.buffer)
                }
                BufferMode::Dynamic => format!("dynamic: {}", applied.buffer),
            };
            let last = match synced {
                Some(r) => format!(
                    "v{} qty {} at {}",
                    r.version,
                    r.quantity,
                    format_timestamp(r.acknowledged_at)
                ),
                None => "never pushed".into(),
            };
            rows.push([
                name.to_string(),
                shown.to_string(),
                buffer_cell,
                c.maximum.map_or_else(|| "-".into(), |m| m.to_string()),
                listing.map_or_else(|| "none".into(), |l| l.listing_id),
                last,
            ]);
        }
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
    if !disabled.is_empty() {
        let names: Vec<&str> = disabled.iter().map(|c| c.name.as_str()).collect();
        writeln!(out, "Disabled channels (not shown): {}", names.join(", "))?;
    }
    Ok(())
}
