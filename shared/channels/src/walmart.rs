//! Walmart Marketplace: client-credentials tokens and one inventory PUT per SKU.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode, Url};
use serde::Deserialize;
use serde_json::json;
use tokio::sync::Mutex;
use tokio::time::Instant;

use crate::config::{ClientOptions, Secret, WalmartConfig};
use crate::error::{ChannelError, Kind};
use crate::http::{self, Answer};
use crate::model::{ChannelKind, Listing, PushOutcome, QuantityUpdate};
use crate::outcomes::Outcomes;

const CHANNEL: ChannelKind = ChannelKind::Walmart;
/// Refresh this long before the token runs out, so a request never leaves with a dying token.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);
const MAX_TOKEN_LIFETIME_SECS: u64 = 24 * 3600;

pub struct WalmartClient {
    http: reqwest::Client,
    base: Url,
    client_id: String,
    client_secret: Secret,
    service_name: String,
    token: Mutex<Option<CachedToken>>,
    options: ClientOptions,
}

/// Which page of `GET /v3/orders` to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WalmartOrdersPage {
    /// ISO 8601 UTC timestamps, as Walmart takes them.
    First {
        from: String,
        to: String,
        created_from: String,
        limit: u32,
    },
    /// The `nextCursor` of the previous page, a query string.
    Next(String),
}

struct CachedToken {
    value: String,
    refresh_at: Instant,
}

struct TokenAnswer {
    access_token: String,
    expires_in: u64,
}

/// Reads a token answer without ever quoting it: unlike other answers, its body is a credential.
fn token_answer(answer: &Answer) -> Result<TokenAnswer, ChannelError> {
    let unreadable = |what: &str| {
        ChannelError::new(
            Kind::UnexpectedAnswer,
            CHANNEL,
            format!(
                "HTTP {}: unreadable token answer: {what}",
                answer.status.as_u16()
            ),
        )
    };
    let body: serde_json::Value =
        serde_json::from_slice(&answer.body).map_err(|_| unreadable("not JSON"))?;
    let access_token = body
        .get("access_token")
        .and_then(serde_json::Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| unreadable("no access_token string"))?;
    let expires_in = body
        .get("expires_in")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(|| unreadable("no expires_in in whole seconds"))?;
    Ok(TokenAnswer {
        access_token: access_token.to_owned(),
        expires_in,
    })
}

#[derive(Deserialize)]
struct InventoryAnswer {
    quantity: Quantity,
}

#[derive(Deserialize)]
struct Quantity {
    amount: i64,
}

impl WalmartClient {
    pub fn new(config: WalmartConfig) -> Result<Self, ChannelError> {
        Ok(Self {
            http: http::http_client(CHANNEL, &config.options)?,
            base: http::base_url(CHANNEL, &config.base_url)?,
            client_id: config.client_id,
            client_secret: config.client_secret,
            service_name: config.service_name,
            token: Mutex::new(None),
            options: config.options,
        })
    }

    /// Sets each SKU's quantity in turn.
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
                Ok(()) => outcomes.acknowledge(index),
                Err(err) => outcomes.fail(index, &err),
            }
        }
        outcomes.finish()
    }

    async fn push_one(&self, update: &QuantityUpdate) -> Result<(), ChannelError> {
        let Listing::Walmart { sku } = &update.listing else {
            return Err(ChannelError::wrong_channel(CHANNEL, update.listing.kind()));
        };
        let url = self.inventory_url(sku)?;
        let body = json!({"sku": sku, "quantity": {"unit": "EACH", "amount": update.quantity}});
        http::retry_throttled(&self.options, || {
            self.call(|| self.http.put(url.clone()).json(&body))
        })
        .await?;
        Ok(())
    }

    pub async fn read_shown(&self, listing: &Listing) -> Result<i64, ChannelError> {
        let Listing::Walmart { sku } = listing else {
            return Err(ChannelError::wrong_channel(CHANNEL, listing.kind()));
        };
        let url = self.inventory_url(sku)?;
        let answer =
            http::retry_throttled(&self.options, || self.call(|| self.http.get(url.clone())))
                .await?;
        let inventory: InventoryAnswer = answer.json(CHANNEL)?;
        Ok(inventory.quantity.amount)
    }

    /// One page of `GET /v3/orders`: the first of orders modified in `[from, to]` (created at
    /// most `created_lookback` before `from`), or the page a `nextCursor` names. The body is
    /// returned as it came, for the domain to read; Walmart's 404 for "no orders" is an empty page.
    pub async fn orders_page(&self, page: &WalmartOrdersPage) -> Result<Vec<u8>, ChannelError> {
        let url = match page {
            WalmartOrdersPage::First {
                from,
                to,
                created_from,
                limit,
            } => {
                let mut url = http::endpoint(CHANNEL, &self.base, &["v3", "orders"])?;
                url.query_pairs_mut()
                    .append_pair("createdStartDate", created_from)
                    .append_pair("lastModifiedStartDate", from)
                    .append_pair("lastModifiedEndDate", to)
                    .append_pair("limit", &limit.to_string())
                    .append_pair("shipNodeType", "SellerFulfilled");
                url
            }
            WalmartOrdersPage::Next(cursor) => {
                let mut url = http::endpoint(CHANNEL, &self.base, &["v3", "orders"])?;
                url.set_query(Some(cursor.trim_start_matches('?')));
                url
            }
        };
        let answer = http::retry_throttled(&self.options, || async {
            let token = self.access_token().await?;
            let mut answer = http::send(
                CHANNEL,
                self.with_headers(self.http.get(url.clone()), &token),
            )
            .await?;
            if answer.status == StatusCode::UNAUTHORIZED {
                let token = self.replace_token(&token).await?;
                answer = http::send(
                    CHANNEL,
                    self.with_headers(self.http.get(url.clone()), &token),
                )
                .await?;
            }
            if answer.status.is_success() || answer.status == StatusCode::NOT_FOUND {
                return Ok(answer);
            }
            Err(answer.error(CHANNEL, false, answer.retry_after()))
        })
        .await?;
        if answer.status == StatusCode::NOT_FOUND {
            return Ok(br#"{"list": {"meta": {"totalCount": 0}, "elements": {}}}"#.to_vec());
        }
        Ok(answer.body)
    }

    /// Cancels every line of a purchase order that is not cancelled yet, as the seller
    /// (`POST /v3/orders/{purchaseOrderId}/cancel`, reason
    /// `CUSTOMER_REQUESTED_SELLER_TO_CANCEL`, which Walmart also uses for stock-outs): the order's
    /// lines are read first (`GET /v3/orders/{purchaseOrderId}`), since Walmart cancels by line.
    pub async fn cancel_order(&self, purchase_order_id: &str) -> Result<(), ChannelError> {
        let order_url = http::endpoint(CHANNEL, &self.base, &["v3", "orders", purchase_order_id])?;
        let answer = http::retry_throttled(&self.options, || {
            self.call(|| self.http.get(order_url.clone()))
        })
        .await?;
        let order: serde_json::Value = answer.json(CHANNEL)?;
        let lines: Vec<serde_json::Value> = order
            .pointer("/order/orderLines/orderLine")
            .and_then(serde_json::Value::as_array)
            .into_iter()
            .flatten()
            .filter(|l| {
                !l.pointer("/orderLineStatuses/orderLineStatus")
                    .and_then(serde_json::Value::as_array)
                    .is_some_and(|s| s.iter().any(|s| s["status"] == "Cancelled"))
            })
            .map(|l| {
                json!({"lineNumber": l["lineNumber"], "orderLineStatuses": {"orderLineStatus": [{
                    "status": "Cancelled", "cancellationReason": "CUSTOMER_REQUESTED_SELLER_TO_CANCEL",
                    "statusQuantity": l["orderLineQuantity"]}]}})
            })
            .collect();
        if lines.is_empty() {
            return Ok(());
        }
        let cancel_url = http::endpoint(
            CHANNEL,
            &self.base,
            &["v3", "orders", purchase_order_id, "cancel"],
        )?;
        let body = json!({"orderCancellation": {"orderLines": {"orderLine": lines}}});
        http::retry_throttled(&self.options, || {
            self.call(|| self.http.post(cancel_url.clone()).json(&body))
        })
        .await?;
        Ok(())
    }

    fn inventory_url(&self, sku: &str) -> Result<Url, ChannelError> {
        let mut url = http::endpoint(CHANNEL, &self.base, &["v3", "inventory"])?;
        url.query_pairs_mut().append_pair("sku", sku);
        Ok(url)
    }

    /// One authenticated call. A 401 means the token died early (revoked, clock skew): it is
    /// replaced and the call sent once more.
    async fn call<F>(&self, build: F) -> Result<Answer, ChannelError>
    where
        F: Fn() -> RequestBuilder,
    {
        let token = self.access_token().await?;
        let mut answer = http::send(CHANNEL, self.with_headers(build(), &token)).await?;
        if answer.status == StatusCode::UNAUTHORIZED {
            let token = self.replace_token(&token).await?;
            answer = http::send(CHANNEL, self.with_headers(build(), &token)).await?;
        }
        if answer.status.is_success() {
            return Ok(answer);
        }
        Err(answer.error(CHANNEL, true, answer.retry_after()))
    }

    fn with_headers(&self, request: RequestBuilder, token: &str) -> RequestBuilder {
        request
            .header("WM_SEC.ACCESS_TOKEN", token)
            .header("WM_QOS.CORRELATION_ID", http::correlation_id())
            .header("WM_SVC.NAME", &self.service_name)
            .header("Accept", "application/json")
    }

    async fn access_token(&self) -> Result<String, ChannelError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    /// A new token in place of `rejected`, unless a concurrent call has replaced it already.
    async fn replace_token(&self, rejected: &str) -> Result<String, ChannelError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached
            .as_ref()
            .filter(|t| t.value != rejected && Instant::now() < t.refresh_at)
        {
            return Ok(token.value.clone());
        }
        let token = self.fetch_token().await?;
        let value = token.value.clone();
        *cached = Some(token);
        Ok(value)
    }

    async fn fetch_token(&self) -> Result<CachedToken, ChannelError> {
        let url = http::endpoint(CHANNEL, &self.base, &["v3", "token"])?;
        let request = self
            .http
            .post(url)
            .basic_auth(&self.client_id, Some(self.client_secret.expose()))
            .header("WM_QOS.CORRELATION_ID", http::correlation_id())
            .header("WM_SVC.NAME", &self.service_name)
            .header("Accept", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials");
        let answer = http::send(CHANNEL, request).await?;
        if !answer.status.is_success() {
            return Err(answer.error(CHANNEL, false, answer.retry_after()));
        }
        let token = token_answer(&answer)?;
        // Capped so that an absurd figure from outside cannot overflow the clock.
        let lifetime = Duration::from_secs(token.expires_in.min(MAX_TOKEN_LIFETIME_SECS));
        // Short-lived tokens (tests) refresh at 90% of their life rather than a minute early.
        let margin = REFRESH_MARGIN.min(lifetime / 10);
        Ok(CachedToken {
            value: token.access_token,
            refresh_at: Instant::now() + lifetime.saturating_sub(margin),
        })
    }
}
