//! The operator: reconciles `PodFilesystemSync` resources and serves the Pod mutating
//! admission webhook that injects the agent.
pub mod encryption;
pub mod metrics;
pub mod tls;
pub mod pki;
pub mod controller;
pub mod mutation;
pub mod selection;
pub mod template;
pub mod webhook;
