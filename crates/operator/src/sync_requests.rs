//! `/sync-requests`: how the sidecars of `syncOptions.writers: every` hear of
//! `kubectl pfss sync-now`. They ask here every few seconds, with the Pod's report token
//! (checked as for reports), and the answer is the resource's `riotkit.org/sync-requested-at`
//! when it is a valid time. Read-only: nothing is written. (`writers: one` sidecars get the
//! same time in their writer-lease answers.)

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use kube::ResourceExt as _;
use kube::api::Api;

use vsc_types::contract::{SYNC_REQUESTED_AT_ANNOTATION, parse_sync_requested_at};
use vsc_types::crd::PodFilesystemSync;
use vsc_types::sync_requests::{SyncRequestsAnswer, SyncRequestsQuery};

use crate::report::{Answer, FromPod, ReportState, check_sender, parse_from_pod, refuse};

pub async fn receive(
    State(state): State<Arc<ReportState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let query = match parse_from_pod::<SyncRequestsQuery>(&body) {
        Ok(query) => query,
        Err(answer) => return answer,
    };
    let (namespace, name) = match check_sender(&state, &headers, &query.resource, &query.pod).await
    {
        Ok(resource) => resource,
        Err(answer) => return answer,
    };
    let api: Api<PodFilesystemSync> = Api::namespaced(state.client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(pfss)) => {
            let answer = SyncRequestsAnswer {
                sync_requested_at: requested_sync(&pfss),
            };
            let text = serde_json::to_string(&answer).unwrap_or_default();
            (StatusCode::OK, text)
        }
        Ok(None) => refuse(
            StatusCode::NOT_FOUND,
            format!("no PodFilesystemSync {}", query.resource),
        ),
        Err(e) => {
            tracing::warn!(error = %e, resource = %query.resource, "could not read a resource's sync requests");
            refuse(StatusCode::BAD_GATEWAY, "could not read the resource")
        }
    }
}

impl FromPod for SyncRequestsQuery {
    const WHAT: &'static str = "a sync-requests query";
    fn pod(&self) -> &str {
        &self.pod
    }
}

/// The resource's sync request, when its annotation is a valid time (an invalid one is the
/// reconciler's to report, in the `SyncRequested` condition), as `sentAt`-style text.
pub fn requested_sync(pfss: &PodFilesystemSync) -> Option<String> {
    let value = pfss.annotations().get(SYNC_REQUESTED_AT_ANNOTATION)?;
    parse_sync_requested_at(value)
        .ok()
        .map(vsc_types::report::sent_at_text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(value: &str) -> PodFilesystemSync {
        let mut pfss: PodFilesystemSync = serde_json::from_value(serde_json::json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": "data", "namespace": "web"},
            "spec": {"localPath": "/data", "remotePath": "/b/data", "podSelector": {}},
        }))
        .expect("a resource");
        pfss.annotations_mut()
            .insert(SYNC_REQUESTED_AT_ANNOTATION.into(), value.into());
        pfss
    }

    #[test]
    fn only_a_valid_time_is_a_request_and_it_is_sent_in_utc() {
        assert_eq!(
            requested_sync(&annotated("2026-12-02T20:00:00+01:00")).as_deref(),
            Some("2026-12-02T19:00:00.000000Z")
        );
        assert_eq!(requested_sync(&annotated("now please")), None);
    }

    #[test]
    fn a_query_without_a_pod_is_refused_by_name() {
        let (status, text) =
            parse_from_pod::<SyncRequestsQuery>(br#"{"resource":"web/data","pod":""}"#)
                .expect_err("refused");
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(text.contains("pod must name"), "{text}");
        let (_, text) = parse_from_pod::<SyncRequestsQuery>(b"{}").expect_err("refused");
        assert!(text.contains("not a sync-requests query"), "{text}");
    }
}
