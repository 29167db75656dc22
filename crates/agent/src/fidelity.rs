//! What a sync does not carry, noticed by the local scan and said at WARN before an upload
//! (RELIABILITY.md, "Fidelity"): symlinks and special files (rclone skips them), directory
//! modes and the setuid, setgid and sticky bits (not stored), and empty directories on
//! bucket storage (it has no directories). Also what costs more than it seems: names that
//! are not UTF-8 make every upload a full one.

use std::fs::Metadata;
use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};
use std::sync::Mutex;

use crate::local_record::LocalTree;

/// How many paths a warning names.
const EXAMPLES: usize = 3;
/// The mode a restore gives the directories it creates (rclone's 0777 under umask 022).
const RESTORED_DIRECTORY_MODE: u32 = 0o755;
const SPECIAL_BITS: u32 = 0o7000;
/// rclone backends with no directories of their own: an empty directory is not stored.
const BUCKET_BACKENDS: [&str; 9] = [
    "s3",
    "gcs",
    "google cloud storage",
    "azureblob",
    "b2",
    "swift",
    "oos",
    "qingstor",
    "storj",
];

/// Whether the rclone backend `kind` (a config's `type`) stores empty directories.
pub fn keeps_empty_directories(kind: &str) -> bool {
    !BUCKET_BACKENDS.contains(&kind.trim().to_ascii_lowercase().as_str())
}

/// A count of the paths of one kind, and the first few of them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Examples {
    pub count: usize,
    pub first: Vec<String>,
}

impl Examples {
    fn add(&mut self, path: impl FnOnce() -> String) {
        self.count += 1;
        if self.first.len() < EXAMPLES {
            self.first.push(path());
        }
    }

    fn describe(&self) -> String {
        let more = if self.count > self.first.len() {
            ", ..."
        } else {
            ""
        };
        format!("{} ({}{more})", self.count, self.first.join(", "))
    }
}

/// What the scan saw that an upload will not carry.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Uncarried {
    pub symlinks: Examples,
    /// FIFOs, sockets and device nodes.
    pub special_files: Examples,
    /// Directories whose mode a restore would not give back.
    pub directory_modes: Examples,
    /// Files with the setuid, setgid or sticky bit.
    pub special_bits: Examples,
    /// Names that are not UTF-8: carried, but only by a full sync.
    pub non_utf8_names: Examples,
}

impl Uncarried {
    /// Notes the entry at `path` (relative) if a sync leaves part of it behind.
    pub fn note(&mut self, path: &str, metadata: &Metadata) {
        let kind = metadata.file_type();
        let mode = metadata.permissions().mode() & 0o7777;
        if kind.is_symlink() {
            self.symlinks.add(|| path.to_string());
        } else if kind.is_fifo()
            || kind.is_socket()
            || kind.is_block_device()
            || kind.is_char_device()
        {
            self.special_files.add(|| path.to_string());
        } else if kind.is_dir() && mode != RESTORED_DIRECTORY_MODE {
            self.directory_modes.add(|| format!("{path}/ {mode:04o}"));
        } else if kind.is_file() && mode & SPECIAL_BITS != 0 {
            self.special_bits.add(|| format!("{path} {mode:04o}"));
        }
    }

    pub fn note_non_utf8_name(&mut self, key: &str) {
        let lossy = key
            .split(crate::local_record::NON_UTF8_MARK)
            .next()
            .unwrap_or(key);
        self.non_utf8_names.add(|| lossy.to_string());
    }

    /// One line per kind that a sync to a remote leaves behind.
    pub fn warnings(&self, tree: &LocalTree, empty_directories_kept: bool) -> Vec<String> {
        let mut lines = Vec::new();
        let mut say = |examples: &Examples, what: &str| {
            if examples.count > 0 {
                lines.push(format!("{what}: {}", examples.describe()));
            }
        };
        say(
            &self.symlinks,
            "symlinks are not uploaded (rclone skips them)",
        );
        say(
            &self.special_files,
            "FIFOs, sockets and device files are not uploaded",
        );
        say(
            &self.directory_modes,
            "directory modes are not kept: a restore creates directories with mode 0755",
        );
        say(
            &self.special_bits,
            "setuid, setgid and sticky bits are not kept: a restore gives these files their mode without them",
        );
        say(
            &self.non_utf8_names,
            "names that are not UTF-8 are uploaded, but only by full syncs: every upload of this tree is a full one",
        );
        if !empty_directories_kept {
            say(
                &empty_directories(tree),
                "empty directories are not kept: bucket storage has no directories, so a restore does not create them",
            );
        }
        lines
    }
}

fn empty_directories(tree: &LocalTree) -> Examples {
    let mut empty = Examples::default();
    let mut entries = tree.keys().peekable();
    while let Some(path) = entries.next() {
        let has_children = entries
            .peek()
            .is_some_and(|next| next.starts_with(path.as_str()));
        if path.ends_with('/') && !has_children {
            empty.add(|| path.clone());
        }
    }
    empty
}

/// The warnings last said, so that a sidecar says them once, and again only when they change.
static LAST_SAID: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Says `warnings` at WARN unless they are the ones this process said last.
pub fn warn_once(warnings: Vec<String>, local: &std::path::Path) {
    let Ok(mut last) = LAST_SAID.lock() else {
        return;
    };
    if *last == warnings {
        return;
    }
    for warning in &warnings {
        tracing::warn!(local = %local.display(), "{warning}");
    }
    *last = warnings;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    fn noted(dir: &std::path::Path) -> Uncarried {
        let mut uncarried = Uncarried::default();
        for entry in fs::read_dir(dir).expect("list") {
            let entry = entry.expect("entry");
            let metadata = fs::symlink_metadata(entry.path()).expect("metadata");
            uncarried.note(&entry.file_name().to_string_lossy(), &metadata);
        }
        uncarried
    }

    #[test]
    fn symlinks_directory_modes_and_special_bits_are_noted() {
        let dir = tempfile::tempdir().expect("temp dir");
        let root = dir.path();
        fs::write(root.join("plain"), "x").expect("write");
        symlink("plain", root.join("link")).expect("symlink");
        for (name, mode) in [("private", 0o700), ("shared", 0o1777), ("usual", 0o755)] {
            fs::create_dir(root.join(name)).expect("mkdir");
            fs::set_permissions(root.join(name), fs::Permissions::from_mode(mode)).expect("chmod");
        }
        fs::write(root.join("tool"), "x").expect("write");
        fs::set_permissions(root.join("tool"), fs::Permissions::from_mode(0o4755)).expect("chmod");
        let uncarried = noted(root);
        assert_eq!(uncarried.symlinks.first, vec!["link"]);
        let mut modes = uncarried.directory_modes.first.clone();
        modes.sort();
        assert_eq!(modes, vec!["private/ 0700", "shared/ 1777"]);
        assert_eq!(uncarried.special_bits.first, vec!["tool 4755"]);
        assert_eq!(uncarried.special_files.count, 0);
    }

    #[test]
    fn empty_directories_are_named_only_for_bucket_storage() {
        let tree: LocalTree = [
            ("a/".to_string(), (0, 0, 0, 1)),
            ("a/file".to_string(), (1, 0, 0, 2)),
            ("empty/".to_string(), (0, 0, 0, 3)),
            ("nested/".to_string(), (0, 0, 0, 4)),
            ("nested/inner/".to_string(), (0, 0, 0, 5)),
        ]
        .into();
        let warnings = Uncarried::default().warnings(&tree, false);
        assert_eq!(warnings.len(), 1);
        assert!(
            warnings[0].ends_with(": 2 (empty/, nested/inner/)"),
            "{warnings:?}"
        );
        assert!(Uncarried::default().warnings(&tree, true).is_empty());
        assert!(!keeps_empty_directories("s3"));
        assert!(keeps_empty_directories("local"));
    }
}
