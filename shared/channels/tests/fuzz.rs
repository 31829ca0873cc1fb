//! Fuzzing of what the channel clients read from the channels: every answer a push or a read-back
//! gets (status, throttling headers, body) comes from a local stand-in that serves generated
//! answers, so each client's own parsing runs as it does in production.
//!
//! Answers are arbitrary bytes, or the channel's real answer shapes with one value replaced by
//! any JSON (wrong types, huge numbers, unicode, nesting), and some echo the credentials the
//! request carried. Properties: no panic, one outcome per update, every failure says why, nothing
//! is acknowledged by a failed answer, and no reason or error ever carries a credential.
//! `PROPTEST_CASES` sets the number of cases (`make fuzz` runs many more).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use stockguard_channels::{
    AmazonConfig, ChannelClient, ChannelConfig, ClientOptions, EbayConfig, Listing, PushOutcome,
    QuantityUpdate, ShopifyConfig, WalmartConfig,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const TOKEN: &str = "tok-Qz7pL3xW9vK2mN8r";
const CLIENT_ID: &str = "cid-fuzz";
const CLIENT_SECRET: &str = "sec-Hy4tR6uJ1oP0aS5d";
/// A token answer the regression test below serves.
const ISSUED_TOKEN: &str = "wm-issued-Bn3vC8xZ2lK7";
/// `Basic base64(CLIENT_ID:CLIENT_SECRET)`, as Walmart's token request carries it.
const BASIC: &str = "Y2lkLWZ1eno6c2VjLUh5NHRSNnVKMW9QMGFTNWQ=";
/// In a canned body, stands for the credential header of the request being answered.
const PRESENTED: &str = "{{presented}}";
/// In a canned body, stands for a fresh token; one served in a success answer counts as issued.
const ISSUE: &str = "{{issue}}";

fn config(default_cases: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default_cases);
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}

// ---- the stand-in channel ---------------------------------------------------------------------

#[derive(Clone)]
struct Canned {
    status: u16,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
}

impl std::fmt::Debug for Canned {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Canned")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &String::from_utf8_lossy(&self.body))
            .finish()
    }
}

/// A local HTTP server answering each request with the next canned answer (the last repeats).
struct StandIn {
    url: String,
    answers: Arc<Mutex<(Vec<Canned>, usize)>>,
    issued: Arc<Mutex<Vec<String>>>,
}

impl StandIn {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        let answers: Arc<Mutex<(Vec<Canned>, usize)>> = Arc::default();
        let served = answers.clone();
        let issued: Arc<Mutex<Vec<String>>> = Arc::default();
        let issuing = issued.clone();
        tokio::spawn(async move {
            while let Ok((mut socket, _)) = listener.accept().await {
                let served = served.clone();
                let issuing = issuing.clone();
                tokio::spawn(async move {
                    let Some((presented, token_request)) = read_request(&mut socket).await else {
                        return;
                    };
                    let canned = {
                        let mut guard = served.lock().unwrap_or_else(|e| e.into_inner());
                        let (list, next) = &mut *guard;
                        let at = (*next).min(list.len().saturating_sub(1));
                        *next += 1;
                        list.get(at).cloned()
                    };
                    let Some(mut canned) = canned else { return };
                    // The channel quotes back the credential it was shown, as some error pages do.
                    let body = String::from_utf8_lossy(&canned.body);
                    let mut body = body.replace(PRESENTED, &presented);
                    if body.contains(ISSUE) {
                        let token = format!("wm-iss-{:016x}", rand_u64());
                        if token_request && (200..300).contains(&canned.status) {
                            issuing
                                .lock()
                                .unwrap_or_else(|e| e.into_inner())
                                .push(token.clone());
                        }
                        body = body.replace(ISSUE, &token);
                    }
                    canned.body = body.into_bytes();
                    let mut head = format!(
                        "HTTP/1.1 {} X\r\ncontent-length: {}\r\nconnection: close\r\ncontent-type: application/json\r\n",
                        canned.status,
                        canned.body.len()
                    );
                    for (name, value) in &canned.headers {
                        head.push_str(&format!("{name}: {value}\r\n"));
                    }
                    head.push_str("\r\n");
                    let _ = socket.write_all(head.as_bytes()).await;
                    let _ = socket.write_all(&canned.body).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        Self {
            url,
            answers,
            issued,
        }
    }

    fn serve(&self, answers: Vec<Canned>) {
        *self.answers.lock().unwrap_or_else(|e| e.into_inner()) = (answers, 0);
    }

    /// The credentials a client of `kind` holds: what it was configured with and every token
    /// it was issued.
    fn held(&self, kind: Kind) -> Vec<String> {
        match kind {
            Kind::Walmart => {
                let mut held = vec![CLIENT_SECRET.to_owned(), BASIC.to_owned()];
                held.extend(
                    self.issued
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .iter()
                        .cloned(),
                );
                held
            }
            _ => vec![TOKEN.to_owned()],
        }
    }
}

/// A token's random part, without another dependency.
fn rand_u64() -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(std::time::SystemTime::now())
}

/// Reads one request (head and a content-length body) and returns the credential it presented
/// (empty when none) and whether it asked for a token; `None` when the client went away.
async fn read_request(socket: &mut tokio::net::TcpStream) -> Option<(String, bool)> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let raw_head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let presented = raw_head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            matches!(
                name.to_ascii_lowercase().as_str(),
                "authorization"
                    | "x-shopify-access-token"
                    | "x-amz-access-token"
                    | "wm_sec.access_token"
            )
            .then(|| value.trim().to_owned())
        })
        .unwrap_or_default();
    let head = raw_head.to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0);
    while buf.len() < head_end + length {
        let n = socket.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let token_request = raw_head.starts_with("POST /v3/token ");
    Some((presented, token_request))
}

// ---- clients against the stand-in -------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Shopify,
    Amazon,
    Walmart,
    Ebay,
}

fn options() -> ClientOptions {
    ClientOptions {
        timeout: Duration::from_secs(3),
        // One short wait at most: a generated Retry-After must not stall the run.
        max_throttle_retries: 1,
        max_throttle_wait: Duration::from_millis(20),
        fallback_throttle_wait: Duration::from_millis(1),
    }
}

fn client(kind: Kind, url: &str) -> ChannelClient {
    let config: ChannelConfig = match kind {
        Kind::Shopify => {
            let mut c = ShopifyConfig::new(url, TOKEN);
            c.options = options();
            c.into()
        }
        Kind::Amazon => {
            let mut c = AmazonConfig::new(url, TOKEN, "A1SELLER", "ATVPDKIKX0DER");
            c.requests_per_second = 1e6;
            c.burst = 1_000;
            c.options = options();
            c.into()
        }
        Kind::Walmart => {
            let mut c = WalmartConfig::new(url, CLIENT_ID, CLIENT_SECRET);
            c.options = options();
            c.into()
        }
        Kind::Ebay => {
            let mut c = EbayConfig::new(url, TOKEN);
            c.options = options();
            c.into()
        }
    };
    ChannelClient::new(config).expect("client")
}

fn listing(kind: Kind, id: &str, n: usize) -> Listing {
    match kind {
        Kind::Shopify => Listing::Shopify {
            inventory_item_id: format!("{}{n}", id.len()),
            location_id: "77001".into(),
        },
        Kind::Amazon => Listing::Amazon {
            seller_sku: format!("{id}{n}"),
            product_type: "SHIRT".into(),
        },
        Kind::Walmart => Listing::Walmart {
            sku: format!("{id}{n}"),
        },
        Kind::Ebay => Listing::Ebay {
            sku: format!("{id}{n}"),
            offer_id: format!("OFF-{n}"),
        },
    }
}

// ---- generated answers ------------------------------------------------------------------------

/// The channel's own answer shapes, success and failure, some echoing the credentials.
fn templates(kind: Kind) -> Vec<Value> {
    let echoed = [
        json!({"errors": format!("[API] Invalid API key or access token (unrecognized login or wrong password): {TOKEN}")}),
        json!({"errors": [{"code": "UNAUTHORIZED", "message": format!("token {TOKEN} rejected"), "details": PRESENTED}]}),
        json!({"errors": [{"errorId": 1001, "message": format!("Invalid access token {TOKEN}"), "longMessage": PRESENTED}]}),
        json!({"error": "invalid_client", "error_description": format!("Basic {PRESENTED}")}),
        json!({"errors": {"token": TOKEN}}),
        json!({"errors": [{"code": "401", "message": format!("you sent {PRESENTED}")}]}),
    ];
    let mut t: Vec<Value> = match kind {
        Kind::Shopify => vec![
            json!({"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": {"id": "gid://shopify/InventoryAdjustmentGroup/1"}, "userErrors": []}}}),
            json!({"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": null, "userErrors": [
                {"field": ["input", "quantities", "0", "locationId"], "message": "not stocked", "code": "ITEM_NOT_STOCKED_AT_LOCATION"},
                {"field": ["input", "quantities", "1"], "message": format!("echo {TOKEN}"), "code": "IDEMPOTENCY_CONCURRENT_REQUEST"}]}}}),
            json!({"errors": [{"message": "Throttled", "extensions": {"code": "THROTTLED"}}],
                   "extensions": {"cost": {"requestedQueryCost": 250, "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 999, "restoreRate": 100000.0}}}}),
            json!({"errors": [{"message": format!("Internal error {TOKEN}"), "extensions": {"code": "INTERNAL_SERVER_ERROR"}}]}),
            json!({"data": {"inventoryItem": {"inventoryLevel": {"quantities": [{"name": "available", "quantity": 7}]}}}}),
            json!({"data": {"inventoryItem": null}}),
        ],
        Kind::Amazon => vec![
            json!({"sku": "A", "status": "ACCEPTED", "submissionId": "s1", "issues": []}),
            json!({"sku": "A", "status": "INVALID", "submissionId": "s2", "issues": [{"code": "4000001", "message": format!("bad {TOKEN}"), "severity": "ERROR"}]}),
            json!({"fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT", "quantity": 3}]}),
            json!({"fulfillmentAvailability": [{"fulfillmentChannelCode": "DEFAULT"}], "echo": TOKEN}),
        ],
        Kind::Walmart => vec![
            json!({"access_token": ISSUE, "token_type": "Bearer", "expires_in": 900}),
            json!({"access_token": ISSUE, "token_type": "Bearer", "expires_in": "900"}),
            json!({"access_token": 12345, "expires_in": 900}),
            json!({"sku": "A", "quantity": {"unit": "EACH", "amount": 5}}),
            json!({"errors": [{"code": "UNAUTHORIZED.GMP_GATEWAY_API", "description": format!("Unauthorized token {PRESENTED}")}]}),
        ],
        Kind::Ebay => vec![
            json!({"responses": [{"sku": "A0", "offerId": "OFF-0", "statusCode": 200}, {"sku": "A1", "statusCode": 400, "errors": [{"errorId": 25001, "message": format!("echo {TOKEN}")}]}]}),
            json!({"responses": [{"statusCode": 500}]}),
            json!({"availability": {"shipToLocationAvailability": {"quantity": 4}}}),
            json!({"availability": {"shipToLocationAvailability": {"quantity": "four"}}, "echo": TOKEN}),
        ],
    };
    t.extend(echoed);
    t
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(1e308)),
        Just(json!(-1e308)),
        Just(json!(-0.0)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        prop::sample::select(vec![
            "",
            "NaN",
            "Infinity",
            "-1",
            "ACCEPTED",
            "THROTTLED",
            "available",
            "DEFAULT",
            "quantities",
            "0",
            "99999999999999999999",
            TOKEN
        ])
        .prop_map(|s| Value::String(s.to_owned())),
        "\\PC{0,30}".prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "\\PC{0,10}",
                    Just("quantity".to_owned()),
                    Just("errors".to_owned()),
                    Just("code".to_owned())
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// Replaces the `n`-th node (depth first) of `v` with `with`; returns whether it did.
fn replace_node(v: &mut Value, n: &mut usize, with: &Value) -> bool {
    if *n == 0 {
        *v = with.clone();
        return true;
    }
    *n -= 1;
    match v {
        Value::Array(items) => items.iter_mut().any(|i| replace_node(i, n, with)),
        Value::Object(map) => map.values_mut().any(|i| replace_node(i, n, with)),
        _ => false,
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        6 => prop::sample::select(vec![200u16, 200, 201, 202, 207, 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504]),
        1 => 200u16..600,
    ]
}

fn header_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "0",
            "1",
            "0.001",
            "-1",
            "NaN",
            "inf",
            "1e308",
            "18446744073709551616",
            "",
            " 2 ",
            "Wed, 21 Oct 2026 07:28:00 GMT",
            "1e-300"
        ])
        .prop_map(str::to_owned),
        "[ -~]{0,20}",
    ]
}

fn headers() -> impl Strategy<Value = Vec<(&'static str, String)>> {
    prop::collection::vec(
        (
            prop::sample::select(vec!["retry-after", "x-amzn-ratelimit-limit"]),
            header_value(),
        ),
        0..3,
    )
}

fn body(kind: Kind) -> impl Strategy<Value = Vec<u8>> {
    let shaped = (
        prop::sample::select(templates(kind)),
        prop::option::of((any::<usize>(), any_json())),
    )
        .prop_map(|(mut t, mutation)| {
            if let Some((at, with)) = mutation {
                let mut n = at % 24;
                replace_node(&mut t, &mut n, &with);
            }
            t.to_string().into_bytes()
        });
    prop_oneof![
        6 => shaped,
        1 => prop::collection::vec(any::<u8>(), 0..200),
        1 => Just(Vec::new()),
        1 => Just(format!("<html><body>502 Bad Gateway {TOKEN} {PRESENTED}</body></html>").into_bytes()),
    ]
}

fn canned(kind: Kind) -> impl Strategy<Value = Canned> {
    (status(), headers(), body(kind)).prop_map(|(status, headers, body)| Canned {
        status,
        headers,
        body,
    })
}

// ---- properties -------------------------------------------------------------------------------

fn assert_no_secret(text: &str, held: &[String]) -> Result<(), TestCaseError> {
    for s in held {
        prop_assert!(
            !text.contains(s.as_str()),
            "a credential leaked into: {text}"
        );
    }
    Ok(())
}

fn check_outcomes(
    updates: &[QuantityUpdate],
    outcomes: &[PushOutcome],
    answers: &[Canned],
    held: &[String],
) -> Result<(), TestCaseError> {
    prop_assert_eq!(outcomes.len(), updates.len());
    let any_success = answers.iter().any(|a| (200..300).contains(&a.status));
    for o in outcomes {
        match o {
            PushOutcome::Acknowledged { .. } => {
                prop_assert!(any_success, "acknowledged by a failed answer: {answers:?}")
            }
            PushOutcome::Throttled { reason, .. }
            | PushOutcome::Retryable { reason }
            | PushOutcome::Permanent { reason } => {
                prop_assert!(!reason.trim().is_empty());
                assert_no_secret(reason, held)?;
                assert_no_secret(&format!("{o:?}"), held)?;
            }
        }
    }
    Ok(())
}

fn fuzz_channel(kind: Kind) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stand_in = rt.block_on(StandIn::start());
    let strategy = (
        prop::collection::vec(canned(kind), 1..4),
        prop::collection::vec(0i64..1_000_000, 1..4),
        "[A-Za-z0-9/._ -]{1,20}",
        any::<bool>(),
    );
    // One client for every case, as a sync function keeps its client across batches.
    let client = client(kind, &stand_in.url);
    let mut runner = TestRunner::new(config(256));
    let result = runner.run(&strategy, |(answers, quantities, id, read)| {
        stand_in.serve(answers.clone());
        if read {
            let result = rt.block_on(client.read_shown(&listing(kind, &id, 0)));
            match result {
                Ok(_) => prop_assert!(
                    answers.iter().any(|a| (200..300).contains(&a.status)),
                    "read from a failed answer: {answers:?}"
                ),
                Err(e) => {
                    prop_assert!(!e.to_string().trim().is_empty());
                    let held = stand_in.held(kind);
                    assert_no_secret(&e.to_string(), &held)?;
                    assert_no_secret(&format!("{e:?}"), &held)?;
                }
            }
        } else {
            let updates: Vec<QuantityUpdate> = quantities
                .iter()
                .enumerate()
                .map(|(n, q)| QuantityUpdate::new(format!("SKU-{n}"), listing(kind, &id, n), *q))
                .collect();
            let outcomes = rt.block_on(client.push(&updates));
            check_outcomes(&updates, &outcomes, &answers, &stand_in.held(kind))?;
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{kind:?}: {e}");
    }
}

#[test]
fn shopify_answers() {
    fuzz_channel(Kind::Shopify);
}

#[test]
fn amazon_answers() {
    fuzz_channel(Kind::Amazon);
}

#[test]
fn walmart_answers() {
    fuzz_channel(Kind::Walmart);
}

#[test]
fn ebay_answers() {
    fuzz_channel(Kind::Ebay);
}

// ---- regressions --------------------------------------------------------------------------------

/// A channel that echoes the presented token in its 401 and 500 bodies must not put it into the
/// reason a sync failure is published and logged with.
#[test]
fn credentials_echoed_by_a_failing_channel_stay_out_of_reasons() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stand_in = rt.block_on(StandIn::start());
    for kind in [Kind::Shopify, Kind::Amazon, Kind::Walmart, Kind::Ebay] {
        for status in [401, 500, 429] {
            let echo = json!({"errors": [{"code": "E", "message": format!("got {PRESENTED}")}]});
            let mut answers = vec![Canned {
                status,
                headers: vec![],
                body: echo.to_string().into_bytes(),
            }];
            if kind == Kind::Walmart {
                // The token request succeeds; the inventory call meets the echo.
                answers.insert(
                    0,
                    Canned {
                        status: 200,
                        headers: vec![],
                        body: json!({"access_token": ISSUE, "expires_in": 900})
                            .to_string()
                            .into_bytes(),
                    },
                );
            }
            stand_in.serve(answers);
            let client = client(kind, &stand_in.url);
            let outcomes =
                rt.block_on(client.push(&[QuantityUpdate::new("SKU", listing(kind, "A", 0), 1)]));
            let reason = outcomes[0].reason().unwrap_or_default().to_owned();
            assert!(!reason.is_empty(), "{kind:?} {status}: {outcomes:?}");
            let held = stand_in.held(kind);
            assert!(
                held.len() >= 2 || kind != Kind::Walmart,
                "a token was issued"
            );
            for s in &held {
                assert!(!reason.contains(s.as_str()), "{kind:?} {status}: {reason}");
            }
        }
    }
}

/// A Walmart token answer that cannot be read must not quote the token it carries.
#[test]
fn an_unreadable_token_answer_is_not_quoted() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let stand_in = rt.block_on(StandIn::start());
    for body in [
        json!({"access_token": ISSUED_TOKEN, "expires_in": "soon"}),
        json!({"access_token": ISSUED_TOKEN}),
        json!({"token": ISSUED_TOKEN, "expires_in": 900}),
    ] {
        stand_in.serve(vec![Canned {
            status: 200,
            headers: vec![],
            body: body.to_string().into_bytes(),
        }]);
        let client = client(Kind::Walmart, &stand_in.url);
        let err = rt
            .block_on(client.read_shown(&listing(Kind::Walmart, "A", 0)))
            .expect_err("no usable token");
        assert!(!err.to_string().contains(ISSUED_TOKEN), "{err}");
        assert!(err.is_retryable(), "{err}");
    }
}
