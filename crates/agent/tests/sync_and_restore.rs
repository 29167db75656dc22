//! The agent against a real S3 server, driven as a user drives it.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

mod support;

use std::fs;
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

use support::*;

fn the_readme_example_uploads_and_restores(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("testbucket");
    let sandbox = Sandbox::with_provider(&server, provider);
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
    // A PID path outside the uploaded tree, in a directory removed with the test (the
    // sync lock beside it too).
    let pid_dir = tempfile::tempdir().expect("PID dir");
    give_to_agent(pid_dir.path());
    upload.env("VSC_PID_PATH", pid_dir.path().join("agent.pid"));
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

/// The README's example block (`export REMOTE_TYPE=s3`, `REMOTE_PROVIDER=Minio`, ...),
/// taken from the README itself and run as written, with the endpoint pointed at the test
/// server (which accepts the README's example keys).
fn readme_example_block() -> String {
    let readme = include_str!("../../../README.md");
    let start = readme
        .find("```bash\nexport REMOTE_TYPE=s3\nexport REMOTE_PROVIDER=Minio\n")
        .expect("the README's example block with REMOTE_PROVIDER=Minio");
    let block = &readme[start + "```bash\n".len()..];
    block[..block.find("```").expect("end of the block")].to_string()
}

fn readme_value(block: &str, variable: &str) -> String {
    let prefix = format!("export {variable}=");
    block
        .lines()
        .find_map(|line| line.strip_prefix(&prefix))
        .unwrap_or_else(|| panic!("no {variable} in the README block:\n{block}"))
        .to_string()
}

#[test]
fn the_readme_example_block_works_as_written() {
    let block = readme_example_block();
    let endpoint = readme_value(&block, "REMOTE_ENDPOINT");
    let server = S3Server::start_with_keys(
        &readme_value(&block, "REMOTE_ACCESS_KEY_ID"),
        &readme_value(&block, "REMOTE_SECRET_ACCESS_KEY"),
    );
    let bucket = server.bucket("testbucket");
    let sandbox = Sandbox::new(&server);
    let data = [
        ("index.html", "<h1>hi</h1>"),
        ("uploads/2024/cat.jpg", "meow"),
    ];
    sandbox.write("work", &data);
    let script = block.replace(&endpoint, &server.endpoint);
    assert!(script.contains("REMOTE_PROVIDER=Minio"), "{script}");

    // Its own temp dir (the agent's per-user PID file directory goes there), so the test
    // leaves nothing behind in the machine's.
    let tmp = sandbox.path("tmp");
    fs::create_dir_all(&tmp).expect("mkdir");
    give_to_agent(&tmp);
    let output = sandbox
        .shell("work", &script)
        .env("TMPDIR", &tmp)
        .output()
        .expect("bash");
    assert_exit(&output, 0);
    assert_eq!(stored_data(&bucket.join("some-directory")), owned(&data));
    assert_not_logged(&output, " ERROR ");
    assert_not_logged(&output, "PID file");
    let restored = read_tree(&sandbox.path("work/.build/testing-restore/some-directory"));
    assert_eq!(restored, owned(&data));
}

/// Plain `rclone sync` creates a bucket that does not exist yet; so does the agent (its
/// completion record goes into the new bucket), with either provider.
fn a_first_upload_creates_a_bucket_that_does_not_exist_yet(provider: Provider) {
    let server = S3Server::start();
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[("a.txt", "A")]);
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", "newbucket/app"]);
    assert_exit(&output, 0);
    assert_no_error_or_warning(&output);
    let stored = server.root.path().join("newbucket/app");
    assert_eq!(stored_data(&stored), owned(&[("a.txt", "A")]));
    assert_eq!(stored_record(&stored)["state"], "complete");
    let output = sandbox.run(&["remote-to-local-sync", "-s", "newbucket/app", "-d", "back"]);
    assert_exit(&output, 0);
    assert_eq!(read_tree(&sandbox.path("back")), owned(&[("a.txt", "A")]));
}

/// A first upload to a path never written, and the first restore after it, are normal
/// runs: nothing at ERROR or WARN level in the log.
fn a_first_upload_to_a_new_path_logs_no_error_or_warning(provider: Provider) {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[("a.txt", "A"), ("dir/b.txt", "B")]);
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/new/path"]);
    assert_exit(&output, 0);
    assert_no_error_or_warning(&output);
    assert_not_logged(&output, "directory not found");
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/new/path", "-d", "back"]);
    assert_exit(&output, 0);
    assert_no_error_or_warning(&output);
}

#[test]
fn a_first_upload_to_a_new_local_remote_path_logs_no_error_or_warning() {
    let server = S3Server::start();
    let mut sandbox = Sandbox::new(&server);
    sandbox.env = vec![("REMOTE_TYPE".into(), "local".into())];
    sandbox.write("src", &[("a.txt", "A"), ("dir/b.txt", "B")]);
    let target = sandbox.path("remote/never/written");
    let target_arg = target.to_str().expect("utf8");
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", target_arg]);
    assert_exit(&output, 0);
    assert_no_error_or_warning(&output);
    assert_not_logged(&output, "directory not found");
    assert_eq!(
        stored_data(&target),
        owned(&[("a.txt", "A"), ("dir/b.txt", "B")])
    );
}

#[test]
fn a_relative_remote_path_on_a_local_remote_is_under_the_working_directory() {
    let mut sandbox = Sandbox::local();
    sandbox.write("data", &[("a.txt", "A")]);
    // A name of this sandbox's own, so that nothing else can have put it at the root.
    let name = format!(
        "remote-{}",
        sandbox
            .dir
            .path()
            .file_name()
            .expect("a name")
            .to_string_lossy()
    );
    let relative = format!("./{name}");
    let output = sandbox.run(&["sync-to-remote", "-s", "./data", "-d", &relative]);
    assert_exit(&output, 0);
    assert_logged(&output, &[&sandbox.path(&name).display().to_string()]);
    assert_eq!(stored_data(&sandbox.path(&name)), owned(&[("a.txt", "A")]));
    assert!(!std::path::Path::new("/").join(&name).exists());
    assert_eq!(
        sandbox.restore(&[], &name, "restored"),
        owned(&[("a.txt", "A")])
    );

    // A crypt remote over the local one wraps the same directory under the working one.
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    let vault = format!("{name}-vault");
    sandbox.upload("data", &vault);
    let stored = everything_stored(&sandbox.path(&vault));
    assert!(!stored.is_empty() && !stored.contains("a.txt"), "{stored}");
    assert!(!std::path::Path::new("/").join(&vault).exists());
}

fn param_flags_configure_the_remote_without_env(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("flags");
    let mut sandbox = Sandbox::with_provider(&server, provider);
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
        &format!("provider = {}", provider.name()),
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

fn sync_mirrors_deletions_and_no_delete_keeps_remote_files(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
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

fn restore_mirrors_the_remote_and_no_delete_keeps_local_files(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("remote.txt", "R")]);
    let sandbox = Sandbox::with_provider(&server, provider);
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

fn mode_and_mtime_survive_a_round_trip(provider: Provider) {
    let server = S3Server::start();
    server.bucket("meta");
    let sandbox = Sandbox::with_provider(&server, provider);
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

fn json_logs_are_one_object_per_line_and_never_hold_secrets(provider: Provider) {
    let server = S3Server::start();
    server.bucket("logs");
    let sandbox = Sandbox::with_provider(&server, provider);
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

fn config_path_is_private_while_running_and_removed_after(provider: Provider) {
    let server = S3Server::start();
    server.bucket("cfg");
    let sandbox = Sandbox::with_provider(&server, provider);
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
            "[remote]\ntype = s3\nprovider = {}\naccess_key_id = {ACCESS_KEY}\nsecret_access_key = {SECRET_KEY}\nendpoint = {}\n",
            provider.name(),
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

fn bad_input_is_refused_by_name_before_anything_is_written(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bad");
    let mut sandbox = Sandbox::with_provider(&server, provider);
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

    let sandbox = Sandbox::with_provider(&server, provider);
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

fn an_unreachable_remote_fails_with_nothing_changed_locally(provider: Provider) {
    let server = S3Server::start();
    let mut sandbox = Sandbox::with_provider(&server, provider);
    sandbox.set_env("REMOTE_ENDPOINT", "http://127.0.0.1:9"); // discard port: nothing listens
    sandbox.set_env("RCLONE_RETRIES", "1");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    let dst = sandbox.write("data", &[("precious.db", "state")]);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bucket/app", "-d", "data"]);
    assert_exit(&output, 4);
    assert_eq!(read_tree(&dst), owned(&[("precious.db", "state")]));

    let mut sandbox = Sandbox::with_provider(&server, provider);
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

fn a_missing_restore_target_is_created_and_an_empty_remote_restores_nothing(provider: Provider) {
    let server = S3Server::start();
    server.bucket("fresh");
    let sandbox = Sandbox::with_provider(&server, provider);
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

for_each_provider!(
    a_first_upload_creates_a_bucket_that_does_not_exist_yet,
    a_first_upload_to_a_new_path_logs_no_error_or_warning,
    the_readme_example_uploads_and_restores,
    param_flags_configure_the_remote_without_env,
    sync_mirrors_deletions_and_no_delete_keeps_remote_files,
    restore_mirrors_the_remote_and_no_delete_keeps_local_files,
    mode_and_mtime_survive_a_round_trip,
    json_logs_are_one_object_per_line_and_never_hold_secrets,
    config_path_is_private_while_running_and_removed_after,
    bad_input_is_refused_by_name_before_anything_is_written,
    an_unreachable_remote_fails_with_nothing_changed_locally,
    a_missing_restore_target_is_created_and_an_empty_remote_restores_nothing,
);
