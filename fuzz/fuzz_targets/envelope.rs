//! Envelopes from outside: the wire form parses or is refused and writes
//! back as sent; a body sealed to the edge key with any plaintext opens or
//! is refused, and what opens reads back and renders, never a panic.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::envelope(data));
