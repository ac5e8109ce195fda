//! Inbound webhooks, one module per adapter.

pub mod generic;
