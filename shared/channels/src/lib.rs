//! Clients for the sales channels' inventory APIs: push absolute quantities and read back the
//! quantity a channel shows.
//!
//! Every client takes its base URL from its configuration, so the same code talks to the real
//! channel or to the local fakes in `stockguard-fake-channels`. A push answers one
//! [`PushOutcome`] per update, in order, already classified as acknowledged, retryable (throttling,
//! timeouts, 5xx, unreachable) or permanent (bad credentials, unknown listing, rejected value).
//! Throttling is retried inside the client, waiting as long as the channel's own signal says, a
//! bounded number of times.

mod amazon;
mod client;
mod config;
mod ebay;
mod error;
mod http;
mod model;
mod outcomes;
mod rate_limit;
mod shopify;
mod walmart;

pub use amazon::AmazonClient;
pub use client::ChannelClient;
pub use config::{
    AmazonConfig, ChannelConfig, ClientOptions, EbayConfig, Secret, ShopifyConfig, WalmartConfig,
};
pub use ebay::EbayClient;
pub use error::ChannelError;
pub use model::{ChannelKind, Listing, PushOutcome, QuantityUpdate, UnknownChannelKind};
pub use shopify::ShopifyClient;
pub use walmart::{WalmartClient, WalmartOrdersPage};
