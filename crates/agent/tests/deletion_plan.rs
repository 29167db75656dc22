//! The deletion plan: a sync that would delete too much is refused before anything is
//! deleted (rclone's own --max-delete stops only after deleting), in both directions, and an
//! upload needs its sentinel file when one is required.

mod support;

use std::fs;
use std::path::PathBuf;

use support::*;

const REFUSED: i32 = 3;

/// Ten photos, as (path, contents).
fn ten_files() -> Vec<(String, String)> {
    (0..10)
        .map(|i| (format!("photos/{i:02}.jpg"), format!("photo {i}")))
        .collect()
}

fn as_refs(files: &[(String, String)]) -> Vec<(&str, &str)> {
    files
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect()
}

/// A sandbox whose `src` holds [`ten_files`], uploaded to `bkt/app`.
fn ten_files_uploaded(server: &S3Server, provider: Provider) -> (Sandbox, PathBuf) {
    let sandbox = Sandbox::with_provider(server, provider);
    let src = sandbox.write("src", &as_refs(&ten_files()));
    sandbox.upload("src", "bkt/app");
    (sandbox, src)
}

fn an_upload_that_would_delete_most_of_the_remote_is_refused_before_deleting(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let (sandbox, src) = ten_files_uploaded(&server, provider);
    let record_before = stored_record(&bucket.join("app"));

    // The wrong directory: the app started fresh on an empty volume and wrote one file.
    fs::remove_dir_all(src.join("photos")).expect("rm");
    sandbox.write("src", &[("fresh.db", "new and empty")]);
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &[
            "would delete 10 of 10 files at the remote remote:/bkt/app (100%)",
            "photos/00.jpg, photos/01.jpg",
            "and 5 more",
            "--max-delete-percent",
        ],
    );
    // Nothing touched: no deletion, no upload, the record still the last complete one.
    assert_eq!(
        stored_data(&bucket.join("app")),
        owned(&as_refs(&ten_files()))
    );
    assert_eq!(stored_record(&bucket.join("app")), record_before);

    // The user says it is intended.
    let output = sandbox.run(&[
        "sync-to-remote",
        "--max-delete-percent",
        "100",
        "-s",
        "src",
        "-d",
        "bkt/app",
    ]);
    assert_exit(&output, 0);
    assert_eq!(
        stored_data(&bucket.join("app")),
        owned(&[("fresh.db", "new and empty")])
    );
}

fn a_file_count_limit_refuses_even_within_the_percentage(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let (sandbox, src) = ten_files_uploaded(&server, provider);
    for i in 0..3 {
        fs::remove_file(src.join(format!("photos/{i:02}.jpg"))).expect("rm");
    }
    let output = sandbox.run(&[
        "sync-to-remote",
        "--max-delete-files",
        "2",
        "-s",
        "src",
        "-d",
        "bkt/app",
    ]);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &["would delete 3 of 10 files", "--max-delete-files 2"],
    );
    assert_eq!(stored_data(&bucket.join("app")).len(), 10);

    // 30% is within the default 50%: an ordinary sync deletes them, and says what the plan cost.
    let output = sandbox.run(&["sync-to-remote", "-s", "src", "-d", "bkt/app"]);
    assert_exit(&output, 0);
    assert_logged(&output, &["deletion plan deletions=3"]);
    assert_eq!(stored_data(&bucket.join("app")).len(), 7);
}

fn a_restore_that_would_delete_most_local_files_is_refused_before_deleting(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    write_tree(&bucket.join("app"), &[("other.txt", "from another app")]);
    let sandbox = Sandbox::with_provider(&server, provider);
    let files = ten_files();
    let data = sandbox.write("data", &as_refs(&files));
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "data"]);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &["would delete 10 of 10 files in the local directory data"],
    );
    assert_eq!(
        read_tree(&data),
        owned(&as_refs(&files)),
        "local files untouched"
    );

    // --no-deletion-plan skips the plan (and its listings): rclone mirrors the remote.
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "--no-deletion-plan",
        "-s",
        "bkt/app",
        "-d",
        "data",
    ]);
    assert_exit(&output, 0);
    assert_not_logged(&output, "deletion plan");
    assert_eq!(
        read_tree(&data),
        owned(&[("other.txt", "from another app")])
    );
}

fn copy_mode_never_deletes_so_it_needs_no_plan(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let (sandbox, src) = ten_files_uploaded(&server, provider);
    fs::remove_dir_all(src.join("photos")).expect("rm");
    sandbox.write("src", &[("new.txt", "n")]);
    let output = sandbox.run(&[
        "sync-to-remote",
        "--no-delete",
        "-s",
        "src",
        "-d",
        "bkt/app",
    ]);
    assert_exit(&output, 0);
    assert_not_logged(&output, "deletion plan");
    assert_eq!(stored_data(&bucket.join("app")).len(), 11);
}

fn an_upload_without_its_sentinel_file_is_refused(provider: Provider) {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::with_provider(&server, provider);
    write_tree(&bucket.join("app"), &[("db.sqlite", "the real data")]);
    // An unmounted volume: the mount point holds something, but not the sentinel.
    let src = sandbox.write("src", &[("lost+found/.keep", "")]);
    let args = [
        "sync-to-remote",
        "--require-sentinel",
        ".volume-mounted",
        "-s",
        "src",
        "-d",
        "bkt/app",
    ];
    let output = sandbox.run(&args);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &["sentinel file", ".volume-mounted", "--require-sentinel"],
    );
    assert_eq!(
        read_tree(&bucket.join("app")),
        owned(&[("db.sqlite", "the real data")])
    );

    sandbox.write(
        "src",
        &[(".volume-mounted", ""), ("db.sqlite", "the real data")],
    );
    assert!(src.join(".volume-mounted").exists());
    assert_exit(&sandbox.run(&args), 0);
    assert_eq!(stored_data(&bucket.join("app")).len(), 3);
}

for_each_provider!(
    an_upload_that_would_delete_most_of_the_remote_is_refused_before_deleting,
    a_file_count_limit_refuses_even_within_the_percentage,
    copy_mode_never_deletes_so_it_needs_no_plan,
    a_restore_that_would_delete_most_local_files_is_refused_before_deleting,
    an_upload_without_its_sentinel_file_is_refused,
);
