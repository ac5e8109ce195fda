//! The generic adapter's webhook bodies: parsing never panics, round-trips, signatures verify.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::generic_webhook(data));
