//! Channel configuration as data in the state table: which channels are enabled and how to reach
//! them (credentials by Secrets Manager/SSM name, never values), buffer policies, SKU-to-listing
//! mappings, and per channel+SKU sync records (the last version a channel acknowledged).
//!
//! A sync record is the item `pk = SYNC#<channel>`, `sk = <sku>`:
//!
//! | attribute | what |
//! |---|---|
//! | `acked_version`, `acked_buffer_revision` | the position version and buffer revision of the quantity the channel last acknowledged |
//! | `acked_quantity`, `acked_at` | that quantity, and when (epoch ms) |
//! | `drift_reported`, `drift_expected`, `drift_seen_at` | optional: a reconciliation saw the channel show `drift_reported`, fewer than the `drift_expected` it should, at `drift_seen_at`, and held the push back ([`stockguard_domain::drift`]) |
//!
//! Every write is conditional on the acknowledgement it was decided from. An acknowledgement
//! replaces the whole item and so drops a held-back sighting: the channel was told a quantity
//! since, and what it showed before no longer stands.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};
use stockguard_domain::buffer::{BufferMode, ChannelBufferView, DynamicPolicy};
use stockguard_domain::channel::{BufferPolicy, ChannelKind, ListingMapping};
use stockguard_domain::drift::PendingDrift;
use stockguard_domain::recompute::BufferChannel;
use stockguard_domain::{ChannelName, Millis, Position, Sku};

use crate::buffer_store::{HEALTH_SK_PREFIX, StoredBuffers, StoredHealth};
use crate::error::{AdapterError, classify};
use crate::items::*;
use crate::store::{StateStore, UNPROCESSED_ATTEMPTS, position_from};

pub(crate) const CHANNELS_PK: &str = "CHANNELS";
const RECONCILE_PK: &str = "RECONCILE";

fn listings_pk(channel: &ChannelName) -> String {
    format!("LISTINGS#{channel}")
}
/// The reverse of a channel's listings: listing id to SKU, for orders that name only the listing.
fn listing_ids_pk(channel: &ChannelName) -> String {
    format!("LISTING_IDS#{channel}")
}
fn buffers_pk(channel: &ChannelName) -> String {
    format!("BUFFERS#{channel}")
}
fn sync_pk(channel: &ChannelName) -> String {
    format!("SYNC#{channel}")
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelSettings {
    pub name: ChannelName,
    /// Which adapter; stored as its lowercase name (`shopify`, `amazon`, `walmart`, `ebay`).
    pub kind: ChannelKind,
    pub enabled: bool,
    /// Base URL of the channel's API.
    pub endpoint: String,
    /// Name of the Secrets Manager secret (or SSM parameter) holding the credentials.
    pub credentials: String,
    /// `static` (the `buffer` policy) or `dynamic` (the `dynamic` policy; the default).
    pub buffer_mode: BufferMode,
    pub buffer: BufferPolicy,
    pub dynamic: DynamicPolicy,
    pub maximum: Option<i64>,
    /// Amazon's seller id and marketplace id; unused elsewhere.
    pub seller_id: Option<String>,
    pub marketplace_id: Option<String>,
}

impl ChannelSettings {
    /// How this channel's buffer for a SKU is set: the SKU's static override if any, the
    /// recompute's stored dynamic buffer, and the channel's assessed delay (its documented prior
    /// until one is measured).
    pub fn buffer_view(
        &self,
        static_override: Option<&BufferPolicy>,
        stored: Option<&StoredBuffers>,
        health: Option<&StoredHealth>,
    ) -> ChannelBufferView {
        ChannelBufferView {
            mode: self.buffer_mode,
            static_policy: static_override.copied().unwrap_or(self.buffer),
            dynamic: self.dynamic,
            maximum: self.maximum,
            stored_dynamic: stored
                .and_then(|b| b.channels.get(self.name.as_str()))
                .map(|c| c.buffer),
            delay_ms: health.map_or(self.kind.prior_delay_ms(), |h| h.effective_delay_ms),
        }
    }

    /// The buffer revision this channel's pushes are gated by, beside the position version: the
    /// stored dynamic buffers' in dynamic mode. A static channel's quantity does not depend on
    /// them, so a recompute that stores new ones moves nothing it shows and pushes it nothing;
    /// gating it by their revision would make its last push look unacknowledged, and
    /// reconciliation would take a drift on it for a push still in flight.
    pub fn buffer_revision(&self, stored: Option<&StoredBuffers>) -> i64 {
        match self.buffer_mode {
            BufferMode::Dynamic => stored.map_or(0, |b| b.revision),
            BufferMode::Static => 0,
        }
    }

    /// The channel as the buffer recompute sees it, with its last assessed health.
    pub fn buffer_channel(&self, health: Option<StoredHealth>) -> BufferChannel {
        BufferChannel {
            name: self.name.clone(),
            view: self.buffer_view(None, None, health.as_ref()),
            prior_delay_ms: self.kind.prior_delay_ms(),
            health,
        }
    }
}

/// What a channel last acknowledged for a SKU: the position version and the buffer revision
/// the pushed quantity was computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRecord {
    pub version: u64,
    pub buffer_revision: i64,
    pub quantity: i64,
    pub acknowledged_at: Millis,
}

impl SyncRecord {
    /// Whether this acknowledgement covers (is as new as) a position version and buffer revision.
    pub fn covers(&self, version: u64, buffer_revision: i64) -> bool {
        (self.version, self.buffer_revision) >= (version, buffer_revision)
    }
}

/// The condition that the stored acknowledgement is still `read` (items written before buffer
/// revisions existed have none, which reads as 0).
fn same_acknowledgement(read: &SyncRecord) -> &'static str {
    if read.buffer_revision == 0 {
        "acked_version = :v AND \
         (attribute_not_exists(acked_buffer_revision) OR acked_buffer_revision = :r)"
    } else {
        "acked_version = :v AND acked_buffer_revision = :r"
    }
}

fn opt_s(item: &mut Item, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        item.insert(name.into(), s(v));
    }
}

fn settings_from(item: &Item) -> Result<ChannelSettings, AdapterError> {
    Ok(ChannelSettings {
        name: ChannelName::parse(get_s(item, "sk")?).map_err(AdapterError::permanent)?,
        kind: get_s(item, "kind")?.parse().map_err(|e| {
            AdapterError::permanent(format!("channel {}: {e}", get_s(item, "sk").unwrap_or("?")))
        })?,
        enabled: matches!(item.get("enabled"), Some(AttributeValue::Bool(true))),
        endpoint: get_s(item, "endpoint")?.to_owned(),
        credentials: get_s(item, "credentials")?.to_owned(),
        // Channels stored before buffer modes existed read as the contract's default, dynamic.
        buffer_mode: match get_opt_s(item, "buffer_mode") {
            Some(m) => BufferMode::parse(m).map_err(AdapterError::permanent)?,
            None => BufferMode::Dynamic,
        },
        buffer: BufferPolicy {
            units: get_opt_i64(item, "buffer_units")?.unwrap_or(0),
            percent: get_opt_f64(item, "buffer_percent")?.unwrap_or(0.0),
        },
        dynamic: {
            let d = DynamicPolicy::default();
            DynamicPolicy {
                risk_target: get_opt_f64(item, "risk_target")?.unwrap_or(d.risk_target),
                min_units: get_opt_i64(item, "min_buffer")?.unwrap_or(d.min_units),
                max_units: get_opt_i64(item, "max_buffer")?,
                low_stock_units: get_opt_i64(item, "low_stock_units")?.unwrap_or(d.low_stock_units),
                low_stock_max_delay_ms: get_opt_i64(item, "low_stock_max_delay_ms")?
                    .unwrap_or(d.low_stock_max_delay_ms),
            }
        },
        maximum: get_opt_i64(item, "maximum")?,
        seller_id: get_opt_s(item, "seller_id").map(str::to_owned),
        marketplace_id: get_opt_s(item, "marketplace_id").map(str::to_owned),
    })
}

fn listing_from(channel: &ChannelName, item: &Item) -> Result<ListingMapping, AdapterError> {
    Ok(ListingMapping {
        channel: channel.clone(),
        sku: Sku::parse(get_s(item, "sk")?).map_err(AdapterError::permanent)?,
        listing_id: get_s(item, "listing_id")?.to_owned(),
        location_id: get_opt_s(item, "location_id").map(str::to_owned),
        offer_id: get_opt_s(item, "offer_id").map(str::to_owned),
        product_type: get_opt_s(item, "product_type").map(str::to_owned),
    })
}

/// Everything a sync batch needs about its SKUs, read in one strongly consistent BatchGetItem.
#[derive(Debug, Default)]
pub struct SyncContext {
    pub positions: HashMap<Sku, Position>,
    pub listings: HashMap<Sku, ListingMapping>,
    pub acknowledged: HashMap<Sku, SyncRecord>,
    pub overrides: HashMap<Sku, BufferPolicy>,
    /// Dynamic buffers as the recompute stored them (absent: never computed, the minimum).
    pub dynamic: HashMap<Sku, StoredBuffers>,
    /// When each position last changed (epoch ms), to tell an in-flight push from drift.
    pub changed_at: HashMap<Sku, Millis>,
    /// Shortfalls whose repair a reconciliation held back, by SKU.
    pub pending_drift: HashMap<Sku, PendingDrift>,
}

fn sync_record_from(item: &Item) -> Result<SyncRecord, AdapterError> {
    Ok(SyncRecord {
        version: get_i64(item, "acked_version")? as u64,
        buffer_revision: get_opt_i64(item, "acked_buffer_revision")?.unwrap_or(0),
        quantity: get_i64(item, "acked_quantity")?,
        acknowledged_at: get_i64(item, "acked_at")?,
    })
}

fn pending_drift_from(item: &Item) -> Result<Option<PendingDrift>, AdapterError> {
    let Some(seen_at) = get_opt_i64(item, "drift_seen_at")? else {
        return Ok(None);
    };
    Ok(Some(PendingDrift {
        expected: get_i64(item, "drift_expected")?,
        reported: get_i64(item, "drift_reported")?,
        seen_at,
    }))
}

fn buffer_from(item: &Item) -> Result<BufferPolicy, AdapterError> {
    Ok(BufferPolicy {
        units: get_opt_i64(item, "units")?.unwrap_or(0),
        percent: get_opt_f64(item, "percent")?.unwrap_or(0.0),
    })
}

fn sk_sku(item: &Item) -> Result<Sku, AdapterError> {
    Sku::parse(get_s(item, "sk")?).map_err(AdapterError::permanent)
}

impl StateStore {
    pub async fn sync_context(
        &self,
        channel: &ChannelName,
        skus: &[Sku],
    ) -> Result<SyncContext, AdapterError> {
        let (lp, sp, bp) = (listings_pk(channel), sync_pk(channel), buffers_pk(channel));
        let mut keys = Vec::with_capacity(skus.len() * 5);
        for sku in skus {
            keys.push(key(sku_pk(sku), POSITION));
            keys.push(key(sku_pk(sku), BUFFERS));
            for pk in [&lp, &sp, &bp] {
                keys.push(key(pk.clone(), sku.as_str()));
            }
        }
        let mut ctx = SyncContext::default();
        for sku in skus {
            ctx.positions.insert(sku.clone(), Position::default());
        }
        for item in self.batch_get_keys(keys).await? {
            let pk = get_s(&item, "pk")?;
            if pk == lp {
                let l = listing_from(channel, &item)?;
                ctx.listings.insert(l.sku.clone(), l);
            } else if pk == sp {
                let sku = sk_sku(&item)?;
                if let Some(p) = pending_drift_from(&item)? {
                    ctx.pending_drift.insert(sku.clone(), p);
                }
                ctx.acknowledged.insert(sku, sync_record_from(&item)?);
            } else if pk == bp {
                ctx.overrides.insert(sk_sku(&item)?, buffer_from(&item)?);
            } else if get_s(&item, "sk")? == BUFFERS {
                let sku = pk.strip_prefix("SKU#").unwrap_or_default();
                let sku = Sku::parse(sku).map_err(AdapterError::permanent)?;
                ctx.dynamic.insert(sku, get_json(&item, "buffers")?);
            } else {
                let sku = Sku::parse(get_s(&item, "sku")?).map_err(AdapterError::permanent)?;
                if let Some(at) = get_opt_i64(&item, "changed_at")? {
                    ctx.changed_at.insert(sku.clone(), at);
                }
                ctx.positions.insert(sku, position_from(&item)?);
            }
        }
        Ok(ctx)
    }

    /// Where an interrupted reconciliation resumes: (channel, SKU), if one was interrupted.
    pub async fn reconcile_cursor(&self) -> Result<Option<(ChannelName, Sku)>, AdapterError> {
        let items = self
            .batch_get_keys(vec![key(RECONCILE_PK.to_owned(), "CURSOR")])
            .await?;
        let Some(item) = items.first() else {
            return Ok(None);
        };
        Ok(Some((
            ChannelName::parse(get_s(item, "channel")?).map_err(AdapterError::permanent)?,
            Sku::parse(get_s(item, "sku")?).map_err(AdapterError::permanent)?,
        )))
    }

    /// Saves (`Some`) or clears (`None`) the reconciliation cursor.
    pub async fn set_reconcile_cursor(
        &self,
        cursor: Option<(&ChannelName, &Sku)>,
    ) -> Result<(), AdapterError> {
        match cursor {
            Some((channel, sku)) => {
                let mut item = key(RECONCILE_PK.to_owned(), "CURSOR");
                item.insert("channel".into(), s(channel.as_str()));
                item.insert("sku".into(), s(sku.as_str()));
                self.put_plain(item).await
            }
            None => {
                self.client
                    .delete_item()
                    .table_name(&self.table)
                    .set_key(Some(key(RECONCILE_PK.to_owned(), "CURSOR")))
                    .send()
                    .await
                    .map_err(|e| classify("DeleteItem", e))?;
                Ok(())
            }
        }
    }

    pub async fn channels(&self) -> Result<Vec<ChannelSettings>, AdapterError> {
        Ok(self.channels_and_health().await?.0)
    }

    /// Every channel's settings and its last assessed health, in one query.
    pub async fn channels_and_health(
        &self,
    ) -> Result<(Vec<ChannelSettings>, HashMap<ChannelName, StoredHealth>), AdapterError> {
        let items = self
            .query_all(|q| {
                q.consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(CHANNELS_PK))
            })
            .await?;
        let mut settings = Vec::new();
        let mut health = HashMap::new();
        for item in &items {
            match get_s(item, "sk")?.strip_prefix(HEALTH_SK_PREFIX) {
                Some(name) => {
                    let name = ChannelName::parse(name).map_err(AdapterError::permanent)?;
                    health.insert(name, get_json(item, "health")?);
                }
                None => settings.push(settings_from(item)?),
            }
        }
        Ok((settings, health))
    }

    pub async fn channel(
        &self,
        name: &ChannelName,
    ) -> Result<Option<ChannelSettings>, AdapterError> {
        Ok(self.channels().await?.into_iter().find(|c| &c.name == name))
    }

    pub async fn put_channel(&self, c: &ChannelSettings) -> Result<(), AdapterError> {
        let mut item = key(CHANNELS_PK.to_owned(), c.name.as_str());
        item.insert("kind".into(), s(c.kind.as_str()));
        item.insert("enabled".into(), AttributeValue::Bool(c.enabled));
        item.insert("endpoint".into(), s(&c.endpoint));
        item.insert("credentials".into(), s(&c.credentials));
        item.insert("buffer_units".into(), n(c.buffer.units));
        item.insert(
            "buffer_percent".into(),
            AttributeValue::N(c.buffer.percent.to_string()),
        );
        item.insert("buffer_mode".into(), s(c.buffer_mode.as_str()));
        item.insert(
            "risk_target".into(),
            AttributeValue::N(c.dynamic.risk_target.to_string()),
        );
        item.insert("min_buffer".into(), n(c.dynamic.min_units));
        if let Some(m) = c.dynamic.max_units {
            item.insert("max_buffer".into(), n(m));
        }
        item.insert("low_stock_units".into(), n(c.dynamic.low_stock_units));
        item.insert(
            "low_stock_max_delay_ms".into(),
            n(c.dynamic.low_stock_max_delay_ms),
        );
        if let Some(m) = c.maximum {
            item.insert("maximum".into(), n(m));
        }
        opt_s(&mut item, "seller_id", &c.seller_id);
        opt_s(&mut item, "marketplace_id", &c.marketplace_id);
        self.put_plain(item).await
    }

    /// Listings of `skus` on `channel`; unmapped SKUs are absent.
    pub async fn listings(
        &self,
        channel: &ChannelName,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, ListingMapping>, AdapterError> {
        let mut found = HashMap::new();
        for item in self
            .batch_get(listings_pk(channel), skus.iter().map(Sku::as_str))
            .await?
        {
            let l = listing_from(channel, &item)?;
            found.insert(l.sku.clone(), l);
        }
        Ok(found)
    }

    /// Every listing of a channel, for reconciliation and the CLI.
    pub async fn all_listings(
        &self,
        channel: &ChannelName,
    ) -> Result<Vec<ListingMapping>, AdapterError> {
        let items = self
            .query_all(|q| {
                q.key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(listings_pk(channel)))
            })
            .await?;
        items
            .iter()
            .map(|item| listing_from(channel, item))
            .collect()
    }

    /// Stores up to 25 validated listings (a BatchWriteItem), retrying unprocessed ones.
    pub async fn put_listings(&self, rows: &[ListingMapping]) -> Result<(), AdapterError> {
        // Two items a row (the listing and its reverse), 25 items a BatchWriteItem.
        for chunk in rows.chunks(12) {
            let mut requests: Vec<WriteRequest> = Vec::new();
            for r in chunk {
                let mut item = key(listings_pk(&r.channel), r.sku.as_str());
                item.insert("listing_id".into(), s(&r.listing_id));
                opt_s(&mut item, "location_id", &r.location_id);
                opt_s(&mut item, "offer_id", &r.offer_id);
                opt_s(&mut item, "product_type", &r.product_type);
                let mut reverse = key(listing_ids_pk(&r.channel), &r.listing_id);
                reverse.insert("sku".into(), s(r.sku.as_str()));
                for item in [item, reverse] {
                    let put = PutRequest::builder()
                        .set_item(Some(item))
                        .build()
                        .map_err(|e| AdapterError::permanent(e.to_string()))?;
                    requests.push(WriteRequest::builder().put_request(put).build());
                }
            }
            let mut attempt = 0u32;
            while !requests.is_empty() {
                let out = self
                    .client
                    .batch_write_item()
                    .request_items(&self.table, requests)
                    .send()
                    .await
                    .map_err(|e| classify("BatchWriteItem", e))?;
                requests = out
                    .unprocessed_items
                    .and_then(|mut u| u.remove(&self.table))
                    .unwrap_or_default();
                attempt += 1;
                if !requests.is_empty() {
                    if attempt >= UNPROCESSED_ATTEMPTS {
                        return Err(AdapterError::transient(format!(
                            "BatchWriteItem: {} listings still unprocessed after {attempt} attempts (throttled); \
                             importing again writes them",
                            requests.len()
                        )));
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6)))
                        .await;
                }
            }
        }
        Ok(())
    }

    /// Our SKU for each of the channel's listing ids (Shopify: inventory item ids); listing ids
    /// mapped to nothing are absent. A reverse entry left behind when a SKU was mapped to another
    /// listing is checked against the SKU's listing and ignored.
    pub async fn skus_by_listing_id(
        &self,
        channel: &ChannelName,
        listing_ids: &[String],
    ) -> Result<HashMap<String, Sku>, AdapterError> {
        // BatchGetItem refuses a key named twice.
        let ids: std::collections::BTreeSet<&str> =
            listing_ids.iter().map(String::as_str).collect();
        let mut claimed: HashMap<String, Sku> = HashMap::new();
        for item in self
            .batch_get(listing_ids_pk(channel), ids.into_iter())
            .await?
        {
            let sku = Sku::parse(get_s(&item, "sku")?).map_err(AdapterError::permanent)?;
            claimed.insert(get_s(&item, "sk")?.to_owned(), sku);
        }
        let skus: Vec<Sku> = claimed
            .values()
            .cloned()
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let current = self.listings(channel, &skus).await?;
        claimed.retain(|id, sku| current.get(sku).is_some_and(|l| &l.listing_id == id));
        Ok(claimed)
    }

    /// Per-SKU buffer overrides of a channel.
    pub async fn buffer_overrides(
        &self,
        channel: &ChannelName,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, BufferPolicy>, AdapterError> {
        let mut found = HashMap::new();
        for item in self
            .batch_get(buffers_pk(channel), skus.iter().map(Sku::as_str))
            .await?
        {
            found.insert(sk_sku(&item)?, buffer_from(&item)?);
        }
        Ok(found)
    }

    pub async fn put_buffer_override(
        &self,
        channel: &ChannelName,
        sku: &Sku,
        buffer: &BufferPolicy,
    ) -> Result<(), AdapterError> {
        let mut item = key(buffers_pk(channel), sku.as_str());
        item.insert("units".into(), n(buffer.units));
        item.insert(
            "percent".into(),
            AttributeValue::N(buffer.percent.to_string()),
        );
        self.put_plain(item).await
    }

    pub async fn sync_records(
        &self,
        channel: &ChannelName,
        skus: &[Sku],
    ) -> Result<HashMap<Sku, SyncRecord>, AdapterError> {
        let mut found = HashMap::new();
        for item in self
            .batch_get(sync_pk(channel), skus.iter().map(Sku::as_str))
            .await?
        {
            found.insert(sk_sku(&item)?, sync_record_from(&item)?);
        }
        Ok(found)
    }

    /// Records an acknowledgement unless a newer (version, buffer revision) was acknowledged
    /// meanwhile. Returns whether it was recorded.
    pub async fn record_acknowledged(
        &self,
        channel: &ChannelName,
        sku: &Sku,
        rec: SyncRecord,
    ) -> Result<bool, AdapterError> {
        let newer = "attribute_not_exists(pk) OR acked_version < :v OR (acked_version = :v AND \
                     (attribute_not_exists(acked_buffer_revision) OR acked_buffer_revision < :r))";
        self.put_sync_record(channel, sku, &rec, None, newer, &rec)
            .await
    }

    /// Records a newer version whose quantity the channel already shows, only if the
    /// acknowledgement is still the one read: a push recorded meanwhile may have changed what the
    /// channel shows, and then this version must be pushed after all. Returns whether recorded.
    pub async fn record_unchanged(
        &self,
        channel: &ChannelName,
        sku: &Sku,
        rec: SyncRecord,
        read: &SyncRecord,
    ) -> Result<bool, AdapterError> {
        self.put_sync_record(channel, sku, &rec, None, same_acknowledgement(read), read)
            .await
    }

    /// Keeps (`Some`) or drops (`None`) the sighting of a shortfall whose repair reconciliation
    /// holds back, only while the acknowledgement is still `acked`: a push recorded meanwhile
    /// changed what the channel shows. Returns whether written.
    pub async fn set_pending_drift(
        &self,
        channel: &ChannelName,
        sku: &Sku,
        acked: &SyncRecord,
        pending: Option<&PendingDrift>,
    ) -> Result<bool, AdapterError> {
        let condition = same_acknowledgement(acked);
        self.put_sync_record(channel, sku, acked, pending, condition, acked)
            .await
    }

    /// Puts `rec` (and `pending`, if any) under `condition`, whose `:v` and `:r` are `against`'s
    /// version and revision.
    async fn put_sync_record(
        &self,
        channel: &ChannelName,
        sku: &Sku,
        rec: &SyncRecord,
        pending: Option<&PendingDrift>,
        condition: &str,
        against: &SyncRecord,
    ) -> Result<bool, AdapterError> {
        let mut item = key(sync_pk(channel), sku.as_str());
        item.insert("acked_version".into(), n(rec.version));
        item.insert("acked_quantity".into(), n(rec.quantity));
        item.insert("acked_at".into(), n(rec.acknowledged_at));
        item.insert("acked_buffer_revision".into(), n(rec.buffer_revision));
        if let Some(p) = pending {
            item.insert("drift_expected".into(), n(p.expected));
            item.insert("drift_reported".into(), n(p.reported));
            item.insert("drift_seen_at".into(), n(p.seen_at));
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .expression_attribute_values(":v", n(against.version))
            .expression_attribute_values(":r", n(against.buffer_revision))
            .send()
            .await
            .map_err(|e| classify("PutItem", e));
        match result {
            Ok(_) => Ok(true),
            Err(e) if e.is_condition_failed() => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn batch_get<'a>(
        &self,
        pk: String,
        sks: impl Iterator<Item = &'a str>,
    ) -> Result<Vec<Item>, AdapterError> {
        self.batch_get_keys(sks.map(|sk| key(pk.clone(), sk)).collect())
            .await
    }
}
