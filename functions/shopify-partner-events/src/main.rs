//! Applies Shopify's order webhooks from its EventBridge partner event source, queued by a rule
//! on the partner bus, exactly as the HTTP webhook maps them.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
