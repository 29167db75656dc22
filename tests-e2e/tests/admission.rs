//! The CRD, the reconciler and the webhook on a real API server: what `kubectl apply` and
//! `kubectl create` of a user's objects store, and the errors a user reads. One API server
//! and operator serve every case (`main`), each case in its own namespace.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::api::{Api, DeleteParams, PostParams};
use libtest_mimic::{Arguments, Trial};
use serde_json::json;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::{app_pod, create_namespace, create_pfss, create_pod, denial, wait_ready};
use vsc_e2e::operator::webhook_operator;
use vsc_e2e::operator::{AGENT_IMAGE, OperatorProcess};
use vsc_types::crd::PodFilesystemSync;

fn spec(selector: serde_json::Value, remote_path: &str) -> serde_json::Value {
    json!({
        "podSelector": {"matchLabels": selector},
        "localPath": "/var/www/riotkit/wp-content",
        "remotePath": remote_path,
        "syncOptions": {"schedule": "@every 5m", "permissions": {"uid": "1001", "gid": 1001}},
        "env": {"REMOTE_TYPE": "s3", "REMOTE_PROVIDER": "Minio", "REMOTE_ENDPOINT": "http://minio:9000"},
    })
}

/// The seed's Pod: the app, and an init container the restore is placed before.
fn seed_pod(name: &str, annotations: serde_json::Value, mount_path: &str) -> Pod {
    let mut pod = app_pod(
        name,
        json!({"my-pod-label": "test"}),
        annotations,
        mount_path,
    );
    pod.spec.as_mut().expect("spec").init_containers = Some(vec![
        serde_json::from_value(
            json!({"name": "some-container-name", "image": "busybox:1.36", "command": ["true"]}),
        )
        .expect("init container"),
    ]);
    pod
}

fn names(containers: Option<&Vec<k8s_openapi::api::core::v1::Container>>) -> Vec<String> {
    containers
        .into_iter()
        .flatten()
        .map(|c| c.name.clone())
        .collect()
}

/// The seed's resource `cloud-press` in a new `namespace`: the remote path templated from
/// the Pod's `subdir` annotation, the restore placed before `some-container-name`, and when
/// `encrypted` its automatic-encryption Secret `cloud-press-remote-sync`. Waits until Ready.
async fn seed_resource(client: &kube::Client, namespace: &str, encrypted: bool) {
    create_namespace(client, namespace).await;
    let mut seed = spec(
        json!({"my-pod-label": "test"}),
        "/example-org-bucket/{{ pod.ObjectMeta.Annotations[\"subdir\"] }}",
    );
    seed["initContainerPlacement"] =
        json!({"containerReference": "some-container-name", "placement": "before"});
    if encrypted {
        seed["automaticEncryption"] =
            json!({"enabled": true, "secretName": "cloud-press-remote-sync"});
    }
    create_pfss(client, namespace, "cloud-press", seed).await;
    wait_ready(client, namespace, "cloud-press", "True").await;
}

/// The API server fills in the CRD's defaults and enforces its cross-field rules.
async fn the_api_server_fills_in_defaults_and_enforces_cross_field_rules(client: kube::Client) {
    create_namespace(&client, "crd").await;
    let created = create_pfss(
        &client,
        "crd",
        "minimal",
        json!({
            "podSelector": {"matchLabels": {"app": "minimal"}},
            "localPath": "/data",
            "remotePath": "/bucket/minimal",
        }),
    )
    .await;
    let options = &created.spec.sync_options;
    assert_eq!(options.schedule, "@every 15m");
    assert!(
        options.clean_up.remote
            && options.clean_up.local
            && !options.clean_up.force_remote
            && !options.clean_up.force_local
    );
    assert!(
        options.allowed_directions.to_remote
            && options.allowed_directions.from_remote
            && options.restore_remote_on_first_run
    );

    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "crd");
    let mut bad: PodFilesystemSync = serde_json::from_value(json!({
        "apiVersion": "riotkit.org/v1alpha1", "kind": "PodFilesystemSync",
        "metadata": {"name": "bad-placement"},
        "spec": {"podSelector": {"matchLabels": {"a": "b"}}, "localPath": "/data", "remotePath": "/b",
                 "initContainerPlacement": {"placement": "before"}},
    }))
    .expect("object");
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("CEL rule");
    assert!(err.to_string().contains("containerReference"), "{err}");
    bad.spec.init_container_placement = vsc_types::crd::InitContainerPlacement::default();
    bad.spec.local_path = "relative/path".into();
    let err = api
        .create(&PostParams::default(), &bad)
        .await
        .expect_err("localPath must be absolute");
    assert!(err.to_string().contains("localPath"), "{err}");
}

/// The reconciler makes the encryption Secret once; a Secret of that name without the key
/// is reported, never overwritten; deleting the resource keeps its Secret (the only key to
/// the data).
async fn the_encryption_secret_is_made_once_never_overwritten_and_outlives_its_resource(
    client: kube::Client,
) {
    seed_resource(&client, "reconciler", true).await;
    let message = wait_ready(&client, "reconciler", "cloud-press", "True").await;
    assert!(message.contains("cloud-press-remote-sync"), "{message}");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "reconciler");
    let secret = secrets
        .get("cloud-press-remote-sync")
        .await
        .expect("encryption Secret created");
    let keys = secret.data.clone().expect("data");
    assert!(keys.contains_key("ENCRYPTED_PASSWORD") && keys.contains_key("ENCRYPTED_PASSWORD2"));

    // A Secret that exists without the key is reported, not overwritten.
    let broken = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some("half-secret".into()),
            ..Default::default()
        },
        data: Some(BTreeMap::from([(
            "ENCRYPTED_PASSWORD".to_string(),
            ByteString(b"not obscured".to_vec()),
        )])),
        ..Secret::default()
    };
    secrets
        .create(&PostParams::default(), &broken)
        .await
        .expect("secret");
    let mut half = spec(json!({"app": "half"}), "/bucket/half");
    half["automaticEncryption"] = json!({"enabled": true, "secretName": "half-secret"});
    create_pfss(&client, "reconciler", "half", half).await;
    let message = wait_ready(&client, "reconciler", "half", "False").await;
    assert!(
        message.contains("half-secret") && message.contains("never overwritten"),
        "{message}"
    );
    let after = secrets.get("half-secret").await.expect("still there");
    assert_eq!(after.data, broken.data, "the Secret was modified");

    let pfss_api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "reconciler");
    pfss_api
        .delete("cloud-press", &DeleteParams::default())
        .await
        .expect("delete");
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        secrets
            .get_opt("cloud-press-remote-sync")
            .await
            .expect("get")
            .is_some()
    );
}

/// The seed's example Pod, with its annotation used in the template.
async fn the_webhook_injects_the_seed_example_into_its_pod(client: kube::Client) {
    seed_resource(&client, "blog", true).await;
    let pod = seed_pod(
        "wordpress-1",
        json!({"subdir": "blog-1", "riotkit.org/volume-user-id": "161"}),
        "/var/www/riotkit",
    );
    let stored = create_pod(&client, "blog", &pod).await.expect("admitted");
    let stored_spec = stored.spec.as_ref().expect("spec");
    assert_eq!(
        names(stored_spec.init_containers.as_ref()),
        [
            "init-volume-restore",
            "volume-syncing-sidecar",
            "some-container-name"
        ]
    );
    assert_eq!(
        names(Some(&stored_spec.containers)),
        ["app"],
        "the app container is left alone"
    );
    let restore = &stored_spec.init_containers.as_ref().expect("init")[0];
    assert_eq!(restore.image.as_deref(), Some(AGENT_IMAGE));
    assert_eq!(restore.image_pull_policy.as_deref(), Some("IfNotPresent"));
    assert_eq!(
        restore.args.clone().unwrap_or_default(),
        [
            "remote-to-local-sync",
            "--src",
            "/example-org-bucket/blog-1",
            "--dst",
            "/var/www/riotkit/wp-content"
        ]
    );
    let sidecar = &stored_spec.init_containers.as_ref().expect("init")[1];
    assert_eq!(
        sidecar.restart_policy.as_deref(),
        Some("Always"),
        "native sidecar on Kubernetes 1.36"
    );
    assert_eq!(
        sidecar.args.clone().unwrap_or_default(),
        [
            "sync-to-remote",
            "--src",
            "/var/www/riotkit/wp-content",
            "--dst",
            "/example-org-bucket/blog-1",
            "--schedule",
            "@every 5m"
        ]
    );
    // No preStop hook: the kubelet would run it as the app gets SIGTERM; the sidecar's own
    // SIGTERM (after the app exited, for a native sidecar) starts its last sync.
    assert_eq!(sidecar.lifecycle, None);
    let security = restore.security_context.as_ref().expect("security context");
    assert_eq!(
        security.run_as_user,
        Some(161),
        "the Pod annotation overrides permissions.uid"
    );
    assert_eq!(security.run_as_group, Some(1001));
    assert_eq!(security.run_as_non_root, Some(true));
    let env: Vec<String> = restore
        .env
        .iter()
        .flatten()
        .map(|e| e.name.clone())
        .collect();
    let mut sorted = env.clone();
    sorted.sort();
    assert_eq!(env, sorted, "env is sorted, so patches are deterministic");
    assert!(env.contains(&"REMOTE_ENDPOINT".to_string()));
    let env_from: Vec<String> = restore
        .env_from
        .iter()
        .flatten()
        .filter_map(|e| e.secret_ref.as_ref().map(|s| s.name.clone()))
        .collect();
    assert_eq!(env_from, ["cloud-press-remote-sync"]);
    let mounts: Vec<(String, String)> = restore
        .volume_mounts
        .iter()
        .flatten()
        .map(|m| (m.name.clone(), m.mount_path.clone()))
        .collect();
    assert!(
        mounts.contains(&("data".to_string(), "/var/www/riotkit".to_string())),
        "{mounts:?}"
    );
}

/// A Pod the resource cannot serve is denied naming what is wrong.
async fn denials_name_what_is_wrong(client: kube::Client) {
    seed_resource(&client, "denials", false).await;
    let pod = seed_pod("no-subdir", json!({}), "/var/www/riotkit");
    let message = denial(create_pod(&client, "denials", &pod).await);
    assert!(message.contains("spec.remotePath"), "{message}");
    let pod = seed_pod("no-mount", json!({"subdir": "x"}), "/srv/other");
    let message = denial(create_pod(&client, "denials", &pod).await);
    assert!(message.contains("spec.localPath"), "{message}");
    let pod = seed_pod(
        "bad-uid",
        json!({"subdir": "x", "riotkit.org/volume-user-id": "root"}),
        "/var/www/riotkit",
    );
    let message = denial(create_pod(&client, "denials", &pod).await);
    assert!(message.contains("riotkit.org/volume-user-id"), "{message}");
    let pod = seed_pod(
        "traversal",
        json!({"subdir": "../../etc"}),
        "/var/www/riotkit",
    );
    let message = denial(create_pod(&client, "denials", &pod).await);
    assert!(message.contains("spec.remotePath"), "{message}");
}

/// Two resources selecting one Pod: denied, naming both.
async fn two_resources_selecting_one_pod_deny_it_naming_both(client: kube::Client) {
    create_namespace(&client, "shop").await;
    // Two resources selecting one Pod: denied, naming both.
    create_pfss(
        &client,
        "shop",
        "first",
        spec(json!({"app": "shop"}), "/b/1"),
    )
    .await;
    create_pfss(
        &client,
        "shop",
        "second",
        spec(json!({"tier": "web"}), "/b/2"),
    )
    .await;
    wait_ready(&client, "shop", "second", "True").await;
    let pod = app_pod(
        "both",
        json!({"app": "shop", "tier": "web"}),
        json!({}),
        "/var/www/riotkit",
    );
    let message = denial(create_pod(&client, "shop", &pod).await);
    assert!(
        message.contains("first") && message.contains("second"),
        "{message}"
    );
}

/// A labelled Pod that no resource of its namespace selects, and one that did not opt in,
/// are admitted unchanged.
async fn pods_no_resource_selects_or_that_did_not_opt_in_are_admitted_unchanged(
    client: kube::Client,
) {
    create_namespace(&client, "empty").await;
    seed_resource(&client, "opt-in", false).await;
    let pod = app_pod(
        "lonely",
        json!({"my-pod-label": "test"}),
        json!({"subdir": "x"}),
        "/var/www/riotkit",
    );
    let stored = create_pod(&client, "empty", &pod).await.expect("admitted");
    assert!(
        stored
            .spec
            .as_ref()
            .expect("spec")
            .init_containers
            .is_none(),
        "a resource of another namespace was applied"
    );

    // A Pod that did not opt in never reaches the webhook.
    let mut pod = app_pod(
        "not-opted-in",
        json!({"my-pod-label": "test"}),
        json!({"subdir": "x"}),
        "/var/www/riotkit",
    );
    pod.metadata
        .labels
        .as_mut()
        .expect("labels")
        .remove("riotkit.org/volume-syncing-controller");
    let stored = create_pod(&client, "opt-in", &pod).await.expect("admitted");
    assert!(
        stored
            .spec
            .as_ref()
            .expect("spec")
            .init_containers
            .is_none()
    );
}

/// A dry run is answered like a real request and stores nothing.
async fn a_dry_run_is_answered_like_a_real_request_and_stores_nothing(client: kube::Client) {
    seed_resource(&client, "dry", false).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), "dry");
    let pod = seed_pod("dry", json!({"subdir": "dry"}), "/var/www/riotkit");
    let dry = pods
        .create(
            &PostParams {
                dry_run: true,
                ..PostParams::default()
            },
            &pod,
        )
        .await
        .expect("dry run");
    assert_eq!(
        names(dry.spec.as_ref().expect("spec").init_containers.as_ref()),
        [
            "init-volume-restore",
            "volume-syncing-sidecar",
            "some-container-name"
        ]
    );
    assert!(pods.get_opt("dry").await.expect("get").is_none());
}

/// The operator's metrics count the webhook's answers by result.
async fn the_operator_counts_patched_and_denied_admissions(
    client: kube::Client,
    operator: &OperatorProcess,
) {
    seed_resource(&client, "metrics", false).await;
    let patched = seed_pod("counted", json!({"subdir": "counted"}), "/var/www/riotkit");
    create_pod(&client, "metrics", &patched)
        .await
        .expect("admitted");
    let denied = seed_pod("no-subdir", json!({}), "/var/www/riotkit");
    denial(create_pod(&client, "metrics", &denied).await);
    let metrics = operator.metrics().await;
    assert!(
        metrics.contains("volume_syncing_operator_admissions_total{result=\"patched\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("volume_syncing_operator_admissions_total{result=\"denied\"}"),
        "{metrics}"
    );
}

/// Input the schema cannot judge but the sidecar, the agent or a kubelet would refuse: the
/// resource is Ready=False naming the field, and the Pods it selects are denied with it.
async fn a_resource_that_would_break_every_pod_it_selects_is_never_ready(client: kube::Client) {
    create_namespace(&client, "broken").await;
    let cases = [
        (
            "schedule-words",
            json!({"syncOptions": {"schedule": "every five minutes"}}),
            "spec.syncOptions.schedule",
        ),
        (
            "schedule-range",
            json!({"syncOptions": {"schedule": "61 * * * *"}}),
            "spec.syncOptions.schedule",
        ),
        (
            "schedule-unit",
            json!({"syncOptions": {"schedule": "@every 5 parsecs"}}),
            "spec.syncOptions.schedule",
        ),
        (
            "env-line-break",
            json!({"env": {"REMOTE_TYPE": "s3", "REMOTE_ENDPOINT": "http://minio:9000\n"}}),
            "spec.env.REMOTE_ENDPOINT",
        ),
        (
            "memory-lots",
            json!({"resources": {"limits": {"memory": "lots"}}}),
            "spec.resources.limits.memory",
        ),
        (
            "dot-dot",
            json!({"remotePath": "/b/../other"}),
            "spec.remotePath",
        ),
    ];
    for (name, change, field) in cases {
        let mut bad = spec(json!({"app": name}), &format!("/bucket/{name}"));
        if let (Some(bad), Some(change)) = (bad.as_object_mut(), change.as_object()) {
            for (key, value) in change {
                bad.insert(key.clone(), value.clone());
            }
        }
        create_pfss(&client, "broken", name, bad).await;
        let message = wait_ready(&client, "broken", name, "False").await;
        assert!(
            message.contains(field),
            "{name}: Ready=False but: {message}"
        );
        let pod = app_pod(name, json!({"app": name}), json!({}), "/var/www/riotkit");
        let denied = denial(create_pod(&client, "broken", &pod).await);
        assert!(denied.contains(field), "{name}: the Pod's denial: {denied}");
    }
}

/// The seed's example names `cloud-press-secret-envs`; applied where it does not exist, a
/// kubelet would not start the Pods. Not Ready, with a Warning Event, until it exists; the
/// Pods are admitted (the Secret may come after them).
async fn a_missing_env_secret_keeps_the_resource_not_ready_until_it_exists(client: kube::Client) {
    create_namespace(&client, "press").await;
    let mut with_secret = spec(json!({"app": "press"}), "/bucket/press");
    with_secret["envFromSecrets"] = json!([{"name": "cloud-press-secret-envs"}]);
    create_pfss(&client, "press", "cloud-press", with_secret).await;
    let message = wait_ready(&client, "press", "cloud-press", "False").await;
    assert!(
        message.contains("'cloud-press-secret-envs' does not exist in namespace press"),
        "{message}"
    );
    let events: Api<k8s_openapi::api::events::v1::Event> = Api::namespaced(client.clone(), "press");
    let listed = events
        .list(&kube::api::ListParams::default())
        .await
        .expect("events");
    assert!(
        listed
            .items
            .iter()
            .any(|e| e.reason.as_deref() == Some("SecretNotFound")
                && e.type_.as_deref() == Some("Warning")),
        "no SecretNotFound Warning: {:?}",
        listed.items.iter().map(|e| &e.reason).collect::<Vec<_>>()
    );
    let pod = app_pod(
        "early",
        json!({"app": "press"}),
        json!({}),
        "/var/www/riotkit",
    );
    create_pod(&client, "press", &pod)
        .await
        .expect("a Pod made before its Secret is admitted");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "press");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "cloud-press-secret-envs"},
        "stringData": {"REMOTE_ACCESS_KEY_ID": "id", "REMOTE_SECRET_ACCESS_KEY": "key"},
    }))
    .expect("secret");
    secrets
        .create(&PostParams::default(), &secret)
        .await
        .expect("create the Secret");
    wait_ready(&client, "press", "cloud-press", "True").await;
}

/// Deleting the automatic-encryption Secret never makes a new key silently: Ready=False
/// naming the lost key, Pods denied; restoring the Secret recovers; a new key only when
/// asked for by the lost key's fingerprint.
async fn a_lost_encryption_secret_is_never_replaced_silently(client: kube::Client) {
    create_namespace(&client, "keys").await;
    let mut encrypted = spec(json!({"app": "keys"}), "/bucket/keys");
    encrypted["automaticEncryption"] = json!({"enabled": true, "secretName": "keys-key"});
    create_pfss(&client, "keys", "keys", encrypted).await;
    wait_ready(&client, "keys", "keys", "True").await;
    let pfss_api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), "keys");
    let recorded = pfss_api
        .get("keys")
        .await
        .expect("get")
        .status
        .and_then(|s| s.encryption_key)
        .expect("the key is recorded in the status");
    let secrets: Api<Secret> = Api::namespaced(client.clone(), "keys");
    let original = secrets.get("keys-key").await.expect("the key Secret");

    secrets
        .delete("keys-key", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    let message = wait_ready(&client, "keys", "keys", "False").await;
    assert!(
        message.contains(&recorded.fingerprint)
            && message.contains("riotkit.org/new-encryption-key"),
        "{message}"
    );
    assert!(
        secrets.get_opt("keys-key").await.expect("get").is_none(),
        "a new key was made"
    );
    let pod = app_pod(
        "encrypted",
        json!({"app": "keys"}),
        json!({}),
        "/var/www/riotkit",
    );
    let denied = denial(create_pod(&client, "keys", &pod).await);
    assert!(denied.contains(&recorded.fingerprint), "{denied}");

    // Restored from a backup: the same key, Ready again.
    let mut backup = original.clone();
    backup.metadata = kube::api::ObjectMeta {
        name: Some("keys-key".into()),
        ..Default::default()
    };
    secrets
        .create(&PostParams::default(), &backup)
        .await
        .expect("restore the Secret");
    wait_ready(&client, "keys", "keys", "True").await;

    // Lost again, and a new key asked for by name.
    secrets
        .delete("keys-key", &DeleteParams::default())
        .await
        .expect("delete the Secret");
    wait_ready(&client, "keys", "keys", "False").await;
    let annotation = json!({"metadata": {"annotations": {"riotkit.org/new-encryption-key": recorded.fingerprint}}});
    pfss_api
        .patch(
            "keys",
            &kube::api::PatchParams::default(),
            &kube::api::Patch::Merge(annotation),
        )
        .await
        .expect("annotate");
    wait_ready(&client, "keys", "keys", "True").await;
    let replaced = secrets.get("keys-key").await.expect("a new key Secret");
    assert_ne!(replaced.data, original.data);
    let now = pfss_api
        .get("keys")
        .await
        .expect("get")
        .status
        .and_then(|s| s.encryption_key)
        .expect("recorded");
    assert_ne!(now.fingerprint, recorded.fingerprint);
}

/// One API server and one operator for every case, each case in a namespace of its own; both
/// are stopped when the cases are done.
struct World {
    runtime: tokio::runtime::Runtime,
    plane: ControlPlane,
    operator: OperatorProcess,
}

impl World {
    fn start() -> Self {
        let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
        let (plane, operator) = runtime.block_on(async {
            let plane = ControlPlane::start().await;
            let client = plane.client().await;
            let operator = webhook_operator(&plane, &client, false).await;
            (plane, operator)
        });
        Self {
            runtime,
            plane,
            operator,
        }
    }

    /// Runs `case` with a client of its own on the shared runtime.
    fn run<F: Future<Output = ()>>(&self, case: impl FnOnce(kube::Client) -> F) {
        self.runtime
            .block_on(async { case(self.plane.client().await).await });
    }
}

macro_rules! cases {
    ($world:expr; $($case:ident),* $(,)?) => {
        vec![$({
            let world = Arc::clone(&$world);
            Trial::test(stringify!($case), move || {
                world.run($case);
                Ok(())
            })
        }),*]
    };
}

fn main() {
    let arguments = Arguments::from_args();
    let world = Arc::new(World::start());
    let mut trials = cases![world;
        the_api_server_fills_in_defaults_and_enforces_cross_field_rules,
        the_encryption_secret_is_made_once_never_overwritten_and_outlives_its_resource,
        the_webhook_injects_the_seed_example_into_its_pod,
        denials_name_what_is_wrong,
        two_resources_selecting_one_pod_deny_it_naming_both,
        pods_no_resource_selects_or_that_did_not_opt_in_are_admitted_unchanged,
        a_dry_run_is_answered_like_a_real_request_and_stores_nothing,
        a_resource_that_would_break_every_pod_it_selects_is_never_ready,
        a_missing_env_secret_keeps_the_resource_not_ready_until_it_exists,
        a_lost_encryption_secret_is_never_replaced_silently,
    ];
    let counted = Arc::clone(&world);
    trials.push(Trial::test(
        "the_operator_counts_patched_and_denied_admissions",
        move || {
            counted.run(|client| {
                the_operator_counts_patched_and_denied_admissions(client, &counted.operator)
            });
            Ok(())
        },
    ));
    let conclusion = libtest_mimic::run(&arguments, trials);
    drop(world); // stops the operator and the API server
    conclusion.exit();
}
