//! eBay orders (Fulfillment API `GET /sell/fulfillment/v1/order`) in the contract's words
//! (contract section 6): a page `{total, limit, offset, next?, orders: [...]}` becomes the
//! orders' changes. An order is placed with its line items; `cancelStatus.cancelState`
//! `CANCELED` cancels the whole order.

use serde_json::{Map, Value};

use crate::error::InvalidInput;
use crate::order_polls::{OrdersPage, PolledChange, PolledLine, PolledOrder};
use crate::types::{format_timestamp, parse_timestamp};

pub const CHANNEL: &str = "ebay";

/// The most orders eBay returns in one page.
pub const MAX_PAGE: u64 = 200;

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput::new("invalid_page", field, message)
}

fn text<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(field, format!("`{field}` must be a non-empty string")))
}

fn time(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .map(format_timestamp)
        .ok_or_else(|| invalid(field, format!("`{field}` must be an ISO 8601 timestamp")))
}

fn order(value: &Value) -> Result<PolledOrder, InvalidInput> {
    let o = value
        .as_object()
        .ok_or_else(|| invalid("order", "must be an object"))?;
    let order_id = text(o, "orderId")?.to_owned();
    let created = time(o, "creationDate")?;
    let items = o
        .get("lineItems")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("lineItems", "`lineItems` must be an array"))?;
    let mut lines = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let field = format!("lineItems[{i}]");
        let item = item
            .as_object()
            .ok_or_else(|| invalid(&field, "must be an object"))?;
        let quantity = item
            .get("quantity")
            .and_then(Value::as_i64)
            .filter(|q| (0..=1_000_000).contains(q))
            .ok_or_else(|| invalid(&field, "`quantity` must be 0 to 1,000,000"))?;
        // A listing without a seller SKU is named by its item id, which maps to nothing of
        // ours: the line is dead-lettered with that id for the seller to map.
        let channel_sku = item
            .get("sku")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| item.get("legacyItemId").and_then(Value::as_str))
            .unwrap_or_default()
            .to_owned();
        lines.push(PolledLine {
            line_id: text(item, "lineItemId")
                .map_err(|e| e.within(&field))?
                .to_owned(),
            channel_sku,
            quantity,
        });
    }
    let mut changes = vec![PolledChange::Placed {
        occurred_at: created.clone(),
        lines,
    }];
    let cancel = o.get("cancelStatus").and_then(Value::as_object);
    if cancel
        .and_then(|c| c.get("cancelState"))
        .and_then(Value::as_str)
        == Some("CANCELED")
    {
        // The cancellation's own date when eBay gives it; else the order's creation, which
        // every later reading repeats (its last-modified date moves on with refunds and such).
        let occurred_at = cancel
            .and_then(|c| time(c, "cancelledDate").ok())
            .unwrap_or(created);
        changes.push(PolledChange::Cancelled { occurred_at });
    }
    Ok(PolledOrder {
        channel: CHANNEL,
        order_id,
        changes,
    })
}

/// Reads one page of getOrders. Its `next` is the offset of the next page, when eBay says
/// there is one.
pub fn parse_orders_page(body: &[u8]) -> Result<OrdersPage<u64>, InvalidInput> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid("body", format!("not JSON: {e}")))?;
    let root = value
        .as_object()
        .ok_or_else(|| invalid("body", "must be an object"))?;
    let number = |field: &str| root.get(field).and_then(Value::as_u64);
    let total = number("total").ok_or_else(|| invalid("total", "`total` must be a count"))?;
    let offset = number("offset").unwrap_or(0);
    let limit = number("limit").filter(|l| *l > 0);
    let orders_of = match root.get("orders") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(orders)) => orders.as_slice(),
        Some(_) => return Err(invalid("orders", "`orders` must be an array")),
    };
    let has_next = root
        .get("next")
        .and_then(Value::as_str)
        .is_some_and(|n| !n.is_empty());
    let next = match (has_next, limit) {
        (true, Some(limit)) => Some(offset + limit),
        (true, None) => return Err(invalid("limit", "a page with a next page needs its limit")),
        (false, _) => None,
    };
    let mut orders = Vec::new();
    let mut unreadable = Vec::new();
    for (i, o) in orders_of.iter().enumerate() {
        match order(o) {
            Ok(o) => orders.push(o),
            Err(e) => unreadable.push(e.within(&format!("orders[{i}]"))),
        }
    }
    Ok(OrdersPage {
        orders,
        unreadable,
        total: Some(total),
        next,
    })
}

/// getOrders' `filter` for orders modified in `[from, to]` (eBay's UTC timestamps).
pub fn modified_filter(from: crate::types::Millis, to: crate::types::Millis) -> String {
    format!(
        "lastmodifieddate:[{}..{}]",
        format_timestamp(from),
        format_timestamp(to)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ebay_order(id: &str, cancel: &str) -> Value {
        json!({"orderId": id, "legacyOrderId": "110", "creationDate": "2026-11-28T10:00:00.000Z",
               "lastModifiedDate": "2026-11-28T10:07:00.000Z", "orderFulfillmentStatus": "NOT_STARTED",
               "orderPaymentStatus": "PAID",
               "cancelStatus": {"cancelState": cancel, "cancelRequests": [], "cancelledDate": "2026-11-28T10:06:00.000Z"},
               "lineItems": [{"lineItemId": "10001", "legacyItemId": "110551", "sku": "TEE-M", "quantity": 2, "title": "Tee"},
                             {"lineItemId": "10002", "legacyItemId": "110552", "quantity": 1, "title": "Unlabelled"}]})
    }

    #[test]
    fn a_page_of_orders_becomes_their_changes_and_the_next_offset() {
        let body = json!({"href": "x", "total": 3, "limit": 2, "offset": 0, "next": "https://api.ebay.com/sell/fulfillment/v1/order?offset=2&limit=2",
                          "orders": [ebay_order("12-00001-00001", "NONE_REQUESTED"), ebay_order("12-00001-00002", "CANCELED")]});
        let p = parse_orders_page(body.to_string().as_bytes()).unwrap();
        assert_eq!((p.total, p.next), (Some(3), Some(2)));
        assert!(p.unreadable.is_empty());
        assert_eq!(p.orders[0].changes.len(), 1);
        let PolledChange::Placed { lines, occurred_at } = &p.orders[0].changes[0] else {
            panic!("placed")
        };
        assert_eq!(occurred_at, "2026-11-28T10:00:00.000Z");
        assert_eq!(lines[0].channel_sku, "TEE-M");
        assert_eq!(
            lines[1].channel_sku, "110552",
            "no seller SKU: named by its item id"
        );
        assert_eq!(
            p.orders[1].changes[1],
            PolledChange::Cancelled {
                occurred_at: "2026-11-28T10:06:00.000Z".into()
            }
        );
    }

    #[test]
    fn the_last_page_has_no_next_and_a_broken_order_is_unreadable() {
        let mut broken = ebay_order("12-00001-00003", "NONE_REQUESTED");
        broken["lineItems"][0]["quantity"] = json!("two");
        let body = json!({"total": 1, "limit": 50, "offset": 50, "orders": [broken]});
        let p = parse_orders_page(body.to_string().as_bytes()).unwrap();
        assert_eq!(p.next, None);
        assert!(p.orders.is_empty());
        assert_eq!(p.unreadable[0].field, "orders[0].lineItems[0]");
        for body in [
            &b"nope"[..],
            br#"{"orders": []}"#,
            br#"{"total": 1, "orders": {}}"#,
        ] {
            assert_eq!(parse_orders_page(body).unwrap_err().code, "invalid_page");
        }
    }

    #[test]
    fn the_filter_names_the_window() {
        assert_eq!(
            modified_filter(0, 60_000),
            "lastmodifieddate:[1970-01-01T00:00:00.000Z..1970-01-01T00:01:00.000Z]"
        );
    }
}
