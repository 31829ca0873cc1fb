//! What compensation keeps in the state table: the seller's compensation policy, per SKU the
//! orders reported short (`OversellDetected`) until each is compensated, and per SKU the stock
//! deliveries still owe (announced in `StockReceived` references).
//!
//! A short order that waits for inbound stock carries `active_pk = WAIT` and `due_at = until`,
//! which puts it in the sparse `ActiveIndex` (shared with the buffer recompute's SKUs under their
//! own partition): the re-check reads just the waits due, and closing one takes it out.

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
/// The `ActiveIndex` partition of waiting short orders.
const WAITING: &str = "WAIT";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShortOrderStatus {
    Open,
    /// Waits for inbound stock; decided again at `until`.
    Waiting {
        until: i64,
    },
    Closed,
}

/// A waiting short order whose re-check is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueWait {
    pub sku: Sku,
    pub order_id: String,
}

/// What claiming a due wait found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This run re-checks it; the claim is its `attempts`-th.
    Claimed { attempts: u32 },
    /// Closed, reopened, or claimed by a concurrent run meanwhile.
    Taken,
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
                        "waiting" => ShortOrderStatus::Waiting {
                            until: get_i64(item, "until")?,
                        },
                        _ => ShortOrderStatus::Closed,
                    },
                })
            })
            .collect()
    }

    /// Marks a short order compensated, with what was done (out of the re-check's index if it
    /// waited).
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
            .update_expression("SET #s = :closed, #a = :action REMOVE active_pk, due_at")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#a", "action")
            .expression_attribute_values(":closed", s("closed"))
            .expression_attribute_values(":action", s(action))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e))?;
        Ok(())
    }

    /// Lets a short order wait for inbound stock until `until`, when the re-check decides again.
    /// One closed meanwhile (cancelled by another decision) stays closed.
    pub async fn wait_short_order(
        &self,
        sku: &Sku,
        order_id: &str,
        until: i64,
    ) -> Result<(), AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(short_pk(sku), order_id)))
            .update_expression(
                "SET #s = :waiting, #a = :wait, #u = :until, sku = :sku, \
                 active_pk = :wp, due_at = :until, attempts = :zero",
            )
            .condition_expression("attribute_exists(pk) AND #s <> :closed")
            .expression_attribute_names("#s", "status")
            .expression_attribute_names("#a", "action")
            .expression_attribute_names("#u", "until")
            .expression_attribute_values(":waiting", s("waiting"))
            .expression_attribute_values(":wait", s("wait"))
            .expression_attribute_values(":until", n(until))
            .expression_attribute_values(":sku", s(sku.as_str()))
            .expression_attribute_values(":wp", s(WAITING))
            .expression_attribute_values(":zero", n(0))
            .expression_attribute_values(":closed", s("closed"))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e));
        match result {
            Err(e) if !e.is_condition_failed() => Err(e),
            _ => Ok(()),
        }
    }

    /// Waiting short orders whose re-check is due by `now`.
    pub async fn due_waits(&self, now: i64) -> Result<Vec<DueWait>, AdapterError> {
        let items = self
            .query_all(|q| {
                q.index_name(ACTIVE_INDEX)
                    .key_condition_expression("active_pk = :w AND due_at <= :now")
                    .expression_attribute_values(":w", s(WAITING))
                    .expression_attribute_values(":now", n(now))
            })
            .await?;
        items
            .iter()
            .map(|i| {
                Ok(DueWait {
                    sku: Sku::parse(get_s(i, "sku")?).map_err(AdapterError::permanent)?,
                    order_id: get_s(i, "sk")?.to_owned(),
                })
            })
            .collect()
    }

    /// Claims a due wait for one re-check: its next re-check moves to `retry_at`, so a run that
    /// fails leaves it to a later run, and a concurrent run finds it not due and leaves it.
    pub async fn claim_wait(
        &self,
        sku: &Sku,
        order_id: &str,
        now: i64,
        retry_at: i64,
    ) -> Result<Claim, AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(short_pk(sku), order_id)))
            .update_expression("SET due_at = :retry ADD attempts :one")
            .condition_expression("#s = :waiting AND due_at <= :now")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":waiting", s("waiting"))
            .expression_attribute_values(":now", n(now))
            .expression_attribute_values(":retry", n(retry_at))
            .expression_attribute_values(":one", n(1))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e));
        match result {
            Ok(out) => {
                let attempts = out
                    .attributes
                    .as_ref()
                    .map(|a| get_i64(a, "attempts"))
                    .transpose()?
                    .unwrap_or(1);
                Ok(Claim::Claimed {
                    attempts: u32::try_from(attempts).unwrap_or(u32::MAX),
                })
            }
            Err(e) if e.is_condition_failed() => Ok(Claim::Taken),
            Err(e) => Err(e),
        }
    }

    /// Puts a wait whose re-checks keep failing back to open, for a redriven `OversellDetected`
    /// to compensate afresh.
    pub async fn reopen_short_order(&self, sku: &Sku, order_id: &str) -> Result<(), AdapterError> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(short_pk(sku), order_id)))
            .update_expression("SET #s = :open REMOVE active_pk, due_at")
            .condition_expression("#s = :waiting")
            .expression_attribute_names("#s", "status")
            .expression_attribute_values(":open", s("open"))
            .expression_attribute_values(":waiting", s("waiting"))
            .send()
            .await
            .map_err(|e| classify("UpdateItem", e));
        match result {
            Err(e) if !e.is_condition_failed() => Err(e),
            _ => Ok(()),
        }
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
