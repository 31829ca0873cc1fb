//! Fake Walmart Marketplace: client-credentials tokens and the single-SKU inventory API.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post, put};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::gate::{Gate, admit, admit_without_faults, json_response, random_hex, timed_out};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/v3/token", post(issue_token))
        .route("/v3/inventory", put(put_inventory).get(get_inventory))
        .route("/v3/orders", get(get_orders))
        .route("/v3/orders/{purchase_order_id}", get(get_order))
        .route("/v3/orders/{purchase_order_id}/cancel", post(cancel_order))
}

fn errors(
    status: StatusCode,
    code: &str,
    message: impl Into<String>,
    category: &str,
    field: &str,
) -> Response {
    json_response(
        status,
        json!({"errors": [{
            "code": code,
            "message": message.into(),
            "category": category,
            "severity": "ERROR",
            "field": field,
        }]}),
    )
}

fn unauthorized(message: &str) -> Response {
    errors(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED.GMP_GATEWAY_API",
        message,
        "DATA",
        "UNAUTHORIZED",
    )
}

/// Token requests are counted and delayed but exempt from injected faults, so that faults land
/// on the inventory calls a test is about.
async fn issue_token(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    admit_without_faults(&shared).await;
    let expected = format!(
        "Basic {}",
        BASE64.encode(format!(
            "{}:{}",
            shared.credentials.walmart_client_id, shared.credentials.walmart_client_secret
        ))
    );
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if presented != Some(expected.as_str()) {
        shared.with(|state| state.stats.unauthorized += 1);
        return unauthorized("Invalid client id or client secret");
    }
    let form = String::from_utf8_lossy(&body);
    if !form
        .split('&')
        .any(|pair| pair == "grant_type=client_credentials")
    {
        return errors(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_CONTENT.GMP_GATEWAY_API",
            "grant_type must be client_credentials",
            "REQUEST",
            "grant_type",
        );
    }
    let now = Instant::now();
    let token = format!("wm-{}", random_hex());
    let ttl = shared.with(|state| {
        let ttl = state.settings.walmart_token_ttl_secs;
        state.walmart_tokens.retain(|_, expires| *expires > now);
        let expires = now.checked_add(Duration::from_secs(ttl)).unwrap_or(now);
        state.walmart_tokens.insert(token.clone(), expires);
        state.stats.token_calls += 1;
        ttl
    });
    json_response(
        StatusCode::OK,
        json!({"access_token": token, "token_type": "Bearer", "expires_in": ttl}),
    )
}

async fn guard(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    let now = Instant::now();
    let token = headers
        .get("wm_sec.access_token")
        .and_then(|v| v.to_str().ok());
    let valid = token.is_some_and(|token| {
        shared.with(|state| {
            state
                .walmart_tokens
                .get(token)
                .is_some_and(|expires| *expires > now)
        })
    });
    match admit(shared, valid).await {
        Gate::Proceed => {}
        Gate::Unauthorized => return Err(unauthorized("Unauthorized token or expired token")),
        Gate::TimedOut => return Err(timed_out()),
        Gate::ServerError => {
            return Err(errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                "SYSTEM_ERROR.GMP_INVENTORY_API",
                "Something went wrong on our side",
                "SYSTEM",
                "",
            ));
        }
        Gate::Throttled => {
            let retry_after = shared.settings().walmart_retry_after_secs;
            let mut response = errors(
                StatusCode::TOO_MANY_REQUESTS,
                "REQUEST_THRESHOLD_VIOLATED.GMP_GATEWAY_API",
                "Too many requests",
                "REQUEST",
                "",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(retry_after));
            return Err(response);
        }
    }
    for required in ["wm_qos.correlation_id", "wm_svc.name"] {
        if headers.get(required).is_none_or(|v| v.is_empty()) {
            return Err(errors(
                StatusCode::BAD_REQUEST,
                "INVALID_REQUEST_HEADER.GMP_GATEWAY_API",
                format!("Missing required header {}", required.to_uppercase()),
                "REQUEST",
                &required.to_uppercase(),
            ));
        }
    }
    Ok(())
}

fn sku_of(query: &HashMap<String, String>) -> Option<String> {
    query.get("sku").filter(|sku| !sku.is_empty()).cloned()
}

fn missing_sku() -> Response {
    errors(
        StatusCode::BAD_REQUEST,
        "INVALID_REQUEST_PARAM.GMP_INVENTORY_API",
        "Query parameter sku is required",
        "REQUEST",
        "sku",
    )
}

fn not_found(sku: &str) -> Response {
    errors(
        StatusCode::NOT_FOUND,
        "CONTENT_NOT_FOUND.GMP_INVENTORY_API",
        format!("Requested content could not be found. SKU: {sku}"),
        "REQUEST",
        "sku",
    )
}

fn inventory(sku: &str, amount: i64) -> Value {
    json!({"sku": sku, "quantity": {"unit": "EACH", "amount": amount}})
}

/// The amount of a `{"sku", "quantity": {"unit": "EACH", "amount"}}` body for `sku`.
fn amount(body: &Value, sku: &str) -> Result<i64, (String, &'static str)> {
    if body.get("sku").and_then(Value::as_str) != Some(sku) {
        return Err((
            "The sku in the body must match the sku parameter".into(),
            "sku",
        ));
    }
    if body.pointer("/quantity/unit").and_then(Value::as_str) != Some("EACH") {
        return Err(("quantity.unit must be EACH".into(), "quantity.unit"));
    }
    match body.pointer("/quantity/amount").and_then(Value::as_i64) {
        Some(amount) if amount >= 0 => Ok(amount),
        _ => Err((
            "quantity.amount must be a whole number, zero or more".into(),
            "quantity.amount",
        )),
    }
}

async fn put_inventory(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let Some(sku) = sku_of(&query) else {
        return missing_sku();
    };
    let parsed = serde_json::from_slice::<Value>(&body)
        .map_err(|e| (format!("The body is not JSON: {e}"), ""))
        .and_then(|body| amount(&body, &sku));
    let now = Instant::now();
    let known = shared.with(|state| {
        state.stats.push_calls += 1;
        match &parsed {
            Err(_) => {
                state.stats.items_rejected += 1;
                true
            }
            Ok(_) if !state.accepts(&sku) => {
                state.stats.items_rejected += 1;
                false
            }
            Ok(amount) => {
                state.push_quantity(&sku, *amount, Duration::ZERO, now);
                true
            }
        }
    });
    match parsed {
        Err((message, field)) => errors(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_CONTENT.GMP_INVENTORY_API",
            message,
            "DATA",
            field,
        ),
        Ok(_) if !known => not_found(&sku),
        Ok(amount) => json_response(StatusCode::OK, inventory(&sku, amount)),
    }
}

async fn get_inventory(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let Some(sku) = sku_of(&query) else {
        return missing_sku();
    };
    let now = Instant::now();
    let shown = shared.with(|state| {
        state.stats.read_calls += 1;
        state.shown(&sku, now)
    });
    match shown {
        Some(amount) => json_response(StatusCode::OK, inventory(&sku, amount)),
        None => not_found(&sku),
    }
}

/// `GET /v3/orders`: a page of the seller's orders (see [`crate::market_orders`]).
async fn get_orders(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let (garbled, page) = shared.with(|state| {
        (
            state.settings.orders_page_garbled,
            crate::market_orders::walmart_page(state, &query),
        )
    });
    if garbled {
        let mut response = Response::new(crate::market_orders::GARBLED.into());
        response
            .headers_mut()
            .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
        return response;
    }
    json_response(StatusCode::OK, page)
}

/// `GET /v3/orders/{purchaseOrderId}`: one order.
async fn get_order(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    match shared.with(|state| crate::market_orders::walmart_order_by_id(state, &id)) {
        Some(order) => json_response(StatusCode::OK, order),
        None => errors(
            StatusCode::NOT_FOUND,
            "CONTENT_NOT_FOUND.GMP_ORDER_API",
            format!("Purchase order {id} not found"),
            "DATA",
            "purchaseOrderId",
        ),
    }
}

/// `POST /v3/orders/{purchaseOrderId}/cancel`: the seller cancels the order's lines.
async fn cancel_order(
    State(shared): State<Arc<Shared>>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let result = serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("The body is not JSON: {e}"))
        .and_then(|body| {
            shared.with(|state| crate::market_orders::cancel_by_seller(state, &id, &body))
        });
    match result {
        Ok(order) => json_response(StatusCode::OK, order),
        Err(why) => errors(
            StatusCode::BAD_REQUEST,
            "INVALID_REQUEST_CONTENT.GMP_ORDER_API",
            why,
            "DATA",
            "orderCancellation",
        ),
    }
}
