//! `stockguard reconcile`: one reconciliation run now, with the drift table.

use std::io::Write;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use serde::Serialize;
use stockguard_handlers::reconcile::{channel_syncs, reconcile_all};
use stockguard_handlers::{Deps, Settings};

use crate::report::{Report, emit};
use crate::table::{plural, write_table};
use crate::{Connection, Terminal};

/// Under Lambda's 15 minutes, like the scheduled run.
const BUDGET: Duration = Duration::from_secs(14 * 60);

/// `reconcile`: what differed, what was repaired, and what was skipped.
#[derive(Debug, Default, Serialize)]
pub struct ReconcileRun {
    /// Enabled channels reconciled.
    pub channels: usize,
    /// Listings compared.
    pub checked: usize,
    pub drift: Vec<Drift>,
    /// Units of drift, summed as absolute values.
    pub drift_units: i64,
    /// Drift units as a percentage of the units the channels should show.
    pub drift_percent: f64,
    pub skipped_in_processing_window: usize,
    pub skipped_in_flight: usize,
    pub acknowledged_late: usize,
    /// Set when the time budget ran out: where the next run resumes.
    pub resume_at: Option<ResumeAt>,
    pub errors: Vec<String>,
}

/// One row of the drift table.
#[derive(Debug, Serialize)]
pub struct Drift {
    pub channel: String,
    pub sku: String,
    pub expected: i64,
    pub reported: i64,
    /// `reported - expected`.
    pub drift: i64,
    pub repaired: bool,
    /// Shows fewer than it should, maybe for an order not heard of yet: pushed by a later run
    /// if it still shows the same past the channel's order grace.
    pub deferred: bool,
}

#[derive(Debug, Serialize)]
pub struct ResumeAt {
    pub channel: String,
    pub sku: String,
}

impl Report for ReconcileRun {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.channels == 0 {
            return writeln!(out, "No channel is enabled; nothing to reconcile.");
        }
        if self.drift.is_empty() {
            writeln!(out, "No drift: every channel shows what it should.")?;
        } else {
            let rows: Vec<[String; 6]> = self
                .drift
                .iter()
                .map(|d| {
                    [
                        d.channel.clone(),
                        d.sku.clone(),
                        d.expected.to_string(),
                        d.reported.to_string(),
                        format!("{:+}", d.drift),
                        match (d.repaired, d.deferred) {
                            (true, _) => "yes",
                            (false, true) => "deferred",
                            (false, false) => "no",
                        }
                        .into(),
                    ]
                })
                .collect();
            write_table(
                out,
                [
                    "CHANNEL", "SKU", "EXPECTED", "REPORTED", "DRIFT", "REPAIRED",
                ],
                &rows,
            )?;
        }
        writeln!(
            out,
            "\nChecked {} across {}: {} drifted by {} units ({:.2}% of the units they should \
             show).",
            plural(self.checked, "listing"),
            plural(self.channels, "channel"),
            plural(self.drift.len(), "listing"),
            self.drift_units,
            self.drift_percent,
        )?;
        let deferred = self.drift.iter().filter(|d| d.deferred).count();
        if deferred > 0 {
            writeln!(
                out,
                "{} deferred: the channel shows fewer than it should, maybe for an order not \
                 heard of yet; a later run pushes it if it still shows the same.",
                plural(deferred, "repair")
            )?;
        }
        if self.skipped_in_processing_window > 0 {
            writeln!(
                out,
                "{} skipped: a push is still within the channel's processing window.",
                plural(self.skipped_in_processing_window, "listing")
            )?;
        }
        if self.skipped_in_flight > 0 {
            writeln!(
                out,
                "{} skipped: changed moments ago, its push is still on its way.",
                plural(self.skipped_in_flight, "listing")
            )?;
        }
        if self.acknowledged_late > 0 {
            writeln!(
                out,
                "{} showed the newest quantity without an acknowledgement on record; recorded now.",
                plural(self.acknowledged_late, "listing")
            )?;
        }
        if let Some(resume) = &self.resume_at {
            writeln!(
                out,
                "Stopped at the time budget; the next run resumes at {} {}.",
                resume.channel, resume.sku
            )?;
        }
        for e in &self.errors {
            writeln!(out, "error: {e}")?;
        }
        Ok(())
    }
}

pub async fn run(connection: &Connection, out: &mut impl Write, terminal: Terminal) -> Result<()> {
    let bus = connection.event_bus()?;
    let deps = Deps::new(
        &connection.config,
        &connection.table,
        bus,
        None,
        Settings::default(),
    );
    let syncs = channel_syncs(&deps).await.map_err(|e| anyhow!(e))?;
    if syncs.is_empty() {
        return emit(out, terminal, &ReconcileRun::default());
    }
    let report = reconcile_all(&syncs, BUDGET).await;
    let run = ReconcileRun {
        channels: syncs.len(),
        checked: report.checked,
        drift: report
            .drift
            .iter()
            .map(|d| Drift {
                channel: d.channel.clone(),
                sku: d.sku.clone(),
                expected: d.expected,
                reported: d.reported,
                drift: d.reported - d.expected,
                repaired: d.repaired,
                deferred: d.deferred,
            })
            .collect(),
        drift_units: report.drift_units,
        drift_percent: if report.expected_units > 0 {
            100.0 * report.drift_units as f64 / report.expected_units as f64
        } else {
            0.0
        },
        skipped_in_processing_window: report.in_processing_window,
        skipped_in_flight: report.in_flight,
        acknowledged_late: report.acknowledged_late,
        resume_at: report
            .resume_after
            .clone()
            .map(|(channel, sku)| ResumeAt { channel, sku }),
        errors: report.errors.clone(),
    };
    emit(out, terminal, &run)?;
    if !run.errors.is_empty() {
        bail!(
            "{} during reconciliation",
            plural(run.errors.len(), "error")
        );
    }
    Ok(())
}
