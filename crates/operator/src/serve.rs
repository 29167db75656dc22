//! The operator's wiring (binary side, errors as `anyhow`): connects to the cluster, starts
//! the leader election, lease sweep, certificate manager and controller, and serves the
//! webhook and admin ports until SIGTERM / Ctrl-C.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use anyhow::Context as _;
use axum_server::tls_rustls::RustlsConfig;
use tokio::sync::watch;

use vsc_operator::accepted_tokens::AcceptedTokens;
use vsc_operator::admin::{self, AdminState};
use vsc_operator::certificates::SelfManaged;
use vsc_operator::cli::Config;
use vsc_operator::controller;
use vsc_operator::leader::LeaderElection;
use vsc_operator::metrics::Metrics;
use vsc_operator::mutation::InjectionConfig;
use vsc_operator::report::ReportState;
use vsc_operator::tls;
use vsc_operator::webhook::{self, WebhookState};
use vsc_types::crd::SidecarMode;

/// Runs the operator with `config` until it is told to stop.
pub async fn run(config: Config) -> anyhow::Result<()> {
    let client = kube::Client::try_default()
        .await
        .context("cannot configure a Kubernetes client (in-cluster or KUBECONFIG)")?;
    let metrics = Arc::new(Metrics::default());
    let (stop_sender, stop_receiver) = watch::channel(false);
    let stop = Stop(stop_receiver);
    let leader = start_background_tasks(&client, &config, &stop);
    let (store, controller_run) = controller::build(
        client.clone(),
        metrics.clone(),
        leader,
        config.pod_name.clone(),
        config.report.is_some(),
        stop.stopped(),
    );
    metrics.resources.watch(store.clone());
    // Started first: the cache's first list, which readiness waits for, then overlaps the
    // version check and the certificate set-up.
    let controller_run = tokio::spawn(controller_run);
    let native_sidecars = native_sidecars(&client, config.agent.sidecar_mode).await?;
    let injection = injection(&config, native_sidecars);

    let admin_state = AdminState::new(metrics.clone());
    let report_state = config
        .report
        .as_ref()
        .map(|_| report_state(&client, &config, &metrics));
    let admin = admin::router(
        admin_state.clone(),
        config.report.as_ref().zip(report_state),
    );
    let admin_listener = tokio::net::TcpListener::bind(config.admin_addr)
        .await
        .with_context(|| format!("--admin-addr {}: cannot listen", config.admin_addr))?;

    let tls_config = webhook_tls_config(&client, &config, &metrics, &stop).await?;
    let _tls_watch = tls::watch(
        config.tls_files.clone(),
        tls_config.clone(),
        metrics.webhook_certificate_expiry.clone(),
    )?;
    let webhook_state = Arc::new(WebhookState {
        store: store.clone(),
        injection,
        metrics,
    });
    let webhook_app = webhook::router(webhook_state);
    let handle = axum_server::Handle::new();
    let webhook_server = axum_server::bind_rustls(config.webhook_addr, tls_config)
        .handle(handle.clone())
        .serve(webhook_app.into_make_service());
    tracing::info!(webhook = %config.webhook_addr, admin = %config.admin_addr, native_sidecars, "serving");

    let admin_server = axum::serve(admin_listener, admin).with_graceful_shutdown(stop.stopped());
    tokio::spawn(stop_all(stop_sender, handle));
    tokio::spawn(admin::wait_until_ready(store, admin_state));
    let (webhook_result, admin_result, controller_result) =
        tokio::join!(webhook_server, admin_server, controller_run);
    webhook_result.context("webhook server")?;
    admin_result.context("admin server")?;
    controller_result.context("controller")?;
    Ok(())
}

/// The receiving end of the stop signal, sent at SIGTERM / Ctrl-C.
struct Stop(watch::Receiver<bool>);

impl Stop {
    /// Completes once the operator is told to stop.
    fn stopped(&self) -> impl Future<Output = ()> + Send + Sync + 'static {
        let mut receiver = self.0.clone();
        async move {
            let _ = receiver.wait_for(|stop| *stop).await;
        }
    }
}

/// Waits for SIGTERM / Ctrl-C, then stops every task and the webhook server (gracefully,
/// for up to 10 s).
async fn stop_all(
    stop_sender: watch::Sender<bool>,
    handle: axum_server::Handle<std::net::SocketAddr>,
) {
    shutdown_signal().await;
    let _ = stop_sender.send(true);
    handle.graceful_shutdown(Some(std::time::Duration::from_secs(10)));
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
        () = terminate => {},
    }
    tracing::info!("stopping");
}

/// `--sidecar-mode`, with `auto` asked of the API server.
async fn native_sidecars(client: &kube::Client, mode: SidecarMode) -> anyhow::Result<bool> {
    Ok(match mode {
        SidecarMode::Native => true,
        SidecarMode::Classic => false,
        SidecarMode::Auto => {
            with_startup_retries("read the API server version", || {
                cluster_supports_native_sidecars(client)
            })
            .await?
        }
    })
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

fn injection(config: &Config, native_sidecars: bool) -> InjectionConfig {
    let agent = &config.agent;
    InjectionConfig {
        report: config.report.clone(),
        image_pull_policy: agent.image_pull_policy.clone(),
        default_resources: agent.default_resources.clone(),
        native_sidecars,
        log_format: agent.log_format,
        ..InjectionConfig::new(agent.image.clone())
    }
}

/// Starts the leader election (`--leader-election`) and the writer lease sweep (writer
/// leases on); returns whether this replica leads (always, without an election).
fn start_background_tasks(client: &kube::Client, config: &Config, stop: &Stop) -> Arc<AtomicBool> {
    let leader = Arc::new(AtomicBool::new(config.leader_election.is_none()));
    if let Some(election) = &config.leader_election {
        let identity = config
            .pod_name
            .clone()
            .unwrap_or_else(|| format!("volume-syncing-operator-{}", std::process::id()));
        let election = LeaderElection {
            leases: kube::Api::namespaced(client.clone(), &election.namespace),
            lease_name: election.lease_name.clone(),
            identity,
            lease_duration: std::time::Duration::from_secs(15),
            renew_every: std::time::Duration::from_secs(5),
        };
        tokio::spawn(election.run(leader.clone(), stop.stopped()));
    }
    if config.report.as_ref().is_some_and(|r| r.writer_leases) {
        tokio::spawn(vsc_operator::lease_sweep::run(
            client.clone(),
            config.namespace.clone().unwrap_or_default(),
            leader.clone(),
            stop.stopped(),
        ));
    }
    leader
}

fn report_state(client: &kube::Client, config: &Config, metrics: &Metrics) -> Arc<ReportState> {
    Arc::new(ReportState {
        client: client.clone(),
        accepted_tokens: AcceptedTokens::default(),
        token_checks: metrics.report_token_checks.clone(),
        lease_namespace: config.namespace.clone().unwrap_or_default(),
        recorder: kube::runtime::events::Recorder::new(
            client.clone(),
            kube::runtime::events::Reporter {
                controller: controller::CONTROLLER_NAME.to_string(),
                instance: config.pod_name.clone(),
            },
        ),
    })
}

/// The webhook's TLS configuration from --tls-cert-file / --tls-key-file; with
/// `--certificate-mode self-managed`, first written (and kept renewed) by the operator.
async fn webhook_tls_config(
    client: &kube::Client,
    config: &Config,
    metrics: &Metrics,
    stop: &Stop,
) -> anyhow::Result<RustlsConfig> {
    if let Some(self_managed) = &config.self_managed {
        let manager = SelfManaged {
            secrets: kube::Api::namespaced(client.clone(), &self_managed.namespace),
            webhook_configurations: kube::Api::all(client.clone()),
            secret_name: self_managed.secret_name.clone(),
            webhook_configuration_name: self_managed.webhook_configuration_name.clone(),
            dns_names: self_managed.dns_names.clone(),
            files: config.tls_files.clone(),
        };
        with_startup_retries("set up the self-managed webhook certificate", || async {
            manager.reconcile().await.map_err(anyhow::Error::from)
        })
        .await?;
        tokio::spawn(manager.run(std::time::Duration::from_secs(3600), stop.stopped()));
    }
    Ok(tls::load(&config.tls_files, &metrics.webhook_certificate_expiry).await?)
}
