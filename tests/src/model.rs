//! Model-based test of the inventory state machine: generated histories of reserve, confirm,
//! release, expire, sweep, order, ship, cancel, return, receive, adjust and count, with concurrent
//! and duplicated deliveries, run through the real handlers on a store (the in-memory twin or
//! DynamoDB) and checked step by step against a small reference model written independently of
//! the domain crate.
//!
//! Two operations run at once must leave the state, and give the answers, of one of their two
//! serial orders; a delivery seen before must change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use proptest::prelude::*;
use serde_json::{Value, json};
use stockguard_adapters::{InventoryStore, Publish};
use stockguard_domain::reservation::ReservationStatus;
use stockguard_domain::types::format_timestamp;
use stockguard_domain::{ChannelName, EntityId, Line, Millis, ReservationRequest, Sku};
use stockguard_handlers::reservations::{ConfirmAnswer, ReleaseAnswer, ReserveAnswer};
use stockguard_handlers::{Applied, ApplyError, Inventory};

const SKUS: usize = 3;
const RESERVATIONS: u8 = 6;
const ORDERS: u8 = 5;

/// One step of a history. Indices name SKUs, reservations and orders of small pools, so steps
/// collide on purpose.
#[derive(Debug, Clone)]
pub enum Op {
    Receive {
        sku: usize,
        qty: i64,
        back: i64,
    },
    Adjust {
        sku: usize,
        delta: i64,
        back: i64,
    },
    Return {
        sku: usize,
        qty: i64,
        restock: bool,
        back: i64,
    },
    Count {
        sku: usize,
        on_hand: i64,
        back: i64,
    },
    Order {
        order: u8,
        lines: Vec<(usize, i64)>,
    },
    Ship {
        order: u8,
        lines: Option<Vec<(usize, i64)>>,
    },
    Cancel {
        order: u8,
        lines: Option<Vec<(usize, i64)>>,
    },
    /// Through the HTTP API, or as a `ReservationRequested` event.
    Reserve {
        res: u8,
        lines: Vec<(usize, i64)>,
        ttl: u32,
        event: bool,
    },
    Confirm {
        res: u8,
        order: u8,
        event: bool,
    },
    Release {
        res: u8,
        event: bool,
    },
    Sweep,
    /// The clock moves (holds lapse).
    Advance {
        ms: i64,
    },
    /// An earlier event delivered again, unchanged.
    Redeliver {
        k: usize,
    },
    /// An earlier event's id with another payload.
    Reuse {
        k: usize,
    },
    /// Both at once (the same step twice: a duplicated delivery racing itself).
    Concurrent(Box<Op>, Box<Op>),
    /// An event whose commit is written but whose answer is lost (where the store can inject
    /// it): the delivery fails as retryable, and the change must count once.
    LostAck(Box<Op>),
}

fn lines_strategy() -> impl Strategy<Value = Vec<(usize, i64)>> {
    prop::collection::btree_map(0..SKUS, 1i64..4, 1..=SKUS)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
}

fn leaf() -> impl Strategy<Value = Op> {
    let back = 0i64..120_000;
    prop_oneof![
        3 => (0..SKUS, 1i64..8, back.clone()).prop_map(|(sku, qty, back)| Op::Receive { sku, qty, back }),
        1 => (0..SKUS, -3i64..4, back.clone()).prop_map(|(sku, delta, back)| Op::Adjust { sku, delta: if delta == 0 { 1 } else { delta }, back }),
        1 => (0..SKUS, 1i64..3, any::<bool>(), back.clone()).prop_map(|(sku, qty, restock, back)| Op::Return { sku, qty, restock, back }),
        1 => (0..SKUS, 0i64..10, back).prop_map(|(sku, on_hand, back)| Op::Count { sku, on_hand, back }),
        2 => (0..ORDERS, lines_strategy()).prop_map(|(order, lines)| Op::Order { order, lines }),
        1 => (0..ORDERS, prop::option::of(lines_strategy())).prop_map(|(order, lines)| Op::Ship { order, lines }),
        1 => (0..ORDERS, prop::option::of(lines_strategy())).prop_map(|(order, lines)| Op::Cancel { order, lines }),
        5 => (0..RESERVATIONS, lines_strategy(), prop_oneof![Just(30u32), Just(120u32)], any::<bool>())
            .prop_map(|(res, lines, ttl, event)| Op::Reserve { res, lines, ttl, event }),
        3 => (0..RESERVATIONS, 0..ORDERS, any::<bool>()).prop_map(|(res, order, event)| Op::Confirm { res, order, event }),
        2 => (0..RESERVATIONS, any::<bool>()).prop_map(|(res, event)| Op::Release { res, event }),
        1 => Just(Op::Sweep),
        2 => prop_oneof![Just(10_000i64), Just(60_000i64)].prop_map(|ms| Op::Advance { ms }),
        1 => any::<usize>().prop_map(|k| Op::Redeliver { k }),
        1 => any::<usize>().prop_map(|k| Op::Reuse { k }),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => leaf(),
        1 => (leaf(), leaf()).prop_map(|(a, b)| Op::Concurrent(Box::new(a), Box::new(b))),
        1 => leaf().prop_map(|a| Op::Concurrent(Box::new(a.clone()), Box::new(a))),
        1 => leaf().prop_map(|a| Op::LostAck(Box::new(a))),
    ]
}

/// Histories of 1 to `max_len` steps.
pub fn history(max_len: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op(), 1..=max_len)
}

/// An event as delivered: its type and detail (with `event_id` and `occurred_at`).
#[derive(Debug, Clone)]
struct Event {
    detail_type: &'static str,
    detail: Value,
}

/// A step with its names resolved: what the handlers are called with.
#[derive(Debug, Clone)]
enum Call {
    Event(Event),
    Reserve(ReservationRequest),
    Confirm(EntityId, EntityId),
    Release(EntityId),
    Sweep,
}

/// Names of one history's SKUs, reservations and orders, unique per history.
pub struct Names {
    prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }
    fn sku(&self, i: usize) -> Sku {
        Sku::parse(&format!("{}S{i}", self.prefix)).unwrap()
    }
    fn res(&self, i: u8) -> EntityId {
        EntityId::parse(&format!("{}r{i}", self.prefix)).unwrap()
    }
    fn order(&self, i: u8) -> EntityId {
        EntityId::parse(&format!("{}o{i}", self.prefix)).unwrap()
    }
    fn lines(&self, lines: &[(usize, i64)]) -> Vec<Line> {
        lines
            .iter()
            .map(|(s, q)| Line {
                sku: self.sku(*s),
                quantity: *q,
            })
            .collect()
    }
    fn lines_json(&self, lines: &[(usize, i64)]) -> Value {
        json!(
            lines
                .iter()
                .map(|(s, q)| json!({"sku": self.sku(*s), "quantity": q}))
                .collect::<Vec<_>>()
        )
    }
}

// ---------------------------------------------------------------------------------------------
// The reference model: plain maps and the rules as the contract states them.

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Units {
    on_hand: i64,
    hard: i64,
    soft: i64,
    counted_at: Option<Millis>,
}

#[derive(Debug, Clone, PartialEq)]
struct Res {
    lines: Vec<Line>,
    channel: String,
    ttl: u32,
    status: ReservationStatus,
    expires_at: Millis,
    order: Option<String>,
}

/// (quantity, shipped, cancelled) per SKU.
type OrderLines = Vec<(Sku, i64, i64, i64)>;

#[derive(Debug, Clone, Default)]
pub struct Model {
    units: BTreeMap<Sku, Units>,
    /// On-hand deltas applied: (SKU, occurred_at, delta).
    deltas: Vec<(Sku, Millis, i64)>,
    res: BTreeMap<EntityId, Res>,
    orders: BTreeMap<EntityId, OrderLines>,
    /// Applied deliveries: event id -> detail.
    seen: BTreeMap<String, Value>,
}

fn available(u: &Units) -> i64 {
    u.on_hand - u.hard - u.soft
}

impl Model {
    fn u(&mut self, sku: &Sku) -> &mut Units {
        self.units.entry(sku.clone()).or_default()
    }

    fn avail(&self, sku: &Sku) -> i64 {
        self.units.get(sku).map_or(0, available)
    }

    fn on_hand_delta(&mut self, sku: &Sku, delta: i64, at: Millis) -> &'static str {
        let u = self.u(sku);
        if u.counted_at.is_some_and(|c| at <= c) {
            return "inside_latest_count";
        }
        u.on_hand += delta;
        self.deltas.push((sku.clone(), at, delta));
        "applied"
    }

    /// What one step answers, and its effect on the model.
    fn step(&mut self, call: &Call, now: Millis) -> String {
        match call {
            Call::Event(e) => self.event(e, now),
            Call::Reserve(req) => match self.reserve(req, now) {
                Ok((_, true)) => "held_again".into(),
                Ok((true, _)) => "held".into(),
                Ok((false, _)) => "insufficient".into(),
                Err(code) => format!("error:{code}"),
            },
            Call::Confirm(res, order) => match self.confirm(res, order, false) {
                Ok(a) => a.into(),
                Err(code) => format!("error:{code}"),
            },
            Call::Release(res) => match self.release(res) {
                Ok(a) if a == "applied" || a == "already_released" => "released".into(),
                Ok(a) => a.into(),
                Err(code) => format!("error:{code}"),
            },
            Call::Sweep => {
                self.sweep(now);
                "swept".into()
            }
        }
    }

    fn event(&mut self, e: &Event, now: Millis) -> String {
        let id = e.detail["event_id"].as_str().unwrap_or_default().to_owned();
        if let Some(seen) = self.seen.get(&id) {
            return if *seen == e.detail {
                "repeat".into()
            } else {
                "error:idempotency_key_reused".into()
            };
        }
        // Every refusal below is decided before anything changes.
        match self.apply_event(e, now) {
            Ok(outcome) => {
                self.seen.insert(id, e.detail.clone());
                format!("applied:{outcome}")
            }
            Err(code) => format!("error:{code}"),
        }
    }

    fn apply_event(&mut self, e: &Event, now: Millis) -> Result<&'static str, &'static str> {
        let d = &e.detail;
        let at =
            stockguard_domain::types::parse_timestamp(d["occurred_at"].as_str().unwrap()).unwrap();
        let sku = || Sku::parse(d["sku"].as_str().unwrap()).unwrap();
        let id = |name: &str| EntityId::parse(d[name].as_str().unwrap()).unwrap();
        let lines = |v: &Value| -> Vec<Line> { serde_json::from_value(v.clone()).unwrap() };
        Ok(match e.detail_type {
            "StockReceived" => self.on_hand_delta(&sku(), d["quantity"].as_i64().unwrap(), at),
            "StockAdjusted" => self.on_hand_delta(&sku(), d["delta"].as_i64().unwrap(), at),
            "ReturnReceived" if d["restock"] == json!(true) => {
                self.on_hand_delta(&sku(), d["quantity"].as_i64().unwrap(), at)
            }
            "ReturnReceived" => "not_restocked",
            "StockCounted" => {
                let sku = sku();
                if self.u(&sku).counted_at.is_some_and(|c| at <= c) {
                    return Ok("stale_count");
                }
                let later: i64 = self
                    .deltas
                    .iter()
                    .filter(|(s, t, _)| *s == sku && *t > at)
                    .map(|(_, _, d)| d)
                    .sum();
                let u = self.u(&sku);
                u.on_hand = d["on_hand"].as_i64().unwrap() + later;
                u.counted_at = Some(at);
                "applied"
            }
            "OrderPlaced" => {
                let order = id("order_id");
                if self.orders.contains_key(&order) {
                    return Ok("order_already_recorded");
                }
                let lines = lines(&d["lines"]);
                for l in &lines {
                    self.u(&l.sku).hard += l.quantity;
                }
                self.orders.insert(
                    order,
                    lines
                        .into_iter()
                        .map(|l| (l.sku, l.quantity, 0, 0))
                        .collect(),
                );
                "applied"
            }
            "OrderShipped" | "OrderCancelled" => {
                let ship = e.detail_type == "OrderShipped";
                let order = id("order_id");
                let Some(mut ol) = self.orders.get(&order).cloned() else {
                    return Err("not_yet_known");
                };
                let wanted: Vec<Line> = match d.get("lines") {
                    Some(v) if !v.is_null() => lines(v),
                    _ => ol
                        .iter()
                        .filter(|(_, q, s, c)| q - s - c > 0)
                        .map(|(sku, q, s, c)| Line {
                            sku: sku.clone(),
                            quantity: q - s - c,
                        })
                        .collect(),
                };
                for w in &wanted {
                    let Some((_, q, s, c)) = ol.iter().find(|l| l.0 == w.sku) else {
                        return Err("unknown_order_line");
                    };
                    if w.quantity > q - s - c {
                        return Err("exceeds_remaining");
                    }
                }
                if wanted.is_empty() {
                    return Ok("nothing_remaining");
                }
                for w in &wanted {
                    let line = ol.iter_mut().find(|l| l.0 == w.sku).unwrap();
                    if ship {
                        line.2 += w.quantity;
                    } else {
                        line.3 += w.quantity;
                    }
                    self.u(&w.sku).hard -= w.quantity;
                    if ship {
                        self.on_hand_delta(&w.sku, -w.quantity, at);
                    }
                }
                self.orders.insert(order, ol);
                "applied"
            }
            "ReservationRequested" => {
                let req = ReservationRequest {
                    reservation_id: id("reservation_id"),
                    channel: ChannelName::parse(d["channel"].as_str().unwrap()).unwrap(),
                    lines: lines(&d["lines"]),
                    ttl_seconds: d["ttl_seconds"].as_u64().unwrap() as u32,
                    ttl_defaulted: false,
                };
                match self.reserve(&req, now)? {
                    (_, true) => "repeat",
                    (true, _) => "applied",
                    (false, _) => "insufficient_stock",
                }
            }
            "ReservationConfirmed" => {
                match self.confirm(&id("reservation_id"), &id("order_id"), true)? {
                    "confirmed" => "applied",
                    "not_found" => return Err("not_yet_known"),
                    other => other,
                }
            }
            "ReservationReleased" => match self.release(&id("reservation_id"))? {
                "not_found" => return Err("not_yet_known"),
                "already_confirmed" => return Err("reservation_confirmed"),
                other => other,
            },
            other => panic!("no model for {other}"),
        })
    }

    /// `Ok((held, repeat))`: all lines held or none; expired holds of a short SKU are released,
    /// oldest first, only as far as a line needs them and only if the cart is then held.
    fn reserve(
        &mut self,
        req: &ReservationRequest,
        now: Millis,
    ) -> Result<(bool, bool), &'static str> {
        if let Some(r) = self.res.get(&req.reservation_id) {
            let same = r.lines == req.lines
                && r.channel == req.channel.as_str()
                && r.ttl == req.ttl_seconds;
            return if same {
                Ok((true, true))
            } else {
                Err("idempotency_key_reused")
            };
        }
        let mut released: BTreeMap<Sku, i64> = BTreeMap::new();
        let mut releases: Vec<EntityId> = Vec::new();
        for line in &req.lines {
            let needed = line.quantity
                - self.avail(&line.sku)
                - released.get(&line.sku).copied().unwrap_or(0);
            if needed <= 0 {
                continue;
            }
            let mut lapsed: Vec<(Millis, &EntityId, i64)> = self
                .res
                .iter()
                .filter(|(_, r)| r.status == ReservationStatus::Held && r.expires_at <= now)
                .filter_map(|(id, r)| {
                    r.lines
                        .iter()
                        .find(|l| l.sku == line.sku)
                        .map(|l| (r.expires_at, id, l.quantity))
                })
                .collect();
            lapsed.sort();
            let mut covered = 0;
            for (_, id, q) in lapsed {
                if covered >= needed {
                    break;
                }
                covered += q;
                if !releases.contains(id) {
                    releases.push(id.clone());
                    for l in &self.res[id].lines {
                        *released.entry(l.sku.clone()).or_default() += l.quantity;
                    }
                }
            }
        }
        let held = req
            .lines
            .iter()
            .all(|l| self.avail(&l.sku) + released.get(&l.sku).copied().unwrap_or(0) >= l.quantity);
        if !held {
            return Ok((false, false));
        }
        for id in releases {
            self.expire(&id);
        }
        for l in &req.lines {
            self.u(&l.sku).soft += l.quantity;
        }
        self.res.insert(
            req.reservation_id.clone(),
            Res {
                lines: req.lines.clone(),
                channel: req.channel.as_str().to_owned(),
                ttl: req.ttl_seconds,
                status: ReservationStatus::Held,
                expires_at: now + i64::from(req.ttl_seconds) * 1000,
                order: None,
            },
        );
        Ok((true, false))
    }

    fn expire(&mut self, id: &EntityId) {
        let r = self.res.get_mut(id).unwrap();
        r.status = ReservationStatus::Expired;
        for l in r.lines.clone() {
            self.u(&l.sku).soft -= l.quantity;
        }
    }

    /// API answers (`confirmed`, `not_found`, `lapsed`, `other_order`); the event's outcomes
    /// (`already_confirmed`) where they differ. A lapsed confirmation is refused by the API and
    /// recorded (an oversell) by the event.
    fn confirm(
        &mut self,
        res: &EntityId,
        order: &EntityId,
        event: bool,
    ) -> Result<&'static str, &'static str> {
        let Some(r) = self.res.get(res).cloned() else {
            return Ok("not_found");
        };
        if r.status == ReservationStatus::Confirmed {
            return Ok(match (r.order.as_deref() == Some(order.as_str()), event) {
                (true, false) => "confirmed",
                (true, true) => "already_confirmed",
                (false, _) => "other_order",
            });
        }
        if self.orders.contains_key(order) {
            return Err("order_id_in_use");
        }
        match r.status {
            ReservationStatus::Held => {
                for l in &r.lines {
                    let u = self.u(&l.sku);
                    u.soft -= l.quantity;
                    u.hard += l.quantity;
                }
            }
            _ => {
                let there = r.lines.iter().all(|l| self.avail(&l.sku) >= l.quantity);
                if !there && !event {
                    return Ok("lapsed");
                }
                for l in &r.lines {
                    self.u(&l.sku).hard += l.quantity;
                }
            }
        }
        let rec = self.res.get_mut(res).unwrap();
        rec.status = ReservationStatus::Confirmed;
        rec.order = Some(order.to_string());
        self.orders.insert(
            order.clone(),
            r.lines
                .iter()
                .map(|l| (l.sku.clone(), l.quantity, 0, 0))
                .collect(),
        );
        Ok("confirmed")
    }

    fn release(&mut self, res: &EntityId) -> Result<&'static str, &'static str> {
        let Some(r) = self.res.get(res).cloned() else {
            return Ok("not_found");
        };
        Ok(match r.status {
            ReservationStatus::Held => {
                for l in &r.lines {
                    self.u(&l.sku).soft -= l.quantity;
                }
                self.res.get_mut(res).unwrap().status = ReservationStatus::Released;
                "applied"
            }
            ReservationStatus::Released | ReservationStatus::Expired => "already_released",
            ReservationStatus::Confirmed => "already_confirmed",
        })
    }

    fn sweep(&mut self, now: Millis) {
        let lapsed: Vec<EntityId> = self
            .res
            .iter()
            .filter(|(_, r)| r.status == ReservationStatus::Held && r.expires_at <= now)
            .map(|(id, _)| id.clone())
            .collect();
        for id in lapsed {
            self.expire(&id);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Running a history on the real handlers.

/// What the handlers answered, in the model's words.
fn event_answer(r: Result<Applied, ApplyError>) -> String {
    match r {
        Ok(Applied::Applied { outcome }) => format!("applied:{outcome}"),
        Ok(Applied::Repeat) => "repeat".into(),
        Ok(Applied::ProducerReplay) => "producer_replay".into(),
        Err(ApplyError::Invalid(e)) => format!("error:{}", e.code),
        Err(e) => format!("error:{}", e.code()),
    }
}

async fn call<S: InventoryStore, P: Publish>(inv: Inventory<'_, S, P>, c: &Call) -> String {
    match c {
        Call::Event(e) => event_answer(inv.apply("model", e.detail_type, &e.detail).await),
        Call::Reserve(req) => match inv.reserve(req).await {
            Ok(ReserveAnswer::Held { repeat: false, .. }) => "held".into(),
            Ok(ReserveAnswer::Held { repeat: true, .. }) => "held_again".into(),
            Ok(ReserveAnswer::Insufficient { .. }) => "insufficient".into(),
            Err(e) => format!("error:{}", e.code()),
        },
        Call::Confirm(res, order) => match inv.confirm(res, order).await {
            Ok(ConfirmAnswer::Confirmed) => "confirmed".into(),
            Ok(ConfirmAnswer::NotFound) => "not_found".into(),
            Ok(ConfirmAnswer::Lapsed { .. }) => "lapsed".into(),
            Ok(ConfirmAnswer::OtherOrder { .. }) => "other_order".into(),
            Err(e) => format!("error:{}", e.code()),
        },
        Call::Release(res) => match inv.release(res).await {
            Ok(ReleaseAnswer::Released) => "released".into(),
            Ok(ReleaseAnswer::NotFound) => "not_found".into(),
            Ok(ReleaseAnswer::AlreadyConfirmed) => "already_confirmed".into(),
            Err(e) => format!("error:{}", e.code()),
        },
        Call::Sweep => match inv.expire_lapsed(std::time::Duration::from_secs(30)).await {
            Ok(_) => "swept".into(),
            Err(e) => format!("error:{}", e.code()),
        },
    }
}

/// The part of the state the model predicts, as read through the store.
#[derive(Debug, PartialEq)]
struct Observed {
    units: Vec<(i64, i64, i64)>,
    res: Vec<Option<(ReservationStatus, Option<String>)>>,
    orders: Vec<Option<Vec<(i64, i64, i64)>>>,
}

impl Model {
    fn observe(&self, names: &Names) -> Observed {
        Observed {
            units: (0..SKUS)
                .map(|i| {
                    let u = self.units.get(&names.sku(i)).copied().unwrap_or_default();
                    (u.on_hand, u.hard, u.soft)
                })
                .collect(),
            res: (0..RESERVATIONS)
                .map(|i| {
                    self.res
                        .get(&names.res(i))
                        .map(|r| (r.status, r.order.clone()))
                })
                .collect(),
            orders: (0..ORDERS)
                .map(|i| {
                    self.orders
                        .get(&names.order(i))
                        .map(|ls| ls.iter().map(|l| (l.1, l.2, l.3)).collect())
                })
                .collect(),
        }
    }
}

async fn observe<S: InventoryStore>(store: &S, names: &Names) -> Observed {
    let skus: Vec<Sku> = (0..SKUS).map(|i| names.sku(i)).collect();
    let positions = store.positions(&skus).await.expect("reading positions");
    let mut res = Vec::new();
    for i in 0..RESERVATIONS {
        let r = store.reservation(&names.res(i)).await.expect("reading");
        res.push(r.map(|r| (r.status, r.order_id)));
    }
    let mut orders = Vec::new();
    for i in 0..ORDERS {
        let o = store.order(&names.order(i)).await.expect("reading");
        orders.push(o.map(|o| {
            o.lines
                .iter()
                .map(|l| (l.quantity, l.shipped, l.cancelled))
                .collect()
        }));
    }
    Observed {
        units: skus
            .iter()
            .map(|s| {
                let p = positions[s];
                (p.on_hand, p.hard_reserved, p.soft_reserved)
            })
            .collect(),
        res,
        orders,
    }
}

/// Arms (`true`) or disarms a store's lost acknowledgement of its next commit.
pub type LoseAck<'a> = &'a (dyn Fn(bool) + Sync);

/// Runs `ops` on the handlers over `store` and `publisher`, whose clock is `clock` (moved by
/// `Advance` steps), checking every step against the model. `Err` says where and how they differ.
/// Without `lose_ack`, a `LostAck` step runs as a plain one.
pub async fn run_history<S: InventoryStore, P: Publish>(
    store: &S,
    publisher: &P,
    clock: &Arc<AtomicI64>,
    names: &Names,
    ops: &[Op],
    lose_ack: Option<LoseAck<'_>>,
) -> Result<(), String> {
    let read_clock = {
        let c = Arc::clone(clock);
        move || c.load(Ordering::SeqCst)
    };
    let inv = Inventory::new(store, publisher, &read_clock);
    let mut model = Model::default();
    let mut delivered: Vec<Event> = Vec::new();
    let mut next_id = 0usize;
    for (i, op) in ops.iter().enumerate() {
        let now = clock.load(Ordering::SeqCst);
        let mut to_call = |op: &Op| resolve(op, names, now, &mut delivered, &mut next_id);
        match op {
            Op::Advance { ms } => {
                clock.fetch_add(*ms, Ordering::SeqCst);
                continue;
            }
            Op::Concurrent(a, b) => {
                let ca = to_call(a);
                // The same step twice is one delivery racing itself (same event id).
                let cb = if format!("{a:?}") == format!("{b:?}") {
                    ca.clone()
                } else {
                    to_call(b)
                };
                let (Some(ca), Some(cb)) = (ca, cb) else {
                    continue;
                };
                let (ra, rb) = futures::join!(call(inv, &ca), call(inv, &cb));
                let got = observe(store, names).await;
                let mut ab = model.clone();
                let ab_answers = (ab.step(&ca, now), ab.step(&cb, now));
                let mut ba = model.clone();
                let ba_b = ba.step(&cb, now);
                let ba_answers = (ba.step(&ca, now), ba_b);
                if (ra.clone(), rb.clone()) == ab_answers && got == ab.observe(names) {
                    model = ab;
                } else if (ra.clone(), rb.clone()) == ba_answers && got == ba.observe(names) {
                    model = ba;
                } else {
                    return Err(format!(
                        "step {i} {op:?}: answers {:?} and state {got:?} match neither serial order: \
                         a then b {ab_answers:?} {:?}; b then a {ba_answers:?} {:?}",
                        (ra, rb),
                        ab.observe(names),
                        ba.observe(names)
                    ));
                }
            }
            op => {
                let inner = match op {
                    Op::LostAck(inner) => inner,
                    op => op,
                };
                let Some(c) = to_call(inner) else {
                    continue;
                };
                let lost = match (op, &c, lose_ack) {
                    (Op::LostAck(_), Call::Event(_), Some(arm)) => Some(arm),
                    _ => None,
                };
                if let Some(arm) = lost {
                    arm(true);
                }
                let got_answer = call(inv, &c).await;
                let mut want_answer = model.step(&c, now);
                if let Some(arm) = lost {
                    arm(false);
                    // Written, but the delivery saw a retryable failure.
                    if want_answer.starts_with("applied:") {
                        want_answer = "error:transient".into();
                    }
                }
                if got_answer != want_answer {
                    return Err(format!(
                        "step {i} {op:?} ({c:?}): answered {got_answer}, the model says {want_answer}"
                    ));
                }
                let got = observe(store, names).await;
                let want = model.observe(names);
                if got != want {
                    return Err(format!(
                        "step {i} {op:?}: state {got:?}, the model says {want:?}"
                    ));
                }
            }
        }
    }
    Ok(())
}

/// Turns a step into a call; an event gets the next event id and is kept for redelivery.
fn resolve(
    op: &Op,
    names: &Names,
    now: Millis,
    delivered: &mut Vec<Event>,
    next_id: &mut usize,
) -> Option<Call> {
    let mut event = |detail_type: &'static str, mut detail: Value, back: i64| {
        detail["event_id"] = json!(format!("{}e{}", names.prefix, *next_id));
        detail["occurred_at"] = json!(format_timestamp(now - back));
        *next_id += 1;
        let e = Event {
            detail_type,
            detail,
        };
        delivered.push(e.clone());
        Some(Call::Event(e))
    };
    match op {
        Op::Receive { sku, qty, back } => event(
            "StockReceived",
            json!({"sku": names.sku(*sku), "quantity": qty}),
            *back,
        ),
        Op::Adjust { sku, delta, back } => event(
            "StockAdjusted",
            json!({"sku": names.sku(*sku), "delta": delta, "reason": "model"}),
            *back,
        ),
        Op::Return {
            sku,
            qty,
            restock,
            back,
        } => event(
            "ReturnReceived",
            json!({"return_id": format!("{}ret", names.prefix), "sku": names.sku(*sku), "quantity": qty, "restock": restock}),
            *back,
        ),
        Op::Count { sku, on_hand, back } => event(
            "StockCounted",
            json!({"sku": names.sku(*sku), "on_hand": on_hand}),
            *back,
        ),
        Op::Order { order, lines } => event(
            "OrderPlaced",
            json!({"order_id": names.order(*order), "channel": "ebay", "lines": names.lines_json(lines)}),
            0,
        ),
        Op::Ship { order, lines } | Op::Cancel { order, lines } => {
            let mut d = json!({"order_id": names.order(*order)});
            if let Some(lines) = lines {
                d["lines"] = names.lines_json(lines);
            }
            let t = if matches!(op, Op::Ship { .. }) {
                "OrderShipped"
            } else {
                "OrderCancelled"
            };
            event(t, d, 0)
        }
        Op::Reserve {
            res,
            lines,
            ttl,
            event: true,
        } => event(
            "ReservationRequested",
            json!({"reservation_id": names.res(*res), "channel": "shopify", "lines": names.lines_json(lines), "ttl_seconds": ttl}),
            0,
        ),
        Op::Reserve {
            res, lines, ttl, ..
        } => Some(Call::Reserve(ReservationRequest {
            reservation_id: names.res(*res),
            channel: ChannelName::parse("shopify").unwrap(),
            lines: names.lines(lines),
            ttl_seconds: *ttl,
            ttl_defaulted: false,
        })),
        Op::Confirm {
            res,
            order,
            event: true,
        } => event(
            "ReservationConfirmed",
            json!({"reservation_id": names.res(*res), "order_id": names.order(*order)}),
            0,
        ),
        Op::Confirm { res, order, .. } => Some(Call::Confirm(names.res(*res), names.order(*order))),
        Op::Release { res, event: true } => event(
            "ReservationReleased",
            json!({"reservation_id": names.res(*res)}),
            0,
        ),
        Op::Release { res, .. } => Some(Call::Release(names.res(*res))),
        Op::Sweep => Some(Call::Sweep),
        Op::Redeliver { k } if !delivered.is_empty() => {
            Some(Call::Event(delivered[k % delivered.len()].clone()))
        }
        Op::Reuse { k } if !delivered.is_empty() => {
            let mut e = delivered[k % delivered.len()].clone();
            let at = stockguard_domain::types::parse_timestamp(
                e.detail["occurred_at"].as_str().unwrap_or_default(),
            )
            .unwrap_or(now);
            e.detail["occurred_at"] = json!(format_timestamp(at - 1));
            delivered.push(e.clone());
            Some(Call::Event(e))
        }
        Op::LostAck(op) => resolve(op, names, now, delivered, next_id),
        Op::Redeliver { .. } | Op::Reuse { .. } | Op::Advance { .. } | Op::Concurrent(..) => None,
    }
}
