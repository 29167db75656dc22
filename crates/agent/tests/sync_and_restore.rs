//! The agent against a real S3 server, driven as a user drives it.

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use support::*;

#[test]
fn the_readme_example_uploads_and_restores() {
    let server = S3Server::start();
    let bucket = server.bucket("testbucket");
    let sandbox = Sandbox::new(&server);
    let data = [
        ("index.html", "<h1>hi</h1>"),
        ("uploads/2024/cat.jpg", "meow"),
    ];
    sandbox.write(".", &data);

    // cwd is the sandbox: `-s ./` uploads it (the agent's own PID file is outside the tree
    // only when written elsewhere, so point it away).
    let mut upload = sandbox.agent(&[
        "sync-to-remote",
        "-s",
        "./",
        "-d",
        "testbucket/some-directory",
    ]);
    upload.env(
        "VSC_PID_PATH",
        std::env::temp_dir().join(format!("vsc-{}.pid", std::process::id())),
    );
    let output = upload.output().expect("run");
    assert_exit(&output, 0);
    assert_eq!(stored_data(&bucket.join("some-directory")), owned(&data));

    let output = sandbox.run(&[
        "remote-to-local-sync",
        "-v",
        "-s",
        "testbucket",
        "-d",
        "./.build/testing-restore",
    ]);
    assert_exit(&output, 0);
    let restored = read_tree(&sandbox.path(".build/testing-restore/some-directory"));
    assert_eq!(restored, owned(&data));
}

#[test]
fn param_flags_configure_the_remote_without_env() {
    let server = S3Server::start();
    let bucket = server.bucket("flags");
    let mut sandbox = Sandbox::new(&server);
    sandbox.env.clear();
    sandbox.write("src", &[("a.txt", "A")]);
    let endpoint = format!("endpoint={}", server.endpoint);
    let key = format!("access_key_id = {ACCESS_KEY}");
    let secret = format!("secret_access_key= {SECRET_KEY}");
    let output = sandbox.run(&[
        "sync-to-remote",
        "-s",
        "src",
        "-d",
        "flags/dir",
        "-p",
        "type=s3",
        "-p",
        "provider = Other",
        "-p",
        &endpoint,
        "-p",
        &key,
        "-p",
        &secret,
    ]);
    assert_exit(&output, 0);
    assert_eq!(stored_data(&bucket.join("dir")), owned(&[("a.txt", "A")]));
}

#[test]
fn sync_mirrors_deletions_and_no_delete_keeps_remote_files() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let src = sandbox.write("src", &[("keep.txt", "1"), ("gone.txt", "2")]);
    assert_exit(
        &sandbox.run(&[
            "sync-to-remote",
            "-s",
            src.to_str().expect("utf8"),
            "-d",
            "bkt/x",
        ]),
        0,
    );
    fs::remove_file(src.join("gone.txt")).expect("rm");

    assert_exit(
        &sandbox.run(&["sync-to-remote", "--no-delete", "-s", "src", "-d", "bkt/x"]),
        0,
    );
    assert_eq!(
        stored_data(&bucket.join("x")),
        owned(&[("gone.txt", "2"), ("keep.txt", "1")])
    );

    assert_exit(
        &sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/x"]),
        0,
    );
    assert_eq!(stored_data(&bucket.join("x")), owned(&[("keep.txt", "1")]));
}

#[test]
fn restore_mirrors_the_remote_and_no_delete_keeps_local_files() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("remote.txt", "R")]);
    let sandbox = Sandbox::new(&server);
    let dst = sandbox.write("restore", &[("local-only.txt", "L")]);

    assert_exit(
        &sandbox.run(&[
            "remote-to-local-sync",
            "-x",
            "-s",
            "bkt/app",
            "-d",
            "restore",
        ]),
        0,
    );
    assert_eq!(
        read_tree(&dst),
        owned(&[("local-only.txt", "L"), ("remote.txt", "R")])
    );

    assert_exit(
        &sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "restore"]),
        0,
    );
    assert_eq!(read_tree(&dst), owned(&[("remote.txt", "R")]));
}

#[test]
fn mode_and_mtime_survive_a_round_trip() {
    let server = S3Server::start();
    server.bucket("meta");
    let sandbox = Sandbox::new(&server);
    let src = sandbox.write("src", &[("run.sh", "#!/bin/sh\n"), ("secret.key", "k")]);
    fs::set_permissions(src.join("run.sh"), fs::Permissions::from_mode(0o750)).expect("chmod");
    fs::set_permissions(src.join("secret.key"), fs::Permissions::from_mode(0o600)).expect("chmod");
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_600_000_000);
    fs::File::options()
        .write(true)
        .open(src.join("secret.key"))
        .expect("open")
        .set_modified(old)
        .expect("mtime");

    assert_exit(
        &sandbox.run(&["sync-to-remote", "-s", "src", "-d", "meta/m"]),
        0,
    );
    assert_exit(
        &sandbox.run(&["remote-to-local-sync", "-s", "meta/m", "-d", "restored"]),
        0,
    );

    let restored = sandbox.path("restored");
    let mode = |p: &str| {
        fs::metadata(restored.join(p))
            .expect("stat")
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("run.sh"), 0o750);
    assert_eq!(mode("secret.key"), 0o600);
    let mtime = fs::metadata(restored.join("secret.key"))
        .expect("stat")
        .mtime();
    assert_eq!(mtime, 1_600_000_000);
}

#[test]
fn json_logs_are_one_object_per_line_and_never_hold_secrets() {
    let server = S3Server::start();
    server.bucket("logs");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a", "a")]);
    let output = sandbox.run(&[
        "--log-format",
        "json",
        "sync-to-remote",
        "-v",
        "-s",
        "src",
        "-d",
        "logs/x",
    ]);
    assert_exit(&output, 0);
    let log = stderr(&output);
    assert!(!log.contains(SECRET_KEY), "secret in log:\n{log}");
    let lines: Vec<&str> = log.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(lines.len() >= 2, "{log}");
    for line in lines {
        let value: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        assert!(value.get("level").is_some(), "{line}");
    }
    assert!(log.contains("sync finished"), "{log}");
}

#[test]
fn config_path_is_private_while_running_and_removed_after() {
    let server = S3Server::start();
    server.bucket("cfg");
    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a", "a")]);
    let config = sandbox.path("etc/rclone.conf");
    let output = sandbox.run(&[
        "sync-to-remote",
        "-c",
        config.to_str().expect("utf8"),
        "-s",
        "src",
        "-d",
        "cfg/x",
    ]);
    assert_exit(&output, 0);
    assert!(
        !config.exists(),
        "the config holding credentials must be removed"
    );

    // --no-template uses a file that is already there, and leaves it.
    fs::write(
        &config,
        format!(
            "[remote]\ntype = s3\nprovider = Other\naccess_key_id = {ACCESS_KEY}\nsecret_access_key = {SECRET_KEY}\nendpoint = {}\n",
            server.endpoint
        ),
    )
    .expect("write config");
    let mut bare = sandbox.agent(&[
        "sync-to-remote",
        "--no-template",
        "-c",
        config.to_str().expect("utf8"),
        "-s",
        "src",
        "-d",
        "cfg/y",
    ]);
    bare.env_remove("REMOTE_TYPE");
    assert_exit(&bare.output().expect("run"), 0);
    assert!(config.exists());
    assert_eq!(
        stored_data(&server.root.path().join("cfg/y")),
        owned(&[("a", "a")])
    );
}

#[test]
fn bad_input_is_refused_by_name_before_anything_is_written() {
    let server = S3Server::start();
    let bucket = server.bucket("bad");
    let mut sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a", "a")]);
    let config = sandbox.path("rclone.conf");
    let config_arg = config.to_str().expect("utf8").to_string();

    sandbox.set_env("REMOTE_SECRET_ACCESS_KEY", "line1\nline2");
    let output = sandbox.run(&[
        "sync-to-remote",
        "-c",
        &config_arg,
        "-s",
        "src",
        "-d",
        "bad/x",
    ]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("REMOTE_SECRET_ACCESS_KEY"),
        "{}",
        stderr(&output)
    );
    assert!(
        !stderr(&output).contains("line1"),
        "value leaked: {}",
        stderr(&output)
    );
    assert!(!config.exists(), "nothing may be written for bad input");

    let sandbox = Sandbox::new(&server);
    sandbox.write("src", &[("a", "a")]);
    for (args, needle) in [
        (
            vec![
                "sync-to-remote",
                "--schedule",
                "every five minutes",
                "-s",
                "src",
                "-d",
                "bad/x",
            ],
            "--schedule",
        ),
        (
            vec![
                "sync-to-remote",
                "-p",
                "novalue",
                "-s",
                "src",
                "-d",
                "bad/x",
            ],
            "--param",
        ),
        (
            vec!["sync-to-remote", "-s", "src", "-d", "bad/../x"],
            "--dst",
        ),
        (
            vec![
                "sync-to-remote",
                "-e",
                "password=not-obscured",
                "-s",
                "src",
                "-d",
                "bad/x",
            ],
            "ENCRYPTED_PASSWORD_PLAIN",
        ),
    ] {
        let output = sandbox.run(&args);
        assert_exit(&output, 2);
        assert!(
            stderr(&output).contains(needle),
            "{args:?}: {}",
            stderr(&output)
        );
    }
    assert!(
        read_tree(&bucket).is_empty(),
        "nothing may be uploaded for bad input"
    );

    // clap's own usage errors also exit 2 and name the flag.
    let output = sandbox.run(&["sync-to-remote", "--no-such-flag"]);
    assert_exit(&output, 2);
    assert!(stderr(&output).contains("--no-such-flag"));
}

#[test]
fn an_unreachable_remote_fails_with_nothing_changed_locally() {
    let server = S3Server::start();
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("REMOTE_ENDPOINT", "http://127.0.0.1:9"); // discard port: nothing listens
    sandbox.set_env("RCLONE_RETRIES", "1");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    let dst = sandbox.write("data", &[("precious.db", "state")]);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bucket/app", "-d", "data"]);
    assert_exit(&output, 4);
    assert_eq!(read_tree(&dst), owned(&[("precious.db", "state")]));

    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env(
        "REMOTE_SECRET_ACCESS_KEY",
        "wrong-secret-key-0000000000000000000000",
    );
    sandbox.set_env("RCLONE_RETRIES", "1");
    let dst = sandbox.write("data", &[("precious.db", "state")]);
    server.bucket("bucket");
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bucket/app", "-d", "data"]);
    assert_exit(&output, 4);
    assert_eq!(read_tree(&dst), owned(&[("precious.db", "state")]));
}

#[test]
fn a_missing_restore_target_is_created_and_an_empty_remote_restores_nothing() {
    let server = S3Server::start();
    server.bucket("fresh");
    let sandbox = Sandbox::new(&server);
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "-s",
        "fresh/never-written",
        "-d",
        "new/dir",
    ]);
    assert_exit(&output, 0);
    let created = sandbox.path("new/dir");
    assert!(created.is_dir());
    assert_eq!(fs::metadata(&created).expect("stat").uid(), agent_uid());
    assert!(
        stderr(&output).contains("nothing to restore"),
        "{}",
        stderr(&output)
    );
}
