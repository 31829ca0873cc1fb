//! Amazon's SP-API notifications from their SQS queue (contract section 6): `ORDER_CHANGE`
//! becomes `OrderPlaced` / `OrderCancelled` on the bus (the state functions apply them once by
//! `event_id`); `LISTINGS_ITEM_MFN_QUANTITY_CHANGE` is Amazon saying it shows a pushed quantity,
//! a measurement of its delay.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use serde_json::json;
use stockguard_channels::ChannelClient;
use stockguard_domain::amazon::{self, AmazonLine, Notification, OrderChange};
use stockguard_domain::{ChannelName, Notification as Published, Sku};

use crate::channel_sync::ChannelSync;
use crate::deps::{Deps, now_ms};
use crate::metrics::{Metrics, Unit};
use crate::records::{RecordFailure as Failure, handle_records};

/// The source the mapped events are published with.
pub const SOURCE: &str = "channel.amazon";

pub struct AmazonNotifications {
    deps: Deps,
    channel: ChannelName,
    /// The Amazon channel's client, for getOrder (the items a notification leaves out).
    amazon: ChannelSync,
}

fn retry(e: impl std::fmt::Display) -> Failure {
    Failure::Retry(e.to_string())
}

fn count(name: &str, kind: &str) {
    let mut m = Metrics::new(&[("NotificationType", kind)]);
    m.add(name, Unit::Count, 1.0);
    m.flush();
}

impl AmazonNotifications {
    pub fn new(deps: Deps) -> Self {
        let channel = ChannelName::parse(amazon::CHANNEL).expect("a valid channel name");
        Self {
            amazon: ChannelSync::new(deps.clone(), channel.clone()),
            channel,
            deps,
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        handle_records(
            &self.deps,
            event,
            "invalid_notification",
            "notification",
            |record| async move { self.handle_record(&record).await },
        )
        .await
    }

    async fn handle_record(&self, record: &SqsMessage) -> Result<(), Failure> {
        let body = record.body.as_deref().unwrap_or_default();
        let notification =
            amazon::parse_notification(body).map_err(|e| Failure::Invalid(e.message))?;
        match notification {
            Notification::Other { notification_type } => {
                count("NotificationsIgnored", &notification_type);
                Ok(())
            }
            Notification::QuantityShown {
                seller_sku,
                quantity,
                at,
            } => self.quantity_shown(&seller_sku, quantity, at).await,
            Notification::Order(change) => self.order_change(&change).await,
        }
    }

    async fn order_change(&self, change: &OrderChange) -> Result<(), Failure> {
        let lines: Vec<AmazonLine> = match change {
            OrderChange::Ignored { reason } => {
                tracing::info!(reason, "order change ignored");
                count("NotificationsIgnored", "ORDER_CHANGE");
                return Ok(());
            }
            OrderChange::Cancelled { .. } => Vec::new(),
            OrderChange::Placed {
                lines: Some(lines), ..
            } => lines.clone(),
            OrderChange::Placed {
                order_id,
                lines: None,
                ..
            } => {
                // The summary left the items out: read the order with getOrder (Orders API
                // v2026-01-01), within its limit.
                let items = self.order_items(order_id).await?;
                amazon::parse_order_items(&items).map_err(|e| Failure::Invalid(e.message))?
            }
        };
        let skus = self.resolve(&lines).await?;
        let (events, unmapped) = amazon::to_inbound(change, &lines, |s| skus.get(s).cloned())
            .map_err(|e| Failure::Invalid(e.message))?;
        for line in &unmapped {
            let body = json!({"channel": amazon::CHANNEL, "order_item_id": line.order_item_id,
                "seller_sku": line.seller_sku, "quantity": line.quantity});
            let dlq = self
                .deps
                .dead_letters
                .as_ref()
                .ok_or_else(|| retry("no dead-letter queue is configured"))?;
            dlq.send(
                &body.to_string(),
                "unknown_listing",
                &format!("seller SKU {:?} maps to no listing", line.seller_sku),
                1,
            )
            .await
            .map_err(retry)?;
            count("NotificationLinesUnmapped", "ORDER_CHANGE");
        }
        let published: Vec<Published> = events
            .into_iter()
            .map(|(detail_type, detail)| Published {
                detail_type: detail_type.to_owned(),
                detail,
            })
            .collect();
        self.deps
            .publisher
            .publish(SOURCE, &published)
            .await
            .map_err(retry)?;
        count("NotificationsApplied", "ORDER_CHANGE");
        Ok(())
    }

    /// The order's items as getOrder gives them.
    async fn order_items(&self, order_id: &str) -> Result<Vec<serde_json::Value>, Failure> {
        let settings = self
            .deps
            .store
            .channel(&self.channel)
            .await
            .map_err(retry)?
            .ok_or_else(|| retry("the amazon channel is not configured"))?;
        let client = self.amazon.client_for(&settings).await.map_err(retry)?;
        let ChannelClient::Amazon(amazon) = client.as_ref() else {
            return Err(Failure::Retry(
                "channel amazon is not an Amazon channel".into(),
            ));
        };
        amazon.order_items(order_id).await.map_err(retry)
    }

    /// Our SKU for each seller SKU (see [`crate::channel_skus::resolve`]).
    async fn resolve(&self, lines: &[AmazonLine]) -> Result<HashMap<String, Sku>, Failure> {
        let seller_skus: Vec<String> = lines.iter().map(|l| l.seller_sku.clone()).collect();
        crate::channel_skus::resolve(&self.deps, &self.channel, &seller_skus)
            .await
            .map_err(Failure::Retry)
    }

    /// Amazon shows `quantity` for a listing since `at`: when that is the quantity last pushed,
    /// the time from its acceptance to showing it is a measurement of Amazon's delay.
    async fn quantity_shown(
        &self,
        seller_sku: &str,
        quantity: i64,
        at: i64,
    ) -> Result<(), Failure> {
        count("NotificationsApplied", "LISTINGS_ITEM_MFN_QUANTITY_CHANGE");
        let by_listing = self
            .deps
            .store
            .skus_by_listing_id(&self.channel, &[seller_sku.to_owned()])
            .await
            .map_err(retry)?;
        let Some(sku) = by_listing.get(seller_sku) else {
            return Ok(());
        };
        let acked = self
            .deps
            .store
            .sync_records(&self.channel, std::slice::from_ref(sku))
            .await
            .map_err(retry)?;
        match acked.get(sku) {
            Some(r) if r.quantity == quantity && at >= r.acknowledged_at => self
                .deps
                .store
                .record_shown(&self.channel, at - r.acknowledged_at, now_ms())
                .await
                .map_err(retry),
            _ => Ok(()),
        }
    }
}
