//! `POST /v1/webhooks/shopify` (contract section 6): Shopify's order webhooks, verified, mapped to
//! the contract's inbound events and published on the bus, where the state functions apply them
//! exactly once by their `event_id`. A line that maps to no SKU goes to the dead-letter queue with
//! reason `unknown_listing`; the rest of its order applies. [`ShopifyOrders`] does the mapping
//! and publishing for this route and for Shopify's EventBridge partner event source alike
//! ([`crate::shopify_partner_events`]), so an order that arrives both ways applies once.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::json;
use stockguard_domain::shopify::{self, ShopLine, ShopifyChange, Topic};
use stockguard_domain::{ChannelName, InvalidInput, Notification, Sku};
use tokio::sync::Mutex;

use stockguard_channels::ChannelClient;

use crate::channel_sync::ChannelSync;
use crate::deps::Deps;
use crate::http_api::HttpAnswer;
use crate::metrics::{Metrics, Unit};

/// The source the mapped events are published with: outside `stockguard.`, so the inbound rules
/// take them as any producer's.
pub const SOURCE: &str = "channel.shopify";

/// How long a secret read from Secrets Manager is used before it is read again (a rotated secret
/// takes effect within this).
const SECRET_TTL: Duration = Duration::from_secs(300);

/// The headers the webhook reads, by lowercase name.
#[derive(Debug, Default, Clone)]
pub struct WebhookHeaders {
    pub topic: Option<String>,
    pub hmac: Option<String>,
    pub webhook_id: Option<String>,
    pub shop_domain: Option<String>,
}

impl WebhookHeaders {
    pub fn from_map(headers: &http::HeaderMap) -> Self {
        let get = |name: &str| {
            headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
        };
        Self {
            topic: get("x-shopify-topic"),
            hmac: get("x-shopify-hmac-sha256"),
            webhook_id: get("x-shopify-webhook-id"),
            shop_domain: get("x-shopify-shop-domain"),
        }
    }
}

pub struct ShopifyWebhooks {
    deps: Deps,
    /// The Secrets Manager name of the app's client secret.
    secret_name: String,
    secret: Mutex<Option<(Vec<u8>, Instant)>>,
    orders: ShopifyOrders,
}

/// Shopify's order changes from a trusted origin (a verified webhook, or Shopify's partner event
/// source), mapped to the contract's inbound events and published.
pub struct ShopifyOrders {
    deps: Deps,
    /// The Shopify channel's client (its credentials and endpoint from the channel settings),
    /// for the variants whose inventory items are looked up.
    shopify: ChannelSync,
}

/// What became of a delivery that could be handled now.
#[derive(Debug)]
pub enum Taken {
    /// A topic stockguard does not take.
    Ignored,
    /// Not an order or refund of its topic; nothing was applied.
    Invalid(InvalidInput),
    /// Published (a duplicate too: its events apply once); the answer's body.
    Accepted(serde_json::Value),
}

fn answer(status: u16, body: serde_json::Value) -> HttpAnswer {
    HttpAnswer { status, body }
}

fn count(name: &str, topic: &str) {
    let mut m = Metrics::new(&[("Topic", topic)]);
    m.add(name, Unit::Count, 1.0);
    m.flush();
}

impl ShopifyWebhooks {
    pub fn new(deps: Deps, secret_name: impl Into<String>) -> Self {
        Self {
            secret_name: secret_name.into(),
            secret: Mutex::new(None),
            orders: ShopifyOrders::new(deps.clone()),
            deps,
        }
    }

    /// Builds it from the environment: `STOCKGUARD_SHOPIFY_WEBHOOK_SECRET` names the secret.
    pub fn from_env(deps: Deps, env: crate::functions::Env) -> Result<Self, String> {
        let name = env("STOCKGUARD_SHOPIFY_WEBHOOK_SECRET")
            .filter(|v| !v.is_empty())
            .ok_or("environment variable STOCKGUARD_SHOPIFY_WEBHOOK_SECRET is required")?;
        Ok(Self::new(deps, name))
    }

    /// The app's client secret: the secret's string, or its `client_secret` when it is JSON.
    async fn secret(&self) -> Result<Vec<u8>, String> {
        let mut cached = self.secret.lock().await;
        if let Some((s, at)) = cached.as_ref()
            && at.elapsed() < SECRET_TTL
        {
            return Ok(s.clone());
        }
        let out = self
            .deps
            .clients
            .secrets
            .get_secret_value()
            .secret_id(&self.secret_name)
            .send()
            .await
            .map_err(|e| {
                format!(
                    "reading secret {}: {}",
                    self.secret_name,
                    aws_sdk_secretsmanager::error::DisplayErrorContext(e)
                )
            })?;
        let raw = out.secret_string().unwrap_or_default();
        let value = serde_json::from_str::<serde_json::Value>(raw)
            .ok()
            .and_then(|v| v["client_secret"].as_str().map(str::to_owned))
            .unwrap_or_else(|| raw.to_owned());
        if value.is_empty() {
            return Err(format!("secret {} is empty", self.secret_name));
        }
        let bytes = value.into_bytes();
        *cached = Some((bytes.clone(), Instant::now()));
        Ok(bytes)
    }

    /// Handles one delivery. `body` is the raw body, at most [`shopify::MAX_BODY_BYTES`] (the
    /// transport refuses larger ones before reading them).
    pub async fn handle(&self, headers: &WebhookHeaders, body: &[u8]) -> HttpAnswer {
        if body.len() > shopify::MAX_BODY_BYTES {
            return answer(
                413,
                json!({"error": "payload_too_large", "message": format!("bodies over {} bytes are refused", shopify::MAX_BODY_BYTES)}),
            );
        }
        let secret = match self.secret().await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "the webhook secret cannot be read");
                // 5xx: Shopify retries the delivery later.
                return answer(
                    503,
                    json!({"error": "unavailable", "message": "the webhook cannot be verified now"}),
                );
            }
        };
        let topic_name = headers.topic.as_deref().unwrap_or_default();
        // Nothing of the body is looked at before its signature verifies.
        if !shopify::signature_valid(&secret, body, headers.hmac.as_deref()) {
            count("WebhooksRejected", "invalid_signature");
            tracing::warn!(
                topic = topic_name,
                shop = headers.shop_domain.as_deref().unwrap_or_default(),
                "webhook signature does not verify"
            );
            return answer(
                401,
                json!({"error": "invalid_signature", "message": "X-Shopify-Hmac-Sha256 does not verify"}),
            );
        }
        match self.orders.take(headers, body).await {
            Ok(Taken::Ignored) => answer(200, json!({"status": "ignored", "topic": topic_name})),
            Ok(Taken::Invalid(e)) => answer(
                400,
                json!({"error": "invalid_payload", "message": e.message, "field": e.field}),
            ),
            Ok(Taken::Accepted(result)) => answer(200, result),
            Err(e) => {
                tracing::error!(topic = topic_name, error = %e, "webhook not applied; Shopify retries it");
                answer(
                    503,
                    json!({"error": "unavailable", "message": "the webhook could not be applied; it can be delivered again"}),
                )
            }
        }
    }
}

impl ShopifyOrders {
    pub fn new(deps: Deps) -> Self {
        Self {
            shopify: ChannelSync::new(
                deps.clone(),
                ChannelName::parse(shopify::CHANNEL).expect("a valid channel name"),
            ),
            deps,
        }
    }

    /// Maps one delivery (its headers and body, its origin already trusted) and publishes its
    /// events. An error means nothing is known to be lost: delivering it again may succeed, and
    /// what was published already applies once.
    pub async fn take(&self, headers: &WebhookHeaders, body: &[u8]) -> Result<Taken, String> {
        let topic_name = headers.topic.as_deref().unwrap_or_default();
        let Some(topic) = Topic::parse(topic_name) else {
            count("WebhooksIgnored", "unknown");
            tracing::info!(topic = topic_name, "webhook topic not taken; ignored");
            return Ok(Taken::Ignored);
        };
        let change = match shopify::parse_change(topic, body) {
            Ok(c) => c,
            Err(e) => {
                count("WebhooksRejected", "invalid_payload");
                return Ok(Taken::Invalid(e));
            }
        };
        let result = self
            .apply(topic, &change, headers)
            .await
            .map_err(|e| format!("Shopify order {}: {e}", change.order_id()))?;
        count("WebhooksAccepted", topic.as_str());
        Ok(Taken::Accepted(result))
    }

    async fn apply(
        &self,
        topic: Topic,
        change: &ShopifyChange,
        headers: &WebhookHeaders,
    ) -> Result<serde_json::Value, String> {
        let skus = self.resolve(change.lines()).await?;
        let mapped = shopify::to_inbound(change, |l| skus.get(&l.line_item_id).cloned())
            .map_err(|e| e.message)?;
        // Dead letters first: a failure after publishing would make Shopify redeliver, which
        // publishes the same event ids again (applied once) and dead-letters the line again.
        for line in &mapped.unmapped {
            let body = json!({
                "webhook_id": headers.webhook_id,
                "shop_domain": headers.shop_domain,
                "line": line.to_json(topic),
            });
            let dlq = self
                .deps
                .dead_letters
                .as_ref()
                .ok_or("no dead-letter queue is configured for unknown listings")?;
            dlq.send(
                &body.to_string(),
                "unknown_listing",
                &format!(
                    "line {} of Shopify order {} (sku {:?}, variant {:?}) maps to no listing",
                    line.line.line_item_id, line.order_id, line.line.sku, line.line.variant_id
                ),
                1,
            )
            .await
            .map_err(|e| e.to_string())?;
            count("WebhookLinesUnmapped", topic.as_str());
        }
        let notifications: Vec<Notification> = mapped
            .events
            .iter()
            .map(|(detail_type, detail)| Notification {
                detail_type: (*detail_type).to_owned(),
                detail: detail.clone(),
            })
            .collect();
        self.deps
            .publisher
            .publish(SOURCE, &notifications)
            .await
            .map_err(|e| e.to_string())?;
        Ok(json!({
            "status": "accepted",
            "events": mapped.events.iter().map(|(t, d)| json!({"detail_type": t, "event_id": d["event_id"]})).collect::<Vec<_>>(),
            "unmapped_lines": mapped.unmapped.len(),
        }))
    }

    /// Our SKU for each line, by line item id: its `sku` when that is one of ours (mapped on
    /// Shopify, or a SKU with a position), else the listing of its variant's inventory item.
    async fn resolve(&self, lines: &[ShopLine]) -> Result<HashMap<String, Sku>, String> {
        let channel = ChannelName::parse(shopify::CHANNEL).map_err(|e| e.to_string())?;
        let candidates: Vec<Sku> = lines
            .iter()
            .filter_map(|l| l.sku.as_deref().and_then(|s| Sku::parse(s).ok()))
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut ours: HashSet<Sku> = self
            .deps
            .store
            .listings(&channel, &candidates)
            .await
            .map_err(|e| e.to_string())?
            .into_keys()
            .collect();
        let unlisted: Vec<Sku> = candidates
            .iter()
            .filter(|s| !ours.contains(*s))
            .cloned()
            .collect();
        if !unlisted.is_empty() {
            let positions = self
                .deps
                .store
                .positions(&unlisted)
                .await
                .map_err(|e| e.to_string())?;
            ours.extend(
                positions
                    .into_iter()
                    .filter(|(_, p)| p.version > 0)
                    .map(|(s, _)| s),
            );
        }
        let mut found = HashMap::new();
        let mut by_variant: Vec<&ShopLine> = Vec::new();
        for l in lines {
            match l.sku.as_deref().and_then(|s| Sku::parse(s).ok()) {
                Some(sku) if ours.contains(&sku) => {
                    found.insert(l.line_item_id.clone(), sku);
                }
                _ => by_variant.push(l),
            }
        }
        let variants: Vec<String> = by_variant
            .iter()
            .filter_map(|l| l.variant_id.clone())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        if variants.is_empty() {
            return Ok(found);
        }
        let items = self.inventory_items(&channel, &variants).await?;
        let item_ids: Vec<String> = items.values().cloned().collect();
        let by_item = self
            .deps
            .store
            .skus_by_listing_id(&channel, &item_ids)
            .await
            .map_err(|e| e.to_string())?;
        for l in by_variant {
            if let Some(sku) = l
                .variant_id
                .as_ref()
                .and_then(|v| items.get(v))
                .and_then(|item| by_item.get(item))
            {
                found.insert(l.line_item_id.clone(), sku.clone());
            }
        }
        Ok(found)
    }

    /// The inventory item of each variant, asked of Shopify; none when the channel is not set up.
    async fn inventory_items(
        &self,
        channel: &ChannelName,
        variants: &[String],
    ) -> Result<HashMap<String, String>, String> {
        let Some(settings) = self
            .deps
            .store
            .channel(channel)
            .await
            .map_err(|e| e.to_string())?
        else {
            return Ok(HashMap::new());
        };
        let client = self.shopify.client_for(&settings).await?;
        match client.as_ref() {
            ChannelClient::Shopify(c) => c
                .inventory_items_of_variants(variants)
                .await
                .map_err(|e| e.to_string()),
            _ => Err(format!("channel {channel} is not a Shopify channel")),
        }
    }
}
