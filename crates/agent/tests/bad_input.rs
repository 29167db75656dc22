//! Bad agent input, one case a row: an environment variable or a flag the agent refuses.
//! Each exits 2 with an error naming the variable or flag, never the value, before anything
//! is written or deleted: the local directory, the (local-directory) remote and the
//! sandbox around them are entry for entry what they were.

mod support;

use std::ffi::OsStr;
use std::fs;
use std::os::unix::ffi::OsStrExt as _;
use std::path::Path;

use support::*;

/// A value no message holds by chance: shown, it is shown as a value.
const SECRET: &str = "vsc-bad-input-secret-91d4";

/// One refused input: the command, what it adds to the environment, what the error names.
struct Case {
    command: &'static str,
    env: &'static [(&'static str, &'static str)],
    args: &'static [&'static str],
    named: &'static str,
}

const UPLOAD: &str = "sync-to-remote";
const RESTORE: &str = "remote-to-local-sync";

const CASES: &[Case] = &[
    // Environment variables of the rclone config.
    Case {
        command: UPLOAD,
        env: &[("REMOTE_TYPE", ""), ("REMOTE_PROVIDER", "Minio")],
        args: &[],
        named: "REMOTE_TYPE",
    },
    Case {
        command: UPLOAD,
        env: &[("REMOTE_ACL", " vsc-bad-input-secret-91d4")],
        args: &[],
        named: "REMOTE_ACL",
    },
    Case {
        command: UPLOAD,
        env: &[("REMOTE_ACL", "vsc-bad-input-secret-91d4 ")],
        args: &[],
        named: "REMOTE_ACL",
    },
    Case {
        command: UPLOAD,
        env: &[("REMOTE_BAD.KEY", SECRET)],
        args: &[],
        named: "REMOTE_BAD.KEY",
    },
    Case {
        command: RESTORE,
        env: &[("ENCRYPTED_PASSWORD", SECRET)],
        args: &[],
        named: "ENCRYPTED_PASSWORD",
    },
    Case {
        command: UPLOAD,
        env: &[
            ("ENCRYPTED_TYPE", SECRET),
            ("ENCRYPTED_PASSWORD_PLAIN", "pw"),
        ],
        args: &[],
        named: "ENCRYPTED_TYPE",
    },
    Case {
        command: UPLOAD,
        env: &[
            ("ENCRYPTED_PASSWORD_PLAIN", SECRET),
            ("ENCRYPTED_PASSWORD", "x"),
        ],
        args: &[],
        named: "ENCRYPTED_PASSWORD_PLAIN",
    },
    Case {
        command: UPLOAD,
        env: &[("ENCRYPTED_FILENAME_ENCRYPTION", "standard")],
        args: &[],
        named: "ENCRYPTED_PASSWORD",
    },
    Case {
        command: RESTORE,
        env: &[("ENCRYPTED_PASSWORD2_PLAIN", "")],
        args: &[],
        named: "ENCRYPTED_PASSWORD2_PLAIN",
    },
    // The agent's own variables, read as the flags they stand for.
    Case {
        command: UPLOAD,
        env: &[("VSC_SCHEDULE", "every five minutes")],
        args: &[],
        named: "--schedule",
    },
    Case {
        command: UPLOAD,
        env: &[("VSC_MAX_DELETE_PERCENT", "150")],
        args: &[],
        named: "--max-delete-percent",
    },
    Case {
        command: RESTORE,
        env: &[("VSC_AS_OF", "yesterday")],
        args: &[],
        named: "--as-of",
    },
    Case {
        command: UPLOAD,
        env: &[("VSC_FULL_SYNC_INTERVAL", "forever")],
        args: &[],
        named: "--full-sync-interval",
    },
    // Flags.
    Case {
        command: UPLOAD,
        env: &[],
        args: &["-p", "=vsc-bad-input-secret-91d4"],
        named: "--param argument #1",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["-p", "key with space=vsc-bad-input-secret-91d4"],
        named: "--param argument #1",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["-p", "acl=private", "-p", "vsc-bad-input-secret-91d4"],
        named: "--param argument #2",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["-p", "acl=a\nvsc-bad-input-secret-91d4"],
        named: "--param 'acl=…'",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["-e", "type=s3", "-e", "password_plain=pw"],
        named: "--enc-param 'type=…'",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--max-delete-percent", "101"],
        named: "--max-delete-percent",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--watch", "--watch-min-interval", "soon"],
        named: "--watch-min-interval",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--trash-retention-days=-1"],
        named: "--trash-retention-days",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--status-addr", "not-an-address"],
        named: "--status-addr",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--status-addr-file", "addr"],
        named: "--status-addr",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--no-template"],
        named: "--config-path",
    },
    Case {
        command: UPLOAD,
        env: &[],
        args: &["--unhealthy-after-failures", "many"],
        named: "--unhealthy-after-failures",
    },
    Case {
        command: RESTORE,
        env: &[],
        args: &["--as-of", "2026-13-01T00:00:00Z"],
        named: "--as-of",
    },
    Case {
        command: RESTORE,
        env: &[],
        args: &["--max-delete-files=-3"],
        named: "--max-delete-files",
    },
];

/// Every entry under `root` (directories too, so a created empty directory shows) with the
/// contents of its files.
fn snapshot(root: &Path) -> Vec<(String, Option<Vec<u8>>)> {
    let mut entries = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in fs::read_dir(&dir).expect("read the sandbox") {
            let path = entry.expect("an entry").path();
            let name = path
                .strip_prefix(root)
                .expect("inside")
                .display()
                .to_string();
            if path.is_dir() {
                pending.push(path);
                entries.push((name, None));
            } else {
                entries.push((name, Some(fs::read(&path).expect("read a file"))));
            }
        }
    }
    entries.sort();
    entries
}

/// A sandbox with a local directory `src` and a local-directory remote `remote`, each
/// holding a file.
fn sandbox() -> Sandbox {
    let sandbox = Sandbox::local();
    sandbox.write("src", &[("a.txt", "local")]);
    sandbox.write("remote", &[("b.txt", "remote")]);
    sandbox
}

#[track_caller]
fn assert_refused_and_nothing_changed(
    sandbox: &Sandbox,
    mut command: std::process::Command,
    what: &str,
    named: &str,
) {
    let before = snapshot(sandbox.dir.path());
    let output = command.output().expect("run the agent");
    let log = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{what}: exit {:?}\n{log}",
        output.status.code()
    );
    assert!(
        log.contains(named),
        "{what}: the error does not name {named}:\n{log}"
    );
    assert!(
        !log.contains(SECRET),
        "{what}: the error shows the value:\n{log}"
    );
    assert_eq!(
        snapshot(sandbox.dir.path()),
        before,
        "{what}: something was written or deleted\n{log}"
    );
}

fn paths(command: &str) -> [&'static str; 4] {
    if command == UPLOAD {
        ["-s", "src", "-d", "remote"]
    } else {
        ["-s", "remote", "-d", "src"]
    }
}

#[test]
fn each_bad_variable_or_flag_is_refused_by_name_before_anything_is_written() {
    let sandbox = sandbox();
    for case in CASES {
        let mut args = vec![case.command];
        args.extend_from_slice(case.args);
        args.extend_from_slice(&paths(case.command));
        let mut command = sandbox.agent(&args);
        command.envs(case.env.iter().copied());
        let what = format!("{:?} {args:?}", case.env);
        assert_refused_and_nothing_changed(&sandbox, command, &what, case.named);
    }
}

#[test]
fn a_variable_that_is_not_utf8_is_refused_by_name() {
    let sandbox = sandbox();
    let mut command = sandbox.agent(&[UPLOAD, "-s", "src", "-d", "remote"]);
    command.env("REMOTE_ENDPOINT", OsStr::from_bytes(b"http://\xff\xfe"));
    assert_refused_and_nothing_changed(
        &sandbox,
        command,
        "REMOTE_ENDPOINT=\\xff",
        "REMOTE_ENDPOINT",
    );
}
