//! Counts the AWS requests each function makes, by service and operation: an SDK interceptor that
//! the local runtime puts on every client of every function. The counts are what one inventory
//! change costs in AWS (requests, DynamoDB items, EventBridge entries), measured, not estimated.
//! It also records what each request touches (IAM action and resource), to prove the policies.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::orchestrator::Metadata;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;

use crate::access::{Access, accesses_in};

/// One (function, service, operation) cell of the count.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct RequestKey {
    pub function: String,
    pub service: String,
    pub operation: String,
}

/// Requests sent (every attempt, as AWS bills them) and the items they carried: transaction or
/// batch items for DynamoDB, entries for `PutEvents` and SQS batches, 1 for a single-item call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub requests: u64,
    pub items: u64,
}

/// Shared by every function's interceptor; [`RequestCounter::tagged`] names the function.
#[derive(Debug, Clone, Default)]
pub struct RequestCounter {
    counts: Arc<Mutex<BTreeMap<RequestKey, Tally>>>,
    /// Every (function, IAM action, resource) seen, for checking the template's policies.
    accesses: Arc<Mutex<BTreeSet<(String, Access)>>>,
}

impl RequestCounter {
    pub fn new() -> Self {
        Self::default()
    }

    /// An interceptor that records under `function`.
    pub fn tagged(&self, function: &str) -> CountRequests {
        CountRequests {
            function: function.to_owned(),
            counter: self.clone(),
        }
    }

    /// Everything counted so far.
    pub fn snapshot(&self) -> BTreeMap<RequestKey, Tally> {
        self.counts.lock().expect("request counts").clone()
    }

    /// Every (function, access) recorded so far.
    pub fn accesses(&self) -> BTreeSet<(String, Access)> {
        self.accesses.lock().expect("accesses").clone()
    }

    fn record(&self, key: RequestKey, items: u64) {
        let mut counts = self.counts.lock().expect("request counts");
        let tally = counts.entry(key).or_default();
        tally.requests += 1;
        tally.items += items;
    }
}

/// What was counted between two snapshots (`later - earlier`), dropping cells that did not move.
pub fn counted_between(
    earlier: &BTreeMap<RequestKey, Tally>,
    later: &BTreeMap<RequestKey, Tally>,
) -> BTreeMap<RequestKey, Tally> {
    later
        .iter()
        .filter_map(|(k, t)| {
            let before = earlier.get(k).copied().unwrap_or_default();
            let delta = Tally {
                requests: t.requests - before.requests,
                items: t.items - before.items,
            };
            (delta.requests > 0).then(|| (k.clone(), delta))
        })
        .collect()
}

#[derive(Debug, Clone)]
pub struct CountRequests {
    function: String,
    counter: RequestCounter,
}

impl Intercept for CountRequests {
    fn name(&self) -> &'static str {
        "CountRequests"
    }

    // Before transmit runs once per attempt: a retried request is billed again, so it counts again.
    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let body = context.request().body().bytes().unwrap_or_default();
        let key = RequestKey {
            function: self.function.clone(),
            service: metadata.service().to_owned(),
            operation: metadata.name().to_owned(),
        };
        let items = items_in(metadata.name(), body);
        let accesses = accesses_in(metadata.service(), metadata.name(), body);
        self.counter.record(key, items);
        let mut seen = self.counter.accesses.lock().expect("accesses");
        seen.extend(accesses.into_iter().map(|a| (self.function.clone(), a)));
        Ok(())
    }
}

/// Items a request carries, read from its JSON body (every service stockguard calls speaks JSON).
fn items_in(operation: &str, body: &[u8]) -> u64 {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let len = |v: &serde_json::Value| v.as_array().map_or(0, |a| a.len() as u64);
    match operation {
        "TransactWriteItems" | "TransactGetItems" => len(&json["TransactItems"]),
        "BatchGetItem" => json["RequestItems"]
            .as_object()
            .map_or(0, |tables| tables.values().map(|t| len(&t["Keys"])).sum()),
        "BatchWriteItem" => json["RequestItems"]
            .as_object()
            .map_or(0, |tables| tables.values().map(len).sum()),
        "PutEvents"
        | "SendMessageBatch"
        | "DeleteMessageBatch"
        | "ChangeMessageVisibilityBatch" => len(&json["Entries"]),
        _ => 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn items_are_read_from_the_request_body() {
        let tx = br#"{"TransactItems":[{"Put":{}},{"Update":{}},{"ConditionCheck":{}}]}"#;
        assert_eq!(items_in("TransactWriteItems", tx), 3);
        let get = br#"{"RequestItems":{"t":{"Keys":[{},{}]},"u":{"Keys":[{}]}}}"#;
        assert_eq!(items_in("BatchGetItem", get), 3);
        assert_eq!(items_in("PutEvents", br#"{"Entries":[{},{}]}"#), 2);
        assert_eq!(items_in("UpdateItem", br#"{"Key":{}}"#), 1);
    }

    #[test]
    fn counts_between_snapshots_drop_what_did_not_move() {
        let counter = RequestCounter::new();
        let key = |op: &str| RequestKey {
            function: "F".into(),
            service: "DynamoDB".into(),
            operation: op.into(),
        };
        counter.record(key("GetItem"), 1);
        let earlier = counter.snapshot();
        counter.record(key("UpdateItem"), 1);
        counter.record(key("UpdateItem"), 1);
        let delta = counted_between(&earlier, &counter.snapshot());
        assert_eq!(delta.len(), 1);
        assert_eq!(
            delta[&key("UpdateItem")],
            Tally {
                requests: 2,
                items: 2
            }
        );
    }
}
