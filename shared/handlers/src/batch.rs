//! One SQS batch of EventBridge events for one inbound detail-type, answered with partial batch
//! failures. Records are applied in order; once a record fails, later records of the same SKU or
//! reservation in the batch are left for the retry too, so their relative order holds.

use std::collections::HashSet;
use std::panic::AssertUnwindSafe;

use aws_lambda_events::event::eventbridge::EventBridgeEvent;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use futures::FutureExt;
use serde_json::Value;
use stockguard_domain::InvalidInput;

use crate::apply::apply_inbound;
use crate::deps::Deps;
use crate::error::ApplyError;

pub async fn handle_batch(deps: &Deps, detail_type: &str, event: SqsEvent) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    let mut blocked_keys: HashSet<String> = HashSet::new();
    for record in event.records {
        let message_id = record.message_id.clone().unwrap_or_default();
        let envelope = parse_body(record.body.as_deref());
        let keys = ordering_keys(envelope.as_ref().ok());
        if keys.iter().any(|k| blocked_keys.contains(k)) {
            tracing::info!(
                message_id,
                "an earlier record of the same key failed; kept for the retry"
            );
            response.batch_item_failures.push(failure(&message_id));
            continue;
        }
        let result = AssertUnwindSafe(apply_record(deps, detail_type, &envelope))
            .catch_unwind()
            .await
            .unwrap_or_else(|_| Err(ApplyError::Transient("the handler panicked".into())));
        match result {
            Ok(applied) => tracing::info!(message_id, ?applied, "record applied"),
            Err(error) => {
                if !dispose_of_failure(deps, &record, &error).await {
                    response.batch_item_failures.push(failure(&message_id));
                    blocked_keys.extend(keys);
                }
            }
        }
    }
    response
}

fn failure(message_id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = message_id.to_owned();
    f
}

async fn apply_record(
    deps: &Deps,
    expected: &str,
    envelope: &Result<BusEvent, InvalidInput>,
) -> Result<crate::Applied, ApplyError> {
    let inbound = read_envelope(envelope, expected)?;
    apply_inbound(deps, inbound.source, inbound.detail_type, inbound.detail).await
}

/// What a function reads from the EventBridge event an SQS message carries.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Envelope<'a> {
    pub source: &'a str,
    pub detail_type: &'a str,
    /// `null` when the event has none; the detail's own validation rejects it.
    pub detail: &'a Value,
}

/// The EventBridge event an SQS message carries. Its detail stays JSON here: each detail-type's
/// own validation reads it (a missing detail reads as `null`, which that validation rejects).
pub type BusEvent = EventBridgeEvent<Option<Value>>;

/// Parses an SQS message body as the EventBridge event it should carry. A body that is not one
/// is refused as `malformed_envelope`, naming what is missing.
pub fn parse_body(body: Option<&str>) -> Result<BusEvent, InvalidInput> {
    let malformed =
        |field: &str, message: String| InvalidInput::new("malformed_envelope", field, message);
    let json: Value = body
        .and_then(|b| serde_json::from_str(b).ok())
        .ok_or_else(|| {
            malformed(
                "body",
                "the message body is not an EventBridge event in JSON".into(),
            )
        })?;
    // The two fields every function reads are named when they are missing.
    if !json["source"].is_string() {
        return Err(malformed("source", "the event has no source".into()));
    }
    if !json["detail-type"].is_string() {
        return Err(malformed(
            "detail-type",
            "the event has no detail-type".into(),
        ));
    }
    serde_json::from_value(json).map_err(|e| {
        malformed(
            "body",
            format!("the message body is not an EventBridge event: {e}"),
        )
    })
}

/// Checks the event (parsed by [`parse_body`]) is an inbound one for the function applying
/// `expected`: it has a source that is not stockguard's own and the expected detail-type.
pub fn read_envelope<'a>(
    envelope: &'a Result<BusEvent, InvalidInput>,
    expected: &str,
) -> Result<Envelope<'a>, InvalidInput> {
    let envelope = envelope.as_ref().map_err(Clone::clone)?;
    let source = envelope.source.as_str();
    let detail_type = envelope.detail_type.as_str();
    if source.starts_with("stockguard.") {
        return Err(InvalidInput::new(
            "own_event",
            "source",
            "stockguard's own events are never applied as inbound commands",
        ));
    }
    if detail_type != expected {
        return Err(InvalidInput::new(
            "misrouted",
            "detail-type",
            format!("this function applies {expected}, not {detail_type}"),
        ));
    }
    static NO_DETAIL: Value = Value::Null;
    Ok(Envelope {
        source,
        detail_type,
        detail: envelope.detail.as_ref().unwrap_or(&NO_DETAIL),
    })
}

/// How many times SQS has delivered the record, this time included (1 when it does not say).
pub(crate) fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
}

/// Sends a failed record to the dead-letter queue when it is permanent or out of retries.
/// Returns whether it was disposed of (and so counts as handled).
async fn dispose_of_failure(deps: &Deps, record: &SqsMessage, error: &ApplyError) -> bool {
    let message_id = record.message_id.as_deref().unwrap_or_default();
    let receive_count = receive_count(record);
    let out_of_retries = receive_count >= deps.settings.retry_budget;
    if error.is_retryable() && !out_of_retries {
        tracing::warn!(message_id, receive_count, reason = error.code(), %error, "retryable failure; will be retried");
        return false;
    }
    let Some(dlq) = &deps.dead_letters else {
        tracing::error!(message_id, reason = error.code(), %error, "no dead-letter queue configured; leaving it to the queue's redrive");
        return false;
    };
    let body = record.body.as_deref().unwrap_or_default();
    match dlq
        .send(body, error.code(), &error.to_string(), receive_count)
        .await
    {
        Ok(()) => {
            tracing::error!(message_id, receive_count, reason = error.code(), %error, "dead-lettered");
            true
        }
        Err(e) => {
            tracing::error!(message_id, error = %e, "could not dead-letter; will be retried");
            false
        }
    }
}

/// The keys whose order a record must keep: its SKUs and its reservation or order.
pub fn ordering_keys(envelope: Option<&BusEvent>) -> Vec<String> {
    let Some(detail) = envelope.and_then(|e| e.detail.as_ref()) else {
        return Vec::new();
    };
    let mut keys = Vec::new();
    if let Some(s) = detail["sku"].as_str() {
        keys.push(format!("sku:{s}"));
    }
    for line in detail["lines"].as_array().into_iter().flatten() {
        if let Some(s) = line["sku"].as_str() {
            keys.push(format!("sku:{s}"));
        }
    }
    for (field, prefix) in [("reservation_id", "res"), ("order_id", "order")] {
        if let Some(id) = detail[field].as_str() {
            keys.push(format!("{prefix}:{id}"));
        }
    }
    keys
}
