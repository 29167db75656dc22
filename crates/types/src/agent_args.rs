//! The agent's command line as the operator writes it into the injected containers: typed
//! upload and restore options that render to argv. The agent's parser (`cli.rs`) uses the
//! same flag names, and its tests parse every option rendered here, so a renamed flag fails
//! the build's tests, not a user's Pod.

/// Subcommands.
pub const CMD_UPLOAD: &str = "sync-to-remote";
pub const CMD_RESTORE: &str = "remote-to-local-sync";

/// Long flag names (without `--`).
pub mod flag {
    pub const SRC: &str = "src";
    pub const DST: &str = "dst";
    pub const NO_DELETE: &str = "no-delete";
    pub const MAX_DELETE_PERCENT: &str = "max-delete-percent";
    pub const MAX_DELETE_FILES: &str = "max-delete-files";
    pub const FORCE_DELETE_LOCAL_DIR: &str = "force-delete-local-dir";
    pub const ALLOW_INCOMPLETE: &str = "allow-incomplete";
    pub const AS_OF: &str = "as-of";
    pub const KEEP_LOCAL_IF_REMOTE_EMPTY: &str = "keep-local-if-remote-empty";
    pub const VERBOSE: &str = "verbose";
    pub const SCHEDULE: &str = "schedule";
    pub const WATCH: &str = "watch";
    pub const WATCH_MIN_INTERVAL: &str = "watch-min-interval";
    pub const FORCE_EVEN_IF_REMOTE_WOULD_BE_CLEARED: &str = "force-even-if-remote-would-be-cleared";
    pub const REQUIRE_SENTINEL: &str = "require-sentinel";
    pub const TRASH: &str = "trash";
    pub const TRASH_RETENTION_DAYS: &str = "trash-retention-days";
    pub const TRASH_KEEP: &str = "trash-keep";
    pub const STATUS_ADDR: &str = "status-addr";
    pub const STATUS_ADDR_FILE: &str = "status-addr-file";
    pub const UNHEALTHY_AFTER_FAILURES: &str = "unhealthy-after-failures";
    pub const WRITER_LEASE_URL: &str = "writer-lease-url";
    pub const PREFER_PRIMARY: &str = "prefer-primary";
    pub const SYNC_REQUESTS_URL: &str = "sync-requests-url";
}

/// The deletion limits of both directions; None: the agent's default.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletionLimits {
    pub max_percent: Option<u8>,
    pub max_files: Option<u64>,
}

/// `remote-to-local-sync`, as the restore init container runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RestoreArgs {
    pub src: String,
    pub dst: String,
    pub no_delete: bool,
    pub force_delete_local_dir: bool,
    pub limits: DeletionLimits,
    pub allow_incomplete: bool,
    /// RFC 3339.
    pub as_of: Option<String>,
    pub keep_local_if_remote_empty: bool,
    pub verbose: bool,
}

/// The trash of uploads: what a sync deletes or overwrites is kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TrashArgs {
    pub retention_days: u32,
    pub keep: u32,
}

/// Where the sidecar serves `/healthz` and `/metrics`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StatusArgs {
    /// `host:port`.
    pub addr: String,
    /// Where the agent writes the address it bound (for a port chosen at start).
    pub addr_file: Option<String>,
    pub unhealthy_after_failures: Option<u32>,
}

/// One writer per remote path: the sidecar uploads only while it holds the writer lease.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriterLeaseArgs {
    /// The operator's writer-lease endpoint (`http://.../writer-lease`).
    pub url: String,
    /// The Pod asked to be preferred as the primary.
    pub preferred: bool,
}

/// `sync-to-remote`, as the sidecar runs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UploadArgs {
    pub src: String,
    pub dst: String,
    pub schedule: Option<String>,
    pub watch: bool,
    /// With `watch`: at most one sync per this many minutes.
    pub watch_min_interval_minutes: Option<u32>,
    pub no_delete: bool,
    pub force_even_if_remote_would_be_cleared: bool,
    pub limits: DeletionLimits,
    pub require_sentinel: Option<String>,
    pub trash: Option<TrashArgs>,
    pub status: Option<StatusArgs>,
    pub writer_lease: Option<WriterLeaseArgs>,
    /// Without a writer lease: the operator's endpoint that tells of `sync-now` requests
    /// (`http://.../sync-requests`).
    pub sync_requests_url: Option<String>,
    pub verbose: bool,
}

/// Builds an argv: `--flag`, `--flag value`.
struct Argv(Vec<String>);

impl Argv {
    fn new(command: &str) -> Self {
        Argv(vec![command.to_string()])
    }
    fn switch(&mut self, name: &str, on: bool) {
        if on {
            self.0.push(format!("--{name}"));
        }
    }
    fn value(&mut self, name: &str, value: Option<impl ToString>) {
        if let Some(value) = value {
            self.0.push(format!("--{name}"));
            self.0.push(value.to_string());
        }
    }
    fn limits(&mut self, limits: &DeletionLimits) {
        self.value(flag::MAX_DELETE_PERCENT, limits.max_percent);
        self.value(flag::MAX_DELETE_FILES, limits.max_files);
    }
}

impl RestoreArgs {
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = Argv::new(CMD_RESTORE);
        argv.value(flag::SRC, Some(&self.src));
        argv.value(flag::DST, Some(&self.dst));
        argv.switch(flag::NO_DELETE, self.no_delete);
        argv.switch(flag::FORCE_DELETE_LOCAL_DIR, self.force_delete_local_dir);
        argv.limits(&self.limits);
        argv.switch(flag::ALLOW_INCOMPLETE, self.allow_incomplete);
        argv.value(flag::AS_OF, self.as_of.as_ref());
        argv.switch(
            flag::KEEP_LOCAL_IF_REMOTE_EMPTY,
            self.keep_local_if_remote_empty,
        );
        argv.switch(flag::VERBOSE, self.verbose);
        argv.0
    }
}

impl UploadArgs {
    pub fn to_argv(&self) -> Vec<String> {
        let mut argv = Argv::new(CMD_UPLOAD);
        argv.value(flag::SRC, Some(&self.src));
        argv.value(flag::DST, Some(&self.dst));
        argv.switch(flag::WATCH, self.watch);
        let interval = self.watch_min_interval_minutes.map(|m| format!("{m}m"));
        argv.value(flag::WATCH_MIN_INTERVAL, interval);
        argv.value(flag::SCHEDULE, self.schedule.as_ref());
        argv.switch(flag::NO_DELETE, self.no_delete);
        let force = self.force_even_if_remote_would_be_cleared;
        argv.switch(flag::FORCE_EVEN_IF_REMOTE_WOULD_BE_CLEARED, force);
        argv.limits(&self.limits);
        argv.value(flag::REQUIRE_SENTINEL, self.require_sentinel.as_ref());
        if let Some(trash) = &self.trash {
            argv.switch(flag::TRASH, true);
            argv.value(flag::TRASH_RETENTION_DAYS, Some(trash.retention_days));
            argv.value(flag::TRASH_KEEP, Some(trash.keep));
        }
        argv.switch(flag::VERBOSE, self.verbose);
        if let Some(status) = &self.status {
            argv.value(flag::STATUS_ADDR, Some(&status.addr));
            argv.value(flag::STATUS_ADDR_FILE, status.addr_file.as_ref());
            argv.value(
                flag::UNHEALTHY_AFTER_FAILURES,
                status.unhealthy_after_failures,
            );
        }
        if let Some(lease) = &self.writer_lease {
            argv.value(flag::WRITER_LEASE_URL, Some(&lease.url));
            argv.switch(flag::PREFER_PRIMARY, lease.preferred);
        }
        argv.value(flag::SYNC_REQUESTS_URL, self.sync_requests_url.as_ref());
        argv.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_what_is_set_is_rendered() {
        let restore = RestoreArgs {
            src: "bucket/app".into(),
            dst: "/data".into(),
            ..RestoreArgs::default()
        };
        assert_eq!(
            restore.to_argv(),
            [
                "remote-to-local-sync",
                "--src",
                "bucket/app",
                "--dst",
                "/data"
            ]
        );
        let upload = UploadArgs {
            src: "/data".into(),
            dst: "bucket/app".into(),
            watch: true,
            watch_min_interval_minutes: Some(15),
            trash: Some(TrashArgs {
                retention_days: 7,
                keep: 0,
            }),
            ..UploadArgs::default()
        };
        assert_eq!(
            upload.to_argv(),
            [
                "sync-to-remote",
                "--src",
                "/data",
                "--dst",
                "bucket/app",
                "--watch",
                "--watch-min-interval",
                "15m",
                "--trash",
                "--trash-retention-days",
                "7",
                "--trash-keep",
                "0"
            ]
        );
    }
}
