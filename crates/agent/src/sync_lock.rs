//! One sync at a time per PID file: the sidecar's scheduled syncs and a manual
//! `sync-to-remote` run in the same container (the README's `kubectl exec` command) share
//! the PID file's place, so they take turns on a lock beside it. Two uploads at once would
//! race on the completion record (rclone: "corrupted on transfer").

use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};

use crate::error::{AgentError, Result};

/// The lock file beside a PID file.
pub fn lock_path(pid_path: &Path) -> PathBuf {
    let mut name = pid_path.as_os_str().to_owned();
    name.push(".sync.lock");
    PathBuf::from(name)
}

/// Held while a sync runs; released when dropped (or when the process dies).
pub struct SyncTurn {
    _lock: Flock<File>,
}

/// Waits for the turn to sync, saying so when another agent's sync runs.
pub async fn take_turn(path: &Path) -> Result<SyncTurn> {
    let open = || {
        OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| AgentError::io("cannot open the sync lock", path, e))
    };
    match Flock::lock(open()?, FlockArg::LockExclusiveNonblock) {
        Ok(lock) => return Ok(SyncTurn { _lock: lock }),
        Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
            tracing::info!(lock = %path.display(), "another agent's sync of this place is running; this one starts when it ends");
        }
        Err((_, errno)) => {
            return Err(AgentError::io(
                "cannot lock the sync lock",
                path,
                errno.into(),
            ));
        }
    }
    let file = open()?;
    let owned = path.to_path_buf();
    tokio::task::spawn_blocking(move || Flock::lock(file, FlockArg::LockExclusive))
        .await
        .map_err(|e| AgentError::Internal(format!("waiting for the sync lock: {e}")))?
        .map(|lock| SyncTurn { _lock: lock })
        .map_err(|(_, errno)| AgentError::io("cannot lock the sync lock", &owned, errno.into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_second_sync_waits_for_the_first_one_to_end() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = lock_path(&dir.path().join("agent.pid"));
        assert!(path.ends_with("agent.pid.sync.lock"));
        let first = take_turn(&path).await.expect("first turn");
        let waiting = tokio::spawn({
            let path = path.clone();
            async move { take_turn(&path).await.map(drop) }
        });
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "the second sync did not wait");
        drop(first);
        waiting
            .await
            .expect("joined")
            .expect("second turn after the first");
    }
}
