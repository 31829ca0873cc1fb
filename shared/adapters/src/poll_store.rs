//! What the order pollers keep between runs: each channel's cursor (where its next window
//! starts, and the unreadable page last dead-lettered, so it is dead-lettered once), and which
//! order changes were already published, so that an order read again by an overlapping window
//! is neither published nor dead-lettered twice.

use std::collections::HashSet;

use stockguard_domain::{ChannelName, Millis};

use crate::error::AdapterError;
use crate::items::*;
use crate::store::StateStore;

fn cursor_pk(channel: &ChannelName) -> String {
    format!("POLL#{channel}")
}
const CURSOR: &str = "CURSOR";
fn seen_pk(channel: &ChannelName, event_id: &str) -> String {
    format!("POLLED#{channel}#{event_id}")
}
const SEEN: &str = "SEEN";

/// A channel's saved poll position.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollCursor {
    /// Where the next window starts (epoch milliseconds of the channel's modification times).
    pub from: Option<Millis>,
    /// A fingerprint of the unreadable page last dead-lettered, while the cursor waits on it.
    pub failed_page: Option<String>,
}

impl StateStore {
    pub async fn poll_cursor(&self, channel: &ChannelName) -> Result<PollCursor, AdapterError> {
        let items = self
            .batch_get_keys(vec![key(cursor_pk(channel), CURSOR)])
            .await?;
        let Some(item) = items.first() else {
            return Ok(PollCursor::default());
        };
        Ok(PollCursor {
            from: get_opt_i64(item, "from_ms")?,
            failed_page: get_opt_s(item, "failed_page").map(str::to_owned),
        })
    }

    pub async fn set_poll_cursor(
        &self,
        channel: &ChannelName,
        cursor: &PollCursor,
    ) -> Result<(), AdapterError> {
        let mut item = key(cursor_pk(channel), CURSOR);
        if let Some(from) = cursor.from {
            item.insert("from_ms".into(), n(from));
        }
        if let Some(page) = &cursor.failed_page {
            item.insert("failed_page".into(), s(page.as_str()));
        }
        self.put_plain(item).await
    }

    /// Which of `event_ids` the channel's poller already published.
    pub async fn polled_changes(
        &self,
        channel: &ChannelName,
        event_ids: &[String],
    ) -> Result<HashSet<String>, AdapterError> {
        let keys = event_ids
            .iter()
            .collect::<HashSet<_>>()
            .into_iter()
            .map(|id| key(seen_pk(channel, id), SEEN))
            .collect();
        let prefix = format!("POLLED#{channel}#");
        self.batch_get_keys(keys)
            .await?
            .iter()
            .map(|item| {
                Ok(get_s(item, "pk")?
                    .strip_prefix(&prefix)
                    .unwrap_or_default()
                    .to_owned())
            })
            .collect()
    }

    /// Records that `event_id` was published, until `expires_at` (epoch seconds; the table's TTL
    /// removes it after the channel stops returning the order).
    pub async fn record_polled_change(
        &self,
        channel: &ChannelName,
        event_id: &str,
        expires_at: i64,
    ) -> Result<(), AdapterError> {
        let mut item = key(seen_pk(channel, event_id), SEEN);
        item.insert("ttl".into(), n(expires_at));
        self.put_plain(item).await
    }
}
