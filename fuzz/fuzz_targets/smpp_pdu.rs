//! SMPP PDU bodies: decoding never panics; decoded commands round-trip.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gateway::fuzzing::smpp_pdu(data));
