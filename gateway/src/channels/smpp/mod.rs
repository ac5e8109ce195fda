//! SMPP client binds and server (`[smpp]`).

pub mod config;
