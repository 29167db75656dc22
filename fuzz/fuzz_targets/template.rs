#![no_main]
//! See `vsc_fuzz_harness::template`: what it feeds, what it asserts.

libfuzzer_sys::fuzz_target!(|data: &[u8]| vsc_fuzz_harness::template::template(data));
