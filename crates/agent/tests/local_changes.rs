//! A persistent volume remembers what the agent last did in it (its local record): a
//! restore never mirrors the remote over local changes the remote does not have, and an
//! upload never sends the partial tree of a restore that did not finish.

mod support;

use std::fs;
use std::process::Stdio;
use std::time::Duration;

use support::*;

const REFUSED: i32 = 3;

#[test]
fn local_changes_made_after_the_last_upload_survive_the_next_restore() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let volume = sandbox.write("vol", &[("a.db", "v1"), ("b.db", "keep me")]);
    sandbox.upload("vol", "bkt/app");

    // The app writes on; the Pod stops before the next upload (S3 down at stop, or a
    // power loss). Added, modified and deleted files.
    sandbox.write("vol", &[("a.db", "v2"), ("c.db", "new")]);
    fs::remove_file(volume.join("b.db")).expect("delete");
    let changed = owned(&[("a.db", "v2"), ("c.db", "new")]);

    // The next start restores: the remote has not changed since the upload, so the
    // volume's newer files are kept, not reverted or deleted.
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "vol"]);
    assert_exit(&output, 0);
    assert_logged(
        &output,
        &["the local files are kept", "1 added, 1 modified, 1 deleted"],
    );
    assert_eq!(read_tree(&volume), changed);
    assert_eq!(
        stored_data(&bucket.join("app")),
        owned(&[("a.db", "v1"), ("b.db", "keep me")])
    );

    // The next upload sends them; a restore after it has nothing to do.
    sandbox.upload("vol", "bkt/app");
    assert_eq!(stored_data(&bucket.join("app")), changed);
    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "vol"]);
    assert_exit(&output, 0);
    assert_logged(&output, &["nothing to restore"]);
    assert_eq!(read_tree(&volume), changed);
}

#[test]
fn a_restore_is_refused_when_the_volume_and_the_remote_both_changed() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let volume = sandbox.write("vol", &[("a.db", "v1")]);
    sandbox.upload("vol", "bkt/app");
    // Another machine uploads to the same path, and this volume changes too.
    sandbox.write("elsewhere", &[("a.db", "theirs"), ("z.db", "z")]);
    sandbox.upload("elsewhere", "bkt/app");
    sandbox.write("vol", &[("mine.db", "only here")]);
    let local = owned(&[("a.db", "v1"), ("mine.db", "only here")]);

    let output = sandbox.run(&["remote-to-local-sync", "-s", "bkt/app", "-d", "vol"]);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &[
            "'mine.db'",
            "remote changed since",
            "--discard-local-changes",
        ],
    );
    assert_eq!(read_tree(&volume), local);

    // Asked to, the restore mirrors the remote over them.
    let output = sandbox.run(&[
        "remote-to-local-sync",
        "--discard-local-changes",
        "--max-delete-percent",
        "100",
        "-s",
        "bkt/app",
        "-d",
        "vol",
    ]);
    assert_exit(&output, 0);
    assert_eq!(read_tree(&volume), stored_data(&bucket.join("app")));
}

/// A replica that becomes the primary writer restores with --discard-local-changes: the
/// files it added while it held its uploads are deleted as asked, even when they are all its
/// volume holds (found on the real node: the takeover was refused at 100% forever). The
/// deletion plan still judges the rest: files the last sync left that the remote lost.
#[test]
fn discarded_local_additions_are_no_deletions_to_the_plan_but_the_rest_still_is() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    // Only the primary's tree is touched (Sandbox::write chowns all of the sandbox, which
    // changes the replica's files' ctime: a local change).
    let primary = sandbox.path("primary");
    let primary_uploads = |files: &[(&str, &str)], deleted: &[&str]| {
        write_tree(&primary, files);
        for name in deleted {
            fs::remove_file(primary.join(name)).expect("delete");
        }
        give_to_agent(&primary);
        let upload = [
            "sync-to-remote",
            "--max-delete-percent",
            "100",
            "-s",
            "primary",
            "-d",
            "bkt/app",
        ];
        assert_exit(&sandbox.run(&upload), 0);
    };
    primary_uploads(&[("a.db", "v1")], &[]);
    let replica = sandbox.path("replica");
    sandbox.restore(&[], "bkt/app", "replica");
    fs::remove_file(replica.join("a.db")).expect("delete");
    write_tree(&replica, &[("only-mine.db", "held")]);
    give_to_agent(&replica);
    primary_uploads(&[("b.db", "newer")], &[]);

    let discard = [
        "remote-to-local-sync",
        "--discard-local-changes",
        "-s",
        "bkt/app",
        "-d",
        "replica",
    ];
    let output = sandbox.run(&discard);
    assert_exit(&output, 0);
    assert_logged(&output, &["discarded", "'only-mine.db'"]);
    assert_eq!(read_tree(&replica), stored_data(&bucket.join("app")));

    // The remote then loses two of the three files this volume last synced, and the volume
    // adds one: the plan counts the two (of three), not the addition, and refuses.
    primary_uploads(&[("c.db", "c")], &[]);
    sandbox.restore(&[], "bkt/app", "replica");
    write_tree(&replica, &[("only-mine.db", "held again")]);
    give_to_agent(&replica);
    primary_uploads(&[], &["a.db", "b.db"]);
    let output = sandbox.run(&discard);
    assert_exit(&output, REFUSED);
    assert_logged(
        &output,
        &["would delete 2 of 3 files", "--max-delete-percent 50"],
    );
}

#[test]
fn an_upload_never_sends_the_partial_tree_of_an_interrupted_restore() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let big = "x".repeat(2 * 1024 * 1024);
    sandbox.write("src", &[("a.txt", "small"), ("big.bin", &big)]);
    sandbox.upload("src", "bkt/app");
    let remote = stored_data(&bucket.join("app"));

    // A slow restore, killed mid-way with its rclone, as a kubelet kills an init container
    // after the grace period.
    sandbox.set_env("RCLONE_BWLIMIT", "64k");
    let agent = sandbox
        .agent(&["remote-to-local-sync", "-s", "bkt/app", "-d", "vol"])
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn");
    let started = eventually(Duration::from_secs(20), || {
        sandbox.path("vol/a.txt").exists()
    });
    kill_with_children(agent);
    assert!(started, "the restore did not start");
    assert!(
        !sandbox.path("vol/big.bin").exists(),
        "the restore was not slow enough"
    );
    sandbox.set_env("RCLONE_BWLIMIT", "off");

    // The sidecar's upload refuses the partial tree: the remote keeps every file.
    let output = sandbox.run(&["sync-to-remote", "-s", "vol", "-d", "bkt/app"]);
    assert_exit(&output, REFUSED);
    assert_logged(&output, &["did not finish", "Run the restore"]);
    assert_eq!(stored_data(&bucket.join("app")), remote);

    // The retried restore completes the tree (rclone's leftovers included), then uploads
    // run again.
    let restored = sandbox.restore(&[], "bkt/app", "vol");
    assert_eq!(restored, read_tree(&sandbox.path("src")));
    sandbox.upload("vol", "bkt/app");
    assert_eq!(stored_data(&bucket.join("app")), remote);
}

#[test]
fn a_source_emptied_between_the_deletion_plan_and_the_transfer_deletes_nothing() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let volume = sandbox.write("vol", &[("a", "1"), ("b", "2"), ("c", "3")]);
    sandbox.upload("vol", "bkt/app");
    let remote = stored_data(&bucket.join("app"));
    // A change, so that the upload is not skipped as idle.
    sandbox.write("vol", &[("d", "4")]);

    // The real rclone, started through a script that empties the source right before the
    // transfer (after the plan's listing): an unmount at the worst moment.
    let wrapper = sandbox.path("rclone-unmounting-first");
    fs::write(
        &wrapper,
        "#!/bin/sh\nfor arg in \"$@\"; do [ \"$arg\" = sync ] && rm -f \"$UNMOUNT_DIR\"/*; done\nexec \"$REAL_RCLONE\" \"$@\"\n",
    )
    .expect("write wrapper");
    make_executable(&wrapper);
    give_to_agent(&wrapper);
    sandbox.set_env("UNMOUNT_DIR", &volume.display().to_string());
    sandbox.set_env("REAL_RCLONE", &runnable_rclone().display().to_string());
    sandbox.set_env("VSC_RCLONE_BINARY", &wrapper.display().to_string());

    // A full sync: an upload of only the changes deletes only what the record saw deleted.
    let output = sandbox.run(&[
        "sync-to-remote",
        "--full-sync-interval",
        "0s",
        "-s",
        "vol",
        "-d",
        "bkt/app",
    ]);
    assert!(
        read_tree(&volume).is_empty(),
        "the wrapper did not empty the source"
    );
    assert_exit(&output, 4);
    assert_logged(&output, &["deletions=0", "--max-delete threshold reached"]);
    assert_eq!(stored_data(&bucket.join("app")), remote);
}

fn make_executable(path: &std::path::Path) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755)).expect("chmod");
}

#[test]
fn an_unchanged_volume_is_not_uploaded_again_until_the_full_sync_is_due() {
    let mut server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    // Against the stopped server, fail at once instead of retrying for minutes.
    sandbox.set_env("RCLONE_RETRIES", "1");
    sandbox.set_env("RCLONE_LOW_LEVEL_RETRIES", "1");
    sandbox.write("vol", &[("a.db", "1"), ("dir/b.db", "2")]);
    sandbox.upload("vol", "bkt/app");
    let upload = [
        "sync-to-remote",
        "--full-sync-interval",
        "3s",
        "-s",
        "vol",
        "-d",
        "bkt/app",
    ];

    // Nothing changed: the upload succeeds with the server gone, so it sent no request.
    server.stop();
    let output = sandbox.run(&upload);
    assert_exit(&output, 0);
    assert_logged(&output, &["nothing changed locally since the last sync"]);
    assert_not_logged(&output, "starting rclone");

    // Any change is seen: a new file, a mode change, or a rewrite that restores the size
    // and modification time (`touch -r`): each makes the upload try the remote.
    let volume = sandbox.path("vol");
    let changes: [&dyn Fn(); 3] = [
        &|| write_tree(&volume, &[("c.db", "3")]),
        &|| set_mode(&volume.join("a.db"), 0o600),
        &|| {
            let before = fs::metadata(volume.join("dir/b.db")).expect("stat");
            fs::write(volume.join("dir/b.db"), "X").expect("rewrite");
            let mtime = filetime_of(&before);
            set_mtime(&volume.join("dir/b.db"), mtime);
        },
    ];
    for (index, change) in changes.iter().enumerate() {
        restore_record(&sandbox);
        change();
        // Made as root, readable by the agent; no chown, which would change every file.
        let output = sandbox.run(&upload);
        assert_exit(&output, 4);
        assert!(
            stderr(&output).contains("connection refused"),
            "change {index}: {}",
            stderr(&output)
        );
    }

    // Unchanged but the full sync is due: it runs (and fails, the server being gone).
    restore_record(&sandbox);
    std::thread::sleep(Duration::from_secs(3));
    assert_exit(&sandbox.run(&upload), 4);
    assert!(stored_data(&bucket.join("app")).len() == 2);
}

/// The local record of the first upload, saved by the first call and put back by the later
/// ones: each change is then judged against the same last sync.
fn restore_record(sandbox: &Sandbox) {
    let record = sandbox.path("vol").join(LOCAL_RECORD_NAME);
    let saved = sandbox.path("saved-record.json");
    if saved.exists() {
        fs::copy(&saved, &record).expect("put the record back");
    } else {
        fs::copy(&record, &saved).expect("save the record");
    }
}

fn set_mode(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt as _;
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).expect("chmod");
}

fn filetime_of(metadata: &fs::Metadata) -> std::time::SystemTime {
    metadata.modified().expect("mtime")
}

fn set_mtime(path: &std::path::Path, time: std::time::SystemTime) {
    let file = fs::OpenOptions::new().write(true).open(path).expect("open");
    file.set_modified(time).expect("set mtime");
}

/// The HTTP requests rclone sent during one agent run (`RCLONE_DUMP=headers` at `-vv`).
fn requests(output: &std::process::Output) -> usize {
    stderr(output).matches("HTTP REQUEST").count()
}

#[test]
fn an_upload_after_a_few_changes_sends_requests_for_those_files_only() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let volume = write_numbered_files(&sandbox, 200);
    sandbox.set_env("RCLONE_DUMP", "headers");
    let upload = ["sync-to-remote", "-vv", "-s", "vol", "-d", "bkt/app"];
    let full = sandbox.run(&upload);
    assert_exit(&full, 0);

    // One file added, one modified, one deleted, one renamed.
    write_tree(
        &volume,
        &[("dir1/new.txt", "new"), ("dir2/file2.txt", "changed")],
    );
    fs::remove_file(volume.join("dir3/file3.txt")).expect("delete");
    fs::rename(
        volume.join("dir4/file4.txt"),
        volume.join("dir4/renamed.txt"),
    )
    .expect("rename");
    let output = sandbox.run(&upload);
    assert_exit(&output, 0);
    assert_logged(
        &output,
        &[
            "uploading the changes since the last sync",
            "2 added, 1 modified, 2 deleted",
        ],
    );
    assert_eq!(stored_data(&bucket.join("app")), read_tree(&volume));
    let (full_requests, change_requests) = (requests(&full), requests(&output));
    // Per changed file a few requests (look up, write, delete), plus the two record writes:
    // far from the full sync's, which grow with the tree.
    assert!(
        change_requests <= 5 * 4 + 4 && change_requests * 5 < full_requests,
        "{change_requests} requests for 5 changed paths, {full_requests} for the full upload"
    );
}

/// `vol` with `count` small files spread over 10 directories.
fn write_numbered_files(sandbox: &Sandbox, count: usize) -> std::path::PathBuf {
    let files: Vec<(String, String)> = (0..count)
        .map(|i| (format!("dir{}/file{i}.txt", i % 10), format!("content {i}")))
        .collect();
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_str()))
        .collect();
    sandbox.write("vol", &borrowed)
}

#[test]
fn the_periodic_full_sync_compares_hashes_from_the_listing_and_repairs_the_remote() {
    let server = S3Server::start();
    let bucket = server.bucket("bkt");
    let mut sandbox = Sandbox::new(&server);
    let volume = write_numbered_files(&sandbox, 200);
    sandbox.set_env("RCLONE_DUMP", "headers");
    let upload = [
        "sync-to-remote",
        "-vv",
        "--full-sync-interval",
        "1s",
        "-s",
        "vol",
        "-d",
        "bkt/app",
    ];
    assert_exit(&sandbox.run(&upload), 0);

    // The remote loses a file, and a local file changes with its size kept: only the
    // content (its hash) tells it apart.
    server.delete_object("bkt/app/dir1/file1.txt");
    fs::write(volume.join("dir2/file2.txt"), "CONTENT 2").expect("same-size rewrite");
    std::thread::sleep(Duration::from_millis(1100));
    let output = sandbox.run(&upload);
    assert_exit(&output, 0);
    assert_logged(&output, &["a full sync is due"]);
    assert_eq!(stored_data(&bucket.join("app")), read_tree(&volume));
    // 21 here: the listings (the plan's and the sync's, per directory), the two files
    // written and the record's writes. rclone's default comparison (size and time) would
    // add one request per object: 200 more.
    let sent = requests(&output);
    assert!(sent <= 25, "{sent} requests for the full sync of 200 files");
}
