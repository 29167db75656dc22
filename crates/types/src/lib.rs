//! Shared model of volume-syncing-controller.
//!
//! This crate sits at the bottom of the workspace: it holds the names that users and
//! both binaries rely on (the env-var contract, labels, container names), rclone's
//! password obscuring, and the `PodFilesystemSync` custom resource. It has no async
//! runtime and performs no I/O.

pub mod agent_args;
pub mod contract;
#[cfg(feature = "kube")]
pub mod crd;
pub mod obscure;
#[cfg(feature = "serde")]
pub mod report;
pub mod schedule;
#[cfg(feature = "serde")]
pub mod sync_requests;
#[cfg(feature = "serde")]
pub mod writer_lease;
