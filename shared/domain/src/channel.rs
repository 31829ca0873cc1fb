//! What a channel should show, and the listing mappings that tie our SKUs to channel items.

use serde::{Deserialize, Serialize};

use crate::csv_lines::CsvLines;
use crate::types::{ChannelName, Sku};

/// What a configured channel is: which adapter pushes to it, which identifiers its listings
/// need and how fast it shows a push. Its name may differ (`amazon-eu` is an Amazon channel).
/// Stored, sent and typed in lowercase (`shopify`, `amazon`, `walmart`, `ebay`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ChannelKind {
    Shopify,
    Amazon,
    Walmart,
    Ebay,
}

impl ChannelKind {
    pub const ALL: [ChannelKind; 4] = [
        ChannelKind::Shopify,
        ChannelKind::Amazon,
        ChannelKind::Walmart,
        ChannelKind::Ebay,
    ];

    /// The kind as configuration and events spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ChannelKind::Shopify => "shopify",
            ChannelKind::Amazon => "amazon",
            ChannelKind::Walmart => "walmart",
            ChannelKind::Ebay => "ebay",
        }
    }

    /// Every kind's name, in [`ChannelKind::ALL`]'s order (CLI choices, messages).
    pub fn names() -> [&'static str; 4] {
        Self::ALL.map(Self::as_str)
    }

    /// The channel's delay from a change to showing it, until enough of its own is measured:
    /// Shopify shows at once; Walmart's and eBay's single-item updates within seconds; Amazon
    /// processes an accepted update within minutes (up to 15 assumed).
    pub fn prior_delay_ms(self) -> i64 {
        match self {
            ChannelKind::Shopify => 1_000,
            ChannelKind::Amazon => 15 * 60 * 1000,
            ChannelKind::Walmart | ChannelKind::Ebay => 5_000,
        }
    }

    /// How late an order taken on the channel may reach us, for holding back a push that would
    /// undo it ([`crate::drift`]). Walmart and eBay are polled every minute: an order waits up to
    /// a minute for the next poll, two when one poll fails. Amazon's SP-API order notifications
    /// usually arrive within a minute or two. Shopify's webhooks arrive within seconds; one that
    /// fails is retried for hours, which no grace covers, so a minute.
    pub fn order_grace_ms(self) -> i64 {
        match self {
            ChannelKind::Shopify => 60_000,
            ChannelKind::Amazon => 5 * 60 * 1000,
            ChannelKind::Walmart | ChannelKind::Ebay => 2 * 60 * 1000,
        }
    }

    /// Whether the channel shows a quantity once it acknowledges it. Amazon does not: its delay
    /// is measured by reading the listing back.
    pub fn shows_on_acknowledge(self) -> bool {
        self != ChannelKind::Amazon
    }
}

impl std::fmt::Display for ChannelKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown channel kind {0:?}: expected shopify, amazon, walmart or ebay")]
pub struct UnknownChannelKind(pub String);

impl std::str::FromStr for ChannelKind {
    type Err = UnknownChannelKind;

    fn from_str(raw: &str) -> Result<Self, Self::Err> {
        ChannelKind::ALL
            .into_iter()
            .find(|kind| kind.as_str() == raw)
            .ok_or_else(|| UnknownChannelKind(raw.to_owned()))
    }
}

/// Units a channel holds back: fixed units plus a percentage of what is available.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct BufferPolicy {
    pub units: i64,
    pub percent: f64,
}

impl BufferPolicy {
    pub fn held_back(&self, available: i64) -> i64 {
        let share = (available.max(0) as f64 * self.percent / 100.0).ceil() as i64;
        self.units.max(0) + share
    }
}

/// `max(0, available - buffer)`, capped by the channel's optional maximum (contract section 3).
pub fn shown_quantity(available: i64, buffer: &BufferPolicy, maximum: Option<i64>) -> i64 {
    let shown = (available - buffer.held_back(available)).max(0);
    maximum.map_or(shown, |m| shown.min(m.max(0)))
}

/// One row of a listings CSV: our SKU and the channel's ids for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListingMapping {
    pub channel: ChannelName,
    pub sku: Sku,
    pub listing_id: String,
    pub location_id: Option<String>,
    pub offer_id: Option<String>,
    pub product_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RejectedRow {
    /// 1-based line number in the file (the header is line 1).
    pub line: usize,
    pub reason: String,
}

pub const LISTING_CSV_HEADER: [&str; 6] = [
    "channel",
    "sku",
    "listing_id",
    "location_id",
    "offer_id",
    "product_type",
];

/// Parses a listings CSV (contract section 4). All or nothing: any rejected row rejects the file,
/// and every rejected row is reported with its line and reason. Cells may be quoted, with `""`
/// for a quote and line breaks inside; blank lines are skipped.
pub fn parse_listings_csv(text: &str) -> Result<Vec<ListingMapping>, Vec<RejectedRow>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut lines = CsvLines::new(text);
    let mut records = reader.records();
    let header: Vec<String> = match records.next() {
        None => {
            return Err(vec![RejectedRow {
                line: 1,
                reason: "the file is empty; expected a header row".into(),
            }]);
        }
        Some(Ok(header)) => header.iter().map(|h| h.trim().to_lowercase()).collect(),
        Some(Err(_)) => Vec::new(),
    };
    if header != LISTING_CSV_HEADER {
        return Err(vec![RejectedRow {
            line: 1,
            reason: format!("the header must be {}", LISTING_CSV_HEADER.join(",")),
        }]);
    }
    let mut rows = Vec::new();
    let mut rejected = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for record in records {
        let (line, cells) = match record {
            Ok(record) => {
                let cells: Vec<String> = record.iter().map(str::to_owned).collect();
                (lines.of(record.position()) as usize, cells)
            }
            Err(e) => {
                let line = lines.of(e.position()) as usize;
                rejected.push(RejectedRow {
                    line,
                    reason: format!("not a CSV row: {e}"),
                });
                continue;
            }
        };
        if cells.iter().all(|c| c.trim().is_empty()) {
            continue;
        }
        match parse_row(&cells) {
            Ok(row) => {
                if !seen.insert((row.channel.clone(), row.sku.clone())) {
                    rejected.push(RejectedRow {
                        line,
                        reason: format!("{} {} is mapped twice in this file", row.channel, row.sku),
                    });
                } else {
                    rows.push(row);
                }
            }
            Err(reason) => rejected.push(RejectedRow { line, reason }),
        }
    }
    if rejected.is_empty() {
        Ok(rows)
    } else {
        Err(rejected)
    }
}

fn parse_row(cells: &[String]) -> Result<ListingMapping, String> {
    if cells.len() != LISTING_CSV_HEADER.len() {
        return Err(format!(
            "{} cells; expected {}",
            cells.len(),
            LISTING_CSV_HEADER.len()
        ));
    }
    let cell = |i: usize| Some(cells[i].trim().to_owned()).filter(|c| !c.is_empty());
    let channel = ChannelName::parse(cells[0].trim()).map_err(|e| format!("channel: {e}"))?;
    let kind: ChannelKind = channel.as_str().parse().map_err(|_| {
        format!(
            "channel {channel} has no adapter; expected one of {}",
            ChannelKind::names().join(", ")
        )
    })?;
    let sku = Sku::parse(cells[1].trim()).map_err(|e| format!("sku: {e}"))?;
    let listing_id = cell(2).ok_or("listing_id is empty")?;
    let (location_id, offer_id, product_type) = (cell(3), cell(4), cell(5));
    let required = match kind {
        ChannelKind::Shopify => Some(("location_id", &location_id)),
        ChannelKind::Ebay => Some(("offer_id", &offer_id)),
        ChannelKind::Amazon => Some(("product_type", &product_type)),
        ChannelKind::Walmart => None,
    };
    if let Some((name, None)) = required {
        return Err(format!("{name} is required for {channel}"));
    }
    if kind == ChannelKind::Shopify {
        for (name, v) in [
            ("listing_id", Some(&listing_id)),
            ("location_id", location_id.as_ref()),
        ] {
            if v.is_some_and(|v| {
                !v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with("gid://shopify/")
            }) {
                return Err(format!(
                    "{name} must be a Shopify numeric id or gid://shopify/... id"
                ));
            }
        }
    }
    Ok(ListingMapping {
        channel,
        sku,
        listing_id,
        location_id,
        offer_id,
        product_type,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channel_kinds_round_trip_through_their_lowercase_names() {
        for kind in ChannelKind::ALL {
            assert_eq!(kind.as_str().parse::<ChannelKind>(), Ok(kind));
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json, serde_json::json!(kind.as_str()));
            assert_eq!(serde_json::from_value::<ChannelKind>(json).unwrap(), kind);
        }
        let err = "etsy".parse::<ChannelKind>().unwrap_err();
        assert!(err.to_string().contains("etsy"), "{err}");
        assert!("Shopify".parse::<ChannelKind>().is_err());
        assert!(serde_json::from_value::<ChannelKind>(serde_json::json!("etsy")).is_err());
    }

    #[test]
    fn shown_quantity_applies_buffer_and_maximum() {
        let none = BufferPolicy::default();
        assert_eq!(shown_quantity(10, &none, None), 10);
        assert_eq!(shown_quantity(-3, &none, None), 0);
        let b = BufferPolicy {
            units: 2,
            percent: 10.0,
        };
        assert_eq!(shown_quantity(10, &b, None), 7);
        assert_eq!(shown_quantity(2, &b, None), 0);
        assert_eq!(shown_quantity(100, &none, Some(25)), 25);
    }

    #[test]
    fn listings_csv_is_all_or_nothing_with_line_numbers() {
        let good = "channel,sku,listing_id,location_id,offer_id,product_type\n\
                    shopify,TEE-1,4455,777,,\n\
                    amazon,TEE-1,TEE-1-AMZ,,,SHIRT\n\
                    walmart,TEE-1,WM-TEE-1,,,\n\
                    ebay,TEE-1,TEE-1,,OFF-9,\n";
        assert_eq!(parse_listings_csv(good).unwrap().len(), 4);
        let bad = "channel,sku,listing_id,location_id,offer_id,product_type\n\
                   shopify,TEE-1,4455,,,\n\
                   walmart,TEE-2,W2,,,\n\
                   etsy,TEE-3,E,,,\n\
                   ebay,bad sku,X,,O,\n\
                   walmart,TEE-2,W3,,,\n\
                   amazon,\"TEE-4\",\"A,1\",,,\"SHIRT\"\n";
        let err = parse_listings_csv(bad).unwrap_err();
        let lines: Vec<usize> = err.iter().map(|r| r.line).collect();
        assert_eq!(lines, [2, 4, 5, 6]);
        assert!(err[0].reason.contains("location_id is required"));
        assert!(err[1].reason.contains("no adapter"));
        assert!(err[2].reason.starts_with("sku"));
        assert!(err[3].reason.contains("twice"));
        assert!(parse_listings_csv("sku,channel\n").is_err());
    }

    #[test]
    fn listings_csv_takes_quoted_line_breaks_crlf_and_blank_lines() {
        let text = "channel,sku,listing_id,location_id,offer_id,product_type\r\n\
                    amazon,TEE-1,\"TEE-1\r\nAMZ\",,,SHIRT\r\n\
                    \r\n\
                    walmart,TEE-1,W1,,,\r\n\
                    etsy,TEE-2,E,,,\r\n";
        let err = parse_listings_csv(text).unwrap_err();
        assert_eq!(err.len(), 1);
        assert_eq!(err[0].line, 6, "{:?}", err[0]);
        let ok = text.rsplit_once("etsy").unwrap().0;
        let rows = parse_listings_csv(ok).unwrap();
        assert_eq!(rows[0].listing_id, "TEE-1\r\nAMZ");
        assert_eq!(rows.len(), 2);
    }
}
