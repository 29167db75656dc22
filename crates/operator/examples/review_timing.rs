//! The webhook's own work per admission review, without a server or a network: the pure
//! `review` (selection among 1,000 cached PodFilesystemSyncs, validation, the mutation)
//! plus encoding the answer, 20,000 times on one thread.
//!
//!     cargo run --release -p vsc-operator --example review_timing

// Percentile indexes and counts from the command line are small and non-negative.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
// The figures on stdout are this program's output, not diagnostics.
#![allow(clippy::print_stdout)]

use k8s_openapi::api::core::v1::Pod;
use kube::core::admission::AdmissionReview;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use vsc_operator::mutation::InjectionConfig;
use vsc_types::crd::PodFilesystemSync;

fn main() {
    let candidates: Vec<Arc<PodFilesystemSync>> = (0..1000).map(|index| {
        let mut pfss: PodFilesystemSync = serde_json::from_value(json!({
            "apiVersion": "riotkit.org/v1alpha1", "kind": "PodFilesystemSync",
            "metadata": {"name": format!("data-{index}"), "namespace": format!("bench-{}", index / 10)},
            "spec": {"podSelector": {"matchLabels": {"app": format!("app-{index}")}}, "localPath": "/data",
              "remotePath": "/bucket/{{ pod.metadata.labels.app }}",
              "env": {"REMOTE_TYPE": "s3", "REMOTE_ENDPOINT": "http://minio:9000"}}})).expect("resource");
        pfss.metadata.uid = Some(format!("uid-{index}"));
        Arc::new(pfss)
    }).collect();
    let review: AdmissionReview<Pod> = serde_json::from_value(json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "u", "kind": {"group":"","version":"v1","kind":"Pod"}, "resource": {"group":"","version":"v1","resource":"pods"},
          "operation": "CREATE", "namespace": "bench-50", "name": "p", "userInfo": {},
          "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "bench-50", "labels": {"app": "app-505", "riotkit.org/volume-syncing-controller": "true"}},
            "spec": {"containers": [{"name": "app", "image": "busybox", "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                     "volumes": [{"name": "data", "emptyDir": {}}]}}}})).expect("review");
    let request = review.try_into().expect("a request");
    let injection = InjectionConfig::new("vsc:dev");
    let mut times = Vec::new();
    for _ in 0..20000 {
        let started = Instant::now();
        let (response, result) = vsc_operator::webhook::review(&request, &candidates, &injection);
        assert_eq!(result, "patched", "{:?}", response.result);
        let encoded = vsc_operator::webhook::encode_review(&response.into_review());
        std::hint::black_box(encoded);
        times.push(started.elapsed());
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 - 1.0) * q) as usize].as_secs_f64() * 1000.0;
    println!(
        "review+encode: p50 {:.3} ms p99 {:.3} ms max {:.3} ms",
        p(0.5),
        p(0.99),
        p(1.0)
    );
}
