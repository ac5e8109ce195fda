//! Telnyx Messaging (`[telnyx]`).

pub mod config;
