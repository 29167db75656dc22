//! The plugin's command line: `kubectl pfss <command>` (kubectl runs `kubectl-pfss` with the
//! arguments after `pfss`).

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use clap_complete::Shell;

/// What the PodFilesystemSyncs (pfss) of a cluster are doing, and what to do about them:
/// status, a sync now, a restore as of a past time, a verify, the encryption key's backup.
#[derive(Debug, Parser)]
#[command(name = "kubectl-pfss", bin_name = "kubectl pfss", version)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Per resource and Pod: last sync, last error, the primary writer, the next sync.
    Status(StatusArgs),
    /// Ask each selected Pod's sidecar for one upload now (sets the resource's
    /// riotkit.org/sync-requested-at annotation; a manifest can set it too).
    SyncNow(SyncNowArgs),
    /// Restore the selected Pods' directory as it was at a past time (needs
    /// syncOptions.trash): shows what it would do, then rolls out the workloads with the
    /// riotkit.org/restore-as-of annotation on confirmation.
    Restore(RestoreArgs),
    /// Compare each selected Pod's directory with the remote (the agent's `verify`, run in
    /// its sidecar with `kubectl exec`).
    Verify(VerifyArgs),
    /// The automatic-encryption key.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print a shell completion script (e.g. `kubectl pfss completion bash > /etc/bash_completion.d/kubectl-pfss`).
    Completion(CompletionArgs),
}

/// Where the resources are.
#[derive(Debug, Args, Clone)]
pub struct Target {
    /// The namespace (default: the kubeconfig context's).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    /// One resource; all of the namespace when omitted.
    pub name: Option<String>,
    /// Every namespace.
    #[arg(short = 'A', long, conflicts_with = "name")]
    pub all_namespaces: bool,
    #[arg(short = 'o', long, value_enum, default_value_t = Output::Table)]
    pub output: Output,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct SyncNowArgs {
    /// The PodFilesystemSync.
    pub name: String,
    /// Wait until the primary writers (or, without, every uploading Pod) reported a sync
    /// started after the request, and print them.
    #[arg(long)]
    pub wait: bool,
    /// How long --wait waits (e.g. 90s, 5m).
    #[arg(long, default_value = "2m", value_parser = parse_duration)]
    pub timeout: Duration,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The PodFilesystemSync.
    pub name: String,
    /// The time to restore as of (RFC 3339, e.g. 2026-11-24T18:00:00Z).
    #[arg(long, value_name = "RFC3339", value_parser = parse_time)]
    pub as_of: DateTime<Utc>,
    /// Do it without asking.
    #[arg(short = 'y', long)]
    pub yes: bool,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// The PodFilesystemSync.
    pub name: String,
    /// Passed to `kubectl exec` (e.g. to reach another cluster).
    #[arg(long, default_value = "kubectl")]
    pub kubectl: String,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print the automatic-encryption Secret as YAML (`kubectl apply -f` restores it); keep
    /// it safe: without it the synced data cannot be decrypted.
    Export(KeysExportArgs),
}

#[derive(Debug, Args)]
pub struct KeysExportArgs {
    /// The PodFilesystemSync.
    pub name: String,
    #[command(flatten)]
    pub target: Target,
}

#[derive(Debug, Args)]
pub struct CompletionArgs {
    pub shell: Shell,
}

/// An RFC 3339 time such as `2026-11-24T18:00:00Z`.
fn parse_time(text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text.trim())
        .map(|time| time.with_timezone(&Utc))
        .map_err(|e| format!("'{text}' is not an RFC 3339 time such as 2026-11-24T18:00:00Z: {e}"))
}

/// `90`, `90s`, `5m`, `1h`.
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.strip_suffix(['s', 'm', 'h']) {
        Some(number) => (number, &text[number.len()..]),
        None => (text, "s"),
    };
    let multiplier = match unit {
        "m" => 60,
        "h" => 3600,
        _ => 1,
    };
    number
        .parse::<u64>()
        .map(|n| Duration::from_secs(n * multiplier))
        .map_err(|_| format!("'{text}' is not a duration such as 90s, 5m or 1h"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory as _;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn times_and_durations_parse_or_say_what_is_expected() {
        assert_eq!(
            parse_time("2026-11-24T19:00:00+01:00").map(|t| t.to_rfc3339()),
            Ok("2026-11-24T18:00:00+00:00".into())
        );
        let error = parse_time("yesterday").expect_err("invalid");
        assert!(
            error.contains("'yesterday'") && error.contains("RFC 3339"),
            "{error}"
        );
        assert_eq!(parse_duration("5m"), Ok(Duration::from_secs(300)));
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("soon").is_err());
    }
}
