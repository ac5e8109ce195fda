//! The gateway service: pipeline, store, envelope, HTTP API, delivery queue.
//!
//! I/O happens in `http` (server), `delivery` (HTTP client), `store` (SQLite,
//! on its own threads) and `serve` (wiring). Everything that parses foreign
//! bytes lives in the `adapters` crate; spam scoring lives in `classifier`.

pub mod carriers;
pub mod channels;
pub mod cli;
pub mod config;
pub mod core;
pub mod delivery;
pub mod envelope;
pub mod http;
pub mod modem;
pub mod optout;
pub mod pipeline;
pub mod rcs;
pub mod serve;
pub mod smpp;
pub mod sms_plan;
pub mod spam;
pub mod state;
pub mod store;

#[doc(hidden)]
pub mod fuzzing;

pub use crate::core::error::{Error, Result};
