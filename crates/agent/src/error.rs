//! The agent's errors and the exit codes they map to (documented in `--help` and README).

use std::path::PathBuf;

/// Exit codes a user or a Pod's restart policy can rely on.
pub mod exit_code {
    /// Something unexpected failed (I/O on the agent's own files, a signal handler).
    pub const INTERNAL: i32 = 1;
    /// A flag, an environment variable or the rclone config is invalid. Nothing was touched.
    pub const INVALID_INPUT: i32 = 2;
    /// A safety valve refused the operation. Nothing was written or deleted.
    pub const REFUSED_BY_SAFETY_VALVE: i32 = 3;
    /// rclone failed: the remote is unreachable, misconfigured, or the transfer did not complete.
    pub const RCLONE_FAILED: i32 = 4;
    /// `interrupt` found no running agent to signal.
    pub const NO_RUNNING_AGENT: i32 = 5;
    /// `verify` compared both sides and they differ.
    pub const DIFFERENT: i32 = 6;
    /// A second SIGTERM / SIGINT aborted the run (128 + SIGINT, as a shell reports it).
    pub const ABORTED: i32 = 130;
}

#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("invalid input: {0}")]
    InvalidInput(String),

    #[error("refused by safety valve: {reason}. Nothing was written or deleted. {how_to_override}")]
    RefusedBySafetyValve {
        reason: String,
        how_to_override: &'static str,
    },

    #[error("rclone {operation} failed with exit code {code:?}: {summary}")]
    RcloneFailed {
        operation: String,
        code: Option<i32>,
        summary: String,
    },

    #[error(
        "cannot start rclone ({program}): {source}. Install rclone (tools/install-test-tools.sh) or set VSC_RCLONE_BINARY"
    )]
    RcloneMissing {
        program: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{action} {path}: {source}")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("stopping took too long: {0}")]
    StopTimedOut(String),

    #[error("{0}")]
    LeaseLost(String),

    #[error("aborted by a second signal: the running sync was stopped before it finished")]
    Aborted,

    #[error("no running agent: {0}")]
    NoRunningAgent(String),

    #[error("local and remote differ: {0}")]
    Different(String),

    #[error("{0}")]
    Internal(String),
}

impl AgentError {
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        AgentError::Io {
            action,
            path: path.into(),
            source,
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        AgentError::InvalidInput(message.into())
    }

    pub fn exit_code(&self) -> i32 {
        match self {
            AgentError::InvalidInput(_) => exit_code::INVALID_INPUT,
            AgentError::RefusedBySafetyValve { .. } => exit_code::REFUSED_BY_SAFETY_VALVE,
            AgentError::RcloneFailed { .. }
            | AgentError::RcloneMissing { .. }
            | AgentError::StopTimedOut(_)
            | AgentError::LeaseLost(_) => exit_code::RCLONE_FAILED,
            AgentError::NoRunningAgent(_) => exit_code::NO_RUNNING_AGENT,
            AgentError::Different(_) => exit_code::DIFFERENT,
            AgentError::Aborted => exit_code::ABORTED,
            AgentError::Io { .. } | AgentError::Internal(_) => exit_code::INTERNAL,
        }
    }
}

pub type Result<T, E = AgentError> = std::result::Result<T, E>;
