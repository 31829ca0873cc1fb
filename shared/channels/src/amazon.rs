//! Amazon SP-API Listings Items 2021-08-01: one PATCH of `fulfillment_availability` per listing.
//! The Orders API v2026-01-01: getOrder for the items of a notification that leaves them out (and
//! for an order's status), cancelOrder for a short order that compensation cancels.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{AmazonConfig, ClientOptions, Secret};
use crate::error::{ChannelError, Kind};
use crate::http::{self, Answer};
use crate::model::{ChannelKind, Listing, PushOutcome, QuantityUpdate};
use crate::outcomes::Outcomes;
use crate::rate_limit::RateLimiter;

const CHANNEL: ChannelKind = ChannelKind::Amazon;
const API_VERSION: &str = "2021-08-01";
/// Merchant-fulfilled stock; FBA quantities are Amazon's to set.
const FULFILLMENT_CHANNEL: &str = "DEFAULT";

pub struct AmazonClient {
    http: reqwest::Client,
    base: Url,
    access_token: Secret,
    seller_id: String,
    marketplace_id: String,
    limiter: RateLimiter,
    /// cancelOrder's own limit (1 request a second, burst 5).
    cancel_limiter: RateLimiter,
    /// getOrder's own limit (0.5 requests a second, burst 30), for both its reads (items,
    /// fulfillment status).
    order_limiter: RateLimiter,
    options: ClientOptions,
}

/// The Orders API version whose cancelOrder and getOrder this client calls.
const ORDERS_VERSION: &str = "2026-01-01";
/// cancelOrder's published limit per seller.
const CANCEL_PER_SECOND: f64 = 1.0;
const CANCEL_BURST: u32 = 5;
/// getOrder's (v2026-01-01) published limit per seller.
const ORDER_PER_SECOND: f64 = 0.5;
const ORDER_BURST: u32 = 30;
/// cancelOrder's `cancelReasonCode` for a cancellation because the stock is gone.
const NO_INVENTORY: &str = "NO_INVENTORY";
/// getOrder's `includedData` value that adds the order's `fulfillment`.
const FULFILLMENT: &str = "FULFILLMENT";
/// getOrder's `fulfillment.fulfillmentStatus` of a cancelled order.
const CANCELLED: &str = "CANCELLED";

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Submission {
    status: String,
    #[serde(default)]
    submission_id: Option<String>,
    #[serde(default)]
    issues: Vec<Issue>,
}

#[derive(Debug, Deserialize)]
struct Issue {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    severity: String,
}

impl AmazonClient {
    pub fn new(config: AmazonConfig) -> Result<Self, ChannelError> {
        if !(config.requests_per_second.is_finite() && config.requests_per_second > 0.0) {
            return Err(ChannelError::new(
                Kind::Misconfigured,
                CHANNEL,
                format!(
                    "requests_per_second must be positive, not {}",
                    config.requests_per_second
                ),
            ));
        }
        Ok(Self {
            http: http::http_client(CHANNEL, &config.options)?,
            base: http::base_url(CHANNEL, &config.base_url)?,
            access_token: config.access_token,
            seller_id: config.seller_id,
            marketplace_id: config.marketplace_id,
            limiter: RateLimiter::new(config.requests_per_second, config.burst),
            cancel_limiter: RateLimiter::new(CANCEL_PER_SECOND, CANCEL_BURST),
            order_limiter: RateLimiter::new(ORDER_PER_SECOND, ORDER_BURST),
            options: config.options,
        })
    }

    /// Patches each listing's quantity in turn, paced to the seller's rate limit. Acknowledged
    /// means ACCEPTED: Amazon shows the quantity only once it has processed the submission.
    pub async fn push(&self, updates: &[QuantityUpdate]) -> Vec<PushOutcome> {
        let (mut outcomes, eligible) = Outcomes::for_channel(updates, CHANNEL);
        for index in eligible {
            if outcomes.is_halted() {
                break;
            }
            let Some(update) = updates.get(index) else {
                continue;
            };
            match self.push_one(update).await {
                Ok(outcome) => outcomes.set(index, outcome),
                Err(err) => outcomes.fail(index, &err),
            }
        }
        outcomes.finish()
    }

    async fn push_one(&self, update: &QuantityUpdate) -> Result<PushOutcome, ChannelError> {
        let Listing::Amazon {
            seller_sku,
            product_type,
        } = &update.listing
        else {
            return Err(ChannelError::wrong_channel(CHANNEL, update.listing.kind()));
        };
        let url = self.item_url(seller_sku, &[])?;
        let body = json!({
            "productType": product_type,
            "patches": [{
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": FULFILLMENT_CHANNEL, "quantity": update.quantity}],
            }],
        });
        let answer = http::retry_throttled(&self.options, || {
            self.call(self.http.patch(url.clone()).json(&body))
        })
        .await?;
        let submission: Submission = answer.json(CHANNEL)?;
        match submission.status.as_str() {
            "ACCEPTED" => Ok(PushOutcome::acknowledged_now()),
            "INVALID" => Ok(PushOutcome::Permanent {
                reason: format!(
                    "amazon: submission {} of {seller_sku} is INVALID: {}",
                    submission.submission_id.as_deref().unwrap_or("(no id)"),
                    describe_issues(&submission.issues)
                ),
            }),
            other => Err(ChannelError::new(
                Kind::UnexpectedAnswer,
                CHANNEL,
                format!("submission status {other:?} for {seller_sku}"),
            )),
        }
    }

    /// The merchant-fulfilled quantity Amazon shows now, which lags accepted pushes.
    pub async fn read_shown(&self, listing: &Listing) -> Result<i64, ChannelError> {
        let Listing::Amazon { seller_sku, .. } = listing else {
            return Err(ChannelError::wrong_channel(CHANNEL, listing.kind()));
        };
        let url = self.item_url(seller_sku, &[("includedData", "fulfillmentAvailability")])?;
        let answer =
            http::retry_throttled(&self.options, || self.call(self.http.get(url.clone()))).await?;
        let item: Value = answer.json(CHANNEL)?;
        let shown = item
            .get("fulfillmentAvailability")
            .and_then(Value::as_array)
            .and_then(|entries| {
                entries.iter().find(|entry| {
                    entry.get("fulfillmentChannelCode").and_then(Value::as_str)
                        == Some(FULFILLMENT_CHANNEL)
                })
            })
            .map(|entry| entry.get("quantity").and_then(Value::as_i64));
        match shown {
            Some(Some(quantity)) => Ok(quantity),
            // No merchant-fulfilled entry: nothing can be bought from our stock.
            None => Ok(0),
            Some(None) => Err(ChannelError::new(
                Kind::UnexpectedAnswer,
                CHANNEL,
                format!("no quantity in the fulfillment availability of {seller_sku}: {item}"),
            )),
        }
    }

    /// Every item of an order, from one getOrder (Orders API v2026-01-01,
    /// `GET /orders/2026-01-01/orders/{orderId}`), paced to the operation's own limit. Amazon
    /// always includes `orderItems` (no `includedData` value is needed, and getOrder does not page
    /// them). Items as Amazon writes them: `orderItemId`, `quantityOrdered`, `product.sellerSku`.
    pub async fn order_items(&self, amazon_order_id: &str) -> Result<Vec<Value>, ChannelError> {
        let mut order = self.get_order(amazon_order_id, &[]).await?;
        match order.get_mut("orderItems").map(Value::take) {
            Some(Value::Array(items)) => Ok(items),
            _ => Err(ChannelError::new(
                Kind::UnexpectedAnswer,
                CHANNEL,
                format!("getOrder answered without orderItems for order {amazon_order_id}"),
            )),
        }
    }

    /// Cancels a whole order because its stock is gone: cancelOrder of the Orders API
    /// v2026-01-01, `PUT /orders/2026-01-01/orders/{orderId}/cancellation` with
    /// `cancelReasonCode` `NO_INVENTORY`, answered 202 (Amazon cancels whole orders only). Amazon
    /// then sends the order's `ORDER_CHANGE` notification with status `Canceled`, which releases
    /// the order in stockguard. Amazon's contract does not say how it answers for an order that
    /// is cancelled already (a repeated compensation): a refusal is followed by getOrder, and an
    /// order it shows cancelled is taken as done.
    pub async fn cancel_order(&self, amazon_order_id: &str) -> Result<(), ChannelError> {
        let url = http::endpoint(
            CHANNEL,
            &self.base,
            &[
                "orders",
                ORDERS_VERSION,
                "orders",
                amazon_order_id,
                "cancellation",
            ],
        )?;
        let body = json!({"cancelReasonCode": NO_INVENTORY});
        let refused = match http::retry_throttled(&self.options, || {
            self.call_paced(
                &self.cancel_limiter,
                self.http.put(url.clone()).json(&body),
                false,
            )
        })
        .await
        {
            Ok(_) => return Ok(()),
            // Refused as it is (not throttled, not the credentials, not an unknown order):
            // perhaps because the order is cancelled already.
            Err(err)
                if !err.is_retryable()
                    && !err.is_unauthorized()
                    && err.status().is_some_and(|s| s != 404) =>
            {
                err
            }
            Err(err) => return Err(err),
        };
        if self.fulfillment_status(amazon_order_id).await? == CANCELLED {
            return Ok(());
        }
        Err(refused)
    }

    /// The order's `fulfillmentStatus` (`UNSHIPPED`, `SHIPPED`, `CANCELLED`, ...): getOrder with
    /// its `FULFILLMENT` data.
    async fn fulfillment_status(&self, amazon_order_id: &str) -> Result<String, ChannelError> {
        let order = self.get_order(amazon_order_id, &[FULFILLMENT]).await?;
        order
            .pointer("/fulfillment/fulfillmentStatus")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| {
                ChannelError::new(
                    Kind::UnexpectedAnswer,
                    CHANNEL,
                    format!("no fulfillment status for order {amazon_order_id}: {order}"),
                )
            })
    }

    /// getOrder (Orders API v2026-01-01), `GET /orders/2026-01-01/orders/{orderId}` with the
    /// `included` datasets as `includedData` (comma-separated), paced to its limit: the answer's
    /// `order`.
    async fn get_order(
        &self,
        amazon_order_id: &str,
        included: &[&str],
    ) -> Result<Value, ChannelError> {
        let mut url = http::endpoint(
            CHANNEL,
            &self.base,
            &["orders", ORDERS_VERSION, "orders", amazon_order_id],
        )?;
        if !included.is_empty() {
            url.query_pairs_mut()
                .append_pair("includedData", &included.join(","));
        }
        let answer = http::retry_throttled(&self.options, || {
            self.call_paced(&self.order_limiter, self.http.get(url.clone()), false)
        })
        .await?;
        let body: Value = answer.json(CHANNEL)?;
        match body {
            Value::Object(mut fields) if fields.get("order").is_some_and(Value::is_object) => {
                Ok(fields.remove("order").unwrap_or_default())
            }
            body => Err(ChannelError::new(
                Kind::UnexpectedAnswer,
                CHANNEL,
                format!("getOrder answered without an order for {amazon_order_id}: {body}"),
            )),
        }
    }

    fn item_url(
        &self,
        seller_sku: &str,
        extra_query: &[(&str, &str)],
    ) -> Result<Url, ChannelError> {
        let mut url = http::endpoint(
            CHANNEL,
            &self.base,
            &[
                "listings",
                API_VERSION,
                "items",
                &self.seller_id,
                seller_sku,
            ],
        )?;
        url.query_pairs_mut()
            .append_pair("marketplaceIds", &self.marketplace_id)
            .extend_pairs(extra_query);
        Ok(url)
    }

    /// One paced, authenticated call to a listing; any non-success status becomes an error.
    async fn call(&self, request: reqwest::RequestBuilder) -> Result<Answer, ChannelError> {
        self.call_paced(&self.limiter, request, true).await
    }

    /// One call paced to its operation's `limiter` and authenticated; any non-success status
    /// becomes an error (`names_listing`: the URL names one listing, so a 404 means that it is
    /// unknown).
    async fn call_paced(
        &self,
        limiter: &RateLimiter,
        request: reqwest::RequestBuilder,
        names_listing: bool,
    ) -> Result<Answer, ChannelError> {
        limiter.acquire().await;
        let request = request.header("x-amz-access-token", self.access_token.expose());
        let answer = http::send(CHANNEL, request).await?;
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(answer.error(CHANNEL, names_listing, rate_limit_wait(&answer)))
    }
}

/// SP-API says its rate in `x-amzn-RateLimit-Limit` (requests per second): one token comes
/// back after `1 / rate`.
fn rate_limit_wait(answer: &Answer) -> Option<Duration> {
    answer.retry_after().or_else(|| {
        answer
            .header_f64("x-amzn-ratelimit-limit")
            .filter(|rate| *rate > 0.0)
            .and_then(|rate| Duration::try_from_secs_f64(1.0 / rate).ok())
    })
}

fn describe_issues(issues: &[Issue]) -> String {
    if issues.is_empty() {
        return "no issues given".to_owned();
    }
    issues
        .iter()
        .map(|issue| format!("{} {}: {}", issue.severity, issue.code, issue.message))
        .collect::<Vec<_>>()
        .join("; ")
}
