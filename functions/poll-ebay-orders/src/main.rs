//! The eBay order poller, invoked by its schedule.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stockguard_handlers::runtime::run_order_poll_function(
        stockguard_handlers::order_polls::PolledChannel::Ebay,
    )
    .await
}
