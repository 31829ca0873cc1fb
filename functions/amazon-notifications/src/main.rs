//! Applies Amazon's SP-API notifications from their SQS queue: orders become inbound events,
//! quantity changes measure Amazon's delay.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
