//! `stockguard channels list` and `stockguard channels set`.

use std::io::Write;

use anyhow::{Context, Result, anyhow, bail};
use stockguard_adapters::StateStore;
use stockguard_adapters::channel_store::ChannelSettings;
use stockguard_domain::channel::{BufferPolicy, CHANNEL_KINDS};
use stockguard_domain::{ChannelName, Sku};

use crate::SetChannel;
use crate::table::{buffer_text, write_table};

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
    let rows: Vec<[String; 8]> = channels
        .iter()
        .map(|c| {
            [
                c.name.to_string(),
                c.kind.clone(),
                yes_no(c.enabled).into(),
                c.endpoint.clone(),
                c.credentials.clone(),
                c.buffer.units.to_string(),
                c.buffer.percent.to_string(),
                c.maximum.map_or_else(|| "-".into(), |m| m.to_string()),
            ]
        })
        .collect();
    write_table(
        out,
        [
            "NAME",
            "KIND",
            "ENABLED",
            "ENDPOINT",
            "CREDENTIALS",
            "BUFFER UNITS",
            "BUFFER %",
            "MAXIMUM",
        ],
        &rows,
    )?;
    Ok(())
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
    apply_changes(&mut channel, args);
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
    Ok(())
}

fn write_settings(out: &mut impl Write, c: &ChannelSettings) -> std::io::Result<()> {
    let none = || "-".to_owned();
    let fields = [
        ("kind", c.kind.clone()),
        ("enabled", yes_no(c.enabled).into()),
        ("endpoint", c.endpoint.clone()),
        ("credentials", c.credentials.clone()),
        ("buffer units", c.buffer.units.to_string()),
        ("buffer percent", c.buffer.percent.to_string()),
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
