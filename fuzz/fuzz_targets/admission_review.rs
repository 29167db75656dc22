#![no_main]
//! See `vsc_fuzz_harness::admission_review`: what it feeds, what it asserts.

libfuzzer_sys::fuzz_target!(
    |data: &[u8]| vsc_fuzz_harness::admission_review::admission_review(data)
);
