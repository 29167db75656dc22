//! Runs a job once, or at start and then on a schedule, and handles SIGTERM / SIGINT:
//! stop scheduling, let a running sync finish, run one last sync, exit with its result.

use std::time::{Duration, Instant};

use chrono::{DateTime, Local, Utc};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{AgentError, Result, exit_code};
use crate::job::{CatchUp, Direction, Outcome, SyncJob};
use crate::sync_counters::Status;
use crate::sync_lock;
use crate::watch::ChangeWatcher;
use crate::writer_lease::{Turn, WriterLease};
use vsc_types::schedule::Schedule;

/// How long an abort may take to clean up before the agent exits regardless.
const ABORT_CLEANUP_GRACE: Duration = Duration::from_secs(2);

/// A flag raised by the first SIGTERM or SIGINT, with the time it was raised.
#[derive(Clone)]
pub struct StopSignal {
    receiver: watch::Receiver<Option<Instant>>,
    /// Raised by a second signal.
    abort: watch::Receiver<bool>,
    /// How long the running sync and the final one may take after the signal (`None`: no
    /// limit): `--final-sync-timeout`.
    limit: Option<Duration>,
}

impl StopSignal {
    /// Installs the handlers. A second signal while the final sync runs aborts at once
    /// (exit 130), for a person at a terminal who really means it.
    pub fn install(limit: Option<Duration>) -> Result<Self> {
        let (sender, receiver) = watch::channel(None);
        let (abort_sender, abort) = watch::channel(false);
        let mut terminate = signal(SignalKind::terminate())
            .map_err(|e| AgentError::Internal(format!("cannot handle SIGTERM: {e}")))?;
        let mut interrupt = signal(SignalKind::interrupt())
            .map_err(|e| AgentError::Internal(format!("cannot handle SIGINT: {e}")))?;
        tokio::spawn(async move {
            let mut received = 0u32;
            loop {
                let name = tokio::select! {
                    _ = terminate.recv() => "SIGTERM",
                    _ = interrupt.recv() => "SIGINT",
                };
                received += 1;
                if received == 1 {
                    tracing::info!(
                        signal = name,
                        "stopping: no new scheduled syncs; finishing with one last sync"
                    );
                    let _ = sender.send(Some(Instant::now()));
                } else {
                    tracing::error!(
                        signal = name,
                        "second signal: aborting without waiting for the sync"
                    );
                    // The run is dropped (rclone killed, the rclone config with its secrets
                    // and the PID file removed); exiting here would skip that.
                    let _ = abort_sender.send(true);
                    tokio::time::sleep(ABORT_CLEANUP_GRACE).await;
                    std::process::exit(exit_code::ABORTED);
                }
            }
        });
        Ok(StopSignal {
            receiver,
            abort,
            limit,
        })
    }

    /// Resolves on a second signal.
    pub async fn aborted(&mut self) -> AgentError {
        let _ = self.abort.wait_for(|aborted| *aborted).await;
        AgentError::Aborted
    }

    pub fn raised(&self) -> bool {
        self.receiver.borrow().is_some()
    }

    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(Option::is_some).await;
    }

    /// Resolves when the time allowed after the signal has run out; never without a signal
    /// or a limit.
    async fn out_of_time(&mut self) -> Duration {
        let Some(limit) = self.limit else {
            return std::future::pending().await;
        };
        let raised = match self.receiver.wait_for(Option::is_some).await {
            Ok(raised) => *raised,
            Err(_) => None,
        };
        let Some(raised) = raised else {
            return std::future::pending().await;
        };
        tokio::time::sleep_until((raised + limit).into()).await;
        limit
    }
}

/// [`run_logged`], stopped when the time allowed after the stop signal runs out: a sync
/// that hangs (a silent endpoint) must not hold the agent until the kubelet kills it
/// without a word. Stopping drops the sync, which kills its rclone.
async fn run_bounded(
    job: &SyncJob,
    status: &Status,
    reason: &str,
    stop: &mut StopSignal,
) -> Result<Outcome> {
    tokio::select! {
        result = run_logged(job, status, reason) => result,
        limit = stop.out_of_time() => {
            let error = AgentError::StopTimedOut(format!(
                "the {reason} sync was still running {}s after the stop signal (--final-sync-timeout); \
                 it was stopped (an upload it had begun leaves the remote's completion record 'in progress' until the next complete one)",
                limit.as_secs()
            ));
            tracing::error!(reason, error = %error, "sync stopped");
            Err(error)
        }
    }
}

async fn run_logged(job: &SyncJob, status: &Status, reason: &str) -> Result<Outcome> {
    // A lock that cannot be taken is no reason not to sync (as with the PID file).
    let _turn = match &job.sync_lock {
        Some(path) => sync_lock::take_turn(path)
            .await
            .map_err(|e| tracing::warn!(error = %e, "syncing without the sync lock"))
            .ok(),
        None => None,
    };
    let started = Instant::now();
    let lease = job
        .upload
        .writer_lease
        .as_ref()
        .filter(|_| job.direction == Direction::ToRemote);
    if let Some(lease) = lease {
        match lease.turn().await {
            Turn::Hold { holder } => {
                tracing::debug!(
                    reason,
                    primary = holder.as_deref().unwrap_or("none yet"),
                    "upload held: not the primary writer"
                );
                status.hold(holder);
                return Ok(Outcome::Held);
            }
            Turn::Primary { .. } => status.write(),
        }
    }
    tracing::info!(reason, local = %job.local.display(), remote = %job.remote, "sync starting");
    let result = match lease {
        Some(lease) => as_primary(job, lease).await,
        None => job.run().await,
    };
    let elapsed = started.elapsed();
    status.record(&result, elapsed);
    if let Some(reporter) = &job.reporter {
        reporter.send(&result).await;
    }
    match &result {
        Ok(outcome) => {
            tracing::info!(
                reason,
                ?outcome,
                seconds = elapsed.as_secs_f64(),
                "sync finished"
            );
        }
        Err(e) => {
            tracing::error!(reason, error = %e, seconds = elapsed.as_secs_f64(), "sync failed");
        }
    }
    result
}

/// The upload of the primary writer: a takeover catches up first; the upload is stopped
/// (its rclone killed) when the lease is lost.
async fn as_primary(job: &SyncJob, lease: &WriterLease) -> Result<Outcome> {
    let upload = async {
        if lease.take_over_pending() {
            let found = job.catch_up().await?;
            lease.caught_up();
            // Nothing may have changed here since the restore (or the restored tree is
            // older than what the remote holds), so a plain upload could send nothing: a
            // full one completes the record, or replaces the other history.
            if matches!(
                found,
                CatchUp::RestoredAnUnfinishedUpload | CatchUp::KeptRestoredTree
            ) {
                return job.full_upload().await;
            }
        }
        job.run().await
    };
    tokio::select! {
        result = upload => result,
        () = lease.lost() => Err(AgentError::LeaseLost(
            "the writer lease was not renewed in time (the operator or the API server unreachable, or a preferred Pod takes over): the upload was stopped before another Pod may write".into(),
        )),
    }
}

/// One run; a signal during it lets it finish (a half-done restore is worse than a late
/// exit), within `--final-sync-timeout`.
pub async fn run_once(job: &SyncJob, status: &Status, mut stop: StopSignal) -> Result<Outcome> {
    run_bounded(job, status, "one-shot", &mut stop).await
}

/// What wakes a long-running agent besides the stop signal.
pub struct Triggers {
    pub schedule: Option<Schedule>,
    pub watcher: Option<ChangeWatcher>,
}

/// A sync at start, then one per schedule tick or settled file change; syncs never overlap
/// (a trigger that fires during a sync is served after it). On the stop signal, a last sync
/// runs and its result is the exit status.
pub async fn run_continuously(
    job: &SyncJob,
    mut triggers: Triggers,
    status: &Status,
    mut stop: StopSignal,
) -> Result<Outcome> {
    let mut last_sync = Instant::now();
    let mut requests = SyncRequests::of(job);
    let _ = run_bounded(job, status, "start", &mut stop).await;
    loop {
        if stop.raised() {
            break;
        }
        let tick = triggers
            .schedule
            .as_ref()
            .and_then(|schedule| schedule.delay_after(Local::now()));
        if let Some(delay) = tick {
            tracing::debug!(seconds = delay.as_secs_f64(), "next scheduled sync");
        }
        let change = async {
            match triggers.watcher.as_mut() {
                Some(watcher) => watcher.next_change(Some(last_sync.into())).await,
                None => std::future::pending().await,
            }
        };
        let scheduled = async {
            match tick {
                Some(delay) => tokio::time::sleep(delay).await,
                None => std::future::pending().await,
            }
        };
        let reason = tokio::select! {
            () = scheduled => "schedule",
            () = change => "change",
            () = requests.next() => "requested",
            () = stop.wait() => break,
        };
        last_sync = Instant::now();
        requests.starting();
        let _ = run_bounded(job, status, reason, &mut stop).await;
    }
    run_bounded(job, status, "final", &mut stop).await
}

/// `riotkit.org/sync-requested-at` as the operator's answers carry it (the writer lease's, or
/// the sync-requests endpoint's without a lease): a request newer
/// than the start of this agent's last sync (or than the last request it served: the
/// requester's clock may be ahead of this one) triggers one.
struct SyncRequests {
    receiver: Option<watch::Receiver<Option<DateTime<Utc>>>>,
    served: DateTime<Utc>,
}

impl SyncRequests {
    /// The sync at start serves every request made before it.
    fn of(job: &SyncJob) -> Self {
        SyncRequests {
            receiver: match (&job.upload.writer_lease, &job.upload.sync_request_watch) {
                (Some(lease), _) => Some(lease.sync_requests()),
                (None, Some(watch)) => Some(watch.sync_requests()),
                (None, None) => None,
            },
            served: Utc::now(),
        }
    }

    /// Resolves when a request newer than the last sync's start arrives.
    async fn next(&mut self) {
        let served = self.served;
        let newer = |known: &Option<DateTime<Utc>>| known.is_some_and(|at| at > served);
        let Some(receiver) = self.receiver.as_mut() else {
            return std::future::pending().await;
        };
        let requested = match receiver.wait_for(newer).await {
            Ok(requested) => *requested,
            Err(_) => return std::future::pending().await,
        };
        if let Some(at) = requested {
            tracing::info!(requested_at = %at.to_rfc3339(), "a sync was requested");
            self.served = at;
        }
    }

    /// A sync starts now: it serves every request made before.
    fn starting(&mut self) {
        self.served = self.served.max(Utc::now());
    }
}
