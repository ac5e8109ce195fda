//! Phone number texts: normalising never panics, and `+` and digits get
//! `phonenumber`'s own answers from the gateway's fast path.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::numbers(data));
