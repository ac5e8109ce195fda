//! The gateway service: pipeline, store, envelope, HTTP API, delivery queue.
//!
//! I/O happens in `http` (server), `delivery` (HTTP client), `store` (SQLite,
//! on its own threads) and `serve` (wiring). Everything that parses foreign
//! bytes lives in the `adapters` crate; spam scoring lives in `classifier`.

pub mod address;
pub mod carriers;
pub mod cli;
pub mod clock;
pub mod config;
pub mod delivery;
pub mod envelope;
pub mod error;
pub mod fsutil;
pub mod http;
pub mod metrics;
pub mod modem;
pub mod optout;
pub mod pipeline;
pub mod rcs;
pub mod review;
pub mod routes;
pub mod serve;
pub mod smpp;
pub mod sms_plan;
pub mod spam;
pub mod state;
pub mod store;

#[doc(hidden)]
pub mod fuzzing;

pub use error::{Error, Result};
