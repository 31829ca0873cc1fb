//! What every channel API request meets before its handler: counting, latency, authentication
//! and the injected faults.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use crate::state::Shared;

pub(crate) enum Gate {
    Proceed,
    Unauthorized,
    /// The request hung and its client has given up; any answer will do.
    TimedOut,
    ServerError,
    Throttled,
}

pub(crate) async fn admit(shared: &Shared, authorized: bool) -> Gate {
    let settings = shared.with(|state| {
        state.stats.requests += 1;
        state.settings.clone()
    });
    if settings.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(settings.latency_ms)).await;
    }
    if !authorized {
        shared.with(|state| state.stats.unauthorized += 1);
        return Gate::Unauthorized;
    }
    if happens(settings.timeout_rate) {
        shared.with(|state| state.stats.timeouts += 1);
        hang(shared, Duration::from_millis(settings.timeout_hang_ms)).await;
        return Gate::TimedOut;
    }
    if happens(settings.error_rate) {
        shared.with(|state| state.stats.server_errors += 1);
        return Gate::ServerError;
    }
    if happens(settings.throttle_rate) {
        shared.with(|state| state.stats.throttled += 1);
        return Gate::Throttled;
    }
    Gate::Proceed
}

/// Counts and delays a request that is exempt from authentication and faults (token requests).
pub(crate) async fn admit_without_faults(shared: &Shared) {
    let latency_ms = shared.with(|state| {
        state.stats.requests += 1;
        state.settings.latency_ms
    });
    if latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(latency_ms)).await;
    }
}

fn happens(rate: f64) -> bool {
    rate > 0.0 && rand::random::<f64>() < rate
}

/// Sleeps for `duration`, or until the fake is stopped.
async fn hang(shared: &Shared, duration: Duration) {
    let mut stopping = shared.stopping.clone();
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        _ = stopping.wait_for(|stop| *stop) => {}
    }
}

pub(crate) fn json_response(status: StatusCode, body: Value) -> Response {
    (status, Json(body)).into_response()
}

pub(crate) fn timed_out() -> Response {
    StatusCode::GATEWAY_TIMEOUT.into_response()
}

/// A random hex id, for submission ids, tokens and events.
pub(crate) fn random_hex() -> String {
    format!("{:032x}", rand::random::<u128>())
}
