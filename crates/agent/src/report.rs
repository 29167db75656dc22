//! `--report-url`: tells the operator how each sync went (recorded in the PodFilesystemSync's
//! status). Best effort: a report that cannot be delivered is logged, never fails a sync.
//!
//! Plain HTTP to the operator's in-cluster admin port; the bearer token the webhook granted
//! is good only for reporting on this Pod's resource.

use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;

use crate::error::{AgentError, Result};

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Reporter {
    host_port: String,
    path: String,
    token: String,
    resource: String,
    pod: String,
    direction: &'static str,
}

impl Reporter {
    /// Validates the settings at start, so a typo is an error then, not a silent loss later.
    pub fn new(url: &str, token: &str, resource: &str, direction: &'static str) -> Result<Self> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            AgentError::invalid(format!(
                "--report-url '{url}' must be an http:// URL (the operator's in-cluster admin port)"
            ))
        })?;
        let (host_port, path) = match rest.split_once('/') {
            Some((host, path)) => (host.to_string(), format!("/{path}")),
            None => (rest.to_string(), "/".to_string()),
        };
        if host_port.is_empty() || token.is_empty() || !resource.contains('/') {
            return Err(AgentError::invalid(
                "--report-url needs --report-token and --report-resource <namespace>/<name> (VSC_REPORT_TOKEN, VSC_REPORT_RESOURCE)",
            ));
        }
        let host_port = if host_port.contains(':') {
            host_port
        } else {
            format!("{host_port}:80")
        };
        Ok(Reporter {
            host_port,
            path,
            token: token.to_string(),
            resource: resource.to_string(),
            // POD_NAME comes from the downward API (the webhook sets it); the hostname is the
            // Pod's name too, except with hostNetwork, where it is the node's.
            pod: std::env::var(vsc_types::contract::ENV_POD_NAME)
                .or_else(|_| std::env::var("HOSTNAME"))
                .unwrap_or_default(),
            direction,
        })
    }

    pub async fn send(&self, result: &Result<impl std::fmt::Debug>) {
        let body = serde_json::json!({
            "resource": self.resource,
            "pod": self.pod,
            "direction": self.direction,
            "success": result.is_ok(),
            "message": result.as_ref().err().map(ToString::to_string).unwrap_or_default(),
        })
        .to_string();
        match tokio::time::timeout(TIMEOUT, self.post(&body)).await {
            Ok(Ok(status)) if (200..300).contains(&status) => {
                tracing::debug!(status, "sync reported to the operator")
            }
            Ok(Ok(status)) => tracing::warn!(status, "the operator refused the sync report"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not report the sync to the operator"),
            Err(_) => tracing::warn!("reporting the sync to the operator timed out"),
        }
    }

    async fn post(&self, body: &str) -> std::io::Result<u16> {
        let mut stream = TcpStream::connect(&self.host_port).await?;
        let request = format!(
            "POST {} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            self.path,
            self.host_port,
            self.token,
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        let head = String::from_utf8_lossy(&response);
        Ok(head
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_at_start() {
        assert!(Reporter::new("https://op:8080/report", "t", "ns/name", "to-remote").is_err());
        assert!(Reporter::new("http://op:8080/report", "", "ns/name", "to-remote").is_err());
        assert!(Reporter::new("http://op:8080/report", "t", "nameonly", "to-remote").is_err());
        let reporter =
            Reporter::new("http://op/report", "t", "ns/name", "to-remote").expect("valid");
        assert_eq!(reporter.host_port, "op:80");
        assert_eq!(reporter.path, "/report");
    }
}
