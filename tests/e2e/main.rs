//! End-to-end tests that start the real `gateway` binary on 127.0.0.1 with an
//! ephemeral port, drive it over HTTP, and stop it. One test binary with area
//! modules (ripgrep's layout); helpers live in `harness`.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod backbone;
mod backup;
mod batch;
mod callbacks;
mod carriers;
mod cli_polish;
mod cluster;
mod config_reference;
mod console;
mod crash;
mod cross_world;
mod delivery;
mod demo;
mod errors;
mod flood;
mod hardening;
mod harness;
mod health;
mod hold_notify;
mod hostile;
mod listing;
mod metrics;
mod modem;
mod outage;
mod pdu_cli;
mod pg;
mod pg_batch;
mod pg_coherence;
mod pg_console;
mod pg_data;
mod pg_keys;
mod pg_lease;
mod pg_lease_back;
mod pg_smpp;
mod postgres;
mod privacy;
mod process;
mod rcs;
mod review;
mod shutdown;
mod smpp;
mod spam_gate;
mod store_backends;
mod tenants;
mod walkthrough;
