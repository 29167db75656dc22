//! The operator: reconciles `PodFilesystemSync` resources and serves the Pod mutating
//! admission webhook that injects the agent.
pub mod accepted_tokens;
pub mod admin;
pub mod certificates;
pub mod cli;
pub mod conflict;
pub mod controller;
pub mod encryption;
pub mod env_secrets;
pub mod leader;
pub mod lease_sweep;
pub mod metrics;
pub mod mutation;
pub mod pki;
pub mod report;
pub mod resource_metrics;
pub mod selection;
pub mod sync_requests;
pub mod sync_status;
pub mod template;
pub mod tls;
pub mod validation;
pub mod webhook;
pub mod writer_lease;
