//! Moves a message that cannot be applied to its dead-letter queue with the reason attached, so an
//! operator reading the queue knows why without digging through logs.

pub use aws_sdk_sqs::Client as SqsClient;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;

use crate::error::AdapterError;

#[derive(Clone)]
pub struct DeadLetters {
    client: Client,
    queue_url: String,
}

impl DeadLetters {
    pub fn new(client: Client, queue_url: impl Into<String>) -> Self {
        Self {
            client,
            queue_url: queue_url.into(),
        }
    }

    pub async fn send(
        &self,
        body: &str,
        reason_code: &str,
        reason: &str,
        receive_count: u32,
    ) -> Result<(), AdapterError> {
        let attr = |v: &str| {
            MessageAttributeValue::builder()
                .data_type("String")
                .string_value(v)
                .build()
                .map_err(|e| AdapterError::permanent(e.to_string()))
        };
        self.client
            .send_message()
            .queue_url(&self.queue_url)
            .message_body(body)
            .message_attributes("reason_code", attr(reason_code)?)
            .message_attributes("reason", attr(&truncate(reason, 1000))?)
            .message_attributes("receive_count", attr(&receive_count.to_string())?)
            .send()
            .await
            .map_err(|e| {
                AdapterError::transient(format!(
                    "SendMessage to DLQ: {}",
                    aws_sdk_sqs::error::DisplayErrorContext(e)
                ))
            })?;
        Ok(())
    }
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}
