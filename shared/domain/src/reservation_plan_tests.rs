use super::*;
use crate::ChannelName;
use proptest::prelude::*;

fn sku(s: &str) -> Sku {
    Sku::parse(s).unwrap()
}
fn id(s: &str) -> EntityId {
    EntityId::parse(s).unwrap()
}
fn line(s: &str, q: i64) -> Line {
    Line {
        sku: sku(s),
        quantity: q,
    }
}
fn request(rid: &str, lines: Vec<Line>) -> ReservationRequest {
    ReservationRequest {
        reservation_id: id(rid),
        channel: ChannelName::parse("shopify").unwrap(),
        lines,
        ttl_seconds: 600,
        ttl_defaulted: true,
    }
}
fn on_hand(pairs: &[(&str, i64)]) -> HashMap<Sku, Position> {
    pairs
        .iter()
        .map(|(s, q)| {
            (
                sku(s),
                Position {
                    on_hand: *q,
                    version: 1,
                    ..Default::default()
                },
            )
        })
        .collect()
}
fn held(rid: &str, lines: Vec<Line>, expires_at: Millis) -> ReservationRecord {
    ReservationRecord {
        id: id(rid),
        channel: ChannelName::parse("amazon").unwrap(),
        lines,
        status: ReservationStatus::Held,
        expires_at,
        request_hash: "h".into(),
        order_id: None,
        write_id: None,
    }
}
fn holds_of(records: &[ReservationRecord]) -> HashMap<Sku, Vec<SoftHold>> {
    let mut by: HashMap<Sku, Vec<SoftHold>> = HashMap::new();
    for r in records {
        for l in &r.lines {
            by.entry(l.sku.clone()).or_default().push(SoftHold {
                reservation_id: r.id.clone(),
                sku: l.sku.clone(),
                quantity: l.quantity,
                expires_at: r.expires_at,
            });
        }
    }
    by
}

struct Reads {
    positions: HashMap<Sku, Position>,
    surging: HashSet<Sku>,
    holds: HashMap<Sku, Vec<SoftHold>>,
    lapsed: HashMap<EntityId, ReservationRecord>,
}

impl Reads {
    fn new(positions: HashMap<Sku, Position>, lapsed: Vec<ReservationRecord>) -> Self {
        Self {
            positions,
            surging: HashSet::new(),
            holds: holds_of(&lapsed),
            lapsed: lapsed.into_iter().map(|r| (r.id.clone(), r)).collect(),
        }
    }
    fn plan(&self, req: &ReservationRequest, reserved_items: usize) -> Result<Reserve, Conflict> {
        plan_reserve(&ReserveInput {
            request: req,
            existing: None,
            positions: &self.positions,
            surging: &self.surging,
            expired_holds: &self.holds,
            lapsed: &self.lapsed,
            now: 1_000,
            reserved_items,
        })
    }
}

fn shifts(plan: &Plan) -> Vec<(Sku, i64, Option<i64>)> {
    plan.writes
        .iter()
        .filter_map(|w| match w {
            Write::ShiftPosition {
                sku,
                delta,
                min_available,
            } => Some((sku.clone(), delta.soft_reserved, *min_available)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_cart_in_stock_is_held_with_every_take_conditional_on_available() {
    let reads = Reads::new(on_hand(&[("A", 3), ("B", 1)]), vec![]);
    let req = request("r1", vec![line("A", 2), line("B", 1)]);
    let Reserve::Decided(ReserveAnswer::Held { expires_at, .. }, plan) =
        reads.plan(&req, 0).unwrap()
    else {
        panic!("not held")
    };
    assert_eq!(expires_at, 1_000 + 600_000);
    assert_eq!(plan.outcome, "applied");
    assert_eq!(
        shifts(&plan),
        vec![(sku("A"), 2, Some(2)), (sku("B"), 1, Some(1))]
    );
    assert_eq!(plan.writes.len(), 5);
    assert_eq!(plan.notifications[0].detail_type, "ReservationAccepted");
}

#[test]
fn one_short_line_rejects_the_cart_and_writes_nothing() {
    let reads = Reads::new(on_hand(&[("A", 3), ("B", 0)]), vec![]);
    let req = request("r1", vec![line("A", 2), line("B", 1)]);
    let Reserve::Decided(ReserveAnswer::Insufficient { shortfalls }, plan) =
        reads.plan(&req, 0).unwrap()
    else {
        panic!("not rejected")
    };
    assert_eq!(shortfalls.len(), 1);
    assert!(plan.writes.is_empty());
    assert_eq!(plan.notifications[0].detail_type, "ReservationRejected");
}

#[test]
fn expired_holds_are_released_in_the_same_transaction_and_netted_per_sku() {
    // 2 on hand, both soft-held by a lapsed reservation; the new cart takes 2.
    let mut positions = on_hand(&[("A", 2)]);
    positions.get_mut(&sku("A")).unwrap().soft_reserved = 2;
    let lapsed = held("old", vec![line("A", 2)], 500);
    let reads = Reads::new(positions, vec![lapsed]);
    let req = request("r1", vec![line("A", 2)]);
    assert_eq!(
        release_candidates(&req.lines, &reads.positions, &reads.holds, 1_000),
        vec![id("old")]
    );
    let Reserve::Decided(ReserveAnswer::Held { .. }, plan) = reads.plan(&req, 0).unwrap() else {
        panic!("not held")
    };
    // One position item for A: +2 taken, -2 released, needing 0 available once released.
    assert_eq!(shifts(&plan), vec![(sku("A"), 0, Some(0))]);
    assert!(plan.writes.iter().any(|w| matches!(w,
        Write::SetReservationStatus { id: r, to: ReservationStatus::Expired, .. } if r.as_str() == "old")));
    assert!(
        plan.notifications
            .iter()
            .any(|n| n.detail_type == "ReservationExpired")
    );
}

#[test]
fn a_live_hold_is_never_released() {
    let mut positions = on_hand(&[("A", 1)]);
    positions.get_mut(&sku("A")).unwrap().soft_reserved = 1;
    let reads = Reads::new(positions, vec![held("live", vec![line("A", 1)], 5_000)]);
    let req = request("r1", vec![line("A", 1)]);
    assert!(matches!(
        reads.plan(&req, 0).unwrap(),
        Reserve::Decided(ReserveAnswer::Insufficient { .. }, _)
    ));
}

/// 10 lapsed reservations of 10 lines each: a release costs 21 items, so with a 2-line cart
/// (6 items) and one idempotency item only 4 fit in one transaction.
#[test]
fn releases_that_do_not_fit_in_100_items_are_expired_first() {
    let skus: Vec<String> = (0..10).map(|i| format!("S{i}")).collect();
    let mut positions: HashMap<Sku, Position> = HashMap::new();
    for s in &skus {
        positions.insert(
            sku(s),
            Position {
                on_hand: 10,
                soft_reserved: 10,
                version: 1,
                ..Default::default()
            },
        );
    }
    let lapsed: Vec<ReservationRecord> = (0..10)
        .map(|i| {
            held(
                &format!("old{i}"),
                skus.iter().map(|s| line(s, 1)).collect(),
                100 + i,
            )
        })
        .collect();
    let reads = Reads::new(positions, lapsed);
    // Needs 8 units of S0: 8 releases, only 4 fit.
    let req = request("r1", vec![line("S0", 8), line("S1", 1)]);
    match reads.plan(&req, 1).unwrap() {
        Reserve::ReleaseFirst(ids) => {
            let ids: Vec<&str> = ids.iter().map(EntityId::as_str).collect();
            assert_eq!(ids, ["old4", "old5", "old6", "old7"]);
        }
        other => panic!("expected ReleaseFirst, got {other:?}"),
    }
    // Needs 4: they fit, in exactly 6 + 4 * 21 + ... items, within the limit.
    let req = request("r2", vec![line("S0", 4), line("S1", 1)]);
    let Reserve::Decided(ReserveAnswer::Held { .. }, plan) = reads.plan(&req, 1).unwrap() else {
        panic!("not held")
    };
    assert!(plan.writes.len() < MAX_TX_ITEMS);
}

proptest! {
    /// Whatever the carts and lapsed reservations, a decided plan fits in one transaction with the
    /// caller's items, and touches each position once.
    #[test]
    fn a_plan_never_exceeds_the_transaction_limit(
        cart in prop::collection::vec((0usize..12, 1i64..6), 1..20),
        stock in prop::collection::vec(0i64..6, 12),
        lapsed in prop::collection::vec(prop::collection::vec((0usize..12, 1i64..4), 1..12), 0..30),
        reserved in 0usize..30,
    ) {
        let name = |i: usize| format!("K{i}");
        let mut positions: HashMap<Sku, Position> = HashMap::new();
        for (i, s) in stock.iter().enumerate() {
            positions.insert(sku(&name(i)), Position { on_hand: *s, version: 1, ..Default::default() });
        }
        let mut records = Vec::new();
        for (r, lines) in lapsed.iter().enumerate() {
            let mut ls: Vec<Line> = Vec::new();
            for (i, q) in lines {
                if !ls.iter().any(|l| l.sku == sku(&name(*i))) {
                    ls.push(line(&name(*i), *q));
                    positions.get_mut(&sku(&name(*i))).unwrap().soft_reserved += q;
                    positions.get_mut(&sku(&name(*i))).unwrap().on_hand += q;
                }
            }
            records.push(held(&format!("old{r}"), ls, 10 + r as i64));
        }
        let mut lines: Vec<Line> = Vec::new();
        for (i, q) in cart {
            if !lines.iter().any(|l| l.sku == sku(&name(i))) {
                lines.push(line(&name(i), q));
            }
        }
        let reads = Reads::new(positions, records);
        let req = request("new", lines);
        if let Reserve::Decided(_, plan) = reads.plan(&req, reserved).unwrap() {
            prop_assert!(plan.writes.len() + reserved <= MAX_TX_ITEMS);
            let mut seen = HashSet::new();
            for w in &plan.writes {
                if let Write::ShiftPosition { sku, .. } = w {
                    prop_assert!(seen.insert(sku.clone()), "position {sku} written twice");
                }
            }
        }
    }
}

#[test]
fn a_repeated_request_is_recognised_and_a_reused_id_refused() {
    let reads = Reads::new(on_hand(&[("A", 3)]), vec![]);
    let req = request("r1", vec![line("A", 1)]);
    let mut existing = held("r1", vec![line("A", 1)], 9_000);
    existing.request_hash = request_hash(&req);
    let input = |existing| ReserveInput {
        request: &req,
        existing,
        positions: &reads.positions,
        surging: &reads.surging,
        expired_holds: &reads.holds,
        lapsed: &reads.lapsed,
        now: 1_000,
        reserved_items: 0,
    };
    match plan_reserve(&input(Some(&existing))).unwrap() {
        Reserve::Decided(
            ReserveAnswer::Held {
                repeat: true,
                expires_at: 9_000,
                ..
            },
            plan,
        ) => assert!(plan.writes.is_empty()),
        other => panic!("{other:?}"),
    }
    let reused = ReservationRecord {
        request_hash: "other".into(),
        ..existing.clone()
    };
    let err = plan_reserve(&input(Some(&reused))).unwrap_err();
    assert_eq!(err.code, "idempotency_key_reused");
}

#[test]
fn a_surge_shortens_only_a_defaulted_hold() {
    let mut reads = Reads::new(on_hand(&[("A", 3)]), vec![]);
    reads.surging.insert(sku("A"));
    let mut req = request("r1", vec![line("A", 1)]);
    let expiry = |reads: &Reads, req: &ReservationRequest| match reads.plan(req, 0).unwrap() {
        Reserve::Decided(ReserveAnswer::Held { expires_at, .. }, _) => expires_at,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        expiry(&reads, &req),
        1_000 + i64::from(SURGE_TTL_SECONDS) * 1000
    );
    req.ttl_defaulted = false;
    assert_eq!(expiry(&reads, &req), 1_000 + 600_000);
}

fn confirm(
    record: &ReservationRecord,
    positions: &HashMap<Sku, Position>,
    on_lapse: OnLapse,
) -> Result<(ConfirmAnswer, Plan), Conflict> {
    plan_confirmation(Some(record), &id("o1"), false, positions, on_lapse, 2_000)
}

#[test]
fn a_held_reservation_hardens_without_a_version_conflict() {
    let record = held("r1", vec![line("A", 2)], 5_000);
    assert!(!confirm_reads_positions(&record));
    let (answer, plan) = confirm(&record, &HashMap::new(), OnLapse::Reject).unwrap();
    assert_eq!(answer, ConfirmAnswer::Confirmed);
    assert!(plan.writes.iter().any(|w| matches!(w,
        Write::ShiftPosition { delta, min_available: None, .. }
            if delta.hard_reserved == 2 && delta.soft_reserved == -2)));
    assert!(plan.writes.iter().any(|w| matches!(
        w,
        Write::WriteOrder {
            read_revision: None,
            ..
        }
    )));
    assert_eq!(plan.sales(), vec![(2, 2_000)]);
}

#[test]
fn what_a_lapsed_reservation_becomes_on_confirmation() {
    let mut record = held("r1", vec![line("A", 2)], 500);
    record.status = ReservationStatus::Expired;
    assert!(confirm_reads_positions(&record));
    // Its units are still there: taken again, conditionally.
    let (answer, plan) = confirm(&record, &on_hand(&[("A", 2)]), OnLapse::Reject).unwrap();
    assert_eq!(answer, ConfirmAnswer::Confirmed);
    assert!(plan.writes.iter().any(|w| matches!(
        w,
        Write::ShiftPosition {
            min_available: Some(2),
            ..
        }
    )));
    // Taken meanwhile: the API refuses and writes nothing...
    let (answer, plan) = confirm(&record, &on_hand(&[("A", 1)]), OnLapse::Reject).unwrap();
    assert!(matches!(answer, ConfirmAnswer::Lapsed { .. }));
    assert!(plan.writes.is_empty());
    // ...the event records the sale as a fact and reports the oversell.
    let (answer, plan) = confirm(&record, &on_hand(&[("A", 1)]), OnLapse::RecordOversell).unwrap();
    assert_eq!(answer, ConfirmAnswer::Confirmed);
    assert_eq!(plan.notifications[0].detail_type, "OversellDetected");
    assert_eq!(plan.positions_written()[&sku("A")].hard_reserved, 2);
}

#[test]
fn confirming_twice_or_into_a_used_order_id() {
    let mut record = held("r1", vec![line("A", 1)], 5_000);
    let err = plan_confirmation(
        Some(&record),
        &id("o1"),
        true,
        &HashMap::new(),
        OnLapse::Reject,
        0,
    )
    .unwrap_err();
    assert_eq!(err.code, "order_id_in_use");
    record.status = ReservationStatus::Confirmed;
    record.order_id = Some("o1".into());
    assert!(!confirm_reads_order(&record));
    let (answer, plan) = confirm(&record, &HashMap::new(), OnLapse::Reject).unwrap();
    assert_eq!(
        (answer, plan.outcome),
        (ConfirmAnswer::Confirmed, "already_confirmed")
    );
    let (answer, _) = plan_confirmation(
        Some(&record),
        &id("o2"),
        false,
        &HashMap::new(),
        OnLapse::Reject,
        0,
    )
    .unwrap();
    assert_eq!(
        answer,
        ConfirmAnswer::OtherOrder {
            order_id: "o1".into()
        }
    );
    let (answer, _) =
        plan_confirmation(None, &id("o1"), false, &HashMap::new(), OnLapse::Reject, 0).unwrap();
    assert_eq!(answer, ConfirmAnswer::NotFound);
}

#[test]
fn release_and_expiry_give_units_back_once() {
    let mut record = held("r1", vec![line("A", 2), line("B", 1)], 500);
    let (answer, plan) = plan_release(Some(&record));
    assert_eq!(answer, ReleaseAnswer::Released);
    assert_eq!(
        shifts(&plan),
        vec![(sku("A"), -2, None), (sku("B"), -1, None)]
    );
    assert!(plan.notifications.is_empty());
    let (expired, plan) = plan_expiry(Some(&record), 500);
    assert!(expired);
    assert_eq!(plan.notifications[0].detail_type, "ReservationExpired");
    assert!(!plan_expiry(Some(&record), 499).0);
    record.status = ReservationStatus::Released;
    assert!(!plan_expiry(Some(&record), 600).0);
    assert_eq!(plan_release(Some(&record)).1.outcome, "already_released");
    record.status = ReservationStatus::Confirmed;
    assert_eq!(
        plan_release(Some(&record)).0,
        ReleaseAnswer::AlreadyConfirmed
    );
    assert_eq!(plan_release(None).0, ReleaseAnswer::NotFound);
}
