//! Shopify's order webhooks as Shopify sends them: the order or refund as JSON, signed with the
//! app's client secret, retried with back-off until answered 2xx, sometimes twice and sometimes
//! late (at-least-once and unordered, as the real ones are).

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::gate::random_hex;
use crate::settings::FakeSettings;

/// base64(HMAC-SHA256(secret, body)), the `X-Shopify-Hmac-Sha256` header.
pub fn shopify_signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Posts `payload` under `topic` to the configured URL in the background; does nothing when no
/// URL is set. A duplicate carries the same webhook id, as Shopify's redeliveries do, and comes
/// `shopify_webhook_late_ms` after the first delivery.
pub(crate) fn send(settings: &FakeSettings, topic: &str, payload: &Value) {
    let Some(url) = settings.shopify_webhook_url.clone() else {
        return;
    };
    let body = payload.to_string();
    let signature = shopify_signature(&settings.shopify_webhook_secret, body.as_bytes());
    let delivery = Delivery {
        url,
        topic: topic.to_owned(),
        webhook_id: random_hex(),
        body,
        signature,
        attempts: settings.shopify_webhook_attempts.max(1),
        retry: Duration::from_millis(settings.shopify_webhook_retry_ms),
    };
    let late_by = Duration::from_millis(settings.shopify_webhook_late_ms);
    let late = rand::random::<f64>() < settings.shopify_webhook_late_rate;
    let twice = rand::random::<f64>() < settings.shopify_webhook_duplicate_rate;
    tokio::spawn(async move {
        if late {
            tokio::time::sleep(late_by).await;
        }
        delivery.deliver().await;
        // The copy comes late too, so it can arrive after a later change of the same order.
        if twice {
            tokio::time::sleep(late_by).await;
            delivery.deliver().await;
        }
    });
}

struct Delivery {
    url: String,
    topic: String,
    webhook_id: String,
    body: String,
    signature: String,
    attempts: u32,
    retry: Duration,
}

impl Delivery {
    async fn deliver(&self) {
        let client = reqwest::Client::new();
        for attempt in 0..self.attempts {
            let sent = client
                .post(&self.url)
                .header("content-type", "application/json")
                .header("X-Shopify-Topic", &self.topic)
                .header("X-Shopify-Hmac-Sha256", &self.signature)
                .header("X-Shopify-Webhook-Id", &self.webhook_id)
                .header("X-Shopify-Shop-Domain", "fake-shop.myshopify.com")
                .header("X-Shopify-API-Version", "2026-04")
                .body(self.body.clone())
                .timeout(Duration::from_secs(5))
                .send()
                .await;
            match sent {
                Ok(r) if r.status().is_success() => return,
                Ok(r) => {
                    tracing::info!(topic = %self.topic, status = %r.status(), attempt, "webhook refused; retrying")
                }
                Err(e) => {
                    tracing::info!(topic = %self.topic, error = %e, attempt, "webhook not delivered; retrying")
                }
            }
            tokio::time::sleep(self.retry.saturating_mul(1 << attempt.min(10))).await;
        }
        tracing::warn!(topic = %self.topic, webhook_id = %self.webhook_id, "webhook given up");
    }
}
