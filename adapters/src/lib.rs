//! Adapters: every piece of code that speaks a protocol foreign to the gateway.
//!
//! Codecs here are sans-IO (bytes in, values out; no sockets, no clocks) so they
//! can be fuzzed and benchmarked in isolation. Transport code (HTTP clients,
//! serial ports) lives in the `gateway` crate and wraps these codecs at the edge.
//! This crate never depends on `gateway` or `classifier`.

pub mod android_relay;
pub mod at;
pub mod error;
pub mod generic;
pub mod json;
pub mod rcs;
pub mod signing;
pub mod smpp;
pub mod sms;
pub mod telnyx;
pub mod twilio;

pub use error::{Error, PduReason};

#[doc(hidden)]
pub mod fuzzing;
