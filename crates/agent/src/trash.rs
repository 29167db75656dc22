//! `--trash`: what an upload deletes or overwrites on the remote is moved to a dated
//! directory (rclone `--backup-dir`) instead of being lost; the agent purges old ones.
//!
//! Each dated directory `<trash>/<stamp>/` holds the versions that the sync started at
//! `<stamp>` replaced or deleted, at their paths, plus a change log
//! ([`layout::RECORD_NAME`]) with the paths that sync added and deleted, written before
//! rclone starts. The versions and the change logs are what `--as-of` (as_of.rs) needs to
//! rebuild the tree of an earlier time. The marker `<trash>/.volume-syncing-controller.json`
//! says from when on that history is complete: the first sync with `--trash`, moved forward
//! when retention purges versions.

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};
use crate::layout;
use crate::rclone::Rclone;
use crate::record::{format_time, parse_time};

/// Dated directory names: ISO 8601 basic format in UTC, sortable, no `:` (any backend).
const STAMP_FORMAT: &str = "%Y%m%dT%H%M%S%.3fZ";

pub fn stamp_name(time: DateTime<Utc>) -> String {
    time.format(STAMP_FORMAT).to_string()
}

pub fn parse_stamp(name: &str) -> Option<DateTime<Utc>> {
    NaiveDateTime::parse_from_str(name.trim_end_matches('/'), STAMP_FORMAT)
        .ok()
        .map(|naive| naive.and_utc())
}

/// `--trash-retention-days` / `--trash-keep`; 0 turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub days: u32,
    pub keep: u32,
}

/// The paths one sync added and deleted (its change log).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Changes {
    /// The dated directory (stamp) of the sync.
    pub sync: String,
    #[serde(default)]
    pub added: Vec<String>,
    #[serde(default)]
    pub deleted: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct HistoryMarker {
    /// From this time on, every change is in the trash (RFC 3339).
    history_since: String,
}

/// `<remote>/.volume-syncing-controller.trash`
pub fn root(remote: &str) -> String {
    layout::join(remote, layout::TRASH_DIR)
}

/// The `--backup-dir` of the sync started at `stamp`.
pub fn backup_dir(remote: &str, stamp: DateTime<Utc>) -> String {
    layout::join(&root(remote), &stamp_name(stamp))
}

/// The trash of one remote path as it stands.
#[derive(Debug, Clone, Default)]
pub struct TrashState {
    /// Dated directories, oldest first.
    pub versions: Vec<(DateTime<Utc>, String)>,
    /// Where the complete history starts; `None`: no history (never synced with --trash).
    pub history_since: Option<DateTime<Utc>>,
}

impl TrashState {
    /// One listing of the trash root, plus one read of the marker when there is one.
    pub async fn read(rclone: &Rclone, remote: &str) -> Result<Self> {
        let root = root(remote);
        let entries = rclone.list_top_level(&root).await?;
        let mut versions: Vec<(DateTime<Utc>, String)> = entries
            .iter()
            .filter(|entry| entry.ends_with('/'))
            .filter_map(|entry| {
                let name = entry.trim_end_matches('/');
                if let Some(time) = parse_stamp(name) { Some((time, name.to_string())) } else {
                    tracing::warn!(entry = %name, trash = %root, "ignoring a directory in the trash that the agent did not write");
                    None
                }
            })
            .collect();
        versions.sort();
        let history_since = if entries.iter().any(|entry| entry == layout::RECORD_NAME) {
            let text = rclone
                .cat(&layout::join(&root, layout::RECORD_NAME))
                .await?;
            let marker: HistoryMarker = serde_json::from_str(&text).map_err(|e| {
                AgentError::Internal(format!("the trash marker in {root} is unreadable: {e}"))
            })?;
            Some(parse_time(&marker.history_since).ok_or_else(|| {
                AgentError::Internal(format!(
                    "the trash marker in {root} holds no RFC 3339 time: {}",
                    marker.history_since
                ))
            })?)
        } else {
            None
        };
        Ok(TrashState {
            versions,
            history_since,
        })
    }
}

/// Before an upload: writes the change log of the sync started at `stamp`, when it adds or
/// deletes anything.
pub async fn log_changes(
    rclone: &Rclone,
    remote: &str,
    stamp: DateTime<Utc>,
    added: Vec<String>,
    deleted: Vec<String>,
) -> Result<()> {
    if added.is_empty() && deleted.is_empty() {
        return Ok(());
    }
    let changes = Changes {
        sync: stamp_name(stamp),
        added,
        deleted,
    };
    write_json(
        rclone,
        &layout::join(&backup_dir(remote, stamp), layout::RECORD_NAME),
        &changes,
    )
    .await
}

/// After a successful upload: starts the history if it has not started, purges what the
/// retention no longer keeps, and moves the start of the history past what was purged.
pub async fn maintain(
    rclone: &Rclone,
    remote: &str,
    stamp: DateTime<Utc>,
    retention: Retention,
) -> Result<()> {
    let state = TrashState::read(rclone, remote).await?;
    let purge = expired(&state.versions, retention, Utc::now());
    let root = root(remote);
    for (_, name) in &purge {
        tracing::info!(version = %name, trash = %root, "purging a trash version past its retention");
        rclone.purge(&layout::join(&root, name)).await?;
    }
    let mut since = state.history_since.unwrap_or(stamp);
    if let Some((newest_purged, _)) = purge.last() {
        since = since.max(*newest_purged);
    }
    if state.history_since != Some(since) {
        let marker = HistoryMarker {
            history_since: format_time(since),
        };
        write_json(rclone, &layout::join(&root, layout::RECORD_NAME), &marker).await?;
    }
    Ok(())
}

/// The versions (oldest first) that `retention` no longer keeps at `now`.
fn expired(
    versions: &[(DateTime<Utc>, String)],
    retention: Retention,
    now: DateTime<Utc>,
) -> Vec<(DateTime<Utc>, String)> {
    let over_count = match retention.keep {
        0 => 0,
        keep => versions.len().saturating_sub(keep as usize),
    };
    let cutoff = now - chrono::Duration::days(i64::from(retention.days));
    versions
        .iter()
        .enumerate()
        .filter(|(index, (time, _))| *index < over_count || (retention.days > 0 && *time < cutoff))
        .map(|(_, version)| version.clone())
        .collect()
}

async fn write_json<T: Serialize>(rclone: &Rclone, target: &str, value: &T) -> Result<()> {
    let json = serde_json::to_vec(value)
        .map_err(|e| AgentError::Internal(format!("cannot encode {target}: {e}")))?;
    rclone.write_file(target, json).await
}

/// Every change log under the trash (one `rclone cat` for all), by stamp.
pub async fn read_change_logs(
    rclone: &Rclone,
    remote: &str,
) -> Result<std::collections::BTreeMap<String, Changes>> {
    let root = root(remote);
    let text = rclone
        .cat_matching(&root, &format!("/*/{}", layout::RECORD_NAME))
        .await?;
    serde_json::Deserializer::from_str(&text)
        .into_iter::<Changes>()
        .map(|changes| changes.map(|changes| (changes.sync.clone(), changes)))
        .collect::<std::result::Result<_, _>>()
        .map_err(|e| AgentError::Internal(format!("a change log in {root} is unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        parse_time(text).expect("time")
    }

    #[test]
    fn stamps_round_trip_and_sort_by_time() {
        let time = at("2026-11-24T18:05:01.250Z");
        let name = stamp_name(time);
        assert_eq!(name, "20261124T180501.250Z");
        assert_eq!(parse_stamp(&name), Some(time));
        assert_eq!(parse_stamp(&format!("{name}/")), Some(time));
        assert!(stamp_name(at("2026-11-24T18:05:02Z")) > name);
        assert_eq!(parse_stamp("photos"), None);
    }

    #[test]
    fn retention_purges_the_oldest_by_count_and_by_age() {
        let now = at("2026-11-30T00:00:00Z");
        let versions: Vec<(DateTime<Utc>, String)> =
            ["2026-11-01", "2026-11-20", "2026-11-28", "2026-11-29"]
                .iter()
                .map(|day| {
                    let time = at(&format!("{day}T00:00:00Z"));
                    (time, stamp_name(time))
                })
                .collect();
        let names = |expired: Vec<(DateTime<Utc>, String)>| -> Vec<String> {
            expired
                .into_iter()
                .map(|(time, _)| format_time(time)[..10].to_string())
                .collect()
        };
        let by_age = Retention { days: 7, keep: 0 };
        assert_eq!(
            names(expired(&versions, by_age, now)),
            ["2026-11-01", "2026-11-20"]
        );
        let by_count = Retention { days: 0, keep: 3 };
        assert_eq!(names(expired(&versions, by_count, now)), ["2026-11-01"]);
        let both = Retention { days: 30, keep: 1 };
        assert_eq!(
            names(expired(&versions, both, now)),
            ["2026-11-01", "2026-11-20", "2026-11-28"]
        );
        let unlimited = Retention { days: 0, keep: 0 };
        assert!(expired(&versions, unlimited, now).is_empty());
    }
}
