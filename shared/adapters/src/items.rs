//! Item layout of the state table (one table, `pk`/`sk` strings, TTL attribute `ttl`) and
//! attribute conversions.

use std::collections::HashMap;

use aws_sdk_dynamodb::types::AttributeValue;
use stockguard_domain::{EntityId, Millis, Sku};

use crate::error::AdapterError;

pub type Item = HashMap<String, AttributeValue>;

pub const POSITION: &str = "POSITION";
/// Attribute on a position naming the change (`StateTx`) that wrote it last.
pub const WRITE_ID: &str = "write_id";

pub fn sku_pk(sku: &Sku) -> String {
    format!("SKU#{sku}")
}
pub fn delta_sk(occurred_at: Millis, event_id: &str) -> String {
    format!("DELTA#{occurred_at:020}#{event_id}")
}
pub fn delta_sk_floor(after: Millis) -> String {
    format!("DELTA#{:020}", after.saturating_add(1))
}
pub const DELTA_SK_CEILING: &str = "DELTA#~";
/// Holds sort by expiry, so the expired ones of a SKU are one key-range read.
pub fn hold_sk(expires_at: Millis, reservation_id: &EntityId) -> String {
    format!("HOLD#{expires_at:020}#{reservation_id}")
}
pub fn hold_sk_expired_ceiling(now: Millis) -> String {
    format!("HOLD#{now:020}#~")
}
pub fn sequence_sk(source: &str) -> String {
    format!("SEQ#{source}")
}
pub fn signal_sk(signal: &str) -> String {
    format!("SIGNAL#{signal}")
}
/// A SKU's decayed sales-rate accumulators (`SKU#…` partition).
pub const VELOCITY: &str = "VELOCITY";
/// A SKU's dynamic buffers as the recompute last stored them (`SKU#…` partition).
pub const BUFFERS: &str = "BUFFERS";
/// The sparse index of SKUs whose buffers may still move (`ActiveIndex` in template.yaml): their
/// `VELOCITY` items carry `active_pk` until the recompute finds them quiet.
pub const ACTIVE_INDEX: &str = "ActiveIndex";
pub const ACTIVE_INDEX_PK: &str = "active_pk";
pub const ACTIVE: &str = "ACTIVE";
pub fn reservation_pk(id: &EntityId) -> String {
    format!("RES#{id}")
}
pub const RESERVATION: &str = "RESERVATION";

/// The sparse index of held reservations by expiry (`ExpiryIndex` in template.yaml).
pub const EXPIRY_INDEX: &str = "ExpiryIndex";
pub const EXPIRY_INDEX_PK: &str = "expiry_pk";
pub const EXPIRY_INDEX_SK: &str = "expiry_sk";
pub const HELD: &str = "HELD";
pub fn expiry_sk(expires_at: Millis, id: &EntityId) -> String {
    format!("{expires_at:020}#{id}")
}
pub fn order_pk(id: &EntityId) -> String {
    format!("ORDER#{id}")
}
pub const ORDER: &str = "ORDER";
pub fn event_pk(event_id: &str) -> String {
    format!("EVENT#{event_id}")
}
pub const IDEMPOTENCY: &str = "IDEMPOTENCY";

pub fn key(pk: String, sk: &str) -> Item {
    HashMap::from([
        ("pk".to_owned(), AttributeValue::S(pk)),
        ("sk".to_owned(), AttributeValue::S(sk.to_owned())),
    ])
}

pub fn s(v: impl Into<String>) -> AttributeValue {
    AttributeValue::S(v.into())
}
pub fn n(v: impl ToString) -> AttributeValue {
    AttributeValue::N(v.to_string())
}

pub fn get_s<'a>(item: &'a Item, name: &str) -> Result<&'a str, AdapterError> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Ok(v),
        _ => Err(AdapterError::permanent(format!(
            "stored item lacks string attribute `{name}`"
        ))),
    }
}

pub fn get_opt_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    match item.get(name) {
        Some(AttributeValue::S(v)) => Some(v),
        _ => None,
    }
}

pub fn get_i64(item: &Item, name: &str) -> Result<i64, AdapterError> {
    get_opt_i64(item, name)?.ok_or_else(|| {
        AdapterError::permanent(format!("stored item lacks number attribute `{name}`"))
    })
}

pub fn get_opt_i64(item: &Item, name: &str) -> Result<Option<i64>, AdapterError> {
    match item.get(name) {
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| {
            AdapterError::permanent(format!("attribute `{name}` is not an integer: {v}"))
        }),
        _ => Ok(None),
    }
}

/// A number attribute, if present; present but not a number is an error (never a silent 0).
pub fn get_opt_f64(item: &Item, name: &str) -> Result<Option<f64>, AdapterError> {
    let bad = |v: &dyn std::fmt::Debug| {
        AdapterError::permanent(format!("attribute `{name}` is not a number: {v:?}"))
    };
    match item.get(name) {
        None | Some(AttributeValue::Null(_)) => Ok(None),
        Some(AttributeValue::N(v)) => v.parse().map(Some).map_err(|_| bad(v)),
        Some(other) => Err(bad(other)),
    }
}

pub fn get_json<T: serde::de::DeserializeOwned>(
    item: &Item,
    name: &str,
) -> Result<T, AdapterError> {
    serde_json::from_str(get_s(item, name)?).map_err(|e| {
        AdapterError::permanent(format!("attribute `{name}` holds malformed JSON: {e}"))
    })
}

pub fn json(value: &impl serde::Serialize) -> AttributeValue {
    AttributeValue::S(serde_json::to_string(value).unwrap_or_default())
}

/// Epoch seconds for DynamoDB TTL, which deletes lazily: nothing relies on it for exactness.
pub fn ttl_after(now: Millis, days: i64) -> AttributeValue {
    n(now / 1000 + days * 86_400)
}
