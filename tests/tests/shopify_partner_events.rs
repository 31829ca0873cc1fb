//! Shopify orders through the app's Amazon EventBridge partner event source: a stack deployed with
//! `ShopifyPartnerEventBusName` naming the partner bus (created first, as associating the partner
//! source creates it), Shopify's webhooks put on the source with PutPartnerEvents as Shopify puts
//! them, queued by the stack's rule and mapped as the HTTP webhook maps them.

use std::time::Duration;

use aws_sdk_eventbridge::types::PutPartnerEventsRequestEntry;
use aws_sdk_sqs::types::QueueAttributeName;
use serde_json::{Value, json};
use stockguard_fake_channels::shopify_signature;
use stockguard_local::RuntimeOptions;
use stockguard_local::fake_wiring::SHOPIFY_WEBHOOK_SECRET;
use stockguard_tests::channels::{FakeChannels, FakeOptions};
use stockguard_tests::{TestStack, now_rfc3339, unique, until};

const DLQ: &str = "ShopifyPartnerEventsDLQ";

struct Partner {
    stack: TestStack,
    _fakes: FakeChannels,
    _rt: stockguard_local::LocalRuntime,
    webhook_url: String,
    /// The partner event source, and the partner bus that bears its name.
    source: String,
}

/// Creates Shopify's partner event source for this account and associates it with a bus of the
/// same name, as a seller does before deploying with the parameter.
async fn partner_bus() -> String {
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await;
    let events = aws_sdk_eventbridge::Client::new(&config);
    let default = events.describe_event_bus().send().await.unwrap();
    let account = default.arn().unwrap().split(':').nth(4).unwrap().to_owned();
    let source = format!("aws.partner/shopify.com/1830279/{}", unique("stockguard"));
    events
        .create_partner_event_source()
        .name(&source)
        .account(account)
        .send()
        .await
        .unwrap();
    events
        .create_event_bus()
        .name(&source)
        .event_source_name(&source)
        .send()
        .await
        .unwrap();
    source
}

async fn partner(skus: &[&str], stock: i64) -> Partner {
    let source = partner_bus().await;
    let stack = TestStack::with_parameters(&[("ShopifyPartnerEventBusName", &source)]).await;
    let fakes = FakeChannels::start(FakeOptions::default()).await.unwrap();
    stack.configure_channels_with(&fakes, |_| {}, skus).await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .await;
    let webhook_url = format!("http://{}/v1/webhooks/shopify", rt.api_addr.unwrap());
    stack
        .receive_stock_shown_on(&fakes, skus, stock, &["shopify"])
        .await;
    Partner {
        stack,
        _fakes: fakes,
        _rt: rt,
        webhook_url,
        source,
    }
}

impl Partner {
    /// The `detail` Shopify puts on its partner source for a webhook of `topic`.
    fn detail(topic: &str, payload: &Value) -> Value {
        json!({
            "payload": payload,
            "metadata": {
                "Content-Type": "application/json",
                "X-Shopify-Topic": topic,
                "X-Shopify-Hmac-Sha256": "bm90IG92ZXIgdGhlc2UgYnl0ZXM=",
                "X-Shopify-Shop-Domain": "fake-shop.myshopify.com",
                "X-Shopify-Webhook-Id": unique("webhook"),
                "X-Shopify-Triggered-At": now_rfc3339(),
                "X-Shopify-API-Version": "2026-10",
            }
        })
    }

    /// Puts a webhook on the partner event source, as Shopify does.
    async fn deliver(&self, topic: &str, payload: &Value) {
        let out = self
            .stack
            .events
            .put_partner_events()
            .entries(
                PutPartnerEventsRequestEntry::builder()
                    .source(&self.source)
                    .detail_type("shopifyWebhook")
                    .detail(Self::detail(topic, payload).to_string())
                    .build(),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(out.failed_entry_count(), 0, "{out:?}");
    }

    /// Sends a message to the function's queue directly, as SQS redelivers one or as a rule on
    /// another topic would deliver it.
    async fn enqueue(&self, body: &str) {
        self.stack
            .sqs
            .send_message()
            .queue_url(&self.stack.stack.queues["ShopifyPartnerEventsQueue"].url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }

    /// The event as the rule delivers it to the queue.
    fn envelope(&self, topic: &str, payload: &Value) -> String {
        json!({
            "version": "0", "id": unique("event"), "detail-type": "shopifyWebhook",
            "source": self.source, "account": "123456789012", "time": now_rfc3339(),
            "region": "us-east-1", "resources": [], "detail": Self::detail(topic, payload),
        })
        .to_string()
    }

    async fn queue_is_empty(&self) -> bool {
        let attrs = self
            .stack
            .sqs
            .get_queue_attributes()
            .queue_url(&self.stack.stack.queues["ShopifyPartnerEventsQueue"].url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
            .send()
            .await
            .unwrap()
            .attributes
            .unwrap_or_default();
        attrs.values().all(|v| v == "0")
    }

    async fn dead_letters(&self, want: usize) -> Vec<(Value, Option<String>)> {
        let mut dead = Vec::new();
        for _ in 0..50 {
            dead.extend(self.stack.dead_letters(DLQ).await);
            if dead.len() >= want {
                break;
            }
        }
        dead.into_iter()
            .map(|(body, reason)| (serde_json::from_str(&body).unwrap_or(json!(body)), reason))
            .collect()
    }
}

fn order(id: u64, lines: &[(&str, u64, i64)]) -> Value {
    let items: Vec<Value> = lines
        .iter()
        .enumerate()
        .map(|(i, (sku, variant, q))| {
            json!({"id": id * 10 + i as u64, "variant_id": variant, "sku": sku, "quantity": q})
        })
        .collect();
    json!({"id": id, "created_at": now_rfc3339(), "updated_at": now_rfc3339(),
           "cancelled_at": null, "line_items": items})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_on_the_partner_bus_applies_once_however_it_arrives_and_is_released_and_returned()
{
    let p = partner(&["PB-A", "PB-R"], 10).await;
    // The stack's rule is on the partner bus, not on its own.
    let rule = p
        .stack
        .events
        .describe_rule()
        .name(&p.stack.stack.rules["ShopifyPartnerEventsRule"])
        .event_bus_name(&p.source)
        .send()
        .await
        .unwrap();
    assert_eq!(rule.event_bus_name(), Some(p.source.as_str()));
    let placed = order(7001, &[("PB-A", 11, 2)]);
    // Shopify delivers at least once: twice on the partner source, once more by SQS, and the
    // same order by the HTTP webhook too.
    p.deliver("orders/create", &placed).await;
    p.deliver("orders/create", &placed).await;
    until("the order is hard-reserved", || async {
        p.stack.hard_reserved("PB-A").await == 2
    })
    .await;
    p.enqueue(&p.envelope("orders/create", &placed)).await;
    let body = serde_json::to_vec(&placed).unwrap();
    let r = reqwest::Client::new()
        .post(&p.webhook_url)
        .header("X-Shopify-Topic", "orders/create")
        .header("X-Shopify-Webhook-Id", "http-delivery")
        .header(
            "X-Shopify-Hmac-Sha256",
            shopify_signature(SHOPIFY_WEBHOOK_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    until("every copy taken", || p.queue_is_empty()).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let a = p.stack.position("PB-A").await;
    assert_eq!((a.on_hand, a.hard_reserved, a.available()), (10, 2, 8));

    let mut cancelled = placed.clone();
    cancelled["cancelled_at"] = json!(now_rfc3339());
    p.deliver("orders/cancelled", &cancelled).await;
    until("the cancellation released it", || async {
        p.stack.hard_reserved("PB-A").await == 0
    })
    .await;

    // Another order, then a refund that restocks one unit as a return.
    p.deliver("orders/create", &order(7002, &[("PB-R", 12, 2)]))
        .await;
    until("the second order is hard-reserved", || async {
        p.stack.hard_reserved("PB-R").await == 2
    })
    .await;
    let refund = json!({
        "id": 929361462u64, "order_id": 7002, "created_at": now_rfc3339(),
        "refund_line_items": [{"id": 1, "line_item_id": 70020, "quantity": 1, "restock_type": "return",
            "line_item": {"id": 70020, "variant_id": 12, "sku": "PB-R", "quantity": 2}}]
    });
    p.deliver("refunds/create", &refund).await;
    p.deliver("refunds/create", &refund).await;
    until("the returned unit is back on hand", || async {
        p.stack.position("PB-R").await.on_hand == 11
    })
    .await;

    let events = p
        .stack
        .await_published(Duration::from_secs(3), |_| false)
        .await;
    // Applied once: one new version of the position per change. (A duplicate that meets the
    // change while it is being published may publish it again, with the same version.)
    let versions: std::collections::BTreeSet<(String, String, u64)> = events
        .iter()
        .filter(|e| e["detail-type"] == "InventoryPositionChanged")
        .map(|e| {
            let d = &e["detail"];
            let cause = d["cause"]["event_id"].as_str().unwrap().to_owned();
            (
                cause,
                d["sku"].as_str().unwrap().to_owned(),
                d["version"].as_u64().unwrap(),
            )
        })
        .collect();
    for id in [
        "shopify:order:7001:placed",
        "shopify:order:7001:cancelled",
        "shopify:order:7002:placed",
        "shopify:refund:929361462:70020",
    ] {
        let applied = versions.iter().filter(|(cause, ..)| cause == id).count();
        assert_eq!(applied, 1, "{id}: {versions:?}");
    }
    assert_eq!(p.stack.position("PB-R").await.on_hand, 11, "returned once");
    assert!(p.dead_letters(0).await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn what_the_partner_bus_carries_that_is_not_an_order_of_ours_changes_nothing_else() {
    let p = partner(&["PB-B"], 10).await;
    // A topic the rule does not route never reaches the queue; one that reaches it anyway is
    // acknowledged and ignored, not dead-lettered.
    p.deliver("products/update", &json!({"id": 1, "title": "Tee"}))
        .await;
    p.enqueue(&p.envelope("products/update", &json!({"id": 1, "title": "Tee"})))
        .await;
    // A payload that is no order, and a message that is no event at all.
    p.deliver("orders/create", &json!({"hello": "world"})).await;
    p.enqueue("not json").await;
    // An order with a line of ours and a line of a listing mapped to nothing.
    p.deliver(
        "orders/create",
        &order(7101, &[("PB-B", 21, 1), ("NOT-OURS", 999, 3)]),
    )
    .await;
    until("the mapped line applied", || async {
        p.stack.hard_reserved("PB-B").await == 1
    })
    .await;
    let dead = p.dead_letters(3).await;
    until("the queue is drained", || p.queue_is_empty()).await;
    let mut reasons: Vec<&str> = dead.iter().filter_map(|(_, r)| r.as_deref()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["invalid_payload", "invalid_payload", "unknown_listing"],
        "{dead:?}"
    );
    let unknown = dead
        .iter()
        .find(|(_, r)| r.as_deref() == Some("unknown_listing"))
        .unwrap();
    assert_eq!(unknown.0["line"]["sku"], "NOT-OURS");
    assert_eq!(unknown.0["line"]["order_id"], "shopify-7101");
    let garbage = dead
        .iter()
        .find(|(b, _)| b["detail"]["payload"] == json!({"hello": "world"}))
        .expect("the event that is no order is kept whole");
    assert_eq!(garbage.1.as_deref(), Some("invalid_payload"));
    tokio::time::sleep(Duration::from_secs(2)).await;
    let b = p.stack.position("PB-B").await;
    assert_eq!((b.on_hand, b.hard_reserved), (10, 1));
    assert!(
        p.dead_letters(0).await.is_empty(),
        "each dead-lettered once"
    );
}
