//! Compensates each `OversellDetected` (from its SQS queue) and publishes `OversellCompensated`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::runtime::run_compensation_function().await
}
