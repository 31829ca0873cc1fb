//! Walmart Marketplace orders (`GET /v3/orders`) in the contract's words (contract section 6):
//! a page `{"list": {"meta": {totalCount, limit, nextCursor}, "elements": {"order": [...]}}}`
//! becomes the orders' changes. An order is placed with every line's ordered quantity; a line
//! whose status is `Cancelled` is its own change, since Walmart cancels line by line.

use serde_json::{Map, Value};

use crate::error::InvalidInput;
use crate::order_polls::{OrdersPage, PolledChange, PolledLine, PolledOrder};
use crate::types::format_timestamp;

pub const CHANNEL: &str = "walmart";

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput::new("invalid_page", field, message)
}

fn object<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a Map<String, Value>, InvalidInput> {
    v.and_then(Value::as_object)
        .ok_or_else(|| invalid(field, format!("`{field}` must be an object")))
}

fn text<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(field, format!("`{field}` must be a non-empty string")))
}

/// Walmart writes amounts as strings (`"1"`) and times as epoch milliseconds.
fn integer(obj: &Map<String, Value>, field: &str) -> Option<i64> {
    match obj.get(field)? {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s
            .trim()
            .parse::<f64>()
            .ok()
            .and_then(|f| (f.fract() == 0.0 && f.abs() < 1e15).then_some(f as i64)),
        _ => None,
    }
}

fn amount(obj: &Map<String, Value>, field: &str) -> Result<i64, InvalidInput> {
    object(obj.get(field), field)
        .ok()
        .and_then(|q| integer(q, "amount"))
        .filter(|q| (0..=1_000_000).contains(q))
        .ok_or_else(|| invalid(field, format!("`{field}.amount` must be 0 to 1,000,000")))
}

fn time(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidInput> {
    integer(obj, field)
        .filter(|ms| *ms > 0)
        .map(format_timestamp)
        .ok_or_else(|| invalid(field, format!("`{field}` must be epoch milliseconds")))
}

fn order(value: &Value) -> Result<PolledOrder, InvalidInput> {
    let o = object(Some(value), "order")?;
    let po = text(o, "purchaseOrderId")?.to_owned();
    let placed_at = time(o, "orderDate")?;
    let lines_of = object(o.get("orderLines"), "orderLines")?
        .get("orderLine")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid("orderLines.orderLine", "must be an array"))?;
    let mut placed = Vec::new();
    let mut changes = Vec::new();
    for (i, l) in lines_of.iter().enumerate() {
        let field = format!("orderLine[{i}]");
        let l = object(Some(l), &field)?;
        let line_id = text(l, "lineNumber")?.to_owned();
        let channel_sku = text(object(l.get("item"), "item")?, "sku")?.to_owned();
        placed.push(PolledLine {
            line_id: line_id.clone(),
            channel_sku: channel_sku.clone(),
            quantity: amount(l, "orderLineQuantity")?,
        });
        let statuses = l
            .get("orderLineStatuses")
            .and_then(|s| s.get("orderLineStatus"))
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        let mut cancelled = 0;
        for s in statuses {
            let s = object(Some(s), "orderLineStatus")?;
            if text(s, "status")? == "Cancelled" {
                cancelled += amount(s, "statusQuantity")?;
            }
        }
        if cancelled > 0 {
            changes.push(PolledChange::LinesCancelled {
                key: line_id.clone(),
                occurred_at: time(l, "statusDate")?,
                lines: vec![PolledLine {
                    line_id,
                    channel_sku,
                    quantity: cancelled,
                }],
            });
        }
    }
    changes.insert(
        0,
        PolledChange::Placed {
            occurred_at: placed_at,
            lines: placed,
        },
    );
    Ok(PolledOrder {
        channel: CHANNEL,
        order_id: po,
        changes,
    })
}

/// Reads one page of `GET /v3/orders`. Its `next` is the `nextCursor` query string, to append
/// to `/v3/orders` as it is. An order the page carries but that cannot be read is in
/// `unreadable`; a body that is not such a page at all is an error.
pub fn parse_orders_page(body: &[u8]) -> Result<OrdersPage<String>, InvalidInput> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid("body", format!("not JSON: {e}")))?;
    let list = object(object(Some(&value), "body")?.get("list"), "list")?;
    let meta = object(list.get("meta"), "list.meta")?;
    let total = integer(meta, "totalCount").and_then(|t| u64::try_from(t).ok());
    let next = meta
        .get("nextCursor")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    let elements = match list.get("elements") {
        None | Some(Value::Null) => &[][..],
        Some(e) => match object(Some(e), "list.elements")?.get("order") {
            None | Some(Value::Null) => &[][..],
            Some(Value::Array(orders)) => orders.as_slice(),
            Some(_) => return Err(invalid("list.elements.order", "must be an array")),
        },
    };
    let mut orders = Vec::new();
    let mut unreadable = Vec::new();
    for (i, o) in elements.iter().enumerate() {
        match order(o) {
            Ok(o) => orders.push(o),
            Err(mut e) => {
                e.field = format!("order[{i}].{}", e.field);
                unreadable.push(e);
            }
        }
    }
    Ok(OrdersPage {
        orders,
        unreadable,
        total,
        next,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn line(n: &str, sku: &str, qty: &str, statuses: Value) -> Value {
        json!({"lineNumber": n, "item": {"productName": "Tee", "sku": sku},
               "charges": {"charge": []},
               "orderLineQuantity": {"unitOfMeasurement": "EACH", "amount": qty},
               "statusDate": 1_764_324_300_000_i64,
               "orderLineStatuses": {"orderLineStatus": statuses}})
    }

    fn page(orders: Value, next: Option<&str>) -> Vec<u8> {
        json!({"list": {"meta": {"totalCount": 2, "limit": 100, "nextCursor": next},
                        "elements": {"order": orders}}})
        .to_string()
        .into_bytes()
    }

    #[test]
    fn a_page_of_orders_becomes_their_changes_and_the_next_cursor() {
        let created = json!([{"status": "Created", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "2"}}]);
        let cancelled = json!([{"status": "Cancelled", "statusQuantity": {"unitOfMeasurement": "EACH", "amount": "1"}}]);
        let body = page(
            json!([
                {"purchaseOrderId": "1796277083022", "customerOrderId": "5281956426648",
                 "orderDate": 1_764_324_000_000_i64,
                 "orderLines": {"orderLine": [line("1", "TEE-M", "2", created), line("2", "CAP", "1", cancelled)]}},
                {"purchaseOrderId": "bad"}
            ]),
            Some("?limit=100&hasMoreElements=true&soIndex=2&poIndex=1796277083022"),
        );
        let p = parse_orders_page(&body).unwrap();
        assert_eq!(p.total, Some(2));
        assert_eq!(
            p.next.as_deref(),
            Some("?limit=100&hasMoreElements=true&soIndex=2&poIndex=1796277083022")
        );
        assert_eq!(p.unreadable.len(), 1);
        assert!(p.unreadable[0].field.starts_with("order[1]"));
        let o = &p.orders[0];
        assert_eq!(o.order_id, "1796277083022");
        assert_eq!(
            o.changes[0],
            PolledChange::Placed {
                occurred_at: "2025-11-28T10:00:00.000Z".into(),
                lines: vec![
                    PolledLine {
                        line_id: "1".into(),
                        channel_sku: "TEE-M".into(),
                        quantity: 2
                    },
                    PolledLine {
                        line_id: "2".into(),
                        channel_sku: "CAP".into(),
                        quantity: 1
                    },
                ]
            }
        );
        assert_eq!(
            o.changes[1],
            PolledChange::LinesCancelled {
                key: "2".into(),
                occurred_at: "2025-11-28T10:05:00.000Z".into(),
                lines: vec![PolledLine {
                    line_id: "2".into(),
                    channel_sku: "CAP".into(),
                    quantity: 1
                }]
            }
        );
    }

    #[test]
    fn the_last_page_and_an_empty_one_read_as_such() {
        let p = parse_orders_page(
            &json!({"list": {"meta": {"totalCount": 0, "limit": 100}, "elements": {}}})
                .to_string()
                .into_bytes(),
        )
        .unwrap();
        assert!(p.orders.is_empty() && p.next.is_none());
    }

    #[test]
    fn what_is_not_an_orders_page_is_invalid() {
        for body in [
            &b"<html>"[..],
            br#"{"list": []}"#,
            br#"{"errors": [{"code": "x"}]}"#,
            br#"{"list": {"meta": {}, "elements": {"order": {}}}}"#,
        ] {
            assert_eq!(parse_orders_page(body).unwrap_err().code, "invalid_page");
        }
    }
}
