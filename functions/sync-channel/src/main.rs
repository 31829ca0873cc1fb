//! Channel sync for the channel named by `STOCKGUARD_CHANNEL` (shopify, amazon, walmart, ebay):
//! the four sync functions differ only by that variable, so they share this binary.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
