//! `--report-url`: tells the operator how each sync went (recorded in the PodFilesystemSync's
//! status). Best effort: a report that cannot be delivered is logged, never fails a sync.
//!
//! Plain HTTP to the operator's in-cluster admin port. The bearer token is the Pod's own
//! service account token, projected by the kubelet for the resource's audience: the
//! operator checks it with the API server, so it proves which Pod reports and about what.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::TcpStream;
use vsc_types::report::{SyncDirection, SyncReport};

use crate::error::{AgentError, Result};

const TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone)]
pub struct Reporter {
    target: HttpTarget,
    token_file: PathBuf,
    resource: String,
    pod: String,
    direction: SyncDirection,
}

impl Reporter {
    /// Validates the settings at start, so a typo is an error then, not a silent loss later.
    pub fn new(
        url: &str,
        token_file: Option<&Path>,
        resource: &str,
        direction: SyncDirection,
    ) -> Result<Self> {
        let target = HttpTarget::parse(url, "--report-url")?;
        let token_file = token_file.filter(|file| !file.as_os_str().is_empty());
        let complete = resource.contains('/');
        let Some(token_file) = token_file.filter(|_| complete) else {
            return Err(AgentError::invalid(
                "--report-url needs --report-token-file and --report-resource <namespace>/<name> (VSC_REPORT_TOKEN_FILE, VSC_REPORT_RESOURCE)",
            ));
        };
        Ok(Reporter {
            target,
            token_file: token_file.to_path_buf(),
            resource: resource.to_string(),
            // POD_NAME comes from the downward API (the webhook sets it); the hostname is the
            // Pod's name too, except with hostNetwork, where it is the node's.
            pod: pod_name(),
            direction,
        })
    }

    pub async fn send(&self, result: &Result<impl std::fmt::Debug>) {
        let report = SyncReport {
            resource: self.resource.clone(),
            pod: self.pod.clone(),
            direction: self.direction,
            success: result.is_ok(),
            message: result
                .as_ref()
                .err()
                .map(ToString::to_string)
                .unwrap_or_default(),
            sent_at: SyncReport::timestamp(chrono::Utc::now()),
        };
        let token = match tokio::fs::read_to_string(&self.token_file).await {
            Ok(token) => token.trim().to_string(),
            Err(e) => {
                let file = self.token_file.display();
                tracing::warn!(error = %e, %file, "cannot read the report token; sync not reported");
                return;
            }
        };
        let body = serde_json::to_string(&report).unwrap_or_default();
        match tokio::time::timeout(TIMEOUT, post_json(&self.target, &token, &body)).await {
            Ok(Ok((status, _))) if (200..300).contains(&status) => {
                tracing::debug!(status, "sync reported to the operator");
            }
            Ok(Ok((status, _))) => tracing::warn!(status, "the operator refused the sync report"),
            Ok(Err(e)) => tracing::warn!(error = %e, "could not report the sync to the operator"),
            Err(_) => tracing::warn!("reporting the sync to the operator timed out"),
        }
    }
}

/// The Pod's name: from the downward API (the webhook sets POD_NAME); the hostname is the
/// Pod's name too, except with hostNetwork, where it is the node's.
pub fn pod_name() -> String {
    std::env::var(vsc_types::contract::ENV_POD_NAME)
        .or_else(|_| std::env::var("HOSTNAME"))
        .unwrap_or_default()
}

/// An http:// endpoint of the operator's in-cluster admin port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpTarget {
    host_port: String,
    path: String,
}

impl HttpTarget {
    /// `url` of the flag `flag`, or an error that names it.
    pub fn parse(url: &str, flag: &str) -> Result<Self> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            AgentError::invalid(format!(
                "{flag} '{url}' must be an http:// URL (the operator's in-cluster admin port)"
            ))
        })?;
        let (host_port, path) = match rest.split_once('/') {
            Some((host, path)) => (host.to_string(), format!("/{path}")),
            None => (rest.to_string(), "/".to_string()),
        };
        if host_port.is_empty() {
            return Err(AgentError::invalid(format!("{flag} '{url}' has no host")));
        }
        let host_port = if host_port.contains(':') {
            host_port
        } else {
            format!("{host_port}:80")
        };
        Ok(HttpTarget { host_port, path })
    }
}

/// Asks the operator at `target`: POSTs `body` with the token in `token_file`, and parses a
/// 200's JSON answer; an error starting with `what` otherwise.
pub async fn ask_operator<T: serde::de::DeserializeOwned>(
    target: &HttpTarget,
    token_file: &Path,
    body: &impl serde::Serialize,
    what: &str,
) -> Result<T> {
    let failed = |why: String| AgentError::Internal(format!("{what}: {why}"));
    let token = tokio::fs::read_to_string(token_file)
        .await
        .map_err(|e| failed(format!("cannot read {}: {e}", token_file.display())))?;
    let body = serde_json::to_string(body).map_err(|e| failed(e.to_string()))?;
    let sent = post_json(target, token.trim(), &body);
    let (status, answer) = tokio::time::timeout(TIMEOUT, sent)
        .await
        .map_err(|_| failed("the operator did not answer in time".into()))?
        .map_err(|e| failed(e.to_string()))?;
    if status != 200 {
        return Err(failed(format!(
            "the operator answered {status}: {}",
            answer.trim()
        )));
    }
    serde_json::from_str(&answer).map_err(|e| failed(format!("not an answer: {e}")))
}

/// POSTs a JSON `body` with a bearer token over HTTP/1.0; the status code and the body of
/// the answer.
pub async fn post_json(
    target: &HttpTarget,
    token: &str,
    body: &str,
) -> std::io::Result<(u16, String)> {
    let mut stream = TcpStream::connect(&target.host_port).await?;
    let request = format!(
        "POST {} HTTP/1.0\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        target.path,
        target.host_port,
        body.len()
    );
    stream.write_all(request.as_bytes()).await?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response).await?;
    let text = String::from_utf8_lossy(&response);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_are_checked_at_start() {
        let token = Some(Path::new("/var/run/secrets/token"));
        let to_remote = SyncDirection::ToRemote;
        assert!(Reporter::new("https://op:8080/report", token, "ns/name", to_remote).is_err());
        assert!(Reporter::new("http://op:8080/report", None, "ns/name", to_remote).is_err());
        assert!(Reporter::new("http://op:8080/report", token, "nameonly", to_remote).is_err());
        let reporter =
            Reporter::new("http://op/report", token, "ns/name", to_remote).expect("valid");
        assert_eq!(reporter.target.host_port, "op:80");
        assert_eq!(reporter.target.path, "/report");
    }
}
