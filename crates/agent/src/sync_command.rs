//! The two sync commands, `sync-to-remote` and `remote-to-local-sync`: from their flags to
//! a [`SyncJob`] with its PID file, reporter, writer lease and status server, run once or
//! on triggers until stopped, then cleaned up.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::cli::{CommonSyncArgs, RemoteToLocalSync, SyncToRemote};
use crate::deletion_plan::Limits;
use crate::error::{AgentError, Result};
use crate::job::{Direction, RestoreOptions, SyncJob, UploadOptions};
use crate::pidfile::{DefaultPidPath, PidFile};
use crate::rclone::Rclone;
use crate::rclone_config::{RemotePath, is_encrypted_target};
use crate::remote_setup::{prepare_remote, rclone_for};
use crate::report::{self, Reporter};
use crate::runner::{self, StopSignal};
use crate::status_server::StatusServer;
use crate::sync_counters::Status;
use crate::sync_lock;
use crate::sync_requests::SyncRequestWatch;
use crate::trash::Retention;
use crate::watch::ChangeWatcher;
use crate::writer_lease::WriterLease;
use vsc_types::schedule::Schedule;

pub async fn sync_to_remote(args: SyncToRemote) -> Result<()> {
    let remote_path = RemotePath::parse(&args.paths.dst, "--dst")?;
    let trash = args.trash.trash.then_some(Retention {
        days: args.trash.trash_retention_days,
        keep: args.trash.trash_keep,
    });
    let options = JobOptions {
        force: args.force_even_if_remote_would_be_cleared,
        sentinel: args.require_sentinel,
        full_sync_interval: args.full_sync_interval,
        trash,
        writer_lease: args.writer_lease_url.map(|url| (url, args.prefer_primary)),
        sync_requests_url: args.sync_requests_url,
        ..JobOptions::default()
    };
    run_sync(
        Direction::ToRemote,
        args.paths.src,
        remote_path,
        options,
        &args.common,
    )
    .await
}

pub async fn remote_to_local_sync(args: RemoteToLocalSync) -> Result<()> {
    let remote_path = RemotePath::parse(&args.src, "--src")?;
    let options = JobOptions {
        force: args.force_delete_local_dir,
        allow_incomplete: args.allow_incomplete,
        keep_local_if_remote_empty: args.keep_local_if_remote_empty,
        discard_local_changes: args.discard_local_changes,
        as_of: args.as_of,
        ..JobOptions::default()
    };
    run_sync(
        Direction::ToLocal,
        args.dst,
        remote_path,
        options,
        &args.common,
    )
    .await
}

/// The per-direction settings of a job (the rest comes from [`CommonSyncArgs`]).
#[derive(Debug, Default)]
struct JobOptions {
    force: bool,
    sentinel: Option<PathBuf>,
    trash: Option<Retention>,
    allow_incomplete: bool,
    keep_local_if_remote_empty: bool,
    discard_local_changes: bool,
    full_sync_interval: Duration,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// `--writer-lease-url` and `--prefer-primary`.
    writer_lease: Option<(String, bool)>,
    /// `--sync-requests-url`.
    sync_requests_url: Option<String>,
}

/// What talks to the operator for this run: the sync reports, the writer lease and the
/// sync requests.
struct OperatorClients {
    reporter: Option<Reporter>,
    writer_lease: Option<Arc<WriterLease>>,
    sync_request_watch: Option<Arc<SyncRequestWatch>>,
}

async fn run_sync(
    direction: Direction,
    local: PathBuf,
    remote_path: RemotePath,
    options: JobOptions,
    common: &CommonSyncArgs,
) -> Result<()> {
    // Everything the user gave is validated before anything is written.
    let schedule = parse_schedule(common)?;
    let (config, remote) = prepare_remote(&common.remote, &remote_path)?;
    let watcher = start_watcher(direction, &local, common)?;
    let stop =
        StopSignal::install(Some(common.final_sync_timeout).filter(|limit| !limit.is_zero()))?;
    let _pid_file = acquire_pid_file(common)?;
    let operator = operator_clients(direction, &options, common, &remote)?;
    let rclone = rclone_for(&common.remote, &config, common.stats_interval);
    let mut job = sync_job(direction, local, remote, options, common, rclone, operator);
    // Unknown (a hand-written config without one): no warning that could be wrong.
    job.upload.empty_directories_kept = config
        .remote_backend()
        .is_none_or(|kind| crate::fidelity::keeps_empty_directories(&kind));
    let status = Arc::new(Status::default());
    serve_status(direction, common, &status).await?;
    let asking = job
        .upload
        .writer_lease
        .as_ref()
        .map(WriterLease::keep_asking);
    let watching = job
        .upload
        .sync_request_watch
        .as_ref()
        .map(SyncRequestWatch::keep_asking);
    let result = run_until_stopped(&job, schedule, watcher, &status, stop).await;
    if let Some(watching) = watching {
        watching.abort();
    }
    if let (Some(lease), Some(asking)) = (&job.upload.writer_lease, asking) {
        asking.abort();
        lease.release().await;
    }
    drop(config);
    result
}

/// `--schedule`; an empty or blank one means none.
fn parse_schedule(common: &CommonSyncArgs) -> Result<Option<Schedule>> {
    common
        .schedule
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(str::parse::<Schedule>)
        .transpose()
        .map_err(|e| AgentError::invalid(format!("--schedule {e}")))
}

/// `--watch` (uploads only): changes in the local directory trigger syncs.
fn start_watcher(
    direction: Direction,
    local: &std::path::Path,
    common: &CommonSyncArgs,
) -> Result<Option<ChangeWatcher>> {
    if common.watch && direction == Direction::ToLocal {
        return Err(AgentError::invalid(
            "--watch watches the local directory, so it only applies to sync-to-remote",
        ));
    }
    if common.watch {
        Ok(Some(ChangeWatcher::start(
            local,
            common.watch_min_interval,
        )?))
    } else {
        Ok(None)
    }
}

/// `--pid-path`, which must be usable; without it, the default place, which need not be.
fn acquire_pid_file(common: &CommonSyncArgs) -> Result<Option<PidFile>> {
    match &common.pid_path {
        Some(path) => PidFile::acquire(path),
        None => Ok(acquire_default_pid_file()),
    }
}

/// The PID file at its default place; a default that cannot be used is no reason not to
/// sync, only to warn that `interrupt` cannot reach this run.
fn acquire_default_pid_file() -> Option<PidFile> {
    let default = DefaultPidPath::for_this_user();
    match default
        .prepare()
        .and_then(|()| PidFile::acquire(&default.path))
    {
        Ok(guard) => guard,
        Err(e) => {
            tracing::warn!(error = %e, "running without a PID file; `interrupt` cannot reach this run (set --pid-path)");
            None
        }
    }
}

/// `--report-url`, `--writer-lease-url` and `--sync-requests-url`: each presents the token
/// of `--report-token-file` and speaks of the `--report-resource`.
fn operator_clients(
    direction: Direction,
    options: &JobOptions,
    common: &CommonSyncArgs,
    remote: &str,
) -> Result<OperatorClients> {
    let token_file = common.report_token_file.as_deref();
    let resource = common.report_resource.as_deref().unwrap_or_default();
    let reporter = match &common.report_url {
        Some(url) => Some(Reporter::new(url, token_file, resource, direction)?),
        None => None,
    };
    let writer_lease = match &options.writer_lease {
        Some((url, preferred)) => Some(WriterLease::new(
            url,
            token_file,
            resource,
            &report::pod_name(),
            remote,
            *preferred,
        )?),
        None => None,
    };
    let sync_request_watch = match &options.sync_requests_url {
        Some(url) => Some(Arc::new(SyncRequestWatch::new(
            url,
            token_file,
            resource,
            &report::pod_name(),
        )?)),
        None => None,
    };
    Ok(OperatorClients {
        reporter,
        writer_lease,
        sync_request_watch,
    })
}

fn sync_job(
    direction: Direction,
    local: PathBuf,
    remote: String,
    options: JobOptions,
    common: &CommonSyncArgs,
    rclone: Rclone,
    operator: OperatorClients,
) -> SyncJob {
    SyncJob {
        direction,
        reporter: operator.reporter,
        local,
        encrypted: is_encrypted_target(&remote),
        remote,
        delete: !common.no_delete,
        force: options.force,
        deletion_limits: (!common.no_deletion_plan).then_some(Limits {
            max_percent: common.max_delete_percent,
            max_files: common.max_delete_files,
        }),
        upload: UploadOptions {
            sentinel: options.sentinel,
            full_sync_interval: options.full_sync_interval,
            writer_lease: operator.writer_lease,
            sync_request_watch: operator.sync_request_watch,
            trash: options.trash,
            empty_directories_kept: true,
        },
        restore: RestoreOptions {
            allow_incomplete: options.allow_incomplete,
            keep_local_if_remote_empty: options.keep_local_if_remote_empty,
            discard_local_changes: options.discard_local_changes,
            as_of: options.as_of,
        },
        rclone,
        running_uid: nix::unistd::geteuid().as_raw(),
        running_gid: nix::unistd::getegid().as_raw(),
        sync_lock: Some(sync_lock::lock_path(
            &common
                .pid_path
                .clone()
                .unwrap_or_else(|| DefaultPidPath::for_this_user().path),
        )),
    }
}

/// `--status-addr`; the address it bound goes to `--status-addr-file`, for a probe that
/// cannot know a port the system chose.
async fn serve_status(
    direction: Direction,
    common: &CommonSyncArgs,
    status: &Arc<Status>,
) -> Result<()> {
    let Some(addr) = common.status_addr else {
        return Ok(());
    };
    let server = StatusServer {
        direction: direction.as_str(),
        unhealthy_after_failures: common.unhealthy_after_failures,
    };
    let bound = server.spawn(addr, status.clone()).await?;
    if let Some(file) = &common.status_addr_file {
        std::fs::write(file, bound.to_string())
            .map_err(|e| AgentError::io("cannot write --status-addr-file", file, e))?;
    }
    Ok(())
}

/// One sync, or one per trigger (`--schedule`, `--watch`) until a stop signal.
async fn run_until_stopped(
    job: &SyncJob,
    schedule: Option<Schedule>,
    watcher: Option<ChangeWatcher>,
    status: &Status,
    stop: StopSignal,
) -> Result<()> {
    let mut abort = stop.clone();
    let run = async {
        if schedule.is_none() && watcher.is_none() {
            runner::run_once(job, status, stop).await
        } else {
            let triggers = runner::Triggers { schedule, watcher };
            runner::run_continuously(job, triggers, status, stop).await
        }
    };
    // A second signal drops the run, which kills rclone; the config and the PID file are
    // removed on the way out.
    let result = tokio::select! {
        result = run => result,
        error = abort.aborted() => Err(error),
    };
    result.map(|_| ())
}
