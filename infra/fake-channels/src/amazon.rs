//! Fake Amazon SP-API Listings Items 2021-08-01: PATCH of `fulfillment_availability`, accepted at
//! once and shown after the processing delay; GET with `includedData=fulfillmentAvailability`.
//! Each operation has its own 5 requests/s, burst 5 limit, as on SP-API. The Orders API
//! v2026-01-01: getOrder (the order with all its items; its own published limit, 0.5 requests/s,
//! burst 30) and cancelOrder (1 request/s, burst 5). The Orders API v0 (getOrderItems among it),
//! which Amazon removes on 2027-03-27, is not served: its paths answer this server's bare 404.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use axum::routing::patch;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::gate::{Gate, admit, json_response, random_hex, timed_out};
use crate::orders::AmazonCancel;
use crate::settings::FakeSettings;
use crate::state::{
    AMAZON_CANCEL_BURST, AMAZON_CANCEL_PER_SECOND, AMAZON_GET_ORDER_BURST,
    AMAZON_GET_ORDER_PER_SECOND, Shared,
};

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/listings/2021-08-01/items/{seller_id}/{sku}",
            patch(patch_listing).get(get_listing),
        )
        .route(
            "/orders/2026-01-01/orders/{order_id}",
            axum::routing::get(get_order),
        )
        .route(
            "/orders/2026-01-01/orders/{order_id}/cancellation",
            axum::routing::put(cancel_order),
        )
}

/// cancelOrder's `cancelReasonCode` values.
const CANCEL_REASONS: [&str; 5] = [
    "NO_INVENTORY",
    "BUYER_CANCELLED",
    "SHIPPING_ADDRESS_UNDELIVERABLE",
    "CUSTOMER_EXCHANGE",
    "PRICING_ERROR",
];

/// getOrder's `includedData` values (the datasets it can add to an order).
const INCLUDED_DATA: [&str; 11] = [
    "BUYER",
    "RECIPIENT",
    "PROCEEDS",
    "EXPENSE",
    "PROMOTION",
    "CANCELLATION",
    "FULFILLMENT",
    "PACKAGES",
    "TAX",
    "PAYMENT",
    "FULFILLMENT_ORDERS",
];

/// The datasets a getOrder asks for, comma-separated or repeated, each one of Amazon's values.
fn included_data(query: &[(String, String)]) -> Result<Vec<&str>, String> {
    let mut included = Vec::new();
    for (_, value) in query.iter().filter(|(name, _)| name == "includedData") {
        for part in value.split(',') {
            if !INCLUDED_DATA.contains(&part) {
                return Err(format!(
                    "includedData {part:?} is not one of {}",
                    INCLUDED_DATA.join(", ")
                ));
            }
            included.push(part);
        }
    }
    Ok(included)
}

/// The refusal of an order id that is not in Amazon's 3-7-7 digit form, in Amazon's words.
fn malformed_order_id(order_id: &str) -> Option<Response> {
    let parts: Vec<&str> = order_id.split('-').collect();
    let well_formed = parts.len() == 3
        && parts
            .iter()
            .zip([3, 7, 7])
            .all(|(p, n)| p.len() == n && p.bytes().all(|b| b.is_ascii_digit()));
    (!well_formed).then(|| {
        errors(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("OrderId: {order_id} is invalid, should be in 3-7-7 format."),
        )
    })
}

/// Orders API v2026-01-01 getOrder: the order with all its items; `includedData=FULFILLMENT` adds
/// its fulfillment status. A value that is not one of the datasets is refused with a 400.
async fn get_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    if let Err(refused) = guard(&shared, &headers, Operation::GetOrder).await {
        return refused;
    }
    if let Some(refused) = malformed_order_id(&order_id) {
        return refused;
    }
    let included = match included_data(&query) {
        Ok(included) => included,
        Err(why) => return errors(StatusCode::BAD_REQUEST, "InvalidInput", why),
    };
    let with_fulfillment = included.contains(&"FULFILLMENT");
    match crate::orders::amazon_order_2026(&shared, &order_id, with_fulfillment) {
        Some(order) => json_response(StatusCode::OK, order),
        None => errors(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Order {order_id} was not found."),
        ),
    }
}

/// The reason of a cancelOrder body, checked as SP-API checks it.
fn cancel_reason(body: &[u8]) -> Result<(), String> {
    let body: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let reason = body
        .get("cancelReasonCode")
        .ok_or("cancelReasonCode is required")?
        .as_str()
        .ok_or("cancelReasonCode must be a string")?;
    if !CANCEL_REASONS.contains(&reason) {
        return Err(format!(
            "cancelReasonCode {reason:?} is not one of {}",
            CANCEL_REASONS.join(", ")
        ));
    }
    Ok(())
}

/// Orders API v2026-01-01 cancelOrder: the whole order is cancelled, answered 202 with no body,
/// and Amazon's `ORDER_CHANGE` with status `Canceled` is sent. Amazon does not say how it answers
/// for an order cancelled already; this fake refuses it with a 400.
async fn cancel_order(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Path(order_id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(refused) = guard(&shared, &headers, Operation::Cancel).await {
        return refused;
    }
    if let Some(refused) = malformed_order_id(&order_id) {
        return refused;
    }
    if let Err(why) = cancel_reason(&body) {
        return errors(StatusCode::BAD_REQUEST, "InvalidInput", why);
    }
    match crate::orders::cancel_amazon(&shared, &order_id) {
        AmazonCancel::Cancelled => json_response(StatusCode::ACCEPTED, json!({})),
        AmazonCancel::AlreadyCancelled => errors(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            format!("Order {order_id} is already canceled."),
        ),
        AmazonCancel::Unknown => errors(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Order {order_id} was not found."),
        ),
    }
}

#[derive(Clone, Copy)]
enum Operation {
    Patch,
    Get,
    GetOrder,
    Cancel,
}

impl Operation {
    /// The operation's rate (requests a second) and burst.
    fn limit(self, settings: &FakeSettings) -> (f64, f64) {
        match self {
            Operation::Patch | Operation::Get => {
                (settings.amazon_requests_per_second, settings.amazon_burst)
            }
            Operation::GetOrder => (AMAZON_GET_ORDER_PER_SECOND, AMAZON_GET_ORDER_BURST),
            Operation::Cancel => (AMAZON_CANCEL_PER_SECOND, AMAZON_CANCEL_BURST),
        }
    }
}

fn errors(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    json_response(
        status,
        json!({"errors": [{"code": code, "message": message.into(), "details": ""}]}),
    )
}

fn quota_exceeded(rate: f64) -> Response {
    let mut response = errors(
        StatusCode::TOO_MANY_REQUESTS,
        "QuotaExceeded",
        "You exceeded your quota for the requested resource.",
    );
    if let Ok(value) = HeaderValue::from_str(&rate.to_string()) {
        response
            .headers_mut()
            .insert("x-amzn-RateLimit-Limit", value);
    }
    response
}

/// Authentication, injected faults and the per-operation rate limit.
async fn guard(shared: &Shared, headers: &HeaderMap, operation: Operation) -> Result<(), Response> {
    let token = headers
        .get("x-amz-access-token")
        .and_then(|v| v.to_str().ok());
    match admit(shared, shared.is_access_token(token)).await {
        Gate::Proceed => {}
        Gate::Unauthorized => {
            return Err(errors(
                StatusCode::UNAUTHORIZED,
                "Unauthorized",
                "Access to requested resource is denied. The access token you provided is revoked, malformed or invalid.",
            ));
        }
        Gate::TimedOut => return Err(timed_out()),
        Gate::ServerError => {
            return Err(errors(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalFailure",
                "We encountered an internal error. Please try again.",
            ));
        }
        Gate::Throttled => {
            return Err(quota_exceeded(operation.limit(&shared.settings()).0));
        }
    }
    let now = Instant::now();
    let over_limit = shared.with(|state| {
        let (rate, burst) = operation.limit(&state.settings);
        let bucket = match operation {
            Operation::Patch => &mut state.amazon_patch_bucket,
            Operation::Get => &mut state.amazon_read_bucket,
            Operation::GetOrder => &mut state.amazon_get_order_bucket,
            Operation::Cancel => &mut state.amazon_cancel_bucket,
        };
        if bucket.try_take(1.0, burst, rate, now) {
            return None;
        }
        state.stats.throttled += 1;
        Some(rate)
    });
    match over_limit {
        Some(rate) => Err(quota_exceeded(rate)),
        None => Ok(()),
    }
}

/// The refusal of a request without `marketplaceIds`.
fn missing_marketplace(query: &HashMap<String, String>) -> Option<Response> {
    let given = query
        .get("marketplaceIds")
        .is_some_and(|ids| !ids.is_empty());
    (!given).then(|| {
        errors(
            StatusCode::BAD_REQUEST,
            "InvalidInput",
            "Missing required 'marketplaceIds'.",
        )
    })
}

/// The quantity of the `fulfillment_availability` replace patch, checked as SP-API would.
fn patched_quantity(body: &Value) -> Result<i64, String> {
    body.get("productType")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .ok_or("productType is required")?;
    let patches = body
        .get("patches")
        .and_then(Value::as_array)
        .filter(|p| !p.is_empty())
        .ok_or("patches must be a non-empty list")?;
    let patch = patches
        .iter()
        .find(|p| {
            p.get("path").and_then(Value::as_str) == Some("/attributes/fulfillment_availability")
        })
        .ok_or("this fake only takes the /attributes/fulfillment_availability patch")?;
    if patch.get("op").and_then(Value::as_str) != Some("replace") {
        return Err("op must be replace".to_owned());
    }
    let entry = patch
        .pointer("/value/0")
        .ok_or("value must hold one fulfillment availability")?;
    if entry
        .get("fulfillment_channel_code")
        .and_then(Value::as_str)
        != Some("DEFAULT")
    {
        return Err("fulfillment_channel_code must be DEFAULT".to_owned());
    }
    entry
        .get("quantity")
        .and_then(Value::as_i64)
        .ok_or_else(|| "quantity must be an integer".to_owned())
}

async fn patch_listing(
    State(shared): State<Arc<Shared>>,
    Path((_seller_id, sku)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = guard(&shared, &headers, Operation::Patch).await {
        return response;
    }
    if let Some(response) = missing_marketplace(&query) {
        return response;
    }
    let quantity = match serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("body is not JSON: {e}"))
        .and_then(|body| patched_quantity(&body))
    {
        Ok(quantity) => quantity,
        Err(why) => return errors(StatusCode::BAD_REQUEST, "InvalidInput", why),
    };
    let now = Instant::now();
    let issue = shared.with(|state| {
        state.stats.push_calls += 1;
        let issue = if !state.accepts(&sku) {
            Some(json!({"code": "NOT_FOUND", "severity": "ERROR",
                        "message": format!("SKU '{sku}' is not listed for this seller in the marketplace")}))
        } else if quantity < 0 {
            Some(json!({"code": "4000001", "severity": "ERROR", "attributeNames": ["fulfillment_availability"],
                        "message": "The quantity must be zero or more"}))
        } else {
            None
        };
        match &issue {
            Some(_) => state.stats.items_rejected += 1,
            None => {
                let delay = Duration::from_millis(state.settings.amazon_processing_delay_ms);
                state.push_quantity(&sku, quantity, delay, now);
            }
        }
        issue
    });
    let (status, issues) = match issue {
        Some(issue) => ("INVALID", vec![issue]),
        None => ("ACCEPTED", Vec::new()),
    };
    json_response(
        StatusCode::OK,
        json!({"sku": sku, "status": status, "submissionId": random_hex(), "issues": issues}),
    )
}

async fn get_listing(
    State(shared): State<Arc<Shared>>,
    Path((_seller_id, sku)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers, Operation::Get).await {
        return response;
    }
    if let Some(response) = missing_marketplace(&query) {
        return response;
    }
    let now = Instant::now();
    let shown = shared.with(|state| {
        state.stats.read_calls += 1;
        state.shown(&sku, now)
    });
    let Some(shown) = shown else {
        return errors(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            format!("Requested item '{sku}' not found"),
        );
    };
    let included = query
        .get("includedData")
        .map(String::as_str)
        .unwrap_or("summaries");
    let mut item = json!({"sku": sku});
    if included
        .split(',')
        .any(|part| part == "fulfillmentAvailability")
    {
        item["fulfillmentAvailability"] =
            json!([{"fulfillmentChannelCode": "DEFAULT", "quantity": shown}]);
    }
    json_response(StatusCode::OK, item)
}
