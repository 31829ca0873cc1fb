//! What compensation keeps in the state table: the seller's compensation policy, per SKU the
//! orders reported short (`OversellDetected`) until each is compensated, and per SKU the stock
//! deliveries still owe (announced in `StockReceived` references).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::types::AttributeValue;
use stockguard_domain::Sku;
use stockguard_domain::compensation::{Announcement, CompensationPolicy, Inbound, Policy};

use crate::error::{AdapterError, classify};
use crate::items::*;
use crate::store::StateStore;

const CONFIG_PK: &str = "CONFIG";
const COMPENSATION_SK: &str = "COMPENSATION";
/// Short orders are kept this long after they are reported; compensation is long done by then.
const SHORT_ORDER_DAYS: i64 = 90;

fn short_pk(sku: &Sku) -> String {
    format!("OVERSOLD#{sku}")
}
fn inbound_pk(sku: &Sku) -> String {
    format!("INBOUND#{sku}")
}
/// An announcement is kept this long after its ETA: a delivery that late is not counted on.
const INBOUND_DAYS_AFTER_ETA: i64 = 30;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortOrderStatus {
    Open,
    Closed,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShortOrderRecord {
    pub sku: Sku,
    pub order_id: String,
    pub channel: String,
    pub shortfall: i64,
    pub detected_at: i64,
    pub status: ShortOrderStatus,
}

impl StateStore {
    /// The seller's compensation policy; the defaults until one is set.
    pub async fn compensation_policy(&self) -> Result<CompensationPolicy, AdapterError> {
        let items = self
            .batch_get_keys(vec![key(CONFIG_PK.to_owned(), COMPENSATION_SK)])
            .await?;
        let mut policy = CompensationPolicy::default();
        let Some(item) = items.first() else {
            return Ok(policy);
        };
        if let Some(p) = get_opt_s(item, "policy") {
            policy.policy = Policy::parse(p).map_err(AdapterError::permanent)?;
        }
        if let Some(ms) = get_opt_i64(item, "max_wait_ms")? {
            policy.max_wait_ms = ms;
        }
        if let Some(d) = get_opt_f64(item, "default_penalty")? {
            policy.default_penalty = d;
        }
        if item.contains_key("cancel_penalty") {
            let penalties: BTreeMap<String, f64> = get_json(item, "cancel_penalty")?;
            policy.cancel_penalty.extend(penalties);
        }
        Ok(policy)
    }

    pub async fn put_compensation_policy(
        &self,
        policy: &CompensationPolicy,
    ) -> Result<(), AdapterError> {
        let mut item = key(CONFIG_PK.to_owned(), COMPENSATION_SK);
        item.insert("policy".into(), s(policy.policy.as_str()));
        item.insert("max_wait_ms".into(), n(policy.max_wait_ms));
        item.insert(
            "default_penalty".into(),
            AttributeValue::N(policy.default_penalty.to_string()),
        );
        item.insert("cancel_penalty".into(), json(&policy.cancel_penalty));
        self.put_plain(item).await
    }

    /// Records an order reported short, once: a repeated report leaves the record as it is.
    pub async fn record_short_order(&self, r: &ShortOrderRecord) -> Result<(), AdapterError> {
        let mut item = key(short_pk(&r.sku), &r.order_id);
        item.insert("channel".into(), s(&r.channel));
        item.insert("shortfall".into(), n(r.shortfall));
        item.insert("detected_at".into(), n(r.detected_at));
        item.insert("status".into(), s("open"));
        item.insert("ttl".into(), ttl_after(r.detected_at, SHORT_ORDER_DAYS));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await
            .map_err(|e| classify("PutItem", e));
        match put {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Every order of `sku` reported short, open or compensated.
    pub async fn short_orders(&self, sku: &Sku) -> Result<Vec<ShortOrderRecord>, AdapterError> {
        let items = self
            .query_all(|q| {
                q.consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(short_pk(sku)))
            })
            .await?;
        items
            .iter()
            .map(|item| {
                Ok(ShortOrderRecord {
                    sku: sku.clone(),
                    order_id: get_s(item, "sk")?.to_owned(),
                    channel: get_s(item, "channel")?.to_owned(),
                    shortfall: get_i64(item, "shortfall")?,
                    detected_at: get_i64(item, "detected_at")?,
                    status: match get_s(item, "status")? {
                        "open" => ShortOrderStatus::Open,
                        _ => ShortOrderStatus::Closed,
                    },
                })
            })
            .collect()
    }

    /// Marks a short order compensated, with what was done.
    pub async fn close_short_order(
        &self,
        sku: &Sku,
        order_id: &str,
        action: &str,
    ) -> Result<(), AdapterError> {
        self.client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(short_pk(sku), order_id)))
            .update_expression("SET #s = :closed, #a = :action")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#a", "action")
            .expression_attribute_values(":closed", s("closed"))
            .expression_attribute_values(":action", s(action))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        Ok(())
    }

    /// Records what a delivery of `sku` still owes, as of `occurred_at`: a later announcement of
    /// the same delivery replaces it, an older one (delivered late or again) changes nothing.
    pub async fn record_inbound(
        &self,
        sku: &Sku,
        a: &Announcement,
        occurred_at: i64,
    ) -> Result<(), AdapterError> {
        let mut item = key(inbound_pk(sku), &a.delivery);
        item.insert("units".into(), n(a.units));
        item.insert("eta".into(), n(a.eta));
        item.insert("occurred_at".into(), n(occurred_at));
        item.insert("ttl".into(), ttl_after(a.eta, INBOUND_DAYS_AFTER_ETA));
        let put = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk) OR occurred_at < :at")
            .expression_attribute_values(":at", n(occurred_at))
            .send()
            .await
            .map_err(|e| classify("PutItem", e));
        match put {
            Ok(_) => Ok(()),
            Err(e) if e.is_condition_failed() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// The stock still owed to `sku`, delivery by delivery (complete ones left out).
    pub async fn inbound(&self, sku: &Sku) -> Result<Vec<Inbound>, AdapterError> {
        let items = self
            .query_all(|q| {
                q.consistent_read(true)
                    .key_condition_expression("pk = :pk")
                    .expression_attribute_values(":pk", s(inbound_pk(sku)))
            })
            .await?;
        let mut out = Vec::new();
        for item in &items {
            let units = get_i64(item, "units")?;
            if units > 0 {
                out.push(Inbound {
                    units,
                    expected_at: get_i64(item, "eta")?,
                });
            }
        }
        Ok(out)
    }
}
