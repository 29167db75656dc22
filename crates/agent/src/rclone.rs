//! Runs `rclone` as a child process and forwards its JSON log lines to `tracing`.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt as _, AsyncReadExt as _, BufReader};
use tokio::process::Command;

use crate::error::{AgentError, Result};

/// rclone's exit code for "directory not found" (`rclone help flags`, "Exit Code").
const EXIT_DIRECTORY_NOT_FOUND: i32 = 3;
/// How many of rclone's last error lines an error message quotes.
const ERRORS_KEPT: usize = 3;

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

/// What listing the top of a remote path found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemoteListing {
    /// Nothing there (or the directory does not exist).
    Empty,
    /// At least these entries (a sample, not the whole listing).
    NotEmpty(Vec<String>),
}

#[derive(Debug, Clone)]
pub struct Rclone {
    pub binary: PathBuf,
    pub config: PathBuf,
    /// 0: rclone's notices and errors, 1: `-v` (a line per file), 2: `-vv`.
    pub verbosity: u8,
    pub stats_interval: Duration,
}

impl Rclone {
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command
            .env("RCLONE_CONFIG", &self.config)
            .arg("--use-json-log")
            .stdin(Stdio::null())
            .kill_on_drop(true);
        // Own process group: a terminal's Ctrl-C reaches only the agent, which decides
        // whether the running transfer finishes (it does, for a final sync).
        command.process_group(0);
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

    /// `rclone sync|copy <source> <destination>` with metadata and empty directories kept.
    pub async fn transfer(
        &self,
        mode: TransferMode,
        source: &str,
        destination: &str,
        extra_args: &[String],
    ) -> Result<()> {
        let mut command = self.command();
        command
            .arg(mode.subcommand())
            .arg("--create-empty-src-dirs")
            .arg("--metadata")
            .arg("--stats")
            .arg(format!("{}s", self.stats_interval.as_secs().max(1)))
            .arg("--stats-one-line")
            .arg("--stats-log-level")
            .arg("NOTICE")
            .args(extra_args)
            .arg(source)
            .arg(destination);
        let operation = format!("{} {source} -> {destination}", mode.subcommand());
        tracing::info!(%operation, "starting rclone");
        let output = self.run(command, &operation, false).await?;
        if output.success() {
            Ok(())
        } else {
            Err(output.into_error(operation))
        }
    }

    /// Lists up to a few top-level entries of `target` (one request on bucket backends).
    pub async fn list_top_level(&self, target: &str) -> Result<RemoteListing> {
        let mut command = self.command();
        command.arg("lsf").arg("--max-depth").arg("1").arg(target);
        let operation = format!("lsf {target}");
        let output = self.run(command, &operation, true).await?;
        if output.code == Some(EXIT_DIRECTORY_NOT_FOUND) {
            return Ok(RemoteListing::Empty);
        }
        if !output.success() {
            return Err(output.into_error(operation));
        }
        // crypt leaves out names it cannot decrypt and only logs a notice: a wrong password
        // would look like an empty remote. Such a listing is a failure, never "empty".
        if output.log.undecryptable > 0 {
            return Err(AgentError::RcloneFailed {
                operation,
                code: output.code,
                summary: format!(
                    "{} name(s) at the remote cannot be decrypted: wrong ENCRYPTED_PASSWORD / ENCRYPTED_PASSWORD2, or not a crypt remote",
                    output.log.undecryptable
                ),
            });
        }
        if !output.log.errors.is_empty() {
            return Err(output.into_error(operation));
        }
        let entries: Vec<String> = output
            .stdout
            .lines()
            .filter(|line| !line.is_empty())
            .take(5)
            .map(str::to_string)
            .collect();
        Ok(if entries.is_empty() {
            RemoteListing::Empty
        } else {
            RemoteListing::NotEmpty(entries)
        })
    }

    async fn run(
        &self,
        mut command: Command,
        operation: &str,
        capture_stdout: bool,
    ) -> Result<Finished> {
        command.stderr(Stdio::piped()).stdout(if capture_stdout {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let mut child = command
            .spawn()
            .map_err(|source| AgentError::RcloneMissing {
                program: self.binary.display().to_string(),
                source,
            })?;
        let stderr = child.stderr.take();
        let stdout = child.stdout.take();
        let log_task = tokio::spawn(forward_log(stderr));
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
        let status = child
            .wait()
            .await
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
}

impl Finished {
    fn success(&self) -> bool {
        self.code == Some(0)
    }

    fn into_error(self, operation: String) -> AgentError {
        let summary = if self.log.errors.is_empty() {
            "no error message from rclone (see the log above)".to_string()
        } else {
            self.log.errors.join(" | ")
        };
        AgentError::RcloneFailed {
            operation,
            code: self.code,
            summary,
        }
    }
}

/// Forwards rclone's `--use-json-log` lines to `tracing`, keeping a [`LogSummary`].
async fn forward_log(stderr: Option<tokio::process::ChildStderr>) -> LogSummary {
    let mut summary = LogSummary::default();
    let Some(stderr) = stderr else {
        return summary;
    };
    let mut lines = BufReader::new(stderr).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let (level, message) = parse_log_line(&line);
        if message.contains("undecryptable") {
            summary.undecryptable += 1;
        }
        match level {
            LogLevel::Error => {
                tracing::error!(target: "rclone", "{message}");
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
        return (LogLevel::Info, line.trim().to_string());
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
    fn json_log_lines_keep_level_object_and_message() {
        let (level, message) = parse_log_line(
            r#"{"level":"error","msg":"Failed to copy: access denied","object":"a/b.txt","time":"x"}"#,
        );
        assert_eq!(level, LogLevel::Error);
        assert_eq!(message, "a/b.txt: Failed to copy: access denied");
        let (level, message) = parse_log_line("plain text from an old rclone");
        assert_eq!(level, LogLevel::Info);
        assert_eq!(message, "plain text from an old rclone");
    }
}
