//! Walmart and eBay orders reach the state only as those marketplaces give them: listed in their
//! orders APIs, read by the pollers page by page from a saved cursor. Each test drives the poller
//! itself (the runtime's schedule is pushed out of the way) so that it decides when a poll runs
//! and what time the poller believes it is.

use std::time::Duration;

use serde_json::Value;
use stockguard_fake_channels::OrderRequest;
use stockguard_handlers::Deps;
use stockguard_handlers::deps::now_ms;
use stockguard_handlers::order_polls::{OrderPoller, PollReport, PollSettings, PolledChannel};
use stockguard_local::RuntimeOptions;
use stockguard_tests::channels::{FakeChannel, FakeChannels, FakeOptions, fake, listing_key};
use stockguard_tests::{TestStack, until};

const KINDS: [(PolledChannel, &str); 2] = [
    (PolledChannel::Walmart, "walmart"),
    (PolledChannel::Ebay, "ebay"),
];

struct Market {
    stack: TestStack,
    fakes: FakeChannels,
    _rt: stockguard_local::LocalRuntime,
    deps: Deps,
}

async fn market(skus: &[&str], stock: i64) -> Market {
    let stack = TestStack::new().await;
    let fakes = FakeChannels::start(FakeOptions::default()).await.unwrap();
    stack.configure_channels_with(&fakes, |_| {}, skus).await;
    let rt = stack
        .start_runtime(RuntimeOptions {
            buffer_recompute_interval: Duration::from_secs(3600),
            // The tests poll themselves.
            order_poll_interval: Duration::from_secs(3600),
            ..Default::default()
        })
        .await;
    stack
        .receive_stock_shown_on(&fakes, skus, stock, &KINDS.map(|(_, kind)| kind))
        .await;
    let deps = stack
        .deps
        .with_dead_letters(&stack.stack.queues["OrderPollsDLQ"].url);
    Market {
        stack,
        fakes,
        _rt: rt,
        deps,
    }
}

impl Market {
    fn poller(&self, kind: PolledChannel) -> OrderPoller {
        OrderPoller::new(self.deps.clone(), kind, PollSettings::default())
    }

    fn channel(&self, kind: &str) -> &FakeChannel {
        fake(&self.fakes, kind)
    }

    fn order(&self, kind: &str, lines: &[(&str, i64)]) -> String {
        let lines: Vec<(String, i64)> = lines
            .iter()
            .map(|(sku, q)| (listing_key(kind, sku), *q))
            .collect();
        let placed = self
            .channel(kind)
            .place_order(&OrderRequest::new(lines))
            .unwrap();
        placed["order_id"].as_str().unwrap().to_owned()
    }

    async fn dead_letters(&self) -> Vec<(Value, Option<String>)> {
        self.stack
            .dead_letters("OrderPollsDLQ")
            .await
            .into_iter()
            .map(|(body, reason)| (serde_json::from_str(&body).unwrap(), reason))
            .collect()
    }
}

async fn poll(p: &OrderPoller, now: i64) -> PollReport {
    p.poll(now).await.expect("a poll")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_order_reaches_the_state_once_however_often_it_is_read_and_its_cancellation_releases_it()
{
    let m = market(&["POLL-A"], 10).await;
    for (kind, name) in KINDS {
        let p = m.poller(kind);
        let order = m.order(name, &[("POLL-A", 3)]);
        assert!(order.starts_with(&format!("{name}-")), "{order}");
        let first = poll(&p, now_ms()).await;
        assert_eq!(
            (first.published, first.advanced),
            (1, true),
            "{name}: {first:?}"
        );
        until(&format!("{name}: the order is hard-reserved"), || async {
            m.stack.hard_reserved("POLL-A").await == 3
        })
        .await;
        // Overlapping windows read the order again: nothing is published again.
        for _ in 0..2 {
            let again = poll(&p, now_ms()).await;
            assert_eq!(again.published, 0, "{name}: {again:?}");
            assert!(again.already_published >= 1, "{name}: {again:?}");
        }
        m.channel(name).cancel_order(&order).unwrap();
        let cancelled = poll(&p, now_ms()).await;
        assert_eq!(
            cancelled.published, 1,
            "{name}: the cancellation: {cancelled:?}"
        );
        until(&format!("{name}: the cancellation released it"), || async {
            m.stack.hard_reserved("POLL-A").await == 0
        })
        .await;
        assert_eq!(poll(&p, now_ms()).await.published, 0);
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pos = m.stack.position("POLL-A").await;
    assert_eq!(
        (pos.on_hand, pos.hard_reserved, pos.available()),
        (10, 0, 10)
    );
    assert!(m.dead_letters().await.is_empty());
}

/// Orders that fill pages exactly, one placed and one cancelled while a poll pages through
/// (which shifts the pages after it): every order applies once, none is missed.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn orders_at_a_page_boundary_and_during_a_poll_are_neither_missed_nor_doubled() {
    let m = market(&["POLL-B"], 50).await;
    for (kind, name) in KINDS {
        let p = m.poller(kind);
        m.channel(name).update_settings(|s| s.orders_page_limit = 2);
        let mut orders: Vec<String> = (0..4).map(|_| m.order(name, &[("POLL-B", 1)])).collect();
        // Each request takes 300 ms: the buyer acts once the first page is served, while the
        // poller asks for the second.
        m.channel(name).update_settings(|s| s.latency_ms = 300);
        let pages = m.channel(name).stats().order_pages;
        let started = now_ms();
        let polling = tokio::spawn(async move { p.poll(started).await.map(|r| (r, p)) });
        until(&format!("{name}: the first page is served"), || async {
            m.channel(name).stats().order_pages > pages
        })
        .await;
        orders.push(m.order(name, &[("POLL-B", 1)]));
        m.channel(name).cancel_order(&orders[0]).unwrap();
        let (first, p) = polling.await.unwrap().unwrap();
        assert!(first.pages >= 3, "{name}: {first:?}");
        m.channel(name).update_settings(|s| s.latency_ms = 0);
        let mut published = first.published;
        for _ in 0..3 {
            published += poll(&p, now_ms()).await.published;
        }
        assert_eq!(
            published,
            5 + 1,
            "{name}: five orders and one cancellation, once each"
        );
        until(&format!("{name}: four orders hold a unit each"), || async {
            m.stack.hard_reserved("POLL-B").await == 4
        })
        .await;
        for id in &orders {
            let id = stockguard_domain::EntityId::parse(id).unwrap();
            assert!(
                m.stack.deps.store.order(&id).await.unwrap().is_some(),
                "{name}: order {id} reached the state"
            );
        }
        // Settle, then release them all for the next channel's turn.
        for id in &orders[1..] {
            m.channel(name).cancel_order(id).unwrap();
        }
        poll(&p, now_ms()).await;
        until(&format!("{name}: released"), || async {
            m.stack.hard_reserved("POLL-B").await == 0
        })
        .await;
    }
    assert!(m.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unmapped_line_is_dead_lettered_once_and_the_rest_of_its_order_applies() {
    let m = market(&["POLL-C"], 10).await;
    for (kind, name) in KINDS {
        let p = m.poller(kind);
        // Listed on the channel, mapped to nothing of ours.
        m.channel(name)
            .register_listing("NOT-OURS-1", "NOT-OURS-1", 5);
        let placed = m
            .channel(name)
            .place_order(&OrderRequest::new([
                (listing_key(name, "POLL-C"), 2),
                ("NOT-OURS-1".to_owned(), 1),
            ]))
            .unwrap();
        poll(&p, now_ms()).await;
        poll(&p, now_ms()).await;
        until(
            &format!("{name}: the mapped line is hard-reserved"),
            || async { m.stack.hard_reserved("POLL-C").await == 2 },
        )
        .await;
        let dead = m.dead_letters().await;
        assert_eq!(dead.len(), 1, "{name}: once, however often read: {dead:?}");
        assert_eq!(dead[0].1.as_deref(), Some("unknown_listing"));
        assert_eq!(dead[0].0["channel_sku"], "NOT-OURS-1");
        m.channel(name)
            .cancel_order(placed["order_id"].as_str().unwrap())
            .unwrap();
        poll(&p, now_ms()).await;
        until(&format!("{name}: released"), || async {
            m.stack.hard_reserved("POLL-C").await == 0
        })
        .await;
    }
}

/// A page that is not an orders page goes to the dead-letter queue with its reason, once; the
/// cursor waits, so the order on it is applied when the channel answers properly again, even
/// minutes later.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreadable_page_is_dead_lettered_and_the_cursor_does_not_skip_it() {
    let m = market(&["POLL-D"], 10).await;
    for (done, (kind, name)) in KINDS.into_iter().enumerate() {
        let p = m.poller(kind);
        let placed_at = now_ms();
        m.order(name, &[("POLL-D", 1)]);
        m.channel(name)
            .update_settings(|s| s.orders_page_garbled = true);
        for minutes in [1, 2] {
            let r = poll(&p, placed_at + minutes * 60_000).await;
            assert_eq!(
                (r.unreadable, r.advanced, r.published),
                (1, false, 0),
                "{name}: {r:?}"
            );
        }
        let dead = m.dead_letters().await;
        assert_eq!(dead.len(), 1, "{name}: dead-lettered once: {dead:?}");
        assert_eq!(dead[0].1.as_deref(), Some("invalid_page"));
        assert!(dead[0].0["page"].as_str().unwrap().contains("502"));
        m.channel(name)
            .update_settings(|s| s.orders_page_garbled = false);
        // Ten minutes on, far past the overlap: the window still starts before the order.
        let r = poll(&p, placed_at + 10 * 60_000).await;
        assert_eq!((r.published, r.advanced), (1, true), "{name}: {r:?}");
        until(&format!("{name}: the order applied"), || async {
            m.stack.hard_reserved("POLL-D").await == done as i64 + 1
        })
        .await;
    }
}
