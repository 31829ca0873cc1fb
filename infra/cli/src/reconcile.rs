//! `stockguard reconcile`: one reconciliation run now, with the drift table.

use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use stockguard_handlers::reconcile::{channel_syncs, reconcile_all};
use stockguard_handlers::{Deps, Settings};

use crate::Connection;
use crate::table::{plural, write_table};

/// Under Lambda's 15 minutes, like the scheduled run.
const BUDGET: Duration = Duration::from_secs(14 * 60);

pub async fn run(connection: &Connection, out: &mut impl Write) -> Result<()> {
    let bus = connection
        .bus
        .as_deref()
        .context("the stack's event bus is unknown: set STOCKGUARD_BUS")?;
    let deps = Deps::new(
        &connection.config,
        &connection.table,
        bus,
        None,
        Settings::default(),
    );
    let syncs = channel_syncs(&deps).await.map_err(|e| anyhow!(e))?;
    if syncs.is_empty() {
        writeln!(out, "No channel is enabled; nothing to reconcile.")?;
        return Ok(());
    }
    let report = reconcile_all(&syncs, BUDGET).await;
    let rows: Vec<[String; 6]> = report
        .drift
        .iter()
        .map(|d| {
            [
                d.channel.clone(),
                d.sku.clone(),
                d.expected.to_string(),
                d.reported.to_string(),
                format!("{:+}", d.reported - d.expected),
                if d.repaired {
                    "yes".into()
                } else {
                    "no".into()
                },
            ]
        })
        .collect();
    if rows.is_empty() {
        writeln!(out, "No drift: every channel shows what it should.")?;
    } else {
        write_table(
            out,
            [
                "CHANNEL", "SKU", "EXPECTED", "REPORTED", "DRIFT", "REPAIRED",
            ],
            &rows,
        )?;
    }
    let share = if report.expected_units > 0 {
        100.0 * report.drift_units as f64 / report.expected_units as f64
    } else {
        0.0
    };
    writeln!(
        out,
        "\nChecked {} across {}: {} drifted by {} units ({share:.2}% of the units they should show).",
        plural(report.checked, "listing"),
        plural(syncs.len(), "channel"),
        plural(report.drift.len(), "listing"),
        report.drift_units,
    )?;
    if report.in_processing_window > 0 {
        writeln!(
            out,
            "{} skipped: a push is still within the channel's processing window.",
            plural(report.in_processing_window, "listing")
        )?;
    }
    if report.in_flight > 0 {
        writeln!(
            out,
            "{} skipped: changed moments ago, its push is still on its way.",
            plural(report.in_flight, "listing")
        )?;
    }
    if report.acknowledged_late > 0 {
        writeln!(
            out,
            "{} showed the newest quantity without an acknowledgement on record; recorded now.",
            plural(report.acknowledged_late, "listing")
        )?;
    }
    if let Some((channel, sku)) = &report.resume_after {
        writeln!(
            out,
            "Stopped at the time budget; the next run resumes at {channel} {sku}."
        )?;
    }
    if !report.errors.is_empty() {
        for e in &report.errors {
            writeln!(out, "error: {e}")?;
        }
        bail!(
            "{} during reconciliation",
            plural(report.errors.len(), "error")
        );
    }
    Ok(())
}
