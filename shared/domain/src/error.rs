use std::fmt;

/// A contract violation in an inbound event or request: which rule, which field, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidInput {
    /// Stable machine-readable code, e.g. `missing_field`, `invalid_sku`, `duplicate_sku`.
    pub code: &'static str,
    /// The offending field, e.g. `lines[2].quantity`.
    pub field: String,
    pub message: String,
}

impl InvalidInput {
    pub fn new(code: &'static str, field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code,
            field: field.into(),
            message: message.into(),
        }
    }

    /// Prefixes the field with its container, e.g. `quantity` within `lines[0]`.
    pub fn within(mut self, container: &str) -> Self {
        self.field = format!("{container}.{}", self.field);
        self
    }
}

impl fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.code, self.field, self.message)
    }
}
