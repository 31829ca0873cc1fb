//! Orders and how shipments and cancellations settle their hard allocations.

use serde::{Deserialize, Serialize};

use crate::error::InvalidInput;
use crate::types::{Line, Sku};

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
}
