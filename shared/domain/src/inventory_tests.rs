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

/// The largest order the inbound validation lets through fits one transaction whatever is
/// written for it: with a `sequence`, each SKU's sequence and the idempotency record join it.
#[test]
fn an_order_of_the_most_lines_allowed_fits_one_transaction() {
    use crate::inbound::MAX_ORDER_LINES;
    use crate::plan::MAX_TX_ITEMS;
    let lines: Vec<Line> = (0..MAX_ORDER_LINES)
        .map(|i| line(&format!("S{i}"), 2))
        .collect();
    let positions: HashMap<Sku, Position> =
        lines.iter().map(|l| (l.sku.clone(), position(1))).collect();
    let channel = ChannelName::parse("amazon").unwrap();
    let id = EntityId::parse("o1").unwrap();
    let beside = 1 + MAX_ORDER_LINES;
    let placed = plan_order(&id, &channel, &lines, false, &positions, 9);
    assert!(
        placed.writes.len() + beside <= MAX_TX_ITEMS,
        "{}",
        placed.writes.len()
    );
    let order = OrderRecord {
        id,
        channel,
        lines: lines.iter().map(OrderLine::new).collect(),
        revision: 1,
    };
    let shipped = plan_settlement(&order, None, Settlement::Ship, &positions, 7, "e").unwrap();
    assert!(
        shipped.writes.len() + beside <= MAX_TX_ITEMS,
        "{}",
        shipped.writes.len()
    );
}

#[test]
fn a_shipment_takes_units_off_hand_and_a_cancellation_frees_them() {
    let order = OrderRecord {
        id: EntityId::parse("o1").unwrap(),
        channel: ChannelName::parse("ebay").unwrap(),
        lines: vec![OrderLine::new(&line("A", 3))],
        revision: 1,
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
