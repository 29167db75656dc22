//! The operator's start and its webhook under load, on a real kube-apiserver + etcd:
//!
//!     cargo build --release --workspace --bins
//!     cargo run --release -p vsc-e2e --example operator_bench -- [resources] [rate] [seconds]
//!
//! Creates `resources` PodFilesystemSyncs (default 1,000, 10 per namespace), starts the
//! operator and reports how long it took from its first log line to "cache synced; ready"
//! (its own timestamps, so the harness's polling does not count). Then sends admission
//! reviews of an opted-in Pod straight to the webhook over TLS at `rate` per second
//! (default 1,000) for `seconds` (default 10), and prints the latency percentiles seen by
//! the client, the answer's size, and how many were patched. Not a test: it asserts nothing
//! about time and prints what it measured.
//!
//! On a machine with two CPUs or more, the operator runs alone on the last one and
//! everything else (this load generator, kube-apiserver, etcd) on the others (`taskset`), so
//! the operator's figures are its own rather than the load generator's share of a core.

// Percentile indexes and counts from the command line are small and non-negative.
#![allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
// The figures on stdout are this program's output, not diagnostics.
#![allow(clippy::print_stdout)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use kube::api::{Api, PostParams};
use serde_json::json;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{app_pod, create_namespace};
use vsc_e2e::operator::{OperatorProcess, install_crd};
use vsc_types::crd::PodFilesystemSync;

const PER_NAMESPACE: usize = 10;

fn argument(index: usize, default: u64) -> u64 {
    std::env::args()
        .nth(index)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

async fn create_resources(client: &kube::Client, count: usize) {
    for index in 0..count {
        let namespace = format!("bench-{}", index / PER_NAMESPACE);
        if index % PER_NAMESPACE == 0 {
            create_namespace(client, &namespace).await;
        }
        let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), &namespace);
        let pfss: PodFilesystemSync = serde_json::from_value(json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": format!("data-{index}")},
            "spec": {
                "podSelector": {"matchLabels": {"app": format!("app-{index}")}},
                "localPath": "/data",
                "remotePath": "/bucket/{{ pod.metadata.labels.app }}",
                "env": {"REMOTE_TYPE": "s3", "REMOTE_ENDPOINT": "http://minio:9000"},
            },
        }))
        .expect("resource");
        api.create(&PostParams::default(), &pfss)
            .await
            .expect("create PodFilesystemSync");
    }
}

/// Seconds between the operator's first log line and its "ready" line (text log format:
/// each line starts with an RFC 3339 time).
fn start_to_ready(log: &str) -> Option<f64> {
    let time = |line: &str| {
        let stamp = line.split_whitespace().next()?;
        chrono::DateTime::parse_from_rfc3339(stamp).ok()
    };
    let first = log.lines().find_map(time)?;
    let ready = log
        .lines()
        .find(|l| l.contains("cache synced; ready"))
        .and_then(time)?;
    Some((ready - first).num_microseconds()? as f64 / 1e6)
}

/// A client for the webhook's URL that trusts the control plane's CA.
fn webhook_client(operator: &OperatorProcess) -> (kube::Client, String) {
    let url: http::Uri = operator.webhook_url.parse().expect("webhook URL");
    let base = format!(
        "https://{}",
        url.authority().expect("webhook authority").as_str()
    );
    let pem_body: String = operator
        .ca_pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(pem_body)
        .expect("CA PEM");
    let mut config = kube::Config::new(base.parse().expect("base URL"));
    config.root_cert = Some(vec![der]);
    let client = kube::Client::try_from(config).expect("webhook client");
    (client, url.path().to_string())
}

fn review_body(index: usize) -> Vec<u8> {
    let target = index % 1000;
    let mut pod = app_pod(
        &format!("web-{index}"),
        json!({"app": format!("app-{target}")}),
        json!({}),
        "/data",
    );
    let namespace = format!("bench-{}", target / PER_NAMESPACE);
    pod.metadata.namespace = Some(namespace.clone());
    serde_json::to_vec(&json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": format!("bench-{index}"),
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "name": format!("web-{index}"),
            "namespace": namespace,
            "operation": "CREATE",
            "userInfo": {"username": "bench"},
            "object": pod,
            "dryRun": false,
        },
    }))
    .expect("review JSON")
}

/// One review: its latency, the answer's size, and whether it was patched.
async fn send(client: kube::Client, path: String, body: Vec<u8>) -> (Duration, usize, bool) {
    let started = Instant::now();
    let request = http::Request::post(path)
        .header("content-type", "application/json")
        .body(body)
        .expect("request");
    let answer = client.request_text(request).await.expect("an answer");
    let elapsed = started.elapsed();
    let patched = answer.contains("\"patch\":\"");
    (elapsed, answer.len(), patched)
}

/// From the operator's own histogram: the smallest bucket bound (ms) below which 99% of its
/// admission reviews were answered, i.e. the server side without the client's share.
fn server_p99_bound(scrape: &str) -> Option<f64> {
    let buckets: Vec<(f64, f64)> = scrape
        .lines()
        .filter_map(|line| {
            let rest = line
                .strip_prefix("volume_syncing_operator_admission_duration_seconds_bucket{le=\"")?;
            let (bound, count) = rest.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    buckets
        .iter()
        .find(|(_, count)| *count >= 0.99 * total)
        .map(|(bound, _)| bound * 1000.0)
}

/// Every thread of process `pid` onto the CPU list `cpus` (`taskset -a -p -c`).
fn pin(pid: u32, cpus: &str) {
    let status = std::process::Command::new("taskset")
        .args(["-a", "-p", "-c", cpus, &pid.to_string()])
        .stdout(std::process::Stdio::null())
        .status();
    if !matches!(status, Ok(s) if s.success()) {
        eprintln!("cannot pin process {pid} to CPUs {cpus} with taskset: {status:?}");
    }
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index].as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let resources = argument(1, 1000) as usize;
    let rate = argument(2, 1000).max(1);
    let seconds = argument(3, 10);
    let cpus = std::thread::available_parallelism().map_or(1, usize::from);
    let operator_cpu = (cpus >= 2).then(|| cpus - 1);
    if let Some(cpu) = operator_cpu {
        // Before the control plane starts: its processes inherit the set.
        pin(std::process::id(), &format!("0-{}", cpu - 1));
    }
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    let created = Instant::now();
    create_resources(&client, resources).await;
    eprintln!(
        "{resources} PodFilesystemSyncs created in {:.1?}",
        created.elapsed()
    );

    let operator = OperatorProcess::start(&plane, &[]).await;
    let ready = start_to_ready(&operator.log_text());
    if let Some(cpu) = operator_cpu {
        pin(operator.pid(), &cpu.to_string());
        println!(
            "operator pinned to CPU {cpu}, the rest to CPUs 0-{}",
            cpu - 1
        );
    }
    let (webhook, path) = webhook_client(&operator);
    // Connections and the cache warm up before anything counts.
    for index in 0..100 {
        send(webhook.clone(), path.clone(), review_body(index)).await;
    }
    let total = (rate * seconds) as usize;
    let bodies: Vec<Vec<u8>> = (0..total).map(review_body).collect();
    let mut ticker = tokio::time::interval(Duration::from_secs_f64(1.0 / rate as f64));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for body in bodies {
        ticker.tick().await;
        tasks.push(tokio::spawn(send(webhook.clone(), path.clone(), body)));
    }
    let mut latencies = Vec::with_capacity(total);
    let (mut bytes, mut patched) = (0, 0);
    for task in tasks {
        let (latency, size, was_patched) = task.await.expect("review task");
        latencies.push(latency);
        bytes += size;
        patched += usize::from(was_patched);
    }
    let wall = started.elapsed().as_secs_f64();
    latencies.sort();
    match ready {
        Some(ready) => println!("operator start to ready: {:.0} ms", ready * 1000.0),
        None => println!("operator start to ready: not found in its log"),
    }
    println!(
        "webhook, {resources} resources cached, {total} reviews at {:.0}/s (asked {rate}/s): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; answer {} bytes on average; {patched} patched",
        total as f64 / wall,
        percentile(&latencies, 0.50),
        percentile(&latencies, 0.99),
        percentile(&latencies, 1.0),
        bytes / total.max(1),
    );
    match server_p99_bound(&operator.metrics().await) {
        Some(bound) => {
            println!("webhook, the operator's own histogram: 99% answered within {bound} ms");
        }
        None => println!("webhook, the operator's own histogram: not found in /metrics"),
    }
}
