//! Publishes stockguard's events to the EventBridge bus, at most 10 entries a call, checking
//! `FailedEntryCount` and retrying only the entries that failed.

use std::time::Duration;

pub use aws_sdk_eventbridge::Client as EventBridgeClient;
use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use stockguard_domain::Notification;

use crate::error::AdapterError;

const MAX_ENTRIES_PER_CALL: usize = 10;
const ATTEMPTS: u32 = 4;

#[derive(Clone)]
pub struct EventPublisher {
    client: Client,
    bus: String,
}

impl EventPublisher {
    pub fn new(client: Client, bus: impl Into<String>) -> Self {
        Self {
            client,
            bus: bus.into(),
        }
    }

    pub fn bus(&self) -> &str {
        &self.bus
    }

    /// Publishes every notification or fails; a failure leaves the caller to retry the delivery.
    pub async fn publish(
        &self,
        source: &str,
        notifications: &[Notification],
    ) -> Result<(), AdapterError> {
        for chunk in notifications.chunks(MAX_ENTRIES_PER_CALL) {
            let mut pending: Vec<PutEventsRequestEntry> = chunk
                .iter()
                .map(|n| {
                    PutEventsRequestEntry::builder()
                        .event_bus_name(&self.bus)
                        .source(source)
                        .detail_type(&n.detail_type)
                        .detail(n.detail.to_string())
                        .build()
                })
                .collect();
            let mut attempt = 0;
            while !pending.is_empty() {
                attempt += 1;
                let out = self
                    .client
                    .put_events()
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| {
                        AdapterError::transient(format!(
                            "PutEvents: {}",
                            aws_sdk_eventbridge::error::DisplayErrorContext(e)
                        ))
                    })?;
                if out.failed_entry_count() == 0 {
                    break;
                }
                // Results are positional: keep the entries whose result carries an error code.
                let mut reasons = Vec::new();
                pending = pending
                    .into_iter()
                    .zip(out.entries())
                    .filter(|(_, r)| r.error_code().is_some())
                    .map(|(e, r)| {
                        reasons.push(format!(
                            "{}: {}",
                            r.error_code().unwrap_or_default(),
                            r.error_message().unwrap_or_default()
                        ));
                        e
                    })
                    .collect();
                if attempt >= ATTEMPTS {
                    return Err(AdapterError::transient(format!(
                        "PutEvents: {} entries still failing after {ATTEMPTS} attempts: {}",
                        pending.len(),
                        reasons.join("; ")
                    )));
                }
                tokio::time::sleep(Duration::from_millis(25 << attempt)).await;
            }
        }
        Ok(())
    }
}
