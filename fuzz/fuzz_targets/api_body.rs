//! HTTP API bodies: parsing never panics and errors never quote values.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::api_body(data));
