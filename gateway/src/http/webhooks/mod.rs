//! Inbound webhooks, one module per adapter.

pub mod android;
pub mod generic;
pub mod rbm;
pub mod telnyx;
pub mod twilio;
