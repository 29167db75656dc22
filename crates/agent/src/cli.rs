//! Command-line interface. Every flag can also come from the environment variable named in
//! its help, so the same binary runs on bare metal, in Docker and in a Pod.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use vsc_types::agent_args::{CMD_RESTORE, CMD_UPLOAD, flag};
pub use vsc_types::contract::LogFormat;
use vsc_types::contract::{
    ENV_CONFIG_PATH, ENV_FINAL_SYNC_TIMEOUT, ENV_LOCAL_PATH, ENV_LOG_FORMAT, ENV_PID_PATH,
    ENV_REMOTE_PATH, ENV_REPORT_RESOURCE, ENV_REPORT_TOKEN_FILE, ENV_REPORT_URL,
};

const AFTER_HELP: &str = "\
Configuration:
  REMOTE_<KEY>=value      becomes `key = value` in the [remote] section of the rclone config
                          (REMOTE_TYPE=s3 -> type = s3). Values are passed exactly as given.
  ENCRYPTED_<KEY>=value   becomes `key = value` in [remote_encrypted], a crypt remote over
                          `remote`. ENCRYPTED_PASSWORD / ENCRYPTED_PASSWORD2 are rclone-obscured;
                          ENCRYPTED_PASSWORD_PLAIN / ENCRYPTED_PASSWORD2_PLAIN take plain text.
                          Without ENCRYPTED_REMOTE the crypt remote wraps remote:/<remote path>.
                          An empty password (or an explicitly empty salt) is refused.
  Secrets belong in the environment: -p/-e arguments are visible in process listings.
  Errors name a variable or argument, never its value.

Remote layout:
  The agent keeps its completion record (.volume-syncing-controller.json) and, with --trash,
  its trash (.volume-syncing-controller.trash/) inside the remote path. Both names are
  excluded from every transfer, listing and check, in both directions.

Timeouts:
  rclone gets bounded defaults: listings and the agent's small files --contimeout 10s
  --timeout 15s --low-level-retries 2; transfers and checks --contimeout 10s --timeout 60s
  (idle) --low-level-retries 3 --retries 2. Setting RCLONE_CONTIMEOUT, RCLONE_TIMEOUT,
  RCLONE_LOW_LEVEL_RETRIES or RCLONE_RETRIES leaves that one to rclone. A silent or down
  endpoint fails within about a minute; a long rclone run is logged every 30 s.

Exit codes:
  0  done (verify: local and remote are identical)
  1  unexpected internal error
  2  invalid flag, environment variable or config (nothing was touched)
  3  refused by a safety valve (nothing was written or deleted): an empty source, too many
     deletions (--max-delete-percent / --max-delete-files), a missing --require-sentinel,
     a remote whose last upload did not complete (--allow-incomplete), local changes a
     restore would replace while the remote changed too (--discard-local-changes), an
     upload from a directory whose restore did not finish, a restore of rclone crypt files
     without ENCRYPTED_* variables, or files the agent cannot read
  4  rclone failed (remote unreachable, misconfigured, undecryptable, or transfer
     incomplete, or stopped by --final-sync-timeout); verify: the comparison could not be made
  5  interrupt: no running agent (no PID file, or a stale one naming another program)
  6  verify: local and remote differ
  130  aborted by a second SIGTERM / SIGINT (the running sync was stopped)";

/// Restores a directory from rclone remote storage and keeps it synced back.
#[derive(Debug, Parser)]
#[command(name = "volume-syncing-controller", version, after_help = AFTER_HELP)]
pub struct Cli {
    /// Log format: human-readable text or one JSON object per line.
    #[arg(long, global = true, env = ENV_LOG_FORMAT, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a local directory to remote storage (rclone sync; copy with --no-delete).
    #[command(after_help = AFTER_HELP)]
    #[command(name = CMD_UPLOAD)]
    SyncToRemote(SyncToRemote),
    /// Restore remote storage into a local directory (rclone sync; copy with --no-delete).
    #[command(after_help = AFTER_HELP)]
    #[command(name = CMD_RESTORE)]
    RemoteToLocalSync(RemoteToLocalSync),
    /// Ask the running agent to stop: it runs one last sync, then exits. Used as a preStop hook.
    Interrupt(Interrupt),
    /// Compare a local directory with the remote copy (rclone check; cryptcheck when
    /// encrypted) and report what differs. Changes nothing.
    #[command(after_help = AFTER_HELP)]
    Verify(Verify),
    /// Ask a running agent's status server for /healthz (exit 0: healthy, 1: not): the
    /// liveness probe of a hostNetwork Pod, whose agent binds a free loopback port.
    Health(Health),
}

#[derive(Debug, Args)]
pub struct Health {
    /// The file where the agent wrote its status address (--status-addr-file).
    #[arg(long = flag::STATUS_ADDR_FILE, env = "VSC_STATUS_ADDR_FILE")]
    pub status_addr_file: PathBuf,
}

/// The two sides of an upload, and of `verify`, which compares them.
#[derive(Debug, Args)]
pub struct UploadPaths {
    /// Local directory: what is uploaded (sync-to-remote) or compared (verify).
    #[arg(
        short = 's',
        long = flag::SRC,
        env = ENV_LOCAL_PATH,
        default_value = "./"
    )]
    pub src: PathBuf,
    /// Remote path, e.g. `bucket/some/dir` (with REMOTE_TYPE=local a directory; a relative
    /// one is relative to the working directory).
    #[arg(short = 'd', long = flag::DST, env = ENV_REMOTE_PATH)]
    pub dst: String,
}

#[derive(Debug, Args)]
pub struct SyncToRemote {
    #[command(flatten)]
    pub paths: UploadPaths,
    /// Run even if the local directory is empty, which clears the remote copy (and lifts the
    /// deletion limits for that case only).
    #[arg(short = 'f', long = flag::FORCE_EVEN_IF_REMOTE_WOULD_BE_CLEARED, env = "VSC_FORCE_EVEN_IF_REMOTE_WOULD_BE_CLEARED")]
    pub force_even_if_remote_would_be_cleared: bool,
    /// Refuse to upload (exit 3) when this file, relative to --src, is missing: put it on the
    /// volume so that an unmounted or wrong directory never replaces the remote copy.
    #[arg(long = flag::REQUIRE_SENTINEL, env = "VSC_REQUIRE_SENTINEL", value_name = "RELATIVE_PATH")]
    pub require_sentinel: Option<PathBuf>,
    #[command(flatten)]
    pub trash: TrashArgs,
    /// When nothing changed locally since the last sync (the local record's sizes, times
    /// and inodes), an upload makes no request at all, until this long after the last full
    /// sync; then it syncs in full, which also repairs what changed at the remote (comparing
    /// sizes and hashes from the remote's listing; size and time on a crypt remote). 0s:
    /// every upload is a full sync.
    #[arg(long, env = "VSC_FULL_SYNC_INTERVAL", default_value = "1h", value_parser = parse_seconds)]
    pub full_sync_interval: Duration,
    /// One writer per remote path: upload only while holding the writer lease the operator
    /// keeps at this http:// URL (set by the webhook with `syncOptions.writers: one`); asked
    /// every 10 s with the report token. Without it, this agent holds its uploads (logged,
    /// `/healthz` and the `volume_syncing_upload_held` metric say so) and keeps asking.
    #[arg(long = flag::WRITER_LEASE_URL, env = "VSC_WRITER_LEASE_URL")]
    pub writer_lease_url: Option<String>,
    /// Without a writer lease: ask the operator at this http:// URL every 10 s, with the
    /// report token, for `kubectl pfss sync-now` requests, and upload once for each (set by
    /// the webhook with `syncOptions.writers: every`; a lease holder hears of them from the
    /// lease).
    #[arg(long = flag::SYNC_REQUESTS_URL, env = "VSC_SYNC_REQUESTS_URL", conflicts_with = "writer_lease_url")]
    pub sync_requests_url: Option<String>,
    /// With --writer-lease-url: ask to be preferred as the primary writer.
    #[arg(long = flag::PREFER_PRIMARY, env = "VSC_PREFER_PRIMARY")]
    pub prefer_primary: bool,
    #[command(flatten)]
    pub common: CommonSyncArgs,
}

#[derive(Debug, Args)]
pub struct TrashArgs {
    /// Keep what a sync deletes or overwrites on the remote: it is moved to
    /// <remote path>/.volume-syncing-controller.trash/<UTC time>/ (rclone --backup-dir), and
    /// `remote-to-local-sync --as-of` can restore the tree of an earlier time.
    #[arg(long = flag::TRASH, env = "VSC_TRASH")]
    pub trash: bool,
    /// With --trash: after each successful sync, purge trash older than this many days
    /// (0: no age limit).
    #[arg(long = flag::TRASH_RETENTION_DAYS, env = "VSC_TRASH_RETENTION_DAYS", default_value_t = 30)]
    pub trash_retention_days: u32,
    /// With --trash: after each successful sync, keep only the newest N trash versions
    /// (0: no count limit).
    #[arg(long = flag::TRASH_KEEP, env = "VSC_TRASH_KEEP", default_value_t = 0)]
    pub trash_keep: u32,
}

#[derive(Debug, Args)]
pub struct RemoteToLocalSync {
    /// Remote path to restore from, e.g. `bucket/some/dir` (with REMOTE_TYPE=local a
    /// directory; a relative one is relative to the working directory).
    #[arg(short = 's', long = flag::SRC, env = ENV_REMOTE_PATH)]
    pub src: String,
    /// Local directory to restore into; created (owned by the running user) when missing.
    #[arg(short = 'd', long = flag::DST, env = ENV_LOCAL_PATH)]
    pub dst: PathBuf,
    /// Skip the safety valves: restore into a system directory, into a directory owned by
    /// someone else, or mirror an empty remote over local files.
    #[arg(short = 'n', long = flag::FORCE_DELETE_LOCAL_DIR, env = "VSC_FORCE_DELETE_LOCAL_DIR")]
    pub force_delete_local_dir: bool,
    /// Restore even when the remote's completion record says the last upload did not finish
    /// (the remote may hold a partial or mixed tree).
    #[arg(long = flag::ALLOW_INCOMPLETE, env = "VSC_ALLOW_INCOMPLETE")]
    pub allow_incomplete: bool,
    /// When the remote was never written (no files, no completion record), keep the local
    /// files instead of refusing: the first run of a volume that already holds data, which
    /// the next upload then copies to the remote (`restoreRemoteOnFirstRun: false`).
    #[arg(long = flag::KEEP_LOCAL_IF_REMOTE_EMPTY, env = "VSC_KEEP_LOCAL_IF_REMOTE_EMPTY")]
    pub keep_local_if_remote_empty: bool,
    /// Restore over local changes made since the last sync (which the agent's local record
    /// shows). Without it, such changes are kept when the remote has not changed since that
    /// sync, and the restore is refused when it has. Files added since that sync are then
    /// deleted as asked: the deletion plan does not count them (it judges the rest).
    #[arg(long, env = "VSC_DISCARD_LOCAL_CHANGES")]
    pub discard_local_changes: bool,
    /// Restore the tree as it was at this time (RFC 3339, e.g. 2026-11-24T18:00:00Z), from
    /// the trash kept by `sync-to-remote --trash`.
    #[arg(long = flag::AS_OF, env = "VSC_AS_OF", value_name = "RFC3339", value_parser = parse_time)]
    pub as_of: Option<chrono::DateTime<chrono::Utc>>,
    #[command(flatten)]
    pub common: CommonSyncArgs,
}

/// How the agent reaches the remote: the rclone config and binary. Shared by every command
/// that talks to rclone.
#[derive(Debug, Args)]
pub struct RemoteArgs {
    /// Where the rclone config is written (mode 0600, removed on exit). Default: a private
    /// temporary directory. A file already there is never overwritten or removed unless the
    /// agent wrote it: it is replaced when the run that wrote it no longer runs, used (and
    /// kept) when a running agent wrote exactly this config, and otherwise refused (exit 2;
    /// use your own with --no-template).
    #[arg(short = 'c', long, env = ENV_CONFIG_PATH)]
    pub config_path: Option<PathBuf>,

    /// Use the rclone config already at --config-path instead of writing one from the
    /// environment.
    #[arg(long, requires = "config_path")]
    pub no_template: bool,

    /// An rclone option for [remote], as `key=value` (repeatable). Overrides REMOTE_<KEY>.
    #[arg(short = 'p', long = "param", value_name = "KEY=VALUE")]
    pub params: Vec<String>,

    /// An rclone option for [remote_encrypted], as `key=value` (repeatable); any turns
    /// encryption on. Overrides ENCRYPTED_<KEY>.
    #[arg(short = 'e', long = "enc-param", value_name = "KEY=VALUE")]
    pub enc_params: Vec<String>,

    /// More output: -v logs every file rclone transfers, -vv adds rclone's debug log.
    #[arg(short = 'v', long = flag::VERBOSE, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// The rclone binary to run.
    #[arg(long, env = "VSC_RCLONE_BINARY", default_value = "rclone")]
    pub rclone_binary: PathBuf,
}

#[derive(Debug, Args)]
pub struct CommonSyncArgs {
    /// Copy instead of sync: never delete files at the destination.
    #[arg(short = 'x', long = flag::NO_DELETE, env = "VSC_NO_DELETE")]
    pub no_delete: bool,

    /// Report each sync's result to the operator at this http:// URL (set by the webhook).
    #[arg(long, env = ENV_REPORT_URL)]
    pub report_url: Option<String>,

    /// File holding the bearer token for --report-url, read at each report (the kubelet
    /// renews it in place): the Pod's service account token for the resource's audience.
    #[arg(long, env = ENV_REPORT_TOKEN_FILE)]
    pub report_token_file: Option<PathBuf>,

    /// `namespace/name` of the PodFilesystemSync the reports are about.
    #[arg(long, env = ENV_REPORT_RESOURCE)]
    pub report_resource: Option<String>,

    /// Refuse a sync (exit 3, nothing touched) that would delete more than this percentage
    /// of the files at the destination (100: no limit).
    #[arg(long = flag::MAX_DELETE_PERCENT, env = "VSC_MAX_DELETE_PERCENT", default_value_t = 50,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub max_delete_percent: u8,

    /// Refuse a sync (exit 3, nothing touched) that would delete more than this many files
    /// at the destination (0: no limit).
    #[arg(long = flag::MAX_DELETE_FILES, env = "VSC_MAX_DELETE_FILES", default_value_t = 0)]
    pub max_delete_files: u64,

    /// Skip the deletion plan (a listing of both sides before a sync): faster, but only the
    /// empty-source valves then stand between a wrong source and the destination.
    #[arg(long, env = "VSC_NO_DELETION_PLAN")]
    pub no_deletion_plan: bool,

    #[command(flatten)]
    pub remote: RemoteArgs,

    /// Keep running: sync at start, then on this schedule. Cron with seconds
    /// ('0 30 * * * *'), 5-field cron ('*/5 * * * *'), '@hourly', or '@every 1m'.
    #[arg(long = flag::SCHEDULE, env = "VSC_SCHEDULE")]
    pub schedule: Option<String>,

    /// Also sync whenever files under the local directory change (after writes settle).
    /// Only for sync-to-remote; combine with --schedule for a periodic safety net.
    #[arg(long = flag::WATCH, env = "VSC_WATCH")]
    pub watch: bool,

    /// With --watch: at most one sync per this interval (e.g. 15m), to bound network use.
    #[arg(long = flag::WATCH_MIN_INTERVAL, env = "VSC_WATCH_MIN_INTERVAL", default_value = "0s", value_parser = parse_seconds)]
    pub watch_min_interval: Duration,

    /// Serve /healthz, /readyz and Prometheus /metrics on this address (e.g. 0.0.0.0:9090).
    #[arg(long = flag::STATUS_ADDR, env = "VSC_STATUS_ADDR")]
    pub status_addr: Option<std::net::SocketAddr>,

    /// Write the address the status server listens on to this file (for `health`, and for
    /// `--status-addr 127.0.0.1:0`, where the port is chosen at start).
    #[arg(long = flag::STATUS_ADDR_FILE, env = "VSC_STATUS_ADDR_FILE", requires = "status_addr")]
    pub status_addr_file: Option<PathBuf>,

    /// /healthz answers 503 once this many syncs in a row have failed (0: never), so a
    /// liveness probe can restart a stuck sidecar.
    #[arg(long = flag::UNHEALTHY_AFTER_FAILURES, env = "VSC_UNHEALTHY_AFTER_FAILURES", default_value_t = 0)]
    pub unhealthy_after_failures: u64,

    /// PID file that `interrupt` reads [default: root: /run/volume-syncing-controller.pid;
    /// other users: $XDG_RUNTIME_DIR/volume-syncing-controller.pid when that is a directory
    /// of theirs closed to others, else <temp dir>/volume-syncing-controller-<uid>/agent.pid
    /// (a 0700 directory that must be theirs). A default that cannot be written is skipped
    /// with a warning].
    #[arg(long, env = ENV_PID_PATH)]
    pub pid_path: Option<PathBuf>,

    /// After SIGTERM / SIGINT, how long the running sync and the final one may take
    /// together; then rclone is stopped and the agent exits 4 (0: no limit). Keep it below
    /// the time the agent is given to stop (Kubernetes: terminationGracePeriodSeconds,
    /// default 30 s; the webhook sets it 5 s below the Pod's), so that it says why it stopped
    /// before it is killed.
    #[arg(long, env = ENV_FINAL_SYNC_TIMEOUT, default_value = "25s", value_parser = parse_seconds)]
    pub final_sync_timeout: Duration,

    /// How often rclone reports transfer progress during a long sync.
    #[arg(long, env = "VSC_STATS_INTERVAL", default_value = "30s", value_parser = parse_seconds)]
    pub stats_interval: Duration,
}

#[derive(Debug, Args)]
pub struct Interrupt {
    /// PID file of the agent to stop [default: the one a sync of the same user writes
    /// without --pid-path; see `sync-to-remote --help`].
    #[arg(short = 'p', long, env = ENV_PID_PATH)]
    pub pid_path: Option<PathBuf>,
    /// Return right after signalling instead of waiting for the agent's last sync.
    #[arg(long)]
    pub no_wait: bool,
    /// Give up waiting after this long (e.g. 90s); by default wait as long as it takes.
    #[arg(long, value_parser = parse_seconds)]
    pub timeout: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct Verify {
    #[command(flatten)]
    pub paths: UploadPaths,
    /// Print the report as one JSON object on stdout (for machines) instead of text.
    #[arg(long, env = "VSC_VERIFY_JSON")]
    pub json: bool,
    /// How many names to list for each kind of difference.
    #[arg(long, env = "VSC_VERIFY_SHOW", default_value_t = 10)]
    pub show: usize,
    /// Compare contents by downloading them (rclone check --download): for backends without
    /// hashes, and for a byte-for-byte check. Slow: reads everything.
    #[arg(long, env = "VSC_VERIFY_DOWNLOAD")]
    pub download: bool,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

/// An RFC 3339 time such as `2026-11-24T18:00:00Z` or `2026-11-24T19:00:00+01:00`.
fn parse_time(text: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&chrono::Utc))
        .map_err(|e| format!("'{text}' is not an RFC 3339 time such as 2026-11-24T18:00:00Z: {e}"))
}

/// `30`, `30s`, `2m`, `1h`.
fn parse_seconds(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, multiplier) = match text.char_indices().last() {
        Some((i, 's')) => (&text[..i], 1),
        Some((i, 'm')) => (&text[..i], 60),
        Some((i, 'h')) => (&text[..i], 3600),
        _ => (text, 1),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(multiplier))
        .map(Duration::from_secs)
        .ok_or_else(|| format!("'{text}' is not a duration such as 30s, 2m or 1h"))
}

/// The operator renders the agent's command line from `vsc_types::agent_args`: every option
/// it can render must parse here to what it means.
#[cfg(test)]
mod contract {
    use super::*;
    use vsc_types::agent_args::{
        DeletionLimits, RestoreArgs, StatusArgs, TrashArgs, UploadArgs, WriterLeaseArgs,
    };

    fn parse(argv: Vec<String>) -> Command {
        let argv = std::iter::once("volume-syncing-controller".to_string()).chain(argv);
        Cli::try_parse_from(argv)
            .unwrap_or_else(|e| panic!("the agent refuses what the operator renders: {e}"))
            .command
    }

    #[test]
    fn every_log_format_the_operator_sets_is_one_the_agent_accepts() {
        for format in [LogFormat::Text, LogFormat::Json] {
            let flag = format!("--log-format={}", format.as_str());
            let argv = ["volume-syncing-controller", &flag, "interrupt"];
            let cli = Cli::try_parse_from(argv)
                .unwrap_or_else(|e| panic!("the agent refuses {flag}: {e}"));
            assert_eq!(cli.log_format, format);
        }
    }

    const LIMITS: DeletionLimits = DeletionLimits {
        max_percent: Some(20),
        max_files: Some(300),
    };

    #[test]
    fn every_restore_option_the_operator_renders_parses_to_what_it_means() {
        let rendered = RestoreArgs {
            src: "bucket/app".into(),
            dst: "/data".into(),
            no_delete: true,
            force_delete_local_dir: true,
            limits: LIMITS,
            allow_incomplete: true,
            as_of: Some("2026-11-24T18:00:00Z".into()),
            keep_local_if_remote_empty: true,
            verbose: true,
        };
        let Command::RemoteToLocalSync(parsed) = parse(rendered.to_argv()) else {
            panic!("not a restore");
        };
        assert_eq!(parsed.src, "bucket/app");
        assert_eq!(parsed.dst, PathBuf::from("/data"));
        assert!(parsed.force_delete_local_dir && parsed.allow_incomplete);
        assert!(parsed.keep_local_if_remote_empty && !parsed.discard_local_changes);
        assert_eq!(
            parsed.as_of.map(|t| t.to_rfc3339()),
            Some("2026-11-24T18:00:00+00:00".into())
        );
        let common = &parsed.common;
        assert!(common.no_delete);
        assert_eq!(
            (common.max_delete_percent, common.max_delete_files),
            (20, 300)
        );
        assert_eq!(common.remote.verbose, 1);
    }

    #[test]
    fn every_upload_option_the_operator_renders_parses_to_what_it_means() {
        let rendered = UploadArgs {
            src: "/data".into(),
            dst: "bucket/app".into(),
            schedule: Some("@every 5m".into()),
            watch: true,
            watch_min_interval_minutes: Some(15),
            no_delete: true,
            force_even_if_remote_would_be_cleared: true,
            limits: LIMITS,
            require_sentinel: Some(".mounted".into()),
            trash: Some(TrashArgs {
                retention_days: 7,
                keep: 3,
            }),
            status: Some(StatusArgs {
                addr: "127.0.0.1:0".into(),
                addr_file: Some("/tmp/status-addr".into()),
                unhealthy_after_failures: Some(4),
            }),
            writer_lease: Some(WriterLeaseArgs {
                url: "http://operator:8080/writer-lease".into(),
                preferred: true,
            }),
            sync_requests_url: None,
            verbose: true,
        };
        let Command::SyncToRemote(parsed) = parse(rendered.to_argv()) else {
            panic!("not an upload");
        };
        assert_eq!(parsed.paths.src, PathBuf::from("/data"));
        assert_eq!(parsed.paths.dst, "bucket/app");
        assert!(parsed.force_even_if_remote_would_be_cleared && parsed.prefer_primary);
        assert_eq!(
            parsed.writer_lease_url.as_deref(),
            Some("http://operator:8080/writer-lease")
        );
        assert_eq!(parsed.require_sentinel, Some(PathBuf::from(".mounted")));
        let trash = &parsed.trash;
        assert_eq!(
            (trash.trash, trash.trash_retention_days, trash.trash_keep),
            (true, 7, 3)
        );
        let common = &parsed.common;
        assert!(common.no_delete && common.watch);
        assert_eq!(common.schedule.as_deref(), Some("@every 5m"));
        assert_eq!(common.watch_min_interval, Duration::from_secs(15 * 60));
        assert_eq!(
            (common.max_delete_percent, common.max_delete_files),
            (20, 300)
        );
        assert_eq!(common.status_addr, "127.0.0.1:0".parse().ok());
        assert_eq!(
            common.status_addr_file,
            Some(PathBuf::from("/tmp/status-addr"))
        );
        assert_eq!(common.unhealthy_after_failures, 4);
        assert_eq!(common.remote.verbose, 1);
    }

    #[test]
    fn a_sidecar_without_a_lease_asks_for_sync_requests_and_never_both() {
        let mut rendered = UploadArgs {
            src: "/data".into(),
            dst: "bucket/app".into(),
            sync_requests_url: Some("http://operator:8080/sync-requests".into()),
            ..UploadArgs::default()
        };
        let Command::SyncToRemote(parsed) = parse(rendered.to_argv()) else {
            panic!("not an upload");
        };
        assert_eq!(
            parsed.sync_requests_url.as_deref(),
            Some("http://operator:8080/sync-requests")
        );
        rendered.writer_lease = Some(WriterLeaseArgs {
            url: "http://operator:8080/writer-lease".into(),
            preferred: false,
        });
        let argv =
            std::iter::once("volume-syncing-controller".to_string()).chain(rendered.to_argv());
        let refused = Cli::try_parse_from(argv).expect_err("both refused");
        assert!(
            refused.to_string().contains("--sync-requests-url"),
            "{refused}"
        );
    }
}
