//! `volume-syncing-controller`: the agent that restores a directory from rclone remote
//! storage and keeps it synced back, on bare metal, in Docker, or injected into a Pod.
//! A thin wrapper: the commands live in the `vsc_agent` library.

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser as _;

use vsc_agent::cli::{Cli, Command, Interrupt, LogFormat, Verify};
use vsc_agent::error::{Result, exit_code};
use vsc_agent::pidfile::DefaultPidPath;
use vsc_agent::rclone::CheckMethod;
use vsc_agent::rclone_config::{RemotePath, is_encrypted_target};
use vsc_agent::remote_setup::{prepare_remote, rclone_for};
use vsc_agent::verify::Verification;
use vsc_agent::{pidfile, status_server, sync_command};

fn init_logging(format: LogFormat, verbose: u8) {
    let default_level = if verbose > 0 { "debug" } else { "info" };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    // Colours only for a person at a terminal, never in `kubectl logs` or a file.
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.init(),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let verbose = match &cli.command {
        Command::SyncToRemote(args) => args.common.remote.verbose,
        Command::RemoteToLocalSync(args) => args.common.remote.verbose,
        Command::Verify(args) => args.remote.verbose,
        Command::Interrupt(_) | Command::Health(_) => 0,
    };
    init_logging(cli.log_format, verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return exit_with(exit_code::INTERNAL);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(exit_code = e.exit_code(), "{e}");
            exit_with(e.exit_code())
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::SyncToRemote(args) => sync_command::sync_to_remote(args).await,
        Command::RemoteToLocalSync(args) => sync_command::remote_to_local_sync(args).await,
        Command::Verify(args) => verify(args).await,
        Command::Health(args) => status_server::probe(&args.status_addr_file).await,
        Command::Interrupt(args) => interrupt(args).await,
    }
}

async fn verify(args: Verify) -> Result<()> {
    let remote_path = RemotePath::parse(&args.paths.dst, "--dst")?;
    let (config, remote) = prepare_remote(&args.remote, &remote_path)?;
    // A crypt remote keeps no hashes of the plain files: cryptcheck compares the encrypted ones.
    let method = if args.download {
        CheckMethod::Download
    } else if is_encrypted_target(&remote) {
        CheckMethod::CryptHashes
    } else {
        CheckMethod::Hashes
    };
    let verification = Verification {
        local: args.paths.src,
        remote,
        method,
        show: args.show,
        json: args.json,
        rclone: rclone_for(&args.remote, &config, Duration::from_secs(30)),
    };
    let result = verification.run().await;
    // The config file is removed only once rclone is done with it.
    drop(config);
    result
}

async fn interrupt(args: Interrupt) -> Result<()> {
    let pid_path = if let Some(path) = args.pid_path {
        path
    } else {
        let default = DefaultPidPath::for_this_user();
        default.check()?;
        default.path
    };
    pidfile::interrupt(&pid_path, !args.no_wait, args.timeout)
        .await
        .map(|_| ())
}

/// The process exit code for one of the agent's codes (all fit a byte; anything else is 1).
fn exit_with(code: i32) -> ExitCode {
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
