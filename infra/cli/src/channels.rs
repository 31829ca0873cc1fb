//! `stockguard channels list` and `stockguard channels set`.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use stockguard_adapters::StateStore;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::buffer::{BufferMode, DynamicPolicy};
use stockguard_domain::channel::{BufferPolicy, CHANNEL_KINDS};
use stockguard_domain::{ChannelName, Sku};

use crate::SetChannel;
use crate::table::{buffer_text, duration_text, write_table};

/// The secret name a new channel gets when `--credentials` is not given.
pub fn default_credentials(name: &ChannelName) -> String {
    format!("stockguard/channels/{name}")
}

/// A table of every configured channel.
pub async fn list(store: &StateStore, out: &mut impl Write) -> Result<()> {
    let mut channels = store.channels().await.context("reading channels")?;
    if channels.is_empty() {
        writeln!(
            out,
            "No channels are configured. Add one with \
             `stockguard channels set NAME --kind KIND --endpoint URL`."
        )?;
        return Ok(());
    }
    channels.sort_by(|a, b| a.name.cmp(&b.name));
    let none = || "-".to_owned();
    let rows: Vec<[String; 13]> = channels
        .iter()
        .map(|c| {
            [
                c.name.to_string(),
                c.kind.clone(),
                yes_no(c.enabled).into(),
                c.buffer_mode.as_str().into(),
                c.buffer.units.to_string(),
                c.buffer.percent.to_string(),
                c.dynamic.risk_target.to_string(),
                c.dynamic.min_units.to_string(),
                c.dynamic.max_units.map_or_else(none, |m| m.to_string()),
                low_stock_cell(&c.dynamic),
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
    )?;
    Ok(())
}

/// "off", or "5 (>60s)": at 5 available or fewer, channels slower than 60 s show 0.
fn low_stock_cell(d: &DynamicPolicy) -> String {
    if d.low_stock_units == 0 {
        "off".into()
    } else {
        format!(
            "{} (>{})",
            d.low_stock_units,
            duration_text(d.low_stock_max_delay_ms)
        )
    }
}

/// Creates or updates a channel, or with `--sku` sets a per-SKU buffer override; then prints
/// what is stored.
pub async fn set(store: &StateStore, args: &SetChannel, out: &mut impl Write) -> Result<()> {
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
        return set_override(store, &channel, sku, args, out).await;
    }

    let created = existing.is_none();
    let mut channel = match existing {
        Some(channel) => channel,
        None => {
            let (Some(kind), Some(endpoint)) = (&args.kind, &args.endpoint) else {
                bail!(
                    "channel {name} is not configured yet: a new channel needs --kind ({}) \
                     and --endpoint URL",
                    CHANNEL_KINDS.join("|")
                );
            };
            ChannelSettings {
                name: name.clone(),
                kind: kind.clone(),
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

    writeln!(
        out,
        "{} channel {name}:",
        if created { "Created" } else { "Updated" }
    )?;
    write_settings(out, &stored)?;
    let switched_to_static = stored.buffer_mode == BufferMode::Static
        && (created || previous_mode != BufferMode::Static);
    if args.buffer_mode.is_none() && static_given(args) && switched_to_static {
        let was = if created {
            "new channels start dynamic"
        } else {
            "it was dynamic"
        };
        writeln!(
            out,
            "note: --buffer-units/--buffer-percent switched channel {name} to static buffers \
             ({was}); `--buffer-mode dynamic` switches it back"
        )?;
    } else if stored.buffer_mode == BufferMode::Static && dynamic_given(args) {
        writeln!(
            out,
            "note: channel {name} uses static buffers; the dynamic settings apply once it is \
             switched with `--buffer-mode dynamic`"
        )?;
    } else if stored.buffer_mode == BufferMode::Dynamic && static_given(args) {
        writeln!(
            out,
            "note: channel {name} uses dynamic buffers; --buffer-units/--buffer-percent apply \
             once it is switched with `--buffer-mode static`"
        )?;
    }
    if created && args.credentials.is_none() {
        writeln!(
            out,
            "note: credentials default to the secret {}; pass --credentials to use another",
            stored.credentials
        )?;
    }
    if stored.kind == "amazon" && (stored.seller_id.is_none() || stored.marketplace_id.is_none()) {
        writeln!(
            out,
            "note: amazon channels need --seller-id and --marketplace-id to push quantities"
        )?;
    }
    Ok(())
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
    if let Some(kind) = &args.kind {
        c.kind.clone_from(kind);
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
    writeln!(
        out,
        "{} buffer override for {sku} on channel {name}:",
        if existing.is_some() {
            "Updated"
        } else {
            "Created"
        }
    )?;
    writeln!(out, "  buffer units    {}", stored.units)?;
    writeln!(out, "  buffer percent  {}", stored.percent)?;
    writeln!(
        out,
        "  (the channel's own buffer, {}, applies to every other SKU)",
        buffer_text(channel.buffer.units, channel.buffer.percent)
    )?;
    if channel.buffer_mode == BufferMode::Dynamic {
        writeln!(
            out,
            "note: channel {name} uses dynamic buffers; SKU overrides are static buffers and \
             apply once it is switched with `stockguard channels set {name} --buffer-mode static`"
        )?;
    }
    Ok(())
}

fn write_settings(out: &mut impl Write, c: &ChannelSettings) -> std::io::Result<()> {
    let none = || "-".to_owned();
    // The policy of the other mode is kept; it says so.
    let (for_static, for_dynamic) = match c.buffer_mode {
        BufferMode::Static => ("", "  (used in dynamic mode)"),
        BufferMode::Dynamic => ("  (used in static mode)", ""),
    };
    let d = &c.dynamic;
    let fields = [
        ("kind", c.kind.clone()),
        ("enabled", yes_no(c.enabled).into()),
        ("endpoint", c.endpoint.clone()),
        ("credentials", c.credentials.clone()),
        ("buffer mode", c.buffer_mode.as_str().into()),
        ("buffer units", format!("{}{for_static}", c.buffer.units)),
        (
            "buffer percent",
            format!("{}{for_static}", c.buffer.percent),
        ),
        ("risk target", format!("{}{for_dynamic}", d.risk_target)),
        ("min buffer", format!("{}{for_dynamic}", d.min_units)),
        (
            "max buffer",
            format!(
                "{}{for_dynamic}",
                d.max_units.map_or_else(none, |m| m.to_string())
            ),
        ),
        (
            "low stock units",
            if d.low_stock_units == 0 {
                format!("0 (off){for_dynamic}")
            } else {
                format!("{}{for_dynamic}", d.low_stock_units)
            },
        ),
        (
            "low stock delay",
            format!(
                "{} ms ({}){for_dynamic}",
                d.low_stock_max_delay_ms,
                duration_text(d.low_stock_max_delay_ms)
            ),
        ),
        ("maximum", c.maximum.map_or_else(none, |m| m.to_string())),
    ];
    for (label, value) in fields {
        writeln!(out, "  {label:<15} {value}")?;
    }
    // Amazon's ids: shown where they matter or were set.
    if c.kind == "amazon" || c.seller_id.is_some() || c.marketplace_id.is_some() {
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
