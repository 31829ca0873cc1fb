//! A queue subscribed to what stockguard publishes on the bus, so the demo and the tests can read
//! the events back exactly as a consumer would.

use std::time::Duration;

use anyhow::Result;
use aws_sdk_sqs::types::{MessageAttributeValue, QueueAttributeName};
use serde_json::{Value, json};

pub struct EventTap {
    sqs: aws_sdk_sqs::Client,
    pub queue_url: String,
}

impl EventTap {
    /// Subscribes a new queue `name` to every `stockguard.*` event on `bus`.
    pub async fn create(config: &aws_config::SdkConfig, bus: &str, name: &str) -> Result<Self> {
        let sqs = aws_sdk_sqs::Client::new(config);
        let events = aws_sdk_eventbridge::Client::new(config);
        let queue_url = sqs
            .create_queue()
            .queue_name(name)
            .send()
            .await?
            .queue_url
            .unwrap_or_default();
        let arn = crate::provision::queue_arn(&sqs, &queue_url).await?;
        events
            .put_rule()
            .name(name)
            .event_bus_name(bus)
            .event_pattern(json!({"source": [{"prefix": "stockguard."}]}).to_string())
            .send()
            .await?;
        events
            .put_targets()
            .rule(name)
            .event_bus_name(bus)
            .targets(
                aws_sdk_eventbridge::types::Target::builder()
                    .id("tap")
                    .arn(&arn)
                    .build()?,
            )
            .send()
            .await?;
        Ok(Self { sqs, queue_url })
    }

    /// Everything received until nothing new arrives for `quiet`.
    pub async fn drain(&self, quiet: Duration) -> Result<Vec<Value>> {
        Ok(drain_queue(&self.sqs, &self.queue_url, quiet)
            .await?
            .into_iter()
            .filter_map(|(body, _)| serde_json::from_str(&body).ok())
            .collect())
    }
}

/// Receives and deletes every message of a queue until it stays empty for `quiet`:
/// (body, `reason_code` attribute).
pub async fn drain_queue(
    sqs: &aws_sdk_sqs::Client,
    url: &str,
    quiet: Duration,
) -> Result<Vec<(String, Option<String>)>> {
    let mut out = Vec::new();
    let mut last = tokio::time::Instant::now();
    loop {
        let msgs = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .send()
            .await?
            .messages
            .unwrap_or_default();
        if msgs.is_empty() {
            if last.elapsed() >= quiet {
                return Ok(out);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        }
        last = tokio::time::Instant::now();
        for m in msgs {
            let reason = m
                .message_attributes()
                .and_then(|a| a.get("reason_code"))
                .and_then(MessageAttributeValue::string_value)
                .map(str::to_owned);
            out.push((m.body.clone().unwrap_or_default(), reason));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await?;
        }
    }
}

/// Messages waiting in a queue (visible and in flight).
pub async fn queue_depth(sqs: &aws_sdk_sqs::Client, url: &str) -> Result<i64> {
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(url)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessages)
        .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesNotVisible)
        .send()
        .await?
        .attributes
        .unwrap_or_default();
    let get = |k: &QueueAttributeName| {
        attrs
            .get(k)
            .and_then(|v| v.parse::<i64>().ok())
            .unwrap_or(0)
    };
    Ok(get(&QueueAttributeName::ApproximateNumberOfMessages)
        + get(&QueueAttributeName::ApproximateNumberOfMessagesNotVisible))
}

/// Puts one event on `bus`, as a producer does; fails when EventBridge refuses the entry.
pub async fn put_event(
    events: &aws_sdk_eventbridge::Client,
    bus: &str,
    source: &str,
    detail_type: &str,
    detail: &Value,
) -> Result<()> {
    let entry = aws_sdk_eventbridge::types::PutEventsRequestEntry::builder()
        .event_bus_name(bus)
        .source(source)
        .detail_type(detail_type)
        .detail(detail.to_string())
        .build();
    let out = events.put_events().entries(entry).send().await?;
    anyhow::ensure!(out.failed_entry_count() == 0, "PutEvents failed: {out:?}");
    Ok(())
}
