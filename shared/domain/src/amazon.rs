//! Amazon's SP-API notifications in the contract's words (contract section 6): an
//! `ORDER_CHANGE` becomes `OrderPlaced` or `OrderCancelled` with `event_id`s from the order and
//! the change, so a redelivered notification applies once; `LISTINGS_ITEM_MFN_QUANTITY_CHANGE`
//! is Amazon's own word that it shows a quantity.

use std::collections::BTreeMap;

use serde_json::{Map, Value, json};

use crate::error::InvalidInput;
use crate::types::{EntityId, EventId, Millis, Sku, format_timestamp, parse_timestamp};

pub const CHANNEL: &str = "amazon";

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput::new("invalid_notification", field, message)
}

/// An order line as Amazon names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AmazonLine {
    pub order_item_id: String,
    pub seller_sku: String,
    pub quantity: i64,
}

/// What an `ORDER_CHANGE` says happened to an order stockguard holds stock for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OrderChange {
    /// A merchant-fulfilled order was placed; `None` lines when the summary left them out (read
    /// them with getOrder of the Orders API v2026-01-01, see [`parse_order_items`]).
    Placed {
        order_id: String,
        occurred_at: String,
        lines: Option<Vec<AmazonLine>>,
    },
    Cancelled {
        order_id: String,
        occurred_at: String,
    },
    /// Any other status (shipped, invoiced, Amazon-fulfilled orders): nothing to apply.
    Ignored { reason: String },
}

/// One notification from the queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notification {
    Order(OrderChange),
    /// `LISTINGS_ITEM_MFN_QUANTITY_CHANGE`: Amazon now shows `quantity` for `seller_sku`.
    QuantityShown {
        seller_sku: String,
        quantity: i64,
        at: Millis,
    },
    /// A notification type stockguard does not take.
    Other {
        notification_type: String,
    },
}

fn text<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a str, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| invalid(field, format!("`{field}` must be a non-empty string")))
}

fn object<'a>(v: Option<&'a Value>, field: &str) -> Result<&'a Map<String, Value>, InvalidInput> {
    v.and_then(Value::as_object)
        .ok_or_else(|| invalid(field, format!("`{field}` must be an object")))
}

fn time(obj: &Map<String, Value>, field: &str) -> Result<Millis, InvalidInput> {
    parse_timestamp(text(obj, field)?)
        .ok_or_else(|| invalid(field, format!("`{field}` must be an RFC 3339 timestamp")))
}

fn quantity(value: Option<&Value>, field: &str) -> Result<i64, InvalidInput> {
    value
        .and_then(Value::as_i64)
        .filter(|q| (0..=1_000_000).contains(q))
        .ok_or_else(|| invalid(field, "the item's quantity must be 0 to 1,000,000"))
}

/// Order lines as an `ORDER_CHANGE`'s `Summary.OrderItems` gives them (`OrderItemId`,
/// `SellerSKU`, `Quantity`).
pub fn parse_lines(items: &[Value]) -> Result<Vec<AmazonLine>, InvalidInput> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("OrderItems[{i}]");
            let item = object(Some(item), &field)?;
            Ok(AmazonLine {
                order_item_id: text(item, "OrderItemId")?.to_owned(),
                seller_sku: text(item, "SellerSKU")?.to_owned(),
                quantity: quantity(item.get("Quantity"), &field)?,
            })
        })
        .collect()
}

/// Order lines as getOrder of the Orders API v2026-01-01 gives them in `order.orderItems`:
/// `orderItemId`, `quantityOrdered` and the seller SKU in `product.sellerSku`.
pub fn parse_order_items(items: &[Value]) -> Result<Vec<AmazonLine>, InvalidInput> {
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let field = format!("orderItems[{i}]");
            let item = object(Some(item), &field)?;
            let product = object(item.get("product"), &format!("{field}.product"))?;
            Ok(AmazonLine {
                order_item_id: text(item, "orderItemId")?.to_owned(),
                seller_sku: text(product, "sellerSku")?.to_owned(),
                quantity: quantity(item.get("quantityOrdered"), &field)?,
            })
        })
        .collect()
}

/// Reads one notification as SP-API writes it to an SQS destination.
pub fn parse_notification(body: &str) -> Result<Notification, InvalidInput> {
    let value: Value =
        serde_json::from_str(body).map_err(|e| invalid("body", format!("not JSON: {e}")))?;
    let root = object(Some(&value), "body")?;
    let kind = text(root, "NotificationType")?;
    let payload = object(root.get("Payload"), "Payload")?;
    match kind {
        "ORDER_CHANGE" => {
            let change = object(
                payload.get("OrderChangeNotification"),
                "OrderChangeNotification",
            )?;
            let order_id = text(change, "AmazonOrderId")?.to_owned();
            let summary = object(change.get("Summary"), "Summary")?;
            let occurred_at = format_timestamp(time(root, "EventTime")?);
            if summary.get("FulfillmentType").and_then(Value::as_str) == Some("AFN") {
                return Ok(Notification::Order(OrderChange::Ignored {
                    reason: "fulfilled by Amazon from its own stock".into(),
                }));
            }
            let status = text(summary, "OrderStatus")?;
            Ok(Notification::Order(match status {
                "Pending" | "Unshipped" | "PartiallyShipped" => OrderChange::Placed {
                    order_id,
                    occurred_at,
                    lines: match summary.get("OrderItems").and_then(Value::as_array) {
                        Some(items) if !items.is_empty() => Some(parse_lines(items)?),
                        _ => None,
                    },
                },
                "Canceled" => OrderChange::Cancelled {
                    order_id,
                    occurred_at,
                },
                other => OrderChange::Ignored {
                    reason: format!("order status {other}"),
                },
            }))
        }
        "LISTINGS_ITEM_MFN_QUANTITY_CHANGE" => Ok(Notification::QuantityShown {
            seller_sku: text(payload, "Sku")?.to_owned(),
            quantity: payload
                .get("Quantity")
                .and_then(Value::as_i64)
                .ok_or_else(|| invalid("Quantity", "`Quantity` must be an integer"))?,
            at: time(root, "EventTime")?,
        }),
        other => Ok(Notification::Other {
            notification_type: other.to_owned(),
        }),
    }
}

/// The contract's order id of an Amazon order.
pub fn order_id(amazon_order_id: &str) -> String {
    format!("{CHANNEL}-{amazon_order_id}")
}

/// Inbound events (`detail-type`, `detail`) and the lines that map to nothing.
pub type Mapped = (Vec<(&'static str, Value)>, Vec<AmazonLine>);

/// Inbound events for an order change whose lines are known; `sku_of` maps a seller SKU to
/// ours (its listing). Lines mapping to nothing come back apart, for the dead-letter queue.
pub fn to_inbound(
    change: &OrderChange,
    lines: &[AmazonLine],
    sku_of: impl Fn(&str) -> Option<Sku>,
) -> Result<Mapped, InvalidInput> {
    let event_id = |parts: &[&str]| -> Result<String, InvalidInput> {
        let raw = format!("{CHANNEL}:{}", parts.join(":"));
        EventId::parse(&raw).map_err(|m| invalid("AmazonOrderId", m))?;
        Ok(raw)
    };
    let ours = |id: &str| -> Result<String, InvalidInput> {
        Ok(EntityId::parse(&order_id(id))
            .map_err(|m| invalid("AmazonOrderId", m))?
            .as_str()
            .to_owned())
    };
    match change {
        OrderChange::Placed {
            order_id,
            occurred_at,
            ..
        } => {
            let mut by_sku: BTreeMap<Sku, i64> = BTreeMap::new();
            let mut unmapped = Vec::new();
            for l in lines.iter().filter(|l| l.quantity > 0) {
                match sku_of(&l.seller_sku) {
                    Some(sku) => *by_sku.entry(sku).or_default() += l.quantity,
                    None => unmapped.push(l.clone()),
                }
            }
            let mut events = Vec::new();
            if !by_sku.is_empty() {
                events.push((
                    "OrderPlaced",
                    json!({
                        "event_id": event_id(&["order", order_id, "placed"])?,
                        "occurred_at": occurred_at, "order_id": ours(order_id)?,
                        "channel": CHANNEL,
                        "lines": by_sku.iter().map(|(s, q)| json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
                    }),
                ));
            }
            Ok((events, unmapped))
        }
        OrderChange::Cancelled {
            order_id,
            occurred_at,
        } => Ok((
            vec![(
                "OrderCancelled",
                json!({
                    "event_id": event_id(&["order", order_id, "cancelled"])?,
                    "occurred_at": occurred_at, "order_id": ours(order_id)?,
                }),
            )],
            Vec::new(),
        )),
        OrderChange::Ignored { .. } => Ok((Vec::new(), Vec::new())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse_inbound;

    fn order_change(status: &str, items: Option<Value>) -> String {
        let mut summary = json!({"OrderStatus": status, "FulfillmentType": "MFN", "MarketplaceId": "ATVPDKIKX0DER"});
        if let Some(items) = items {
            summary["OrderItems"] = items;
        }
        json!({
            "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
            "EventTime": "2026-11-28T10:00:00.512Z",
            "Payload": {"OrderChangeNotification": {
                "NotificationLevel": "OrderLevel", "SellerId": "A1SELLER",
                "AmazonOrderId": "113-4567890-1234567", "OrderChangeType": "OrderStatusChange",
                "Summary": summary}},
            "NotificationMetadata": {"NotificationId": "n-1", "PublishTime": "2026-11-28T10:00:01Z"}
        })
        .to_string()
    }

    fn ours(seller_sku: &str) -> Option<Sku> {
        (seller_sku != "UNMAPPED").then(|| Sku::parse(&seller_sku.to_uppercase()).unwrap())
    }

    #[test]
    fn an_unshipped_order_with_its_items_becomes_order_placed() {
        let body = order_change(
            "Unshipped",
            Some(json!([
                {"OrderItemId": "1", "SellerSKU": "tee-m", "Quantity": 2},
                {"OrderItemId": "2", "SellerSKU": "tee-m", "Quantity": 1},
                {"OrderItemId": "3", "SellerSKU": "UNMAPPED", "Quantity": 1}
            ])),
        );
        let Notification::Order(change) = parse_notification(&body).unwrap() else {
            panic!("an order change")
        };
        let OrderChange::Placed {
            lines: Some(lines), ..
        } = &change
        else {
            panic!("placed with lines: {change:?}")
        };
        let (events, unmapped) = to_inbound(&change, lines, ours).unwrap();
        assert_eq!(
            events,
            vec![(
                "OrderPlaced",
                json!({"event_id": "amazon:order:113-4567890-1234567:placed",
                       "occurred_at": "2026-11-28T10:00:00.512Z",
                       "order_id": "amazon-113-4567890-1234567", "channel": "amazon",
                       "lines": [{"sku": "TEE-M", "quantity": 3}]})
            )]
        );
        assert_eq!(unmapped.len(), 1);
        parse_inbound("OrderPlaced", &events[0].1).unwrap();
        // A redelivery maps to the same event.
        assert_eq!(
            to_inbound(&change, lines, ours).unwrap().0,
            events,
            "same event id and payload"
        );
    }

    #[test]
    fn an_order_without_items_asks_for_them() {
        let Notification::Order(OrderChange::Placed { lines, .. }) =
            parse_notification(&order_change("Pending", None)).unwrap()
        else {
            panic!("placed")
        };
        assert_eq!(lines, None);
        // As getOrder (Orders API v2026-01-01) gives them.
        let items = [
            json!({"orderItemId": "9", "quantityOrdered": 4,
                   "product": {"asin": "B000000001", "sellerSku": "cap", "title": "Cap"}}),
            json!({"orderItemId": "10", "quantityOrdered": 1, "product": {"sellerSku": "tee-m"},
                   "fulfillment": {"quantityFulfilled": 0, "quantityUnfulfilled": 1}}),
        ];
        assert_eq!(
            parse_order_items(&items).unwrap(),
            vec![
                AmazonLine {
                    order_item_id: "9".into(),
                    seller_sku: "cap".into(),
                    quantity: 4
                },
                AmazonLine {
                    order_item_id: "10".into(),
                    seller_sku: "tee-m".into(),
                    quantity: 1
                },
            ]
        );
    }

    #[test]
    fn get_order_items_without_what_a_line_needs_are_invalid() {
        for item in [
            json!({"orderItemId": "9", "quantityOrdered": 4}),
            json!({"orderItemId": "9", "quantityOrdered": 4, "product": {"asin": "B000000001"}}),
            json!({"orderItemId": "9", "product": {"sellerSku": "cap"}}),
            json!({"orderItemId": "9", "quantityOrdered": -1, "product": {"sellerSku": "cap"}}),
            json!({"quantityOrdered": 4, "product": {"sellerSku": "cap"}}),
            // The v0 getOrderItems shape is not read any more.
            json!({"OrderItemId": "9", "SellerSKU": "cap", "QuantityOrdered": 4}),
        ] {
            assert_eq!(
                parse_order_items(std::slice::from_ref(&item))
                    .unwrap_err()
                    .code,
                "invalid_notification",
                "{item}"
            );
        }
    }

    #[test]
    fn a_cancellation_releases_the_order_and_other_statuses_are_ignored() {
        let Notification::Order(change) =
            parse_notification(&order_change("Canceled", None)).unwrap()
        else {
            panic!("order")
        };
        let (events, _) = to_inbound(&change, &[], ours).unwrap();
        assert_eq!(events[0].0, "OrderCancelled");
        assert_eq!(
            events[0].1["event_id"],
            "amazon:order:113-4567890-1234567:cancelled"
        );
        parse_inbound("OrderCancelled", &events[0].1).unwrap();
        for status in ["Shipped", "InvoiceUnconfirmed"] {
            assert!(matches!(
                parse_notification(&order_change(status, None)).unwrap(),
                Notification::Order(OrderChange::Ignored { .. })
            ));
        }
        let mut afn: Value = serde_json::from_str(&order_change("Unshipped", None)).unwrap();
        afn["Payload"]["OrderChangeNotification"]["Summary"]["FulfillmentType"] = json!("AFN");
        assert!(matches!(
            parse_notification(&afn.to_string()).unwrap(),
            Notification::Order(OrderChange::Ignored { .. })
        ));
    }

    #[test]
    fn a_quantity_change_is_what_amazon_shows() {
        let body = json!({"NotificationType": "LISTINGS_ITEM_MFN_QUANTITY_CHANGE",
            "EventTime": "2026-11-28T10:05:00Z",
            "Payload": {"SellerId": "A1SELLER", "FulfillmentChannelCode": "DEFAULT", "Sku": "tee-m", "Quantity": 7}})
        .to_string();
        assert_eq!(
            parse_notification(&body).unwrap(),
            Notification::QuantityShown {
                seller_sku: "tee-m".into(),
                quantity: 7,
                at: parse_timestamp("2026-11-28T10:05:00Z").unwrap()
            }
        );
    }

    #[test]
    fn what_is_not_a_notification_is_invalid() {
        for body in [
            "nope".to_owned(),
            json!({"NotificationType": "ORDER_CHANGE"}).to_string(),
            json!({"NotificationType": "ORDER_CHANGE", "EventTime": "x", "Payload": {}})
                .to_string(),
        ] {
            assert_eq!(
                parse_notification(&body).unwrap_err().code,
                "invalid_notification"
            );
        }
        assert!(matches!(
            parse_notification(
                &json!({"NotificationType": "FEED_PROCESSING_FINISHED", "Payload": {}}).to_string()
            )
            .unwrap(),
            Notification::Other { .. }
        ));
    }
}
