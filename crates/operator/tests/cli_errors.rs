//! Bad operator flags are refused at start, naming the flag, before any API call.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::process::Command;

fn operator(args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_volume-syncing-operator"))
        .env_clear()
        .env("KUBECONFIG", "/nonexistent/kubeconfig")
        .args(args)
        .output()
        .expect("run the operator");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn bad_flags_name_themselves() {
    for (args, needle) in [
        (
            vec!["--agent-image", "img", "--report-url", "https://op/report"],
            "--report-url",
        ),
        (
            vec![
                "--agent-image",
                "img",
                "--agent-default-resources",
                "{not json",
            ],
            "--agent-default-resources",
        ),
        (vec!["--agent-image", " "], "--agent-image"),
        (
            vec!["--agent-image", "img", "--sidecar-mode", "sometimes"],
            "--sidecar-mode",
        ),
        (vec![], "--agent-image"),
        (
            vec![
                "--agent-image",
                "img",
                "--agent-default-resources",
                r#"{"limits": {"memory": "lots"}}"#,
            ],
            "--agent-default-resources.limits.memory",
        ),
        (
            vec![
                "--agent-image",
                "img",
                "--agent-default-resources",
                r#"{"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}"#,
            ],
            "--agent-default-resources.requests.cpu",
        ),
        (
            vec![
                "--agent-image",
                "img",
                "--agent-image-pull-policy",
                "Sometimes",
            ],
            "--agent-image-pull-policy",
        ),
        (
            vec!["--agent-image", "img", "--webhook-addr", "localhost"],
            "--webhook-addr",
        ),
        (
            vec!["--agent-image", "img", "--admin-addr", "127.0.0.1:99999"],
            "--admin-addr",
        ),
        (
            vec!["--agent-image", "img", "--agent-log-format", "xml"],
            "--agent-log-format",
        ),
        (
            vec!["--agent-image", "img", "--log-format", "yaml"],
            "--log-format",
        ),
        (
            vec!["--agent-image", "img", "--certificate-mode", "magic"],
            "--certificate-mode",
        ),
        (
            vec!["--agent-image", "img", "--leader-election"],
            "--namespace",
        ),
        (
            vec!["--agent-image", "img", "--certificate-mode", "self-managed"],
            "--namespace",
        ),
        (
            vec!["--agent-image", "img", "--no-such-flag"],
            "--no-such-flag",
        ),
    ] {
        let (code, stderr) = operator(&args);
        assert_ne!(code, Some(0), "{args:?} was accepted");
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("Kubernetes client"),
            "{args:?} got as far as the API: {stderr}"
        );
    }
}
