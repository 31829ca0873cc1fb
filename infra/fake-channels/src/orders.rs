//! Orders placed on a fake channel, as its marketplace would take them: only from what it shows.

use chrono::{SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::gate::random_hex;
use crate::state::{AmazonItem, AmazonOrder, Shared, State};

/// An order as a buyer places it on the channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderRequest {
    /// Made up when absent.
    #[serde(default)]
    pub order_id: Option<String>,
    pub lines: Vec<OrderLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub listing_key: String,
    pub quantity: i64,
}

impl OrderRequest {
    /// An order of `(listing_key, quantity)` lines.
    pub fn new<K: Into<String>>(lines: impl IntoIterator<Item = (K, i64)>) -> Self {
        Self {
            order_id: None,
            lines: lines
                .into_iter()
                .map(|(listing_key, quantity)| OrderLine {
                    listing_key: listing_key.into(),
                    quantity,
                })
                .collect(),
        }
    }

    pub fn with_order_id(mut self, order_id: impl Into<String>) -> Self {
        self.order_id = Some(order_id.into());
        self
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OrderError {
    #[error("an order needs at least one line")]
    NoLines,
    #[error("lines[{index}]: quantity must be positive, not {quantity}")]
    InvalidQuantity { index: usize, quantity: i64 },
    #[error("listing {0:?} is not on this channel")]
    UnknownListing(String),
    #[error("no order {0:?} on this channel")]
    UnknownOrder(String),
    #[error("listing {listing_key:?} shows {shown}, fewer than the {requested} ordered")]
    NotEnoughShown {
        listing_key: String,
        shown: i64,
        requested: i64,
    },
}

/// Takes the ordered units off what the channel shows and makes the order known the way its
/// marketplace does: Shopify posts an `orders/create` webhook, Amazon sends an `ORDER_CHANGE`
/// notification, Walmart and eBay list it in their orders APIs for the seller to poll. Answers
/// the order id stockguard gives the order and the channel.
pub(crate) fn place(shared: &Shared, order: &OrderRequest) -> Result<Value, OrderError> {
    if order.lines.is_empty() {
        return Err(OrderError::NoLines);
    }
    let mut wanted: Vec<(&str, i64)> = Vec::new();
    for (index, line) in order.lines.iter().enumerate() {
        if line.quantity <= 0 {
            return Err(OrderError::InvalidQuantity {
                index,
                quantity: line.quantity,
            });
        }
        match wanted.iter_mut().find(|(key, _)| *key == line.listing_key) {
            Some((_, total)) => *total = total.saturating_add(line.quantity),
            None => wanted.push((&line.listing_key, line.quantity)),
        }
    }
    let now = Instant::now();
    let lines = shared.with(|state| {
        for &(key, requested) in &wanted {
            let shown = state
                .shown(key, now)
                .ok_or_else(|| OrderError::UnknownListing(key.to_owned()))?;
            if shown < requested {
                return Err(OrderError::NotEnoughShown {
                    listing_key: key.to_owned(),
                    shown,
                    requested,
                });
            }
        }
        // Each listing's line with the SKU the seller gave it on the channel.
        let mut lines: Vec<(String, String, i64)> = Vec::new();
        for &(key, quantity) in &wanted {
            state.take_shown(key, quantity, now);
            let sku = state
                .listing(key, now)
                .map_or_else(|| key.to_owned(), |l| l.sku.clone());
            lines.push((key.to_owned(), sku, quantity));
        }
        state.stats.orders += 1;
        Ok(lines)
    })?;
    Ok(match shared.kind {
        crate::FakeKind::Shopify => shopify_order(shared, order, &lines),
        crate::FakeKind::Amazon => amazon_order(shared, order, &wanted),
        crate::FakeKind::Walmart | crate::FakeKind::Ebay => market_order(shared, order, &wanted),
    })
}

/// A Walmart purchase order number or an eBay order id: the requested one, else a fresh one in
/// the channel's own form.
fn market_order_id(kind: crate::FakeKind, requested: Option<&str>) -> String {
    if let Some(id) = requested {
        return id.to_owned();
    }
    let n = rand::random::<u64>();
    match kind {
        crate::FakeKind::Walmart => format!("{}", 1_000_000_000_000 + n % 9_000_000_000_000),
        _ => format!(
            "{:02}-{:05}-{:05}",
            n % 100,
            (n / 100) % 100_000,
            (n / 7) % 100_000
        ),
    }
}

/// A Walmart or eBay order: listed by the orders API from now on, as modified now.
fn market_order(shared: &Shared, order: &OrderRequest, wanted: &[(&str, i64)]) -> Value {
    let id = market_order_id(shared.kind, order.order_id.as_deref());
    let now = crate::market_orders::now_ms();
    let lines = wanted
        .iter()
        .enumerate()
        .map(|(i, (key, quantity))| crate::market_orders::MarketLine {
            number: i as u32 + 1,
            channel_sku: (*key).to_owned(),
            quantity: *quantity,
        })
        .collect();
    shared.with(|state| {
        state.market_orders.push(crate::market_orders::MarketOrder {
            id: id.clone(),
            created_ms: now,
            modified_ms: now,
            lines,
            cancelled_ms: None,
        });
    });
    let channel = shared.kind.as_str();
    json!({"order_id": format!("{channel}-{id}"), "channel": channel})
}

/// A Shopify order id: the requested one when it is numeric, else a fresh one.
fn shopify_number(requested: Option<&str>) -> u64 {
    requested
        .and_then(|r| r.parse().ok())
        .unwrap_or_else(|| 1_000_000_000_000 + rand::random::<u64>() % 9_000_000_000_000)
}

/// Sends `orders/create` for an order on the Shopify fake and remembers it for its
/// cancellation. Answers what stockguard makes of it: its order id and lines.
fn shopify_order(shared: &Shared, order: &OrderRequest, lines: &[(String, String, i64)]) -> Value {
    let number = shopify_number(order.order_id.as_deref());
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let line_items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (key, sku, quantity))| {
            let item: u64 = key
                .split(':')
                .next()
                .and_then(|i| i.parse().ok())
                .unwrap_or_default();
            json!({
                "id": number * 100 + i as u64 + 1, "variant_id": crate::shopify::variant_id_of(item),
                "product_id": item / 2, "sku": sku, "quantity": quantity, "gift_card": false,
                "title": sku, "fulfillable_quantity": quantity,
            })
        })
        .collect();
    let payload = json!({
        "id": number, "admin_graphql_api_id": format!("gid://shopify/Order/{number}"),
        "name": format!("#{}", number % 100_000), "created_at": now, "updated_at": now,
        "cancelled_at": null, "financial_status": "paid", "line_items": line_items,
    });
    let settings = shared.with(|state| {
        state
            .shopify_orders
            .insert(number.to_string(), payload.clone());
        state.settings.clone()
    });
    crate::webhooks::send(&settings, "orders/create", &payload);
    json!({
        "order_id": format!("shopify-{number}"), "channel": "shopify",
        "lines": lines.iter().map(|(_, sku, q)| json!({"sku": sku, "quantity": q})).collect::<Vec<_>>(),
    })
}

/// An SP-API `ORDER_CHANGE` notification as an SQS destination receives it.
fn order_change(order_id: &str, status: &str, items: Option<&[AmazonItem]>) -> String {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let mut summary = json!({
        "MarketplaceId": "ATVPDKIKX0DER", "OrderStatus": status, "FulfillmentType": "MFN",
        "PurchaseDate": now, "OrderType": "StandardOrder",
    });
    if let Some(items) = items {
        summary["OrderItems"] = json!(
            items
                .iter()
                .map(|i| json!({"OrderItemId": i.order_item_id, "SellerSKU": i.seller_sku, "Quantity": i.quantity}))
                .collect::<Vec<_>>()
        );
    }
    json!({
        "NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "PayloadVersion": "1.0",
        "EventTime": now,
        "Payload": {"OrderChangeNotification": {
            "NotificationLevel": "OrderLevel", "SellerId": "A1SELLER", "AmazonOrderId": order_id,
            "OrderChangeType": "OrderStatusChange",
            "OrderChangeTrigger": {"TimeOfOrderChange": now, "ChangeReason": "OrderStatusChange"},
            "Summary": summary}},
        "NotificationMetadata": {"ApplicationId": "amzn1.sellerapps.app.fake",
            "SubscriptionId": "fake-subscription", "PublishTime": now,
            "NotificationId": format!("{}", random_hex())},
    })
    .to_string()
}

/// Sends a notification, twice now and then (its duplicate carries the same body).
fn notify(shared: &Shared, body: String) {
    let Some(sink) = &shared.on_notification else {
        return;
    };
    let twice = rand::random::<f64>()
        < shared.with(|state| state.settings.amazon_notification_duplicate_rate);
    if twice {
        sink(body.clone());
    }
    sink(body);
}

/// An Amazon order: remembered for getOrder and announced with `ORDER_CHANGE`. Answers
/// what stockguard makes of it: its order id.
fn amazon_order(shared: &Shared, order: &OrderRequest, wanted: &[(&str, i64)]) -> Value {
    let order_id = order.order_id.clone().unwrap_or_else(|| {
        let n = rand::random::<u64>();
        format!(
            "{:03}-{:07}-{:07}",
            n % 1000,
            (n / 1000) % 10_000_000,
            (n / 7) % 10_000_000
        )
    });
    let items: Vec<AmazonItem> = wanted
        .iter()
        .enumerate()
        .map(|(i, (key, quantity))| AmazonItem {
            order_item_id: format!("{}{i:02}", order_id.replace('-', "")),
            seller_sku: (*key).to_owned(),
            quantity: *quantity,
        })
        .collect();
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let with_items = shared.with(|state| {
        state.amazon_orders.insert(
            order_id.clone(),
            AmazonOrder {
                items: items.clone(),
                created: now.clone(),
                updated: now,
                cancelled: false,
            },
        );
        state.settings.amazon_notification_items
    });
    notify(
        shared,
        order_change(
            &order_id,
            "Unshipped",
            with_items.then_some(items.as_slice()),
        ),
    );
    json!({"order_id": format!("amazon-{order_id}"), "channel": "amazon"})
}

/// getOrder (Orders API v2026-01-01): the order with all its items, always (`orderItems` is not
/// among the `includedData` datasets); the `FULFILLMENT` dataset adds the order's fulfillment
/// status. The other datasets are valid but add nothing here. `None` for an order the fake does
/// not have.
pub(crate) fn amazon_order_2026(
    shared: &Shared,
    order_id: &str,
    with_fulfillment: bool,
) -> Option<Value> {
    shared.with(|state| {
        let o = state.amazon_orders.get(order_id)?;
        state.stats.order_reads += 1;
        let items: Vec<Value> = o
            .items
            .iter()
            .map(|i| {
                json!({"orderItemId": i.order_item_id, "quantityOrdered": i.quantity,
                       "product": {"sellerSku": i.seller_sku, "title": i.seller_sku}})
            })
            .collect();
        let mut order = json!({
            "orderId": order_id, "createdTime": o.created, "lastUpdatedTime": o.updated,
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": "ATVPDKIKX0DER",
                             "marketplaceName": "Amazon.com"},
            "orderItems": items,
        });
        if with_fulfillment {
            let status = if o.cancelled {
                "CANCELLED"
            } else {
                "UNSHIPPED"
            };
            order["fulfillment"] = json!({"fulfillmentStatus": status, "fulfilledBy": "MERCHANT"});
        }
        Some(json!({ "order": order }))
    })
}

/// What a cancellation of an Amazon order found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AmazonCancel {
    Cancelled,
    AlreadyCancelled,
    Unknown,
}

/// Cancels an order on the Amazon fake (by its buyer, or by the seller through cancelOrder): it
/// is marked cancelled and counted, and Amazon's `ORDER_CHANGE` with status `Canceled` is sent.
pub(crate) fn cancel_amazon(shared: &Shared, order_id: &str) -> AmazonCancel {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let found = shared.with(|state| match state.amazon_orders.get_mut(order_id) {
        None => AmazonCancel::Unknown,
        Some(o) if o.cancelled => AmazonCancel::AlreadyCancelled,
        Some(o) => {
            o.cancelled = true;
            o.updated = now;
            state.stats.orders_cancelled += 1;
            AmazonCancel::Cancelled
        }
    });
    if found == AmazonCancel::Cancelled {
        notify(shared, order_change(order_id, "Canceled", None));
    }
    found
}

/// Cancels an order placed on the fake, by its buyer: Shopify sends `orders/cancelled`, Amazon
/// an `ORDER_CHANGE` with status `Canceled`; Walmart and eBay list it again, cancelled and
/// modified now.
pub(crate) fn cancel(shared: &Shared, order_id: &str) -> Result<(), OrderError> {
    if matches!(
        shared.kind,
        crate::FakeKind::Walmart | crate::FakeKind::Ebay
    ) {
        let prefix = format!("{}-", shared.kind.as_str());
        let id = order_id.strip_prefix(&prefix).unwrap_or(order_id);
        let now = crate::market_orders::now_ms();
        return shared.with(|state| {
            match state.market_orders.iter_mut().find(|o| o.id == id) {
                Some(o) if o.cancelled_ms.is_none() => {
                    o.cancelled_ms = Some(now);
                    // Strictly later, so a poll that read the order before reads it again.
                    o.modified_ms = now.max(o.modified_ms + 1);
                    state.stats.orders_cancelled += 1;
                    Ok(())
                }
                _ => Err(OrderError::UnknownOrder(order_id.to_owned())),
            }
        });
    }
    if shared.kind == crate::FakeKind::Amazon {
        let id = order_id.strip_prefix("amazon-").unwrap_or(order_id);
        return match cancel_amazon(shared, id) {
            AmazonCancel::Cancelled => Ok(()),
            _ => Err(OrderError::UnknownOrder(order_id.to_owned())),
        };
    }
    let number = order_id.strip_prefix("shopify-").unwrap_or(order_id);
    shared.with(|state| {
        mark_cancelled(state, number, "customer")
            .ok_or_else(|| OrderError::UnknownOrder(order_id.to_owned()))
    })
}

/// Marks an order cancelled and sends its `orders/cancelled` webhook; `None` for an order the
/// fake does not have or that is cancelled already.
fn mark_cancelled(state: &mut State, number: &str, reason: &str) -> Option<()> {
    let now = Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true);
    let order = state.shopify_orders.get_mut(number)?;
    if !order["cancelled_at"].is_null() {
        return None;
    }
    order["cancelled_at"] = json!(now);
    order["updated_at"] = json!(now);
    order["cancel_reason"] = json!(reason);
    let payload = order.clone();
    state.stats.orders_cancelled += 1;
    crate::webhooks::send(&state.settings, "orders/cancelled", &payload);
    Some(())
}

/// `orderCancel(orderId:)` of the Admin GraphQL API: the order is cancelled by the seller
/// (reason `inventory`), answered with the job that runs it, as Shopify answers.
pub(crate) fn cancel_by_api(state: &mut State, variables: &Value) -> Value {
    let number = variables
        .get("orderId")
        .and_then(Value::as_str)
        .and_then(|g| g.strip_prefix("gid://shopify/Order/"))
        .unwrap_or_default()
        .to_owned();
    let errors = match state.shopify_orders.get(&number) {
        None => vec![
            json!({"field": ["orderId"], "message": "Order does not exist", "code": "NOT_FOUND"}),
        ],
        Some(o) if !o["cancelled_at"].is_null() => vec![
            json!({"field": ["orderId"], "message": "Order has already been cancelled", "code": "INVALID"}),
        ],
        Some(_) => {
            mark_cancelled(state, &number, "inventory");
            Vec::new()
        }
    };
    let job = errors
        .is_empty()
        .then(|| json!({"id": format!("gid://shopify/Job/{}", random_hex()), "done": false}));
    json!({"orderCancel": {"job": job, "orderCancelUserErrors": errors}})
}
