//! The gateway service. The folders follow the flow of a message, and
//! imports run one way, top to bottom:
//!
//! * `app`: the aggregate configuration, the registry that builds each
//!   configured channel, `serve` (start and shutdown order);
//! * `channels`: one folder per channel to the phone network (config,
//!   route, webhook router, tasks), each built by one signature;
//! * `http`: the API router, auth, errors, JSON, server limits;
//! * `pipeline`: inbound, outbound, the one status path, opt-out, spam gate;
//! * `delivery`: the queue worker, the `Route` trait (the private side is a
//!   route too), routing rules, the signed-HTTP helper;
//! * `store`: named operations only (SQL lives nowhere else);
//! * `envelope`, `core`: the sealed format; addresses, clock, error,
//!   secrets, files, metrics.
//!
//! I/O happens in `http` (server), `delivery` and `channels` (clients,
//! modems, binds), `store` (SQLite, on its own threads) and `app::serve`
//! (wiring). Everything that parses foreign bytes lives in the `adapters`
//! crate; spam scoring lives in `classifier`.

pub mod app;
pub mod channels;
pub mod cli;
pub mod core;
pub mod delivery;
pub mod envelope;
pub mod http;
pub mod pipeline;
pub mod store;

#[doc(hidden)]
pub mod fuzzing;

pub use crate::core::error::{Error, Result};
