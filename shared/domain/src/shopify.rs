//! Shopify's order webhooks in the contract's words (contract section 6): the signature check,
//! the topics, and an order or refund turned into inbound events whose `event_id`s come from the
//! order and the change, so that Shopify's at-least-once, unordered deliveries apply once.

use std::collections::BTreeMap;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use crate::error::InvalidInput;
use crate::types::{EntityId, EventId, Sku, format_timestamp, parse_timestamp};

pub const CHANNEL: &str = "shopify";

/// The largest body taken: Shopify's biggest order payloads (hundreds of lines) stay far below
/// it, and anything larger is refused before it is read whole.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Whether `header` (`X-Shopify-Hmac-Sha256`) is base64(HMAC-SHA256(secret, body)). The
/// comparison is constant-time; a missing or undecodable header simply does not verify.
pub fn signature_valid(secret: &[u8], body: &[u8], header: Option<&str>) -> bool {
    let Some(tag) = header.and_then(|h| {
        base64::engine::general_purpose::STANDARD
            .decode(h.trim())
            .ok()
    }) else {
        return false;
    };
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(secret) else {
        return false;
    };
    mac.update(body);
    mac.verify_slice(&tag).is_ok()
}

/// base64(HMAC-SHA256(secret, body)): what Shopify sends, for the fakes and tests that sign.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes a key of any length.
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC accepts any key length");
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Topic {
    OrderCreated,
    OrderCancelled,
    RefundCreated,
}

impl Topic {
    /// The topics stockguard takes; any other is acknowledged and ignored.
    pub fn parse(raw: &str) -> Option<Self> {
        match raw {
            "orders/create" => Some(Self::OrderCreated),
            "orders/cancelled" => Some(Self::OrderCancelled),
            "refunds/create" => Some(Self::RefundCreated),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::OrderCreated => "orders/create",
            Self::OrderCancelled => "orders/cancelled",
            Self::RefundCreated => "refunds/create",
        }
    }
}

/// A line as Shopify names it: the shop's SKU text and the variant it sold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShopLine {
    pub line_item_id: String,
    pub sku: Option<String>,
    pub variant_id: Option<String>,
    pub quantity: i64,
}

/// One change of an order, as a webhook reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShopifyChange {
    Placed {
        order_id: String,
        occurred_at: String,
        lines: Vec<ShopLine>,
    },
    Cancelled {
        order_id: String,
        occurred_at: String,
    },
    /// Only the lines restocked as returns: a line restocked because it was cancelled before
    /// fulfilment never left stock, and its order's cancellation already releases it.
    Returned {
        refund_id: String,
        order_id: String,
        occurred_at: String,
        lines: Vec<ShopLine>,
    },
}

impl ShopifyChange {
    /// The lines whose SKUs must be found.
    pub fn lines(&self) -> &[ShopLine] {
        match self {
            Self::Placed { lines, .. } | Self::Returned { lines, .. } => lines,
            Self::Cancelled { .. } => &[],
        }
    }

    pub fn order_id(&self) -> &str {
        match self {
            Self::Placed { order_id, .. }
            | Self::Cancelled { order_id, .. }
            | Self::Returned { order_id, .. } => order_id,
        }
    }
}

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput::new("invalid_payload", field, message)
}

/// Shopify's ids are integers beyond 2^53; they are kept as decimal text. Ids sent as strings
/// (as some API versions do) are taken as long as they are digits.
fn id(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidInput> {
    match obj.get(field) {
        Some(Value::Number(n)) if n.as_u64().is_some() => Ok(n.to_string()),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Ok(s.clone())
        }
        _ => Err(invalid(field, format!("`{field}` must be a numeric id"))),
    }
}

fn opt_id(obj: &Map<String, Value>, field: &str) -> Result<Option<String>, InvalidInput> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => id(obj, field).map(Some),
    }
}

/// A timestamp normalised to UTC milliseconds, so every delivery of one change has the same
/// payload whatever offset the shop writes.
fn time(obj: &Map<String, Value>, field: &str) -> Result<String, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_str)
        .and_then(parse_timestamp)
        .map(format_timestamp)
        .ok_or_else(|| invalid(field, format!("`{field}` must be an RFC 3339 timestamp")))
}

fn object<'a>(v: &'a Value, field: &str) -> Result<&'a Map<String, Value>, InvalidInput> {
    v.as_object()
        .ok_or_else(|| invalid(field, format!("`{field}` must be an object")))
}

fn array<'a>(obj: &'a Map<String, Value>, field: &str) -> Result<&'a Vec<Value>, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(field, format!("`{field}` must be an array")))
}

fn line(item: &Map<String, Value>, quantity: i64) -> Result<ShopLine, InvalidInput> {
    Ok(ShopLine {
        line_item_id: id(item, "id")?,
        sku: item
            .get("sku")
            .and_then(Value::as_str)
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        variant_id: opt_id(item, "variant_id")?,
        quantity,
    })
}

fn quantity(obj: &Map<String, Value>, field: &str) -> Result<i64, InvalidInput> {
    obj.get(field)
        .and_then(Value::as_i64)
        .filter(|q| (0..=1_000_000).contains(q))
        .ok_or_else(|| {
            invalid(
                field,
                format!("`{field}` must be an integer 0 to 1,000,000"),
            )
        })
}

/// The `detail-type` of every webhook Shopify delivers to an Amazon EventBridge partner event
/// source, whatever its topic: the topic travels in the metadata, as a header does over HTTP.
pub const PARTNER_DETAIL_TYPE: &str = "shopifyWebhook";

/// Shopify's partner event sources, and so their buses, are named
/// `aws.partner/shopify.com/<app id>/<source name>`.
pub const PARTNER_SOURCE_PREFIX: &str = "aws.partner/shopify.com/";

/// A webhook as Shopify's partner event source delivers it: the HTTP delivery's headers and
/// body, without a signature to check (only Shopify can put events on its partner source).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartnerDelivery {
    /// `X-Shopify-Topic`, taken or not by [`Topic::parse`].
    pub topic: String,
    pub webhook_id: Option<String>,
    pub shop_domain: Option<String>,
    /// The payload as JSON text: the body the HTTP webhook would carry.
    pub body: Vec<u8>,
}

/// Reads an EventBridge event from Shopify's partner source, as a rule delivers it to SQS:
/// `{"source": "aws.partner/shopify.com/…", "detail-type": "shopifyWebhook", "detail":
/// {"metadata": {"X-Shopify-Topic": …, "X-Shopify-Webhook-Id": …, …}, "payload": {…}}}`.
pub fn parse_partner_event(raw: &str) -> Result<PartnerDelivery, InvalidInput> {
    let value: Value =
        serde_json::from_str(raw).map_err(|e| invalid("event", format!("not JSON: {e}")))?;
    let event = object(&value, "event")?;
    let source = event.get("source").and_then(Value::as_str).unwrap_or("");
    if !source.starts_with(PARTNER_SOURCE_PREFIX) {
        return Err(invalid(
            "source",
            format!("`source` {source:?} is not a Shopify partner event source"),
        ));
    }
    let detail_type = event.get("detail-type").and_then(Value::as_str);
    if detail_type != Some(PARTNER_DETAIL_TYPE) {
        return Err(invalid(
            "detail-type",
            format!("`detail-type` must be {PARTNER_DETAIL_TYPE}, not {detail_type:?}"),
        ));
    }
    let detail = object(event.get("detail").unwrap_or(&Value::Null), "detail")?;
    let metadata = object(
        detail.get("metadata").unwrap_or(&Value::Null),
        "detail.metadata",
    )?;
    // Header names are case-insensitive, as over HTTP.
    let header = |name: &str| {
        metadata
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.as_str())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let topic = header("X-Shopify-Topic").ok_or_else(|| {
        invalid(
            "detail.metadata.X-Shopify-Topic",
            "the event names no `X-Shopify-Topic`",
        )
    })?;
    let payload = detail.get("payload").unwrap_or(&Value::Null);
    object(payload, "detail.payload")?;
    Ok(PartnerDelivery {
        topic,
        webhook_id: header("X-Shopify-Webhook-Id"),
        shop_domain: header("X-Shopify-Shop-Domain"),
        body: serde_json::to_vec(payload).map_err(|e| invalid("detail.payload", e.to_string()))?,
    })
}

/// Reads a webhook body of `topic`. Called only after its origin is trusted: its signature
/// verified, or it came from Shopify's partner event source.
pub fn parse_change(topic: Topic, body: &[u8]) -> Result<ShopifyChange, InvalidInput> {
    let value: Value =
        serde_json::from_slice(body).map_err(|e| invalid("body", format!("not JSON: {e}")))?;
    let obj = object(&value, "body")?;
    match topic {
        Topic::OrderCreated => {
            let mut lines = Vec::new();
            for (i, item) in array(obj, "line_items")?.iter().enumerate() {
                let item = object(item, &format!("line_items[{i}]"))?;
                // A gift card is not stock; a line of quantity 0 was removed.
                if item.get("gift_card").and_then(Value::as_bool) == Some(true) {
                    continue;
                }
                let q = quantity(item, "quantity")?;
                if q > 0 {
                    lines.push(line(item, q)?);
                }
            }
            Ok(ShopifyChange::Placed {
                order_id: id(obj, "id")?,
                occurred_at: time(obj, "created_at")?,
                lines,
            })
        }
        Topic::OrderCancelled => Ok(ShopifyChange::Cancelled {
            order_id: id(obj, "id")?,
            occurred_at: match obj.get("cancelled_at") {
                Some(Value::String(_)) => time(obj, "cancelled_at")?,
                _ => time(obj, "updated_at")?,
            },
        }),
        Topic::RefundCreated => {
            let mut lines = Vec::new();
            for (i, refunded) in array(obj, "refund_line_items")?.iter().enumerate() {
                let refunded = object(refunded, &format!("refund_line_items[{i}]"))?;
                let restock = refunded.get("restock_type").and_then(Value::as_str);
                // `legacy_restock` predates the split into return and cancel; it is taken as a
                // return, the only case in which units come back into stock.
                if !matches!(restock, Some("return" | "legacy_restock")) {
                    continue;
                }
                let q = quantity(refunded, "quantity")?;
                let item = refunded
                    .get("line_item")
                    .ok_or_else(|| invalid("line_item", "a refund line has no `line_item`"))?;
                let mut l = line(object(item, "line_item")?, q)?;
                if let Some(line_item_id) = opt_id(refunded, "line_item_id")? {
                    l.line_item_id = line_item_id;
                }
                if q > 0 {
                    lines.push(l);
                }
            }
            Ok(ShopifyChange::Returned {
                refund_id: id(obj, "id")?,
                order_id: id(obj, "order_id")?,
                occurred_at: time(obj, "created_at")?,
                lines,
            })
        }
    }
}

/// The contract's order id of a Shopify order: prefixed, so that no other channel's order with
/// the same number can meet it in the state table.
pub fn order_id(shopify_id: &str) -> String {
    format!("{CHANNEL}-{shopify_id}")
}

/// A line whose SKU could not be found: it is dead-lettered with reason `unknown_listing` while
/// the rest of its order applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnmappedLine {
    pub order_id: String,
    pub line: ShopLine,
}

impl UnmappedLine {
    /// What the dead-letter message carries, for an operator to map the listing and replay.
    pub fn to_json(&self, topic: Topic) -> Value {
        json!({
            "channel": CHANNEL,
            "topic": topic.as_str(),
            "order_id": order_id(&self.order_id),
            "line_item_id": self.line.line_item_id,
            "sku": self.line.sku,
            "variant_id": self.line.variant_id,
            "quantity": self.line.quantity,
        })
    }
}

/// Inbound events (`detail-type`, `detail`) for a change, and the lines that map to nothing.
#[derive(Debug, Clone, PartialEq)]
pub struct Mapped {
    pub events: Vec<(&'static str, Value)>,
    pub unmapped: Vec<UnmappedLine>,
}

fn event_id(parts: &[&str]) -> Result<String, InvalidInput> {
    let raw = format!("{CHANNEL}:{}", parts.join(":"));
    EventId::parse(&raw).map_err(|m| invalid("id", m))?;
    Ok(raw)
}

/// Maps a change to the contract's inbound events. `sku_of` finds our SKU for a line (its `sku`
/// when it is one of ours, else the listing of its variant's inventory item). Lines of one SKU
/// become one line. Every delivery of the same change gives the same events, ids included.
pub fn to_inbound(
    change: &ShopifyChange,
    sku_of: impl Fn(&ShopLine) -> Option<Sku>,
) -> Result<Mapped, InvalidInput> {
    let mut mapped = Mapped {
        events: Vec::new(),
        unmapped: Vec::new(),
    };
    let ours = EntityId::parse(&order_id(change.order_id()))
        .map_err(|m| invalid("id", m))?
        .as_str()
        .to_owned();
    match change {
        ShopifyChange::Placed {
            order_id,
            occurred_at,
            lines,
        } => {
            let mut by_sku: BTreeMap<Sku, i64> = BTreeMap::new();
            for l in lines {
                match sku_of(l) {
                    Some(sku) => *by_sku.entry(sku).or_default() += l.quantity,
                    None => mapped.unmapped.push(UnmappedLine {
                        order_id: order_id.clone(),
                        line: l.clone(),
                    }),
                }
            }
            if !by_sku.is_empty() {
                let lines: Vec<Value> = by_sku
                    .iter()
                    .map(|(sku, q)| json!({"sku": sku, "quantity": q}))
                    .collect();
                mapped.events.push((
                    "OrderPlaced",
                    json!({
                        "event_id": event_id(&["order", order_id, "placed"])?,
                        "occurred_at": occurred_at, "order_id": ours, "channel": CHANNEL,
                        "lines": lines,
                    }),
                ));
            }
        }
        ShopifyChange::Cancelled {
            order_id,
            occurred_at,
        } => mapped.events.push((
            "OrderCancelled",
            json!({
                "event_id": event_id(&["order", order_id, "cancelled"])?,
                "occurred_at": occurred_at, "order_id": ours,
            }),
        )),
        ShopifyChange::Returned {
            refund_id,
            order_id,
            occurred_at,
            lines,
        } => {
            for l in lines {
                let Some(sku) = sku_of(l) else {
                    mapped.unmapped.push(UnmappedLine {
                        order_id: order_id.clone(),
                        line: l.clone(),
                    });
                    continue;
                };
                let return_id = format!("{CHANNEL}-refund-{refund_id}-{}", l.line_item_id);
                EntityId::parse(&return_id).map_err(|m| invalid("id", m))?;
                mapped.events.push((
                    "ReturnReceived",
                    json!({
                        "event_id": event_id(&["refund", refund_id, &l.line_item_id])?,
                        "occurred_at": occurred_at, "return_id": return_id, "sku": sku,
                        "quantity": l.quantity, "restock": true, "order_id": ours,
                    }),
                ));
            }
        }
    }
    Ok(mapped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse_inbound;

    const SECRET: &[u8] = b"hush";

    fn order() -> Value {
        json!({
            "id": 820982911946154508u64, "created_at": "2026-11-28T10:00:00-05:00",
            "cancelled_at": null, "updated_at": "2026-11-28T10:00:01-05:00",
            "line_items": [
                {"id": 466157049u64, "variant_id": 39072856u64, "sku": "TEE-M", "quantity": 2},
                {"id": 518995019u64, "variant_id": 49148385u64, "sku": "shop-hoodie", "quantity": 1},
                {"id": 703073504u64, "variant_id": 457924702u64, "sku": "", "quantity": 1},
                {"id": 703073505u64, "variant_id": null, "sku": null, "quantity": 1, "gift_card": true},
                {"id": 703073506u64, "variant_id": 39072856u64, "sku": "TEE-M", "quantity": 1}
            ]
        })
    }

    fn ours(l: &ShopLine) -> Option<Sku> {
        match (l.sku.as_deref(), l.variant_id.as_deref()) {
            (Some("TEE-M"), _) => Some(Sku::parse("TEE-M").unwrap()),
            (_, Some("49148385")) => Some(Sku::parse("HOODIE").unwrap()),
            _ => None,
        }
    }

    fn body(v: &Value) -> Vec<u8> {
        serde_json::to_vec(v).unwrap()
    }

    #[test]
    fn a_signature_verifies_only_with_the_secret_over_the_exact_body() {
        let b = body(&order());
        let header = sign(SECRET, &b);
        assert!(signature_valid(SECRET, &b, Some(&header)));
        assert!(
            !signature_valid(b"other", &b, Some(&header)),
            "wrong secret"
        );
        let mut tampered = b.clone();
        tampered[10] ^= 1;
        assert!(
            !signature_valid(SECRET, &tampered, Some(&header)),
            "tampered"
        );
        assert!(!signature_valid(SECRET, &b, None), "missing header");
        assert!(!signature_valid(SECRET, &b, Some("not base64!")), "garbage");
        assert!(!signature_valid(SECRET, &b, Some("")), "empty");
    }

    #[test]
    fn the_signature_is_hmac_sha256_as_rfc_4231_gives_it() {
        // RFC 4231 test case 2, as base64.
        let tag = sign(b"Jefe", b"what do ya want for nothing?");
        let hex_tag = hex::encode(
            base64::engine::general_purpose::STANDARD
                .decode(tag)
                .unwrap(),
        );
        assert_eq!(
            hex_tag,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn topics() {
        for t in [
            Topic::OrderCreated,
            Topic::OrderCancelled,
            Topic::RefundCreated,
        ] {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
        }
        assert_eq!(Topic::parse("orders/updated"), None);
        assert_eq!(Topic::parse("inventory_levels/update"), None);
    }

    #[test]
    fn an_order_becomes_one_order_placed_with_lines_merged_by_sku_and_unknown_lines_apart() {
        let change = parse_change(Topic::OrderCreated, &body(&order())).unwrap();
        let mapped = to_inbound(&change, ours).unwrap();
        assert_eq!(mapped.events.len(), 1);
        let (detail_type, detail) = &mapped.events[0];
        assert_eq!(*detail_type, "OrderPlaced");
        assert_eq!(
            detail,
            &json!({
                "event_id": "shopify:order:820982911946154508:placed",
                "occurred_at": "2026-11-28T15:00:00.000Z",
                "order_id": "shopify-820982911946154508", "channel": "shopify",
                "lines": [{"sku": "HOODIE", "quantity": 1}, {"sku": "TEE-M", "quantity": 3}],
            })
        );
        // The line with no SKU of ours and an unmapped variant; the gift card is not stock.
        assert_eq!(mapped.unmapped.len(), 1);
        assert_eq!(mapped.unmapped[0].line.line_item_id, "703073504");
        assert_eq!(
            mapped.unmapped[0].to_json(Topic::OrderCreated)["order_id"],
            "shopify-820982911946154508"
        );
        parse_inbound(detail_type, detail).expect("a valid contract event");
    }

    #[test]
    fn every_delivery_of_a_change_maps_to_the_same_event() {
        let a = to_inbound(
            &parse_change(Topic::OrderCreated, &body(&order())).unwrap(),
            ours,
        )
        .unwrap();
        // Redelivered later, with the shop's offset written differently and keys reordered.
        let mut again = order();
        again["created_at"] = json!("2026-11-28T15:00:00Z");
        let b = to_inbound(
            &parse_change(Topic::OrderCreated, &body(&again)).unwrap(),
            ours,
        )
        .unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn an_order_with_no_line_of_ours_publishes_nothing_and_dead_letters_every_line() {
        let mut o = order();
        o["line_items"] = json!([{"id": 1, "variant_id": 2, "sku": "X", "quantity": 1}]);
        let mapped =
            to_inbound(&parse_change(Topic::OrderCreated, &body(&o)).unwrap(), ours).unwrap();
        assert!(mapped.events.is_empty());
        assert_eq!(mapped.unmapped.len(), 1);
    }

    #[test]
    fn a_cancellation_releases_the_whole_order() {
        let mut o = order();
        o["cancelled_at"] = json!("2026-11-28T11:00:00-05:00");
        let mapped = to_inbound(
            &parse_change(Topic::OrderCancelled, &body(&o)).unwrap(),
            ours,
        )
        .unwrap();
        assert_eq!(
            mapped.events,
            vec![(
                "OrderCancelled",
                json!({"event_id": "shopify:order:820982911946154508:cancelled",
                       "occurred_at": "2026-11-28T16:00:00.000Z",
                       "order_id": "shopify-820982911946154508"})
            )]
        );
        parse_inbound("OrderCancelled", &mapped.events[0].1).unwrap();
    }

    #[test]
    fn a_refund_returns_only_lines_restocked_as_returns() {
        let refund = json!({
            "id": 929361462u64, "order_id": 820982911946154508u64,
            "created_at": "2026-11-29T09:00:00Z",
            "refund_line_items": [
                {"id": 1, "line_item_id": 466157049u64, "quantity": 1, "restock_type": "return",
                 "line_item": {"id": 466157049u64, "variant_id": 39072856u64, "sku": "TEE-M", "quantity": 2}},
                {"id": 2, "line_item_id": 518995019u64, "quantity": 1, "restock_type": "no_restock",
                 "line_item": {"id": 518995019u64, "variant_id": 49148385u64, "sku": "shop-hoodie", "quantity": 1}},
                {"id": 3, "line_item_id": 703073506u64, "quantity": 1, "restock_type": "cancel",
                 "line_item": {"id": 703073506u64, "variant_id": 39072856u64, "sku": "TEE-M", "quantity": 1}},
                {"id": 4, "line_item_id": 703073504u64, "quantity": 1, "restock_type": "legacy_restock",
                 "line_item": {"id": 703073504u64, "variant_id": 457924702u64, "sku": "", "quantity": 1}}
            ]
        });
        let mapped = to_inbound(
            &parse_change(Topic::RefundCreated, &body(&refund)).unwrap(),
            ours,
        )
        .unwrap();
        assert_eq!(
            mapped.events,
            vec![(
                "ReturnReceived",
                json!({"event_id": "shopify:refund:929361462:466157049",
                       "occurred_at": "2026-11-29T09:00:00.000Z",
                       "return_id": "shopify-refund-929361462-466157049", "sku": "TEE-M",
                       "quantity": 1, "restock": true, "order_id": "shopify-820982911946154508"})
            )]
        );
        parse_inbound("ReturnReceived", &mapped.events[0].1).unwrap();
        // The legacy restock of an unmapped variant is dead-lettered.
        assert_eq!(mapped.unmapped.len(), 1);
        assert_eq!(mapped.unmapped[0].line.line_item_id, "703073504");
    }

    #[test]
    fn what_is_not_an_order_is_invalid() {
        for (topic, b) in [
            (Topic::OrderCreated, b"not json".to_vec()),
            (Topic::OrderCreated, body(&json!([1, 2]))),
            (
                Topic::OrderCreated,
                body(&json!({"id": 1, "created_at": "2026-11-28T10:00:00Z"})),
            ),
            (
                Topic::OrderCreated,
                body(&json!({"id": "abc", "created_at": "2026-11-28T10:00:00Z", "line_items": []})),
            ),
            (
                Topic::OrderCreated,
                body(&json!({"id": 1, "created_at": "yesterday", "line_items": []})),
            ),
            (
                Topic::OrderCreated,
                body(&json!({"id": 1, "created_at": "2026-11-28T10:00:00Z",
                "line_items": [{"id": 2, "sku": "A", "quantity": -1}]})),
            ),
            (Topic::OrderCancelled, body(&json!({"id": 1}))),
            (
                Topic::RefundCreated,
                body(
                    &json!({"id": 1, "order_id": 2, "created_at": "2026-11-28T10:00:00Z",
                "refund_line_items": [{"quantity": 1, "restock_type": "return"}]}),
                ),
            ),
        ] {
            let e = parse_change(topic, &b).unwrap_err();
            assert_eq!(e.code, "invalid_payload", "{e:?}");
        }
    }

    /// An order as Shopify's partner event source delivers it to a rule's queue.
    fn partner_event(topic: &str, payload: Value) -> String {
        json!({
            "version": "0", "id": "3e8ad1b5-1f52-4d6a-9f0e-0c5c2b9d1a77",
            "detail-type": "shopifyWebhook",
            "source": "aws.partner/shopify.com/1830279/stockguard",
            "account": "123456789012", "time": "2026-11-28T15:00:01Z", "region": "us-east-1",
            "resources": [],
            "detail": {
                "payload": payload,
                "metadata": {
                    "Content-Type": "application/json",
                    "X-Shopify-Topic": topic,
                    "X-Shopify-Hmac-Sha256": "c2lnbmVkIG92ZXIgdGhlIG9yaWdpbmFsIGJ5dGVz",
                    "X-Shopify-Shop-Domain": "fake-shop.myshopify.com",
                    "X-Shopify-Webhook-Id": "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043",
                    "X-Shopify-Triggered-At": "2026-11-28T15:00:00.512Z",
                    "X-Shopify-API-Version": "2026-10"
                }
            }
        })
        .to_string()
    }

    #[test]
    fn a_partner_event_is_the_webhook_it_carries_and_maps_to_the_same_events() {
        let delivery = parse_partner_event(&partner_event("orders/create", order())).unwrap();
        assert_eq!(delivery.topic, "orders/create");
        assert_eq!(
            delivery.webhook_id.as_deref(),
            Some("b54557e4-bdd9-4b37-8a5f-bf7d70bcd043")
        );
        assert_eq!(
            delivery.shop_domain.as_deref(),
            Some("fake-shop.myshopify.com")
        );
        let topic = Topic::parse(&delivery.topic).unwrap();
        let from_partner = to_inbound(&parse_change(topic, &delivery.body).unwrap(), ours);
        let from_webhook = to_inbound(&parse_change(topic, &body(&order())).unwrap(), ours);
        assert_eq!(from_partner.unwrap(), from_webhook.unwrap(), "same ids too");
    }

    #[test]
    fn partner_metadata_names_are_read_whatever_their_case_and_any_topic_passes_through() {
        let raw = partner_event("products/update", json!({"id": 1}))
            .replace("X-Shopify-Topic", "x-shopify-topic");
        let delivery = parse_partner_event(&raw).unwrap();
        assert_eq!(delivery.topic, "products/update");
        assert_eq!(
            Topic::parse(&delivery.topic),
            None,
            "left to the caller to ignore"
        );
    }

    #[test]
    fn what_is_not_a_shopify_partner_event_is_invalid_with_the_field_named() {
        let good: Value = serde_json::from_str(&partner_event("orders/create", order())).unwrap();
        let with = |f: &dyn Fn(&mut Value)| {
            let mut v = good.clone();
            f(&mut v);
            v.to_string()
        };
        for (raw, field) in [
            ("not json".to_owned(), "event"),
            ("[1]".to_owned(), "event"),
            (with(&|v| v["source"] = json!("erp.netsuite")), "source"),
            (
                with(&|v| v["detail-type"] = json!("OrderPlaced")),
                "detail-type",
            ),
            (with(&|v| v["detail"] = json!("x")), "detail"),
            (
                with(&|v| {
                    v["detail"].as_object_mut().unwrap().remove("metadata");
                }),
                "detail.metadata",
            ),
            (
                with(&|v| v["detail"]["metadata"]["X-Shopify-Topic"] = json!(7)),
                "detail.metadata.X-Shopify-Topic",
            ),
            (
                with(&|v| v["detail"]["payload"] = json!("{\"id\": 1}")),
                "detail.payload",
            ),
        ] {
            let e = parse_partner_event(&raw).unwrap_err();
            assert_eq!(
                (e.code, e.field.as_str()),
                ("invalid_payload", field),
                "{raw}"
            );
        }
        // A well-formed envelope around a payload that is no order fails as the webhook does.
        let delivery =
            parse_partner_event(&partner_event("orders/create", json!({"hello": "world"})))
                .unwrap();
        let e = parse_change(Topic::OrderCreated, &delivery.body).unwrap_err();
        assert_eq!(e.code, "invalid_payload");
    }
}
