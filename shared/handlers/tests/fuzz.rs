//! Fuzzing of what the handlers read from outside before any domain rule: the SQS message body
//! that carries an EventBridge event (envelope, routing, ordering keys, then the detail), and the
//! reservations API's requests (method, path, body) through its router.
//!
//! The router runs against a store whose endpoint refuses connections, so a request that gets as
//! far as the table fails fast as unavailable; what is fuzzed is everything before that. No input
//! may panic; every rejection names its rule. `PROPTEST_CASES` sets the number of cases (`make
//! fuzz` runs many more).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use serde_json::{Value, json};
use stockguard_domain::InvalidInput;
use stockguard_domain::inbound::{INBOUND_DETAIL_TYPES, parse_inbound};
use stockguard_handlers::batch::{ordering_keys, parse_body, read_envelope};
use stockguard_handlers::http_api::route;
use stockguard_handlers::{Deps, Settings};

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

fn nasty_string() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "NaN",
            "null",
            "stockguard.core",
            "stockguard.",
            "Stockguard.core",
            "erp.netsuite",
            "../..",
            "%2F",
            "ＳＫＵ",
            "\u{0}",
            "a/b",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,40}",
        "[A-Za-z0-9._:/-]{1,140}",
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        Just(json!(1e308)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        nasty_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(3, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::btree_map(
                prop_oneof![
                    "\\PC{0,10}",
                    prop::sample::select(vec![
                        "sku",
                        "lines",
                        "reservation_id",
                        "order_id",
                        "quantity"
                    ])
                    .prop_map(str::to_owned)
                ],
                inner,
                0..5
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

fn detail() -> impl Strategy<Value = Value> {
    prop_oneof![
        3 => (
            "[A-Za-z0-9-]{1,20}",
            prop::collection::vec(("[A-Za-z0-9-]{1,10}", 1i64..100), 1..4),
            prop::option::of("[a-z0-9-]{1,20}"),
        )
            .prop_map(|(id, lines, res)| {
                json!({
                    "event_id": id, "occurred_at": "2026-11-27T10:00:00Z", "sku": lines[0].0,
                    "quantity": lines[0].1, "reservation_id": res, "order_id": res, "channel": "web",
                    "lines": lines.iter().map(|(s, q)| json!({"sku": s, "quantity": q})).collect::<Vec<_>>(),
                })
            }),
        1 => any_json(),
    ]
}

/// An EventBridge event as a rule delivers it, with fields mutated or replaced.
fn envelope_body() -> impl Strategy<Value = String> {
    let source = prop_oneof![
        3 => Just(json!("erp.netsuite")),
        1 => Just(json!("stockguard.core")),
        1 => nasty_string().prop_map(Value::String),
        1 => any_json(),
    ];
    let detail_type = prop_oneof![
        4 => prop::sample::select(INBOUND_DETAIL_TYPES.to_vec()).prop_map(|d| json!(d)),
        1 => nasty_string().prop_map(Value::String),
        1 => any_json(),
    ];
    let structured = (
        source,
        detail_type,
        prop::option::of(detail()),
        prop::sample::subsequence(vec!["source", "detail-type", "detail"], 0..=1),
    )
        .prop_map(|(source, detail_type, detail, drop)| {
            let mut e = json!({
                "version": "0", "id": "x", "account": "123456789012", "time": "2026-11-27T10:00:00Z",
                "region": "us-east-1", "resources": [], "source": source, "detail-type": detail_type,
            });
            if let Some(d) = detail {
                e["detail"] = d;
            }
            for field in drop {
                e.as_object_mut().map(|o| o.remove(field));
            }
            e.to_string()
        });
    prop_oneof![
        6 => structured,
        1 => any_json().prop_map(|v| v.to_string()),
        1 => "\\PC{0,200}",
        1 => prop::collection::vec(any::<u8>(), 0..200)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn check_rejection(e: &InvalidInput) -> Result<(), TestCaseError> {
    prop_assert!(!e.code.is_empty(), "{e:?}");
    prop_assert!(!e.field.is_empty(), "{e:?}");
    prop_assert!(!e.message.trim().is_empty(), "{e:?}");
    Ok(())
}

proptest! {
    #![proptest_config(config(512))]

    /// The SQS body of every inbound function, as `handle_batch` reads it.
    #[test]
    fn sqs_bodies_carrying_eventbridge_events(
        body in prop::option::of(envelope_body()),
        expected in prop::sample::select(INBOUND_DETAIL_TYPES.to_vec()),
    ) {
        let envelope = parse_body(body.as_deref());
        for key in ordering_keys(envelope.as_ref().ok()) {
            prop_assert!(["sku:", "res:", "order:"].iter().any(|p| key.starts_with(p)), "{key}");
        }
        match read_envelope(&envelope, expected) {
            Ok(inbound) => {
                prop_assert!(!inbound.source.starts_with("stockguard."), "{inbound:?}");
                prop_assert_eq!(inbound.detail_type, expected);
                if let Err(e) = parse_inbound(inbound.detail_type, inbound.detail) {
                    check_rejection(&e)?;
                }
            }
            Err(e) => {
                check_rejection(&e)?;
                prop_assert!(["body", "source", "detail-type"].contains(&e.field.as_str()), "{e:?}");
            }
        }
    }
}

// ---- the reservations API ---------------------------------------------------------------------

/// Dependencies whose AWS endpoint refuses connections, with no retries: anything that reaches
/// the table fails at once.
fn unreachable_deps(rt: &tokio::runtime::Runtime) -> Deps {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    let config = rt.block_on(
        aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "AKIDFUZZ", "fuzz", None, None, "fuzz",
            ))
            .endpoint_url(format!("http://127.0.0.1:{port}"))
            .retry_config(aws_config::retry::RetryConfig::disabled())
            .load(),
    );
    Deps::new(&config, "fuzz-table", "fuzz-bus", None, Settings::default())
}

fn path() -> impl Strategy<Value = String> {
    let segment = prop_oneof![
        3 => "[A-Za-z0-9._:-]{1,20}",
        1 => nasty_string(),
        1 => Just("x".repeat(200)),
    ];
    prop_oneof![
        2 => Just("/v1/reservations".to_owned()),
        2 => segment.clone().prop_map(|id| format!("/v1/reservations/{id}/confirm")),
        2 => segment.clone().prop_map(|id| format!("/v1/reservations/{id}")),
        2 => segment.clone().prop_map(|s| format!("/v1/availability/{s}")),
        1 => segment.clone().prop_map(|s| format!("/v1/buffers/{s}")),
        1 => Just("/v1/reservations/".to_owned()),
        1 => Just("//v1//reservations".to_owned()),
        1 => Just(String::new()),
        1 => "/\\PC{0,60}",
        1 => prop::collection::vec(segment, 0..6).prop_map(|s| format!("/{}", s.join("/"))),
    ]
}

fn request_body() -> impl Strategy<Value = Vec<u8>> {
    let reservation = (
        prop_oneof![Just(json!("cart-1")), any_json()],
        prop_oneof![Just(json!("storefront")), any_json()],
        prop_oneof![
            Just(json!([{"sku": "A-1", "quantity": 1}])),
            prop::collection::vec(any_json(), 0..30).prop_map(Value::Array),
            any_json(),
        ],
        prop::option::of(any_json()),
    )
        .prop_map(|(id, channel, lines, ttl)| {
            json!({"reservation_id": id, "channel": channel, "lines": lines, "ttl_seconds": ttl})
                .to_string()
                .into_bytes()
        });
    prop_oneof![
        3 => reservation,
        2 => prop_oneof![Just(json!({"order_id": "o-1"})), any_json().prop_map(|o| json!({"order_id": o}))]
            .prop_map(|v| v.to_string().into_bytes()),
        1 => any_json().prop_map(|v| v.to_string().into_bytes()),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        1 => Just(Vec::new()),
        1 => Just(format!("{}1{}", "[".repeat(200), "]".repeat(200)).into_bytes()),
    ]
}

#[test]
fn reservations_api_requests() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let deps = unreachable_deps(&rt);
    let strategy = (
        prop_oneof![
            4 => prop::sample::select(vec!["GET", "POST", "DELETE"]).prop_map(str::to_owned),
            1 => prop::sample::select(vec!["PUT", "PATCH", "HEAD", "OPTIONS", "post", ""]).prop_map(str::to_owned),
        ],
        path(),
        request_body(),
    );
    let config = config(256);
    let cases = config.cases;
    let mut runner = TestRunner::new(config);
    let reached_the_store = std::cell::Cell::new(0u32);
    let result = runner.run(&strategy, |(method, path, body)| {
        let answer = rt.block_on(route(&deps, &method, &path, &body));
        if answer.status == 503 {
            reached_the_store.set(reached_the_store.get() + 1);
        }
        prop_assert!(
            [400, 404, 405, 409, 500, 503].contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        let error = answer.body["error"].as_str().unwrap_or_default();
        let message = answer.body["message"].as_str().unwrap_or_default();
        prop_assert!(
            !error.is_empty() && !message.trim().is_empty(),
            "{}",
            answer.body
        );
        if error == "invalid_request" && answer.body.get("field").is_some() {
            prop_assert!(
                answer.body["field"].as_str().is_some_and(|f| !f.is_empty()),
                "{}",
                answer.body
            );
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}");
    }
    // The generators must also make requests valid enough to get past every check.
    assert!(
        cases < 64 || reached_the_store.get() > 0,
        "no request of {cases} got as far as the store"
    );
}
