//! Identifiers and quantities of the contract, validated once at the edge.

use std::borrow::Cow;
use std::fmt;

use chrono::{DateTime, SecondsFormat, Utc};
use schemars::{JsonSchema, Schema, SchemaGenerator, json_schema};
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
            const MAX: u32 = $max;

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

/// The schema of an identifier is the rule `parse` applies (every allowed character is ASCII, so
/// characters and bytes count the same). Inlined: integrators read the rule at each field.
macro_rules! string_id_schema {
    ($($name:ident),+) => {$(
        impl JsonSchema for $name {
            fn inline_schema() -> bool {
                true
            }
            fn schema_name() -> Cow<'static, str> {
                stringify!($name).into()
            }
            fn json_schema(_: &mut SchemaGenerator) -> Schema {
                json_schema!({
                    "type": "string",
                    "minLength": 1,
                    "maxLength": $name::MAX,
                    "pattern": format!("^{}+$", $name::ALLOWED),
                })
            }
        }
    )+};
}

string_id_schema!(Sku, EventId, EntityId, ChannelName);

/// One line of a cart or an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Line {
    pub sku: Sku,
    /// Units of the SKU.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub quantity: i64,
}
