//! `--watch`: sync when files under the local directory change, at most once per
//! `--watch-min-interval`, after writes have settled.

use std::path::Path;
use std::time::Duration;

use notify::{RecursiveMode, Watcher as _};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::error::{AgentError, Result};

/// How long the directory must stay quiet before a change counts as settled.
const SETTLE: Duration = Duration::from_secs(1);
/// A steady stream of writes still gets synced after this long.
const MAX_SETTLE: Duration = Duration::from_secs(10);

fn is_only_local_record(event: &notify::Event) -> bool {
    !event.paths.is_empty()
        && event.paths.iter().all(|path| {
            path.file_name()
                .is_some_and(crate::layout::is_local_reserved)
        })
}

pub struct ChangeWatcher {
    _watcher: notify::RecommendedWatcher,
    events: mpsc::UnboundedReceiver<()>,
    min_interval: Duration,
}

impl ChangeWatcher {
    pub fn start(path: &Path, min_interval: Duration) -> Result<Self> {
        let (sender, events) = mpsc::unbounded_channel();
        let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
            match event {
                // Reads change nothing worth uploading, and the agent's own local record
                // (rewritten by each upload) would make every sync start the next.
                Ok(event)
                    if matches!(event.kind, notify::EventKind::Access(_))
                        || is_only_local_record(&event) => {}
                Ok(_) => {
                    let _ = sender.send(());
                }
                Err(e) => tracing::warn!(error = %e, "file watch error; the next change or schedule tick will sync"),
            }
        })
        .map_err(|e| AgentError::Internal(format!("cannot watch for file changes: {e}")))?;
        watcher.watch(path, RecursiveMode::Recursive).map_err(|e| {
            AgentError::invalid(format!("--watch: cannot watch {}: {e}", path.display()))
        })?;
        Ok(ChangeWatcher {
            _watcher: watcher,
            events,
            min_interval,
        })
    }

    /// Resolves once a change has settled and `min_interval` has passed since `last_sync`.
    pub async fn next_change(&mut self, last_sync: Option<Instant>) {
        if self.events.recv().await.is_none() {
            std::future::pending::<()>().await;
        }
        let first = Instant::now();
        loop {
            let settle_deadline = (Instant::now() + SETTLE).min(first + MAX_SETTLE);
            match tokio::time::timeout_at(settle_deadline, self.events.recv()).await {
                Ok(Some(())) if Instant::now() < first + MAX_SETTLE => {}
                _ => break,
            }
        }
        if let Some(last) = last_sync {
            tokio::time::sleep_until(last + self.min_interval).await;
        }
        // Changes made while waiting are carried by the coming sync.
        while self.events.try_recv().is_ok() {}
    }
}
