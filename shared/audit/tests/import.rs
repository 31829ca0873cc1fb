//! The importers against small exports shaped like the real ones (tests/fixtures).

use chrono::DateTime;
use stockguard_audit::import::{
    OrdersFormat, Tally, detect_text, import_amazon_orders, import_shopify_orders,
    read_amazon_orders, read_shopify_orders,
};
use stockguard_audit::{Channel, OrderRow, RowError};

const SHOPIFY: &str = include_str!("fixtures/shopify_orders.csv");
const SHOPIFY_BAD: &str = include_str!("fixtures/shopify_orders_bad.csv");
const AMAZON: &str = include_str!("fixtures/amazon_all_orders.txt");
const AMAZON_BAD: &str = include_str!("fixtures/amazon_all_orders_bad.txt");

fn ms(rfc3339: &str) -> i64 {
    DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

fn row(at: &str, channel: Channel, sku: &str, quantity: u32, line: u64) -> OrderRow {
    OrderRow {
        at: ms(at),
        channel,
        sku: sku.to_string(),
        quantity,
        line,
    }
}

fn err(file: &str, line: u64, reason: &str) -> RowError {
    RowError {
        file: file.to_string(),
        line,
        reason: reason.to_string(),
    }
}

#[test]
fn each_fixture_is_detected_by_its_header() {
    assert_eq!(detect_text(SHOPIFY), Some(OrdersFormat::Shopify));
    assert_eq!(detect_text(AMAZON), Some(OrdersFormat::Amazon));
    assert_eq!(
        detect_text("occurred_at,channel,sku,quantity\n2026-03-02T00:00:00Z,amazon,A,1\n"),
        Some(OrdersFormat::Stockguard)
    );
}

#[test]
fn a_shopify_export_becomes_one_row_per_line_item_oldest_first() {
    let imported = import_shopify_orders("orders_export.csv", SHOPIFY).unwrap();
    assert_eq!(
        imported.rows,
        vec![
            row("2024-02-29T23:59:59Z", Channel::Shopify, "TEE-BLK-M", 2, 8),
            row("2024-03-01T15:15:22Z", Channel::Shopify, "CAP-NVY", 1, 7),
            // #1003: the note's line break makes its first row span lines 3 and 4; the second
            // row's blank Created at is the first row's.
            row("2024-03-01T23:30:00Z", Channel::Shopify, "TEE-BLK-M", 2, 3),
            row("2024-03-01T23:30:00Z", Channel::Shopify, "TEE-BLK-L", 1, 5),
            // #1004 was cancelled 40 minutes later, and is kept.
            row("2024-03-02T14:00:05Z", Channel::Shopify, "MUG-WHT", 1, 2),
        ]
    );
    assert_eq!(
        imported.notes.cancelled_kept,
        Tally {
            rows: 1,
            first_line: 2
        }
    );
    // #1003's tip has no SKU.
    assert_eq!(
        imported.notes.blank_sku_skipped,
        Tally {
            rows: 1,
            first_line: 6
        }
    );
    assert_eq!(imported.notes.other_channel_skipped, Tally::default());
    let messages = imported.notes.messages("orders_export.csv");
    assert_eq!(messages.len(), 2);
    assert!(messages[0].starts_with("orders_export.csv: 1 line item(s) of cancelled orders kept"));
    assert_eq!(
        read_shopify_orders("orders_export.csv", SHOPIFY).unwrap(),
        imported.rows
    );
}

#[test]
fn every_bad_shopify_row_is_reported_with_each_of_its_problems() {
    let f = "bad.csv";
    assert_eq!(
        read_shopify_orders(f, SHOPIFY_BAD).unwrap_err(),
        vec![
            err(
                f,
                2,
                "Created at \"03/01/2024 10:15\" is not a date and time like \"2024-03-01 10:15:22 -0500\""
            ),
            err(
                f,
                2,
                "Lineitem quantity \"1 pc\" is not a whole number of units"
            ),
            err(
                f,
                3,
                "Created at is blank and order #2004's first row (line 2) has no readable one"
            ),
            err(
                f,
                4,
                "Lineitem quantity \"two\" is not a whole number of units"
            ),
            err(
                f,
                5,
                "the Name column (the order number, e.g. #1001) is blank"
            ),
            err(
                f,
                6,
                "Created at is blank and no earlier row of order #2001 has it"
            ),
            err(
                f,
                7,
                "Lineitem quantity \"-1\" is not a whole number of units"
            ),
        ]
    );
}

#[test]
fn a_file_without_the_columns_says_which_are_missing() {
    let errors = read_shopify_orders(
        "x.csv",
        "Name,Email,Created at\n#1,a@b,2024-03-01 10:00:00 -0500\n",
    )
    .unwrap_err();
    assert_eq!(
        errors,
        vec![
            err(
                "x.csv",
                1,
                "the header has no \"Lineitem quantity\" column: is this a Shopify orders export?"
            ),
            err(
                "x.csv",
                1,
                "the header has no \"Lineitem sku\" column: is this a Shopify orders export?"
            ),
        ]
    );
    assert_eq!(
        read_amazon_orders("empty.txt", "").unwrap_err(),
        vec![err(
            "empty.txt",
            0,
            "is empty: expected an Amazon All Orders report with its header line"
        )]
    );
}

#[test]
fn an_amazon_report_keeps_cancelled_rows_and_skips_non_amazon_ones() {
    let imported = import_amazon_orders("all_orders.txt", AMAZON).unwrap();
    assert_eq!(
        imported.rows,
        vec![
            row("2024-03-01T09:12:44Z", Channel::Amazon, "TEE-BLK-L", 1, 7),
            row("2024-03-01T16:02:09Z", Channel::Amazon, "MUG-WHT", 1, 5),
            row("2024-03-01T20:41:37Z", Channel::Amazon, "TEE-BLK-M", 2, 3),
            row("2024-03-01T20:41:37Z", Channel::Amazon, "CAP-NVY", 1, 4),
            // The product name's inch mark is text, not a quote.
            row("2024-03-02T14:05:11Z", Channel::Amazon, "SKL-12", 1, 2),
        ]
    );
    assert_eq!(
        imported.notes.cancelled_kept,
        Tally {
            rows: 1,
            first_line: 5
        }
    );
    assert_eq!(
        imported.notes.other_channel_skipped,
        Tally {
            rows: 1,
            first_line: 6
        }
    );
}

#[test]
fn every_bad_amazon_row_is_reported_with_each_of_its_problems() {
    let f = "all_orders.txt";
    assert_eq!(
        read_amazon_orders(f, AMAZON_BAD).unwrap_err(),
        vec![
            err(
                f,
                2,
                "purchase-date \"2024-03-01 09:12\" is not a date and time like \"2024-03-01T15:15:22+00:00\""
            ),
            err(f, 3, "quantity \"1.5\" is not a whole number of units"),
            err(
                f,
                5,
                "purchase-date \"yesterday\" is not a date and time like \"2024-03-01T15:15:22+00:00\""
            ),
            err(f, 5, "quantity is blank"),
        ]
    );
}
