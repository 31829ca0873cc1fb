//! Compensates each `OversellDetected` (from its SQS queue) and publishes `OversellCompensated`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
