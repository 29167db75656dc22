//! The safety valves: checks run before rclone may delete anything.
//!
//! Each returns [`AgentError::RefusedBySafetyValve`] when the operation must not run, so
//! that nothing is written or deleted. `force` skips the ones a user may skip; checks that
//! no force can make sense of (a source that is not a directory) always run.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Component, Path, PathBuf};

use crate::error::{AgentError, Result};

use vsc_types::contract::{FORBIDDEN_RESTORE_ROOTS, FORBIDDEN_RESTORE_TREES};

const FORCE_UPLOAD: &str = "Pass --force-even-if-remote-would-be-cleared to override.";
const FORCE_RESTORE: &str = "Pass --force-delete-local-dir to override.";

/// What the local side of a restore looks like before anything is done.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LocalTarget {
    /// The directory does not exist yet; it will be created.
    Missing,
    Empty,
    NotEmpty,
}

/// Upload: the source must be a readable directory; when the remote mirrors it (sync), an
/// empty source would clear the remote, so it is refused unless forced.
pub fn check_upload_source(source: &Path, deletes_on_remote: bool, force: bool) -> Result<()> {
    let has_entries = directory_has_entries(source, "--src (local source)")?;
    if has_entries || !deletes_on_remote {
        return Ok(());
    }
    if force {
        tracing::warn!(source = %source.display(), "local source is empty and --force-even-if-remote-would-be-cleared is set: the remote copy will be cleared");
        return Ok(());
    }
    Err(AgentError::RefusedBySafetyValve {
        reason: format!(
            "the local source {} is empty; syncing it would delete everything at the remote path (is the volume mounted?)",
            source.display()
        ),
        how_to_override: FORCE_UPLOAD,
    })
}

/// `--require-sentinel`: the upload source must hold this file (relative to it), proof
/// that the volume is mounted and is the right one. No force skips it.
pub fn check_sentinel(source: &Path, sentinel: &Path) -> Result<()> {
    if sentinel.is_absolute() || sentinel.components().any(|c| c == Component::ParentDir) {
        return Err(AgentError::invalid(format!(
            "--require-sentinel {}: give a path relative to --src, without '..'",
            sentinel.display()
        )));
    }
    let path = source.join(sentinel);
    match fs::symlink_metadata(&path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(AgentError::RefusedBySafetyValve {
                reason: format!(
                    "the sentinel file {} is missing, so {} may not be the volume it should be (not mounted?)",
                    path.display(),
                    source.display()
                ),
                how_to_override: "Create the sentinel file on the volume, or remove --require-sentinel.",
            })
        }
        Err(e) => Err(AgentError::io("cannot inspect the sentinel", path, e)),
    }
}

/// Whether `path`, a directory the agent can list, holds nothing.
pub fn is_empty_directory(path: &Path) -> Result<bool> {
    directory_has_entries(path, "--src (local source)").map(|has| !has)
}

/// Upload: every listed file must be readable by the agent, or the upload would leave the
/// remote with part of the tree (and marked in progress). Checked before anything is
/// written; names up to 5 files with their owner and mode.
pub fn check_files_readable<'a>(
    root: &Path,
    files: impl IntoIterator<Item = &'a str>,
    running_uid: u32,
) -> Result<()> {
    let mut unreadable = Vec::new();
    let mut count = 0usize;
    for relative in files {
        let path = root.join(relative);
        let Err(e) = fs::File::open(&path) else {
            continue;
        };
        if e.kind() != std::io::ErrorKind::PermissionDenied {
            continue; // gone since the listing: rclone decides
        }
        count += 1;
        if unreadable.len() < 5 {
            let owner = fs::symlink_metadata(&path).map_or_else(
                |_| "owner unknown".into(),
                |m| format!("owner uid {}, mode {:o}", m.uid(), m.mode() & 0o7777),
            );
            unreadable.push(format!("{relative} ({owner})"));
        }
    }
    if count == 0 {
        return Ok(());
    }
    Err(AgentError::RefusedBySafetyValve {
        reason: format!(
            "{count} file(s) of {} cannot be read by uid {running_uid}, so the upload would be incomplete: {}",
            root.display(),
            unreadable.join(", ")
        ),
        how_to_override: "Run the agent as the user that writes the files (syncOptions.permissions or the Pod annotation riotkit.org/volume-user-id), or give the Pod an fsGroup and the app a umask that lets the group read them.",
    })
}

/// The path must be a directory the agent can list.
pub fn check_readable_directory(path: &Path, what: &str) -> Result<()> {
    directory_has_entries(path, what).map(drop)
}

/// Restore: refuses system directories and (when it holds files) a target not owned by the
/// running user, unless `managed`: a directory with the agent's local record, whose files
/// the agent restored or uploaded itself (a retried restore into a volume root owned by
/// root). Returns the state of the target for the remote-side decision.
pub fn check_restore_target(
    target: &Path,
    force: bool,
    running_uid: u32,
    managed: bool,
) -> Result<LocalTarget> {
    if let Some(root) = forbidden_root(target) {
        if force {
            tracing::warn!(target = %target.display(), root, "restoring into a system directory because --force-delete-local-dir is set");
        } else {
            return Err(AgentError::RefusedBySafetyValve {
                reason: format!(
                    "{} is {root}, a system directory, which cannot be a restore target: a sync there could erase the operating system or other users' files (a directory below it can be)",
                    target.display()
                ),
                how_to_override: FORCE_RESTORE,
            });
        }
    }
    let metadata = match fs::metadata(target) {
        Ok(metadata) => metadata,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LocalTarget::Missing),
        Err(e) => {
            return Err(AgentError::io(
                "cannot inspect --dst (local target)",
                target,
                e,
            ));
        }
    };
    if !metadata.is_dir() {
        return Err(AgentError::invalid(format!(
            "--dst: {} exists and is not a directory",
            target.display()
        )));
    }
    if !directory_has_entries(target, "--dst (local target)")? {
        // Nothing there that a restore could delete or overwrite.
        return Ok(LocalTarget::Empty);
    }
    match ownership_problem(target, metadata.uid(), running_uid).filter(|_| !managed) {
        Some(problem) if !force => Err(AgentError::RefusedBySafetyValve {
            reason: format!("{problem}; its files are not the agent's to replace"),
            how_to_override: FORCE_RESTORE,
        }),
        Some(problem) => {
            tracing::warn!(%problem, "continuing because --force-delete-local-dir is set");
            Ok(LocalTarget::NotEmpty)
        }
        None => Ok(LocalTarget::NotEmpty),
    }
}

/// Why a restore target that holds files is not this agent's to replace, if it is not. It
/// is when the running (non-root) user owns it, or when it is the root of a volume: a mount
/// point the running (non-root) user can write. The kubelet makes emptyDir, hostPath and
/// persistent volume roots owned by root; a plain directory that is not a mount point and
/// that someone else owns (a system or home directory) is refused.
fn ownership_problem(target: &Path, owner: u32, running_uid: u32) -> Option<String> {
    let shown = target.display();
    if owner == running_uid && owner != 0 {
        return None;
    }
    let owned_by = match owner {
        0 => "owned by root".to_string(),
        uid => format!("owned by uid {uid}, but the agent runs as uid {running_uid}"),
    };
    if running_uid == 0 {
        return Some(format!("the local target {shown} is {owned_by}"));
    }
    if !is_mount_point(target) {
        return Some(format!(
            "the local target {shown} is {owned_by} and is not a mount point (a volume's root)"
        ));
    }
    if !writable(target) {
        return Some(format!(
            "the local target {shown} is a volume {owned_by} that uid {running_uid} cannot write \
             (give the Pod a securityContext.fsGroup, or chown the volume)"
        ));
    }
    tracing::info!(target = %shown, owner, "the local target is a volume's root (a mount point the agent can write): restoring into it");
    None
}

/// Whether `path` is where a file system is mounted: listed as a mount point in
/// `/proc/self/mountinfo` (bind mounts of one file system included), else on another
/// device than its parent.
pub fn is_mount_point(path: &Path) -> bool {
    let Ok(resolved) = fs::canonicalize(path) else {
        return false;
    };
    match fs::read_to_string("/proc/self/mountinfo") {
        Ok(table) => table
            .lines()
            .filter_map(|line| line.split(' ').nth(4))
            .any(|mount_point| Path::new(&unescape_mount_path(mount_point)) == resolved),
        Err(_) => match (fs::metadata(&resolved), fs::metadata(resolved.join(".."))) {
            (Ok(it), Ok(parent)) => it.dev() != parent.dev(),
            _ => false,
        },
    }
}

/// A mountinfo path: space, tab, newline and backslash are written as `\ooo` (octal).
fn unescape_mount_path(raw: &str) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .and_then(|digits| std::str::from_utf8(digits).ok())
            .and_then(|digits| u8::from_str_radix(digits, 8).ok());
        match (bytes[i], octal) {
            (b'\\', Some(byte)) => {
                out.push(byte);
                i += 4;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Whether the running user may create and delete entries in the directory `path`.
fn writable(path: &Path) -> bool {
    use nix::unistd::{AccessFlags, faccessat};
    faccessat(
        nix::fcntl::AT_FDCWD,
        path,
        AccessFlags::W_OK | AccessFlags::X_OK,
        nix::fcntl::AtFlags::AT_EACCESS,
    )
    .is_ok()
}

/// The refusal for a restore that would mirror an empty remote over local files.
pub fn refuse_empty_remote(remote: &str, target: &Path) -> AgentError {
    AgentError::RefusedBySafetyValve {
        reason: format!(
            "the remote {remote} is empty (or cannot be decrypted) while {} holds files; restoring would delete them all",
            target.display()
        ),
        how_to_override: FORCE_RESTORE,
    }
}

fn directory_has_entries(path: &Path, what: &str) -> Result<bool> {
    let metadata = fs::metadata(path).map_err(|e| AgentError::io("cannot read", path, e))?;
    if !metadata.is_dir() {
        return Err(AgentError::invalid(format!(
            "{what}: {} is not a directory",
            path.display()
        )));
    }
    let entries = fs::read_dir(path).map_err(|e| AgentError::io("cannot list", path, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| AgentError::io("cannot list", path, e))?;
        // The agent's local record is not data: a directory holding only it is empty.
        if !crate::layout::is_local_reserved(&entry.file_name()) {
            return Ok(true);
        }
    }
    Ok(false)
}

/// The forbidden root `path` names, by its spelling or after resolving symlinks (in the
/// path, or in the forbidden root: `/lib` may be a link to `/usr/lib`).
fn forbidden_root(path: &Path) -> Option<&'static str> {
    let mut candidates = vec![lexically_absolute(path)];
    if let Ok(canonical) = fs::canonicalize(path) {
        candidates.push(canonical);
    }
    let spellings = |root: &'static str| {
        let root = Path::new(root);
        std::iter::once(root.to_path_buf()).chain(fs::canonicalize(root).ok())
    };
    candidates.iter().find_map(|candidate| {
        let exact = FORBIDDEN_RESTORE_ROOTS
            .iter()
            .copied()
            .find(|root| spellings(root).any(|root| *candidate == root));
        exact.or_else(|| {
            FORBIDDEN_RESTORE_TREES
                .iter()
                .copied()
                .find(|tree| spellings(tree).any(|tree| candidate.starts_with(tree)))
        })
    })
}

/// `path` made absolute against the working directory, with `.`, `..` and `//` folded.
fn lexically_absolute(path: &Path) -> PathBuf {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(path)
    };
    let mut normalized = PathBuf::from("/");
    for component in joined.components() {
        match component {
            Component::ParentDir => {
                normalized.pop();
            }
            Component::Normal(part) => normalized.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    normalized
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mountinfo_paths_are_unescaped() {
        assert_eq!(unescape_mount_path("/var/lib/a\\040b"), "/var/lib/a b");
        assert_eq!(unescape_mount_path("/x\\134y"), "/x\\y");
        assert_eq!(unescape_mount_path("/plain"), "/plain");
        assert_eq!(unescape_mount_path("/trailing\\"), "/trailing\\");
    }

    #[test]
    fn the_root_and_proc_are_mount_points_a_temp_dir_is_not() {
        assert!(is_mount_point(Path::new("/")));
        assert!(is_mount_point(Path::new("/proc")));
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(!is_mount_point(dir.path()));
    }

    #[test]
    fn system_directories_are_forbidden_in_any_spelling() {
        for spelling in [
            "/",
            "//",
            "/.",
            "/root",
            "/root/",
            "/bin",
            "/usr/bin",
            "/usr//lib",
            "/usr/lib/.",
            "/home",
            "/usr/../home",
            "/home/../bin",
            "/srv",
            "/srv/",
            "/srv/data/..",
            "/etc",
            "/etc/../etc/./",
            "/var",
            "/var/lib",
            "/var/lib/",
            "/var/log",
            "/usr",
            "/usr/share",
            "/usr/share/nginx/../",
            "/usr/local",
            "/usr/local/bin",
            "/lib",
            "/lib64",
            "/sbin",
            "/boot",
            "/opt",
            "/mnt",
            "/media",
            "/tmp",
            "/tmp/",
            "/run",
            "/dev",
            "/dev/shm",
            "/proc",
            "/proc/self",
            "/proc/1/root",
            "/sys",
            "/sys/fs/cgroup",
        ] {
            assert!(
                forbidden_root(Path::new(spelling)).is_some(),
                "{spelling} should be forbidden"
            );
        }
        for allowed in [
            "/home/user/data",
            "/home/user/app",
            "/var/www",
            "/var/www/html",
            "/var/lib/myapp",
            "/usr/lib/app/data",
            "/usr/share/nginx/html",
            "/usr/share/nginx",
            "/srv/data",
            "/mnt/volume",
            "/data",
            "/opt/app/state",
            "/tmp/restore",
        ] {
            assert!(forbidden_root(Path::new(allowed)).is_none(), "{allowed}");
        }
    }

    #[test]
    fn a_symlink_to_a_system_directory_is_forbidden() {
        let dir = tempfile::tempdir().expect("tempdir");
        for (name, system) in [("etc", "/etc"), ("share", "/usr/share"), ("sys", "/sys/fs")] {
            let link = dir.path().join(name);
            std::os::unix::fs::symlink(system, &link).expect("symlink");
            assert!(forbidden_root(&link).is_some(), "{name} -> {system}");
            assert!(forbidden_root(&link.join(".")).is_some(), "{name}/.");
        }
        // A link to an allowed directory below one stays allowed.
        let data = dir.path().join("data");
        fs::create_dir(&data).expect("mkdir");
        std::os::unix::fs::symlink(&data, dir.path().join("to-data")).expect("symlink");
        assert!(forbidden_root(&dir.path().join("to-data")).is_none());
    }

    #[test]
    fn forbidden_restore_root_is_refused_unless_forced() {
        let err =
            check_restore_target(Path::new("/usr/bin"), false, 1000, false).expect_err("refused");
        assert!(
            matches!(err, AgentError::RefusedBySafetyValve { .. }),
            "{err}"
        );
        assert!(
            err.to_string().contains("--force-delete-local-dir"),
            "{err}"
        );
    }

    #[test]
    fn missing_and_empty_targets_are_fine_for_anyone() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(
            check_restore_target(&dir.path().join("new"), false, 4242, false).expect("ok"),
            LocalTarget::Missing
        );
        assert_eq!(
            check_restore_target(dir.path(), false, 4242, false).expect("ok"),
            LocalTarget::Empty
        );
    }

    #[test]
    fn a_target_with_files_must_be_owned_by_the_running_user_and_not_root() {
        let dir = tempfile::tempdir().expect("tempdir");
        fs::write(dir.path().join("file"), "x").expect("write");
        let owner = fs::metadata(dir.path()).expect("stat").uid();
        let other = owner.wrapping_add(1);
        let err = check_restore_target(dir.path(), false, other, false).expect_err("foreign owner");
        assert!(
            matches!(err, AgentError::RefusedBySafetyValve { .. }),
            "{err}"
        );
        // A directory with the agent's local record holds what the agent itself put there
        // (a retried restore as root into a root-owned volume).
        assert_eq!(
            check_restore_target(dir.path(), false, other, true).expect("managed"),
            LocalTarget::NotEmpty
        );
        if owner == 0 {
            assert!(err.to_string().contains("owned by root"), "{err}");
        } else {
            assert!(err.to_string().contains(&format!("uid {owner}")), "{err}");
            assert_eq!(
                check_restore_target(dir.path(), false, owner, false).expect("own dir"),
                LocalTarget::NotEmpty
            );
        }
        assert_eq!(
            check_restore_target(dir.path(), true, other, false).expect("forced"),
            LocalTarget::NotEmpty
        );
    }

    #[test]
    fn empty_upload_source_is_refused_only_when_it_would_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = check_upload_source(dir.path(), true, false).expect_err("empty");
        assert!(err.to_string().contains("is empty"), "{err}");
        check_upload_source(dir.path(), false, false).expect("copy adds nothing, deletes nothing");
        check_upload_source(dir.path(), true, true).expect("forced");
    }

    #[test]
    fn a_missing_sentinel_is_refused_and_must_be_relative() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = check_sentinel(dir.path(), Path::new(".mounted")).expect_err("missing");
        assert!(
            matches!(err, AgentError::RefusedBySafetyValve { .. }),
            "{err}"
        );
        assert!(err.to_string().contains(".mounted"), "{err}");
        fs::write(dir.path().join(".mounted"), "").expect("write");
        check_sentinel(dir.path(), Path::new(".mounted")).expect("present");
        for bad in ["/etc/passwd", "../x"] {
            let err = check_sentinel(dir.path(), Path::new(bad)).expect_err("invalid");
            assert!(matches!(err, AgentError::InvalidInput(_)), "{err}");
        }
    }

    #[test]
    fn missing_upload_source_is_an_error_even_when_forced() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = check_upload_source(&dir.path().join("nope"), true, true).expect_err("missing");
        assert!(matches!(err, AgentError::Io { .. }), "{err}");
    }
}
