//! The AWS clients of one function, built once per cold start from one SDK configuration. Locally
//! each function's clients also carry a request-counting interceptor tagged with its name.

use aws_smithy_runtime_api::client::interceptors::SharedInterceptor;

pub use aws_sdk_secretsmanager::Client as SecretsClient;

use crate::dead_letters::SqsClient;
use crate::publisher::EventBridgeClient;
use crate::store::DynamoClient;

#[derive(Clone, Debug)]
pub struct AwsClients {
    pub dynamodb: DynamoClient,
    pub eventbridge: EventBridgeClient,
    pub sqs: SqsClient,
    pub secrets: SecretsClient,
}

impl AwsClients {
    pub fn new(config: &aws_config::SdkConfig) -> Self {
        Self::with_interceptors(config, &[])
    }

    /// Clients that run `interceptors` on every request (the SDK attaches them per client).
    pub fn with_interceptors(
        config: &aws_config::SdkConfig,
        interceptors: &[SharedInterceptor],
    ) -> Self {
        macro_rules! client {
            ($sdk:ident) => {{
                let mut builder = $sdk::config::Builder::from(config);
                for i in interceptors {
                    builder.push_interceptor(i.clone());
                }
                $sdk::Client::from_conf(builder.build())
            }};
        }
        Self {
            dynamodb: client!(aws_sdk_dynamodb),
            eventbridge: client!(aws_sdk_eventbridge),
            sqs: client!(aws_sdk_sqs),
            secrets: client!(aws_sdk_secretsmanager),
        }
    }
}
