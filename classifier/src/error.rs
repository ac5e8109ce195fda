//! The crate's single error type.
//!
//! Every fallible public function returns [`Error`]. Variants carry enough
//! context (a line number, a field, a path) for an operator to act, and never
//! any message content, because this crate never sees any.

use std::io;

/// Everything that can go wrong in the classifier crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Reading or writing a trace, labels or model file failed at the OS level.
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),

    /// A trace or labels line could not be parsed. `line` is 1-based, so it
    /// matches what an editor shows.
    #[error("line {line}: {message}")]
    Parse {
        /// 1-based line number in the input.
        line: u64,
        /// What was wrong with the line.
        message: String,
    },

    /// A timestamp was not RFC 3339.
    #[error("invalid timestamp {0:?}: expected RFC 3339 such as 2026-03-01T12:00:00.000Z")]
    Timestamp(String),

    /// A model file is malformed, of an unknown version, or its feature schema
    /// does not match the features this build computes.
    #[error("model: {0}")]
    Model(String),

    /// A configuration value is out of its valid range (for example a
    /// rate of zero or thresholds in the wrong order).
    #[error("config: {0}")]
    Config(String),

    /// Training could not proceed (no labeled senders, only one class, or the
    /// learner failed).
    #[error("training: {0}")]
    Training(String),

    /// Serializing an output value failed.
    #[error("json: {0}")]
    Json(#[from] serde_json::Error),

    /// One of several inputs failed: which one (a file), then why.
    #[error("{input}: {source}")]
    In {
        /// The input, as the caller named it.
        input: String,
        /// What went wrong with it.
        #[source]
        source: Box<Error>,
    },
}

impl Error {
    /// Whether retrying the same operation might succeed (only OS-level I/O
    /// can be transient; everything else is a property of the input).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Io(e) => matches!(
                e.kind(),
                io::ErrorKind::Interrupted | io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ),
            Error::In { source, .. } => source.is_transient(),
            _ => false,
        }
    }

    /// This error, naming the input it came from (`b2/trace.jsonl: line
    /// 5: …`): for functions that read several files.
    pub fn within(self, input: impl std::fmt::Display) -> Self {
        Error::In {
            input: input.to_string(),
            source: Box::new(self),
        }
    }

    /// The opposite of [`Error::is_transient`].
    pub fn is_permanent(&self) -> bool {
        !self.is_transient()
    }
}
