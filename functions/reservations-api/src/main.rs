//! Serves `POST /v1/reservations`, confirm, release and availability for checkouts.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stockguard_handlers::functions::run(env!("CARGO_BIN_NAME")).await
}
