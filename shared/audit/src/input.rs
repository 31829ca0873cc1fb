//! The audit's own input files (contract section 7): `ORDERS.csv`, `STOCK.csv`, `RESTOCKS.csv`
//! and `CHANNELS.toml`, read from their text. Every bad row is reported with its file, line and
//! reason; nothing is half-read.

use std::collections::HashMap;

use stockguard_domain::Millis;
use stockguard_domain::buffer::DynamicPolicy;
use stockguard_domain::csv_lines::CsvLines;
use stockguard_domain::types::parse_timestamp;

use crate::import::unreadable_row;
use crate::model::{AuditInput, Channel, Order, OrderRow, Restock, RowError, SkuIndex};
use crate::settings::{Delay, Settings, parse_duration};

/// One `STOCK.csv` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockRow {
    pub sku: String,
    pub on_hand: i64,
    pub line: u64,
}

/// One `RESTOCKS.csv` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RestockRow {
    pub at: Millis,
    pub sku: String,
    pub quantity: u32,
    pub line: u64,
}

/// A CSV file's rows as maps from its header's names, with their line numbers; a missing
/// column is one error for the whole file.
struct Table<'a> {
    file: &'a str,
    columns: HashMap<String, usize>,
    reader: csv::Reader<&'a [u8]>,
    lines: CsvLines<'a>,
}

impl<'a> Table<'a> {
    fn open(file: &'a str, text: &'a str, required: &[&str]) -> Result<Self, Vec<RowError>> {
        let text = text.strip_prefix('\u{feff}').unwrap_or(text);
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(text.as_bytes());
        let whole_file = |reason: String| {
            vec![RowError {
                file: file.to_owned(),
                line: 1,
                reason,
            }]
        };
        let header = reader
            .headers()
            .map_err(|e| whole_file(format!("the header cannot be read: {e}")))?
            .clone();
        let columns: HashMap<String, usize> = header
            .iter()
            .enumerate()
            .map(|(i, name)| (name.trim().to_owned(), i))
            .collect();
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|c| !columns.contains_key(*c))
            .collect();
        if header.iter().all(|h| h.trim().is_empty()) {
            return Err(whole_file(format!(
                "the file is empty; its first line must be the header {}",
                required.join(",")
            )));
        }
        if !missing.is_empty() {
            return Err(whole_file(format!(
                "the header lacks {}; it must name {}",
                missing.join(", "),
                required.join(",")
            )));
        }
        Ok(Self {
            file,
            columns,
            reader,
            lines: CsvLines::new(text),
        })
    }

    /// Calls `row` with each record; collects the errors it returns.
    fn rows<T>(
        mut self,
        mut row: impl FnMut(&Row<'_>, u64) -> Result<T, String>,
    ) -> Result<Vec<T>, Vec<RowError>> {
        let mut out = Vec::new();
        let mut errors = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match self.reader.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {
                    if record.iter().all(|f| f.trim().is_empty()) {
                        continue;
                    }
                    // Counted from the text: the reader's own count is short after CRLF endings.
                    let line = self.lines.of(record.position());
                    let fields = Row {
                        columns: &self.columns,
                        record: &record,
                    };
                    match row(&fields, line) {
                        Ok(value) => out.push(value),
                        Err(reason) => errors.push(RowError {
                            file: self.file.to_owned(),
                            line,
                            reason,
                        }),
                    }
                }
                Err(e) => errors.push(unreadable_row(&mut self.lines, self.file, &e)),
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

/// One record, read by column name.
struct Row<'r> {
    columns: &'r HashMap<String, usize>,
    record: &'r csv::StringRecord,
}

impl<'r> Row<'r> {
    /// The trimmed field, or "" when the record is short.
    fn get(&self, name: &str) -> &'r str {
        self.columns
            .get(name)
            .and_then(|&i| self.record.get(i))
            .map(str::trim)
            .unwrap_or("")
    }
}

fn time_field(raw: &str, name: &str) -> Result<Millis, String> {
    if raw.is_empty() {
        return Err(format!("{name} is empty"));
    }
    parse_timestamp(raw).ok_or_else(|| {
        format!("{name} {raw:?} is not an RFC 3339 time such as 2026-03-02T14:05:00Z")
    })
}

fn sku_field(raw: &str) -> Result<String, String> {
    if raw.is_empty() {
        return Err("sku is empty".to_owned());
    }
    Ok(raw.to_owned())
}

fn positive_quantity(raw: &str) -> Result<u32, String> {
    match raw.parse::<u32>() {
        Ok(q) if q > 0 => Ok(q),
        _ => Err(format!(
            "quantity {raw:?} must be a whole number of units, 1 or more"
        )),
    }
}

/// `ORDERS.csv`: `occurred_at,channel,sku,quantity[,order_id]`.
pub fn read_orders(file: &str, text: &str) -> Result<Vec<OrderRow>, Vec<RowError>> {
    let table = Table::open(file, text, &["occurred_at", "channel", "sku", "quantity"])?;
    table.rows(|row, line| {
        Ok(OrderRow {
            at: time_field(row.get("occurred_at"), "occurred_at")?,
            channel: Channel::parse(row.get("channel"))?,
            sku: sku_field(row.get("sku"))?,
            quantity: positive_quantity(row.get("quantity"))?,
            line,
        })
    })
}

/// `STOCK.csv`: `sku,on_hand`, each SKU once.
pub fn read_stock(file: &str, text: &str) -> Result<Vec<StockRow>, Vec<RowError>> {
    let table = Table::open(file, text, &["sku", "on_hand"])?;
    let mut first_line: HashMap<String, u64> = HashMap::new();
    table.rows(|row, line| {
        let sku = sku_field(row.get("sku"))?;
        let raw = row.get("on_hand");
        let on_hand = match raw.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return Err(format!(
                    "on_hand {raw:?} must be a whole number of units, 0 or more"
                ));
            }
        };
        if let Some(first) = first_line.insert(sku.clone(), line) {
            return Err(format!(
                "sku {sku:?} is listed twice (first on line {first})"
            ));
        }
        Ok(StockRow { sku, on_hand, line })
    })
}

/// `RESTOCKS.csv`: `occurred_at,sku,quantity`.
pub fn read_restocks(file: &str, text: &str) -> Result<Vec<RestockRow>, Vec<RowError>> {
    let table = Table::open(file, text, &["occurred_at", "sku", "quantity"])?;
    table.rows(|row, line| {
        Ok(RestockRow {
            at: time_field(row.get("occurred_at"), "occurred_at")?,
            sku: sku_field(row.get("sku"))?,
            quantity: positive_quantity(row.get("quantity"))?,
            line,
        })
    })
}

/// `CHANNELS.toml`: one table per marketplace channel, with its `delay` (`"90s"`, or
/// `{ min = "5m", max = "15m" }`) and optionally the dynamic buffer's `risk_target`,
/// `min_buffer`, `max_buffer`, `low_stock_units` and `low_stock_max_delay`. Applied to `settings`; a channel it names is counted even
/// without orders.
pub fn read_channels(file: &str, text: &str, settings: &mut Settings) -> Result<(), Vec<RowError>> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e
            .span()
            .map(|span| text[..span.start.min(text.len())].lines().count().max(1) as u64)
            .unwrap_or(0);
        vec![RowError {
            file: file.to_owned(),
            line,
            reason: format!("not TOML: {}", e.message()),
        }]
    })?;
    let mut errors = Vec::new();
    for (name, value) in &table {
        let mut fail = |reason: String| {
            errors.push(RowError {
                file: file.to_owned(),
                line: 0,
                reason: format!("[{name}] {reason}"),
            })
        };
        let channel = match Channel::parse(name) {
            Ok(Channel::Storefront) => {
                fail("storefront orders reserve through stockguard: it has no delay to set".into());
                continue;
            }
            Ok(c) => c,
            Err(e) => {
                fail(e);
                continue;
            }
        };
        let Some(entries) = value.as_table() else {
            fail("must be a table, e.g. [amazon] delay = \"10m\"".into());
            continue;
        };
        let mut policy = DynamicPolicy::default();
        for (key, value) in entries {
            let applied = match key.as_str() {
                "delay" => read_delay(value).map(|d| {
                    settings.delays.insert(channel, d);
                }),
                "risk_target" => value
                    .as_float()
                    .ok_or_else(|| "risk_target must be a number such as 0.01".to_owned())
                    .map(|p| policy.risk_target = p),
                "min_buffer" => whole_units(value, key).map(|n| policy.min_units = n),
                "max_buffer" => whole_units(value, key).map(|n| policy.max_units = Some(n)),
                "low_stock_units" => whole_units(value, key).map(|n| policy.low_stock_units = n),
                "low_stock_max_delay" => value
                    .as_str()
                    .ok_or_else(|| {
                        "low_stock_max_delay must be a duration such as \"1m\"".to_owned()
                    })
                    .and_then(|raw| {
                        parse_duration(raw).map_err(|e| format!("low_stock_max_delay: {e}"))
                    })
                    .map(|ms| policy.low_stock_max_delay_ms = ms),
                other => Err(format!(
                    "unknown setting {other:?}: a channel takes delay, risk_target, min_buffer, \
                     max_buffer, low_stock_units, low_stock_max_delay"
                )),
            };
            if let Err(e) = applied {
                fail(e);
            }
        }
        match policy.validate() {
            Ok(()) => {
                settings.dynamic.insert(channel, policy);
            }
            Err(e) => fail(
                e.replace("--risk-target", "risk_target")
                    .replace("--min-buffer", "min_buffer")
                    .replace("--max-buffer", "max_buffer"),
            ),
        }
        if !settings.configured.contains(&channel) {
            settings.configured.push(channel);
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

fn whole_units(value: &toml::Value, key: &str) -> Result<i64, String> {
    value
        .as_integer()
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("{key} must be a whole number of units, 0 or more"))
}

fn read_delay(value: &toml::Value) -> Result<Delay, String> {
    const HOW: &str =
        "delay must be a duration such as \"90s\", or { min = \"5m\", max = \"15m\" }";
    let duration = |v: Option<&toml::Value>| -> Result<Millis, String> {
        let raw = v
            .and_then(toml::Value::as_str)
            .ok_or_else(|| HOW.to_owned())?;
        parse_duration(raw).map_err(|e| format!("delay: {e}"))
    };
    match value {
        toml::Value::String(_) => Ok(Delay::Fixed(duration(Some(value))?)),
        toml::Value::Table(t) => {
            if let Some(extra) = t.keys().find(|k| *k != "min" && *k != "max") {
                return Err(format!("delay has an unknown key {extra:?}; {HOW}"));
            }
            let (min, max) = (duration(t.get("min"))?, duration(t.get("max"))?);
            if min > max {
                return Err(format!(
                    "delay min ({}) is above its max ({})",
                    crate::settings::format_duration(min),
                    crate::settings::format_duration(max)
                ));
            }
            Ok(Delay::Uniform { min, max })
        }
        _ => Err(HOW.to_owned()),
    }
}

/// Numbers the SKUs, sorts orders and restocks by time, and sets the start and end. Restocks
/// outside the replayed span are dropped: STOCK.csv already counts those before the start, and
/// those after the last order change nothing the audit measures.
pub fn assemble(
    orders: Vec<OrderRow>,
    stock: Vec<StockRow>,
    restocks: Vec<RestockRow>,
    orders_file: &str,
) -> Result<AuditInput, Vec<RowError>> {
    if orders.is_empty() {
        return Err(vec![RowError {
            file: orders_file.to_owned(),
            line: 0,
            reason: "there are no orders to replay".to_owned(),
        }]);
    }
    let mut index: HashMap<String, SkuIndex> = HashMap::new();
    let mut skus: Vec<String> = Vec::new();
    let mut number = |sku: String| -> SkuIndex {
        *index.entry(sku).or_insert_with_key(|sku| {
            skus.push(sku.clone());
            (skus.len() - 1) as SkuIndex
        })
    };
    let stocked: Vec<(SkuIndex, i64)> = stock
        .into_iter()
        .map(|row| (number(row.sku), row.on_hand))
        .collect();
    let mut orders: Vec<Order> = orders
        .into_iter()
        .map(|row| Order {
            at: row.at,
            channel: row.channel,
            sku: number(row.sku),
            quantity: row.quantity,
        })
        .collect();
    // Stable: orders at the same instant keep their order in the file.
    orders.sort_by_key(|o| o.at);
    let start = orders[0].at;
    let end = orders[orders.len() - 1].at;
    let mut restocks: Vec<Restock> = restocks
        .into_iter()
        .filter(|r| r.at >= start && r.at <= end)
        .map(|row| Restock {
            at: row.at,
            sku: number(row.sku),
            quantity: row.quantity,
        })
        .collect();
    restocks.sort_by_key(|r| r.at);

    let mut start_stock = vec![0; skus.len()];
    let mut has_stock = vec![false; skus.len()];
    for (sku, on_hand) in stocked {
        start_stock[sku as usize] = on_hand;
        has_stock[sku as usize] = true;
    }
    let mut ordered = vec![false; skus.len()];
    for o in &orders {
        ordered[o.sku as usize] = true;
    }
    let unstocked_skus = (0..skus.len())
        .filter(|&i| ordered[i] && !has_stock[i])
        .map(|i| skus[i].clone())
        .collect();
    Ok(AuditInput {
        skus,
        start_stock,
        orders,
        restocks,
        start,
        end,
        unstocked_skus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_are_read_in_any_column_order_with_an_optional_order_id() {
        let text = "sku,quantity,occurred_at,channel,order_id\n\
                    A,2,2026-03-02T10:00:00Z,amazon,o-1\n\
                    B,1,2026-03-02T10:00:01.500+01:00,storefront,\n";
        let rows = read_orders("ORDERS.csv", text).unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].channel, Channel::Amazon);
        assert_eq!(rows[0].quantity, 2);
        assert_eq!(
            rows[1].at,
            parse_timestamp("2026-03-02T09:00:01.500Z").unwrap()
        );
        assert_eq!(rows[1].line, 3);
    }

    #[test]
    fn every_bad_order_row_is_reported_with_its_line_and_reason() {
        let text = "occurred_at,channel,sku,quantity\n\
                    2026-03-02T10:00:00Z,amazon,A,1\n\
                    yesterday,amazon,A,1\n\
                    2026-03-02T10:00:00Z,etsy,A,1\n\
                    2026-03-02T10:00:00Z,ebay,,1\n\
                    2026-03-02T10:00:00Z,ebay,A,0\n\
                    2026-03-02T10:00:00Z,ebay,A,1.5\n";
        let errors = read_orders("ORDERS.csv", text).unwrap_err();
        let lines: Vec<u64> = errors.iter().map(|e| e.line).collect();
        assert_eq!(lines, [3, 4, 5, 6, 7]);
        assert!(errors[0].reason.contains("RFC 3339"), "{}", errors[0]);
        assert!(errors[1].reason.contains("\"etsy\""), "{}", errors[1]);
        assert!(errors[2].reason.contains("sku is empty"), "{}", errors[2]);
        assert!(errors[3].reason.contains("1 or more"), "{}", errors[3]);
        assert_eq!(errors[0].to_string().split(':').next(), Some("ORDERS.csv"));
    }

    #[test]
    fn a_missing_column_is_one_error_naming_it() {
        let errors = read_orders("ORDERS.csv", "occurred_at,sku,qty\n").unwrap_err();
        assert_eq!(errors.len(), 1);
        assert!(
            errors[0].reason.contains("channel, quantity"),
            "{}",
            errors[0]
        );
        let errors = read_orders("ORDERS.csv", "").unwrap_err();
        assert!(errors[0].reason.contains("empty"), "{}", errors[0]);
    }

    #[test]
    fn a_quoted_field_with_a_newline_keeps_later_line_numbers_true() {
        let text = "occurred_at,channel,sku,quantity,order_id\n\
                    2026-03-02T10:00:00Z,amazon,A,1,\"two\nlines\"\n\
                    2026-03-02T10:00:00Z,amazon,A,x,\n";
        let errors = read_orders("ORDERS.csv", text).unwrap_err();
        assert_eq!(errors[0].line, 4);
    }

    #[test]
    fn crlf_line_endings_keep_line_numbers_true() {
        let text = "occurred_at,channel,sku,quantity\r\n\
                    2026-03-02T10:00:00Z,amazon,A,1\r\n\
                    2026-03-02T10:00:00Z,amazon,A,1\r\n\
                    2026-03-02T10:00:00Z,amazon,A,x\r\n";
        let errors = read_orders("ORDERS.csv", text).unwrap_err();
        assert_eq!(errors[0].line, 4, "{}", errors[0]);
    }

    #[test]
    fn stock_rejects_negative_and_repeated_skus() {
        let errors = read_stock("STOCK.csv", "sku,on_hand\nA,5\nB,-1\nA,3\n").unwrap_err();
        assert_eq!(errors.len(), 2);
        assert!(errors[0].reason.contains("0 or more"));
        assert!(
            errors[1].reason.contains("first on line 2"),
            "{}",
            errors[1]
        );
    }

    #[test]
    fn channels_take_fixed_and_uniform_delays_and_dynamic_settings() {
        let mut settings = Settings::default();
        let text = "[amazon]\ndelay = { min = \"5m\", max = \"15m\" }\nrisk_target = 0.001\n\
                    low_stock_units = 3\nlow_stock_max_delay = \"2m\"\n\
                    [shopify]\ndelay = \"90s\"\nmin_buffer = 1\n";
        read_channels("CHANNELS.toml", text, &mut settings).unwrap();
        assert_eq!(
            settings.delay(Channel::Amazon),
            Delay::Uniform {
                min: 300_000,
                max: 900_000
            }
        );
        assert_eq!(settings.delay(Channel::Shopify), Delay::Fixed(90_000));
        assert_eq!(
            settings.delay(Channel::Ebay),
            Delay::default_for(Channel::Ebay)
        );
        assert_eq!(settings.dynamic_policy(Channel::Amazon).risk_target, 0.001);
        assert_eq!(settings.dynamic_policy(Channel::Shopify).min_units, 1);
        let amazon = settings.dynamic_policy(Channel::Amazon);
        assert_eq!(
            (amazon.low_stock_units, amazon.low_stock_max_delay_ms),
            (3, 120_000)
        );
        assert_eq!(settings.configured, [Channel::Amazon, Channel::Shopify]);
    }

    #[test]
    fn bad_channel_settings_name_the_channel_and_the_problem() {
        let mut settings = Settings::default();
        let text = "[etsy]\ndelay = \"1s\"\n[amazon]\ndelay = \"soon\"\n\
                    [ebay]\ndelay = { min = \"2m\", max = \"1m\" }\n[walmart]\nspeed = 3\n\
                    [shopify]\nrisk_target = 2.0\n";
        let errors = read_channels("CHANNELS.toml", text, &mut settings).unwrap_err();
        let text: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(errors.len(), 5, "{text:#?}");
        assert!(text.iter().any(|e| e.contains("[etsy] channel \"etsy\"")));
        assert!(
            text.iter()
                .any(|e| e.contains("[amazon] delay: duration \"soon\""))
        );
        assert!(
            text.iter()
                .any(|e| e.contains("[ebay] delay min (2m) is above its max (1m)"))
        );
        assert!(
            text.iter()
                .any(|e| e.contains("[walmart] unknown setting \"speed\""))
        );
        assert!(
            text.iter()
                .any(|e| e.contains("[shopify] risk_target must be between 0 and 1"))
        );
        let errors = read_channels("CHANNELS.toml", "[amazon\n", &mut settings).unwrap_err();
        assert_eq!(errors[0].line, 1);
    }

    #[test]
    fn assembly_sorts_by_time_keeps_ties_in_file_order_and_drops_restocks_outside_the_span() {
        let t = |s: &str| parse_timestamp(s).unwrap();
        let row = |at: &str, sku: &str, channel, line| OrderRow {
            at: t(at),
            channel,
            sku: sku.to_owned(),
            quantity: 1,
            line,
        };
        let orders = vec![
            row("2026-03-02T10:05:00Z", "B", Channel::Ebay, 2),
            row("2026-03-02T10:00:00Z", "A", Channel::Amazon, 3),
            row("2026-03-02T10:05:00Z", "A", Channel::Shopify, 4),
        ];
        let stock = vec![StockRow {
            sku: "A".into(),
            on_hand: 4,
            line: 2,
        }];
        let restock = |at: &str| RestockRow {
            at: t(at),
            sku: "A".into(),
            quantity: 3,
            line: 2,
        };
        let restocks = vec![
            restock("2026-03-02T09:00:00Z"),
            restock("2026-03-02T10:01:00Z"),
            restock("2026-03-02T11:00:00Z"),
        ];
        let input = assemble(orders, stock, restocks, "ORDERS.csv").unwrap();
        assert_eq!(input.skus, ["A", "B"]);
        assert_eq!(input.start_stock, [4, 0]);
        assert_eq!(input.unstocked_skus, ["B"]);
        let channels: Vec<Channel> = input.orders.iter().map(|o| o.channel).collect();
        assert_eq!(channels, [Channel::Amazon, Channel::Ebay, Channel::Shopify]);
        assert_eq!(input.restocks.len(), 1);
        assert_eq!(
            (input.start, input.end),
            (t("2026-03-02T10:00:00Z"), t("2026-03-02T10:05:00Z"))
        );
        assert!(assemble(vec![], vec![], vec![], "ORDERS.csv").is_err());
    }
}
