//! Orders read by polling a channel's orders API (Walmart, eBay; contract section 6), in the
//! contract's words: the window each poll reads, and each order's changes turned into inbound
//! events whose `event_id`s come from the channel, the order and the change, so that an order
//! read again by an overlapping poll maps to the same events and applies once.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use crate::error::InvalidInput;
use crate::types::{EntityId, EventId, Millis, Sku};

fn invalid(field: &str, message: impl Into<String>) -> InvalidInput {
    InvalidInput::new("invalid_page", field, message)
}

/// The stretch of modification times one poll reads: `[from, to]`, `to` being the poll's start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PollWindow {
    pub from: Millis,
    pub to: Millis,
}

/// The window of a poll starting at `now`: from the saved start, or, on a channel's first poll,
/// from `overlap_ms` ago (history before stockguard was connected is not imported).
pub fn poll_window(saved_from: Option<Millis>, now: Millis, overlap_ms: Millis) -> PollWindow {
    let from = saved_from.unwrap_or(now - overlap_ms).min(now);
    PollWindow { from, to: now }
}

/// Where the next poll starts once `window` was read whole: `overlap_ms` before its end, so that
/// an order the channel stamps a little late (its clock, its indexing lag, a change committed
/// while the page was read) is read again by the next poll instead of falling between two.
/// Never before the window's own start, so a stuck channel cannot push the cursor backwards.
pub fn next_from(window: PollWindow, overlap_ms: Millis) -> Millis {
    (window.to - overlap_ms.max(0)).max(window.from)
}

/// A line as the channel names it: its id in the order, the seller's SKU text, the quantity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolledLine {
    pub line_id: String,
    pub channel_sku: String,
    pub quantity: i64,
}

/// One change of an order the channel reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolledChange {
    /// The order was placed, with every line it was placed with (its original quantities, so
    /// that every later reading of the order maps to the same payload).
    Placed {
        occurred_at: String,
        lines: Vec<PolledLine>,
    },
    /// The whole order was cancelled.
    Cancelled { occurred_at: String },
    /// Some lines were cancelled (Walmart cancels by line): `key` names the change (its lines).
    LinesCancelled {
        key: String,
        occurred_at: String,
        lines: Vec<PolledLine>,
    },
}

impl PolledChange {
    /// The change's name in its `event_id`.
    pub fn name(&self) -> String {
        match self {
            Self::Placed { .. } => "placed".into(),
            Self::Cancelled { .. } => "cancelled".into(),
            Self::LinesCancelled { key, .. } => format!("cancelled:{key}"),
        }
    }

    pub fn lines(&self) -> &[PolledLine] {
        match self {
            Self::Placed { lines, .. } | Self::LinesCancelled { lines, .. } => lines,
            Self::Cancelled { .. } => &[],
        }
    }
}

/// An order as one reading of the orders API shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolledOrder {
    pub channel: &'static str,
    /// The channel's own id of the order.
    pub order_id: String,
    pub changes: Vec<PolledChange>,
}

/// One page of an orders API: the orders it could read, those it could not (with why), the
/// channel's count of orders matching the query, and how to ask for the next page.
#[derive(Debug, Clone, PartialEq)]
pub struct OrdersPage<N> {
    pub orders: Vec<PolledOrder>,
    pub unreadable: Vec<InvalidInput>,
    pub total: Option<u64>,
    pub next: Option<N>,
}

/// The contract's order id of a channel's order.
pub fn order_id(channel: &str, channel_order_id: &str) -> String {
    format!("{channel}-{channel_order_id}")
}

/// The `event_id` of one change of one order.
pub fn event_id(
    channel: &str,
    channel_order_id: &str,
    change: &PolledChange,
) -> Result<String, InvalidInput> {
    let raw = format!("{channel}:order:{channel_order_id}:{}", change.name());
    EventId::parse(&raw).map_err(|m| invalid("order_id", m))?;
    Ok(raw)
}

/// An inbound event (`detail-type`, `detail`) and the lines that map to no SKU of ours.
pub type MappedChange = (Option<(&'static str, Value)>, Vec<PolledLine>);

fn summed(
    lines: &[PolledLine],
    sku_of: &impl Fn(&PolledLine) -> Option<Sku>,
) -> (BTreeMap<Sku, i64>, Vec<PolledLine>) {
    let mut by_sku: BTreeMap<Sku, i64> = BTreeMap::new();
    let mut unmapped = Vec::new();
    for l in lines.iter().filter(|l| l.quantity > 0) {
        match sku_of(l) {
            Some(sku) => *by_sku.entry(sku).or_default() += l.quantity,
            None => unmapped.push(l.clone()),
        }
    }
    (by_sku, unmapped)
}

fn lines_json(by_sku: &BTreeMap<Sku, i64>) -> Vec<Value> {
    by_sku
        .iter()
        .map(|(s, q)| json!({"sku": s, "quantity": q}))
        .collect()
}

/// The inbound event of one change; `sku_of` maps a line to our SKU. Lines of several listings
/// of one SKU become one line; lines mapping to nothing come back apart, for the dead-letter
/// queue, and the rest of the order still applies.
pub fn to_inbound(
    order: &PolledOrder,
    change: &PolledChange,
    sku_of: impl Fn(&PolledLine) -> Option<Sku>,
) -> Result<MappedChange, InvalidInput> {
    let id = event_id(order.channel, &order.order_id, change)?;
    let ours = EntityId::parse(&order_id(order.channel, &order.order_id))
        .map_err(|m| invalid("order_id", m))?
        .as_str()
        .to_owned();
    Ok(match change {
        PolledChange::Placed { occurred_at, lines } => {
            let (by_sku, unmapped) = summed(lines, &sku_of);
            let event = (!by_sku.is_empty()).then(|| {
                (
                    "OrderPlaced",
                    json!({"event_id": id, "occurred_at": occurred_at, "order_id": ours,
                           "channel": order.channel, "lines": lines_json(&by_sku)}),
                )
            });
            (event, unmapped)
        }
        PolledChange::Cancelled { occurred_at } => (
            Some((
                "OrderCancelled",
                json!({"event_id": id, "occurred_at": occurred_at, "order_id": ours}),
            )),
            Vec::new(),
        ),
        PolledChange::LinesCancelled {
            occurred_at, lines, ..
        } => {
            // An unmapped cancelled line was dead-lettered with its placement; nothing to release.
            let (by_sku, _) = summed(lines, &sku_of);
            let event = (!by_sku.is_empty()).then(|| {
                (
                    "OrderCancelled",
                    json!({"event_id": id, "occurred_at": occurred_at, "order_id": ours,
                           "lines": lines_json(&by_sku)}),
                )
            });
            (event, Vec::new())
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inbound::parse_inbound;

    fn line(id: &str, sku: &str, quantity: i64) -> PolledLine {
        PolledLine {
            line_id: id.into(),
            channel_sku: sku.into(),
            quantity,
        }
    }

    fn ours(l: &PolledLine) -> Option<Sku> {
        (l.channel_sku != "UNMAPPED").then(|| Sku::parse(&l.channel_sku).unwrap())
    }

    #[test]
    fn the_window_starts_where_the_last_ended_less_the_overlap() {
        let first = poll_window(None, 1_000_000, 120_000);
        assert_eq!(
            first,
            PollWindow {
                from: 880_000,
                to: 1_000_000
            }
        );
        assert_eq!(next_from(first, 120_000), 880_000);
        let second = poll_window(Some(880_000), 1_060_000, 120_000);
        assert_eq!(next_from(second, 120_000), 940_000);
        // A cursor saved ahead of the clock (a clock step back) never makes a window backwards.
        let ahead = poll_window(Some(2_000_000), 1_060_000, 120_000);
        assert!(ahead.from <= ahead.to);
        assert_eq!(next_from(ahead, 120_000), ahead.from);
    }

    #[test]
    fn every_reading_of_an_order_maps_to_the_same_events() {
        let order = PolledOrder {
            channel: "walmart",
            order_id: "1796277083022".into(),
            changes: vec![
                PolledChange::Placed {
                    occurred_at: "2026-11-28T10:00:00.000Z".into(),
                    lines: vec![
                        line("1", "TEE", 2),
                        line("2", "TEE", 1),
                        line("3", "UNMAPPED", 1),
                    ],
                },
                PolledChange::LinesCancelled {
                    key: "1".into(),
                    occurred_at: "2026-11-28T10:05:00.000Z".into(),
                    lines: vec![line("1", "TEE", 2)],
                },
            ],
        };
        let (placed, unmapped) = to_inbound(&order, &order.changes[0], ours).unwrap();
        let (detail_type, detail) = placed.unwrap();
        assert_eq!(detail_type, "OrderPlaced");
        assert_eq!(
            detail,
            json!({"event_id": "walmart:order:1796277083022:placed",
                   "occurred_at": "2026-11-28T10:00:00.000Z",
                   "order_id": "walmart-1796277083022", "channel": "walmart",
                   "lines": [{"sku": "TEE", "quantity": 3}]})
        );
        parse_inbound("OrderPlaced", &detail).unwrap();
        assert_eq!(unmapped, vec![line("3", "UNMAPPED", 1)]);
        assert_eq!(
            to_inbound(&order, &order.changes[0], ours)
                .unwrap()
                .0
                .unwrap()
                .1,
            detail
        );
        let (cancelled, _) = to_inbound(&order, &order.changes[1], ours).unwrap();
        let (detail_type, detail) = cancelled.unwrap();
        assert_eq!(detail_type, "OrderCancelled");
        assert_eq!(
            detail["event_id"],
            "walmart:order:1796277083022:cancelled:1"
        );
        assert_eq!(detail["lines"], json!([{"sku": "TEE", "quantity": 2}]));
        parse_inbound("OrderCancelled", &detail).unwrap();
    }

    #[test]
    fn an_order_of_unmapped_lines_only_publishes_nothing_and_a_bad_id_is_invalid() {
        let order = PolledOrder {
            channel: "ebay",
            order_id: "12-34567-89012".into(),
            changes: vec![PolledChange::Placed {
                occurred_at: "2026-11-28T10:00:00.000Z".into(),
                lines: vec![line("9", "UNMAPPED", 1)],
            }],
        };
        let (event, unmapped) = to_inbound(&order, &order.changes[0], ours).unwrap();
        assert!(event.is_none());
        assert_eq!(unmapped.len(), 1);
        let bad = PolledOrder {
            order_id: "has space".into(),
            ..order
        };
        assert_eq!(
            to_inbound(&bad, &bad.changes[0], ours).unwrap_err().code,
            "invalid_page"
        );
    }
}
