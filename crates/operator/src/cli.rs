//! The operator's command line: the clap [`Cli`] and its checks, turned into a typed
//! [`Config`] by [`Cli::into_config`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, ValueEnum};
use k8s_openapi::api::core::v1::ResourceRequirements;
use vsc_types::contract::LogFormat;
use vsc_types::crd::SidecarMode;

use crate::mutation::ReportConfig;
use crate::tls::TlsFiles;

#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum CertificateMode {
    File,
    SelfManaged,
}

/// Reconciles PodFilesystemSync resources and injects the volume-syncing agent into the Pods
/// they select (mutating admission webhook).
#[derive(Debug, Parser)]
#[command(name = "volume-syncing-operator", version)]
pub struct Cli {
    /// Address of the HTTPS admission webhook (`/mutate-pods`).
    #[arg(long, env = "VSC_WEBHOOK_ADDR", default_value = "0.0.0.0:8443")]
    pub webhook_addr: SocketAddr,
    /// Address of the plain-HTTP admin endpoints: /healthz, /readyz, /metrics.
    #[arg(long, env = "VSC_ADMIN_ADDR", default_value = "0.0.0.0:8080")]
    pub admin_addr: SocketAddr,
    /// PEM certificate the webhook serves; reloaded when it changes.
    #[arg(
        long,
        env = "VSC_TLS_CERT_FILE",
        default_value = "/etc/volume-syncing-controller/tls/tls.crt"
    )]
    pub tls_cert_file: PathBuf,
    /// PEM private key of --tls-cert-file.
    #[arg(
        long,
        env = "VSC_TLS_KEY_FILE",
        default_value = "/etc/volume-syncing-controller/tls/tls.key"
    )]
    pub tls_key_file: PathBuf,
    /// Agent image injected into Pods; pin it by digest or by an exact tag.
    #[arg(long, env = "VSC_AGENT_IMAGE")]
    pub agent_image: String,
    /// imagePullPolicy of the injected containers.
    #[arg(
        long,
        env = "VSC_AGENT_IMAGE_PULL_POLICY",
        default_value = "IfNotPresent",
        value_parser = ["Always", "IfNotPresent", "Never"]
    )]
    pub agent_image_pull_policy: String,
    /// Resources of the injected containers when a PodFilesystemSync sets none, as JSON
    /// (e.g. '{"requests":{"cpu":"10m","memory":"32Mi"},"limits":{"memory":"256Mi"}}').
    #[arg(long, env = "VSC_AGENT_DEFAULT_RESOURCES")]
    pub agent_default_resources: Option<String>,
    /// Log format of the injected agents (VSC_LOG_FORMAT in their env).
    #[arg(long, env = "VSC_AGENT_LOG_FORMAT")]
    pub agent_log_format: Option<LogFormat>,
    /// How the sidecar is injected where a PodFilesystemSync leaves it to the cluster. `auto`:
    /// native sidecars (init containers with restartPolicy Always) when the API server is
    /// Kubernetes >= 1.29, classic sidecar containers otherwise.
    #[arg(long, env = "VSC_SIDECAR_MODE", value_enum, default_value_t = SidecarMode::Auto)]
    pub sidecar_mode: SidecarMode,
    /// Where the webhook's certificate comes from: `file` (mounted, e.g. by cert-manager) or
    /// `self-managed` (the operator keeps a CA and certificate in a Secret, writes them to
    /// --tls-cert-file/--tls-key-file, sets the webhook's caBundle and renews them).
    #[arg(long, env = "VSC_CERTIFICATE_MODE", value_enum, default_value_t = CertificateMode::File)]
    pub certificate_mode: CertificateMode,
    /// self-managed: the Secret (in --namespace) holding the CA and serving certificate.
    #[arg(
        long,
        env = "VSC_CERTIFICATE_SECRET_NAME",
        default_value = "volume-syncing-controller-webhook-tls"
    )]
    pub certificate_secret_name: String,
    /// self-managed: the MutatingWebhookConfiguration whose caBundle is set.
    #[arg(
        long,
        env = "VSC_WEBHOOK_CONFIGURATION_NAME",
        default_value = "volume-syncing-controller"
    )]
    pub webhook_configuration_name: String,
    /// self-managed: the Service in front of the webhook (the certificate is for <name>.<namespace>.svc).
    #[arg(
        long,
        env = "VSC_SERVICE_NAME",
        default_value = "volume-syncing-controller"
    )]
    pub service_name: String,
    /// self-managed: more names (DNS or IP) for the serving certificate, e.g. when the API
    /// server reaches the webhook by URL rather than through the Service.
    #[arg(long, env = "VSC_CERTIFICATE_EXTRA_NAMES", value_delimiter = ',')]
    pub certificate_extra_names: Vec<String>,
    /// The operator's own namespace (from the downward API).
    #[arg(long, env = "POD_NAMESPACE")]
    pub namespace: Option<String>,
    /// Elect one leader among replicas (Lease in --namespace) to reconcile; all replicas serve
    /// the webhook. Needed for more than one replica.
    #[arg(long, env = "VSC_LEADER_ELECTION")]
    pub leader_election: bool,
    /// Name of the leader election Lease.
    #[arg(
        long,
        env = "VSC_LEADER_ELECTION_LEASE_NAME",
        default_value = "volume-syncing-controller"
    )]
    pub leader_election_lease_name: String,
    /// URL the injected agents report their syncs to (the admin port's `/report`, e.g.
    /// http://volume-syncing-controller.vsc.svc:8080/report); unset: no reports. Each agent
    /// proves its Pod and resource with a projected service account token, checked by a
    /// TokenReview (the operator needs `create` on `tokenreviews`).
    #[arg(long, env = "VSC_REPORT_URL")]
    pub report_url: Option<String>,
    /// The operator's own log format.
    #[arg(long, env = "VSC_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// A flag that does not make sense, named in the message.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("--agent-default-resources is not a valid ResourceRequirements JSON object")]
    DefaultResources(#[source] serde_json::Error),
    /// Quantities every injected Pod would be refused for, named under the flag.
    #[error("{0}")]
    DefaultResourceQuantities(String),
    #[error("--agent-image must name the agent image")]
    AgentImage,
    #[error(
        "--report-url '{0}' must be an http:// URL: agents report to the admin port, which serves plain HTTP"
    )]
    ReportUrl(String),
    #[error(
        "--namespace (POD_NAMESPACE) is required with --leader-election or --certificate-mode self-managed"
    )]
    NamespaceRequired,
}

/// The agent image and how it is injected, but for what only the cluster can tell (whether
/// it runs native sidecars).
#[derive(Debug, Clone, PartialEq)]
pub struct AgentConfig {
    pub image: String,
    pub image_pull_policy: String,
    pub default_resources: Option<ResourceRequirements>,
    pub log_format: Option<LogFormat>,
    pub sidecar_mode: SidecarMode,
}

/// `--leader-election`: the Lease in the operator's namespace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderElectionConfig {
    pub namespace: String,
    pub lease_name: String,
}

/// `--certificate-mode self-managed`: the Secret, webhook configuration and certificate names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SelfManagedConfig {
    pub namespace: String,
    pub secret_name: String,
    pub webhook_configuration_name: String,
    pub dns_names: Vec<String>,
}

/// The checked settings of the operator.
#[derive(Debug, Clone)]
pub struct Config {
    pub webhook_addr: SocketAddr,
    pub admin_addr: SocketAddr,
    pub tls_files: TlsFiles,
    pub agent: AgentConfig,
    /// `--report-url`; its writer leases need `--namespace`.
    pub report: Option<ReportConfig>,
    /// The operator's own namespace, `--namespace` (POD_NAMESPACE).
    pub namespace: Option<String>,
    pub leader_election: Option<LeaderElectionConfig>,
    pub self_managed: Option<SelfManagedConfig>,
    /// The operator Pod's name (POD_NAME, from the downward API).
    pub pod_name: Option<String>,
}

impl Cli {
    /// Checks the flags (in the order the operator always has) and gathers them into a
    /// [`Config`]; warns of `--report-url` without `--namespace`. Reads POD_NAME.
    pub fn into_config(self) -> Result<Config, ConfigError> {
        let pod_name = std::env::var("POD_NAME").ok();
        self.into_config_for(pod_name)
    }

    fn into_config_for(self, pod_name: Option<String>) -> Result<Config, ConfigError> {
        let default_resources = self
            .agent_default_resources
            .as_deref()
            .map(serde_json::from_str::<ResourceRequirements>)
            .transpose()
            .map_err(ConfigError::DefaultResources)?;
        if let Some(resources) = &default_resources {
            let problems =
                vsc_types::crd::resource_problems(resources, "--agent-default-resources");
            if let Some(first) = problems.first() {
                return Err(ConfigError::DefaultResourceQuantities(first.to_string()));
            }
        }
        if self.agent_image.trim().is_empty() {
            return Err(ConfigError::AgentImage);
        }
        let report = self.report()?;
        if report.as_ref().is_some_and(|r| !r.writer_leases) {
            tracing::warn!(
                "--report-url without --namespace (POD_NAMESPACE): no writer leases, so with syncOptions.writers: one every Pod still uploads"
            );
        }
        let needs_namespace =
            self.leader_election || self.certificate_mode == CertificateMode::SelfManaged;
        let namespace = match (&self.namespace, needs_namespace) {
            (Some(namespace), _) => namespace.clone(),
            (None, true) => return Err(ConfigError::NamespaceRequired),
            (None, false) => String::new(),
        };
        Ok(Config {
            webhook_addr: self.webhook_addr,
            admin_addr: self.admin_addr,
            tls_files: TlsFiles {
                cert: self.tls_cert_file.clone(),
                key: self.tls_key_file.clone(),
            },
            leader_election: self.leader_election.then(|| LeaderElectionConfig {
                namespace: namespace.clone(),
                lease_name: self.leader_election_lease_name.clone(),
            }),
            self_managed: self.self_managed(&namespace),
            agent: AgentConfig {
                image: self.agent_image,
                image_pull_policy: self.agent_image_pull_policy,
                default_resources,
                log_format: self.agent_log_format,
                sidecar_mode: self.sidecar_mode,
            },
            report,
            namespace: self.namespace,
            pod_name,
        })
    }

    fn report(&self) -> Result<Option<ReportConfig>, ConfigError> {
        match &self.report_url {
            Some(url) if !url.starts_with("http://") => Err(ConfigError::ReportUrl(url.clone())),
            Some(url) => Ok(Some(ReportConfig {
                url: url.clone(),
                // The writer leases live in the operator's own namespace.
                writer_leases: self.namespace.is_some(),
            })),
            None => Ok(None),
        }
    }

    fn self_managed(&self, namespace: &str) -> Option<SelfManagedConfig> {
        (self.certificate_mode == CertificateMode::SelfManaged).then(|| SelfManagedConfig {
            namespace: namespace.to_string(),
            secret_name: self.certificate_secret_name.clone(),
            webhook_configuration_name: self.webhook_configuration_name.clone(),
            dns_names: [
                format!("{}.{namespace}.svc", self.service_name),
                format!("{}.{namespace}.svc.cluster.local", self.service_name),
            ]
            .into_iter()
            .chain(self.certificate_extra_names.iter().cloned())
            .collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn parse(extra: &[&str]) -> Result<Config, ConfigError> {
        let args = ["volume-syncing-operator", "--agent-image", "agent:1"]
            .iter()
            .chain(extra);
        Cli::try_parse_from(args)
            .expect("the flags parse")
            .into_config_for(Some("operator-0".to_string()))
    }

    #[test]
    fn defaults() {
        let config = parse(&[]).expect("a valid config");
        assert_eq!(config.webhook_addr.to_string(), "0.0.0.0:8443");
        assert_eq!(config.admin_addr.to_string(), "0.0.0.0:8080");
        assert_eq!(
            config.tls_files.cert,
            PathBuf::from("/etc/volume-syncing-controller/tls/tls.crt")
        );
        assert_eq!(
            config.tls_files.key,
            PathBuf::from("/etc/volume-syncing-controller/tls/tls.key")
        );
        assert_eq!(
            config.agent,
            AgentConfig {
                image: "agent:1".to_string(),
                image_pull_policy: "IfNotPresent".to_string(),
                default_resources: None,
                log_format: None,
                sidecar_mode: SidecarMode::Auto,
            }
        );
        assert_eq!(config.report, None);
        assert_eq!(config.namespace, None);
        assert_eq!(config.leader_election, None);
        assert_eq!(config.self_managed, None);
        assert_eq!(config.pod_name.as_deref(), Some("operator-0"));
    }

    #[test]
    fn the_agent_image_is_required_and_not_blank() {
        assert!(Cli::try_parse_from(["volume-syncing-operator"]).is_err());
        let error = Cli::try_parse_from(["volume-syncing-operator", "--agent-image", "  "])
            .expect("the flags parse")
            .into_config_for(None)
            .expect_err("a blank image");
        assert!(matches!(error, ConfigError::AgentImage));
        assert_eq!(error.to_string(), "--agent-image must name the agent image");
    }

    #[test]
    fn default_resources_are_json_resource_requirements() {
        let config = parse(&[
            "--agent-default-resources",
            r#"{"requests":{"cpu":"10m"},"limits":{"memory":"256Mi"}}"#,
        ])
        .expect("valid resources");
        let resources = config.agent.default_resources.expect("resources");
        assert!(resources.requests.is_some_and(|r| r.contains_key("cpu")));
        let error = parse(&["--agent-default-resources", "{not json"]).expect_err("invalid JSON");
        assert!(matches!(error, ConfigError::DefaultResources(_)));
        assert_eq!(
            error.to_string(),
            "--agent-default-resources is not a valid ResourceRequirements JSON object"
        );
    }

    #[test]
    fn the_report_url_is_plain_http() {
        let error = parse(&["--report-url", "https://operator:8080/report"]).expect_err("https");
        assert_eq!(
            error.to_string(),
            "--report-url 'https://operator:8080/report' must be an http:// URL: agents report to the admin port, which serves plain HTTP"
        );
    }

    #[test]
    fn writer_leases_need_the_namespace() {
        let url = "http://operator.vsc.svc:8080/report";
        let without = parse(&["--report-url", url]).expect("a valid config");
        assert_eq!(
            without.report,
            Some(ReportConfig {
                url: url.to_string(),
                writer_leases: false
            })
        );
        let with = parse(&["--report-url", url, "--namespace", "vsc"]).expect("a valid config");
        assert_eq!(
            with.report,
            Some(ReportConfig {
                url: url.to_string(),
                writer_leases: true
            })
        );
        assert_eq!(with.namespace.as_deref(), Some("vsc"));
    }

    #[test]
    fn leader_election_needs_the_namespace() {
        let error = parse(&["--leader-election"]).expect_err("no namespace");
        assert!(matches!(error, ConfigError::NamespaceRequired));
        assert_eq!(
            error.to_string(),
            "--namespace (POD_NAMESPACE) is required with --leader-election or --certificate-mode self-managed"
        );
        let config = parse(&[
            "--leader-election",
            "--namespace",
            "vsc",
            "--leader-election-lease-name",
            "lock",
        ])
        .expect("a valid config");
        assert_eq!(
            config.leader_election,
            Some(LeaderElectionConfig {
                namespace: "vsc".to_string(),
                lease_name: "lock".to_string()
            })
        );
    }

    #[test]
    fn self_managed_certificates_need_the_namespace() {
        let error = parse(&["--certificate-mode", "self-managed"]).expect_err("no namespace");
        assert!(matches!(error, ConfigError::NamespaceRequired));
        let config = parse(&[
            "--certificate-mode",
            "self-managed",
            "--namespace",
            "vsc",
            "--certificate-extra-names",
            "webhook.example,10.0.0.1",
        ])
        .expect("a valid config");
        assert_eq!(
            config.self_managed,
            Some(SelfManagedConfig {
                namespace: "vsc".to_string(),
                secret_name: "volume-syncing-controller-webhook-tls".to_string(),
                webhook_configuration_name: "volume-syncing-controller".to_string(),
                dns_names: vec![
                    "volume-syncing-controller.vsc.svc".to_string(),
                    "volume-syncing-controller.vsc.svc.cluster.local".to_string(),
                    "webhook.example".to_string(),
                    "10.0.0.1".to_string(),
                ],
            })
        );
        assert_eq!(config.leader_election, None);
    }

    #[test]
    fn flags_read_their_env_vars() {
        let command = Cli::command();
        let env = |id: &str| {
            command
                .get_arguments()
                .find(|arg| arg.get_id() == id)
                .and_then(|arg| arg.get_env())
                .and_then(|env| env.to_str())
                .map(str::to_string)
        };
        assert_eq!(env("namespace").as_deref(), Some("POD_NAMESPACE"));
        assert_eq!(env("agent_image").as_deref(), Some("VSC_AGENT_IMAGE"));
        assert_eq!(env("report_url").as_deref(), Some("VSC_REPORT_URL"));
        assert_eq!(
            env("leader_election").as_deref(),
            Some("VSC_LEADER_ELECTION")
        );
    }

    #[test]
    fn the_command_is_well_formed() {
        Cli::command().debug_assert();
    }
}
