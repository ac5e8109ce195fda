//! The bottom of the crate: what every other module may use and which
//! imports nothing of the gateway back. Addresses (E.164 and sender ids),
//! the wall clock, the one error type, owner-only files, metrics, and
//! secrets read from the environment or files.

pub mod address;
pub mod clock;
pub mod error;
pub mod fs;
pub mod metrics;
pub mod numbers;
pub mod process_metrics;
pub mod pseudonym;
pub mod secrets;
pub mod tenants;

/// A boxed, sendable future: what object-safe async trait methods return.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;
