//! The GitHub Actions workflows: valid for the real actionlint (syntax, expressions, action
//! inputs, and their shell scripts through shellcheck where it is installed), and wired the
//! way the release depends on: CI runs `.ci/run`, the release runs CI first and builds the
//! images from the Dockerfiles the image tests hold the built images to.

use std::fs;
use std::process::Command;

use vsc_e2e::helm::repo_root;
use vsc_test_support::tool;

fn workflow(name: &str) -> String {
    let path = repo_root().join(".github/workflows").join(name);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_workflows_pass_actionlint() {
    let output = Command::new(tool("actionlint"))
        .arg("-color=false")
        .current_dir(repo_root())
        .output()
        .expect("run actionlint");
    assert!(
        output.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn ci_runs_the_same_entry_point_as_every_other_ci_run() {
    let ci = workflow("ci.yml");
    assert!(ci.contains("bash .ci/run"), "{ci}");
    assert!(ci.contains("workflow_call"), "release.yml calls it");
}

#[test]
fn the_release_tests_first_and_publishes_what_the_tests_checked() {
    let release = workflow("release.yml");
    for needed in [
        "uses: ./.github/workflows/ci.yml",
        "file: ${{ matrix.dockerfile }}",
        "dockerfile: Dockerfile.agent",
        "dockerfile: Dockerfile.operator",
        "platforms: linux/amd64,linux/arm64",
        "sbom: true",
        "provenance: mode=max",
        "cosign sign --yes",
        "id-token: write",
        "helm push",
        "appVersion",
        "CHANGELOG.md",
    ] {
        assert!(release.contains(needed), "release.yml lacks {needed}");
    }
}
