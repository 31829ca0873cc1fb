//! Fuzzing of the audit's readers of a seller's files: `ORDERS.csv`, `STOCK.csv`,
//! `RESTOCKS.csv`, `CHANNELS.toml`, and the Shopify and Amazon order exports.
//!
//! Each reader gets arbitrary text and plausible files (the right header, with columns moved,
//! added or missing, a BOM, CRLF or CR endings; rows whose cells are replaced by odd values).
//! Properties: no panic; a rejection reports its file, a line within the file and a reason; what
//! is accepted holds the readers' own rules. `PROPTEST_CASES` sets the number of cases (`make
//! fuzz` runs many more).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError};
use stockguard_audit::import::{import_amazon_orders, import_shopify_orders};
use stockguard_audit::input::{assemble, read_channels, read_orders, read_restocks, read_stock};
use stockguard_audit::model::{OrderRow, RowError};
use stockguard_audit::settings::Settings;

const FILE: &str = "SELLER.csv";

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

/// Lines as an editor counts them: ended by `\n`, `\r\n` or a lone `\r`.
fn count_lines(text: &str) -> u64 {
    text.replace("\r\n", "\n")
        .split(['\n', '\r'])
        .count()
        .max(1) as u64
}

fn odd_cell() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "",
            " ",
            "0",
            "-1",
            "1.5",
            "4294967296",
            "9223372036854775808",
            "NaN",
            "1e3",
            " 3 ",
            "\"",
            "\"quoted, comma\"",
            "\"multi\nline\"",
            "\t",
            "é",
            "2026-13-45T99:99:99Z",
            "+275760-09-13T00:00:00Z",
            "2024-03-01 10:15:22 -0500",
            "2024-03-01",
            "storefront",
            "Non-Amazon",
            "Cancelled",
            "#1001",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,20}",
    ]
}

/// A plausible file: a header, rows of plausible cells with some replaced, chosen line endings.
fn table(
    header: Vec<&'static str>,
    row: BoxedStrategy<Vec<String>>,
    delimiter: &'static str,
) -> impl Strategy<Value = String> {
    let header_variant = prop_oneof![
        6 => Just(0u8),
        1 => Just(1u8), // BOM
        1 => Just(2u8), // a column dropped
        1 => Just(3u8), // an extra column
        1 => Just(4u8), // upper case
    ];
    (
        header_variant,
        prop::collection::vec(
            (
                row,
                prop::option::of((any::<prop::sample::Index>(), odd_cell())),
            ),
            0..10,
        ),
        prop::sample::select(vec!["\n", "\r\n", "\r", "\n\n"]),
        any::<bool>(),
    )
        .prop_map(move |(variant, rows, eol, trailing_eol)| {
            let mut columns: Vec<String> = header.iter().map(|c| (*c).to_owned()).collect();
            match variant {
                2 => {
                    columns.remove(0);
                }
                3 => columns.push("notes".into()),
                4 => columns = columns.iter().map(|c| c.to_uppercase()).collect(),
                _ => {}
            }
            let mut text = if variant == 1 {
                "\u{feff}".to_owned()
            } else {
                String::new()
            };
            text.push_str(&columns.join(delimiter));
            for (mut cells, odd) in rows {
                if let Some((at, cell)) = odd {
                    let i = at.index(cells.len());
                    cells[i] = cell;
                }
                text.push_str(eol);
                text.push_str(&cells.join(delimiter));
            }
            if trailing_eol {
                text.push_str(eol);
            }
            text
        })
}

fn time() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("2026-03-02T14:05:00Z".to_owned()),
        (0u32..28, 0u32..24).prop_map(|(d, h)| format!("2026-03-{:02}T{h:02}:00:00+01:00", d + 1)),
    ]
}

fn sku() -> impl Strategy<Value = String> {
    prop_oneof!["[A-Z]{1,3}-[0-9]{1,2}", "\\PC{1,8}"]
}

fn channel() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "shopify",
        "amazon",
        "walmart",
        "ebay",
        "storefront",
        "etsy",
    ])
    .prop_map(str::to_owned)
}

fn orders_csv() -> impl Strategy<Value = String> {
    let row = (
        time(),
        channel(),
        sku(),
        1u32..20,
        prop::option::of("[0-9]{1,6}"),
    )
        .prop_map(|(t, c, s, q, o)| vec![t, c, s, q.to_string(), o.unwrap_or_default()])
        .boxed();
    table(
        vec!["occurred_at", "channel", "sku", "quantity", "order_id"],
        row,
        ",",
    )
}

fn stock_csv() -> impl Strategy<Value = String> {
    let row = (sku(), 0i64..1000)
        .prop_map(|(s, n)| vec![s, n.to_string()])
        .boxed();
    table(vec!["sku", "on_hand"], row, ",")
}

fn restocks_csv() -> impl Strategy<Value = String> {
    let row = (time(), sku(), 1u32..100)
        .prop_map(|(t, s, q)| vec![t, s, q.to_string()])
        .boxed();
    table(vec!["occurred_at", "sku", "quantity"], row, ",")
}

fn shopify_export() -> impl Strategy<Value = String> {
    let row = (
        "#10[0-9]{2}",
        prop_oneof![
            Just("2024-03-01 10:15:22 -0500".to_owned()),
            Just(String::new()),
            time()
        ],
        1u32..5,
        sku(),
        prop_oneof![
            Just(String::new()),
            Just("2024-03-02 09:00:00 -0500".to_owned())
        ],
    )
        .prop_map(|(n, c, q, s, x)| vec![n, c, q.to_string(), s, x])
        .boxed();
    table(
        vec![
            "Name",
            "Created at",
            "Lineitem quantity",
            "Lineitem sku",
            "Cancelled at",
        ],
        row,
        ",",
    )
}

fn amazon_report() -> impl Strategy<Value = String> {
    let row = (
        "[0-9]{3}-[0-9]{7}",
        prop_oneof![Just("2024-03-01T10:15:22+00:00".to_owned()), time()],
        prop::sample::select(vec!["Shipped", "Pending", "Cancelled", "Shipping"]),
        prop::sample::select(vec!["Amazon.com", "Non-Amazon", "amazon.co.uk"]),
        sku(),
        prop::sample::select(vec!["Shipped", "Unshipped", "Cancelled"]),
        0u32..5,
    )
        .prop_map(|(id, d, st, ch, s, is, q)| {
            vec![id, d, st.into(), ch.into(), s, is.into(), q.to_string()]
        })
        .boxed();
    table(
        vec![
            "amazon-order-id",
            "purchase-date",
            "order-status",
            "sales-channel",
            "sku",
            "item-status",
            "quantity",
        ],
        row,
        "\t",
    )
}

fn any_text() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,300}",
        any::<String>(),
        prop::collection::vec(any::<u8>(), 0..300)
            .prop_map(|b| String::from_utf8_lossy(&b).into_owned()),
    ]
}

fn check_errors(text: &str, errors: &[RowError]) -> Result<(), TestCaseError> {
    prop_assert!(!errors.is_empty());
    let lines = count_lines(text);
    for e in errors {
        prop_assert_eq!(e.file.as_str(), FILE);
        prop_assert!(!e.reason.trim().is_empty(), "{e:?}");
        prop_assert!(
            e.line <= lines,
            "{e:?} in a file of {lines} lines: {text:?}"
        );
    }
    Ok(())
}

fn check_orders(text: &str, rows: &[OrderRow]) -> Result<(), TestCaseError> {
    let lines = count_lines(text);
    for r in rows {
        prop_assert!(r.quantity >= 1, "{r:?}");
        prop_assert!(!r.sku.trim().is_empty(), "{r:?}");
        prop_assert!(r.line >= 2 && r.line <= lines, "{r:?} in {lines} lines");
    }
    Ok(())
}

proptest! {
    #![proptest_config(config(128))]

    #[test]
    fn orders_files(text in prop_oneof![3 => orders_csv(), 1 => any_text()]) {
        match read_orders(FILE, &text) {
            Ok(rows) => {
                check_orders(&text, &rows)?;
                // What was read assembles without panicking (stock empty: every SKU unknown).
                if let Err(errors) = assemble(rows, Vec::new(), Vec::new(), FILE) {
                    prop_assert!(errors.iter().all(|e| !e.reason.trim().is_empty()));
                }
            }
            Err(errors) => check_errors(&text, &errors)?,
        }
    }

    #[test]
    fn stock_files(text in prop_oneof![3 => stock_csv(), 1 => any_text()]) {
        match read_stock(FILE, &text) {
            Ok(rows) => {
                let mut seen = std::collections::HashSet::new();
                for r in &rows {
                    prop_assert!(r.on_hand >= 0, "{r:?}");
                    prop_assert!(!r.sku.trim().is_empty());
                    prop_assert!(seen.insert(r.sku.clone()), "{r:?} twice");
                }
            }
            Err(errors) => check_errors(&text, &errors)?,
        }
    }

    #[test]
    fn restock_files(text in prop_oneof![3 => restocks_csv(), 1 => any_text()]) {
        match read_restocks(FILE, &text) {
            Ok(rows) => {
                for r in &rows {
                    prop_assert!(r.quantity >= 1 && !r.sku.trim().is_empty(), "{r:?}");
                }
            }
            Err(errors) => check_errors(&text, &errors)?,
        }
    }

    #[test]
    fn shopify_exports(text in prop_oneof![3 => shopify_export(), 1 => any_text()]) {
        match import_shopify_orders(FILE, &text) {
            Ok(imported) => check_orders(&text, &imported.rows)?,
            Err(errors) => check_errors(&text, &errors)?,
        }
    }

    #[test]
    fn amazon_reports(text in prop_oneof![3 => amazon_report(), 1 => any_text()]) {
        match import_amazon_orders(FILE, &text) {
            Ok(imported) => check_orders(&text, &imported.rows)?,
            Err(errors) => check_errors(&text, &errors)?,
        }
    }

    #[test]
    fn channels_files(text in prop_oneof![3 => channels_toml(), 1 => any_text()]) {
        let mut settings = Settings::default();
        match read_channels(FILE, &text, &mut settings) {
            Ok(()) => {
                for c in &settings.configured {
                    prop_assert!(c.is_marketplace(), "{c:?}");
                }
            }
            Err(errors) => check_errors(&text, &errors)?,
        }
    }
}

fn toml_value() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "\"90s\"",
            "\"15m\"",
            "\"1h\"",
            "\"0ms\"",
            "\"99999999999999999999h\"",
            "\"9223372036854775807h\"",
            "\"-5s\"",
            "\"5\"",
            "\"s\"",
            "\"\"",
            "{ min = \"5m\", max = \"15m\" }",
            "{ min = \"15m\", max = \"5m\" }",
            "{ min = \"5m\" }",
            "{ mean = \"5m\" }",
            "0.01",
            "1.5",
            "-0.1",
            "nan",
            "inf",
            "0",
            "-3",
            "9223372036854775807",
            "true",
            "[1, 2]",
            "\"ＳＫＵ\"",
        ])
        .prop_map(str::to_owned),
        "\\PC{0,12}",
    ]
}

fn channels_toml() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(vec![
                "amazon",
                "walmart",
                "ebay",
                "shopify",
                "storefront",
                "etsy",
                "\"a b\"",
            ]),
            prop::collection::vec(
                (
                    prop::sample::select(vec![
                        "delay",
                        "risk_target",
                        "min_buffer",
                        "max_buffer",
                        "low_stock_units",
                        "low_stock_max_delay",
                        "colour",
                    ]),
                    toml_value(),
                ),
                0..5,
            ),
        ),
        0..5,
    )
    .prop_map(|tables| {
        let mut text = String::new();
        for (name, entries) in tables {
            text.push_str(&format!("[{name}]\n"));
            for (k, v) in entries {
                text.push_str(&format!("{k} = {v}\n"));
            }
        }
        text
    })
}

/// A TOML error inside a multi-byte character must still be placed on a line without slicing the
/// text inside that character.
#[test]
fn toml_errors_next_to_multibyte_characters_are_placed_on_their_line() {
    for text in [
        "[amazon]\ndelay = \"é\u{1F600}\" x\n",
        "é\u{1F600}",
        "[ébay\n",
        "[amazon]\ndelay = '\u{1F600}\n",
    ] {
        let mut settings = Settings::default();
        let errors = read_channels(FILE, text, &mut settings).expect_err("not valid");
        assert!(errors.iter().all(|e| !e.reason.is_empty()), "{errors:?}");
    }
}
