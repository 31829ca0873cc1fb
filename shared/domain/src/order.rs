//! Orders and how shipments and cancellations settle their hard allocations.

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::plan::MAX_TX_ITEMS;
use crate::types::{Line, Sku};

/// Lines one transaction of an order event applies. An order has no limit on its lines (the
/// contract sets none, and a marketplace order is a fact), so `OrderPlaced`, `OrderShipped` and
/// `OrderCancelled` apply in parts of this many lines, each part in its own transaction: each line
/// writes its position, its sale (or the log of a shipped delta) and, with a `sequence`, its
/// sequence, beside the order and the part's idempotency record: 3 × 32 + 2 ≤ 100.
pub const ORDER_LINES_PER_PART: usize = 32;
const _: () = assert!(3 * ORDER_LINES_PER_PART + 2 <= MAX_TX_ITEMS);

/// The parts an order event's lines apply in: in the order the event lists them,
/// [`ORDER_LINES_PER_PART`] a part, the last one shorter. The same lines always make the same
/// parts, so every delivery of an event (its payload is fixed by its `event_id`) agrees on them.
pub fn split_lines(lines: &[Line]) -> Vec<Vec<Line>> {
    lines
        .chunks(ORDER_LINES_PER_PART)
        .map(<[Line]>::to_vec)
        .collect()
}

/// One line of a recorded order: what was allocated and what has been settled since.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderLine {
    pub sku: Sku,
    pub quantity: i64,
    #[serde(default)]
    pub shipped: i64,
    #[serde(default)]
    pub cancelled: i64,
}

impl OrderLine {
    pub fn new(line: &Line) -> Self {
        Self {
            sku: line.sku.clone(),
            quantity: line.quantity,
            shipped: 0,
            cancelled: 0,
        }
    }

    pub fn remaining(&self) -> i64 {
        self.quantity - self.shipped - self.cancelled
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Settlement {
    Ship,
    Cancel,
}

/// Works out, per SKU, how many units a shipment or cancellation settles. `requested` of `None`
/// means every remaining unit. Settling more than remains is refused: it would free units that
/// were never allocated to this order.
pub fn settle(
    lines: &mut [OrderLine],
    requested: Option<&[Line]>,
    kind: Settlement,
) -> Result<Vec<Line>, InvalidInput> {
    let wanted: Vec<Line> = match requested {
        None => lines
            .iter()
            .filter(|l| l.remaining() > 0)
            .map(|l| Line {
                sku: l.sku.clone(),
                quantity: l.remaining(),
            })
            .collect(),
        Some(req) => req.to_vec(),
    };
    for (i, want) in wanted.iter().enumerate() {
        let Some(line) = lines.iter().find(|l| l.sku == want.sku) else {
            return Err(InvalidInput::new(
                "unknown_order_line",
                format!("lines[{i}].sku"),
                format!("the order has no line for sku {}", want.sku),
            ));
        };
        if want.quantity > line.remaining() {
            return Err(InvalidInput::new(
                "exceeds_remaining",
                format!("lines[{i}].quantity"),
                format!(
                    "{} units of {} requested but only {} remain unsettled on the order",
                    want.quantity,
                    want.sku,
                    line.remaining()
                ),
            ));
        }
    }
    for want in &wanted {
        if let Some(line) = lines.iter_mut().find(|l| l.sku == want.sku) {
            match kind {
                Settlement::Ship => line.shipped += want.quantity,
                Settlement::Cancel => line.cancelled += want.quantity,
            }
        }
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn line(sku: &str, q: i64) -> Line {
        Line {
            sku: Sku::parse(sku).unwrap(),
            quantity: q,
        }
    }

    #[test]
    fn ship_part_then_cancel_the_rest() {
        let mut lines = vec![OrderLine::new(&line("A", 3)), OrderLine::new(&line("B", 1))];
        let shipped = settle(&mut lines, Some(&[line("A", 2)]), Settlement::Ship).unwrap();
        assert_eq!(shipped, vec![line("A", 2)]);
        let cancelled = settle(&mut lines, None, Settlement::Cancel).unwrap();
        assert_eq!(cancelled, vec![line("A", 1), line("B", 1)]);
        assert!(
            settle(&mut lines, None, Settlement::Ship)
                .unwrap()
                .is_empty()
        );
        let err = settle(&mut lines, Some(&[line("A", 1)]), Settlement::Ship).unwrap_err();
        assert_eq!(err.code, "exceeds_remaining");
        let err = settle(&mut lines, Some(&[line("Z", 1)]), Settlement::Ship).unwrap_err();
        assert_eq!(err.code, "unknown_order_line");
    }

    fn lines(n: usize) -> Vec<Line> {
        (0..n)
            .map(|i| line(&format!("S-{i:03}"), 1 + i as i64))
            .collect()
    }

    #[test]
    fn an_order_splits_into_parts_of_at_most_one_transaction_each() {
        for (n, parts) in [
            (1, 1),
            (31, 1),
            (32, 1),
            (33, 2),
            (64, 2),
            (65, 3),
            (70, 3),
            (200, 7),
        ] {
            let split = split_lines(&lines(n));
            assert_eq!(split.len(), parts, "{n} lines");
            assert!(
                split
                    .iter()
                    .all(|p| (1..=ORDER_LINES_PER_PART).contains(&p.len()))
            );
            // Every part but the last is full: no transaction more than needed.
            assert!(
                split[..parts - 1]
                    .iter()
                    .all(|p| p.len() == ORDER_LINES_PER_PART)
            );
        }
        assert!(split_lines(&[]).is_empty());
    }

    #[test]
    fn every_line_is_in_exactly_one_part_in_the_order_given() {
        let all = lines(70);
        let split = split_lines(&all);
        assert_eq!(split.concat(), all, "the parts are the lines, in order");
        let mut seen: HashMap<&Sku, usize> = HashMap::new();
        for part in &split {
            for l in part {
                *seen.entry(&l.sku).or_default() += 1;
            }
        }
        assert_eq!(seen.len(), 70);
        assert!(seen.values().all(|&times| times == 1));
    }

    #[test]
    fn the_same_lines_always_make_the_same_parts() {
        let all = lines(100);
        assert_eq!(split_lines(&all), split_lines(&all.clone()));
        // A line's part depends on its place in the event only.
        let mut reversed = all.clone();
        reversed.reverse();
        assert_eq!(split_lines(&reversed)[0][0], all[99]);
    }
}
