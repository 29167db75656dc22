//! `helm template` for the default values and for each option: what the objects say, and
//! that the real API server accepts every one of them (`kubectl apply --dry-run=server`).

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::ResourceRequirements;
use serde_json::{Value, json};
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::helm::{
    NAMESPACE, RELEASE, VARIANTS, apply, apply_crd, container_args, find, kind, kubectl_ok, name,
    operator_container, render,
};

const TLS_DIR: &str = "/etc/volume-syncing-controller/tls";

fn arg_value(args: &[String], flag: &str) -> Option<String> {
    args.iter()
        .find_map(|a| a.strip_prefix(&format!("{flag}=")).map(str::to_string))
}

fn env_value<'a>(container: &'a Value, variable: &str) -> Option<&'a Value> {
    container["env"]
        .as_array()?
        .iter()
        .find(|e| e["name"] == variable)
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|d| format!("{}/{}", kind(d), name(d)))
        .collect();
    kinds.sort();
    kinds
}

fn webhook(docs: &[Value]) -> &Value {
    &find(docs, "MutatingWebhookConfiguration", None)["webhooks"][0]
}

#[test]
fn default_values_render_the_self_managed_operator() {
    let docs = render(&[]);
    assert_eq!(
        kinds(&docs),
        [
            "ClusterRole/volume-syncing-controller",
            "ClusterRole/volume-syncing-controller-webhook-ca",
            "ClusterRoleBinding/volume-syncing-controller",
            "ClusterRoleBinding/volume-syncing-controller-webhook-ca",
            "Deployment/volume-syncing-controller",
            "MutatingWebhookConfiguration/volume-syncing-controller",
            "Role/volume-syncing-controller",
            "RoleBinding/volume-syncing-controller",
            "Service/volume-syncing-controller",
            "ServiceAccount/volume-syncing-controller",
        ]
    );
    for doc in &docs {
        if !matches!(
            kind(doc),
            "ClusterRole" | "ClusterRoleBinding" | "MutatingWebhookConfiguration"
        ) {
            assert_eq!(doc["metadata"]["namespace"], NAMESPACE, "{}", name(doc));
        }
    }

    let deployment = find(&docs, "Deployment", None);
    let pod = &deployment["spec"]["template"]["spec"];
    assert_eq!(deployment["spec"]["replicas"], 1);
    assert_eq!(
        deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 0,
        "a rolling update keeps a ready webhook"
    );
    assert_eq!(pod["serviceAccountName"], RELEASE);
    let security = &pod["securityContext"];
    assert_eq!(security["runAsNonRoot"], true);
    assert!(security["runAsUser"].as_i64().is_some_and(|uid| uid > 0));
    assert!(security["runAsGroup"].as_i64().is_some_and(|gid| gid > 0));
    assert_eq!(security["seccompProfile"]["type"], "RuntimeDefault");

    let container = operator_container(&docs);
    assert_eq!(
        container["image"],
        "ghcr.io/riotkit-org/volume-syncing-operator:0.1.0"
    );
    let container_security = &container["securityContext"];
    assert_eq!(container_security["readOnlyRootFilesystem"], true);
    assert_eq!(container_security["allowPrivilegeEscalation"], false);
    assert_eq!(container_security["capabilities"]["drop"], json!(["ALL"]));
    assert!(container["resources"]["requests"]["memory"].is_string());
    assert!(container["resources"]["limits"]["memory"].is_string());
    for (probe, path) in [("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")] {
        assert_eq!(container[probe]["httpGet"]["path"], path);
        assert_eq!(container[probe]["httpGet"]["port"], "admin");
    }
    let ports: Vec<(&str, i64)> = container["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| {
            (
                p["name"].as_str().expect("port name"),
                p["containerPort"].as_i64().expect("port"),
            )
        })
        .collect();
    assert_eq!(ports, [("webhook", 8443), ("admin", 8080)]);

    let args = container_args(container);
    assert_eq!(
        arg_value(&args, "--webhook-addr").as_deref(),
        Some("0.0.0.0:8443")
    );
    assert_eq!(
        arg_value(&args, "--admin-addr").as_deref(),
        Some("0.0.0.0:8080")
    );
    assert_eq!(
        arg_value(&args, "--tls-cert-file"),
        Some(format!("{TLS_DIR}/tls.crt"))
    );
    assert_eq!(
        arg_value(&args, "--tls-key-file"),
        Some(format!("{TLS_DIR}/tls.key"))
    );
    assert_eq!(
        arg_value(&args, "--agent-image").as_deref(),
        Some("ghcr.io/riotkit-org/volume-syncing-controller:0.1.0")
    );
    let resources: ResourceRequirements = serde_json::from_str(
        &arg_value(&args, "--agent-default-resources").expect("--agent-default-resources"),
    )
    .expect("--agent-default-resources is a ResourceRequirements");
    assert!(resources.limits.is_some() && resources.requests.is_some());
    assert_eq!(
        arg_value(&args, "--certificate-mode").as_deref(),
        Some("self-managed")
    );
    // The names the operator is told are the names the chart gave the objects (and the RBAC
    // rules restrict it to).
    assert_eq!(
        arg_value(&args, "--webhook-configuration-name").as_deref(),
        Some(name(find(&docs, "MutatingWebhookConfiguration", None)))
    );
    assert_eq!(
        arg_value(&args, "--service-name").as_deref(),
        Some(name(find(&docs, "Service", None)))
    );
    let certificate_secret =
        arg_value(&args, "--certificate-secret-name").expect("--certificate-secret-name");
    let role = find(&docs, "Role", None);
    assert!(
        role["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .any(|r| r["resourceNames"] == json!([certificate_secret])),
        "the Role lets the operator update its certificate Secret {certificate_secret}"
    );
    assert_eq!(
        arg_value(&args, "--leader-election-lease-name").as_deref(),
        Some(RELEASE)
    );
    assert_eq!(
        env_value(container, "VSC_LEADER_ELECTION").expect("env")["value"],
        "true"
    );
    for (variable, field) in [
        ("POD_NAME", "metadata.name"),
        ("POD_NAMESPACE", "metadata.namespace"),
    ] {
        assert_eq!(
            env_value(container, variable).expect("downward API env")["valueFrom"]["fieldRef"]["fieldPath"],
            field
        );
    }
    // Self-managed: the operator writes its certificate into a writable emptyDir.
    assert_eq!(container["volumeMounts"][0]["mountPath"], TLS_DIR);
    assert_eq!(container["volumeMounts"][0]["readOnly"], false);
    assert!(pod["volumes"][0]["emptyDir"].is_object());

    let service = find(&docs, "Service", None);
    let https = &service["spec"]["ports"][0];
    assert_eq!(
        (https["port"].clone(), https["targetPort"].clone()),
        (json!(443), json!("webhook"))
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    let webhook = webhook(&docs);
    assert_eq!(
        webhook["name"],
        "pods.volume-syncing-controller.riotkit.org"
    );
    assert_eq!(webhook["admissionReviewVersions"], json!(["v1"]));
    assert_eq!(webhook["sideEffects"], "None");
    assert_eq!(webhook["failurePolicy"], "Fail");
    assert_eq!(webhook["timeoutSeconds"], 5);
    assert_eq!(webhook["reinvocationPolicy"], "IfNeeded");
    assert_eq!(
        webhook["rules"],
        json!([{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}])
    );
    assert_eq!(
        webhook["objectSelector"],
        json!({"matchLabels": {"riotkit.org/volume-syncing-controller": "true"}})
    );
    assert_eq!(
        webhook["namespaceSelector"],
        json!({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE]}]}),
        "the release namespace is excluded, and nothing else by default"
    );
    assert_eq!(
        webhook["clientConfig"],
        json!({"service": {"name": RELEASE, "namespace": NAMESPACE, "path": "/mutate-pods", "port": 443}}),
        "no caBundle: the operator patches it in (self-managed)"
    );
    assert!(
        docs.iter().all(|d| kind(d) != "PodDisruptionBudget"),
        "one replica: a PDB would block node drains"
    );
}

#[test]
fn cert_manager_mode_issues_the_certificate_and_injects_the_ca() {
    let docs = render(&["certificates.mode=certManager"]);
    let certificate = find(
        &docs,
        "Certificate",
        Some("volume-syncing-controller-webhook"),
    );
    assert_eq!(
        certificate["spec"]["dnsNames"],
        json!([
            "volume-syncing-controller.volume-syncing-controller.svc",
            "volume-syncing-controller.volume-syncing-controller.svc.cluster.local"
        ])
    );
    let secret = certificate["spec"]["secretName"]
        .as_str()
        .expect("secretName");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        "volume-syncing-controller-ca"
    );
    let ca = find(&docs, "Certificate", Some("volume-syncing-controller-ca"));
    assert_eq!(ca["spec"]["isCA"], true);
    assert_eq!(
        ca["spec"]["issuerRef"]["name"],
        "volume-syncing-controller-selfsigned"
    );
    assert!(
        find(
            &docs,
            "Issuer",
            Some("volume-syncing-controller-selfsigned")
        )["spec"]["selfSigned"]
            .is_object()
    );
    assert_eq!(
        find(&docs, "Issuer", Some("volume-syncing-controller-ca"))["spec"]["ca"]["secretName"],
        ca["spec"]["secretName"]
    );
    let configuration = find(&docs, "MutatingWebhookConfiguration", None);
    assert_eq!(
        configuration["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/volume-syncing-controller-webhook")
    );
    assert!(webhook(&docs)["clientConfig"]["caBundle"].is_null());

    let container = operator_container(&docs);
    let args = container_args(container);
    assert_eq!(
        arg_value(&args, "--certificate-mode").as_deref(),
        Some("file")
    );
    assert!(arg_value(&args, "--certificate-secret-name").is_none());
    let pod = &find(&docs, "Deployment", None)["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], secret);
    assert_eq!(container["volumeMounts"][0]["readOnly"], true);
    // No self-managed permissions: no webhook configuration patching, no Secret updates.
    assert!(
        docs.iter()
            .all(|d| name(d) != "volume-syncing-controller-webhook-ca"),
        "{:?}",
        kinds(&docs)
    );
    let role = find(&docs, "Role", None);
    assert!(
        role["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["apiGroups"] == json!(["coordination.k8s.io"])),
        "only leader election is left in the Role: {role}"
    );

    let docs = render(&[
        "certificates.mode=certManager",
        "certificates.certManager.issuerRef.kind=ClusterIssuer",
        "certificates.certManager.issuerRef.name=my-ca",
        "certificates.certManager.issuerRef.group=cert-manager.io",
    ]);
    assert!(docs.iter().all(|d| kind(d) != "Issuer"));
    assert_eq!(
        find(&docs, "Certificate", None)["spec"]["issuerRef"],
        json!({"group": "cert-manager.io", "kind": "ClusterIssuer", "name": "my-ca"})
    );
}

#[test]
fn existing_secret_mode_serves_the_given_secret_with_the_given_ca() {
    let pem = "-----BEGIN CERTIFICATE-----";
    let docs = render(&[
        "certificates.mode=existingSecret",
        "certificates.existingSecret.name=my-webhook-tls",
        &format!("certificates.existingSecret.caBundle={pem}"),
    ]);
    use base64::Engine as _;
    assert_eq!(
        webhook(&docs)["clientConfig"]["caBundle"],
        base64::engine::general_purpose::STANDARD.encode(pem)
    );
    let pod = &find(&docs, "Deployment", None)["spec"]["template"]["spec"];
    assert_eq!(pod["volumes"][0]["secret"]["secretName"], "my-webhook-tls");
    let args = container_args(operator_container(&docs));
    assert_eq!(
        arg_value(&args, "--certificate-mode").as_deref(),
        Some("file")
    );
    assert!(
        docs.iter()
            .all(|d| !matches!(kind(d), "Certificate" | "Issuer"))
    );
}

#[test]
fn namespace_selector_failure_policy_and_timeouts_follow_the_values() {
    let docs = render(&[
        "webhook.onlyLabelledNamespaces=true",
        "webhook.excludedNamespaces={kube-system,monitoring}",
        "webhook.failurePolicy=Ignore",
        "webhook.timeoutSeconds=10",
        "webhook.reinvocationPolicy=Never",
    ]);
    let webhook = webhook(&docs);
    assert_eq!(
        webhook["namespaceSelector"],
        json!({
            "matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn", "values": [NAMESPACE, "kube-system", "monitoring"]}],
            "matchLabels": {"riotkit.org/volume-syncing-controller": "true"},
        })
    );
    assert_eq!(webhook["failurePolicy"], "Ignore");
    assert_eq!(webhook["timeoutSeconds"], 10);
    assert_eq!(webhook["reinvocationPolicy"], "Never");
}

#[test]
fn two_replicas_get_leader_election_a_pdb_and_spreading() {
    let docs = render(&[
        "replicas=2",
        "leaderElection.enabled=true",
        "topologySpread.enabled=true",
    ]);
    let deployment = find(&docs, "Deployment", None);
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod_labels = &deployment["spec"]["template"]["metadata"]["labels"];
    let pdb = find(&docs, "PodDisruptionBudget", None);
    assert_eq!(pdb["spec"]["minAvailable"], 1);
    for (key, value) in pdb["spec"]["selector"]["matchLabels"]
        .as_object()
        .expect("PDB selector")
    {
        assert_eq!(&pod_labels[key], value, "the PDB selects the operator Pods");
    }
    let spread = &deployment["spec"]["template"]["spec"]["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        spread["labelSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );
    let container = operator_container(&docs);
    assert_eq!(
        env_value(container, "VSC_LEADER_ELECTION").expect("env")["value"],
        "true"
    );
    // The chart's Lease can be renewed: by name, or (with reports, for the writer leases) as
    // any Lease of the release namespace.
    let role = find(&docs, "Role", None);
    let renews_the_lease = |r: &serde_json::Value| {
        r["resources"] == json!(["leases"])
            && r["verbs"].as_array().is_some_and(|verbs| {
                verbs.contains(&json!("get")) && verbs.contains(&json!("update"))
            })
            && (r["resourceNames"] == json!([RELEASE]) || r["resourceNames"].is_null())
    };
    let rules = role["rules"].as_array().expect("rules");
    assert!(rules.iter().any(renews_the_lease), "{rules:?}");

    let docs = render(&["leaderElection.enabled=false", "reports.enabled=false"]);
    let container = operator_container(&docs);
    assert_eq!(
        env_value(container, "VSC_LEADER_ELECTION").expect("env")["value"],
        "false"
    );
    assert!(arg_value(&container_args(container), "--leader-election-lease-name").is_none());
    let role = find(&docs, "Role", None);
    assert!(
        role["rules"]
            .as_array()
            .expect("rules")
            .iter()
            .all(|r| r["resources"] == json!(["secrets"])),
        "without leader election and reports no Lease permission: {role}"
    );
    let docs = render(&[
        "leaderElection.enabled=false",
        "reports.enabled=false",
        "certificates.mode=certManager",
    ]);
    assert!(
        docs.iter()
            .all(|d| !matches!(kind(d), "Role" | "RoleBinding")),
        "nothing namespaced to grant: {:?}",
        kinds(&docs)
    );
}

#[test]
fn agent_and_operator_settings_reach_the_operator_flags() {
    let docs = render(&[
        "image.digest=sha256:1111111111111111111111111111111111111111111111111111111111111111",
        "agent.image.digest=sha256:2222222222222222222222222222222222222222222222222222222222222222",
        "agent.pullPolicy=Always",
        "agent.logFormat=json",
        "agent.sidecarMode=classic",
        "operator.logFormat=json",
        "agent.resources=null",
    ]);
    let container = operator_container(&docs);
    assert_eq!(
        container["image"],
        "ghcr.io/riotkit-org/volume-syncing-operator@sha256:1111111111111111111111111111111111111111111111111111111111111111"
    );
    let args = container_args(container);
    assert_eq!(
        arg_value(&args, "--agent-image").as_deref(),
        Some(
            "ghcr.io/riotkit-org/volume-syncing-controller@sha256:2222222222222222222222222222222222222222222222222222222222222222"
        )
    );
    assert_eq!(
        arg_value(&args, "--agent-image-pull-policy").as_deref(),
        Some("Always")
    );
    assert_eq!(
        arg_value(&args, "--agent-log-format").as_deref(),
        Some("json")
    );
    assert_eq!(
        arg_value(&args, "--sidecar-mode").as_deref(),
        Some("classic")
    );
    assert_eq!(arg_value(&args, "--log-format").as_deref(), Some("json"));
    assert!(arg_value(&args, "--agent-default-resources").is_none());

    let docs = render(&["image.tag=1.2.3", "agent.image.tag=1.2.4"]);
    let container = operator_container(&docs);
    assert_eq!(
        container["image"],
        "ghcr.io/riotkit-org/volume-syncing-operator:1.2.3"
    );
    assert_eq!(
        arg_value(&container_args(container), "--agent-image").as_deref(),
        Some("ghcr.io/riotkit-org/volume-syncing-controller:1.2.4")
    );
}

/// The operator image and the agent image it is told to inject, for `values`.
fn images(values: &[&str]) -> (String, String) {
    let docs = render(values);
    let container = operator_container(&docs);
    let operator = container["image"].as_str().expect("image").to_string();
    let agent = arg_value(&container_args(container), "--agent-image").expect("--agent-image");
    (operator, agent)
}

#[test]
fn one_private_mirror_value_replaces_the_registry_of_both_images() {
    assert_eq!(
        images(&["global.imageRegistry=registry.example.com"]),
        (
            "registry.example.com/riotkit-org/volume-syncing-operator:0.1.0".to_string(),
            "registry.example.com/riotkit-org/volume-syncing-controller:0.1.0".to_string()
        )
    );
    // A registry with a port and a trailing slash, and pinned digests.
    let digest = format!("sha256:{}", "3".repeat(64));
    let operator_digest = format!("image.digest={digest}");
    let agent_digest = format!("agent.image.digest={digest}");
    assert_eq!(
        images(&[
            "global.imageRegistry=mirror.local:5000/",
            &operator_digest,
            &agent_digest
        ]),
        (
            format!("mirror.local:5000/riotkit-org/volume-syncing-operator@{digest}"),
            format!("mirror.local:5000/riotkit-org/volume-syncing-controller@{digest}")
        )
    );
    // A mirror with a path (a pull-through cache project), and repositories of its own: a
    // Docker Hub `org/name` has no registry to replace, so the mirror goes in front.
    assert_eq!(
        images(&[
            "global.imageRegistry=harbor.example.com/ghcr-proxy",
            "image.repository=myorg/operator",
            "agent.image.repository=localhost:5000/team/agent",
            "image.tag=1.2.3",
        ]),
        (
            "harbor.example.com/ghcr-proxy/myorg/operator:1.2.3".to_string(),
            "harbor.example.com/ghcr-proxy/team/agent:0.1.0".to_string()
        )
    );
    // Unset: the repositories as they are.
    assert_eq!(
        images(&[]),
        (
            "ghcr.io/riotkit-org/volume-syncing-operator:0.1.0".to_string(),
            "ghcr.io/riotkit-org/volume-syncing-controller:0.1.0".to_string()
        )
    );
    let refused = vsc_e2e::helm::try_render(&["global.imageRegistry=not a host"])
        .expect_err("a registry with a space");
    assert!(refused.contains("imageRegistry"), "{refused}");
}

#[test]
fn metrics_scraping_objects_select_the_metrics_port() {
    let docs = render(&[
        "metrics.serviceMonitor.enabled=true",
        "metrics.vmServiceScrape.enabled=true",
    ]);
    let service = find(&docs, "Service", None);
    assert_eq!(service["spec"]["ports"][1]["name"], "metrics");
    for scrape_kind in ["ServiceMonitor", "VMServiceScrape"] {
        let scrape = find(&docs, scrape_kind, None);
        assert_eq!(scrape["spec"]["endpoints"][0]["port"], "metrics");
        assert_eq!(scrape["spec"]["endpoints"][0]["path"], "/metrics");
        for (key, value) in scrape["spec"]["selector"]["matchLabels"]
            .as_object()
            .expect("selector")
        {
            assert_eq!(
                &service["metadata"]["labels"][key], value,
                "{scrape_kind} selects the Service"
            );
        }
    }
}

/// Kinds whose CRDs the test API server does not have (cert-manager, Prometheus Operator,
/// VictoriaMetrics Operator): these are checked above by structure only.
const KINDS_WITHOUT_CRD: [&str; 4] = ["Issuer", "Certificate", "ServiceMonitor", "VMServiceScrape"];

/// Every object of every option is accepted by the real API server: schema, validation
/// (webhook configuration, RBAC, Deployment, PDB) and admission, without being stored.
/// cert-manager's, Prometheus Operator's and VictoriaMetrics' kinds are left out: their CRDs
/// are not installed here, so the API server does not know them.
#[tokio::test]
async fn every_option_passes_server_side_dry_run() {
    let plane = ControlPlane::start().await;
    let kubeconfig = plane.kubeconfig.clone();
    apply_crd(&kubeconfig);
    for namespace in [NAMESPACE, "press", "shop"] {
        kubectl_ok(&kubeconfig, &["create", "namespace", namespace], None);
    }
    for (variant, values) in VARIANTS {
        let docs = render(values);
        let (without_crd, objects): (Vec<Value>, Vec<Value>) = docs
            .into_iter()
            .partition(|d| KINDS_WITHOUT_CRD.contains(&kind(d)));
        let skipped: BTreeSet<String> = without_crd.iter().map(|d| kind(d).to_string()).collect();
        assert!(
            skipped.is_empty() || variant.contains("cert-manager") || variant.contains("Monitor"),
            "{variant}: unexpected kinds without CRD {skipped:?}"
        );
        let output = apply(&kubeconfig, &objects, true)
            .unwrap_or_else(|e| panic!("{variant}: the API server refused the chart:\n{e}"));
        let created = output
            .lines()
            .filter(|l| l.ends_with(" created (server dry run)"))
            .count();
        assert_eq!(
            created,
            objects.len(),
            "{variant}: every object is dry-run created:\n{output}"
        );
    }
}

#[test]
fn sync_reports_are_on_by_default_and_go_to_the_service_admin_port() {
    let docs = render(&[]);
    let container = operator_container(&docs);
    assert_eq!(
        env_value(container, "VSC_REPORT_URL").expect("VSC_REPORT_URL")["value"],
        "http://volume-syncing-controller.volume-syncing-controller.svc:8080/report"
    );
    assert!(
        env_value(container, "VSC_REPORT_KEY").is_none()
            && docs.iter().all(|d| kind(d) != "Secret"),
        "reports need no shared key: the agents' tokens are their Pods' own"
    );
    let service = find(&docs, "Service", None);
    assert_eq!(service["spec"]["ports"][1]["port"], 8080);

    let docs = render(&[
        "reports.url=http://10.96.0.90:8080/report",
        "service.clusterIP=10.96.0.90",
    ]);
    assert_eq!(
        env_value(operator_container(&docs), "VSC_REPORT_URL").expect("env")["value"],
        "http://10.96.0.90:8080/report"
    );
    assert_eq!(
        find(&docs, "Service", None)["spec"]["clusterIP"],
        "10.96.0.90"
    );
    assert!(
        env_value(
            operator_container(&render(&["reports.enabled=false"])),
            "VSC_REPORT_URL"
        )
        .is_none(),
        "reports.enabled=false turns them off"
    );
}
