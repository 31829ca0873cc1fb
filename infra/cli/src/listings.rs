//! `stockguard listings import FILE`: all or nothing. Every row is validated and every channel
//! checked before the first write.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;

use anyhow::{Context, Result};
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use stockguard_adapters::StateStore;
use stockguard_domain::ChannelName;
use stockguard_domain::channel::{ListingMapping, RejectedRow, parse_listings_csv};

use crate::Terminal;
use crate::report::{Report, emit};
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

/// `listings import FILE`: how many listings were stored per channel, or the rows that refused
/// the file.
#[derive(Debug, Serialize)]
pub struct ImportReport {
    pub file: String,
    pub stored: usize,
    pub channels: Vec<ChannelCount>,
    /// Each rejected row; any one means nothing was stored.
    pub rejected: Vec<Rejected>,
}

#[derive(Debug, Serialize)]
pub struct ChannelCount {
    pub channel: String,
    pub listings: usize,
    pub enabled: bool,
}

#[derive(Debug, Serialize)]
pub struct Rejected {
    pub line: usize,
    pub reason: String,
}

impl Report for ImportReport {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        if !self.rejected.is_empty() {
            for r in &self.rejected {
                writeln!(out, "line {}: {}", r.line, r.reason)?;
            }
            return Ok(());
        }
        if self.stored == 0 {
            return writeln!(
                out,
                "{} has no rows after its header; nothing to store.",
                self.file
            );
        }
        writeln!(
            out,
            "Stored {} from {}:",
            plural(self.stored, "listing"),
            self.file
        )?;
        for c in &self.channels {
            let note = if c.enabled {
                ""
            } else {
                "  (channel disabled)"
            };
            writeln!(out, "  {:<10} {}{note}", c.channel, c.listings)?;
        }
        Ok(())
    }
}

/// Imports a listings CSV. A refused file reports each rejected row (`line N: reason`) and
/// returns [`ImportRefused`]; otherwise the rows are stored and a per-channel summary reported.
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
            let report = ImportReport {
                file: name.clone(),
                stored: 0,
                channels: Vec::new(),
                rejected: rejected
                    .iter()
                    .map(|r| Rejected {
                        line: r.line,
                        reason: r.reason.clone(),
                    })
                    .collect(),
            };
            emit(out, terminal, &report)?;
            return Err(ImportRefused::Rejected {
                file: name,
                rows: rejected,
            }
            .into());
        }
    };
    if rows.is_empty() {
        let report = ImportReport {
            file: name,
            stored: 0,
            channels: Vec::new(),
            rejected: Vec::new(),
        };
        return emit(out, terminal, &report);
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

    let report = ImportReport {
        file: name,
        stored: rows.len(),
        channels: per_channel
            .iter()
            .map(|(channel, n)| ChannelCount {
                channel: channel.to_string(),
                listings: *n,
                enabled: !channels.iter().any(|c| &c.name == channel && !c.enabled),
            })
            .collect(),
        rejected: Vec::new(),
    };
    emit(out, terminal, &report)
}

async fn store_rows(store: &StateStore, rows: &[ListingMapping], terminal: Terminal) -> Result<()> {
    let bar = ProgressBar::with_draw_target(Some(rows.len() as u64), terminal.progress_target());
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
