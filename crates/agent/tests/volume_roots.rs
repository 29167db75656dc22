//! Volume roots as a kubelet makes them: owned by root, mounted at the restore target. The
//! ownership valve accepts a mount point the agent can write (a retried init container
//! after a part-way restore, a StatefulSet's volume on every Pod restart), and still refuses
//! a root-owned directory that is not a mount point, or a volume the agent cannot write.
//! Real tmpfs mounts in the sandbox, so these tests run as root (CI does); the agent runs
//! unprivileged through setpriv.

mod support;

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use support::*;

const REFUSED: i32 = 3;

/// A tmpfs mounted at a directory (created root-owned, as the kubelet's volume roots are),
/// unmounted when dropped, also when the test fails.
struct Mounted {
    path: PathBuf,
}

impl Mounted {
    /// `mode`: of the mount's root, e.g. `0777` (an emptyDir) or `0755` (a fresh PV).
    fn tmpfs(path: &Path, mode: &str) -> Mounted {
        assert_eq!(
            fs::metadata("/proc/self").expect("stat").uid(),
            0,
            "mounting a volume root needs root: run these tests as root (CI does)"
        );
        fs::create_dir_all(path).expect("mount point");
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size=4m,mode={mode}"),
                "vsc-test",
            ])
            .arg(path)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "mount -t tmpfs at {} failed (needs CAP_SYS_ADMIN)",
            path.display()
        );
        Mounted {
            path: path.to_path_buf(),
        }
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.path).status();
    }
}

/// A server whose `bkt/app` holds what the last upload left.
fn remote_with_data(server: &S3Server) {
    write_tree(
        &server.bucket("bkt").join("app"),
        &[("db.sqlite", "remote"), ("media/a.png", "png")],
    );
}

fn restore(sandbox: &Sandbox, extra: &[&str], dir: &str) -> std::process::Output {
    let mut args = vec!["remote-to-local-sync", "-s", "bkt/app", "-d", dir];
    args.extend_from_slice(extra);
    sandbox.run(&args)
}

#[test]
fn a_root_owned_volume_root_holding_files_is_restored_into() {
    let server = S3Server::start();
    remote_with_data(&server);
    let sandbox = Sandbox::new(&server);
    let volume = Mounted::tmpfs(&sandbox.path("volume"), "0777");
    // What a part-way restore left, before the init container is retried.
    write_tree(&volume.path, &[("db.sqlite", "partial")]);
    assert_eq!(fs::metadata(&volume.path).expect("stat").uid(), 0);

    let output = restore(&sandbox, &[], "volume");
    assert_exit(&output, 0);
    assert_logged(&output, &["mount point"]);
    assert_eq!(
        read_tree(&volume.path),
        owned(&[("db.sqlite", "remote"), ("media/a.png", "png")])
    );
}

#[test]
fn a_statefulset_volume_with_data_is_kept_on_its_first_run_and_restored_after() {
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let volume = Mounted::tmpfs(&sandbox.path("pv"), "0777");
    write_tree(&volume.path, &[("precious.db", "state")]);

    // restoreRemoteOnFirstRun: false, the remote never written: the volume's files stay.
    let output = restore(&sandbox, &["--keep-local-if-remote-empty"], "pv");
    assert_exit(&output, 0);
    assert_eq!(read_tree(&volume.path), owned(&[("precious.db", "state")]));

    // The sidecar uploads. A later Pod's restore into the root-owned volume finds local
    // changes the remote does not have (the app wrote, the Pod stopped before the next
    // upload): the remote has not changed since, so the volume is kept as it is.
    sandbox.upload("pv", "bkt/app");
    fs::remove_file(volume.path.join("precious.db")).expect("lose a file");
    write_tree(&volume.path, &[("new-since.db", "x")]);
    let output = restore(&sandbox, &["--keep-local-if-remote-empty"], "pv");
    assert_exit(&output, 0);
    assert_logged(&output, &["the local files are kept"]);
    assert_eq!(read_tree(&volume.path), owned(&[("new-since.db", "x")]));

    // Asked to, the restore brings back what the remote has and the volume lost.
    let output = restore(
        &sandbox,
        &["--discard-local-changes", "--max-delete-percent", "100"],
        "pv",
    );
    assert_exit(&output, 0);
    assert_eq!(read_tree(&volume.path), owned(&[("precious.db", "state")]));
}

#[test]
fn a_root_owned_volume_the_agent_cannot_write_is_refused_naming_fs_group() {
    let server = S3Server::start();
    remote_with_data(&server);
    let sandbox = Sandbox::new(&server);
    let volume = Mounted::tmpfs(&sandbox.path("volume"), "0755");
    write_tree(&volume.path, &[("db.sqlite", "local")]);

    let output = restore(&sandbox, &[], "volume");
    assert_exit(&output, REFUSED);
    assert_logged(&output, &["cannot write", "fsGroup"]);
    assert_eq!(read_tree(&volume.path), owned(&[("db.sqlite", "local")]));
}

#[test]
fn a_root_owned_directory_that_is_not_a_mount_point_is_still_refused() {
    let server = S3Server::start();
    remote_with_data(&server);
    let sandbox = Sandbox::new(&server);
    let plain = sandbox.write("plain", &[("system.txt", "S")]);
    give_to(&plain, 0);
    fs::set_permissions(&plain, std::os::unix::fs::PermissionsExt::from_mode(0o777))
        .expect("chmod");

    let output = restore(&sandbox, &[], "plain");
    assert_exit(&output, REFUSED);
    assert_logged(&output, &["owned by root", "not a mount point"]);
    assert_eq!(read_tree(&plain), owned(&[("system.txt", "S")]));
}

/// An app that runs as another user writes a file the agent cannot read (root's 0600 here):
/// the upload is refused before anything is written, naming the file, its owner and the
/// agent's uid, and the remote stays as it was (no partial tree, no "in progress" record).
#[test]
fn a_file_the_agent_cannot_read_refuses_the_upload_before_anything_is_written() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = S3Server::start();
    server.bucket("bkt");
    let sandbox = Sandbox::new(&server);
    let src = sandbox.write("src", &[("readable.txt", "ok"), ("secret.db", "app only")]);
    give_to_agent(&src);
    let secret = src.join("secret.db");
    give_to(&secret, 0);
    fs::set_permissions(&secret, fs::Permissions::from_mode(0o600)).expect("chmod");
    if agent_uid() == fs::metadata("/proc/self").expect("stat").uid() {
        // Not root: the owner's own file, closed to everybody.
        fs::set_permissions(&secret, fs::Permissions::from_mode(0o000)).expect("chmod");
    }
    let output = sandbox.run(&[
        "sync-to-remote",
        "-s",
        &src.display().to_string(),
        "-d",
        "bkt/app",
    ]);
    assert_eq!(output.status.code(), Some(REFUSED), "{}", stderr(&output));
    assert_logged(
        &output,
        &[
            "secret.db",
            &format!("by uid {}", agent_uid()),
            "Nothing was written",
        ],
    );
    assert!(
        read_tree(&server.bucket("bkt")).is_empty(),
        "the remote was written to: {:?}",
        read_tree(&server.bucket("bkt"))
    );
}
