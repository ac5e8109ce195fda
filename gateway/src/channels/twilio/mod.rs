//! Twilio Programmable Messaging (`[twilio]`).

pub mod config;
