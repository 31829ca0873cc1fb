//! `stockguard audit` and `stockguard simulate` as a seller runs them: the real binary on files in
//! a fresh directory, with no stack anywhere.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

/// A fresh directory under the system's temp dir.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!(
        "stockguard-audit-{name}-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `stockguard ARGS` in `dir`, away from any `.local/stack.json`.
fn stockguard(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_stockguard"))
        .args(args)
        .current_dir(dir)
        .env_remove("STOCKGUARD_TABLE")
        .env_remove("AWS_PROFILE")
        .output()
        .expect("the stockguard binary runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

const ORDERS: &str = "occurred_at,channel,sku,quantity,order_id\n\
    2026-03-02T10:00:00Z,shopify,A,1,o1\n\
    2026-03-02T10:05:00Z,shopify,A,1,o2\n\
    2026-03-02T10:05:30Z,amazon,A,1,o3\n";

#[test]
fn an_audit_prints_the_table_and_writes_the_summary_and_the_report() {
    let dir = scratch("ok");
    fs::write(dir.join("ORDERS.csv"), ORDERS).unwrap();
    fs::write(dir.join("STOCK.csv"), "sku,on_hand\nA,2\n").unwrap();
    fs::write(
        dir.join("CHANNELS.toml"),
        "[shopify]\ndelay = \"0s\"\n[amazon]\ndelay = \"1m\"\n",
    )
    .unwrap();
    let run = stockguard(
        &dir,
        &[
            "audit",
            "--orders",
            "ORDERS.csv",
            "--stock",
            "STOCK.csv",
            "--channels",
            "CHANNELS.toml",
            "--static-buffer-percent",
            "0",
            "--out",
            "result",
        ],
    );
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    assert!(stdout.contains("event_dynamic"), "{stdout}");
    assert!(stdout.contains("amazon 1m"), "{stdout}");
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("result/summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["input"]["orders"], 3);
    assert_eq!(summary["input"]["skus"], 1);
    assert_eq!(summary["input"]["start"], "2026-03-02T10:00:00.000Z");
    let names: Vec<&str> = summary["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["batch", "event_static", "event_dynamic"]);
    // The case worked out in the replay's own tests.
    assert_eq!(summary["strategies"][0]["oversells"], 1);
    assert_eq!(summary["strategies"][2]["oversells"], 0);
    assert_eq!(summary["strategies"][2]["held_back_percent"], 50.0);
    let fields: Vec<&String> = summary["strategies"][0]
        .as_object()
        .unwrap()
        .keys()
        .collect();
    assert_eq!(fields.len(), 7, "{fields:?}");
    let report = fs::read_to_string(dir.join("result/report.html")).unwrap();
    assert!(report.contains("<svg"), "the report has its charts");

    // --json prints the summary itself.
    let json = stockguard(
        &dir,
        &[
            "audit",
            "--orders",
            "ORDERS.csv",
            "--stock",
            "STOCK.csv",
            "--out",
            "again",
            "--json",
        ],
    );
    let printed: Value = serde_json::from_slice(&json.stdout).expect("one JSON document");
    assert_eq!(printed["input"]["orders"], 3);
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn bad_input_names_every_problem_and_writes_nothing() {
    let dir = scratch("bad");
    fs::write(
        dir.join("ORDERS.csv"),
        "occurred_at,channel,sku,quantity\n\
         2026-03-02T10:00:00Z,amazon,A,1\n\
         yesterday,amazon,A,1\n\
         2026-03-02T10:00:00Z,etsy,A,1\n",
    )
    .unwrap();
    fs::write(dir.join("STOCK.csv"), "sku,on_hand\nA,-2\n").unwrap();
    fs::write(dir.join("CHANNELS.toml"), "[amazon]\ndelay = \"soon\"\n").unwrap();
    let run = stockguard(
        &dir,
        &[
            "audit",
            "--orders",
            "ORDERS.csv",
            "--stock",
            "STOCK.csv",
            "--restocks",
            "missing.csv",
            "--channels",
            "CHANNELS.toml",
            "--out",
            "result",
        ],
    );
    let stderr = text(&run.stderr);
    assert!(!run.status.success());
    for expected in [
        "5 problem(s) in the input; nothing was written",
        "ORDERS.csv:3: occurred_at \"yesterday\"",
        "ORDERS.csv:4: channel \"etsy\"",
        "STOCK.csv:2: on_hand \"-2\"",
        "missing.csv: cannot read it",
        "CHANNELS.toml: [amazon] delay: duration \"soon\"",
    ] {
        assert!(stderr.contains(expected), "{expected:?} not in:\n{stderr}");
    }
    assert!(!dir.join("result").exists(), "nothing is written");
    fs::remove_dir_all(dir).unwrap();
}

#[test]
fn simulate_writes_files_that_audit_reads() {
    let dir = scratch("simulate");
    let run = stockguard(
        &dir,
        &[
            "simulate",
            "--scenario",
            "flash-sale",
            "--skus",
            "40",
            "--seed",
            "3",
            "--out",
            "sale",
        ],
    );
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    assert!(
        stdout.contains("Audit it: stockguard audit --orders sale/ORDERS.csv"),
        "{stdout}"
    );
    let orders = fs::read_to_string(dir.join("sale/ORDERS.csv")).unwrap();
    assert!(orders.starts_with("occurred_at,channel,sku,quantity"));
    // The same seed writes the same files.
    let again = stockguard(
        &dir,
        &[
            "simulate",
            "--scenario",
            "flash-sale",
            "--skus",
            "40",
            "--seed",
            "3",
            "--out",
            "again",
        ],
    );
    assert!(again.status.success());
    assert_eq!(
        orders,
        fs::read_to_string(dir.join("again/ORDERS.csv")).unwrap()
    );

    let audit = stockguard(
        &dir,
        &[
            "audit",
            "--orders",
            "sale/ORDERS.csv",
            "--stock",
            "sale/STOCK.csv",
            "--restocks",
            "sale/RESTOCKS.csv",
            "--out",
            "sale/audit",
            "--json",
        ],
    );
    assert!(audit.status.success(), "{}", text(&audit.stderr));
    let summary: Value = serde_json::from_slice(&audit.stdout).unwrap();
    let lines = orders.lines().count() as u64 - 1;
    assert_eq!(summary["input"]["orders"], lines);
    assert!(dir.join("sale/audit/report.html").exists());

    let bad = stockguard(
        &dir,
        &["simulate", "--scenario", "black-friday", "--out", "x"],
    );
    assert!(!bad.status.success());
    assert!(
        text(&bad.stderr).contains("flash-sale"),
        "{}",
        text(&bad.stderr)
    );
    fs::remove_dir_all(dir).unwrap();
}

/// The exports a seller already downloads, together in one audit.
#[test]
fn a_shopify_export_and_an_amazon_report_are_audited_together() {
    let dir = scratch("exports");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/audit/tests/fixtures");
    for name in ["shopify_orders.csv", "amazon_all_orders.txt"] {
        fs::copy(fixtures.join(name), dir.join(name)).unwrap();
    }
    fs::write(dir.join("STOCK.csv"), "sku,on_hand\n").unwrap();
    let run = stockguard(
        &dir,
        &[
            "audit",
            "--orders",
            "shopify_orders.csv",
            "--orders",
            "amazon_all_orders.txt",
            "--stock",
            "STOCK.csv",
            "--out",
            "result",
        ],
    );
    let stdout = text(&run.stdout);
    assert!(run.status.success(), "{stdout}{}", text(&run.stderr));
    // What the importers kept and skipped, and the SKUs missing from STOCK.csv, are said.
    assert!(stdout.contains("shopify_orders.csv: "), "{stdout}");
    assert!(stdout.contains("amazon_all_orders.txt: "), "{stdout}");
    assert!(
        stdout.contains("are not in STOCK.csv: counted from 0 on hand"),
        "{stdout}"
    );
    let summary: Value =
        serde_json::from_str(&fs::read_to_string(dir.join("result/summary.json")).unwrap())
            .unwrap();
    assert!(summary["input"]["orders"].as_u64().unwrap() > 0);
    fs::remove_dir_all(dir).unwrap();
}
