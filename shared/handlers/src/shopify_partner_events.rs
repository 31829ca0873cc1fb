//! Shopify's order webhooks from its Amazon EventBridge partner event source (contract section 6,
//! the same topics as `POST /v1/webhooks/shopify`): a rule on the partner bus queues them, and
//! each goes through the webhook's own mapping ([`ShopifyOrders`]), so an order that arrives by
//! both routes publishes the same `event_id`s and applies once. No signature is checked: only
//! Shopify can put events on its partner source, and the body has been re-encoded by then.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use stockguard_domain::shopify;

use crate::deps::Deps;
use crate::shopify_webhooks::{ShopifyOrders, Taken, WebhookHeaders};

pub struct ShopifyPartnerEvents {
    deps: Deps,
    orders: ShopifyOrders,
}

enum Failure {
    /// Not a Shopify order or refund event: dead-lettered at once with the reason.
    Invalid(String),
    Retry(String),
}

impl ShopifyPartnerEvents {
    pub fn new(deps: Deps) -> Self {
        Self {
            orders: ShopifyOrders::new(deps.clone()),
            deps,
        }
    }

    pub async fn handle_batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let count: u32 = record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1);
            let (code, why) = match self.handle_record(&record).await {
                Ok(()) => continue,
                Err(Failure::Invalid(why)) => ("invalid_payload", why),
                Err(Failure::Retry(why)) if count < self.deps.settings.retry_budget => {
                    tracing::warn!(message_id = id, count, error = %why, "Shopify event not applied; retried");
                    response.batch_item_failures.push(failure(&id));
                    continue;
                }
                Err(Failure::Retry(why)) => ("retries_exhausted", why),
            };
            tracing::error!(message_id = id, reason = code, error = %why, "Shopify event dead-lettered");
            let sent = match &self.deps.dead_letters {
                Some(dlq) => dlq
                    .send(
                        record.body.as_deref().unwrap_or_default(),
                        code,
                        &why,
                        count,
                    )
                    .await
                    .is_ok(),
                None => false,
            };
            // Not dead-lettered: left on the queue, whose redrive keeps it.
            if !sent {
                response.batch_item_failures.push(failure(&id));
            }
        }
        response
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

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}
