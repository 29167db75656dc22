//! `sync-to-remote`: what the local record says changed since the last sync decides the
//! work. Nothing changed: no request at all. Some files changed: exactly those are copied
//! and deleted. Otherwise (no record, a copy after a mirror, the trash, the full-sync
//! interval reached): a full sync, with the deletion plan over both listings.

use super::{
    AgentError, CompletionRecord, DateTime, DeletionPlan, Instant, LocalChanges, LocalRecord,
    LocalState, Outcome, Path, RemoteSurvey, Result, SyncJob, UploadId, Utc, bind_to_plan,
    deletion_plan, judge_plan, layout, local_record, safety, trash, write_list,
};
use crate::fidelity::{self, Uncarried};
use crate::local_record::LocalTree;

/// What the local side knows about itself against the last sync with this remote.
enum SinceLastSync {
    /// Nothing to go by.
    Unknown,
    /// The record can be trusted, but the full-sync interval has passed.
    FullSyncDue,
    Unchanged(LocalRecord),
    Changed {
        last: LocalRecord,
        changes: LocalChanges,
        tree: LocalTree,
    },
}

pub(super) async fn run(job: &SyncJob) -> Result<Outcome> {
    refuse_partial_restore(&job.local)?;
    match since_last_sync(job)? {
        SinceLastSync::Unchanged(last) => {
            tracing::info!(
                local = %job.local.display(),
                last_sync = %last.at,
                entries = last.tree.len(),
                "nothing changed locally since the last sync: no upload, no request (a full sync runs at the latest --full-sync-interval after the last one)"
            );
            Ok(Outcome::Unchanged)
        }
        SinceLastSync::Changed {
            last,
            changes,
            tree,
        } if job.upload.trash.is_none() && !changes.is_empty() => {
            upload_changes(job, &last, changes, tree).await
        }
        SinceLastSync::FullSyncDue => upload_everything(job, Comparison::for_safety_net(job)).await,
        _ => upload_everything(job, Comparison::SizeAndTime).await,
    }
}

/// How the full sync tells an unchanged file from a changed one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Comparison {
    /// rclone's default, as plain `rclone sync`: on bucket backends one request per object
    /// whose size matches (the time is object metadata, not in the listing).
    SizeAndTime,
    /// Size and hash, both in the listing of bucket backends (S3's ETag is the MD5 of a
    /// single-part object; rclone reads a multipart object's stored MD5 with one request).
    /// The local files are read to hash them.
    Checksum,
}

impl Comparison {
    /// The periodic full sync runs while the local record vouches for the local side, so it
    /// exists to notice remote-side loss: compare from the listing where the remote has
    /// hashes. A crypt remote has none (rclone would fall back to size alone, and miss a
    /// same-size change made during the interval): it keeps size and time.
    fn for_safety_net(job: &SyncJob) -> Comparison {
        if job.encrypted {
            Comparison::SizeAndTime
        } else {
            Comparison::Checksum
        }
    }

    fn flags(self) -> &'static [&'static str] {
        match self {
            Comparison::SizeAndTime => &[],
            Comparison::Checksum => &["--checksum"],
        }
    }
}

/// The local tree against the local record, when the record can be trusted for this
/// upload: about this remote, from a sync that left both sides equal (a mirror, unless this
/// upload is a copy too), and a full sync not yet due.
fn since_last_sync(job: &SyncJob) -> Result<SinceLastSync> {
    if job.upload.full_sync_interval.is_zero() || !job.local.is_dir() {
        return Ok(SinceLastSync::Unknown);
    }
    let Some(last) = LocalRecord::read(&job.local)? else {
        return Ok(SinceLastSync::Unknown);
    };
    let same_kind = last.mirrored || !job.delete;
    if last.state != LocalState::Synced || last.remote != job.remote || !same_kind {
        return Ok(SinceLastSync::Unknown);
    }
    let Some(age) = crate::record::parse_time(&last.full_sync_at)
        .and_then(|at| (Utc::now() - at).to_std().ok())
    else {
        return Ok(SinceLastSync::Unknown); // unreadable, or in the future (a clock set back)
    };
    if age >= job.upload.full_sync_interval {
        tracing::info!(last_full_sync = %last.full_sync_at, "a full sync is due (--full-sync-interval)");
        return Ok(SinceLastSync::FullSyncDue);
    }
    let tree = scan_local(job)?;
    if !local_record::names_are_utf8(&tree) {
        return Ok(SinceLastSync::Unknown); // rclone cannot be given those paths by name
    }
    if tree == last.tree {
        return Ok(SinceLastSync::Unchanged(last));
    }
    let changes = LocalChanges::between(&last.tree, &tree);
    Ok(SinceLastSync::Changed {
        last,
        changes,
        tree,
    })
}

/// Copies the added and modified files and deletes the deleted ones: requests in
/// proportion to the change, not to the tree (`--no-traverse`: no listing of the remote).
async fn upload_changes(
    job: &SyncJob,
    last: &LocalRecord,
    changes: LocalChanges,
    tree: LocalTree,
) -> Result<Outcome> {
    let started = Instant::now();
    let copied: Vec<String> = changes
        .added
        .iter()
        .chain(&changes.modified)
        .cloned()
        .collect();
    safety::check_files_readable(
        &job.local,
        copied.iter().map(String::as_str),
        job.running_uid,
    )?;
    let deleted = if job.delete {
        changes.deleted.clone()
    } else {
        Vec::new()
    };
    if let Some(limits) = job.deletion_limits.filter(|_| job.delete) {
        let plan = DeletionPlan {
            deletions: deleted.clone(),
            destination_files: last.tree.keys().filter(|path| !path.ends_with('/')).count(),
        };
        let destination = format!("at the remote {}", job.remote);
        judge_plan(&plan, limits, false, &destination, started)?;
    }
    tracing::info!(changes = %changes.describe(), "uploading the changes since the last sync");
    let (files, bytes) = file_totals(&tree);
    let lineage = last.restored_as_of.clone();
    let record = CompletionRecord::in_progress(Utc::now(), files, bytes, job.encrypted)
        .descending_from(lineage.clone());
    record.write(&job.rclone, &job.remote).await?;
    let lists = tempfile::tempdir().map_err(|e| {
        AgentError::io(
            "cannot create a temporary directory in",
            std::env::temp_dir(),
            e,
        )
    })?;
    if !copied.is_empty() {
        let list = write_list(lists.path(), "copy", &copied)?;
        let mut extra = no_bucket_checks();
        extra.push("--no-traverse".to_string());
        job.rclone
            .copy_listed(&job.local_path(), &job.remote, &list, &extra)
            .await?;
    }
    if !deleted.is_empty() {
        let list = write_list(lists.path(), "delete", &deleted)?;
        job.rclone.delete_listed(&job.remote, &list).await?;
    }
    let record = record.complete();
    record.write(&job.rclone, &job.remote).await?;
    let local = LocalRecord::synced(&job.remote, Some(UploadId::of(&record)), job.delete, tree)
        .keeping_full_sync_of(last)
        .descending_from(lineage);
    remember(job, local);
    Ok(Outcome::Transferred)
}

async fn upload_everything(job: &SyncJob, comparison: Comparison) -> Result<Outcome> {
    if waiting_for_first_data(job).await? {
        tracing::info!(local = %job.local.display(), remote = %job.remote, "the local directory and the remote are both empty: nothing to upload yet (a new volume waiting for its first data)");
        return Ok(Outcome::NothingToUpload);
    }
    safety::check_upload_source(&job.local, job.delete, job.force)?;
    if let Some(sentinel) = &job.upload.sentinel {
        safety::check_sentinel(&job.local, sentinel)?;
    }
    warn_of_reserved_names(&job.local);
    let local = job.local_path();
    let limits = job.deletion_limits.filter(|_| job.delete);
    let started = Instant::now();
    // Before rclone reads it: a file changed during the transfer then counts as a change
    // that the remote may not have.
    let tree = scan_local(job)?;
    // The local side is the scan (no rclone listing of it); the remote listing is needed by
    // the plan and the trash's change log.
    let source = files_of(&tree);
    let destination = if limits.is_some() || job.upload.trash.is_some() {
        job.rclone.list_files(&job.remote).await?
    } else {
        std::collections::BTreeMap::new()
    };
    safety::check_files_readable(&job.local, source.keys().copied(), job.running_uid)?;
    let mut extra = no_bucket_checks();
    extra.extend(
        comparison
            .flags()
            .iter()
            .map(std::string::ToString::to_string),
    );
    if let Some(limits) = limits {
        let plan = DeletionPlan::between(&source, &destination);
        let destination_name = format!("at the remote {}", job.remote);
        let forced_clear = job.force && source.is_empty();
        judge_plan(&plan, limits, forced_clear, &destination_name, started)?;
        // With the trash, every deletion and overwrite is a move into it (recoverable
        // with --as-of), and rclone counts both against --max-delete: unbound.
        if job.upload.trash.is_none() {
            extra.extend(bind_to_plan(&plan));
        }
    }
    let stamp = Utc::now();
    let bytes = source.values().sum();
    let lineage = job.local_record()?.and_then(|record| record.restored_as_of);
    let record = CompletionRecord::in_progress(stamp, source.len() as u64, bytes, job.encrypted)
        .descending_from(lineage.clone());
    // The record first: it makes a destination that does not exist yet (so the sync needs
    // no bucket check either; without this, the `--backup-dir` of `--trash`, a second,
    // never-listed path of the same bucket, sends CreateBucket), and the change log is
    // written into it.
    record.write_before_sync(&job.rclone, &job.remote).await?;
    if job.upload.trash.is_some() {
        log_trash_changes(job, &source, &destination, stamp).await?;
        extra.extend([
            "--backup-dir".to_string(),
            trash::backup_dir(&job.remote, stamp),
        ]);
    }
    job.rclone
        .transfer(job.mode(), &local, &job.remote, &extra)
        .await?;
    let record = record.complete();
    record.write(&job.rclone, &job.remote).await?;
    remember(
        job,
        LocalRecord::synced(&job.remote, Some(UploadId::of(&record)), job.delete, tree)
            .descending_from(lineage),
    );
    if let Some(retention) = job.upload.trash
        && let Err(e) = trash::maintain(&job.rclone, &job.remote, stamp, retention).await
    {
        tracing::warn!(error = %e, "the sync finished, but the trash could not be maintained; the next sync tries again");
    }
    Ok(Outcome::Transferred)
}

async fn log_trash_changes(
    job: &SyncJob,
    source: &LocalFiles<'_>,
    destination: &crate::rclone::FileListing,
    stamp: DateTime<Utc>,
) -> Result<()> {
    let deleted = if job.delete {
        deletion_plan::missing_from(destination, source)
    } else {
        Vec::new()
    };
    let added = deletion_plan::missing_from(source, destination);
    trash::log_changes(&job.rclone, &job.remote, stamp, added, deleted).await
}

/// The local tree now, after saying at WARN what an upload of it leaves behind.
fn scan_local(job: &SyncJob) -> Result<LocalTree> {
    let mut uncarried = Uncarried::default();
    let tree = local_record::scan_noting(&job.local, &mut uncarried)?;
    fidelity::warn_once(
        uncarried.warnings(&tree, job.upload.empty_directories_kept),
        &job.local,
    );
    Ok(tree)
}

fn warn_of_reserved_names(local: &Path) {
    for reserved in [layout::RECORD_NAME, layout::TRASH_DIR] {
        if local.join(reserved).exists() {
            tracing::warn!(
                name = reserved,
                "the source holds a name the agent reserves for itself at the remote; it is not uploaded"
            );
        }
    }
}

fn no_bucket_checks() -> Vec<String> {
    crate::rclone::NO_BUCKET_CHECKS
        .iter()
        .map(std::string::ToString::to_string)
        .collect()
}

/// The files of the scan and their sizes, paths borrowed from it.
type LocalFiles<'a> = std::collections::BTreeMap<&'a str, u64>;

/// The files of the scan, as a listing of their sizes (what `rclone lsjson` of the local
/// side would give: the same filter, symlinks skipped).
fn files_of(tree: &LocalTree) -> LocalFiles<'_> {
    tree.iter()
        .filter(|(path, _)| !path.ends_with('/'))
        .map(|(path, stamp)| (path.as_str(), stamp.0))
        .collect()
}

fn file_totals(tree: &LocalTree) -> (u64, u64) {
    tree.iter()
        .filter(|(path, _)| !path.ends_with('/'))
        .fold((0, 0), |(files, bytes), (_, stamp)| {
            (files + 1, bytes + stamp.0)
        })
}

/// After an upload: the tree it sent is the remote's. The upload itself succeeded, so a
/// local directory the agent cannot write (a read-only source) only loses the record.
fn remember(job: &SyncJob, record: LocalRecord) {
    if let Err(e) = record.write(&job.local) {
        tracing::warn!(error = %e, "no local record (a later restore here cannot tell local changes from the remote's)");
    }
}

/// An upload from a directory whose restore did not finish would replace the remote's
/// complete tree with a partial one.
fn refuse_partial_restore(local: &Path) -> Result<()> {
    let Some(record) = LocalRecord::read(local)? else {
        return Ok(());
    };
    if record.state != LocalState::Restoring {
        return Ok(());
    }
    Err(AgentError::RefusedBySafetyValve {
        reason: format!(
            "the restore into {} from {} started at {} did not finish, so the directory holds part of the remote's tree",
            local.display(),
            record.remote,
            record.at
        ),
        how_to_override: "Run the restore (remote-to-local-sync) again; it completes the tree. If the local files are complete anyway, delete the local record .volume-syncing-controller.local.json.",
    })
}

/// An empty source mirrored to a remote that holds no files: nothing to do, and nothing
/// wrong. An empty source while the remote holds files stays a refusal (the valve below):
/// an unmounted volume looks like this.
async fn waiting_for_first_data(job: &SyncJob) -> Result<bool> {
    if !job.delete || job.force || !safety::is_empty_directory(&job.local)? {
        return Ok(false);
    }
    let survey = RemoteSurvey::take(&job.rclone, &job.remote).await?;
    Ok(survey.data.is_empty())
}
