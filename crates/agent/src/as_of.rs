//! `remote-to-local-sync --as-of <time>`: which files the remote held at a past time, and
//! where each one's version of that time is now, rebuilt from the trash (trash.rs).
//!
//! The syncs that started after `time` are undone, newest first: the paths each one added
//! are taken out of the current tree and the paths it deleted are put back (its change
//! log). The version of a path at `time` is the one the first of those syncs moved to its
//! trash directory (it replaced or deleted that version), and the current one when none
//! did. This is exact for changes made by syncs with `--trash`, from the start of the
//! history on; a time during a sync counts as after it.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};

use crate::error::{AgentError, Result};
use crate::layout;
use crate::rclone::{FileListing, Rclone};
use crate::record::format_time;
use crate::trash::{self, Changes, TrashState};

/// The tree of a past time and where its files are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rebuilt {
    /// Every file of the tree at that time.
    pub tree: BTreeSet<String>,
    /// The files whose version is the current one.
    pub from_current: Vec<String>,
    /// The files whose version is in a trash directory: rclone path of the directory ->
    /// paths below it.
    pub from_trash: BTreeMap<String, Vec<String>>,
    /// Files of the tree whose version is gone (deleted by hand, or purged): left out.
    pub lost: Vec<String>,
}

/// The tree of `remote` at `when`; `None` when no sync changed anything since, so the
/// current tree is that tree.
pub async fn rebuild(
    rclone: &Rclone,
    remote: &str,
    when: DateTime<Utc>,
) -> Result<Option<Rebuilt>> {
    let state = TrashState::read(rclone, remote).await?;
    let since = state.history_since.ok_or_else(|| {
        AgentError::invalid(format!(
            "--as-of: there is no version history at {remote}: it is kept by sync-to-remote --trash"
        ))
    })?;
    if when < since {
        return Err(AgentError::invalid(format!(
            "--as-of {}: the version history at {remote} starts at {} (the first sync with --trash, or the newest version purged by retention); an earlier tree cannot be rebuilt",
            format_time(when),
            format_time(since)
        )));
    }
    let later: Vec<String> = state
        .versions
        .into_iter()
        .filter(|(time, _)| *time > when)
        .map(|(_, name)| name)
        .collect();
    if later.is_empty() {
        return Ok(None);
    }
    let trash_root = trash::root(remote);
    let (current, trash_files, logs) = tokio::try_join!(
        rclone.list_files(remote),
        rclone.list_files(&trash_root),
        trash::read_change_logs(rclone, remote),
    )?;
    let mut rebuilt = rebuild_from(&current, &later, &logs, &trash_files);
    rebuilt.from_trash = rebuilt
        .from_trash
        .into_iter()
        .map(|(stamp, paths)| (layout::join(&trash_root, &stamp), paths))
        .collect();
    Ok(Some(rebuilt))
}

/// The pure part of [`rebuild`]: `later` are the stamps of the syncs to undo, oldest first;
/// `trash_files` lists the trash as `<stamp>/<path>`. `from_trash` is keyed by stamp.
fn rebuild_from(
    current: &FileListing,
    later: &[String],
    logs: &BTreeMap<String, Changes>,
    trash_files: &FileListing,
) -> Rebuilt {
    let mut tree: BTreeSet<String> = current.keys().cloned().collect();
    for stamp in later.iter().rev() {
        if let Some(changes) = logs.get(stamp) {
            for added in &changes.added {
                tree.remove(added);
            }
            tree.extend(changes.deleted.iter().cloned());
        }
    }
    let mut rebuilt = Rebuilt {
        tree: BTreeSet::new(),
        from_current: Vec::new(),
        from_trash: BTreeMap::new(),
        lost: Vec::new(),
    };
    for path in &tree {
        let replaced_by = later
            .iter()
            .find(|stamp| trash_files.contains_key(&format!("{stamp}/{path}")));
        match replaced_by {
            Some(stamp) => rebuilt
                .from_trash
                .entry(stamp.clone())
                .or_default()
                .push(path.clone()),
            None if current.contains_key(path) => rebuilt.from_current.push(path.clone()),
            None => rebuilt.lost.push(path.clone()),
        }
    }
    rebuilt.tree = tree;
    rebuilt
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listing(paths: &[&str]) -> FileListing {
        paths.iter().map(|path| (path.to_string(), 1)).collect()
    }

    fn log(sync: &str, added: &[&str], deleted: &[&str]) -> (String, Changes) {
        let strings = |paths: &[&str]| paths.iter().map(std::string::ToString::to_string).collect();
        (
            sync.to_string(),
            Changes {
                sync: sync.to_string(),
                added: strings(added),
                deleted: strings(deleted),
            },
        )
    }

    /// Timeline: at t0 the remote holds {a, b}. Sync T1 overwrites a, deletes b, adds c.
    /// Sync T2 deletes c and adds b again (a new b).
    #[test]
    fn undoing_later_syncs_gives_the_tree_and_versions_of_the_time() {
        let current = listing(&["a", "b"]);
        let logs: BTreeMap<String, Changes> =
            [log("T1", &["c"], &["b"]), log("T2", &["b"], &["c"])]
                .into_iter()
                .collect();
        let trash = listing(&["T1/a", "T1/b", "T2/c"]);

        // As of t0 (before T1): a and b, both as T1 found them.
        let rebuilt = rebuild_from(&current, &["T1".into(), "T2".into()], &logs, &trash);
        assert_eq!(rebuilt.tree, ["a", "b"].map(String::from).into());
        assert_eq!(rebuilt.from_trash["T1"], ["a", "b"]);
        assert!(rebuilt.from_current.is_empty() && rebuilt.lost.is_empty());

        // Between T1 and T2: the current a (T1's), c from T2's trash, no b.
        let rebuilt = rebuild_from(&current, &["T2".into()], &logs, &trash);
        assert_eq!(rebuilt.tree, ["a", "c"].map(String::from).into());
        assert_eq!(rebuilt.from_current, ["a"]);
        assert_eq!(rebuilt.from_trash["T2"], ["c"]);
    }

    #[test]
    fn a_version_that_is_gone_is_reported_not_invented() {
        let current = listing(&[]);
        let logs: BTreeMap<String, Changes> = [log("T1", &[], &["x"])].into_iter().collect();
        let rebuilt = rebuild_from(&current, &["T1".into()], &logs, &listing(&[]));
        assert_eq!(rebuilt.lost, ["x"]);
    }
}
