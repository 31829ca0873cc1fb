use super::*;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn line(s: &str, q: i64) -> Line {
    Line {
        sku: sku(s),
        quantity: q,
    }
}
fn position(on_hand: i64) -> Position {
    Position {
        on_hand,
        version: 3,
        ..Default::default()
    }
}

#[test]
fn a_delta_is_written_under_the_version_read_and_logged() {
    let plan = plan_on_hand_delta(&sku("A"), position(5), 2, 100, "e1");
    assert_eq!(plan.positions_written()[&sku("A")].on_hand, 7);
    assert_eq!(plan.positions_written()[&sku("A")].version, 4);
    assert!(
        plan.writes
            .iter()
            .any(|w| matches!(w, Write::LogOnHandDelta { delta: 2, .. }))
    );
    let counted = Position {
        counted_at: Some(100),
        ..position(5)
    };
    let plan = plan_on_hand_delta(&sku("A"), counted, 2, 100, "e1");
    assert_eq!(
        (plan.outcome, plan.writes.len()),
        ("inside_latest_count", 0)
    );
}

#[test]
fn a_count_keeps_later_deltas_and_an_older_count_is_stale() {
    let plan = plan_count(&sku("A"), position(5), 10, 50, -2);
    assert_eq!(plan.positions_written()[&sku("A")].on_hand, 8);
    let counted = Position {
        counted_at: Some(50),
        ..position(5)
    };
    assert_eq!(
        plan_count(&sku("A"), counted, 10, 50, 0).outcome,
        "stale_count"
    );
}

#[test]
fn an_order_is_a_fact_even_when_short() {
    let positions = HashMap::from([(sku("A"), position(1))]);
    let channel = ChannelName::parse("ebay").unwrap();
    let order = EntityId::parse("o1").unwrap();
    let plan = plan_order(&order, &channel, &[line("A", 3)], false, &positions, 9);
    assert_eq!(plan.positions_written()[&sku("A")].available(), -2);
    assert_eq!(plan.notifications[0].detail_type, "OversellDetected");
    assert_eq!(plan.notifications[0].detail["shortfall"], 2);
    assert_eq!(plan.sales(), vec![(3, 9)]);
    let again = plan_order(&order, &channel, &[line("A", 3)], true, &positions, 9);
    assert_eq!(
        (again.outcome, again.writes.len()),
        ("order_already_recorded", 0)
    );
}

fn many_lines(n: usize) -> Vec<Line> {
    (0..n).map(|i| line(&format!("S{i}"), 2)).collect()
}

fn at_one_each(lines: &[Line]) -> HashMap<Sku, Position> {
    lines.iter().map(|l| (l.sku.clone(), position(1))).collect()
}

fn writes_to_order(plan: &Plan) -> Vec<&Write> {
    plan.writes
        .iter()
        .filter(|w| matches!(w, Write::WriteOrder { .. }))
        .collect()
}

/// Every part of an order event fits one transaction whatever is written for it: with a
/// `sequence`, each SKU of the part's sequence and the part's idempotency record join it.
#[test]
fn every_part_of_an_order_of_many_lines_fits_one_transaction() {
    use crate::order::{ORDER_LINES_PER_PART, split_lines};
    use crate::plan::MAX_TX_ITEMS;
    let lines = many_lines(3 * ORDER_LINES_PER_PART);
    let positions = at_one_each(&lines);
    let channel = ChannelName::parse("amazon").unwrap();
    let id = EntityId::parse("o1").unwrap();
    let beside = 1 + ORDER_LINES_PER_PART;
    let fits = |plan: &Plan| {
        assert!(
            plan.writes.len() + beside <= MAX_TX_ITEMS,
            "{}",
            plan.writes.len()
        )
    };
    fits(&plan_order(&id, &channel, &lines, false, &positions, 9));
    let order = OrderRecord {
        id: id.clone(),
        channel: channel.clone(),
        lines: lines.iter().map(OrderLine::new).collect(),
        revision: 1,
        recording: true,
    };
    for part in &split_lines(&lines)[1..] {
        fits(&plan_order_part(
            &id,
            &channel,
            part,
            Some(&order),
            &positions,
            9,
        ));
        fits(&plan_settlement_part(
            part,
            Settlement::Ship,
            &positions,
            7,
            "e",
        ));
    }
    let order = OrderRecord {
        recording: false,
        ..order
    };
    fits(&plan_settlement(&order, None, Settlement::Ship, &positions, 7, "e").unwrap());
}

/// An order of more lines than one transaction holds: the first part records the whole order,
/// `recording`, and applies its own lines; the rest are left, in order, to later parts, the
/// last of which clears `recording`.
#[test]
fn an_order_of_many_lines_is_recorded_whole_and_applied_in_parts() {
    let lines = many_lines(70);
    let positions = at_one_each(&lines);
    let channel = ChannelName::parse("walmart").unwrap();
    let id = EntityId::parse("o1").unwrap();
    let first = plan_order(&id, &channel, &lines, false, &positions, 9);
    assert_eq!(first.skus.len(), 32);
    assert_eq!(first.later, lines[32..]);
    assert_eq!(first.sales().len(), 32);
    // Short lines report their oversell in the part that allocates them.
    assert_eq!(first.notifications.len(), 32);
    assert!(
        matches!(writes_to_order(&first)[..], [Write::WriteOrder { lines: l, recording: true, read_revision: None, .. }] if l.len() == 70)
    );

    let order = OrderRecord {
        id: id.clone(),
        channel: channel.clone(),
        lines: lines.iter().map(OrderLine::new).collect(),
        revision: 1,
        recording: true,
    };
    let middle = plan_order_part(&id, &channel, &lines[32..64], None, &positions, 9);
    assert_eq!(
        middle.skus,
        lines[32..64]
            .iter()
            .map(|l| l.sku.clone())
            .collect::<Vec<_>>()
    );
    assert!(writes_to_order(&middle).is_empty());
    assert!(middle.later.is_empty());
    let last = plan_order_part(&id, &channel, &lines[64..], Some(&order), &positions, 9);
    assert_eq!(last.skus.len(), 6);
    assert_eq!(last.positions_written()[&sku("S69")].hard_reserved, 2);
    assert!(
        matches!(writes_to_order(&last)[..], [Write::WriteOrder { recording: false, read_revision: Some(1), lines: l, .. }] if l.len() == 70)
    );

    // An order of one part is recorded finished, as always.
    let small = plan_order(&id, &channel, &lines[..32], false, &positions, 9);
    assert!(small.later.is_empty());
    assert!(matches!(
        writes_to_order(&small)[..],
        [Write::WriteOrder {
            recording: false,
            ..
        }]
    ));
}

/// A settlement is decided whole by its first part and written to the order at once; its later
/// parts only move the positions of the lines it settled.
#[test]
fn a_settlement_of_many_lines_is_decided_whole_and_applied_in_parts() {
    let lines = many_lines(70);
    let positions: HashMap<Sku, Position> = lines
        .iter()
        .map(|l| {
            (
                l.sku.clone(),
                Position {
                    hard_reserved: 2,
                    ..position(5)
                },
            )
        })
        .collect();
    let order = OrderRecord {
        id: EntityId::parse("o1").unwrap(),
        channel: ChannelName::parse("ebay").unwrap(),
        lines: lines.iter().map(OrderLine::new).collect(),
        revision: 2,
        recording: false,
    };
    let ship = plan_settlement(&order, None, Settlement::Ship, &positions, 7, "e").unwrap();
    assert_eq!(ship.skus.len(), 32);
    assert_eq!(ship.later, lines[32..]);
    assert!(
        matches!(writes_to_order(&ship)[..], [Write::WriteOrder { lines: l, read_revision: Some(2), .. }]
        if l.iter().all(|l| l.shipped == 2 && l.remaining() == 0))
    );
    let rest = plan_settlement_part(&ship.later, Settlement::Ship, &positions, 7, "e");
    let p = rest.positions_written()[&sku("S69")];
    assert_eq!((p.on_hand, p.hard_reserved), (3, 0));
    assert!(writes_to_order(&rest).is_empty());
    // Named lines: the same, in the order the event names them.
    let some: Vec<Line> = lines
        .iter()
        .rev()
        .take(40)
        .map(|l| line(l.sku.as_str(), 1))
        .collect();
    let cancel =
        plan_settlement(&order, Some(&some), Settlement::Cancel, &positions, 7, "e").unwrap();
    assert_eq!(cancel.later, some[32..]);
    assert_eq!(cancel.positions_written()[&sku("S69")].hard_reserved, 1);
}

#[test]
fn a_shipment_takes_units_off_hand_and_a_cancellation_frees_them() {
    let order = OrderRecord {
        id: EntityId::parse("o1").unwrap(),
        channel: ChannelName::parse("ebay").unwrap(),
        lines: vec![OrderLine::new(&line("A", 3))],
        revision: 1,
        recording: false,
    };
    let positions = HashMap::from([(
        sku("A"),
        Position {
            hard_reserved: 3,
            ..position(5)
        },
    )]);
    let ship = plan_settlement(
        &order,
        Some(&[line("A", 2)]),
        Settlement::Ship,
        &positions,
        7,
        "e",
    )
    .unwrap();
    let p = ship.positions_written()[&sku("A")];
    assert_eq!((p.on_hand, p.hard_reserved), (3, 1));
    assert!(ship.writes.iter().any(|w| matches!(w,
        Write::WriteOrder { read_revision: Some(1), lines, .. } if lines[0].shipped == 2)));
    let cancel = plan_settlement(&order, None, Settlement::Cancel, &positions, 7, "e").unwrap();
    let p = cancel.positions_written()[&sku("A")];
    assert_eq!((p.on_hand, p.hard_reserved), (5, 0));
    let err = plan_settlement(
        &order,
        Some(&[line("A", 4)]),
        Settlement::Ship,
        &positions,
        7,
        "e",
    )
    .unwrap_err();
    assert_eq!(err.code, "exceeds_remaining");
}

#[test]
fn an_older_signal_than_the_stored_one_is_ignored() {
    let stored = StoredSignal {
        strength: 2.0,
        occurred_at: 10,
        expires_at: None,
    };
    assert_eq!(
        plan_signal(&sku("A"), "s", 3.0, 9, None, Some(&stored)).outcome,
        "older_than_stored_signal"
    );
    let plan = plan_signal(&sku("A"), "s", 3.0, 11, None, Some(&stored));
    assert!(plan.writes.iter().any(|w| matches!(
        w,
        Write::PutSignal {
            read_occurred_at: Some(10),
            ..
        }
    )));
}
