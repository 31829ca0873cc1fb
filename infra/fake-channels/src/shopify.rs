//! Fake Shopify Admin GraphQL: `inventorySetQuantities` and the inventory level query, behind a
//! leaky bucket of query cost. It recognises the two operations by name rather than parsing
//! GraphQL; variables carry the values.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::post;
use serde_json::{Value, json};
use tokio::time::Instant;

use crate::gate::{Gate, admit, json_response, timed_out};
use crate::state::{Shared, State as ChannelState};

const READ_COST: f64 = 2.0;
const MAX_QUANTITY: i64 = 1_000_000_000;
const MAX_QUANTITIES: usize = 250;

pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/admin/api/{version}/graphql.json", post(graphql))
}

enum Operation {
    SetQuantities,
    ReadLevel,
    VariantItems,
    CancelOrder,
}

/// The product variant the fake sells an inventory item as: each item has one variant, whose id
/// is the item's plus one (Shopify numbers them apart; only the link matters here).
pub fn variant_id_of(inventory_item_id: u64) -> u64 {
    inventory_item_id + 1
}

async fn graphql(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let request: Option<Value> = serde_json::from_slice(&body).ok();
    let query = request
        .as_ref()
        .and_then(|r| r.get("query"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    let variables = request
        .as_ref()
        .and_then(|r| r.get("variables"))
        .cloned()
        .unwrap_or_else(|| json!({}));
    let operation = if query.contains("inventorySetQuantities") {
        Some(Operation::SetQuantities)
    } else if query.contains("orderCancel") {
        Some(Operation::CancelOrder)
    } else if query.contains("nodes(") {
        Some(Operation::VariantItems)
    } else if query.contains("inventoryItem") {
        Some(Operation::ReadLevel)
    } else {
        None
    };
    let requested_cost = match operation {
        Some(Operation::SetQuantities) => {
            let count = input(&variables)
                .and_then(|i| i.get("quantities"))
                .and_then(Value::as_array)
                .map_or(1, Vec::len);
            shared.with(|s| s.settings.shopify_cost_per_quantity) * count as f64
        }
        _ => READ_COST,
    };

    let token = headers
        .get("x-shopify-access-token")
        .and_then(|v| v.to_str().ok());
    match admit(&shared, shared.is_access_token(token)).await {
        Gate::Proceed => {}
        Gate::Unauthorized => {
            return json_response(
                StatusCode::UNAUTHORIZED,
                json!({"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"}),
            );
        }
        Gate::TimedOut => return timed_out(),
        Gate::ServerError => {
            return json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                json!({"errors": [{
                    "message": "Internal error. Looks like something went wrong on our end.",
                    "extensions": {"code": "INTERNAL_SERVER_ERROR"}
                }]}),
            );
        }
        Gate::Throttled => {
            let cost = shared.with(|s| cost_figures(s, requested_cost, None, Instant::now()));
            return throttled(cost);
        }
    }

    if request.is_none() || query.is_empty() {
        return json_response(
            StatusCode::BAD_REQUEST,
            json!({"errors": {"query": "Required parameter missing or invalid"}}),
        );
    }
    let Some(operation) = operation else {
        return json_response(
            StatusCode::OK,
            json!({"errors": [{"message": "This fake serves inventorySetQuantities and inventoryItem.inventoryLevel only",
                               "extensions": {"code": "UNSUPPORTED_BY_FAKE"}}]}),
        );
    };

    let now = Instant::now();
    let answer = shared.with(|state| {
        let capacity = state.settings.shopify_bucket_size;
        let rate = state.settings.shopify_restore_rate;
        // Never more than the bucket holds, or the call could never run.
        let cost = requested_cost.min(capacity);
        if !state.shopify_bucket.try_take(cost, capacity, rate, now) {
            state.stats.throttled += 1;
            return Err(cost_figures(state, cost, None, now));
        }
        let result = match operation {
            Operation::SetQuantities => set_quantities(state, &query, &variables, now),
            Operation::ReadLevel => read_level(state, &variables, now),
            Operation::VariantItems => Ok(variant_items(state, &variables)),
            Operation::CancelOrder => Ok(crate::orders::cancel_by_api(state, &variables)),
        };
        Ok((result, cost_figures(state, cost, Some(cost), now)))
    });
    match answer {
        Err(cost) => throttled(cost),
        Ok((Ok(data), cost)) => json_response(
            StatusCode::OK,
            json!({"data": data, "extensions": {"cost": cost}}),
        ),
        Ok((Err(errors), cost)) => json_response(
            StatusCode::OK,
            json!({"errors": errors, "extensions": {"cost": cost}}),
        ),
    }
}

fn cost_figures(
    state: &mut ChannelState,
    requested: f64,
    actual: Option<f64>,
    now: Instant,
) -> Value {
    let capacity = state.settings.shopify_bucket_size;
    let rate = state.settings.shopify_restore_rate;
    let available = state.shopify_bucket.level(capacity, rate, now);
    json!({
        "requestedQueryCost": requested,
        "actualQueryCost": actual,
        "throttleStatus": {
            "maximumAvailable": capacity,
            "currentlyAvailable": available.floor(),
            "restoreRate": rate,
        }
    })
}

fn throttled(cost: Value) -> Response {
    json_response(
        StatusCode::OK,
        json!({
            "errors": [{
                "message": "Throttled",
                "extensions": {"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}
            }],
            "extensions": {"cost": cost}
        }),
    )
}

/// The `InventorySetQuantitiesInput` among the variables.
fn input(variables: &Value) -> Option<&Value> {
    variables
        .as_object()?
        .values()
        .find(|value| value.get("quantities").is_some())
}

/// The key of the `@idempotent(key: ...)` directive: a string literal or a variable.
fn idempotency_key(query: &str, variables: &Value) -> Option<String> {
    let after = &query[query.find("@idempotent")?..];
    let after = after[after.find("key")? + 3..]
        .trim_start()
        .strip_prefix(':')?
        .trim_start();
    if let Some(literal) = after.strip_prefix('"') {
        return Some(literal[..literal.find('"')?].to_owned());
    }
    let name: String = after
        .strip_prefix('$')?
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    variables.get(&name)?.as_str().map(str::to_owned)
}

fn graphql_error(message: impl Into<String>, code: &str) -> Value {
    json!([{"message": message.into(), "extensions": {"code": code}}])
}

/// `gid://shopify/{resource}/{digits}` → the digits.
/// `nodes(ids:)` of product variants: each known variant with its inventory item, else null.
fn variant_items(state: &ChannelState, variables: &Value) -> Value {
    let nodes: Vec<Value> = variables
        .get("ids")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|id| {
            let item = id
                .as_str()
                .and_then(|g| numeric_id(g, "ProductVariant"))
                .and_then(|v| v.parse::<u64>().ok())
                .and_then(|v| v.checked_sub(1))
                .filter(|item| {
                    let prefix = format!("{item}:");
                    state.has_listing_where(|key| key.starts_with(&prefix))
                });
            match item {
                Some(item) => json!({"id": id, "inventoryItem": {"id": format!("gid://shopify/InventoryItem/{item}")}}),
                None => Value::Null,
            }
        })
        .collect();
    json!({ "nodes": nodes })
}

fn numeric_id<'a>(gid: &'a str, resource: &str) -> Option<&'a str> {
    let id = gid
        .strip_prefix("gid://shopify/")?
        .strip_prefix(resource)?
        .strip_prefix('/')?;
    (!id.is_empty() && id.bytes().all(|b| b.is_ascii_digit())).then_some(id)
}

struct QuantityInput {
    item: Option<String>,
    location: Option<String>,
    quantity: i64,
    change_from: Option<i64>,
}

fn parse_quantities(input: &Value) -> Result<Vec<QuantityInput>, Value> {
    let Some(quantities) = input.get("quantities").and_then(Value::as_array) else {
        return Err(graphql_error(
            "input.quantities must be a list",
            "INVALID_VARIABLE",
        ));
    };
    if quantities.is_empty() || quantities.len() > MAX_QUANTITIES {
        return Err(graphql_error(
            format!(
                "input.quantities must hold 1 to {MAX_QUANTITIES} entries, not {}",
                quantities.len()
            ),
            "INVALID_VARIABLE",
        ));
    }
    quantities
        .iter()
        .enumerate()
        .map(|(i, q)| {
            let id = |name: &str, resource: &str| {
                q.get(name)
                    .and_then(Value::as_str)
                    .and_then(|gid| numeric_id(gid, resource))
                    .map(str::to_owned)
            };
            let Some(quantity) = q.get("quantity").and_then(Value::as_i64) else {
                return Err(graphql_error(
                    format!("input.quantities.{i}.quantity must be an integer"),
                    "INVALID_VARIABLE",
                ));
            };
            // From 2026-04 the field must be there; null opts out of the compare-and-swap.
            let change_from = match q.get("changeFromQuantity") {
                None => {
                    return Err(graphql_error(
                        format!("input.quantities.{i}.changeFromQuantity is required (null skips the check)"),
                        "INVALID_VARIABLE",
                    ));
                }
                Some(Value::Null) => None,
                Some(value) => Some(value.as_i64().ok_or_else(|| {
                    graphql_error(
                        format!("input.quantities.{i}.changeFromQuantity must be an integer or null"),
                        "INVALID_VARIABLE",
                    )
                })?),
            };
            Ok(QuantityInput {
                item: id("inventoryItemId", "InventoryItem"),
                location: id("locationId", "Location"),
                quantity,
                change_from,
            })
        })
        .collect()
}

fn user_error(index: usize, field: &str, code: &str, message: String) -> Value {
    json!({
        "field": ["input", "quantities", index.to_string(), field],
        "message": message,
        "code": code,
    })
}

fn set_quantities(
    state: &mut ChannelState,
    query: &str,
    variables: &Value,
    now: Instant,
) -> Result<Value, Value> {
    let Some(key) = idempotency_key(query, variables) else {
        return Err(graphql_error(
            "inventorySetQuantities requires the @idempotent(key:) directive",
            "BAD_REQUEST",
        ));
    };
    let Some(input) = input(variables).cloned() else {
        return Err(graphql_error(
            "Variable $input of type InventorySetQuantitiesInput! was not provided",
            "INVALID_VARIABLE",
        ));
    };
    if let Some((first_input, first_result)) = state.shopify_idempotency.get(&key) {
        let result = if *first_input == input {
            first_result.clone()
        } else {
            json!({
                "inventoryAdjustmentGroup": null,
                "userErrors": [{"field": ["idempotencyKey"], "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH",
                                "message": "The idempotency key was already used with other parameters"}]
            })
        };
        return Ok(json!({"inventorySetQuantities": result}));
    }
    let quantities = parse_quantities(&input)?;
    state.stats.push_calls += 1;

    let mut user_errors = Vec::new();
    if input.get("name").and_then(Value::as_str) != Some("available") {
        user_errors.push(json!({"field": ["input", "name"], "code": "INVALID_NAME",
                                "message": "Only the available quantity can be set"}));
    }
    for (i, q) in quantities.iter().enumerate() {
        let (Some(item), Some(location)) = (&q.item, &q.location) else {
            let (field, code) = if q.item.is_none() {
                ("inventoryItemId", "INVALID_INVENTORY_ITEM")
            } else {
                ("locationId", "INVALID_LOCATION")
            };
            user_errors.push(user_error(
                i,
                field,
                code,
                format!("The {field} is not a valid id"),
            ));
            continue;
        };
        let listing_key = format!("{item}:{location}");
        if !state.accepts(&listing_key) {
            user_errors.push(user_error(
                i,
                "locationId",
                "ITEM_NOT_STOCKED_AT_LOCATION",
                format!("The inventory item {item} is not stocked at location {location}"),
            ));
        } else if q.quantity < 0 {
            user_errors.push(user_error(
                i,
                "quantity",
                "INVALID_QUANTITY_NEGATIVE",
                "The quantity can't be negative".into(),
            ));
        } else if q.quantity > MAX_QUANTITY {
            user_errors.push(user_error(
                i,
                "quantity",
                "INVALID_QUANTITY_TOO_HIGH",
                format!("The quantity can't be higher than {MAX_QUANTITY}"),
            ));
        } else if let Some(expected) = q.change_from {
            let shown = state.shown(&listing_key, now).unwrap_or(0);
            if shown != expected {
                user_errors.push(user_error(
                    i,
                    "changeFromQuantity",
                    "CHANGE_FROM_QUANTITY_STALE",
                    format!("The quantity is {shown}, not the {expected} the change was based on"),
                ));
            }
        }
    }

    let result = if user_errors.is_empty() {
        for q in &quantities {
            if let (Some(item), Some(location)) = (&q.item, &q.location) {
                state.push_quantity(
                    &format!("{item}:{location}"),
                    q.quantity,
                    Duration::ZERO,
                    now,
                );
            }
        }
        json!({
            "inventoryAdjustmentGroup": {
                "id": format!("gid://shopify/InventoryAdjustmentGroup/{}", rand::random::<u32>()),
                "reason": input.get("reason").cloned().unwrap_or(Value::Null),
                "referenceDocumentUri": input.get("referenceDocumentUri").cloned().unwrap_or(Value::Null),
            },
            "userErrors": [],
        })
    } else {
        // All or nothing, as Shopify does: one refused quantity sets none of them.
        state.stats.items_rejected += user_errors.len() as u64;
        json!({"inventoryAdjustmentGroup": null, "userErrors": user_errors})
    };
    // Bounded, so that a long-running fake does not grow without end.
    if state.shopify_idempotency.len() >= 10_000 {
        state.shopify_idempotency.clear();
    }
    state
        .shopify_idempotency
        .insert(key, (input, result.clone()));
    Ok(json!({"inventorySetQuantities": result}))
}

fn read_level(state: &mut ChannelState, variables: &Value, now: Instant) -> Result<Value, Value> {
    let find = |resource: &str| {
        variables
            .as_object()
            .and_then(|vars| {
                vars.values()
                    .find_map(|v| v.as_str().and_then(|gid| numeric_id(gid, resource)))
            })
            .map(str::to_owned)
    };
    let (Some(item), Some(location)) = (find("InventoryItem"), find("Location")) else {
        return Err(graphql_error(
            "Variables must hold an InventoryItem gid and a Location gid",
            "INVALID_VARIABLE",
        ));
    };
    state.stats.read_calls += 1;
    let item_gid = format!("gid://shopify/InventoryItem/{item}");
    let inventory_item = match state.shown(&format!("{item}:{location}"), now) {
        Some(quantity) => json!({
            "id": item_gid,
            "inventoryLevel": {"quantities": [{"name": "available", "quantity": quantity}]},
        }),
        None if state.has_listing_where(|key| key.starts_with(&format!("{item}:"))) => {
            json!({"id": item_gid, "inventoryLevel": null})
        }
        None => Value::Null,
    };
    Ok(json!({"inventoryItem": inventory_item}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idempotency_keys_come_from_literals_or_variables() {
        let vars = json!({"k": "abc"});
        assert_eq!(
            idempotency_key("m { x(input: $i) @idempotent(key: $k) { y } }", &vars),
            Some("abc".to_owned())
        );
        assert_eq!(
            idempotency_key(r#"m { x @idempotent(key: "lit-1") { y } }"#, &vars),
            Some("lit-1".to_owned())
        );
        assert_eq!(idempotency_key("m { x { y } }", &vars), None);
    }

    #[test]
    fn gids_give_their_numeric_id() {
        assert_eq!(
            numeric_id("gid://shopify/Location/42", "Location"),
            Some("42")
        );
        assert_eq!(
            numeric_id("gid://shopify/Location/42", "InventoryItem"),
            None
        );
        assert_eq!(numeric_id("gid://shopify/Location/x", "Location"), None);
    }
}
