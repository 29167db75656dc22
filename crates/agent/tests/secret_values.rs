//! Secrets in the agent's configuration: an empty encryption password is refused, and no
//! error path shows a secret value, whether the agent's or rclone's message.

mod support;

use std::fs;
use std::process::Output;

use support::*;

/// A value no log line, path or message would hold by chance.
const DISTINCTIVE: &str = "vsc-distinctive-secret-7c1f";

/// Neither the agent's log (stderr) nor its stdout holds `secret`.
#[track_caller]
fn assert_not_shown(output: &Output, secret: &str) {
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains(secret), "the secret on stdout:\n{stdout}");
    assert_not_logged(output, secret);
}

/// One way to give an empty password: variables, flags, and what the error must name.
struct EmptyPassword<'a> {
    vars: Vec<(&'a str, &'a str)>,
    flags: &'a [&'a str],
    named: &'a str,
}

#[test]
fn an_empty_encryption_password_or_salt_is_refused_by_name_and_nothing_is_uploaded() {
    let empty_obscured = obscure("");
    let password = ("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    let cases = [
        EmptyPassword {
            vars: vec![("ENCRYPTED_PASSWORD_PLAIN", "")],
            flags: &[],
            named: "ENCRYPTED_PASSWORD_PLAIN",
        },
        EmptyPassword {
            vars: vec![("ENCRYPTED_PASSWORD", "")],
            flags: &[],
            named: "ENCRYPTED_PASSWORD",
        },
        EmptyPassword {
            vars: vec![("ENCRYPTED_PASSWORD", &empty_obscured)],
            flags: &[],
            named: "ENCRYPTED_PASSWORD",
        },
        EmptyPassword {
            vars: vec![password, ("ENCRYPTED_PASSWORD2_PLAIN", "")],
            flags: &[],
            named: "ENCRYPTED_PASSWORD2_PLAIN",
        },
        EmptyPassword {
            vars: vec![password, ("ENCRYPTED_PASSWORD2", &empty_obscured)],
            flags: &[],
            named: "ENCRYPTED_PASSWORD2",
        },
        EmptyPassword {
            vars: vec![],
            flags: &["-e", "password_plain="],
            named: "--enc-param 'password_plain=…'",
        },
    ];
    for case in cases {
        let mut sandbox = Sandbox::local();
        sandbox.write("src", &[("tax-return.pdf", "hunter2")]);
        for (key, value) in &case.vars {
            sandbox.set_env(key, value);
        }
        let remote = sandbox.path("remote");
        let remote_arg = remote.display().to_string();
        let mut args = vec!["sync-to-remote", "-s", "src", "-d", &remote_arg];
        args.extend_from_slice(case.flags);

        let output = sandbox.run(&args);

        assert_exit(&output, 2);
        assert_logged(&output, &[case.named, "empty"]);
        assert!(!remote.exists(), "{}: nothing may be uploaded", case.named);
    }
}

#[test]
fn a_param_without_equals_is_refused_without_showing_its_text() {
    let sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "1")]);
    for flag in ["-p", "-e"] {
        let output = sandbox.run(&[
            "sync-to-remote",
            "-s",
            "src",
            "-d",
            "/nowhere",
            flag,
            "type=local",
            flag,
            DISTINCTIVE,
        ]);
        assert_exit(&output, 2);
        assert_logged(&output, &["argument #2", "no '='"]);
        assert_not_shown(&output, DISTINCTIVE);
    }
}

#[test]
fn a_secret_that_rclone_would_read_as_quoted_reaches_it_exactly_and_is_never_shown() {
    for secret in [format!("`{DISTINCTIVE}"), format!("\"\"\"{DISTINCTIVE}`")] {
        let server = S3Server::start_with_keys("vsc-access", &secret);
        let bucket = server.bucket("bkt");
        let sandbox = Sandbox::new(&server);
        sandbox.write("src", &[("a.txt", "1")]);

        let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/app"]);

        assert_exit(&output, 0);
        assert_eq!(stored_data(&bucket.join("app")), owned(&[("a.txt", "1")]));
        assert_not_shown(&output, DISTINCTIVE);
    }
}

#[test]
fn a_hand_written_config_that_rclone_cannot_parse_is_reported_without_its_line() {
    let sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "1")]);
    let config = sandbox.path("rclone.conf");
    fs::write(
        &config,
        format!("[remote]\ntype = local\nsecret = `{DISTINCTIVE}\n"),
    )
    .expect("write the config");
    give_to_agent(sandbox.dir.path());

    let output = sandbox.run(&[
        "sync-to-remote",
        "--no-template",
        "-c",
        &config.display().to_string(),
        "-s",
        "src",
        "-d",
        &sandbox.path("remote").display().to_string(),
    ]);

    assert_exit(&output, 4);
    assert_logged(&output, &["could not parse line"]);
    assert_not_shown(&output, DISTINCTIVE);
}
