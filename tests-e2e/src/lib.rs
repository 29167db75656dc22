//! End-to-end harness: a real control plane, the operator as a local process over TLS, and
//! a kubelet stand-in that runs the injected containers' commands as local processes.

pub mod alerts;
pub mod control_plane;
pub mod dockerfile;
pub mod fixtures;
pub mod helm;
pub mod kubelet;
pub mod operator;
pub mod real_node;
pub mod s3_request_log;
