//! What an audit replays: the orders, stock and restocks of a seller, in memory and in time order.

use std::fmt;

use stockguard_domain::{ChannelKind, Millis};

/// Where an order was taken. The four marketplaces are pushed quantities and can be late;
/// the storefront reserves through stockguard and sees the true `available`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Channel {
    Shopify,
    Amazon,
    Walmart,
    Ebay,
    Storefront,
}

impl Channel {
    pub const ALL: [Channel; 5] = [
        Channel::Shopify,
        Channel::Amazon,
        Channel::Walmart,
        Channel::Ebay,
        Channel::Storefront,
    ];
    pub const MARKETPLACES: [Channel; 4] = [
        Channel::Shopify,
        Channel::Amazon,
        Channel::Walmart,
        Channel::Ebay,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Shopify => "shopify",
            Channel::Amazon => "amazon",
            Channel::Walmart => "walmart",
            Channel::Ebay => "ebay",
            Channel::Storefront => "storefront",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, String> {
        Channel::ALL
            .into_iter()
            .find(|c| c.as_str() == raw)
            .ok_or_else(|| {
                format!("channel {raw:?} is not one of: shopify, amazon, walmart, ebay, storefront")
            })
    }

    pub fn is_marketplace(self) -> bool {
        self != Channel::Storefront
    }

    /// The adapter kind of a marketplace; `None` for the storefront, which is not pushed to.
    pub fn kind(self) -> Option<ChannelKind> {
        match self {
            Channel::Shopify => Some(ChannelKind::Shopify),
            Channel::Amazon => Some(ChannelKind::Amazon),
            Channel::Walmart => Some(ChannelKind::Walmart),
            Channel::Ebay => Some(ChannelKind::Ebay),
            Channel::Storefront => None,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A SKU's position in [`AuditInput::skus`]: the simulation indexes its state by it.
pub type SkuIndex = u32;

/// One order line as the audit replays it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Order {
    pub at: Millis,
    pub channel: Channel,
    pub sku: SkuIndex,
    pub quantity: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restock {
    pub at: Millis,
    pub sku: SkuIndex,
    pub quantity: u32,
}

/// Everything one audit replays, validated: orders and restocks sorted by time (ties keep their
/// order in the files), restocks before `start` already counted in the start stock.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditInput {
    /// Every SKU named in any file, in the order first seen.
    pub skus: Vec<String>,
    /// On hand at `start`, by SKU index (0 for a SKU that STOCK.csv does not list).
    pub start_stock: Vec<i64>,
    pub orders: Vec<Order>,
    pub restocks: Vec<Restock>,
    /// The first order's time.
    pub start: Millis,
    /// The last order's time.
    pub end: Millis,
    /// SKUs that have orders but no row in STOCK.csv (counted from 0 on hand).
    pub unstocked_skus: Vec<String>,
}

/// A row the audit cannot use: where it is and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub file: String,
    /// 1-based; the header is line 1. 0 for a problem with the file as a whole.
    pub line: u64,
    pub reason: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.file, self.reason)
        } else {
            write!(f, "{}:{}: {}", self.file, self.line, self.reason)
        }
    }
}

/// An order row as read from any orders file (ours, a Shopify export, an Amazon report), before
/// SKUs are numbered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRow {
    pub at: Millis,
    pub channel: Channel,
    pub sku: String,
    pub quantity: u32,
    /// The file's line, for errors found later.
    pub line: u64,
}
