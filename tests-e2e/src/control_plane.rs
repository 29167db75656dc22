//! A real Kubernetes control plane on 127.0.0.1: etcd and kube-apiserver, started the way
//! controller-runtime's envtest does, with certificates made here.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{Api, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use vsc_operator::pki::{CertificateAuthority, CertifiedKey};
use vsc_test_support::{free_port, tool};

pub struct ControlPlane {
    pub dir: tempfile::TempDir,
    pub kubeconfig: PathBuf,
    pub url: String,
    pub ca: CertificateAuthority,
    processes: Vec<Child>,
}

fn b64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

fn write(path: &Path, contents: &str) {
    fs::write(path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

fn spawn_logged(program: &Path, args: &[String], log: &Path) -> Child {
    let file = fs::File::create(log).expect("log file");
    Command::new(program)
        .args(args)
        .stdout(file.try_clone().expect("log file"))
        .stderr(file)
        .stdin(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()))
}

/// etcd on free ports, serving once this returns. A port another test took between
/// `free_port` and etcd's bind makes etcd exit: it is started again on other ports.
async fn start_etcd(root: &Path) -> (Child, u16) {
    let log = root.join("etcd.log");
    for _attempt in 0..5 {
        let (client_port, peer_port) = (free_port(), free_port());
        let _ = fs::remove_dir_all(root.join("etcd"));
        let mut etcd = spawn_logged(
            &tool("etcd"),
            &[
                "--name=default".into(),
                format!("--data-dir={}", root.join("etcd").display()),
                format!("--listen-client-urls=http://127.0.0.1:{client_port}"),
                format!("--advertise-client-urls=http://127.0.0.1:{client_port}"),
                format!("--listen-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}"),
                format!("--initial-cluster=default=http://127.0.0.1:{peer_port}"),
                "--unsafe-no-fsync".into(),
            ],
            &log,
        );
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while tokio::time::Instant::now() < deadline {
            if etcd.try_wait().ok().flatten().is_some() {
                break;
            }
            if std::net::TcpStream::connect(("127.0.0.1", client_port)).is_ok() {
                return (etcd, client_port);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let _ = etcd.kill();
        let _ = etcd.wait();
    }
    let tail = fs::read_to_string(&log).unwrap_or_default();
    panic!(
        "etcd did not start in 5 attempts; its log ends:\n{}",
        last_lines(&tail, 30)
    );
}

fn last_lines(text: &str, count: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

impl ControlPlane {
    pub async fn start() -> ControlPlane {
        let dir = tempfile::tempdir().expect("control plane dir");
        let root = dir.path();
        let ca = CertificateAuthority::generate("vsc-e2e-ca", 2).expect("ca");
        let serving = ca
            .issue_server(
                &[
                    "127.0.0.1".into(),
                    "localhost".into(),
                    "kubernetes.default.svc".into(),
                ],
                2,
            )
            .expect("apiserver cert");
        let admin = ca
            .issue_client("admin", "system:masters", 2)
            .expect("admin cert");
        let service_accounts = ca
            .issue_server(&["service-accounts".into()], 2)
            .expect("sa key");
        let pki = root.join("pki");
        fs::create_dir_all(&pki).expect("pki dir");
        write(&pki.join("ca.crt"), &ca.certified.cert_pem);
        write(&pki.join("apiserver.crt"), &serving.cert_pem);
        write(&pki.join("apiserver.key"), &serving.key_pem);
        write(&pki.join("sa.key"), &service_accounts.key_pem);
        // kube-apiserver reads the verifying key from a certificate as well.
        write(&pki.join("sa.pub"), &service_accounts.cert_pem);

        let (etcd, etcd_port) = start_etcd(root).await;
        let api_port = free_port();
        let url = format!("https://127.0.0.1:{api_port}");
        let apiserver = spawn_logged(
            &tool("kube-apiserver"),
            &[
                format!("--etcd-servers=http://127.0.0.1:{etcd_port}"),
                "--bind-address=127.0.0.1".into(),
                "--advertise-address=127.0.0.1".into(),
                format!("--secure-port={api_port}"),
                format!("--cert-dir={}", pki.display()),
                format!("--tls-cert-file={}", pki.join("apiserver.crt").display()),
                format!(
                    "--tls-private-key-file={}",
                    pki.join("apiserver.key").display()
                ),
                format!("--client-ca-file={}", pki.join("ca.crt").display()),
                "--authorization-mode=RBAC".into(),
                format!("--service-account-issuer={url}/"),
                format!(
                    "--service-account-key-file={}",
                    pki.join("sa.pub").display()
                ),
                format!(
                    "--service-account-signing-key-file={}",
                    pki.join("sa.key").display()
                ),
                "--service-cluster-ip-range=10.0.0.0/24".into(),
                "--disable-admission-plugins=ServiceAccount".into(),
                "--allow-privileged=true".into(),
                "--endpoint-reconciler-type=none".into(),
            ],
            &root.join("kube-apiserver.log"),
        );
        let kubeconfig = root.join("kubeconfig");
        write(
            &kubeconfig,
            &kubeconfig_yaml(&url, &ca.certified.cert_pem, &admin),
        );
        let mut plane = ControlPlane {
            dir,
            kubeconfig,
            url,
            ca,
            processes: vec![apiserver, etcd],
        };
        plane.wait_ready().await;
        plane
    }

    async fn wait_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
        loop {
            if let Ok(client) = self.try_client().await {
                let namespaces: Api<Namespace> = Api::all(client);
                if let Ok(list) = namespaces.list(&ListParams::default()).await
                    && list
                        .items
                        .iter()
                        .any(|ns| ns.metadata.name.as_deref() == Some("default"))
                {
                    return;
                }
            }
            let exited = self
                .processes
                .iter_mut()
                .any(|p| p.try_wait().ok().flatten().is_some());
            if exited || tokio::time::Instant::now() > deadline {
                let log = |name: &str| {
                    let text = fs::read_to_string(self.dir.path().join(name)).unwrap_or_default();
                    last_lines(&text, 30)
                };
                panic!(
                    "kube-apiserver did not become ready (exited: {exited}); its log ends:\n{}\netcd's log ends:\n{}",
                    log("kube-apiserver.log"),
                    log("etcd.log")
                );
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    async fn try_client(&self) -> Result<kube::Client, kube::Error> {
        let kubeconfig =
            Kubeconfig::read_from(&self.kubeconfig).map_err(kube::Error::InferKubeconfig)?;
        let config =
            kube::Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
                .await
                .map_err(kube::Error::InferKubeconfig)?;
        kube::Client::try_from(config)
    }

    /// An admin client (system:masters) for the calling test's runtime.
    pub async fn client(&self) -> kube::Client {
        self.try_client().await.expect("admin client")
    }

    /// A kubeconfig for a client certificate of `user` in `groups`, for RBAC tests.
    pub fn kubeconfig_for(&self, user: &str, group: &str) -> PathBuf {
        let identity = self.ca.issue_client(user, group, 2).expect("client cert");
        let path = self.dir.path().join(format!("kubeconfig-{user}"));
        write(
            &path,
            &kubeconfig_yaml(&self.url, &self.ca.certified.cert_pem, &identity),
        );
        path
    }
}

fn kubeconfig_yaml(url: &str, ca_pem: &str, identity: &CertifiedKey) -> String {
    format!(
        "apiVersion: v1\nkind: Config\nclusters:\n- name: e2e\n  cluster:\n    server: {url}\n    certificate-authority-data: {}\nusers:\n- name: e2e\n  user:\n    client-certificate-data: {}\n    client-key-data: {}\ncontexts:\n- name: e2e\n  context:\n    cluster: e2e\n    user: e2e\ncurrent-context: e2e\n",
        b64(ca_pem),
        b64(&identity.cert_pem),
        b64(&identity.key_pem)
    )
}

impl Drop for ControlPlane {
    fn drop(&mut self) {
        for process in &mut self.processes {
            let _ = process.kill();
            let _ = process.wait();
        }
    }
}
