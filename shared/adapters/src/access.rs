//! What each AWS request touches, as IAM sees it: the action it is authorised as and the resource
//! it names. Recorded beside the request counts, so a test can check every call a function makes
//! against that function's policy in template.yaml (the emulator does not enforce IAM).

use serde_json::Value;

/// A resource a request names, by the name the request carries.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Resource {
    Table {
        name: String,
        index: Option<String>,
    },
    Bus(String),
    /// By URL, as SQS requests name queues.
    Queue(String),
    /// By the `SecretId` the request names (a name or an ARN).
    Secret(String),
}

/// One (IAM action, resource) a request needs.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Access {
    pub action: String,
    pub resource: Resource,
}

/// The accesses of one request of `service`'s `operation` with a JSON `body` (every service
/// stockguard calls speaks JSON). A transaction is authorised item by item (`dynamodb:PutItem`,
/// `UpdateItem`, `DeleteItem`, `ConditionCheckItem`, `GetItem`); there is no IAM action for the
/// transaction itself.
pub fn accesses_in(service: &str, operation: &str, body: &[u8]) -> Vec<Access> {
    let json: Value = serde_json::from_slice(body).unwrap_or_default();
    let str_of = |v: &Value| v.as_str().map(str::to_owned);
    let access = |prefix: &str, op: &str, resource: Resource| Access {
        action: format!("{prefix}:{op}"),
        resource,
    };
    match service {
        "DynamoDB" => {
            let table = |v: &Value| {
                str_of(&v["TableName"]).map(|name| Resource::Table {
                    name,
                    index: str_of(&v["IndexName"]),
                })
            };
            match operation {
                "TransactWriteItems" | "TransactGetItems" => json["TransactItems"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|item| {
                        let (kind, inner) = item.as_object()?.iter().next()?;
                        let op = match kind.as_str() {
                            "Put" => "PutItem",
                            "Update" => "UpdateItem",
                            "Delete" => "DeleteItem",
                            "ConditionCheck" => "ConditionCheckItem",
                            "Get" => "GetItem",
                            _ => return None,
                        };
                        Some(access("dynamodb", op, table(inner)?))
                    })
                    .collect(),
                "BatchGetItem" | "BatchWriteItem" => json["RequestItems"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, _)| {
                        let resource = Resource::Table {
                            name: name.clone(),
                            index: None,
                        };
                        access("dynamodb", operation, resource)
                    })
                    .collect(),
                _ => table(&json)
                    .map(|t| access("dynamodb", operation, t))
                    .into_iter()
                    .collect(),
            }
        }
        "EventBridge" => json["Entries"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let bus = str_of(&e["EventBusName"]).unwrap_or_else(|| "default".into());
                access("events", operation, Resource::Bus(bus))
            })
            .collect(),
        "SQS" => str_of(&json["QueueUrl"])
            .map(|url| {
                access(
                    "sqs",
                    operation.trim_end_matches("Batch"),
                    Resource::Queue(url),
                )
            })
            .into_iter()
            .collect(),
        "Secrets Manager" => str_of(&json["SecretId"])
            .map(|id| access("secretsmanager", operation, Resource::Secret(id)))
            .into_iter()
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(name: &str, index: Option<&str>) -> Resource {
        Resource::Table {
            name: name.into(),
            index: index.map(str::to_owned),
        }
    }

    #[test]
    fn a_transaction_is_authorised_item_by_item() {
        let body = br#"{"TransactItems":[{"Put":{"TableName":"t"}},{"Update":{"TableName":"t"}},{"ConditionCheck":{"TableName":"t"}},{"Delete":{"TableName":"t"}}]}"#;
        let actions: Vec<String> = accesses_in("DynamoDB", "TransactWriteItems", body)
            .into_iter()
            .map(|a| a.action)
            .collect();
        assert_eq!(
            actions,
            [
                "dynamodb:PutItem",
                "dynamodb:UpdateItem",
                "dynamodb:ConditionCheckItem",
                "dynamodb:DeleteItem"
            ]
        );
    }

    #[test]
    fn resources_are_read_from_the_request() {
        let q = br#"{"TableName":"t","IndexName":"ActiveIndex"}"#;
        assert_eq!(
            accesses_in("DynamoDB", "Query", q),
            [Access {
                action: "dynamodb:Query".into(),
                resource: table("t", Some("ActiveIndex"))
            }]
        );
        let get = br#"{"RequestItems":{"t":{"Keys":[{}]}}}"#;
        assert_eq!(
            accesses_in("DynamoDB", "BatchGetItem", get)[0].resource,
            table("t", None)
        );
        let put = br#"{"Entries":[{"EventBusName":"b"},{"EventBusName":"b"}]}"#;
        assert_eq!(
            accesses_in("EventBridge", "PutEvents", put)[0].resource,
            Resource::Bus("b".into())
        );
        let send = br#"{"QueueUrl":"http://q/1","Entries":[]}"#;
        assert_eq!(
            accesses_in("SQS", "SendMessageBatch", send)[0].action,
            "sqs:SendMessage"
        );
        let secret = br#"{"SecretId":"stockguard/shopify"}"#;
        assert_eq!(
            accesses_in("Secrets Manager", "GetSecretValue", secret)[0].resource,
            Resource::Secret("stockguard/shopify".into())
        );
    }
}
