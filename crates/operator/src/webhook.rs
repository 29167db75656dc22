//! `/mutate-pods`: the admission review around the pure mutation. Side-effect free, so a
//! dry run is answered exactly like a real request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::State;
use k8s_openapi::api::core::v1::Pod;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::runtime::reflector::Store;

use vsc_types::contract::POD_OPT_IN_LABEL;
use vsc_types::crd::PodFilesystemSync;

use crate::metrics::Metrics;
use crate::mutation::{self, InjectionConfig};
use crate::selection;
use crate::validation;

pub struct WebhookState {
    pub store: Store<PodFilesystemSync>,
    pub injection: InjectionConfig,
    pub metrics: Arc<Metrics>,
}

/// Whether the Pod opted in (`riotkit.org/volume-syncing-controller: "true"`, any case).
fn opted_in(labels: Option<&BTreeMap<String, String>>) -> bool {
    labels
        .and_then(|labels| labels.get(POD_OPT_IN_LABEL))
        .is_some_and(|value| value.trim().eq_ignore_ascii_case("true"))
}

/// The answer to one request, given the resources the cache holds. Pure: tested without a server.
pub fn review(
    request: &AdmissionRequest<Pod>,
    candidates: &[Arc<PodFilesystemSync>],
    injection: &InjectionConfig,
) -> (AdmissionResponse, &'static str) {
    let response = AdmissionResponse::from(request);
    if !matches!(request.operation, Operation::Create) {
        return (response, "unchanged");
    }
    let Some(pod) = request.object.as_ref() else {
        return denied(response, "the request carries no Pod");
    };
    if !opted_in(pod.metadata.labels.as_ref()) {
        return (response, "unchanged");
    }
    let namespace = request
        .namespace
        .clone()
        .or_else(|| pod.metadata.namespace.clone())
        .unwrap_or_else(|| "default".to_string());
    let selected = match selection::select(pod, &namespace, candidates.iter().map(Arc::as_ref)) {
        Ok(selected) => selected,
        Err(denial) => return denied(response, denial),
    };
    let Some(pfss) = selected else {
        let mut response = response;
        response.warnings = Some(vec![format!(
            "volume-syncing-controller: the Pod is labelled {POD_OPT_IN_LABEL}=true but no PodFilesystemSync in namespace {namespace} selects it; no volume of it is synced"
        )]);
        return (response, "unchanged");
    };
    let errors = validation::validate(pfss);
    if !errors.is_empty() {
        let name = pfss.metadata.name.as_deref().unwrap_or_default();
        let details = validation::describe(&errors);
        return denied(
            response,
            format!("PodFilesystemSync {namespace}/{name} is invalid: {details}"),
        );
    }
    match mutation::mutate(pod, &namespace, pfss, injection) {
        Ok(mutation) => patched(request, response, mutation),
        Err(denial) => denied(response, denial),
    }
}

/// A denial, with the message prefixed by who denies.
fn denied(
    response: AdmissionResponse,
    message: impl std::fmt::Display,
) -> (AdmissionResponse, &'static str) {
    (
        response.deny(format!("volume-syncing-controller: {message}")),
        "denied",
    )
}

/// The mutation as a JSON patch with its warnings; "unchanged" when the patch is empty.
fn patched(
    request: &AdmissionRequest<Pod>,
    response: AdmissionResponse,
    mutation: mutation::Mutation,
) -> (AdmissionResponse, &'static str) {
    let result = if mutation.patch.0.is_empty() {
        "unchanged"
    } else {
        "patched"
    };
    let warnings = mutation.warnings;
    match response.with_patch(mutation.patch) {
        Ok(mut response) => {
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            (response, result)
        }
        // with_patch took the response: the error answers with a fresh one.
        Err(e) => (
            AdmissionResponse::from(request).deny(format!(
                "volume-syncing-controller: cannot encode the patch: {e}"
            )),
            "error",
        ),
    }
}

/// The review as JSON with the patch as a base64 string, the API's encoding of `[]byte`
/// (kube serialises it as an array of numbers: about three times the size).
pub fn encode_review(review: &AdmissionReview<DynamicObject>) -> serde_json::Value {
    use base64::Engine as _;
    let mut json = serde_json::to_value(review).unwrap_or_default();
    let patch = review.response.as_ref().and_then(|r| r.patch.as_ref());
    if let (Some(patch), Some(field)) = (patch, json.pointer_mut("/response/patch")) {
        *field = base64::engine::general_purpose::STANDARD
            .encode(patch)
            .into();
    }
    json
}

/// The webhook's routes: `/mutate-pods` and `/healthz`. A body that is no JSON
/// `AdmissionReview` of a Pod is answered by axum's `Json` extractor: 415 without
/// `Content-Type: application/json`, 400 for text that is no JSON, 422 naming the field
/// that does not fit (`request.object.metadata.labels: invalid type ...`).
pub fn router(state: Arc<WebhookState>) -> axum::Router {
    use axum::routing::{get, post};
    axum::Router::new()
        .route("/mutate-pods", post(mutate_pods))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(state)
}

pub async fn mutate_pods(
    State(state): State<Arc<WebhookState>>,
    Json(body): Json<AdmissionReview<Pod>>,
) -> Json<serde_json::Value> {
    let started = Instant::now();
    let (answer, result) = respond(body, &state.store.state(), &state.injection);
    state.metrics.admission(result);
    state
        .metrics
        .admission_seconds
        .observe(started.elapsed().as_secs_f64());
    Json(answer)
}

/// The encoded answer to a decoded review and its result label ("patched", "unchanged",
/// "denied", "error"). Pure apart from the log line: what the fuzz target `admission_review`
/// feeds.
pub fn respond(
    body: AdmissionReview<Pod>,
    candidates: &[Arc<PodFilesystemSync>],
    injection: &InjectionConfig,
) -> (serde_json::Value, &'static str) {
    let request: AdmissionRequest<Pod> = match body.try_into() {
        Ok(request) => request,
        Err(e) => {
            let response = AdmissionResponse::invalid(format!("not an admission request: {e}"));
            return (answer(response), "error");
        }
    };
    let (response, result) = review(&request, candidates, injection);
    tracing::info!(
        namespace = request.namespace.as_deref().unwrap_or(""),
        pod = request.name.as_str(),
        dry_run = request.dry_run,
        result,
        message = response.result.message.as_str(),
        "admission review"
    );
    (answer(response), result)
}

/// The encoded review around `response`: always an `admission.k8s.io/v1` `AdmissionReview`,
/// the only version the webhook is registered for, whatever `apiVersion`/`kind` the request
/// claimed (kube would echo them; the API server refuses any other answer).
fn answer(response: AdmissionResponse) -> serde_json::Value {
    let mut review = response.into_review();
    review.types = kube::core::TypeMeta {
        api_version: "admission.k8s.io/v1".to_string(),
        kind: "AdmissionReview".to_string(),
    };
    encode_review(&review)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine as _;
    use json_patch::jsonptr::PointerBuf;
    use json_patch::{AddOperation, Patch, PatchOperation};

    #[test]
    fn the_answer_is_a_v1_admission_review_whatever_the_request_claimed() {
        let body = serde_json::json!({
            "apiVersion": "admission.k8s.io/v1beta7",
            "kind": "AdmissionReivew",
            "request": {
                "uid": "u-1",
                "kind": {"group": "", "version": "v1", "kind": "Pod"},
                "resource": {"group": "", "version": "v1", "resource": "pods"},
                "operation": "DELETE",
                "userInfo": {},
            }
        });
        let review = serde_json::from_value(body).expect("decodes");
        let (answer, result) = respond(review, &[], &InjectionConfig::new("img"));
        assert_eq!(result, "unchanged");
        assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
        assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
        assert_eq!(answer["response"]["uid"], "u-1", "{answer}");
    }

    #[test]
    fn the_patch_is_sent_as_a_base64_string_that_decodes_to_the_json_patch() {
        let patch = Patch(vec![PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["spec", "serviceAccountName"]),
            value: "default".into(),
        })]);
        let response = AdmissionResponse::invalid("x")
            .with_patch(patch.clone())
            .expect("patch");
        let json = encode_review(&response.into_review());
        let text = json["response"]["patch"].as_str().expect("a string");
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(text)
            .expect("base64");
        let parsed: Patch = serde_json::from_slice(&decoded).expect("a JSON patch");
        assert_eq!(parsed, patch);
        assert_eq!(json["response"]["patchType"], "JSONPatch");
    }
}
