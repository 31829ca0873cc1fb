//! The CLI's commands against the emulator: each test provisions its own stack, runs commands
//! in-process against it and reads what they printed; one test runs the real binary.
//! Run with `infra/with-emulator.sh cargo test -p stockguard-cli`.

use std::path::PathBuf;
use std::process::Command as Process;

use clap::Parser;
use stockguard_adapters::StateStore;
use stockguard_adapters::channel_store::SyncRecord;
use stockguard_cli::listings::ImportRefused;
use stockguard_cli::{Cli, Stack, Terminal, connect, run};
use stockguard_domain::{ChannelName, Sku};
use stockguard_tests::serde_json::json;
use stockguard_tests::{TestStack, now_rfc3339, unique};

async fn store_of(stack: &TestStack) -> StateStore {
    let stack = Stack::explicit(
        &stack.stack.table,
        std::env::var("AWS_ENDPOINT_URL").ok(),
        std::env::var("AWS_REGION").ok(),
    );
    connect(&stack).await.expect("connecting to the test stack")
}

/// Runs `stockguard ARGS` in-process: what it printed, and how it ended.
async fn sg(store: &StateStore, args: &[&str]) -> (String, anyhow::Result<()>) {
    let cli = Cli::try_parse_from(std::iter::once("stockguard").chain(args.iter().copied()))
        .unwrap_or_else(|e| panic!("stockguard {args:?}: {e}"));
    let mut out = Vec::new();
    let result = run(store, &cli.command, &mut out, Terminal::default()).await;
    (String::from_utf8(out).expect("output is UTF-8"), result)
}

/// Runs a command that must succeed and returns its output.
async fn ok(store: &StateStore, args: &[&str]) -> String {
    let (out, result) = sg(store, args).await;
    if let Err(e) = result {
        panic!("stockguard {args:?} failed: {e:#}\n{out}");
    }
    out
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

async fn configure_channels(store: &StateStore, names: &[&str]) {
    for name in names {
        let endpoint = format!("http://127.0.0.1:9/{name}");
        ok(
            store,
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
    let store = store_of(&stack).await;

    let (out, result) = sg(&store, &["channels", "list"]).await;
    result.unwrap();
    assert!(out.contains("No channels are configured"), "{out}");

    let (_, result) = sg(
        &store,
        &["channels", "set", "shopify", "--buffer-units", "2"],
    )
    .await;
    let err = result.expect_err("a new channel without --kind and --endpoint");
    assert!(err.to_string().contains("needs --kind"), "{err:#}");

    let out = ok(
        &store,
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
    assert!(out.contains("buffer percent  12.5\n"), "{out}");
    assert!(out.contains("maximum         40\n"), "{out}");

    let out = ok(
        &store,
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
        &store,
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

    let out = ok(&store, &["channels", "list"]).await;
    let header: Vec<&str> = out.lines().next().unwrap().split_whitespace().collect();
    assert_eq!(
        header,
        [
            "NAME",
            "KIND",
            "ENABLED",
            "ENDPOINT",
            "CREDENTIALS",
            "BUFFER",
            "UNITS",
            "BUFFER",
            "%",
            "MAXIMUM"
        ]
    );
    assert_eq!(
        row(&out, "shopify"),
        [
            "shopify",
            "shopify",
            "no",
            "https://shop.example.com",
            "sg/shopify",
            "2",
            "12.5",
            "-"
        ]
    );
    assert_eq!(
        row(&out, "amazon"),
        [
            "amazon",
            "amazon",
            "yes",
            "https://sellingpartnerapi-na.amazon.com",
            "stockguard/channels/amazon",
            "0",
            "0",
            "-"
        ]
    );

    // A per-SKU override leaves the channel alone.
    let out = ok(
        &store,
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
    let overrides = store
        .buffer_overrides(&channel("shopify"), std::slice::from_ref(&sku))
        .await
        .unwrap();
    assert_eq!(overrides[&sku].units, 7);
    let shopify = store.channel(&channel("shopify")).await.unwrap().unwrap();
    assert_eq!(shopify.buffer.units, 2);

    let (_, result) = sg(
        &store,
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

#[tokio::test]
async fn a_good_listings_file_is_stored_in_chunks_with_a_summary() {
    let stack = TestStack::new().await;
    let store = store_of(&stack).await;
    configure_channels(&store, &["shopify", "amazon", "walmart"]).await;

    let mut body = String::new();
    for i in 0..30 {
        body.push_str(&format!("shopify,SKU-{i},{},777,,\n", 1000 + i));
    }
    body.push_str("amazon,SKU-1,SKU-1-AMZ,,,SHIRT\n");
    body.push_str("walmart,\"SKU-1\",WM-1,,,\n");
    let file = csv_file(&body);
    let out = ok(&store, &["listings", "import", file.to_str().unwrap()]).await;
    assert!(out.contains("Stored 32 listings from"), "{out}");
    assert!(out.contains("  shopify    30\n"), "{out}");
    assert!(out.contains("  amazon     1\n"), "{out}");
    assert!(out.contains("  walmart    1\n"), "{out}");
    assert_eq!(
        listing_counts(&store).await,
        [
            ("shopify".into(), 30),
            ("amazon".into(), 1),
            ("walmart".into(), 1),
            ("ebay".into(), 0)
        ]
    );
    let amazon = store.all_listings(&channel("amazon")).await.unwrap();
    assert_eq!(amazon[0].product_type.as_deref(), Some("SHIRT"));
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_file_with_bad_rows_reports_each_and_stores_nothing() {
    let stack = TestStack::new().await;
    let store = store_of(&stack).await;
    configure_channels(&store, &["shopify", "amazon", "walmart", "ebay"]).await;

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
    let (out, result) = sg(&store, &["listings", "import", file.to_str().unwrap()]).await;
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
        listing_counts(&store).await.iter().all(|(_, n)| *n == 0),
        "nothing stored"
    );
    std::fs::remove_file(file).unwrap();
}

#[tokio::test]
async fn a_file_naming_an_unconfigured_channel_stores_nothing() {
    let stack = TestStack::new().await;
    let store = store_of(&stack).await;
    configure_channels(&store, &["shopify"]).await;

    let file = csv_file(
        "shopify,TEE-1,4455,777,,\n\
         ebay,TEE-1,TEE-1,,OFF-1,\n\
         ebay,TEE-2,TEE-2,,OFF-2,\n\
         walmart,TEE-1,WM-1,,,\n",
    );
    let (out, result) = sg(&store, &["listings", "import", file.to_str().unwrap()]).await;
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
        store
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
    let store = store_of(&stack).await;
    configure_channels(&store, &["shopify", "amazon", "walmart", "ebay"]).await;
    ok(
        &store,
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
    ok(&store, &["channels", "set", "amazon", "--maximum", "5"]).await;
    ok(
        &store,
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
    ok(&store, &["channels", "set", "ebay", "--enabled", "false"]).await;
    let file = csv_file("shopify,POS-1,4455,777,,\n");
    ok(&store, &["listings", "import", file.to_str().unwrap()]).await;
    std::fs::remove_file(file).unwrap();

    stack
        .apply(
            "StockReceived",
            json!({"event_id": unique("pos"), "occurred_at": now_rfc3339(), "sku": "POS-1", "quantity": 20}),
        )
        .await;
    let sku = Sku::parse("POS-1").unwrap();
    store
        .record_acknowledged(
            &channel("shopify"),
            &sku,
            SyncRecord {
                version: 1,
                quantity: 16,
                acknowledged_at: 1_767_225_600_000,
            },
        )
        .await
        .unwrap();

    let out = ok(&store, &["position", "POS-1"]).await;
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
        ["amazon", "5", "none", "5", "none", "never", "pushed"]
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

    let out = ok(&store, &["position", "NEW-SKU"]).await;
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
    assert_eq!(row(&stdout, "walmart")[5], "3", "{stdout}");

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
