//! RBM webhook bodies, decoded events, chatbot JSON and the API's rcs JSON never panic; signatures verify; renderings stay in budget.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| adapters::fuzzing::rbm_webhook(data));
