//! The gateway crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong inside the gateway library.
///
/// Messages never contain message text: variants carry field names, ids and
/// causes only.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration file could not be read or is invalid; the string names
    /// every problem found.
    #[error("configuration: {0}")]
    Config(String),
    /// A file or directory operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done ("create", "read", …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store failed: a query, or the commit of a group of writes (the
    /// string says which and why; never a stored value).
    #[error("store: {0}")]
    Store(String),
    /// The store's writer thread has stopped (the service is shutting down).
    #[error("store writer is not running")]
    StoreClosed,
    /// The disk under the store is full: nothing was committed.
    #[error("storage full: the database could not grow")]
    StorageFull,
    /// A message that may not have content at rest (`[privacy]`) could not
    /// be handed to its next hop in time; nothing of its body was kept.
    #[error("content_not_retained: not handed over within the transit deadline")]
    NotRetained,
    /// An envelope could not be parsed, sealed or opened.
    #[error("envelope: {0}")]
    Envelope(String),
    /// A key file is missing, unreadable or malformed.
    #[error("keys: {0}")]
    Keys(String),
    /// Input from a client or carrier is invalid; the string says which field and why.
    #[error("invalid {field}: {reason}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// Why it was refused (never the field's content if it is message text).
        reason: String,
    },
    /// Refused by policy (block list, opt-out); the string says why.
    #[error("refused: {0}")]
    Refused(String),
    /// An `Idempotency-Key` was used again, within its window, for a
    /// different request body.
    #[error("the Idempotency-Key was used for a different request")]
    IdempotencyConflict,
    /// Over a rate limit; retry after this many seconds.
    #[error("rate limit `{limit}` exceeded; retry after {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the message would conform.
        retry_after_secs: u64,
        /// Which limit said no (`sender`, `pair`, `recipient`, `route`).
        limit: &'static str,
    },
    /// A tenant's send named a `from` outside its senders.
    #[error("the sender is not one of this tenant's senders")]
    SenderNotAllowed,
    /// A tenant's daily quota of accepted messages is used up; it renews
    /// after this many seconds (the next UTC midnight).
    #[error("the daily message quota is used up; it renews in {retry_after_secs} s")]
    QuotaExceeded {
        /// Seconds until the next UTC day.
        retry_after_secs: u64,
    },
    /// The thing asked for does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A downstream HTTP call failed in a way worth retrying.
    #[error("delivery failed (transient): {0}")]
    Transient(String),
    /// A downstream HTTP call failed in a way that retrying cannot fix.
    #[error("delivery failed (permanent): {0}")]
    Permanent(String),
    /// The gateway has no route for this message (none configured, or no
    /// rule matches): the operator's to fix, not the client's.
    #[error("no route: {0}")]
    NoRoute(String),
}

impl Error {
    /// Shorthand for [`Error::Invalid`].
    pub fn invalid(field: &'static str, reason: impl Into<String>) -> Self {
        Self::Invalid {
            field,
            reason: reason.into(),
        }
    }

    /// Shorthand for [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            action,
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same operation later may succeed. Retry logic uses
    /// this instead of matching on strings.
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            Self::Transient(_)
                | Self::StoreClosed
                | Self::StorageFull
                | Self::NotRetained
                | Self::Io { .. }
        )
    }
}

/// Result alias for the gateway crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
