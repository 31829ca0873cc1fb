//! Property tests of the position invariants under any sequence of operations.

use proptest::prelude::*;
use stockguard_domain::reservation::decide_reservation;
use stockguard_domain::{Line, Position, Sku};

#[derive(Debug, Clone)]
enum Op {
    Receive(i64),
    Reserve(i64),
    ReleaseOldestHold,
    ConfirmOldestHold,
    OrderPlaced(i64),
    ShipOldestOrder,
    CancelOldestOrder,
    Count(i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (1i64..20).prop_map(Op::Receive),
        (1i64..8).prop_map(Op::Reserve),
        Just(Op::ReleaseOldestHold),
        Just(Op::ConfirmOldestHold),
        (1i64..6).prop_map(Op::OrderPlaced),
        Just(Op::ShipOldestOrder),
        Just(Op::CancelOldestOrder),
        (0i64..30).prop_map(Op::Count),
    ]
}

proptest! {
    #[test]
    fn units_are_conserved_and_requests_never_oversell(ops in prop::collection::vec(op(), 1..80)) {
        let sku = Sku::parse("P-1").unwrap();
        let mut p = Position::default();
        let mut holds: Vec<i64> = Vec::new();
        let mut orders: Vec<i64> = Vec::new();
        for (t, op) in ops.into_iter().enumerate() {
            let t = t as i64;
            let before = p.available();
            match op {
                Op::Receive(q) => { p.apply_on_hand_delta(q, t); }
                Op::Reserve(q) => {
                    let line = Line { sku: sku.clone(), quantity: q };
                    if decide_reservation(std::slice::from_ref(&line), &[p.available()]).is_ok() {
                        p.hold_soft(q);
                        holds.push(q);
                        // A request never takes available below zero.
                        prop_assert!(p.available() >= 0);
                    } else {
                        prop_assert!(before < q);
                    }
                }
                Op::ReleaseOldestHold => if !holds.is_empty() { p.release_soft(holds.remove(0)); },
                Op::ConfirmOldestHold => if !holds.is_empty() {
                    let q = holds.remove(0);
                    p.harden(q);
                    orders.push(q);
                    // Confirming moves units between buckets; it never changes availability.
                    prop_assert_eq!(p.available(), before);
                },
                Op::OrderPlaced(q) => {
                    let shortfall = p.allocate_hard(q);
                    prop_assert_eq!(shortfall, (q - before.max(0)).max(0));
                    orders.push(q);
                }
                Op::ShipOldestOrder => if !orders.is_empty() {
                    let q = orders.remove(0);
                    p.apply_on_hand_delta(-q, t);
                    p.release_hard(q);
                    prop_assert_eq!(p.available(), before);
                },
                Op::CancelOldestOrder => if !orders.is_empty() { p.release_hard(orders.remove(0)); },
                Op::Count(n) => { p.apply_count(n, t, 0); prop_assert_eq!(p.on_hand, n); }
            }
            // Buckets always equal what the holds and orders add up to.
            prop_assert_eq!(p.soft_reserved, holds.iter().sum::<i64>());
            prop_assert_eq!(p.hard_reserved, orders.iter().sum::<i64>());
            prop_assert_eq!(p.available(), p.on_hand - p.hard_reserved - p.soft_reserved);
        }
    }

    #[test]
    fn counts_and_deltas_commute(mut events in prop::collection::vec((0i64..100, -5i64..10, any::<bool>()), 1..40)) {
        // (occurred_at, value, is_count): apply in given order and in time order; same on_hand.
        let run = |evs: &[(i64, i64, bool)]| {
            let mut p = Position::default();
            let mut applied: Vec<(i64, i64)> = Vec::new();
            for &(t, v, is_count) in evs {
                if is_count {
                    let later: i64 = applied.iter().filter(|(at, _)| *at > t).map(|(_, d)| d).sum();
                    p.apply_count(v.abs(), t, later);
                } else if p.apply_on_hand_delta(v, t) {
                    applied.push((t, v));
                } else {
                    applied.push((t, v)); // logged even when inside the count: a later, newer count may not include it
                }
            }
            p.on_hand
        };
        // Make timestamps unique so "same instant" ties do not depend on order.
        for (i, e) in events.iter_mut().enumerate() { e.0 = e.0 * 100 + i as i64; }
        let shuffled = run(&events);
        let mut sorted = events.clone();
        sorted.sort_by_key(|e| e.0);
        prop_assert_eq!(shuffled, run(&sorted));
    }
}
