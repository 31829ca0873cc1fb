//! Shopify Admin GraphQL: `inventorySetQuantities` for pushes, the inventory level for reads.

use std::time::Duration;

use reqwest::Url;
use serde::Deserialize;
use serde_json::{Value, json};

use crate::config::{ClientOptions, Secret, ShopifyConfig};
use crate::error::{ChannelError, Kind};
use crate::http::{self, describe_error};
use crate::model::{ChannelKind, Listing, PushOutcome, QuantityUpdate};
use crate::outcomes::Outcomes;

const CHANNEL: ChannelKind = ChannelKind::Shopify;
const MAX_QUANTITIES_PER_CALL: usize = 250;

const SET_QUANTITIES: &str = r#"mutation SetAvailable($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id }
    userErrors { field message code }
  }
}"#;

const SHOWN_QUANTITY: &str = r#"query ShownQuantity($inventoryItemId: ID!, $locationId: ID!) {
  inventoryItem(id: $inventoryItemId) {
    inventoryLevel(locationId: $locationId) {
      quantities(names: ["available"]) { name quantity }
    }
  }
}"#;

const VARIANT_INVENTORY_ITEMS: &str = r#"query VariantInventoryItems($ids: [ID!]!) {
  nodes(ids: $ids) {
    ... on ProductVariant { id inventoryItem { id } }
  }
}"#;

const CANCEL_ORDER: &str = r#"mutation CancelOrder($orderId: ID!) {
  orderCancel(orderId: $orderId, reason: INVENTORY, refund: true, restock: false, notifyCustomer: true) {
    job { id done }
    orderCancelUserErrors { field message code }
  }
}"#;

/// `nodes` takes at most 250 ids a query.
const MAX_NODES_PER_QUERY: usize = 250;

pub struct ShopifyClient {
    http: reqwest::Client,
    graphql_url: Url,
    access_token: Secret,
    options: ClientOptions,
}

#[derive(Debug, Deserialize)]
struct UserError {
    #[serde(default)]
    field: Option<Vec<String>>,
    #[serde(default)]
    message: String,
    #[serde(default)]
    code: Option<String>,
}

impl UserError {
    /// The position in `input.quantities` the error is about, when it names one.
    fn quantity_index(&self) -> Option<usize> {
        let field = self.field.as_deref()?;
        let at = field.iter().position(|part| part == "quantities")?;
        field.get(at + 1)?.parse().ok()
    }

    fn outcome(&self) -> PushOutcome {
        let code = self.code.as_deref().unwrap_or("USER_ERROR");
        let reason = format!("shopify refused the quantity: {code}: {}", self.message);
        match code {
            // Another request with the same key is still running; ours may go through after it.
            "IDEMPOTENCY_CONCURRENT_REQUEST" => PushOutcome::Retryable { reason },
            _ => PushOutcome::Permanent { reason },
        }
    }
}

impl ShopifyClient {
    pub fn new(config: ShopifyConfig) -> Result<Self, ChannelError> {
        let base = http::base_url(CHANNEL, &config.base_url)?;
        let graphql_url = http::endpoint(
            CHANNEL,
            &base,
            &["admin", "api", &config.api_version, "graphql.json"],
        )?;
        Ok(Self {
            http: http::http_client(CHANNEL, &config.options)?,
            graphql_url,
            access_token: config.access_token,
            options: config.options,
        })
    }

    /// Sets the `available` quantity of every update, up to 250 per call.
    pub async fn push(&self, updates: &[QuantityUpdate]) -> Vec<PushOutcome> {
        let (mut outcomes, eligible) = Outcomes::for_channel(updates, CHANNEL);
        for chunk in eligible.chunks(MAX_QUANTITIES_PER_CALL) {
            if outcomes.is_halted() {
                break;
            }
            self.push_chunk(updates, chunk, &mut outcomes).await;
        }
        outcomes.finish()
    }

    async fn push_chunk(
        &self,
        updates: &[QuantityUpdate],
        chunk: &[usize],
        outcomes: &mut Outcomes,
    ) {
        let mut pending = chunk.to_vec();
        // Shopify applies a mutation all or nothing: when some quantities are refused, the others
        // were not set either, so they go again on their own. Each round drops at least one.
        while !pending.is_empty() {
            let key = http::random_key();
            let quantities: Vec<Value> = pending
                .iter()
                .filter_map(|&i| updates.get(i))
                .filter_map(quantity_input)
                .collect();
            let variables = json!({
                "input": {
                    "name": "available",
                    "reason": "correction",
                    "referenceDocumentUri": format!("stockguard://channel-sync/{key}"),
                    "quantities": quantities,
                },
                "idempotencyKey": key,
            });
            let answer = match http::retry_throttled(&self.options, || {
                self.graphql(SET_QUANTITIES, &variables)
            })
            .await
            {
                Ok(answer) => answer,
                Err(err) => {
                    pending.iter().for_each(|&i| outcomes.fail(i, &err));
                    return;
                }
            };
            let result = match mutation_result(&answer) {
                Ok(result) => result,
                Err(err) => {
                    pending.iter().for_each(|&i| outcomes.fail(i, &err));
                    return;
                }
            };
            if result.user_errors.is_empty() {
                pending.iter().for_each(|&i| outcomes.acknowledge(i));
                return;
            }
            let mut refused = vec![false; pending.len()];
            let mut whole_call_error = None;
            for user_error in &result.user_errors {
                match user_error.quantity_index() {
                    Some(at) if at < pending.len() => {
                        refused[at] = true;
                        outcomes.set(pending[at], user_error.outcome());
                    }
                    _ => whole_call_error = Some(user_error.outcome()),
                }
            }
            let rest: Vec<usize> = pending
                .iter()
                .zip(&refused)
                .filter(|(_, refused)| !**refused)
                .map(|(&i, _)| i)
                .collect();
            if let Some(outcome) = whole_call_error {
                rest.iter().for_each(|&i| outcomes.set(i, outcome.clone()));
                return;
            }
            if result.applied {
                rest.iter().for_each(|&i| outcomes.acknowledge(i));
                return;
            }
            pending = rest;
        }
    }

    /// The `available` quantity at the listing's location.
    pub async fn read_shown(&self, listing: &Listing) -> Result<i64, ChannelError> {
        let Listing::Shopify {
            inventory_item_id,
            location_id,
        } = listing
        else {
            return Err(ChannelError::wrong_channel(CHANNEL, listing.kind()));
        };
        let variables = json!({
            "inventoryItemId": gid("InventoryItem", inventory_item_id),
            "locationId": gid("Location", location_id),
        });
        let answer =
            http::retry_throttled(&self.options, || self.graphql(SHOWN_QUANTITY, &variables))
                .await?;
        if let Some(err) = top_level_error(&answer) {
            return Err(err);
        }
        let item = answer
            .pointer("/data/inventoryItem")
            .filter(|item| !item.is_null())
            .ok_or_else(|| {
                ChannelError::new(
                    Kind::UnknownListing,
                    CHANNEL,
                    format!("no inventory item {inventory_item_id}"),
                )
            })?;
        let level = item
            .get("inventoryLevel")
            .filter(|level| !level.is_null())
            .ok_or_else(|| {
                ChannelError::new(
                    Kind::UnknownListing,
                    CHANNEL,
                    format!("inventory item {inventory_item_id} is not stocked at location {location_id}"),
                )
            })?;
        level
            .get("quantities")
            .and_then(Value::as_array)
            .and_then(|quantities| {
                quantities
                    .iter()
                    .find(|q| q.get("name").and_then(Value::as_str) == Some("available"))
            })
            .and_then(|q| q.get("quantity"))
            .and_then(Value::as_i64)
            .ok_or_else(|| {
                ChannelError::new(
                    Kind::UnexpectedAnswer,
                    CHANNEL,
                    format!("no available quantity in {level}"),
                )
            })
    }

    /// The inventory item of each product variant (numeric ids, as order line items carry
    /// them); a variant Shopify does not know is absent.
    pub async fn inventory_items_of_variants(
        &self,
        variant_ids: &[String],
    ) -> Result<std::collections::HashMap<String, String>, ChannelError> {
        let mut found = std::collections::HashMap::new();
        for chunk in variant_ids.chunks(MAX_NODES_PER_QUERY) {
            let ids: Vec<String> = chunk.iter().map(|v| gid("ProductVariant", v)).collect();
            let variables = json!({ "ids": ids });
            let answer = http::retry_throttled(&self.options, || {
                self.graphql(VARIANT_INVENTORY_ITEMS, &variables)
            })
            .await?;
            if let Some(err) = top_level_error(&answer) {
                return Err(err);
            }
            let nodes = answer
                .pointer("/data/nodes")
                .and_then(Value::as_array)
                .ok_or_else(|| {
                    ChannelError::new(
                        Kind::UnexpectedAnswer,
                        CHANNEL,
                        format!("no nodes in {answer}"),
                    )
                })?;
            for node in nodes {
                let numeric = |p: &str, kind: &str| {
                    node.pointer(p)
                        .and_then(Value::as_str)
                        .and_then(|g| g.strip_prefix(&format!("gid://shopify/{kind}/")))
                        .map(str::to_owned)
                };
                if let (Some(variant), Some(item)) = (
                    numeric("/id", "ProductVariant"),
                    numeric("/inventoryItem/id", "InventoryItem"),
                ) {
                    found.insert(variant, item);
                }
            }
        }
        Ok(found)
    }

    /// Cancels an order (numeric id) because its stock is gone: refunded, the buyer told, and
    /// not restocked (the units were never there). Shopify runs it as a job and then sends its
    /// `orders/cancelled` webhook, which releases the order in stockguard.
    pub async fn cancel_order(&self, order_id: &str) -> Result<(), ChannelError> {
        let variables = json!({ "orderId": gid("Order", order_id) });
        let answer =
            http::retry_throttled(&self.options, || self.graphql(CANCEL_ORDER, &variables)).await?;
        if let Some(err) = top_level_error(&answer) {
            return Err(err);
        }
        let result = answer
            .pointer("/data/orderCancel")
            .filter(|r| r.is_object())
            .ok_or_else(|| {
                ChannelError::new(
                    Kind::UnexpectedAnswer,
                    CHANNEL,
                    format!("no orderCancel result in {answer}"),
                )
            })?;
        match result
            .get("orderCancelUserErrors")
            .and_then(Value::as_array)
            .and_then(|errors| errors.first())
        {
            None => Ok(()),
            Some(e) => Err(ChannelError::new(
                Kind::Rejected,
                CHANNEL,
                format!(
                    "shopify refused to cancel order {order_id}: {}: {}",
                    e["code"].as_str().unwrap_or("USER_ERROR"),
                    e["message"].as_str().unwrap_or_default()
                ),
            )),
        }
    }

    /// One GraphQL call. A throttled answer (HTTP 200 with THROTTLED) becomes a throttled error
    /// whose wait comes from the answer's cost figures.
    async fn graphql(&self, query: &str, variables: &Value) -> Result<Value, ChannelError> {
        let request = self
            .http
            .post(self.graphql_url.clone())
            .header("X-Shopify-Access-Token", self.access_token.expose())
            .json(&json!({"query": query, "variables": variables}));
        let answer = http::send(CHANNEL, request).await?;
        if !answer.status.is_success() {
            return Err(answer.error(CHANNEL, false, answer.retry_after()));
        }
        let body: Value = answer.json(CHANNEL)?;
        if is_throttled(&body) {
            return Err(ChannelError::throttled(
                CHANNEL,
                throttle_wait(&body),
                "THROTTLED: query cost exceeds the available points",
            ));
        }
        Ok(body)
    }
}

struct MutationResult {
    applied: bool,
    user_errors: Vec<UserError>,
}

fn mutation_result(answer: &Value) -> Result<MutationResult, ChannelError> {
    if let Some(err) = top_level_error(answer) {
        return Err(err);
    }
    let result = answer
        .pointer("/data/inventorySetQuantities")
        .filter(|result| result.is_object())
        .ok_or_else(|| {
            ChannelError::new(
                Kind::UnexpectedAnswer,
                CHANNEL,
                format!("no inventorySetQuantities result in {answer}"),
            )
        })?;
    let user_errors = match result.get("userErrors") {
        None | Some(Value::Null) => Vec::new(),
        Some(errors) => Vec::<UserError>::deserialize(errors).map_err(|e| {
            ChannelError::new(
                Kind::UnexpectedAnswer,
                CHANNEL,
                format!("unreadable userErrors ({e}): {errors}"),
            )
        })?,
    };
    let applied = result
        .get("inventoryAdjustmentGroup")
        .is_some_and(|group| !group.is_null());
    Ok(MutationResult {
        applied,
        user_errors,
    })
}

fn quantity_input(update: &QuantityUpdate) -> Option<Value> {
    let Listing::Shopify {
        inventory_item_id,
        location_id,
    } = &update.listing
    else {
        return None;
    };
    Some(json!({
        "inventoryItemId": gid("InventoryItem", inventory_item_id),
        "locationId": gid("Location", location_id),
        "quantity": update.quantity,
        // Required from 2026-04; null skips the compare-and-swap.
        "changeFromQuantity": update.change_from_quantity,
    }))
}

fn gid(resource: &str, id: &str) -> String {
    if id.starts_with("gid://") {
        id.to_owned()
    } else {
        format!("gid://shopify/{resource}/{id}")
    }
}

fn is_throttled(body: &Value) -> bool {
    body.get("errors")
        .and_then(Value::as_array)
        .is_some_and(|errors| {
            errors
                .iter()
                .any(|e| e.pointer("/extensions/code").and_then(Value::as_str) == Some("THROTTLED"))
        })
}

/// The time until the bucket holds the points this call asks for, from the answer's
/// `extensions.cost` (where Shopify puts it; some answers nest it in the error instead).
fn throttle_wait(body: &Value) -> Option<Duration> {
    let cost = body
        .pointer("/extensions/cost")
        .or_else(|| body.pointer("/errors/0/extensions/cost"))?;
    let status = cost.get("throttleStatus")?;
    let figure = |name: &str| status.get(name).and_then(Value::as_f64);
    let maximum = figure("maximumAvailable")?;
    let available = figure("currentlyAvailable")?;
    let restore_rate = figure("restoreRate").filter(|rate| *rate > 0.0)?;
    let requested = cost
        .get("requestedQueryCost")
        .and_then(Value::as_f64)
        .unwrap_or(maximum)
        .min(maximum);
    // At least one point's worth, so a retry never comes back before anything was restored.
    let missing = (requested - available).max(1.0);
    Duration::try_from_secs_f64(missing / restore_rate).ok()
}

/// A GraphQL error of the whole call other than throttling.
fn top_level_error(body: &Value) -> Option<ChannelError> {
    let errors = body.get("errors")?;
    let (message, retryable) = match errors {
        Value::Array(items) if !items.is_empty() => {
            let retryable = items.iter().all(|e| {
                matches!(
                    e.pointer("/extensions/code").and_then(Value::as_str),
                    Some("INTERNAL_SERVER_ERROR" | "SERVICE_UNAVAILABLE" | "TIMEOUT")
                )
            });
            let message = items
                .iter()
                .map(describe_error)
                .collect::<Vec<_>>()
                .join("; ");
            (message, retryable)
        }
        Value::Array(_) | Value::Null => return None,
        other => (other.to_string(), false),
    };
    let kind = if retryable {
        Kind::Server
    } else {
        Kind::Rejected
    };
    Some(ChannelError::new(kind, CHANNEL, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn throttle_wait_is_the_missing_points_over_the_restore_rate() {
        let body = json!({
            "errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
            "extensions": {"cost": {
                "requestedQueryCost": 250,
                "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 50, "restoreRate": 100.0}
            }}
        });
        assert!(is_throttled(&body));
        assert_eq!(throttle_wait(&body), Some(Duration::from_secs(2)));
    }

    #[test]
    fn user_errors_name_the_quantity_they_are_about() {
        let error = UserError {
            field: Some(vec![
                "input".into(),
                "quantities".into(),
                "3".into(),
                "locationId".into(),
            ]),
            message: "not stocked".into(),
            code: Some("ITEM_NOT_STOCKED_AT_LOCATION".into()),
        };
        assert_eq!(error.quantity_index(), Some(3));
        assert!(error.outcome().is_permanent());
    }

    #[test]
    fn ids_become_gids_once() {
        assert_eq!(gid("Location", "42"), "gid://shopify/Location/42");
        assert_eq!(
            gid("Location", "gid://shopify/Location/42"),
            "gid://shopify/Location/42"
        );
    }
}
