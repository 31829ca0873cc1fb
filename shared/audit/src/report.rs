//! `report.html`: the audit as a seller reads it, deciding whether to leave batch sync with a
//! static buffer. One self-contained page: inline CSS, charts as inline SVG, no script and nothing
//! fetched, so it opens offline and can be mailed as one file.
//!
//! The page shows, in order: a headline (oversells avoided, held-back stock released, lost sales
//! recovered and what that is worth, `event_dynamic` against `batch`); the strategies side by side;
//! cumulative oversells over time; what each channel showed against the true `available` for the
//! most-ordered SKUs (batch beside event_dynamic); units held back over time; and the assumptions
//! (batch interval, static buffer, each channel's delay, the costs).

use std::fmt::Write as _;
use std::ops::Range;

use chrono::{DateTime, Utc};
use plotters::coord::ranged1d::{KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter};
use plotters::prelude::*;
use stockguard_domain::Millis;

use crate::model::Channel;
use crate::outcome::{AuditOutcome, Counts, SkuTrace, Steps, Strategy, StrategyOutcome};
use crate::settings::{Costs, Settings, format_duration};
use crate::summary::{group_thousands, lost_margin, oversell_cost};

const SECOND: Millis = 1000;
const MINUTE: Millis = 60 * SECOND;
const HOUR: Millis = 60 * MINUTE;
const DAY: Millis = 24 * HOUR;

/// The shortest time axis drawn: a one-order audit still gets a readable axis.
const MIN_AXIS_SPAN: Millis = MINUTE;

/// Above this many steps a trace is thinned to its envelope per time bucket, which looks the same
/// at chart resolution and keeps the page small for large catalogues.
const MAX_TRACE_POINTS: usize = 2400;

const CHART_WIDTH: u32 = 1080;
const CHART_HEIGHT: u32 = 380;
const TRACE_HEIGHT: u32 = 340;

const INK: RGBColor = RGBColor(0x22, 0x2b, 0x36);
const GRID: RGBColor = RGBColor(0xe6, 0xe9, 0xee);
const AXIS: RGBColor = RGBColor(0x9a, 0xa3, 0xae);
const STOCK_FILL: RGBColor = RGBColor(0xd5, 0xd9, 0xdf);
const OVERSHOOT: RGBColor = RGBColor(0xe0, 0x1e, 0x1e);

/// One colour per strategy on every chart and in the table (colour-blind-safe).
fn strategy_colour(strategy: Strategy) -> RGBColor {
    match strategy {
        Strategy::Batch => RGBColor(0xd5, 0x5e, 0x00),
        Strategy::EventStatic => RGBColor(0xcc, 0x79, 0xa7),
        Strategy::EventDynamic => RGBColor(0x00, 0x72, 0xb2),
    }
}

/// Channel colours, distinct from the strategy colours so the trace charts never read as strategies.
fn channel_colour(channel: Channel) -> RGBColor {
    match channel {
        Channel::Shopify => RGBColor(0x00, 0x9e, 0x73),
        Channel::Amazon => RGBColor(0xe6, 0x9f, 0x00),
        Channel::Walmart => RGBColor(0x56, 0xb4, 0xe9),
        Channel::Ebay => RGBColor(0x6a, 0x3d, 0x9a),
        Channel::Storefront => RGBColor(0x55, 0x55, 0x55),
    }
}

fn css(colour: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", colour.0, colour.1, colour.2)
}

fn strategy_blurb(strategy: Strategy, settings: &Settings) -> String {
    let percent = fmt_percent(settings.static_buffer_percent);
    match strategy {
        Strategy::Batch => format!(
            "every {}, {percent} buffer",
            format_duration(settings.batch_interval_ms)
        ),
        Strategy::EventStatic => format!("on every change, {percent} buffer"),
        Strategy::EventDynamic => "on every change, dynamic buffer".to_owned(),
    }
}

/// The whole page. Every string from the input (SKU names) is escaped; nothing on the page refers
/// to the network.
pub fn render_report(outcome: &AuditOutcome, settings: &Settings) -> String {
    let axis = TimeAxis::over(outcome.start, outcome.end);
    let mut page = String::with_capacity(256 * 1024);
    page.push_str(HEAD);
    let _ = writeln!(
        page,
        "<header><h1>Sync-gap audit</h1><p class=\"sub\">{orders} for {skus} {period}, replayed \
         under three ways of keeping your channels in step.</p></header>",
        orders = counted(outcome.orders, "order"),
        skus = counted(outcome.skus, "SKU"),
        period = fmt_period(outcome.start, outcome.end),
    );
    page.push_str(&headline(outcome, settings));
    page.push_str(&strategy_table(outcome, settings));
    page.push_str(&oversell_section(outcome, &axis));
    page.push_str(&trace_section(outcome, settings, &axis));
    page.push_str(&held_back_section(outcome, &axis));
    page.push_str(&assumptions(outcome, settings));
    page.push_str("</main>\n</body>\n</html>\n");
    page
}

const HEAD: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="data:,">
<title>Sync-gap audit</title>
<style>
:root { --ink: #222b36; --muted: #5b6673; --line: #e3e7ec; --panel: #f6f8fa; }
* { box-sizing: border-box; }
body { margin: 0; background: #fff; color: var(--ink);
  font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif; }
main { max-width: 1140px; margin: 0 auto; padding: 32px 28px 48px; }
h1 { font-size: 30px; margin: 0 0 4px; }
h2 { font-size: 21px; margin: 40px 0 8px; padding-top: 20px; border-top: 1px solid var(--line); }
h3 { font-size: 17px; margin: 24px 0 6px; }
.sub, .muted { color: var(--muted); }
.sub { margin: 0; }
.headline { margin-top: 24px; }
.lead { font-size: 19px; margin: 0 0 18px; }
.cards { display: grid; grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); gap: 14px; }
.card { background: var(--panel); border: 1px solid var(--line); border-radius: 10px; padding: 14px 16px; }
.card .big { font-size: 30px; font-weight: 700; line-height: 1.2; }
.card .label { font-weight: 600; }
.card .detail { color: var(--muted); font-size: 14px; margin-top: 4px; }
.good { color: #0a7a4a; }
.bad { color: #b3261e; }
table { border-collapse: collapse; width: 100%; margin-top: 8px; font-variant-numeric: tabular-nums; }
th, td { padding: 8px 12px; border-bottom: 1px solid var(--line); text-align: right; }
th:first-child, td:first-child { text-align: left; }
thead th { vertical-align: bottom; border-bottom: 2px solid var(--ink); }
thead th .how { display: block; font-weight: 400; font-size: 13px; color: var(--muted); }
tr.total td { font-weight: 700; border-top: 2px solid var(--ink); }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 3px; margin-right: 6px;
  vertical-align: -1px; }
.line-swatch { display: inline-block; width: 22px; height: 0; border-top: 3px solid; margin-right: 6px;
  vertical-align: 4px; }
.legend { display: flex; flex-wrap: wrap; gap: 6px 20px; font-size: 14px; margin: 6px 0; }
figure { margin: 8px 0 0; }
figure svg { display: block; width: 100%; height: auto; }
figcaption { color: var(--muted); font-size: 14px; margin-top: 6px; max-width: 900px; }
.note { background: var(--panel); border-left: 4px solid var(--line); padding: 10px 14px; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: 6px 20px; margin: 8px 0; }
dt { font-weight: 600; }
dd { margin: 0; }
</style>
</head>
<body>
<main>
"##;

// ---------------------------------------------------------------------------------------------
// Headline and table

fn money(counts: &Counts, costs: &Costs) -> (f64, f64) {
    (oversell_cost(counts, costs), lost_margin(counts, costs))
}

/// Mean units held back at any moment, summed over SKUs and marketplace channels.
fn mean_held_back_units(counts: &Counts, span_ms: Millis) -> f64 {
    if span_ms > 0 {
        counts.held_back_unit_ms / span_ms as f64
    } else {
        0.0
    }
}

fn headline(outcome: &AuditOutcome, settings: &Settings) -> String {
    let (Some(batch), Some(dynamic)) = (
        outcome.strategy(Strategy::Batch),
        outcome.strategy(Strategy::EventDynamic),
    ) else {
        return "<section class=\"headline\"><p class=\"note\">This audit does not include both \
                batch and event_dynamic, so there is no comparison to headline; the table below \
                has what was replayed.</p></section>\n"
            .to_owned();
    };
    let (b, d) = (&batch.counts, &dynamic.counts);
    let span = outcome.end - outcome.start;
    let mut html = String::from("<section class=\"headline\">\n");

    // The oversell card: avoided out of batch's, or an honest "more" when dynamic did worse.
    let (oversell_big, oversell_detail) = if b.oversells == 0 && d.oversells == 0 {
        (
            "<span class=\"good\">0</span>".to_owned(),
            "Neither batch nor event_dynamic oversold in this period.".to_owned(),
        )
    } else if d.oversells <= b.oversells {
        let avoided = b.oversells - d.oversells;
        (
            format!(
                "<span class=\"good\">{}</span>",
                fmt_percent(100.0 * avoided as f64 / b.oversells as f64)
            ),
            format!(
                "{} of batch's {} oversold orders avoided ({} → {} oversold units).",
                fmt_count(avoided),
                fmt_count(b.oversells),
                fmt_count(b.oversold_units),
                fmt_count(d.oversold_units)
            ),
        )
    } else {
        (
            format!(
                "<span class=\"bad\">+{}</span>",
                fmt_count(d.oversells - b.oversells)
            ),
            format!(
                "event_dynamic oversold {} orders against batch's {}.",
                fmt_count(d.oversells),
                fmt_count(b.oversells)
            ),
        )
    };

    let (bh, dh) = (b.held_back_percent(), d.held_back_percent());
    let (bu, du) = (mean_held_back_units(b, span), mean_held_back_units(d, span));
    let (held_big, held_detail) = if bh <= 0.0 {
        (
            "0".to_owned(),
            format!(
                "Batch held nothing back (on average {} units under event_dynamic).",
                fmt_units(du)
            ),
        )
    } else {
        let released = 100.0 * (bh - dh) / bh;
        let class = if released >= 0.0 { "good" } else { "bad" };
        (
            format!("<span class=\"{class}\">{}</span>", fmt_percent(released)),
            format!(
                "of what batch held back is offered again: on average {} → {} units held back \
                 across channels ({} → {} of available stock).",
                fmt_units(bu),
                fmt_units(du),
                fmt_percent(bh),
                fmt_percent(dh)
            ),
        )
    };

    let (b_over, b_lost) = money(b, &settings.costs);
    let (d_over, d_lost) = money(d, &settings.costs);
    let saved = (b_over + b_lost) - (d_over + d_lost);
    let money_big = if saved >= 0.0 {
        format!("<span class=\"good\">{}</span>", fmt_money(saved))
    } else {
        format!("<span class=\"bad\">−{}</span>", fmt_money(-saved))
    };
    let money_detail = format!(
        "{} in oversell costs and {} in lost margin ({} → {} lost sales){}.",
        fmt_signed_money(b_over - d_over),
        fmt_signed_money(b_lost - d_lost),
        fmt_count(b.lost_sales),
        fmt_count(d.lost_sales),
        if span > 0 {
            format!(" over {}", fmt_span(span))
        } else {
            String::new()
        }
    );

    let lead = lead_sentence(b, d, saved, settings);
    let _ = write!(
        html,
        "<p class=\"lead\">{lead}</p>\n<div class=\"cards\">\n\
         <div class=\"card\"><div class=\"label\">Oversells avoided</div><div class=\"big\">{oversell_big}</div><div class=\"detail\">{oversell_detail}</div></div>\n\
         <div class=\"card\"><div class=\"label\">Held-back stock released</div><div class=\"big\">{held_big}</div><div class=\"detail\">{held_detail}</div></div>\n\
         <div class=\"card\"><div class=\"label\">Estimated saving</div><div class=\"big\">{money_big}</div><div class=\"detail\">{money_detail}</div></div>\n\
         </div>\n<p class=\"muted\">Compared: batch sync {} against event-driven sync with dynamic \
         buffers. Costs: {} per oversold order and {} margin per unit of a lost sale{}. The \
         assumptions are listed at the end.</p>\n</section>\n",
        strategy_blurb(Strategy::Batch, settings),
        fmt_money(settings.costs.per_oversell),
        fmt_money(settings.costs.per_lost_unit),
        if settings.costs == Costs::default() {
            " (the defaults; set your own)"
        } else {
            ""
        },
    );
    html
}

fn lead_sentence(b: &Counts, d: &Counts, saved: f64, settings: &Settings) -> String {
    let interval = format_duration(settings.batch_interval_ms);
    let oversells = if b.oversells == 0 && d.oversells == 0 {
        "neither would have oversold".to_owned()
    } else if d.oversells <= b.oversells {
        format!(
            "event-driven sync with dynamic buffers would have oversold <strong>{}</strong> \
             orders where {interval} batch sync oversold <strong>{}</strong>",
            fmt_count(d.oversells),
            fmt_count(b.oversells)
        )
    } else {
        format!(
            "event-driven sync with dynamic buffers would have oversold <strong>{}</strong> \
             orders, more than {interval} batch sync's <strong>{}</strong>",
            fmt_count(d.oversells),
            fmt_count(b.oversells)
        )
    };
    let money = if saved.abs() < 0.005 {
        "at the same cost".to_owned()
    } else if saved > 0.0 {
        format!("saving about <strong>{}</strong>", fmt_money(saved))
    } else {
        format!("costing about <strong>{}</strong> more", fmt_money(-saved))
    };
    format!("On your own orders, {oversells}, {money}.")
}

fn strategy_table(outcome: &AuditOutcome, settings: &Settings) -> String {
    let strategies = ordered(outcome);
    let mut html = String::from(
        "<section>\n<h2>The three strategies side by side</h2>\n<table>\n<thead><tr><th></th>",
    );
    for s in &strategies {
        let _ = write!(
            html,
            "<th><span class=\"swatch\" style=\"background:{}\"></span>{}<span class=\"how\">{}</span></th>",
            css(strategy_colour(s.strategy)),
            s.strategy.as_str(),
            strategy_blurb(s.strategy, settings)
        );
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    let costs = &settings.costs;
    type Cell = Box<dyn Fn(&Counts) -> String>;
    let per_oversell = costs.per_oversell;
    let per_lost_unit = costs.per_lost_unit;
    let rows: Vec<(&str, Cell)> = vec![
        ("Orders taken", Box::new(|c| fmt_count(c.orders_taken))),
        ("Oversold orders", Box::new(|c| fmt_count(c.oversells))),
        ("Oversold units", Box::new(|c| fmt_count(c.oversold_units))),
        (
            "Lost sales (refused with stock on hand)",
            Box::new(|c| fmt_count(c.lost_sales)),
        ),
        ("Lost units", Box::new(|c| fmt_count(c.lost_units))),
        (
            "Stock held back (% of available)",
            Box::new(|c| fmt_percent(c.held_back_percent())),
        ),
        (
            "Oversell cost",
            Box::new(move |c| fmt_money(c.oversells as f64 * per_oversell)),
        ),
        (
            "Lost margin",
            Box::new(move |c| fmt_money(c.lost_units as f64 * per_lost_unit)),
        ),
    ];
    for (label, cell) in &rows {
        let _ = write!(html, "<tr><td>{label}</td>");
        for s in &strategies {
            let _ = write!(html, "<td>{}</td>", cell(&s.counts));
        }
        html.push_str("</tr>\n");
    }
    html.push_str("<tr class=\"total\"><td>Total cost</td>");
    for s in &strategies {
        let (over, lost) = money(&s.counts, costs);
        let _ = write!(html, "<td>{}</td>", fmt_money(over + lost));
    }
    html.push_str("</tr>\n</tbody>\n</table>\n</section>\n");
    html
}

/// The strategies in the page's order (batch first), whatever order the outcome lists them in.
fn ordered(outcome: &AuditOutcome) -> Vec<&StrategyOutcome> {
    let mut strategies: Vec<_> = outcome.strategies.iter().collect();
    strategies.sort_by_key(|s| s.strategy);
    strategies
}

fn strategy_legend(outcome: &AuditOutcome) -> String {
    let mut html = String::from("<div class=\"legend\">");
    for s in ordered(outcome) {
        let _ = write!(
            html,
            "<span><span class=\"line-swatch\" style=\"border-color:{}\"></span>{}</span>",
            css(strategy_colour(s.strategy)),
            s.strategy.as_str()
        );
    }
    html.push_str("</div>\n");
    html
}

// ---------------------------------------------------------------------------------------------
// Charts

fn oversell_section(outcome: &AuditOutcome, axis: &TimeAxis) -> String {
    let series: Vec<(Strategy, Vec<(Millis, i64)>)> = ordered(outcome)
        .into_iter()
        .map(|s| {
            let mut points = vec![(axis.start, 0)];
            let mut total = 0i64;
            for (i, n) in s.timeline.oversells.iter().enumerate() {
                total += *n as i64;
                let at = outcome.bins.time_of(i + 1).clamp(axis.start, axis.end);
                points.push((at, total));
            }
            if points.last().is_some_and(|p| p.0 < axis.end) {
                points.push((axis.end, total));
            }
            (s.strategy, points)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, v)| v))
        .max()
        .unwrap_or(0);
    let svg = chart(CHART_WIDTH, CHART_HEIGHT, |area| {
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .margin_right(44)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(axis.clone(), 0i64..nice_top(top as f64) as i64)?;
        mesh(&mut chart, axis, "Oversold orders so far", 8, &|v| {
            fmt_signed_count(*v)
        })?;
        for (strategy, points) in &series {
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                strategy_colour(*strategy).stroke_width(line_width(*strategy)),
            ))?;
        }
        Ok(())
    });
    let caption = if top == 0 {
        "No strategy oversold at any point, so every line stays at zero.".to_owned()
    } else {
        "Each line counts the oversold orders so far. The steeper a line, the faster that strategy \
         was overselling; the gap at the right-hand end is the total the others avoided compared \
         with batch."
            .to_owned()
    };
    format!(
        "<section>\n<h2>Oversells over time</h2>\n{}<figure>{svg}<figcaption>{caption}</figcaption></figure>\n</section>\n",
        strategy_legend(outcome)
    )
}

fn held_back_section(outcome: &AuditOutcome, axis: &TimeAxis) -> String {
    let bins = &outcome.bins;
    let series: Vec<(Strategy, Vec<(Millis, f64)>)> = ordered(outcome)
        .into_iter()
        .map(|s| {
            let mut points = Vec::new();
            for (i, v) in s.timeline.held_back_units.iter().enumerate() {
                let from = bins.time_of(i).clamp(axis.start, axis.end);
                let to = bins.time_of(i + 1).clamp(axis.start, axis.end);
                points.push((from, *v));
                points.push((to, *v));
            }
            (s.strategy, points)
        })
        .collect();
    let top = series
        .iter()
        .flat_map(|(_, p)| p.iter().map(|&(_, v)| v))
        .fold(0.0f64, f64::max);
    let y_top = nice_top(top);
    let svg = chart(CHART_WIDTH, CHART_HEIGHT, |area| {
        let mut chart = ChartBuilder::on(area)
            .margin(16)
            .margin_right(44)
            .x_label_area_size(52)
            .y_label_area_size(72)
            .build_cartesian_2d(axis.clone(), 0.0..y_top)?;
        mesh(&mut chart, axis, "Units held back", 8, &|v| {
            if y_top >= 10.0 {
                fmt_signed_count(v.round() as i64)
            } else {
                format!("{v:.1}")
            }
        })?;
        for (strategy, points) in &series {
            chart.draw_series(LineSeries::new(
                points.iter().copied(),
                strategy_colour(*strategy).stroke_width(line_width(*strategy)),
            ))?;
        }
        Ok(())
    });
    let available = outcome
        .strategy(Strategy::Batch)
        .or_else(|| outcome.strategies.first())
        .map(|s| mean(&s.timeline.available_units))
        .unwrap_or(0.0);
    let caption = format!(
        "Units kept off the marketplaces by the buffer, summed over every SKU and channel (a \
         mean per time slice). Lower means more of your stock is on sale. For scale: on average \
         {} units were available, counted once per channel.",
        fmt_units(available)
    );
    format!(
        "<section>\n<h2>Stock held back over time</h2>\n{}<figure>{svg}<figcaption>{caption}</figcaption></figure>\n</section>\n",
        strategy_legend(outcome)
    )
}

fn trace_section(outcome: &AuditOutcome, settings: &Settings, axis: &TimeAxis) -> String {
    let mut html =
        String::from("<section>\n<h2>What your channels showed, for your most-ordered SKUs</h2>\n");
    // The SKUs are the same under every strategy; take the list from whichever has traces.
    let skus: Vec<&str> = outcome
        .strategy(Strategy::Batch)
        .filter(|s| !s.traces.is_empty())
        .or_else(|| outcome.strategies.iter().find(|s| !s.traces.is_empty()))
        .map(|s| s.traces.iter().map(|t| t.sku.as_str()).collect())
        .unwrap_or_default();
    if skus.is_empty() {
        html.push_str("<p class=\"note\">No SKU was traced in this audit.</p>\n</section>\n");
        return html;
    }
    let panels: Vec<Strategy> = [Strategy::Batch, Strategy::EventDynamic]
        .into_iter()
        .filter(|s| outcome.strategy(*s).is_some())
        .collect();
    let panels = if panels.is_empty() {
        ordered(outcome)
            .iter()
            .map(|s| s.strategy)
            .take(2)
            .collect()
    } else {
        panels
    };

    // One legend for the whole section: the channels that appear in any trace.
    let mut channels: Vec<Channel> = outcome
        .strategies
        .iter()
        .flat_map(|s| s.traces.iter())
        .flat_map(|t| t.shown.iter().map(|(c, _)| *c))
        .collect();
    channels.sort();
    channels.dedup();
    html.push_str("<div class=\"legend\"><span><span class=\"swatch\" style=\"background:");
    html.push_str(&css(STOCK_FILL));
    html.push_str(";border:2px solid #222b36\"></span>true available</span>");
    let _ = write!(
        html,
        "<span><span class=\"swatch\" style=\"background:{}\"></span>offered more than you had</span>",
        css(OVERSHOOT)
    );
    for c in &channels {
        let _ = write!(
            html,
            "<span><span class=\"line-swatch\" style=\"border-color:{}\"></span>{} shows</span>",
            css(channel_colour(*c)),
            c.as_str()
        );
    }
    html.push_str("</div>\n");

    for sku in skus {
        let traces: Vec<(Strategy, Option<&SkuTrace>)> = panels
            .iter()
            .map(|p| {
                (
                    *p,
                    outcome
                        .strategy(*p)
                        .and_then(|s| s.traces.iter().find(|t| t.sku == sku)),
                )
            })
            .collect();
        let svg = trace_chart(&traces, settings, axis);
        let _ = write!(
            html,
            "<h3>SKU {}</h3>\n<figure>{svg}</figure>\n",
            escape_html(sku)
        );
    }
    let _ = write!(
        html,
        "<p class=\"muted\">The grey area is what you truly had; each line is what a channel \
         offered. Red marks the moments a channel offered units you did not have: an oversell \
         waiting to happen. Where the lines sit well below the grey area, stock was held back. \
         Under batch the lines move only every {}, and late channels lag behind that.</p>\n</section>\n",
        format_duration(settings.batch_interval_ms)
    );
    html
}

fn trace_chart(
    traces: &[(Strategy, Option<&SkuTrace>)],
    settings: &Settings,
    axis: &TimeAxis,
) -> String {
    let mut low = 0i64;
    let mut high = 1i64;
    for trace in traces.iter().filter_map(|(_, t)| *t) {
        for (_, v) in trace
            .available
            .iter()
            .chain(trace.shown.iter().flat_map(|(_, s)| s.iter()))
        {
            low = low.min(*v);
            high = high.max(*v);
        }
    }
    let y_top = nice_top(high as f64) as i64;
    let y_low = if low < 0 {
        -(nice_top(-low as f64) as i64)
    } else {
        0
    };
    chart(CHART_WIDTH, TRACE_HEIGHT, |area| {
        let columns = traces.len().max(1);
        let panels = area.split_evenly((1, columns));
        for ((strategy, trace), panel) in traces.iter().zip(panels.iter()) {
            let title = format!(
                "{} ({})",
                strategy.as_str(),
                strategy_blurb(*strategy, settings)
            );
            let mut chart = ChartBuilder::on(panel)
                .margin(12)
                .margin_right(36)
                .caption(
                    title,
                    ("sans-serif", 19)
                        .into_font()
                        .style(FontStyle::Bold)
                        .color(&strategy_colour(*strategy)),
                )
                .x_label_area_size(50)
                .y_label_area_size(62)
                .build_cartesian_2d(axis.clone(), y_low..y_top)?;
            mesh(&mut chart, axis, "Units", 4, &|v| fmt_signed_count(*v))?;
            let Some(trace) = trace else {
                continue;
            };
            // Red where any channel offered more than was truly available: the oversells
            // waiting to happen, visible even when the lines coincide.
            chart.draw_series(overshoot(trace, axis).into_iter().map(
                |(from, to, low, high)| {
                    Rectangle::new([(from, low), (to, high)], OVERSHOOT.mix(0.55).filled())
                },
            ))?;
            let available = step_points(&trace.available, axis);
            chart.draw_series(
                AreaSeries::new(available.iter().copied(), 0, STOCK_FILL.mix(0.85).filled())
                    .border_style(INK.stroke_width(2)),
            )?;
            for (channel, steps) in &trace.shown {
                chart.draw_series(LineSeries::new(
                    step_points(steps, axis),
                    channel_colour(*channel).stroke_width(2),
                ))?;
            }
        }
        Ok(())
    })
}

/// Thicker lines underneath: where strategies coincide (often at zero) each still shows.
fn line_width(strategy: Strategy) -> u32 {
    match strategy {
        Strategy::Batch => 4,
        Strategy::EventStatic => 3,
        Strategy::EventDynamic => 2,
    }
}

type Chart<'a, Y> = ChartContext<'a, SVGBackend<'a>, Cartesian2d<TimeAxis, Y>>;

fn mesh<Y>(
    chart: &mut Chart<'_, Y>,
    axis: &TimeAxis,
    y_title: &str,
    labels: usize,
    y_format: &dyn Fn(&Y::ValueType) -> String,
) -> DrawResult
where
    Y: Ranged + ValueFormatter<Y::ValueType>,
{
    chart
        .configure_mesh()
        .x_labels(labels)
        .y_labels(6)
        .light_line_style(TRANSPARENT)
        .bold_line_style(GRID.stroke_width(1))
        .axis_style(AXIS.stroke_width(1))
        .label_style(("sans-serif", 16).into_font().color(&INK))
        .axis_desc_style(("sans-serif", 17).into_font().color(&INK))
        .x_desc(axis.title())
        .y_desc(y_title)
        .y_label_formatter(y_format)
        .draw()?;
    Ok(())
}

type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Draws onto a fresh SVG and returns it for inline use. A drawing error (none is expected with
/// an SVG string as the target) becomes a note rather than a broken page.
fn chart(
    width: u32,
    height: u32,
    draw: impl FnOnce(&DrawingArea<SVGBackend<'_>, plotters::coord::Shift>) -> DrawResult,
) -> String {
    let mut svg = String::new();
    let result = {
        let backend = SVGBackend::with_string(&mut svg, (width, height));
        let area = backend.into_drawing_area();
        area.fill(&WHITE)
            .map_err(|e| e.to_string())
            .and_then(|()| draw(&area).map_err(|e| e.to_string()))
            .and_then(|()| area.present().map_err(|e| e.to_string()))
    };
    match result {
        // Inline SVG in HTML needs no namespace declaration; leaving it out keeps the page free
        // of any URL.
        Ok(()) => svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1),
        Err(e) => format!(
            "<p class=\"note\">This chart could not be drawn: {}</p>",
            escape_html(&e)
        ),
    }
}

/// A step function as a polyline: each value holds until the next step, the last until the axis
/// ends.
fn step_points(steps: &Steps, axis: &TimeAxis) -> Vec<(Millis, i64)> {
    let clamp = |t: Millis| t.clamp(axis.start, axis.end);
    let mut points = Vec::with_capacity(steps.len().min(MAX_TRACE_POINTS) * 2 + 2);
    if steps.len() <= MAX_TRACE_POINTS {
        for (i, &(at, value)) in steps.iter().enumerate() {
            if i > 0 {
                points.push((clamp(at), steps[i - 1].1));
            }
            points.push((clamp(at), value));
        }
    } else {
        // Per bucket: the value before, the lowest and highest reached, then the last, all at
        // the bucket's first step. At chart resolution that is the same picture.
        let buckets = (MAX_TRACE_POINTS / 4) as i64;
        let width = ((axis.end - axis.start) / buckets).max(1);
        let mut previous: Option<i64> = None;
        let mut i = 0;
        while i < steps.len() {
            let bucket = (clamp(steps[i].0) - axis.start) / width;
            let at = clamp(steps[i].0);
            let (mut low, mut high) = (steps[i].1, steps[i].1);
            let mut j = i;
            while j < steps.len() && (clamp(steps[j].0) - axis.start) / width == bucket {
                low = low.min(steps[j].1);
                high = high.max(steps[j].1);
                j += 1;
            }
            if let Some(p) = previous {
                points.push((at, p));
            }
            points.extend([(at, low), (at, high), (at, steps[j - 1].1)]);
            previous = Some(steps[j - 1].1);
            i = j;
        }
    }
    if let Some(&(_, last)) = steps.last() {
        points.push((axis.end, last));
    }
    points
}

/// The spans where the highest channel showed more than the true `available`: (from, to,
/// available, highest shown), merged across channels.
fn overshoot(trace: &SkuTrace, axis: &TimeAxis) -> Vec<(Millis, Millis, i64, i64)> {
    let mut times: Vec<Millis> = trace
        .available
        .iter()
        .chain(trace.shown.iter().flat_map(|(_, s)| s.iter()))
        .map(|(at, _)| (*at).clamp(axis.start, axis.end))
        .collect();
    times.sort_unstable();
    times.dedup();
    // The value of a step function at `at`, walking forward with a cursor (times only increase).
    fn value_at(steps: &Steps, cursor: &mut usize, at: Millis) -> Option<i64> {
        while *cursor < steps.len() && steps[*cursor].0 <= at {
            *cursor += 1;
        }
        (*cursor > 0).then(|| steps[*cursor - 1].1)
    }
    let mut available_cursor = 0;
    let mut shown_cursors = vec![0; trace.shown.len()];
    let mut spans: Vec<(Millis, Millis, i64, i64)> = Vec::new();
    for (i, &from) in times.iter().enumerate() {
        let to = times.get(i + 1).copied().unwrap_or(axis.end);
        let Some(available) = value_at(&trace.available, &mut available_cursor, from) else {
            continue;
        };
        let highest = trace
            .shown
            .iter()
            .zip(shown_cursors.iter_mut())
            .filter_map(|((_, steps), cursor)| value_at(steps, cursor, from))
            .max();
        if let Some(highest) = highest.filter(|h| *h > available.max(0)) {
            let low = available.max(0);
            match spans.last_mut() {
                Some(last) if last.1 == from && last.2 == low && last.3 == highest => last.1 = to,
                _ => spans.push((from, to.max(from), low, highest)),
            }
        }
    }
    spans
}

/// A round number at or above `value` with some headroom, so lines never touch the top.
fn nice_top(value: f64) -> f64 {
    if value <= 0.0 || !value.is_finite() {
        return 1.0;
    }
    let padded = value * 1.08;
    let magnitude = 10f64.powf(padded.log10().floor());
    for step in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if step * magnitude >= padded {
            return (step * magnitude).max(1.0);
        }
    }
    10.0 * magnitude
}

fn mean(values: &[f64]) -> f64 {
    if values.is_empty() {
        0.0
    } else {
        values.iter().sum::<f64>() / values.len() as f64
    }
}

/// A UTC time axis whose labels fall on round times (whole minutes, hours, days) rather than on
/// round millisecond counts.
#[derive(Debug, Clone)]
struct TimeAxis {
    start: Millis,
    end: Millis,
}

impl TimeAxis {
    fn over(start: Millis, end: Millis) -> Self {
        Self {
            start,
            end: end.max(start + MIN_AXIS_SPAN),
        }
    }

    fn span(&self) -> Millis {
        self.end - self.start
    }

    fn step_for(&self, labels: usize) -> Millis {
        const STEPS: [Millis; 21] = [
            SECOND,
            5 * SECOND,
            10 * SECOND,
            15 * SECOND,
            30 * SECOND,
            MINUTE,
            2 * MINUTE,
            5 * MINUTE,
            10 * MINUTE,
            15 * MINUTE,
            30 * MINUTE,
            HOUR,
            2 * HOUR,
            3 * HOUR,
            6 * HOUR,
            12 * HOUR,
            DAY,
            2 * DAY,
            7 * DAY,
            14 * DAY,
            28 * DAY,
        ];
        let labels = labels.max(2) as i64;
        STEPS
            .into_iter()
            .find(|step| self.span() / step < labels)
            .unwrap_or_else(|| (self.span() / labels).div_euclid(DAY).max(1) * 28 * DAY)
    }

    fn same_day(&self) -> bool {
        self.start.div_euclid(DAY) == (self.end - 1).div_euclid(DAY)
    }

    fn title(&self) -> String {
        if self.same_day() {
            format!("Time (UTC), {}", fmt_date(self.start))
        } else {
            "Time (UTC)".to_owned()
        }
    }
}

impl Ranged for TimeAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = Millis;

    fn map(&self, value: &Millis, limit: (i32, i32)) -> i32 {
        let fraction = (value - self.start) as f64 / self.span() as f64;
        limit.0 + (fraction * (limit.1 - limit.0) as f64).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<Millis> {
        let step = self.step_for(hint.max_num_points());
        let first = self.start.div_euclid(step) * step;
        let first = if first < self.start {
            first + step
        } else {
            first
        };
        (0..)
            .map(|i| first + i * step)
            .take_while(|t| *t <= self.end)
            .collect()
    }

    fn range(&self) -> Range<Millis> {
        self.start..self.end
    }
}

impl ValueFormatter<Millis> for TimeAxis {
    fn format_ext(&self, value: &Millis) -> String {
        let Some(at) = DateTime::<Utc>::from_timestamp_millis(*value) else {
            return String::new();
        };
        let format = if self.span() <= 10 * MINUTE {
            "%H:%M:%S"
        } else if self.same_day() {
            "%H:%M"
        } else if at.timestamp_millis().rem_euclid(DAY) == 0 && self.span() > 3 * DAY {
            "%b %-d"
        } else {
            "%b %-d %H:%M"
        };
        at.format(format).to_string()
    }
}

// ---------------------------------------------------------------------------------------------
// Assumptions

fn assumptions(outcome: &AuditOutcome, settings: &Settings) -> String {
    let mut html = String::from("<section>\n<h2>Assumptions</h2>\n<dl>\n");
    let _ = write!(
        html,
        "<dt>Period</dt><dd>{} to {}, {}, {}</dd>\n\
         <dt>batch</dt><dd>Pushes every {} from the start, each showing available stock less a \
         {} buffer (rounded up)</dd>\n\
         <dt>event_static</dt><dd>Pushes after every sale or restock, with the same {} buffer</dd>\n\
         <dt>event_dynamic</dt><dd>Pushes after every sale or restock, with the dynamic buffer \
         worked out only from what had happened before that moment</dd>\n",
        fmt_time(outcome.start),
        fmt_time(outcome.end),
        counted(outcome.orders, "order"),
        counted(outcome.skus, "SKU"),
        format_duration(settings.batch_interval_ms),
        fmt_percent(settings.static_buffer_percent),
        fmt_percent(settings.static_buffer_percent),
    );
    let channels: Vec<Channel> = if outcome.channels.is_empty() {
        settings.delays.keys().copied().collect()
    } else {
        outcome.channels.clone()
    };
    html.push_str("<dt>Channel delays</dt><dd>From a push to the channel showing it: ");
    let delays: Vec<String> = channels
        .iter()
        .filter(|c| c.is_marketplace())
        .map(|c| format!("{} {}", c.as_str(), settings.delay(*c).describe()))
        .collect();
    html.push_str(&if delays.is_empty() {
        "none counted".to_owned()
    } else {
        delays.join("; ")
    });
    html.push_str(". Your storefront reserves through stockguard and is never oversold.</dd>\n");
    let default = Costs::default();
    let _ = write!(
        html,
        "<dt>Costs</dt><dd>{} per oversold order (cancellation, marketplace penalties, support){}; \
         {} margin per unit of a sale refused while stock was on hand{}</dd>\n\
         <dt>Held back</dt><dd>Buffer units × time over available units × time, for every SKU \
         and marketplace channel while stock was on hand</dd>\n</dl>\n</section>\n",
        fmt_money(settings.costs.per_oversell),
        if settings.costs.per_oversell == default.per_oversell {
            " (default)"
        } else {
            ""
        },
        fmt_money(settings.costs.per_lost_unit),
        if settings.costs.per_lost_unit == default.per_lost_unit {
            " (default)"
        } else {
            ""
        },
    );
    html
}

// ---------------------------------------------------------------------------------------------
// Formatting

/// Escapes text for HTML content and attribute values alike.
pub fn escape_html(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    for c in raw.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn fmt_count(n: u64) -> String {
    group_thousands(&n.to_string())
}

fn fmt_signed_count(n: i64) -> String {
    let grouped = fmt_count(n.unsigned_abs());
    if n < 0 {
        format!("−{grouped}")
    } else {
        grouped
    }
}

/// Whole units when there are many, one decimal when a fraction matters.
fn fmt_units(units: f64) -> String {
    if units.abs() >= 100.0 {
        group_thousands(&format!("{:.0}", units.abs()))
    } else {
        format!("{:.1}", units.abs())
    }
}

fn fmt_percent(percent: f64) -> String {
    let rounded = format!("{percent:.1}");
    let trimmed = rounded.strip_suffix(".0").unwrap_or(&rounded);
    format!("{trimmed}%")
}

fn fmt_money(amount: f64) -> String {
    let amount = amount.abs();
    let whole = amount.trunc() as u64;
    let cents = ((amount - amount.trunc()) * 100.0).round() as u64;
    let (whole, cents) = if cents == 100 {
        (whole + 1, 0)
    } else {
        (whole, cents)
    };
    if cents == 0 {
        format!("${}", fmt_count(whole))
    } else {
        format!("${}.{cents:02}", fmt_count(whole))
    }
}

fn fmt_signed_money(amount: f64) -> String {
    if amount < 0.0 {
        format!("{} more", fmt_money(amount))
    } else {
        format!("{} saved", fmt_money(amount))
    }
}

fn fmt_time(at: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(at)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_else(|| format!("{at} ms"))
}

fn counted(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{} {noun}s", fmt_count(n))
    }
}

fn fmt_period(start: Millis, end: Millis) -> String {
    if end <= start {
        format!("at {}", fmt_time(start))
    } else {
        format!(
            "from {} to {} ({})",
            fmt_time(start),
            fmt_time(end),
            fmt_span(end - start)
        )
    }
}

fn fmt_date(at: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(at)
        .map(|t| t.format("%a %-d %b %Y").to_string())
        .unwrap_or_default()
}

fn fmt_span(ms: Millis) -> String {
    let ms = ms.max(0);
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit}")
        } else {
            format!("{n} {unit}s")
        }
    };
    if ms >= 2 * DAY {
        plural((ms + DAY / 2) / DAY, "day")
    } else if ms >= 2 * HOUR {
        plural((ms + HOUR / 2) / HOUR, "hour")
    } else if ms >= 2 * MINUTE {
        plural((ms + MINUTE / 2) / MINUTE, "minute")
    } else {
        plural((ms + SECOND / 2) / SECOND, "second")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outcome::{Bins, Timeline};

    const START: Millis = 1_793_577_600_000; // 2026-11-02T00:00:00Z

    fn counts(oversells: u64, lost_units: u64, held_back: f64) -> Counts {
        Counts {
            orders_taken: 1234 + oversells,
            oversells,
            oversold_units: oversells * 2,
            lost_sales: lost_units / 2,
            lost_units,
            held_back_unit_ms: held_back * 1000.0,
            available_unit_ms: 100_000.0,
        }
    }

    fn trace(sku: &str) -> SkuTrace {
        SkuTrace {
            sku: sku.to_owned(),
            available: vec![(START, 10), (START + HOUR, 4), (START + 2 * HOUR, 0)],
            shown: vec![
                (Channel::Amazon, vec![(START, 9), (START + 90 * MINUTE, 3)]),
                (Channel::Shopify, vec![(START, 9), (START + HOUR, 4)]),
            ],
        }
    }

    fn outcome(sku: &str) -> AuditOutcome {
        let end = START + 3 * HOUR;
        let bins = Bins::over(START, end, 4);
        let strategies = Strategy::ALL
            .into_iter()
            .zip([
                counts(1500, 40, 10.0),
                counts(700, 30, 10.0),
                counts(90, 7, 3.5),
            ])
            .map(|(strategy, counts)| StrategyOutcome {
                strategy,
                counts,
                timeline: Timeline {
                    oversells: vec![1, 0, 2, 1],
                    held_back_units: vec![4.0, 3.0, 2.5, 1.0],
                    available_units: vec![40.0, 30.0, 25.0, 10.0],
                },
                traces: vec![trace(sku)],
            })
            .collect();
        AuditOutcome {
            orders: 2000,
            skus: 3,
            start: START,
            end,
            bins,
            channels: vec![Channel::Amazon, Channel::Shopify],
            strategies,
        }
    }

    fn assert_self_contained(html: &str) {
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.trim_end().ends_with("</html>"));
        for forbidden in ["http://", "https://", "<script", "src=", "@import", "url("] {
            assert!(!html.contains(forbidden), "page contains {forbidden:?}");
        }
    }

    #[test]
    fn the_page_refers_to_nothing_outside_itself() {
        assert_self_contained(&render_report(&outcome("MUG"), &Settings::default()));
    }

    #[test]
    fn every_strategy_and_its_figures_are_on_the_page() {
        let html = render_report(&outcome("MUG"), &Settings::default());
        for strategy in Strategy::ALL {
            assert!(html.contains(strategy.as_str()), "{}", strategy.as_str());
        }
        // Oversells, oversold units, lost units, held back, costs, totals.
        for figure in [
            "1,500", "700", "90", "3,000", "1,400", "180", "10%", "3.5%", "$37,500", "$17,500",
            "$2,250", "$320", "$56", "$37,820", "$2,306",
        ] {
            assert!(html.contains(figure), "{figure} missing");
        }
        // The headline: 1,410 of 1,500 avoided, and what that is worth.
        assert!(html.contains("94%"), "avoided percentage");
        assert!(html.contains("1,410 of batch"), "avoided count");
        assert!(html.contains("$35,514"), "saving");
        assert!(html.contains("65%"), "held back released");
        // The assumptions.
        assert!(html.contains("every 15m"));
        assert!(html.contains("amazon 5m to 15m"));
        assert!(html.contains("shopify 1s to 5s"));
        assert!(html.contains("$25 per oversold order"));
    }

    #[test]
    fn sku_names_are_escaped() {
        let html = render_report(&outcome("<b>&\"'x"), &Settings::default());
        assert!(html.contains("&lt;b&gt;&amp;&quot;&#39;x"));
        assert!(!html.contains("<b>&\"'x"));
        assert_self_contained(&html);
    }

    #[test]
    fn no_oversells_anywhere_says_so() {
        let mut outcome = outcome("MUG");
        for s in &mut outcome.strategies {
            s.counts.oversells = 0;
            s.counts.oversold_units = 0;
            s.timeline.oversells = vec![0; 4];
        }
        let html = render_report(&outcome, &Settings::default());
        assert!(html.contains("Neither batch nor event_dynamic oversold"));
        assert!(html.contains("No strategy oversold at any point"));
        assert_self_contained(&html);
    }

    #[test]
    fn a_single_order_and_a_single_bin_render() {
        let mut outcome = outcome("MUG");
        outcome.end = outcome.start;
        outcome.orders = 1;
        outcome.bins = Bins::over(outcome.start, outcome.end, 300);
        assert_eq!(outcome.bins.count, 1);
        for s in &mut outcome.strategies {
            s.counts = Counts {
                orders_taken: 1,
                ..Counts::default()
            };
            s.timeline = Timeline {
                oversells: vec![0],
                held_back_units: vec![0.0],
                available_units: vec![5.0],
            };
            s.traces = vec![SkuTrace {
                sku: "MUG".into(),
                available: vec![(START, 4)],
                shown: vec![(Channel::Ebay, vec![(START, 4)])],
            }];
        }
        let html = render_report(&outcome, &Settings::default());
        assert!(html.contains("1 order for 3 SKUs at 2026-11-02 00:00 UTC"));
        assert!(!html.contains("could not be drawn"));
        assert_self_contained(&html);
    }

    #[test]
    fn no_traced_skus_and_empty_timelines_render() {
        let mut outcome = outcome("MUG");
        for s in &mut outcome.strategies {
            s.traces.clear();
            s.timeline = Timeline {
                oversells: vec![],
                held_back_units: vec![],
                available_units: vec![],
            };
        }
        let html = render_report(&outcome, &Settings::default());
        assert!(html.contains("No SKU was traced"));
        assert_self_contained(&html);
    }

    #[test]
    fn a_missing_strategy_or_none_at_all_still_renders() {
        let mut outcome = outcome("MUG");
        outcome
            .strategies
            .retain(|s| s.strategy == Strategy::EventStatic);
        let html = render_report(&outcome, &Settings::default());
        assert!(html.contains("no comparison to headline"));
        assert!(html.contains("event_static"));
        outcome.strategies.clear();
        assert_self_contained(&render_report(&outcome, &Settings::default()));
    }

    #[test]
    fn dynamic_doing_worse_is_reported_as_worse() {
        let mut outcome = outcome("MUG");
        outcome.strategies[2].counts = counts(2000, 80, 12.0);
        let html = render_report(&outcome, &Settings::default());
        assert!(html.contains("+500"));
        assert!(html.contains("more than 15m batch sync"));
        assert!(html.contains("costing about"));
    }

    #[test]
    fn a_channel_showing_more_than_available_is_marked() {
        let axis = TimeAxis::over(START, START + 3 * HOUR);
        // Amazon shows 9 while 4 are available from 1h to 1h30; from 2h, with none left, Shopify
        // still shows 4.
        let spans = overshoot(&trace("MUG"), &axis);
        assert_eq!(
            spans,
            vec![
                (START + HOUR, START + 90 * MINUTE, 4, 9),
                (START + 2 * HOUR, START + 3 * HOUR, 0, 4),
            ]
        );
    }

    #[test]
    fn time_labels_fall_on_round_times() {
        let axis = TimeAxis::over(START + 7 * MINUTE, START + 20 * HOUR);
        let points = axis.key_points(8usize);
        assert!(points.len() <= 8 && points.len() >= 4, "{points:?}");
        assert!(points.iter().all(|t| t % HOUR == 0));
        assert_eq!(axis.format_ext(&(START + 3 * HOUR)), "03:00");
        assert_eq!(axis.title(), "Time (UTC), Mon 2 Nov 2026");

        let days = TimeAxis::over(START, START + 10 * DAY);
        assert_eq!(days.format_ext(&(START + DAY)), "Nov 3");
        let short = TimeAxis::over(START, START);
        assert_eq!(short.format_ext(&(START + 30 * SECOND)), "00:00:30");
    }

    #[test]
    fn long_traces_are_thinned_but_keep_their_extremes() {
        let axis = TimeAxis::over(START, START + DAY);
        let steps: Steps = (0..20_000)
            .map(|i| (START + i * 4 * SECOND, if i == 7_777 { -5 } else { i % 50 }))
            .collect();
        let points = step_points(&steps, &axis);
        assert!(points.len() <= MAX_TRACE_POINTS * 2, "{}", points.len());
        assert!(points.iter().any(|p| p.1 == -5));
        assert!(points.iter().any(|p| p.1 == 49));
        assert_eq!(points.last(), Some(&(START + DAY, 19_999 % 50)));
    }

    #[test]
    fn money_and_percentages_read_naturally() {
        assert_eq!(fmt_money(25.0), "$25");
        assert_eq!(fmt_money(1234567.5), "$1,234,567.50");
        assert_eq!(fmt_money(0.999), "$1");
        assert_eq!(fmt_percent(10.0), "10%");
        assert_eq!(fmt_percent(3.456), "3.5%");
        assert_eq!(fmt_count(1_000), "1,000");
        assert_eq!(fmt_count(999), "999");
        assert_eq!(fmt_signed_count(-1_500), "−1,500");
    }
}
