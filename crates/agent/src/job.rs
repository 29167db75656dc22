//! One sync in one direction: safety valves first, then rclone.

use std::path::PathBuf;

use crate::error::Result;
use crate::rclone::{Rclone, RemoteListing, TransferMode};
use crate::safety::{self, LocalTarget};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// `sync-to-remote`: local directory -> remote.
    ToRemote,
    /// `remote-to-local-sync`: remote -> local directory.
    ToLocal,
}

/// What a finished run did, for the log and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Transferred,
    /// A restore from a remote that holds nothing, into a directory that holds nothing.
    NothingToRestore,
}

#[derive(Debug, Clone)]
pub struct SyncJob {
    pub direction: Direction,
    pub local: PathBuf,
    /// The rclone path of the remote side, e.g. `remote:/bucket/dir` or `remote_encrypted:`.
    pub remote: String,
    /// `sync` (mirror, deletes extra files at the destination) rather than `copy`.
    pub delete: bool,
    /// Skip the safety valves that can be skipped.
    pub force: bool,
    pub rclone: Rclone,
    pub running_uid: u32,
    pub running_gid: u32,
}

impl SyncJob {
    fn mode(&self) -> TransferMode {
        if self.delete {
            TransferMode::Sync
        } else {
            TransferMode::Copy
        }
    }

    pub async fn run(&self) -> Result<Outcome> {
        match self.direction {
            Direction::ToRemote => self.upload().await,
            Direction::ToLocal => self.restore().await,
        }
    }

    async fn upload(&self) -> Result<Outcome> {
        safety::check_upload_source(&self.local, self.delete, self.force)?;
        let local = self.local.display().to_string();
        self.rclone
            .transfer(self.mode(), &local, &self.remote, &[])
            .await?;
        Ok(Outcome::Transferred)
    }

    async fn restore(&self) -> Result<Outcome> {
        let local_state = safety::check_restore_target(&self.local, self.force, self.running_uid)?;
        // Listing first also proves the remote is reachable and decryptable before any
        // local change: an unreachable remote fails here with nothing touched.
        let listing = self.rclone.list_top_level(&self.remote).await?;
        if listing == RemoteListing::Empty {
            match local_state {
                LocalTarget::Missing | LocalTarget::Empty => {
                    tracing::warn!(remote = %self.remote, "the remote is empty: nothing to restore (first run?)");
                    self.create_local_target()?;
                    return Ok(Outcome::NothingToRestore);
                }
                LocalTarget::NotEmpty if self.delete && !self.force => {
                    return Err(safety::refuse_empty_remote(&self.remote, &self.local));
                }
                LocalTarget::NotEmpty if !self.delete => {
                    tracing::warn!(remote = %self.remote, "the remote is empty: nothing to copy, local files kept");
                    return Ok(Outcome::NothingToRestore);
                }
                LocalTarget::NotEmpty => {
                    tracing::warn!(remote = %self.remote, local = %self.local.display(), "the remote is empty and --force-delete-local-dir is set: local files will be deleted");
                }
            }
        }
        self.create_local_target()?;
        let mut extra = Vec::new();
        if self.running_uid != 0 {
            // Only root may give files away; a non-root restore owns what it writes.
            extra.extend([
                "--metadata-set".to_string(),
                format!("uid={}", self.running_uid),
                "--metadata-set".to_string(),
                format!("gid={}", self.running_gid),
            ]);
        }
        let local = self.local.display().to_string();
        self.rclone
            .transfer(self.mode(), &self.remote, &local, &extra)
            .await?;
        Ok(Outcome::Transferred)
    }

    fn create_local_target(&self) -> Result<()> {
        std::fs::create_dir_all(&self.local).map_err(|e| {
            crate::error::AgentError::io("cannot create --dst (local target)", &self.local, e)
        })
    }
}
