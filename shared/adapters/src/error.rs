use std::fmt;

/// An adapter failure, opaque but classified: callers ask predicates, not match SDK types.
#[derive(Debug, thiserror::Error)]
pub struct AdapterError {
    kind: Kind,
    message: String,
    /// A cancelled transaction's reason per item, in order (`None` for an item that was fine).
    reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A condition of a conditional write or transaction did not hold.
    ConditionFailed,
    /// Throttling, timeouts, service errors: the same call may succeed later.
    Transient,
    /// Malformed stored data or a request the service will never accept.
    Permanent,
}

impl AdapterError {
    pub fn condition_failed(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::ConditionFailed,
            message: message.into(),
            reasons: Vec::new(),
        }
    }
    pub fn transient(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Transient,
            message: message.into(),
            reasons: Vec::new(),
        }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        Self {
            kind: Kind::Permanent,
            message: message.into(),
            reasons: Vec::new(),
        }
    }
    /// A transaction cancelled because a condition did not hold (or a concurrent transaction
    /// touched an item), with the reason of each item.
    pub fn cancelled(message: impl Into<String>, reasons: Vec<String>) -> Self {
        Self {
            reasons,
            ..Self::condition_failed(message)
        }
    }
    /// Per-item reasons of a cancelled transaction (empty when not known).
    pub fn cancellation_reasons(&self) -> &[String] {
        &self.reasons
    }
    pub fn is_condition_failed(&self) -> bool {
        self.kind == Kind::ConditionFailed
    }
    pub fn is_retryable(&self) -> bool {
        self.kind != Kind::Permanent
    }
}

impl fmt::Display for AdapterError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

/// Classifies an SDK error by its service error code.
pub(crate) fn classify<E, R>(op: &str, err: aws_sdk_dynamodb::error::SdkError<E, R>) -> AdapterError
where
    E: aws_sdk_dynamodb::error::ProvideErrorMetadata + std::error::Error + 'static,
    R: fmt::Debug,
{
    use aws_sdk_dynamodb::error::SdkError;
    let message = match &err {
        SdkError::ServiceError(s) => {
            let e = s.err();
            let code = e.code().unwrap_or("unknown");
            let msg = format!("{op}: {code}: {}", e.message().unwrap_or_default());
            return match code {
                "ConditionalCheckFailedException" | "TransactionConflictException" => {
                    AdapterError::condition_failed(msg)
                }
                "ValidationException" | "ResourceNotFoundException" | "AccessDeniedException" => {
                    AdapterError::permanent(msg)
                }
                _ => AdapterError::transient(msg),
            };
        }
        other => format!(
            "{op}: {}",
            aws_sdk_dynamodb::error::DisplayErrorContext(other)
        ),
    };
    AdapterError::transient(message)
}
