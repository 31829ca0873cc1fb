//! Every oversell ends in a recorded compensation: a wait when a delivery due in time covers it
//! (decided again at its deadline: restocked, or cancelled after all), the cheapest short order
//! cancelled through its channel (Shopify's orderCancel, whose webhook then releases it; Amazon's
//! cancelOrder, whose ORDER_CHANGE notification then releases it; Walmart's order cancellation
//! and eBay's Post-Order cancellation, which their pollers read back), or a person told when the
//! policy says so or no channel can be asked to cancel the order.

use std::time::Duration;

use serde_json::{Value, json};
use stockguard_adapters::compensation_store::ShortOrderRecord;
use stockguard_adapters::compensation_store::ShortOrderStatus;
use stockguard_domain::Sku;
use stockguard_domain::compensation::{CompensationPolicy, Policy};
use stockguard_fake_channels::OrderRequest;
use stockguard_handlers::compensation::Compensation;
use stockguard_local::RuntimeOptions;
use stockguard_local::fake_wiring::{amazon_notification_feed, send_shopify_webhooks};
use stockguard_tests::channels::{FakeChannels, FakeOptions, fake, listing_key};
use stockguard_tests::{TestStack, now_rfc3339, of_type, until};

struct Shop {
    stack: TestStack,
    fakes: FakeChannels,
    _rt: stockguard_local::LocalRuntime,
}

async fn shop(sku: &str, stock: i64) -> Shop {
    let stack = TestStack::new().await;
    // Amazon's notifications (its orders, and their cancellations) reach their queue.
    let (notify, _feed) = amazon_notification_feed(
        &stack.config,
        &stack.stack.queues["AmazonNotificationsQueue"].url,
    );
    let fakes = FakeChannels::start(FakeOptions::default().with_notification_sink(notify))
        .await
        .unwrap();
    stack.configure_channels_with(&fakes, |_| {}, &[sku]).await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            api_addr: Some("127.0.0.1:0".parse().unwrap()),
            ..Default::default()
        })
        .await;
    send_shopify_webhooks(&fakes, &format!("http://{}", rt.api_addr.unwrap()));
    stack
        .receive_stock_shown_on(&fakes, &[sku], stock, &["shopify"])
        .await;
    Shop {
        stack,
        fakes,
        _rt: rt,
    }
}

impl Shop {
    /// A buyer on `kind` orders `quantity` while the channel shows more than stockguard has.
    fn oversell_on(&self, kind: &str, sku: &str, quantity: i64) -> String {
        let key = listing_key(kind, sku);
        let channel = fake(&self.fakes, kind);
        channel.set_shown(&key, quantity + 10);
        let placed = channel
            .place_order(&OrderRequest::new([(key.as_str(), quantity)]))
            .unwrap();
        placed["order_id"].as_str().unwrap().to_owned()
    }

    /// An oversell on `kind` (`quantity` of `sku`, `short` of them missing) that compensation
    /// cancels through the channel's API; the channel then reports the cancellation as it reports
    /// any, which releases the order, leaving `released` (hard reserved, available). Answers the
    /// order id.
    async fn cancelled_through(
        &self,
        kind: &str,
        sku: &str,
        quantity: i64,
        short: i64,
        released: (i64, i64),
    ) -> String {
        let order_id = self.oversell_on(kind, sku, quantity);
        let compensated = self.compensated().await;
        assert_eq!(compensated.len(), 1, "{compensated:?}");
        assert_eq!(compensated[0]["source"], "stockguard.ops");
        assert_eq!(
            compensated[0]["detail"],
            json!({"sku": sku, "order_id": order_id, "channel": kind, "action": "cancel", "units": short})
        );
        assert_eq!(fake(&self.fakes, kind).stats().orders_cancelled, 1);
        until(
            "the channel's report of the cancellation releases the order",
            || async {
                let p = self.stack.position(sku).await;
                (p.hard_reserved, p.available()) == released
            },
        )
        .await;
        order_id
    }

    /// An Amazon order (sent by an ERP, so no channel can cancel it) that takes the one unit of
    /// `sku` and was reported short a minute ago, not compensated yet.
    async fn short_amazon_order(&self, sku: &str, order_id: &str) {
        self.stack
            .put_event(
                "marketplace.amazon",
                "OrderPlaced",
                &json!({"event_id": order_id, "occurred_at": now_rfc3339(), "order_id": order_id, "channel": "amazon", "lines": [{"sku": sku, "quantity": 1}]}),
            )
            .await;
        until("the Amazon order is recorded", || async {
            self.stack.position(sku).await.hard_reserved == 1
        })
        .await;
        self.stack
            .deps
            .store
            .record_short_order(&ShortOrderRecord {
                sku: Sku::parse(sku).unwrap(),
                order_id: order_id.into(),
                channel: "amazon".into(),
                shortfall: 1,
                detected_at: chrono::Utc::now().timestamp_millis() - 60_000,
                status: ShortOrderStatus::Open,
            })
            .await
            .unwrap();
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
    s.short_amazon_order("CMP-A", "amz-1").await;
    let sku = Sku::parse("CMP-A").unwrap();

    // Shopify runs the cancellation and says so with its webhook, which releases the order.
    let order_id = s.cancelled_through("shopify", "CMP-A", 2, 2, (1, 0)).await;
    let records = s.stack.deps.store.short_orders(&sku).await.unwrap();
    let status = |id: &str| records.iter().find(|r| r.order_id == id).map(|r| r.status);
    assert_eq!(status(&order_id), Some(ShortOrderStatus::Closed));
    assert_eq!(status("amz-1"), Some(ShortOrderStatus::Open));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_notify_only_policy_or_an_order_no_channel_can_name_tells_a_person() {
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
    let order_id = s.oversell_on("shopify", "CMP-B", 3);
    let compensated = s.compensated().await;
    assert_eq!(
        compensated[0]["detail"],
        json!({"sku": "CMP-B", "order_id": order_id, "channel": "shopify", "action": "notify_only", "units": 2})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);
    assert_eq!(s.stack.position("CMP-B").await.available(), -2);

    // Compensating again, an Amazon order that reached stockguard from the ERP, not from Amazon,
    // has no Amazon order id to cancel: it is left to a person too, and Amazon is asked nothing.
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
            &json!({"event_id": "amz-2", "occurred_at": now_rfc3339(), "order_id": "amz-2", "channel": "amazon", "lines": [{"sku": "CMP-B", "quantity": 1}]}),
        )
        .await;
    let compensated = s.compensated().await;
    assert_eq!(
        compensated[0]["detail"],
        json!({"sku": "CMP-B", "order_id": "amz-2", "channel": "amazon", "action": "notify_only", "units": 1})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);
    assert_eq!(s.fakes.amazon.stats().orders_cancelled, 0);
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
    // The receipt and its announcement are applied by two functions, each on its own queue.
    until("the announcement is recorded", || async {
        !s.stack.deps.store.inbound(&sku).await.unwrap().is_empty()
    })
    .await;
    until("the unit received is on hand", || async {
        s.stack.position("CMP-C").await.on_hand == 2
    })
    .await;

    let order_id = s.oversell_on("shopify", "CMP-C", 4);
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
    until("the delivery is complete", || async {
        s.stack.deps.store.inbound(&sku).await.unwrap().is_empty()
    })
    .await;
    let order_id = s.oversell_on("shopify", "CMP-C", 6);
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
    s.cancelled_through("walmart", "CMP-D", 3, 2, (0, 1)).await;
}

/// An Amazon order taken for stock that is gone is cancelled through Amazon's cancelOrder (reason
/// `NO_INVENTORY`); Amazon's `ORDER_CHANGE` notification of the cancellation then releases it.
/// Amazon's default penalty is the highest (10), so here its order is the only short one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_amazon_order_is_cancelled_through_amazon_and_released_by_its_notification() {
    let s = shop("CMP-I", 1).await;
    let order_id = s.cancelled_through("amazon", "CMP-I", 3, 2, (0, 1)).await;
    assert!(order_id.starts_with("amazon-"), "{order_id}");
    let sku = Sku::parse("CMP-I").unwrap();
    let records = s.stack.deps.store.short_orders(&sku).await.unwrap();
    assert_eq!(records.len(), 1, "{records:?}");
    assert_eq!(records[0].status, ShortOrderStatus::Closed);
}

/// When eBay is where a cancellation costs least, the short eBay order is cancelled through eBay's
/// Post-Order API; the poller reads the cancellation back from getOrders and releases it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_short_ebay_order_is_cancelled_through_ebay_when_it_costs_least() {
    let s = shop("CMP-E", 1).await;
    let mut policy = CompensationPolicy::default();
    policy.cancel_penalty.insert("ebay".into(), 0.5);
    s.stack
        .deps
        .store
        .put_compensation_policy(&policy)
        .await
        .unwrap();
    // An Amazon order takes the one unit and is short-listed too: dearer to cancel.
    s.short_amazon_order("CMP-E", "amz-e1").await;
    let sku = Sku::parse("CMP-E").unwrap();

    let order_id = s.cancelled_through("ebay", "CMP-E", 2, 2, (1, 0)).await;
    let records = s.stack.deps.store.short_orders(&sku).await.unwrap();
    let status = |id: &str| records.iter().find(|r| r.order_id == id).map(|r| r.status);
    assert_eq!(status(&order_id), Some(ShortOrderStatus::Closed));
    assert_eq!(status("amz-e1"), Some(ShortOrderStatus::Open));
}

impl Shop {
    /// An oversell of `sku` on Shopify that waits for PO-`po`, announced due in three hours:
    /// answers the short order and its deadline.
    async fn waiting_oversell(&self, sku: &str, po: &str) -> (String, i64) {
        let eta = chrono::Utc::now() + chrono::Duration::hours(3);
        let eta_text = eta.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        self.stack
            .put_event(
                "erp.test",
                "StockReceived",
                &json!({"event_id": format!("{po}-1"), "occurred_at": now_rfc3339(), "sku": sku, "quantity": 1,
                        "reference": format!("{po} expected=5 eta={eta_text}")}),
            )
            .await;
        let parsed = Sku::parse(sku).unwrap();
        until("the announcement is recorded", || async {
            !self
                .stack
                .deps
                .store
                .inbound(&parsed)
                .await
                .unwrap()
                .is_empty()
        })
        .await;
        let order_id = self.oversell_on("shopify", sku, 4);
        let compensated = self.compensated().await;
        assert_eq!(
            compensated[0]["detail"]["action"], "wait",
            "{compensated:?}"
        );
        let records = self.stack.deps.store.short_orders(&parsed).await.unwrap();
        let deadline = match records
            .iter()
            .find(|r| r.order_id == order_id)
            .map(|r| r.status)
        {
            Some(ShortOrderStatus::Waiting { until }) => until,
            other => panic!("the order waits, not {other:?}"),
        };
        assert_eq!(deadline, eta.timestamp() * 1000);
        (order_id, deadline)
    }
}

/// A wait is decided again at its deadline: the delivery came, so the order is restocked and
/// nothing is cancelled. Before the deadline the re-check leaves it waiting.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_whose_stock_came_is_recorded_restocked_at_its_deadline() {
    let s = shop("CMP-F", 1).await;
    let (order_id, deadline) = s.waiting_oversell("CMP-F", "PO-88").await;
    let compensation = Compensation::new(s.stack.deps.clone());
    let early = compensation
        .recheck_waits(deadline - 1, Duration::from_secs(30))
        .await;
    assert!(early.actions.is_empty(), "{early:?}");

    s.stack
        .put_event(
            "erp.test",
            "StockReceived",
            &json!({"event_id": "PO-88-2", "occurred_at": now_rfc3339(), "sku": "CMP-F", "quantity": 5,
                    "reference": "PO-88 expected=0 eta=2026-01-01T00:00:00Z"}),
        )
        .await;
    until("the delivery is on hand", || async {
        s.stack.position("CMP-F").await.available() >= 0
    })
    .await;
    let report = compensation
        .recheck_waits(deadline + 1, Duration::from_secs(30))
        .await;
    assert_eq!(report.actions.get("restocked"), Some(&1), "{report:?}");
    let compensated = s.compensated_for(&order_id, "restocked").await;
    assert_eq!(
        compensated["detail"],
        json!({"sku": "CMP-F", "order_id": order_id, "channel": "shopify", "action": "restocked", "units": 2})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);
    let sku = Sku::parse("CMP-F").unwrap();
    let records = s.stack.deps.store.short_orders(&sku).await.unwrap();
    assert_eq!(records[0].status, ShortOrderStatus::Closed);
    // Settled: a later run finds nothing due.
    let again = compensation
        .recheck_waits(deadline + 60_000, Duration::from_secs(30))
        .await;
    assert_eq!((again.due, again.actions.len()), (0, 0), "{again:?}");
}

/// Still short at its deadline (the delivery did not come): the re-check cancels the cheapest
/// order, once, however many runs re-check at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_still_short_at_its_deadline_is_cancelled_once_on_the_cheapest_channel() {
    let s = shop("CMP-G", 1).await;
    let (order_id, deadline) = s.waiting_oversell("CMP-G", "PO-99").await;
    let a = Compensation::new(s.stack.deps.clone());
    let b = Compensation::new(s.stack.deps.clone());
    let budget = Duration::from_secs(30);
    let (ra, rb) = tokio::join!(
        a.recheck_waits(deadline + 1, budget),
        b.recheck_waits(deadline + 1, budget)
    );
    let acted: usize = ra.actions.values().chain(rb.actions.values()).sum();
    assert_eq!(acted, 1, "{ra:?} {rb:?}");
    let compensated = s.compensated_for(&order_id, "cancel").await;
    assert_eq!(
        compensated["detail"],
        json!({"sku": "CMP-G", "order_id": order_id, "channel": "shopify", "action": "cancel", "units": 2})
    );
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 1);
    until("the cancelled order is released", || async {
        let p = s.stack.position("CMP-G").await;
        (p.hard_reserved, p.available()) == (0, 2)
    })
    .await;
}

impl Shop {
    /// The `OversellCompensated` with `action` for `order_id`.
    async fn compensated_for(&self, order_id: &str, action: &str) -> Value {
        let found = |e: &Value| {
            e["detail-type"] == "OversellCompensated"
                && e["detail"]["order_id"] == order_id
                && e["detail"]["action"] == action
        };
        let events = self
            .stack
            .await_published(Duration::from_secs(20), |e| e.iter().any(found))
            .await;
        events
            .into_iter()
            .find(found)
            .unwrap_or_else(|| panic!("no {action} for {order_id}"))
    }
}

/// A wait whose re-check keeps failing (the channel refuses the cancellation) is tried again by
/// later runs; after the retry budget its short order is reopened and its `OversellDetected`
/// goes to the compensation dead-letter queue with the reason, for a redrive to compensate it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_wait_whose_recheck_keeps_failing_is_dead_lettered_with_its_reason() {
    let s = shop("CMP-H", 1).await;
    let (order_id, deadline) = s.waiting_oversell("CMP-H", "PO-55").await;
    s.fakes.shopify.update_settings(|f| f.error_rate = 1.0);
    let deps = s
        .stack
        .deps
        .with_dead_letters(&s.stack.stack.queues["CompensationDLQ"].url);
    let budget = deps.settings.retry_budget as i64;
    let compensation = Compensation::new(deps);
    // Each run that claims a wait moves its next re-check 5 minutes on.
    let step = 6 * 60_000;
    for run in 0..budget {
        let report = compensation
            .recheck_waits(deadline + run * step, Duration::from_secs(30))
            .await;
        assert_eq!(report.errors.len(), 1, "run {run}: {report:?}");
    }
    let report = compensation
        .recheck_waits(deadline + budget * step, Duration::from_secs(30))
        .await;
    assert_eq!(report.actions.get("dead_lettered"), Some(&1), "{report:?}");
    let letters = s.stack.dead_letters("CompensationDLQ").await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].1.as_deref(), Some("recheck_retries_exhausted"));
    let body: Value = serde_json::from_str(&letters[0].0).unwrap();
    assert_eq!(body["detail-type"], "OversellDetected");
    assert_eq!(body["detail"]["order_id"], order_id.as_str());
    let sku = Sku::parse("CMP-H").unwrap();
    let records = s.stack.deps.store.short_orders(&sku).await.unwrap();
    assert_eq!(records[0].status, ShortOrderStatus::Open);
    assert_eq!(s.fakes.shopify.stats().orders_cancelled, 0);
}
