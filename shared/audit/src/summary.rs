//! What an audit prints and writes besides the report: `summary.json` exactly as contract
//! section 7 gives it, and the terminal table with the money.

use serde::Serialize;
use stockguard_domain::types::format_timestamp;

use crate::outcome::{AuditOutcome, Counts, Strategy};
use crate::settings::{Costs, Settings, format_duration};

#[derive(Debug, Serialize)]
struct SummaryInput {
    orders: u64,
    skus: u64,
    start: String,
    end: String,
}

#[derive(Debug, Serialize)]
struct SummaryStrategy {
    name: &'static str,
    oversells: u64,
    oversold_units: u64,
    lost_sales: u64,
    lost_units: u64,
    held_back_percent: f64,
    orders_taken: u64,
}

#[derive(Debug, Serialize)]
struct Summary {
    input: SummaryInput,
    strategies: Vec<SummaryStrategy>,
}

/// `held_back_percent` to two decimals: finer is noise, and the file stays readable.
fn two_decimals(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `summary.json` (contract section 7), pretty-printed in the contract's field order.
pub fn summary_json(outcome: &AuditOutcome) -> String {
    let summary = Summary {
        input: SummaryInput {
            orders: outcome.orders,
            skus: outcome.skus,
            start: format_timestamp(outcome.start),
            end: format_timestamp(outcome.end),
        },
        strategies: outcome
            .strategies
            .iter()
            .map(|s| SummaryStrategy {
                name: s.strategy.as_str(),
                oversells: s.counts.oversells,
                oversold_units: s.counts.oversold_units,
                lost_sales: s.counts.lost_sales,
                lost_units: s.counts.lost_units,
                held_back_percent: two_decimals(s.counts.held_back_percent()),
                orders_taken: s.counts.orders_taken,
            })
            .collect(),
    };
    let mut text = serde_json::to_string_pretty(&summary).expect("the summary is plain data");
    text.push('\n');
    text
}

/// The money on one strategy's counts.
pub fn oversell_cost(counts: &Counts, costs: &Costs) -> f64 {
    counts.oversells as f64 * costs.per_oversell
}

pub fn lost_margin(counts: &Counts, costs: &Costs) -> f64 {
    counts.lost_units as f64 * costs.per_lost_unit
}

/// `1234567` as `1,234,567`.
pub fn group_thousands(digits: &str) -> String {
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// `1234567.8` as `$1,234,568`.
pub fn dollars(x: f64) -> String {
    let whole = x.round() as i64;
    let sign = if whole < 0 { "-" } else { "" };
    format!(
        "{sign}${}",
        group_thousands(&whole.unsigned_abs().to_string())
    )
}

/// How `event_dynamic` compares with `batch`, in one sentence; `None` without both.
pub fn verdict(outcome: &AuditOutcome) -> Option<String> {
    let batch = &outcome.strategy(Strategy::Batch)?.counts;
    let dynamic = &outcome.strategy(Strategy::EventDynamic)?.counts;
    let fewer = if batch.oversells == 0 {
        "batch sync oversold nothing on this input".to_owned()
    } else {
        let cut =
            100.0 * (batch.oversells as f64 - dynamic.oversells as f64) / batch.oversells as f64;
        format!(
            "{} oversells instead of {} ({:.1}% fewer)",
            dynamic.oversells, batch.oversells, cut
        )
    };
    Some(format!(
        "event_dynamic: {fewer}, holding back {:.2}% of units instead of {:.2}%.",
        dynamic.held_back_percent(),
        batch.held_back_percent()
    ))
}

/// The terminal table: one column per strategy.
pub fn table(outcome: &AuditOutcome, settings: &Settings) -> String {
    let costs = &settings.costs;
    let strategies = &outcome.strategies;
    let rows: Vec<(&str, Vec<String>)> = vec![
        (
            "orders taken",
            column(strategies, |c| c.orders_taken.to_string()),
        ),
        ("oversells", column(strategies, |c| c.oversells.to_string())),
        (
            "oversold units",
            column(strategies, |c| c.oversold_units.to_string()),
        ),
        (
            "lost sales",
            column(strategies, |c| c.lost_sales.to_string()),
        ),
        (
            "lost units",
            column(strategies, |c| c.lost_units.to_string()),
        ),
        (
            "held back",
            column(strategies, |c| format!("{:.2}%", c.held_back_percent())),
        ),
        (
            "oversell cost",
            column(strategies, |c| dollars(oversell_cost(c, costs))),
        ),
        (
            "lost margin",
            column(strategies, |c| dollars(lost_margin(c, costs))),
        ),
    ];
    let label_width = rows.iter().map(|(l, _)| l.len()).max().unwrap_or(0);
    let widths: Vec<usize> = strategies
        .iter()
        .enumerate()
        .map(|(i, s)| {
            rows.iter()
                .map(|(_, cells)| cells[i].len())
                .chain([s.strategy.as_str().len()])
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    out.push_str(&format!(
        "{} orders on {} SKUs, {} to {}\n\n",
        outcome.orders,
        outcome.skus,
        format_timestamp(outcome.start),
        format_timestamp(outcome.end)
    ));
    out.push_str(&format!("{:label_width$}", ""));
    for (s, w) in strategies.iter().zip(&widths) {
        out.push_str(&format!("  {:>w$}", s.strategy.as_str()));
    }
    out.push('\n');
    for (label, cells) in &rows {
        out.push_str(&format!("{label:label_width$}"));
        for (cell, w) in cells.iter().zip(&widths) {
            out.push_str(&format!("  {cell:>w$}"));
        }
        out.push('\n');
    }
    out.push('\n');
    if let Some(verdict) = verdict(outcome) {
        out.push_str(&verdict);
        out.push('\n');
    }
    let delays: Vec<String> = outcome
        .channels
        .iter()
        .map(|&c| format!("{c} {}", settings.delay(c).describe()))
        .collect();
    out.push_str(&format!(
        "batch: every {} with a {}% buffer; channel delays: {}; {} per oversell, {} margin per lost unit.\n",
        format_duration(settings.batch_interval_ms),
        settings.static_buffer_percent,
        if delays.is_empty() { "none (storefront only)".to_owned() } else { delays.join(", ") },
        dollars(costs.per_oversell),
        dollars(costs.per_lost_unit),
    ));
    out
}

fn column(
    strategies: &[crate::outcome::StrategyOutcome],
    cell: impl Fn(&Counts) -> String,
) -> Vec<String> {
    strategies.iter().map(|s| cell(&s.counts)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_are_grouped_by_thousands() {
        assert_eq!(dollars(0.0), "$0");
        assert_eq!(dollars(25.0), "$25");
        assert_eq!(dollars(1234.4), "$1,234");
        assert_eq!(dollars(1_234_567.8), "$1,234,568");
        assert_eq!(dollars(-1000.0), "-$1,000");
    }
}
