//! `--trash`: what a sync deletes or overwrites on the remote is kept in a dated trash
//! directory, purged by retention; `--as-of` restores the tree of an earlier time from it.

mod support;

use std::fs;
use std::path::Path;

use support::*;

const INVALID: i32 = 2;

/// The dated trash directories under a remote path on the server's disk, oldest first.
fn trash_versions(remote_dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(remote_dir.join(TRASH_DIR))
        .map(|entries| {
            entries
                .flatten()
                .filter(|entry| entry.path().is_dir())
                .map(|entry| entry.file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn upload(sandbox: &Sandbox, extra: &[&str]) {
    let mut args = vec!["sync-to-remote", "--trash"];
    args.extend_from_slice(extra);
    args.extend_from_slice(&["-s", "src", "-d", "bkt/app"]);
    assert_exit(&sandbox.run(&args), 0);
}

/// When the last upload to `remote_dir` completed: a time after it and before the next.
fn completed_at(remote_dir: &Path) -> String {
    stored_record(remote_dir)["completed_at"]
        .as_str()
        .expect("completed_at")
        .to_string()
}

fn restore_as_of(sandbox: &Sandbox, time: &str, target: &str) -> std::process::Output {
    sandbox.run(&[
        "remote-to-local-sync",
        "--as-of",
        time,
        "-s",
        "bkt/app",
        "-d",
        target,
    ])
}

fn the_trash_keeps_what_a_sync_deletes_or_overwrites(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
    let src = sandbox.write("src", &[("a.txt", "version 1"), ("b.txt", "bee")]);
    upload(&sandbox, &[]);
    sandbox.write("src", &[("a.txt", "version 2")]);
    fs::remove_file(src.join("b.txt")).expect("rm");
    upload(&sandbox, &[]);

    let remote = bucket.join("app");
    assert_eq!(stored_data(&remote), owned(&[("a.txt", "version 2")]));
    let versions = trash_versions(&remote);
    assert_eq!(versions.len(), 2, "{versions:?}"); // the first upload's log, the second's trash
    let second = remote.join(TRASH_DIR).join(&versions[1]);
    assert_eq!(
        stored_data(&second),
        owned(&[("a.txt", "version 1"), ("b.txt", "bee")])
    );
    let log: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(second.join(RECORD_NAME)).expect("change log"))
            .expect("json");
    assert_eq!(log["deleted"], serde_json::json!(["b.txt"]));
    assert_eq!(log["added"], serde_json::json!([]));

    // The trash is never restored as data.
    assert_eq!(
        sandbox.restore(&[], "bkt/app", "restored"),
        owned(&[("a.txt", "version 2")])
    );
}

fn as_of_restores_the_tree_of_each_earlier_time(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let remote = bucket.join("app");
    let sandbox = Sandbox::with_provider(&server, provider);

    let src = sandbox.write("src", &[("a.txt", "a1"), ("b.txt", "b1")]);
    upload(&sandbox, &[]);
    let after_first = completed_at(&remote);
    sandbox.write("src", &[("a.txt", "a2"), ("c.txt", "c1")]);
    fs::remove_file(src.join("b.txt")).expect("rm");
    upload(&sandbox, &[]);
    let after_second = completed_at(&remote);
    sandbox.write("src", &[("c.txt", "c2"), ("b.txt", "a new b")]);
    upload(&sandbox, &[]);
    let now = [("a.txt", "a2"), ("b.txt", "a new b"), ("c.txt", "c2")];
    assert_eq!(stored_data(&remote), owned(&now));

    let output = restore_as_of(&sandbox, &after_first, "first");
    assert_exit(&output, 0);
    assert_eq!(
        read_tree(&sandbox.path("first")),
        owned(&[("a.txt", "a1"), ("b.txt", "b1")])
    );
    assert_exit(&restore_as_of(&sandbox, &after_second, "second"), 0);
    assert_eq!(
        read_tree(&sandbox.path("second")),
        owned(&[("a.txt", "a2"), ("c.txt", "c1")])
    );

    // Over a volume holding today's tree: files of that time come back, later ones go.
    assert_exit(
        &sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "live"]),
        0,
    );
    assert_eq!(read_tree(&sandbox.path("live")), owned(&now));
    assert_exit(&restore_as_of(&sandbox, &after_second, "live"), 0);
    assert_eq!(
        read_tree(&sandbox.path("live")),
        owned(&[("a.txt", "a2"), ("c.txt", "c1")])
    );

    // Before the history began: refused by name, nothing created.
    let output = restore_as_of(&sandbox, "2000-01-01T00:00:00Z", "ancient");
    assert_exit(&output, INVALID);
    assert_logged(
        &output,
        &["the version history at remote:/bkt/app starts at"],
    );
    assert!(!sandbox.path("ancient").exists());
}

fn as_of_needs_a_history(provider: Provider) {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[("a.txt", "a")]);
    sandbox.upload("src", "bkt/app");
    let output = restore_as_of(&sandbox, "2026-01-01T00:00:00Z", "restored");
    assert_exit(&output, INVALID);
    assert_logged(&output, &["no version history", "--trash"]);
    let output = restore_as_of(&sandbox, "yesterday", "restored");
    assert_exit(&output, INVALID);
    assert_logged(&output, &["RFC 3339"]);
}

fn retention_purges_old_versions_and_moves_the_start_of_history(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let remote = bucket.join("app");
    // A version from long ago, past the default retention of 30 days.
    write_tree(
        &remote.join(TRASH_DIR).join("20200101T000000.000Z"),
        &[("a.txt", "from 2020")],
    );
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[("a.txt", "0")]);
    upload(&sandbox, &[]);
    let versions = trash_versions(&remote);
    assert!(
        !versions.contains(&"20200101T000000.000Z".to_string()),
        "{versions:?}"
    );

    let after_first = completed_at(&remote);
    sandbox.write("src", &[("a.txt", "1")]);
    upload(&sandbox, &["--trash-keep", "1"]);
    let after_second = completed_at(&remote);
    sandbox.write("src", &[("a.txt", "2")]);
    upload(&sandbox, &["--trash-keep", "1"]);
    let versions = trash_versions(&remote);
    assert_eq!(versions.len(), 1, "{versions:?}");
    assert_eq!(
        stored_data(&remote.join(TRASH_DIR).join(&versions[0])),
        owned(&[("a.txt", "1")])
    );

    // What retention purged cannot be rebuilt; what it kept can.
    let output = restore_as_of(&sandbox, &after_first, "purged");
    assert_exit(&output, INVALID);
    assert_logged(&output, &["starts at"]);
    assert_exit(&restore_as_of(&sandbox, &after_second, "kept"), 0);
    assert_eq!(read_tree(&sandbox.path("kept")), owned(&[("a.txt", "1")]));
}

fn trash_and_as_of_work_inside_an_encrypted_remote(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::with_provider(&server, provider);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    sandbox.write("src", &[("diary.txt", "first secret")]);
    upload(&sandbox, &[]);
    std::thread::sleep(std::time::Duration::from_millis(50));
    let between = chrono::Utc::now().to_rfc3339();
    std::thread::sleep(std::time::Duration::from_millis(50));
    sandbox.write("src", &[("diary.txt", "second secret")]);
    upload(&sandbox, &[]);

    let stored = everything_stored(&bucket.join("app"));
    for plain in ["diary", "secret", TRASH_DIR, RECORD_NAME] {
        assert!(
            !stored.contains(plain),
            "'{plain}' stored in plaintext:\n{stored}"
        );
    }
    assert_exit(&restore_as_of(&sandbox, &between, "restored"), 0);
    assert_eq!(
        read_tree(&sandbox.path("restored")),
        owned(&[("diary.txt", "first secret")])
    );
}

/// The restored tree is not what the remote holds: the next upload sends it (a full sync,
/// the later versions into the trash) and names its history in the record; a plain restore
/// of that remote continues the history, and so do its uploads.
fn the_upload_after_an_as_of_restore_sends_that_tree_and_names_its_history(provider: Provider) {
    let server = S3Server::start();
    let remote = server.bucket("bkt").join("app");
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[("a.txt", "a1")]);
    upload(&sandbox, &[]);
    let after_first = completed_at(&remote);
    sandbox.write("src", &[("a.txt", "a2"), ("b.txt", "b1")]);
    upload(&sandbox, &[]);
    assert_eq!(stored_record(&remote).get("restored_as_of"), None);

    assert_exit(&restore_as_of(&sandbox, &after_first, "restored"), 0);
    let send = [
        "sync-to-remote",
        "--trash",
        "-s",
        "restored",
        "-d",
        "bkt/app",
    ];
    assert_exit(&sandbox.run(&send), 0);
    assert_eq!(stored_data(&remote), owned(&[("a.txt", "a1")]));
    assert_eq!(
        stored_record(&remote)["restored_as_of"],
        after_first.as_str()
    );

    // A plain restore and its upload: the same history.
    sandbox.restore(&[], "bkt/app", "next");
    sandbox.write("next", &[("c.txt", "c1")]);
    let send = ["sync-to-remote", "--trash", "-s", "next", "-d", "bkt/app"];
    assert_exit(&sandbox.run(&send), 0);
    assert_eq!(
        stored_data(&remote),
        owned(&[("a.txt", "a1"), ("c.txt", "c1")])
    );
    assert_eq!(
        stored_record(&remote)["restored_as_of"],
        after_first.as_str()
    );
}

for_each_provider!(
    the_trash_keeps_what_a_sync_deletes_or_overwrites,
    as_of_restores_the_tree_of_each_earlier_time,
    as_of_needs_a_history,
    retention_purges_old_versions_and_moves_the_start_of_history,
    trash_and_as_of_work_inside_an_encrypted_remote,
    the_upload_after_an_as_of_restore_sends_that_tree_and_names_its_history,
);
