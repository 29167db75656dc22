//! The local record: a small JSON file at the top of the local directory
//! ([`layout::LOCAL_RECORD_NAME`]) that says what the agent last did there, so that a
//! persistent volume remembers it across restarts.
//!
//! * `restoring`: a restore started and has not finished (a killed init container, a power
//!   loss). The tree is partial: an upload refuses to run over it, a restore runs again.
//! * `synced`: the tree, file by file (size and modification time), as it was when local and
//!   remote last matched (after a restore, or the tree an upload sent), and which upload of
//!   the remote that was. A restore compares it with the tree now to find local changes the
//!   remote does not have (an upload that failed, a power loss before the next one) and never
//!   mirrors the remote over them.
//!
//! Written to a temporary name and renamed, so a reader sees the old record or the new one.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::MetadataExt as _;
use std::path::{Path, PathBuf};

use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::error::{AgentError, Result};
use crate::fidelity::Uncarried;
use crate::layout;
use crate::record::{CompletionRecord, format_time};

/// The record format this agent writes; a record of another format is not trusted.
const FORMAT: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LocalState {
    Restoring,
    Synced,
}

/// Which upload of the remote a tree matched: its completion record's start and writer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UploadId {
    pub started_at: String,
    pub host: String,
    pub pid: u32,
}

impl UploadId {
    pub fn of(record: &CompletionRecord) -> Self {
        UploadId {
            started_at: record.started_at.clone(),
            host: record.writer.host.clone(),
            pid: record.writer.pid,
        }
    }
}

/// A file's size, modification and change times (nanoseconds since the epoch) and inode,
/// as `[size, mtime, ctime, inode]`. The change time moves on every write, chmod, chown
/// and rename and cannot be set back by a program, so a change that restores size and
/// modification time (`touch -r`, an archive extractor) is seen too.
pub type FileStamp = (u64, i64, i64, u64);

/// Every regular file and directory below the local directory (symlinks are not followed,
/// as rclone does not), the agent's own names left out at any depth: relative path ->
/// stamp. Directory paths end in `/` (an empty directory is synced too).
pub type LocalTree = BTreeMap<String, FileStamp>;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalRecord {
    pub format: u32,
    pub state: LocalState,
    /// When the record was written (RFC 3339, UTC).
    pub at: String,
    /// When local and remote were last compared in full (a restore, or an upload that
    /// listed both sides); uploads of only the changes keep it. Empty after a restore as
    /// of an earlier time: the remote still holds a later tree, so the next upload is full.
    #[serde(default)]
    pub full_sync_at: String,
    /// The rclone path of the remote side.
    pub remote: String,
    /// The remote's upload the tree matched; `None`: the remote had no completion record.
    #[serde(default)]
    pub remote_upload: Option<UploadId>,
    /// The last sync mirrored (deleted what the other side lacked), so both sides held
    /// exactly `tree`; after a copy (`--no-delete`) the destination may hold more.
    #[serde(default)]
    pub mirrored: bool,
    #[serde(default)]
    pub tree: LocalTree,
    /// The `--as-of` time of the restore this tree descends from: set by that restore,
    /// taken over from the remote's record by a plain restore, kept by uploads (which write
    /// it into their completion record).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restored_as_of: Option<String>,
}

/// What changed in the local directory since the record was written.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LocalChanges {
    pub added: Vec<String>,
    pub modified: Vec<String>,
    pub deleted: Vec<String>,
}

impl LocalChanges {
    /// The changed files (directories, whose times move with their entries, are left out).
    pub fn between(recorded: &LocalTree, now: &LocalTree) -> Self {
        let files = |tree: &LocalTree| -> LocalTree {
            tree.iter()
                .filter(|(path, _)| !path.ends_with('/'))
                .map(|(path, stamp)| (path.clone(), *stamp))
                .collect()
        };
        let (recorded, now) = (&files(recorded), &files(now));
        let mut changes = LocalChanges::default();
        for (path, stamp) in now {
            match recorded.get(path) {
                None => changes.added.push(path.clone()),
                Some(old) if old != stamp => changes.modified.push(path.clone()),
                Some(_) => {}
            }
        }
        changes.deleted = recorded
            .keys()
            .filter(|path| !now.contains_key(*path))
            .cloned()
            .collect();
        changes
    }

    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.modified.is_empty() && self.deleted.is_empty()
    }

    /// Counts and up to 5 names, for logs and refusals.
    pub fn describe(&self) -> String {
        let names: Vec<&String> = self
            .added
            .iter()
            .chain(&self.modified)
            .chain(&self.deleted)
            .take(5)
            .collect();
        let names: Vec<String> = names.iter().map(|name| format!("'{name}'")).collect();
        format!(
            "{} added, {} modified, {} deleted: {}",
            self.added.len(),
            self.modified.len(),
            self.deleted.len(),
            names.join(", ")
        )
    }
}

impl LocalRecord {
    fn path(dir: &Path) -> PathBuf {
        dir.join(layout::LOCAL_RECORD_NAME)
    }

    /// The record in `dir`, if there is one this agent can trust. An unreadable one is
    /// logged and treated as absent: the checks then fall back to those of a volume without
    /// a record.
    pub fn read(dir: &Path) -> Result<Option<Self>> {
        let path = Self::path(dir);
        let text = match fs::read(&path) {
            Ok(text) => text,
            // A record this user cannot read is not one this agent wrote.
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::NotFound | std::io::ErrorKind::PermissionDenied
                ) =>
            {
                return Ok(None);
            }
            Err(e) => return Err(AgentError::io("cannot read the local record", path, e)),
        };
        match serde_json::from_slice::<LocalRecord>(&text) {
            Ok(record) if record.format == FORMAT => Ok(Some(record)),
            Ok(record) => {
                tracing::warn!(path = %path.display(), format = record.format, "the local record has a format this agent does not know; ignored");
                Ok(None)
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "the local record cannot be read; ignored");
                Ok(None)
            }
        }
    }

    /// The record of a restore that starts now into `dir`.
    pub fn restoring(remote: &str) -> Self {
        LocalRecord {
            format: FORMAT,
            state: LocalState::Restoring,
            at: format_time(Utc::now()),
            full_sync_at: String::new(),
            remote: remote.to_string(),
            remote_upload: None,
            mirrored: false,
            tree: LocalTree::new(),
            restored_as_of: None,
        }
    }

    /// The record of local and remote matching: `tree` is what both hold (with `mirrored`
    /// false, what the destination holds at least).
    pub fn synced(
        remote: &str,
        remote_upload: Option<UploadId>,
        mirrored: bool,
        tree: LocalTree,
    ) -> Self {
        let now = format_time(Utc::now());
        LocalRecord {
            format: FORMAT,
            state: LocalState::Synced,
            full_sync_at: now.clone(),
            at: now,
            remote: remote.to_string(),
            remote_upload,
            mirrored,
            tree,
            restored_as_of: None,
        }
    }

    /// The record of a restore as of `as_of`: the tree of that time, which the remote does
    /// not hold as its current tree (so no upload of it is matched, and no full sync done).
    pub fn after_restore_as_of(
        remote: &str,
        as_of: String,
        mirrored: bool,
        tree: LocalTree,
    ) -> Self {
        LocalRecord {
            full_sync_at: String::new(),
            restored_as_of: Some(as_of),
            ..Self::synced(remote, None, mirrored, tree)
        }
    }

    /// The same record, for a tree that descends from a restore as of `restored_as_of`.
    pub fn descending_from(mut self, restored_as_of: Option<String>) -> Self {
        self.restored_as_of = restored_as_of;
        self
    }

    /// The same record after an upload of only the changes: the last full sync stays what
    /// it was.
    pub fn keeping_full_sync_of(mut self, previous: &LocalRecord) -> Self {
        self.full_sync_at.clone_from(&previous.full_sync_at);
        self
    }

    pub fn write(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let temporary = dir.join(format!("{}.tmp", layout::LOCAL_RECORD_NAME));
        let failed = |e| AgentError::io("cannot write the local record", &temporary, e);
        // Streamed: a tree of a million entries is not held a second time as text.
        let mut file = std::io::BufWriter::new(fs::File::create(&temporary).map_err(failed)?);
        serde_json::to_writer(&mut file, self).map_err(|e| failed(e.into()))?;
        file.into_inner()
            .map_err(|e| failed(e.into_error()))?
            .sync_all()
            .map_err(failed)?;
        fs::rename(&temporary, &path)
            .map_err(|e| AgentError::io("cannot write the local record", &path, e))
    }
}

/// The local tree now. Entries that vanish while it is read are left out (an app may delete
/// files at any time).
pub fn scan(dir: &Path) -> Result<LocalTree> {
    scan_noting(dir, &mut Uncarried::default())
}

/// [`scan`], noting in `uncarried` what a sync of the tree leaves behind.
pub fn scan_noting(dir: &Path, uncarried: &mut Uncarried) -> Result<LocalTree> {
    let mut tree = LocalTree::new();
    let mut pending = vec![PathBuf::new()];
    while let Some(relative) = pending.pop() {
        let entries = match fs::read_dir(dir.join(&relative)) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(AgentError::io("cannot list", dir.join(&relative), e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| AgentError::io("cannot list", dir.join(&relative), e))?;
            let name = relative.join(entry.file_name());
            // What rclone's filter leaves out, so the tree is what a sync would send.
            if layout::is_excluded_name(&entry.file_name()) {
                continue;
            }
            let Ok(metadata) = entry.metadata() else {
                continue;
            };
            let key = tree_key(&name);
            if entry.file_name().to_str().is_none() {
                uncarried.note_non_utf8_name(&key);
            }
            uncarried.note(&key, &metadata);
            if metadata.is_dir() {
                tree.insert(format!("{key}/"), stamp(&metadata, 0));
                pending.push(name);
            } else if metadata.is_file() {
                tree.insert(key, stamp(&metadata, metadata.len()));
            }
        }
    }
    Ok(tree)
}

/// Marks the key of a path that is not UTF-8: a NUL, which no file name holds.
pub const NON_UTF8_MARK: char = '\0';

/// The tree's key for a relative path: the path itself, or for one that is not UTF-8 its
/// lossy text, [`NON_UTF8_MARK`] and its bytes in hex, so that two such names never share
/// a key (a change to one is never hidden by the other). Such a key is no rclone path:
/// a tree that holds one is synced in full.
fn tree_key(path: &Path) -> String {
    use std::os::unix::ffi::OsStrExt as _;
    if let Some(text) = path.to_str() {
        text.to_owned()
    } else {
        let hex: String = path
            .as_os_str()
            .as_bytes()
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect();
        format!("{}{NON_UTF8_MARK}{hex}", path.to_string_lossy())
    }
}

/// Whether every path of `tree` is one rclone can be given by name.
pub fn names_are_utf8(tree: &LocalTree) -> bool {
    !tree.keys().any(|key| key.contains(NON_UTF8_MARK))
}

fn stamp(metadata: &fs::Metadata, size: u64) -> FileStamp {
    // i64 nanoseconds reach the year 2262; 16 bytes less per entry than i128 (a tree of
    // a million files is held in memory twice while it is compared).
    let nanos =
        |seconds: i64, nanos: i64| seconds.saturating_mul(1_000_000_000).saturating_add(nanos);
    (
        size,
        nanos(metadata.mtime(), metadata.mtime_nsec()),
        nanos(metadata.ctime(), metadata.ctime_nsec()),
        metadata.ino(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_are_added_modified_and_deleted_files() {
        let recorded: LocalTree = [
            ("a".into(), (1, 10, 10, 1)),
            ("b".into(), (2, 20, 20, 2)),
            ("d/".into(), (0, 5, 5, 4)),
        ]
        .into();
        let now: LocalTree = [
            ("a".into(), (1, 10, 11, 1)),
            ("c".into(), (3, 30, 30, 3)),
            ("d/".into(), (0, 6, 6, 4)),
        ]
        .into();
        let changes = LocalChanges::between(&recorded, &now);
        assert_eq!(changes.added, vec!["c"]);
        assert_eq!(changes.modified, vec!["a"]);
        assert_eq!(changes.deleted, vec!["b"]);
        assert!(LocalChanges::between(&now, &now).is_empty());
    }

    #[test]
    fn the_record_round_trips_and_leaves_itself_out_of_the_tree() {
        let dir = tempfile::tempdir().expect("temp dir");
        fs::create_dir(dir.path().join("sub")).expect("mkdir");
        fs::write(dir.path().join("sub/file"), "data").expect("write");
        let tree = scan(dir.path()).expect("scan");
        let record = LocalRecord::synced("remote:/b", None, true, tree.clone());
        record.write(dir.path()).expect("write record");
        assert_eq!(scan(dir.path()).expect("scan again"), tree);
        assert_eq!(tree.keys().collect::<Vec<_>>(), vec!["sub/", "sub/file"]);
        assert_eq!(LocalRecord::read(dir.path()).expect("read"), Some(record));
    }
}
