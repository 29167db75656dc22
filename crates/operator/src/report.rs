//! Sync reports from the agents: each injected container may POST the result of a sync to
//! the operator, which records it in its PodFilesystemSync's status. The webhook grants a
//! token per resource (an HMAC of `namespace/name` under the operator's key), so a Pod can
//! only report for the resource that selected it, and the operator stores no tokens.
//! Each report updates the Pod's entry in `status.pods` and the `Synced` condition
//! ([`crate::sync_status`]).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use hmac::{Hmac, Mac};
use kube::Resource as _;
use kube::api::Api;
use kube::runtime::events::{Event, EventType, Recorder};
use serde::Deserialize;
use sha2::Sha256;

use vsc_types::crd::{PodFilesystemSync, REASON_SYNC_FAILING, REASON_SYNC_RECOVERED};

use crate::sync_status::{self, Streak};

type HmacSha256 = Hmac<Sha256>;

/// The operator's secret for report tokens (Helm keeps it in a Secret, shared by replicas).
#[derive(Clone)]
pub struct ReportKey(Vec<u8>);

impl std::fmt::Debug for ReportKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ReportKey(…)")
    }
}

impl PartialEq for ReportKey {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}

impl ReportKey {
    pub fn new(key: impl Into<Vec<u8>>) -> Self {
        ReportKey(key.into())
    }

    fn mac(&self, resource: &str) -> HmacSha256 {
        // HMAC accepts keys of any length; this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.0)
            .unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
        mac.update(resource.as_bytes());
        mac
    }

    /// The token for `namespace/name`.
    pub fn token(&self, resource: &str) -> String {
        hex::encode(self.mac(resource).finalize().into_bytes())
    }

    /// Constant-time check of a presented token.
    pub fn verify(&self, resource: &str, token: &str) -> bool {
        hex::decode(token).is_ok_and(|bytes| self.mac(resource).verify_slice(&bytes).is_ok())
    }
}

/// What an agent reports after a sync.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// `namespace/name` of the PodFilesystemSync.
    pub resource: String,
    pub pod: String,
    /// `to-remote` or `to-local`.
    pub direction: String,
    pub success: bool,
    #[serde(default)]
    pub message: String,
}

/// Longest Pod name Kubernetes accepts.
const MAX_POD_NAME: usize = 253;

pub struct ReportState {
    pub client: kube::Client,
    pub key: ReportKey,
    /// Publishes `SyncFailing` / `SyncRecovered` Events, once per failure streak.
    pub recorder: Recorder,
}

pub async fn receive(
    State(state): State<Arc<ReportState>>,
    headers: HeaderMap,
    Json(report): Json<SyncReport>,
) -> (StatusCode, String) {
    let token = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !state.key.verify(&report.resource, token) {
        return (
            StatusCode::FORBIDDEN,
            "the token does not grant reports for this resource\n".into(),
        );
    }
    let Some((namespace, name)) = report.resource.split_once('/') else {
        return (
            StatusCode::BAD_REQUEST,
            "resource must be namespace/name\n".into(),
        );
    };
    if report.pod.is_empty() || report.pod.len() > MAX_POD_NAME {
        return (
            StatusCode::BAD_REQUEST,
            "pod must name the reporting Pod\n".into(),
        );
    }
    if !matches!(report.direction.as_str(), "to-remote" | "to-local") {
        return (
            StatusCode::BAD_REQUEST,
            "direction must be to-remote or to-local\n".into(),
        );
    }
    let api: Api<PodFilesystemSync> = Api::namespaced(state.client.clone(), namespace);
    let sync = sync_status::Report {
        pod: report.pod.clone(),
        direction: report.direction.clone(),
        success: report.success,
        message: report.message.clone(),
    };
    match sync_status::record_report(&api, name, &sync).await {
        Ok(Some(written)) => {
            if let Some(streak) = &written.streak {
                announce(&state.recorder, &written.before, streak).await;
            }
            (StatusCode::NO_CONTENT, String::new())
        }
        Ok(None) => (
            StatusCode::NOT_FOUND,
            format!("no PodFilesystemSync {}\n", report.resource),
        ),
        Err(e) => {
            tracing::warn!(error = %e, resource = %report.resource, "could not record a sync report");
            (
                StatusCode::BAD_GATEWAY,
                "could not record the report\n".into(),
            )
        }
    }
}

/// One Event per failure streak: when it reaches the threshold, and when it ends.
async fn announce(recorder: &Recorder, pfss: &PodFilesystemSync, streak: &Streak) {
    let (type_, reason, note) = match streak {
        Streak::Failing {
            pod,
            failures,
            error,
        } => (
            EventType::Warning,
            REASON_SYNC_FAILING,
            format!("Pod {pod}: the last {failures} syncs failed: {error}"),
        ),
        Streak::Recovered { pod, failures } => (
            EventType::Normal,
            REASON_SYNC_RECOVERED,
            format!("Pod {pod} synced successfully again after {failures} failed syncs"),
        ),
    };
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Sync".to_string(),
        secondary: None,
    };
    if let Err(e) = recorder.publish(&event, &pfss.object_ref(&())).await {
        tracing::warn!(error = %e, reason, "could not publish an Event");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_valid_only_for_its_resource_and_key() {
        let key = ReportKey::new(b"operator secret".to_vec());
        let token = key.token("shop/data");
        assert!(key.verify("shop/data", &token));
        assert!(!key.verify("shop/other", &token));
        assert!(!key.verify("shop/data", "not-hex"));
        assert!(!ReportKey::new(b"another".to_vec()).verify("shop/data", &token));
    }
}
