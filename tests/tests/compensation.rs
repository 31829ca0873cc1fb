//! Every oversell ends in a recorded compensation: a wait when a delivery due in time covers it,
//! the cheapest short order cancelled through its channel (Shopify's orderCancel, whose webhook
//! then releases it; Walmart's order cancellation, which its poller reads back), or a person told when the policy says so or the channel has no cancel API.

use std::time::Duration;

use serde_json::{Value, json};
use stockguard_adapters::compensation_store::ShortOrderRecord;
use stockguard_adapters::compensation_store::ShortOrderStatus;
use stockguard_domain::Sku;
use stockguard_domain::compensation::{CompensationPolicy, Policy};
use stockguard_fake_channels::OrderRequest;
use stockguard_local::RuntimeOptions;
use stockguard_local::fake_wiring::send_shopify_webhooks;
use stockguard_tests::channels::{FakeChannels, FakeOptions, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, of_type};

struct Shop {
    stack: TestStack,
    fakes: FakeChannels,
    _rt: stockguard_local::LocalRuntime,
}

async fn shop(sku: &str, stock: i64) -> Shop {
    let stack = TestStack::new().await;
    let fakes = FakeChannels::start(FakeOptions::default()).await.unwrap();
    stack.configure_channels_with(&fakes, |_| {}, &[sku]).await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .await;
    send_shopify_webhooks(&fakes, &format!("http://{}", rt.api_addr.unwrap()));
    stack
        .put_event(
            "erp.test",
            "StockReceived",
            &json!({"event_id": format!("in-{sku}"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": stock}),
        )
        .await;
    let s = Shop {
        stack,
        fakes,
        _rt: rt,
    };
    let key = listing_key("shopify", sku);
    s.until("shopify shows the stock", || async {
        s.fakes.shopify.shown(&key) == Some(stock)
    })
    .await;
    s
}

impl Shop {
    async fn until<F: std::future::Future<Output = bool>>(&self, what: &str, f: impl Fn() -> F) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        while !f().await {
            assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A Shopify buyer orders `quantity` while Shopify shows more than stockguard has.
    fn oversell_on_shopify(&self, sku: &str, quantity: i64) -> String {
        let key = listing_key("shopify", sku);
        self.fakes.shopify.set_shown(&key, quantity + 10);
        let placed = self
            .fakes
            .shopify
            .place_order(&OrderRequest::new([(key.as_str(), quantity)]))
            .unwrap();
        placed["order_id"].as_str().unwrap().to_owned()
    }

    async fn compensated(&self) -> Vec<Value> {
        let events = self
            .stack
            .await_published(Duration::from_secs(20), |e| {
                !of_type(e, "OversellCompensated").is_empty()
            })
            .await;
        of_type(&events, "OversellCompensated")
            .into_iter()
            .cloned()
            .collect()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_most_recent_short_order_on_the_cheapest_channel_is_cancelled_through_it() {
    let s = shop("CMP-A", 1).await;
    // An Amazon order already short and not compensated yet: dearer to cancel than Shopify's.
    s.stack
        .put_event(
            "marketplace.amazon",
            "OrderPlaced",
            &json!({"event_id": "amz-1", "occurred_at": now_rfc3339(), "order_id": "amz-1", "channel": "amazon", "lines": [{"sku": "CMP-A", "quantity": 1}]}),
        )
        .await;
    s.until("the Amazon order is recorded", || async {
        s.stack.position("CMP-A").await.hard_reserved == 1
    })
    .await;
    let sku = Sku::parse("CMP-A").unwrap();
    s.stack
        .deps
        .store
        .record_short_order(&ShortOrderRecord {
            sku: sku.clone(),
            order_id: "amz-1".into(),
            channel: "amazon".into(),
            shortfall: 1,
            detected_at: chrono::Utc::now().timestamp_millis() - 60_000,
            status: ShortOrderStatus::Open,
        })
        .await
        .unwrap();

    let order_id = s.oversell_on_shopify("CMP-A", 2);
    let compensated = s.compensated().await;
    assert_eq!(compensated.len(), 1, "{compensated:?}");
    let c = &compensated[0];
    assert_eq!(c["source"], "stockguard.ops");
    assert_eq!(
        c["detail"],
        json!({"sku": "CMP-A", "order_id": order_id, "channel": "shopify", "action": "cancel", "units": 2})
    );
    // Shopify ran the cancellation and said so with its webhook: the order is released.
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 1);
    s.until("the cancelled order is released", || async {
        let p = s.stack.position("CMP-A").await;
        (p.hard_reserved, p.available()) == (1, 0)
    })
    .await;
    let records = s.stack.deps.store.short_orders(&sku).await.unwrap();
    let status = |id: &str| records.iter().find(|r| r.order_id == id).map(|r| r.status);
    assert_eq!(status(&order_id), Some(ShortOrderStatus::Closed));
    assert_eq!(status("amz-1"), Some(ShortOrderStatus::Open));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_channel_without_a_cancel_api_or_the_notify_only_policy_tells_a_person() {
    let s = shop("CMP-B", 1).await;
    // Notify only: the Shopify oversell is reported, not cancelled.
    s.stack
        .deps
        .store
        .put_compensation_policy(&CompensationPolicy {
            policy: Policy::NotifyOnly,
            ..Default::default()
        })
        .await
        .unwrap();
    let order_id = s.oversell_on_shopify("CMP-B", 3);
    let compensated = s.compensated().await;
    assert_eq!(
        compensated[0]["detail"],
        json!({"sku": "CMP-B", "order_id": order_id, "channel": "shopify", "action": "notify_only", "units": 2})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);
    assert_eq!(s.stack.position("CMP-B").await.available(), -2);

    // Compensating again, an oversell on eBay (no cancel API here) is left to a person too.
    s.stack
        .deps
        .store
        .put_compensation_policy(&CompensationPolicy::default())
        .await
        .unwrap();
    s.stack
        .put_event(
            "erp.test",
            "OrderPlaced",
            &json!({"event_id": "eb-1", "occurred_at": now_rfc3339(), "order_id": "eb-1", "channel": "ebay", "lines": [{"sku": "CMP-B", "quantity": 1}]}),
        )
        .await;
    let compensated = s.compensated().await;
    assert_eq!(
        compensated[0]["detail"],
        json!({"sku": "CMP-B", "order_id": "eb-1", "channel": "ebay", "action": "notify_only", "units": 1})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);
}

/// A restock that says more of its delivery is on the way (`expected=N eta=T` in its reference)
/// covers the oversell within the seller's wait: the short order waits instead of being cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_oversell_that_a_delivery_due_in_time_covers_waits_for_it() {
    let s = shop("CMP-C", 1).await;
    let eta = (chrono::Utc::now() + chrono::Duration::hours(3))
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    // One unit of PO-77 arrives now; five more are due in three hours.
    s.stack
        .put_event(
            "erp.test",
            "StockReceived",
            &json!({"event_id": "po-77-1", "occurred_at": now_rfc3339(), "sku": "CMP-C", "quantity": 1,
                    "reference": format!("PO-77 expected=5 eta={eta}")}),
        )
        .await;
    let sku = Sku::parse("CMP-C").unwrap();
    s.until("the announcement is recorded", || async {
        !s.stack.deps.store.inbound(&sku).await.unwrap().is_empty()
    })
    .await;
    assert_eq!(
        s.stack.position("CMP-C").await.on_hand,
        2,
        "received at once"
    );

    let order_id = s.oversell_on_shopify("CMP-C", 4);
    let compensated = s.compensated().await;
    assert_eq!(
        compensated[0]["detail"],
        json!({"sku": "CMP-C", "order_id": order_id, "channel": "shopify", "action": "wait", "units": 2})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);

    // PO-77 arrives complete: nothing is owed any more, so the next oversell is cancelled.
    s.stack
        .put_event(
            "erp.test",
            "StockReceived",
            &json!({"event_id": "po-77-2", "occurred_at": now_rfc3339(), "sku": "CMP-C", "quantity": 5,
                    "reference": format!("PO-77 expected=0 eta={eta}")}),
        )
        .await;
    s.until("the delivery is complete", || async {
        s.stack.deps.store.inbound(&sku).await.unwrap().is_empty()
    })
    .await;
    let order_id = s.oversell_on_shopify("CMP-C", 6);
    let compensated = s.compensated().await;
    let last = compensated
        .iter()
        .find(|c| c["detail"]["order_id"] == order_id.as_str())
        .unwrap_or_else(|| panic!("{compensated:?}"));
    assert_eq!(last["detail"]["action"], "cancel");
}

/// A Walmart order taken for stock that is gone is cancelled through Walmart's own API; the
/// poller then reads the cancellation back, which releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_walmart_order_is_cancelled_through_walmart_and_released_by_the_poll() {
    let s = shop("CMP-D", 1).await;
    let key = listing_key("walmart", "CMP-D");
    s.fakes.walmart.set_shown(&key, 10);
    let placed = s
        .fakes
        .walmart
        .place_order(&OrderRequest::new([(key.as_str(), 3)]))
        .unwrap();
    let order_id = placed["order_id"].as_str().unwrap().to_owned();
    let compensated = s.compensated().await;
    assert_eq!(
        compensated[0]["detail"],
        json!({"sku": "CMP-D", "order_id": order_id, "channel": "walmart", "action": "cancel", "units": 2})
    );
    assert_eq!(s.fakes.walmart.stats().orders_cancelled, 1);
    s.until(
        "the poller reads the cancellation and releases the order",
        || async {
            let p = s.stack.position("CMP-D").await;
            (p.hard_reserved, p.available()) == (0, 1)
        },
    )
    .await;
}
