//! The agent's own names inside a remote path, and the rclone filter that keeps them out of
//! every transfer, listing and check, in both directions.
//!
//! ```text
//! <remote path>/.volume-syncing-controller.json            completion record (record.rs)
//! <remote path>/.volume-syncing-controller.trash/          trash (trash.rs), with --trash
//!     .volume-syncing-controller.json                      where the version history starts
//!     20261124T180000.123Z/                                what the sync of that time replaced
//!         .volume-syncing-controller.json                  the paths that sync added and deleted
//!         <old versions, at their paths>
//! ```
//!
//! Everything lives *inside* the remote path, so with encryption it is inside the crypt
//! remote too (names and contents encrypted), and a bucket root works like any other path.
//! rclone allows a `--backup-dir` inside the destination when a filter excludes it.
//!
//! The local directory holds one name of the agent's: the local record
//! (`.volume-syncing-controller.local.json`, local_record.rs), never uploaded.

/// The completion record at the top of the remote path; the same name marks the agent's
/// small JSON files inside the trash.
pub const RECORD_NAME: &str = ".volume-syncing-controller.json";

/// The trash directory at the top of the remote path.
pub const TRASH_DIR: &str = ".volume-syncing-controller.trash";

/// The local record at the top of the local directory (and its temporary name while it is
/// replaced: `<name>.tmp`).
pub const LOCAL_RECORD_NAME: &str = ".volume-syncing-controller.local.json";

/// `--exclude` rules for every sync, copy, listing and check of user data. They are not
/// anchored to the top, so a record or trash under a sub-path (a restore of a parent path)
/// never becomes user data either.
pub fn exclude_args() -> [String; 6] {
    [
        "--exclude".to_string(),
        RECORD_NAME.to_string(),
        "--exclude".to_string(),
        format!("{TRASH_DIR}/**"),
        "--exclude".to_string(),
        format!("{LOCAL_RECORD_NAME}*"),
    ]
}

/// Whether an entry's name, at any depth, is one the filter of [`exclude_args`] leaves out.
pub fn is_excluded_name(name: &std::ffi::OsStr) -> bool {
    is_local_reserved(name) || name == RECORD_NAME || name == TRASH_DIR
}

/// Whether a top-level name of the local directory is the agent's own (the local record).
pub fn is_local_reserved(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|name| name.starts_with(LOCAL_RECORD_NAME))
}

/// Whether a top-level entry of `rclone lsf` (directories end in `/`) is the agent's own.
pub fn is_reserved(entry: &str) -> bool {
    let name = entry.trim_end_matches('/');
    name == RECORD_NAME || name == TRASH_DIR
}

/// `relative` below an rclone path: `remote:/b/dir` + `x` -> `remote:/b/dir/x`,
/// `remote_encrypted:` + `x` -> `remote_encrypted:x`.
pub fn join(base: &str, relative: &str) -> String {
    if base.ends_with(':') || base.ends_with('/') {
        format!("{base}{relative}")
    } else {
        format!("{base}/{relative}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_rclone_paths_of_every_shape() {
        assert_eq!(join("remote:/b/dir", "x"), "remote:/b/dir/x");
        assert_eq!(join("remote_encrypted:", "x"), "remote_encrypted:x");
        assert_eq!(join("remote:/", "x"), "remote:/x");
        assert_eq!(join("/tmp/local", "x/y"), "/tmp/local/x/y");
    }

    #[test]
    fn only_the_agents_names_are_reserved() {
        assert!(is_reserved(RECORD_NAME));
        assert!(is_reserved(&format!("{TRASH_DIR}/")));
        assert!(!is_reserved("data.json"));
        assert!(!is_reserved(".volume-syncing-controller.json.bak"));
    }
}
