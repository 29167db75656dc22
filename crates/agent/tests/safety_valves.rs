//! Each safety valve, shown to leave every file where it was.

mod support;

use std::fs;

use support::*;

const REFUSED: i32 = 3;

#[test]
fn an_empty_local_source_never_clears_the_remote() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(
        &bucket.join("app"),
        &[("db.sqlite", "data"), ("media/a.png", "png")],
    );
    let sandbox = Sandbox::new(&server);
    let empty = sandbox.write("empty", &[]);
    fs::create_dir_all(&empty).expect("mkdir");
    give_to_agent(&empty);

    let output = sandbox.run(&["sync-to-remote", "-s", "empty", "-d", "bkt/app"]);
    assert_exit(&output, REFUSED);
    assert!(
        stderr(&output).contains("--force-even-if-remote-would-be-cleared"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        read_tree(&bucket.join("app")),
        owned(&[("db.sqlite", "data"), ("media/a.png", "png")])
    );

    // The same on a schedule: the start sync is refused, the agent keeps running and its
    // final sync on SIGTERM is refused too, so it exits with the refusal.
    let mut agent = sandbox
        .agent(&[
            "sync-to-remote",
            "--schedule",
            "@every 1h",
            "-s",
            "empty",
            "-d",
            "bkt/app",
        ])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    assert!(eventually(std::time::Duration::from_secs(10), || sandbox
        .pid_path()
        .exists()));
    std::thread::sleep(std::time::Duration::from_millis(300));
    let output = sandbox.run(&["interrupt"]);
    assert_exit(&output, 0);
    let status = agent.wait().expect("wait");
    assert_eq!(status.code(), Some(REFUSED));
    assert_eq!(read_tree(&bucket.join("app")).len(), 2);
}

#[test]
fn forcing_an_empty_upload_clears_the_remote_loudly() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("old.txt", "x")]);
    let sandbox = Sandbox::new(&server);
    let empty = sandbox.path("empty");
    fs::create_dir_all(&empty).expect("mkdir");
    give_to_agent(&empty);
    let output = sandbox.run(&[
        "sync-to-remote",
        "--force-even-if-remote-would-be-cleared",
        "-s",
        "empty",
        "-d",
        "bkt/app",
    ]);
    assert_exit(&output, 0);
    assert!(stderr(&output).contains("WARN"), "{}", stderr(&output));
    assert!(stored_data(&bucket.join("app")).is_empty());
}

#[test]
fn an_empty_remote_never_clears_local_files() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let data = sandbox.write("data", &[("precious.db", "state")]);
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "-s",
        "bkt/never-written",
        "-d",
        "data",
    ]);
    assert_exit(&output, REFUSED);
    assert!(
        stderr(&output).contains("--force-delete-local-dir"),
        "{}",
        stderr(&output)
    );
    assert_eq!(read_tree(&data), owned(&[("precious.db", "state")]));

    // With --force-delete-local-dir the user gets exactly what they asked for.
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "--force-delete-local-dir",
        "-s",
        "bkt/never-written",
        "-d",
        "data",
    ]);
    assert_exit(&output, 0);
    assert!(read_tree(&data).is_empty());
}

#[test]
fn an_undecryptable_remote_never_clears_local_files() {
    let server = S3Server::start();
    server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "the right password");
    sandbox.write("src", &[("a.txt", "secret")]);
    assert_exit(
        &sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/enc"]),
        0,
    );

    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "a wrong password");
    let data = sandbox.write("data", &[("precious.db", "state")]);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/enc", "-d", "data"]);
    assert_exit(&output, 4);
    assert!(
        stderr(&output).contains("cannot be decrypted"),
        "{}",
        stderr(&output)
    );
    assert_eq!(read_tree(&data), owned(&[("precious.db", "state")]));

    // Into an empty volume the wrong key must not look like "nothing to restore" either:
    // the app would start on an empty directory.
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/enc", "-d", "fresh"]);
    assert_exit(&output, 4);
    assert!(!sandbox.path("fresh").exists());
}

#[test]
fn system_directories_are_refused_as_restore_roots() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("evil", "x")]);
    let sandbox = Sandbox::new(&server);
    for root in [
        "/",
        "/root",
        "/bin",
        "/usr/bin",
        "/usr/lib",
        "/home",
        "/usr/../bin",
        "//home/",
        "/usr/lib/.",
        // As root, a restore wrote into /srv: every directory a system is made of is refused.
        "/srv",
        "/etc",
        "/var",
        "/var/lib/",
        "/usr",
        "/usr/share",
        "/usr/share/nginx/..",
        "/opt",
        "/mnt",
        "/tmp",
        "/boot",
        "/proc/self",
        "/sys",
    ] {
        let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", root]);
        assert_exit(&output, REFUSED);
        assert!(
            stderr(&output).contains("operating system"),
            "{root}: {}",
            stderr(&output)
        );
    }
    // `.` spelled from inside a system directory is caught too.
    let output = sandbox
        .agent(&["remote-to-local-sync", "-s", "bkt/app", "-d", "."])
        .current_dir("/usr/bin")
        .output()
        .expect("run");
    assert_exit(&output, REFUSED);
    assert!(!std::path::Path::new("/usr/bin/evil").exists());
}

#[test]
fn a_target_owned_by_root_or_another_user_is_refused() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("remote.txt", "R")]);
    let sandbox = Sandbox::new(&server);

    let foreign = sandbox.write("foreign", &[("theirs.txt", "T")]);
    give_to(&foreign, agent_uid() + 1);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "foreign"]);
    if fs_uid_is_root() {
        assert_exit(&output, REFUSED);
        assert!(
            stderr(&output).contains(&format!("owned by uid {}", agent_uid() + 1)),
            "{}",
            stderr(&output)
        );
        assert_eq!(read_tree(&foreign), owned(&[("theirs.txt", "T")]));

        let roots = sandbox.write("roots", &[("system.txt", "S")]);
        give_to(&roots, 0);
        let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "roots"]);
        assert_exit(&output, REFUSED);
        assert!(
            stderr(&output).contains("owned by root"),
            "{}",
            stderr(&output)
        );
        assert_eq!(read_tree(&roots), owned(&[("system.txt", "S")]));
    } else {
        panic!(
            "the ownership valves need a second uid: run these tests as root (CI does), the agent then runs as uid {AGENT_UID_WHEN_ROOT}"
        );
    }
}

#[test]
fn unreadable_or_wrong_paths_are_clear_errors_not_panics() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let output = sandbox.run(&["sync-to-remote", "-s", "does-not-exist", "-d", "bkt/x"]);
    assert_exit(&output, 1);
    assert!(
        stderr(&output).contains("does-not-exist"),
        "{}",
        stderr(&output)
    );
    assert!(!stderr(&output).contains("panicked"));

    let file = sandbox
        .write("plain", &[("file.txt", "x")])
        .join("file.txt");
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "-s",
        "bkt/x",
        "-d",
        file.to_str().expect("utf8"),
    ]);
    assert_exit(&output, 2);
    assert!(
        stderr(&output).contains("not a directory"),
        "{}",
        stderr(&output)
    );

    if fs_uid_is_root() {
        let locked = sandbox.write("locked", &[("a", "a")]);
        give_to(&locked, 0);
        fs::set_permissions(&locked, std::os::unix::fs::PermissionsExt::from_mode(0o700))
            .expect("chmod");
        let output = sandbox.run(&["sync-to-remote", "-s", "locked", "-d", "bkt/x"]);
        assert_exit(&output, 1);
        assert!(
            stderr(&output).contains("Permission denied")
                || stderr(&output).contains("permission denied"),
            "{}",
            stderr(&output)
        );
    }
}

fn fs_uid_is_root() -> bool {
    use std::os::unix::fs::MetadataExt as _;
    fs::metadata("/proc/self").expect("stat").uid() == 0
}

#[test]
fn keep_local_if_remote_empty_keeps_a_volumes_files_on_its_first_run_only() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let data = sandbox.write("data", &[("precious.db", "state")]);
    let restore = [
        "remote-to-local-sync",
        "--keep-local-if-remote-empty",
        "-s",
        "bkt/app",
        "-d",
        "data",
    ];
    let output = sandbox.run(&restore);
    assert_exit(&output, 0);
    assert!(
        stderr(&output).contains("never written"),
        "{}",
        stderr(&output)
    );
    assert_eq!(read_tree(&data), owned(&[("precious.db", "state")]));

    // Once an upload completed, the remote is no longer "never written": the flag does not
    // turn a cleared remote into a reason to skip restores.
    let empty = sandbox.write("empty", &[]);
    std::fs::create_dir_all(&empty).expect("mkdir");
    give_to_agent(&empty);
    let output = sandbox.run(&[
        "sync-to-remote",
        "--force-even-if-remote-would-be-cleared",
        "-s",
        "empty",
        "-d",
        "bkt/app",
    ]);
    assert_exit(&output, 0);
    let output = sandbox.run(&restore);
    assert_exit(&output, REFUSED);
    assert_eq!(read_tree(&data), owned(&[("precious.db", "state")]));
}
