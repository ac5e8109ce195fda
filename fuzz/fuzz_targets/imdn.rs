//! IMDN XML parsing never panics; what parses writes XML that parses the same.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::imdn(data));
