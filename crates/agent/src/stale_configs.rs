//! The private directories of runs that were killed (SIGKILL, the OOM killer, a power loss)
//! never removed their rclone config, which holds the remote's credentials. Each run
//! removes those of its user whose writer no longer runs, before it makes its own.

use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::Path;

use crate::rclone_config::{CONFIG_FILE_NAME, PRIVATE_DIR_PREFIX, writer_pid};

/// Removes `<temp_dir>/volume-syncing-controller-*/` directories of this user whose
/// `rclone.conf` carries the agent's header with the pid of a process that is gone. A
/// directory without that file or header (the per-user PID directory, anything else) is
/// not the agent's config and stays.
pub fn remove_left_by_killed_runs(temp_dir: &Path) {
    let Ok(entries) = fs::read_dir(temp_dir) else {
        return;
    };
    let uid = nix::unistd::geteuid().as_raw();
    for entry in entries.flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .starts_with(PRIVATE_DIR_PREFIX)
        {
            continue;
        }
        let dir = entry.path();
        let owned_dir = fs::symlink_metadata(&dir).is_ok_and(|m| m.is_dir() && m.uid() == uid);
        let Some(pid) = owned_dir
            .then(|| fs::read_to_string(dir.join(CONFIG_FILE_NAME)).ok())
            .flatten()
            .and_then(|text| writer_pid(&text))
        else {
            continue;
        };
        // Our own pid cannot be a live writer: this run has not written its config yet.
        if pid != std::process::id() && crate::pidfile::is_alive(pid) {
            continue;
        }
        match fs::remove_dir_all(&dir) {
            Ok(()) => {
                tracing::info!(dir = %dir.display(), pid, "removed the rclone config (with credentials) that a killed run left");
            }
            Err(e) => {
                tracing::warn!(dir = %dir.display(), error = %e, "cannot remove the rclone config a killed run left");
            }
        }
    }
}
