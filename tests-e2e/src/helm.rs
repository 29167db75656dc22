//! The Helm chart and the plain manifests under test: rendering with the real `helm`,
//! applying with the real `kubectl`, and the operator binary started the way the chart's
//! Deployment starts it (its arguments and environment, under the chart's ServiceAccount).

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{Value, json};
use vsc_test_support::{free_port, tool};

use crate::control_plane::ControlPlane;
use crate::operator::{wait_until_ready, workspace_binary};

/// Release name and namespace of deploy/volume-syncing-controller.yaml (scripts/render-deploy.sh).
pub const RELEASE: &str = "volume-syncing-controller";
pub const NAMESPACE: &str = "volume-syncing-controller";

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

pub fn chart_dir() -> PathBuf {
    repo_root().join("charts/volume-syncing-controller")
}

pub fn deploy_manifest() -> PathBuf {
    repo_root().join("deploy/volume-syncing-controller.yaml")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Runs `program` with `args` (and `stdin`), returning its output.
pub fn run(program: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    let mut command = Command::new(program);
    // kubectl and helm keep discovery caches and settings under $HOME (~/.kube/cache,
    // ~/.cache/helm, ...): state that outlives the test, and a cache from an earlier API
    // server on the same port answers for this one. Against a cluster they keep them next to
    // the kubeconfig instead, in the cluster's temp dir.
    let kubeconfig = args.iter().enumerate().find_map(|(i, arg)| match *arg {
        "--kubeconfig" => args.get(i + 1).copied(),
        _ => arg.strip_prefix("--kubeconfig="),
    });
    if let Some(parent) = kubeconfig.and_then(|k| Path::new(k).parent()) {
        let home = parent.join(".tool-home");
        command
            .env("KUBECACHEDIR", home.join("kube-cache"))
            .env("HELM_CACHE_HOME", home.join("helm-cache"))
            .env("HELM_CONFIG_HOME", home.join("helm-config"))
            .env("HELM_DATA_HOME", home.join("helm-data"));
    }
    let mut child = command
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()));
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(input.as_bytes())
            .expect("write stdin");
    }
    child.wait_with_output().expect("wait")
}

/// `helm <args>`: stdout, or Err(stderr) when it failed.
pub fn helm(args: &[&str]) -> Result<String, String> {
    let output = run(&tool("helm"), args, None);
    if output.status.success() {
        Ok(text(&output.stdout))
    } else {
        Err(format!("{}{}", text(&output.stderr), text(&output.stdout)))
    }
}

/// Splits a multi-document YAML stream into JSON values (empty documents dropped).
pub fn parse_documents(yaml: &str) -> Vec<Value> {
    serde_saphyr::from_multiple::<Value>(yaml)
        .unwrap_or_else(|e| panic!("rendered YAML does not parse: {e}\n{yaml}"))
        .into_iter()
        .filter(|doc| !doc.is_null())
        .collect()
}

/// `helm template` of the chart with `--set`-style `values` (`key=value`), release
/// [`RELEASE`] in [`NAMESPACE`]. Err: helm's message (a `fail` in the chart, a schema error).
pub fn try_render(values: &[&str]) -> Result<Vec<Value>, String> {
    let mut args = Vec::new();
    for value in values {
        args.push("--set");
        args.push(*value);
    }
    try_render_args(&args)
}

/// `helm template` with raw extra arguments (`--values file`, `--set-file ...`).
pub fn try_render_args(extra: &[&str]) -> Result<Vec<Value>, String> {
    let chart = chart_dir();
    let mut args = vec![
        "template",
        RELEASE,
        chart.to_str().expect("utf-8 path"),
        "--namespace",
        NAMESPACE,
    ];
    args.extend_from_slice(extra);
    helm(&args).map(|yaml| parse_documents(&yaml))
}

/// Every option of the chart the tests render: a name and its `--set` values.
pub const VARIANTS: &[(&str, &[&str])] = &[
    ("default (self-managed certificates, leader election)", &[]),
    (
        "cert-manager with its own Issuer chain",
        &["certificates.mode=certManager"],
    ),
    (
        "cert-manager with a given ClusterIssuer",
        &[
            "certificates.mode=certManager",
            "certificates.certManager.issuerRef.kind=ClusterIssuer",
            "certificates.certManager.issuerRef.name=my-ca",
            "certificates.certManager.issuerRef.group=cert-manager.io",
        ],
    ),
    (
        "existing TLS Secret",
        &[
            "certificates.mode=existingSecret",
            "certificates.existingSecret.name=my-webhook-tls",
            "certificates.existingSecret.caBundle=-----BEGIN CERTIFICATE-----",
        ],
    ),
    (
        "namespace selector",
        &[
            "webhook.onlyLabelledNamespaces=true",
            "webhook.excludedNamespaces={kube-system,monitoring}",
        ],
    ),
    ("failure policy Ignore", &["webhook.failurePolicy=Ignore"]),
    (
        "two replicas with leader election, PDB and topology spread",
        &[
            "replicas=2",
            "leaderElection.enabled=true",
            "topologySpread.enabled=true",
        ],
    ),
    ("no leader election", &["leaderElection.enabled=false"]),
    ("sync reports", &["reports.enabled=true"]),
    (
        "leader election without sync reports (no writer leases)",
        &["reports.enabled=false", "leaderElection.enabled=true"],
    ),
    (
        "encryption Secrets only in listed namespaces",
        &["rbac.encryptionSecretNamespaces={press,shop}"],
    ),
    (
        "ServiceMonitor and VMServiceScrape",
        &[
            "metrics.serviceMonitor.enabled=true",
            "metrics.vmServiceScrape.enabled=true",
        ],
    ),
    (
        "images by digest, JSON logs, classic sidecars",
        &[
            "image.digest=sha256:1111111111111111111111111111111111111111111111111111111111111111",
            "agent.image.digest=sha256:2222222222222222222222222222222222222222222222222222222222222222",
            "agent.logFormat=json",
            "operator.logFormat=json",
            "agent.sidecarMode=classic",
        ],
    ),
];

/// [`try_render`], panicking with helm's message.
pub fn render(values: &[&str]) -> Vec<Value> {
    try_render(values).unwrap_or_else(|e| panic!("helm template {values:?} failed:\n{e}"))
}

pub fn kind(doc: &Value) -> &str {
    doc["kind"].as_str().unwrap_or_default()
}

pub fn name(doc: &Value) -> &str {
    doc["metadata"]["name"].as_str().unwrap_or_default()
}

/// The one object of `kind` (and `name`, when given), or a panic listing what was rendered.
pub fn find<'a>(docs: &'a [Value], wanted_kind: &str, wanted_name: Option<&str>) -> &'a Value {
    let matches: Vec<&Value> = docs
        .iter()
        .filter(|d| kind(d) == wanted_kind && wanted_name.is_none_or(|n| name(d) == n))
        .collect();
    assert_eq!(
        matches.len(),
        1,
        "expected one {wanted_kind} {wanted_name:?}; rendered: {:?}",
        docs.iter()
            .map(|d| format!("{}/{}", kind(d), name(d)))
            .collect::<Vec<_>>()
    );
    matches[0]
}

/// The operator container of the rendered Deployment.
pub fn operator_container(docs: &[Value]) -> &Value {
    &find(docs, "Deployment", None)["spec"]["template"]["spec"]["containers"][0]
}

/// The container's `args` as strings.
pub fn container_args(container: &Value) -> Vec<String> {
    container["args"]
        .as_array()
        .map(|args| {
            args.iter()
                .map(|a| a.as_str().expect("string arg").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// `kubectl --kubeconfig <kubeconfig> <args>`: Ok(stdout) or Err(stderr + stdout).
pub fn kubectl(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> Result<String, String> {
    let mut all = vec!["--kubeconfig", kubeconfig.to_str().expect("utf-8 path")];
    all.extend_from_slice(args);
    let output = run(&tool("kubectl"), &all, stdin);
    if output.status.success() {
        Ok(text(&output.stdout))
    } else {
        Err(format!("{}{}", text(&output.stderr), text(&output.stdout)))
    }
}

/// [`kubectl`], panicking with its message.
pub fn kubectl_ok(kubeconfig: &Path, args: &[&str], stdin: Option<&str>) -> String {
    kubectl(kubeconfig, args, stdin).unwrap_or_else(|e| panic!("kubectl {}:\n{e}", args.join(" ")))
}

/// `kubectl apply -f -` of `objects` as one List; `server_dry_run` validates and admits them
/// on the API server without persisting anything.
pub fn apply(kubeconfig: &Path, objects: &[Value], server_dry_run: bool) -> Result<String, String> {
    let list = json!({"apiVersion": "v1", "kind": "List", "items": objects});
    let mut args = vec!["apply", "-f", "-"];
    if server_dry_run {
        args.push("--dry-run=server");
    }
    kubectl(kubeconfig, &args, Some(&list.to_string()))
}

/// Applies the committed CRD and waits until it is established.
pub fn apply_crd(kubeconfig: &Path) {
    let crd = repo_root().join("crds/podfilesystemsyncs.riotkit.org.yaml");
    kubectl_ok(
        kubeconfig,
        &["apply", "-f", crd.to_str().expect("utf-8 path")],
        None,
    );
    wait_crd(kubeconfig);
}

pub fn wait_crd(kubeconfig: &Path) {
    kubectl_ok(
        kubeconfig,
        &[
            "wait",
            "--for=condition=established",
            "--timeout=60s",
            "crd/podfilesystemsyncs.riotkit.org",
        ],
        None,
    );
}

/// A kubeconfig that authenticates as ServiceAccount `namespace/name` with a bound token
/// from the TokenRequest API: what the Pod's projected token gives the operator in a cluster.
pub fn service_account_kubeconfig(plane: &ControlPlane, namespace: &str, name: &str) -> PathBuf {
    let token = kubectl_ok(
        &plane.kubeconfig,
        &[
            "create",
            "token",
            name,
            "--namespace",
            namespace,
            "--duration=1h",
        ],
        None,
    );
    let path = plane
        .dir
        .path()
        .join(format!("kubeconfig-sa-{namespace}-{name}"));
    let ca = base64::engine::general_purpose::STANDARD.encode(&plane.ca.certified.cert_pem);
    fs::write(
        &path,
        format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\nusers:\n- name: sa\n  user:\n    token: {}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: sa\ncurrent-context: e2e\n",
            plane.url,
            token.trim()
        ),
    )
    .expect("write the ServiceAccount kubeconfig");
    path
}

/// `kubectl auth can-i <verb> <resource> --as <user> [extra]` as the admin: true for "yes".
pub fn can_i(plane: &ControlPlane, user: &str, verb: &str, resource: &str, extra: &[&str]) -> bool {
    let as_user = format!("--as={user}");
    let mut args = vec!["auth", "can-i", verb, resource, as_user.as_str()];
    args.extend_from_slice(extra);
    let mut all = vec![
        "--kubeconfig",
        plane.kubeconfig.to_str().expect("utf-8 path"),
    ];
    all.extend_from_slice(&args);
    let output = run(&tool("kubectl"), &all, None);
    let stderr = text(&output.stderr);
    match text(&output.stdout).trim() {
        "yes" => true,
        "no" => false,
        // A fresh API server has not yet bound its bootstrap role that lets every user ask
        // this question: not allowed yet (wait_until_allowed asks again).
        "" if stderr.contains("selfsubjectaccessreviews") && stderr.contains("forbidden") => false,
        other => panic!("kubectl auth can-i {verb} {resource} {extra:?}: {other}\n{stderr}"),
    }
}

/// Waits until the API server's authorizer allows `user` each of `checks` (`verb`,
/// `resource`, extra can-i arguments): RBAC objects just applied, and the bootstrap roles of a
/// fresh API server (`/version` for every authenticated user), reach the authorizer's cache
/// a moment later, and the operator treats a 403 at start-up as fatal.
pub async fn wait_until_allowed(
    plane: &ControlPlane,
    user: &str,
    checks: &[(&str, &str, &[&str])],
) {
    for (verb, resource, extra) in checks {
        wait_for(
            Duration::from_secs(30),
            &format!("RBAC to allow {user} to {verb} {resource} {extra:?}"),
            || can_i(plane, user, verb, resource, extra).then_some(()),
        )
        .await;
    }
}

/// Points the chart's webhook Service at the local operator process: the Service becomes
/// `ExternalName: localhost` (the API server's webhook client then dials localhost at the
/// port of the webhook's clientConfig, still verifying the certificate for
/// `<service>.<namespace>.svc`), and that port becomes `port`. Everything else of the
/// MutatingWebhookConfiguration (selectors, policies, path, caBundle) stays as rendered.
pub fn route_service_to_localhost(
    kubeconfig: &Path,
    namespace: &str,
    service: &str,
    webhook_configuration: &str,
    port: u16,
) {
    kubectl_ok(
        kubeconfig,
        &["delete", "service", service, "--namespace", namespace],
        None,
    );
    let external = json!({
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": service, "namespace": namespace},
        "spec": {"type": "ExternalName", "externalName": "localhost"},
    });
    apply(kubeconfig, &[external], false).expect("create the ExternalName Service");
    let patch =
        json!([{"op": "replace", "path": "/webhooks/0/clientConfig/service/port", "value": port}]);
    kubectl_ok(
        kubeconfig,
        &[
            "patch",
            "mutatingwebhookconfiguration",
            webhook_configuration,
            "--type=json",
            "-p",
            &patch.to_string(),
        ],
        None,
    );
}

/// How the local process differs from the Pod: where it listens, where its certificate
/// files are, which Pod it pretends to be.
pub struct LocalRun {
    pub webhook_port: u16,
    pub pod_name: String,
    pub namespace: String,
    /// Directory of tls.crt / tls.key (written by the test, or by the operator itself in
    /// self-managed mode).
    pub tls_dir: PathBuf,
    /// Reads the Secrets that `secretKeyRef` variables name (the kubelet's part).
    pub admin_kubeconfig: PathBuf,
}

/// The operator binary started with the rendered Deployment's arguments and environment.
pub struct ChartOperator {
    pub admin_url: String,
    pub log: PathBuf,
    pub args: Vec<String>,
    child: Child,
}

/// The flags a local process cannot take from the Pod spec as they are.
const LOCAL_FLAGS: [&str; 4] = [
    "--webhook-addr",
    "--admin-addr",
    "--tls-cert-file",
    "--tls-key-file",
];

/// The value of one of the container's `env` entries when the operator runs here: its
/// `value`, the Secret key it names (read from the cluster), or `local`'s Pod name or
/// namespace for a `fieldRef`.
fn env_value(variable: &Value, env_name: &str, local: &LocalRun) -> String {
    let secret_ref = &variable["valueFrom"]["secretKeyRef"];
    if let Some(value) = variable["value"].as_str() {
        value.to_string()
    } else if let Some(secret) = secret_ref["name"].as_str() {
        let key = secret_ref["key"].as_str().expect("secretKeyRef key");
        let data = get_json(
            &local.admin_kubeconfig,
            &format!("secret/{secret}"),
            Some(&local.namespace),
        )
        .unwrap_or_else(|| panic!("env {env_name}: Secret {secret} does not exist"));
        let encoded = data["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("env {env_name}: Secret {secret} has no {key}"));
        String::from_utf8(
            base64::engine::general_purpose::STANDARD
                .decode(encoded)
                .expect("base64 Secret data"),
        )
        .expect("utf-8 Secret data")
    } else {
        match variable["valueFrom"]["fieldRef"]["fieldPath"].as_str() {
            Some("metadata.name") => local.pod_name.clone(),
            Some("metadata.namespace") => local.namespace.clone(),
            other => panic!("env {env_name}: no local value for {other:?}"),
        }
    }
}

impl ChartOperator {
    /// Starts the operator like `container` (from the rendered Deployment) under
    /// `kubeconfig`, and waits until `/readyz` answers 200. Every argument and environment
    /// variable of the container is passed on, except the listen addresses and certificate
    /// paths (replaced by `local`); `fieldRef` variables get `local`'s Pod name and namespace.
    pub async fn start(kubeconfig: &Path, container: &Value, local: &LocalRun) -> ChartOperator {
        let admin_port = free_port();
        let mut args: Vec<String> = container_args(container)
            .into_iter()
            .filter(|arg| {
                !LOCAL_FLAGS
                    .iter()
                    .any(|flag| arg.split('=').next() == Some(flag))
            })
            .collect();
        for flag in LOCAL_FLAGS {
            assert!(
                container_args(container)
                    .iter()
                    .any(|a| a.starts_with(&format!("{flag}="))),
                "the chart no longer passes {flag}"
            );
        }
        args.push(format!("--webhook-addr=127.0.0.1:{}", local.webhook_port));
        args.push(format!("--admin-addr=127.0.0.1:{admin_port}"));
        args.push(format!(
            "--tls-cert-file={}",
            local.tls_dir.join("tls.crt").display()
        ));
        args.push(format!(
            "--tls-key-file={}",
            local.tls_dir.join("tls.key").display()
        ));
        let mut command = Command::new(workspace_binary("volume-syncing-operator"));
        command.env_clear();
        for variable in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(variable) {
                command.env(variable, value);
            }
        }
        command.env("KUBECONFIG", kubeconfig);
        for variable in container["env"].as_array().into_iter().flatten() {
            let env_name = variable["name"].as_str().expect("env name");
            command.env(env_name, env_value(variable, env_name, local));
        }
        let log = local
            .tls_dir
            .parent()
            .unwrap_or(&local.tls_dir)
            .join(format!("operator-{}.log", local.pod_name));
        let log_file = fs::File::create(&log).expect("operator log");
        let child = command
            .args(&args)
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the operator");
        let mut operator = ChartOperator {
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            log,
            args,
            child,
        };
        operator.wait_ready().await;
        operator
    }

    async fn wait_ready(&mut self) {
        let context = format!("; args {:?}", self.args);
        wait_until_ready(&self.admin_url, &mut self.child, &self.log, &context).await;
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Stops the process (SIGKILL) and waits for it.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ChartOperator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Polls `check` (a blocking kubectl call is fine) every 200 ms for up to `limit`.
pub async fn wait_for<T>(limit: Duration, what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// `kubectl get <resource> -o json`, or None when it does not exist.
pub fn get_json(kubeconfig: &Path, resource: &str, namespace: Option<&str>) -> Option<Value> {
    let mut args = vec!["get", resource, "-o", "json"];
    if let Some(namespace) = namespace {
        args.extend(["--namespace", namespace]);
    }
    match kubectl(kubeconfig, &args, None) {
        Ok(json) => Some(serde_json::from_str(&json).expect("kubectl JSON")),
        Err(e) if e.contains("NotFound") || e.contains("not found") => None,
        Err(e) => panic!("kubectl get {resource}: {e}"),
    }
}

/// Names of the containers a stored Pod has, init containers first.
pub fn container_names(pod: &Value) -> (Vec<String>, Vec<String>) {
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|c| c["name"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    (
        names(&pod["spec"]["initContainers"]),
        names(&pod["spec"]["containers"]),
    )
}
