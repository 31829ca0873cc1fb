//! Which channel a poller reads, its settings from the environment, and what a poll did.

use stockguard_domain::{Millis, ebay, walmart};

/// Which orders API a poller reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PolledChannel {
    Walmart,
    Ebay,
}

impl PolledChannel {
    pub fn name(self) -> &'static str {
        match self {
            Self::Walmart => walmart::CHANNEL,
            Self::Ebay => ebay::CHANNEL,
        }
    }

    /// The source its events are published with (outside `stockguard.`, as any producer's).
    pub fn source(self) -> &'static str {
        match self {
            Self::Walmart => "channel.walmart",
            Self::Ebay => "channel.ebay",
        }
    }
}

#[derive(Debug, Clone)]
pub struct PollSettings {
    /// How far each window reaches back into the previous one.
    pub overlap_ms: Millis,
    /// Orders asked for per page (the channel may serve fewer).
    pub page_size: u32,
    /// Readings of one window when the channel's count of its orders changes while it is read
    /// (an order modified mid-poll can shift an offset page); after these the cursor stays.
    pub max_passes: u32,
    /// Walmart: how long before the window an order may have been created and still be read
    /// (Walmart filters by creation date as well as modification).
    pub created_lookback_ms: Millis,
    /// How long a published change is remembered: longer than the channel keeps returning an
    /// order that is modified again (Walmart 180 days, eBay 90).
    pub remember_secs: i64,
}

impl Default for PollSettings {
    fn default() -> Self {
        Self {
            overlap_ms: 120_000,
            page_size: 100,
            max_passes: 3,
            created_lookback_ms: 180 * 24 * 3600 * 1000,
            remember_secs: 181 * 24 * 3600,
        }
    }
}

impl PollSettings {
    /// The defaults, with `STOCKGUARD_POLL_OVERLAP_SECONDS` and `STOCKGUARD_POLL_PAGE_SIZE`
    /// from `env` when set.
    pub fn from_env(env: crate::functions::Env) -> Result<Self, String> {
        let mut s = Self::default();
        let read = |name: &str| -> Result<Option<i64>, String> {
            match env(name) {
                Some(v) if !v.is_empty() => v
                    .parse::<i64>()
                    .ok()
                    .filter(|n| *n > 0)
                    .map(Some)
                    .ok_or_else(|| format!("{name} must be a positive integer, not {v:?}")),
                _ => Ok(None),
            }
        };
        if let Some(secs) = read("STOCKGUARD_POLL_OVERLAP_SECONDS")? {
            s.overlap_ms = secs * 1000;
        }
        if let Some(size) = read("STOCKGUARD_POLL_PAGE_SIZE")? {
            s.page_size = u32::try_from(size.min(200)).unwrap_or(200);
        }
        Ok(s)
    }
}

/// What one poll did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollReport {
    pub window: Option<(Millis, Millis)>,
    pub pages: u32,
    pub passes: u32,
    /// Order changes published now (first readings).
    pub published: u32,
    /// Order changes read again and skipped (already published).
    pub already_published: u32,
    pub unmapped_lines: u32,
    /// Pages (or orders in them) that could not be read.
    pub unreadable: u32,
    /// Whether the cursor moved on to the next window.
    pub advanced: bool,
    /// The channel is not configured or not enabled: nothing read.
    pub skipped: bool,
}
