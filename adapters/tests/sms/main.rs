//! Integration tests of the SMS codec: fixture vectors, property tests and a
//! cross-check against independent Python implementations.

#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod crosscheck;
mod properties;
mod vectors;

use std::path::PathBuf;

/// `fixtures/pdu` at the workspace root.
pub fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/pdu")
}
