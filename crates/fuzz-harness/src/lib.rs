//! What each fuzz target feeds and asserts. A target (`fuzz/fuzz_targets/<name>.rs`) is one
//! call of the function of the same name here; `tests/replay.rs` runs every file of
//! `fuzz/corpus/<name>/` through it in the normal `cargo test`, without nightly flags.
//!
//! Each function takes arbitrary bytes and panics only when a property fails (a panic of the
//! code under test is one such failure): that is what libFuzzer reports as a crash.

pub mod admission_review;
pub mod env_config;
pub mod template;

/// Splits an input into its `\0`-separated records (the text formats of the corpora).
fn records(data: &[u8]) -> impl Iterator<Item = &[u8]> {
    data.split(|b| *b == 0)
}
