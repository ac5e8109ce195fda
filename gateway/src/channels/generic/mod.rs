//! The generic HTTP SMSC (`[generic]`).

pub mod config;
pub mod route;
