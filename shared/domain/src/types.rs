//! Identifiers and quantities of the contract, validated once at the edge.

use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Milliseconds since the Unix epoch. Timestamps are compared at this precision.
pub type Millis = i64;

pub fn parse_timestamp(raw: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(raw)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

pub fn format_timestamp(ms: Millis) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

macro_rules! string_id {
    ($name:ident, $what:literal, $max:literal, $allowed:expr) => {
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub fn parse(raw: &str) -> Result<Self, String> {
                let ok_chars = raw.chars().all($allowed);
                if raw.is_empty() || raw.len() > $max || !ok_chars {
                    return Err(format!(
                        concat!($what, " {:?} must be 1 to ", $max, " characters of {}"),
                        raw,
                        $name::ALLOWED
                    ));
                }
                Ok(Self(raw.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

string_id!(Sku, "sku", 64, |c: char| c.is_ascii_alphanumeric()
    || matches!(c, '.' | '_' | '/' | '-'));
string_id!(EventId, "event_id", 128, |c: char| c
    .is_ascii_alphanumeric()
    || matches!(c, '.' | '_' | ':' | '-'));
// The contract does not constrain reservation, order and return ids; they become parts of table
// keys, so they follow the event_id alphabet.
string_id!(EntityId, "id", 128, |c: char| c.is_ascii_alphanumeric()
    || matches!(c, '.' | '_' | ':' | '-'));
string_id!(ChannelName, "channel", 32, |c: char| c.is_ascii_lowercase()
    || c.is_ascii_digit()
    || matches!(c, '_' | '-'));

impl Sku {
    const ALLOWED: &'static str = "[A-Za-z0-9._/-]";
}
impl EventId {
    const ALLOWED: &'static str = "[A-Za-z0-9._:-]";
}
impl EntityId {
    const ALLOWED: &'static str = "[A-Za-z0-9._:-]";
}
impl ChannelName {
    const ALLOWED: &'static str = "[a-z0-9_-]";
}

/// One line of a cart or an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub sku: Sku,
    pub quantity: i64,
}
