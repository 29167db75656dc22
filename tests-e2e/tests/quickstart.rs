//! The README's quick start, `scripts/quickstart.sh`, as a user runs it (with the agent the
//! suite built instead of a release build): it passes, the restored tree is the example's,
//! and nothing is logged at ERROR or WARN level on this normal run.

use std::process::Command;

use vsc_e2e::helm::repo_root;
use vsc_e2e::operator::workspace_binary;
use vsc_test_support::read_tree;

#[test]
fn the_quickstart_restores_the_example_tree_and_warns_about_nothing() {
    let work = tempfile::tempdir().expect("work dir");
    let quickstart = work.path().join("quickstart");
    let output = Command::new("bash")
        .arg(repo_root().join("scripts/quickstart.sh"))
        .env("VSC_AGENT", workspace_binary("volume-syncing-controller"))
        .env("QUICKSTART_DIR", &quickstart)
        .output()
        .expect("run scripts/quickstart.sh");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "scripts/quickstart.sh failed:\n{stderr}"
    );
    let alarming: Vec<&str> = stderr
        .lines()
        .filter(|line| {
            line.split(|c: char| c.is_whitespace() || c == ':')
                .any(|word| word == "ERROR" || word == "WARN")
        })
        .collect();
    assert!(
        alarming.is_empty(),
        "a normal quick start logs at ERROR/WARN level: {alarming:#?}\n{stderr}"
    );
    let example = read_tree(&repo_root().join("examples/quickstart/data"));
    assert!(!example.is_empty(), "the example has files");
    assert_eq!(read_tree(&quickstart.join("restored")), example);
}
