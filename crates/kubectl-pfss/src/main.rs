//! `kubectl-pfss`, the kubectl plugin for PodFilesystemSync (`kubectl pfss ...`). It talks to
//! the API server only (and `kubectl exec` for verify); the operator turns what it writes
//! into syncs and restores.

mod cli;
mod keys;
mod resources;
mod restore;
mod status;
mod status_command;
mod sync_now;
mod table;
mod times;
mod verify;
mod workloads;

use std::io::Write as _;
use std::process::ExitCode;

use clap::{CommandFactory as _, Parser as _};

use cli::{Cli, Command, KeysCommand};

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("KUBECTL_PFSS_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match cli.command {
        Command::Status(args) => status_command::run(args, &mut out).await,
        Command::SyncNow(args) => sync_now::run(args, &mut out).await,
        Command::Restore(args) => restore::run(args, &mut out, &mut std::io::stdin().lock()).await,
        Command::Verify(args) => verify::run(args, &mut out).await,
        Command::Keys(KeysCommand::Export(args)) => keys::export(args, &mut out).await,
        Command::Completion(args) => {
            clap_complete::generate(args.shell, &mut Cli::command(), "kubectl-pfss", &mut out);
            Ok(())
        }
    }
}
