//! SMS Gateway for Android relays (`[[android]]`).

pub mod config;
pub mod route;
