//! Validation of the contract's inbound events (contract section 1): every field is checked and
//! every violation has its own error code, so a producer can fix its event from the message alone.

use std::collections::HashSet;

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::InvalidInput;
use crate::types::{ChannelName, EntityId, EventId, Line, Millis, Sku, parse_timestamp};
use crate::wire;

/// Largest `detail` accepted. It stops a runaway producer before it reaches the table; it is also
/// the only bound on an order's lines: 150 lines of the longest SKUs and quantities fit, and
/// several hundred of common ones.
pub const MAX_DETAIL_BYTES: usize = 16 * 1024;
/// Lines of a reservation (contract: 1 to 25). An order (`OrderPlaced`, `OrderShipped`,
/// `OrderCancelled`) has no limit: the contract sets none, and one of more lines than a
/// transaction holds applies in parts ([`crate::order::split_lines`]).
pub const MAX_LINES: usize = 25;
pub const MAX_QUANTITY: i64 = 1_000_000;
pub const MAX_COUNTED_ON_HAND: i64 = 1_000_000_000;
pub const DEFAULT_TTL_SECONDS: u32 = 900;
/// The default while an `add_to_cart_surge` is active on a line's SKU: abandoned carts give their
/// units back three times sooner while demand runs hot.
pub const SURGE_TTL_SECONDS: u32 = 300;
pub const MAX_TTL_SECONDS: u32 = 3600;

/// Fields every inbound `detail` carries.
#[derive(Debug, Clone, PartialEq)]
pub struct Common {
    pub event_id: EventId,
    pub occurred_at: Millis,
    pub sequence: Option<u64>,
}

/// What a demand signal measured.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    serde::Serialize,
    serde::Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
#[schemars(inline)]
pub enum SignalKind {
    AddToCartSurge,
    SocialMentionVelocity,
    CompetitorStockout,
    SearchVolume,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::AddToCartSurge => "add_to_cart_surge",
            SignalKind::SocialMentionVelocity => "social_mention_velocity",
            SignalKind::CompetitorStockout => "competitor_stockout",
            SignalKind::SearchVolume => "search_volume",
        }
    }
}

/// A checkout's request to soft-reserve every line or none (event path and HTTP API alike).
#[derive(Debug, Clone, PartialEq)]
pub struct ReservationRequest {
    pub reservation_id: EntityId,
    pub channel: ChannelName,
    pub lines: Vec<Line>,
    pub ttl_seconds: u32,
    /// `ttl_seconds` was not given: the default applies, which a demand surge shortens.
    pub ttl_defaulted: bool,
}

/// What an inbound event asks stockguard to do to inventory.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    StockReceived {
        sku: Sku,
        quantity: i64,
        reference: Option<String>,
    },
    StockCounted {
        sku: Sku,
        on_hand: i64,
    },
    StockAdjusted {
        sku: Sku,
        delta: i64,
        reason: String,
    },
    ReservationRequested(ReservationRequest),
    ReservationConfirmed {
        reservation_id: EntityId,
        order_id: EntityId,
    },
    ReservationReleased {
        reservation_id: EntityId,
        reason: Option<String>,
    },
    OrderPlaced {
        order_id: EntityId,
        channel: ChannelName,
        lines: Vec<Line>,
    },
    OrderShipped {
        order_id: EntityId,
        lines: Option<Vec<Line>>,
    },
    OrderCancelled {
        order_id: EntityId,
        lines: Option<Vec<Line>>,
    },
    ReturnReceived {
        return_id: EntityId,
        sku: Sku,
        quantity: i64,
        restock: bool,
        order_id: Option<EntityId>,
    },
    DemandSignal {
        sku: Sku,
        signal: SignalKind,
        strength: f64,
        expires_at: Option<Millis>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub struct InboundEvent {
    pub common: Common,
    pub command: Command,
}

/// The eleven inbound detail-types of the contract, one handler each.
pub const INBOUND_DETAIL_TYPES: [&str; 11] = [
    "StockReceived",
    "StockCounted",
    "StockAdjusted",
    "ReservationRequested",
    "ReservationConfirmed",
    "ReservationReleased",
    "OrderPlaced",
    "OrderShipped",
    "OrderCancelled",
    "ReturnReceived",
    "DemandSignal",
];

impl InboundEvent {
    pub fn detail_type(&self) -> &'static str {
        self.command.detail_type()
    }
}

impl Command {
    pub fn detail_type(&self) -> &'static str {
        match self {
            Command::StockReceived { .. } => "StockReceived",
            Command::StockCounted { .. } => "StockCounted",
            Command::StockAdjusted { .. } => "StockAdjusted",
            Command::ReservationRequested(_) => "ReservationRequested",
            Command::ReservationConfirmed { .. } => "ReservationConfirmed",
            Command::ReservationReleased { .. } => "ReservationReleased",
            Command::OrderPlaced { .. } => "OrderPlaced",
            Command::OrderShipped { .. } => "OrderShipped",
            Command::OrderCancelled { .. } => "OrderCancelled",
            Command::ReturnReceived { .. } => "ReturnReceived",
            Command::DemandSignal { .. } => "DemandSignal",
        }
    }

    /// SKUs whose position this command may change, in a stable order.
    pub fn skus(&self) -> Vec<Sku> {
        let mut skus: Vec<Sku> = match self {
            Command::StockReceived { sku, .. }
            | Command::StockCounted { sku, .. }
            | Command::StockAdjusted { sku, .. }
            | Command::ReturnReceived { sku, .. }
            | Command::DemandSignal { sku, .. } => vec![sku.clone()],
            Command::ReservationRequested(r) => r.lines.iter().map(|l| l.sku.clone()).collect(),
            Command::OrderPlaced { lines, .. } => lines.iter().map(|l| l.sku.clone()).collect(),
            Command::OrderShipped { lines, .. } | Command::OrderCancelled { lines, .. } => {
                lines.iter().flatten().map(|l| l.sku.clone()).collect()
            }
            Command::ReservationConfirmed { .. } | Command::ReservationReleased { .. } => vec![],
        };
        skus.sort();
        skus.dedup();
        skus
    }
}

/// Parses and validates one inbound event. `detail_type` is the envelope's `detail-type`.
///
/// The contract's rules are checked on the raw JSON first, in the documented order, so that the
/// first violation is reported with its own code and field; the checked detail is then decoded into
/// its type in [`crate::wire`], which is what the published schemas are generated from, and the
/// command is built from that.
pub fn parse_inbound(detail_type: &str, detail: &Value) -> Result<InboundEvent, InvalidInput> {
    if !INBOUND_DETAIL_TYPES.contains(&detail_type) {
        return Err(InvalidInput::new(
            "unknown_detail_type",
            "detail-type",
            format!("`{detail_type}` is not an inbound detail-type of the contract"),
        ));
    }
    let obj = detail_object(detail)?;
    check_common(obj)?;
    let (common, command) = match detail_type {
        "StockReceived" => {
            sku(obj, "sku")?;
            quantity(obj, "quantity")?;
            opt_string(obj, "reference", 256)?;
            let d: wire::StockReceived = decode(detail)?;
            let command = Command::StockReceived {
                sku: d.sku,
                quantity: d.quantity,
                reference: d.reference,
            };
            (d.common, command)
        }
        "StockCounted" => {
            sku(obj, "sku")?;
            int_in(obj, "on_hand", 0, MAX_COUNTED_ON_HAND)?;
            let d: wire::StockCounted = decode(detail)?;
            let command = Command::StockCounted {
                sku: d.sku,
                on_hand: d.on_hand,
            };
            (d.common, command)
        }
        "StockAdjusted" => {
            let delta = int_in(obj, "delta", -MAX_QUANTITY, MAX_QUANTITY)?;
            if delta == 0 {
                return Err(InvalidInput::new(
                    "quantity_out_of_range",
                    "delta",
                    "delta must be non-zero",
                ));
            }
            sku(obj, "sku")?;
            string(obj, "reason", 256)?;
            let d: wire::StockAdjusted = decode(detail)?;
            let command = Command::StockAdjusted {
                sku: d.sku,
                delta: d.delta,
                reason: d.reason,
            };
            (d.common, command)
        }
        "ReservationRequested" => {
            check_reservation_fields(obj)?;
            let d: wire::ReservationRequested = decode(detail)?;
            let command = Command::ReservationRequested(reservation_request(d.request));
            (d.common, command)
        }
        "ReservationConfirmed" => {
            entity_id(obj, "reservation_id")?;
            entity_id(obj, "order_id")?;
            let d: wire::ReservationConfirmed = decode(detail)?;
            let command = Command::ReservationConfirmed {
                reservation_id: d.reservation_id,
                order_id: d.order_id,
            };
            (d.common, command)
        }
        "ReservationReleased" => {
            entity_id(obj, "reservation_id")?;
            opt_string(obj, "reason", 256)?;
            let d: wire::ReservationReleased = decode(detail)?;
            let command = Command::ReservationReleased {
                reservation_id: d.reservation_id,
                reason: d.reason,
            };
            (d.common, command)
        }
        "OrderPlaced" => {
            entity_id(obj, "order_id")?;
            channel(obj, "channel")?;
            lines(obj, "lines", None)?;
            let d: wire::OrderPlaced = decode(detail)?;
            let command = Command::OrderPlaced {
                order_id: d.order_id,
                channel: d.channel,
                lines: d.lines,
            };
            (d.common, command)
        }
        "OrderShipped" => {
            entity_id(obj, "order_id")?;
            opt_lines(obj, "lines", None)?;
            let d: wire::OrderShipped = decode(detail)?;
            let command = Command::OrderShipped {
                order_id: d.order_id,
                lines: d.lines,
            };
            (d.common, command)
        }
        "OrderCancelled" => {
            entity_id(obj, "order_id")?;
            opt_lines(obj, "lines", None)?;
            let d: wire::OrderCancelled = decode(detail)?;
            let command = Command::OrderCancelled {
                order_id: d.order_id,
                lines: d.lines,
            };
            (d.common, command)
        }
        "ReturnReceived" => {
            entity_id(obj, "return_id")?;
            sku(obj, "sku")?;
            quantity(obj, "quantity")?;
            boolean(obj, "restock")?;
            if !matches!(obj.get("order_id"), None | Some(Value::Null)) {
                entity_id(obj, "order_id")?;
            }
            let d: wire::ReturnReceived = decode(detail)?;
            let command = Command::ReturnReceived {
                return_id: d.return_id,
                sku: d.sku,
                quantity: d.quantity,
                restock: d.restock,
                order_id: d.order_id,
            };
            (d.common, command)
        }
        "DemandSignal" => {
            sku(obj, "sku")?;
            signal(obj, "signal")?;
            strength(obj, "strength")?;
            if !matches!(obj.get("expires_at"), None | Some(Value::Null)) {
                timestamp(obj, "expires_at")?;
            }
            let d: wire::DemandSignal = decode(detail)?;
            let command = Command::DemandSignal {
                sku: d.sku,
                signal: d.signal,
                strength: d.strength,
                expires_at: d
                    .expires_at
                    .map(|raw| millis("expires_at", &raw))
                    .transpose()?,
            };
            (d.common, command)
        }
        _ => unreachable!("checked against INBOUND_DETAIL_TYPES above"),
    };
    let common = Common {
        event_id: common.event_id,
        occurred_at: millis("occurred_at", &common.occurred_at)?,
        sequence: common.sequence,
    };
    Ok(InboundEvent { common, command })
}

/// Validates the body of `POST /v1/reservations` (the event's fields without the common ones).
pub fn parse_reservation_request(body: &Value) -> Result<ReservationRequest, InvalidInput> {
    check_reservation_fields(detail_object(body)?)?;
    Ok(reservation_request(decode(body)?))
}

/// Decodes a detail whose fields were checked. A failure here means the type and the checks
/// disagree; it is reported rather than trusted.
fn decode<T: DeserializeOwned>(detail: &Value) -> Result<T, InvalidInput> {
    T::deserialize(detail).map_err(|e| {
        InvalidInput::new(
            "wrong_type",
            "detail",
            format!("detail does not decode: {e}"),
        )
    })
}

fn detail_object(detail: &Value) -> Result<&Map<String, Value>, InvalidInput> {
    let size = serde_json::to_vec(detail)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > MAX_DETAIL_BYTES {
        return Err(InvalidInput::new(
            "payload_too_large",
            "detail",
            format!("detail is {size} bytes; at most {MAX_DETAIL_BYTES} are accepted"),
        ));
    }
    detail
        .as_object()
        .ok_or_else(|| InvalidInput::new("wrong_type", "detail", "detail must be a JSON object"))
}

fn check_common(obj: &Map<String, Value>) -> Result<(), InvalidInput> {
    let event_id = string(obj, "event_id", usize::MAX)?;
    EventId::parse(&event_id).map_err(|m| InvalidInput::new("invalid_event_id", "event_id", m))?;
    if let Some(sequence) = obj.get("sequence").filter(|v| !v.is_null())
        && sequence.as_u64().is_none()
    {
        return Err(InvalidInput::new(
            "wrong_type",
            "sequence",
            "sequence must be an integer >= 0",
        ));
    }
    timestamp(obj, "occurred_at")?;
    Ok(())
}

fn check_reservation_fields(obj: &Map<String, Value>) -> Result<(), InvalidInput> {
    if !matches!(obj.get("ttl_seconds"), None | Some(Value::Null)) {
        int_in(obj, "ttl_seconds", 1, i64::from(MAX_TTL_SECONDS))?;
    }
    entity_id(obj, "reservation_id")?;
    channel(obj, "channel")?;
    lines(obj, "lines", Some(MAX_LINES))?;
    Ok(())
}

fn reservation_request(fields: wire::ReservationRequestFields) -> ReservationRequest {
    ReservationRequest {
        reservation_id: fields.reservation_id,
        channel: fields.channel,
        lines: fields.lines,
        ttl_seconds: fields.ttl_seconds.unwrap_or(DEFAULT_TTL_SECONDS),
        ttl_defaulted: fields.ttl_seconds.is_none(),
    }
}

/// A checked timestamp in milliseconds.
fn millis(name: &str, raw: &str) -> Result<Millis, InvalidInput> {
    parse_timestamp(raw).ok_or_else(|| {
        InvalidInput::new(
            "invalid_timestamp",
            name,
            format!("`{name}` is not an RFC 3339 timestamp: {raw:?}"),
        )
    })
}

fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Result<&'a Value, InvalidInput> {
    match obj.get(name) {
        None | Some(Value::Null) => Err(InvalidInput::new(
            "missing_field",
            name,
            format!("`{name}` is required"),
        )),
        Some(v) => Ok(v),
    }
}

fn string(obj: &Map<String, Value>, name: &str, max_chars: usize) -> Result<String, InvalidInput> {
    let s = field(obj, name)?.as_str().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be a string"))
    })?;
    if s.is_empty() || s.chars().count() > max_chars {
        return Err(InvalidInput::new(
            "invalid_length",
            name,
            format!("`{name}` must be 1 to {max_chars} characters"),
        ));
    }
    Ok(s.to_owned())
}

fn opt_string(
    obj: &Map<String, Value>,
    name: &str,
    max_chars: usize,
) -> Result<Option<String>, InvalidInput> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => string(obj, name, max_chars).map(Some),
    }
}

fn sku(obj: &Map<String, Value>, name: &str) -> Result<Sku, InvalidInput> {
    let raw = field(obj, name)?.as_str().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be a string"))
    })?;
    Sku::parse(raw).map_err(|m| InvalidInput::new("invalid_sku", name, m))
}

fn entity_id(obj: &Map<String, Value>, name: &str) -> Result<EntityId, InvalidInput> {
    let raw = field(obj, name)?.as_str().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be a string"))
    })?;
    EntityId::parse(raw).map_err(|m| InvalidInput::new("invalid_id", name, m))
}

fn channel(obj: &Map<String, Value>, name: &str) -> Result<ChannelName, InvalidInput> {
    let raw = field(obj, name)?.as_str().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be a string"))
    })?;
    ChannelName::parse(raw).map_err(|m| InvalidInput::new("invalid_channel", name, m))
}

fn integer(value: &Value, name: &str) -> Result<i64, InvalidInput> {
    value.as_i64().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be an integer"))
    })
}

fn int_in(obj: &Map<String, Value>, name: &str, min: i64, max: i64) -> Result<i64, InvalidInput> {
    let n = integer(field(obj, name)?, name)?;
    if n < min || n > max {
        return Err(InvalidInput::new(
            "quantity_out_of_range",
            name,
            format!("`{name}` is {n}; it must be {min} to {max}"),
        ));
    }
    Ok(n)
}

fn quantity(obj: &Map<String, Value>, name: &str) -> Result<i64, InvalidInput> {
    int_in(obj, name, 1, MAX_QUANTITY)
}

fn boolean(obj: &Map<String, Value>, name: &str) -> Result<bool, InvalidInput> {
    field(obj, name)?.as_bool().ok_or_else(|| {
        InvalidInput::new(
            "wrong_type",
            name,
            format!("`{name}` must be true or false"),
        )
    })
}

fn timestamp(obj: &Map<String, Value>, name: &str) -> Result<Millis, InvalidInput> {
    let raw = field(obj, name)?.as_str().ok_or_else(|| {
        InvalidInput::new(
            "wrong_type",
            name,
            format!("`{name}` must be an RFC 3339 string"),
        )
    })?;
    parse_timestamp(raw).ok_or_else(|| {
        InvalidInput::new(
            "invalid_timestamp",
            name,
            format!("`{name}` is not an RFC 3339 timestamp: {raw:?}"),
        )
    })
}

fn signal(obj: &Map<String, Value>, name: &str) -> Result<SignalKind, InvalidInput> {
    serde_json::from_value(field(obj, name)?.clone()).map_err(|_| {
        InvalidInput::new(
            "invalid_signal",
            name,
            "signal must be add_to_cart_surge, social_mention_velocity, competitor_stockout or search_volume",
        )
    })
}

fn strength(obj: &Map<String, Value>, name: &str) -> Result<f64, InvalidInput> {
    let s = field(obj, name)?.as_f64().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be a number"))
    })?;
    if !(s.is_finite() && s > 0.0) {
        return Err(InvalidInput::new(
            "invalid_strength",
            name,
            "strength is a ratio to baseline and must be > 0",
        ));
    }
    Ok(s)
}

/// Lines of a cart (`max` of `Some`) or an order (`None`: at least one).
fn lines(
    obj: &Map<String, Value>,
    name: &str,
    max: Option<usize>,
) -> Result<Vec<Line>, InvalidInput> {
    let items = field(obj, name)?.as_array().ok_or_else(|| {
        InvalidInput::new("wrong_type", name, format!("`{name}` must be an array"))
    })?;
    if items.is_empty() || max.is_some_and(|max| items.len() > max) {
        let allowed = match max {
            Some(max) => format!("1 to {max} are allowed"),
            None => "at least 1 is required".to_owned(),
        };
        return Err(InvalidInput::new(
            "too_many_lines",
            name,
            format!("`{name}` has {} lines; {allowed}", items.len()),
        ));
    }
    let mut seen = HashSet::with_capacity(items.len());
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let at = format!("{name}[{i}]");
        let line = item
            .as_object()
            .ok_or_else(|| InvalidInput::new("wrong_type", &at, "a line must be an object"))?;
        let sku = sku(line, "sku").map_err(|e| e.within(&at))?;
        let quantity = quantity(line, "quantity").map_err(|e| e.within(&at))?;
        if !seen.insert(sku.clone()) {
            return Err(InvalidInput::new(
                "duplicate_sku",
                format!("{at}.sku"),
                format!("sku {sku} appears on more than one line"),
            ));
        }
        out.push(Line { sku, quantity });
    }
    Ok(out)
}

fn opt_lines(
    obj: &Map<String, Value>,
    name: &str,
    max: Option<usize>,
) -> Result<Option<Vec<Line>>, InvalidInput> {
    match obj.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(_) => lines(obj, name, max).map(Some),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(detail_type: &str, detail: Value) -> InvalidInput {
        parse_inbound(detail_type, &detail).expect_err("must be rejected")
    }

    fn common() -> Value {
        json!({"event_id": "e-1", "occurred_at": "2026-11-27T10:00:00Z"})
    }

    fn with(mut base: Value, extra: Value) -> Value {
        for (k, v) in extra.as_object().unwrap() {
            base[k] = v.clone();
        }
        base
    }

    #[test]
    fn accepts_every_valid_detail_type() {
        let cases = [
            (
                "StockReceived",
                json!({"sku": "A-1", "quantity": 5, "reference": "po-9"}),
            ),
            ("StockCounted", json!({"sku": "A-1", "on_hand": 0})),
            (
                "StockAdjusted",
                json!({"sku": "A-1", "delta": -2, "reason": "damage"}),
            ),
            (
                "ReservationRequested",
                json!({"reservation_id": "r1", "channel": "storefront", "lines": [{"sku": "A", "quantity": 1}]}),
            ),
            (
                "ReservationConfirmed",
                json!({"reservation_id": "r1", "order_id": "o1"}),
            ),
            ("ReservationReleased", json!({"reservation_id": "r1"})),
            (
                "OrderPlaced",
                json!({"order_id": "o1", "channel": "amazon", "lines": [{"sku": "A", "quantity": 2}]}),
            ),
            ("OrderShipped", json!({"order_id": "o1"})),
            (
                "OrderCancelled",
                json!({"order_id": "o1", "lines": [{"sku": "A", "quantity": 1}]}),
            ),
            (
                "ReturnReceived",
                json!({"return_id": "x", "sku": "A", "quantity": 1, "restock": true}),
            ),
            (
                "DemandSignal",
                json!({"sku": "A", "signal": "competitor_stockout", "strength": 2.5}),
            ),
        ];
        for (dt, extra) in cases {
            let ev =
                parse_inbound(dt, &with(common(), extra)).unwrap_or_else(|e| panic!("{dt}: {e}"));
            assert_eq!(ev.detail_type(), dt);
        }
    }

    #[test]
    fn every_violation_has_its_own_code() {
        let cases: Vec<(&str, Value, &str, &str)> = vec![
            (
                "StockReceived",
                json!({"quantity": 1}),
                "missing_field",
                "sku",
            ),
            (
                "StockReceived",
                json!({"sku": 7, "quantity": 1}),
                "wrong_type",
                "sku",
            ),
            (
                "StockReceived",
                json!({"sku": "bad sku!", "quantity": 1}),
                "invalid_sku",
                "sku",
            ),
            (
                "StockReceived",
                json!({"sku": "A", "quantity": 0}),
                "quantity_out_of_range",
                "quantity",
            ),
            (
                "StockReceived",
                json!({"sku": "A", "quantity": -3}),
                "quantity_out_of_range",
                "quantity",
            ),
            (
                "StockReceived",
                json!({"sku": "A", "quantity": 1_000_001}),
                "quantity_out_of_range",
                "quantity",
            ),
            (
                "StockReceived",
                json!({"sku": "A", "quantity": "5"}),
                "wrong_type",
                "quantity",
            ),
            (
                "StockReceived",
                json!({"sku": "A", "quantity": 1.5}),
                "wrong_type",
                "quantity",
            ),
            (
                "StockAdjusted",
                json!({"sku": "A", "delta": 0, "reason": "x"}),
                "quantity_out_of_range",
                "delta",
            ),
            (
                "StockCounted",
                json!({"sku": "A", "on_hand": 1_000_000_001i64}),
                "quantity_out_of_range",
                "on_hand",
            ),
            (
                "ReservationRequested",
                json!({"reservation_id": "r", "channel": "web", "lines": []}),
                "too_many_lines",
                "lines",
            ),
            (
                "ReservationRequested",
                json!({"reservation_id": "r", "channel": "web", "lines": [{"sku": "A", "quantity": 1}, {"sku": "A", "quantity": 2}]}),
                "duplicate_sku",
                "lines[1].sku",
            ),
            (
                "ReservationRequested",
                json!({"reservation_id": "r", "channel": "web", "ttl_seconds": 3601, "lines": [{"sku": "A", "quantity": 1}]}),
                "quantity_out_of_range",
                "ttl_seconds",
            ),
            (
                "ReservationRequested",
                json!({"reservation_id": "r", "channel": "web", "lines": [{"sku": "A", "quantity": 0}]}),
                "quantity_out_of_range",
                "lines[0].quantity",
            ),
            (
                "DemandSignal",
                json!({"sku": "A", "signal": "rumour", "strength": 1.0}),
                "invalid_signal",
                "signal",
            ),
            (
                "DemandSignal",
                json!({"sku": "A", "signal": "search_volume", "strength": 0}),
                "invalid_strength",
                "strength",
            ),
            (
                "ReturnReceived",
                json!({"return_id": "x", "sku": "A", "quantity": 1, "restock": "yes"}),
                "wrong_type",
                "restock",
            ),
        ];
        for (dt, extra, code, field) in cases {
            let e = err(dt, with(common(), extra.clone()));
            assert_eq!((e.code, e.field.as_str()), (code, field), "{dt} {extra}");
        }
    }

    /// Values the checks accept that a stricter decoding could refuse: integers where a number is
    /// asked, the widest `sequence`, `null` for optional fields, fields of no type.
    #[test]
    fn decodes_what_the_checks_accept_at_the_edges() {
        let ev = parse_inbound(
            "DemandSignal",
            &with(
                common(),
                json!({"sku": "A", "signal": "search_volume", "strength": 2, "sequence": u64::MAX,
                       "expires_at": null, "note": {"any": "thing"}}),
            ),
        )
        .unwrap();
        assert_eq!(ev.common.sequence, Some(u64::MAX));
        assert!(
            matches!(ev.command, Command::DemandSignal { strength, expires_at: None, .. } if strength == 2.0)
        );
        let ev = parse_inbound(
            "ReturnReceived",
            &with(
                common(),
                json!({"return_id": "x", "sku": "A", "quantity": 1, "restock": false,
                       "order_id": null, "sequence": null}),
            ),
        )
        .unwrap();
        assert_eq!(ev.common.sequence, None);
        let request = parse_reservation_request(&json!({"reservation_id": "r", "channel": "web",
            "lines": [{"sku": "A", "quantity": 1, "note": 1}], "ttl_seconds": null}))
        .unwrap();
        assert_eq!(
            (request.ttl_seconds, request.ttl_defaulted),
            (DEFAULT_TTL_SECONDS, true)
        );
    }

    #[test]
    fn an_order_takes_any_number_of_lines_and_a_reservation_up_to_25() {
        let lines = |n: usize| -> Vec<Value> {
            (0..n)
                .map(|i| json!({"sku": format!("S{i}"), "quantity": 1}))
                .collect()
        };
        let order = |n| {
            with(
                common(),
                json!({"order_id": "o", "channel": "ebay", "lines": lines(n)}),
            )
        };
        // Far beyond one transaction's 32 lines: an order is a fact.
        let placed = parse_inbound("OrderPlaced", &order(200)).unwrap();
        assert!(matches!(placed.command, Command::OrderPlaced { lines, .. } if lines.len() == 200));
        let settled = with(common(), json!({"order_id": "o", "lines": lines(200)}));
        parse_inbound("OrderShipped", &settled).unwrap();
        parse_inbound("OrderCancelled", &settled).unwrap();
        let cart = |n| {
            with(
                common(),
                json!({"reservation_id": "r", "channel": "web", "lines": lines(n)}),
            )
        };
        parse_inbound("ReservationRequested", &cart(MAX_LINES)).unwrap();
        assert_eq!(
            err("ReservationRequested", cart(MAX_LINES + 1)).code,
            "too_many_lines"
        );
    }

    /// The detail's size bounds an order's lines, and not below what `MAX_DETAIL_BYTES` says:
    /// every id, SKU and quantity at its longest.
    #[test]
    fn the_detail_size_leaves_room_for_150_of_the_longest_lines() {
        let lines: Vec<Value> = (0..150)
            .map(|i| json!({"sku": format!("{i:0>64}"), "quantity": MAX_QUANTITY}))
            .collect();
        let detail = json!({"event_id": "e".repeat(128), "occurred_at": "2026-11-27T10:00:00.000+01:00",
            "order_id": "x".repeat(128), "channel": "c".repeat(32), "lines": lines});
        parse_inbound("OrderPlaced", &detail).unwrap();
    }

    #[test]
    fn rejects_an_empty_order() {
        let lines: Vec<Value> = Vec::new();
        let e = err(
            "OrderPlaced",
            with(
                common(),
                json!({"order_id": "o", "channel": "ebay", "lines": lines}),
            ),
        );
        assert_eq!(e.code, "too_many_lines");
    }

    #[test]
    fn rejects_common_field_violations() {
        let e = err(
            "StockReceived",
            json!({"occurred_at": "2026-01-01T00:00:00Z", "sku": "A", "quantity": 1}),
        );
        assert_eq!((e.code, e.field.as_str()), ("missing_field", "event_id"));
        let e = err(
            "StockReceived",
            json!({"event_id": "has space", "occurred_at": "2026-01-01T00:00:00Z", "sku": "A", "quantity": 1}),
        );
        assert_eq!(e.code, "invalid_event_id");
        let e = err(
            "StockReceived",
            json!({"event_id": "e", "occurred_at": "yesterday", "sku": "A", "quantity": 1}),
        );
        assert_eq!(e.code, "invalid_timestamp");
        let e = err(
            "StockReceived",
            with(common(), json!({"sku": "A", "quantity": 1, "sequence": -1})),
        );
        assert_eq!((e.code, e.field.as_str()), ("wrong_type", "sequence"));
    }

    #[test]
    fn rejects_unknown_detail_type_and_oversize_payload() {
        assert_eq!(err("StockTeleported", common()).code, "unknown_detail_type");
        let big = with(
            common(),
            json!({"sku": "A", "quantity": 1, "reference": "x".repeat(MAX_DETAIL_BYTES)}),
        );
        assert_eq!(err("StockReceived", big).code, "payload_too_large");
        assert_eq!(err("StockReceived", json!([1, 2])).code, "wrong_type");
    }
}
