//! Fail-closed restore: the completion record tells a first run, a complete remote, an
//! interrupted upload and a remote written by something else apart, and a restore of the
//! wrong data never happens silently.

mod support;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use support::*;

const REFUSED: i32 = 3;

fn a_completed_upload_leaves_a_record_that_the_restore_reads(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
    sandbox.write("src", &[("a.txt", "hello"), ("dir/b.txt", "world!")]);
    sandbox.upload("src", "bkt/app");

    let record = stored_record(&bucket.join("app"));
    assert_eq!(record["state"], "complete", "{record}");
    assert_eq!(record["files"], 2, "{record}");
    assert_eq!(record["bytes"], 11, "{record}");
    assert_eq!(record["encrypted"], false, "{record}");
    assert!(record["completed_at"].is_string(), "{record}");
    assert!(record["writer"]["pid"].as_u64().is_some_and(|pid| pid > 0));
    assert_eq!(record["writer"]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        record["writer"]["host"]
            .as_str()
            .is_some_and(|h| !h.is_empty())
    );

    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "restored"]);
    assert_exit(&output, 0);
    assert_logged(&output, &["the last upload completed"]);
    // The record is the agent's, never the user's data.
    assert_eq!(
        read_tree(&sandbox.path("restored")),
        owned(&[("a.txt", "hello"), ("dir/b.txt", "world!")])
    );
}

fn a_remote_never_written_is_a_first_run_and_says_so(provider: Provider) {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/new", "-d", "volume"]);
    assert_exit(&output, 0);
    assert_logged(
        &output,
        &[
            "never written: nothing to restore (first run; if this remote path should hold data, check its bucket and path for a typo)",
        ],
    );
    assert!(read_tree(&sandbox.path("volume")).is_empty());
}

fn an_interrupted_upload_is_refused_until_allowed_and_healed_by_the_next_upload(
    provider: Provider,
) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::with_provider(&server, provider);
    let big = "x".repeat(2 * 1024 * 1024);
    sandbox.write("src", &[("a.txt", "small"), ("big.bin", &big)]);

    // A slow upload, killed mid-way together with its rclone, as when a Pod is killed.
    sandbox.set_env("RCLONE_BWLIMIT", "64k");
    let agent = sandbox
        .agent(&["sync-to-remote", "-s", "src", "-d", "bkt/app"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = eventually(Duration::from_secs(20), || {
        bucket.join("app/a.txt").exists()
            && fs::read_to_string(bucket.join("app").join(RECORD_NAME))
                .is_ok_and(|text| text.contains("in-progress"))
    });
    kill_with_children(agent);
    assert!(started, "the upload did not start");
    assert!(
        !bucket.join("app/big.bin").exists(),
        "the upload was not slow enough"
    );
    assert_eq!(stored_record(&bucket.join("app"))["state"], "in-progress");

    // A restore into a fresh volume refuses, and creates nothing.
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "fresh"]);
    assert_exit(&output, REFUSED);
    assert_logged(&output, &["did not complete", "--allow-incomplete"]);
    assert!(!sandbox.path("fresh").exists());

    // Into a volume with files: refused, the files untouched.
    let data = sandbox.write("data", &[("mine.db", "state")]);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "data"]);
    assert_exit(&output, REFUSED);
    assert_eq!(read_tree(&data), owned(&[("mine.db", "state")]));

    // Explicitly allowed: the partial tree, with a warning.
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "--allow-incomplete",
        "-s",
        "bkt/app",
        "-d",
        "fresh",
    ]);
    assert_exit(&output, 0);
    assert_logged(&output, &["WARN"]);
    assert_eq!(
        read_tree(&sandbox.path("fresh")),
        owned(&[("a.txt", "small")])
    );

    // The next upload that completes makes the remote restorable again.
    sandbox.set_env("RCLONE_BWLIMIT", "off");
    sandbox.upload("src", "bkt/app");
    assert_eq!(stored_record(&bucket.join("app"))["state"], "complete");
    assert_eq!(sandbox.restore(&[], "bkt/app", "healed").len(), 2);
}

fn files_without_a_record_restore_with_a_warning(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    // Written by plain rclone or an agent older than records.
    write_tree(&bucket.join("old"), &[("a.txt", "A")]);
    let sandbox = Sandbox::with_provider(&server, provider);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/old", "-d", "restored"]);
    assert_exit(&output, 0);
    assert_logged(&output, &["WARN", "no completion record"]);
    assert_eq!(
        read_tree(&sandbox.path("restored")),
        owned(&[("a.txt", "A")])
    );
}

fn an_unreadable_record_is_refused_unless_allowed(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(
        &bucket.join("odd"),
        &[("a.txt", "A"), (RECORD_NAME, "not a record")],
    );
    let sandbox = Sandbox::with_provider(&server, provider);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/odd", "-d", "restored"]);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &["completion record at remote:/bkt/odd cannot be read"],
    );
    assert!(!sandbox.path("restored").exists());
    assert_eq!(
        sandbox.restore(&["--allow-incomplete"], "bkt/odd", "restored"),
        owned(&[("a.txt", "A")])
    );
}

fn an_encrypted_remote_keeps_its_record_encrypted_and_still_reads_it(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("vault");
    let mut sandbox = Sandbox::with_provider(&server, provider);
    sandbox.set_env("ENCRYPTED_PASSWORD_PLAIN", "correct horse");
    sandbox.write("src", &[("a.txt", "secret")]);
    sandbox.upload("src", "vault/enc");
    let stored = everything_stored(&bucket.join("enc"));
    assert!(
        !stored.contains(RECORD_NAME) && !stored.contains("complete"),
        "{stored}"
    );

    let output = sandbox.run(&["remote-to-local-sync", "-s", "vault/enc", "-d", "restored"]);
    assert_exit(&output, 0);
    assert_logged(&output, &["the last upload completed"]);
    assert_eq!(
        read_tree(&sandbox.path("restored")),
        owned(&[("a.txt", "secret")])
    );
}

for_each_provider!(
    a_completed_upload_leaves_a_record_that_the_restore_reads,
    a_remote_never_written_is_a_first_run_and_says_so,
    an_interrupted_upload_is_refused_until_allowed_and_healed_by_the_next_upload,
    files_without_a_record_restore_with_a_warning,
    an_unreadable_record_is_refused_unless_allowed,
    an_encrypted_remote_keeps_its_record_encrypted_and_still_reads_it,
);
