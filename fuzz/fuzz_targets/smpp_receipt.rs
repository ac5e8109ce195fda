//! SMPP delivery-receipt text parses without panics and round-trips.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::smpp_receipt(data));
