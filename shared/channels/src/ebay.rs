//! eBay Sell Inventory: `bulk_update_price_quantity`, 25 SKUs a call, per-SKU results; the
//! Fulfillment API's getOrders; and the Post-Order API's seller cancellation.

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{ClientOptions, EbayConfig, Secret};
use crate::error::{ChannelError, Kind};
use crate::http::{self, Answer, describe_error};
use crate::model::{ChannelKind, Listing, PushOutcome, QuantityUpdate};
use crate::outcomes::Outcomes;

const CHANNEL: ChannelKind = ChannelKind::Ebay;
const MAX_REQUESTS_PER_CALL: usize = 25;
/// The seller's reason for a cancellation because the stock is gone (eBay's `CancelReasonEnum`).
const OUT_OF_STOCK: &str = "OUT_OF_STOCK_OR_CANNOT_FULFILL";

pub struct EbayClient {
    http: reqwest::Client,
    base: Url,
    access_token: Secret,
    /// The Post-Order API's `X-EBAY-C-MARKETPLACE-ID`.
    marketplace_id: String,
    options: ClientOptions,
}

#[derive(Debug, Deserialize)]
struct BulkAnswer {
    #[serde(default)]
    responses: Vec<ItemResponse>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ItemResponse {
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    offer_id: Option<String>,
    status_code: u16,
    #[serde(default)]
    errors: Vec<Value>,
}

impl ItemResponse {
    fn is_for(&self, sku: &str, offer_id: &str) -> bool {
        self.sku.as_deref() == Some(sku) && self.offer_id.as_deref().is_none_or(|id| id == offer_id)
    }

    /// `retry_after`: the bulk answer's own `Retry-After`, for an entry it says was throttled.
    fn outcome(&self, retry_after: Option<std::time::Duration>) -> PushOutcome {
        if (200..300).contains(&self.status_code) {
            return PushOutcome::acknowledged_now();
        }
        let detail = if self.errors.is_empty() {
            "no errors given".to_owned()
        } else {
            self.errors
                .iter()
                .map(describe_error)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let err = ChannelError::from_status(CHANNEL, self.status_code, true, retry_after, &detail);
        PushOutcome::from_error(&err)
    }
}

impl EbayClient {
    pub fn new(config: EbayConfig) -> Result<Self, ChannelError> {
        Ok(Self {
            http: http::http_client(CHANNEL, &config.options)?,
            base: http::base_url(CHANNEL, &config.base_url)?,
            access_token: config.access_token,
            marketplace_id: config.marketplace_id,
            options: config.options,
        })
    }

    /// Sets the quantity of each SKU and its offer, 25 per call. A 207 answer fails only the SKUs
    /// it names as failed.
    pub async fn push(&self, updates: &[QuantityUpdate]) -> Vec<PushOutcome> {
        let (mut outcomes, eligible) = Outcomes::for_channel(updates, CHANNEL);
        for chunk in eligible.chunks(MAX_REQUESTS_PER_CALL) {
            if outcomes.is_halted() {
                break;
            }
            self.push_chunk(updates, chunk, &mut outcomes).await;
        }
        outcomes.finish()
    }

    async fn push_chunk(
        &self,
        updates: &[QuantityUpdate],
        chunk: &[usize],
        outcomes: &mut Outcomes,
    ) {
        let entries: Vec<(usize, &str, &str, i64)> = chunk
            .iter()
            .filter_map(|&index| match &updates.get(index)?.listing {
                Listing::Ebay { sku, offer_id } => Some((
                    index,
                    sku.as_str(),
                    offer_id.as_str(),
                    updates.get(index)?.quantity,
                )),
                _ => None,
            })
            .collect();
        let requests: Vec<Value> = entries
            .iter()
            .map(|(_, sku, offer_id, quantity)| {
                json!({
                    "sku": sku,
                    "shipToLocationAvailability": {"quantity": quantity},
                    "offers": [{"offerId": offer_id, "availableQuantity": quantity}],
                })
            })
            .collect();
        let body = json!({"requests": requests});
        let mut retry_after = None;
        let result = match self.bulk_update(&body).await {
            Ok(answer) => {
                retry_after = answer.retry_after();
                answer.json::<BulkAnswer>(CHANNEL)
            }
            Err(err) => Err(err),
        };
        let answer = match result {
            Ok(answer) => answer,
            Err(err) => {
                entries
                    .iter()
                    .for_each(|(index, ..)| outcomes.fail(*index, &err));
                return;
            }
        };
        let mut used = vec![false; answer.responses.len()];
        for (index, sku, offer_id, _) in &entries {
            let found = answer
                .responses
                .iter()
                .enumerate()
                .find(|(at, response)| !used[*at] && response.is_for(sku, offer_id));
            match found {
                Some((at, response)) => {
                    used[at] = true;
                    outcomes.set(*index, response.outcome(retry_after));
                }
                None => outcomes.set(
                    *index,
                    PushOutcome::Retryable {
                        reason: format!("ebay: the answer says nothing about sku {sku}"),
                    },
                ),
            }
        }
    }

    async fn bulk_update(&self, body: &Value) -> Result<Answer, ChannelError> {
        let url = http::endpoint(
            CHANNEL,
            &self.base,
            &["sell", "inventory", "v1", "bulk_update_price_quantity"],
        )?;
        // 207 is eBay's partial success (a 2xx); its body says which SKUs failed.
        self.call(|| {
            self.http
                .post(url.clone())
                .bearer_auth(self.access_token.expose())
                .json(body)
        })
        .await
    }

    /// One page of getOrders (`GET /sell/fulfillment/v1/order`) with `filter`, `limit` and
    /// `offset`. The body is returned as it came, for the domain to read.
    pub async fn orders_page(
        &self,
        filter: &str,
        limit: u64,
        offset: u64,
    ) -> Result<Vec<u8>, ChannelError> {
        let mut url = http::endpoint(CHANNEL, &self.base, &["sell", "fulfillment", "v1", "order"])?;
        url.query_pairs_mut()
            .append_pair("filter", filter)
            .append_pair("limit", &limit.to_string())
            .append_pair("offset", &offset.to_string());
        let answer = self
            .call(|| {
                self.http
                    .get(url.clone())
                    .bearer_auth(self.access_token.expose())
            })
            .await?;
        Ok(answer.body)
    }

    /// Cancels an order as the seller because its stock is gone: the Post-Order API's
    /// `POST /post-order/v2/cancellation` with the order's `legacyOrderId` (the Fulfillment
    /// API's `orderId` is the same id) and reason `OUT_OF_STOCK_OR_CANNOT_FULFILL`. eBay
    /// cancels whole orders only. The Post-Order API takes the OAuth user token as `IAF <token>`.
    /// An order eBay already lists as cancelled (a repeated compensation) is left as it is;
    /// getOrders then reports the cancellation, which releases the order in stockguard.
    pub async fn cancel_order(&self, order_id: &str) -> Result<(), ChannelError> {
        let order_url = http::endpoint(
            CHANNEL,
            &self.base,
            &["sell", "fulfillment", "v1", "order", order_id],
        )?;
        let order: Value = self
            .call(|| {
                self.http
                    .get(order_url.clone())
                    .bearer_auth(self.access_token.expose())
            })
            .await?
            .json(CHANNEL)?;
        if order.pointer("/cancelStatus/cancelState") == Some(&json!("CANCELED")) {
            return Ok(());
        }
        let cancel_url =
            http::endpoint(CHANNEL, &self.base, &["post-order", "v2", "cancellation"])?;
        let body = json!({"legacyOrderId": order_id, "cancelReason": OUT_OF_STOCK});
        let answer: Value = self
            .call(|| {
                self.http
                    .post(cancel_url.clone())
                    .header(
                        reqwest::header::AUTHORIZATION,
                        format!("IAF {}", self.access_token.expose()),
                    )
                    .header("X-EBAY-C-MARKETPLACE-ID", &self.marketplace_id)
                    .json(&body)
            })
            .await?
            .json(CHANNEL)?;
        // A 2xx answer without a cancelId says the order is not eligible (shipped, too old).
        match answer.get("cancelId").and_then(Value::as_str) {
            Some(_) => Ok(()),
            None => Err(ChannelError::new(
                Kind::Rejected,
                CHANNEL,
                format!("ebay did not cancel order {order_id}: {answer}"),
            )),
        }
    }

    /// One call, retried while throttled; any other failure is the answer's error.
    async fn call<F>(&self, build: F) -> Result<Answer, ChannelError>
    where
        F: Fn() -> reqwest::RequestBuilder,
    {
        http::retry_throttled(&self.options, || async {
            let answer = http::send(CHANNEL, build()).await?;
            if answer.status.is_success() {
                return Ok(answer);
            }
            Err(answer.error(CHANNEL, false, answer.retry_after()))
        })
        .await
    }

    /// The ship-to-home quantity of the SKU's inventory item.
    pub async fn read_shown(&self, listing: &Listing) -> Result<i64, ChannelError> {
        let Listing::Ebay { sku, .. } = listing else {
            return Err(ChannelError::wrong_channel(CHANNEL, listing.kind()));
        };
        let url = http::endpoint(
            CHANNEL,
            &self.base,
            &["sell", "inventory", "v1", "inventory_item", sku],
        )?;
        let answer = http::retry_throttled(&self.options, || async {
            let request = self
                .http
                .get(url.clone())
                .bearer_auth(self.access_token.expose());
            let answer = http::send(CHANNEL, request).await?;
            if answer.status.is_success() {
                return Ok(answer);
            }
            Err(answer.error(CHANNEL, true, answer.retry_after()))
        })
        .await?;
        let item: Value = answer.json(CHANNEL)?;
        match item.pointer("/availability/shipToLocationAvailability/quantity") {
            // An item without availability offers nothing to buy.
            None | Some(Value::Null) => Ok(0),
            Some(quantity) => quantity.as_i64().ok_or_else(|| {
                ChannelError::new(
                    Kind::UnexpectedAnswer,
                    CHANNEL,
                    format!("quantity {quantity} of {sku} is not an integer"),
                )
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn a_throttled_entry_of_a_partial_answer_is_throttled_with_the_answers_wait() {
        let entry: ItemResponse = serde_json::from_value(json!({
            "sku": "A", "offerId": "9", "statusCode": 429,
            "errors": [{"errorId": 25001, "message": "too many requests"}],
        }))
        .unwrap_or_else(|e| panic!("{e}"));
        let wait = Some(Duration::from_secs(2));
        match entry.outcome(wait) {
            PushOutcome::Throttled {
                reason,
                retry_after,
            } => {
                assert!(reason.contains("HTTP 429"), "{reason}");
                assert_eq!(retry_after, wait);
            }
            other => panic!("expected a throttled outcome, got {other:?}"),
        }
        let rejected: ItemResponse = serde_json::from_value(json!({"sku": "A", "statusCode": 400}))
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(rejected.outcome(wait).is_permanent());
    }
}
