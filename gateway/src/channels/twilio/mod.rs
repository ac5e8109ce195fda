//! Twilio Programmable Messaging (`[twilio]`).

pub mod config;
pub mod route;
