//! Channel reconciliation, invoked by its schedule.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::runtime::run_reconcile_function().await
}
