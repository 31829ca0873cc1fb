//! Serves `POST /v1/webhooks/shopify`: Shopify's order webhooks, verified by their signature and
//! published on the bus as the contract's inbound events.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
