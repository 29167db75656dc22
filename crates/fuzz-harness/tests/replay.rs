//! Every committed corpus file of every fuzz target (`fuzz/corpus/<target>/`), through the
//! function that target calls: a regression of what the fuzzer once found, or of a seed,
//! fails the normal `cargo test`, no nightly toolchain needed.

use std::fs;
use std::path::PathBuf;

fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target);
    let mut files: Vec<(PathBuf, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .map(|path| {
            let bytes = fs::read(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
            (path, bytes)
        })
        .collect();
    files.sort();
    assert!(
        files.len() >= 5,
        "{}: only {} files; the corpus is committed with its seeds",
        dir.display(),
        files.len()
    );
    files
}

fn replay(target: &str, feed: fn(&[u8])) {
    for (path, bytes) in corpus(target) {
        let outcome = std::panic::catch_unwind(|| feed(&bytes));
        assert!(outcome.is_ok(), "{} fails its properties", path.display());
    }
}

#[test]
fn the_env_config_corpus_holds_its_properties() {
    replay("env_config", vsc_fuzz_harness::env_config::env_config);
}

#[test]
fn the_template_corpus_holds_its_properties() {
    replay("template", vsc_fuzz_harness::template::template);
}

#[test]
fn the_admission_review_corpus_holds_its_properties() {
    replay(
        "admission_review",
        vsc_fuzz_harness::admission_review::admission_review,
    );
}

#[test]
fn the_seed_review_is_patched_with_the_agent() {
    let answer = vsc_fuzz_harness::admission_review::seed_answer();
    assert_eq!(answer.1, "patched", "{}", answer.0);
}
