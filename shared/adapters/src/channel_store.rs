//! Channel configuration as data in the state table: which channels are enabled and how to reach
//! them (credentials by Secrets Manager/SSM name, never values), buffer policies, SKU-to-listing
//! mappings, and per channel+SKU sync records (the last version a channel acknowledged).

use std::collections::HashMap;

use aws_sdk_dynamodb::types::{AttributeValue, PutRequest, WriteRequest};
use serde::{Deserialize, Serialize};
use stockguard_domain::channel::{BufferPolicy, ListingMapping};
use stockguard_domain::{ChannelName, Millis, Position, Sku};

use crate::error::{AdapterError, classify};
use crate::items::*;
use crate::store::{StateStore, position_from};

const CHANNELS_PK: &str = "CHANNELS";
const RECONCILE_PK: &str = "RECONCILE";

fn listings_pk(channel: &ChannelName) -> String {
    format!("LISTINGS#{channel}")
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
    /// Which adapter: shopify, amazon, walmart, ebay.
    pub kind: String,
    pub enabled: bool,
    /// Base URL of the channel's API.
    pub endpoint: String,
    /// Name of the Secrets Manager secret (or SSM parameter) holding the credentials.
    pub credentials: String,
    pub buffer: BufferPolicy,
    pub maximum: Option<i64>,
    /// Amazon's seller id and marketplace id; unused elsewhere.
    pub seller_id: Option<String>,
    pub marketplace_id: Option<String>,
}

/// What a channel last acknowledged for a SKU.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncRecord {
    pub version: u64,
    pub quantity: i64,
    pub acknowledged_at: Millis,
}

fn opt_s(item: &mut Item, name: &str, v: &Option<String>) {
    if let Some(v) = v {
        item.insert(name.into(), s(v));
    }
}

fn settings_from(item: &Item) -> Result<ChannelSettings, AdapterError> {
    Ok(ChannelSettings {
        name: ChannelName::parse(get_s(item, "sk")?).map_err(AdapterError::permanent)?,
        kind: get_s(item, "kind")?.to_owned(),
        enabled: matches!(item.get("enabled"), Some(AttributeValue::Bool(true))),
        endpoint: get_s(item, "endpoint")?.to_owned(),
        credentials: get_s(item, "credentials")?.to_owned(),
        buffer: BufferPolicy {
            units: get_opt_i64(item, "buffer_units")?.unwrap_or(0),
            percent: match item.get("buffer_percent") {
                Some(AttributeValue::N(v)) => v.parse().unwrap_or(0.0),
                _ => 0.0,
            },
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
    /// When each position last changed (epoch ms), to tell an in-flight push from drift.
    pub changed_at: HashMap<Sku, Millis>,
}

fn sync_record_from(item: &Item) -> Result<SyncRecord, AdapterError> {
    Ok(SyncRecord {
        version: get_i64(item, "acked_version")? as u64,
        quantity: get_i64(item, "acked_quantity")?,
        acknowledged_at: get_i64(item, "acked_at")?,
    })
}

fn buffer_from(item: &Item) -> Result<BufferPolicy, AdapterError> {
    let percent = match item.get("percent") {
        Some(AttributeValue::N(v)) => v.parse().unwrap_or(0.0),
        _ => 0.0,
    };
    Ok(BufferPolicy {
        units: get_opt_i64(item, "units")?.unwrap_or(0),
        percent,
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
        let mut keys = Vec::with_capacity(skus.len() * 4);
        for sku in skus {
            keys.push(key(sku_pk(sku), POSITION));
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
                ctx.acknowledged
                    .insert(sk_sku(&item)?, sync_record_from(&item)?);
            } else if pk == bp {
                ctx.overrides.insert(sk_sku(&item)?, buffer_from(&item)?);
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
        let items = self
            .query_all(|q| {
                q.consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(CHANNELS_PK))
            })
            .await?;
        items.iter().map(settings_from).collect()
    }

    pub async fn channel(
        &self,
        name: &ChannelName,
    ) -> Result<Option<ChannelSettings>, AdapterError> {
        Ok(self.channels().await?.into_iter().find(|c| &c.name == name))
    }

    pub async fn put_channel(&self, c: &ChannelSettings) -> Result<(), AdapterError> {
        let mut item = key(CHANNELS_PK.to_owned(), c.name.as_str());
        item.insert("kind".into(), s(&c.kind));
        item.insert("enabled".into(), AttributeValue::Bool(c.enabled));
        item.insert("endpoint".into(), s(&c.endpoint));
        item.insert("credentials".into(), s(&c.credentials));
        item.insert("buffer_units".into(), n(c.buffer.units));
        item.insert(
            "buffer_percent".into(),
            AttributeValue::N(c.buffer.percent.to_string()),
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
        for chunk in rows.chunks(25) {
            let mut requests: Vec<WriteRequest> = Vec::new();
            for r in chunk {
                let mut item = key(listings_pk(&r.channel), r.sku.as_str());
                item.insert("listing_id".into(), s(&r.listing_id));
                opt_s(&mut item, "location_id", &r.location_id);
                opt_s(&mut item, "offer_id", &r.offer_id);
                opt_s(&mut item, "product_type", &r.product_type);
                let put = PutRequest::builder()
                    .set_item(Some(item))
                    .build()
                    .map_err(|e| AdapterError::permanent(e.to_string()))?;
                requests.push(WriteRequest::builder().put_request(put).build());
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
                    tokio::time::sleep(std::time::Duration::from_millis(20 << attempt.min(6)))
                        .await;
                }
            }
        }
        Ok(())
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

    /// Records an acknowledgement unless a newer version was acknowledged meanwhile. Returns
    /// whether it was recorded.
    pub async fn record_acknowledged(
        &self,
        channel: &ChannelName,
        sku: &Sku,
        rec: SyncRecord,
    ) -> Result<bool, AdapterError> {
        let mut item = key(sync_pk(channel), sku.as_str());
        item.insert("acked_version".into(), n(rec.version));
        item.insert("acked_quantity".into(), n(rec.quantity));
        item.insert("acked_at".into(), n(rec.acknowledged_at));
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR acked_version < :v")
            .expression_attribute_values(":v", n(rec.version))
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
