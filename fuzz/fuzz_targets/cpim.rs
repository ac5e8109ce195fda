//! CPIM parsing never panics; what parses re-encodes to the same message.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::cpim(data));
