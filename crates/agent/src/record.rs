//! The completion record: a small JSON file at the top of the remote path
//! ([`layout::RECORD_NAME`]) that says whether the last upload finished.
//!
//! An upload marks it `in-progress` right before rclone starts and rewrites it `complete`
//! when rclone has finished, so an upload that was interrupted (a killed Pod, a lost
//! network) stays visible. A restore reads it to tell apart a remote never written (first
//! run), a complete remote, a remote whose last upload did not finish, and a remote written
//! by something else (plain rclone, an older agent).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};
use crate::layout;
use crate::rclone::Rclone;

/// The record format this agent writes; readers accept records with unknown extra fields.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UploadState {
    InProgress,
    Complete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompletionRecord {
    pub format: u32,
    pub state: UploadState,
    /// When the upload started (RFC 3339, UTC).
    pub started_at: String,
    /// When it finished; absent while in progress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub completed_at: Option<String>,
    /// Files and bytes of the source, as rclone listed it just before the upload.
    pub files: u64,
    pub bytes: u64,
    /// Whether the data is behind the crypt remote (the record itself is then encrypted too).
    pub encrypted: bool,
    pub writer: Writer,
    /// The `--as-of` time of the restore this upload's tree descends from (kept by every
    /// later upload of it): a Pod restored as of that time that becomes the primary follows
    /// uploads of the same history, and replaces the others (the older generation's).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_as_of: Option<String>,
}

/// Who wrote a record, to find the Pod or machine behind an interrupted upload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Writer {
    pub host: String,
    pub pid: u32,
    pub version: String,
}

impl Writer {
    /// This process, named by its Pod (POD_NAME, from the downward API: unlike the
    /// hostname, it differs between hostNetwork Pods of one node), else by its hostname.
    pub fn this_process() -> Self {
        let named = |variable| {
            std::env::var(variable)
                .ok()
                .filter(|name: &String| !name.trim().is_empty())
        };
        let host = named(vsc_types::contract::ENV_POD_NAME)
            .or_else(|| named("HOSTNAME"))
            .or_else(|| std::fs::read_to_string("/proc/sys/kernel/hostname").ok())
            .map_or_else(|| "unknown".to_string(), |host| host.trim().to_string());
        Writer {
            host,
            pid: std::process::id(),
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }
}

pub fn format_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

pub fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

impl CompletionRecord {
    /// The record an upload writes before rclone starts.
    pub fn in_progress(started_at: DateTime<Utc>, files: u64, bytes: u64, encrypted: bool) -> Self {
        CompletionRecord {
            format: FORMAT,
            state: UploadState::InProgress,
            started_at: format_time(started_at),
            completed_at: None,
            files,
            bytes,
            encrypted,
            writer: Writer::this_process(),
            restored_as_of: None,
        }
    }

    /// The same record, for a tree that descends from a restore as of `restored_as_of`.
    pub fn descending_from(mut self, restored_as_of: Option<String>) -> Self {
        self.restored_as_of = restored_as_of;
        self
    }

    /// The same upload, finished now.
    pub fn complete(mut self) -> Self {
        self.state = UploadState::Complete;
        self.completed_at = Some(format_time(Utc::now()));
        self
    }

    pub fn started_at(&self) -> Option<DateTime<Utc>> {
        parse_time(&self.started_at)
    }

    /// One line for logs and messages.
    pub fn describe(&self) -> String {
        let finished = match &self.completed_at {
            Some(at) => format!(", completed {at}"),
            None => String::new(),
        };
        format!(
            "started {}{finished} by {} (pid {}, agent {}), {} files, {} bytes",
            self.started_at,
            self.writer.host,
            self.writer.pid,
            self.writer.version,
            self.files,
            self.bytes
        )
    }

    /// Writes the record at the top of `target`, which exists (a sync has run there).
    pub async fn write(&self, rclone: &Rclone, target: &str) -> Result<()> {
        rclone
            .write_file(&layout::join(target, layout::RECORD_NAME), self.encode()?)
            .await
    }

    /// Writes the record before a sync, when `target` may not exist yet: a bucket never
    /// written is created as the sync itself would create it, an existing one never is.
    pub async fn write_before_sync(&self, rclone: &Rclone, target: &str) -> Result<()> {
        rclone
            .write_file_creating_destination(
                target,
                &layout::join(target, layout::RECORD_NAME),
                self.encode()?,
            )
            .await
    }

    fn encode(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self)
            .map_err(|e| AgentError::Internal(format!("cannot encode the completion record: {e}")))
    }
}

/// What the completion record says about the remote, as a restore sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteState {
    /// No files and no record: nothing was ever uploaded here.
    NeverWritten,
    /// The last upload finished (the remote may still hold no files: a cleared remote).
    Complete(CompletionRecord),
    /// The last upload started and did not finish.
    Incomplete(CompletionRecord),
    /// Files but no record: written by plain rclone or an agent older than records.
    Unrecorded,
    /// A record that cannot be read: the state of the last upload is unknown.
    UnreadableRecord(String),
}

impl RemoteState {
    /// The record of the remote's last upload, finished or not.
    pub fn last_upload(&self) -> Option<&CompletionRecord> {
        match self {
            RemoteState::Complete(record) | RemoteState::Incomplete(record) => Some(record),
            _ => None,
        }
    }
}

/// The top of a remote path: the user's entries and the agent's record.
#[derive(Debug, Clone)]
pub struct RemoteSurvey {
    /// Top-level user entries (directories end in `/`).
    pub data: Vec<String>,
    pub state: RemoteState,
}

impl RemoteSurvey {
    /// One listing of the top level, plus one read of the record when there is one. Proves
    /// the remote reachable and decryptable before anything local changes.
    pub async fn take(rclone: &Rclone, target: &str) -> Result<Self> {
        let entries = rclone.list_top_level(target).await?;
        let has_record = entries.iter().any(|entry| entry == layout::RECORD_NAME);
        let data: Vec<String> = entries
            .into_iter()
            .filter(|entry| !layout::is_reserved(entry))
            .collect();
        let record = if has_record {
            let text = rclone
                .cat(&layout::join(target, layout::RECORD_NAME))
                .await?;
            Some(serde_json::from_str::<CompletionRecord>(&text).map_err(|e| e.to_string()))
        } else {
            None
        };
        let state = classify(!data.is_empty(), record);
        Ok(RemoteSurvey { data, state })
    }
}

fn classify(
    has_data: bool,
    record: Option<std::result::Result<CompletionRecord, String>>,
) -> RemoteState {
    match record {
        None if has_data => RemoteState::Unrecorded,
        None => RemoteState::NeverWritten,
        Some(Err(problem)) => RemoteState::UnreadableRecord(problem),
        Some(Ok(record)) if record.state == UploadState::Complete => RemoteState::Complete(record),
        Some(Ok(record)) => RemoteState::Incomplete(record),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip_and_tolerate_unknown_fields() {
        let record = CompletionRecord::in_progress(Utc::now(), 3, 42, true);
        let json = serde_json::to_string(&record).expect("encode");
        assert!(json.contains("\"state\":\"in-progress\""), "{json}");
        let complete = record.clone().complete();
        assert_eq!(complete.state, UploadState::Complete);
        assert!(complete.completed_at.is_some());
        let mut value: serde_json::Value = serde_json::from_str(&json).expect("json");
        value["added_by_a_newer_agent"] = serde_json::json!(true);
        let read: CompletionRecord = serde_json::from_value(value).expect("decode");
        assert_eq!(read, record);
    }

    #[test]
    fn the_remote_state_follows_files_and_record() {
        let started = CompletionRecord::in_progress(Utc::now(), 1, 1, false);
        assert_eq!(classify(false, None), RemoteState::NeverWritten);
        assert_eq!(classify(true, None), RemoteState::Unrecorded);
        assert!(matches!(
            classify(true, Some(Ok(started.clone()))),
            RemoteState::Incomplete(_)
        ));
        assert!(matches!(
            classify(false, Some(Ok(started.clone().complete()))),
            RemoteState::Complete(_)
        ));
        assert!(matches!(
            classify(true, Some(Err("bad".into()))),
            RemoteState::UnreadableRecord(_)
        ));
    }
}
