//! The Walmart and eBay order pollers (contract section 6): every minute, read the orders the
//! channel modified since the saved cursor, page by page, and publish each order change not
//! published before as `OrderPlaced` / `OrderCancelled` (the state functions apply them once by
//! `event_id`). The window overlaps the previous one, so an order stamped at a page or clock
//! boundary is read twice rather than never; the record of published changes keeps the second
//! reading from publishing or dead-lettering anything again.
//!
//! A page that cannot be read goes to the dead-letter queue with its reason (once, not every
//! minute) and the cursor stays where it is until the window reads whole.

use serde_json::{Value, json};
use stockguard_adapters::poll_store::PollCursor;
use stockguard_channels::{ChannelClient, WalmartOrdersPage};
use stockguard_domain::idempotency::payload_hash;
use stockguard_domain::order_polls::{
    self, OrdersPage, PollWindow, PolledLine, PolledOrder, next_from, poll_window,
};
use stockguard_domain::types::format_timestamp;
use stockguard_domain::{ChannelName, InvalidInput, Millis, Notification, ebay, walmart};

use crate::channel_sync::ChannelSync;
use crate::deps::Deps;
use crate::metrics::{Metrics, Unit};

mod settings;

pub use settings::{PollReport, PollSettings, PolledChannel};

enum Next {
    Cursor(String),
    Offset(u64),
}

struct Page {
    orders: Vec<PolledOrder>,
    unreadable: Vec<InvalidInput>,
    total: Option<u64>,
    next: Option<Next>,
}

fn page<N>(p: OrdersPage<N>, next: impl Fn(N) -> Next) -> Page {
    Page {
        orders: p.orders,
        unreadable: p.unreadable,
        total: p.total,
        next: p.next.map(next),
    }
}

fn count(channel: &str, name: &str, value: u32) {
    if value == 0 {
        return;
    }
    let mut m = Metrics::new(&[("Channel", channel)]);
    m.add(name, Unit::Count, f64::from(value));
    m.flush();
}

pub struct OrderPoller {
    deps: Deps,
    kind: PolledChannel,
    channel: ChannelName,
    /// The channel's client (credentials and endpoint from its settings), cached across runs.
    sync: ChannelSync,
    settings: PollSettings,
}

impl OrderPoller {
    pub fn new(deps: Deps, kind: PolledChannel, settings: PollSettings) -> Self {
        let channel = ChannelName::parse(kind.name()).expect("a valid channel name");
        Self {
            sync: ChannelSync::new(deps.clone(), channel.clone()),
            deps,
            kind,
            channel,
            settings,
        }
    }

    /// One poll, as of `now` (epoch milliseconds). An error leaves the cursor where it was: the
    /// next run reads the same window again.
    pub async fn poll(&self, now: Millis) -> Result<PollReport, String> {
        let mut report = PollReport::default();
        let settings = self
            .deps
            .store
            .channel(&self.channel)
            .await
            .map_err(|e| e.to_string())?;
        let Some(settings) = settings.filter(|s| s.enabled) else {
            report.skipped = true;
            return Ok(report);
        };
        let client = self.sync.client_for(&settings).await?;
        let mut cursor = self
            .deps
            .store
            .poll_cursor(&self.channel)
            .await
            .map_err(|e| e.to_string())?;
        let window = poll_window(cursor.from, now, self.settings.overlap_ms);
        report.window = Some((window.from, window.to));
        // Until this window reads whole, the next poll starts where it starts.
        let first_poll = cursor.from.is_none();
        cursor.from = Some(window.from);
        let mut failure: Option<(String, String, Vec<u8>)> = None;
        let mut whole = false;
        while !whole && failure.is_none() && report.passes < self.settings.max_passes.max(1) {
            report.passes += 1;
            let mut next: Option<Next> = None;
            let mut first_total: Option<u64> = None;
            whole = true;
            loop {
                let body = self.fetch(&client, window, next.take()).await?;
                report.pages += 1;
                let read = match self.kind {
                    PolledChannel::Walmart => {
                        walmart::parse_orders_page(&body).map(|p| page(p, Next::Cursor))
                    }
                    PolledChannel::Ebay => {
                        ebay::parse_orders_page(&body).map(|p| page(p, Next::Offset))
                    }
                };
                let read = match read {
                    Ok(p) => p,
                    Err(e) => {
                        failure = Some((e.to_string(), "the page".into(), body));
                        break;
                    }
                };
                self.apply(&read.orders, &mut report).await?;
                if !read.unreadable.is_empty() && failure.is_none() {
                    let why = read
                        .unreadable
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ");
                    failure = Some((why, "orders of the page".into(), body));
                }
                if first_total.get_or_insert(read.total.unwrap_or(0)) != &read.total.unwrap_or(0) {
                    whole = false;
                }
                match read.next {
                    Some(n) => next = Some(n),
                    None => break,
                }
            }
        }
        match failure {
            Some((why, what, body)) => {
                report.unreadable += 1;
                let fingerprint = payload_hash(
                    "page",
                    &Value::String(String::from_utf8_lossy(&body).into_owned()),
                );
                if cursor.failed_page.as_deref() != Some(fingerprint.as_str()) {
                    self.dead_letter_page(window, &what, &why, &body).await?;
                    cursor.failed_page = Some(fingerprint);
                    self.save(&cursor).await?;
                }
                tracing::error!(channel = %self.channel, error = %why, "an orders page cannot be read; the cursor waits on it");
            }
            None if whole => {
                cursor = PollCursor {
                    from: Some(next_from(window, self.settings.overlap_ms)),
                    failed_page: None,
                };
                self.save(&cursor).await?;
                report.advanced = true;
            }
            None => {
                if first_poll {
                    self.save(&cursor).await?;
                }
                tracing::warn!(channel = %self.channel, passes = report.passes,
                    "the channel's orders kept changing while read; the window is read again next time");
            }
        }
        let name = self.kind.name();
        count(name, "OrderChangesPolled", report.published);
        count(name, "PolledLinesUnmapped", report.unmapped_lines);
        count(name, "OrderPagesUnreadable", report.unreadable);
        Ok(report)
    }

    async fn save(&self, cursor: &PollCursor) -> Result<(), String> {
        self.deps
            .store
            .set_poll_cursor(&self.channel, cursor)
            .await
            .map_err(|e| e.to_string())
    }

    async fn fetch(
        &self,
        client: &ChannelClient,
        window: PollWindow,
        next: Option<Next>,
    ) -> Result<Vec<u8>, String> {
        let result = match (client, next) {
            (ChannelClient::Walmart(c), None) => {
                c.orders_page(&WalmartOrdersPage::First {
                    from: format_timestamp(window.from),
                    to: format_timestamp(window.to),
                    created_from: format_timestamp(window.from - self.settings.created_lookback_ms),
                    limit: self.settings.page_size,
                })
                .await
            }
            (ChannelClient::Walmart(c), Some(Next::Cursor(cursor))) => {
                c.orders_page(&WalmartOrdersPage::Next(cursor)).await
            }
            (ChannelClient::Ebay(c), next) => {
                let offset = match next {
                    Some(Next::Offset(o)) => o,
                    _ => 0,
                };
                let filter = ebay::modified_filter(window.from, window.to);
                c.orders_page(&filter, u64::from(self.settings.page_size), offset)
                    .await
            }
            (other, _) => {
                return Err(format!(
                    "channel {} is a {} channel, not {}",
                    self.channel,
                    other.kind(),
                    self.kind.name()
                ));
            }
        };
        result.map_err(|e| e.to_string())
    }

    async fn dead_letter_page(
        &self,
        window: PollWindow,
        what: &str,
        why: &str,
        body: &[u8],
    ) -> Result<(), String> {
        // Enough of the page to see what was wrong, within SQS's message size.
        let text = String::from_utf8_lossy(&body[..body.len().min(200_000)]).into_owned();
        let message = json!({"channel": self.kind.name(),
            "window": {"from": format_timestamp(window.from), "to": format_timestamp(window.to)},
            "page": text});
        let dlq = self
            .deps
            .dead_letters
            .as_ref()
            .ok_or("no dead-letter queue is configured")?;
        dlq.send(
            &message.to_string(),
            "invalid_page",
            &format!("{what} cannot be read: {why}"),
            1,
        )
        .await
        .map_err(|e| e.to_string())
    }

    /// Publishes the changes of `orders` not published before. Unmapped lines are dead-lettered
    /// first, then the events published, then the changes recorded: a failure in between makes
    /// the next poll do it again, which publishes the same event ids (applied once).
    async fn apply(&self, orders: &[PolledOrder], report: &mut PollReport) -> Result<(), String> {
        let mut ids = Vec::new();
        for o in orders {
            for c in &o.changes {
                ids.push(
                    order_polls::event_id(o.channel, &o.order_id, c).map_err(|e| e.to_string())?,
                );
            }
        }
        if ids.is_empty() {
            return Ok(());
        }
        let seen = self
            .deps
            .store
            .polled_changes(&self.channel, &ids)
            .await
            .map_err(|e| e.to_string())?;
        let mut fresh = Vec::new();
        let mut lines: Vec<&PolledLine> = Vec::new();
        for (o, c) in orders
            .iter()
            .flat_map(|o| o.changes.iter().map(move |c| (o, c)))
        {
            let id = order_polls::event_id(o.channel, &o.order_id, c).map_err(|e| e.to_string())?;
            if seen.contains(&id) {
                report.already_published += 1;
            } else {
                lines.extend(c.lines());
                fresh.push((o, c, id));
            }
        }
        let skus = crate::channel_skus::resolve(
            &self.deps,
            &self.channel,
            &lines
                .iter()
                .map(|l| l.channel_sku.clone())
                .collect::<Vec<_>>(),
        )
        .await?;
        let mut events = Vec::new();
        for (o, c, _) in &fresh {
            let (event, unmapped) =
                order_polls::to_inbound(o, c, |l| skus.get(&l.channel_sku).cloned())
                    .map_err(|e| e.to_string())?;
            for line in unmapped {
                self.dead_letter_line(o, &line).await?;
                report.unmapped_lines += 1;
            }
            if let Some((detail_type, detail)) = event {
                events.push(Notification {
                    detail_type: detail_type.to_owned(),
                    detail,
                });
            }
        }
        self.deps
            .publisher
            .publish(self.kind.source(), &events)
            .await
            .map_err(|e| e.to_string())?;
        let expires = crate::deps::now_ms() / 1000 + self.settings.remember_secs;
        for (_, _, id) in &fresh {
            self.deps
                .store
                .record_polled_change(&self.channel, id, expires)
                .await
                .map_err(|e| e.to_string())?;
            report.published += 1;
        }
        Ok(())
    }

    async fn dead_letter_line(&self, order: &PolledOrder, line: &PolledLine) -> Result<(), String> {
        let body = json!({"channel": order.channel, "order_id": order.order_id,
            "line_id": line.line_id, "channel_sku": line.channel_sku, "quantity": line.quantity});
        let dlq = self
            .deps
            .dead_letters
            .as_ref()
            .ok_or("no dead-letter queue is configured for unknown listings")?;
        dlq.send(
            &body.to_string(),
            "unknown_listing",
            &format!(
                "line {} of {} order {} (sku {:?}) maps to no listing",
                line.line_id, order.channel, order.order_id, line.channel_sku
            ),
            1,
        )
        .await
        .map_err(|e| e.to_string())
    }
}

/// One poll per scheduled invocation; a failed poll fails the invocation (Lambda's Errors
/// metric), and the next one reads from the same cursor.
impl crate::functions::ScheduledRun for OrderPoller {
    fn run(
        &self,
        _deadline: std::time::SystemTime,
    ) -> futures::future::BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let report = Box::pin(self.poll(crate::deps::now_ms())).await?;
            tracing::info!(?report, "orders polled");
            Ok(json!({
                "pages": report.pages, "published": report.published,
                "already_published": report.already_published,
                "unmapped_lines": report.unmapped_lines, "unreadable": report.unreadable,
                "advanced": report.advanced, "skipped": report.skipped,
            }))
        })
    }
}
