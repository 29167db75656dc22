//! Runs `rclone` as a child process and forwards its JSON log lines to `tracing`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::process::Command;

use crate::error::{AgentError, Result};
use crate::layout;

/// rclone's exit code for "directory not found" (`rclone help flags`, "Exit Code").
const EXIT_DIRECTORY_NOT_FOUND: i32 = 3;
/// How many of rclone's last error lines an error message quotes.
const ERRORS_KEPT: usize = 3;
/// What rclone logs when the root of a listing does not exist (walk.go).
const LISTING_ROOT_NOT_FOUND: &str = "error listing: directory not found";
/// For the agent's own small files: never check that the bucket (container) exists and never
/// create it. A plain `rclone sync` lists the destination first, which tells rclone the
/// bucket exists; a lone `rclone rcat` instead sends CreateBucket, which needs
/// bucket-creation rights and fails on providers that answer `409 BucketAlreadyExists` for
/// a bucket the caller owns (`provider = Minio` against some servers).
pub const NO_BUCKET_CHECKS: [&str; 4] = [
    "--s3-no-check-bucket",
    "--gcs-no-check-bucket",
    "--azureblob-no-check-container",
    "--oos-no-check-bucket",
];

/// `rclone sync` mirrors (deletes extra files at the destination); `rclone copy` only adds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TransferMode {
    Sync,
    Copy,
}

impl TransferMode {
    fn subcommand(self) -> &'static str {
        match self {
            TransferMode::Sync => "sync",
            TransferMode::Copy => "copy",
        }
    }
}

/// Every file below a path, as rclone lists it (the agent's own names excluded):
/// relative path -> size in bytes.
pub type FileListing = BTreeMap<String, u64>;

/// What `rclone check` / `cryptcheck` printed and logged, for `verify` to judge.
#[derive(Debug)]
pub struct CheckRun {
    pub code: Option<i32>,
    /// The `--combined -` report: one `<mark> <path>` line per file.
    pub combined: String,
    pub errors: Vec<String>,
    pub undecryptable: usize,
    /// rclone found no hash both sides have and compared sizes only.
    pub sizes_only: bool,
}

/// How `check` compares contents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckMethod {
    /// `rclone check`: hashes where both sides have one, else sizes.
    Hashes,
    /// `rclone cryptcheck`: the hash of the encrypted content, for crypt remotes.
    CryptHashes,
    /// `rclone check --download`: both sides read and compared byte for byte.
    Download,
}

/// What an rclone run is, for its timeouts: rclone's own defaults (`--contimeout 1m`,
/// `--timeout 5m`, `--low-level-retries 10`, `--retries 3`) let a listing against an
/// endpoint that accepts connections and never answers hang for over an hour, silently
/// (two requests, each tried `--low-level-retries` times, each waiting `--timeout`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Listings and the agent's own small files: each request is small, so a server that
    /// sends nothing for 15 s is taken for dead. Fails within about a minute.
    Metadata,
    /// `sync`, `copy`, `check`: `--timeout` is an idle timeout, so 60 s still lets a large
    /// file transfer for hours; a failed run is retried once (`--retries 2`).
    Transfer,
}

/// `(rclone flag, the environment variable rclone reads it from, the agent's default)` for
/// each kind of run. A variable the user set wins: rclone ranks a flag above the
/// environment, so the flag is left out then.
const BOUNDED_DEFAULTS: &[(Kind, &str, &str, &str)] = &[
    (Kind::Metadata, "--contimeout", "RCLONE_CONTIMEOUT", "10s"),
    (Kind::Metadata, "--timeout", "RCLONE_TIMEOUT", "15s"),
    (
        Kind::Metadata,
        "--low-level-retries",
        "RCLONE_LOW_LEVEL_RETRIES",
        "2",
    ),
    (Kind::Transfer, "--contimeout", "RCLONE_CONTIMEOUT", "10s"),
    (Kind::Transfer, "--timeout", "RCLONE_TIMEOUT", "60s"),
    (
        Kind::Transfer,
        "--low-level-retries",
        "RCLONE_LOW_LEVEL_RETRIES",
        "3",
    ),
    (Kind::Transfer, "--retries", "RCLONE_RETRIES", "2"),
];

/// How often the agent says what it is waiting for while an rclone run lasts.
const WAITING_LOG_INTERVAL: Duration = Duration::from_secs(30);

#[derive(Debug, Clone)]
pub struct Rclone {
    pub binary: PathBuf,
    pub config: PathBuf,
    /// 0: rclone's notices and errors, 1: `-v` (a line per file), 2: `-vv`.
    pub verbosity: u8,
    pub stats_interval: Duration,
}

impl Rclone {
    fn command(&self, kind: Kind) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("RCLONE_CONFIG", &self.config)
            .arg("--use-json-log")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (_, flag, variable, value) in BOUNDED_DEFAULTS.iter().filter(|d| d.0 == kind) {
            if std::env::var_os(variable).is_none_or(|set| set.is_empty()) {
                command.arg(flag).arg(value);
            }
        }
        // Own process group: a terminal's Ctrl-C reaches only the agent, which decides
        // whether the running transfer finishes (it does, for a final sync).
        command.process_group(0);
        die_with_the_agent(&mut command);
        match self.verbosity {
            0 => {}
            1 => {
                command.arg("-v");
            }
            _ => {
                command.arg("-vv");
            }
        }
        command
    }

    /// `rclone sync|copy <source> <destination>` with metadata and empty directories kept,
    /// and the agent's own names excluded.
    pub async fn transfer(
        &self,
        mode: TransferMode,
        source: &str,
        destination: &str,
        extra_args: &[String],
    ) -> Result<()> {
        let filter = layout::exclude_args();
        self.transfer_filtered(mode, source, destination, &filter, extra_args)
            .await
    }

    /// `rclone copy` of exactly the files listed (one relative path per line) in the file
    /// `list`. rclone takes no other filter with a list, and none is needed: the list names
    /// user files only.
    pub async fn copy_listed(
        &self,
        source: &str,
        destination: &str,
        list: &str,
        extra_args: &[String],
    ) -> Result<()> {
        let filter = ["--files-from-raw".to_string(), list.to_string()];
        self.transfer_filtered(TransferMode::Copy, source, destination, &filter, extra_args)
            .await
    }

    async fn transfer_filtered(
        &self,
        mode: TransferMode,
        source: &str,
        destination: &str,
        filter: &[String],
        extra_args: &[String],
    ) -> Result<()> {
        let mut command = self.command(Kind::Transfer);
        command
            .arg(mode.subcommand())
            .arg("--create-empty-src-dirs")
            .arg("--metadata")
            .arg("--stats")
            .arg(format!("{}s", self.stats_interval.as_secs().max(1)))
            .arg("--stats-one-line")
            .arg("--stats-log-level")
            .arg("NOTICE")
            .args(filter)
            .args(extra_args)
            .arg(source)
            .arg(destination);
        let operation = format!("{} {source} -> {destination}", mode.subcommand());
        tracing::info!(%operation, "starting rclone");
        self.run(command, &operation, Io::default())
            .await?
            .into_result(operation)
            .map(drop)
    }

    /// The top-level entries of `target`, the agent's own included (one request on bucket
    /// backends). Directories end in `/`. A missing directory lists as empty.
    pub async fn list_top_level(&self, target: &str) -> Result<Vec<String>> {
        let mut command = self.command(Kind::Metadata);
        command
            .arg("lsf")
            .arg("--max-depth")
            .arg("1")
            .arg(as_directory(target));
        let stdout = self.listing(command, format!("lsf {target}")).await?;
        Ok(stdout
            .lines()
            .filter(|line| !line.is_empty())
            .map(str::to_string)
            .collect())
    }

    /// Every file below `target` with its size, the agent's own names excluded. Sizes and
    /// names come from the directory listing (no per-file request on bucket backends).
    pub async fn list_files(&self, target: &str) -> Result<FileListing> {
        let mut command = self.command(Kind::Metadata);
        command
            .arg("lsjson")
            .args([
                "-R",
                "--files-only",
                "--no-modtime",
                "--no-mimetype",
                "--fast-list",
            ])
            .args(layout::exclude_args())
            .arg(as_directory(target));
        let stdout = self.listing(command, format!("lsjson {target}")).await?;
        if stdout.trim().is_empty() {
            return Ok(FileListing::new());
        }
        #[derive(serde::Deserialize)]
        struct Entry {
            #[serde(rename = "Path")]
            path: String,
            #[serde(rename = "Size", default)]
            size: i64,
        }
        let entries: Vec<Entry> = serde_json::from_str(&stdout).map_err(|e| {
            AgentError::Internal(format!("rclone lsjson {target}: unreadable output: {e}"))
        })?;
        Ok(entries
            .into_iter()
            .map(|entry| (entry.path, u64::try_from(entry.size).unwrap_or(0)))
            .collect())
    }

    /// Runs a listing command: a missing directory is an empty listing; names that do not
    /// decrypt are a failure, never "empty" (crypt leaves them out and only logs a notice,
    /// so a wrong password would look like an empty remote).
    async fn listing(&self, command: Command, operation: String) -> Result<String> {
        Ok(self
            .listing_or_missing(command, operation)
            .await?
            .unwrap_or_default())
    }

    /// [`Self::listing`], telling a missing directory (`None`) from an empty one. A missing
    /// directory is expected (a first upload to a new path), so rclone's "directory not
    /// found" for the root of the listing is not logged as an error.
    async fn listing_or_missing(
        &self,
        command: Command,
        operation: String,
    ) -> Result<Option<String>> {
        let io = Io {
            missing_is_expected: true,
            ..Io::capturing()
        };
        let output = self.run(command, &operation, io).await?;
        if output.code == Some(EXIT_DIRECTORY_NOT_FOUND) {
            tracing::debug!(%operation, "the directory does not exist: listed as empty");
            return Ok(None);
        }
        if output.log.undecryptable > 0 {
            return Err(undecryptable(
                operation,
                output.code,
                output.log.undecryptable,
            ));
        }
        if !output.log.errors.is_empty() {
            return Err(output.into_error(operation));
        }
        output
            .into_result(operation)
            .map(|output| Some(output.stdout))
    }

    /// Whether `target` exists (a bucket-level path whose bucket is missing does not).
    async fn exists(&self, target: &str) -> Result<bool> {
        let mut command = self.command(Kind::Metadata);
        command
            .arg("lsf")
            .arg("--max-depth")
            .arg("1")
            .arg(as_directory(target));
        Ok(self
            .listing_or_missing(command, format!("lsf {target}"))
            .await?
            .is_some())
    }

    /// The contents of one file (`rclone cat`).
    pub async fn cat(&self, target: &str) -> Result<String> {
        let output = self.simple(&["cat", target], Io::capturing()).await?;
        Ok(output.stdout)
    }

    /// The first `count` bytes of one file (`rclone cat --count`).
    pub async fn cat_head(&self, target: &str, count: usize) -> Result<Vec<u8>> {
        let count = count.to_string();
        let output = self
            .simple(&["cat", "--count", &count, target], Io::capturing())
            .await?;
        Ok(output.stdout.into_bytes())
    }

    /// Every file below `target` that matches the rclone filter `include`, concatenated.
    pub async fn cat_matching(&self, target: &str, include: &str) -> Result<String> {
        let output = self
            .simple(
                &["cat", "--include", include, &as_directory(target)],
                Io::capturing(),
            )
            .await?;
        Ok(output.stdout)
    }

    /// Writes `contents` to the agent's own file `target` (`rclone rcat`), replacing it.
    /// Never checks or creates the bucket ([`NO_BUCKET_CHECKS`]): the destination must
    /// exist, as it does once a sync has run there.
    pub async fn write_file(&self, target: &str, contents: Vec<u8>) -> Result<()> {
        self.rcat(target, contents, false).await
    }

    /// [`Self::write_file`] before a sync, when `destination` (which holds `target`) may
    /// not exist yet. When the write fails because the destination does not exist (a bucket
    /// never written), the destination is created the way `rclone sync` creates it
    /// (`rclone mkdir`: the bucket is made), and the file written again. A destination that
    /// exists is never created, so no bucket-creation request is ever sent for it.
    pub async fn write_file_creating_destination(
        &self,
        destination: &str,
        target: &str,
        contents: Vec<u8>,
    ) -> Result<()> {
        // Its errors are the expected case for a new bucket; a real failure is returned
        // (with rclone's messages) and logged by the caller.
        let first = match self.rcat(target, contents.clone(), true).await {
            Ok(()) => return Ok(()),
            Err(e) => e,
        };
        match self.exists(destination).await {
            Ok(false) => {}
            // It exists (the write failed for another reason), or it cannot be told.
            Ok(true) | Err(_) => return Err(first),
        }
        tracing::info!(%destination, "the destination does not exist yet: creating it, as rclone sync would");
        self.simple(&["mkdir", destination], Io::default()).await?;
        self.rcat(target, contents, false).await
    }

    async fn rcat(&self, target: &str, contents: Vec<u8>, errors_expected: bool) -> Result<()> {
        let io = Io {
            stdin: Some(contents),
            errors_expected,
            ..Io::default()
        };
        let mut args = vec!["rcat"];
        args.extend(NO_BUCKET_CHECKS);
        args.push(target);
        self.simple(&args, io).await.map(drop)
    }

    /// Removes `target` and everything below it (`rclone purge`; filters do not apply).
    pub async fn purge(&self, target: &str) -> Result<()> {
        self.simple(&["purge", target], Io::default())
            .await
            .map(drop)
    }

    /// Deletes the files listed (one relative path per line) in the file `list` below
    /// `target`.
    pub async fn delete_listed(&self, target: &str, list: &str) -> Result<()> {
        self.simple(&["delete", "--files-from-raw", list, target], Io::default())
            .await
            .map(drop)
    }

    /// `rclone <args>`, which must succeed; the arguments name the operation in errors.
    async fn simple(&self, args: &[&str], io: Io) -> Result<Finished> {
        let mut command = self.command(Kind::Metadata);
        command.args(args);
        let operation = args.join(" ");
        self.run(command, &operation, io)
            .await?
            .into_result(operation)
    }

    /// Compares `local` with `remote`; the result is for the caller to judge (rclone exits 1
    /// both when files differ and when it cannot compare).
    pub async fn check(&self, method: CheckMethod, local: &str, remote: &str) -> Result<CheckRun> {
        let mut command = self.command(Kind::Transfer);
        match method {
            CheckMethod::Hashes => command.arg("check"),
            CheckMethod::CryptHashes => command.arg("cryptcheck"),
            CheckMethod::Download => command.arg("check").arg("--download"),
        };
        command
            .args(["--combined", "-"])
            .args(layout::exclude_args())
            .arg(local)
            .arg(remote);
        let operation = format!("check {local} <-> {remote}");
        let output = self.run(command, &operation, Io::capturing()).await?;
        Ok(CheckRun {
            code: output.code,
            combined: output.stdout,
            errors: output.log.errors,
            undecryptable: output.log.undecryptable,
            sizes_only: output.log.sizes_only,
        })
    }

    async fn run(&self, mut command: Command, operation: &str, io: Io) -> Result<Finished> {
        command.stderr(Stdio::piped()).stdout(if io.capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        if io.stdin.is_some() {
            command.stdin(Stdio::piped());
        }
        let mut child = command
            .spawn()
            .map_err(|source| AgentError::RcloneMissing {
                program: self.binary.display().to_string(),
                source,
            })?;
        let stderr = child.stderr.take();
        let stdout = child.stdout.take();
        let (last_line, last_line_seen) = tokio::sync::watch::channel(String::new());
        let log_task = tokio::spawn(forward_log(stderr, io.log_policy(), last_line));
        let stdout_task = tokio::spawn(async move {
            let mut text = String::new();
            if let Some(mut stdout) = stdout {
                // A listing that is not UTF-8 is still a listing; keep what is readable.
                let mut bytes = Vec::new();
                let _ = stdout.read_to_end(&mut bytes).await;
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        });
        if let (Some(contents), Some(mut stdin)) = (io.stdin, child.stdin.take()) {
            // A write error shows up as rclone's own failure below; dropping closes stdin.
            let _ = stdin.write_all(&contents).await;
        }
        let mut waiting = Waiting {
            operation,
            started: Instant::now(),
            last_line: last_line_seen,
            finished: false,
        };
        let mut reminders = tokio::time::interval_at(
            tokio::time::Instant::now() + WAITING_LOG_INTERVAL,
            WAITING_LOG_INTERVAL,
        );
        let status = loop {
            tokio::select! {
                status = child.wait() => break status,
                _ = reminders.tick() => waiting.remind(),
            }
        };
        waiting.finished = true;
        let status = status
            .map_err(|e| AgentError::Internal(format!("waiting for rclone {operation}: {e}")))?;
        let log = log_task.await.unwrap_or_default();
        let stdout = stdout_task.await.unwrap_or_default();
        Ok(Finished {
            code: status.code(),
            log,
            stdout,
        })
    }
}

/// A running rclone, for the log: a run that lasts is never silent, and one stopped before
/// it ended (the agent's stop timeout) says what it was doing.
struct Waiting<'a> {
    operation: &'a str,
    started: Instant,
    /// rclone's last stats, notice or error line.
    last_line: tokio::sync::watch::Receiver<String>,
    finished: bool,
}

impl Waiting<'_> {
    fn last_line(&self) -> String {
        match self.last_line.borrow().as_str() {
            "" => "nothing yet".to_string(),
            line => line.to_string(),
        }
    }

    fn remind(&self) {
        tracing::info!(
            operation = self.operation,
            seconds = self.started.elapsed().as_secs(),
            last_rclone_line = %self.last_line(),
            "still waiting for rclone"
        );
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.finished {
            // Dropped with the run: the child is killed (kill_on_drop).
            tracing::warn!(
                operation = self.operation,
                seconds = self.started.elapsed().as_secs(),
                last_rclone_line = %self.last_line(),
                "stopped rclone before it finished"
            );
        }
    }
}

/// What a run feeds rclone and keeps of its output.
#[derive(Debug, Default)]
struct Io {
    capture_stdout: bool,
    stdin: Option<Vec<u8>>,
    /// A listing whose root may not exist: see [`LogPolicy::missing_is_expected`].
    missing_is_expected: bool,
    /// See [`LogPolicy::errors_expected`].
    errors_expected: bool,
}

impl Io {
    fn capturing() -> Self {
        Io {
            capture_stdout: true,
            ..Io::default()
        }
    }

    fn log_policy(&self) -> LogPolicy {
        LogPolicy {
            missing_is_expected: self.missing_is_expected,
            errors_expected: self.errors_expected,
        }
    }
}

/// How rclone's log lines are forwarded.
#[derive(Debug, Clone, Copy, Default)]
struct LogPolicy {
    /// rclone's "directory not found" for the root of a listing is the expected state of a
    /// path never written, not an error: logged at debug (and still not a listing).
    missing_is_expected: bool,
    /// The run may fail in an expected way that the caller handles: errors are logged at
    /// debug and kept for the error the caller returns if it does not handle them.
    errors_expected: bool,
}

struct Finished {
    code: Option<i32>,
    log: LogSummary,
    stdout: String,
}

/// What the agent keeps of rclone's log after forwarding it.
#[derive(Debug, Default)]
struct LogSummary {
    /// The last few error messages, for the error the agent reports.
    errors: Vec<String>,
    /// Names crypt skipped because they would not decrypt.
    undecryptable: usize,
    /// `check` found no common hash and compared sizes only.
    sizes_only: bool,
    /// rclone's closing notice (`Failed to lsjson: ...`): the cause when no line was an
    /// error (a listing that cannot reach the remote logs only this).
    failure: Option<String>,
}

impl Finished {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn into_result(self, operation: String) -> Result<Self> {
        if self.success() {
            Ok(self)
        } else {
            Err(self.into_error(operation))
        }
    }

    fn into_error(self, operation: String) -> AgentError {
        let summary = match (self.log.errors.is_empty(), self.log.failure) {
            (false, _) => self.log.errors.join(" | "),
            (true, Some(failure)) => failure,
            (true, None) => "no error message from rclone (see the log above)".to_string(),
        };
        AgentError::RcloneFailed {
            operation,
            code: self.code,
            summary,
        }
    }
}

fn undecryptable(operation: String, code: Option<i32>, names: usize) -> AgentError {
    AgentError::RcloneFailed {
        operation,
        code,
        summary: format!(
            "{names} name(s) at the remote cannot be decrypted: wrong ENCRYPTED_PASSWORD / ENCRYPTED_PASSWORD2, or not a crypt remote"
        ),
    }
}

/// Forwards rclone's `--use-json-log` lines to `tracing`, keeping a [`LogSummary`].
async fn forward_log(
    stderr: Option<tokio::process::ChildStderr>,
    policy: LogPolicy,
    last_line: tokio::sync::watch::Sender<String>,
) -> LogSummary {
    let mut summary = LogSummary::default();
    let Some(stderr) = stderr else {
        return summary;
    };
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (level, message) = parse_log_line(&line);
        let message = without_config_line(message);
        if message.contains("undecryptable") {
            summary.undecryptable += 1;
        }
        if message.contains("No common hash found") {
            summary.sizes_only = true;
        }
        if level == LogLevel::Notice && message.starts_with("Failed to ") {
            summary.failure = Some(message.clone());
        }
        if policy.missing_is_expected && is_missing_listing_root(&message) {
            tracing::debug!(target: "rclone", "{message}");
            continue;
        }
        if matches!(level, LogLevel::Error | LogLevel::Warn | LogLevel::Notice) {
            last_line.send_replace(message.clone());
        }
        match level {
            LogLevel::Error => {
                if policy.errors_expected {
                    tracing::debug!(target: "rclone", "{message}");
                } else {
                    tracing::error!(target: "rclone", "{message}");
                }
                if summary.errors.len() == ERRORS_KEPT {
                    summary.errors.remove(0);
                }
                summary.errors.push(message);
            }
            LogLevel::Notice | LogLevel::Warn => tracing::info!(target: "rclone", "{message}"),
            LogLevel::Info => tracing::info!(target: "rclone", "{message}"),
            LogLevel::Debug => tracing::debug!(target: "rclone", "{message}"),
        }
    }
    summary
}

/// Makes rclone die with the agent: a SIGKILLed agent (the kubelet after the grace period,
/// the OOM killer) or one that aborts on a second signal must not leave an rclone behind
/// that keeps uploading or deleting with nobody reading its result.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process.
/// Every rclone is spawned by `Command::spawn` on the thread that polls the agent's tasks:
/// `main` builds a current-thread runtime and `block_on`s it, so that is the main thread,
/// which lives as long as the agent. Spawning from `spawn_blocking` (pool threads exit when
/// idle) or from a short-lived thread would kill rclone mid-transfer.
#[allow(unsafe_code)] // pre_exec is unsafe; the closure below is async-signal-safe
fn die_with_the_agent(command: &mut Command) {
    let agent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec and only makes system
    // calls (prctl, getppid) and builds an error from an errno: no allocation, no lock.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(nix::sys::signal::Signal::SIGKILL)?;
            // The agent died between fork and prctl: the signal will never come.
            if nix::unistd::getppid() != agent {
                return Err(nix::errno::Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// `target` as a directory (a trailing `/`): rclone then never asks whether it is a file. On
/// S3 that question is a HEAD request, and when it fails (the endpoint unreachable) rclone
/// takes the path for a file and, with filters, exits with "can't limit to single files when
/// using filters" instead of the real cause.
fn as_directory(target: &str) -> String {
    if target.ends_with('/') || target.ends_with(':') {
        target.to_string()
    } else {
        format!("{target}/")
    }
}

/// rclone's lines about the root of a listing not existing: the error of the walk (with no
/// object, which would name an entry below the root) and the closing notice
/// (`Failed to lsf with 2 errors: last error was: error in ListJSON: directory not found`).
fn is_missing_listing_root(message: &str) -> bool {
    message == LISTING_ROOT_NOT_FOUND
        || (message.starts_with("Failed to ") && message.ends_with(": directory not found"))
}

/// What rclone's config parser says before the line it cannot parse, which it prints whole.
const CONFIG_PARSE_ERROR: &str = "could not parse line";

/// `message` without a config file line that rclone quotes in it: with `--no-template` the
/// file is the user's, and its line may hold a secret.
fn without_config_line(message: String) -> String {
    match message.find(CONFIG_PARSE_ERROR) {
        Some(at) => format!(
            "{} (the line is not shown: it may hold a secret)",
            &message[..at + CONFIG_PARSE_ERROR.len()]
        ),
        None => message,
    }
}

#[derive(Debug, PartialEq, Eq)]
enum LogLevel {
    Error,
    Warn,
    Notice,
    Info,
    Debug,
}

fn parse_log_line(line: &str) -> (LogLevel, String) {
    let Ok(serde_json::Value::Object(fields)) = serde_json::from_str::<serde_json::Value>(line)
    else {
        // Before its JSON logging starts (a bad flag, a bad config), rclone logs plain text.
        let level = if line.contains("CRITICAL:") || line.contains("ERROR :") {
            LogLevel::Error
        } else {
            LogLevel::Info
        };
        return (level, line.trim().to_string());
    };
    let level = match fields
        .get("level")
        .and_then(|v| v.as_str())
        .unwrap_or("info")
    {
        "critical" | "error" | "emergency" | "alert" => LogLevel::Error,
        "warning" | "warn" => LogLevel::Warn,
        "notice" => LogLevel::Notice,
        "debug" => LogLevel::Debug,
        _ => LogLevel::Info,
    };
    let message = fields
        .get("msg")
        .and_then(|v| v.as_str())
        .unwrap_or(line)
        .trim()
        .to_string();
    let message = match fields.get("object").and_then(|v| v.as_str()) {
        Some(object) if !object.is_empty() && !message.starts_with(object) => {
            format!("{object}: {message}")
        }
        _ => message,
    };
    (level, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_config_line_quoted_by_rclone_is_not_logged() {
        let (_, message) = parse_log_line(
            "2026/12/01 16:35:58 CRITICAL: Failed to load config file \"/x/rclone.conf\": could not parse line: secret_access_key = `hunter2",
        );
        let message = without_config_line(message);
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("/x/rclone.conf"), "{message}");
    }

    #[test]
    fn listing_targets_are_directories() {
        assert_eq!(as_directory("remote:/bucket/dir"), "remote:/bucket/dir/");
        assert_eq!(as_directory("remote:/bucket/dir/"), "remote:/bucket/dir/");
        assert_eq!(as_directory("remote_encrypted:"), "remote_encrypted:");
        assert_eq!(as_directory("/var/data"), "/var/data/");
    }

    #[test]
    fn json_log_lines_keep_level_object_and_message() {
        let (level, message) = parse_log_line(
            r#"{"level":"error","msg":"Failed to copy: access denied","object":"a/b.txt","time":"x"}"#,
        );
        assert_eq!(level, LogLevel::Error);
        assert_eq!(message, "a/b.txt: Failed to copy: access denied");
        let (level, message) = parse_log_line("plain text from an old rclone");
        assert_eq!(level, LogLevel::Info);
        assert_eq!(message, "plain text from an old rclone");
        let (level, _) = parse_log_line(
            "2026/11/24 19:12:20 CRITICAL: Failed to initialise global options: bad filter",
        );
        assert_eq!(level, LogLevel::Error);
    }

    #[test]
    fn only_the_listing_roots_absence_counts_as_expected() {
        let (_, message) = parse_log_line(
            r#"{"level":"error","msg":"error listing: directory not found","object":"","source":"walk/walk.go:175"}"#,
        );
        assert!(is_missing_listing_root(&message));
        let (_, message) = parse_log_line(
            r#"{"level":"notice","msg":"Failed to lsf with 2 errors: last error was: error in ListJSON: directory not found"}"#,
        );
        assert!(is_missing_listing_root(&message));
        let (_, message) = parse_log_line(
            r#"{"level":"error","msg":"error listing: directory not found","object":"photos/2024"}"#,
        );
        assert!(!is_missing_listing_root(&message));
        let (_, message) =
            parse_log_line(r#"{"level":"error","msg":"error listing: access denied","object":""}"#);
        assert!(!is_missing_listing_root(&message));
    }
}
