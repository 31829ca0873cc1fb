//! Fake eBay Sell Inventory: `bulk_update_price_quantity` (up to 25 entries, 207 when some fail)
//! and the inventory item read; the Fulfillment API's getOrders and getOrder; the Post-Order
//! API's seller cancellation.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::gate::{Gate, admit, json_response, timed_out};
use crate::state::Shared;

const MAX_REQUESTS: usize = 25;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/sell/inventory/v1/bulk_update_price_quantity",
            post(bulk_update),
        )
        .route("/sell/inventory/v1/inventory_item/{sku}", get(get_item))
        .route("/sell/fulfillment/v1/order", get(get_orders))
        .route("/sell/fulfillment/v1/order/{order_id}", get(get_order))
        .route("/post-order/v2/cancellation", post(create_cancellation))
}

fn error(error_id: u32, category: &str, message: impl Into<String>) -> Value {
    json!({"errorId": error_id, "domain": "API_INVENTORY", "category": category, "message": message.into()})
}

fn errors(status: StatusCode, error: Value) -> Response {
    json_response(status, json!({"errors": [error]}))
}

async fn guard(shared: &Shared, headers: &HeaderMap) -> Result<(), Response> {
    guard_scheme(shared, headers, "Bearer ").await
}

/// `scheme`: `Bearer ` for the REST APIs, `IAF ` for an OAuth token on the Post-Order API.
async fn guard_scheme(shared: &Shared, headers: &HeaderMap, scheme: &str) -> Result<(), Response> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix(scheme));
    match admit(shared, shared.is_access_token(token)).await {
        Gate::Proceed => Ok(()),
        Gate::Unauthorized => Err(errors(
            StatusCode::UNAUTHORIZED,
            json!({"errorId": 1001, "domain": "OAuth", "category": "REQUEST", "message": "Invalid access token",
                   "longMessage": "Invalid access token. Check the value of the Authorization HTTP request header."}),
        )),
        Gate::TimedOut => Err(timed_out()),
        Gate::ServerError => Err(errors(
            StatusCode::INTERNAL_SERVER_ERROR,
            error(25001, "APPLICATION", "A system error has occurred."),
        )),
        Gate::Throttled => Err(errors(
            StatusCode::TOO_MANY_REQUESTS,
            json!({"errorId": 2001, "domain": "ACCESS", "category": "REQUEST",
                   "message": "Too many requests. The request limit has been reached for the resource."}),
        )),
    }
}

struct Entry {
    sku: String,
    offer_ids: Vec<String>,
    quantity: Option<i64>,
}

fn parse_entries(body: &Value) -> Result<Vec<Entry>, String> {
    let requests = body
        .get("requests")
        .and_then(Value::as_array)
        .ok_or("requests must be a list")?;
    if requests.is_empty() || requests.len() > MAX_REQUESTS {
        return Err(format!(
            "requests must hold 1 to {MAX_REQUESTS} entries, not {}",
            requests.len()
        ));
    }
    requests
        .iter()
        .map(|request| {
            let sku = request
                .get("sku")
                .and_then(Value::as_str)
                .filter(|sku| !sku.is_empty())
                .ok_or("every request needs a sku")?;
            let offers = request
                .get("offers")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            let offer_ids = offers
                .iter()
                .filter_map(|offer| {
                    offer
                        .get("offerId")
                        .and_then(Value::as_str)
                        .map(str::to_owned)
                })
                .collect();
            let quantity = request
                .pointer("/shipToLocationAvailability/quantity")
                .and_then(Value::as_i64)
                .or_else(|| {
                    offers
                        .first()
                        .and_then(|o| o.get("availableQuantity"))
                        .and_then(Value::as_i64)
                });
            Ok(Entry {
                sku: sku.to_owned(),
                offer_ids,
                quantity,
            })
        })
        .collect()
}

async fn bulk_update(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let entries = match serde_json::from_slice::<Value>(&body)
        .map_err(|e| format!("The body is not JSON: {e}"))
        .and_then(|body| parse_entries(&body))
    {
        Ok(entries) => entries,
        Err(why) => return errors(StatusCode::BAD_REQUEST, error(25709, "REQUEST", why)),
    };
    let now = Instant::now();
    let responses: Vec<Value> = shared.with(|state| {
        state.stats.push_calls += 1;
        let mut responses = Vec::new();
        for entry in &entries {
            let failure = if !state.accepts(&entry.sku) {
                Some((404, error(25702, "REQUEST", format!("SKU {} is not available in the system", entry.sku))))
            } else {
                match entry.quantity {
                    Some(quantity) if quantity >= 0 => {
                        state.push_quantity(&entry.sku, quantity, Duration::ZERO, now);
                        None
                    }
                    _ => Some((400, error(25604, "REQUEST", "Input error. The quantity must be zero or more"))),
                }
            };
            if failure.is_some() {
                state.stats.items_rejected += 1;
            }
            let (status, errors) = match failure {
                Some((status, error)) => (status, vec![error]),
                None => (200, Vec::new()),
            };
            // One response per offer, or one for the SKU when it names none.
            let offers: Vec<Option<&str>> = if entry.offer_ids.is_empty() {
                vec![None]
            } else {
                entry.offer_ids.iter().map(|id| Some(id.as_str())).collect()
            };
            for offer_id in offers {
                let mut response = json!({"sku": entry.sku, "statusCode": status, "errors": errors, "warnings": []});
                if let Some(offer_id) = offer_id {
                    response["offerId"] = json!(offer_id);
                }
                responses.push(response);
            }
        }
        responses
    });
    let all_ok = responses
        .iter()
        .all(|r| r.get("statusCode") == Some(&json!(200)));
    let status = if all_ok {
        StatusCode::OK
    } else {
        StatusCode::MULTI_STATUS
    };
    json_response(status, json!({"responses": responses}))
}

async fn get_item(
    State(shared): State<Arc<Shared>>,
    Path(sku): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let now = Instant::now();
    let shown = shared.with(|state| {
        state.stats.read_calls += 1;
        state.shown(&sku, now)
    });
    match shown {
        Some(quantity) => json_response(
            StatusCode::OK,
            json!({"sku": sku, "condition": "NEW",
                   "availability": {"shipToLocationAvailability": {"quantity": quantity}}}),
        ),
        None => errors(
            StatusCode::NOT_FOUND,
            error(
                25710,
                "REQUEST",
                "We didn't find the resource/entity you are requesting. Please verify the request",
            ),
        ),
    }
}

/// getOrders: a page of the seller's orders (see [`crate::market_orders`]).
async fn get_orders(
    State(shared): State<Arc<Shared>>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    let (garbled, page) = shared.with(|state| {
        (
            state.settings.orders_page_garbled,
            crate::market_orders::ebay_page(state, &query),
        )
    });
    match page {
        _ if garbled => {
            let mut response = Response::new(crate::market_orders::GARBLED.into());
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                axum::http::HeaderValue::from_static("text/html"),
            );
            response
        }
        Ok(page) => json_response(StatusCode::OK, page),
        Err(why) => errors(StatusCode::BAD_REQUEST, error(30700, "REQUEST", why)),
    }
}

/// getOrder: one order by its id.
async fn get_order(
    State(shared): State<Arc<Shared>>,
    Path(order_id): Path<String>,
    headers: HeaderMap,
) -> Response {
    if let Err(response) = guard(&shared, &headers).await {
        return response;
    }
    match shared.with(|state| crate::market_orders::ebay_order_by_id(state, &order_id)) {
        Some(order) => json_response(StatusCode::OK, order),
        None => errors(
            StatusCode::NOT_FOUND,
            error(32100, "REQUEST", format!("Invalid order ID: {order_id}")),
        ),
    }
}

/// The cancel reasons a seller may give (Post-Order `CancelReasonEnum`).
const SELLER_REASONS: [&str; 3] = [
    "OUT_OF_STOCK_OR_CANNOT_FULFILL",
    "BUYER_ASKED_CANCEL",
    "ADDRESS_ISSUES",
];

/// eBay's marketplace ids (`MarketplaceIdEnum`), as the Post-Order API's header takes them.
const MARKETPLACES: [&str; 14] = [
    "EBAY_US", "EBAY_GB", "EBAY_DE", "EBAY_AU", "EBAY_CA", "EBAY_FR", "EBAY_IT", "EBAY_ES",
    "EBAY_AT", "EBAY_BE", "EBAY_CH", "EBAY_IE", "EBAY_NL", "EBAY_PL",
];

/// Post-Order `POST /post-order/v2/cancellation`: the seller cancels a whole order.
async fn create_cancellation(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(response) = guard_scheme(&shared, &headers, "IAF ").await {
        return response;
    }
    let bad = |why: String| errors(StatusCode::BAD_REQUEST, error(1601, "REQUEST", why));
    match headers
        .get("X-EBAY-C-MARKETPLACE-ID")
        .and_then(|v| v.to_str().ok())
    {
        None => return bad("The X-EBAY-C-MARKETPLACE-ID header is required".into()),
        Some(m) if !MARKETPLACES.contains(&m) => {
            return bad(format!("{m:?} is not an eBay marketplace"));
        }
        Some(_) => {}
    }
    let body: Value = match serde_json::from_slice(&body) {
        Ok(body) => body,
        Err(e) => return bad(format!("The body is not JSON: {e}")),
    };
    let Some(legacy_order_id) = body["legacyOrderId"].as_str().filter(|id| !id.is_empty()) else {
        return bad("legacyOrderId is required".into());
    };
    let reason = body["cancelReason"].as_str().unwrap_or_default();
    if !SELLER_REASONS.contains(&reason) {
        return bad(format!("cancelReason {reason:?} is not a seller's reason"));
    }
    let result =
        shared.with(|state| crate::market_orders::ebay_cancel_by_seller(state, legacy_order_id));
    match result {
        Ok(cancel_id) => json_response(
            StatusCode::OK,
            json!({"cancelId": cancel_id, "orderEligibilityResult": {"eligible": true}}),
        ),
        Err(crate::market_orders::EbayRefusal::Unknown(why)) => {
            errors(StatusCode::NOT_FOUND, error(1602, "REQUEST", why))
        }
        Err(crate::market_orders::EbayRefusal::Ineligible(why)) => json_response(
            StatusCode::OK,
            json!({"orderEligibilityResult": {"eligible": false, "failureReason": [why]}}),
        ),
    }
}
