//! `--writer-lease-url`: one writer per remote path. The sidecar asks the operator for the
//! remote path's writer lease every few seconds and uploads only while it holds it; the
//! others hold their uploads and keep asking (see `vsc_types::writer_lease` for the timing).
//!
//! A grant is believed until [`STOP_MARGIN_SECONDS`] before it could expire, counted on this
//! process' monotonic clock from before the request was sent: a renewal that does not come
//! back in time (the operator or the API server unreachable) stops a running upload.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::time::Instant;
use vsc_types::writer_lease::{
    LEASE_DURATION_SECONDS, LeaseAction, LeaseAnswer, LeaseRequest, RENEW_EVERY_SECONDS,
    STOP_MARGIN_SECONDS,
};

use crate::error::{AgentError, Result};
use crate::report::{HttpTarget, ask_operator};
use crate::sync_requests::RequestedSyncs;

const TIMEOUT: Duration = Duration::from_secs(5);

/// What this agent knows of the lease.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseState {
    /// No answer yet.
    Unknown,
    /// This Pod may upload until then.
    Holding { until: Instant },
    /// Another Pod holds it (or none, while a preferred Pod waits for it).
    Held { holder: Option<String> },
}

/// This Pod's turn for one upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Turn {
    /// Upload; `taken`: the first upload since this Pod became the primary.
    Primary {
        taken: bool,
    },
    Hold {
        holder: Option<String>,
    },
}

#[derive(Debug)]
pub struct WriterLease {
    target: HttpTarget,
    token_file: PathBuf,
    resource: String,
    pod: String,
    remote_path: String,
    preferred: bool,
    state: watch::Sender<LeaseState>,
    /// The resource's latest sync request, as the operator's answers carry it.
    requested: RequestedSyncs,
    /// Whether the last upload's turn was as the primary (a new grant after a hold is a
    /// takeover).
    was_primary: AtomicBool,
    /// Set by a takeover, cleared once the catch-up restore succeeded: until then each
    /// upload tries it first.
    catch_up_pending: AtomicBool,
}

impl WriterLease {
    /// Validates the settings at start (as `--report-url`'s).
    pub fn new(
        url: &str,
        token_file: Option<&Path>,
        resource: &str,
        pod: &str,
        remote_path: &str,
        preferred: bool,
    ) -> Result<Arc<Self>> {
        let target = HttpTarget::parse(url, "--writer-lease-url")?;
        let token_file = token_file.filter(|file| !file.as_os_str().is_empty());
        let Some(token_file) = token_file.filter(|_| resource.contains('/') && !pod.is_empty())
        else {
            return Err(AgentError::invalid(
                "--writer-lease-url needs --report-token-file, --report-resource <namespace>/<name> and the Pod's name (POD_NAME)",
            ));
        };
        Ok(Arc::new(WriterLease {
            target,
            token_file: token_file.to_path_buf(),
            resource: resource.to_string(),
            pod: pod.to_string(),
            remote_path: remote_path.to_string(),
            preferred,
            state: watch::channel(LeaseState::Unknown).0,
            requested: RequestedSyncs::default(),
            was_primary: false.into(),
            catch_up_pending: false.into(),
        }))
    }

    /// Asks every [`RENEW_EVERY_SECONDS`] in the background, until the returned handle is
    /// aborted.
    pub fn keep_asking(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let lease = self.clone();
        tokio::spawn(async move {
            loop {
                lease.ask().await;
                tokio::time::sleep(Duration::from_secs(u64::from(RENEW_EVERY_SECONDS))).await;
            }
        })
    }

    async fn ask(&self) {
        let sent = Instant::now();
        let answer = self.request(LeaseAction::Acquire).await;
        if let Ok(answer) = &answer {
            self.requested.offer(answer.sync_requested());
        }
        let next = match answer {
            Ok(answer) if answer.granted => {
                let lasts = answer.lease_duration_seconds.min(LEASE_DURATION_SECONDS);
                let believed = lasts.saturating_sub(STOP_MARGIN_SECONDS);
                LeaseState::Holding {
                    until: sent + Duration::from_secs(u64::from(believed)),
                }
            }
            Ok(answer) => LeaseState::Held {
                holder: answer.holder,
            },
            Err(e) => {
                // A grant already given stays good until its own deadline.
                tracing::warn!(error = %e, "could not ask for the writer lease");
                return;
            }
        };
        self.state.send_if_modified(|state| {
            let changed = std::mem::discriminant(state) != std::mem::discriminant(&next)
                || matches!((&*state, &next), (LeaseState::Held { holder: a }, LeaseState::Held { holder: b }) if a != b);
            if changed {
                log_change(&next, &self.remote_path);
            }
            *state = next;
            true
        });
    }

    /// The resource's sync requests (`riotkit.org/sync-requested-at`), newest seen.
    pub fn sync_requests(&self) -> watch::Receiver<Option<DateTime<Utc>>> {
        self.requested.subscribe()
    }

    /// Whether this Pod may upload now (waiting up to one request for the first answer).
    pub async fn turn(&self) -> Turn {
        let mut receiver = self.state.subscribe();
        let first = receiver.wait_for(|state| *state != LeaseState::Unknown);
        let _ = tokio::time::timeout(TIMEOUT, first).await;
        let holding = match &*self.state.borrow() {
            LeaseState::Holding { until } if Instant::now() < *until => Ok(()),
            LeaseState::Held { holder } => Err(holder.clone()),
            LeaseState::Holding { .. } => {
                tracing::warn!(remote = %self.remote_path, "the writer lease ran out unrenewed (the operator or the API server unreachable): holding uploads");
                Err(None)
            }
            LeaseState::Unknown => Err(None),
        };
        let was_primary = self.was_primary.swap(holding.is_ok(), Ordering::SeqCst);
        match holding {
            Ok(()) => {
                if !was_primary {
                    self.catch_up_pending.store(true, Ordering::SeqCst);
                }
                Turn::Primary {
                    taken: !was_primary,
                }
            }
            Err(holder) => Turn::Hold { holder },
        }
    }

    /// Whether this primary has yet to catch up with the remote (a takeover).
    pub fn take_over_pending(&self) -> bool {
        self.catch_up_pending.load(Ordering::SeqCst)
    }

    pub fn caught_up(&self) {
        self.catch_up_pending.store(false, Ordering::SeqCst);
    }

    /// Resolves when this Pod may no longer upload: its grant ran out unrenewed, or the
    /// operator refused to renew it.
    pub async fn lost(&self) {
        let mut receiver = self.state.subscribe();
        loop {
            let until = match &*receiver.borrow_and_update() {
                LeaseState::Holding { until } => *until,
                _ => return,
            };
            tokio::select! {
                () = tokio::time::sleep_until(until) => {
                    if matches!(&*self.state.borrow(), LeaseState::Holding { until: now } if *now <= until) {
                        return;
                    }
                }
                changed = receiver.changed() => if changed.is_err() { return },
            }
        }
    }

    /// Gives the lease up (after the final upload), so another Pod takes over at once.
    pub async fn release(&self) {
        if !matches!(&*self.state.borrow(), LeaseState::Holding { .. }) {
            return;
        }
        match self.request(LeaseAction::Release).await {
            Ok(_) => tracing::info!(remote = %self.remote_path, "released the writer lease"),
            Err(e) => {
                tracing::warn!(error = %e, "could not release the writer lease; another Pod takes over when it expires");
            }
        }
    }

    async fn request(&self, action: LeaseAction) -> Result<LeaseAnswer> {
        let request = LeaseRequest {
            resource: self.resource.clone(),
            pod: self.pod.clone(),
            remote_path: self.remote_path.clone(),
            action,
            preferred: self.preferred,
            sent_at: LeaseRequest::timestamp(chrono::Utc::now()),
        };
        ask_operator(&self.target, &self.token_file, &request, "writer lease").await
    }
}

fn log_change(next: &LeaseState, remote: &str) {
    match next {
        LeaseState::Holding { .. } => {
            tracing::info!(remote, "this Pod is the primary writer: uploading");
        }
        LeaseState::Held { holder } => tracing::info!(
            remote,
            primary = holder.as_deref().unwrap_or("none yet"),
            "another Pod is the primary writer: holding uploads"
        ),
        LeaseState::Unknown => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lease() -> Arc<WriterLease> {
        WriterLease::new(
            "http://op:8080/writer-lease",
            Some(Path::new("/token")),
            "ns/name",
            "web-0",
            "remote:b/web",
            false,
        )
        .expect("valid")
    }

    #[test]
    fn settings_are_checked_at_start() {
        let token = Some(Path::new("/token"));
        let new = |url, token, resource, pod| {
            WriterLease::new(url, token, resource, pod, "remote:b", false).is_ok()
        };
        assert!(!new("https://op/writer-lease", token, "ns/name", "web-0"));
        assert!(!new("http://op/writer-lease", None, "ns/name", "web-0"));
        assert!(!new("http://op/writer-lease", token, "name", "web-0"));
        assert!(!new("http://op/writer-lease", token, "ns/name", ""));
        assert!(new("http://op/writer-lease", token, "ns/name", "web-0"));
    }

    #[tokio::test(start_paused = true)]
    async fn a_grant_is_lost_when_it_runs_out_unrenewed_and_a_takeover_is_seen_once() {
        let lease = lease();
        let until = Instant::now() + Duration::from_secs(20);
        lease.state.send_replace(LeaseState::Holding { until });
        assert_eq!(lease.turn().await, Turn::Primary { taken: true });
        assert_eq!(lease.turn().await, Turn::Primary { taken: false });
        lease.lost().await;
        assert!(Instant::now() >= until, "lost only at the deadline");
        assert_eq!(lease.turn().await, Turn::Hold { holder: None });
        lease.state.send_replace(LeaseState::Holding {
            until: Instant::now() + Duration::from_secs(20),
        });
        assert_eq!(lease.turn().await, Turn::Primary { taken: true });
    }

    #[tokio::test(start_paused = true)]
    async fn a_renewal_extends_the_grant_and_a_refusal_ends_it_at_once() {
        let lease = lease();
        let start = Instant::now();
        lease.state.send_replace(LeaseState::Holding {
            until: start + Duration::from_secs(20),
        });
        let renewer = {
            let lease = lease.clone();
            async move {
                tokio::time::sleep(Duration::from_secs(10)).await;
                lease.state.send_replace(LeaseState::Holding {
                    until: start + Duration::from_secs(30),
                });
                tokio::time::sleep(Duration::from_secs(5)).await;
                lease.state.send_replace(LeaseState::Held {
                    holder: Some("web-1".into()),
                });
            }
        };
        tokio::join!(lease.lost(), renewer);
        assert_eq!(Instant::now(), start + Duration::from_secs(15));
    }
}
