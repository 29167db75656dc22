//! The fault matrix (RELIABILITY.md): the agent against a real `rclone serve s3` reached
//! through a fault-injecting proxy on 127.0.0.1 (5xx, slow, dropped and truncated answers,
//! revoked credentials), a full disk, files changing during a sync, a clock set back, and
//! trees of awkward shape. After each case every byte is compared on both sides.

mod support;

use std::fs;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use support::*;
use vsc_test_support::fault_proxy::{Fault, FaultProxy};

/// A sandbox whose `REMOTE_ENDPOINT` is a fault proxy in front of `server`.
fn behind_proxy(server: &S3Server) -> (FaultProxy, Sandbox) {
    let proxy = FaultProxy::start(&server.endpoint);
    let mut sandbox = Sandbox::new(server);
    sandbox.set_env("REMOTE_ENDPOINT", &proxy.endpoint);
    (proxy, sandbox)
}

/// `count` files of `size` bytes each (distinct contents) under `dir/`.
fn data(dir: &str, count: usize, size: usize) -> Vec<(String, String)> {
    (0..count)
        .map(|index| {
            let line = format!("{dir} file {index}\n");
            (
                format!("{dir}/file-{index:03}.txt"),
                line.repeat(size / line.len() + 1)[..size].to_string(),
            )
        })
        .collect()
}

fn write_owned(sandbox: &Sandbox, relative: &str, files: &[(String, String)]) -> PathBuf {
    let borrowed: Vec<(&str, &str)> = files
        .iter()
        .map(|(path, body)| (path.as_str(), body.as_str()))
        .collect();
    sandbox.write(relative, &borrowed)
}

/// Every regular file below `root` (relative paths, sorted), the agent's own names left out.
fn user_files(root: &Path) -> Vec<PathBuf> {
    fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("list").flatten() {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with(".volume-syncing-controller") || name.ends_with(".partial") {
                continue;
            }
            if entry.file_type().expect("type").is_dir() {
                walk(root, &path, out);
            } else {
                out.push(path.strip_prefix(root).expect("below root").to_path_buf());
            }
        }
    }
    let mut out = Vec::new();
    walk(root, root, &mut out);
    out.sort();
    out
}

/// The same files, byte for byte, below `a` and `b` (read in chunks: a file may be 1 GiB).
#[track_caller]
fn assert_same_bytes(a: &Path, b: &Path) {
    let files = user_files(a);
    assert_eq!(
        files,
        user_files(b),
        "{} and {} hold different files",
        a.display(),
        b.display()
    );
    for relative in files {
        let (mut left, mut right) = (
            fs::File::open(a.join(&relative)).expect("open"),
            fs::File::open(b.join(&relative)).expect("open"),
        );
        let (mut left_chunk, mut right_chunk) = (vec![0; 1 << 20], vec![0; 1 << 20]);
        loop {
            let read = read_full(&mut left, &mut left_chunk);
            assert_eq!(
                read,
                read_full(&mut right, &mut right_chunk),
                "{} differs in size",
                relative.display()
            );
            assert!(
                left_chunk[..read] == right_chunk[..read],
                "{} differs",
                relative.display()
            );
            if read == 0 {
                break;
            }
        }
    }
}

fn read_full(file: &mut fs::File, buffer: &mut [u8]) -> usize {
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read(&mut buffer[filled..]).expect("read") {
            0 => break,
            read => filled += read,
        }
    }
    filled
}

fn upload(sandbox: &Sandbox, dst: &str) -> std::process::Output {
    sandbox.run(&["sync-to-remote", "-s", "data", "-d", dst])
}

fn restore(sandbox: &Sandbox, src: &str, dir: &str) -> std::process::Output {
    sandbox.run(&["remote-to-local-sync", "-s", src, "-d", dir])
}

#[test]
fn transient_500s_on_uploads_are_retried_and_every_byte_arrives() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 12, 4096));
    proxy.inject(
        Some("PUT"),
        "/faults/app/app/",
        Fault::Status(500, "InternalError"),
        Some(3),
    );

    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_eq!(proxy.faults_injected(), 3);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("app"));
}

#[test]
fn a_server_that_keeps_failing_uploads_fails_the_sync_and_the_next_run_completes_it() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 6, 1000));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    write_owned(&sandbox, "data", &data("app", 8, 2000));
    proxy.inject(
        Some("PUT"),
        "/faults/app/app/",
        Fault::Status(503, "SlowDown"),
        None,
    );

    let failed = upload(&sandbox, "faults/app");
    assert_ne!(failed.status.code(), Some(0), "{}", stderr(&failed));
    assert_logged(&failed, &["503"]);
    let refused = restore(&sandbox, "faults/app", "elsewhere");
    assert_ne!(refused.status.code(), Some(0));
    assert_logged(&refused, &["did not complete"]);

    proxy.heal();
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("app"));
    assert_exit(&restore(&sandbox, "faults/app", "elsewhere"), 0);
    assert_same_bytes(&sandbox.path("data"), &sandbox.path("elsewhere"));
}

#[test]
fn slow_answers_slow_a_restore_but_every_byte_arrives() {
    let server = S3Server::start();
    let _bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 5, 3000));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    proxy.inject(
        Some("GET"),
        "/faults/",
        Fault::Delay(Duration::from_millis(1500)),
        Some(4),
    );

    assert_exit(&restore(&sandbox, "faults/app", "restored"), 0);
    assert_eq!(proxy.faults_injected(), 4);
    assert_same_bytes(&sandbox.path("data"), &sandbox.path("restored"));
}

#[test]
fn dropped_connections_during_a_restore_are_retried() {
    let server = S3Server::start();
    let _bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 5, 3000));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    proxy.inject(Some("GET"), "/faults/app/app/file-", Fault::Drop, Some(2));

    assert_exit(&restore(&sandbox, "faults/app", "restored"), 0);
    assert_eq!(proxy.faults_injected(), 2);
    assert_same_bytes(&sandbox.path("data"), &sandbox.path("restored"));
}

#[test]
fn truncated_downloads_are_retried_and_never_land_short() {
    let server = S3Server::start();
    let _bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 3, 1 << 20));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    proxy.inject(
        Some("GET"),
        "/faults/app/app/file-001",
        Fault::Truncate,
        Some(2),
    );

    assert_exit(&restore(&sandbox, "faults/app", "restored"), 0);
    assert_eq!(proxy.faults_injected(), 2);
    assert_same_bytes(&sandbox.path("data"), &sandbox.path("restored"));
}

#[test]
fn a_listing_that_keeps_arriving_truncated_fails_the_restore_with_the_volume_untouched() {
    let server = S3Server::start();
    let _bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 4, 500));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_exit(&restore(&sandbox, "faults/app", "volume"), 0);
    write_owned(&sandbox, "data", &data("app", 2, 900));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    let before = read_tree(&sandbox.path("volume"));
    proxy.inject(Some("GET"), "list-type=2", Fault::Truncate, None);

    let failed = restore(&sandbox, "faults/app", "volume");
    assert_ne!(failed.status.code(), Some(0), "{}", stderr(&failed));
    assert_eq!(
        read_tree(&sandbox.path("volume")),
        before,
        "the volume changed"
    );
}

#[test]
fn dropped_connections_during_an_upload_are_retried() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 10, 2048));
    proxy.inject(Some("PUT"), "/faults/app/app/file-", Fault::Drop, Some(3));

    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_eq!(proxy.faults_injected(), 3);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("app"));
}

#[test]
fn credentials_revoked_mid_upload_fail_it_and_a_run_with_valid_keys_completes_it() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    write_owned(&sandbox, "data", &data("app", 20, 1024));
    // The completion record and the first files pass; then every request is refused.
    proxy.inject_after(
        None,
        "/faults/",
        Fault::Status(403, "InvalidAccessKeyId"),
        6,
    );

    let failed = upload(&sandbox, "faults/app");
    assert_ne!(failed.status.code(), Some(0), "{}", stderr(&failed));
    assert_logged(&failed, &["InvalidAccessKeyId"]);
    let refused = restore(&sandbox, "faults/app", "elsewhere");
    assert_ne!(
        refused.status.code(),
        Some(0),
        "a restore of the cut-off upload"
    );

    proxy.heal();
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("app"));
}

/// A small tmpfs mounted for one test, unmounted (and only it) when the test ends.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> SmallDisk {
        assert!(
            running_as_root(),
            "the disk-full case mounts a tmpfs: run the tests as root (as CI does)"
        );
        fs::create_dir_all(at).expect("mount point");
        let options = format!("size={size},uid={},mode=0755", agent_uid());
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &options, "vsc-test-small-disk"])
            .arg(at)
            .status()
            .expect("mount");
        assert!(status.success(), "cannot mount a tmpfs at {}", at.display());
        SmallDisk(at.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_fails_the_restore_and_the_partial_tree_is_never_uploaded() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    write_owned(&sandbox, "data", &data("app", 6, 1 << 20));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    let _disk = SmallDisk::mount(&sandbox.path("volume"), "3m");

    let failed = restore(&sandbox, "faults/app", "volume");
    assert_ne!(failed.status.code(), Some(0), "{}", stderr(&failed));
    assert_logged(&failed, &["disk space"]);
    let refused = sandbox.run(&["sync-to-remote", "-s", "volume", "-d", "faults/app"]);
    assert_ne!(refused.status.code(), Some(0));
    assert_logged(&refused, &["did not finish"]);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("app"));
}

#[test]
fn a_file_written_during_the_upload_is_carried_by_the_next_sync() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let (proxy, sandbox) = behind_proxy(&server);
    let root = write_owned(&sandbox, "data", &data("app", 4, 1000));
    // Slow uploads give the writer time to change the file while it is being sent.
    proxy.inject(
        Some("PUT"),
        "/faults/",
        Fault::Delay(Duration::from_millis(300)),
        None,
    );
    let writer_file = root.join("app/growing.log");
    let writer = {
        let path = writer_file.clone();
        std::thread::spawn(move || {
            for line in 0..40 {
                let mut text = fs::read_to_string(&path).unwrap_or_default();
                text.push_str(&format!("line {line}\n"));
                fs::write(&path, text).expect("append");
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    std::thread::sleep(Duration::from_millis(100));
    let during = upload(&sandbox, "faults/app");
    writer.join().expect("writer");
    give_to_agent(&writer_file);
    proxy.heal();
    // rclone never stores a file that changed while it was read: that upload fails, naming
    // the file, and its completion record stays in progress (a mixed tree).
    if during.status.code() != Some(0) {
        let log = stderr(&during);
        let changed = ["source file is being updated", "corrupted on transfer"];
        assert!(
            log.contains("growing.log") && changed.iter().any(|cause| log.contains(cause)),
            "the failure does not name the changing file:\n{log}"
        );
        let refused = restore(&sandbox, "faults/app", "elsewhere");
        assert_logged(&refused, &["did not complete"]);
    }

    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_same_bytes(&root, &bucket.join("app"));
    assert!(
        fs::read_to_string(bucket.join("app/app/growing.log"))
            .expect("stored")
            .ends_with("line 39\n")
    );
}

#[test]
fn a_clock_set_back_after_the_last_sync_brings_a_full_sync_that_repairs_the_remote() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    let root = write_owned(&sandbox, "data", &data("app", 5, 700));
    assert_exit(&upload(&sandbox, "faults/app"), 0);
    // The object is lost at the remote, and the record says its last full sync is a day
    // ahead: as after the clock was set back a day.
    server.delete_object("faults/app/app/file-002.txt");
    let record_path = root.join(LOCAL_RECORD_NAME);
    let mut record: serde_json::Value =
        serde_json::from_str(&fs::read_to_string(&record_path).expect("local record"))
            .expect("JSON");
    let tomorrow = (chrono::Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    record["full_sync_at"] = serde_json::Value::String(tomorrow);
    fs::write(&record_path, record.to_string()).expect("write the record");

    assert_exit(&upload(&sandbox, "faults/app"), 0);
    assert_same_bytes(&root, &bucket.join("app"));
}

#[test]
fn a_sparse_1_gib_file_round_trips() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    let root = sandbox.write("data", &[("head.txt", "small")]);
    let sparse = root.join("disk.img");
    let file = fs::File::create(&sparse).expect("create");
    file.set_len(1 << 30).expect("a 1 GiB hole");
    {
        use std::os::unix::fs::FileExt as _;
        file.write_all_at(b"start", 0).expect("write");
        file.write_all_at(b"middle", 1 << 29).expect("write");
        file.write_all_at(b"end", (1 << 30) - 3).expect("write");
    }
    give_to_agent(&sparse);

    assert_exit(&upload(&sandbox, "faults/big"), 0);
    assert_same_bytes(&root, &bucket.join("big"));
    assert_exit(&restore(&sandbox, "faults/big", "restored"), 0);
    assert_same_bytes(&root, &sandbox.path("restored"));
    // The bytes come back, the holes do not (RELIABILITY.md, "Fidelity").
    use std::os::unix::fs::MetadataExt as _;
    let allocated = fs::metadata(sandbox.path("restored/disk.img"))
        .expect("restored")
        .blocks()
        * 512;
    assert!(
        allocated >= (1 << 30) - (1 << 20),
        "allocated {allocated} bytes: sparse after all?"
    );
}

#[test]
fn fifty_thousand_tiny_files_round_trip() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    let root = sandbox.path("data");
    for index in 0..50_000 {
        let dir = root.join(format!("d{:03}", index / 500));
        if index % 500 == 0 {
            fs::create_dir_all(&dir).expect("mkdir");
        }
        fs::write(dir.join(format!("f{index}")), index.to_string()).expect("write");
    }
    give_to_agent(&root);

    assert_exit(&upload(&sandbox, "faults/many"), 0);
    assert_same_bytes(&root, &bucket.join("many"));
    assert_exit(&restore(&sandbox, "faults/many", "restored"), 0);
    assert_same_bytes(&root, &sandbox.path("restored"));
}

#[test]
fn a_100_deep_tree_round_trips() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    let deep: String = (0..100).map(|level| format!("l{level}/")).collect();
    sandbox.write(
        "data",
        &[(&format!("{deep}bottom.txt"), "deep"), ("top.txt", "top")],
    );

    assert_exit(&upload(&sandbox, "faults/deep"), 0);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("deep"));
    assert_exit(&restore(&sandbox, "faults/deep", "restored"), 0);
    assert_same_bytes(&sandbox.path("data"), &sandbox.path("restored"));
}

#[test]
fn odd_names_round_trip() {
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    let long = "n".repeat(250);
    let names = [
        "with space.txt",
        "ünïcödé/日本語.txt",
        "percent%20and+plus.txt",
        "question?mark#hash&amp.txt",
        "-leading-dash",
        "quote'\"back\\slash",
        "emoji-🙂.txt",
        "tab\there",
        long.as_str(),
    ];
    let files: Vec<(&str, &str)> = names.iter().map(|name| (*name, "odd")).collect();
    sandbox.write("data", &files);

    assert_exit(&upload(&sandbox, "faults/odd"), 0);
    assert_same_bytes(&sandbox.path("data"), &bucket.join("odd"));
    assert_exit(&restore(&sandbox, "faults/odd", "restored"), 0);
    assert_same_bytes(&sandbox.path("data"), &sandbox.path("restored"));
}

#[test]
fn a_name_that_is_not_utf8_round_trips_and_its_changes_are_uploaded() {
    use std::os::unix::ffi::OsStrExt as _;
    let server = S3Server::start();
    let bucket = server.bucket("faults");
    let sandbox = Sandbox::new(&server);
    let root = sandbox.write("data", &[("plain.txt", "plain")]);
    let name = std::ffi::OsStr::from_bytes(b"latin1-\xe9t\xe9.txt");
    fs::write(root.join(name), "not utf-8").expect("write");
    give_to_agent(&root);

    let first = upload(&sandbox, "faults/bytes");
    assert_exit(&first, 0);
    assert_logged(
        &first,
        &[
            "names that are not UTF-8 are uploaded, but only by full syncs: every upload of this tree is a full one: 1 (latin1-\u{fffd}t\u{fffd}.txt)",
        ],
    );
    // Changed after the first upload: a tree of UTF-8 names would get an upload of only
    // the changes, by name; this one gets a full sync, which carries it.
    fs::write(root.join(name), "changed, still not utf-8").expect("write");
    assert_exit(&upload(&sandbox, "faults/bytes"), 0);
    // The server stores that name in rclone's encoding: compare through a restore.
    assert_eq!(user_files(&bucket.join("bytes")).len(), 2);
    assert_exit(&restore(&sandbox, "faults/bytes", "restored"), 0);
    assert_same_bytes(&root, &sandbox.path("restored"));
}
