//! The CLI's commands against the emulator: each test provisions its own stack, runs commands
//! in-process against it and reads what they printed; one test runs the real binary.
//! Run with `infra/with-emulator.sh cargo test -p stockguard-cli`.

use std::path::PathBuf;
use std::process::Command as Process;

use clap::Parser;
use serde_json::Value;
use stockguard_adapters::StateStore;
use stockguard_adapters::channel_store::{ChannelSettings, SyncRecord};
use stockguard_cli::dlq::DlqError;
use stockguard_cli::listings::ImportRefused;
use stockguard_cli::{Cli, Connection, Stack, Terminal, connect, run};
use stockguard_domain::buffer::{BufferMode, DynamicPolicy};
use stockguard_domain::{ChannelName, Sku};
use stockguard_handlers::buffers::buffers_of;
use stockguard_handlers::deps::now_ms;
use stockguard_tests::serde_json::json;
use stockguard_tests::{TestStack, at, envelope, now_rfc3339, unique};

async fn connection_of(test: &TestStack) -> Connection {
    let mut stack = Stack::explicit(
        &test.stack.table,
        std::env::var("AWS_ENDPOINT_URL").ok(),
        std::env::var("AWS_REGION").ok(),
    );
    // Set when the emulator runs DynamoDB apart (the default).
    stack.dynamodb_endpoint_url = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok();
    connect(&stack).await.expect("connecting to the test stack")
}

/// [`connection_of`] with the stack's bus, as STOCKGUARD_BUS or the stack's outputs name it.
async fn connection_with_bus(test: &TestStack) -> Connection {
    let mut connection = connection_of(test).await;
    connection.bus = Some(test.stack.bus.clone());
    connection.stack.event_bus = Some(test.stack.bus.clone());
    connection
}

/// Runs `stockguard ARGS` in-process: what it printed, and how it ended.
async fn sg(connection: &Connection, args: &[&str]) -> (String, anyhow::Result<()>) {
    let cli = Cli::try_parse_from(std::iter::once("stockguard").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("stockguard {args:?}: {e}"));
    let mut out = Vec::new();
    let terminal = Terminal {
        progress: false,
        json: cli.json,
    };
    let result = run(connection, &cli.command, &mut out, terminal).await;
    (String::from_utf8(out).expect("output is UTF-8"), result)
}

/// Runs a command that must succeed and returns its output.
async fn ok(connection: &Connection, args: &[&str]) -> String {
    let (out, result) = sg(connection, args).await;
    if let Err(e) = result {
        panic!("stockguard {args:?} failed: {e:#}\n{out}");
    }
    out
}

/// Runs `stockguard --json ARGS`, which must succeed, and parses what it printed: one JSON
/// document and nothing else.
async fn json_of(connection: &Connection, args: &[&str]) -> Value {
    let (out, result) = sg(connection, &[&["--json"], args].concat()).await;
    if let Err(e) = result {
        panic!("stockguard --json {args:?} failed: {e:#}\n{out}");
    }
    parse_one_document(&out)
}

fn parse_one_document(out: &str) -> Value {
    serde_json::from_str(out).unwrap_or_else(|e| panic!("not one JSON document ({e}):\n{out}"))
}

fn csv_file(body: &str) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{}.csv", unique("stockguard-listings")));
    std::fs::write(
        &path,
        format!("channel,sku,listing_id,location_id,offer_id,product_type\n{body}"),
    )
    .expect("writing a temporary CSV");
    path
}

fn channel(name: &str) -> ChannelName {
    ChannelName::parse(name).unwrap()
}

/// The row of `name` in a table, split into cells.
fn row<'a>(table: &'a str, name: &str) -> Vec<&'a str> {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(name))
        .unwrap_or_else(|| panic!("no row {name} in\n{table}"))
        .split_whitespace()
        .collect()
}

async fn configure_channels(conn: &Connection, names: &[&str]) {
    for name in names {
        let endpoint = format!("http://127.0.0.1:9/{name}");
        ok(
            conn,
            &[
                "channels",
                "set",
                name,
                "--kind",
                name,
                "--endpoint",
                &endpoint,
            ],
        )
        .await;
    }
}

/// The cells of the indented message line of a `dlq list` whose first cell is `first`.
fn message_row<'a>(out: &'a str, first: &str) -> Vec<&'a str> {
    out.lines()
        .filter(|l| l.starts_with("  "))
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no message line {first} in\n{out}"))
        .split_whitespace()
        .collect()
}

/// Receives and deletes what a stack queue holds: each body with its message attributes' names.
async fn take_all(stack: &TestStack, logical_id: &str) -> Vec<(String, Vec<String>)> {
    let url = &stack.stack.queues[logical_id].url;
    let mut taken = Vec::new();
    loop {
        let messages = stack
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .message_attribute_names("All")
            .wait_time_seconds(1)
            .send()
            .await
            .expect("ReceiveMessage")
            .messages
            .unwrap_or_default();
        if messages.is_empty() {
            return taken;
        }
        for m in messages {
            let mut attributes: Vec<String> = m
                .message_attributes()
                .map(|a| a.keys().cloned().collect())
                .unwrap_or_default();
            attributes.sort();
            taken.push((m.body().unwrap_or_default().to_owned(), attributes));
            stack
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
    }
}

/// Runs what a source queue holds through its function's handler, as Lambda would.
async fn deliver(stack: &TestStack, detail_type: &str) -> usize {
    let records: Vec<(String, u32)> = take_all(stack, &format!("{detail_type}Queue"))
        .await
        .into_iter()
        .map(|(body, _)| (body, 1))
        .collect();
    let resp = stack.run_batch(detail_type, &records).await;
    assert!(
        resp.batch_item_failures.is_empty(),
        "{detail_type}: {:?}",
        resp.batch_item_failures
    );
    records.len()
}

async fn listing_counts(store: &StateStore) -> Vec<(String, usize)> {
    let mut counts = Vec::new();
    for name in ["shopify", "amazon", "walmart", "ebay"] {
        let n = store.all_listings(&channel(name)).await.unwrap().len();
        counts.push((name.to_owned(), n));
    }
    counts
}

#[tokio::test]
async fn channels_set_and_list_round_trip() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;

    let (out, result) = sg(&conn, &["channels", "list"]).await;
    result.unwrap();
    assert!(out.contains("No channels are configured"), "{out}");

    let (_, result) = sg(
        &conn,
        &["channels", "set", "shopify", "--buffer-units", "2"],
    )
    .await;
    let err = result.expect_err("a new channel without --kind and --endpoint");
    assert!(err.to_string().contains("needs --kind"), "{err:#}");

    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--kind",
            "shopify",
            "--endpoint",
            "https://shop.example.com/",
            "--credentials",
            "sg/shopify",
            "--buffer-units",
            "2",
            "--buffer-percent",
            "12.5",
            "--maximum",
            "40",
        ],
    )
    .await;
    assert!(out.starts_with("Created channel shopify:"), "{out}");
    assert!(
        out.contains("endpoint        https://shop.example.com\n"),
        "{out}"
    );
    // A static buffer given without --buffer-mode applies: the channel is static.
    assert!(out.contains("buffer mode     static\n"), "{out}");
    assert!(
        out.contains("switched channel shopify to static buffers (new channels start dynamic)"),
        "{out}"
    );
    assert!(out.contains("buffer percent  12.5\n"), "{out}");
    assert!(out.contains("maximum         40\n"), "{out}");

    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "amazon",
            "--kind",
            "amazon",
            "--endpoint",
            "https://sellingpartnerapi-na.amazon.com",
            "--seller-id",
            "A1SELLER",
            "--marketplace-id",
            "ATVPDKIKX0DER",
        ],
    )
    .await;
    assert!(
        out.contains("credentials     stockguard/channels/amazon"),
        "default secret name: {out}"
    );
    assert!(out.contains("seller id       A1SELLER"), "{out}");

    // An update keeps what it does not name.
    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--enabled",
            "false",
            "--no-maximum",
        ],
    )
    .await;
    assert!(out.starts_with("Updated channel shopify:"), "{out}");
    assert!(out.contains("enabled         no\n"), "{out}");
    assert!(out.contains("maximum         -\n"), "{out}");
    assert!(out.contains("buffer units    2\n"), "{out}");

    let out = ok(&conn, &["channels", "list"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "KIND",
            "ENABLED",
            "MODE",
            "BUFFER",
            "UNITS",
            "BUFFER",
            "%",
            "RISK",
            "TARGET",
            "MIN",
            "BUFFER",
            "MAX",
            "BUFFER",
            "LOW",
            "STOCK",
            "MAXIMUM",
            "ENDPOINT",
            "CREDENTIALS"
        ]
    );
    assert_eq!(
        row(&out, "shopify"),
        [
            "shopify",
            "shopify",
            "no",
            "static",
            "2",
            "12.5",
            "0.01",
            "0",
            "-",
            "off",
            "-",
            "https://shop.example.com",
            "sg/shopify",
        ]
    );
    // A new channel's buffers are dynamic with the contract's defaults.
    assert_eq!(
        row(&out, "amazon"),
        [
            "amazon",
            "amazon",
            "yes",
            "dynamic",
            "0",
            "0",
            "0.01",
            "0",
            "-",
            "off",
            "-",
            "https://sellingpartnerapi-na.amazon.com",
            "stockguard/channels/amazon",
        ]
    );

    // A per-SKU override leaves the channel alone.
    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--sku",
            "TEE-1",
            "--buffer-units",
            "7",
        ],
    )
    .await;
    assert!(
        out.contains("buffer override for TEE-1 on channel shopify"),
        "{out}"
    );
    assert!(out.contains("buffer units    7\n"), "{out}");
    assert!(
        out.contains("buffer percent  12.5\n"),
        "starts from the channel's percent: {out}"
    );
    let sku = Sku::parse("TEE-1").unwrap();
    let overrides = conn
        .store
        .buffer_overrides(&channel("shopify"), std::slice::from_ref(&sku))
        .await
        .unwrap();
    assert_eq!(overrides[&sku].units, 7);
    let shopify = conn
        .store
        .channel(&channel("shopify"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(shopify.buffer.units, 2);

    let (_, result) = sg(
        &conn,
        &[
            "channels",
            "set",
            "ebay",
            "--sku",
            "TEE-1",
            "--buffer-units",
            "1",
        ],
    )
    .await;
    assert!(
        result.unwrap_err().to_string().contains("not configured"),
        "an override needs its channel"
    );
}

/// A channel's settings as stored.
async fn stored(conn: &Connection, name: &str) -> ChannelSettings {
    conn.store
        .channel(&channel(name))
        .await
        .unwrap()
        .unwrap_or_else(|| panic!("channel {name} is not stored"))
}

#[tokio::test]
async fn channels_set_stores_the_dynamic_policy_and_refuses_bad_values() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify"]).await;
    assert_eq!(
        stored(&conn, "shopify").await.buffer_mode,
        BufferMode::Dynamic
    );

    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--buffer-mode",
            "dynamic",
            "--risk-target",
            "0.02",
            "--min-buffer",
            "1",
            "--max-buffer",
            "9",
            "--low-stock-units",
            "4",
            "--low-stock-max-delay-ms",
            "30000",
        ],
    )
    .await;
    for line in [
        "  buffer mode     dynamic\n",
        "  buffer units    0  (used in static mode)\n",
        "  risk target     0.02\n",
        "  min buffer      1\n",
        "  max buffer      9\n",
        "  low stock units 4\n",
        "  low stock delay 30000 ms (30s)\n",
    ] {
        assert!(out.contains(line), "{line:?} in\n{out}");
    }
    assert!(!out.contains("note:"), "nothing to note: {out}");
    let shopify = stored(&conn, "shopify").await;
    assert_eq!(shopify.buffer_mode, BufferMode::Dynamic);
    assert_eq!(
        shopify.dynamic,
        DynamicPolicy {
            risk_target: 0.02,
            min_units: 1,
            max_units: Some(9),
            low_stock_units: 4,
            low_stock_max_delay_ms: 30_000,
        }
    );
    let list = ok(&conn, &["channels", "list"]).await;
    assert_eq!(
        row(&list, "shopify")[3..12],
        ["dynamic", "0", "0", "0.02", "1", "9", "4", "(>30s)", "-"],
        "{list}"
    );

    // Each refused value names its option, and changes nothing, not even the valid options given
    // with it.
    for (args, message) in [
        (
            &["--risk-target", "0"][..],
            "--risk-target must be between 0 and 1 (exclusive), got 0",
        ),
        (
            &["--risk-target", "1"],
            "--risk-target must be between 0 and 1 (exclusive), got 1",
        ),
        (
            &["--risk-target", "NaN"],
            "--risk-target must be between 0 and 1",
        ),
        (
            &["--min-buffer", "-1"],
            "--min-buffer must be 0 or more, got -1",
        ),
        (
            &["--max-buffer", "-2"],
            "--max-buffer must be 0 or more, got -2",
        ),
        // Against the stored minimum, 1.
        (
            &["--max-buffer", "0"],
            "--max-buffer (0) must not be below --min-buffer (1)",
        ),
        (
            &["--min-buffer", "10"],
            "--max-buffer (9) must not be below --min-buffer (10)",
        ),
        (
            &["--low-stock-units", "-3"],
            "--low-stock-units must be 0 or more, got -3",
        ),
        (
            &["--low-stock-max-delay-ms", "-1"],
            "--low-stock-max-delay-ms must be 0 or more",
        ),
        (
            &["--buffer-units", "2", "--min-buffer", "2"],
            "add --buffer-mode static or --buffer-mode dynamic to say which applies",
        ),
    ] {
        let mut argv = vec![
            "channels",
            "set",
            "shopify",
            "--enabled",
            "false",
            "--maximum",
            "7",
        ];
        argv.extend_from_slice(args);
        let (out, result) = sg(&conn, &argv).await;
        let err = format!("{:#}", result.expect_err(&format!("{args:?} is refused")));
        assert!(err.contains(message), "{args:?}: {err}");
        assert!(err.contains("channel shopify was not changed"), "{err}");
        assert!(out.is_empty(), "{args:?} printed\n{out}");
        assert_eq!(
            stored(&conn, "shopify").await,
            shopify,
            "{args:?} changed nothing"
        );
    }

    // Nor is a channel created with a refused value.
    let (_, result) = sg(
        &conn,
        &[
            "channels",
            "set",
            "ebay",
            "--kind",
            "ebay",
            "--endpoint",
            "http://127.0.0.1:9/ebay",
            "--risk-target",
            "2",
        ],
    )
    .await;
    let err = result
        .expect_err("a risk target of 2 is refused")
        .to_string();
    assert!(
        err.ends_with("got 2; channel ebay was not created"),
        "{err}"
    );
    assert_eq!(conn.store.channel(&channel("ebay")).await.unwrap(), None);

    // Options not given keep their values; --no-max-buffer removes the maximum buffer.
    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--no-max-buffer",
            "--min-buffer",
            "0",
        ],
    )
    .await;
    assert!(out.contains("  max buffer      -\n"), "{out}");
    assert_eq!(
        stored(&conn, "shopify").await.dynamic,
        DynamicPolicy {
            min_units: 0,
            max_units: None,
            ..shopify.dynamic
        }
    );
}

#[tokio::test]
async fn static_buffer_options_switch_a_channel_to_static_and_say_so() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["walmart", "ebay"]).await;

    let out = ok(
        &conn,
        &["channels", "set", "walmart", "--buffer-units", "2"],
    )
    .await;
    assert!(out.contains("  buffer mode     static\n"), "{out}");
    assert!(out.contains("  buffer units    2\n"), "{out}");
    assert!(
        out.contains("  min buffer      0  (used in dynamic mode)\n"),
        "{out}"
    );
    assert!(
        out.contains(
            "note: --buffer-units/--buffer-percent switched channel walmart to static buffers \
             (it was dynamic); `--buffer-mode dynamic` switches it back"
        ),
        "{out}"
    );
    let walmart = stored(&conn, "walmart").await;
    assert_eq!(
        (walmart.buffer_mode, walmart.buffer.units),
        (BufferMode::Static, 2)
    );

    // Already static: nothing switches, nothing to say.
    let out = ok(
        &conn,
        &["channels", "set", "walmart", "--buffer-percent", "10"],
    )
    .await;
    assert!(!out.contains("note:"), "{out}");
    assert_eq!(
        stored(&conn, "walmart").await.buffer_mode,
        BufferMode::Static
    );

    // Back to dynamic: the static buffer is kept for later.
    let out = ok(
        &conn,
        &["channels", "set", "walmart", "--buffer-mode", "dynamic"],
    )
    .await;
    assert!(out.contains("  buffer mode     dynamic\n"), "{out}");
    assert!(
        out.contains("  buffer units    2  (used in static mode)\n"),
        "{out}"
    );
    assert!(
        out.contains("  buffer percent  10  (used in static mode)\n"),
        "{out}"
    );
    let walmart = stored(&conn, "walmart").await;
    assert_eq!(walmart.buffer_mode, BufferMode::Dynamic);
    assert_eq!((walmart.buffer.units, walmart.buffer.percent), (2, 10.0));

    // An explicit mode wins, and the options of the other mode are stored with a note.
    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "walmart",
            "--buffer-mode",
            "dynamic",
            "--buffer-units",
            "5",
        ],
    )
    .await;
    assert!(
        out.contains("note: channel walmart uses dynamic buffers; --buffer-units/--buffer-percent"),
        "{out}"
    );
    let walmart = stored(&conn, "walmart").await;
    assert_eq!(
        (walmart.buffer_mode, walmart.buffer.units),
        (BufferMode::Dynamic, 5)
    );
    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "walmart",
            "--buffer-mode",
            "static",
            "--min-buffer",
            "4",
        ],
    )
    .await;
    assert!(
        out.contains("note: channel walmart uses static buffers; the dynamic settings apply"),
        "{out}"
    );
    let walmart = stored(&conn, "walmart").await;
    assert_eq!(
        (walmart.buffer_mode, walmart.dynamic.min_units),
        (BufferMode::Static, 4)
    );

    // A SKU override is a static buffer: it leaves a dynamic channel dynamic, and says so.
    let out = ok(
        &conn,
        &[
            "channels",
            "set",
            "ebay",
            "--sku",
            "TEE-1",
            "--buffer-units",
            "3",
        ],
    )
    .await;
    assert!(
        out.contains("note: channel ebay uses dynamic buffers; SKU overrides are static buffers"),
        "{out}"
    );
    assert_eq!(stored(&conn, "ebay").await.buffer_mode, BufferMode::Dynamic);
}

#[tokio::test]
async fn buffers_explain_shows_every_enabled_channel_its_factors_and_what_set_its_buffer() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify", "amazon", "walmart", "ebay"]).await;
    // shopify: dynamic with a floor; amazon: dynamic, hiding low stock (its delay is 15 min);
    // walmart: static; ebay: dynamic with the defaults; ebay-uk: disabled.
    ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--min-buffer",
            "3",
            "--risk-target",
            "0.05",
        ],
    )
    .await;
    ok(
        &conn,
        &["channels", "set", "amazon", "--low-stock-units", "120"],
    )
    .await;
    ok(
        &conn,
        &[
            "channels",
            "set",
            "walmart",
            "--buffer-units",
            "2",
            "--buffer-percent",
            "10",
        ],
    )
    .await;
    ok(
        &conn,
        &[
            "channels",
            "set",
            "ebay-uk",
            "--kind",
            "ebay",
            "--endpoint",
            "http://127.0.0.1:9/uk",
            "--enabled",
            "false",
        ],
    )
    .await;

    let (_, result) = sg(&conn, &["buffers", "explain", "EXPLAIN-1"]).await;
    let err = result.expect_err("no stock event yet: unknown");
    assert!(
        err.to_string().starts_with("SKU EXPLAIN-1 is unknown"),
        "{err:#}"
    );

    stack
        .apply(
            "StockReceived",
            json!({"event_id": unique("ex"), "occurred_at": now_rfc3339(), "sku": "EXPLAIN-1", "quantity": 200}),
        )
        .await;
    // 90 units sold on shopify: 0.1 units a second (6 a minute) on the 15-minute rate, for every
    // channel but shopify.
    stack
        .apply(
            "OrderPlaced",
            json!({"event_id": unique("ex"), "occurred_at": now_rfc3339(), "order_id": unique("o"),
                   "channel": "shopify", "lines": [{"sku": "EXPLAIN-1", "quantity": 90}]}),
        )
        .await;
    // A signal of strength 4 recomputes the SKU's buffers at once.
    stack
        .apply(
            "DemandSignal",
            json!({"event_id": unique("ex"), "occurred_at": now_rfc3339(), "sku": "EXPLAIN-1",
                   "signal": "add_to_cart_surge", "strength": 4.0, "expires_at": at(3_600_000)}),
        )
        .await;

    let out = ok(&conn, &["buffers", "explain", "EXPLAIN-1"]).await;
    assert!(
        out.starts_with("SKU EXPLAIN-1\n  available  110\n"),
        "{out}"
    );
    let header: Vec<&str> = out
        .lines()
        .find(|l| l.starts_with("CHANNEL"))
        .unwrap_or_else(|| panic!("no table in\n{out}"))
        .split_whitespace()
        .collect();
    assert_eq!(
        header.join(" "),
        "CHANNEL MODE VELOCITY ELSEWHERE DELAY P95 HEALTH EFFECTIVE DELAY TIME OF DAY SIGNAL \
         RISK TARGET LOW STOCK BUFFER SHOWN DECIDED BY"
    );
    let velocity = |cell: &str| -> f64 {
        cell.strip_suffix("/min")
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("velocity {cell:?}"))
    };
    // Factors: shopify sold everything, so nothing sold elsewhere; each channel's delay is its
    // kind's prior (nothing measured yet); the signal counts everywhere.
    let shopify = row(&out, "shopify");
    assert_eq!(
        shopify,
        [
            "shopify", "dynamic", "0/min", "1s", "x1", "1s", "x1", "x4", "0.05", "no", "3", "107",
            "min", "buffer"
        ],
        "{out}"
    );
    // The 15-minute rate has decayed for a few seconds at most.
    let ebay = row(&out, "ebay");
    assert!((5.9..=6.0).contains(&velocity(ebay[2])), "{out}");
    // 0.1/s x 4 x 5 s = a mean of 2 units: 6 keep the risk within 1% (3 without the signal).
    assert_eq!(
        ebay[1..],
        [
            "dynamic", ebay[2], "5s", "x1", "5s", "x1", "x4", "0.01", "no", "6", "104", "signal"
        ],
        "{out}"
    );
    let amazon = row(&out, "amazon");
    assert!((5.9..=6.0).contains(&velocity(amazon[2])), "{out}");
    assert_eq!(
        amazon[3..],
        [
            "15m", "x1", "15m", "x1", "x4", "0.01", "yes", "110", "0", "low", "stock"
        ],
        "{out}"
    );
    // 2 units + 10% of 110.
    let walmart = row(&out, "walmart");
    assert_eq!(
        [walmart[1]]
            .iter()
            .chain(&walmart[9..])
            .copied()
            .collect::<Vec<_>>(),
        ["static", "no", "13", "97", "static", "policy"],
        "{out}"
    );
    assert!(!out.lines().any(|l| l.starts_with("ebay-uk")), "{out}");
    assert!(
        out.contains("Disabled channels (not shown): ebay-uk"),
        "{out}"
    );

    // Below the table, the same in words.
    for why in [
        "  amazon   110 units held back: low stock (110 available, at or below \
         --low-stock-units 120) on a channel slower than 1m (its delay is 15m), so it shows 0\n",
        "  ebay     6 units held back: a demand signal: sales elsewhere are expected at x4 their \
         rate\n",
        "  shopify  3 units held back: its minimum buffer (--min-buffer 3)\n",
        "  walmart  13 units held back: static mode, its buffer of 2 units + 10%\n",
    ] {
        assert!(out.contains(why), "{why:?} in\n{out}");
    }

    // The numbers are the API's.
    let api = buffers_of(&stack.deps, &Sku::parse("EXPLAIN-1").unwrap(), now_ms())
        .await
        .unwrap()
        .unwrap();
    for (name, c) in &api.channels {
        let cells = row(&out, name);
        assert_eq!(
            (cells[10], cells[11]),
            (c.buffer.to_string().as_str(), c.shown.to_string().as_str()),
            "{name}"
        );
    }
    assert_eq!(api.channels.len(), 4);
}

#[tokio::test]
async fn a_good_listings_file_is_stored_in_chunks_with_a_summary() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify", "amazon", "walmart"]).await;

    let mut body = String::new();
    for i in 0..30 {
        body.push_str(&format!("shopify,SKU-{i},{},777,,\n", 1000 + i));
    }
    body.push_str("amazon,SKU-1,SKU-1-AMZ,,,SHIRT\n");
    body.push_str("walmart,\"SKU-1\",WM-1,,,\n");
    let file = csv_file(&body);
    let out = ok(&conn, &["listings", "import", file.to_str().unwrap()]).await;
    assert!(out.contains("Stored 32 listings from"), "{out}");
    assert!(out.contains("  shopify    30\n"), "{out}");
    assert!(out.contains("  amazon     1\n"), "{out}");
    assert!(out.contains("  walmart    1\n"), "{out}");
    assert_eq!(
        listing_counts(&conn.store).await,
        [
            ("shopify".into(), 30),
            ("amazon".into(), 1),
            ("walmart".into(), 1),
            ("ebay".into(), 0)
        ]
    );
    let amazon = conn.store.all_listings(&channel("amazon")).await.unwrap();
    assert_eq!(amazon[0].product_type.as_deref(), Some("SHIRT"));
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_file_with_bad_rows_reports_each_and_stores_nothing() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify", "amazon", "walmart", "ebay"]).await;

    let file = csv_file(
        "shopify,GOOD-1,1001,777,,\n\
         shopify,BAD-1,1002,,,\n\
         amazon,BAD-2,B2,,,\n\
         etsy,BAD-3,E3,,,\n\
         walmart,bad sku,W4,,,\n\
         shopify,GOOD-1,1003,777,,\n\
         ebay,GOOD-2,E5,,OFFER-5,\n\
         walmart,BAD-4\n",
    );
    let (out, result) = sg(&conn, &["listings", "import", file.to_str().unwrap()]).await;
    let err = result.expect_err("a file with bad rows is refused");
    let Some(ImportRefused::Rejected { rows, .. }) = err.downcast_ref::<ImportRefused>() else {
        panic!("unexpected error {err:#}");
    };
    assert_eq!(
        rows.iter().map(|r| r.line).collect::<Vec<_>>(),
        [3, 4, 5, 6, 7, 9]
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 6, "{out}");
    assert_eq!(lines[0], "line 3: location_id is required for shopify");
    assert_eq!(lines[1], "line 4: product_type is required for amazon");
    assert!(
        lines[2].starts_with("line 5: channel etsy has no adapter"),
        "{out}"
    );
    assert!(lines[3].starts_with("line 6: sku"), "{out}");
    assert!(
        lines[4].starts_with("line 7: shopify GOOD-1 is mapped twice"),
        "{out}"
    );
    assert_eq!(lines[5], "line 9: 2 cells; expected 6");
    assert!(
        err.to_string()
            .ends_with("6 rows rejected; nothing was stored"),
        "{err}"
    );
    assert!(
        listing_counts(&conn.store)
            .await
            .iter()
            .all(|(_, n)| *n == 0),
        "nothing stored"
    );
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_file_naming_an_unconfigured_channel_stores_nothing() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify"]).await;

    let file = csv_file(
        "shopify,TEE-1,4455,777,,\n\
         ebay,TEE-1,TEE-1,,OFF-1,\n\
         ebay,TEE-2,TEE-2,,OFF-2,\n\
         walmart,TEE-1,WM-1,,,\n",
    );
    let (out, result) = sg(&conn, &["listings", "import", file.to_str().unwrap()]).await;
    let err = result.expect_err("unconfigured channels are refused");
    let msg = err.to_string();
    assert!(
        msg.contains("not configured: ebay (2 rows), walmart (1 row); nothing was stored"),
        "{msg}"
    );
    assert!(matches!(
        err.downcast_ref::<ImportRefused>(),
        Some(ImportRefused::UnconfiguredChannels { missing, .. }) if missing.len() == 2
    ));
    assert!(out.is_empty(), "{out}");
    assert!(
        conn.store
            .all_listings(&channel("shopify"))
            .await
            .unwrap()
            .is_empty(),
        "not even the configured channel's rows"
    );
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn position_shows_each_enabled_channel_its_buffered_quantity() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify", "amazon", "walmart", "ebay"]).await;
    ok(
        &conn,
        &[
            "channels",
            "set",
            "shopify",
            "--buffer-units",
            "2",
            "--buffer-percent",
            "10",
        ],
    )
    .await;
    ok(&conn, &["channels", "set", "amazon", "--maximum", "5"]).await;
    // A SKU override is a static policy: walmart switches to static mode for it to apply.
    ok(
        &conn,
        &["channels", "set", "walmart", "--buffer-mode", "static"],
    )
    .await;
    ok(
        &conn,
        &[
            "channels",
            "set",
            "walmart",
            "--sku",
            "POS-1",
            "--buffer-units",
            "15",
        ],
    )
    .await;
    ok(&conn, &["channels", "set", "ebay", "--enabled", "false"]).await;
    let file = csv_file("shopify,POS-1,4455,777,,\n");
    ok(&conn, &["listings", "import", file.to_str().unwrap()]).await;
    std::fs::remove_file(file).unwrap();

    stack
        .apply(
            "StockReceived",
            json!({"event_id": unique("pos"), "occurred_at": now_rfc3339(), "sku": "POS-1", "quantity": 20}),
        )
        .await;
    let sku = Sku::parse("POS-1").unwrap();
    conn.store
        .record_acknowledged(
            &channel("shopify"),
            &sku,
            SyncRecord {
                version: 1,
                buffer_revision: 0,
                quantity: 16,
                acknowledged_at: 1_767_225_600_000,
            },
        )
        .await
        .unwrap();

    let out = ok(&conn, &["position", "POS-1"]).await;
    assert!(out.starts_with("SKU POS-1\n"), "{out}");
    assert!(out.contains("  on hand        20\n"), "{out}");
    assert!(out.contains("  hard reserved  0\n"), "{out}");
    assert!(out.contains("  available      20\n"), "{out}");
    assert!(out.contains("  version        1\n"), "{out}");
    // shopify: 20 - (2 + ceil(10% of 20)) = 16; amazon: capped at 5; walmart: 20 - 15 = 5.
    assert_eq!(
        row(&out, "shopify"),
        [
            "shopify",
            "16",
            "2",
            "units",
            "+",
            "10%",
            "-",
            "4455",
            "v1",
            "qty",
            "16",
            "at",
            "2026-01-01T00:00:00.000Z"
        ]
    );
    assert_eq!(
        row(&out, "amazon"),
        [
            "amazon", "5", "dynamic:", "0", "5", "none", "never", "pushed"
        ]
    );
    assert_eq!(
        row(&out, "walmart"),
        [
            "walmart",
            "5",
            "15",
            "units",
            "(SKU",
            "override)",
            "-",
            "none",
            "never",
            "pushed"
        ]
    );
    assert!(
        !out.lines().any(|l| l.starts_with("ebay")),
        "disabled channels have no row: {out}"
    );
    assert!(out.contains("Disabled channels (not shown): ebay"), "{out}");

    let out = ok(&conn, &["position", "NEW-SKU"]).await;
    assert!(out.contains("  version        0  (no stock event"), "{out}");
    assert_eq!(row(&out, "shopify")[1], "0");
}

#[tokio::test]
async fn the_binary_finds_its_stack_in_the_environment() {
    let stack = TestStack::new().await;
    let endpoint = std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL");
    let cwd = std::env::temp_dir();
    let stockguard = |args: &[&str]| {
        Process::new(env!("CARGO_BIN_EXE_stockguard"))
            .args(args)
            .current_dir(&cwd)
            .env("STOCKGUARD_TABLE", &stack.stack.table)
            .env("STOCKGUARD_BUS", &stack.stack.bus)
            .env("AWS_ENDPOINT_URL", &endpoint)
            .env("AWS_REGION", "us-east-1")
            // A local endpoint without credentials gets the emulator's dummy ones.
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_PROFILE")
            .output()
            .expect("running stockguard")
    };
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let out = stockguard(&[
        "channels",
        "set",
        "walmart",
        "--kind",
        "walmart",
        "--endpoint",
        "http://127.0.0.1:9",
        "--buffer-units",
        "3",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = stockguard(&["channels", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    // MODE, then BUFFER UNITS.
    assert_eq!(row(&stdout, "walmart")[3..5], ["static", "3"], "{stdout}");

    let out = stockguard(&["channels", "set", "walmart", "--buffer-mode", "auto"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");
    assert!(
        text(&out.stderr).contains("buffer mode \"auto\" is not one of: static, dynamic"),
        "{}",
        text(&out.stderr)
    );
    let out = stockguard(&["channels", "set", "walmart", "--risk-target", "1.5"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("--risk-target must be between 0 and 1 (exclusive), got 1.5"),
        "{}",
        text(&out.stderr)
    );

    let out = stockguard(&["buffers", "explain", "NEVER-STOCKED"]);
    assert_eq!(out.status.code(), Some(1), "an unknown SKU is an error");
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("error: SKU NEVER-STOCKED is unknown"),
        "{}",
        text(&out.stderr)
    );

    let file = csv_file("walmart,BIN-1,WM-1,,,\nwalmart,BIN-2,,,,\n");
    let out = stockguard(&["listings", "import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(text(&out.stdout), "line 3: listing_id is empty\n");
    assert!(
        text(&out.stderr).contains("1 row rejected; nothing was stored"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_file(file).unwrap();

    let out = stockguard(&["position", "BIN-1"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("available      0"));

    let out = stockguard(&["dlq", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let dlq = format!("{}StockReceivedDLQ", stack.stack.prefix);
    assert_eq!(row(&text(&out.stdout), &dlq)[1], "0");

    let out = stockguard(&["position", "not a sku"]);
    assert_eq!(out.status.code(), Some(2), "a usage error");

    let out = Process::new(env!("CARGO_BIN_EXE_stockguard"))
        .args(["channels", "list"])
        .current_dir(&cwd)
        .env_remove("STOCKGUARD_TABLE")
        .output()
        .expect("running stockguard");
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("make local-up"));
}

#[tokio::test]
async fn dlq_list_shows_each_queue_its_depth_and_why_its_messages_failed() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    let prefix = &stack.stack.prefix;
    let dlq = format!("{prefix}StockReceivedDLQ");

    let out = ok(&conn, &["dlq", "list"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(header, ["QUEUE", "MESSAGES", "IN", "FLIGHT"]);
    let dlqs = stack.stack.queues.keys().filter(|k| k.ends_with("DLQ"));
    for logical_id in dlqs.clone() {
        let name = format!("{prefix}{logical_id}");
        assert_eq!(row(&out, &name), [name.as_str(), "0", "0"]);
    }
    assert_eq!(
        out.lines()
            .filter(|l| l.starts_with(prefix.as_str()))
            .count(),
        dlqs.count(),
        "only the dead-letter queues of this stack: {out}"
    );
    assert!(
        out.ends_with("\nEvery dead-letter queue is empty.\n"),
        "{out}"
    );

    let bad = envelope(
        "erp.test",
        "StockReceived",
        &json!({"event_id": "dlq-bad-1", "occurred_at": now_rfc3339(), "sku": "DLQ-1", "quantity": 0}),
    );
    let resp = stack
        .run_batch("StockReceived", &[(bad, 1), ("this is not json".into(), 1)])
        .await;
    assert!(resp.batch_item_failures.is_empty(), "both dead-lettered");

    let out = ok(&conn, &["dlq", "list"]).await;
    assert_eq!(row(&out, &dlq), [dlq.as_str(), "2", "0"]);
    assert_eq!(
        row(&out, &format!("{prefix}StockCountedDLQ"))[1],
        "0",
        "{out}"
    );
    assert!(
        out.contains(&format!("\n{dlq}: the first 2 of 2 messages\n")),
        "{out}"
    );
    let bad_row = message_row(&out, "quantity_out_of_range");
    assert_eq!(
        bad_row[1..4],
        ["StockReceived", "dlq-bad-1", "sku=DLQ-1"],
        "{out}"
    );
    assert!(
        bad_row[4].ends_with('Z'),
        "when it was dead-lettered: {out}"
    );
    let unparsed = message_row(&out, "malformed_envelope");
    assert_eq!(
        unparsed[1..6],
        ["not", "JSON:", "this", "is", "not"],
        "{out}"
    );
    assert!(
        out.contains("the message body is not an EventBridge event in JSON"),
        "the reason attribute: {out}"
    );

    // Peeking consumed nothing and left nothing hidden.
    let again = ok(&conn, &["dlq", "list"]).await;
    assert_eq!(row(&again, &dlq), [dlq.as_str(), "2", "0"]);
    let mut reasons: Vec<Option<String>> = stack
        .dead_letters("StockReceivedDLQ")
        .await
        .into_iter()
        .map(|(_, reason)| reason)
        .collect();
    reasons.sort();
    assert_eq!(
        reasons,
        [
            Some("malformed_envelope".to_owned()),
            Some("quantity_out_of_range".to_owned())
        ]
    );

    // An explicit prefix; one that names no queue says so.
    let out = ok(&conn, &["dlq", "list", "--queue-prefix", prefix]).await;
    assert_eq!(row(&out, &dlq)[1], "0", "drained above: {out}");
    let out = ok(&conn, &["dlq", "--queue-prefix", "no-such-stack-", "list"]).await;
    assert!(out.starts_with("No dead-letter queues"), "{out}");
}

#[tokio::test]
async fn a_redriven_message_whose_cause_was_fixed_is_applied_once() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    let prefix = &stack.stack.prefix;
    let reservation = unique("rdv");
    let confirm = envelope(
        "storefront.web",
        "ReservationConfirmed",
        &json!({"event_id": unique("confirm"), "occurred_at": now_rfc3339(), "reservation_id": reservation, "order_id": "web-1"}),
    );
    // Confirmed before its request arrived, until the retry budget ran out.
    let resp = stack
        .run_batch("ReservationConfirmed", &[(confirm.clone(), 5)])
        .await;
    assert!(resp.batch_item_failures.is_empty(), "dead-lettered");
    let out = ok(&conn, &["dlq", "list"]).await;
    let dlq = format!("{prefix}ReservationConfirmedDLQ");
    assert_eq!(row(&out, &dlq)[1], "1", "{out}");
    assert_eq!(
        message_row(&out, "not_yet_known")[1..4],
        [
            "ReservationConfirmed",
            confirm_event_id(&confirm).as_str(),
            &format!("reservation_id={reservation}")
        ]
    );

    // The cause is fixed: the reservation exists now.
    stack
        .apply(
            "StockReceived",
            json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": "RDV-1", "quantity": 10}),
        )
        .await;
    stack
        .apply(
            "ReservationRequested",
            json!({"event_id": unique("req"), "occurred_at": now_rfc3339(), "reservation_id": reservation, "channel": "storefront", "lines": [{"sku": "RDV-1", "quantity": 3}]}),
        )
        .await;
    assert_eq!(stack.position("RDV-1").await.soft_reserved, 3);

    let out = ok(&conn, &["dlq", "redrive", "ReservationConfirmedDLQ"]).await;
    assert_eq!(
        out,
        format!("Moved 1 message from {dlq} to {prefix}ReservationConfirmedQueue.\n")
    );
    let moved = take_all(&stack, "ReservationConfirmedQueue").await;
    assert_eq!(
        moved,
        [(confirm.clone(), Vec::new())],
        "the body as it was, without the reason attributes"
    );
    let resp = stack
        .run_batch("ReservationConfirmed", &[(confirm.clone(), 1)])
        .await;
    assert!(resp.batch_item_failures.is_empty());
    let confirmed = stack.position("RDV-1").await;
    assert_eq!(
        (
            confirmed.on_hand,
            confirmed.hard_reserved,
            confirmed.soft_reserved
        ),
        (10, 3, 0)
    );

    // A second redrive finds nothing; the full name works as well as the logical id.
    let out = ok(&conn, &["dlq", "redrive", &dlq]).await;
    assert_eq!(out, format!("{dlq} has no messages to move.\n"));

    // A redrive interrupted between send and delete leaves a copy behind, and the next redrive
    // moves it again: applying it twice changes nothing.
    stack
        .sqs
        .send_message()
        .queue_url(&stack.stack.queues["ReservationConfirmedDLQ"].url)
        .message_body(&confirm)
        .send()
        .await
        .unwrap();
    let out = ok(&conn, &["dlq", "redrive", "ReservationConfirmedDLQ"]).await;
    assert!(out.starts_with("Moved 1 message"), "{out}");
    assert_eq!(deliver(&stack, "ReservationConfirmed").await, 1);
    let resp = stack
        .run_batch("ReservationConfirmed", &[(confirm, 1)])
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(stack.position("RDV-1").await, confirmed);
    assert_eq!(row(&ok(&conn, &["dlq", "list"]).await, &dlq)[1], "0");
}

fn confirm_event_id(body: &str) -> String {
    let event: stockguard_tests::serde_json::Value =
        stockguard_tests::serde_json::from_str(body).unwrap();
    event["detail"]["event_id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn redrive_finds_its_queues_or_says_why_not() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    let prefix = &stack.stack.prefix;

    let (_, result) = sg(&conn, &["dlq", "redrive", "NoSuchDLQ"]).await;
    let err = result.expect_err("an unknown queue");
    let Some(DlqError::UnknownQueue { known, .. }) = err.downcast_ref::<DlqError>() else {
        panic!("unexpected error {err:#}");
    };
    assert!(
        known.contains(&format!("{prefix}StockReceivedDLQ")),
        "{known:?}"
    );

    // What EventBridge could not deliver, with the attributes it puts on it.
    let event = envelope(
        "erp.test",
        "StockReceived",
        &json!({"event_id": unique("undelivered"), "occurred_at": now_rfc3339(), "sku": "RDV-2", "quantity": 4}),
    );
    let attribute = |v: &str| {
        aws_sdk_sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(v)
            .build()
            .unwrap()
    };
    stack
        .sqs
        .send_message()
        .queue_url(&stack.stack.queues["RuleDeliveryDLQ"].url)
        .message_body(&event)
        .message_attributes("ERROR_CODE", attribute("SDK_CLIENT_ERROR"))
        .message_attributes("ERROR_MESSAGE", attribute("queue unreachable"))
        .message_attributes(
            "TARGET_ARN",
            attribute(&stack.stack.queues["StockReceivedQueue"].arn),
        )
        .send()
        .await
        .unwrap();
    let out = ok(&conn, &["dlq", "list"]).await;
    assert_eq!(message_row(&out, "SDK_CLIENT_ERROR")[1], "StockReceived");
    assert!(
        out.contains(&format!(
            "queue unreachable (for {prefix}StockReceivedQueue)"
        )),
        "{out}"
    );

    let (_, result) = sg(&conn, &["dlq", "redrive", "RuleDeliveryDLQ"]).await;
    let err = result.expect_err("no redrive policy names the rule-delivery DLQ");
    assert!(
        matches!(
            err.downcast_ref::<DlqError>(),
            Some(DlqError::NoSourceQueue { .. })
        ),
        "{err:#}"
    );
    assert!(err.to_string().contains("--to QUEUE"), "{err}");
    let (_, result) = sg(
        &conn,
        &[
            "dlq",
            "redrive",
            "RuleDeliveryDLQ",
            "--to",
            "RuleDeliveryDLQ",
        ],
    )
    .await;
    assert!(matches!(
        result.unwrap_err().downcast_ref::<DlqError>(),
        Some(DlqError::SameQueue { .. })
    ));
    let (_, result) = sg(
        &conn,
        &["dlq", "redrive", "RuleDeliveryDLQ", "--to", "NoSuchQueue"],
    )
    .await;
    assert!(matches!(
        result.unwrap_err().downcast_ref::<DlqError>(),
        Some(DlqError::UnknownQueue { .. })
    ));

    // A send that fails leaves the message in the dead-letter queue: a FIFO queue refuses a
    // message without a group id.
    let fifo = format!("{prefix}Refusing.fifo");
    stack
        .sqs
        .create_queue()
        .queue_name(&fifo)
        .attributes(aws_sdk_sqs::types::QueueAttributeName::FifoQueue, "true")
        .send()
        .await
        .unwrap();
    let (out, result) = sg(&conn, &["dlq", "redrive", "RuleDeliveryDLQ", "--to", &fifo]).await;
    let err = result.expect_err("the send failed");
    assert!(
        matches!(
            err.downcast_ref::<DlqError>(),
            Some(DlqError::Incomplete {
                moved: 0,
                failed: 1,
                ..
            })
        ),
        "{err:#}"
    );
    let dlq = format!("{prefix}RuleDeliveryDLQ");
    assert!(
        out.contains(&format!("not sent to {fifo}, left in {dlq}")),
        "{out}"
    );
    assert_eq!(
        row(&ok(&conn, &["dlq", "list"]).await, &dlq),
        [dlq.as_str(), "0", "1"],
        "kept, hidden for a minute"
    );
    // Make it visible again rather than wait.
    let url = &stack.stack.queues["RuleDeliveryDLQ"].url;
    stack.sqs.purge_queue().queue_url(url).send().await.unwrap();
    stack
        .sqs
        .send_message()
        .queue_url(url)
        .message_body(&event)
        .send()
        .await
        .unwrap();

    let out = ok(
        &conn,
        &[
            "dlq",
            "redrive",
            "RuleDeliveryDLQ",
            "--to",
            "StockReceivedQueue",
        ],
    )
    .await;
    assert_eq!(
        out,
        format!("Moved 1 message from {prefix}RuleDeliveryDLQ to {prefix}StockReceivedQueue.\n")
    );
    assert_eq!(deliver(&stack, "StockReceived").await, 1);
    assert_eq!(stack.position("RDV-2").await.on_hand, 4);
}

#[tokio::test]
async fn reconcile_prints_the_drift_table_and_repairs() {
    use stockguard_domain::channel::BufferPolicy;
    use stockguard_tests::channels::{FakeChannels, FakeOptions, listing_key};
    // SAFETY: set before this test process reads it; Amazon's processing window is not awaited here.
    unsafe { std::env::set_var("STOCKGUARD_AMAZON_PROCESSING_MS", "0") };
    unsafe { std::env::set_var("STOCKGUARD_IN_FLIGHT_GRACE_MS", "0") };
    let stack = TestStack::new().await;
    let fakes = FakeChannels::start(FakeOptions::default()).await.unwrap();
    fakes
        .amazon
        .update_settings(|s| s.amazon_processing_delay_ms = 0);
    stack
        .configure_channels(&fakes, BufferPolicy::default(), &["REC-1"])
        .await;
    stack
        .apply("StockReceived", json!({"event_id": "rec-rcv", "occurred_at": now_rfc3339(), "sku": "REC-1", "quantity": 6}))
        .await;
    let mut connection = connection_of(&stack).await;
    connection.bus = Some(stack.stack.bus.clone());
    let out = ok(&connection, &["reconcile"]).await;
    for kind in ["amazon", "ebay", "shopify", "walmart"] {
        let cells = row(&out, kind);
        assert_eq!(cells, [kind, "REC-1", "6", "0", "-6", "yes"], "{out}");
        assert_eq!(
            stockguard_tests::channels::fake(&fakes, kind).shown(&listing_key(kind, "REC-1")),
            Some(6)
        );
    }
    assert!(
        out.contains("Checked 4 listings across 4 channels"),
        "{out}"
    );
    let out = ok(&connection, &["reconcile"]).await;
    assert!(out.contains("No drift"), "{out}");
    let run = json_of(&connection, &["reconcile"]).await;
    assert_eq!(
        (
            &run["channels"],
            &run["checked"],
            &run["drift"],
            &run["errors"]
        ),
        (&json!(4), &json!(4), &json!([]), &json!([])),
        "{run}"
    );
    // Walmart shows one fewer, as after a sale not polled yet: reported, the push held back.
    stockguard_tests::channels::fake(&fakes, "walmart")
        .set_shown(&listing_key("walmart", "REC-1"), 5);
    let out = ok(&connection, &["reconcile"]).await;
    assert_eq!(
        row(&out, "walmart"),
        ["walmart", "REC-1", "6", "5", "-1", "deferred"],
        "{out}"
    );
    assert!(out.contains("1 repair deferred"), "{out}");
    assert_eq!(
        stockguard_tests::channels::fake(&fakes, "walmart").shown(&listing_key("walmart", "REC-1")),
        Some(5)
    );
}

#[tokio::test]
async fn the_binary_finds_every_endpoint_in_the_stack_file() {
    let stack = TestStack::new().await;
    let dir = std::env::temp_dir().join(unique("stockguard-stack-file"));
    std::fs::create_dir_all(dir.join(".local")).unwrap();
    let description = json!({
        "aws_endpoint_url": std::env::var("AWS_ENDPOINT_URL").expect("AWS_ENDPOINT_URL"),
        // Set when the emulator runs DynamoDB apart (the default), as `make local-up` writes it.
        "aws_endpoint_url_dynamodb": std::env::var("AWS_ENDPOINT_URL_DYNAMODB").ok(),
        "region": "us-east-1",
        "table": stack.stack.table,
        "event_bus": stack.stack.bus,
        "api_url": null,
        "channels": {},
    });
    std::fs::write(dir.join(".local/stack.json"), description.to_string()).unwrap();
    let out = Process::new(env!("CARGO_BIN_EXE_stockguard"))
        .args(["position", "FILE-1"])
        .current_dir(&dir)
        .env_remove("STOCKGUARD_TABLE")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_ENDPOINT_URL_DYNAMODB")
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("running stockguard");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("available      0"), "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

// --json: every command prints one JSON document holding what its text shows.

#[tokio::test]
async fn channels_json_holds_what_the_tables_show() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    assert_eq!(
        json_of(&conn, &["channels", "list"]).await,
        json!({"channels": []})
    );

    let set = json_of(
        &conn,
        &[
            "channels",
            "set",
            "amazon",
            "--kind",
            "amazon",
            "--endpoint",
            "https://sp.example.com",
            "--max-buffer",
            "20",
            "--low-stock-units",
            "5",
        ],
    )
    .await;
    assert_eq!(set["created"], true, "{set}");
    let channel = &set["channel"];
    assert_eq!(channel["name"], "amazon");
    assert_eq!(channel["buffer_mode"], "dynamic");
    assert_eq!(channel["max_buffer"], 20);
    assert_eq!(channel["low_stock_units"], 5);
    assert_eq!(channel["maximum"], Value::Null, "`-` in the text");
    assert_eq!(channel["seller_id"], Value::Null);
    assert_eq!(channel["credentials"], "stockguard/channels/amazon");
    let notes: Vec<&str> = set["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert_eq!(notes.len(), 2, "{set}");
    assert!(notes[0].starts_with("credentials default to the secret"));
    assert!(notes[1].contains("--seller-id and --marketplace-id"));

    ok(
        &conn,
        &[
            "channels",
            "set",
            "walmart",
            "--kind",
            "walmart",
            "--endpoint",
            "https://wm.example.com",
            "--buffer-units",
            "2",
            "--buffer-percent",
            "10",
            "--maximum",
            "40",
        ],
    )
    .await;
    let over = json_of(
        &conn,
        &[
            "channels",
            "set",
            "walmart",
            "--sku",
            "TEE-1",
            "--buffer-units",
            "5",
        ],
    )
    .await;
    assert_eq!(
        over,
        json!({"created": true, "channel": "walmart", "sku": "TEE-1", "buffer_units": 5,
               "buffer_percent": 10.0, "channel_buffer_units": 2,
               "channel_buffer_percent": 10.0, "notes": []})
    );

    let list = json_of(&conn, &["channels", "list"]).await;
    let table = ok(&conn, &["channels", "list"]).await;
    let channels = list["channels"].as_array().unwrap();
    let names: Vec<&str> = channels
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["amazon", "walmart"]);
    for c in channels {
        let name = c["name"].as_str().unwrap();
        let enabled = if c["enabled"] == true { "yes" } else { "no" };
        let cells = row(&table, name);
        assert_eq!(
            cells[..6],
            [
                name,
                c["kind"].as_str().unwrap(),
                enabled,
                c["mode"].as_str().unwrap(),
                &c["buffer_units"].to_string(),
                &c["buffer_percent"].as_f64().unwrap().to_string(),
            ],
            "{table}"
        );
    }
    let walmart = &channels[1];
    assert_eq!(walmart["mode"], "static");
    assert_eq!(walmart["maximum"], 40);
    assert_eq!(walmart["low_stock_units"], 0, "`off` in the text");
    assert_eq!(channels[0]["low_stock_max_delay_ms"], 60_000);
}

#[tokio::test]
async fn listings_import_json_counts_what_was_stored_or_lists_the_rejected_rows() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["shopify", "ebay"]).await;
    ok(&conn, &["channels", "set", "ebay", "--enabled", "false"]).await;

    let file = csv_file("shopify,JS-1,1001,77,,\nshopify,JS-2,1002,77,,\nebay,JS-1,eb-1,,off-1,\n");
    let path = file.to_str().unwrap();
    let report = json_of(&conn, &["listings", "import", path]).await;
    assert_eq!(
        report,
        json!({"file": path, "stored": 3, "rejected": [], "channels": [
            {"channel": "ebay", "listings": 1, "enabled": false},
            {"channel": "shopify", "listings": 2, "enabled": true},
        ]})
    );
    std::fs::remove_file(&file).unwrap();

    let bad = csv_file("shopify,JS-3,1003,77,,\nshopify,JS-4,,77,,\n");
    let (out, result) = sg(
        &conn,
        &["--json", "listings", "import", bad.to_str().unwrap()],
    )
    .await;
    let err = result.expect_err("a rejected row refuses the file");
    assert!(err.is::<ImportRefused>(), "{err:#}");
    let report = parse_one_document(&out);
    assert_eq!(report["stored"], 0);
    assert_eq!(
        report["rejected"],
        json!([{"line": 3, "reason": "listing_id is empty"}])
    );
    std::fs::remove_file(bad).unwrap();
}

#[tokio::test]
async fn position_json_holds_the_buckets_and_each_channels_row() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    stack
        .apply(
            "StockReceived",
            json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": "POSJ-1", "quantity": 10}),
        )
        .await;
    configure_channels(&conn, &["walmart", "ebay", "shopify"]).await;
    ok(
        &conn,
        &["channels", "set", "walmart", "--buffer-units", "2"],
    )
    .await;
    ok(&conn, &["channels", "set", "shopify", "--enabled", "false"]).await;

    let position = json_of(&conn, &["position", "POSJ-1"]).await;
    let text = ok(&conn, &["position", "POSJ-1"]).await;
    assert_eq!(position["sku"], "POSJ-1");
    assert_eq!(
        (
            &position["on_hand"],
            &position["hard_reserved"],
            &position["soft_reserved"],
            &position["available"]
        ),
        (&json!(10), &json!(0), &json!(0), &json!(10))
    );
    assert!(position["version"].as_u64().unwrap() >= 1, "{position}");
    assert_eq!(position["disabled_channels"], json!(["shopify"]));
    let channels = position["channels"].as_array().unwrap();
    assert_eq!(channels.len(), 2, "{position}");
    let walmart = channels.iter().find(|c| c["channel"] == "walmart").unwrap();
    assert_eq!(
        walmart,
        &json!({"channel": "walmart", "should_show": 8, "buffer_mode": "static", "buffer": 2,
                "static_buffer_units": 2, "static_buffer_percent": 0.0, "sku_override": false,
                "low_stock": false, "maximum": null, "listing": null, "last_acknowledged": null})
    );
    let ebay = channels.iter().find(|c| c["channel"] == "ebay").unwrap();
    assert_eq!(ebay["buffer_mode"], "dynamic");
    assert_eq!(ebay["static_buffer_units"], Value::Null);
    for c in channels {
        let cells = row(&text, c["channel"].as_str().unwrap());
        assert_eq!(cells[1], c["should_show"].to_string(), "{text}");
    }
    assert_eq!(
        row(&text, "ebay")[2..4],
        ["dynamic:", ebay["buffer"].to_string().as_str()]
    );
}

#[tokio::test]
async fn buffers_explain_json_holds_each_factor_and_the_reason() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    stack
        .apply(
            "StockReceived",
            json!({"event_id": unique("rcv"), "occurred_at": now_rfc3339(), "sku": "EXJ-1", "quantity": 12}),
        )
        .await;
    configure_channels(&conn, &["walmart", "ebay"]).await;
    ok(
        &conn,
        &["channels", "set", "walmart", "--buffer-units", "3"],
    )
    .await;

    let explained = json_of(&conn, &["buffers", "explain", "EXJ-1"]).await;
    let text = ok(&conn, &["buffers", "explain", "EXJ-1"]).await;
    assert_eq!(explained["sku"], "EXJ-1");
    assert_eq!(explained["available"], 12);
    assert_eq!(explained["default_reservation_ttl_seconds"], 900);
    assert_eq!(explained["reservation_ttl_shortened"], false);
    assert_eq!(explained["disabled_channels"], json!([]));
    let channels = explained["channels"].as_array().unwrap();
    let names: Vec<&str> = channels
        .iter()
        .map(|c| c["channel"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ebay", "walmart"]);
    for c in channels {
        let name = c["channel"].as_str().unwrap();
        let cells = row(&text, name);
        assert_eq!(cells[1], c["mode"], "{text}");
        assert_eq!(cells[10], c["buffer"].to_string(), "{text}");
        assert_eq!(cells[11], c["shown"].to_string(), "{text}");
        assert_eq!(
            cells[12..].join("_"),
            c["decided_by"].as_str().unwrap(),
            "{text}"
        );
        let why = c["why"].as_str().unwrap();
        assert!(
            text.lines()
                .any(|l| l.trim_start().starts_with(name) && l.ends_with(why)),
            "{why} in\n{text}"
        );
    }
    let walmart = &channels[1];
    assert_eq!(
        (&walmart["mode"], &walmart["buffer"], &walmart["shown"]),
        (&json!("static"), &json!(3), &json!(9))
    );
    assert_eq!(walmart["decided_by"], "static_policy");
    assert!(walmart["delay_p95_ms"].is_i64() && walmart["health_factor"].is_f64());
}

#[tokio::test]
async fn dlq_json_lists_depths_and_dead_letters_and_reports_a_redrive() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    let prefix = &stack.stack.prefix;
    let dlq = format!("{prefix}StockReceivedDLQ");
    let bad = envelope(
        "erp.test",
        "StockReceived",
        &json!({"event_id": "dlqj-1", "occurred_at": now_rfc3339(), "sku": "DLQJ-1", "quantity": 0}),
    );
    let resp = stack.run_batch("StockReceived", &[(bad, 1)]).await;
    assert!(resp.batch_item_failures.is_empty(), "dead-lettered");

    let listed = json_of(&conn, &["dlq", "list"]).await;
    let queues = listed["queues"].as_array().unwrap();
    let dead_letter_ids = stack.stack.queues.keys().filter(|k| k.ends_with("DLQ"));
    assert_eq!(queues.len(), dead_letter_ids.count(), "{listed}");
    let received = queues.iter().find(|q| q["queue"] == dlq.as_str()).unwrap();
    assert_eq!(received["logical_id"], "StockReceivedDLQ");
    assert_eq!(received["url"], stack.stack.queues["StockReceivedDLQ"].url);
    assert_eq!(
        (&received["messages"], &received["in_flight"]),
        (&json!(1), &json!(0))
    );
    let letters = received["first_messages"].as_array().unwrap();
    assert_eq!(letters.len(), 1, "{received}");
    assert_eq!(letters[0]["event"], "StockReceived dlqj-1 sku=DLQJ-1");
    assert!(letters[0]["reason_code"].is_string(), "{received}");
    assert!(letters[0]["reason"].is_string(), "{received}");
    assert!(letters[0]["dead_lettered_at"].is_string(), "{received}");
    let empty = queues
        .iter()
        .find(|q| q["logical_id"] == "StockCountedDLQ")
        .unwrap();
    assert_eq!(empty["first_messages"], json!([]));
    let text = ok(&conn, &["dlq", "list"]).await;
    let cells = message_row(&text, letters[0]["reason_code"].as_str().unwrap());
    assert_eq!(cells[1..4], ["StockReceived", "dlqj-1", "sku=DLQJ-1"]);

    let redriven = json_of(&conn, &["dlq", "redrive", "StockReceivedDLQ"]).await;
    assert_eq!(
        redriven,
        json!({"from": dlq, "to": format!("{prefix}StockReceivedQueue"), "moved": 1,
               "failed": [], "in_flight_at_start": 0})
    );
    let again = json_of(&conn, &["dlq", "redrive", "StockReceivedDLQ"]).await;
    assert_eq!(again["moved"], 0);
}

#[tokio::test]
async fn reconcile_json_with_no_channel_enabled() {
    let stack = TestStack::new().await;
    let conn = connection_with_bus(&stack).await;
    let run = json_of(&conn, &["reconcile"]).await;
    assert_eq!(
        run,
        json!({"channels": 0, "checked": 0, "drift": [], "drift_units": 0, "drift_percent": 0.0,
               "skipped_in_processing_window": 0, "skipped_in_flight": 0,
               "acknowledged_late": 0, "resume_at": null, "errors": []})
    );
    let text = ok(&conn, &["reconcile"]).await;
    assert_eq!(text, "No channel is enabled; nothing to reconcile.\n");

    let mut no_bus = connection_of(&stack).await;
    no_bus.bus = None;
    let (_, result) = sg(&no_bus, &["--json", "reconcile"]).await;
    let err = result.expect_err("reconcile publishes on the bus");
    assert!(err.to_string().contains("STOCKGUARD_BUS"), "{err:#}");
}

// replay: EventBridge's archive and replay, as the emulator implements them (StartReplay replays
// every archived event at once, whatever the window).

async fn create_archive(stack: &TestStack, name: &str, bus_arn: &str) -> String {
    stack
        .events
        .create_archive()
        .archive_name(name)
        .event_source_arn(bus_arn)
        .event_pattern(json!({"source": [{"anything-but": {"prefix": "stockguard."}}]}).to_string())
        .send()
        .await
        .expect("CreateArchive")
        .archive_arn
        .expect("the archive's ARN")
}

#[tokio::test]
async fn replay_sends_archived_events_back_and_they_are_applied_once() {
    let stack = TestStack::new().await;
    let conn = connection_with_bus(&stack).await;
    let from = at(-60_000);
    // The archive template.yaml declares (InboundArchive), on the test's bus.
    let archive = format!("{}inbound", stack.stack.prefix);
    let archive_arn = create_archive(&stack, &archive, &stack.stack.bus_arn).await;
    let sku = "RPL-1";
    let event_id = unique("rpl");
    stack
        .put_event(
            "erp.test",
            "StockReceived",
            &json!({"event_id": event_id, "occurred_at": now_rfc3339(), "sku": sku, "quantity": 7}),
        )
        .await;
    assert_eq!(deliver(&stack, "StockReceived").await, 1);
    let applied = stack.position(sku).await;
    assert_eq!(applied.on_hand, 7);

    // Without --archive: the only archive of the stack's bus.
    let report = json_of(&conn, &["replay", "--from", &from, "--to", "now"]).await;
    assert_eq!(report["state"], "COMPLETED", "{report}");
    assert_eq!(report["archive"], archive.as_str());
    assert_eq!(report["archive_arn"], archive_arn.as_str());
    assert_eq!(report["bus_arn"], stack.stack.bus_arn.as_str());
    assert_eq!(report["from"], from.as_str());
    assert!(
        report["replay"]
            .as_str()
            .unwrap()
            .starts_with("stockguard-"),
        "{report}"
    );
    assert!(
        report["applied_once"]
            .as_str()
            .unwrap()
            .starts_with("Replayed events are applied once"),
        "{report}"
    );

    // The event is back in its queue, marked as replayed, and applying it changes nothing.
    let replayed = take_all(&stack, "StockReceivedQueue").await;
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    let body: Value = serde_json::from_str(&replayed[0].0).unwrap();
    assert_eq!(body["detail"]["event_id"], event_id.as_str(), "{body}");
    let resp = stack
        .run_batch("StockReceived", &[(replayed[0].0.clone(), 1)])
        .await;
    assert!(resp.batch_item_failures.is_empty());
    assert_eq!(stack.position(sku).await, applied, "applied once");

    // The stack's outputs name the archive by ARN; the text says the same.
    let mut named = conn.clone();
    named.stack.archive = Some(archive_arn.clone());
    let text = ok(&named, &["replay", "--from", &from, "--to", "now"]).await;
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("Replay stockguard-") && first.ends_with(": COMPLETED"),
        "{text}"
    );
    assert!(
        text.contains(&format!("  archive        {archive}\n")),
        "{text}"
    );
    assert!(text.contains("applied once"), "{text}");
    assert_eq!(deliver(&stack, "StockReceived").await, 1);
    assert_eq!(stack.position(sku).await, applied);

    // --rule: the replay is limited to the rules named (the emulator records the filter but
    // replays to every rule all the same).
    let rule = &stack.stack.rules["StockReceivedRule"];
    let report = json_of(
        &conn,
        &[
            "replay",
            "--from",
            &from,
            "--to",
            "now",
            "--archive",
            &archive,
            "--rule",
            rule,
        ],
    )
    .await;
    assert_eq!(report["state"], "COMPLETED", "{report}");
    let rules = report["rules"].as_array().unwrap();
    assert_eq!(rules.len(), 1, "{report}");
    assert!(
        rules[0]
            .as_str()
            .unwrap()
            .ends_with(&format!("rule/{}/{rule}", stack.stack.bus))
            || rules[0]
                .as_str()
                .unwrap()
                .ends_with(&format!("rule/{rule}")),
        "{report}"
    );
    assert_eq!(deliver(&stack, "StockReceived").await, 1);
    assert_eq!(stack.position(sku).await, applied);
    let (_, result) = sg(
        &conn,
        &[
            "replay",
            "--from",
            &from,
            "--to",
            "now",
            "--archive",
            &archive,
            "--rule",
            "no-such-rule",
        ],
    )
    .await;
    let err = format!("{:#}", result.expect_err("an unknown rule"));
    assert!(err.contains("has no rule no-such-rule"), "{err}");

    // Refusals, each before anything is replayed.
    let (_, result) = sg(
        &conn,
        &[
            "replay",
            "--from",
            &from,
            "--to",
            "now",
            "--archive",
            "no-such-archive",
        ],
    )
    .await;
    let err = format!("{:#}", result.expect_err("an unknown archive"));
    assert!(err.contains("there is no archive no-such-archive"), "{err}");

    let other_bus = format!("{}other-bus", stack.stack.prefix);
    let other_bus_arn = stack
        .events
        .create_event_bus()
        .name(&other_bus)
        .send()
        .await
        .expect("CreateEventBus")
        .event_bus_arn
        .unwrap();
    let foreign = format!("{}foreign", stack.stack.prefix);
    create_archive(&stack, &foreign, &other_bus_arn).await;
    let (_, result) = sg(
        &conn,
        &[
            "replay",
            "--from",
            &from,
            "--to",
            "now",
            "--archive",
            &foreign,
        ],
    )
    .await;
    let err = format!("{:#}", result.expect_err("another bus's archive"));
    assert!(err.contains("not of the stack's bus"), "{err}");

    let second = format!("{}second", stack.stack.prefix);
    create_archive(&stack, &second, &stack.stack.bus_arn).await;
    let (_, result) = sg(&conn, &["replay", "--from", &from, "--to", "now"]).await;
    let err = format!("{:#}", result.expect_err("two archives of the bus"));
    assert!(err.contains("has 2 archives"), "{err}");
    assert!(err.contains("--archive"), "{err}");

    let (_, result) = sg(
        &conn,
        &[
            "replay",
            "--from",
            "2020-01-01T00:00:00Z",
            "--to",
            "now",
            "--archive",
            &archive,
        ],
    )
    .await;
    let err = format!(
        "{:#}",
        result.expect_err("a window older than event_ids are kept")
    );
    assert!(err.contains("--allow-reapply"), "{err}");
    assert!(take_all(&stack, "StockReceivedQueue").await.is_empty());

    assert!(
        Cli::try_parse_from(["stockguard", "replay", "--from", "yesterday", "--to", "now"])
            .is_err()
    );
}

// The binary against AWS-style targets: --stack-name, --profile, --region.

/// A CloudFormation stack in the emulator whose outputs are `outputs` (its one resource is a
/// queue of no use).
async fn cloudformation_stack(stack: &TestStack, outputs: &[(&str, &str)]) -> String {
    let name = unique("sg-cfn");
    let mut template = json!({
        "AWSTemplateFormatVersion": "2010-09-09",
        "Resources": {"Marker": {"Type": "AWS::SQS::Queue",
                                 "Properties": {"QueueName": unique("cfn-marker")}}},
        "Outputs": {},
    });
    for (key, value) in outputs {
        template["Outputs"][*key] = json!({"Value": value});
    }
    aws_sdk_cloudformation::Client::new(&stack.config)
        .create_stack()
        .stack_name(&name)
        .template_body(template.to_string())
        .send()
        .await
        .expect("CreateStack");
    name
}

/// Runs the binary in an empty directory, with the emulator's endpoints and `env`, without
/// STOCKGUARD_TABLE or STOCKGUARD_BUS, and without each of `removed`.
fn stockguard_in(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
    removed: &[&str],
) -> std::process::Output {
    let mut command = Process::new(env!("CARGO_BIN_EXE_stockguard"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("STOCKGUARD_TABLE")
        .env_remove("STOCKGUARD_BUS")
        .env_remove("STOCKGUARD_QUEUE_PREFIX")
        .env_remove("AWS_PROFILE")
        // Never the instance metadata service, whatever the credentials.
        .env("AWS_EC2_METADATA_DISABLED", "true");
    for (name, value) in env {
        command.env(name, value);
    }
    for name in removed {
        command.env_remove(name);
    }
    command.output().expect("running stockguard")
}

fn empty_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(name));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The one line the binary printed on stderr.
fn error_line(out: &std::process::Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(stderr.starts_with("error: "), "{stderr}");
    assert!(!stderr.contains("{ "), "no Debug rendering: {stderr}");
    stderr
}

#[tokio::test]
async fn the_binary_reads_a_deployed_stack_from_its_cloudformation_outputs() {
    let stack = TestStack::new().await;
    let queues = &stack.stack.queues;
    let name = cloudformation_stack(
        &stack,
        &[
            ("StateTableName", &stack.stack.table),
            ("EventBusName", &stack.stack.bus),
            ("StockReceivedDLQUrl", &queues["StockReceivedDLQ"].url),
            ("OrderPlacedDLQUrl", &queues["OrderPlacedDLQ"].url),
            ("ReservationsApiUrl", "https://api.example.com"),
        ],
    )
    .await;
    let conn = connection_of(&stack).await;
    configure_channels(&conn, &["walmart"]).await;
    let dir = empty_dir("stockguard-cfn");
    let run = |args: &[&str]| stockguard_in(&dir, args, &[], &[]);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let out = run(&["--stack-name", &name, "channels", "list", "--json"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let list = parse_one_document(&text(&out.stdout));
    assert_eq!(list["channels"][0]["name"], "walmart", "{list}");

    // The dead-letter queues are the ones the outputs name, whatever else is named like them.
    let out = run(&["dlq", "list", "--json", "--stack-name", &name]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = parse_one_document(&text(&out.stdout));
    let ids: Vec<&str> = listed["queues"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["logical_id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["OrderPlacedDLQ", "StockReceivedDLQ"], "{listed}");
    let out = run(&["--stack-name", &name, "dlq", "list"]);
    let table = text(&out.stdout);
    let dlq = format!("{}StockReceivedDLQ", stack.stack.prefix);
    assert_eq!(row(&table, &dlq), [dlq.as_str(), "0", "0"]);

    // --stack-name wins over STOCKGUARD_TABLE.
    let out = stockguard_in(
        &dir,
        &["--stack-name", &name, "--json", "channels", "list"],
        &[("STOCKGUARD_TABLE", "not-this-table")],
        &[],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));

    // A stack without the table's output is named with what it has.
    let partial = cloudformation_stack(&stack, &[("EventBusName", &stack.stack.bus)]).await;
    let out = run(&["--stack-name", &partial, "channels", "list"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let line = error_line(&out);
    assert!(
        line.contains(&format!("stack {partial} has no output StateTableName")),
        "{line}"
    );
    assert!(line.contains("its outputs are EventBusName"), "{line}");
    assert!(!line.contains("make local-up"), "{line}");

    let out = run(&["--stack-name", "sg-no-such-stack", "position", "X-1"]);
    let line = error_line(&out);
    assert!(
        line.contains("there is no CloudFormation stack sg-no-such-stack in us-east-1"),
        "{line}"
    );
    assert!(!line.contains("make local-up"), "{line}");

    // --region: the stack is where it was created, not in another region.
    let out = run(&[
        "--stack-name",
        &name,
        "--region",
        "eu-west-1",
        "channels",
        "list",
    ]);
    let line = error_line(&out);
    assert!(
        line.contains(&format!(
            "there is no CloudFormation stack {name} in eu-west-1"
        )),
        "{line}"
    );

    // --json failures: nothing on stdout, the error on stderr.
    let out = run(&[
        "--stack-name",
        &name,
        "--json",
        "buffers",
        "explain",
        "NEVER-STOCKED",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty(), "{}", text(&out.stdout));
    assert!(error_line(&out).contains("SKU NEVER-STOCKED is unknown"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn profiles_sign_in_with_credential_process_and_say_how_to_sign_in_with_sso() {
    let stack = TestStack::new().await;
    let name = cloudformation_stack(&stack, &[("StateTableName", &stack.stack.table)]).await;
    let home = empty_dir("stockguard-home");
    let process = home.join("credentials.sh");
    std::fs::write(
        &process,
        "#!/bin/sh\necho '{\"Version\": 1, \"AccessKeyId\": \"testing\", \"SecretAccessKey\": \"testing\"}'\n",
    )
    .unwrap();
    std::fs::set_permissions(
        &process,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = home.join("config");
    std::fs::write(
        &config,
        format!(
            "[profile sg-process]\nregion = us-east-1\ncredential_process = {}\n\n\
             [profile sg-failing]\nregion = us-east-1\ncredential_process = /bin/false\n\n\
             [profile sg-sso]\nregion = us-east-1\nsso_session = sg\n\
             sso_account_id = 123456789012\nsso_role_name = Operator\n\n\
             [sso-session sg]\nsso_start_url = https://example.awsapps.com/start\n\
             sso_region = us-east-1\n",
            process.display()
        ),
    )
    .unwrap();
    // A local stack file beside: a --profile means AWS, so it is not read.
    std::fs::create_dir_all(home.join(".local")).unwrap();
    std::fs::write(
        home.join(".local/stack.json"),
        json!({"aws_endpoint_url": "http://127.0.0.1:9", "region": "us-east-1",
               "table": "local-StateTable"})
        .to_string(),
    )
    .unwrap();
    let home_text = home.to_str().unwrap();
    let config_text = config.to_str().unwrap();
    let credentials = home.join("no-credentials");
    let env = [
        ("HOME", home_text),
        ("AWS_CONFIG_FILE", config_text),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()),
    ];
    // Only the profile gives credentials and the region.
    let removed = [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
    ];
    let run = |args: &[&str]| stockguard_in(&home, args, &env, &removed);
    let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();

    let out = run(&[
        "--profile",
        "sg-process",
        "--stack-name",
        &name,
        "channels",
        "list",
        "--json",
    ]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(
        parse_one_document(&text(&out.stdout)),
        json!({"channels": []})
    );

    let out = run(&[
        "--profile",
        "sg-failing",
        "--stack-name",
        &name,
        "channels",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.contains("the credential_process of profile sg-failing gave no credentials"),
        "{line}"
    );
    // A profile on the command line wins over keys in the environment, as with the AWS CLI.
    let with_keys = stockguard_in(
        &home,
        &[
            "--profile",
            "sg-failing",
            "--stack-name",
            &name,
            "channels",
            "list",
        ],
        &[
            env[0],
            env[1],
            env[2],
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
        ],
        &removed[2..],
    );
    assert_eq!(with_keys.status.code(), Some(1));
    assert!(error_line(&with_keys).contains("credential_process of profile sg-failing"));

    let out = run(&[
        "--profile",
        "sg-sso",
        "--stack-name",
        &name,
        "channels",
        "list",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(line.contains("aws sso login --profile sg-sso"), "{line}");
    assert!(!line.contains("feature"), "SSO is built in: {line}");

    let out = run(&["--profile", "sg-process", "channels", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let line = error_line(&out);
    assert!(
        line.contains("--profile sg-process chooses the AWS account"),
        "{line}"
    );
    assert!(line.contains("--stack-name"), "{line}");
    assert!(!line.contains("make local-up"), "{line}");
    let out = run(&[
        "--profile",
        "sg-typo",
        "--stack-name",
        &name,
        "channels",
        "list",
    ]);
    let line = error_line(&out);
    assert!(line.contains("there is no profile sg-typo"), "{line}");
    assert!(line.contains(config_text), "{line}");
    std::fs::remove_dir_all(home).unwrap();
}

#[tokio::test]
async fn compensation_shows_the_defaults_and_sets_only_what_is_given() {
    let stack = TestStack::new().await;
    let conn = connection_of(&stack).await;
    let shown = json_of(&conn, &["compensation", "show"]).await;
    assert_eq!(shown["policy"], "compensate");
    assert_eq!(shown["max_wait_ms"], 24 * 3_600_000);
    assert_eq!(shown["cancel_penalty"]["amazon"], 10.0);

    let text = ok(
        &conn,
        &[
            "compensation",
            "set",
            "--policy",
            "notify_only",
            "--max-wait",
            "2h",
            "--cancel-penalty",
            "ebay=3",
        ],
    )
    .await;
    assert!(text.contains("notify_only"), "{text}");
    let stored = stack.deps.store.compensation_policy().await.unwrap();
    assert_eq!(
        stored.policy,
        stockguard_domain::compensation::Policy::NotifyOnly
    );
    assert_eq!(stored.max_wait_ms, 2 * 3_600_000);
    assert_eq!(stored.cancel_penalty["ebay"], 3.0);
    assert_eq!(stored.cancel_penalty["amazon"], 10.0, "others kept");

    // Only the default penalty changes; the rest stays as set.
    let shown = json_of(&conn, &["compensation", "set", "--default-penalty", "4"]).await;
    assert_eq!(
        (
            shown["policy"].as_str(),
            shown["default_penalty"].as_f64(),
            shown["max_wait_ms"].as_i64()
        ),
        (Some("notify_only"), Some(4.0), Some(2 * 3_600_000))
    );

    let (_, nothing) = sg(&conn, &["compensation", "set"]).await;
    assert!(nothing.is_err());
    for bad in [
        ["--policy", "cancel"],
        ["--max-wait", "soon"],
        ["--cancel-penalty", "ebay"],
    ] {
        let parsed =
            Cli::try_parse_from(["stockguard", "compensation", "set"].into_iter().chain(bad));
        assert!(parsed.is_err(), "{bad:?}");
    }
}
