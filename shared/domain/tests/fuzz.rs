//! Fuzzing of the domain's parsers of outside input: inbound event details (every detail-type of
//! contract section 1), the reservations API body, identifiers, timestamps and the listings CSV.
//!
//! Each target gets arbitrary input and structure-aware input (valid-looking values with one
//! field mutated: wrong types, huge numbers, unicode, NaN-like strings, deep nesting). No input
//! may panic; every rejection names its rule and field; whatever is accepted holds the contract's
//! invariants. `PROPTEST_CASES` sets the number of cases (`make fuzz` runs many more).

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value, json};
use stockguard_domain::channel::{ChannelKind, LISTING_CSV_HEADER, parse_listings_csv};
use stockguard_domain::idempotency::payload_hash;
use stockguard_domain::inbound::{
    Command, INBOUND_DETAIL_TYPES, MAX_COUNTED_ON_HAND, MAX_LINES, MAX_QUANTITY, MAX_TTL_SECONDS,
    ReservationRequest, parse_inbound, parse_reservation_request,
};
use stockguard_domain::types::{format_timestamp, parse_timestamp};
use stockguard_domain::{ChannelName, EntityId, EventId, InvalidInput, Line, Sku};

/// `PROPTEST_CASES` when set (as `make fuzz` does), else a count small enough for `make test`.
fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        // Failures are kept as named regression tests below, not as files in the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

// ---- generators -------------------------------------------------------------------------------

/// Strings producers get wrong: empty, blanks, NaN-like, numbers as text, unicode look-alikes,
/// control characters, overlong ones.
fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        Just(" ".to_owned()),
        Just("NaN".to_owned()),
        Just("-Infinity".to_owned()),
        Just("1e400".to_owned()),
        Just("-0".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("9223372036854775808".to_owned()),
        Just("2026-02-30T25:61:61Z".to_owned()),
        Just("+275760-09-13T00:00:00Z".to_owned()),
        Just("ＳＫＵ－１".to_owned()),
        Just("A\u{0}B".to_owned()),
        Just("é".repeat(65)),
        Just("x".repeat(129)),
        Just("a".repeat(20_000)),
        Just("\u{202e}evil".to_owned()),
        Just("../../etc/passwd".to_owned()),
        "\\PC{0,80}",
        any::<String>(),
    ]
}

/// Any JSON value, nested a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(i64::MIN)),
        Just(json!(u64::MAX)),
        Just(json!(1e308)),
        Just(json!(-0.0)),
        Just(json!(5e-324)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("\\PC{0,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A value nested `depth` times in arrays or objects.
fn deeply_nested(depth: usize, as_object: bool) -> Value {
    let mut v = json!(1);
    for _ in 0..depth {
        v = if as_object {
            json!({ "a": v })
        } else {
            json!([v])
        };
    }
    v
}

fn sku() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._/-]{1,64}"
}

fn id() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:-]{1,128}"
}

fn channel() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("storefront".to_owned()),
        Just("shopify".to_owned()),
        "[a-z0-9_-]{1,32}",
    ]
}

fn timestamp() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2026-11-27T10:00:00Z".to_owned()),
        Just("2026-11-27T10:00:00.123+05:30".to_owned()),
        (0i64..4_102_444_800_000).prop_map(format_timestamp),
    ]
}

/// Lines of a fuzzed order: an order has no limit, so enough for several of the transactions it
/// applies in.
const ORDER_LINES: usize = 100;

/// 1 to `max` lines; the fuzzer goes one over now and then, which the parser must refuse.
fn lines(max: usize) -> impl Strategy<Value = Value> {
    prop::collection::vec((sku(), 1i64..=MAX_QUANTITY), 1..=max + 1).prop_map(|lines| {
        Value::Array(
            lines
                .into_iter()
                .map(|(s, q)| json!({"sku": s, "quantity": q}))
                .collect(),
        )
    })
}

/// A valid detail of `detail_type` (lines may repeat a SKU, which the parser must reject).
fn valid_detail(detail_type: &'static str) -> BoxedStrategy<Value> {
    let common = (id(), timestamp(), prop::option::of(any::<u64>()));
    let body: BoxedStrategy<Value> = match detail_type {
        "StockReceived" => (sku(), 1i64..=MAX_QUANTITY, prop::option::of("\\PC{1,40}"))
            .prop_map(|(s, q, r)| json!({"sku": s, "quantity": q, "reference": r}))
            .boxed(),
        "StockCounted" => (sku(), 0i64..=MAX_COUNTED_ON_HAND)
            .prop_map(|(s, n)| json!({"sku": s, "on_hand": n}))
            .boxed(),
        "StockAdjusted" => (sku(), -MAX_QUANTITY..=MAX_QUANTITY, "\\PC{1,40}")
            .prop_map(|(s, d, r)| json!({"sku": s, "delta": d, "reason": r}))
            .boxed(),
        "ReservationRequested" => (
            id(),
            channel(),
            lines(MAX_LINES),
            prop::option::of(1u32..=MAX_TTL_SECONDS),
        )
            .prop_map(|(r, c, l, t)| {
                json!({"reservation_id": r, "channel": c, "lines": l, "ttl_seconds": t})
            })
            .boxed(),
        "ReservationConfirmed" => (id(), id())
            .prop_map(|(r, o)| json!({"reservation_id": r, "order_id": o}))
            .boxed(),
        "ReservationReleased" => (id(), prop::option::of("\\PC{1,40}"))
            .prop_map(|(r, why)| json!({"reservation_id": r, "reason": why}))
            .boxed(),
        "OrderPlaced" => (id(), channel(), lines(ORDER_LINES))
            .prop_map(|(o, c, l)| json!({"order_id": o, "channel": c, "lines": l}))
            .boxed(),
        "OrderShipped" | "OrderCancelled" => (id(), prop::option::of(lines(ORDER_LINES)))
            .prop_map(|(o, l)| json!({"order_id": o, "lines": l}))
            .boxed(),
        "ReturnReceived" => (
            id(),
            sku(),
            1i64..=MAX_QUANTITY,
            any::<bool>(),
            prop::option::of(id()),
        )
            .prop_map(|(r, s, q, restock, o)| {
                json!({"return_id": r, "sku": s, "quantity": q, "restock": restock, "order_id": o})
            })
            .boxed(),
        _ => (
            sku(),
            prop::sample::select(vec![
                "add_to_cart_surge",
                "social_mention_velocity",
                "competitor_stockout",
                "search_volume",
            ]),
            1e-9f64..1e9,
            prop::option::of(timestamp()),
        )
            .prop_map(|(s, k, st, e)| {
                json!({"sku": s, "signal": k, "strength": st, "expires_at": e})
            })
            .boxed(),
    };
    (common, body)
        .prop_map(|((event_id, occurred_at, sequence), mut body)| {
            body["event_id"] = json!(event_id);
            body["occurred_at"] = json!(occurred_at);
            body["sequence"] = json!(sequence);
            body
        })
        .boxed()
}

/// One change to a valid-looking detail.
#[derive(Debug, Clone)]
enum Mutation {
    None,
    Remove(usize),
    Replace(usize, Value),
    /// A field of the first line, when there are lines.
    ReplaceInLine(usize, Value),
    Add(String, Value),
    Nest(usize, usize, bool),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        1 => Just(Mutation::None),
        2 => any::<usize>().prop_map(Mutation::Remove),
        6 => (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::Replace(i, v)),
        3 => (any::<usize>(), any_json()).prop_map(|(i, v)| Mutation::ReplaceInLine(i, v)),
        1 => ("\\PC{0,12}", any_json()).prop_map(|(k, v)| Mutation::Add(k, v)),
        1 => (any::<usize>(), 1usize..120, any::<bool>())
            .prop_map(|(i, d, o)| Mutation::Nest(i, d, o)),
    ]
}

fn mutate(mut detail: Value, m: &Mutation) -> Value {
    let Some(obj) = detail.as_object_mut() else {
        return detail;
    };
    let keys: Vec<String> = obj.keys().cloned().collect();
    let key = |i: usize| keys[i % keys.len()].clone();
    match m {
        Mutation::None => {}
        Mutation::Remove(i) => {
            obj.remove(&key(*i));
        }
        Mutation::Replace(i, v) => {
            obj.insert(key(*i), v.clone());
        }
        Mutation::ReplaceInLine(i, v) => {
            if let Some(Value::Object(line)) = obj
                .get_mut("lines")
                .and_then(Value::as_array_mut)
                .and_then(|l| l.first_mut())
            {
                let field = ["sku", "quantity", "extra"][i % 3];
                line.insert(field.to_owned(), v.clone());
            }
        }
        Mutation::Add(k, v) => {
            obj.insert(k.clone(), v.clone());
        }
        Mutation::Nest(i, depth, as_object) => {
            obj.insert(key(*i), deeply_nested(*depth, *as_object));
        }
    }
    detail
}

// ---- properties -------------------------------------------------------------------------------

/// The contract's field names a rejection may name (the envelope's `detail-type`, the detail as
/// a whole, or one of its fields, lines addressed as `lines[i].field`).
const FIELDS: [&str; 26] = [
    "detail-type",
    "detail",
    "event_id",
    "occurred_at",
    "sequence",
    "sku",
    "quantity",
    "reference",
    "on_hand",
    "delta",
    "reason",
    "reservation_id",
    "channel",
    "lines",
    "ttl_seconds",
    "order_id",
    "return_id",
    "restock",
    "signal",
    "strength",
    "expires_at",
    "lines[",
    "body",
    "source",
    "detail_type",
    "id",
];

fn check_rejection(e: &InvalidInput) -> Result<(), TestCaseError> {
    prop_assert!(!e.code.is_empty(), "{e:?}");
    prop_assert!(!e.message.trim().is_empty(), "{e:?}");
    prop_assert!(!e.field.is_empty(), "{e:?}");
    let named = FIELDS.iter().any(|f| {
        e.field == *f
            || (e.field.starts_with("lines[")
                && (e.field.ends_with("].sku")
                    || e.field.ends_with("].quantity")
                    || e.field.ends_with(']')))
    });
    prop_assert!(named, "the rejection names no field of the contract: {e:?}");
    Ok(())
}

fn check_sku(sku: &Sku) -> Result<(), TestCaseError> {
    let s = sku.as_str();
    prop_assert!(!s.is_empty() && s.len() <= 64, "{s:?}");
    prop_assert!(
        s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '/' | '-')),
        "{s:?}"
    );
    Ok(())
}

fn check_id(id: &str) -> Result<(), TestCaseError> {
    prop_assert!(!id.is_empty() && id.len() <= 128, "{id:?}");
    prop_assert!(
        id.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | ':' | '-')),
        "{id:?}"
    );
    Ok(())
}

fn check_lines(lines: &[Line], max: usize) -> Result<(), TestCaseError> {
    prop_assert!((1..=max).contains(&lines.len()));
    let mut seen = std::collections::HashSet::new();
    for l in lines {
        check_sku(&l.sku)?;
        prop_assert!((1..=MAX_QUANTITY).contains(&l.quantity), "{l:?}");
        prop_assert!(seen.insert(l.sku.clone()), "duplicate sku accepted: {l:?}");
    }
    Ok(())
}

fn check_channel(c: &ChannelName) -> Result<(), TestCaseError> {
    let s = c.as_str();
    prop_assert!(!s.is_empty() && s.len() <= 32, "{s:?}");
    prop_assert!(
        s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')),
        "{s:?}"
    );
    Ok(())
}

fn check_reservation(r: &ReservationRequest) -> Result<(), TestCaseError> {
    check_id(r.reservation_id.as_str())?;
    check_channel(&r.channel)?;
    check_lines(&r.lines, MAX_LINES)?;
    prop_assert!((1..=MAX_TTL_SECONDS).contains(&r.ttl_seconds));
    Ok(())
}

/// Parses as the handlers do (validate, then hash the payload) and checks the outcome.
fn check_inbound(detail_type: &str, detail: &Value) -> Result<(), TestCaseError> {
    let parsed = parse_inbound(detail_type, detail);
    let _ = payload_hash(detail_type, detail);
    let event = match parsed {
        Err(e) => return check_rejection(&e),
        Ok(event) => event,
    };
    prop_assert_eq!(event.detail_type(), detail_type);
    check_id(event.common.event_id.as_str())?;
    for sku in event.command.skus() {
        check_sku(&sku)?;
    }
    match &event.command {
        Command::StockReceived { sku, quantity, .. } => {
            check_sku(sku)?;
            prop_assert!((1..=MAX_QUANTITY).contains(quantity));
        }
        Command::StockCounted { sku, on_hand } => {
            check_sku(sku)?;
            prop_assert!((0..=MAX_COUNTED_ON_HAND).contains(on_hand));
        }
        Command::StockAdjusted { sku, delta, reason } => {
            check_sku(sku)?;
            prop_assert!(*delta != 0 && delta.abs() <= MAX_QUANTITY);
            prop_assert!(!reason.is_empty());
        }
        Command::ReservationRequested(r) => check_reservation(r)?,
        Command::ReservationConfirmed {
            reservation_id,
            order_id,
        } => {
            check_id(reservation_id.as_str())?;
            check_id(order_id.as_str())?;
        }
        Command::ReservationReleased { reservation_id, .. } => check_id(reservation_id.as_str())?,
        Command::OrderPlaced {
            order_id,
            channel,
            lines,
        } => {
            check_id(order_id.as_str())?;
            check_channel(channel)?;
            check_lines(lines, usize::MAX)?;
        }
        Command::OrderShipped { order_id, lines } | Command::OrderCancelled { order_id, lines } => {
            check_id(order_id.as_str())?;
            if let Some(lines) = lines {
                check_lines(lines, usize::MAX)?;
            }
        }
        Command::ReturnReceived {
            return_id,
            sku,
            quantity,
            order_id,
            ..
        } => {
            check_id(return_id.as_str())?;
            check_sku(sku)?;
            prop_assert!((1..=MAX_QUANTITY).contains(quantity));
            if let Some(o) = order_id {
                check_id(o.as_str())?;
            }
        }
        Command::DemandSignal { sku, strength, .. } => {
            check_sku(sku)?;
            prop_assert!(strength.is_finite() && *strength > 0.0);
        }
    }
    Ok(())
}

fn detail_type() -> impl Strategy<Value = &'static str> {
    prop::sample::select(INBOUND_DETAIL_TYPES.to_vec())
}

fn mutated_detail() -> impl Strategy<Value = (&'static str, Value)> {
    (detail_type(), mutation())
        .prop_flat_map(|(dt, m)| valid_detail(dt).prop_map(move |d| (dt, mutate(d, &m))))
}

proptest! {
    #![proptest_config(config(256))]

    /// Valid-looking details with one field mutated, for every inbound detail-type.
    #[test]
    fn inbound_details_with_a_mutated_field((dt, detail) in mutated_detail()) {
        check_inbound(dt, &detail)?;
    }

    /// A valid detail checked under another (or an unknown) detail-type.
    #[test]
    fn inbound_details_under_any_detail_type(
        (_, detail) in mutated_detail(),
        dt in prop_oneof![detail_type().prop_map(str::to_owned), nasty_string()],
    ) {
        check_inbound(&dt, &detail)?;
    }

    /// Any JSON value as a detail.
    #[test]
    fn inbound_details_of_any_json(dt in detail_type(), detail in any_json()) {
        check_inbound(dt, &detail)?;
    }

    /// Arbitrary bytes, parsed as JSON first as the handlers do.
    #[test]
    fn inbound_details_from_raw_bytes(dt in detail_type(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        if let Ok(detail) = serde_json::from_slice::<Value>(&bytes) {
            check_inbound(dt, &detail)?;
        }
    }

    /// JSON text of a valid detail with bytes flipped, cut or spliced in.
    #[test]
    fn inbound_details_from_corrupted_text(
        (dt, detail) in mutated_detail(),
        edits in prop::collection::vec((any::<usize>(), any::<u8>(), 0u8..3), 1..6),
    ) {
        let mut text = detail.to_string().into_bytes();
        for (at, byte, op) in edits {
            if text.is_empty() { break; }
            let at = at % text.len();
            match op {
                0 => text[at] = byte,
                1 => { text.remove(at); }
                _ => text.insert(at, byte),
            }
        }
        if let Ok(detail) = serde_json::from_slice::<Value>(&text) {
            check_inbound(dt, &detail)?;
        }
    }

    /// The body of `POST /v1/reservations`: a mutated reservation, or any JSON at all.
    #[test]
    fn reservation_request_bodies(
        body in prop_oneof![
            3 => (valid_detail("ReservationRequested"), mutation()).prop_map(|(d, m)| mutate(d, &m)),
            1 => any_json(),
        ]
    ) {
        match parse_reservation_request(&body) {
            Ok(r) => check_reservation(&r)?,
            Err(e) => check_rejection(&e)?,
        }
    }

    /// Identifiers as they come from paths and fields: accepted ones keep their alphabet and length.
    #[test]
    fn identifiers(raw in prop_oneof![nasty_string(), sku(), id(), channel()]) {
        match Sku::parse(&raw) {
            Ok(s) => { check_sku(&s)?; prop_assert_eq!(s.as_str(), raw.as_str()); }
            Err(m) => prop_assert!(!m.is_empty()),
        }
        for parsed in [EntityId::parse(&raw).map(|i| i.to_string()), EventId::parse(&raw).map(|i| i.to_string())] {
            match parsed {
                Ok(i) => { check_id(&i)?; prop_assert_eq!(&i, &raw); }
                Err(m) => prop_assert!(!m.is_empty()),
            }
        }
        match ChannelName::parse(&raw) {
            Ok(c) => check_channel(&c)?,
            Err(m) => prop_assert!(!m.is_empty()),
        }
    }

    /// Timestamps: any text parses or not without panicking, and any instant formats.
    #[test]
    fn timestamps(raw in prop_oneof![nasty_string(), timestamp()], ms in any::<i64>()) {
        if let Some(at) = parse_timestamp(&raw) {
            // What was parsed formats and parses back to the same instant.
            prop_assert_eq!(parse_timestamp(&format_timestamp(at)), Some(at));
        }
        let _ = format_timestamp(ms);
    }
}

// ---- the listings CSV -------------------------------------------------------------------------

fn csv_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => Just(String::new()),
        4 => sku(),
        3 => "[0-9]{1,19}",
        2 => prop::sample::select(ChannelKind::names().to_vec()).prop_map(str::to_owned),
        1 => Just("gid://shopify/InventoryItem/1".to_owned()),
        1 => Just("\"quoted, with comma\"".to_owned()),
        1 => Just("\"unterminated".to_owned()),
        1 => Just("\"\"\"".to_owned()),
        1 => Just(" padded ".to_owned()),
        1 => Just("\r".to_owned()),
        1 => "\\PC{0,20}",
    ]
}

/// A plausible row for a channel kind, before mutation.
fn csv_row() -> impl Strategy<Value = Vec<String>> {
    (
        prop::sample::select(ChannelKind::names().to_vec()),
        sku(),
        "[0-9]{1,15}",
        "[0-9]{1,10}",
        "[A-Z0-9-]{1,12}",
        "[A-Z_]{1,12}",
    )
        .prop_map(|(c, s, item, loc, offer, pt)| {
            let (loc, offer, pt) = match c {
                "shopify" => (loc, String::new(), String::new()),
                "ebay" => (String::new(), offer, String::new()),
                "amazon" => (String::new(), String::new(), pt),
                _ => (String::new(), String::new(), String::new()),
            };
            vec![c.to_owned(), s, item, loc, offer, pt]
        })
}

#[derive(Debug, Clone)]
enum RowMutation {
    None,
    Cell(usize, String),
    DropCell(usize),
    ExtraCell(String),
}

fn row_mutation() -> impl Strategy<Value = RowMutation> {
    prop_oneof![
        4 => Just(RowMutation::None),
        4 => (0usize..6, csv_cell()).prop_map(|(i, c)| RowMutation::Cell(i, c)),
        1 => (0usize..6).prop_map(RowMutation::DropCell),
        1 => csv_cell().prop_map(RowMutation::ExtraCell),
    ]
}

fn csv_text() -> impl Strategy<Value = String> {
    (
        prop_oneof![
            6 => Just(LISTING_CSV_HEADER.join(",")),
            1 => Just(LISTING_CSV_HEADER.join(",").to_uppercase()),
            1 => Just(format!("\u{feff}{}", LISTING_CSV_HEADER.join(","))),
            1 => Just("sku,channel".to_owned()),
            1 => "\\PC{0,40}",
        ],
        prop::collection::vec((csv_row(), row_mutation()), 0..12),
        prop::sample::select(vec!["\n", "\r\n", "\n\n"]),
    )
        .prop_map(|(header, rows, eol)| {
            let mut text = header;
            for (mut row, m) in rows {
                match m {
                    RowMutation::None => {}
                    RowMutation::Cell(i, c) => row[i] = c,
                    RowMutation::DropCell(i) => {
                        row.remove(i);
                    }
                    RowMutation::ExtraCell(c) => row.push(c),
                }
                text.push_str(eol);
                text.push_str(&row.join(","));
            }
            text
        })
}

/// Lines as a person's editor counts them: ended by `\n`, `\r\n` or a lone `\r`.
fn count_lines(text: &str) -> usize {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .count()
        .max(1)
}

fn check_listings(text: &str) -> Result<(), TestCaseError> {
    let line_count = count_lines(text);
    match parse_listings_csv(text) {
        Ok(rows) => {
            let mut seen = std::collections::HashSet::new();
            for row in &rows {
                prop_assert!(
                    ChannelKind::names().contains(&row.channel.as_str()),
                    "{row:?}"
                );
                check_sku(&row.sku)?;
                prop_assert!(!row.listing_id.trim().is_empty(), "{row:?}");
                let required = match row.channel.as_str() {
                    "shopify" => row.location_id.as_ref(),
                    "ebay" => row.offer_id.as_ref(),
                    "amazon" => row.product_type.as_ref(),
                    _ => Some(&row.listing_id),
                };
                prop_assert!(required.is_some_and(|v| !v.trim().is_empty()), "{row:?}");
                prop_assert!(
                    seen.insert((row.channel.clone(), row.sku.clone())),
                    "{row:?}"
                );
            }
        }
        Err(rejected) => {
            prop_assert!(!rejected.is_empty());
            let mut last = 0;
            for r in &rejected {
                prop_assert!(!r.reason.trim().is_empty(), "{r:?}");
                prop_assert!(
                    r.line >= 1 && r.line <= line_count,
                    "{r:?} of {line_count} lines"
                );
                prop_assert!(r.line > last, "lines in order: {rejected:?}");
                last = r.line;
            }
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(256))]

    /// Plausible files with mutated cells, headers and line endings.
    #[test]
    fn listings_csv_structured(text in csv_text()) {
        check_listings(&text)?;
    }

    /// Any text at all.
    #[test]
    fn listings_csv_of_any_text(text in prop_oneof!["\\PC{0,300}", any::<String>()]) {
        check_listings(&text)?;
    }
}

// ---- regressions and edges the generators reach only rarely -----------------------------------

#[test]
fn details_nested_to_the_json_parsers_limit_are_rejected_without_a_stack_overflow() {
    for as_object in [false, true] {
        let deep = deeply_nested(127, as_object);
        let text = deep.to_string();
        let parsed: Value = serde_json::from_str(&text).expect("127 levels are within the limit");
        for dt in INBOUND_DETAIL_TYPES {
            let e = parse_inbound(dt, &parsed).expect_err("no event_id at the top");
            let expected = if as_object {
                "missing_field"
            } else {
                "wrong_type"
            };
            assert_eq!(e.code, expected);
            let mut detail = Map::new();
            detail.insert("event_id".into(), parsed.clone());
            let e = parse_inbound(dt, &Value::Object(detail)).expect_err("nested event_id");
            assert_eq!((e.code, e.field.as_str()), ("wrong_type", "event_id"));
        }
    }
}

/// A lone carriage return ends a row for the CSV reader; the rows after it must be reported
/// with their own line numbers, not the one before the carriage return (found by fuzzing).
#[test]
fn rows_split_by_a_lone_carriage_return_have_their_own_line_numbers() {
    let text = "channel,sku,listing_id,location_id,offer_id,product_type\nshopify,\r,0,0,,";
    let rejected = parse_listings_csv(text).expect_err("two short rows");
    let lines: Vec<usize> = rejected.iter().map(|r| r.line).collect();
    assert_eq!(lines, [2, 3], "{rejected:?}");
    let mac =
        "channel,sku,listing_id,location_id,offer_id,product_type\rwalmart,A,W1,,,\retsy,B,E,,,\r";
    let rejected = parse_listings_csv(mac).expect_err("etsy has no adapter");
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].line, 3, "{rejected:?}");
}

#[test]
fn numbers_beyond_every_range_are_wrong_types_or_out_of_range() {
    let base = json!({"event_id": "e", "occurred_at": "2026-01-01T00:00:00Z", "sku": "A"});
    for q in [
        json!(u64::MAX),
        json!(i64::MIN),
        json!(1e300),
        json!(-0.0),
        json!(1.0),
    ] {
        let mut d = base.clone();
        d["quantity"] = q.clone();
        let e = parse_inbound("StockReceived", &d).expect_err("rejected");
        assert!(
            matches!(e.code, "wrong_type" | "quantity_out_of_range"),
            "{q}: {e}"
        );
        assert_eq!(e.field, "quantity");
    }
}
