//! Telnyx Messaging (`[telnyx]`).

pub mod config;
pub mod route;
