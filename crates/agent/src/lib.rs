//! The volume-syncing-controller agent's commands, behind the `volume-syncing-controller`
//! binary (`main.rs`). A library so that the fuzz targets (`fuzz/`) and tests can call the
//! env -> rclone config renderer directly; its API is the binary's, not a stable one.

pub mod as_of;
pub mod cli;
pub mod deletion_plan;
pub mod error;
pub mod fidelity;
pub mod job;
pub mod layout;
pub mod local_record;
pub mod pidfile;
pub mod rclone;
pub mod rclone_config;
pub mod record;
pub mod remote_setup;
pub mod report;
pub mod runner;
pub mod safety;
pub mod stale_configs;
pub mod status_server;
pub mod sync_command;
pub mod sync_counters;
pub mod sync_lock;
pub mod sync_requests;
pub mod trash;
pub mod verify;
pub mod watch;
pub mod writer_lease;
