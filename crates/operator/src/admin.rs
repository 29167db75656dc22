//! The plain-HTTP admin port: `/healthz`, `/readyz`, `/metrics` and, with `--report-url`,
//! the agents' `/report` and `/writer-lease`; and the poller that makes `/readyz` ready.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use kube::runtime::reflector::Store;
use vsc_types::crd::PodFilesystemSync;

use crate::metrics::Metrics;
use crate::mutation::ReportConfig;
use crate::report::ReportState;

/// What `/readyz` and `/metrics` serve.
pub struct AdminState {
    pub metrics: Arc<Metrics>,
    pub ready: AtomicBool,
}

impl AdminState {
    /// Not ready until [`wait_until_ready`] sees the cache synced.
    pub fn new(metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            metrics,
            ready: AtomicBool::new(false),
        })
    }
}

async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "PodFilesystemSync cache not synced yet\n",
        )
    }
}

async fn serve_metrics(State(state): State<Arc<AdminState>>) -> String {
    state.metrics.encode()
}

/// The admin router; with `reports` (`--report-url`), `/report` and, with writer leases,
/// `/writer-lease`, served with `report_state`.
pub fn router(
    state: Arc<AdminState>,
    reports: Option<(&ReportConfig, Arc<ReportState>)>,
) -> Router {
    let admin = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(serve_metrics))
        .with_state(state);
    let Some((report, report_state)) = reports else {
        return admin;
    };
    let mut reports = Router::new()
        .route("/report", post(crate::report::receive))
        .route(
            vsc_types::sync_requests::SYNC_REQUESTS_PATH,
            post(crate::sync_requests::receive),
        );
    if report.writer_leases {
        reports = reports.route(
            vsc_types::writer_lease::LEASE_PATH,
            post(crate::writer_lease::receive),
        );
    }
    admin.merge(reports.with_state(report_state))
}

/// Marks `state` ready once the PodFilesystemSync cache has synced.
pub async fn wait_until_ready(store: Store<PodFilesystemSync>, state: Arc<AdminState>) {
    // The store's readiness is a oneshot that wakes only its latest poller (the
    // controller's own): poll again every few milliseconds instead of waiting once,
    // so readiness follows the cache's first sync closely.
    loop {
        match tokio::time::timeout(
            std::time::Duration::from_millis(10),
            store.wait_until_ready(),
        )
        .await
        {
            Ok(Ok(())) => {
                state.ready.store(true, Ordering::Relaxed);
                tracing::info!("PodFilesystemSync cache synced; ready");
                return;
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the PodFilesystemSync cache never synced");
                return;
            }
            Err(_still_waiting) => {}
        }
    }
}
