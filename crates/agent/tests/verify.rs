//! `verify`: compares a local directory with its remote copy, as a person or a Kubernetes Job
//! runs it, and reports with an exit code: 0 identical, 6 different, 4 cannot check.

mod support;

use std::fs;
use std::process::Output;

use support::*;

const DIFFERENT: i32 = 6;
const CANNOT_CHECK: i32 = 4;

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn json_report(output: &Output) -> serde_json::Value {
    serde_json::from_str(stdout(output).trim())
        .unwrap_or_else(|e| panic!("not one JSON object ({e}):\n{}", stdout(output)))
}

#[test]
fn verify_reports_identical_then_each_kind_of_difference() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let src = sandbox.write(
        "src",
        &[
            ("same.txt", "same"),
            ("edited.txt", "aaaa"),
            ("gone.txt", "g"),
        ],
    );
    sandbox.upload("src", "bkt/app");

    let output = sandbox.run(&["verify", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, 0);
    let report = stdout(&output);
    assert!(report.contains("matching:          3"), "{report}");
    assert!(report.contains("compared: hashes"), "{report}");
    assert!(report.contains("result: identical"), "{report}");

    // The same size, other bytes: only a hash sees it.
    sandbox.write("src", &[("edited.txt", "bbbb"), ("new.txt", "n")]);
    fs::remove_file(src.join("gone.txt")).expect("rm");
    let output = sandbox.run(&["verify", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, DIFFERENT);
    let report = stdout(&output);
    for line in [
        "different:         1  edited.txt",
        "missing on remote: 1  new.txt",
        "missing locally:   1  gone.txt",
        "result: DIFFERENT",
    ] {
        assert!(report.contains(line), "no '{line}' in:\n{report}");
    }

    let output = sandbox.run(&["verify", "--json", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, DIFFERENT);
    let report = json_report(&output);
    assert_eq!(report["result"], "different");
    assert_eq!(report["matching"], 1);
    assert_eq!(
        report["different"]["first"],
        serde_json::json!(["edited.txt"])
    );
    assert_eq!(report["missing_on_remote"]["count"], 1);
    assert_eq!(
        report["missing_locally"]["first"],
        serde_json::json!(["gone.txt"])
    );
    // verify only reads.
    assert!(!server.root.path().join("bkt/app/new.txt").exists());
}

#[test]
fn verify_an_encrypted_remote_compares_hashes_through_cryptcheck() {
    let server = S3Server::start();
    server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    sandbox.write("src", &[("a.txt", "aaaa")]);
    sandbox.upload("src", "bkt/enc");
    let output = sandbox.run(&["verify", "--json", "-s", "src", "-d", "bkt/enc"]);
    assert_exit(&output, 0);
    let report = json_report(&output);
    assert_eq!(report["result"], "identical");
    assert_eq!(report["compared"], "encrypted-hashes");

    // A same-size edit, which rclone check over crypt (sizes only) would miss.
    sandbox.write("src", &[("a.txt", "bbbb")]);
    let output = sandbox.run(&["verify", "--json", "-s", "src", "-d", "bkt/enc"]);
    assert_exit(&output, DIFFERENT);
    assert_eq!(
        json_report(&output)["different"]["first"],
        serde_json::json!(["a.txt"])
    );
}

#[test]
fn verify_that_cannot_check_says_so_with_its_own_exit_code() {
    let server = S3Server::start();
    server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "the right password");
    sandbox.write("src", &[("a.txt", "a")]);
    sandbox.upload("src", "bkt/enc");

    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "a wrong password");
    let output = sandbox.run(&["verify", "--json", "-s", "src", "-d", "bkt/enc"]);
    assert_exit(&output, CANNOT_CHECK);
    let report = json_report(&output);
    assert_eq!(report["result"], "error");
    assert!(
        report["error"]
            .as_str()
            .is_some_and(|e| e.contains("cannot be decrypted")),
        "{report}"
    );

    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("REMOTE_ENDPOINT", "http://127.0.0.1:9"); // nothing listens
    sandbox.set_env("RCLONE_RETRIES", "1");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    sandbox.write("src", &[("a.txt", "a")]);
    let output = sandbox.run(&["verify", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, CANNOT_CHECK);
    assert!(
        stdout(&output).contains("result: CANNOT CHECK"),
        "{}",
        stdout(&output)
    );

    let output = sandbox.run(&["verify", "-s", "no-such-dir", "-d", "bkt/app"]);
    assert_ne!(output.status.code(), Some(0));
    assert_logged(&output, &["no-such-dir"]);
}
