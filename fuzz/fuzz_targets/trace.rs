//! Metadata traces: parsing never panics, events round-trip, replay takes anything.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| classifier::fuzzing::trace(data));
