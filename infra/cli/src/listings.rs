//! `stockguard listings import FILE`: all or nothing. Every row is validated and every channel
//! checked before the first write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use stockguard_adapters::StateStore;
use stockguard_domain::ChannelName;
use stockguard_domain::channel::{ListingMapping, RejectedRow, parse_listings_csv};

use crate::Terminal;
use crate::table::plural;

/// Rows per write, the most one BatchWriteItem takes.
pub const CHUNK: usize = 25;

/// Why a file was refused before anything was stored.
#[derive(Debug, thiserror::Error)]
pub enum ImportRefused {
    #[error("{file}: {} rejected; nothing was stored", plural(rows.len(), "row"))]
    Rejected {
        file: String,
        rows: Vec<RejectedRow>,
    },
    #[error(
        "{file} maps SKUs to channels that are not configured: {}; nothing was stored. \
         Add them first with `stockguard channels set NAME --kind KIND --endpoint URL`",
        missing.iter().map(|(c, n)| format!("{c} ({})", plural(*n, "row"))).collect::<Vec<_>>().join(", ")
    )]
    UnconfiguredChannels {
        file: String,
        /// Each missing channel with how many rows name it.
        missing: Vec<(ChannelName, usize)>,
    },
}

/// Imports a listings CSV. A refused file prints each rejected row as `line N: reason` and
/// returns [`ImportRefused`]; otherwise the rows are stored and a per-channel summary printed.
pub async fn import(
    store: &StateStore,
    file: &Path,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let name = file.display().to_string();
    let text = std::fs::read_to_string(file).with_context(|| format!("reading {name}"))?;
    let rows = match parse_listings_csv(&text) {
        Ok(rows) => rows,
        Err(rejected) => {
            for r in &rejected {
                writeln!(out, "line {}: {}", r.line, r.reason)?;
            }
            return Err(ImportRefused::Rejected {
                file: name,
                rows: rejected,
            }
            .into());
        }
    };
    if rows.is_empty() {
        writeln!(
            out,
            "{name} has no rows after its header; nothing to store."
        )?;
        return Ok(());
    }

    let mut per_channel: BTreeMap<ChannelName, usize> = BTreeMap::new();
    for r in &rows {
        *per_channel.entry(r.channel.clone()).or_default() += 1;
    }
    let channels = store.channels().await.context("reading channels")?;
    let configured: BTreeSet<&ChannelName> = channels.iter().map(|c| &c.name).collect();
    let missing: Vec<(ChannelName, usize)> = per_channel
        .iter()
        .filter(|(c, _)| !configured.contains(c))
        .map(|(c, n)| (c.clone(), *n))
        .collect();
    if !missing.is_empty() {
        return Err(ImportRefused::UnconfiguredChannels {
            file: name,
            missing,
        }
        .into());
    }

    store_rows(store, &rows, terminal).await?;

    writeln!(out, "Stored {} from {name}:", plural(rows.len(), "listing"))?;
    for (channel, n) in &per_channel {
        let disabled = channels.iter().any(|c| &c.name == channel && !c.enabled);
        let note = if disabled { "  (channel disabled)" } else { "" };
        writeln!(out, "  {:<10} {n}{note}", channel.as_str())?;
    }
    Ok(())
}

async fn store_rows(store: &StateStore, rows: &[ListingMapping], terminal: Terminal) -> Result<()> {
    let target = if terminal.progress {
        ProgressDrawTarget::stdout()
    } else {
        ProgressDrawTarget::hidden()
    };
    let bar = ProgressBar::with_draw_target(Some(rows.len() as u64), target);
    if let Ok(style) = ProgressStyle::with_template("{bar:40} {pos}/{len} listings ({eta} left)") {
        bar.set_style(style);
    }
    let mut stored = 0;
    for chunk in rows.chunks(CHUNK) {
        let written = store.put_listings(chunk).await;
        if let Err(e) = written {
            bar.abandon();
            return Err(e).with_context(|| {
                format!(
                    "storing listings failed after {stored} of {} were stored; \
                     importing the same file again is safe",
                    rows.len()
                )
            });
        }
        stored += chunk.len();
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    Ok(())
}
