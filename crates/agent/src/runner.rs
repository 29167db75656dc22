//! Runs a job once, or at start and then on a schedule, and handles SIGTERM / SIGINT:
//! stop scheduling, let a running sync finish, run one last sync, exit with its result.

use std::time::Instant;

use chrono::Local;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::watch;

use crate::error::{AgentError, Result};
use crate::job::{Outcome, SyncJob};
use crate::status::Status;
use crate::sync_lock;
use crate::watch::ChangeWatcher;
use vsc_types::schedule::Schedule;

/// A flag raised by the first SIGTERM or SIGINT.
#[derive(Clone)]
pub struct StopSignal {
    receiver: watch::Receiver<bool>,
}

impl StopSignal {
    /// Installs the handlers. A second signal while the final sync runs aborts at once
    /// (exit 130), for a person at a terminal who really means it.
    pub fn install() -> Result<Self> {
        let (sender, receiver) = watch::channel(false);
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
                    let _ = sender.send(true);
                } else {
                    tracing::error!(
                        signal = name,
                        "second signal: aborting without waiting for the sync"
                    );
                    std::process::exit(130);
                }
            }
        });
        Ok(StopSignal { receiver })
    }

    pub fn raised(&self) -> bool {
        *self.receiver.borrow()
    }

    pub async fn wait(&mut self) {
        let _ = self.receiver.wait_for(|raised| *raised).await;
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
    tracing::info!(reason, local = %job.local.display(), remote = %job.remote, "sync starting");
    let result = job.run().await;
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
            )
        }
        Err(e) => {
            tracing::error!(reason, error = %e, seconds = elapsed.as_secs_f64(), "sync failed")
        }
    }
    result
}

/// One run; a signal during it lets it finish (a half-done restore is worse than a late exit).
pub async fn run_once(job: &SyncJob, status: &Status) -> Result<Outcome> {
    run_logged(job, status, "one-shot").await
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
    let _ = run_logged(job, status, "start").await;
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
            _ = scheduled => "schedule",
            _ = change => "change",
            _ = stop.wait() => break,
        };
        last_sync = Instant::now();
        let _ = run_logged(job, status, reason).await;
    }
    run_logged(job, status, "final").await
}
