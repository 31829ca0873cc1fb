//! Orders as sellers already download them: a Shopify orders export (Admin → Orders → Export, CSV)
//! and an Amazon "All Orders" report (tab-separated flat file), read into the same [`OrderRow`]s as
//! the contract's own `ORDERS.csv`. What is kept, skipped and why is documented in
//! docs/audit-inputs.md; [`ImportNotes`] counts it so the CLI can say so.

use std::collections::HashMap;

use chrono::DateTime;
use stockguard_domain::Millis;

use stockguard_domain::csv_lines::CsvLines;

use crate::model::{Channel, OrderRow, RowError};

/// Which kind of orders file a header line belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrdersFormat {
    /// The contract's `ORDERS.csv`: `occurred_at,channel,sku,quantity[,order_id]`.
    Stockguard,
    /// Shopify Admin → Orders → Export (CSV, one row per line item).
    Shopify,
    /// Amazon Seller Central → Reports → Fulfillment → All Orders (tab-separated).
    Amazon,
}

impl OrdersFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            OrdersFormat::Stockguard => "stockguard",
            OrdersFormat::Shopify => "shopify",
            OrdersFormat::Amazon => "amazon",
        }
    }

    /// How the format is named to a seller, with its article: "an Amazon All Orders report".
    fn a_describe(self) -> String {
        let name = self.describe();
        let article = if name.starts_with(['A', 'a', 'E', 'e', 'I', 'i', 'O', 'o', 'U', 'u']) {
            "an"
        } else {
            "a"
        };
        format!("{article} {name}")
    }

    /// How the format is named to a seller.
    pub fn describe(self) -> &'static str {
        match self {
            OrdersFormat::Stockguard => "stockguard ORDERS.csv",
            OrdersFormat::Shopify => "Shopify orders export",
            OrdersFormat::Amazon => "Amazon All Orders report",
        }
    }
}

// Column names as the exports spell them (matched without regard to case or surrounding spaces).
const SHOPIFY_NAME: &str = "Name";
const SHOPIFY_CREATED_AT: &str = "Created at";
const SHOPIFY_QUANTITY: &str = "Lineitem quantity";
const SHOPIFY_SKU: &str = "Lineitem sku";
const SHOPIFY_CANCELLED_AT: &str = "Cancelled at";

const AMAZON_ORDER_ID: &str = "amazon-order-id";
const AMAZON_PURCHASE_DATE: &str = "purchase-date";
const AMAZON_ORDER_STATUS: &str = "order-status";
const AMAZON_SALES_CHANNEL: &str = "sales-channel";
const AMAZON_SKU: &str = "sku";
const AMAZON_ITEM_STATUS: &str = "item-status";
const AMAZON_QUANTITY: &str = "quantity";

const STOCKGUARD_COLUMNS: [&str; 4] = ["occurred_at", "channel", "sku", "quantity"];
const SHOPIFY_REQUIRED: [&str; 4] = [
    SHOPIFY_NAME,
    SHOPIFY_CREATED_AT,
    SHOPIFY_QUANTITY,
    SHOPIFY_SKU,
];
const AMAZON_REQUIRED: [&str; 5] = [
    AMAZON_ORDER_ID,
    AMAZON_PURCHASE_DATE,
    AMAZON_ORDER_STATUS,
    AMAZON_SKU,
    AMAZON_QUANTITY,
];

/// The format whose columns a header line has, or `None`. Amazon's report is the only
/// tab-separated one; the other two are told apart by their column names.
pub fn detect(first_line: &str) -> Option<OrdersFormat> {
    let line = strip_bom(first_line).trim_end_matches(['\r', '\n']);
    if line.contains('\t') {
        let columns = split_header(line, b'\t', false);
        return has_all(&columns, &AMAZON_REQUIRED).then_some(OrdersFormat::Amazon);
    }
    let columns = split_header(line, b',', true);
    if has_all(&columns, &STOCKGUARD_COLUMNS) {
        Some(OrdersFormat::Stockguard)
    } else if has_all(&columns, &SHOPIFY_REQUIRED) {
        Some(OrdersFormat::Shopify)
    } else {
        None
    }
}

/// [`detect`] on the first line of a whole file.
pub fn detect_text(text: &str) -> Option<OrdersFormat> {
    detect(strip_bom(text).lines().next().unwrap_or(""))
}

/// How many rows of one kind an import kept or skipped, and the first one's line, so a seller can
/// look.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    pub rows: u64,
    pub first_line: u64,
}

impl Tally {
    fn add(&mut self, line: u64) {
        if self.rows == 0 {
            self.first_line = line;
        }
        self.rows += 1;
    }
}

/// What an import did besides reading rows: none of these are errors.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportNotes {
    /// Line items of cancelled orders, kept: each was a sale taken while the unit was shown.
    pub cancelled_kept: Tally,
    /// Line items with no SKU (tips, gift cards, custom items), skipped: the audit keys on SKUs.
    pub blank_sku_skipped: Tally,
    /// Line items of 0 units, skipped: they took nothing.
    pub zero_quantity_skipped: Tally,
    /// Amazon rows whose `sales-channel` is "Non-Amazon" (Multi-Channel Fulfillment: orders taken
    /// on another channel that Amazon shipped), skipped: they belong to that channel's file.
    pub other_channel_skipped: Tally,
}

impl ImportNotes {
    /// One sentence per non-empty tally, for the CLI to print.
    pub fn messages(&self, file: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut say = |tally: Tally, what: &str| {
            if tally.rows > 0 {
                out.push(format!(
                    "{file}: {} {what} (first at line {})",
                    tally.rows, tally.first_line
                ));
            }
        };
        say(
            self.cancelled_kept,
            "line item(s) of cancelled orders kept: each was a sale taken while the unit was shown",
        );
        say(
            self.blank_sku_skipped,
            "line item(s) with no SKU skipped: the audit matches orders to stock by SKU",
        );
        say(
            self.zero_quantity_skipped,
            "line item(s) of 0 units skipped: they took nothing",
        );
        say(
            self.other_channel_skipped,
            "Non-Amazon (Multi-Channel Fulfillment) row(s) skipped: they were sold on another channel",
        );
        out
    }
}

/// An import's rows, in time order (ties keep file order), and what it skipped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Imported {
    pub rows: Vec<OrderRow>,
    pub notes: ImportNotes,
}

/// A Shopify orders export's line items as `shopify` orders. See [`import_shopify_orders`].
pub fn read_shopify_orders(file: &str, text: &str) -> Result<Vec<OrderRow>, Vec<RowError>> {
    import_shopify_orders(file, text).map(|imported| imported.rows)
}

/// An Amazon All Orders report's rows as `amazon` orders. See [`import_amazon_orders`].
pub fn read_amazon_orders(file: &str, text: &str) -> Result<Vec<OrderRow>, Vec<RowError>> {
    import_amazon_orders(file, text).map(|imported| imported.rows)
}

/// What an order's first row said, for the rows after it that leave order-level fields blank.
struct OrderHead {
    /// The creation time, or the line whose `Created at` could not be read.
    at: Result<Millis, u64>,
    cancelled: bool,
}

/// A Shopify orders export, one [`OrderRow`] per line item. Shopify writes one row per line item
/// and fills order-level fields only on an order's first row, so a blank `Created at` or
/// `Cancelled at` is taken from the first row with the same `Name`. Every unusable row is
/// reported; no rows are returned if any is.
pub fn import_shopify_orders(file: &str, text: &str) -> Result<Imported, Vec<RowError>> {
    let text = strip_bom(text);
    let mut lines = CsvLines::new(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns = header(file, &mut reader, &SHOPIFY_REQUIRED, OrdersFormat::Shopify)?;
    let [name_col, created_col, quantity_col, sku_col] = [
        columns.index(SHOPIFY_NAME),
        columns.index(SHOPIFY_CREATED_AT),
        columns.index(SHOPIFY_QUANTITY),
        columns.index(SHOPIFY_SKU),
    ]
    .map(|i| i.expect("required columns are present"));
    let cancelled_col = columns.index(SHOPIFY_CANCELLED_AT);

    let mut out = Imported::default();
    let mut errors = Vec::new();
    let mut heads: HashMap<String, OrderHead> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(unreadable_row(&mut lines, file, &e));
                continue;
            }
        };
        let line = lines.of(record.position());
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let error = |reason: String| RowError {
            file: file.to_string(),
            line,
            reason,
        };

        let name = field(name_col);
        if name.is_empty() {
            errors.push(error(format!(
                "the {SHOPIFY_NAME} column (the order number, e.g. #1001) is blank"
            )));
            continue;
        }
        let created = field(created_col);
        let cancelled = cancelled_col.is_some_and(|i| !field(i).is_empty());
        let at = if created.is_empty() {
            match heads.get_mut(name) {
                Some(head) => {
                    head.cancelled |= cancelled;
                    head.at
                }
                None => {
                    errors.push(error(format!(
                        "{SHOPIFY_CREATED_AT} is blank and no earlier row of order {name} has it"
                    )));
                    continue;
                }
            }
        } else {
            let at = parse_time(created).map_err(|()| line);
            if at.is_err() {
                errors.push(error(format!(
                    "{SHOPIFY_CREATED_AT} {created:?} is not a date and time like \
                     \"2024-03-01 10:15:22 -0500\""
                )));
            }
            let head = heads.entry(name.to_string()).or_insert(OrderHead {
                at,
                cancelled: false,
            });
            head.cancelled |= cancelled;
            at
        };
        let cancelled = heads.get(name).is_some_and(|head| head.cancelled);

        let sku = field(sku_col);
        if sku.is_empty() {
            out.notes.blank_sku_skipped.add(line);
            continue;
        }
        // Both problems of a row are reported, as for Amazon's.
        let at = match at {
            Ok(at) => Some(at),
            Err(bad_line) if bad_line == line => None, // reported above
            Err(bad_line) => {
                errors.push(error(format!(
                    "{SHOPIFY_CREATED_AT} is blank and order {name}'s first row (line {bad_line}) \
                     has no readable one"
                )));
                None
            }
        };
        let quantity = parse_quantity(field(quantity_col), SHOPIFY_QUANTITY)
            .map_err(|reason| errors.push(error(reason)))
            .ok();
        let (Some(at), Some(quantity)) = (at, quantity) else {
            continue;
        };
        if quantity == 0 {
            out.notes.zero_quantity_skipped.add(line);
            continue;
        }
        if cancelled {
            out.notes.cancelled_kept.add(line);
        }
        out.rows.push(OrderRow {
            at,
            channel: Channel::Shopify,
            sku: sku.to_string(),
            quantity,
            line,
        });
    }
    finish(out, errors)
}

/// An Amazon All Orders report, one [`OrderRow`] per order item. Cancelled orders and items are
/// kept (counted in [`ImportNotes::cancelled_kept`]); "Non-Amazon" sales-channel rows are skipped.
/// Every unusable row is reported; no rows are returned if any is.
pub fn import_amazon_orders(file: &str, text: &str) -> Result<Imported, Vec<RowError>> {
    let text = strip_bom(text);
    let mut lines = CsvLines::new(text);
    // Amazon's flat files are tab-separated without quoting: a product name such as
    // `12" skillet` is literal, so quote handling must be off or it would swallow lines.
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b'\t')
        .quoting(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns = header(file, &mut reader, &AMAZON_REQUIRED, OrdersFormat::Amazon)?;
    let [date_col, status_col, sku_col, quantity_col] = [
        columns.index(AMAZON_PURCHASE_DATE),
        columns.index(AMAZON_ORDER_STATUS),
        columns.index(AMAZON_SKU),
        columns.index(AMAZON_QUANTITY),
    ]
    .map(|i| i.expect("required columns are present"));
    let channel_col = columns.index(AMAZON_SALES_CHANNEL);
    let item_status_col = columns.index(AMAZON_ITEM_STATUS);

    let mut out = Imported::default();
    let mut errors = Vec::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(e) => {
                errors.push(unreadable_row(&mut lines, file, &e));
                continue;
            }
        };
        let line = lines.of(record.position());
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        let error = |reason: String| RowError {
            file: file.to_string(),
            line,
            reason,
        };

        if channel_col.is_some_and(|i| field(i).to_ascii_lowercase().starts_with("non-amazon")) {
            out.notes.other_channel_skipped.add(line);
            continue;
        }
        let sku = field(sku_col);
        if sku.is_empty() {
            out.notes.blank_sku_skipped.add(line);
            continue;
        }
        let mut bad = false;
        let date = field(date_col);
        let at = parse_time(date).unwrap_or_else(|()| {
            errors.push(error(format!(
                "{AMAZON_PURCHASE_DATE} {date:?} is not a date and time like \
                 \"2024-03-01T15:15:22+00:00\""
            )));
            bad = true;
            0
        });
        let quantity = parse_quantity(field(quantity_col), AMAZON_QUANTITY).unwrap_or_else(|r| {
            errors.push(error(r));
            bad = true;
            0
        });
        if bad {
            continue;
        }
        if quantity == 0 {
            out.notes.zero_quantity_skipped.add(line);
            continue;
        }
        let cancelled = is_cancelled(field(status_col))
            || item_status_col.is_some_and(|i| is_cancelled(field(i)));
        if cancelled {
            out.notes.cancelled_kept.add(line);
        }
        out.rows.push(OrderRow {
            at,
            channel: Channel::Amazon,
            sku: sku.to_string(),
            quantity,
            line,
        });
    }
    finish(out, errors)
}

fn is_cancelled(status: &str) -> bool {
    // Amazon writes "Cancelled"; its APIs spell it "Canceled".
    status.eq_ignore_ascii_case("cancelled") || status.eq_ignore_ascii_case("canceled")
}

fn finish(mut out: Imported, errors: Vec<RowError>) -> Result<Imported, Vec<RowError>> {
    if !errors.is_empty() {
        return Err(errors);
    }
    // Exports list newest first; the audit replays oldest first. Stable, so an order's line items
    // keep their order.
    out.rows.sort_by_key(|row| row.at);
    Ok(out)
}

/// A header's column positions, by lower-cased trimmed name.
struct Columns(HashMap<String, usize>);

impl Columns {
    fn index(&self, name: &str) -> Option<usize> {
        self.0.get(&name.to_ascii_lowercase()).copied()
    }
}

fn header(
    file: &str,
    reader: &mut csv::Reader<&[u8]>,
    required: &[&str],
    format: OrdersFormat,
) -> Result<Columns, Vec<RowError>> {
    let whole_file = |reason: String| RowError {
        file: file.to_string(),
        line: 1,
        reason,
    };
    let record = reader
        .headers()
        .map_err(|e| vec![whole_file(format!("the header line cannot be read: {e}"))])?;
    if record.iter().all(|name| name.trim().is_empty()) {
        return Err(vec![RowError {
            file: file.to_string(),
            line: 0,
            reason: format!(
                "is empty: expected {} with its header line",
                format.a_describe()
            ),
        }]);
    }
    let mut columns = HashMap::new();
    for (i, name) in record.iter().enumerate() {
        columns.entry(name.trim().to_ascii_lowercase()).or_insert(i);
    }
    let columns = Columns(columns);
    let missing: Vec<RowError> = required
        .iter()
        .filter(|name| columns.index(name).is_none())
        .map(|name| {
            whole_file(format!(
                "the header has no {name:?} column: is this {}?",
                format.a_describe()
            ))
        })
        .collect();
    if missing.is_empty() {
        Ok(columns)
    } else {
        Err(missing)
    }
}

/// A record the csv reader cannot read, at its line.
pub(crate) fn unreadable_row(lines: &mut CsvLines, file: &str, e: &csv::Error) -> RowError {
    RowError {
        file: file.to_string(),
        line: lines.of(e.position()),
        reason: format!("the row cannot be read: {e}"),
    }
}

fn strip_bom(text: &str) -> &str {
    text.strip_prefix('\u{feff}').unwrap_or(text)
}

fn split_header(line: &str, delimiter: u8, quoting: bool) -> Vec<String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .delimiter(delimiter)
        .quoting(quoting)
        .flexible(true)
        .from_reader(line.as_bytes());
    reader
        .records()
        .next()
        .and_then(Result::ok)
        .map(|record| {
            record
                .iter()
                .map(|name| name.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default()
}

fn has_all(columns: &[String], required: &[&str]) -> bool {
    required
        .iter()
        .all(|name| columns.iter().any(|c| c == &name.to_ascii_lowercase()))
}

/// Shopify's `2024-03-01 10:15:22 -0500`, or RFC 3339 (Amazon's `2024-03-01T15:15:22+00:00`).
/// Both carry their offset, so the instant is exact.
fn parse_time(raw: &str) -> Result<Millis, ()> {
    DateTime::parse_from_str(raw, "%Y-%m-%d %H:%M:%S %z")
        .or_else(|_| DateTime::parse_from_rfc3339(raw))
        .map(|t| t.timestamp_millis())
        .map_err(|_| ())
}

fn parse_quantity(raw: &str, column: &str) -> Result<u32, String> {
    raw.parse::<u32>().map_err(|_| {
        if raw.is_empty() {
            format!("{column} is blank")
        } else {
            format!("{column} {raw:?} is not a whole number of units")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn detect_reads_each_header() {
        assert_eq!(
            detect("occurred_at,channel,sku,quantity,order_id"),
            Some(OrdersFormat::Stockguard)
        );
        assert_eq!(
            detect(
                "\u{feff}Name,Email,Financial Status,Created at,Lineitem quantity,Lineitem sku\r\n"
            ),
            Some(OrdersFormat::Shopify)
        );
        assert_eq!(
            detect(
                "amazon-order-id\tmerchant-order-id\tpurchase-date\torder-status\tsku\tquantity"
            ),
            Some(OrdersFormat::Amazon)
        );
        assert_eq!(detect("sku,on_hand"), None);
        assert_eq!(detect(""), None);
        // A comma-separated file with Amazon's names is not the tab-separated report.
        assert_eq!(
            detect("amazon-order-id,purchase-date,order-status,sku,quantity"),
            None
        );
    }

    #[test]
    fn times_carry_their_offset() {
        // 10:15:22 at -05:00 is 15:15:22 UTC.
        let utc = DateTime::parse_from_rfc3339("2024-03-01T15:15:22Z")
            .unwrap()
            .timestamp_millis();
        assert_eq!(parse_time("2024-03-01 10:15:22 -0500"), Ok(utc));
        assert_eq!(parse_time("2024-03-01T15:15:22+00:00"), Ok(utc));
        assert_eq!(parse_time("2024-03-01 10:15"), Err(()));
    }
}
