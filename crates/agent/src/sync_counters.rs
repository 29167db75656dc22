//! Counts sync results for the log, the health endpoint and metrics.

use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use crate::error::Result;
use crate::job::Outcome;

#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub successes: u64,
    pub failures: u64,
    pub consecutive_failures: u64,
    pub last_success: Option<SystemTime>,
    pub last_duration: Option<Duration>,
    pub last_error: Option<String>,
    /// With a writer lease: whether uploads are held because another Pod is the primary
    /// (None without one).
    pub upload_held: Option<bool>,
    /// The primary writer when uploads are held, if known.
    pub primary: Option<String>,
}

#[derive(Debug, Default)]
pub struct Status {
    inner: Mutex<Snapshot>,
}

impl Status {
    pub fn record(&self, result: &Result<Outcome>, took: Duration) {
        let mut snapshot = self.lock();
        snapshot.last_duration = Some(took);
        match result {
            Ok(_) => {
                snapshot.successes += 1;
                snapshot.consecutive_failures = 0;
                snapshot.last_success = Some(SystemTime::now());
                snapshot.last_error = None;
            }
            Err(e) => {
                snapshot.failures += 1;
                snapshot.consecutive_failures += 1;
                snapshot.last_error = Some(e.to_string());
            }
        }
    }

    /// Uploads are held: another Pod is the primary writer.
    pub fn hold(&self, primary: Option<String>) {
        let mut snapshot = self.lock();
        snapshot.upload_held = Some(true);
        snapshot.primary = primary;
    }

    /// This Pod is the primary writer.
    pub fn write(&self) {
        let mut snapshot = self.lock();
        snapshot.upload_held = Some(false);
        snapshot.primary = None;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Snapshot> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn snapshot(&self) -> Snapshot {
        self.lock().clone()
    }
}
