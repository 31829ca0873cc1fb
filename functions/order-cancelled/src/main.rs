//! Applies `OrderCancelled` events (SQS batches from the bus rule) to the inventory state.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::runtime::run_inbound_function("OrderCancelled").await
}
