//! Orders on the fake Walmart and eBay, as their orders APIs serve them to a seller who polls:
//! Walmart's `GET /v3/orders` (modification window, `nextCursor` paging) and eBay's getOrders
//! (`filter=lastmodifieddate:[..]`, `limit`/`offset` paging). Both page by position in the
//! matching list, as the real ones do, so an order modified while a seller pages through moves
//! and shifts the pages after it; the count (`totalCount`, `total`) says so.

use std::collections::HashMap;

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::state::State;

/// One line of a marketplace order: the channel's SKU of the listing sold.
#[derive(Debug, Clone)]
pub(crate) struct MarketLine {
    pub number: u32,
    pub channel_sku: String,
    pub quantity: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct MarketOrder {
    pub id: String,
    pub created_ms: i64,
    pub modified_ms: i64,
    pub lines: Vec<MarketLine>,
    pub cancelled_ms: Option<i64>,
}

pub(crate) fn now_ms() -> i64 {
    Utc::now().timestamp_millis()
}

fn iso(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(raw: &str) -> Option<i64> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.timestamp_millis())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(raw, "%Y-%m-%d")
                .ok()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|t| t.and_utc().timestamp_millis())
        })
}

/// Orders modified in `[from, to]` and created at or after `created_from`, by modification then
/// id (Walmart), or by creation, newest first (eBay).
fn matching(
    state: &State,
    from: Option<i64>,
    to: Option<i64>,
    created_from: Option<i64>,
    newest_first: bool,
) -> Vec<MarketOrder> {
    let mut found: Vec<MarketOrder> = state
        .market_orders
        .iter()
        .filter(|o| from.is_none_or(|f| o.modified_ms >= f))
        .filter(|o| to.is_none_or(|t| o.modified_ms <= t))
        .filter(|o| created_from.is_none_or(|c| o.created_ms >= c))
        .cloned()
        .collect();
    if newest_first {
        found.sort_by(|a, b| b.created_ms.cmp(&a.created_ms).then(b.id.cmp(&a.id)));
    } else {
        found.sort_by(|a, b| a.modified_ms.cmp(&b.modified_ms).then(a.id.cmp(&b.id)));
    }
    found
}

/// A body that is not an orders page, served when `orders_page_garbled` is set (a proxy's error
/// page, a truncated answer).
pub(crate) const GARBLED: &str = "<html><body>502 Bad Gateway</body></html>";

fn walmart_order(o: &MarketOrder) -> Value {
    let lines: Vec<Value> = o
        .lines
        .iter()
        .map(|l| {
            let (status, date) = match o.cancelled_ms {
                Some(at) => ("Cancelled", at),
                None => ("Created", o.created_ms),
            };
            json!({
                "lineNumber": l.number.to_string(),
                "item": {"productName": l.channel_sku, "sku": l.channel_sku, "condition": "New"},
                "charges": {"charge": []},
                "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": l.quantity.to_string()},
                "statusDate": date,
                "orderLineStatuses": {"orderLineStatus": [{
                    "status": status,
                    "statusQuantity": {"unitOfMeasurement": "EACH", "amount": l.quantity.to_string()},
                }]},
                "fulfillment": {"fulfillmentOption": "S2H", "shipMethod": "VALUE"},
            })
        })
        .collect();
    json!({
        "purchaseOrderId": o.id, "customerOrderId": format!("5{}", o.id),
        "customerEmailId": "buyer@relay.walmart.com", "orderType": "REGULAR",
        "orderDate": o.created_ms, "lastModified": o.modified_ms,
        "shippingInfo": {"methodCode": "Value", "estimatedShipDate": o.created_ms + 86_400_000},
        "orderLines": {"orderLine": lines},
    })
}

/// `GET /v3/orders`: the first page from the window's parameters, or the page `soIndex` (its
/// position in the matching list) of a `nextCursor`, which repeats the window.
pub(crate) fn walmart_page(state: &mut State, query: &HashMap<String, String>) -> Value {
    let time = |name: &str| query.get(name).and_then(|v| parse_time(v));
    let served = state.settings.orders_page_limit.max(1);
    let limit = query
        .get("limit")
        .and_then(|l| l.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 200)
        .min(served);
    let start: usize = query
        .get("soIndex")
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let all = matching(
        state,
        time("lastModifiedStartDate"),
        time("lastModifiedEndDate"),
        time("createdStartDate"),
        false,
    );
    state.stats.order_pages += 1;
    let page: Vec<Value> = all
        .iter()
        .skip(start)
        .take(limit)
        .map(walmart_order)
        .collect();
    let end = start + page.len();
    let next = (end < all.len()).then(|| {
        let mut cursor = format!("?limit={limit}&hasMoreElements=true&soIndex={end}");
        if let Some(last) = all.get(end - 1) {
            cursor.push_str(&format!("&poIndex={}", last.id));
        }
        for name in [
            "createdStartDate",
            "lastModifiedStartDate",
            "lastModifiedEndDate",
            "shipNodeType",
        ] {
            if let Some(v) = query.get(name) {
                cursor.push_str(&format!("&{name}={}", urlencode(v)));
            }
        }
        cursor
    });
    json!({"list": {
        "meta": {"totalCount": all.len(), "limit": limit, "nextCursor": next},
        "elements": {"order": page},
    }})
}

/// `GET /v3/orders/{purchaseOrderId}`: `{"order": ...}`; `None` for an order it does not have.
pub(crate) fn walmart_order_by_id(state: &State, id: &str) -> Option<Value> {
    let o = state.market_orders.iter().find(|o| o.id == id)?;
    Some(json!({ "order": walmart_order(o) }))
}

/// The seller cancels an order (every line the body names must be one of the order's, and the
/// order must still be open): listed cancelled from now on, as a buyer's cancellation is.
pub(crate) fn cancel_by_seller(state: &mut State, id: &str, body: &Value) -> Result<Value, String> {
    let named: Vec<String> = body
        .pointer("/orderCancellation/orderLines/orderLine")
        .and_then(Value::as_array)
        .ok_or("orderCancellation.orderLines.orderLine must be a list")?
        .iter()
        .map(|l| l["lineNumber"].as_str().unwrap_or_default().to_owned())
        .collect();
    let now = now_ms();
    let order = state
        .market_orders
        .iter_mut()
        .find(|o| o.id == id)
        .ok_or_else(|| format!("no purchase order {id}"))?;
    if order.cancelled_ms.is_some() {
        return Err(format!("purchase order {id} is already cancelled"));
    }
    if named.is_empty()
        || named
            .iter()
            .any(|n| !order.lines.iter().any(|l| l.number.to_string() == *n))
    {
        return Err(format!("the lines must be lines of purchase order {id}"));
    }
    order.cancelled_ms = Some(now);
    order.modified_ms = now.max(order.modified_ms + 1);
    let answer = json!({ "order": walmart_order(order) });
    state.stats.orders_cancelled += 1;
    Ok(answer)
}

fn urlencode(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn ebay_order(o: &MarketOrder) -> Value {
    let mut cancel = json!({"cancelState": "NONE_REQUESTED", "cancelRequests": []});
    if let Some(at) = o.cancelled_ms {
        cancel = json!({"cancelState": "CANCELED", "cancelRequests": [], "cancelledDate": iso(at)});
    }
    let items: Vec<Value> = o
        .lines
        .iter()
        .map(|l| {
            json!({"lineItemId": format!("{}{:02}", o.id.replace('-', ""), l.number),
                   "legacyItemId": format!("1100{:08}", l.number), "sku": l.channel_sku,
                   "title": l.channel_sku, "quantity": l.quantity,
                   "lineItemFulfillmentStatus": "NOT_STARTED"})
        })
        .collect();
    json!({
        "orderId": o.id, "legacyOrderId": o.id.replace('-', ""),
        "creationDate": iso(o.created_ms), "lastModifiedDate": iso(o.modified_ms),
        "orderFulfillmentStatus": "NOT_STARTED",
        "orderPaymentStatus": if o.cancelled_ms.is_some() { "FULLY_REFUNDED" } else { "PAID" },
        "sellerId": "fake_seller", "buyer": {"username": "fake_buyer"},
        "cancelStatus": cancel, "lineItems": items,
    })
}

/// getOrder (`GET /sell/fulfillment/v1/order/{orderId}`); `None` for an order it does not have.
pub(crate) fn ebay_order_by_id(state: &State, id: &str) -> Option<Value> {
    state
        .market_orders
        .iter()
        .find(|o| o.id == id)
        .map(ebay_order)
}

/// Why eBay refuses a seller's cancellation.
pub(crate) enum EbayRefusal {
    /// No such order (404).
    Unknown(String),
    /// The order cannot be cancelled (already cancelled): 200 with its eligibility and no
    /// `cancelId`.
    Ineligible(String),
}

/// The seller cancels a whole order (Post-Order `POST /post-order/v2/cancellation`), named by
/// its legacy id (the order id, or the same digits without dashes): listed cancelled from now
/// on. Answers the cancellation's id.
pub(crate) fn ebay_cancel_by_seller(
    state: &mut State,
    legacy_order_id: &str,
) -> Result<String, EbayRefusal> {
    let now = now_ms();
    let order = state
        .market_orders
        .iter_mut()
        .find(|o| o.id == legacy_order_id || o.id.replace('-', "") == legacy_order_id)
        .ok_or_else(|| EbayRefusal::Unknown(format!("no order {legacy_order_id}")))?;
    if order.cancelled_ms.is_some() {
        return Err(EbayRefusal::Ineligible(format!(
            "order {legacy_order_id} is already cancelled"
        )));
    }
    order.cancelled_ms = Some(now);
    order.modified_ms = now.max(order.modified_ms + 1);
    state.stats.orders_cancelled += 1;
    Ok(format!("5{:09}", now % 1_000_000_000))
}

/// The window of getOrders' `lastmodifieddate:[from..to]` filter (either end may be empty).
fn ebay_window(filter: &str) -> Result<(Option<i64>, Option<i64>), String> {
    let Some(range) = filter
        .split(',')
        .find_map(|f| f.trim().strip_prefix("lastmodifieddate:"))
    else {
        return Ok((None, None));
    };
    let inner = range
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .ok_or_else(|| format!("invalid filter range {range:?}"))?;
    let (from, to) = inner
        .split_once("..")
        .ok_or_else(|| format!("invalid filter range {range:?}"))?;
    let end = |raw: &str| -> Result<Option<i64>, String> {
        if raw.is_empty() {
            return Ok(None);
        }
        parse_time(raw)
            .map(Some)
            .ok_or_else(|| format!("invalid date {raw:?} in filter"))
    };
    Ok((end(from)?, end(to)?))
}

/// getOrders: one `limit`/`offset` page of the orders the filter matches, newest first.
pub(crate) fn ebay_page(
    state: &mut State,
    query: &HashMap<String, String>,
) -> Result<Value, String> {
    let base_url = "https://api.ebay.com";
    let (from, to) = ebay_window(query.get("filter").map_or("", String::as_str))?;
    let served = state.settings.orders_page_limit.max(1);
    let limit = match query.get("limit") {
        None => 50,
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=200).contains(l))
            .ok_or("limit must be 1 to 200")?,
    }
    .min(served);
    let offset: usize = match query.get("offset") {
        None => 0,
        Some(o) => o.parse().map_err(|_| "offset must be a whole number")?,
    };
    let all = matching(state, from, to, None, true);
    state.stats.order_pages += 1;
    let page: Vec<Value> = all
        .iter()
        .skip(offset)
        .take(limit)
        .map(ebay_order)
        .collect();
    let href = |offset: usize| {
        format!(
            "{base_url}/sell/fulfillment/v1/order?filter={}&limit={limit}&offset={offset}",
            urlencode(query.get("filter").map_or("", String::as_str))
        )
    };
    let mut body = json!({"href": href(offset), "total": all.len(), "limit": limit,
                          "offset": offset, "orders": page, "warnings": []});
    if offset + limit < all.len() {
        body["next"] = json!(href(offset + limit));
    }
    if offset > 0 {
        body["prev"] = json!(href(offset.saturating_sub(limit)));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ebay_filter_reads_its_window() {
        assert_eq!(
            ebay_window("lastmodifieddate:[2026-11-28T10:00:00.000Z..2026-11-28T10:01:00.000Z]")
                .unwrap(),
            (Some(1_795_860_000_000), Some(1_795_860_060_000))
        );
        assert_eq!(
            ebay_window("lastmodifieddate:[2026-11-28T10:00:00.000Z..]").unwrap(),
            (Some(1_795_860_000_000), None)
        );
        assert!(ebay_window("lastmodifieddate:2026").is_err());
    }
}
