//! The TOML config: parsing and validation never panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::config(data));
