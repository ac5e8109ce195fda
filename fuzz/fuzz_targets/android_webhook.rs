//! Webhook body parsing never panics; signatures over what parses verify.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::android_webhook(data));
