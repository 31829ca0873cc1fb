//! stockguard's AWS adapters. Every client takes its endpoint from `AWS_ENDPOINT_URL` (or a
//! service's own variable, such as `AWS_ENDPOINT_URL_DYNAMODB`), so the same code runs against the
//! local emulator, LocalStack or AWS.

pub mod access;
pub mod buffer_store;
pub mod channel_store;
pub mod clients;
pub mod compensation_store;
pub mod dead_letters;
pub mod error;
pub mod inventory;
pub mod items;
pub mod memory;
pub mod poll_store;
pub mod publisher;
pub mod request_count;
pub mod store;
pub mod tx;

pub use clients::AwsClients;
pub use dead_letters::DeadLetters;
pub use error::AdapterError;
pub use inventory::{InventoryStore, Publish, Stamp};
pub use memory::{MemoryPublisher, MemoryStore, Read};
pub use publisher::EventPublisher;
pub use request_count::RequestCounter;
pub use store::StateStore;
pub use tx::StateTx;

/// Loads the shared AWS configuration once per cold start.
pub async fn load_aws_config() -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .load()
        .await
}
