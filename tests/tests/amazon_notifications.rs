//! Amazon orders reach the state only as Amazon sends them: SP-API `ORDER_CHANGE` notifications
//! on their SQS queue, sent by the fake Amazon (sometimes twice), with the items read through
//! getOrder (Orders API v2026-01-01) when the notification leaves them out.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::json;
use stockguard_fake_channels::OrderRequest;
use stockguard_local::RuntimeOptions;
use stockguard_local::fake_wiring::amazon_notification_feed;
use stockguard_tests::channels::{FakeChannels, FakeOptions, listing_key};
use stockguard_tests::{TestStack, until};

struct Market {
    stack: TestStack,
    fakes: FakeChannels,
    _rt: stockguard_local::LocalRuntime,
    /// Every notification body the fake sent, in order.
    sent: Arc<Mutex<Vec<String>>>,
    queue_url: String,
}

async fn market(skus: &[&str], stock: i64) -> Market {
    let stack = TestStack::new().await;
    let queue_url = stack.stack.queues["AmazonNotificationsQueue"].url.clone();
    let (feed, _task) = amazon_notification_feed(&stack.config, &queue_url);
    let sent = Arc::new(Mutex::new(Vec::new()));
    let record = sent.clone();
    let fakes = FakeChannels::start(FakeOptions::default().with_notification_sink(move |body| {
        record.lock().unwrap().push(body.clone());
        feed(body);
    }))
    .await
    .unwrap();
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    stack.configure_channels_with(&fakes, |_| {}, skus).await;
    // No buffer recompute: its read-backs would add to Amazon's measured delays too.
    let rt = stack
        .start_runtime(RuntimeOptions {
            buffer_recompute_interval: Duration::from_secs(3600),
            ..Default::default()
        })
        .await;
    stack
        .receive_stock_shown_on(&fakes, skus, stock, &["amazon"])
        .await;
    Market {
        stack,
        fakes,
        _rt: rt,
        sent,
        queue_url,
    }
}

impl Market {
    /// Delivers a notification again, as SQS may.
    async fn redeliver(&self, body: &str) {
        self.stack
            .sqs
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .send()
            .await
            .unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_amazon_order_reaches_the_state_once_and_its_cancellation_releases_it() {
    let m = market(&["AMZ-A"], 10).await;
    m.fakes
        .amazon
        .update_settings(|s| s.amazon_notification_duplicate_rate = 1.0);
    let key = listing_key("amazon", "AMZ-A");
    let placed = m
        .fakes
        .amazon
        .place_order(&OrderRequest::new([(key.as_str(), 3)]).with_order_id("113-0000001-0000001"))
        .unwrap();
    assert_eq!(placed["order_id"], "amazon-113-0000001-0000001");
    until("the order is hard-reserved", || async {
        m.stack.hard_reserved("AMZ-A").await == 3
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        m.stack.hard_reserved("AMZ-A").await,
        3,
        "the duplicate applied nothing"
    );

    m.fakes
        .amazon
        .cancel_order("amazon-113-0000001-0000001")
        .unwrap();
    until("the cancellation released it", || async {
        m.stack.hard_reserved("AMZ-A").await == 0
    })
    .await;
    // The order's notification, delivered again after its cancellation: nothing changes.
    let first = m.sent.lock().unwrap()[0].clone();
    m.redeliver(&first).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let p = m.stack.position("AMZ-A").await;
    assert_eq!((p.on_hand, p.hard_reserved, p.available()), (10, 0, 10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn items_left_out_of_a_notification_are_read_with_one_get_order() {
    let m = market(&["AMZ-B", "AMZ-C"], 10).await;
    m.fakes
        .amazon
        .update_settings(|s| s.amazon_notification_items = false);
    let b = listing_key("amazon", "AMZ-B");
    let c = listing_key("amazon", "AMZ-C");
    m.fakes
        .amazon
        .place_order(&OrderRequest::new([(b.as_str(), 2), (c.as_str(), 1)]))
        .unwrap();
    until("both lines are hard-reserved", || async {
        m.stack.hard_reserved("AMZ-B").await == 2 && m.stack.hard_reserved("AMZ-C").await == 1
    })
    .await;
    let body: serde_json::Value = serde_json::from_str(&m.sent.lock().unwrap()[0]).unwrap();
    assert!(
        body["Payload"]["OrderChangeNotification"]["Summary"]["OrderItems"].is_null(),
        "the notification carried no items"
    );
    assert!(
        m.fakes.amazon.stats().order_reads >= 1,
        "the lines came from getOrder"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn unreadable_notifications_and_unknown_listings_are_dead_lettered_with_their_reason() {
    let m = market(&["AMZ-D"], 5).await;
    m.redeliver("not a notification").await;
    m.fakes.amazon.register_listing("NOT-OURS", "NOT-OURS", 5);
    let d = listing_key("amazon", "AMZ-D");
    m.fakes
        .amazon
        .place_order(&OrderRequest::new([(d.as_str(), 1), ("NOT-OURS", 1)]))
        .unwrap();
    until("the mapped line applied", || async {
        m.stack.hard_reserved("AMZ-D").await == 1
    })
    .await;
    let mut dead = Vec::new();
    for _ in 0..50 {
        dead.extend(m.stack.dead_letters("AmazonNotificationsDLQ").await);
        if dead.len() >= 2 {
            break;
        }
    }
    let mut reasons: Vec<String> = dead.iter().filter_map(|(_, r)| r.clone()).collect();
    reasons.sort();
    assert_eq!(
        reasons,
        ["invalid_notification", "unknown_listing"],
        "{dead:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn amazon_saying_it_shows_the_pushed_quantity_measures_its_delay() {
    let m = market(&["AMZ-E"], 7).await;
    let channel = stockguard_domain::ChannelName::parse("amazon").unwrap();
    let sku = stockguard_domain::Sku::parse("AMZ-E").unwrap();
    let record = || async {
        m.stack
            .deps
            .store
            .sync_records(&channel, std::slice::from_ref(&sku))
            .await
            .unwrap()
            .get(&sku)
            .copied()
    };
    // The fake shows the push as it answers; the sync function records the acknowledgement after.
    until("the push's acknowledgement is recorded", || async {
        record().await.is_some()
    })
    .await;
    let acked = record().await.unwrap();
    assert_eq!(acked.quantity, 7);
    let shown_at = |delay_ms: i64| {
        stockguard_domain::types::format_timestamp(acked.acknowledged_at + delay_ms)
    };
    let notification = |quantity: i64, at: String| {
        json!({"NotificationVersion": "1.0", "NotificationType": "LISTINGS_ITEM_MFN_QUANTITY_CHANGE",
               "PayloadVersion": "1.0", "EventTime": at,
               "Payload": {"SellerId": "A1SELLER", "FulfillmentChannelCode": "DEFAULT",
                           "Sku": listing_key("amazon", "AMZ-E"), "Quantity": quantity},
               "NotificationMetadata": {"NotificationId": "q-1"}})
        .to_string()
    };
    // The pushed quantity, shown 90 s after Amazon accepted it: one sample. Another quantity
    // (not what stockguard pushed last) measures nothing.
    m.redeliver(&notification(7, shown_at(90_000))).await;
    m.redeliver(&notification(3, shown_at(1_000))).await;
    let since = acked.acknowledged_at - 120_000;
    until("the delay is recorded", || async {
        let (minutes, _) = m
            .stack
            .deps
            .store
            .sync_minutes(&channel, since)
            .await
            .unwrap();
        minutes.iter().map(|(_, w)| w.shown.count()).sum::<u64>() >= 1
    })
    .await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (minutes, _) = m
        .stack
        .deps
        .store
        .sync_minutes(&channel, since)
        .await
        .unwrap();
    let mut shown = stockguard_domain::delay::LatencyHistogram::default();
    for (_, w) in &minutes {
        shown.merge(&w.shown);
    }
    assert_eq!(shown.count(), 1);
    assert!(shown.p95_ms().unwrap() >= 90_000, "{shown:?}");
}
