//! One sync in one direction: the safety valves, the deletion plan and the completion
//! record around one rclone transfer (with `--trash`, into a backup dir; with `--as-of`,
//! from a tree rebuilt out of the trash).

use std::path::{Path, PathBuf};
use std::time::Instant;

use chrono::{DateTime, Utc};

use crate::as_of::{self, Rebuilt};
use crate::deletion_plan::{self, DeletionPlan, Limits};
use crate::error::{AgentError, Result};
use crate::layout;
use crate::local_record::{self, LocalChanges, LocalRecord, LocalState, UploadId};
use crate::rclone::{Rclone, TransferMode};
use crate::record::{CompletionRecord, RemoteState, RemoteSurvey, Writer, format_time};
use crate::report::Reporter;
use crate::safety::{self, LocalTarget};
use crate::trash::{self, Retention};

mod takeover;
mod upload;

pub use takeover::CatchUp;

/// `ToRemote` is `sync-to-remote` (local directory -> remote), `ToLocal` is
/// `remote-to-local-sync`; the same names the operator reads in reports.
pub use vsc_types::report::SyncDirection as Direction;

/// What a finished run did, for the log and the exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Transferred,
    /// A restore from a remote that holds nothing, into a directory that holds nothing.
    NothingToRestore,
    /// An upload from an empty directory to a remote that holds nothing: a new volume
    /// waiting for its first data. Not a failure (health stays good), nothing is written.
    NothingToUpload,
    /// A restore that found local changes newer than the remote (made since the last sync,
    /// which the remote has not moved past): they are kept for the next upload.
    KeptLocalChanges,
    /// An upload that found the local tree as the last sync left it, within the full-sync
    /// interval: no request was made.
    Unchanged,
    /// An upload held: another Pod is the primary writer of the remote path.
    Held,
}

#[derive(Debug, Clone)]
pub struct SyncJob {
    pub direction: Direction,
    pub local: PathBuf,
    /// The rclone path of the remote side, e.g. `remote:/bucket/dir` or `remote_encrypted:`.
    pub remote: String,
    /// The remote side is a crypt remote (recorded in the completion record).
    pub encrypted: bool,
    /// `sync` (mirror, deletes extra files at the destination) rather than `copy`.
    pub delete: bool,
    /// Skip the safety valves that can be skipped.
    pub force: bool,
    /// The deletion plan's limits; `None`: `--no-deletion-plan`.
    pub deletion_limits: Option<Limits>,
    /// Tells the operator how each sync went.
    pub reporter: Option<Reporter>,
    pub rclone: Rclone,
    pub running_uid: u32,
    /// Taken for each sync: one sync at a time with other agents of the same PID file.
    pub sync_lock: Option<std::path::PathBuf>,
    pub running_gid: u32,
    pub upload: UploadOptions,
    pub restore: RestoreOptions,
}

/// What only an upload takes.
#[derive(Debug, Clone)]
pub struct UploadOptions {
    /// A file the source must hold (`--require-sentinel`).
    pub sentinel: Option<PathBuf>,
    /// An unchanged local tree is skipped until this long after the last sync
    /// (then a full sync runs); zero: never skipped.
    pub full_sync_interval: std::time::Duration,
    /// Only while holding the remote path's writer lease.
    pub writer_lease: Option<std::sync::Arc<crate::writer_lease::WriterLease>>,
    /// Without a writer lease: where `sync-now` requests are heard of.
    pub sync_request_watch: Option<std::sync::Arc<crate::sync_requests::SyncRequestWatch>>,
    /// Keep replaced and deleted files in the trash, with this retention.
    pub trash: Option<Retention>,
    /// The remote stores empty directories (not bucket storage): the upload need not warn
    /// that they are left behind.
    pub empty_directories_kept: bool,
}

/// What only a restore takes.
#[derive(Debug, Clone, Default)]
pub struct RestoreOptions {
    /// Even when the last upload did not complete.
    pub allow_incomplete: bool,
    /// A remote never written leaves local files as they are (first run).
    pub keep_local_if_remote_empty: bool,
    /// Mirror the remote even over local changes made since the last sync.
    pub discard_local_changes: bool,
    /// The tree as it was at this time.
    pub as_of: Option<DateTime<Utc>>,
}

impl SyncJob {
    fn mode(&self) -> TransferMode {
        if self.delete {
            TransferMode::Sync
        } else {
            TransferMode::Copy
        }
    }

    fn local_path(&self) -> String {
        self.local.display().to_string()
    }

    pub async fn run(&self) -> Result<Outcome> {
        match self.direction {
            Direction::ToRemote => self.upload().await,
            Direction::ToLocal => self.restore().await,
        }
    }

    async fn upload(&self) -> Result<Outcome> {
        upload::run(self).await
    }

    /// An upload that compares both sides in full whatever the local record says, and
    /// writes a completion record of its own.
    pub async fn full_upload(&self) -> Result<Outcome> {
        let mut full = self.clone();
        full.upload.full_sync_interval = std::time::Duration::ZERO;
        full.run().await
    }

    async fn restore(&self) -> Result<Outcome> {
        let local_record = self.local_record()?;
        let local_state = safety::check_restore_target(
            &self.local,
            self.force,
            self.running_uid,
            local_record.is_some(),
        )?;
        // The survey also proves the remote reachable and decryptable before any local
        // change: an unreachable remote fails here with nothing touched.
        let survey = RemoteSurvey::take(&self.rclone, &self.remote).await?;
        let discarded =
            match self.judge_local_changes(local_record.as_ref(), local_state, &survey.state)? {
                LocalChangesVerdict::Done(outcome) => return Ok(outcome),
                LocalChangesVerdict::Restore { discarded_added } => discarded_added,
            };
        self.admit(&survey.state)?;
        if !self.encrypted && survey.state == RemoteState::Unrecorded {
            self.refuse_ciphertext().await?;
        }
        if let Some(when) = self.restore.as_of {
            match as_of::rebuild(&self.rclone, &self.remote, when).await? {
                Some(rebuilt) => return self.restore_rebuilt(rebuilt, when, local_state).await,
                None => {
                    tracing::info!(as_of = %when, "no sync changed the remote since --as-of: restoring the current tree");
                }
            }
        }
        if survey.data.is_empty()
            && let Some(outcome) = self.restore_from_empty_remote(&survey.state, local_state)?
        {
            return Ok(outcome);
        }
        self.transfer_from_remote(
            local_record.as_ref(),
            local_state,
            &survey.state,
            &discarded,
        )
        .await
    }

    /// Local changes matter only over a tree this remote's last sync left (a fresh or
    /// emptied directory has none to lose).
    fn judge_local_changes(
        &self,
        local_record: Option<&LocalRecord>,
        local_state: LocalTarget,
        remote: &RemoteState,
    ) -> Result<LocalChangesVerdict> {
        match local_record.filter(|record| record.state == LocalState::Synced) {
            Some(record) if local_state == LocalTarget::NotEmpty => {
                self.keep_local_changes(record, remote)
            }
            _ => Ok(LocalChangesVerdict::Restore {
                discarded_added: Vec::new(),
            }),
        }
    }

    /// A remote with no files: mirroring it would empty the local directory, so a
    /// directory with files is kept, or the restore refused, unless the user forces it.
    /// `Some`: the restore ends with this outcome; `None`: it goes on and deletes the local
    /// files (`--force-delete-local-dir`).
    fn restore_from_empty_remote(
        &self,
        remote: &RemoteState,
        local_state: LocalTarget,
    ) -> Result<Option<Outcome>> {
        let why = match remote {
            RemoteState::Complete(_) => "the remote holds no files (its last upload had none)",
            _ => {
                "the remote was never written: nothing to restore (first run; if this remote path should hold data, check its bucket and path for a typo)"
            }
        };
        match local_state {
            LocalTarget::Missing | LocalTarget::Empty => {
                tracing::warn!(remote = %self.remote, "{why}");
                self.create_local_target()?;
                self.remember_restore(remote)?;
                Ok(Some(Outcome::NothingToRestore))
            }
            LocalTarget::NotEmpty
                if self.restore.keep_local_if_remote_empty
                    && matches!(remote, RemoteState::NeverWritten) =>
            {
                tracing::warn!(remote = %self.remote, "the remote was never written (first run): local files kept, the next upload copies them");
                Ok(Some(Outcome::NothingToRestore))
            }
            LocalTarget::NotEmpty if self.delete && !self.force => {
                Err(safety::refuse_empty_remote(&self.remote, &self.local))
            }
            LocalTarget::NotEmpty if !self.delete => {
                tracing::warn!(remote = %self.remote, "{why}; local files kept");
                Ok(Some(Outcome::NothingToRestore))
            }
            LocalTarget::NotEmpty => {
                tracing::warn!(remote = %self.remote, local = %self.local.display(), "the remote is empty and --force-delete-local-dir is set: local files will be deleted");
                Ok(None)
            }
        }
    }

    /// The rclone transfer of the remote tree into the local directory, under the deletion
    /// plan, between the "restoring" mark and the record of what it restored.
    async fn transfer_from_remote(
        &self,
        local_record: Option<&LocalRecord>,
        local_state: LocalTarget,
        remote: &RemoteState,
        discarded: &[String],
    ) -> Result<Outcome> {
        self.create_local_target()?;
        let local = self.local_path();
        // What an interrupted restore left is its own (rclone's partial files included):
        // completing it needs no plan.
        let retried = local_record.is_some_and(|r| r.state == LocalState::Restoring);
        if retried {
            tracing::info!(local = %local, "the last restore here did not finish: completing it");
        }
        let plan = match self.deletion_limits.filter(|_| self.delete && !retried) {
            Some(limits) if local_state == LocalTarget::NotEmpty => {
                Some(self.plan_local_deletions(&local, limits, discarded).await?)
            }
            _ => None,
        };
        let mut args = self.restore_args();
        args.extend(plan.iter().flat_map(bind_to_plan));
        self.mark_restoring()?;
        self.rclone
            .transfer(self.mode(), &self.remote, &local, &args)
            .await?;
        self.remember_restore(remote)?;
        Ok(Outcome::Transferred)
    }

    /// What mirroring the remote would delete locally, judged against `limits` before
    /// anything is deleted. Local files added since the last sync and discarded on request
    /// are not counted: the user chose to lose them.
    async fn plan_local_deletions(
        &self,
        local: &str,
        limits: Limits,
        discarded: &[String],
    ) -> Result<DeletionPlan> {
        let started = Instant::now();
        let (remote_files, local_files) = tokio::try_join!(
            self.rclone.list_files(&self.remote),
            self.rclone.list_files(local)
        )?;
        let plan = DeletionPlan::between(&remote_files, &local_files);
        let forced_clear = self.force && remote_files.is_empty();
        let destination_name = format!("in the local directory {local}");
        let judged = plan.without_discarded(discarded);
        judge_plan(&judged, limits, forced_clear, &destination_name, started)?;
        Ok(plan)
    }

    /// A remote that holds files and no record may be an encrypted remote read without its
    /// keys (a forgotten Secret): the record is encrypted too, so it is not seen. Restoring
    /// would fill the volume with ciphertext under encrypted names; rclone crypt files start
    /// with a magic header, which one read of 8 bytes tells.
    async fn refuse_ciphertext(&self) -> Result<()> {
        let files = self.rclone.list_files(&self.remote).await?;
        let Some(first) = files.keys().next() else {
            return Ok(());
        };
        let head = self
            .rclone
            .cat_head(&layout::join(&self.remote, first), CRYPT_MAGIC.len())
            .await?;
        if head != CRYPT_MAGIC {
            return Ok(());
        }
        Err(AgentError::RefusedBySafetyValve {
            reason: format!(
                "the remote {} looks encrypted (its files are rclone crypt files, like '{first}'), but no ENCRYPTED_* variable is set, so a restore would write ciphertext into {}",
                self.remote,
                self.local.display()
            ),
            how_to_override: "Set ENCRYPTED_PASSWORD and ENCRYPTED_PASSWORD2 (in a Pod: the resource's encryption Secret) to the keys it was written with.",
        })
    }

    /// The local record, when it is about this remote (a record of another remote path
    /// says nothing about this one).
    fn local_record(&self) -> Result<Option<LocalRecord>> {
        if !self.local.is_dir() {
            return Ok(None);
        }
        let record = LocalRecord::read(&self.local)?;
        Ok(record.filter(|record| {
            let same = record.remote == self.remote;
            if !same {
                tracing::info!(recorded = %record.remote, remote = %self.remote, "the local record is about another remote path: not used");
            }
            same
        }))
    }

    /// Local files changed since the last sync must never be mirrored over. When the remote
    /// has not moved past that sync (or its only later upload was this host's own, cut
    /// off), the local tree is the newest: it is kept (an outcome) and the next upload sends
    /// it. When the remote has moved on too, both changed: refused, unless
    /// --discard-local-changes.
    fn keep_local_changes(
        &self,
        record: &LocalRecord,
        remote: &RemoteState,
    ) -> Result<LocalChangesVerdict> {
        let changes = LocalChanges::between(&record.tree, &local_record::scan(&self.local)?);
        let remote_unchanged = match remote {
            RemoteState::Complete(upload) => record.remote_upload == Some(UploadId::of(upload)),
            RemoteState::Incomplete(upload) => upload.writer.host == Writer::this_process().host,
            RemoteState::NeverWritten => record.remote_upload.is_none(),
            RemoteState::Unrecorded | RemoteState::UnreadableRecord(_) => false,
        };
        let local = self.local.display();
        if remote_unchanged && self.restore.as_of.is_none() && !self.restore.discard_local_changes {
            if changes.is_empty() {
                tracing::info!(%local, remote = %self.remote, "the local directory is what the last sync left and the remote has not changed since: nothing to restore");
                return Ok(LocalChangesVerdict::Done(Outcome::NothingToRestore));
            }
            tracing::warn!(%local, remote = %self.remote, changes = %changes.describe(), "the local directory changed since the last sync and the remote did not: the local files are kept, and the next upload sends them");
            return Ok(LocalChangesVerdict::Done(Outcome::KeptLocalChanges));
        }
        if changes.is_empty() {
            return Ok(LocalChangesVerdict::Restore {
                discarded_added: Vec::new(),
            });
        }
        if self.restore.discard_local_changes {
            tracing::warn!(%local, changes = %changes.describe(), "local changes since the last sync are discarded (--discard-local-changes)");
            let mut discarded_added = changes.added;
            discarded_added.sort();
            return Ok(LocalChangesVerdict::Restore { discarded_added });
        }
        let why = match self.restore.as_of {
            Some(_) => "a restore --as-of would replace them",
            None => "the remote changed since that sync too, so restoring would replace them",
        };
        Err(AgentError::RefusedBySafetyValve {
            reason: format!(
                "{local} changed since the last sync ({}) and {why}",
                changes.describe()
            ),
            how_to_override: "Upload the local files first (sync-to-remote), copy them aside, or pass --discard-local-changes to restore over them.",
        })
    }

    /// Marks the local directory as being restored: until the restore finishes, an upload
    /// refuses to send its partial tree.
    fn mark_restoring(&self) -> Result<()> {
        LocalRecord::restoring(&self.remote).write(&self.local)
    }

    /// After a restore: the local tree is the remote's.
    fn remember_restore(&self, remote: &RemoteState) -> Result<()> {
        let upload = remote.last_upload();
        let tree = local_record::scan(&self.local)?;
        LocalRecord::synced(&self.remote, upload.map(UploadId::of), self.delete, tree)
            .descending_from(self.lineage_after_restore(upload))
            .write(&self.local)
    }

    /// A restore `--as-of` starts a history of its own (even when the current tree is that
    /// of the time); a plain one continues the remote's.
    fn lineage_after_restore(&self, upload: Option<&CompletionRecord>) -> Option<String> {
        match self.restore.as_of {
            Some(as_of) => Some(format_time(as_of)),
            None => upload.and_then(|record| record.restored_as_of.clone()),
        }
    }

    /// Whether the completion record lets the restore go on.
    fn admit(&self, state: &RemoteState) -> Result<()> {
        let remote = &self.remote;
        match state {
            RemoteState::NeverWritten => {}
            RemoteState::Complete(record) => {
                tracing::info!(%remote, last_upload = %record.describe(), "the last upload completed");
            }
            RemoteState::Unrecorded => {
                tracing::warn!(%remote, "the remote holds files but no completion record (written by plain rclone or an older agent): restoring what is there");
            }
            RemoteState::Incomplete(record) => {
                let before_it = match (self.restore.as_of, record.started_at()) {
                    (Some(when), Some(started)) => when < started,
                    _ => false,
                };
                if before_it {
                    tracing::info!(%remote, last_upload = %record.describe(), "the last upload did not complete, but --as-of is before it started");
                } else if self.restore.allow_incomplete {
                    tracing::warn!(%remote, last_upload = %record.describe(), "the last upload did not complete; restoring anyway because --allow-incomplete is set");
                } else {
                    return Err(AgentError::RefusedBySafetyValve {
                        reason: format!(
                            "the last upload to {remote} did not complete ({}); the remote may hold a partial or mixed tree",
                            record.describe()
                        ),
                        how_to_override: "Let the uploader finish (or find out why it stopped), restore an earlier tree with --as-of, or pass --allow-incomplete to restore it anyway.",
                    });
                }
            }
            RemoteState::UnreadableRecord(problem) => {
                if !self.restore.allow_incomplete {
                    return Err(AgentError::RefusedBySafetyValve {
                        reason: format!(
                            "the completion record at {remote} cannot be read ({problem}), so whether the last upload completed is unknown"
                        ),
                        how_to_override: "Pass --allow-incomplete to restore anyway.",
                    });
                }
                tracing::warn!(%remote, %problem, "the completion record cannot be read; restoring anyway because --allow-incomplete is set");
            }
        }
        Ok(())
    }

    /// `--as-of`: copies each file's version of that time from where it is now, then (sync)
    /// deletes local files the tree of that time did not have.
    async fn restore_rebuilt(
        &self,
        rebuilt: Rebuilt,
        as_of: DateTime<Utc>,
        local_state: LocalTarget,
    ) -> Result<Outcome> {
        self.create_local_target()?;
        let local = self.local_path();
        if !rebuilt.lost.is_empty() {
            tracing::warn!(
                count = rebuilt.lost.len(),
                files = %deletion_plan::quote_names(&rebuilt.lost),
                "files of that time whose version is no longer at the remote are left out"
            );
        }
        let extras = if self.delete && local_state == LocalTarget::NotEmpty {
            let started = Instant::now();
            let local_files = self.rclone.list_files(&local).await?;
            let plan = DeletionPlan {
                deletions: local_files
                    .keys()
                    .filter(|path| !rebuilt.tree.contains(*path))
                    .cloned()
                    .collect(),
                destination_files: local_files.len(),
            };
            if let Some(limits) = self.deletion_limits {
                let destination_name = format!("in the local directory {local}");
                judge_plan(&plan, limits, false, &destination_name, started)?;
            }
            plan.deletions
        } else {
            Vec::new()
        };
        let lists = tempfile::tempdir().map_err(|e| {
            AgentError::io(
                "cannot create a temporary directory in",
                std::env::temp_dir(),
                e,
            )
        })?;
        let from_trash = rebuilt.from_trash.len();
        self.mark_restoring()?;
        let sources = std::iter::once((self.remote.clone(), rebuilt.from_current))
            .chain(rebuilt.from_trash)
            .filter(|(_, paths)| !paths.is_empty());
        for (index, (source, paths)) in sources.enumerate() {
            let list = write_list(lists.path(), &format!("copy-{index}"), &paths)?;
            self.rclone
                .copy_listed(&source, &local, &list, &self.restore_args())
                .await?;
        }
        if !extras.is_empty() {
            let list = write_list(lists.path(), "delete", &extras)?;
            self.rclone.delete_listed(&local, &list).await?;
        }
        let as_of = format_time(as_of);
        let tree = local_record::scan(&self.local)?;
        LocalRecord::after_restore_as_of(&self.remote, as_of, self.delete, tree)
            .write(&self.local)?;
        tracing::info!(
            files = rebuilt.tree.len(),
            trash_versions_used = from_trash,
            deleted_locally = extras.len(),
            "restored the tree as of --as-of"
        );
        Ok(Outcome::Transferred)
    }

    /// Extra rclone arguments of every transfer into the local directory.
    fn restore_args(&self) -> Vec<String> {
        if self.running_uid == 0 {
            return Vec::new();
        }
        // Only root may give files away; a non-root restore owns what it writes.
        vec![
            "--metadata-set".to_string(),
            format!("uid={}", self.running_uid),
            "--metadata-set".to_string(),
            format!("gid={}", self.running_gid),
        ]
    }

    fn create_local_target(&self) -> Result<()> {
        std::fs::create_dir_all(&self.local)
            .map_err(|e| AgentError::io("cannot create --dst (local target)", &self.local, e))
    }
}

/// What the local changes since the last sync mean for a restore.
enum LocalChangesVerdict {
    /// The restore ends here, with this outcome.
    Done(Outcome),
    /// The restore goes on; these files, added locally since the last sync, are discarded on
    /// request, so the deletion plan does not count them.
    Restore { discarded_added: Vec<String> },
}

/// Logs the plan and its cost, then checks it; an explicitly forced clear of everything
/// (`--force-*` with an empty source) is the one case the limits let through.
fn judge_plan(
    plan: &DeletionPlan,
    limits: Limits,
    forced_clear: bool,
    destination: &str,
    started: Instant,
) -> Result<()> {
    tracing::info!(
        deletions = plan.deletions.len(),
        destination_files = plan.destination_files,
        percent = plan.percent(),
        seconds = started.elapsed().as_secs_f64(),
        "deletion plan"
    );
    if forced_clear {
        tracing::warn!(
            deletions = plan.deletions.len(),
            "the source is empty and forced: every file {destination} will be deleted"
        );
        return Ok(());
    }
    plan.check(limits, destination)
}

/// The first bytes of every file rclone crypt writes.
const CRYPT_MAGIC: &[u8] = b"RCLONE\x00\x00";

/// rclone's `--max-delete` at what the plan allowed: if the source shrinks between the plan
/// and the transfer (an unmount), rclone stops instead of deleting more.
fn bind_to_plan(plan: &DeletionPlan) -> [String; 2] {
    ["--max-delete".to_string(), plan.deletions.len().to_string()]
}

/// Writes `paths`, one per line, for rclone's `--files-from-raw`.
fn write_list(dir: &Path, name: &str, paths: &[String]) -> Result<String> {
    let path = dir.join(name);
    let mut text = paths.join("\n");
    text.push('\n');
    std::fs::write(&path, text)
        .map_err(|e| AgentError::io("cannot write a file list", &path, e))?;
    Ok(path.display().to_string())
}
