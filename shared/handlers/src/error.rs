use stockguard_adapters::AdapterError;
use stockguard_domain::InvalidInput;

/// Why an inbound event could not be applied, classified for the batch edge: permanent failures
/// go to the dead-letter queue at once; retryable ones are retried up to the budget.
#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error("{0}")]
    Invalid(InvalidInput),
    #[error(
        "idempotency_key_reused: event_id {event_id} was already applied with a different payload"
    )]
    KeyReused { event_id: String },
    /// The event contradicts recorded state (e.g. releasing a confirmed reservation).
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    /// It refers to something not known yet (a confirm before its request): retry with back-off.
    #[error("not_yet_known: {0}")]
    NotYetKnown(String),
    #[error("transient: {0}")]
    Transient(String),
    #[error("store: {0}")]
    Store(String),
}

impl ApplyError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, ApplyError::NotYetKnown(_) | ApplyError::Transient(_))
    }

    /// Stable reason code for dead letters and logs.
    pub fn code(&self) -> &'static str {
        match self {
            ApplyError::Invalid(e) => e.code,
            ApplyError::KeyReused { .. } => "idempotency_key_reused",
            ApplyError::Conflict { code, .. } => code,
            ApplyError::NotYetKnown(_) => "not_yet_known",
            ApplyError::Transient(_) => "transient",
            ApplyError::Store(_) => "store_error",
        }
    }
}

impl From<AdapterError> for ApplyError {
    fn from(e: AdapterError) -> Self {
        if e.is_retryable() {
            ApplyError::Transient(e.to_string())
        } else {
            ApplyError::Store(e.to_string())
        }
    }
}

impl From<InvalidInput> for ApplyError {
    fn from(e: InvalidInput) -> Self {
        ApplyError::Invalid(e)
    }
}

impl From<stockguard_domain::plan::Conflict> for ApplyError {
    fn from(c: stockguard_domain::plan::Conflict) -> Self {
        ApplyError::Conflict {
            code: c.code,
            message: c.message,
        }
    }
}
