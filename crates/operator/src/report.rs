//! Sync reports from the agents: each injected container may POST the result of a sync to
//! the operator, which records it in its PodFilesystemSync's status ([`crate::sync_status`]:
//! the Pod's entry in `status.pods` and the `Synced` condition).
//!
//! A report is believed only from the Pod it names, about the resource that selected it:
//! its bearer token is the Pod's service account token, projected by the kubelet with the
//! audience of that one resource ([`report_audience`]). A TokenReview by the API server
//! proves the audience, the namespace and the Pod the token is bound to; the token never
//! leaves the Pod and expires within the hour. A replayed request is refused by its
//! `sentAt`, which must be newer than the Pod's last report and close to now.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use k8s_openapi::api::authentication::v1::{TokenReview, TokenReviewSpec, UserInfo};
use kube::Resource as _;
use kube::api::{Api, PostParams};
use kube::runtime::events::{Event, EventType, Recorder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;

use vsc_types::contract::report_audience;
use vsc_types::crd::{PodFilesystemSync, REASON_SYNC_FAILING, REASON_SYNC_RECOVERED};
use vsc_types::report::SyncReport;

use crate::accepted_tokens::AcceptedTokens;
use crate::metrics::ResultLabels;
use crate::sync_status::{self, Recorded, Streak};

/// Longest Pod name Kubernetes accepts.
pub(crate) const MAX_POD_NAME: usize = 253;
/// How far a report's `sentAt` may be from the operator's clock (clock skew between nodes,
/// a slow network); older requests are refused as replays.
pub const MAX_REPORT_AGE_SECONDS: i64 = 300;
/// The Pod a bound service account token belongs to, in a TokenReview's `user.extra`.
const EXTRA_POD_NAME: &str = "authentication.kubernetes.io/pod-name";

pub struct ReportState {
    pub client: kube::Client,
    /// Tokens accepted by a TokenReview within the last minute.
    pub accepted_tokens: AcceptedTokens,
    /// `volume_syncing_operator_report_token_checks_total`, by result.
    pub token_checks: Family<ResultLabels, Counter>,
    /// Where the writer leases are kept: the operator's own namespace.
    pub lease_namespace: String,
    /// Publishes `SyncFailing` / `SyncRecovered` Events, once per failure streak.
    pub recorder: Recorder,
}

impl ReportState {
    fn token_checks(&self, result: &str) {
        self.token_checks
            .get_or_create(&ResultLabels {
                result: result.to_string(),
            })
            .inc();
    }
}

pub(crate) type Answer = (StatusCode, String);

pub(crate) fn refuse(code: StatusCode, why: impl Into<String>) -> Answer {
    (code, format!("{}\n", why.into()))
}

pub async fn receive(
    State(state): State<Arc<ReportState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let report = match parse_from_pod::<SyncReport>(&body) {
        Ok(report) => report,
        Err(answer) => return answer,
    };
    let (namespace, name) =
        match check_sender(&state, &headers, &report.resource, &report.pod).await {
            Ok(resource) => resource,
            Err(answer) => return answer,
        };
    let Some(sent_at) = report.sent_at() else {
        return refuse(StatusCode::BAD_REQUEST, "sentAt must be an RFC 3339 time");
    };
    let age = chrono::Utc::now()
        .signed_duration_since(sent_at)
        .num_seconds();
    if age.abs() > MAX_REPORT_AGE_SECONDS {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "sentAt is {age} s from the operator's clock (at most {MAX_REPORT_AGE_SECONDS} s): a replayed or delayed report"
            ),
        );
    }
    let api: Api<PodFilesystemSync> = Api::namespaced(state.client.clone(), namespace);
    let sync = sync_status::Report {
        pod: report.pod.clone(),
        direction: report.direction.as_str().to_string(),
        success: report.success,
        message: report.message.clone(),
        sent_at: sent_at.timestamp_micros(),
    };
    match sync_status::record_report(&api, name, &sync).await {
        Ok(Recorded::Written(written)) => {
            if let Some(streak) = &written.streak {
                announce(&state.recorder, &written.before, streak).await;
            }
            (StatusCode::NO_CONTENT, String::new())
        }
        Ok(Recorded::NotNewer) => refuse(
            StatusCode::FORBIDDEN,
            format!(
                "Pod {} already reported at or after {}: a replayed report",
                report.pod, report.sent_at
            ),
        ),
        Ok(Recorded::NoResource) => refuse(
            StatusCode::NOT_FOUND,
            format!("no PodFilesystemSync {}", report.resource),
        ),
        Err(e) => {
            tracing::warn!(error = %e, resource = %report.resource, "could not record a sync report");
            refuse(StatusCode::BAD_GATEWAY, "could not record the report")
        }
    }
}

/// The `namespace` and `name` of `resource` (`namespace/name`) when the request's bearer
/// token proves it comes from `pod`, selected by that resource.
pub(crate) async fn check_sender<'r>(
    state: &ReportState,
    headers: &HeaderMap,
    resource: &'r str,
    pod: &str,
) -> Result<(&'r str, &'r str), Answer> {
    let Some((namespace, name)) = resource.split_once('/') else {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "resource must be namespace/name",
        ));
    };
    authenticate(state, bearer(headers), namespace, name, pod).await?;
    Ok((namespace, name))
}

/// The bearer token of a request ("" without one).
fn bearer(headers: &HeaderMap) -> &str {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
}

/// A request body sent by an agent in a Pod, which names that Pod.
pub(crate) trait FromPod: serde::de::DeserializeOwned {
    /// What the body is, for the 400 ("a sync report").
    const WHAT: &'static str;
    fn pod(&self) -> &str;
}

impl FromPod for SyncReport {
    const WHAT: &'static str = "a sync report";
    fn pod(&self) -> &str {
        &self.pod
    }
}

/// The body as a `T`, or a 400 that says what is wrong with it.
pub(crate) fn parse_from_pod<T: FromPod>(body: &[u8]) -> Result<T, Answer> {
    let parsed: T = serde_json::from_slice(body).map_err(|e| {
        refuse(
            StatusCode::BAD_REQUEST,
            format!("the body is not {}: {e}", T::WHAT),
        )
    })?;
    let pod = parsed.pod();
    if pod.is_empty() || pod.len() > MAX_POD_NAME {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "pod must name the sending Pod",
        ));
    }
    Ok(parsed)
}

/// Whether `token` is a service account token of a Pod named `pod` in `namespace`, issued
/// for the audience of the resource `namespace/name`: remembered from an earlier review
/// ([`AcceptedTokens`]), else asked of the API server by a TokenReview.
async fn authenticate(
    state: &ReportState,
    token: &str,
    namespace: &str,
    name: &str,
    pod: &str,
) -> Result<(), Answer> {
    let forbidden = |why: String| refuse(StatusCode::FORBIDDEN, why);
    if token.is_empty() {
        return Err(forbidden(
            "a report needs the Pod's report token as a Bearer token".into(),
        ));
    }
    let audience = report_audience(namespace, name);
    let now = Instant::now();
    let reviewed = if let Some((token_namespace, token_pod)) =
        state.accepted_tokens.bound_to(&audience, token, now)
    {
        state.token_checks("remembered");
        Reviewed::Bound(token_namespace, token_pod)
    } else {
        let reviewed = review(state, token, &audience).await?;
        if let Reviewed::Bound(token_namespace, token_pod) = &reviewed {
            state
                .accepted_tokens
                .remember(&audience, token, token_namespace, token_pod, now);
        }
        reviewed
    };
    match reviewed {
        Reviewed::Bound(token_namespace, token_pod)
            if token_namespace == namespace && token_pod == pod =>
        {
            Ok(())
        }
        Reviewed::Bound(..) | Reviewed::NotAPodToken => Err(forbidden(format!(
            "the token is not bound to Pod {pod} in {namespace}"
        ))),
        Reviewed::Refused => Err(forbidden(format!(
            "the token does not grant reports for {namespace}/{name}"
        ))),
    }
}

/// What a TokenReview said of a report token.
enum Reviewed {
    /// Accepted for the audience, bound to this namespace and Pod.
    Bound(String, String),
    /// Accepted for the audience, but no Pod's service account token.
    NotAPodToken,
    /// Not accepted, or not for that audience.
    Refused,
}

/// A TokenReview of `token` for `audience`.
async fn review(state: &ReportState, token: &str, audience: &str) -> Result<Reviewed, Answer> {
    let review = TokenReview {
        spec: TokenReviewSpec {
            token: Some(token.to_string()),
            audiences: Some(vec![audience.to_string()]),
        },
        ..TokenReview::default()
    };
    let reviewed = Api::<TokenReview>::all(state.client.clone())
        .create(&PostParams::default(), &review)
        .await
        .map_err(|e| {
            state.token_checks("error");
            tracing::warn!(error = %e, "TokenReview failed; a report cannot be checked");
            refuse(StatusCode::BAD_GATEWAY, "could not check the report token")
        })?;
    let status = reviewed.status.unwrap_or_default();
    let audiences = status.audiences.unwrap_or_default();
    let accepted = status.authenticated == Some(true) && audiences.iter().any(|a| a == audience);
    let reviewed = match token_pod(&status.user.unwrap_or_default()) {
        Some((token_namespace, token_pod)) if accepted => {
            Reviewed::Bound(token_namespace, token_pod)
        }
        None if accepted => Reviewed::NotAPodToken,
        _ => Reviewed::Refused,
    };
    state.token_checks(if accepted { "accepted" } else { "refused" });
    Ok(reviewed)
}

/// The namespace and Pod a reviewed service account token is bound to.
fn token_pod(user: &UserInfo) -> Option<(String, String)> {
    let username = user.username.as_deref()?;
    let account = username.strip_prefix("system:serviceaccount:")?;
    let (token_namespace, _) = account.split_once(':')?;
    match user.extra.as_ref()?.get(EXTRA_POD_NAME)?.as_slice() {
        [pod] => Some((token_namespace.to_string(), pod.clone())),
        _ => None,
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

    fn user(username: &str, pods: &[&str]) -> UserInfo {
        UserInfo {
            username: Some(username.into()),
            extra: Some(
                [(
                    EXTRA_POD_NAME.to_string(),
                    pods.iter().map(std::string::ToString::to_string).collect(),
                )]
                .into(),
            ),
            ..UserInfo::default()
        }
    }

    #[test]
    fn only_a_pod_bound_service_account_token_names_a_namespace_and_pod() {
        let bound = |namespace: &str, pod: &str| Some((namespace.to_string(), pod.to_string()));
        assert_eq!(
            token_pod(&user("system:serviceaccount:shop:default", &["web-0"])),
            bound("shop", "web-0")
        );
        assert_eq!(
            token_pod(&user("system:serviceaccount:other:default", &["web-0"])),
            bound("other", "web-0")
        );
        assert_eq!(
            token_pod(&user("system:serviceaccount:shop:default", &[])),
            None
        );
        assert_eq!(
            token_pod(&user("system:serviceaccount:shop:default", &["a", "b"])),
            None
        );
        assert_eq!(token_pod(&user("alice", &["web-0"])), None);
    }

    #[test]
    fn a_body_that_is_not_a_report_is_refused_with_what_is_wrong() {
        let (code, text) = parse_from_pod::<SyncReport>(
            br#"{"resource":"a/b","pod":"p","direction":"sideways","success":true,"sentAt":"x"}"#,
        )
        .expect_err("refused");
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(
            text.contains("sideways") && text.contains("to-remote"),
            "{text}"
        );
    }
}
