//! What a sync carries and what it does not (RELIABILITY.md, "Fidelity"), against real
//! rclone and a real S3 server: regular files come back byte for byte with their modes and
//! times; symlinks, FIFOs, directory modes, setuid bits and (on S3) empty directories do
//! not, and the upload says so at WARN, naming them.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use support::*;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).expect("metadata").mode() & 0o7777
}

/// A tree with one of each thing a sync leaves behind, beside files it keeps.
fn write_awkward_tree(sandbox: &Sandbox) {
    let root = sandbox.write(
        "data",
        &[
            ("notes.txt", "kept"),
            ("private/secret.txt", "kept too"),
            ("shared/upload.bin", "in a sticky directory"),
            ("bin/tool", "#!/bin/sh\n"),
        ],
    );
    fs::create_dir(root.join("empty")).expect("mkdir");
    std::os::unix::fs::symlink("notes.txt", root.join("link-to-notes")).expect("symlink");
    let mkfifo = std::process::Command::new("mkfifo")
        .arg(root.join("pipe"))
        .status()
        .expect("mkfifo");
    assert!(mkfifo.success(), "mkfifo failed");
    give_to_agent(&root);
    // After the chown, which would clear the setuid bit.
    chmod(&root.join("notes.txt"), 0o640);
    chmod(&root.join("private"), 0o700);
    chmod(&root.join("shared"), 0o1777);
    chmod(&root.join("bin/tool"), 0o4755);
}

#[test]
fn an_s3_upload_warns_of_what_it_leaves_behind_and_the_restore_has_only_the_rest() {
    let server = S3Server::start();
    let _bucket = server.bucket("fidelity");
    let sandbox = Sandbox::new(&server);
    write_awkward_tree(&sandbox);

    let upload = sandbox.run(&["sync-to-remote", "-s", "data", "-d", "fidelity/app"]);
    assert_exit(&upload, 0);
    assert_logged(
        &upload,
        &[
            "symlinks are not uploaded (rclone skips them): 1 (link-to-notes)",
            "FIFOs, sockets and device files are not uploaded: 1 (pipe)",
            "directory modes are not kept: a restore creates directories with mode 0755: 2 (",
            "private/ 0700",
            "shared/ 1777",
            "setuid, setgid and sticky bits are not kept: a restore gives these files their mode without them: 1 (bin/tool 4755)",
            "empty directories are not kept: bucket storage has no directories, so a restore does not create them: 1 (empty/)",
        ],
    );

    let restored = sandbox.restore(&[], "fidelity/app", "restored");
    assert_eq!(
        restored,
        owned(&[
            ("bin/tool", "#!/bin/sh\n"),
            ("notes.txt", "kept"),
            ("private/secret.txt", "kept too"),
            ("shared/upload.bin", "in a sticky directory"),
        ]),
        "only the regular files come back"
    );
    let back = sandbox.path("restored");
    assert!(!back.join("link-to-notes").exists() && !back.join("pipe").exists());
    assert!(!back.join("empty").exists(), "S3 keeps no empty directory");
    assert_eq!(
        mode(&back.join("notes.txt")),
        0o640,
        "a file's mode is kept"
    );
    assert_eq!(mode(&back.join("bin/tool")), 0o755, "the setuid bit is not");
    assert_eq!(
        mode(&back.join("private")),
        0o755,
        "a directory's mode is not"
    );
    assert_eq!(mode(&back.join("shared")), 0o755);
}

#[test]
fn a_local_remote_keeps_empty_directories_and_an_unchanged_tree_is_not_warned_of_twice() {
    let sandbox = Sandbox::local();
    let root = sandbox.write("data", &[("file.txt", "x")]);
    fs::create_dir(root.join("empty")).expect("mkdir");
    give_to_agent(&root);
    let remote = sandbox.path("remote");

    let upload = sandbox.run(&["sync-to-remote", "-s", "data", "-d", "remote"]);
    assert_exit(&upload, 0);
    assert_not_logged(&upload, "empty directories are not kept");
    assert!(remote.join("empty").is_dir(), "the local remote holds it");
    let restored = sandbox.path("restored");
    sandbox.restore(&[], "remote", "restored");
    assert!(
        restored.join("empty").is_dir(),
        "and the restore creates it"
    );

    std::os::unix::fs::symlink("file.txt", root.join("link")).expect("symlink");
    let sidecar = sandbox
        .agent(&[
            "sync-to-remote",
            "-s",
            "data",
            "-d",
            "remote",
            "--schedule",
            "@every 1s",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn the agent");
    // Ticks that find the tree unchanged, then one that uploads a change.
    std::thread::sleep(std::time::Duration::from_secs(3));
    sandbox.write("data", &[("second.txt", "y")]);
    assert!(
        eventually(std::time::Duration::from_secs(15), || remote
            .join("second.txt")
            .exists()),
        "the change was not uploaded"
    );
    let terminated = std::process::Command::new("kill")
        .args(["-TERM", &sidecar.id().to_string()])
        .status()
        .expect("kill");
    assert!(terminated.success());
    let output = sidecar.wait_with_output().expect("wait");
    assert_exit(&output, 0);
    let log = stderr(&output);
    assert_eq!(
        log.matches("symlinks are not uploaded").count(),
        1,
        "said once while it holds:\n{log}"
    );
}
