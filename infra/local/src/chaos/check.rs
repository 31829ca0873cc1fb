//! Holds what the stack ended with against the load generator's ledger. Pure: the run gathers
//! the observations, this decides.

use std::collections::{BTreeMap, BTreeSet};

use super::ledger::Expected;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ObservedPosition {
    pub on_hand: i64,
    pub hard_reserved: i64,
    pub soft_reserved: i64,
    pub available: i64,
}

/// One `InventoryPositionChanged` stockguard published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishedPosition {
    pub sku: String,
    pub version: i64,
    pub available: i64,
    pub cause_detail_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeadLetter {
    /// The template's logical id of the dead-letter queue.
    pub queue: String,
    pub body: String,
    pub reason_code: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shown {
    pub channel: String,
    pub sku: String,
    /// `None`: the channel has no such listing.
    pub quantity: Option<i64>,
}

/// What the stack ended with.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub positions: BTreeMap<String, ObservedPosition>,
    /// Idempotency records by `event_id` (their outcome), for every event asked about.
    pub records: BTreeMap<String, String>,
    /// Reservation records by id: their status.
    pub reservations: BTreeMap<String, String>,
    pub orders: BTreeSet<String>,
    pub dead_letters: Vec<DeadLetter>,
    /// Bodies of the messages whose last delivery the queue layer lost: SQS moved them to their
    /// dead-letter queue without a reason, as it does when a function dies on that delivery.
    pub lost_on_last_delivery: BTreeSet<String>,
    pub shown: Vec<Shown>,
    pub published: Vec<PublishedPosition>,
}

#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub accepted: usize,
    /// Accepted events, reservations and orders that left no trace (or the wrong one).
    pub lost: Vec<String>,
    /// Accepted events whose effect is in a position twice.
    pub applied_twice: Vec<String>,
    pub positions_checked: usize,
    pub positions_wrong: Vec<String>,
    /// Versions a reservation request produced with `available` below zero.
    pub over_reserved: Vec<String>,
    pub channels_checked: usize,
    pub channels_diverged: Vec<String>,
    pub dead_letters: usize,
    pub dead_letters_unexplained: Vec<String>,
    /// Poison messages the generator sent that no dead-letter queue holds.
    pub dead_letters_missing: Vec<String>,
    /// Answers the generator got that break the contract.
    pub answers_wrong: Vec<String>,
}

impl Verdict {
    /// Every violation, one line each; empty when the run passed.
    pub fn violations(&self) -> Vec<String> {
        let mut out = Vec::new();
        for (what, list) in [
            ("lost", &self.lost),
            ("applied twice", &self.applied_twice),
            ("position differs from the ledger", &self.positions_wrong),
            ("over-reserved", &self.over_reserved),
            ("channel diverged", &self.channels_diverged),
            ("dead letter unexplained", &self.dead_letters_unexplained),
            (
                "poison message missing from the DLQs",
                &self.dead_letters_missing,
            ),
            ("wrong answer", &self.answers_wrong),
        ] {
            out.extend(list.iter().map(|l| format!("{what}: {l}")));
        }
        out
    }

    pub fn passed(&self) -> bool {
        self.violations().is_empty()
    }
}

/// The channel a sync or notification dead-letter queue belongs to, by its logical id.
fn channel_of_queue(queue: &str) -> Option<String> {
    let lower = queue.to_ascii_lowercase();
    ["shopify", "amazon", "walmart", "ebay"]
        .into_iter()
        .find(|c| lower.starts_with(c) && !lower.starts_with("shopifywebhooks"))
        .map(str::to_owned)
}

pub fn check(expected: &Expected, observed: &Observed) -> Verdict {
    let mut v = Verdict {
        accepted: expected.accepted.len()
            + expected.held.len()
            + expected.confirmed.len()
            + expected.orders.len(),
        answers_wrong: expected.answers_wrong.clone(),
        ..Verdict::default()
    };

    for a in &expected.accepted {
        match observed.records.get(&a.event_id) {
            None => v
                .lost
                .push(format!("{} {} left no record", a.detail_type, a.event_id)),
            Some(outcome) if !a.outcomes.contains(&outcome.as_str()) => v.lost.push(format!(
                "{} {} recorded as {outcome}, expected {}",
                a.detail_type,
                a.event_id,
                a.outcomes.join(" or ")
            )),
            Some(_) => {}
        }
    }
    for id in &expected.held {
        if !observed.reservations.contains_key(id) {
            v.lost
                .push(format!("reservation {id} was held but is not stored"));
        }
    }
    for id in &expected.confirmed {
        match observed.reservations.get(id).map(String::as_str) {
            Some("confirmed") => {}
            other => v.lost.push(format!(
                "reservation {id} was confirmed but is stored as {other:?}"
            )),
        }
    }
    for order in &expected.orders {
        if !observed.orders.contains(&order.order_id) {
            v.lost.push(format!(
                "marketplace order {} is not recorded",
                order.order_id
            ));
        }
    }

    for (sku, want) in &expected.positions {
        v.positions_checked += 1;
        let got = observed.positions.get(sku).copied().unwrap_or_default();
        if got.on_hand == want.on_hand
            && got.hard_reserved == want.hard_reserved
            && got.soft_reserved == 0
        {
            continue;
        }
        let off = (
            got.on_hand - want.on_hand,
            got.hard_reserved - want.hard_reserved,
        );
        v.positions_wrong.push(format!(
            "{sku}: on hand {} (ledger {}), hard {} (ledger {}), soft {} (ledger 0)",
            got.on_hand, want.on_hand, got.hard_reserved, want.hard_reserved, got.soft_reserved
        ));
        // An extra application shows as the exact effect of one accepted event, or of one
        // marketplace order's line (hard units only).
        let event = expected
            .accepted
            .iter()
            .find(|a| {
                a.effect
                    .iter()
                    .any(|(s, on, hard)| s == sku && (*on, *hard) == off)
            })
            .map(|a| format!("{} {} on {sku}", a.detail_type, a.event_id));
        let order = || {
            expected
                .orders
                .iter()
                .find(|o| o.lines.iter().any(|(s, q)| s == sku && (0, *q) == off))
                .map(|o| format!("{} order {} on {sku}", o.channel, o.order_id))
        };
        if off != (0, 0)
            && let Some(named) = event.or_else(order)
        {
            v.applied_twice.push(named);
        }
    }

    let mut causes: BTreeMap<(&str, i64), (i64, BTreeSet<&str>)> = BTreeMap::new();
    for p in &observed.published {
        let entry = causes
            .entry((p.sku.as_str(), p.version))
            .or_insert((p.available, BTreeSet::new()));
        entry.1.insert(p.cause_detail_type.as_str());
    }
    for ((sku, version), (available, by)) in &causes {
        // A reservation also gives back the lapsed holds it releases, on every SKU they held: a
        // SKU already oversold by an order may stay below zero, yet rise. Only a fall is taken.
        let rose = causes
            .get(&(*sku, version - 1))
            .is_some_and(|(before, _)| available >= before);
        if *available < 0 && !rose && by.iter().all(|c| *c == "ReservationRequested") {
            v.over_reserved.push(format!(
                "{sku} version {version}: a reservation left available {available}"
            ));
        }
    }

    for s in &observed.shown {
        v.channels_checked += 1;
        let state = observed
            .positions
            .get(&s.sku)
            .map_or(0, |p| p.available.max(0));
        if s.quantity != Some(state) {
            v.channels_diverged.push(format!(
                "{} {}: shows {:?}, state says {state}",
                s.channel, s.sku, s.quantity
            ));
        }
    }

    v.dead_letters = observed.dead_letters.len();
    let mut found = vec![false; expected.dead_letters.len()];
    for d in &observed.dead_letters {
        let Some(reason) = d.reason_code.as_deref() else {
            if observed.lost_on_last_delivery.contains(&d.body) {
                continue;
            }
            v.dead_letters_unexplained.push(format!(
                "{}: no reason attached: {}",
                d.queue,
                short(&d.body)
            ));
            continue;
        };
        let injected = expected
            .dead_letters
            .iter()
            .position(|e| d.body.contains(&e.marker) && e.reason.is_none_or(|r| r == reason));
        if let Some(i) = injected {
            found[i] = true;
            continue;
        }
        let channel_fault =
            channel_of_queue(&d.queue).is_some_and(|c| expected.faulted_channels.contains(&c));
        if !channel_fault {
            v.dead_letters_unexplained
                .push(format!("{} ({reason}): {}", d.queue, short(&d.body)));
        }
    }
    for (e, found) in expected.dead_letters.iter().zip(found) {
        if !found {
            v.dead_letters_missing.push(format!(
                "{} ({:?}, reason {})",
                e.marker,
                e.fault,
                e.reason.unwrap_or("any")
            ));
        }
    }
    v
}

fn short(body: &str) -> String {
    body.chars().take(160).collect()
}

#[cfg(test)]
mod tests {
    use super::super::ledger::{FaultKind, Ledger};
    use super::*;

    /// A small run's ledger: two receipts, an order, a held-then-confirmed checkout, a reused id.
    fn ledger() -> Ledger {
        let mut l = Ledger::default();
        l.on_hand_delta("A", 1, 10, "r1");
        l.accept(
            "r1",
            "StockReceived",
            vec!["applied"],
            vec![("A".into(), 10, 0)],
        );
        l.on_hand_delta("A", 2, 4, "r2");
        l.accept(
            "r2",
            "StockReceived",
            vec!["applied"],
            vec![("A".into(), 4, 0)],
        );
        l.hard("A", 3);
        l.orders.push(super::super::ledger::MarketplaceOrder {
            order_id: "shopify-1".into(),
            channel: "shopify".into(),
            lines: vec![("A".into(), 3)],
            settled: false,
        });
        l.held.insert("web-1".into());
        l.confirmed.insert("web-1".into());
        l.hard("A", 2);
        l.expect_dead_letter("r1", FaultKind::ReusedId, Some("idempotency_key_reused"));
        l.faulted_channels.insert("amazon".into());
        l
    }

    /// What a correct stack ends with for [`ledger`].
    fn observed() -> Observed {
        let mut o = Observed::default();
        o.positions.insert(
            "A".into(),
            ObservedPosition {
                on_hand: 14,
                hard_reserved: 5,
                soft_reserved: 0,
                available: 9,
            },
        );
        o.records.insert("r1".into(), "applied".into());
        o.records.insert("r2".into(), "applied".into());
        o.reservations.insert("web-1".into(), "confirmed".into());
        o.orders.insert("shopify-1".into());
        o.dead_letters.push(DeadLetter {
            queue: "StockReceivedDLQ".into(),
            body: r#"{"detail":{"event_id":"r1","quantity":99}}"#.into(),
            reason_code: Some("idempotency_key_reused".into()),
        });
        o.dead_letters.push(DeadLetter {
            queue: "AmazonSyncDLQ".into(),
            body: "{}".into(),
            reason_code: Some("throttled".into()),
        });
        for channel in ["shopify", "amazon"] {
            o.shown.push(Shown {
                channel: channel.into(),
                sku: "A".into(),
                quantity: Some(9),
            });
        }
        o.published.push(PublishedPosition {
            sku: "A".into(),
            version: 4,
            available: 0,
            cause_detail_type: "ReservationRequested".into(),
        });
        o
    }

    #[test]
    fn a_correct_end_state_passes() {
        let v = check(&ledger().expectations(), &observed());
        assert!(v.passed(), "{:#?}", v.violations());
        assert_eq!(v.accepted, 5);
        assert_eq!(v.channels_checked, 2);
    }

    #[test]
    fn an_event_applied_twice_is_caught_and_named() {
        let mut o = observed();
        let p = o.positions.get_mut("A").unwrap();
        p.on_hand += 4;
        p.available += 4;
        for s in &mut o.shown {
            s.quantity = Some(13);
        }
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.applied_twice, vec!["StockReceived r2 on A".to_owned()]);
        assert_eq!(v.positions_wrong.len(), 1);
        assert!(!v.passed());
    }

    #[test]
    fn an_order_applied_twice_is_caught_and_named() {
        let mut o = observed();
        let p = o.positions.get_mut("A").unwrap();
        p.hard_reserved += 3;
        p.available -= 3;
        for s in &mut o.shown {
            s.quantity = Some(6);
        }
        let v = check(&ledger().expectations(), &o);
        assert_eq!(
            v.applied_twice,
            vec!["shopify order shopify-1 on A".to_owned()]
        );
        assert!(!v.passed());
    }

    #[test]
    fn a_lost_event_is_caught() {
        let mut o = observed();
        o.records.remove("r2");
        o.positions.get_mut("A").unwrap().on_hand -= 4;
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.lost, vec!["StockReceived r2 left no record".to_owned()]);
        assert!(!v.passed());
    }

    #[test]
    fn lost_reservations_and_orders_are_caught() {
        let mut o = observed();
        o.reservations.insert("web-1".into(), "held".into());
        o.orders.clear();
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.lost.len(), 2, "{:?}", v.lost);
    }

    #[test]
    fn a_reservation_below_zero_is_over_reserved_unless_a_fact_made_that_version() {
        let mut o = observed();
        o.published.push(PublishedPosition {
            sku: "A".into(),
            version: 7,
            available: -1,
            cause_detail_type: "ReservationRequested".into(),
        });
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.over_reserved.len(), 1);
        // The same version announced by the order that made it: a fact, not a request.
        o.published.push(PublishedPosition {
            sku: "A".into(),
            version: 7,
            available: -1,
            cause_detail_type: "OrderPlaced".into(),
        });
        assert!(check(&ledger().expectations(), &o).over_reserved.is_empty());
    }

    #[test]
    fn a_reservation_releasing_lapsed_holds_of_an_oversold_sku_is_not_over_reserved() {
        let mut o = observed();
        let at = |version, available, cause: &str| PublishedPosition {
            sku: "B".into(),
            version,
            available,
            cause_detail_type: cause.into(),
        };
        // An order oversold B to -3; a reservation of another SKU released a lapsed hold on B.
        o.published.push(at(8, -3, "OrderPlaced"));
        o.published.push(at(9, -2, "ReservationRequested"));
        assert!(check(&ledger().expectations(), &o).over_reserved.is_empty());
        // A reservation that took B further below zero is over-reserved.
        o.published.push(at(10, -4, "ReservationRequested"));
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.over_reserved.len(), 1, "{:?}", v.over_reserved);
    }

    #[test]
    fn a_channel_showing_something_else_has_diverged() {
        let mut o = observed();
        o.shown[0].quantity = Some(11);
        o.shown[1].quantity = None;
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.channels_diverged.len(), 2);
    }

    #[test]
    fn dead_letters_need_a_reason_and_an_injected_fault() {
        let mut o = observed();
        o.dead_letters.push(DeadLetter {
            queue: "OrderShippedDLQ".into(),
            body: r#"{"detail":{"event_id":"ship-1"}}"#.into(),
            reason_code: Some("not_yet_known".into()),
        });
        o.dead_letters.push(DeadLetter {
            queue: "StockReceivedDLQ".into(),
            body: "{}".into(),
            reason_code: None,
        });
        // A sync failure on a channel that had no fault injected.
        o.dead_letters.push(DeadLetter {
            queue: "EbaySyncDLQ".into(),
            body: "{}".into(),
            reason_code: Some("server_error".into()),
        });
        let v = check(&ledger().expectations(), &o);
        assert_eq!(
            v.dead_letters_unexplained.len(),
            3,
            "{:#?}",
            v.dead_letters_unexplained
        );
        // The reused id dead-lettered for another reason is not the injected fault.
        let mut o = observed();
        o.dead_letters[0].reason_code = Some("invalid_quantity".into());
        let v = check(&ledger().expectations(), &o);
        assert_eq!(v.dead_letters_missing.len(), 1);
        assert_eq!(v.dead_letters_unexplained.len(), 1);
    }

    #[test]
    fn a_dead_letter_without_a_reason_is_explained_only_by_its_lost_last_delivery() {
        let mut o = observed();
        let body = r#"{"detail":{"sku":"A"}}"#;
        o.dead_letters.push(DeadLetter {
            queue: "ShopifySyncDLQ".into(),
            body: body.into(),
            reason_code: None,
        });
        assert_eq!(
            check(&ledger().expectations(), &o)
                .dead_letters_unexplained
                .len(),
            1
        );
        o.lost_on_last_delivery.insert("another body".into());
        assert_eq!(
            check(&ledger().expectations(), &o)
                .dead_letters_unexplained
                .len(),
            1
        );
        o.lost_on_last_delivery.insert(body.into());
        assert!(
            check(&ledger().expectations(), &o)
                .dead_letters_unexplained
                .is_empty()
        );
    }
}
