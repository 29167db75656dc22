//! What the status tells about the data, on a real API server: each Pod's reported syncs in
//! `status.pods`, the `Synced` condition beside `Ready`, one Event per failure streak, and the
//! columns of `kubectl get pfss`. Reports are posted to the operator's report endpoint as the
//! agents post them, with the token the kubelet projects into the Pod (the TokenRequest API).

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::time::Duration;

use k8s_openapi::api::events::v1::Event;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::api::{Api, ListParams, Patch, PatchParams};
use serde_json::json;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{
    app_pod, create_namespace, create_pfss, create_pod, projected_tokens, wait_ready,
};
use vsc_e2e::helm::kubectl_ok;
use vsc_e2e::operator::webhook_operator;
use vsc_e2e::operator::{OperatorProcess, http_post_json, install_crd, register_webhook};
use vsc_types::contract::{
    ENV_REPORT_RESOURCE, ENV_REPORT_URL, REPORT_TOKEN_VOLUME, SIDECAR_CONTAINER_NAME,
};
use vsc_types::crd::{PodFilesystemSync, PodSyncStatus};
use vsc_types::report::{SyncDirection, SyncReport};

const NAMESPACE: &str = "shop";
const NAME: &str = "shop-data";

fn spec(schedule: &str, unhealthy_after_failures: u32) -> serde_json::Value {
    json!({
        "podSelector": {"matchLabels": {"app": "shop"}},
        "localPath": "/var/lib/shop",
        "remotePath": "/apps/shop",
        "syncOptions": {"schedule": schedule},
        "healthCheck": {"unhealthyAfterFailures": unhealthy_after_failures},
        "env": {"REMOTE_TYPE": "s3", "REMOTE_PROVIDER": "Minio", "REMOTE_ENDPOINT": "http://minio:9000"},
    })
}

/// A real API server with the CRD, and the operator serving its webhook and, with
/// `reports`, the report endpoint on its admin port.
async fn served(reports: bool) -> (ControlPlane, kube::Client, OperatorProcess) {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    let operator = webhook_operator(&plane, &client, reports).await;
    create_namespace(&client, NAMESPACE).await;
    (plane, client, operator)
}

/// What the webhook gave a Pod's sidecar to report with, as the agent reads it (the token
/// as the kubelet projects it).
struct Agent {
    pod: String,
    url: String,
    token: String,
    resource: String,
}

impl Agent {
    /// Creates an opted-in Pod and reads the report settings injected into its sidecar.
    async fn admitted(client: &kube::Client, pod: &str) -> Agent {
        let stored = create_pod(
            client,
            NAMESPACE,
            &app_pod(pod, json!({"app": "shop"}), json!({}), "/var/lib/shop"),
        )
        .await
        .expect("the Pod is admitted");
        let tokens = projected_tokens(client, &stored, REPORT_TOKEN_VOLUME).await;
        let [(_, token)] = &tokens[..] else {
            panic!("the report token volume projects one token: {tokens:?}")
        };
        let spec = stored.spec.expect("spec");
        let sidecar = spec
            .init_containers
            .into_iter()
            .flatten()
            .chain(spec.containers)
            .find(|c| c.name == SIDECAR_CONTAINER_NAME)
            .expect("the sidecar is injected");
        let env = |name: &str| {
            sidecar
                .env
                .iter()
                .flatten()
                .find(|e| e.name == name)
                .and_then(|e| e.value.clone())
                .unwrap_or_else(|| panic!("the sidecar has no {name}"))
        };
        Agent {
            pod: pod.to_string(),
            url: env(ENV_REPORT_URL),
            token: token.clone(),
            resource: env(ENV_REPORT_RESOURCE),
        }
    }

    /// A to-remote sync report sent now, as `vsc-agent --report-url` makes it.
    fn sync_report(&self, error: Option<&str>) -> SyncReport {
        SyncReport {
            resource: self.resource.clone(),
            pod: self.pod.clone(),
            direction: SyncDirection::ToRemote,
            success: error.is_none(),
            message: error.unwrap_or_default().to_string(),
            sent_at: SyncReport::timestamp(chrono::Utc::now()),
        }
    }

    /// POSTs `report` with `token`; the status code and text of the answer.
    async fn post(&self, report: &SyncReport, token: &str) -> (u16, String) {
        let body = serde_json::to_string(report).expect("report JSON");
        http_post_json(&self.url, token, &body)
            .await
            .expect("the report endpoint answers")
    }

    /// Reports one to-remote sync, as `vsc-agent --report-url` does.
    async fn report(&self, error: Option<&str>) {
        let (code, text) = self.post(&self.sync_report(error), &self.token).await;
        assert_eq!(code, 204, "the report was refused: {text}");
    }
}

async fn get(client: &kube::Client) -> PodFilesystemSync {
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), NAMESPACE);
    api.get(NAME).await.expect("get PodFilesystemSync")
}

fn condition(pfss: &PodFilesystemSync, type_: &str) -> Option<Condition> {
    pfss.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_).cloned())
}

fn synced(pfss: &PodFilesystemSync) -> (String, String, String) {
    let c = condition(pfss, "Synced").expect("a Synced condition");
    (c.status, c.reason, c.message)
}

fn pod<'a>(pfss: &'a PodFilesystemSync, name: &str) -> &'a PodSyncStatus {
    pfss.status
        .as_ref()
        .and_then(|s| s.pods.iter().find(|p| p.name == name))
        .unwrap_or_else(|| panic!("status.pods has no {name}: {:?}", pfss.status))
}

/// Waits (for the reconciler) until `Synced` has `status` and `reason`; returns its message.
async fn wait_synced(client: &kube::Client, status: &str, reason: &str, limit: Duration) -> String {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let current = condition(&get(client).await, "Synced");
        if let Some(c) = &current
            && c.status == status
            && c.reason == reason
        {
            return c.message.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "Synced never became {status} ({reason}); last: {current:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The Events about the resource with `reason`.
async fn events(client: &kube::Client, reason: &str) -> Vec<Event> {
    let api: Api<Event> = Api::namespaced(client.clone(), NAMESPACE);
    api.list(&ListParams::default())
        .await
        .expect("list Events")
        .items
        .into_iter()
        .filter(|e| {
            e.reason.as_deref() == Some(reason)
                && e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(NAME)
        })
        .collect()
}

/// How often an Event was published (the recorder folds repeats into a series).
fn times(events: &[Event]) -> i32 {
    events
        .iter()
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum()
}

/// `kubectl get pfss` output as header and row, split into columns of two spaces or more.
fn table(plane: &ControlPlane, wide: bool) -> Vec<(String, String)> {
    let kubeconfig = &plane.kubeconfig;
    let mut args = vec!["get", "pfss", "-n", NAMESPACE];
    if wide {
        args.extend(["-o", "wide"]);
    }
    let out = kubectl_ok(kubeconfig, &args, None);
    let mut lines = out.lines();
    let header = lines.next().expect("a header");
    let row = lines.next().expect("a row");
    // Columns start where the header's words do.
    let starts: Vec<usize> = header
        .char_indices()
        .filter(|(i, c)| !c.is_whitespace() && (*i == 0 || header[..*i].ends_with("  ")))
        .map(|(i, _)| i)
        .collect();
    starts
        .iter()
        .enumerate()
        .map(|(n, &start)| {
            let end = starts.get(n + 1).copied();
            let cut = |line: &str| {
                let end = end.unwrap_or(line.len()).min(line.len());
                line.get(start.min(end)..end)
                    .unwrap_or("")
                    .trim()
                    .to_string()
            };
            (cut(header), cut(row))
        })
        .collect()
}

fn column(table: &[(String, String)], name: &str) -> String {
    table.iter().find(|(header, _)| header == name).map_or_else(
        || panic!("no column {name} in {table:?}"),
        |(_, value)| value.clone(),
    )
}

#[tokio::test]
async fn a_pod_whose_syncs_keep_failing_makes_synced_false_with_one_warning_and_one_recovery() {
    let (plane, client, _operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 2)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;

    // Before any report: not "synced", and the table says so.
    let message = wait_synced(&client, "Unknown", "NoReports", Duration::from_secs(30)).await;
    assert_eq!(message, "no Pod has reported a sync yet");
    let before = table(&plane, false);
    assert_eq!(column(&before, "READY"), "True");
    assert_eq!(column(&before, "SYNCED"), "Unknown");
    assert_eq!(column(&before, "LAST SYNC"), "", "never: {before:?}");

    let web0 = Agent::admitted(&client, "web-0").await;
    let web1 = Agent::admitted(&client, "web-1").await;
    assert_eq!(web0.resource, format!("{NAMESPACE}/{NAME}"));

    web0.report(None).await;
    let pfss = get(&client).await;
    assert_eq!(
        synced(&pfss),
        (
            "True".into(),
            "Synced".into(),
            "the last sync of the reporting Pod succeeded".into()
        )
    );
    let entry = pod(&pfss, "web-0");
    assert!(entry.last_success_time.is_some(), "{entry:?}");
    assert_eq!(entry.consecutive_failures, 0);
    assert_eq!(entry.direction, "to-remote");
    assert!(
        pfss.status
            .as_ref()
            .and_then(|s| s.last_sync_time.as_ref())
            .is_some()
    );
    assert_eq!(
        condition(&pfss, "Ready").map(|c| c.status),
        Some("True".into()),
        "a report keeps the reconciler's Ready"
    );

    // One failure: retrying, not yet failing (unhealthyAfterFailures: 2).
    web1.report(Some("rclone: connection refused")).await;
    let (status, reason, message) = synced(&get(&client).await);
    assert_eq!((status.as_str(), reason.as_str()), ("Unknown", "Retrying"));
    assert!(
        message.starts_with("Pod web-1: the last 1 sync (to-remote) failed"),
        "{message}"
    );
    assert!(events(&client, "SyncFailing").await.is_empty());

    // The second in a row: failing, named, with one Warning.
    web1.report(Some("rclone: connection refused")).await;
    assert_eq!(
        synced(&get(&client).await),
        (
            "False".into(),
            "SyncFailing".into(),
            "Pod web-1: the last 2 syncs (to-remote) failed: rclone: connection refused".into()
        )
    );
    let failing = events(&client, "SyncFailing").await;
    assert_eq!(times(&failing), 1, "{failing:?}");
    assert_eq!(failing[0].type_.as_deref(), Some("Warning"));
    assert_eq!(
        failing[0].note.as_deref(),
        Some("Pod web-1: the last 2 syncs failed: rclone: connection refused")
    );
    // A healthy Pod reporting meanwhile does not hide the failing one.
    web0.report(None).await;
    web1.report(Some("rclone: no route to host")).await;
    web1.report(Some("rclone: no route to host")).await;
    let pfss = get(&client).await;
    assert_eq!(synced(&pfss).0, "False");
    assert_eq!(pod(&pfss, "web-1").consecutive_failures, 4);
    assert_eq!(pod(&pfss, "web-1").last_error, "rclone: no route to host");
    assert_eq!(
        times(&events(&client, "SyncFailing").await),
        1,
        "one Warning per streak"
    );

    // It syncs again: synced, one Normal Event.
    web1.report(None).await;
    let pfss = get(&client).await;
    assert_eq!(
        synced(&pfss),
        (
            "True".into(),
            "Synced".into(),
            "the last sync of all 2 reporting Pods succeeded".into()
        )
    );
    let recovered = events(&client, "SyncRecovered").await;
    assert_eq!(times(&recovered), 1, "{recovered:?}");
    assert_eq!(recovered[0].type_.as_deref(), Some("Normal"));
    assert_eq!(
        recovered[0].note.as_deref(),
        Some("Pod web-1 synced successfully again after 4 failed syncs")
    );
    let entry = pod(&pfss, "web-1");
    assert_eq!(entry.consecutive_failures, 0);
    assert!(entry.last_failure_time.is_some() && entry.last_success_time.is_some());

    // A new streak is announced again.
    web1.report(Some("disk full")).await;
    web1.report(Some("disk full")).await;
    assert_eq!(times(&events(&client, "SyncFailing").await), 2);
    web1.report(None).await;

    // What a user reads.
    let wide = table(&plane, true);
    assert_eq!(column(&wide, "READY"), "True");
    assert_eq!(column(&wide, "SYNCED"), "True");
    let age = column(&wide, "LAST SYNC");
    assert!(
        age.ends_with('s') && age[..age.len() - 1].parse::<u32>().is_ok(),
        "LAST SYNC is an age: {age:?}"
    );
    let described = kubectl_ok(
        &plane.kubeconfig,
        &["describe", "pfss", "-n", NAMESPACE, NAME],
        None,
    );
    for expected in [
        "Pods:",
        "web-0",
        "web-1",
        "Consecutive Failures:",
        "Last Error:",
        "disk full",
        "SyncFailing",
        "SyncRecovered",
    ] {
        assert!(
            described.contains(expected),
            "no {expected:?} in:\n{described}"
        );
    }
}

#[tokio::test]
async fn the_reconciler_and_the_reports_each_keep_the_others_condition() {
    let (_plane, client, _operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 0)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let web0 = Agent::admitted(&client, "web-0").await;
    web0.report(None).await;
    assert_eq!(synced(&get(&client).await).0, "True");

    // The reconciler writes Ready for a changed spec (here: an invalid schedule)...
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), NAMESPACE);
    api.patch(
        NAME,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"syncOptions": {"schedule": "@every banana"}}})),
    )
    .await
    .expect("patch the schedule");
    let message = wait_ready(&client, NAMESPACE, NAME, "False").await;
    assert!(message.contains("spec.syncOptions.schedule"), "{message}");
    let pfss = get(&client).await;
    assert_eq!(
        synced(&pfss).0,
        "True",
        "the reconciler's write keeps Synced: {:?}",
        pfss.status
    );
    assert_eq!(pod(&pfss, "web-0").consecutive_failures, 0);

    // ...and three failures with the default threshold keep the reconciler's Ready=False.
    for _ in 0..3 {
        web0.report(Some("403 Forbidden")).await;
    }
    let pfss = get(&client).await;
    assert_eq!(
        synced(&pfss),
        (
            "False".into(),
            "SyncFailing".into(),
            "Pod web-0: the last 3 syncs (to-remote) failed: 403 Forbidden".into()
        )
    );
    let ready = condition(&pfss, "Ready").expect("Ready");
    assert_eq!(
        (ready.status.as_str(), ready.reason.as_str()),
        ("False", "InvalidSpec")
    );
}

#[tokio::test]
async fn no_successful_sync_for_three_schedule_periods_makes_synced_false() {
    let (_plane, client, _operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 2s", 0)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let web0 = Agent::admitted(&client, "web-0").await;
    web0.report(None).await;
    assert_eq!(synced(&get(&client).await).0, "True");

    // Nothing for 6s: the reconciler comes back by itself and says so.
    let message = wait_synced(&client, "False", "NoRecentSuccess", Duration::from_secs(30)).await;
    assert!(
        message.starts_with(
            "no Pod reported a successful sync for 3 schedule periods; the last was at "
        ),
        "{message}"
    );
    let warnings = events(&client, "NoRecentSuccess").await;
    assert_eq!(times(&warnings), 1, "{warnings:?}");
    assert_eq!(warnings[0].type_.as_deref(), Some("Warning"));

    web0.report(None).await;
    assert_eq!(synced(&get(&client).await).0, "True");
}

#[tokio::test]
async fn without_reports_synced_says_that_the_operator_receives_none() {
    let (_plane, client, _operator) = served(false).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 0)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let message = wait_synced(&client, "Unknown", "NoReports", Duration::from_secs(30)).await;
    assert!(message.contains("--report-url"), "{message}");
    assert!(message.contains("reports.enabled=true"), "{message}");
}

#[tokio::test]
async fn reports_that_many_pods_post_at_once_are_all_recorded() {
    let (_plane, client, _operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 0)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let mut agents = Vec::new();
    for i in 0..8 {
        agents.push(Agent::admitted(&client, &format!("web-{i}")).await);
    }
    // Every write is computed from the status it read: one that raced another is computed
    // again, so no Pod's report is lost.
    let posts: Vec<_> = agents
        .into_iter()
        .map(|agent| tokio::spawn(async move { agent.report(None).await }))
        .collect();
    for post in posts {
        post.await.expect("the report was posted");
    }
    let pfss = get(&client).await;
    let names: Vec<&str> = pfss
        .status
        .as_ref()
        .map(|s| s.pods.iter().map(|p| p.name.as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        names,
        (0..8).map(|i| format!("web-{i}")).collect::<Vec<_>>()
    );
    assert_eq!(
        synced(&pfss).2,
        "the last sync of all 8 reporting Pods succeeded"
    );
}

#[tokio::test]
async fn a_failing_pod_that_stopped_reporting_no_longer_holds_synced_false() {
    let (_plane, client, _operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 2s", 0)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let old = Agent::admitted(&client, "web-old").await;
    let new = Agent::admitted(&client, "web-new").await;
    for _ in 0..3 {
        old.report(Some("rclone: connection refused")).await;
    }
    assert_eq!(synced(&get(&client).await).1, "SyncFailing");

    // The old Pod is gone (it reports no more); its replacement syncs every period.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let verdict = loop {
        new.report(None).await;
        let verdict = synced(&get(&client).await);
        if verdict.0 == "True" || tokio::time::Instant::now() > deadline {
            break verdict;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    assert_eq!(
        verdict,
        (
            "True".into(),
            "Synced".into(),
            "the last sync of the reporting Pod succeeded; not heard from for 3 schedule periods (gone?): web-old".into()
        )
    );
    let pfss = get(&client).await;
    assert_eq!(
        pod(&pfss, "web-old").consecutive_failures,
        3,
        "status.pods keeps what the silent Pod reported"
    );
}

#[tokio::test]
async fn a_report_without_a_pod_or_with_an_unknown_direction_is_refused_and_recorded_nowhere() {
    let (_plane, client, _operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 0)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let agent = Agent::admitted(&client, "web-0").await;
    let sent_at = SyncReport::timestamp(chrono::Utc::now());
    for (pod, direction, refusal) in [
        ("", "to-remote", "pod must name the sending Pod"),
        (
            "web-0",
            "sideways",
            "unknown variant `sideways`, expected `to-remote` or `to-local`",
        ),
    ] {
        let body = json!({
            "resource": agent.resource, "pod": pod, "direction": direction, "success": true,
            "sentAt": sent_at,
        })
        .to_string();
        let answer = http_post_json(&agent.url, &agent.token, &body).await;
        let (code, text) = answer.expect("an answer");
        assert!(code == 400 && text.contains(refusal), "{code} {text}");
    }
    let pfss = get(&client).await;
    let status = pfss.status.expect("status");
    assert!(
        status.pods.is_empty() && status.last_report.is_none(),
        "{status:?}"
    );
}

#[tokio::test]
async fn a_status_an_earlier_operator_wrote_by_merge_patch_is_taken_over_without_duplicates() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    create_namespace(&client, NAMESPACE).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 0)).await;
    // What the operator before Synced left: Ready and the report fields, by merge patch.
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), NAMESPACE);
    api.patch_status(
        NAME,
        &PatchParams {
            field_manager: Some("earlier-operator".into()),
            ..PatchParams::default()
        },
        &Patch::Merge(json!({"status": {
            "observedGeneration": 1,
            "conditions": [{"type": "Ready", "status": "False", "reason": "Old", "message": "old",
                            "lastTransitionTime": "2026-01-01T00:00:00Z"}],
            "lastSyncTime": "2026-01-01T00:00:00Z",
            "lastReport": {"time": "2026-01-01T00:00:00Z", "pod": "gone", "direction": "to-remote", "success": true},
        }})),
    )
    .await
    .expect("the earlier operator's status");

    let admin_port = vsc_test_support::free_port();
    let operator = OperatorProcess::start(
        &plane,
        &[
            &format!("--admin-addr=127.0.0.1:{admin_port}"),
            &format!("--report-url=http://127.0.0.1:{admin_port}/report"),
        ],
    )
    .await;
    register_webhook(&client, &operator).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let agent = Agent::admitted(&client, "web-0").await;
    agent.report(None).await;

    let pfss = get(&client).await;
    let status = pfss.status.clone().expect("status");
    let types: Vec<&str> = status.conditions.iter().map(|c| c.type_.as_str()).collect();
    assert_eq!(
        types.iter().filter(|t| **t == "Ready").count(),
        1,
        "{types:?}"
    );
    assert_eq!(synced(&pfss).0, "True");
    assert_eq!(
        condition(&pfss, "Ready").map(|c| c.reason),
        Some("Valid".into())
    );
    assert_eq!(status.last_report.map(|r| r.pod), Some("web-0".into()));
    assert_ne!(
        status.last_sync_time.map(|t| t.0.to_string()),
        Some("2026-01-01T00:00:00Z".into())
    );
}

#[tokio::test]
async fn a_forged_or_replayed_report_is_refused_and_changes_nothing() {
    let (_plane, client, operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 0)).await;
    let other = "other-data";
    let mut other_spec = spec("@every 1h", 0);
    other_spec["podSelector"] = json!({"matchLabels": {"app": "other"}});
    create_pfss(&client, NAMESPACE, other, other_spec).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let agent = Agent::admitted(&client, "web-0").await;
    let genuine = agent.sync_report(None);
    assert_eq!(agent.post(&genuine, &agent.token).await.0, 204);
    let recorded = get(&client).await.status.expect("status");

    let as_another_pod = SyncReport {
        pod: "web-1".into(),
        ..agent.sync_report(Some("forged failure"))
    };
    let about_another_resource = SyncReport {
        resource: format!("{NAMESPACE}/{other}"),
        ..agent.sync_report(Some("forged failure"))
    };
    let ten_minutes_old = SyncReport {
        sent_at: SyncReport::timestamp(chrono::Utc::now() - chrono::Duration::minutes(10)),
        ..agent.sync_report(Some("late failure"))
    };
    let failure = agent.sync_report(Some("forged failure"));
    for (report, token, refusal) in [
        (&genuine, agent.token.as_str(), "a replayed report"),
        (&as_another_pod, &agent.token, "not bound to Pod web-1"),
        (
            &about_another_resource,
            &agent.token,
            "does not grant reports for shop/other-data",
        ),
        (
            &ten_minutes_old,
            &agent.token,
            "a replayed or delayed report",
        ),
        (&failure, "", "needs the Pod's report token"),
        (
            &failure,
            "0123456789abcdef",
            "does not grant reports for shop/shop-data",
        ),
    ] {
        let (code, text) = agent.post(report, token).await;
        assert!(
            code == 403 && text.contains(refusal),
            "{report:?}: {code} {text}"
        );
    }
    let after = get(&client).await.status.expect("status");
    assert_eq!(
        after.pods, recorded.pods,
        "a refused report changed status.pods"
    );
    assert_eq!(after.last_report, recorded.last_report);
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), NAMESPACE);
    let other_status = api
        .get(other)
        .await
        .expect("other")
        .status
        .unwrap_or_default();
    assert!(other_status.pods.is_empty(), "{other_status:?}");

    // One TokenReview for the Pod's token, remembered for its next three requests (the
    // replays and the forged Pod name); the other audience and the junk token are reviewed
    // and refused; the empty token is refused without a review.
    let scrape = operator.metrics().await;
    for (result, count) in [("accepted", 1), ("remembered", 3), ("refused", 2)] {
        let series = format!(
            "volume_syncing_operator_report_token_checks_total{{result=\"{result}\"}} {count}"
        );
        assert!(
            scrape.lines().any(|line| line == series),
            "no {series}:\n{scrape}"
        );
    }
}

/// The value of the per-resource gauge `name` for shop/shop-data in a scrape.
fn resource_gauge(scrape: &str, name: &str) -> Option<f64> {
    let series =
        format!("volume_syncing_operator_{name}{{namespace=\"{NAMESPACE}\",name=\"{NAME}\"}} ");
    scrape
        .lines()
        .find_map(|line| line.strip_prefix(&series))
        .and_then(|value| value.trim().parse().ok())
}

#[tokio::test]
async fn the_operator_metrics_show_each_resources_sync_health() {
    let (_plane, client, operator) = served(true).await;
    create_pfss(&client, NAMESPACE, NAME, spec("@every 1h", 2)).await;
    wait_ready(&client, NAMESPACE, NAME, "True").await;
    let scrape = operator.metrics().await;
    assert_eq!(
        resource_gauge(&scrape, "resource_ready"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(
        resource_gauge(&scrape, "resource_reporting_pods"),
        Some(0.0)
    );
    assert_eq!(
        resource_gauge(&scrape, "resource_last_sync_timestamp_seconds"),
        None,
        "no last sync before the first"
    );
    // The webhook certificate the operator serves: the harness issues it for 2 days.
    let expiry: f64 = scrape
        .lines()
        .find_map(|line| {
            line.strip_prefix(
                "volume_syncing_operator_webhook_certificate_expiry_timestamp_seconds ",
            )
        })
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no certificate expiry in the scrape:\n{scrape}"));
    let now = chrono::Utc::now().timestamp() as f64;
    assert!(
        expiry > now + 86_400.0 && expiry <= now + 2.0 * 86_400.0,
        "the served certificate's notAfter {expiry}, now {now}"
    );

    let agent = Agent::admitted(&client, "web-0").await;
    agent.report(None).await;
    let before_failures = chrono::Utc::now().timestamp() as f64;
    agent.report(Some("remote unreachable")).await;
    agent.report(Some("remote unreachable")).await;
    wait_synced(&client, "False", "SyncFailing", Duration::from_secs(10)).await;
    // The scrape reads the watched status: wait until the watch has delivered the failures.
    let mut scrape = String::new();
    for _ in 0..50 {
        scrape = operator.metrics().await;
        if resource_gauge(&scrape, "resource_failing_pods") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        resource_gauge(&scrape, "resource_failing_pods"),
        Some(1.0),
        "{scrape}"
    );
    assert_eq!(resource_gauge(&scrape, "resource_synced"), Some(0.0));
    assert_eq!(
        resource_gauge(&scrape, "resource_consecutive_failures"),
        Some(2.0)
    );
    assert_eq!(
        resource_gauge(&scrape, "resource_reporting_pods"),
        Some(1.0)
    );
    let last_sync = resource_gauge(&scrape, "resource_last_sync_timestamp_seconds")
        .expect("the last successful sync's time");
    assert!(
        last_sync <= before_failures + 1.0 && last_sync > before_failures - 60.0,
        "the time of the success, not of the failures: {last_sync} vs {before_failures}"
    );
    assert!(
        !scrape
            .lines()
            .any(|l| l.starts_with("volume_syncing_operator_resource") && l.contains("web-0")),
        "no Pod names in the labels"
    );
    // The chart's alerts and dashboard watch series this real scrape has (a renamed metric
    // leaves a rule that never fires).
    let served: Vec<&str> = scrape
        .lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| line.split(['{', ' ']).next())
        .collect();
    let missing: Vec<String> = vsc_e2e::alerts::used_metrics()
        .into_iter()
        .filter(|name| name.starts_with("volume_syncing_operator_"))
        .filter(|name| !served.contains(&name.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "the chart's rules or dashboard use operator metrics this scrape lacks: {missing:?}\n{scrape}"
    );
}
