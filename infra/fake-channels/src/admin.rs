//! `/_fake/...`: the admin API every fake serves beside its channel API, for tests and scripts
//! in other languages.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::gate::json_response;
use crate::orders::{self, OrderError, OrderRequest};
use crate::state::Shared;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/_fake/settings", get(get_settings).put(put_settings))
        .route("/_fake/shown/{listing_key}", get(get_shown).put(put_shown))
        .route("/_fake/listings", post(register_listing))
        .route("/_fake/stats", get(get_stats).delete(reset_stats))
        .route("/_fake/orders", post(place_order))
        .route("/_fake/expire_tokens", post(expire_tokens))
}

fn bad_request(why: impl Into<String>) -> Response {
    json_response(StatusCode::BAD_REQUEST, json!({"error": why.into()}))
}

fn parse<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| e.to_string())
}

async fn get_settings(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.settings()).into_response()
}

/// Replaces the fields the body names; the others keep their values.
async fn put_settings(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let patch: Value = match parse(&body) {
        Ok(patch) => patch,
        Err(why) => return bad_request(why),
    };
    let now = Instant::now();
    let merged = shared.with(|state| {
        let merged = state.settings.merged(&patch)?;
        state.replace_settings(merged.clone(), now);
        Ok::<_, String>(merged)
    });
    match merged {
        Ok(settings) => Json(settings).into_response(),
        Err(why) => bad_request(why),
    }
}

async fn get_shown(State(shared): State<Arc<Shared>>, Path(listing_key): Path<String>) -> Response {
    let now = Instant::now();
    match shared.with(|state| state.shown(&listing_key, now)) {
        Some(quantity) => {
            Json(json!({"listing_key": listing_key, "quantity": quantity})).into_response()
        }
        None => json_response(
            StatusCode::NOT_FOUND,
            json!({"error": format!("listing {listing_key:?} is not on this channel")}),
        ),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ShownBody {
    quantity: i64,
}

async fn put_shown(
    State(shared): State<Arc<Shared>>,
    Path(listing_key): Path<String>,
    body: Bytes,
) -> Response {
    let shown: ShownBody = match parse(&body) {
        Ok(shown) => shown,
        Err(why) => return bad_request(why),
    };
    let now = Instant::now();
    shared.with(|state| state.set_shown(&listing_key, shown.quantity, now));
    Json(json!({"listing_key": listing_key, "quantity": shown.quantity})).into_response()
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListingBody {
    listing_key: String,
    #[serde(default)]
    sku: Option<String>,
    #[serde(default)]
    quantity: i64,
}

async fn register_listing(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let listing: ListingBody = match parse(&body) {
        Ok(listing) => listing,
        Err(why) => return bad_request(why),
    };
    let sku = listing.sku.unwrap_or_else(|| listing.listing_key.clone());
    let now = Instant::now();
    shared.with(|state| state.register(&listing.listing_key, &sku, listing.quantity, now));
    json_response(
        StatusCode::CREATED,
        json!({"listing_key": listing.listing_key, "sku": sku, "quantity": listing.quantity}),
    )
}

async fn get_stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.with(|state| state.stats.clone())).into_response()
}

async fn reset_stats(State(shared): State<Arc<Shared>>) -> Response {
    shared.with(|state| state.stats = Default::default());
    StatusCode::NO_CONTENT.into_response()
}

async fn place_order(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let order: OrderRequest = match parse(&body) {
        Ok(order) => order,
        Err(why) => return bad_request(why),
    };
    match orders::place(&shared, &order) {
        Ok(detail) => json_response(StatusCode::CREATED, detail),
        Err(err) => {
            let status = match err {
                OrderError::NoLines | OrderError::InvalidQuantity { .. } => StatusCode::BAD_REQUEST,
                OrderError::UnknownListing(_) | OrderError::UnknownOrder(_) => {
                    StatusCode::NOT_FOUND
                }
                OrderError::NotEnoughShown { .. } => StatusCode::CONFLICT,
            };
            json_response(status, json!({"error": err.to_string()}))
        }
    }
}

async fn expire_tokens(State(shared): State<Arc<Shared>>) -> Response {
    shared.with(|state| state.walmart_tokens.clear());
    StatusCode::NO_CONTENT.into_response()
}
