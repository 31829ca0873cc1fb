//! `stockguard audit` and `stockguard simulate` (contract section 7): the sync-gap audit of a
//! seller's own order history, and realistic histories to try it on. Neither needs a stack.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use stockguard_audit::import::{self, OrdersFormat};
use stockguard_audit::input::{self, assemble};
use stockguard_audit::scenario::{Scenario, ScenarioSpec, write_scenario};
use stockguard_audit::settings::{DEFAULT_BATCH_INTERVAL_MS, format_duration, parse_duration};
use stockguard_audit::summary::{summary_json, table};
use stockguard_audit::{OrderRow, RowError, Settings, report, sim};
use stockguard_domain::types::format_timestamp;

use crate::Terminal;

pub const AUDIT_HELP: &str = "\
Inputs (docs/audit.md):
  ORDERS.csv     occurred_at,channel,sku,quantity[,order_id]; channel: shopify, amazon, walmart,
                 ebay or storefront. A Shopify orders export or an Amazon All Orders report is
                 read as it is (told apart by its header); give --orders once per file.
  STOCK.csv      sku,on_hand at the first order's time.
  RESTOCKS.csv   occurred_at,sku,quantity.
  CHANNELS.toml  [amazon] delay = { min = \"5m\", max = \"15m\" }, [shopify] delay = \"3s\", ...
                 A channel it does not name keeps its default delay.

Writes DIR/summary.json and DIR/report.html; nothing is written if any input row is bad.

Examples:
  stockguard simulate --scenario flash-sale --skus 200 --seed 7 --out sale
  stockguard audit --orders sale/ORDERS.csv --stock sale/STOCK.csv --restocks sale/RESTOCKS.csv
  stockguard audit --orders orders_export.csv --orders amazon_all_orders.txt --stock STOCK.csv \\
      --channels CHANNELS.toml --batch-interval 30m --out audit";

#[derive(Debug, Args)]
pub struct AuditArgs {
    /// Orders: the contract's ORDERS.csv, a Shopify orders export or an Amazon All Orders report.
    /// Repeat for several files.
    #[arg(long, value_name = "ORDERS.csv", required = true)]
    pub orders: Vec<PathBuf>,
    /// Units on hand per SKU at the first order's time: sku,on_hand.
    #[arg(long, value_name = "STOCK.csv")]
    pub stock: PathBuf,
    /// Stock received during the span: occurred_at,sku,quantity.
    #[arg(long, value_name = "RESTOCKS.csv")]
    pub restocks: Option<PathBuf>,
    /// Each marketplace channel's delay from a push to showing it.
    #[arg(long, value_name = "CHANNELS.toml")]
    pub channels: Option<PathBuf>,
    /// How often the batch strategy pushes, e.g. 15m, 1h.
    #[arg(long, value_name = "DURATION", default_value = "15m", value_parser = parse_duration)]
    pub batch_interval: i64,
    /// How often event_dynamic recomputes buffers as sales cool down (the stack's
    /// BufferRecomputeEveryMinutes).
    #[arg(long, value_name = "DURATION", default_value = "5m", value_parser = parse_duration)]
    pub buffer_recompute: i64,
    /// The static buffer of batch and event_static: ceil(available × percent / 100).
    #[arg(long, value_name = "PERCENT", default_value_t = 10.0, value_parser = parse_percent)]
    pub static_buffer_percent: f64,
    /// Where summary.json and report.html are written (created if missing).
    #[arg(long, value_name = "DIR", default_value = "audit")]
    pub out: PathBuf,
    /// Makes random channel delays repeatable.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub seed: u64,
    /// What one oversold order costs you, in dollars (cancellation, marketplace penalties, support).
    #[arg(long, value_name = "USD", default_value_t = 25.0, value_parser = parse_money)]
    pub oversell_cost: f64,
    /// Your margin on one unit, in dollars: what a refused sale of a unit in stock loses.
    #[arg(long, value_name = "USD", default_value_t = 8.0, value_parser = parse_money)]
    pub unit_margin: f64,
}

fn parse_percent(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(p) if (0.0..=100.0).contains(&p) => Ok(p),
        _ => Err(format!("{raw:?} is not a percentage from 0 to 100")),
    }
}

fn parse_money(raw: &str) -> Result<f64, String> {
    match raw.trim_start_matches('$').parse::<f64>() {
        Ok(x) if x >= 0.0 && x.is_finite() => Ok(x),
        _ => Err(format!("{raw:?} is not an amount of dollars, 0 or more")),
    }
}

/// The most row errors printed; the rest are counted.
const SHOWN_ERRORS: usize = 50;

/// Reads a whole input file; a problem is reported against the file's name.
fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).context("cannot read it")
}

/// The name a file goes by in row errors: as the seller typed it.
fn name_of(path: &Path) -> String {
    path.display().to_string()
}

/// Every orders file, in whichever format its header shows.
fn read_orders(paths: &[PathBuf], notes: &mut Vec<String>) -> Result<Vec<OrderRow>, Vec<RowError>> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        let file = name_of(path);
        let text = match read(path) {
            Ok(text) => text,
            Err(e) => {
                errors.push(RowError {
                    file,
                    line: 0,
                    reason: format!("{e:#}"),
                });
                continue;
            }
        };
        let read = match import::detect_text(&text) {
            Some(OrdersFormat::Shopify) => import::import_shopify_orders(&file, &text).map(|i| {
                notes.extend(i.notes.messages(&file));
                i.rows
            }),
            Some(OrdersFormat::Amazon) => import::import_amazon_orders(&file, &text).map(|i| {
                notes.extend(i.notes.messages(&file));
                i.rows
            }),
            // The contract's own file; its reader also explains a header it does not recognise.
            Some(OrdersFormat::Stockguard) | None => input::read_orders(&file, &text),
        };
        match read {
            Ok(mut more) => rows.append(&mut more),
            Err(mut more) => errors.append(&mut more),
        }
    }
    if errors.is_empty() {
        Ok(rows)
    } else {
        Err(errors)
    }
}

/// Reads and checks every input, or returns every problem found.
fn load(
    args: &AuditArgs,
    settings: &mut Settings,
    notes: &mut Vec<String>,
) -> Result<stockguard_audit::AuditInput, Vec<RowError>> {
    let mut errors = Vec::new();
    let file_error = |path: &Path, e: anyhow::Error| RowError {
        file: name_of(path),
        line: 0,
        reason: format!("{e:#}"),
    };
    let orders = read_orders(&args.orders, notes)
        .map_err(|e| errors.extend(e))
        .ok();
    let stock = match read(&args.stock) {
        Ok(text) => input::read_stock(&name_of(&args.stock), &text)
            .map_err(|e| errors.extend(e))
            .ok(),
        Err(e) => {
            errors.push(file_error(&args.stock, e));
            None
        }
    };
    let restocks = match &args.restocks {
        None => Some(Vec::new()),
        Some(path) => match read(path) {
            Ok(text) => input::read_restocks(&name_of(path), &text)
                .map_err(|e| errors.extend(e))
                .ok(),
            Err(e) => {
                errors.push(file_error(path, e));
                None
            }
        },
    };
    if let Some(path) = &args.channels {
        match read(path) {
            Ok(text) => {
                if let Err(e) = input::read_channels(&name_of(path), &text, settings) {
                    errors.extend(e);
                }
            }
            Err(e) => errors.push(file_error(path, e)),
        }
    }
    match (orders, stock, restocks) {
        (Some(orders), Some(stock), Some(restocks)) if errors.is_empty() => {
            let orders_file = args.orders.first().map(|p| name_of(p)).unwrap_or_default();
            assemble(orders, stock, restocks, &orders_file)
        }
        _ => Err(errors),
    }
}

/// `stockguard audit`.
pub fn audit(args: &AuditArgs, out: &mut impl Write, terminal: Terminal) -> Result<()> {
    let mut settings = Settings {
        batch_interval_ms: args.batch_interval,
        static_buffer_percent: args.static_buffer_percent,
        buffer_recompute_ms: args.buffer_recompute,
        seed: args.seed,
        costs: stockguard_audit::Costs {
            per_oversell: args.oversell_cost,
            per_lost_unit: args.unit_margin,
        },
        ..Settings::default()
    };
    if settings.batch_interval_ms <= 0 {
        bail!(
            "--batch-interval must be longer than 0 (the default is {})",
            format_duration(DEFAULT_BATCH_INTERVAL_MS)
        );
    }
    let mut notes = Vec::new();
    let input = match load(args, &mut settings, &mut notes) {
        Ok(input) => input,
        Err(errors) => {
            let mut lines: Vec<String> = errors
                .iter()
                .take(SHOWN_ERRORS)
                .map(|e| e.to_string())
                .collect();
            if errors.len() > SHOWN_ERRORS {
                lines.push(format!("... and {} more", errors.len() - SHOWN_ERRORS));
            }
            bail!(
                "{} problem(s) in the input; nothing was written:\n{}",
                errors.len(),
                lines.join("\n")
            );
        }
    };
    if let Some(first) = input.unstocked_skus.first() {
        notes.push(format!(
            "{} SKU(s) with orders are not in {}: counted from 0 on hand (first: {first})",
            input.unstocked_skus.len(),
            name_of(&args.stock)
        ));
    }

    let events = 3 * (input.orders.len() + input.restocks.len()) as u64;
    let bar = ProgressBar::with_draw_target(Some(events), terminal.progress_target());
    bar.set_style(
        ProgressStyle::with_template(
            "replaying {bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
        )
        .expect("a valid template"),
    );
    let outcome = sim::run(&input, &settings, &mut |done| bar.set_position(done));
    bar.finish_and_clear();

    let summary = summary_json(&outcome);
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let summary_path = args.out.join("summary.json");
    let report_path = args.out.join("report.html");
    fs::write(&summary_path, &summary)
        .with_context(|| format!("cannot write {}", summary_path.display()))?;
    fs::write(&report_path, report::render_report(&outcome, &settings))
        .with_context(|| format!("cannot write {}", report_path.display()))?;

    if terminal.json {
        write!(out, "{summary}")?;
        for note in &notes {
            eprintln!("{note}");
        }
    } else {
        for note in &notes {
            writeln!(out, "{note}")?;
        }
        write!(out, "{}", table(&outcome, &settings))?;
        writeln!(
            out,
            "\nWrote {} and {}.",
            summary_path.display(),
            report_path.display()
        )?;
    }
    Ok(())
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// The demand curve: steady, flash-sale, viral-spike or competitor-stockout.
    #[arg(long, value_parser = Scenario::parse)]
    pub scenario: Scenario,
    /// How many SKUs the catalogue has.
    #[arg(long, value_name = "N", default_value_t = 200)]
    pub skus: usize,
    /// The same seed writes the same files.
    #[arg(long, value_name = "S", default_value_t = 0)]
    pub seed: u64,
    /// The window's length in days (the scenario's own default otherwise: 7 for steady and
    /// competitor-stockout, 3 for flash-sale and viral-spike).
    #[arg(long, value_name = "D")]
    pub days: Option<u32>,
    /// About how many orders to write (about four per SKU per day otherwise).
    #[arg(long, value_name = "N")]
    pub orders: Option<u64>,
    /// Where ORDERS.csv, STOCK.csv and RESTOCKS.csv are written (created if missing).
    #[arg(long, value_name = "DIR")]
    pub out: PathBuf,
}

/// `stockguard simulate`: writes a scenario's input files, then says how to audit them.
pub fn simulate(args: &SimulateArgs, out: &mut impl Write, terminal: Terminal) -> Result<()> {
    let spec = ScenarioSpec {
        days: args.days,
        orders: args.orders,
        ..ScenarioSpec::new(args.scenario, args.skus, args.seed)
    };
    fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    let create = |name: &str| {
        let path = args.out.join(name);
        fs::File::create(&path).with_context(|| format!("cannot write {}", path.display()))
    };
    let (mut orders, mut stock, mut restocks) = (
        create("ORDERS.csv")?,
        create("STOCK.csv")?,
        create("RESTOCKS.csv")?,
    );
    let summary = write_scenario(&spec, &mut orders, &mut stock, &mut restocks)
        .with_context(|| format!("cannot simulate {}", args.scenario))?;
    let dir = args.out.display();
    if terminal.json {
        let files = ["ORDERS.csv", "STOCK.csv", "RESTOCKS.csv"].map(|f| args.out.join(f));
        let written = serde_json::json!({
            "scenario": summary.scenario.as_str(),
            "start": format_timestamp(summary.start),
            "end": format_timestamp(summary.end),
            "skus": summary.skus,
            "orders": summary.orders,
            "ordered_units": summary.ordered_units,
            "stocked_units": summary.stocked_units,
            "restocks": summary.restocks,
            "restocked_units": summary.restocked_units,
            "files": files,
        });
        serde_json::to_writer_pretty(&mut *out, &written)?;
        writeln!(out)?;
        return Ok(());
    }
    writeln!(out, "{}: {}", summary.scenario, summary.scenario.describe())?;
    writeln!(
        out,
        "Wrote {dir}/ORDERS.csv ({} orders, {} units on {} SKUs, {} to {}), {dir}/STOCK.csv ({} units) and {dir}/RESTOCKS.csv ({} restocks, {} units).",
        summary.orders,
        summary.ordered_units,
        summary.skus,
        format_timestamp(summary.start),
        format_timestamp(summary.end),
        summary.stocked_units,
        summary.restocks,
        summary.restocked_units,
    )?;
    for event in &summary.events {
        writeln!(
            out,
            "  {} signal at {}, peak from {}, decaying from {}",
            event.signal,
            format_timestamp(event.signal_at),
            format_timestamp(event.peak_at),
            format_timestamp(event.decay_from)
        )?;
    }
    writeln!(
        out,
        "Audit it: stockguard audit --orders {dir}/ORDERS.csv --stock {dir}/STOCK.csv --restocks {dir}/RESTOCKS.csv --out {dir}/audit"
    )?;
    Ok(())
}
