//! What the dynamic buffers keep in the state table:
//! - `SKU#… / VELOCITY`: decayed sales-rate accumulators (written by `StateTx::record_sale`);
//! - `SKU#… / BUFFERS`: each channel's buffer as the recompute last computed it, with its inputs;
//! - `ActiveIndex`: SKUs whose buffers may still move (recent sales, a signal), by when each is
//!   next due for a recompute (the `VELOCITY` item carries the index's keys);
//! - `HEALTH#channel / M#minute`: per-minute sync samples (counts and latency histograms, `ADD`
//!   only, so concurrent sync batches never conflict), and `P#…` read-back probes;
//! - `CHANNELS / HEALTH#channel`: a channel's delay and sync health as last assessed;
//! - `PROFILE / HOUR_OF_WEEK`: units sold per hour of the week, across the catalogue.

use std::collections::{BTreeMap, HashMap, HashSet};

use aws_sdk_dynamodb::types::AttributeValue;
use stockguard_domain::buffer::StoredSignal;
use stockguard_domain::decayed::{Accumulator, Horizons};
use stockguard_domain::delay::{LatencyHistogram, SyncWindow, bucket_of};
use stockguard_domain::inbound::SignalKind;
use stockguard_domain::velocity::{HOURS_PER_WEEK, HourOfWeekProfile, hour_of_week};
use stockguard_domain::{ChannelName, Millis, Position, Sku};

use crate::error::{AdapterError, classify};
use crate::items::*;
use crate::store::{StateStore, position_from};

const PROFILE_PK: &str = "PROFILE";
const PROFILE_SK: &str = "HOUR_OF_WEEK";
pub(crate) const HEALTH_SK_PREFIX: &str = "HEALTH#";
/// Sync samples and probes are kept this long (the window is shorter).
const HEALTH_RETENTION_DAYS: i64 = 1;

pub const SIGNAL_KINDS: [SignalKind; 4] = [
    SignalKind::AddToCartSurge,
    SignalKind::SocialMentionVelocity,
    SignalKind::CompetitorStockout,
    SignalKind::SearchVolume,
];

fn health_pk(channel: &ChannelName) -> String {
    format!("HEALTH#{channel}")
}
fn minute_sk(at: Millis) -> String {
    format!("M#{:012}", at.div_euclid(60_000))
}
fn probe_sk(at: Millis, sku: &Sku) -> String {
    format!("P#{at:020}#{sku}")
}

pub use stockguard_domain::recompute::{
    BufferInputs, StoredBuffers, StoredChannelBuffer, StoredHealth,
};

/// What one sync batch measured, added to the channel's current minute.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SyncSample {
    pub pushes: u64,
    pub failures: u64,
    pub throttled: u64,
    /// From the causing event to the channel's acknowledgement, per push.
    pub acknowledged_ms: Vec<i64>,
    /// How long the batch's oldest message waited on the queue.
    pub oldest_wait_ms: Option<i64>,
}

/// A push whose showing is checked by reading the channel back (Amazon processes pushes after
/// acknowledging them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub sk: String,
    pub sku: Sku,
    pub quantity: i64,
    /// The position version pushed: a newer acknowledged version replaced this quantity.
    pub version: u64,
    /// The causing event's time: the delay is measured from it.
    pub cause_at: Millis,
    pub acknowledged_at: Millis,
}

fn histogram_from(item: &Item, prefix: char) -> LatencyHistogram {
    let mut h = LatencyHistogram::default();
    for (name, value) in item {
        let mut chars = name.chars();
        if chars.next() != Some(prefix) {
            continue;
        }
        if let (Ok(b), AttributeValue::N(c)) = (chars.as_str().parse::<u16>(), value) {
            *h.counts.entry(b).or_default() += c.parse::<u64>().unwrap_or(0);
        }
    }
    h
}

impl StateStore {
    /// SKUs on the recompute's list, with when each was last touched: those due by `due_by`, or
    /// all of them with `None`.
    pub async fn active_skus(
        &self,
        due_by: Option<Millis>,
    ) -> Result<Vec<(Sku, Millis)>, AdapterError> {
        let items = self
            .query_all(|q| {
                let q = q
                    .index_name(ACTIVE_INDEX)
                    .expression_attribute_values(":a", s(ACTIVE));
                match due_by {
                    Some(t) => q
                        .key_condition_expression("active_pk = :a AND due_at <= :due")
                        .expression_attribute_values(":due", n(t)),
                    None => q.key_condition_expression("active_pk = :a"),
                }
            })
            .await?;
        items
            .iter()
            .map(|i| {
                Ok((
                    Sku::parse(get_s(i, "sku")?).map_err(AdapterError::permanent)?,
                    get_opt_i64(i, "touched_at")?.unwrap_or(0),
                ))
            })
            .collect()
    }

    /// When the recompute next looks at `sku`, unless a sale or signal touched it since
    /// `touched_at` (then it is due at once, as that write said).
    pub async fn schedule_check(
        &self,
        sku: &Sku,
        touched_at: Millis,
        due_at: Millis,
    ) -> Result<(), AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sku_pk(sku), VELOCITY)))
            .update_expression("SET due_at = :d")
            .condition_expression("touched_at = :t AND attribute_exists(active_pk)")
            .expression_attribute_values(":d", n(due_at))
            .expression_attribute_values(":t", n(touched_at))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e));
        match result {
            Err(e) if !e.is_condition_failed() => Err(e),
            _ => Ok(()),
        }
    }

    /// Takes a quiet SKU off the list, unless a sale or signal touched it since `touched_at`.
    pub async fn deactivate(&self, sku: &Sku, touched_at: Millis) -> Result<bool, AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sku_pk(sku), VELOCITY)))
            .update_expression("REMOVE active_pk")
            .condition_expression("touched_at = :t")
            .expression_attribute_values(":t", n(touched_at))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Position, sales accumulators, signals and stored buffers of each SKU, in one batch read.
    pub async fn buffer_inputs(
        &self,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, BufferInputs>, AdapterError> {
        let mut keys = Vec::with_capacity(skus.len() * (3 + SIGNAL_KINDS.len()));
        for sku in skus {
            for sk in [POSITION, VELOCITY, BUFFERS] {
                keys.push(key(sku_pk(sku), sk));
            }
            for kind in SIGNAL_KINDS {
                keys.push(key(sku_pk(sku), &signal_sk(kind.as_str())));
            }
        }
        let mut found: HashMap<Sku, BufferInputs> = skus
            .iter()
            .map(|s| (s.clone(), BufferInputs::default()))
            .collect();
        for item in self.batch_get_keys(keys).await? {
            let pk = get_s(&item, "pk")?;
            let Some(sku) = pk.strip_prefix("SKU#").and_then(|s| Sku::parse(s).ok()) else {
                continue;
            };
            let Some(inputs) = found.get_mut(&sku) else {
                continue;
            };
            match get_s(&item, "sk")? {
                POSITION => inputs.position = position_from(&item)?,
                VELOCITY => inputs.accumulators = accumulators_from(&item, &self.horizons),
                BUFFERS => inputs.stored = Some(get_json(&item, "buffers")?),
                sk => {
                    let signal = signal_from(&item)?;
                    if sk == signal_sk(SignalKind::AddToCartSurge.as_str()) {
                        inputs.surge = Some(signal);
                    }
                    inputs.signals.push(signal);
                }
            }
        }
        Ok(found)
    }

    /// Positions of `skus` and those with an unexpired `add_to_cart_surge`, in one batch read
    /// (a reservation's default hold is shorter during a surge).
    pub async fn positions_and_surges(
        &self,
        skus: &[Sku],
        now: Millis,
    ) -> Result<(HashMap<Sku, Position>, HashSet<Sku>), AdapterError> {
        let surge = signal_sk(SignalKind::AddToCartSurge.as_str());
        let mut keys = Vec::with_capacity(skus.len() * 2);
        for sku in skus {
            keys.push(key(sku_pk(sku), POSITION));
            keys.push(key(sku_pk(sku), &surge));
        }
        let mut positions: HashMap<Sku, Position> = skus
            .iter()
            .map(|s| (s.clone(), Position::default()))
            .collect();
        let mut surging = HashSet::new();
        for item in self.batch_get_keys(keys).await? {
            let pk = get_s(&item, "pk")?;
            let sku = Sku::parse(pk.strip_prefix("SKU#").unwrap_or_default())
                .map_err(AdapterError::permanent)?;
            if get_s(&item, "sk")? == POSITION {
                positions.insert(sku, position_from(&item)?);
            } else if signal_from(&item)?.is_active(now) {
                surging.insert(sku);
            }
        }
        Ok((positions, surging))
    }

    /// The stored buffers of `sku` (`None` if never computed: every buffer is its minimum).
    pub async fn stored_buffers(&self, sku: &Sku) -> Result<Option<StoredBuffers>, AdapterError> {
        let items = self.batch_get_keys(vec![key(sku_pk(sku), BUFFERS)]).await?;
        items.first().map(|i| get_json(i, "buffers")).transpose()
    }

    /// Stores a SKU's buffers if nobody stored a newer revision since `read_revision`.
    pub async fn put_buffers(
        &self,
        sku: &Sku,
        buffers: &StoredBuffers,
        read_revision: Option<i64>,
    ) -> Result<bool, AdapterError> {
        let mut item = key(sku_pk(sku), BUFFERS);
        item.insert("revision".into(), n(buffers.revision));
        item.insert("buffers".into(), json(buffers));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let put = match read_revision {
            None => put.condition_expression("attribute_not_exists(pk)"),
            Some(r) => put
                .condition_expression("revision = :r")
                .expression_attribute_values(":r", n(r)),
        };
        match put.send().await.map_err(|e| classify("PutItem", e)) {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Drops accumulators that decayed to nothing, so the item stays small.
    pub async fn drop_accumulators(&self, sku: &Sku, stale: &[String]) -> Result<(), AdapterError> {
        if stale.is_empty() {
            return Ok(());
        }
        let names: HashMap<String, String> = stale
            .iter()
            .enumerate()
            .map(|(i, a)| (format!("#a{i}"), a.clone()))
            .collect();
        let expression = format!(
            "REMOVE {}",
            (0..stale.len())
                .map(|i| format!("#a{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        );
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(sku_pk(sku), VELOCITY)))
            .update_expression(expression)
            .set_expression_attribute_names(Some(names))
            .condition_expression("attribute_exists(pk)")
            .send()
            .await
            .map_or_else(
                |e| match classify("UpdateItem", e) {
                    e if e.is_condition_failed() => Ok(()),
                    e => Err(e),
                },
                |_| Ok(()),
            )
    }

    pub async fn hour_profile(&self) -> Result<HourOfWeekProfile, AdapterError> {
        let mut profile = HourOfWeekProfile::default();
        for item in self
            .batch_get_keys(vec![key(PROFILE_PK.to_owned(), PROFILE_SK)])
            .await?
        {
            for (h, units) in profile.units.iter_mut().enumerate() {
                if let Some(AttributeValue::N(v)) = item.get(&format!("h{h}")) {
                    *units = v.parse().unwrap_or(0.0);
                }
            }
        }
        Ok(profile)
    }

    /// Adds sales to the catalogue's hour-of-week profile (outside any transaction: a shared
    /// counter in every sale's transaction would make unrelated SKUs conflict).
    pub async fn add_to_profile(&self, sales: &[(i64, Millis)]) -> Result<(), AdapterError> {
        let mut by_hour: BTreeMap<usize, i64> = BTreeMap::new();
        for (units, at) in sales {
            *by_hour
                .entry(hour_of_week(*at) % HOURS_PER_WEEK)
                .or_default() += units;
        }
        if by_hour.is_empty() {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(PROFILE_PK.to_owned(), PROFILE_SK)));
        let mut adds = Vec::new();
        for (h, units) in by_hour {
            adds.push(format!("h{h} :h{h}"));
            update = update.expression_attribute_values(format!(":h{h}"), n(units));
        }
        update
            .update_expression(format!("ADD {}", adds.join(", ")))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        Ok(())
    }

    /// Adds one sync batch's measurements to the channel's current minute.
    pub async fn record_sync_sample(
        &self,
        channel: &ChannelName,
        sample: &SyncSample,
        now: Millis,
    ) -> Result<(), AdapterError> {
        let mut counts: BTreeMap<String, i64> = BTreeMap::new();
        for (name, v) in [
            ("pushes", sample.pushes),
            ("failures", sample.failures),
            ("throttled", sample.throttled),
        ] {
            if v > 0 {
                counts.insert(name.into(), v as i64);
            }
        }
        for ms in &sample.acknowledged_ms {
            *counts.entry(format!("a{}", bucket_of(*ms))).or_default() += 1;
        }
        if let Some(ms) = sample.oldest_wait_ms {
            *counts.entry(format!("w{}", bucket_of(ms))).or_default() += 1;
        }
        self.add_to_minute(channel, counts, now).await
    }

    /// Records a read-back: the channel showed a push `delay_ms` after its cause.
    pub async fn record_shown(
        &self,
        channel: &ChannelName,
        delay_ms: i64,
        now: Millis,
    ) -> Result<(), AdapterError> {
        let counts = BTreeMap::from([(format!("s{}", bucket_of(delay_ms)), 1)]);
        self.add_to_minute(channel, counts, now).await
    }

    async fn add_to_minute(
        &self,
        channel: &ChannelName,
        counts: BTreeMap<String, i64>,
        now: Millis,
    ) -> Result<(), AdapterError> {
        if counts.is_empty() {
            return Ok(());
        }
        let mut update = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(health_pk(channel), &minute_sk(now))))
            .expression_attribute_values(":ttl", ttl_after(now, HEALTH_RETENTION_DAYS));
        let mut adds = Vec::new();
        for (name, v) in counts {
            adds.push(format!("{name} :{name}"));
            update = update.expression_attribute_values(format!(":{name}"), n(v));
        }
        update
            .update_expression(format!("SET #ttl = :ttl ADD {}", adds.join(", ")))
            .expression_attribute_names("#ttl", "ttl")
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        Ok(())
    }

    pub async fn put_probe(
        &self,
        channel: &ChannelName,
        probe: &Probe,
    ) -> Result<(), AdapterError> {
        let mut item = key(
            health_pk(channel),
            &probe_sk(probe.acknowledged_at, &probe.sku),
        );
        item.insert("sku".into(), s(probe.sku.as_str()));
        item.insert("quantity".into(), n(probe.quantity));
        item.insert("version".into(), n(probe.version));
        item.insert("cause_at".into(), n(probe.cause_at));
        item.insert(
            "ttl".into(),
            ttl_after(probe.acknowledged_at, HEALTH_RETENTION_DAYS),
        );
        self.put_plain(item).await
    }

    pub async fn delete_probe(
        &self,
        channel: &ChannelName,
        probe: &Probe,
    ) -> Result<(), AdapterError> {
        self.client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(key(health_pk(channel), &probe.sk)))
            .send()
            .await
            .map_err(|e| classify("DeleteItem", e))?;
        Ok(())
    }

    /// A channel's per-minute samples since `since` (minute start, samples) and its open
    /// probes, in one query (minutes sort before probes in the channel's partition).
    pub async fn sync_minutes(
        &self,
        channel: &ChannelName,
        since: Millis,
    ) -> Result<(Vec<(Millis, SyncWindow)>, Vec<Probe>), AdapterError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk AND sk >= :from")
                    .expression_attribute_values(":pk", s(health_pk(channel)))
                    .expression_attribute_values(":from", s(minute_sk(since)))
            })
            .await?;
        let mut minutes = Vec::new();
        let mut probes = Vec::new();
        for item in &items {
            let sk = get_s(item, "sk")?;
            if let Some(rest) = sk.strip_prefix("P#") {
                probes.push(Probe {
                    sk: sk.to_owned(),
                    sku: Sku::parse(get_s(item, "sku")?).map_err(AdapterError::permanent)?,
                    quantity: get_i64(item, "quantity")?,
                    version: get_opt_i64(item, "version")?.unwrap_or(0) as u64,
                    cause_at: get_i64(item, "cause_at")?,
                    acknowledged_at: rest.get(..20).and_then(|t| t.parse().ok()).unwrap_or(0),
                });
                continue;
            }
            let Some(minute) = sk.strip_prefix("M#").and_then(|m| m.parse::<i64>().ok()) else {
                continue;
            };
            let count = |name| get_opt_i64(item, name).map(|v| v.unwrap_or(0).max(0) as u64);
            minutes.push((
                minute * 60_000,
                SyncWindow {
                    pushes: count("pushes")?,
                    failures: count("failures")?,
                    throttled: count("throttled")?,
                    acknowledged: histogram_from(item, 'a'),
                    shown: histogram_from(item, 's'),
                    queue_wait: histogram_from(item, 'w'),
                },
            ));
        }
        Ok((minutes, probes))
    }

    pub async fn put_channel_health(
        &self,
        channel: &ChannelName,
        health: &StoredHealth,
    ) -> Result<(), AdapterError> {
        let mut item = key(
            crate::channel_store::CHANNELS_PK.to_owned(),
            &format!("{HEALTH_SK_PREFIX}{channel}"),
        );
        item.insert("health".into(), json(health));
        self.put_plain(item).await
    }
}

fn accumulators_from(item: &Item, horizons: &Horizons) -> Vec<Accumulator> {
    item.iter()
        .filter_map(|(name, v)| match v {
            AttributeValue::N(amount) => Accumulator::parse(name, amount.parse().ok()?, horizons),
            _ => None,
        })
        .collect()
}

pub(crate) fn signal_from(item: &Item) -> Result<StoredSignal, AdapterError> {
    let strength = match item.get("strength") {
        Some(AttributeValue::N(v)) => v.parse().map_err(|_| {
            AdapterError::permanent(format!("stored signal strength is not a number: {v}"))
        })?,
        _ => return Err(AdapterError::permanent("stored signal lacks `strength`")),
    };
    Ok(StoredSignal {
        strength,
        occurred_at: get_i64(item, "occurred_at")?,
        expires_at: get_opt_i64(item, "expires_at")?,
    })
}
