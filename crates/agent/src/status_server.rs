//! `--status-addr`: `/healthz`, `/readyz` and Prometheus `/metrics` for probes and scrapers.
//!
//! A few lines of HTTP/1.0 over a TCP socket: three fixed GET routes do not justify an HTTP
//! stack in an agent that ships in every Pod.

use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::UNIX_EPOCH;

use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use crate::error::{AgentError, Result};
use crate::sync_counters::{Snapshot, Status};

#[derive(Debug, Clone)]
pub struct StatusServer {
    pub direction: &'static str,
    /// `/healthz` fails once this many syncs in a row have failed; 0: never.
    pub unhealthy_after_failures: u64,
}

impl StatusServer {
    /// Binds `addr` now (so a taken port is an error at start) and serves in the background.
    pub async fn spawn(self, addr: SocketAddr, status: Arc<Status>) -> Result<SocketAddr> {
        let listener = TcpListener::bind(addr).await.map_err(|e| {
            AgentError::invalid(format!("--status-addr {addr}: cannot listen: {e}"))
        })?;
        let bound = listener
            .local_addr()
            .map_err(|e| AgentError::Internal(format!("status listener: {e}")))?;
        tracing::info!(%bound, "serving /healthz, /readyz and /metrics");
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((stream, _)) => {
                        let server = self.clone();
                        let status = status.clone();
                        tokio::spawn(async move { server.answer(stream, &status).await });
                    }
                    Err(e) => tracing::warn!(error = %e, "status listener accept failed"),
                }
            }
        });
        Ok(bound)
    }

    async fn answer(&self, mut stream: TcpStream, status: &Status) {
        // Read the whole request head (it may arrive in pieces), bounded in size and time:
        // answering early and closing with unread bytes resets the client's connection.
        let mut request = Vec::with_capacity(512);
        let read_head = async {
            let mut chunk = [0u8; 512];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 8192 {
                match stream.read(&mut chunk).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&chunk[..n]),
                }
            }
        };
        if tokio::time::timeout(std::time::Duration::from_secs(5), read_head)
            .await
            .is_err()
        {
            return;
        }
        let read = request.len();
        let head = String::from_utf8_lossy(&request[..read]);
        let path = head
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("GET "))
            .and_then(|rest| rest.split_whitespace().next())
            .unwrap_or("");
        let (code, content_type, body) = self.route(path, &status.snapshot());
        let response = format!(
            "HTTP/1.0 {code}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    }

    fn route(&self, path: &str, snapshot: &Snapshot) -> (&'static str, &'static str, String) {
        const TEXT: &str = "text/plain; charset=utf-8";
        match path {
            "/healthz" => {
                let threshold = self.unhealthy_after_failures;
                if threshold > 0 && snapshot.consecutive_failures >= threshold {
                    let last = snapshot.last_error.as_deref().unwrap_or("unknown error");
                    let body = format!(
                        "unhealthy: {} syncs in a row failed; last error: {last}\n",
                        snapshot.consecutive_failures
                    );
                    ("503 Service Unavailable", TEXT, body)
                } else if snapshot.upload_held == Some(true) {
                    let primary = snapshot.primary.as_deref().unwrap_or("none yet");
                    let body = format!("ok (holding uploads: the primary writer is {primary})\n");
                    ("200 OK", TEXT, body)
                } else {
                    ("200 OK", TEXT, "ok\n".into())
                }
            }
            "/readyz" => ("200 OK", TEXT, "ok\n".into()),
            "/metrics" => (
                "200 OK",
                "text/plain; version=0.0.4",
                self.metrics(snapshot),
            ),
            _ => ("404 Not Found", TEXT, "not found\n".into()),
        }
    }

    fn metrics(&self, snapshot: &Snapshot) -> String {
        let direction = format!("direction=\"{}\"", self.direction);
        let mut out = String::new();
        let samples = [
            (
                format!("{direction},result=\"success\""),
                snapshot.successes as f64,
            ),
            (
                format!("{direction},result=\"failure\""),
                snapshot.failures as f64,
            ),
        ];
        family(
            &mut out,
            "syncs_total",
            "counter",
            "Syncs finished, by result.",
            &samples,
        );
        let consecutive = [(direction.clone(), snapshot.consecutive_failures as f64)];
        family(
            &mut out,
            "consecutive_failures",
            "gauge",
            "Syncs failed in a row since the last success.",
            &consecutive,
        );
        if let Some(last) = snapshot
            .last_success
            .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        {
            let samples = [(direction.clone(), last.as_secs_f64())];
            family(
                &mut out,
                "last_success_timestamp_seconds",
                "gauge",
                "When the last successful sync finished.",
                &samples,
            );
        }
        if let Some(held) = snapshot.upload_held {
            let samples = [(direction.clone(), f64::from(u8::from(held)))];
            family(
                &mut out,
                "upload_held",
                "gauge",
                "1 while uploads are held because another Pod is the primary writer.",
                &samples,
            );
        }
        if let Some(took) = snapshot.last_duration {
            let samples = [(direction, took.as_secs_f64())];
            family(
                &mut out,
                "last_duration_seconds",
                "gauge",
                "How long the last sync took.",
                &samples,
            );
        }
        out
    }
}

/// One metric family in Prometheus' text format: `volume_syncing_<name>{labels} value` lines.
fn family(out: &mut String, name: &str, kind: &str, help: &str, samples: &[(String, f64)]) {
    let _ = writeln!(out, "# HELP volume_syncing_{name} {help}");
    let _ = writeln!(out, "# TYPE volume_syncing_{name} {kind}");
    for (labels, value) in samples {
        let _ = writeln!(out, "volume_syncing_{name}{{{labels}}} {value}");
    }
}

/// `health`: GET /healthz from the agent whose address is in `addr_file`; Ok when it
/// answers 200, else an error naming what it answered (the probe's exit status and output).
pub async fn probe(addr_file: &std::path::Path) -> Result<()> {
    let text = std::fs::read_to_string(addr_file)
        .map_err(|e| AgentError::io("cannot read the status address from", addr_file, e))?;
    let addr: SocketAddr = text.trim().parse().map_err(|e| {
        AgentError::invalid(format!(
            "{}: '{}' is not an address: {e}",
            addr_file.display(),
            text.trim()
        ))
    })?;
    let unhealthy = |detail: String| AgentError::Internal(format!("{addr}: {detail}"));
    let mut stream = TcpStream::connect(addr)
        .await
        .map_err(|e| unhealthy(format!("cannot connect: {e}")))?;
    stream
        .write_all(b"GET /healthz HTTP/1.0\r\n\r\n")
        .await
        .map_err(|e| unhealthy(format!("cannot send: {e}")))?;
    let mut response = Vec::new();
    stream
        .take(64 * 1024)
        .read_to_end(&mut response)
        .await
        .map_err(|e| unhealthy(format!("cannot read the answer: {e}")))?;
    let response = String::from_utf8_lossy(&response);
    let status_line = response.lines().next().unwrap_or_default();
    if status_line.split(' ').nth(1) == Some("200") {
        tracing::debug!(%addr, "healthy");
        Ok(())
    } else {
        let body = response.split("\r\n\r\n").nth(1).unwrap_or_default().trim();
        Err(unhealthy(format!("{status_line}: {body}")))
    }
}
