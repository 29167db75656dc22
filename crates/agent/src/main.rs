//! `volume-syncing-controller`: the agent that restores a directory from rclone remote
//! storage and keeps it synced back, on bare metal, in Docker, or injected into a Pod.

mod as_of;
mod cli;
mod error;
mod job;
mod layout;
mod local_record;
mod pidfile;
mod plan;
mod rclone;
mod rclone_config;
mod record;
mod report;
mod runner;
mod safety;
mod stale_configs;
mod status;
mod status_server;
mod sync_lock;
mod trash;
mod verify;
mod watch;
mod writer_lease;

use std::io::IsTerminal as _;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::Parser as _;

use crate::cli::{
    Cli, Command, CommonSyncArgs, Interrupt, LogFormat, RemoteArgs, RemoteToLocalSync,
    SyncToRemote, Verify,
};
use crate::error::{AgentError, Result, exit_code};
use crate::job::{Direction, SyncJob};
use crate::pidfile::{DefaultPidPath, PidFile};
use crate::plan::Limits;
use crate::rclone::{CheckMethod, Rclone};
use crate::rclone_config::{ConfigFile, RemoteParams, RemotePath, is_encrypted_target};
use crate::report::Reporter;
use crate::runner::StopSignal;
use crate::status::Status;
use crate::status_server::StatusServer;
use crate::trash::Retention;
use crate::verify::Verification;
use crate::watch::ChangeWatcher;
use crate::writer_lease::WriterLease;
use vsc_types::schedule::Schedule;

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
        Command::SyncToRemote(args) => sync_to_remote(args).await,
        Command::RemoteToLocalSync(args) => remote_to_local_sync(args).await,
        Command::Verify(args) => verify(args).await,
        Command::Health(args) => status_server::probe(&args.status_addr_file).await,
        Command::Interrupt(args) => interrupt(args).await,
    }
}

async fn sync_to_remote(args: SyncToRemote) -> Result<()> {
    let remote_path = RemotePath::parse(&args.paths.dst, "--dst")?;
    let trash = args.trash.trash.then_some(Retention {
        days: args.trash.trash_retention_days,
        keep: args.trash.trash_keep,
    });
    let options = JobOptions {
        force: args.force_even_if_remote_would_be_cleared,
        sentinel: args.require_sentinel,
        full_sync_interval: args.full_sync_interval,
        trash,
        writer_lease: args.writer_lease_url.map(|url| (url, args.prefer_primary)),
        ..JobOptions::default()
    };
    run_sync(
        Direction::ToRemote,
        args.paths.src,
        remote_path,
        options,
        &args.common,
    )
    .await
}

async fn remote_to_local_sync(args: RemoteToLocalSync) -> Result<()> {
    let remote_path = RemotePath::parse(&args.src, "--src")?;
    let options = JobOptions {
        force: args.force_delete_local_dir,
        allow_incomplete: args.allow_incomplete,
        keep_local_if_remote_empty: args.keep_local_if_remote_empty,
        discard_local_changes: args.discard_local_changes,
        as_of: args.as_of,
        ..JobOptions::default()
    };
    run_sync(
        Direction::ToLocal,
        args.dst,
        remote_path,
        options,
        &args.common,
    )
    .await
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
    let pid_path = match args.pid_path {
        Some(path) => path,
        None => {
            let default = DefaultPidPath::for_this_user();
            default.check()?;
            default.path
        }
    };
    pidfile::interrupt(&pid_path, !args.no_wait, args.timeout)
        .await
        .map(|_| ())
}

/// The per-direction settings of a job (the rest comes from [`CommonSyncArgs`]).
#[derive(Debug, Default)]
struct JobOptions {
    force: bool,
    sentinel: Option<std::path::PathBuf>,
    trash: Option<Retention>,
    allow_incomplete: bool,
    keep_local_if_remote_empty: bool,
    discard_local_changes: bool,
    full_sync_interval: Duration,
    as_of: Option<chrono::DateTime<chrono::Utc>>,
    /// `--writer-lease-url` and `--prefer-primary`.
    writer_lease: Option<(String, bool)>,
}

/// The rclone config for this run (written from the environment, or the user's own with
/// `--no-template`) and the rclone path that `remote_path` means in it.
fn prepare_remote(args: &RemoteArgs, remote_path: &RemotePath) -> Result<(ConfigFile, String)> {
    if args.no_template {
        let path = args
            .config_path
            .as_deref()
            .ok_or_else(|| AgentError::invalid("--no-template needs --config-path"))?;
        let config = ConfigFile::existing(path)?;
        let remote = config.existing_target(remote_path)?;
        Ok((config, remote))
    } else {
        let params = RemoteParams::collect(std::env::vars_os(), &args.params, &args.enc_params)?;
        let remote_path = params.resolve(remote_path, std::env::current_dir)?;
        let config = ConfigFile::write(args.config_path.as_deref(), &params.render(&remote_path))?;
        Ok((config, params.target(&remote_path)))
    }
}

fn rclone_for(args: &RemoteArgs, config: &ConfigFile, stats_interval: Duration) -> Rclone {
    Rclone {
        binary: args.rclone_binary.clone(),
        config: config.path().to_path_buf(),
        verbosity: args.verbose,
        stats_interval,
    }
}

/// The PID file at its default place; a default that cannot be used is no reason not to
/// sync, only to warn that `interrupt` cannot reach this run.
fn acquire_default_pid_file() -> Option<PidFile> {
    let default = DefaultPidPath::for_this_user();
    match default
        .prepare()
        .and_then(|()| PidFile::acquire(&default.path))
    {
        Ok(guard) => guard,
        Err(e) => {
            tracing::warn!(error = %e, "running without a PID file; `interrupt` cannot reach this run (set --pid-path)");
            None
        }
    }
}

async fn run_sync(
    direction: Direction,
    local: std::path::PathBuf,
    remote_path: RemotePath,
    options: JobOptions,
    common: &CommonSyncArgs,
) -> Result<()> {
    // Everything the user gave is validated before anything is written.
    let schedule = common
        .schedule
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(str::parse::<Schedule>)
        .transpose()
        .map_err(|e| AgentError::invalid(format!("--schedule {e}")))?;
    let (config, remote) = prepare_remote(&common.remote, &remote_path)?;
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
    let stop =
        StopSignal::install(Some(common.final_sync_timeout).filter(|limit| !limit.is_zero()))?;
    let _pid_file = match &common.pid_path {
        Some(path) => PidFile::acquire(path)?,
        None => acquire_default_pid_file(),
    };
    let reporter = match &common.report_url {
        Some(url) => Some(Reporter::new(
            url,
            common.report_token_file.as_deref(),
            common.report_resource.as_deref().unwrap_or_default(),
            direction,
        )?),
        None => None,
    };
    let writer_lease = match &options.writer_lease {
        Some((url, preferred)) => Some(WriterLease::new(
            url,
            common.report_token_file.as_deref(),
            common.report_resource.as_deref().unwrap_or_default(),
            &report::pod_name(),
            &remote,
            *preferred,
        )?),
        None => None,
    };
    let job = SyncJob {
        direction,
        reporter,
        writer_lease: writer_lease.clone(),
        local,
        encrypted: is_encrypted_target(&remote),
        remote,
        delete: !common.no_delete,
        force: options.force,
        deletion_limits: (!common.no_deletion_plan).then_some(Limits {
            max_percent: common.max_delete_percent,
            max_files: common.max_delete_files,
        }),
        sentinel: options.sentinel,
        allow_incomplete: options.allow_incomplete,
        keep_local_if_remote_empty: options.keep_local_if_remote_empty,
        discard_local_changes: options.discard_local_changes,
        full_sync_interval: options.full_sync_interval,
        trash: options.trash,
        as_of: options.as_of,
        rclone: rclone_for(&common.remote, &config, common.stats_interval),
        running_uid: nix::unistd::geteuid().as_raw(),
        running_gid: nix::unistd::getegid().as_raw(),
        sync_lock: Some(sync_lock::lock_path(
            &common
                .pid_path
                .clone()
                .unwrap_or_else(|| DefaultPidPath::for_this_user().path),
        )),
    };
    let status = Arc::new(Status::default());
    if let Some(addr) = common.status_addr {
        let server = StatusServer {
            direction: direction.as_str(),
            unhealthy_after_failures: common.unhealthy_after_failures,
        };
        let bound = server.spawn(addr, status.clone()).await?;
        if let Some(file) = &common.status_addr_file {
            std::fs::write(file, bound.to_string())
                .map_err(|e| AgentError::io("cannot write --status-addr-file", file, e))?;
        }
    }
    let asking = writer_lease.as_ref().map(WriterLease::keep_asking);
    let mut abort = stop.clone();
    let run = async {
        if schedule.is_none() && watcher.is_none() {
            runner::run_once(&job, &status, stop).await
        } else {
            let triggers = runner::Triggers { schedule, watcher };
            runner::run_continuously(&job, triggers, &status, stop).await
        }
    };
    // A second signal drops the run, which kills rclone; the config and the PID file are
    // removed on the way out.
    let result = tokio::select! {
        result = run => result,
        error = abort.aborted() => Err(error),
    };
    if let (Some(lease), Some(asking)) = (&writer_lease, asking) {
        asking.abort();
        lease.release().await;
    }
    drop(config);
    result.map(|_| ())
}
