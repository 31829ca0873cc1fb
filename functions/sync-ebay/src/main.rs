//! Channel sync for ebay (the channel named by `STOCKGUARD_CHANNEL`).

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::runtime::run_channel_sync_function().await
}
