//! IAM proven by the code's own calls: a scenario drives every function of the stack on the
//! local runtime, whose SDK interceptor records each (IAM action, resource) every function's
//! requests need; each must be granted by that function's policy in template.yaml, resource
//! included. The emulator does not enforce IAM, so without this a missing grant shows up only in
//! AWS.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::json;
use serde_yaml::Value as Yaml;
use stockguard_adapters::access::{Access, Resource};
use stockguard_fake_channels::{OrderRequest, shopify_signature};
use stockguard_local::fake_wiring::{
    SHOPIFY_WEBHOOK_SECRET, amazon_notification_feed, send_shopify_webhooks,
};
use stockguard_local::template::workspace_root;
use stockguard_local::{RuntimeOptions, Stack};
use stockguard_tests::channels::{FakeChannels, FakeOptions, listing_key};
use stockguard_tests::{TestStack, at, now_rfc3339, until};

/// A resource a policy statement grants, resolved against the provisioned stack.
#[derive(Debug, Clone, PartialEq)]
enum Granted {
    Table {
        name: String,
        index: Option<String>,
    },
    Bus(String),
    Queue(String),
    /// Secrets whose ARN's name part (after `:secret:`) matches this IAM pattern (`*`, `?`).
    Secrets(String),
}

#[derive(Debug, Clone)]
struct Grant {
    actions: Vec<String>,
    resources: Vec<Granted>,
}

fn strings(v: &Yaml) -> Vec<&Yaml> {
    match v {
        Yaml::Sequence(s) => s.iter().collect(),
        other => vec![other],
    }
}

/// Resolves a policy `Resource` (`!GetAtt X.Arn` or `!Sub` of one) to what it names locally.
fn resolve(resource: &Yaml, stack: &Stack) -> Granted {
    let Yaml::Tagged(t) = resource else {
        panic!("a policy resource is not !GetAtt or !Sub: {resource:?}");
    };
    let text = t.value.as_str().unwrap_or_default();
    let (logical, rest) = match t.tag.to_string().as_str() {
        "!GetAtt" => (text.trim_end_matches(".Arn").to_owned(), String::new()),
        "!Sub" if text.contains(":secret:") => {
            // A secret named by a parameter is the one the local stack creates: its default.
            let mut pattern = text.rsplit(":secret:").next().unwrap().to_owned();
            for (name, default) in &stockguard_local::StackSpec::load_default()
                .unwrap()
                .parameters
            {
                pattern = pattern.replace(&format!("${{{name}}}"), default);
            }
            assert!(
                !pattern.contains("${"),
                "a secret pattern the test cannot resolve: {text}"
            );
            return Granted::Secrets(pattern);
        }
        "!Sub" => {
            let inner = text.trim_start_matches("${");
            let (logical, rest) = inner.split_once(".Arn}").expect("${X.Arn}...");
            (logical.to_owned(), rest.to_owned())
        }
        other => panic!("unexpected tag {other} on a policy resource"),
    };
    match logical.as_str() {
        "StateTable" => Granted::Table {
            name: stack.table.clone(),
            index: rest.strip_prefix("/index/").map(str::to_owned),
        },
        "EventBus" => Granted::Bus(stack.bus.clone()),
        queue => Granted::Queue(
            stack
                .queues
                .get(queue)
                .unwrap_or_else(|| panic!("policy names unknown queue {queue}"))
                .url
                .clone(),
        ),
    }
}

/// Every function's grants: its policy statements, plus what SAM grants an SQS event source
/// (the poller's receive, delete, visibility and attribute calls on its queue).
fn grants(stack: &Stack) -> BTreeMap<String, Vec<Grant>> {
    let template: Yaml = serde_yaml::from_str(
        &std::fs::read_to_string(workspace_root().join("template.yaml")).unwrap(),
    )
    .unwrap();
    let mut all = BTreeMap::new();
    for (id, resource) in template["Resources"].as_mapping().unwrap() {
        if resource["Type"].as_str() != Some("AWS::Serverless::Function") {
            continue;
        }
        let props = &resource["Properties"];
        let mut list = Vec::new();
        for policy in props["Policies"].as_sequence().into_iter().flatten() {
            for statement in policy["Statement"].as_sequence().into_iter().flatten() {
                assert_eq!(statement["Effect"].as_str(), Some("Allow"));
                list.push(Grant {
                    actions: strings(&statement["Action"])
                        .into_iter()
                        .map(|a| a.as_str().unwrap().to_owned())
                        .collect(),
                    resources: strings(&statement["Resource"])
                        .into_iter()
                        .map(|r| resolve(r, stack))
                        .collect(),
                });
            }
        }
        for event in props["Events"]
            .as_mapping()
            .into_iter()
            .flatten()
            .map(|(_, e)| e)
        {
            if event["Type"].as_str() == Some("SQS") {
                list.push(Grant {
                    actions: [
                        "sqs:ReceiveMessage",
                        "sqs:DeleteMessage",
                        "sqs:ChangeMessageVisibility",
                        "sqs:GetQueueAttributes",
                    ]
                    .map(str::to_owned)
                    .to_vec(),
                    resources: vec![resolve(&event["Properties"]["Queue"], stack)],
                });
            }
        }
        all.insert(id.as_str().unwrap().to_owned(), list);
    }
    all
}

fn covers(granted: &Granted, resource: &Resource) -> bool {
    match (granted, resource) {
        (Granted::Table { name, index }, Resource::Table { name: n, index: i }) => {
            name == n && index == i
        }
        (Granted::Bus(b), Resource::Bus(n)) => b == n,
        (Granted::Queue(q), Resource::Queue(u)) => q == u,
        (Granted::Secrets(pattern), Resource::Secret(id)) => {
            iam_match(pattern.as_bytes(), secret_arn_name(id).as_bytes())
        }
        _ => false,
    }
}

/// The name part of the ARN IAM sees for a secret a request names by `id`: Secrets Manager ends
/// a secret's ARN with its name, a hyphen and six random characters.
fn secret_arn_name(id: &str) -> String {
    match id.split_once(":secret:") {
        Some((_, name)) => name.to_owned(),
        None => format!("{id}-Ab12Cd"),
    }
}

/// IAM's resource matching: `*` any run of characters, `?` any one character.
fn iam_match(pattern: &[u8], text: &[u8]) -> bool {
    match (pattern.split_first(), text.split_first()) {
        (None, _) => text.is_empty(),
        (Some((b'*', rest)), _) => {
            iam_match(rest, text) || (!text.is_empty() && iam_match(pattern, &text[1..]))
        }
        (Some((p, rest)), Some((t, text_rest))) if *p == b'?' || p == t => {
            iam_match(rest, text_rest)
        }
        _ => false,
    }
}

#[test]
fn secret_patterns_match_as_iam_matches_them() {
    let shopify = "stockguard/channels/shopify-*";
    for (id, covered) in [
        ("stockguard/channels/shopify", true),
        ("stockguard/channels/shopify-2", true),
        ("stockguard/channels/shopify-t0a1b2c3d", true),
        (
            "arn:aws:secretsmanager:us-east-1:123456789012:secret:stockguard/channels/shopify-Ab12Cd",
            true,
        ),
        ("stockguard/channels/ebay", false),
        ("stockguard/channels/shopifyx", false),
        ("stockguard/shopify", false),
    ] {
        assert_eq!(
            covers(
                &Granted::Secrets(shopify.into()),
                &Resource::Secret(id.into())
            ),
            covered,
            "{id}"
        );
    }
    assert!(iam_match(b"a?c", b"abc") && !iam_match(b"a?c", b"ac"));
}

/// The recorded accesses no grant of their function covers.
fn violations(
    accesses: &BTreeSet<(String, Access)>,
    grants: &BTreeMap<String, Vec<Grant>>,
) -> Vec<String> {
    accesses
        .iter()
        .filter(|(function, access)| {
            !grants.get(function).is_some_and(|gs| {
                gs.iter().any(|g| {
                    g.actions.contains(&access.action)
                        && g.resources.iter().any(|r| covers(r, &access.resource))
                })
            })
        })
        .map(|(f, a)| format!("{f}: {} on {:?}", a.action, a.resource))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_call_every_function_makes_is_granted_by_its_policy() {
    let stack = TestStack::new().await;
    let amazon_queue = stack.stack.queues["AmazonNotificationsQueue"].url.clone();
    let (notifications, _feed) = amazon_notification_feed(&stack.config, &amazon_queue);
    let fakes = FakeChannels::start(FakeOptions::default().with_notification_sink(notifications))
        .await
        .unwrap();
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    stack
        .configure_channels_with(&fakes, |_| {}, &["IAM-1", "IAM-2"])
        .await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            // The sweeper, the reconciliation and the buffer recompute all run in the scenario.
            schedule_interval: Some(Duration::from_secs(1)),
            ..Default::default()
        })
        .await;
    let api = format!("http://{}", rt.api_addr.unwrap());
    let http = reqwest::Client::new();
    let put = |source: &'static str, detail_type: &'static str, detail: serde_json::Value| {
        let stack = &stack;
        async move { stack.put_event(source, detail_type, &detail).await }
    };
    let now = now_rfc3339;
    put(
        "erp.test",
        "StockReceived",
        json!({"event_id": "iam-r1", "occurred_at": now(), "sku": "IAM-1", "quantity": 20}),
    )
    .await;
    put(
        "erp.test",
        "StockReceived",
        json!({"event_id": "iam-r2", "occurred_at": now(), "sku": "IAM-2", "quantity": 10}),
    )
    .await;
    put(
        "erp.test",
        "StockCounted",
        json!({"event_id": "iam-c1", "occurred_at": now(), "sku": "IAM-2", "on_hand": 12}),
    )
    .await;
    put("erp.test", "StockAdjusted", json!({"event_id": "iam-a1", "occurred_at": now(), "sku": "IAM-1", "delta": -1, "reason": "damage"})).await;
    put("storefront.web", "ReservationRequested", json!({"event_id": "iam-q1", "occurred_at": now(), "reservation_id": "iam-res-1", "channel": "storefront", "lines": [{"sku": "IAM-1", "quantity": 1}]})).await;
    put("storefront.web", "ReservationRequested", json!({"event_id": "iam-q2", "occurred_at": now(), "reservation_id": "iam-res-2", "channel": "storefront", "lines": [{"sku": "IAM-2", "quantity": 1}]})).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    put("storefront.web", "ReservationConfirmed", json!({"event_id": "iam-q3", "occurred_at": now(), "reservation_id": "iam-res-1", "order_id": "iam-web-1"})).await;
    put(
        "storefront.web",
        "ReservationReleased",
        json!({"event_id": "iam-q4", "occurred_at": now(), "reservation_id": "iam-res-2"}),
    )
    .await;
    // Walmart and eBay orders, read by their pollers; one Walmart line of a listing mapped to
    // nothing (dead-lettered).
    fakes.walmart.register_listing("NOT-OURS", "NOT-OURS", 5);
    let walmart = fakes
        .walmart
        .place_order(&OrderRequest::new([
            (listing_key("walmart", "IAM-1"), 2),
            ("NOT-OURS".to_owned(), 1),
        ]))
        .unwrap();
    let ebay = fakes
        .ebay
        .place_order(&OrderRequest::new([(listing_key("ebay", "IAM-2"), 1)]))
        .unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    put(
        "wms.main",
        "OrderShipped",
        json!({"event_id": "iam-s1", "occurred_at": now(), "order_id": walmart["order_id"]}),
    )
    .await;
    fakes
        .ebay
        .cancel_order(ebay["order_id"].as_str().unwrap())
        .unwrap();
    put("wms.main", "ReturnReceived", json!({"event_id": "iam-t1", "occurred_at": now(), "return_id": "iam-rma-1", "sku": "IAM-1", "quantity": 1, "restock": true})).await;
    put("storefront.analytics", "DemandSignal", json!({"event_id": "iam-d1", "occurred_at": now(), "sku": "IAM-1", "signal": "add_to_cart_surge", "strength": 2.0, "expires_at": at(60_000)})).await;
    // Bad input: dead-lettered by the function with its reason.
    put(
        "erp.test",
        "StockReceived",
        json!({"event_id": "iam-bad", "occurred_at": now(), "sku": "IAM-1", "quantity": -5}),
    )
    .await;
    // The reservations API, and a hold left to expire for the sweeper.
    let hold = |id: &str, ttl: u32| json!({"reservation_id": id, "channel": "storefront", "lines": [{"sku": "IAM-1", "quantity": 1}], "ttl_seconds": ttl});
    for (id, ttl) in [("iam-api-1", 900), ("iam-api-2", 900), ("iam-api-3", 1)] {
        let r = http
            .post(format!("{api}/v1/reservations"))
            .json(&hold(id, ttl))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{id}");
    }
    let r = http
        .post(format!("{api}/v1/reservations/iam-api-1/confirm"))
        .json(&json!({"order_id": "iam-api-order"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = http
        .delete(format!("{api}/v1/reservations/iam-api-2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    for path in ["availability", "buffers"] {
        let r = http
            .get(format!("{api}/v1/{path}/IAM-1"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "{path}");
    }
    // A Shopify order webhook: one line of ours, one found by neither its SKU nor its variant
    // (looked up on Shopify, then dead-lettered).
    let body = serde_json::to_vec(&json!({
        "id": 7001, "created_at": now(), "line_items": [
            {"id": 1, "variant_id": 11, "sku": "IAM-1", "quantity": 1},
            {"id": 2, "variant_id": 99, "sku": "shop-only", "quantity": 1}]}))
    .unwrap();
    let r = http
        .post(format!("{api}/v1/webhooks/shopify"))
        .header("X-Shopify-Topic", "orders/create")
        .header(
            "X-Shopify-Hmac-Sha256",
            shopify_signature(SHOPIFY_WEBHOOK_SECRET, &body),
        )
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same kind of order from Shopify's EventBridge partner source, as its rule queues it.
    let partner_event = json!({
        "version": "0", "id": "iam-partner-1", "detail-type": "shopifyWebhook",
        "source": "aws.partner/shopify.com/1830279/stockguard", "account": "123456789012",
        "time": now(), "region": "us-east-1", "resources": [],
        "detail": {
            "metadata": {"X-Shopify-Topic": "orders/create", "X-Shopify-Webhook-Id": "iam-partner"},
            "payload": {"id": 7002, "created_at": now(), "line_items": [
                {"id": 1, "variant_id": 11, "sku": "IAM-1", "quantity": 1},
                {"id": 2, "variant_id": 98, "sku": "shop-only-too", "quantity": 1}]}
        }
    });
    stack
        .sqs
        .send_message()
        .queue_url(&stack.stack.queues["ShopifyPartnerEventsQueue"].url)
        .message_body(partner_event.to_string())
        .send()
        .await
        .unwrap();
    // An oversell on Shopify, compensated by cancelling the order through Shopify's API.
    send_shopify_webhooks(&fakes, &api);
    let key = listing_key("shopify", "IAM-2");
    fakes.shopify.set_shown(&key, 500);
    fakes
        .shopify
        .place_order(&OrderRequest::new([(key.as_str(), 100)]))
        .unwrap();
    // An Amazon order notified without its items, which are read with getOrder; it is
    // short too, so compensation cancels it through Amazon's cancelOrder.
    fakes
        .amazon
        .update_settings(|s| s.amazon_notification_items = false);
    let key = listing_key("amazon", "IAM-1");
    fakes.amazon.set_shown(&key, 500);
    fakes
        .amazon
        .place_order(&OrderRequest::new([(key.as_str(), 100)]))
        .unwrap();
    until("both short orders are cancelled", || async {
        fakes.shopify.stats().orders_cancelled == 1 && fakes.amazon.stats().orders_cancelled == 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    let accesses = rt.requests.accesses();
    let grants = grants(&stack.stack);
    let called: BTreeSet<&String> = accesses.iter().map(|(f, _)| f).collect();
    let silent: Vec<&String> = grants.keys().filter(|f| !called.contains(f)).collect();
    assert!(silent.is_empty(), "the scenario never ran: {silent:?}");
    // Every function that reads channel credentials did so, so its secret grant is proven.
    for function in [
        "ShopifySyncFunction",
        "AmazonSyncFunction",
        "WalmartSyncFunction",
        "EbaySyncFunction",
        "ReconcileChannelsFunction",
        "RecomputeBuffersFunction",
        "ShopifyWebhooksFunction",
        "ShopifyPartnerEventsFunction",
        "CompensateOversellFunction",
        "AmazonNotificationsFunction",
        "PollWalmartOrdersFunction",
        "PollEbayOrdersFunction",
    ] {
        assert!(
            accesses
                .iter()
                .any(|(f, a)| f == function && a.action == "secretsmanager:GetSecretValue"),
            "{function} read no secret in the scenario"
        );
    }
    let missing = violations(&accesses, &grants);
    assert!(
        missing.is_empty(),
        "calls no policy grants:\n{}",
        missing.join("\n")
    );

    // The check can fail: without one grant the reconciliation actually needs, it does.
    let mut without = grants.clone();
    for g in without.get_mut("ReconcileChannelsFunction").unwrap() {
        g.actions.retain(|a| a != "dynamodb:DeleteItem");
    }
    let found = violations(&accesses, &without);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("ReconcileChannelsFunction: dynamodb:DeleteItem")),
        "{found:?}"
    );

    // Each channel's sync function reads its own channel's secret, which another channel's grant
    // does not cover: given ebay's grant, shopify's function is refused.
    let ebay_secret = grants["EbaySyncFunction"]
        .iter()
        .flat_map(|g| &g.resources)
        .find(|r| matches!(r, Granted::Secrets(_)))
        .cloned()
        .expect("ebay's sync function is granted its secret");
    let mut swapped = grants.clone();
    for g in swapped.get_mut("ShopifySyncFunction").unwrap() {
        for r in &mut g.resources {
            if matches!(r, Granted::Secrets(_)) {
                *r = ebay_secret.clone();
            }
        }
    }
    let found = violations(&accesses, &swapped);
    assert!(
        found
            .iter()
            .any(|v| v.starts_with("ShopifySyncFunction: secretsmanager:GetSecretValue")),
        "{found:?}"
    );
}
