//! The rclone side of a command: the config file it runs with and the [`Rclone`] that
//! uses it.

use std::time::Duration;

use crate::cli::RemoteArgs;
use crate::error::{AgentError, Result};
use crate::rclone::Rclone;
use crate::rclone_config::{ConfigFile, RemoteParams, RemotePath};

/// The rclone config for this run (written from the environment, or the user's own with
/// `--no-template`) and the rclone path that `remote_path` means in it.
pub fn prepare_remote(args: &RemoteArgs, remote_path: &RemotePath) -> Result<(ConfigFile, String)> {
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

pub fn rclone_for(args: &RemoteArgs, config: &ConfigFile, stats_interval: Duration) -> Rclone {
    Rclone {
        binary: args.rclone_binary.clone(),
        config: config.path().to_path_buf(),
        verbosity: args.verbose,
        stats_interval,
    }
}
