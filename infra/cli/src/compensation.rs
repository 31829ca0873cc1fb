//! `stockguard compensation show|set`: the seller's policy for oversells (how long a short order
//! may wait for inbound stock, what cancelling costs on each channel, or notify only).

use std::collections::BTreeMap;
use std::io::Write;

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use stockguard_adapters::StateStore;
use stockguard_domain::compensation::{CompensationPolicy, Policy};

use crate::Terminal;
use crate::report::{Report, emit};

pub const SET_HELP: &str = "\
Options not given keep their stored values (the defaults until set: compensate, a 24h wait,
penalties storefront 1, shopify 2, ebay 5, walmart 8, amazon 10, any other channel 5).
The cheapest channel to cancel on is the one with the lowest penalty.

Examples:
  stockguard compensation set --policy notify_only
  stockguard compensation set --max-wait 2h --cancel-penalty ebay=3 --cancel-penalty walmart=9";

#[derive(Debug, Args)]
pub struct SetCompensation {
    /// compensate (wait for inbound stock or cancel the cheapest short order) or notify_only.
    #[arg(long, value_parser = Policy::parse)]
    pub policy: Option<Policy>,
    /// How long a short order may wait for inbound stock: N followed by s, m or h.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration_ms)]
    pub max_wait: Option<i64>,
    /// What cancelling an order costs on a channel, CHANNEL=COST (repeatable).
    #[arg(long, value_name = "CHANNEL=COST", value_parser = parse_penalty)]
    pub cancel_penalty: Vec<(String, f64)>,
    /// What cancelling costs on a channel without its own penalty.
    #[arg(long, value_name = "COST", value_parser = parse_cost)]
    pub default_penalty: Option<f64>,
}

fn parse_cost(raw: &str) -> Result<f64, String> {
    match raw.parse::<f64>() {
        Ok(c) if c.is_finite() && c >= 0.0 => Ok(c),
        _ => Err(format!("{raw:?} is not a cost of 0 or more")),
    }
}

fn parse_penalty(raw: &str) -> Result<(String, f64), String> {
    let (channel, cost) = raw
        .split_once('=')
        .ok_or_else(|| format!("{raw:?} is not CHANNEL=COST"))?;
    let channel = stockguard_domain::ChannelName::parse(channel.trim())?;
    Ok((channel.to_string(), parse_cost(cost.trim())?))
}

fn parse_duration_ms(raw: &str) -> Result<i64, String> {
    let raw = raw.trim();
    let (digits, unit) = raw.split_at(raw.find(|c: char| !c.is_ascii_digit()).unwrap_or(raw.len()));
    let n: i64 = digits
        .parse()
        .map_err(|_| format!("{raw:?} is not a duration such as 90s, 30m or 24h"))?;
    let unit_ms = match unit {
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("{raw:?} is not a duration such as 90s, 30m or 24h")),
    };
    Ok(n.saturating_mul(unit_ms))
}

/// The policy as stored.
#[derive(Debug, Serialize)]
pub struct PolicyReport {
    pub policy: String,
    pub max_wait_ms: i64,
    pub cancel_penalty: BTreeMap<String, f64>,
    pub default_penalty: f64,
}

impl From<&CompensationPolicy> for PolicyReport {
    fn from(p: &CompensationPolicy) -> Self {
        Self {
            policy: p.policy.as_str().to_owned(),
            max_wait_ms: p.max_wait_ms,
            cancel_penalty: p.cancel_penalty.clone(),
            default_penalty: p.default_penalty,
        }
    }
}

impl Report for PolicyReport {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(out, "policy           {}", self.policy)?;
        writeln!(
            out,
            "max wait         {} min",
            self.max_wait_ms as f64 / 60_000.0
        )?;
        let penalties: Vec<String> = self
            .cancel_penalty
            .iter()
            .map(|(c, p)| format!("{c} {p}"))
            .collect();
        writeln!(out, "cancel penalty   {}", penalties.join(", "))?;
        writeln!(out, "other channels   {}", self.default_penalty)
    }
}

pub async fn show(store: &StateStore, out: &mut impl Write, terminal: Terminal) -> Result<()> {
    let policy = store
        .compensation_policy()
        .await
        .context("reading the compensation policy")?;
    emit(out, terminal, &PolicyReport::from(&policy))
}

pub async fn set(
    store: &StateStore,
    args: &SetCompensation,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    if args.policy.is_none()
        && args.max_wait.is_none()
        && args.cancel_penalty.is_empty()
        && args.default_penalty.is_none()
    {
        bail!("nothing to set: give --policy, --max-wait, --cancel-penalty or --default-penalty");
    }
    let mut policy = store
        .compensation_policy()
        .await
        .context("reading the compensation policy")?;
    if let Some(p) = args.policy {
        policy.policy = p;
    }
    if let Some(ms) = args.max_wait {
        policy.max_wait_ms = ms;
    }
    for (channel, cost) in &args.cancel_penalty {
        policy.cancel_penalty.insert(channel.clone(), *cost);
    }
    if let Some(d) = args.default_penalty {
        policy.default_penalty = d;
    }
    store
        .put_compensation_policy(&policy)
        .await
        .context("storing the compensation policy")?;
    emit(out, terminal, &PolicyReport::from(&policy))
}
