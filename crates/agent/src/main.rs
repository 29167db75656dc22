//! `volume-syncing-controller`: the agent that restores a directory from rclone remote
//! storage and keeps it synced back, on bare metal, in Docker, or injected into a Pod.

mod cli;
mod error;
mod job;
mod pidfile;
mod rclone;
mod rclone_config;
mod runner;
mod safety;
mod schedule;
mod status;
mod status_server;
mod watch;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser as _;

use crate::cli::{Cli, Command, CommonSyncArgs, LogFormat};
use crate::error::{AgentError, Result, exit_code};
use crate::job::{Direction, SyncJob};
use crate::pidfile::PidFile;
use crate::rclone::Rclone;
use crate::rclone_config::{ConfigFile, RemoteParams, RemotePath};
use crate::runner::StopSignal;
use crate::schedule::Schedule;
use crate::status::Status;
use crate::status_server::StatusServer;
use crate::watch::ChangeWatcher;

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
        Command::SyncToRemote(args) => args.common.verbose,
        Command::RemoteToLocalSync(args) => args.common.verbose,
        Command::Interrupt(_) => 0,
    };
    init_logging(cli.log_format, verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the async runtime");
            return ExitCode::from(exit_code::INTERNAL as u8);
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(exit_code = e.exit_code(), "{e}");
            ExitCode::from(e.exit_code() as u8)
        }
    }
}

async fn run(command: Command) -> Result<()> {
    match command {
        Command::SyncToRemote(args) => {
            let remote_path = RemotePath::parse(&args.dst, "--dst")?;
            let force = args.force_even_if_remote_would_be_cleared;
            run_sync(
                Direction::ToRemote,
                args.src,
                remote_path,
                force,
                &args.common,
            )
            .await
        }
        Command::RemoteToLocalSync(args) => {
            let remote_path = RemotePath::parse(&args.src, "--src")?;
            let force = args.force_delete_local_dir;
            run_sync(
                Direction::ToLocal,
                args.dst,
                remote_path,
                force,
                &args.common,
            )
            .await
        }
        Command::Interrupt(args) => pidfile::interrupt(&args.pid_path, !args.no_wait, args.timeout)
            .await
            .map(|_| ()),
    }
}

async fn run_sync(
    direction: Direction,
    local: std::path::PathBuf,
    remote_path: RemotePath,
    force: bool,
    common: &CommonSyncArgs,
) -> Result<()> {
    // Everything the user gave is validated before anything is written.
    let schedule = common
        .schedule
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(str::parse::<Schedule>)
        .transpose()
        .map_err(|e| AgentError::invalid(e.to_string()))?;
    let (config, remote) = if common.no_template {
        let path = common
            .config_path
            .as_deref()
            .ok_or_else(|| AgentError::invalid("--no-template needs --config-path"))?;
        let config = ConfigFile::existing(path)?;
        let remote = config.existing_target(&remote_path)?;
        (config, remote)
    } else {
        let params =
            RemoteParams::collect(std::env::vars_os(), &common.params, &common.enc_params)?;
        let config =
            ConfigFile::write(common.config_path.as_deref(), &params.render(&remote_path))?;
        (config, params.target(&remote_path))
    };
    if common.watch && direction == Direction::ToLocal {
        return Err(AgentError::invalid(
            "--watch watches the local directory, so it only applies to sync-to-remote",
        ));
    }
    let watcher = if common.watch {
        Some(ChangeWatcher::start(&local, common.watch_min_interval)?)
    } else {
        None
    };
    let stop = StopSignal::install()?;
    let (pid_path, pid_path_explicit) = common.pid_path();
    let _pid_file = match PidFile::acquire(&pid_path) {
        Ok(guard) => guard,
        Err(e) if !pid_path_explicit => {
            tracing::warn!(error = %e, "running without a PID file; `interrupt` cannot reach this run (set --pid-path)");
            None
        }
        Err(e) => return Err(e),
    };
    let job = SyncJob {
        direction,
        local,
        remote,
        delete: !common.no_delete,
        force,
        rclone: Rclone {
            binary: common.rclone_binary.clone(),
            config: config.path().to_path_buf(),
            verbosity: common.verbose,
            stats_interval: common.stats_interval,
        },
        running_uid: nix::unistd::geteuid().as_raw(),
        running_gid: nix::unistd::getegid().as_raw(),
    };
    let status = Arc::new(Status::default());
    if let Some(addr) = common.status_addr {
        let server = StatusServer {
            direction: match direction {
                Direction::ToRemote => "to-remote",
                Direction::ToLocal => "to-local",
            },
            unhealthy_after_failures: common.unhealthy_after_failures,
        };
        server.spawn(addr, status.clone()).await?;
    }
    let result = if schedule.is_none() && watcher.is_none() {
        runner::run_once(&job, &status).await
    } else {
        let triggers = runner::Triggers { schedule, watcher };
        runner::run_continuously(&job, triggers, &status, stop).await
    };
    drop(config);
    result.map(|_| ())
}
