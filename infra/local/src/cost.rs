//! What stockguard's event path costs on AWS, from the requests the local runtime counted and the
//! handler time it measured, at list prices. `docs/cost.md` gives the same formula for a seller's
//! own volumes.

use std::collections::BTreeMap;
use std::time::Duration;

use stockguard_adapters::request_count::{RequestKey, Tally};

/// us-east-1 on-demand list prices in dollars (free tiers ignored).
pub mod price {
    /// DynamoDB on-demand, per write request unit (1 KB; 2 units per transactional item).
    pub const DYNAMODB_WRITE_UNIT: f64 = 0.625 / 1e6;
    /// DynamoDB on-demand, per read request unit (4 KB strongly consistent; 2 per transactional).
    pub const DYNAMODB_READ_UNIT: f64 = 0.125 / 1e6;
    /// EventBridge, per custom event published (64 KB chunk); rule delivery is free.
    pub const EVENTBRIDGE_EVENT: f64 = 1.0 / 1e6;
    /// SQS standard queue, per request (64 KB chunk).
    pub const SQS_REQUEST: f64 = 0.40 / 1e6;
    /// Lambda, per invocation.
    pub const LAMBDA_REQUEST: f64 = 0.20 / 1e6;
    /// Lambda arm64, per GB-second.
    pub const LAMBDA_ARM64_GB_SECOND: f64 = 0.000_013_333_4;
    /// API Gateway HTTP API, per request.
    pub const HTTP_API_REQUEST: f64 = 1.0 / 1e6;
    /// Secrets Manager, per API call.
    pub const SECRETS_MANAGER_CALL: f64 = 0.05 / 10_000.0;
}

/// Billable units, summed over some number of inventory changes.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    pub dynamodb_write_units: f64,
    pub dynamodb_read_units: f64,
    pub eventbridge_events: f64,
    pub sqs_requests: f64,
    pub secrets_calls: f64,
    pub lambda_invocations: f64,
    pub lambda_gb_seconds: f64,
    pub http_api_requests: f64,
}

impl Usage {
    /// The units behind counted requests. DynamoDB units assume items of at most 1 KB (stockguard's
    /// positions, holds and idempotency records are a few hundred bytes) and strongly consistent
    /// reads, which is what the state store asks for. Every message a rule delivers to a queue is an
    /// SQS request made by EventBridge, outside the functions' clients: it is counted from the
    /// deletes that acknowledge it.
    pub fn from_requests(requests: &BTreeMap<RequestKey, Tally>) -> Self {
        let mut u = Usage::default();
        for (key, t) in requests {
            let (requests, items) = (t.requests as f64, t.items as f64);
            match (key.service.as_str(), key.operation.as_str()) {
                ("DynamoDB", "TransactWriteItems") => u.dynamodb_write_units += 2.0 * items,
                ("DynamoDB", "TransactGetItems") => u.dynamodb_read_units += 2.0 * items,
                ("DynamoDB", "PutItem" | "UpdateItem" | "DeleteItem" | "BatchWriteItem") => {
                    u.dynamodb_write_units += items
                }
                ("DynamoDB", "GetItem" | "BatchGetItem" | "Query" | "Scan") => {
                    u.dynamodb_read_units += items
                }
                ("EventBridge", "PutEvents") => u.eventbridge_events += items,
                ("SQS", op) => {
                    u.sqs_requests += requests;
                    if op == "DeleteMessageBatch" || op == "DeleteMessage" {
                        u.sqs_requests += items;
                    }
                }
                ("Secrets Manager", _) => u.secrets_calls += requests,
                _ => {}
            }
        }
        u
    }

    /// Adds Lambda invocations that ran for `busy` in all, at `memory_mb`.
    pub fn with_lambda(mut self, invocations: u64, busy: Duration, memory_mb: u32) -> Self {
        self.lambda_invocations += invocations as f64;
        self.lambda_gb_seconds += busy.as_secs_f64() * f64::from(memory_mb) / 1024.0;
        self
    }

    pub fn dollars(&self) -> f64 {
        self.dynamodb_write_units * price::DYNAMODB_WRITE_UNIT
            + self.dynamodb_read_units * price::DYNAMODB_READ_UNIT
            + self.eventbridge_events * price::EVENTBRIDGE_EVENT
            + self.sqs_requests * price::SQS_REQUEST
            + self.secrets_calls * price::SECRETS_MANAGER_CALL
            + self.lambda_invocations * price::LAMBDA_REQUEST
            + self.lambda_gb_seconds * price::LAMBDA_ARM64_GB_SECOND
            + self.http_api_requests * price::HTTP_API_REQUEST
    }

    /// The same usage for each of `n` changes, scaled to a million.
    pub fn per_million(&self, n: usize) -> Self {
        let k = 1e6 / n.max(1) as f64;
        Usage {
            dynamodb_write_units: self.dynamodb_write_units * k,
            dynamodb_read_units: self.dynamodb_read_units * k,
            eventbridge_events: self.eventbridge_events * k,
            sqs_requests: self.sqs_requests * k,
            secrets_calls: self.secrets_calls * k,
            lambda_invocations: self.lambda_invocations * k,
            lambda_gb_seconds: self.lambda_gb_seconds * k,
            http_api_requests: self.http_api_requests * k,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(service: &str, operation: &str) -> RequestKey {
        RequestKey {
            function: "F".into(),
            service: service.into(),
            operation: operation.into(),
        }
    }

    #[test]
    fn transactional_items_cost_two_units_and_deliveries_count_as_sqs_requests() {
        let counted = BTreeMap::from([
            (
                key("DynamoDB", "TransactWriteItems"),
                Tally {
                    requests: 1,
                    items: 3,
                },
            ),
            (
                key("DynamoDB", "GetItem"),
                Tally {
                    requests: 2,
                    items: 2,
                },
            ),
            (
                key("EventBridge", "PutEvents"),
                Tally {
                    requests: 1,
                    items: 4,
                },
            ),
            (
                key("SQS", "ReceiveMessage"),
                Tally {
                    requests: 1,
                    items: 1,
                },
            ),
            (
                key("SQS", "DeleteMessageBatch"),
                Tally {
                    requests: 1,
                    items: 5,
                },
            ),
        ]);
        let u = Usage::from_requests(&counted).with_lambda(1, Duration::from_millis(500), 512);
        assert_eq!(u.dynamodb_write_units, 6.0);
        assert_eq!(u.dynamodb_read_units, 2.0);
        assert_eq!(u.eventbridge_events, 4.0);
        assert_eq!(u.sqs_requests, 1.0 + 1.0 + 5.0);
        assert_eq!(u.lambda_gb_seconds, 0.25);
        let expected = 6.0 * price::DYNAMODB_WRITE_UNIT
            + 2.0 * price::DYNAMODB_READ_UNIT
            + 4.0 * price::EVENTBRIDGE_EVENT
            + 7.0 * price::SQS_REQUEST
            + price::LAMBDA_REQUEST
            + 0.25 * price::LAMBDA_ARM64_GB_SECOND;
        assert!((u.dollars() - expected).abs() < 1e-12);
        assert!((u.per_million(2).dollars() - expected * 500_000.0).abs() < 1e-6);
    }
}
