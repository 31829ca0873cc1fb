//! A SKU's inventory position and the rules that move units between its buckets.

use serde::{Deserialize, Serialize};

use crate::types::Millis;

/// `available = on_hand - hard_reserved - soft_reserved` always; only facts may take it below zero.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    pub on_hand: i64,
    pub hard_reserved: i64,
    pub soft_reserved: i64,
    /// Per-SKU, strictly increasing: every stored change adds one.
    pub version: u64,
    /// `occurred_at` of the latest applied `StockCounted` (the watermark).
    pub counted_at: Option<Millis>,
}

/// What a `StockCounted` did to the position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountOutcome {
    Applied,
    /// Older than (or as old as) the latest applied count: ignored.
    Stale,
}

impl Position {
    pub fn available(&self) -> i64 {
        self.on_hand - self.hard_reserved - self.soft_reserved
    }

    /// Whether an on-hand delta that occurred at `occurred_at` is still outside the latest count.
    /// A delta at or before the count is already inside it.
    pub fn delta_counts(&self, occurred_at: Millis) -> bool {
        self.counted_at.is_none_or(|c| occurred_at > c)
    }

    /// Applies the on-hand part of a delta unless the latest count already includes it.
    /// Returns whether it was applied.
    pub fn apply_on_hand_delta(&mut self, delta: i64, occurred_at: Millis) -> bool {
        let applies = self.delta_counts(occurred_at);
        if applies {
            self.on_hand += delta;
        }
        applies
    }

    /// Applies an absolute count. `later_deltas` is the sum of every on-hand delta already applied
    /// for this SKU that occurred after `counted_at`: they happened after the count, so they stay.
    pub fn apply_count(
        &mut self,
        on_hand: i64,
        counted_at: Millis,
        later_deltas: i64,
    ) -> CountOutcome {
        if self.counted_at.is_some_and(|c| counted_at <= c) {
            return CountOutcome::Stale;
        }
        self.on_hand = on_hand + later_deltas;
        self.counted_at = Some(counted_at);
        CountOutcome::Applied
    }

    pub fn hold_soft(&mut self, quantity: i64) {
        self.soft_reserved += quantity;
    }

    pub fn release_soft(&mut self, quantity: i64) {
        self.soft_reserved -= quantity;
    }

    /// A confirmed checkout: its soft units become hard without ever being available in between.
    pub fn harden(&mut self, quantity: i64) {
        self.soft_reserved -= quantity;
        self.hard_reserved += quantity;
    }

    /// An order's hard allocation. A fact: it may take `available` below zero.
    /// Returns the units that were not available (the oversell), if any.
    pub fn allocate_hard(&mut self, quantity: i64) -> i64 {
        let shortfall = (quantity - self.available().max(0)).max(0);
        self.hard_reserved += quantity;
        shortfall
    }

    pub fn release_hard(&mut self, quantity: i64) {
        self.hard_reserved -= quantity;
    }
}

/// Net change to a position by arithmetic, for paths that must not conflict on `version`
/// (holds taken, hardened and released).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PositionDelta {
    pub on_hand: i64,
    pub hard_reserved: i64,
    pub soft_reserved: i64,
}

impl PositionDelta {
    /// What the change does to `available = on_hand - hard_reserved - soft_reserved`.
    pub fn available(&self) -> i64 {
        self.on_hand - self.hard_reserved - self.soft_reserved
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delta_moves_available_by_its_net_change() {
        let harden = PositionDelta {
            hard_reserved: 3,
            soft_reserved: -3,
            ..Default::default()
        };
        assert_eq!(harden.available(), 0);
        let release = PositionDelta {
            soft_reserved: -2,
            ..Default::default()
        };
        assert_eq!(release.available(), 2);
    }

    #[test]
    fn count_keeps_deltas_that_happened_after_it() {
        let mut p = Position::default();
        // A sale of 2 that occurred at t=20 arrived first.
        assert!(p.apply_on_hand_delta(-2, 20));
        // The count of 10 taken at t=10 lands: the sale is after it, so it stays subtracted.
        assert_eq!(p.apply_count(10, 10, -2), CountOutcome::Applied);
        assert_eq!(p.on_hand, 8);
        // A receipt that occurred at t=5 is inside the count.
        assert!(!p.apply_on_hand_delta(4, 5));
        assert!(!p.apply_on_hand_delta(4, 10));
        assert_eq!(p.on_hand, 8);
        // An older count is ignored.
        assert_eq!(p.apply_count(100, 9, 0), CountOutcome::Stale);
        assert_eq!(p.on_hand, 8);
    }

    #[test]
    fn hard_allocation_reports_the_oversell() {
        let mut p = Position {
            on_hand: 3,
            soft_reserved: 1,
            ..Default::default()
        };
        assert_eq!(p.allocate_hard(5), 3);
        assert_eq!(p.available(), -3);
        assert_eq!(p.allocate_hard(1), 1);
    }
}
