//! `--sync-requests-url`: how a sidecar without a writer lease (`syncOptions.writers: every`)
//! hears of `kubectl pfss sync-now`. It asks the operator every few seconds for the
//! resource's `riotkit.org/sync-requested-at` (a writer-lease holder reads the same time from
//! its lease answers); the runner starts one upload for each newer time.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use vsc_types::sync_requests::{ASK_EVERY_SECONDS, SyncRequestsAnswer, SyncRequestsQuery};

use crate::error::{AgentError, Result};
use crate::report::{HttpTarget, ask_operator};

/// The newest sync request heard of, from whichever answer carries it.
#[derive(Debug)]
pub struct RequestedSyncs(watch::Sender<Option<DateTime<Utc>>>);

impl Default for RequestedSyncs {
    fn default() -> Self {
        RequestedSyncs(watch::channel(None).0)
    }
}

impl RequestedSyncs {
    /// Keeps `requested` when it is newer than what is known (an older answer, or a request
    /// taken back, changes nothing).
    pub fn offer(&self, requested: Option<DateTime<Utc>>) {
        self.0.send_if_modified(|known| {
            let newer = requested > *known;
            if newer {
                *known = requested;
            }
            newer
        });
    }

    pub fn subscribe(&self) -> watch::Receiver<Option<DateTime<Utc>>> {
        self.0.subscribe()
    }
}

#[derive(Debug)]
pub struct SyncRequestWatch {
    target: HttpTarget,
    token_file: PathBuf,
    query: SyncRequestsQuery,
    requested: RequestedSyncs,
}

impl SyncRequestWatch {
    /// Validates the settings at start (as `--report-url`'s).
    pub fn new(url: &str, token_file: Option<&Path>, resource: &str, pod: &str) -> Result<Self> {
        let target = HttpTarget::parse(url, "--sync-requests-url")?;
        let token_file = token_file.filter(|file| !file.as_os_str().is_empty());
        let Some(token_file) = token_file.filter(|_| resource.contains('/') && !pod.is_empty())
        else {
            return Err(AgentError::invalid(
                "--sync-requests-url needs --report-token-file, --report-resource <namespace>/<name> and the Pod's name (POD_NAME)",
            ));
        };
        Ok(SyncRequestWatch {
            target,
            token_file: token_file.to_path_buf(),
            query: SyncRequestsQuery {
                resource: resource.to_string(),
                pod: pod.to_string(),
            },
            requested: RequestedSyncs::default(),
        })
    }

    /// Asks every [`ASK_EVERY_SECONDS`] in the background, until the returned handle is
    /// aborted. A failed question is logged once per failure streak: the next one may work.
    pub fn keep_asking(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let watch = self.clone();
        tokio::spawn(async move {
            let mut failing = false;
            loop {
                match watch.ask().await {
                    Ok(answer) => {
                        failing = false;
                        watch.requested.offer(answer.sync_requested());
                    }
                    Err(e) if !failing => {
                        failing = true;
                        tracing::warn!(error = %e, "could not ask the operator for sync requests");
                    }
                    Err(_) => {}
                }
                tokio::time::sleep(Duration::from_secs(u64::from(ASK_EVERY_SECONDS))).await;
            }
        })
    }

    async fn ask(&self) -> Result<SyncRequestsAnswer> {
        ask_operator(&self.target, &self.token_file, &self.query, "sync requests").await
    }

    pub fn sync_requests(&self) -> watch::Receiver<Option<DateTime<Utc>>> {
        self.requested.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_at_start() {
        let token = Some(Path::new("/var/run/secrets/token"));
        let url = "http://op:8080/sync-requests";
        assert!(SyncRequestWatch::new("https://op/sync-requests", token, "ns/a", "p").is_err());
        assert!(SyncRequestWatch::new(url, None, "ns/a", "p").is_err());
        assert!(SyncRequestWatch::new(url, token, "a", "p").is_err());
        assert!(SyncRequestWatch::new(url, token, "ns/a", "").is_err());
        assert!(SyncRequestWatch::new(url, token, "ns/a", "p").is_ok());
    }

    #[test]
    fn only_a_newer_request_is_news() {
        let requested = RequestedSyncs::default();
        let mut receiver = requested.subscribe();
        let at = |s: &str| Some(s.parse::<DateTime<Utc>>().expect("time"));
        requested.offer(at("2026-12-01T10:00:00Z"));
        assert!(receiver.has_changed().expect("open"));
        receiver.mark_unchanged();
        requested.offer(at("2026-12-01T09:00:00Z"));
        requested.offer(None);
        assert!(!receiver.has_changed().expect("open"));
        assert_eq!(*receiver.borrow(), at("2026-12-01T10:00:00Z"));
    }
}
