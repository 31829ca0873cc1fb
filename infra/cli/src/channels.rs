//! `stockguard channels list` and `stockguard channels set`.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use serde::Serialize;
use stockguard_adapters::StateStore;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::buffer::BufferMode;
use stockguard_domain::channel::{BufferPolicy, ChannelKind};
use stockguard_domain::{ChannelName, Sku};

use crate::report::{Report, emit};
use crate::table::{buffer_text, duration_text, write_table};
use crate::{SetChannel, Terminal};

/// The secret name a new channel gets when `--credentials` is not given.
pub fn default_credentials(name: &ChannelName) -> String {
    format!("stockguard/channels/{name}")
}

/// `channels list`: every configured channel, by name.
#[derive(Debug, Serialize)]
pub struct ChannelList {
    pub channels: Vec<ChannelRow>,
}

/// One row of `channels list`: the table's columns.
#[derive(Debug, Serialize)]
pub struct ChannelRow {
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    pub mode: String,
    pub buffer_units: i64,
    pub buffer_percent: f64,
    pub risk_target: f64,
    pub min_buffer: i64,
    pub max_buffer: Option<i64>,
    /// 0: the low-stock rule is off.
    pub low_stock_units: i64,
    pub low_stock_max_delay_ms: i64,
    pub maximum: Option<i64>,
    pub endpoint: String,
    pub credentials: String,
}

impl ChannelRow {
    fn of(c: &ChannelSettings) -> Self {
        Self {
            name: c.name.to_string(),
            kind: c.kind,
            enabled: c.enabled,
            mode: c.buffer_mode.as_str().into(),
            buffer_units: c.buffer.units,
            buffer_percent: c.buffer.percent,
            risk_target: c.dynamic.risk_target,
            min_buffer: c.dynamic.min_units,
            max_buffer: c.dynamic.max_units,
            low_stock_units: c.dynamic.low_stock_units,
            low_stock_max_delay_ms: c.dynamic.low_stock_max_delay_ms,
            maximum: c.maximum,
            endpoint: c.endpoint.clone(),
            credentials: c.credentials.clone(),
        }
    }
}

impl Report for ChannelList {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        if self.channels.is_empty() {
            return writeln!(
                out,
                "No channels are configured. Add one with \
                 `stockguard channels set NAME --kind KIND --endpoint URL`."
            );
        }
        let none = || "-".to_owned();
        let rows: Vec<[String; 13]> = self
            .channels
            .iter()
            .map(|c| {
                [
                    c.name.clone(),
                    c.kind.to_string(),
                    yes_no(c.enabled).into(),
                    c.mode.clone(),
                    c.buffer_units.to_string(),
                    c.buffer_percent.to_string(),
                    c.risk_target.to_string(),
                    c.min_buffer.to_string(),
                    c.max_buffer.map_or_else(none, |m| m.to_string()),
                    low_stock_cell(c.low_stock_units, c.low_stock_max_delay_ms),
                    c.maximum.map_or_else(none, |m| m.to_string()),
                    c.endpoint.clone(),
                    c.credentials.clone(),
                ]
            })
            .collect();
        write_table(
            out,
            [
                "NAME",
                "KIND",
                "ENABLED",
                "MODE",
                "BUFFER UNITS",
                "BUFFER %",
                "RISK TARGET",
                "MIN BUFFER",
                "MAX BUFFER",
                "LOW STOCK",
                "MAXIMUM",
                "ENDPOINT",
                "CREDENTIALS",
            ],
            &rows,
        )?;
        writeln!(
            out,
            "\nMODE says which buffer applies: static holds back BUFFER UNITS + BUFFER %; dynamic \
             sizes it from sales elsewhere and the channel's delay (RISK TARGET, MIN BUFFER, MAX \
             BUFFER, LOW STOCK)."
        )
    }
}

/// A table of every configured channel.
pub async fn list(store: &StateStore, out: &mut impl Write, terminal: Terminal) -> Result<()> {
    let mut channels = store.channels().await.context("reading channels")?;
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    let report = ChannelList {
        channels: channels.iter().map(ChannelRow::of).collect(),
    };
    emit(out, terminal, &report)
}

/// "off", or "5 (>60s)": at 5 available or fewer, channels slower than 60 s show 0.
fn low_stock_cell(units: i64, max_delay_ms: i64) -> String {
    if units == 0 {
        "off".into()
    } else {
        format!("{units} (>{})", duration_text(max_delay_ms))
    }
}

/// `channels set NAME`: the channel as stored after the change, and notes on what it means.
#[derive(Debug, Serialize)]
pub struct ChannelSet {
    pub created: bool,
    pub channel: ChannelDetail,
    pub notes: Vec<String>,
}

/// Every setting of a channel, as `channels set` shows them.
#[derive(Debug, Serialize)]
pub struct ChannelDetail {
    pub name: String,
    pub kind: ChannelKind,
    pub enabled: bool,
    pub endpoint: String,
    pub credentials: String,
    pub buffer_mode: String,
    pub buffer_units: i64,
    pub buffer_percent: f64,
    pub risk_target: f64,
    pub min_buffer: i64,
    pub max_buffer: Option<i64>,
    pub low_stock_units: i64,
    pub low_stock_max_delay_ms: i64,
    pub maximum: Option<i64>,
    pub seller_id: Option<String>,
    pub marketplace_id: Option<String>,
}

impl ChannelDetail {
    fn of(c: &ChannelSettings) -> Self {
        Self {
            name: c.name.to_string(),
            kind: c.kind,
            enabled: c.enabled,
            endpoint: c.endpoint.clone(),
            credentials: c.credentials.clone(),
            buffer_mode: c.buffer_mode.as_str().into(),
            buffer_units: c.buffer.units,
            buffer_percent: c.buffer.percent,
            risk_target: c.dynamic.risk_target,
            min_buffer: c.dynamic.min_units,
            max_buffer: c.dynamic.max_units,
            low_stock_units: c.dynamic.low_stock_units,
            low_stock_max_delay_ms: c.dynamic.low_stock_max_delay_ms,
            maximum: c.maximum,
            seller_id: c.seller_id.clone(),
            marketplace_id: c.marketplace_id.clone(),
        }
    }
}

impl Report for ChannelSet {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} channel {}:",
            if self.created { "Created" } else { "Updated" },
            self.channel.name
        )?;
        write_settings(out, &self.channel)?;
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        Ok(())
    }
}

/// `channels set NAME --sku SKU`: the SKU's buffer override as stored.
#[derive(Debug, Serialize)]
pub struct OverrideSet {
    pub created: bool,
    pub channel: String,
    pub sku: String,
    pub buffer_units: i64,
    pub buffer_percent: f64,
    /// The channel's own buffer, which every other SKU gets.
    pub channel_buffer_units: i64,
    pub channel_buffer_percent: f64,
    pub notes: Vec<String>,
}

impl Report for OverrideSet {
    fn write_text(&self, out: &mut impl Write) -> std::io::Result<()> {
        writeln!(
            out,
            "{} buffer override for {} on channel {}:",
            if self.created { "Created" } else { "Updated" },
            self.sku,
            self.channel
        )?;
        writeln!(out, "  buffer units    {}", self.buffer_units)?;
        writeln!(out, "  buffer percent  {}", self.buffer_percent)?;
        writeln!(
            out,
            "  (the channel's own buffer, {}, applies to every other SKU)",
            buffer_text(self.channel_buffer_units, self.channel_buffer_percent)
        )?;
        for note in &self.notes {
            writeln!(out, "note: {note}")?;
        }
        Ok(())
    }
}

/// Creates or updates a channel, or with `--sku` sets a per-SKU buffer override; then prints
/// what is stored.
pub async fn set(
    store: &StateStore,
    args: &SetChannel,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let name = &args.name;
    let existing = store
        .channel(name)
        .await
        .with_context(|| format!("reading channel {name}"))?;
    if let Some(sku) = &args.sku {
        let Some(channel) = existing else {
            bail!(
                "channel {name} is not configured, so it has no buffer to override; \
                 add it first with `stockguard channels set {name} --kind KIND --endpoint URL`"
            );
        };
        return set_override(store, &channel, sku, args, out, terminal).await;
    }

    let created = existing.is_none();
    let mut channel = match existing {
        Some(channel) => channel,
        None => {
            let (Some(kind), Some(endpoint)) = (&args.kind, &args.endpoint) else {
                bail!(
                    "channel {name} is not configured yet: a new channel needs --kind ({}) \
                     and --endpoint URL",
                    ChannelKind::names().join("|")
                );
            };
            ChannelSettings {
                name: name.clone(),
                kind: *kind,
                enabled: true,
                endpoint: endpoint.clone(),
                credentials: default_credentials(name),
                buffer_mode: Default::default(),
                buffer: BufferPolicy::default(),
                dynamic: Default::default(),
                maximum: None,
                seller_id: None,
                marketplace_id: None,
            }
        }
    };
    // Checked before anything is stored: a refused change changes nothing.
    let unchanged = if created { "created" } else { "changed" };
    let previous_mode = channel.buffer_mode;
    let mode_change =
        buffer_mode_of(args).map_err(|e| anyhow!("{e}; channel {name} was not {unchanged}"))?;
    apply_changes(&mut channel, args);
    if let Some(mode) = mode_change {
        channel.buffer_mode = mode;
    }
    channel
        .dynamic
        .validate()
        .map_err(|e| anyhow!("{e}; channel {name} was not {unchanged}"))?;
    store
        .put_channel(&channel)
        .await
        .with_context(|| format!("storing channel {name}"))?;
    let stored = store
        .channel(name)
        .await
        .with_context(|| format!("reading channel {name} back"))?
        .ok_or_else(|| anyhow!("channel {name} was stored but cannot be read back"))?;

    let mut notes = Vec::new();
    let switched_to_static = stored.buffer_mode == BufferMode::Static
        && (created || previous_mode != BufferMode::Static);
    if args.buffer_mode.is_none() && static_given(args) && switched_to_static {
        let was = if created {
            "new channels start dynamic"
        } else {
            "it was dynamic"
        };
        notes.push(format!(
            "--buffer-units/--buffer-percent switched channel {name} to static buffers \
             ({was}); `--buffer-mode dynamic` switches it back"
        ));
    } else if stored.buffer_mode == BufferMode::Static && dynamic_given(args) {
        notes.push(format!(
            "channel {name} uses static buffers; the dynamic settings apply once it is \
             switched with `--buffer-mode dynamic`"
        ));
    } else if stored.buffer_mode == BufferMode::Dynamic && static_given(args) {
        notes.push(format!(
            "channel {name} uses dynamic buffers; --buffer-units/--buffer-percent apply \
             once it is switched with `--buffer-mode static`"
        ));
    }
    if created && args.credentials.is_none() {
        notes.push(format!(
            "credentials default to the secret {}; pass --credentials to use another",
            stored.credentials
        ));
    }
    if stored.kind == ChannelKind::Amazon
        && (stored.seller_id.is_none() || stored.marketplace_id.is_none())
    {
        notes.push(
            "amazon channels need --seller-id and --marketplace-id to push quantities".into(),
        );
    }
    let report = ChannelSet {
        created,
        channel: ChannelDetail::of(&stored),
        notes,
    };
    emit(out, terminal, &report)
}

/// Whether the static buffer's options are given.
fn static_given(args: &SetChannel) -> bool {
    args.buffer_units.is_some() || args.buffer_percent.is_some()
}

/// Whether any of the dynamic policy's options is given.
fn dynamic_given(args: &SetChannel) -> bool {
    args.risk_target.is_some()
        || args.min_buffer.is_some()
        || args.max_buffer.is_some()
        || args.no_max_buffer
        || args.low_stock_units.is_some()
        || args.low_stock_max_delay_ms.is_some()
}

/// The buffer mode the command sets, if any: `--buffer-mode`, or static when only the static
/// buffer's options are given (a seller setting a static buffer expects it to apply).
fn buffer_mode_of(args: &SetChannel) -> Result<Option<BufferMode>, String> {
    match args.buffer_mode {
        Some(mode) => Ok(Some(mode)),
        None if static_given(args) && dynamic_given(args) => Err(
            "--buffer-units/--buffer-percent set the static buffer and --risk-target, \
             --min-buffer, --max-buffer and --low-stock-units the dynamic one: add \
             --buffer-mode static or --buffer-mode dynamic to say which applies"
                .into(),
        ),
        None if static_given(args) => Ok(Some(BufferMode::Static)),
        None => Ok(None),
    }
}

fn apply_changes(c: &mut ChannelSettings, args: &SetChannel) {
    if let Some(kind) = args.kind {
        c.kind = kind;
    }
    if let Some(enabled) = args.enabled {
        c.enabled = enabled;
    }
    if let Some(endpoint) = &args.endpoint {
        c.endpoint.clone_from(endpoint);
    }
    if let Some(credentials) = &args.credentials {
        c.credentials.clone_from(credentials);
    }
    if let Some(units) = args.buffer_units {
        c.buffer.units = units;
    }
    if let Some(percent) = args.buffer_percent {
        c.buffer.percent = percent;
    }
    if let Some(target) = args.risk_target {
        c.dynamic.risk_target = target;
    }
    if let Some(min) = args.min_buffer {
        c.dynamic.min_units = min;
    }
    if let Some(max) = args.max_buffer {
        c.dynamic.max_units = Some(max);
    }
    if args.no_max_buffer {
        c.dynamic.max_units = None;
    }
    if let Some(units) = args.low_stock_units {
        c.dynamic.low_stock_units = units;
    }
    if let Some(ms) = args.low_stock_max_delay_ms {
        c.dynamic.low_stock_max_delay_ms = ms;
    }
    if let Some(maximum) = args.maximum {
        c.maximum = Some(maximum);
    }
    if args.no_maximum {
        c.maximum = None;
    }
    if let Some(id) = &args.seller_id {
        c.seller_id = Some(id.clone());
    }
    if let Some(id) = &args.marketplace_id {
        c.marketplace_id = Some(id.clone());
    }
}

async fn set_override(
    store: &StateStore,
    channel: &ChannelSettings,
    sku: &Sku,
    args: &SetChannel,
    out: &mut impl Write,
    terminal: Terminal,
) -> Result<()> {
    let name = &channel.name;
    if args.buffer_units.is_none() && args.buffer_percent.is_none() {
        bail!("with --sku, give --buffer-units and/or --buffer-percent");
    }
    let skus = std::slice::from_ref(sku);
    let existing = store
        .buffer_overrides(name, skus)
        .await
        .with_context(|| format!("reading the buffer override of {sku} on {name}"))?
        .remove(sku);
    // An override replaces the channel's buffer, so what is not given starts from the override
    // already stored, or else from the channel's buffer.
    let mut buffer = existing.unwrap_or(channel.buffer);
    if let Some(units) = args.buffer_units {
        buffer.units = units;
    }
    if let Some(percent) = args.buffer_percent {
        buffer.percent = percent;
    }
    store
        .put_buffer_override(name, sku, &buffer)
        .await
        .with_context(|| format!("storing the buffer override of {sku} on {name}"))?;
    let stored = store
        .buffer_overrides(name, skus)
        .await
        .with_context(|| format!("reading the buffer override of {sku} on {name} back"))?
        .remove(sku)
        .ok_or_else(|| anyhow!("the override of {sku} on {name} was stored but cannot be read"))?;
    let mut notes = Vec::new();
    if channel.buffer_mode == BufferMode::Dynamic {
        notes.push(format!(
            "channel {name} uses dynamic buffers; SKU overrides are static buffers and \
             apply once it is switched with `stockguard channels set {name} --buffer-mode static`"
        ));
    }
    let report = OverrideSet {
        created: existing.is_none(),
        channel: name.to_string(),
        sku: sku.to_string(),
        buffer_units: stored.units,
        buffer_percent: stored.percent,
        channel_buffer_units: channel.buffer.units,
        channel_buffer_percent: channel.buffer.percent,
        notes,
    };
    emit(out, terminal, &report)
}

fn write_settings(out: &mut impl Write, c: &ChannelDetail) -> std::io::Result<()> {
    let none = || "-".to_owned();
    // The policy of the other mode is kept; it says so.
    let (for_static, for_dynamic) = if c.buffer_mode == BufferMode::Static.as_str() {
        ("", "  (used in dynamic mode)")
    } else {
        ("  (used in static mode)", "")
    };
    let fields = [
        ("kind", c.kind.to_string()),
        ("enabled", yes_no(c.enabled).into()),
        ("endpoint", c.endpoint.clone()),
        ("credentials", c.credentials.clone()),
        ("buffer mode", c.buffer_mode.clone()),
        ("buffer units", format!("{}{for_static}", c.buffer_units)),
        (
            "buffer percent",
            format!("{}{for_static}", c.buffer_percent),
        ),
        ("risk target", format!("{}{for_dynamic}", c.risk_target)),
        ("min buffer", format!("{}{for_dynamic}", c.min_buffer)),
        (
            "max buffer",
            format!(
                "{}{for_dynamic}",
                c.max_buffer.map_or_else(none, |m| m.to_string())
            ),
        ),
        (
            "low stock units",
            if c.low_stock_units == 0 {
                format!("0 (off){for_dynamic}")
            } else {
                format!("{}{for_dynamic}", c.low_stock_units)
            },
        ),
        (
            "low stock delay",
            format!(
                "{} ms ({}){for_dynamic}",
                c.low_stock_max_delay_ms,
                duration_text(c.low_stock_max_delay_ms)
            ),
        ),
        ("maximum", c.maximum.map_or_else(none, |m| m.to_string())),
    ];
    for (label, value) in fields {
        writeln!(out, "  {label:<15} {value}")?;
    }
    // Amazon's ids: shown where they matter or were set.
    if c.kind == ChannelKind::Amazon || c.seller_id.is_some() || c.marketplace_id.is_some() {
        let seller = c.seller_id.clone().unwrap_or_else(none);
        let marketplace = c.marketplace_id.clone().unwrap_or_else(none);
        writeln!(out, "  {:<15} {seller}", "seller id")?;
        writeln!(out, "  {:<15} {marketplace}", "marketplace id")?;
    }
    Ok(())
}

fn yes_no(b: bool) -> &'static str {
    if b { "yes" } else { "no" }
}
