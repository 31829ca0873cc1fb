//! Shopify orders reach the state only as Shopify sends them: signed webhooks to
//! `POST /v1/webhooks/shopify`, posted by the fake Shopify (with its retries, duplicates and late
//! deliveries) to the local runtime's API, published as inbound events and applied once.

use std::time::Duration;

use serde_json::{Value, json};
use stockguard_fake_channels::{OrderRequest, shopify_signature};
use stockguard_local::RuntimeOptions;
use stockguard_local::fake_wiring::{SHOPIFY_WEBHOOK_SECRET, send_shopify_webhooks};
use stockguard_tests::channels::{FakeChannels, FakeOptions, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, raw_http, until};

struct Shop {
    stack: TestStack,
    fakes: FakeChannels,
    _rt: stockguard_local::LocalRuntime,
    webhook_url: String,
}

async fn shop(skus: &[&str], stock: i64) -> Shop {
    let stack = TestStack::new().await;
    let fakes = FakeChannels::start(FakeOptions::default()).await.unwrap();
    stack.configure_channels_with(&fakes, |_| {}, skus).await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .await;
    let api = format!("http://{}", rt.api_addr.unwrap());
    let webhook_url = format!("{api}/v1/webhooks/shopify");
    send_shopify_webhooks(&fakes, &api);
    fakes
        .shopify
        .update_settings(|s| s.shopify_webhook_retry_ms = 100);
    stack
        .receive_stock_shown_on(&fakes, skus, stock, &["shopify"])
        .await;
    Shop {
        stack,
        fakes,
        _rt: rt,
        webhook_url,
    }
}

impl Shop {
    async fn post(&self, topic: &str, body: &[u8], signature: Option<&str>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .post(&self.webhook_url)
            .header("X-Shopify-Topic", topic)
            .header("X-Shopify-Webhook-Id", "test-webhook")
            .header("X-Shopify-Shop-Domain", "fake-shop.myshopify.com")
            .body(body.to_vec());
        if let Some(s) = signature {
            req = req.header("X-Shopify-Hmac-Sha256", s);
        }
        let r = req.send().await.unwrap();
        let status = r.status().as_u16();
        (status, r.json().await.unwrap_or(Value::Null))
    }
}

impl Shop {
    /// Sends only the head of a webhook whose body would be `length` bytes, and reads the status.
    async fn declare_oversized_body(&self, length: usize) -> u16 {
        let path = reqwest::Url::parse(&self.webhook_url)
            .unwrap()
            .path()
            .to_owned();
        let head = format!(
            "POST {path} HTTP/1.1\r\nX-Shopify-Topic: orders/create\r\n\
             X-Shopify-Hmac-Sha256: AAAA\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n"
        );
        raw_http(&self.webhook_url, &head, b"").await.status
    }
}

fn order_body(id: u64, sku: &str, variant: u64, quantity: i64) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "id": id, "created_at": now_rfc3339(), "updated_at": now_rfc3339(), "cancelled_at": null,
        "line_items": [{"id": id * 10, "variant_id": variant, "sku": sku, "quantity": quantity}],
    }))
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_a_webhook_signed_with_the_app_secret_is_applied() {
    let s = shop(&["WH-SIG"], 10).await;
    let body = order_body(5001, "WH-SIG", 1, 1);
    let good = shopify_signature(SHOPIFY_WEBHOOK_SECRET, &body);
    let wrong = shopify_signature("not-the-secret", &body);
    let mut tampered = order_body(5001, "WH-SIG", 1, 1);
    let at = tampered.iter().position(|&b| b == b'1').unwrap();
    tampered[at] = b'9';
    for (what, body, sig) in [
        ("wrong secret", body.as_slice(), Some(wrong.as_str())),
        ("tampered body", tampered.as_slice(), Some(good.as_str())),
        ("missing header", body.as_slice(), None),
        ("garbage header", body.as_slice(), Some("%%%")),
    ] {
        let (status, answer) = s.post("orders/create", body, sig).await;
        assert_eq!(status, 401, "{what}");
        assert_eq!(answer["error"], "invalid_signature", "{what}");
    }
    // An unknown topic, signed: acknowledged and ignored. A signed body that is no order: 400.
    let (status, answer) = s.post("products/update", &body, Some(&good)).await;
    assert_eq!((status, answer["status"].as_str()), (200, Some("ignored")));
    let junk = br#"{"hello": "world"}"#;
    let (status, answer) = s
        .post(
            "orders/create",
            junk,
            Some(&shopify_signature(SHOPIFY_WEBHOOK_SECRET, junk)),
        )
        .await;
    assert_eq!(
        (status, answer["error"].as_str()),
        (400, Some("invalid_payload"))
    );
    // An oversized body is refused by its declared length, before any of it is sent: a client
    // still writing a large body may meet the closed connection instead of reading the answer.
    assert_eq!(s.declare_oversized_body(2 * 1024 * 1024).await, 413);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        s.stack.hard_reserved("WH-SIG").await,
        0,
        "nothing refused was applied"
    );

    let (status, answer) = s.post("orders/create", &body, Some(&good)).await;
    assert_eq!(status, 200, "{answer}");
    until("the signed order applied", || async {
        s.stack.hard_reserved("WH-SIG").await == 1
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_on_shopify_reaches_the_state_once_however_often_it_is_delivered() {
    let s = shop(&["WH-A", "WH-B"], 10).await;
    // Every webhook delivered twice, the copy 4 s later: the creation's copy arrives after the
    // cancellation, out of order.
    s.fakes.shopify.update_settings(|x| {
        x.shopify_webhook_duplicate_rate = 1.0;
        x.shopify_webhook_late_ms = 4_000;
    });
    let a = listing_key("shopify", "WH-A");
    let b = listing_key("shopify", "WH-B");
    let placed = s
        .fakes
        .shopify
        .place_order(&OrderRequest::new([(a.as_str(), 2), (b.as_str(), 1)]))
        .unwrap();
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    assert!(order_id.starts_with("shopify-"), "{placed}");
    until("the order is hard-reserved", || async {
        s.stack.hard_reserved("WH-A").await == 2 && s.stack.hard_reserved("WH-B").await == 1
    })
    .await;

    s.fakes.shopify.cancel_order(&order_id).unwrap();
    until("the cancellation released it", || async {
        s.stack.hard_reserved("WH-A").await == 0 && s.stack.hard_reserved("WH-B").await == 0
    })
    .await;
    // Both copies of both webhooks have arrived by now; the late creation placed nothing again.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let p = s.stack.position("WH-A").await;
    assert_eq!((p.on_hand, p.hard_reserved, p.available()), (10, 0, 10));
    assert_eq!(s.stack.hard_reserved("WH-B").await, 0);
    let number = order_id.trim_start_matches("shopify-");
    let events = s
        .stack
        .await_published(Duration::from_secs(2), |_| false)
        .await;
    assert!(
        events
            .iter()
            .all(|e| e["detail-type"] != "OversellDetected"),
        "no oversell"
    );
    let causes: Vec<&Value> = events
        .iter()
        .filter(|e| e["detail-type"] == "InventoryPositionChanged")
        .map(|e| &e["detail"]["cause"]["event_id"])
        .collect();
    let placed_id = format!("shopify:order:{number}:placed");
    let cancelled_id = format!("shopify:order:{number}:cancelled");
    // One change per SKU for the placement and one for the cancellation: applied once each.
    assert_eq!(
        causes.iter().filter(|c| **c == placed_id.as_str()).count(),
        2,
        "{causes:?}"
    );
    assert_eq!(
        causes
            .iter()
            .filter(|c| **c == cancelled_id.as_str())
            .count(),
        2,
        "{causes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lines_map_by_sku_or_by_the_variants_listing_and_unknown_ones_are_dead_lettered() {
    let s = shop(&["WH-M", "WH-V"], 10).await;
    // WH-V's listing on Shopify carries the shop's own SKU text, not ours: found by its variant's
    // inventory item. Another listing is on Shopify only, mapped to nothing of ours.
    let v = listing_key("shopify", "WH-V");
    s.fakes.shopify.register_listing(&v, "shop-text-v", 10);
    let stray = "4242424242:77001";
    s.fakes.shopify.register_listing(stray, "NOT-OURS", 5);
    let m = listing_key("shopify", "WH-M");
    let placed = s
        .fakes
        .shopify
        .place_order(&OrderRequest::new([
            (m.as_str(), 1),
            (v.as_str(), 2),
            (stray, 1),
        ]))
        .unwrap();
    until("the mapped lines applied", || async {
        s.stack.hard_reserved("WH-M").await == 1 && s.stack.hard_reserved("WH-V").await == 2
    })
    .await;
    let mut dead = Vec::new();
    for _ in 0..50 {
        dead.extend(s.stack.dead_letters("ShopifyWebhooksDLQ").await);
        if !dead.is_empty() {
            break;
        }
    }
    assert_eq!(dead.len(), 1, "{dead:?}");
    let (body, reason) = &dead[0];
    assert_eq!(reason.as_deref(), Some("unknown_listing"));
    let body: Value = serde_json::from_str(body).unwrap();
    assert_eq!(body["line"]["sku"], "NOT-OURS");
    assert_eq!(body["line"]["order_id"], placed["order_id"]);
}
