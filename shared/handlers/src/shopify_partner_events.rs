//! Shopify's order webhooks from its Amazon EventBridge partner event source (contract section 6,
//! the same topics as `POST /v1/webhooks/shopify`): a rule on the partner bus queues them, and
//! each goes through the webhook's own mapping ([`ShopifyOrders`]), so an order that arrives by
//! both routes publishes the same `event_id`s and applies once. No signature is checked: only
//! Shopify can put events on its partner source, and the body has been re-encoded by then.

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent, SqsMessage};
use stockguard_domain::shopify;

use crate::deps::Deps;
use crate::records::{RecordFailure as Failure, handle_records};
use crate::shopify_webhooks::{ShopifyOrders, Taken, WebhookHeaders};

pub struct ShopifyPartnerEvents {
    deps: Deps,
    orders: ShopifyOrders,
}

impl ShopifyPartnerEvents {
    pub fn new(deps: Deps) -> Self {
        Self {
            orders: ShopifyOrders::new(deps.clone()),
            deps,
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        handle_records(
            &self.deps,
            event,
            "invalid_payload",
            "Shopify event",
            |record| async move { self.handle_record(&record).await },
        )
        .await
    }

    async fn handle_record(&self, record: &SqsMessage) -> Result<(), Failure> {
        let delivery = shopify::parse_partner_event(record.body.as_deref().unwrap_or_default())
            .map_err(|e| Failure::Invalid(format!("{}: {}", e.field, e.message)))?;
        let headers = WebhookHeaders {
            topic: Some(delivery.topic),
            hmac: None,
            webhook_id: delivery.webhook_id,
            shop_domain: delivery.shop_domain,
        };
        match self.orders.take(&headers, &delivery.body).await {
            Ok(Taken::Ignored | Taken::Accepted(_)) => Ok(()),
            Ok(Taken::Invalid(e)) => Err(Failure::Invalid(format!(
                "detail.payload.{}: {}",
                e.field, e.message
            ))),
            Err(e) => Err(Failure::Retry(e)),
        }
    }
}
