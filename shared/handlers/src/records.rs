//! The retry-then-dead-letter loop of the functions that read a queue of messages which are not
//! contract events (Amazon's notifications, Shopify's partner events, oversells to compensate):
//! each record is handled on its own; one that can never be handled is dead-lettered at once with
//! its reason, one that may succeed later is retried until its delivery count reaches the retry
//! budget and then dead-lettered as `retries_exhausted`. A record that cannot be dead-lettered is
//! left on the queue, whose redrive keeps it.

use std::future::Future;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};

use crate::deps::Deps;

/// Why a record was not handled.
#[derive(Debug)]
pub enum RecordFailure {
    /// It can never be handled (unreadable, not what the function takes).
    Invalid(String),
    /// The table, the bus or a channel failed: another delivery may succeed.
    Retry(String),
}

/// Handles every record of `event` with `handle`. `invalid_code` is the dead-letter reason of
/// an invalid record; `what` names the records in the logs.
pub async fn handle_records<F, Fut>(
    deps: &Deps,
    event: SqsEvent,
    invalid_code: &str,
    what: &str,
    handle: F,
) -> SqsBatchResponse
where
    F: Fn(SqsMessage) -> Fut,
    Fut: Future<Output = Result<(), RecordFailure>>,
{
    let mut response = SqsBatchResponse::default();
    for record in event.records {
        let id = record.message_id.clone().unwrap_or_default();
        let count = receive_count(&record);
        let body = record.body.clone().unwrap_or_default();
        let (code, why) = match handle(record).await {
            Ok(()) => continue,
            Err(RecordFailure::Invalid(why)) => (invalid_code, why),
            Err(RecordFailure::Retry(why)) if count < deps.settings.retry_budget => {
                tracing::warn!(message_id = id, count, error = %why, "{what} not handled; retried");
                response.batch_item_failures.push(failure(&id));
                continue;
            }
            Err(RecordFailure::Retry(why)) => ("retries_exhausted", why),
        };
        tracing::error!(message_id = id, reason = code, error = %why, "{what} dead-lettered");
        let sent = match &deps.dead_letters {
            Some(dlq) => dlq.send(&body, code, &why, count).await.is_ok(),
            None => false,
        };
        if !sent {
            response.batch_item_failures.push(failure(&id));
        }
    }
    response
}

/// How often SQS has delivered the record, this delivery included.
pub fn receive_count(record: &SqsMessage) -> u32 {
    record
        .attributes
        .get("ApproximateReceiveCount")
        .and_then(|c| c.parse().ok())
        .unwrap_or(1)
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}
