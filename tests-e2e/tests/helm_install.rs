//! The install paths for real, against a real kube-apiserver: the plain manifests of
//! deploy/ applied with kubectl, and the chart installed with `helm install`. The operator
//! binary then runs with the arguments and environment of the installed Deployment, as the
//! installed ServiceAccount (a bound token from the TokenRequest API, so only the chart's
//! RBAC applies), and the API server reaches its webhook through the installed
//! MutatingWebhookConfiguration and Service (turned into an ExternalName for localhost:
//! there is no kube-proxy here). It reconciles PodFilesystemSyncs and admits Pods: the
//! chart's permissions, names and selectors are enough and fit together.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::fs;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::fixtures::wait_ready;
use vsc_e2e::helm::{
    ChartOperator, LocalRun, NAMESPACE, RELEASE, can_i, chart_dir, container_names,
    deploy_manifest, get_json, helm, kind, kubectl, kubectl_ok, name, operator_container,
    parse_documents, repo_root, route_service_to_localhost, service_account_kubeconfig, wait_crd,
    wait_for, wait_until_allowed,
};
use vsc_test_support::free_port;

fn decode(value: &Value) -> String {
    String::from_utf8(
        base64::engine::general_purpose::STANDARD
            .decode(value.as_str().expect("base64 string"))
            .expect("base64"),
    )
    .expect("utf-8")
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

fn arg_value(args: &[String], flag: &str) -> String {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{flag}=")))
        .unwrap_or_else(|| panic!("{flag} is not passed"))
        .to_string()
}

/// An opted-in Pod with an emptyDir at `/data`, labelled `app: <app>`.
fn labelled_pod(pod_name: &str, app: &str) -> Value {
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": pod_name, "labels": {"app": app, "riotkit.org/volume-syncing-controller": "true"}},
        "spec": {
            "terminationGracePeriodSeconds": 60,
            "containers": [{"name": "app", "image": "busybox:1.36", "command": ["sleep", "3600"],
                            "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "emptyDir": {}}],
        },
    })
}

fn simple_pfss(app: &str, encrypted: bool) -> Value {
    json!({
        "apiVersion": "riotkit.org/v1alpha1",
        "kind": "PodFilesystemSync",
        "metadata": {"name": app},
        "spec": {
            "podSelector": {"matchLabels": {"app": app}},
            "localPath": "/data",
            "remotePath": format!("/bucket/{app}"),
            "syncOptions": {"schedule": "@every 5m"},
            "env": {"REMOTE_TYPE": "s3", "REMOTE_PROVIDER": "Minio", "REMOTE_ENDPOINT": "http://minio.minio.svc:9000"},
            "automaticEncryption": {"enabled": encrypted, "secretName": format!("{app}-encryption-key")},
        },
    })
}

/// Creates `pod` in `namespace` and returns it as stored.
fn create_pod(admin: &Path, namespace: &str, pod: &Value) -> Value {
    kubectl_ok(
        admin,
        &["create", "--namespace", namespace, "-f", "-"],
        Some(&pod.to_string()),
    );
    get_json(
        admin,
        &format!("pod/{}", pod["metadata"]["name"].as_str().expect("name")),
        Some(namespace),
    )
    .expect("the Pod was stored")
}

fn injected(pod: &Value) -> bool {
    let (init, containers) = container_names(pod);
    let all: Vec<&String> = init.iter().chain(&containers).collect();
    let restore = all.iter().any(|n| *n == "init-volume-restore");
    let sidecar = all.iter().any(|n| *n == "volume-syncing-sidecar");
    assert_eq!(
        restore, sidecar,
        "either both containers are injected or none: {all:?}"
    );
    restore
}

fn assert_no_authorization_errors(operator: &ChartOperator) {
    let log = operator.log_text();
    for needle in ["forbidden", "Forbidden", "Unauthorized"] {
        assert!(
            !log.contains(needle),
            "the operator hit an authorization error ({needle}): the chart's RBAC is missing a permission:\n{log}"
        );
    }
}

/// deploy/volume-syncing-controller.yaml (defaults: self-managed certificates, leader
/// election) applied for real; the operator runs under its ServiceAccount, creates its CA
/// and certificate, patches its webhook's caBundle, takes the Lease; a re-apply (the
/// plain-manifest upgrade) keeps the caBundle; the seed example of deploy/examples/ is
/// applied for real: the PodFilesystemSync becomes Ready, its encryption Secret is created,
/// its Pod is admitted through the API server with the agent injected.
#[tokio::test]
async fn plain_manifests_install_and_the_operator_runs_on_the_chart_rbac() {
    let plane = ControlPlane::start().await;
    let admin = plane.kubeconfig.clone();
    let manifest = deploy_manifest();
    let docs = parse_documents(&fs::read_to_string(&manifest).expect("deploy manifest"));
    let output = kubectl_ok(&admin, &["apply", "-f", path_str(&manifest)], None);
    assert_eq!(
        output.lines().filter(|l| l.ends_with(" created")).count(),
        docs.len(),
        "every object of the plain manifests is created:\n{output}"
    );
    wait_crd(&admin);
    assert!(
        docs.iter()
            .any(|d| kind(d) == "Namespace" && name(d) == NAMESPACE),
        "the plain manifests create their namespace"
    );

    let service_account = service_account_kubeconfig(&plane, NAMESPACE, RELEASE);
    let account = format!("system:serviceaccount:{NAMESPACE}:{RELEASE}");
    wait_until_allowed(
        &plane,
        &account,
        &[
            ("get", "/version", &[]),
            ("watch", "podfilesystemsyncs.riotkit.org", &["--all-namespaces"]),
            ("get", "secrets/volume-syncing-controller-webhook-tls", &["--namespace", NAMESPACE]),
            ("create", "secrets", &["--namespace", NAMESPACE]),
            ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/volume-syncing-controller", &[]),
            ("update", "leases.coordination.k8s.io/volume-syncing-controller", &["--namespace", NAMESPACE]),
        ],
    )
    .await;
    let webhook_port = free_port();
    let pod_name = "volume-syncing-controller-5f7d8c9b4-x2x7k";
    let tls_dir = plane.dir.path().join("operator-pod/tls");
    fs::create_dir_all(&tls_dir).expect("tls dir");
    let container = operator_container(&docs);
    let operator = ChartOperator::start(
        &service_account,
        container,
        &LocalRun {
            webhook_port,
            pod_name: pod_name.to_string(),
            namespace: NAMESPACE.to_string(),
            tls_dir: tls_dir.clone(),
            admin_kubeconfig: admin.clone(),
        },
    )
    .await;

    // Self-managed certificates: the Secret, the files served, the caBundle.
    let secret_name = arg_value(&operator.args, "--certificate-secret-name");
    let secret = get_json(&admin, &format!("secret/{secret_name}"), Some(NAMESPACE))
        .expect("the operator created its certificate Secret");
    let ca_pem = decode(&secret["data"]["ca.crt"]);
    assert!(ca_pem.starts_with("-----BEGIN CERTIFICATE-----"));
    assert_eq!(
        fs::read_to_string(tls_dir.join("tls.crt")).expect("served certificate"),
        decode(&secret["data"]["tls.crt"]),
        "the operator serves the certificate of its Secret"
    );
    let webhook_configuration = format!("mutatingwebhookconfiguration/{RELEASE}");
    let ca_bundle = wait_for(Duration::from_secs(20), "the caBundle", || {
        get_json(&admin, &webhook_configuration, None).and_then(|c| {
            c["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .map(str::to_string)
        })
    })
    .await;
    assert_eq!(
        decode(&json!(ca_bundle)),
        ca_pem,
        "the caBundle is the CA of the Secret"
    );

    // Leader election: the Lease the chart names, held by this Pod.
    let lease_name = arg_value(&operator.args, "--leader-election-lease-name");
    wait_for(Duration::from_secs(20), "the leader Lease", || {
        get_json(&admin, &format!("lease/{lease_name}"), Some(NAMESPACE))
            .filter(|lease| lease["spec"]["holderIdentity"] == pod_name)
    })
    .await;

    // Upgrading the plain manifests (kubectl apply again) keeps the caBundle the operator set.
    let output = kubectl_ok(&admin, &["apply", "-f", path_str(&manifest)], None);
    assert!(!output.contains(" created"), "{output}");
    assert_eq!(
        get_json(&admin, &webhook_configuration, None).expect("webhook configuration")["webhooks"]
            [0]["clientConfig"]["caBundle"],
        json!(ca_bundle),
        "a re-apply must not drop the caBundle"
    );

    // The API server reaches the operator through the installed Service and webhook.
    route_service_to_localhost(&admin, NAMESPACE, RELEASE, RELEASE, webhook_port);

    // The seed example, applied for real (with its throw-away MinIO).
    let examples = repo_root().join("deploy/examples");
    let output = kubectl_ok(
        &admin,
        &["apply", "-f", path_str(&examples.join("minio"))],
        None,
    );
    assert_eq!(
        output.lines().filter(|l| l.ends_with(" created")).count(),
        5,
        "namespace, Secret, Deployment, Service, Job: {output}"
    );
    kubectl_ok(&admin, &["create", "namespace", "press"], None);
    for file in ["01-secret.yaml", "02-podfilesystemsync.yaml"] {
        kubectl_ok(
            &admin,
            &[
                "apply",
                "--namespace",
                "press",
                "-f",
                path_str(&examples.join(file)),
            ],
            None,
        );
    }
    let message = wait_ready(&plane.client().await, "press", "cloud-press", "True").await;
    assert!(message.contains("cloud-press-remote-sync"), "{message}");
    let key = get_json(&admin, "secret/cloud-press-remote-sync", Some("press"))
        .expect("the encryption Secret was created");
    assert!(key["data"]["ENCRYPTED_PASSWORD"].is_string());
    let events = kubectl_ok(
        &admin,
        &[
            "get",
            "events.events.k8s.io",
            "--namespace",
            "press",
            "-o",
            "json",
        ],
        None,
    );
    assert!(
        events.contains("EncryptionSecretCreated"),
        "the operator may publish Events: {events}"
    );

    let output = kubectl_ok(
        &admin,
        &[
            "apply",
            "--namespace",
            "press",
            "-f",
            path_str(&examples.join("03-pod.yaml")),
        ],
        None,
    );
    assert!(output.contains("pod/cloud-press created"), "{output}");
    let pod = get_json(&admin, "pod/cloud-press", Some("press")).expect("the Pod");
    let (init, _) = container_names(&pod);
    let restore = init
        .iter()
        .position(|n| n == "init-volume-restore")
        .expect("the restore init container is injected");
    let reference = init
        .iter()
        .position(|n| n == "some-container-name")
        .expect("the Pod's own init container");
    assert!(
        restore < reference,
        "placement before some-container-name: {init:?}"
    );
    assert!(injected(&pod));
    let agent_image = arg_value(&operator.args, "--agent-image");
    let images: Vec<&str> = pod["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .chain(pod["spec"]["containers"].as_array())
        .flatten()
        .filter(|c| {
            matches!(
                c["name"].as_str(),
                Some("init-volume-restore" | "volume-syncing-sidecar")
            )
        })
        .map(|c| c["image"].as_str().expect("image"))
        .collect();
    assert_eq!(images, [agent_image.as_str(), agent_image.as_str()]);

    // The release namespace is excluded: a labelled Pod there is not sent to the webhook.
    let pod = create_pod(
        &admin,
        NAMESPACE,
        &labelled_pod("not-mutated", "cloud-press"),
    );
    assert!(!injected(&pod), "the release namespace is never mutated");

    assert_no_authorization_errors(&operator);
    assert!(!can_i(
        &plane,
        &account,
        "delete",
        "secrets",
        &["--namespace", "press"]
    ));
    assert!(!can_i(
        &plane,
        &account,
        "list",
        "secrets",
        &["--all-namespaces"]
    ));
    // The documented uninstall of the plain manifests removes the operator and keeps the
    // CRD, the PodFilesystemSyncs and the encryption Secrets.
    drop(operator);
    kubectl_ok(
        &admin,
        &[
            "delete",
            "-f",
            path_str(&manifest),
            "--ignore-not-found",
            "--selector",
            "app.kubernetes.io/part-of=volume-syncing-controller",
            "--wait=false",
        ],
        None,
    );
    assert!(get_json(&admin, &webhook_configuration, None).is_none());
    assert!(get_json(&admin, &format!("clusterrole/{RELEASE}"), None).is_none());
    assert!(get_json(&admin, "crd/podfilesystemsyncs.riotkit.org", None).is_some());
    assert!(get_json(&admin, "podfilesystemsync/cloud-press", Some("press")).is_some());
    assert!(get_json(&admin, "secret/cloud-press-remote-sync", Some("press")).is_some());
    // The namespace stays: the user may keep other things in it.
    let namespace = get_json(&admin, &format!("namespace/{NAMESPACE}"), None)
        .expect("the operator's namespace is kept");
    assert!(
        namespace["metadata"]["deletionTimestamp"].is_null(),
        "{namespace}"
    );
}

/// `helm install` for real (existing TLS Secret mode, only labelled namespaces, failure
/// policy Ignore, no leader election, a release name other than the chart's), the operator
/// running as its ServiceAccount; then `helm uninstall`, which keeps the CRD, the
/// PodFilesystemSyncs and the encryption Secrets.
#[tokio::test]
async fn helm_install_selects_labelled_namespaces_ignores_failures_and_uninstall_keeps_data() {
    let plane = ControlPlane::start().await;
    let admin = plane.kubeconfig.clone();
    let (release, namespace) = ("vsc", "vsc-system");
    let fullname = "vsc-volume-syncing-controller";

    let serving = plane
        .ca
        .issue_server(&[format!("{fullname}.{namespace}.svc")], 2)
        .expect("serving certificate");
    let tls_dir = plane.dir.path().join("helm-operator/tls");
    fs::create_dir_all(&tls_dir).expect("tls dir");
    fs::write(tls_dir.join("tls.crt"), &serving.cert_pem).expect("cert");
    fs::write(tls_dir.join("tls.key"), &serving.key_pem).expect("key");
    let values = plane.dir.path().join("values.yaml");
    let ca_pem = &plane.ca.certified.cert_pem;
    let indented: String = ca_pem.lines().map(|l| format!("      {l}\n")).collect();
    fs::write(
        &values,
        format!(
            "certificates:\n  mode: existingSecret\n  existingSecret:\n    name: webhook-tls\n    caBundle: |\n{indented}leaderElection:\n  enabled: false\nreports:\n  enabled: true\nwebhook:\n  onlyLabelledNamespaces: true\n  failurePolicy: Ignore\n"
        ),
    )
    .expect("values file");
    let output = helm(&[
        "install",
        release,
        path_str(&chart_dir()),
        "--namespace",
        namespace,
        "--create-namespace",
        "--values",
        path_str(&values),
        "--kubeconfig",
        path_str(&admin),
    ])
    .unwrap_or_else(|e| panic!("helm install failed:\n{e}"));
    assert!(output.contains("STATUS: deployed"), "{output}");
    assert!(
        output.contains("kubectl -n vsc-system rollout status"),
        "NOTES.txt: {output}"
    );
    wait_crd(&admin);
    kubectl_ok(
        &admin,
        &[
            "create",
            "secret",
            "tls",
            "webhook-tls",
            "--namespace",
            namespace,
            "--cert",
            path_str(&tls_dir.join("tls.crt")),
            "--key",
            path_str(&tls_dir.join("tls.key")),
        ],
        None,
    );
    // With reports, the one namespaced permission in this mode is the writer leases'.
    let roles = kubectl_ok(
        &admin,
        &["get", "roles", "--namespace", namespace, "-o", "json"],
        None,
    );
    let roles: serde_json::Value = serde_json::from_str(&roles).expect("roles");
    let resources: Vec<&serde_json::Value> = roles["items"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|role| role["rules"].as_array().into_iter().flatten())
        .map(|rule| &rule["resources"])
        .collect();
    assert!(
        resources
            .iter()
            .all(|r| **r == serde_json::json!(["leases"])),
        "only the writer leases are namespaced in this mode: {roles}"
    );

    let deployment = get_json(&admin, &format!("deployment/{fullname}"), Some(namespace))
        .expect("the installed Deployment");
    let container = &deployment["spec"]["template"]["spec"]["containers"][0];
    let service_account = service_account_kubeconfig(&plane, namespace, fullname);
    wait_until_allowed(
        &plane,
        &format!("system:serviceaccount:{namespace}:{fullname}"),
        &[
            ("get", "/version", &[]),
            (
                "watch",
                "podfilesystemsyncs.riotkit.org",
                &["--all-namespaces"],
            ),
        ],
    )
    .await;
    let webhook_port = free_port();
    route_service_to_localhost(&admin, namespace, fullname, fullname, webhook_port);
    let mut operator = ChartOperator::start(
        &service_account,
        container,
        &LocalRun {
            webhook_port,
            pod_name: format!("{fullname}-6b9c7d5f8-q4w2e"),
            namespace: namespace.to_string(),
            tls_dir: tls_dir.clone(),
            admin_kubeconfig: admin.clone(),
        },
    )
    .await;
    assert_eq!(arg_value(&operator.args, "--certificate-mode"), "file");

    for (ns, labelled) in [("labelled", true), ("unlabelled", false)] {
        kubectl_ok(&admin, &["create", "namespace", ns], None);
        if labelled {
            kubectl_ok(
                &admin,
                &[
                    "label",
                    "namespace",
                    ns,
                    "riotkit.org/volume-syncing-controller=true",
                ],
                None,
            );
        }
        apply_in(&admin, ns, &simple_pfss("shop", true));
        wait_ready(&plane.client().await, ns, "shop", "True").await;
    }
    let pod = create_pod(&admin, "labelled", &labelled_pod("shop-1", "shop"));
    assert!(
        injected(&pod),
        "a labelled Pod in a labelled namespace is mutated"
    );
    let pod = create_pod(&admin, "unlabelled", &labelled_pod("shop-1", "shop"));
    assert!(
        !injected(&pod),
        "webhook.onlyLabelledNamespaces: an unlabelled namespace is not sent to the webhook"
    );
    assert_no_authorization_errors(&operator);

    // failurePolicy Ignore: with the operator down, labelled Pods start without the agent.
    operator.stop();
    let pod = create_pod(&admin, "labelled", &labelled_pod("shop-2", "shop"));
    assert!(!injected(&pod), "Ignore admits the Pod unchanged");

    // Uninstall: the chart's objects go; the CRD, the resources and the keys stay.
    let output = helm(&[
        "uninstall",
        release,
        "--namespace",
        namespace,
        "--kubeconfig",
        path_str(&admin),
    ])
    .unwrap_or_else(|e| panic!("helm uninstall failed:\n{e}"));
    assert!(output.contains("uninstalled"), "{output}");
    assert!(
        get_json(
            &admin,
            &format!("mutatingwebhookconfiguration/{fullname}"),
            None
        )
        .is_none()
    );
    assert!(get_json(&admin, &format!("clusterrole/{fullname}"), None).is_none());
    assert!(
        get_json(&admin, "crd/podfilesystemsyncs.riotkit.org", None).is_some(),
        "helm uninstall never deletes the CRD (it would delete every PodFilesystemSync)"
    );
    for ns in ["labelled", "unlabelled"] {
        assert!(get_json(&admin, "podfilesystemsync/shop", Some(ns)).is_some());
        assert!(
            get_json(&admin, "secret/shop-encryption-key", Some(ns)).is_some(),
            "encryption keys outlive the operator"
        );
    }
}

fn apply_in(admin: &Path, namespace: &str, object: &Value) {
    kubectl(
        admin,
        &["apply", "--namespace", namespace, "-f", "-"],
        Some(&object.to_string()),
    )
    .unwrap_or_else(|e| panic!("apply {object}: {e}"));
}

/// `helm install` with the defaults, the operator sets its caBundle, then `helm upgrade`
/// (other values, two replicas) keeps the caBundle and the certificate: Helm's three-way
/// merge leaves the field the operator owns alone. `helm uninstall` leaves the operator's
/// certificate Secret (documented in the chart README).
#[tokio::test]
async fn helm_upgrade_keeps_the_self_managed_certificate() {
    let plane = ControlPlane::start().await;
    let admin = plane.kubeconfig.clone();
    let chart = chart_dir();
    let kubeconfig_flag = ["--kubeconfig", path_str(&admin)];
    let install = [
        "install",
        RELEASE,
        path_str(&chart),
        "--namespace",
        NAMESPACE,
        "--create-namespace",
        "--set",
        "reports.enabled=true",
    ];
    helm(&[&install[..], &kubeconfig_flag[..]].concat())
        .unwrap_or_else(|e| panic!("helm install failed:\n{e}"));
    wait_crd(&admin);
    let service_account = service_account_kubeconfig(&plane, NAMESPACE, RELEASE);
    wait_until_allowed(
        &plane,
        &format!("system:serviceaccount:{NAMESPACE}:{RELEASE}"),
        &[
            ("get", "/version", &[]),
            ("get", "secrets/volume-syncing-controller-webhook-tls", &["--namespace", NAMESPACE]),
            ("patch", "mutatingwebhookconfigurations.admissionregistration.k8s.io/volume-syncing-controller", &[]),
        ],
    )
    .await;
    let deployment = get_json(&admin, &format!("deployment/{RELEASE}"), Some(NAMESPACE))
        .expect("the installed Deployment");
    let tls_dir = plane.dir.path().join("upgrade-operator/tls");
    fs::create_dir_all(&tls_dir).expect("tls dir");
    let operator = ChartOperator::start(
        &service_account,
        &deployment["spec"]["template"]["spec"]["containers"][0],
        &LocalRun {
            webhook_port: free_port(),
            pod_name: "volume-syncing-controller-0".to_string(),
            namespace: NAMESPACE.to_string(),
            tls_dir,
            admin_kubeconfig: admin.clone(),
        },
    )
    .await;
    let webhook_configuration = format!("mutatingwebhookconfiguration/{RELEASE}");
    let ca_bundle = wait_for(Duration::from_secs(20), "the caBundle", || {
        get_json(&admin, &webhook_configuration, None).and_then(|c| {
            c["webhooks"][0]["clientConfig"]["caBundle"]
                .as_str()
                .map(str::to_string)
        })
    })
    .await;
    let secret = format!(
        "secret/{}",
        arg_value(&operator.args, "--certificate-secret-name")
    );
    let certificate =
        get_json(&admin, &secret, Some(NAMESPACE)).expect("certificate Secret")["data"].clone();

    let upgrade = [
        "upgrade",
        RELEASE,
        path_str(&chart),
        "--namespace",
        NAMESPACE,
        "--reuse-values",
        "--set",
        "webhook.timeoutSeconds=7",
        "--set",
        "replicas=2",
    ];
    helm(&[&upgrade[..], &kubeconfig_flag[..]].concat())
        .unwrap_or_else(|e| panic!("helm upgrade failed:\n{e}"));
    let upgraded = get_json(&admin, &webhook_configuration, None).expect("webhook configuration");
    assert_eq!(
        upgraded["webhooks"][0]["timeoutSeconds"], 7,
        "the upgrade was applied"
    );
    assert_eq!(
        upgraded["webhooks"][0]["clientConfig"]["caBundle"],
        json!(ca_bundle),
        "helm upgrade must keep the caBundle the operator set"
    );
    assert_eq!(
        get_json(&admin, &secret, Some(NAMESPACE)).expect("certificate Secret")["data"],
        certificate
    );
    assert!(
        get_json(
            &admin,
            &format!("poddisruptionbudget/{RELEASE}"),
            Some(NAMESPACE)
        )
        .is_some()
    );
    assert_no_authorization_errors(&operator);
    drop(operator);

    helm(&[
        "uninstall",
        RELEASE,
        "--namespace",
        NAMESPACE,
        "--kubeconfig",
        path_str(&admin),
    ])
    .unwrap_or_else(|e| panic!("helm uninstall failed:\n{e}"));
    assert!(get_json(&admin, &webhook_configuration, None).is_none());
    assert!(
        get_json(&admin, &secret, Some(NAMESPACE)).is_some(),
        "the operator's certificate Secret is not Helm's: it stays (chart README)"
    );
}
