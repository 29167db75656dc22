//! Bad request bodies at the webhook's HTTP endpoint: the real router (`webhook::router`,
//! as `serve` mounts it behind TLS) on a loopback port, a PodFilesystemSync in its cache.
//! Each body is refused with a status and a message naming what is wrong; nothing is
//! patched. The API server treats any answer but a 200 review as the webhook failing
//! (`failurePolicy`), so a bad body never admits a Pod half-injected.

use std::sync::Arc;

use crate::support::*;
use kube::runtime::reflector;
use kube::runtime::watcher::Event;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use vsc_operator::webhook::{WebhookState, router};

/// Serves the webhook on a loopback port; returns its address.
async fn serve() -> std::net::SocketAddr {
    let (store, mut writer) = reflector::store();
    writer.apply_watcher_event(&Event::Apply(seed_pfss()));
    let state = Arc::new(WebhookState {
        store,
        injection: config(),
        metrics: Arc::new(vsc_operator::metrics::Metrics::default()),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a loopback port");
    let addr = listener.local_addr().expect("its address");
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    addr
}

/// POSTs `body` to `/mutate-pods`: status code and response body.
async fn post(
    addr: std::net::SocketAddr,
    content_type: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let header = content_type
        .map(|t| format!("Content-Type: {t}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "POST /mutate-pods HTTP/1.1\r\nHost: webhook\r\nConnection: close\r\n{header}Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream
        .write_all(head.as_bytes())
        .await
        .expect("send the head");
    // A refused body may be answered before it is read whole: the rest need not be sent.
    let _ = stream.write_all(body).await;
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer).await;
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no HTTP status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    (status, body)
}

/// The review the API server sends for creating the seed Pod, with `edit` merged in.
fn review(edit: Value) -> Vec<u8> {
    let mut review: Value = serde_saphyr::from_str(&fixture("seed-admission-review.yaml"))
        .expect("the seed review fixture parses");
    review["request"]["object"] =
        serde_json::to_value(seed_pod()).expect("the seed Pod serialises");
    merge(&mut review, edit);
    serde_json::to_vec(&review).expect("serialises")
}

const JSON: Option<&str> = Some("application/json");

/// One bad body: what it is, its content type, the bytes, the status and text expected.
type BadBody<'a> = (&'a str, Option<&'a str>, Vec<u8>, u16, &'a str);

#[tokio::test]
async fn a_valid_review_is_patched() {
    let addr = serve().await;
    let (status, body) = post(addr, JSON, &review(json!({}))).await;
    assert_eq!(status, 200, "{body}");
    let answer: Value = serde_json::from_str(&body).expect("a JSON review");
    assert_eq!(answer["response"]["allowed"], true, "{body}");
    assert!(answer["response"]["patch"].is_string(), "{body}");
}

#[tokio::test]
async fn each_bad_body_is_refused_naming_what_is_wrong() {
    let addr = serve().await;
    let valid = review(json!({}));
    let huge = review(
        json!({"request": {"object": {"metadata": {"annotations": {"big": "x".repeat(3 << 20)}}}}}),
    );
    let cases: Vec<BadBody> = vec![
        (
            "no JSON",
            JSON,
            b"hello".to_vec(),
            400,
            "Failed to parse the request body as JSON",
        ),
        ("empty", JSON, Vec::new(), 400, "EOF while parsing"),
        (
            "cut short",
            JSON,
            valid[..valid.len() / 2].to_vec(),
            400,
            "EOF while parsing",
        ),
        (
            "no content type",
            None,
            valid.clone(),
            415,
            "Content-Type: application/json",
        ),
        (
            "a form",
            Some("application/x-www-form-urlencoded"),
            valid.clone(),
            415,
            "Content-Type: application/json",
        ),
        (
            "an array",
            JSON,
            b"[]".to_vec(),
            422,
            "invalid type: sequence",
        ),
        (
            "a label that is a number",
            JSON,
            review(json!({"request": {"object": {"metadata": {"labels": {"my-pod-label": 1}}}}})),
            422,
            "request.object.metadata.labels.my-pod-label",
        ),
        (
            "no uid",
            JSON,
            review(json!({"request": {"uid": null}})),
            422,
            "uid",
        ),
        (
            "an unknown operation",
            JSON,
            review(json!({"request": {"operation": "SMASH"}})),
            422,
            "request.operation",
        ),
        (
            "containers not a list",
            JSON,
            review(json!({"request": {"object": {"spec": {"containers": {"name": "app"}}}}})),
            422,
            "request.object.spec.containers",
        ),
        (
            "a Deployment as the Pod",
            JSON,
            review(json!({"request": {"object": {"kind": "Deployment", "apiVersion": "apps/v1"}}})),
            422,
            "request.object",
        ),
        ("over 2 MiB", JSON, huge, 413, "length limit exceeded"),
    ];
    for (what, content_type, body, expected, needle) in cases {
        let (status, answer) = post(addr, content_type, &body).await;
        assert_eq!(status, expected, "{what}: {answer}");
        assert!(answer.contains(needle), "{what}: no {needle:?} in {answer}");
        assert!(!answer.contains("\"patch\""), "{what}: patched: {answer}");
    }
}

#[tokio::test]
async fn a_review_without_a_request_is_answered_invalid_and_not_patched() {
    let addr = serve().await;
    let body = br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#;
    let (status, answer) = post(addr, JSON, body).await;
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("a JSON review");
    assert_eq!(answer["response"]["allowed"], false, "{answer}");
    let message = answer["response"]["status"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(message.contains("not an admission request"), "{answer}");
    assert!(answer["response"].get("patch").is_none(), "{answer}");
}
