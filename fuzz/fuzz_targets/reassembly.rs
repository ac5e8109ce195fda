//! The reassembler keeps its invariants under any sequence of operations.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::reassembly(data));
