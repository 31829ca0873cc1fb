//! The synchronous reservations API (contract section 2), as plain routing that the Lambda
//! (API Gateway HTTP API) glue and the local server share.

use serde_json::{Value, json};
use stockguard_domain::inbound::parse_reservation_request;
use stockguard_domain::types::format_timestamp;
use stockguard_domain::{EntityId, InvalidInput, Sku};

use crate::deps::{Deps, now_ms};
use crate::error::ApplyError;
use crate::reservations::{self, ConfirmAnswer, ReleaseAnswer, ReserveAnswer};

#[derive(Debug, Clone, PartialEq)]
pub struct HttpAnswer {
    pub status: u16,
    pub body: Value,
}

fn answer(status: u16, body: Value) -> HttpAnswer {
    HttpAnswer { status, body }
}

fn error(status: u16, code: &str, message: impl Into<String>) -> HttpAnswer {
    answer(status, json!({"error": code, "message": message.into()}))
}

fn invalid(e: &InvalidInput) -> HttpAnswer {
    answer(
        400,
        json!({"error": "invalid_request", "message": e.message, "field": e.field, "reason": e.code}),
    )
}

fn failed(e: &ApplyError) -> HttpAnswer {
    match e {
        ApplyError::Invalid(i) => invalid(i),
        ApplyError::Conflict { code, message } => error(409, code, message.clone()),
        e if e.is_retryable() => error(503, "unavailable", e.to_string()),
        e => {
            tracing::error!(error = %e, "reservations API failure");
            error(
                500,
                "internal",
                "the request could not be completed; it changed nothing or can be repeated",
            )
        }
    }
}

/// Shopify's order webhooks (contract section 6), served by their own function behind the same
/// API: see [`crate::shopify_webhooks`].
pub const SHOPIFY_WEBHOOK_PATH: &str = "/v1/webhooks/shopify";

/// What a webhook request gets before its body is read: 405 for a method other than POST, 413
/// when its length is over the limit.
pub fn webhook_refused(method: &str, length: Option<usize>) -> Option<HttpAnswer> {
    if method != "POST" {
        return Some(error(
            405,
            "method_not_allowed",
            format!("{method} is not supported on {SHOPIFY_WEBHOOK_PATH}"),
        ));
    }
    too_large(length, stockguard_domain::shopify::MAX_BODY_BYTES)
}

/// The largest body the reservations API reads: a reservation has at most
/// [`stockguard_domain::inbound::MAX_LINES`] lines, a few KiB of JSON, so this leaves ample room
/// while a client cannot make a function buffer megabytes it will refuse anyway.
pub const MAX_API_BODY_BYTES: usize = 64 * 1024;

/// 413 when a request's length (declared, or read so far) is over `max`.
pub fn too_large(length: Option<usize>, max: usize) -> Option<HttpAnswer> {
    match length {
        Some(n) if n > max => Some(error(
            413,
            "payload_too_large",
            format!("bodies over {max} bytes are refused"),
        )),
        _ => None,
    }
}

/// Routes one request. `path` has no query string.
pub async fn route(deps: &Deps, method: &str, path: &str, body: &[u8]) -> HttpAnswer {
    let parts: Vec<&str> = path.trim_end_matches('/').split('/').skip(1).collect();
    match (method, parts.as_slice()) {
        ("POST", ["v1", "reservations"]) => create(deps, body).await,
        ("POST", ["v1", "reservations", id, "confirm"]) => confirm(deps, id, body).await,
        ("DELETE", ["v1", "reservations", id]) => release(deps, id).await,
        ("GET", ["v1", "availability", sku]) => availability(deps, sku).await,
        ("GET", ["v1", "buffers", sku]) => buffers(deps, sku).await,
        (_, ["v1", "reservations"])
        | (_, ["v1", "reservations", _])
        | (_, ["v1", "reservations", _, "confirm"])
        | (_, ["v1", "availability", _])
        | (_, ["v1", "buffers", _]) => error(
            405,
            "method_not_allowed",
            format!("{method} is not supported on {path}"),
        ),
        _ => error(404, "not_found", format!("no route for {path}")),
    }
}

fn json_body(body: &[u8]) -> Result<Value, HttpAnswer> {
    serde_json::from_slice(body)
        .map_err(|e| error(400, "invalid_request", format!("the body is not JSON: {e}")))
}

async fn create(deps: &Deps, body: &[u8]) -> HttpAnswer {
    let value = match json_body(body) {
        Ok(v) => v,
        Err(a) => return a,
    };
    let req = match parse_reservation_request(&value) {
        Ok(r) => r,
        Err(e) => return invalid(&e),
    };
    match reservations::reserve(deps, &req).await {
        Ok(ReserveAnswer::Held {
            expires_at,
            lines,
            repeat,
        }) => answer(
            if repeat { 200 } else { 201 },
            json!({"reservation_id": req.reservation_id, "status": "held", "expires_at": format_timestamp(expires_at), "lines": lines}),
        ),
        Ok(ReserveAnswer::Insufficient { shortfalls }) => answer(
            409,
            json!({"error": "insufficient_stock", "message": "not every line can be reserved; nothing was", "shortfalls": shortfalls}),
        ),
        Err(e) => failed(&e),
    }
}

fn path_id(raw: &str) -> Result<EntityId, HttpAnswer> {
    EntityId::parse(raw).map_err(|m| error(400, "invalid_request", m))
}

async fn confirm(deps: &Deps, id: &str, body: &[u8]) -> HttpAnswer {
    let id = match path_id(id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    let value = match json_body(body) {
        Ok(v) => v,
        Err(a) => return a,
    };
    let order_id = match value["order_id"].as_str().map(EntityId::parse) {
        Some(Ok(o)) => o,
        Some(Err(m)) => return invalid(&InvalidInput::new("invalid_id", "order_id", m)),
        None => {
            return invalid(&InvalidInput::new(
                "missing_field",
                "order_id",
                "`order_id` is required",
            ));
        }
    };
    match reservations::confirm(deps, &id, &order_id).await {
        Ok(ConfirmAnswer::Confirmed) => answer(
            200,
            json!({"status": "confirmed", "reservation_id": id, "order_id": order_id}),
        ),
        Ok(ConfirmAnswer::NotFound) => error(404, "not_found", format!("no reservation {id}")),
        Ok(ConfirmAnswer::Lapsed { shortfalls }) => answer(
            409,
            json!({"error": "reservation_expired", "message": "the reservation lapsed and its stock is gone", "shortfalls": shortfalls}),
        ),
        Ok(ConfirmAnswer::OtherOrder { order_id }) => error(
            409,
            "already_confirmed",
            format!("reservation {id} was confirmed for order {order_id}"),
        ),
        Err(e) => failed(&e),
    }
}

async fn release(deps: &Deps, id: &str) -> HttpAnswer {
    let id = match path_id(id) {
        Ok(id) => id,
        Err(a) => return a,
    };
    match reservations::release(deps, &id).await {
        Ok(ReleaseAnswer::Released) => {
            answer(200, json!({"status": "released", "reservation_id": id}))
        }
        Ok(ReleaseAnswer::NotFound) => error(404, "not_found", format!("no reservation {id}")),
        Ok(ReleaseAnswer::AlreadyConfirmed) => error(
            409,
            "reservation_confirmed",
            format!("reservation {id} was confirmed; cancel its order instead"),
        ),
        Err(e) => failed(&e),
    }
}

async fn availability(deps: &Deps, sku: &str) -> HttpAnswer {
    let sku = match Sku::parse(sku) {
        Ok(s) => s,
        Err(m) => return error(400, "invalid_request", m),
    };
    let position = match deps.store.position(&sku).await {
        Ok(p) if p.version > 0 => p,
        Ok(_) => return error(404, "not_found", format!("unknown sku {sku}")),
        Err(e) => return failed(&e.into()),
    };
    let channels = match channels_showing(deps, &sku).await {
        Ok(c) => c,
        Err(e) => return failed(&e.into()),
    };
    let buffers: serde_json::Map<String, Value> =
        match crate::buffers::buffers_of(deps, &sku, now_ms()).await {
            Ok(Some(b)) => b
                .channels
                .into_iter()
                .map(|(name, c)| (name, json!(c.buffer)))
                .collect(),
            Ok(None) => Default::default(),
            Err(e) => return error(503, "unavailable", e),
        };
    answer(
        200,
        json!({
            "sku": sku, "on_hand": position.on_hand, "hard_reserved": position.hard_reserved,
            "soft_reserved": position.soft_reserved, "available": position.available(),
            "version": position.version, "channels": channels, "buffers": buffers,
        }),
    )
}

/// `GET /v1/buffers/{sku}`: every channel's buffer with the factors that set it.
async fn buffers(deps: &Deps, sku: &str) -> HttpAnswer {
    let sku = match Sku::parse(sku) {
        Ok(s) => s,
        Err(m) => return error(400, "invalid_request", m),
    };
    match crate::buffers::buffers_of(deps, &sku, now_ms()).await {
        Ok(Some(b)) => answer(200, b.to_json()),
        Ok(None) => error(404, "not_found", format!("unknown sku {sku}")),
        Err(e) => error(503, "unavailable", e),
    }
}

/// What each enabled channel shows for `sku`: the quantity it last acknowledged (a channel
/// never pushed to is absent).
async fn channels_showing(
    deps: &Deps,
    sku: &Sku,
) -> Result<serde_json::Map<String, Value>, stockguard_adapters::AdapterError> {
    let mut shown = serde_json::Map::new();
    for channel in deps
        .store
        .channels()
        .await?
        .into_iter()
        .filter(|c| c.enabled)
    {
        let acked = deps
            .store
            .sync_records(&channel.name, std::slice::from_ref(sku))
            .await?;
        if let Some(record) = acked.get(sku) {
            shown.insert(channel.name.to_string(), json!(record.quantity));
        }
    }
    Ok(shown)
}
