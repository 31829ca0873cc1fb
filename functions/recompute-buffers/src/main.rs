//! The dynamic-buffer recompute, invoked by its schedule.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::runtime::run_buffer_recompute_function().await
}
