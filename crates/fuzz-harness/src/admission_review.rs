//! `admission_review`: arbitrary request bodies through the webhook's decoder and review
//! (`serde_json` into `AdmissionReview<Pod>`, as axum's `Json` extractor does, then
//! `vsc_operator::webhook::respond`), with the seed README's PodFilesystemSync in the cache.
//!
//! Input: a body that starts with `{` (or white space) is sent as it is. Anything else is
//! structure-aware: `\0`-separated pairs of a JSON pointer and a JSON value (text that is
//! no JSON is taken as a string), each set into a valid review of the seed Pod
//! (`/request/...`) or into the PodFilesystemSync (`/pfss/...`) before it is sent; so the
//! fuzzer changes one field of a real request instead of breaking its JSON.
//!
//! Asserted: no panic; every review gets an answer with the request's uid; a denial says who
//! denies; a patch is base64 of a JSON patch that applies to the Pod and leaves a Pod.

use std::sync::{Arc, LazyLock};

use base64::Engine as _;
use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionReview;
use serde_json::{Value, json};
use vsc_operator::mutation::InjectionConfig;
use vsc_operator::webhook::respond;
use vsc_types::crd::PodFilesystemSync;

const SEED_POD: &str = include_str!("../../operator/tests/fixtures/seed-pod.yaml");
const SEED_PFSS: &str = include_str!("../../operator/tests/fixtures/seed-podfilesystemsync.yaml");
const SEED_REVIEW_ENVELOPE: &str =
    include_str!("../../operator/tests/fixtures/seed-admission-review.yaml");
/// The namespace of the seed's resource and its Pods.
const NAMESPACE: &str = "press";

/// The admission review the API server sends for creating the seed Pod, as JSON.
pub fn seed_review() -> Value {
    SEED_REVIEW.clone()
}

fn seed_pfss() -> Value {
    SEED_PFSS_JSON.clone()
}

// Parsed once: the fixtures' YAML costs more than a review.
static SEED_REVIEW: LazyLock<Value> = LazyLock::new(parse_seed_review);
static SEED_PFSS_JSON: LazyLock<Value> = LazyLock::new(parse_seed_pfss);
static SEED_CANDIDATES: LazyLock<Vec<Arc<PodFilesystemSync>>> = LazyLock::new(|| {
    let pfss = serde_json::from_value(parse_seed_pfss()).expect("the seed resource decodes");
    vec![Arc::new(pfss)]
});

fn parse_seed_review() -> Value {
    let mut review: Value =
        serde_saphyr::from_str(SEED_REVIEW_ENVELOPE).expect("the seed review fixture parses");
    review["request"]["object"] =
        serde_saphyr::from_str(SEED_POD).expect("the seed Pod fixture parses");
    review
}

fn parse_seed_pfss() -> Value {
    let mut pfss: Value =
        serde_saphyr::from_str(SEED_PFSS).expect("the seed PodFilesystemSync fixture parses");
    pfss["metadata"]["namespace"] = NAMESPACE.into();
    pfss
}

static INJECTION: LazyLock<InjectionConfig> =
    LazyLock::new(|| InjectionConfig::new("ghcr.io/riotkit-org/volume-syncing-controller:1.0.0"));

/// Feeds one input; panics when a property fails.
pub fn admission_review(data: &[u8]) {
    let raw = data
        .first()
        .is_none_or(|b| *b == b'{' || b.is_ascii_whitespace());
    let (body, candidates) = if raw {
        (data.to_vec(), SEED_CANDIDATES.clone())
    } else {
        let (body, pfss) = edited(data);
        let candidates: Vec<Arc<PodFilesystemSync>> = serde_json::from_value(pfss)
            .map(Arc::new)
            .into_iter()
            .collect();
        (body, candidates)
    };
    // What axum's `Json` extractor does; a body it refuses is answered 400/422 by axum.
    let Ok(review) = serde_json::from_slice::<AdmissionReview<Pod>>(&body) else {
        return;
    };
    let uid = review.request.as_ref().map(|r| r.uid.clone());
    let pod = review.request.as_ref().and_then(|r| r.object.clone());
    let (answer, result) = respond(review, &candidates, &INJECTION);
    check_answer(&answer, result, uid.as_deref(), pod.as_ref());
}

/// The seed review and resource with the input's pointer/value pairs set into them.
fn edited(data: &[u8]) -> (Vec<u8>, Value) {
    let mut document = json!({"request": seed_review()["request"].clone(), "pfss": seed_pfss()});
    let records: Vec<&[u8]> = super::records(data).collect();
    for pair in records.chunks(2) {
        let pointer = String::from_utf8_lossy(pair[0]);
        let raw = pair.get(1).copied().unwrap_or_default();
        let value = serde_json::from_slice(raw)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(raw).into_owned()));
        set(&mut document, &pointer, value);
    }
    let pfss = document["pfss"].take();
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": document["request"].take(),
    });
    (
        serde_json::to_vec(&review).expect("a JSON value serialises"),
        pfss,
    )
}

/// Sets `value` at a JSON `pointer`, making the objects on the way; a pointer through
/// something else changes nothing.
fn set(document: &mut Value, pointer: &str, value: Value) {
    let mut at = document;
    let mut tokens = pointer.split('/').skip(1).peekable();
    while let Some(token) = tokens.next() {
        let token = token.replace("~1", "/").replace("~0", "~");
        if at.is_null() {
            *at = json!({});
        }
        let next = match at {
            Value::Object(map) => map.entry(token).or_insert(Value::Null),
            Value::Array(items) => match token.parse::<usize>().ok().and_then(|i| items.get_mut(i))
            {
                Some(item) => item,
                None => return,
            },
            _ => return,
        };
        if tokens.peek().is_none() {
            *next = value;
            return;
        }
        at = next;
    }
}

fn check_answer(answer: &Value, result: &str, uid: Option<&str>, pod: Option<&Pod>) {
    let response = &answer["response"];
    assert_eq!(answer["kind"], "AdmissionReview", "{answer}");
    assert_eq!(answer["apiVersion"], "admission.k8s.io/v1", "{answer}");
    assert!(response["allowed"].is_boolean(), "{answer}");
    let Some(uid) = uid else {
        assert_eq!(result, "error", "no request, yet {result}: {answer}");
        return;
    };
    assert_eq!(
        response["uid"], uid,
        "the answer is to another request: {answer}"
    );
    match result {
        "denied" => {
            assert_eq!(response["allowed"], false, "{answer}");
            let message = response["status"]["message"].as_str().unwrap_or_default();
            assert!(
                message.starts_with("volume-syncing-controller: "),
                "a denial that does not say who denies: {answer}"
            );
        }
        "patched" => check_patch(response, pod),
        "unchanged" | "error" => {}
        other => panic!("an unknown result label {other}"),
    }
}

fn check_patch(response: &Value, pod: Option<&Pod>) {
    let encoded = response["patch"]
        .as_str()
        .expect("a patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .expect("the patch is base64");
    let patch: json_patch::Patch = serde_json::from_slice(&bytes).expect("a JSON patch");
    let mut object = serde_json::to_value(pod).expect("a Pod serialises");
    json_patch::patch(&mut object, &patch).expect("the patch applies to the Pod");
    serde_json::from_value::<Pod>(object).expect("the patched object is still a Pod");
}

/// The answer to [`seed_review`] and its result label: a seed that is patched shows the
/// corpus reaches the mutation, not only the decoder.
pub fn seed_answer() -> (Value, &'static str) {
    let review = serde_json::from_value(seed_review()).expect("the seed review decodes");
    let pfss = serde_json::from_value(seed_pfss()).expect("the seed resource decodes");
    respond(review, &[Arc::new(pfss)], &INJECTION)
}
