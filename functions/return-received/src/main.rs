//! Applies `ReturnReceived` events (SQS batches from the bus rule) to the inventory state.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
