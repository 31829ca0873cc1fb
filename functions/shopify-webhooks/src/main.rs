//! Serves `POST /v1/webhooks/shopify`: Shopify's order webhooks, verified by their signature and
//! published on the bus as the contract's inbound events.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stockguard_handlers::runtime::run_shopify_webhooks().await
}
