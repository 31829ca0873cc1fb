use std::time::Duration;

use crate::model::ChannelKind;

/// A failed call to a channel, opaque but classified: callers ask predicates.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{channel}: {message}")]
pub struct ChannelError {
    kind: Kind,
    channel: ChannelKind,
    status: Option<u16>,
    retry_after: Option<Duration>,
    message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Throttled,
    Timeout,
    /// No HTTP answer at all: connection refused or reset.
    Unreachable,
    Server,
    Unauthorized,
    UnknownListing,
    /// The channel refused the request as it is (4xx, INVALID, DATA_ERROR, user errors).
    Rejected,
    /// An answer this client cannot read; the push may or may not have been applied.
    UnexpectedAnswer,
    /// The client's own configuration or the listing handed to it is wrong.
    Misconfigured,
}

impl ChannelError {
    pub(crate) fn new(kind: Kind, channel: ChannelKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            channel,
            status: None,
            retry_after: None,
            message: message.into(),
        }
    }

    pub(crate) fn throttled(
        channel: ChannelKind,
        retry_after: Option<Duration>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            retry_after,
            ..Self::new(Kind::Throttled, channel, message)
        }
    }

    /// Classifies a non-success HTTP status. `names_listing` says whether the URL names one
    /// listing, so that a 404 means an unknown listing rather than a wrong endpoint.
    pub(crate) fn from_status(
        channel: ChannelKind,
        status: u16,
        names_listing: bool,
        retry_after: Option<Duration>,
        detail: &str,
    ) -> Self {
        let kind = match status {
            429 => Kind::Throttled,
            408 | 504 => Kind::Timeout,
            401 | 403 => Kind::Unauthorized,
            404 if names_listing => Kind::UnknownListing,
            500..=599 => Kind::Server,
            _ => Kind::Rejected,
        };
        Self {
            status: Some(status),
            retry_after: if kind == Kind::Throttled {
                retry_after
            } else {
                None
            },
            ..Self::new(kind, channel, format!("HTTP {status}: {detail}"))
        }
    }

    pub(crate) fn wrong_channel(client: ChannelKind, listing: ChannelKind) -> Self {
        Self::new(
            Kind::Misconfigured,
            client,
            format!("a {listing} listing was handed to the {client} client"),
        )
    }

    pub(crate) fn with_retry_after(mut self, retry_after: Duration) -> Self {
        self.retry_after = Some(retry_after);
        self
    }

    /// True when the same call may succeed later: throttling, timeouts, 5xx, an unreachable
    /// channel, or an answer that could not be read.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            Kind::Throttled
                | Kind::Timeout
                | Kind::Unreachable
                | Kind::Server
                | Kind::UnexpectedAnswer
        )
    }

    pub fn is_throttled(&self) -> bool {
        self.kind == Kind::Throttled
    }

    pub fn is_timeout(&self) -> bool {
        self.kind == Kind::Timeout
    }

    pub fn is_unauthorized(&self) -> bool {
        self.kind == Kind::Unauthorized
    }

    pub fn is_unknown_listing(&self) -> bool {
        self.kind == Kind::UnknownListing
    }

    /// The wait the channel asked for, where it said.
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }

    /// The HTTP status of the answer, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    pub fn channel(&self) -> ChannelKind {
        self.channel
    }

    /// A failure that every later call of the same push would meet too, so they are not sent.
    pub(crate) fn affects_whole_channel(&self) -> bool {
        matches!(
            self.kind,
            Kind::Throttled | Kind::Unreachable | Kind::Unauthorized
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_by_what_a_retry_could_change() {
        let classify = |status, names_listing| {
            ChannelError::from_status(ChannelKind::Ebay, status, names_listing, None, "x")
        };
        assert!(classify(429, false).is_throttled());
        assert!(classify(503, false).is_retryable());
        assert!(classify(504, false).is_timeout());
        assert!(classify(401, false).is_unauthorized());
        assert!(!classify(401, false).is_retryable());
        assert!(classify(404, true).is_unknown_listing());
        assert!(!classify(404, false).is_unknown_listing());
        assert!(!classify(400, true).is_retryable());
    }

    #[test]
    fn only_throttling_keeps_a_retry_after() {
        let wait = Some(Duration::from_secs(2));
        let throttled =
            ChannelError::from_status(ChannelKind::Walmart, 429, false, wait, "slow down");
        let failed = ChannelError::from_status(ChannelKind::Walmart, 500, false, wait, "boom");
        assert_eq!(throttled.retry_after(), wait);
        assert_eq!(failed.retry_after(), None);
        assert_eq!(throttled.to_string(), "walmart: HTTP 429: slow down");
    }
}
