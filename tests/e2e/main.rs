//! End-to-end tests that start the real `gateway` binary.
