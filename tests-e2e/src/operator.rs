//! The operator binary as a local process: TLS from the test CA, KUBECONFIG of the test
//! control plane, the webhook registered with the API server by URL.

use std::fs;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, PostParams};
use vsc_test_support::free_port;

use crate::control_plane::ControlPlane;

/// The agent image the e2e operator injects (never pulled: no container engine here).
pub const AGENT_IMAGE: &str = "ghcr.io/riotkit-org/volume-syncing-controller@sha256:0000000000000000000000000000000000000000000000000000000000000000";

/// A binary of this workspace, built next to the test executable.
pub fn workspace_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target dir");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` (scripts/test.sh does)",
        path.display()
    );
    path
}

pub struct OperatorProcess {
    pub webhook_url: String,
    pub admin_url: String,
    pub ca_pem: String,
    pub log: PathBuf,
    child: Child,
}

/// Flags for an operator that takes the agents' reports and, knowing its namespace, their
/// writer-lease requests, on an admin port chosen up front (the agents need its URL).
pub fn report_flags() -> Vec<String> {
    let admin_port = free_port();
    vec![
        format!("--admin-addr=127.0.0.1:{admin_port}"),
        format!("--report-url=http://127.0.0.1:{admin_port}/report"),
        "--namespace=default".to_string(),
    ]
}

/// The CRD installed, then an operator (taking the agents' reports with `reports`) that the
/// API server calls as its Pod webhook: how every test that creates Pods begins.
pub async fn webhook_operator(
    plane: &ControlPlane,
    client: &kube::Client,
    reports: bool,
) -> OperatorProcess {
    install_crd(client).await;
    let flags = if reports { report_flags() } else { Vec::new() };
    let args: Vec<&str> = flags.iter().map(String::as_str).collect();
    let operator = OperatorProcess::start(plane, &args).await;
    register_webhook(client, &operator).await;
    operator
}

impl OperatorProcess {
    /// Starts the operator and waits until its cache has synced (`/readyz` = 200).
    pub async fn start(plane: &ControlPlane, extra_args: &[&str]) -> OperatorProcess {
        Self::start_on(plane, free_port(), extra_args).await
    }

    /// The URL the webhook of an operator started with `webhook_port` answers on.
    pub fn webhook_url_for(webhook_port: u16) -> String {
        format!("https://127.0.0.1:{webhook_port}/mutate-pods")
    }

    /// Like [`start`](Self::start), on a webhook port chosen by the caller (to register the
    /// webhook before the operator starts).
    pub async fn start_on(
        plane: &ControlPlane,
        webhook_port: u16,
        extra_args: &[&str],
    ) -> OperatorProcess {
        let dir = plane.dir.path().join(format!("operator-{}", free_port()));
        fs::create_dir_all(&dir).expect("operator dir");
        let serving = plane
            .ca
            .issue_server(&["127.0.0.1".into()], 2)
            .expect("webhook cert");
        fs::write(dir.join("tls.crt"), &serving.cert_pem).expect("cert");
        fs::write(dir.join("tls.key"), &serving.key_pem).expect("key");
        // A caller that needs the admin address up front (e.g. for --report-url) passes it.
        let given_admin = extra_args
            .iter()
            .find_map(|a| a.strip_prefix("--admin-addr=127.0.0.1:"))
            .and_then(|p| p.parse::<u16>().ok());
        let admin_port = given_admin.unwrap_or_else(free_port);
        let log = plane
            .dir
            .path()
            .join(format!("operator-{webhook_port}.log"));
        let log_file = fs::File::create(&log).expect("log");
        let child = Command::new(workspace_binary("volume-syncing-operator"))
            .env("KUBECONFIG", &plane.kubeconfig)
            .env("VSC_LOG", "info,vsc_operator=debug")
            .arg(format!("--webhook-addr=127.0.0.1:{webhook_port}"))
            .args(
                given_admin
                    .is_none()
                    .then(|| format!("--admin-addr=127.0.0.1:{admin_port}")),
            )
            // A caller that manages the certificate files itself passes its own paths.
            .args(
                (!extra_args.iter().any(|a| a.starts_with("--tls-cert-file=")))
                    .then(|| {
                        [
                            format!("--tls-cert-file={}", dir.join("tls.crt").display()),
                            format!("--tls-key-file={}", dir.join("tls.key").display()),
                        ]
                    })
                    .into_iter()
                    .flatten(),
            )
            .arg(format!("--agent-image={AGENT_IMAGE}"))
            .args(extra_args)
            .stdout(log_file.try_clone().expect("log"))
            .stderr(log_file)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the operator");
        let mut operator = OperatorProcess {
            webhook_url: Self::webhook_url_for(webhook_port),
            admin_url: format!("http://127.0.0.1:{admin_port}"),
            ca_pem: plane.ca.certified.cert_pem.clone(),
            log,
            child,
        };
        operator.wait_ready().await;
        operator
    }

    async fn wait_ready(&mut self) {
        wait_until_ready(&self.admin_url, &mut self.child, &self.log, "").await;
    }

    /// SIGTERM, as Kubernetes stops a Pod, then waits for the exit.
    pub async fn terminate(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "the operator did not stop within 20s of SIGTERM:\n{}",
            self.log_text()
        );
    }

    pub fn log_text(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub async fn metrics(&self) -> String {
        http_get(&format!("{}/metrics", self.admin_url))
            .await
            .map(|(_, body)| body)
            .unwrap_or_default()
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until an operator process answers `/readyz` with 200; panics with its log (and
/// `context`) when it exits or takes over a minute.
pub async fn wait_until_ready(
    admin_url: &str,
    child: &mut Child,
    log: &std::path::Path,
    context: &str,
) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let log_text = || fs::read_to_string(log).unwrap_or_default();
    loop {
        if http_get(&format!("{admin_url}/readyz"))
            .await
            .is_some_and(|(code, _)| code == 200)
        {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!("the operator exited ({status}){context}:\n{}", log_text());
        }
        assert!(
            tokio::time::Instant::now() <= deadline,
            "the operator never became ready{context}:\n{}",
            log_text()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A plain-HTTP GET on 127.0.0.1 (the admin port): status code and body.
pub async fn http_get(url: &str) -> Option<(u16, String)> {
    http_exchange(url, |host, path| {
        format!("GET {path} HTTP/1.0\r\nHost: {host}\r\n\r\n")
    })
    .await
}

/// One HTTP/1.0 request to `url` (`http://host:port/path`), as `request(host, path)` writes
/// it: status code and body.
async fn http_exchange(
    url: &str,
    request: impl FnOnce(&str, &str) -> String,
) -> Option<(u16, String)> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let rest = url.strip_prefix("http://")?;
    let (host, path) = rest.split_once('/').map(|(h, p)| (h, format!("/{p}")))?;
    let mut stream = tokio::net::TcpStream::connect(host).await.ok()?;
    stream
        .write_all(request(host, &path).as_bytes())
        .await
        .ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).await.ok()?;
    let code = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Some((code, body))
}

/// Installs the committed CRD (`crds/`) and waits until it is established.
pub async fn install_crd(client: &kube::Client) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../crds/podfilesystemsyncs.riotkit.org.yaml");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let crd: CustomResourceDefinition = serde_saphyr::from_str(&text).expect("CRD YAML");
    let api: Api<CustomResourceDefinition> = Api::all(client.clone());
    api.create(&PostParams::default(), &crd)
        .await
        .expect("create the CRD");
    let name = crd.metadata.name.clone().expect("CRD name");
    let established = kube::runtime::wait::await_condition(
        api,
        &name,
        kube::runtime::wait::conditions::is_crd_established(),
    );
    tokio::time::timeout(Duration::from_secs(30), established)
        .await
        .expect("CRD established in 30s")
        .expect("watch the CRD");
}

/// Registers `/mutate-pods` for opted-in Pods, as the Helm chart does, by URL.
pub async fn register_webhook(client: &kube::Client, operator: &OperatorProcess) {
    register_webhook_url(
        client,
        "volume-syncing-controller-e2e",
        &operator.webhook_url,
        &operator.ca_pem,
    )
    .await;
}

/// Registers the webhook configuration `name` for `url`, trusting `ca_pem`.
pub async fn register_webhook_url(client: &kube::Client, name: &str, url: &str, ca_pem: &str) {
    let configuration: MutatingWebhookConfiguration = serde_json::from_value(serde_json::json!({
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "MutatingWebhookConfiguration",
        "metadata": {"name": name},
        "webhooks": [{
            "name": "pods.volume-syncing-controller.riotkit.org",
            "admissionReviewVersions": ["v1"],
            "sideEffects": "None",
            "failurePolicy": "Fail",
            "timeoutSeconds": 5,
            "reinvocationPolicy": "IfNeeded",
            "objectSelector": {"matchLabels": {"riotkit.org/volume-syncing-controller": "true"}},
            "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"], "resources": ["pods"], "scope": "Namespaced"}],
            "clientConfig": {
                "url": url,
                "caBundle": base64::Engine::encode(&base64::engine::general_purpose::STANDARD, ca_pem),
            },
        }],
    }))
    .expect("webhook configuration");
    let api: Api<MutatingWebhookConfiguration> = Api::all(client.clone());
    api.create(&PostParams::default(), &configuration)
        .await
        .expect("register the webhook");
}

/// A plain-HTTP POST of a JSON `body` with a bearer `token`, as an agent reports a sync:
/// status code and body.
pub async fn http_post_json(url: &str, token: &str, body: &str) -> Option<(u16, String)> {
    http_exchange(url, |host, path| {
        format!(
            "POST {path} HTTP/1.0\r\nHost: {host}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    })
    .await
}
