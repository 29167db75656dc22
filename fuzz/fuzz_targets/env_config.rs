#![no_main]
//! See `vsc_fuzz_harness::env_config`: what it feeds, what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vsc_fuzz_harness::env_config::env_config(data));
