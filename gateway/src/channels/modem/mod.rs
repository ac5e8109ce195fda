//! GSM modems (`[[modems]]`).

pub mod config;
