//! Serves `POST /v1/reservations`, confirm, release and availability for checkouts.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    stockguard_handlers::runtime::run_reservations_api().await
}
