//! The kubectl plugin `kubectl-pfss`, run as a user runs it (the built binary, KUBECONFIG of
//! a real API server): `sync-now` makes a real sidecar upload through the operator's lease
//! answer (or, with `writers: every`, its `/sync-requests` answer), and `status` shows its
//! report; `keys export` prints the operator's Secret so that
//! it applies back; `restore --as-of` annotates the workloads' Pod templates; bad input is
//! refused naming it; every command has `--help`, and completion scripts are printed.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams};
use serde_json::{Value, json};
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{app_pod, create_namespace, create_pfss, create_pod, wait_ready};
use vsc_e2e::kubelet::{Kubelet, chown_tree};
use vsc_e2e::operator::webhook_operator;
use vsc_e2e::operator::workspace_binary;
use vsc_test_support::{S3Server, read_tree, write_tree};
use vsc_types::crd::PodFilesystemSync;

const APP_UID: u32 = 1001;

/// `kubectl-pfss args...` against `kubeconfig`, with `stdin`.
fn plugin(kubeconfig: &Path, args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(workspace_binary("kubectl-pfss"))
        .args(args)
        .env("KUBECONFIG", kubeconfig)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start kubectl-pfss");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    child.wait_with_output().expect("kubectl-pfss output")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// stdout of a run that must succeed.
fn plugin_ok(kubeconfig: &Path, args: &[&str]) -> String {
    let output = plugin(kubeconfig, args, "");
    assert!(
        output.status.success(),
        "kubectl-pfss {args:?} failed:\n{}{}",
        text(&output.stdout),
        text(&output.stderr)
    );
    text(&output.stdout)
}

/// stderr of a run that must fail.
fn plugin_fails(kubeconfig: &Path, args: &[&str], stdin: &str) -> (String, String) {
    let output = plugin(kubeconfig, args, stdin);
    assert!(
        !output.status.success(),
        "kubectl-pfss {args:?} succeeded:\n{}",
        text(&output.stdout)
    );
    (text(&output.stdout), text(&output.stderr))
}

async fn condition(client: &kube::Client, type_: &str) -> Option<(String, String)> {
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "web");
    let pfss = api.get("web-data").await.expect("resource");
    pfss.status?
        .conditions
        .into_iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status, c.message))
}

async fn wait_condition(client: &kube::Client, type_: &str, status: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let found = condition(client, type_).await;
        if let Some((s, message)) = &found
            && s == status
        {
            return message.clone();
        }
        assert!(
            Instant::now() < deadline,
            "{type_} never {status}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `kubectl pfss sync-now -n web web-data --wait`: returns once every selected Pod reported
/// the requested upload.
fn sync_now_and_wait(kubeconfig: &Path) -> String {
    let args = [
        "sync-now",
        "-n",
        "web",
        "web-data",
        "--wait",
        "--timeout",
        "60s",
    ];
    plugin_ok(kubeconfig, &args)
}

#[tokio::test]
async fn sync_now_makes_the_primary_upload_once_and_status_shows_its_report() {
    let s3 = S3Server::start();
    let bucket = s3.bucket("apps");
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    // Kept until the test ends: dropping it stops the operator.
    let _operator = webhook_operator(&plane, &client, true).await;
    create_namespace(&client, "web").await;
    let mut env: BTreeMap<String, String> = s3.remote_env().into_iter().collect();
    env.insert("RCLONE_RETRIES".into(), "1".into());
    create_pfss(
        &client,
        "web",
        "web-data",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "localPath": "/srv/data",
            "remotePath": "/apps/web",
            // No scheduled upload within the test: only the start's and the requested one.
            "syncOptions": {"schedule": "@every 1h", "permissions": {"uid": APP_UID, "gid": APP_UID}},
            "env": env,
        }),
    )
    .await;
    wait_ready(&client, "web", "web-data", "True").await;
    let kubeconfig = plane.kubeconfig.as_path();
    let before = plugin_ok(kubeconfig, &["status", "-n", "web"]);
    assert!(
        before.contains("web/web-data  Ready=True") && before.contains("no Pod has reported yet"),
        "{before}"
    );

    let pod = app_pod("web-0", json!({"app": "web"}), json!({}), "/srv/data");
    let stored = create_pod(&client, "web", &pod).await.expect("admitted");
    let kubelet = Kubelet::new(client.clone());
    let volume = kubelet.empty_dir("data");
    let volumes = BTreeMap::from([
        ("data".to_string(), volume.clone()),
        ("volume-syncing-tmp".to_string(), kubelet.empty_dir("tmp")),
    ]);
    let running = kubelet.start(&stored, &volumes).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !plugin_ok(kubeconfig, &["status", "-n", "web", "web-data"]).contains("  web-0  yes") {
        assert!(Instant::now() < deadline, "web-0 never became the primary");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // A file written after the start's upload reaches the remote only by the request.
    write_tree(&volume, &[("asked.txt", "upload me now")]);
    chown_tree(&volume, APP_UID, APP_UID);
    let started = Instant::now();
    let out = sync_now_and_wait(kubeconfig);
    let took = started.elapsed();
    assert!(
        out.contains("annotated riotkit.org/sync-requested-at=") && out.contains("  web-0  yes"),
        "{out}"
    );
    assert!(
        read_tree(&bucket.join("web")).contains(&("asked.txt".into(), "upload me now".into())),
        "the requested upload did not land: {:?}",
        read_tree(&bucket.join("web"))
    );
    eprintln!("sync-now --wait took {took:?}");
    let message = wait_condition(&client, "SyncRequested", "True").await;
    assert!(message.contains("a sync requested at"), "{message}");

    // One request, one upload: later lease answers carry the same time.
    tokio::time::sleep(Duration::from_secs(12)).await;
    let log: String = running
        .sidecars
        .iter()
        .map(vsc_e2e::kubelet::ContainerProcess::log_text)
        .collect();
    assert_eq!(
        log.matches("a sync was requested").count(),
        1,
        "the sidecar synced more than once for one request:\n{log}"
    );
    let json: Value = serde_json::from_str(&plugin_ok(
        kubeconfig,
        &["status", "-n", "web", "web-data", "-o", "json"],
    ))
    .expect("status -o json");
    let pod = &json[0]["pods"][0];
    assert_eq!(
        (
            &pod["name"],
            &pod["primary"],
            &pod["direction"],
            &pod["lastSyncSucceeded"]
        ),
        (
            &json!("web-0"),
            &json!(true),
            &json!("to-remote"),
            &json!(true)
        ),
        "{json}"
    );
    assert_eq!(pod["nextSync"]["kind"], "at", "{json}");

    // A value that is no time: the condition says so, naming the annotation.
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "web");
    let bad = json!({"metadata": {"annotations": {"riotkit.org/sync-requested-at": "now please"}}});
    api.patch("web-data", &PatchParams::default(), &Patch::Merge(bad))
        .await
        .expect("annotate");
    let message = wait_condition(&client, "SyncRequested", "False").await;
    assert!(
        message.contains("riotkit.org/sync-requested-at") && message.contains("'now please'"),
        "{message}"
    );
    let shown = plugin_ok(kubeconfig, &["status", "-n", "web"]);
    assert!(
        shown.contains("sync-now: annotation riotkit.org/sync-requested-at: 'now please'"),
        "{shown}"
    );
    kubelet.stop(running).await;
}

/// `writers: every`: no sidecar holds a lease, so each asks the operator's `/sync-requests`
/// and uploads its own tree once for one request.
#[tokio::test]
async fn sync_now_makes_every_writer_upload_once_without_a_lease() {
    let s3 = S3Server::start();
    let bucket = s3.bucket("apps");
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    let _operator = webhook_operator(&plane, &client, true).await;
    create_namespace(&client, "web").await;
    let env: BTreeMap<String, String> = s3.remote_env().into_iter().collect();
    create_pfss(
        &client,
        "web",
        "web-data",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "localPath": "/srv/data",
            "remotePath": "/apps/{{ pod.metadata.labels.replica }}",
            "syncOptions": {
                "schedule": "@every 1h",
                "writers": "every",
                "permissions": {"uid": APP_UID, "gid": APP_UID},
            },
            "env": env,
        }),
    )
    .await;
    wait_ready(&client, "web", "web-data", "True").await;
    let kubelet = Kubelet::new(client.clone());
    let mut pods = Vec::new();
    for (name, replica) in [("web-0", "a"), ("web-1", "b")] {
        let labels = json!({"app": "web", "replica": replica});
        let pod = app_pod(name, labels, json!({}), "/srv/data");
        let stored = create_pod(&client, "web", &pod).await.expect("admitted");
        let volume = kubelet.empty_dir(&format!("data-{name}"));
        let volumes = BTreeMap::from([
            ("data".to_string(), volume.clone()),
            (
                "volume-syncing-tmp".to_string(),
                kubelet.empty_dir(&format!("tmp-{name}")),
            ),
        ]);
        pods.push((replica, volume, kubelet.start(&stored, &volumes).await));
    }
    let kubeconfig = plane.kubeconfig.as_path();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let json: Value = serde_json::from_str(&plugin_ok(
            kubeconfig,
            &["status", "-n", "web", "web-data", "-o", "json"],
        ))
        .expect("status -o json");
        let uploaded = json[0]["pods"].as_array().map_or(0, |pods| {
            pods.iter()
                .filter(|p| p["direction"] == "to-remote" && p["lastSyncSucceeded"] == true)
                .count()
        });
        if uploaded == 2 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the start uploads were not reported: {json}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    for (replica, volume, _) in &pods {
        write_tree(volume, &[("asked.txt", &format!("from {replica}"))]);
        chown_tree(volume, APP_UID, APP_UID);
    }
    let out = sync_now_and_wait(kubeconfig);
    assert!(out.contains("web-0") && out.contains("web-1"), "{out}");
    for (replica, _, _) in &pods {
        let remote = read_tree(&bucket.join(replica));
        assert!(
            remote.contains(&("asked.txt".into(), format!("from {replica}"))),
            "the requested upload of {replica} did not land: {remote:?}"
        );
    }
    // One request, one upload each: later answers carry the same time.
    tokio::time::sleep(Duration::from_secs(12)).await;
    for (replica, _, running) in pods {
        let log: String = running
            .sidecars
            .iter()
            .map(vsc_e2e::kubelet::ContainerProcess::log_text)
            .collect();
        assert_eq!(
            log.matches("a sync was requested").count(),
            1,
            "the sidecar of {replica} did not sync exactly once for one request:\n{log}"
        );
        kubelet.stop(running).await;
    }
}

/// A Deployment with a ReplicaSet and its Pod, made by hand (no controller-manager here).
async fn deployment_with_pod(client: &kube::Client) {
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "web");
    let template = json!({"metadata": {"labels": {"app": "web"}},
        "spec": {"containers": [{"name": "app", "image": "busybox:1.36"}]}});
    let deployment: Deployment = serde_json::from_value(json!({
        "metadata": {"name": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }))
    .expect("deployment");
    let deployment = deployments
        .create(&PostParams::default(), &deployment)
        .await
        .expect("create deployment");
    let owner = |kind: &str, name: &str, uid: Option<String>| json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
    let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), "web");
    let set: ReplicaSet = serde_json::from_value(json!({
        "metadata": {"name": "shop-1", "ownerReferences": owner("Deployment", "shop", deployment.metadata.uid)},
        "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": template},
    }))
    .expect("replicaset");
    let set = sets
        .create(&PostParams::default(), &set)
        .await
        .expect("create replicaset");
    let mut pod = app_pod(
        "shop-1-abcde",
        json!({"app": "web"}),
        json!({}),
        "/srv/data",
    );
    pod.metadata.owner_references =
        serde_json::from_value(owner("ReplicaSet", "shop-1", set.metadata.uid)).expect("owner");
    create_pod(client, "web", &pod).await.expect("admitted");
    let bare = app_pod("lonely", json!({"app": "web"}), json!({}), "/srv/data");
    create_pod(client, "web", &bare).await.expect("admitted");
}

#[tokio::test]
async fn keys_export_restore_and_bad_input_on_the_api_server() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    let _operator = webhook_operator(&plane, &client, false).await;
    create_namespace(&client, "web").await;
    create_pfss(
        &client,
        "web",
        "web-data",
        json!({
            "podSelector": {"matchLabels": {"app": "web"}},
            "localPath": "/srv/data",
            "remotePath": "/apps/web",
            "syncOptions": {"trash": {"enabled": true}},
            "env": {"REMOTE_TYPE": "local"},
            "automaticEncryption": {"enabled": true},
        }),
    )
    .await;
    wait_ready(&client, "web", "web-data", "True").await;
    let kubeconfig = plane.kubeconfig.as_path();

    // keys export: the Secret as YAML, the warning on stderr; applied back after a loss.
    let output = plugin(kubeconfig, &["keys", "export", "-n", "web", "web-data"], "");
    assert!(output.status.success(), "{}", text(&output.stderr));
    let yaml = text(&output.stdout);
    let stderr = text(&output.stderr);
    assert!(stderr.contains("only key to the data"), "{stderr}");
    assert!(
        yaml.contains("kind: Secret")
            && yaml.contains("name: web-data-encryption")
            && yaml.contains("ENCRYPTED_PASSWORD2:")
            && !yaml.contains("resourceVersion"),
        "{yaml}"
    );
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "web");
    let original = secrets
        .get("web-data-encryption")
        .await
        .expect("secret")
        .data;
    secrets
        .delete("web-data-encryption", &DeleteParams::default())
        .await
        .expect("delete secret");
    vsc_e2e::helm::kubectl_ok(kubeconfig, &["apply", "-f", "-"], Some(&yaml));
    let restored = secrets
        .get("web-data-encryption")
        .await
        .expect("applied back")
        .data;
    assert_eq!(restored, original, "the export is the same key");

    // restore --as-of: the plan names the workload, its Pod and remote path; "n" changes
    // nothing; --yes annotates the Deployment's template, not the bare Pod.
    deployment_with_pod(&client).await;
    let as_of = "2026-01-02T03:04:05Z";
    let args = ["restore", "-n", "web", "web-data", "--as-of", as_of];
    let (plan, refused) = plugin_fails(kubeconfig, &args, "n\n");
    assert!(
        refused.contains("not confirmed: nothing changed"),
        "{refused}"
    );
    assert!(
        plan.contains("Deployment shop: rolled out")
            && plan.contains("Pod shop-1-abcde now, remote path /apps/web\n")
            && plan.contains("Pod lonely: no Deployment"),
        "{plan}"
    );
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), "web");
    let annotation = || async {
        let deployment = deployments.get("shop").await.expect("deployment");
        deployment
            .spec
            .and_then(|s| s.template.metadata)
            .and_then(|m| m.annotations)
            .and_then(|a| a.get("riotkit.org/restore-as-of").cloned())
    };
    assert_eq!(annotation().await, None);
    let mut yes = args.to_vec();
    yes.push("--yes");
    let done = plugin_ok(kubeconfig, &yes);
    assert!(
        done.contains("Deployment shop: annotated riotkit.org/restore-as-of=2026-01-02T03:04:05"),
        "{done}"
    );
    assert!(
        done.contains("kubectl patch deployment shop -n web --type=json"),
        "{done}"
    );
    assert_eq!(
        annotation().await.as_deref(),
        Some("2026-01-02T03:04:05.000000Z")
    );

    // Bad input names what is wrong.
    let (_, error) = plugin_fails(
        kubeconfig,
        &["restore", "-n", "web", "web-data", "--as-of", "yesterday"],
        "",
    );
    assert!(
        error.contains("--as-of") && error.contains("'yesterday'") && error.contains("RFC 3339"),
        "{error}"
    );
    let (_, error) = plugin_fails(kubeconfig, &["status", "-n", "web", "nope"], "");
    assert!(
        error.contains("podfilesystemsync web/nope not found"),
        "{error}"
    );
    let (_, error) = plugin_fails(kubeconfig, &["sync-now", "-n", "shop", "web-data"], "");
    assert!(
        error.contains("podfilesystemsync shop/web-data not found"),
        "{error}"
    );
    let future = [
        "restore",
        "-n",
        "web",
        "web-data",
        "--as-of",
        "2999-01-01T00:00:00Z",
        "--yes",
    ];
    let (_, error) = plugin_fails(kubeconfig, &future, "");
    assert!(
        error.contains("--as-of 2999-01-01T00:00:00.000000Z is in the future"),
        "{error}"
    );
    let (_, error) = plugin_fails(
        kubeconfig,
        &[
            "verify",
            "-n",
            "web",
            "web-data",
            "--kubectl",
            "/nonexistent/kubectl",
        ],
        "",
    );
    assert!(error.contains("cannot run /nonexistent/kubectl"), "{error}");
}

#[test]
fn every_command_has_help_and_completion_scripts_are_printed() {
    let none = Path::new("/nonexistent/kubeconfig");
    for command in [
        &["--help"][..],
        &["status", "--help"],
        &["sync-now", "--help"],
        &["restore", "--help"],
        &["verify", "--help"],
        &["keys", "--help"],
        &["keys", "export", "--help"],
        &["completion", "--help"],
    ] {
        let help = plugin_ok(none, command);
        assert!(help.contains("Usage: kubectl pfss"), "{command:?}:\n{help}");
    }
    assert!(plugin_ok(none, &["restore", "--help"]).contains("--as-of <RFC3339>"));
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef kubectl-pfss"),
        ("fish", "complete -c kubectl-pfss"),
    ] {
        let script = plugin_ok(none, &["completion", shell]);
        assert!(
            script.contains(marker) && script.contains("sync-now"),
            "{shell}:\n{script}"
        );
    }
    let (_, error) = plugin_fails(none, &["completion", "tcsh"], "");
    assert!(error.contains("'tcsh'"), "{error}");
}

/// The krew layout: the archive holds the binary the manifest names, the manifest its sha256;
/// kubectl finds the unpacked plugin on PATH as `kubectl pfss`.
#[test]
fn the_krew_package_unpacks_to_a_plugin_that_kubectl_runs() {
    let out = tempfile::tempdir().expect("temp dir");
    let script = vsc_e2e::helm::repo_root().join("scripts/krew-package.sh");
    let binary = workspace_binary("kubectl-pfss");
    let uri = "https://example.org/kubectl-pfss-linux-amd64.tar.gz";
    let args = [
        binary.to_str().expect("utf-8 path"),
        out.path().to_str().expect("utf-8 path"),
        "v0.1.0",
        "linux/amd64",
        uri,
    ];
    let packaged = vsc_e2e::helm::run(
        Path::new("bash"),
        &[&[script.to_str().expect("utf-8")][..], &args].concat(),
        None,
    );
    assert!(packaged.status.success(), "{}", text(&packaged.stderr));
    let archive = out.path().join("kubectl-pfss-linux-amd64.tar.gz");
    let manifest = std::fs::read_to_string(out.path().join("pfss.yaml")).expect("manifest");
    let sha = {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(std::fs::read(&archive).expect("archive"));
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    assert!(
        manifest.contains(&format!("sha256: \"{sha}\""))
            && manifest.contains(uri)
            && manifest.contains("version: \"v0.1.0\""),
        "{manifest}"
    );
    assert!(!manifest.contains("\"@"), "an unfilled field:\n{manifest}");
    let unpacked = out.path().join("unpacked");
    std::fs::create_dir(&unpacked).expect("mkdir");
    let tar = Command::new("tar")
        .arg("-xzf")
        .arg(&archive)
        .arg("-C")
        .arg(&unpacked)
        .status()
        .expect("tar");
    assert!(tar.success());
    let path = format!(
        "{}:{}",
        unpacked.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let listed = Command::new(vsc_test_support::tool("kubectl"))
        .args(["plugin", "list"])
        .env("PATH", &path)
        .output()
        .expect("kubectl plugin list");
    assert!(
        text(&listed.stdout).contains(&unpacked.join("kubectl-pfss").display().to_string()),
        "{}{}",
        text(&listed.stdout),
        text(&listed.stderr)
    );
    let help = Command::new(vsc_test_support::tool("kubectl"))
        .args(["pfss", "--help"])
        .env("PATH", &path)
        .output()
        .expect("kubectl pfss");
    assert!(
        text(&help.stdout).contains("Usage: kubectl pfss"),
        "{}{}",
        text(&help.stdout),
        text(&help.stderr)
    );
}
