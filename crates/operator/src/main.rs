//! `volume-syncing-operator`: reconciles PodFilesystemSync resources and serves the Pod
//! mutating admission webhook that injects the volume-syncing agent.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context as _;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use clap::{Parser, ValueEnum};
use k8s_openapi::api::core::v1::ResourceRequirements;
use tokio::sync::watch;

use vsc_operator::certificates::SelfManaged;
use vsc_operator::controller;
use vsc_operator::leader::LeaderElection;
use vsc_operator::metrics::Metrics;
use vsc_operator::mutation::{InjectionConfig, ReportConfig};
use vsc_operator::report::ReportState;
use vsc_operator::tls::{self, TlsFiles};
use vsc_operator::webhook::{self, WebhookState};
use vsc_types::contract::LogFormat;
use vsc_types::crd::SidecarMode;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
enum CertificateMode {
    File,
    SelfManaged,
}

/// Reconciles PodFilesystemSync resources and injects the volume-syncing agent into the Pods
/// they select (mutating admission webhook).
#[derive(Debug, Parser)]
#[command(name = "volume-syncing-operator", version)]
struct Cli {
    /// Address of the HTTPS admission webhook (`/mutate-pods`).
    #[arg(long, env = "VSC_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    webhook_addr: SocketAddr,
    /// Address of the plain-HTTP admin endpoints: /healthz, /readyz, /metrics.
    #[arg(long, env = "VSC_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    admin_addr: SocketAddr,
    /// PEM certificate the webhook serves; reloaded when it changes.
    #[arg(
        long,
        env = "VSC_TLS_CERT_FILE",
        default_value = "/etc/volume-syncing-controller/tls/tls.crt"
    )]
    tls_cert_file: PathBuf,
    /// PEM private key of --tls-cert-file.
    #[arg(
        long,
        env = "VSC_TLS_KEY_FILE",
        default_value = "/etc/volume-syncing-controller/tls/tls.key"
    )]
    tls_key_file: PathBuf,
    /// Agent image injected into Pods; pin it by digest or by an exact tag.
    #[arg(long, env = "VSC_AGENT_IMAGE")]
    agent_image: String,
    /// imagePullPolicy of the injected containers.
    #[arg(
        long,
        env = "VSC_AGENT_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent"
    )]
    agent_image_pull_policy: String,
    /// Resources of the injected containers when a PodFilesystemSync sets none, as JSON
    /// (e.g. '{"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"256Mi"}}').
    #[arg(long, env = "VSC_AGENT_DEFAULT_RESOURCES")]
    agent_default_resources: Option<String>,
    /// Log format of the injected agents (VSC_LOG_FORMAT in their env).
    #[arg(long, env = "VSC_AGENT_LOG_FORMAT")]
    agent_log_format: Option<LogFormat>,
    /// How the sidecar is injected where a PodFilesystemSync leaves it to the cluster. `auto`:
    /// native sidecars (init containers with restartPolicy Always) when the API server is
    /// Kubernetes >= 1.29, classic sidecar containers otherwise.
    #[arg(long, env = "VSC_SIDECAR_MODE", value_enum, default_value_t = SidecarMode::Auto)]
    sidecar_mode: SidecarMode,
    /// Where the webhook's certificate comes from: `file` (mounted, e.g. by cert-manager) or
    /// `self-managed` (the operator keeps a CA and certificate in a Secret, writes them to
    /// --tls-cert-file/--tls-key-file, sets the webhook's caBundle and renews them).
    #[arg(long, env = "VSC_CERTIFICATE_MODE", value_enum, default_value_t = CertificateMode::File)]
    certificate_mode: CertificateMode,
    /// self-managed: the Secret (in --namespace) holding the CA and serving certificate.
    #[arg(
        long,
        env = "VSC_CERTIFICATE_SECRET_NAME",
        default_value = "volume-syncing-controller-webhook-tls"
    )]
    certificate_secret_name: String,
    /// self-managed: the MutatingWebhookConfiguration whose caBundle is set.
    #[arg(
        long,
        env = "VSC_WEBHOOK_CONFIGURATION_NAME",
        default_value = "volume-syncing-controller"
    )]
    webhook_configuration_name: String,
    /// self-managed: the Service in front of the webhook (the certificate is for <name>.<namespace>.svc).
    #[arg(
        long,
        env = "VSC_SERVICE_NAME",
        default_value = "volume-syncing-controller"
    )]
    service_name: String,
    /// self-managed: more names (DNS or IP) for the serving certificate, e.g. when the API
    /// server reaches the webhook by URL rather than through the Service.
    #[arg(long, env = "VSC_CERTIFICATE_EXTRA_NAMES", value_delimiter = ',')]
    certificate_extra_names: Vec<String>,
    /// The operator's own namespace (from the downward API).
    #[arg(long, env = "POD_NAMESPACE")]
    namespace: Option<String>,
    /// Elect one leader among replicas (Lease in --namespace) to reconcile; all replicas serve
    /// the webhook. Needed for more than one replica.
    #[arg(long, env = "VSC_LEADER_ELECTION")]
    leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(
        long,
        env = "VSC_LEADER_ELECTION_LEASE_NAME",
        default_value = "volume-syncing-controller"
    )]
    leader_election_lease_name: String,
    /// URL the injected agents report their syncs to (the admin port's `/report`, e.g.
    /// http://volume-syncing-controller.vsc.svc:8080/report); unset: no reports. Each agent
    /// proves its Pod and resource with a projected service account token, checked by a
    /// TokenReview (the operator needs `create` on `tokenreviews`).
    #[arg(long, env = "VSC_REPORT_URL")]
    report_url: Option<String>,
    /// The operator's own log format.
    #[arg(long, env = "VSC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    log_format: LogFormat,
}

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("VSC_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Text => builder.with_ansi(false).init(),
    }
}

/// Native sidecars (restartPolicy Always on init containers) exist from Kubernetes 1.29.
async fn cluster_supports_native_sidecars(client: &kube::Client) -> anyhow::Result<bool> {
    let version = client
        .apiserver_version()
        .await
        .context("cannot read the API server version")?;
    let number = |text: &str| text.trim_end_matches('+').parse::<u32>().unwrap_or(0);
    let (major, minor) = (number(&version.major), number(&version.minor));
    tracing::info!(version = %version.git_version, "connected to the API server");
    Ok(major > 1 || (major == 1 && minor >= 29))
}

/// Retries a start-up step for a minute: right after `helm install`, the RBAC just created
/// may not be in force yet, and a crash loop would only delay the operator further.
async fn with_startup_retries<T, F, Fut>(what: &str, mut step: F) -> anyhow::Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<T>>,
{
    const ATTEMPTS: u32 = 30;
    for attempt in 1.. {
        match step().await {
            Ok(value) => return Ok(value),
            Err(e) if attempt < ATTEMPTS => {
                tracing::warn!(error = %e, attempt, "cannot {what} yet; retrying in 2s");
                tokio::time::sleep(std::time::Duration::from_secs(2)).await;
            }
            Err(e) => return Err(e.context(format!("cannot {what}"))),
        }
    }
    unreachable!("the loop returns")
}

struct AdminState {
    metrics: Arc<Metrics>,
    ready: AtomicBool,
}

async fn readyz(State(state): State<Arc<AdminState>>) -> (StatusCode, &'static str) {
    if state.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok\n")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "PodFilesystemSync cache not synced yet\n",
        )
    }
}

async fn serve_metrics(State(state): State<Arc<AdminState>>) -> String {
    state.metrics.encode()
}

async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {},
        _ = terminate => {},
    }
    tracing::info!("stopping");
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    init_logging(cli.log_format);
    tls::install_crypto_provider();

    let default_resources = cli
        .agent_default_resources
        .as_deref()
        .map(serde_json::from_str::<ResourceRequirements>)
        .transpose()
        .context("--agent-default-resources is not a valid ResourceRequirements JSON object")?;
    if cli.agent_image.trim().is_empty() {
        anyhow::bail!("--agent-image must name the agent image");
    }

    let report = match &cli.report_url {
        Some(url) if !url.starts_with("http://") => anyhow::bail!(
            "--report-url '{url}' must be an http:// URL: agents report to the admin port, which serves plain HTTP"
        ),
        Some(url) => Some(ReportConfig {
            url: url.clone(),
            // The writer leases live in the operator's own namespace.
            writer_leases: cli.namespace.is_some(),
        }),
        None => None,
    };
    if report.as_ref().is_some_and(|r| !r.writer_leases) {
        tracing::warn!(
            "--report-url without --namespace (POD_NAMESPACE): no writer leases, so with syncOptions.writers: one every Pod still uploads"
        );
    }
    let client = kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let native_sidecars = match cli.sidecar_mode {
        SidecarMode::Native => true,
        SidecarMode::Classic => false,
        SidecarMode::Auto => {
            with_startup_retries("read the API server version", || {
                cluster_supports_native_sidecars(&client)
            })
            .await?
        }
    };
    let injection = InjectionConfig {
        report: report.clone(),
        image_pull_policy: cli.agent_image_pull_policy.clone(),
        default_resources,
        native_sidecars,
        log_format: cli.agent_log_format,
        ..InjectionConfig::new(cli.agent_image.clone())
    };

    let metrics = Arc::new(Metrics::default());
    let (stop_sender, stop_receiver) = watch::channel(false);
    let stopped = move || {
        let mut receiver = stop_receiver.clone();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    };
    let pod_name = std::env::var("POD_NAME").ok();
    let needs_namespace =
        cli.leader_election || cli.certificate_mode == CertificateMode::SelfManaged;
    let namespace = match (&cli.namespace, needs_namespace) {
        (Some(namespace), _) => namespace.clone(),
        (None, true) => anyhow::bail!(
            "--namespace (POD_NAMESPACE) is required with --leader-election or --certificate-mode self-managed"
        ),
        (None, false) => String::new(),
    };
    let leader = Arc::new(AtomicBool::new(!cli.leader_election));
    if cli.leader_election {
        let identity = pod_name
            .clone()
            .unwrap_or_else(|| format!("volume-syncing-operator-{}", std::process::id()));
        let election = LeaderElection {
            leases: kube::Api::namespaced(client.clone(), &namespace),
            lease_name: cli.leader_election_lease_name.clone(),
            identity,
            lease_duration: std::time::Duration::from_secs(15),
            renew_every: std::time::Duration::from_secs(5),
        };
        tokio::spawn(election.run(leader.clone(), stopped()));
    }
    if report.as_ref().is_some_and(|r| r.writer_leases) {
        tokio::spawn(vsc_operator::lease_sweep::run(
            client.clone(),
            namespace.clone(),
            leader.clone(),
            stopped(),
        ));
    }
    let (store, controller_run) = controller::build(
        client.clone(),
        metrics.clone(),
        leader,
        pod_name.clone(),
        report.is_some(),
        stopped(),
    );
    metrics.resources.watch(store.clone());

    let admin_state = Arc::new(AdminState {
        metrics: metrics.clone(),
        ready: AtomicBool::new(false),
    });
    let mut admin = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(serve_metrics))
        .with_state(admin_state.clone());
    if report.is_some() {
        let state = Arc::new(ReportState {
            client: client.clone(),
            lease_namespace: cli.namespace.clone().unwrap_or_default(),
            recorder: kube::runtime::events::Recorder::new(
                client.clone(),
                kube::runtime::events::Reporter {
                    controller: controller::CONTROLLER_NAME.to_string(),
                    instance: pod_name.clone(),
                },
            ),
        });
        let mut reports = Router::new().route("/report", post(vsc_operator::report::receive));
        if report.as_ref().is_some_and(|r| r.writer_leases) {
            reports = reports.route(
                vsc_types::writer_lease::LEASE_PATH,
                post(vsc_operator::writer_lease::receive),
            );
        }
        admin = admin.merge(reports.with_state(state));
    }
    let admin_listener = tokio::net::TcpListener::bind(cli.admin_addr)
        .await
        .with_context(|| format!("--admin-addr {}: cannot listen", cli.admin_addr))?;

    let tls_files = TlsFiles {
        cert: cli.tls_cert_file.clone(),
        key: cli.tls_key_file.clone(),
    };
    if cli.certificate_mode == CertificateMode::SelfManaged {
        let manager = SelfManaged {
            secrets: kube::Api::namespaced(client.clone(), &namespace),
            webhook_configurations: kube::Api::all(client.clone()),
            secret_name: cli.certificate_secret_name.clone(),
            webhook_configuration_name: cli.webhook_configuration_name.clone(),
            dns_names: [
                format!("{}.{namespace}.svc", cli.service_name),
                format!("{}.{namespace}.svc.cluster.local", cli.service_name),
            ]
            .into_iter()
            .chain(cli.certificate_extra_names.iter().cloned())
            .collect(),
            files: tls_files.clone(),
        };
        with_startup_retries("set up the self-managed webhook certificate", || async {
            manager.reconcile().await.map_err(anyhow::Error::from)
        })
        .await?;
        tokio::spawn(manager.run(std::time::Duration::from_secs(3600), stopped()));
    }
    let tls_config = tls::load(&tls_files, &metrics.webhook_certificate_expiry).await?;
    let _tls_watch = tls::watch(
        tls_files,
        tls_config.clone(),
        metrics.webhook_certificate_expiry.clone(),
    )?;
    let webhook_state = Arc::new(WebhookState {
        store: store.clone(),
        injection,
        metrics,
    });
    let webhook_app = Router::new()
        .route("/mutate-pods", post(webhook::mutate_pods))
        .route("/healthz", get(|| async { "ok\n" }))
        .with_state(webhook_state);
    let handle = axum_server::Handle::new();
    let webhook_server = axum_server::bind_rustls(cli.webhook_addr, tls_config)
        .handle(handle.clone())
        .serve(webhook_app.into_make_service());
    tracing::info!(webhook = %cli.webhook_addr, admin = %cli.admin_addr, native_sidecars, "serving");

    let readiness = {
        let store = store.clone();
        let admin_state = admin_state.clone();
        async move {
            // The store's readiness is a oneshot that wakes only its latest poller (the
            // controller's own): poll again every few milliseconds instead of waiting once,
            // so readiness follows the cache's first sync closely.
            loop {
                match tokio::time::timeout(
                    std::time::Duration::from_millis(10),
                    store.wait_until_ready(),
                )
                .await
                {
                    Ok(Ok(())) => {
                        admin_state.ready.store(true, Ordering::Relaxed);
                        tracing::info!("PodFilesystemSync cache synced; ready");
                        return;
                    }
                    Ok(Err(e)) => {
                        tracing::error!(error = %e, "the PodFilesystemSync cache never synced");
                        return;
                    }
                    Err(_still_waiting) => {}
                }
            }
        }
    };
    let stop_all = {
        let handle = handle.clone();
        async move {
            shutdown_signal().await;
            let _ = stop_sender.send(true);
            handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
        }
    };
    let admin_server = axum::serve(admin_listener, admin).with_graceful_shutdown(stopped());
    tokio::spawn(stop_all);
    tokio::spawn(readiness);
    let (webhook_result, admin_result, ()) =
        tokio::join!(webhook_server, admin_server, controller_run);
    webhook_result.context("webhook server")?;
    admin_result.context("admin server")?;
    Ok(())
}
