//! The two injected containers and their shared parts (env, mounts, security context).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    EnvVarSource, ExecAction, HTTPGetAction, ObjectFieldSelector, Pod, Probe,
    ProjectedVolumeSource, ResourceRequirements, SecretEnvSource, SecurityContext,
    ServiceAccountTokenProjection, Volume, VolumeMount, VolumeProjection,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use vsc_types::agent_args::{
    DeletionLimits, RestoreArgs, StatusArgs, TrashArgs, UploadArgs, WriterLeaseArgs,
};
use vsc_types::contract::{
    AGENT_BINARY_PATH, DEFAULT_CONFIG_PATH, DEFAULT_GRACE_PERIOD_SECONDS, ENV_CONFIG_PATH,
    ENV_FINAL_SYNC_TIMEOUT, ENV_LOCAL_PATH, ENV_LOG_FORMAT, ENV_PID_PATH, ENV_POD_NAME,
    ENV_POD_NAMESPACE, ENV_REMOTE_PATH, ENV_REPORT_RESOURCE, ENV_REPORT_TOKEN_FILE, ENV_REPORT_URL,
    FINAL_SYNC_MARGIN_SECONDS, INIT_CONTAINER_NAME, POD_GID_ANNOTATION, POD_UID_ANNOTATION,
    PREFER_PRIMARY_ANNOTATION, REPORT_TOKEN_DIR, REPORT_TOKEN_EXPIRATION_SECONDS,
    REPORT_TOKEN_FILE_NAME, REPORT_TOKEN_VOLUME, RESTORE_AS_OF_ANNOTATION, SIDECAR_CONTAINER_NAME,
    report_audience,
};
use vsc_types::crd::{PodFilesystemSync, Safety, SyncMethod, Writers, parse_numeric_id};

use super::{Denial, InjectionConfig, ReportConfig, mounts};
use crate::template::PodContext;

/// In-memory emptyDir for the agent's private files (rclone config, PID file); the root
/// filesystem of the injected containers is read-only.
pub const TMP_VOLUME_NAME: &str = "volume-syncing-tmp";
/// Where [`TMP_VOLUME_NAME`] is mounted.
pub const TMP_MOUNT_PATH: &str = "/tmp";
/// PID file of the sidecar's agent, read by `interrupt` (e.g. through `kubectl exec`).
pub const POD_PID_PATH: &str = "/tmp/volume-syncing-controller.pid";
/// In-memory emptyDir holding the rendered rclone config at the seed's documented path,
/// so that `kubectl exec ... -c /etc/volume-syncing-controller/rclone.conf` finds it.
pub const CONFIG_VOLUME_NAME: &str = "volume-syncing-config";
/// Where [`CONFIG_VOLUME_NAME`] is mounted: the directory of [`DEFAULT_CONFIG_PATH`].
pub const CONFIG_MOUNT_PATH: &str = "/etc/volume-syncing-controller";
/// The volumes this module injects (and removes again on a reinvocation), in order.
pub const PRIVATE_VOLUME_NAMES: [&str; 3] =
    [TMP_VOLUME_NAME, CONFIG_VOLUME_NAME, REPORT_TOKEN_VOLUME];
/// With hostNetwork, the sidecar binds a free loopback port and writes it here, for its
/// exec liveness probe (`volume-syncing-controller health`).
pub const POD_STATUS_ADDR_FILE: &str = "/tmp/volume-syncing-controller.status-addr";
/// rclone crypt's file name encryption mode.
pub const ENV_FILENAME_ENCRYPTION: &str = "ENCRYPTED_FILENAME_ENCRYPTION";

const TMP_SIZE_LIMIT: &str = "16Mi";
const CONFIG_SIZE_LIMIT: &str = "1Mi";
/// Name of the sidecar's status port (`/healthz`, `/metrics`).
pub const STATUS_PORT_NAME: &str = "vsc-status";

/// The two agent containers of one Pod, rendered and checked: their shared parts (env,
/// mounts, security context, image), each one's argument list, and the volumes they add.
pub(super) struct AgentContainers {
    image: String,
    image_pull_policy: String,
    env: Vec<EnvVar>,
    env_from: Vec<EnvFromSource>,
    mounts: Vec<VolumeMount>,
    /// The volumes of [`PRIVATE_VOLUME_NAMES`] this Pod gets, in order.
    volumes: Vec<Volume>,
    security_context: SecurityContext,
    resources: Option<ResourceRequirements>,
    restore_args: Vec<String>,
    sync_args: Vec<String>,
    /// Where the sidecar serves /healthz and /metrics.
    status: Option<StatusEndpoint>,
    /// A liveness probe on /healthz (the agent fails it after N failed syncs in a row).
    liveness: bool,
}

impl AgentContainers {
    /// Renders and checks everything the containers need; the first problem, in the order
    /// env, envFrom, mounts, ids, arguments, denies.
    pub(super) fn new(
        pod: &Pod,
        namespace: &str,
        pfss: &PodFilesystemSync,
        config: &InjectionConfig,
        context: &PodContext,
    ) -> Result<Self, Denial> {
        let spec = &pfss.spec;
        let remote_path = context.render_remote_path(&spec.remote_path)?;
        let env = agent_env(pod, namespace, pfss, config, context, &remote_path)?;
        let env_from = agent_env_from(pod, namespace, pfss)?;
        let report_token = config
            .report
            .as_ref()
            .map(|_| report_token_volume(&report_audience(namespace, resource_name(pfss))));
        let (mounts, volumes) = agent_mounts_and_volumes(pod, &spec.local_path, report_token)?;
        let security_context = agent_security_context(pod, pfss)?;

        let restore_args = restore_args(pod, pfss, &remote_path)?.to_argv();
        let status = status_endpoint(pod, pfss)?;
        let mut upload = upload_args(pfss, &remote_path, status.as_ref())?;
        upload.writer_lease = writer_lease(pod, pfss, config)?;
        // A lease holder hears of sync requests from the lease; the others ask for them.
        upload.sync_requests_url = config
            .report
            .as_ref()
            .filter(|_| upload.writer_lease.is_none())
            .map(ReportConfig::sync_requests_url);
        let sync_args = upload.to_argv();

        Ok(Self {
            image: config.agent_image.clone(),
            image_pull_policy: config.image_pull_policy.clone(),
            env,
            env_from,
            mounts,
            security_context,
            resources: spec
                .resources
                .clone()
                .or_else(|| config.default_resources.clone()),
            volumes,
            restore_args,
            sync_args,
            status,
            liveness: spec.health_check.unhealthy_after_failures > 0,
        })
    }

    fn base(&self, name: &str, args: &[String]) -> Container {
        Container {
            name: name.to_string(),
            image: Some(self.image.clone()),
            image_pull_policy: Some(self.image_pull_policy.clone()),
            command: Some(vec![AGENT_BINARY_PATH.to_string()]),
            args: Some(args.to_vec()),
            env: Some(self.env.clone()),
            env_from: (!self.env_from.is_empty()).then(|| self.env_from.clone()),
            volume_mounts: Some(self.mounts.clone()),
            security_context: Some(self.security_context.clone()),
            resources: self.resources.clone(),
            ..Container::default()
        }
    }

    /// The volumes the injected containers mount besides the Pod's own.
    pub(super) fn volumes(&self) -> &[Volume] {
        &self.volumes
    }

    /// `init-volume-restore`: restores the remote into the local directory, then exits.
    pub(super) fn restore_container(&self) -> Container {
        self.base(INIT_CONTAINER_NAME, &self.restore_args)
    }

    /// `volume-syncing-sidecar`: syncs to the remote while the Pod runs, and a last time on
    /// SIGTERM. No preStop hook: the kubelet runs preStop hooks when termination starts, at
    /// the same moment the app gets SIGTERM, so a hook would start the last sync while the
    /// app still writes; a native sidecar gets its SIGTERM only after the app containers
    /// exited. `native`: an init container with `restartPolicy: Always`.
    pub(super) fn sync_container(&self, native: bool) -> Container {
        let mut container = self.base(SIDECAR_CONTAINER_NAME, &self.sync_args);
        if native {
            container.restart_policy = Some("Always".to_string());
        }
        if let Some(endpoint) = &self.status {
            container.ports = endpoint.container_port();
            if self.liveness {
                container.liveness_probe = Some(Probe {
                    period_seconds: Some(30),
                    // The agent already counts failed syncs; one failed probe is the signal.
                    failure_threshold: Some(1),
                    ..endpoint.probe()
                });
            }
        }
        container
    }
}

/// Only what differs from the agent's own defaults, so args stay readable.
/// The PodFilesystemSync's name ("" when it has none, as in tests).
fn resource_name(pfss: &PodFilesystemSync) -> &str {
    pfss.metadata.name.as_deref().unwrap_or_default()
}

/// The agent's env, sorted by name: the resource's (rendered) values, then ours. The paths
/// must match the args; the defaults are ones the resource may override.
fn agent_env(
    pod: &Pod,
    namespace: &str,
    pfss: &PodFilesystemSync,
    config: &InjectionConfig,
    context: &PodContext,
    remote_path: &str,
) -> Result<Vec<EnvVar>, Denial> {
    let mut env = BTreeMap::new();
    for (key, template) in &pfss.spec.env {
        env.insert(key.clone(), context.render_env_value(key, template)?);
    }
    env.insert(ENV_LOCAL_PATH.to_string(), pfss.spec.local_path.clone());
    env.insert(ENV_REMOTE_PATH.to_string(), remote_path.to_string());
    env.insert(ENV_PID_PATH.to_string(), POD_PID_PATH.to_string());
    env.insert(ENV_CONFIG_PATH.to_string(), DEFAULT_CONFIG_PATH.to_string());
    insert_env_defaults(&mut env, pod, pfss, config);
    if let Some(report) = &config.report {
        env.insert(ENV_REPORT_URL.to_string(), report.url.clone());
        env.insert(
            ENV_REPORT_RESOURCE.to_string(),
            format!("{namespace}/{}", resource_name(pfss)),
        );
        env.insert(
            ENV_REPORT_TOKEN_FILE.to_string(),
            format!("{REPORT_TOKEN_DIR}/{REPORT_TOKEN_FILE_NAME}"),
        );
    }
    Ok(with_downward_pod_identity(env))
}

/// Values the resource's env may set itself: the last sync's timeout, the log format, and
/// the file name encryption mode (only when encrypting).
fn insert_env_defaults(
    env: &mut BTreeMap<String, String>,
    pod: &Pod,
    pfss: &PodFilesystemSync,
    config: &InjectionConfig,
) {
    // The kubelet kills the agent when the grace period ends: it stops its last sync a
    // little before, saying why.
    let grace = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.termination_grace_period_seconds)
        .unwrap_or(DEFAULT_GRACE_PERIOD_SECONDS);
    env.entry(ENV_FINAL_SYNC_TIMEOUT.to_string())
        .or_insert_with(|| format!("{}s", (grace - FINAL_SYNC_MARGIN_SECONDS).max(1)));
    if let Some(format) = &config.log_format {
        env.entry(ENV_LOG_FORMAT.to_string())
            .or_insert_with(|| format.as_str().to_string());
    }
    if pfss.encryption_secret_name().is_some() {
        env.entry(ENV_FILENAME_ENCRYPTION.to_string())
            .or_insert_with(|| "standard".to_string());
    }
}

/// The env as a sorted list, with the Pod's own name and namespace from the downward API
/// rather than from a value (a value for them is dropped).
fn with_downward_pod_identity(mut env: BTreeMap<String, String>) -> Vec<EnvVar> {
    env.remove(ENV_POD_NAME);
    env.remove(ENV_POD_NAMESPACE);
    let mut env: Vec<EnvVar> = env
        .into_iter()
        .map(|(name, value)| EnvVar {
            name,
            value: Some(value),
            value_from: None,
        })
        .collect();
    env.extend([
        downward_env(ENV_POD_NAME, "metadata.name"),
        downward_env(ENV_POD_NAMESPACE, "metadata.namespace"),
    ]);
    env.sort_by(|a, b| a.name.cmp(&b.name));
    env
}

/// The Secrets the agent reads its env from: the resource's, then the encryption key's.
/// A Secret of another namespace is a [`Denial`]: a Pod cannot read it.
fn agent_env_from(
    pod: &Pod,
    namespace: &str,
    pfss: &PodFilesystemSync,
) -> Result<Vec<EnvFromSource>, Denial> {
    let pod_namespace = Some(namespace)
        .filter(|n| !n.is_empty())
        .or(pod.metadata.namespace.as_deref())
        .unwrap_or_default();
    let mut env_from = Vec::new();
    for (i, secret) in pfss.spec.env_from_secrets.iter().enumerate() {
        if let Some(other) = secret
            .namespace
            .as_deref()
            .filter(|n| !n.is_empty() && *n != pod_namespace)
        {
            return Err(Denial::new(
                format!("spec.envFromSecrets[{i}].namespace"),
                format!(
                    "Secret {}/{} is in another namespace than the Pod ({pod_namespace}); a Pod can only \
                     read Secrets of its own namespace",
                    other, secret.name
                ),
            ));
        }
        env_from.push(secret_ref(&secret.name));
    }
    if let Some(name) = &pfss.encryption_secret_name() {
        env_from.push(secret_ref(name));
    }
    Ok(env_from)
}

/// The agent's mounts (the Pod's mounts holding `local_path`, then the private ones) and
/// the private volumes behind them, in order; the report token's only when reporting.
fn agent_mounts_and_volumes(
    pod: &Pod,
    local_path: &str,
    report_token: Option<Volume>,
) -> Result<(Vec<VolumeMount>, Vec<Volume>), Denial> {
    let mut mounts = mounts::select_mounts(pod, local_path)?;
    for (name, mount_path) in [
        (TMP_VOLUME_NAME, TMP_MOUNT_PATH),
        (CONFIG_VOLUME_NAME, CONFIG_MOUNT_PATH),
    ] {
        mounts.push(VolumeMount {
            name: name.to_string(),
            mount_path: mount_path.to_string(),
            ..VolumeMount::default()
        });
    }
    let mut volumes = memory_volumes().to_vec();
    if let Some(volume) = report_token {
        mounts.push(VolumeMount {
            name: volume.name.clone(),
            mount_path: REPORT_TOKEN_DIR.to_string(),
            read_only: Some(true),
            ..VolumeMount::default()
        });
        volumes.push(volume);
    }
    Ok((mounts, volumes))
}

/// Least privilege: the agent runs as the ids it needs for the files, with no capabilities,
/// no escalation and a read-only root filesystem.
fn agent_security_context(pod: &Pod, pfss: &PodFilesystemSync) -> Result<SecurityContext, Denial> {
    let (uid, gid) = agent_ids(pod, pfss)?;
    Ok(SecurityContext {
        run_as_user: uid,
        run_as_group: gid,
        run_as_non_root: Some(uid != Some(0)),
        allow_privilege_escalation: Some(false),
        read_only_root_filesystem: Some(true),
        capabilities: Some(Capabilities {
            add: None,
            drop: Some(vec!["ALL".to_string()]),
        }),
        ..SecurityContext::default()
    })
}

fn deletion_limits(safety: &Safety) -> DeletionLimits {
    let default_percent = Safety::default().max_delete_percent;
    DeletionLimits {
        max_percent: Some(safety.max_delete_percent).filter(|p| *p != default_percent),
        max_files: Some(safety.max_delete_files).filter(|files| *files != 0),
    }
}

/// The restore init container's command line.
fn restore_args(
    pod: &Pod,
    pfss: &PodFilesystemSync,
    remote_path: &str,
) -> Result<RestoreArgs, Denial> {
    let options = &pfss.spec.sync_options;
    let as_of = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(RESTORE_AS_OF_ANNOTATION));
    if let Some(when) = as_of
        && when.parse::<k8s_openapi::jiff::Timestamp>().is_err()
    {
        return Err(Denial::new(
            format!("metadata.annotations[{RESTORE_AS_OF_ANNOTATION}]"),
            format!("'{when}' is not an RFC 3339 time such as 2026-11-24T18:00:00Z"),
        ));
    }
    Ok(RestoreArgs {
        src: remote_path.to_string(),
        dst: pfss.spec.local_path.clone(),
        no_delete: !options.clean_up.local,
        force_delete_local_dir: options.clean_up.force_local,
        limits: deletion_limits(&options.safety),
        allow_incomplete: options.safety.allow_incomplete_restore,
        as_of: as_of.cloned(),
        // The agent tells a remote never written to (the first run of this remotePath)
        // from one that was, and keeps the local files in the first case.
        keep_local_if_remote_empty: !options.restore_remote_on_first_run,
        verbose: pfss.spec.debug,
    })
}

/// The sync sidecar's command line.
fn upload_args(
    pfss: &PodFilesystemSync,
    remote_path: &str,
    status: Option<&StatusEndpoint>,
) -> Result<UploadArgs, Denial> {
    let spec = &pfss.spec;
    let options = &spec.sync_options;
    let schedule = options.schedule.trim().to_string();
    let watch = options.method == SyncMethod::Fsnotify;
    // With a watch, the schedule (if any) stays on as a safety net for changes it misses.
    let schedule = Some(schedule).filter(|s| !watch || !s.is_empty());
    let unhealthy = spec.health_check.unhealthy_after_failures;
    Ok(UploadArgs {
        src: spec.local_path.clone(),
        dst: remote_path.to_string(),
        schedule,
        watch,
        watch_min_interval_minutes: if watch {
            options.min_minutes_between_syncs()?
        } else {
            None
        },
        no_delete: !options.clean_up.remote,
        force_even_if_remote_would_be_cleared: options.clean_up.force_remote,
        limits: deletion_limits(&options.safety),
        require_sentinel: options.safety.require_sentinel.clone(),
        trash: options.trash.enabled.then_some(TrashArgs {
            retention_days: options.trash.retention_days,
            keep: options.trash.keep,
        }),
        status: status.map(|endpoint| StatusArgs {
            unhealthy_after_failures: Some(unhealthy).filter(|n| *n > 0),
            ..endpoint.args()
        }),
        writer_lease: None,
        sync_requests_url: None,
        verbose: spec.debug,
    })
}

/// With `writers: one`, the sidecar uploads only while it holds the writer lease, which it
/// asks the operator for next to its reports (none without reports: nowhere to ask).
fn writer_lease(
    pod: &Pod,
    pfss: &PodFilesystemSync,
    config: &InjectionConfig,
) -> Result<Option<WriterLeaseArgs>, Denial> {
    // Checked on every Pod: a misspelt preference is refused, never silently ignored.
    let preferred = prefers_primary(pod)?;
    if pfss.spec.sync_options.writers != Writers::One {
        return Ok(None);
    }
    let Some(report) = config.report.as_ref().filter(|r| r.writer_leases) else {
        return Ok(None);
    };
    Ok(Some(WriterLeaseArgs {
        url: report.lease_url(),
        preferred,
    }))
}

/// The Pod's [`PREFER_PRIMARY_ANNOTATION`]: `"true"`, `"false"` or absent (false).
fn prefers_primary(pod: &Pod) -> Result<bool, Denial> {
    let value = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(PREFER_PRIMARY_ANNOTATION));
    match value.map(String::as_str) {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(other) => Err(Denial::new(
            format!("metadata.annotations[{PREFER_PRIMARY_ANNOTATION}]"),
            format!("'{other}' is neither \"true\" nor \"false\""),
        )),
    }
}

/// Where the sidecar serves `/healthz` and `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum StatusEndpoint {
    /// `0.0.0.0:<port>`, declared as a container port, probed over HTTP.
    Port(u16),
    /// A hostNetwork Pod: a declared port would be a host port (two such Pods could not
    /// share a node), so the agent binds a free loopback port, writes it to
    /// [`POD_STATUS_ADDR_FILE`], and an exec probe reads it.
    Loopback,
}

impl StatusEndpoint {
    fn args(self) -> StatusArgs {
        match self {
            StatusEndpoint::Port(port) => StatusArgs {
                addr: format!("0.0.0.0:{port}"),
                ..StatusArgs::default()
            },
            StatusEndpoint::Loopback => StatusArgs {
                addr: "127.0.0.1:0".to_string(),
                addr_file: Some(POD_STATUS_ADDR_FILE.to_string()),
                ..StatusArgs::default()
            },
        }
    }

    fn container_port(self) -> Option<Vec<ContainerPort>> {
        let StatusEndpoint::Port(port) = self else {
            return None;
        };
        Some(vec![ContainerPort {
            name: Some(STATUS_PORT_NAME.to_string()),
            container_port: i32::from(port),
            protocol: Some("TCP".to_string()),
            ..ContainerPort::default()
        }])
    }

    fn probe(self) -> Probe {
        match self {
            StatusEndpoint::Port(_) => Probe {
                http_get: Some(HTTPGetAction {
                    path: Some("/healthz".to_string()),
                    port: IntOrString::String(STATUS_PORT_NAME.to_string()),
                    ..HTTPGetAction::default()
                }),
                ..Probe::default()
            },
            StatusEndpoint::Loopback => Probe {
                exec: Some(ExecAction {
                    command: Some(strings([
                        AGENT_BINARY_PATH,
                        "health",
                        "--status-addr-file",
                        POD_STATUS_ADDR_FILE,
                    ])),
                }),
                ..Probe::default()
            },
        }
    }
}

/// The sidecar's status endpoint, if health checks are on; a port another container of the
/// Pod declares is a [`Denial`].
fn status_endpoint(pod: &Pod, pfss: &PodFilesystemSync) -> Result<Option<StatusEndpoint>, Denial> {
    let Some(port) = pfss.spec.health_check.effective_port() else {
        return Ok(None);
    };
    let spec = pod.spec.as_ref();
    if spec.and_then(|s| s.host_network).unwrap_or(false) {
        return Ok(Some(StatusEndpoint::Loopback));
    }
    let taken_by = spec
        .into_iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .filter(|c| c.name != SIDECAR_CONTAINER_NAME)
        .find(|c| {
            c.ports
                .iter()
                .flatten()
                .any(|p| p.container_port == i32::from(port))
        });
    match taken_by {
        Some(container) => Err(Denial::new(
            "spec.healthCheck.port",
            format!(
                "port {port} is already used by container {} of the Pod; choose another",
                container.name
            ),
        )),
        None => Ok(Some(StatusEndpoint::Port(port))),
    }
}

/// The in-memory emptyDir volumes of both containers: `/tmp` and the config directory.
fn memory_volumes() -> [Volume; 2] {
    let memory = |name: &str, limit: &str| Volume {
        name: name.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: Some(Quantity(limit.to_string())),
        }),
        ..Volume::default()
    };
    [
        memory(TMP_VOLUME_NAME, TMP_SIZE_LIMIT),
        memory(CONFIG_VOLUME_NAME, CONFIG_SIZE_LIMIT),
    ]
}

/// The Pod's service account token for `audience`, which the kubelet writes and renews: the
/// agent's proof, checked by the operator with a TokenReview, that it reports from this Pod
/// about this resource. Only the agent containers mount it.
fn report_token_volume(audience: &str) -> Volume {
    let token = ServiceAccountTokenProjection {
        audience: Some(audience.to_string()),
        expiration_seconds: Some(REPORT_TOKEN_EXPIRATION_SECONDS),
        path: REPORT_TOKEN_FILE_NAME.to_string(),
    };
    Volume {
        name: REPORT_TOKEN_VOLUME.to_string(),
        projected: Some(ProjectedVolumeSource {
            sources: Some(vec![VolumeProjection {
                service_account_token: Some(token),
                ..VolumeProjection::default()
            }]),
            ..ProjectedVolumeSource::default()
        }),
        ..Volume::default()
    }
}

/// `name` set from a field of the Pod (downward API).
fn downward_env(name: &str, field_path: &str) -> EnvVar {
    EnvVar {
        name: name.to_string(),
        value: None,
        value_from: Some(EnvVarSource {
            field_ref: Some(ObjectFieldSelector {
                api_version: None,
                field_path: field_path.to_string(),
            }),
            ..EnvVarSource::default()
        }),
    }
}

fn secret_ref(name: &str) -> EnvFromSource {
    EnvFromSource {
        secret_ref: Some(SecretEnvSource {
            name: name.to_string(),
            optional: None,
        }),
        ..EnvFromSource::default()
    }
}

/// The uid and gid the agent runs as: the Pod's annotations, else `syncOptions.permissions`;
/// `None`: the agent image's user.
fn agent_ids(pod: &Pod, pfss: &PodFilesystemSync) -> Result<(Option<i64>, Option<i64>), Denial> {
    let permissions = pfss.spec.sync_options.permissions.as_ref();
    let uid = id_from_annotation(pod, POD_UID_ANNOTATION)?.or(permissions
        .map(vsc_types::crd::Permissions::uid)
        .transpose()?
        .flatten());
    let gid = id_from_annotation(pod, POD_GID_ANNOTATION)?.or(permissions
        .map(vsc_types::crd::Permissions::gid)
        .transpose()?
        .flatten());
    Ok((uid, gid))
}

/// Warnings for app containers that mount the synced volume and may write files the agent
/// cannot read: they run as another uid than the agent (or as their image's user, unknown
/// here), and no Pod `fsGroup` gives the agent a group that group-readable files carry. A
/// root agent reads everything and is not warned about.
pub(super) fn run_as_warnings(pod: &Pod, pfss: &PodFilesystemSync) -> Vec<String> {
    let Ok((Some(agent_uid), _)) = agent_ids(pod, pfss) else {
        return Vec::new();
    };
    let Some(spec) = pod.spec.as_ref() else {
        return Vec::new();
    };
    let pod_context = spec.security_context.as_ref();
    if agent_uid == 0 || pod_context.and_then(|c| c.fs_group).is_some() {
        return Vec::new();
    }
    let volumes: Vec<String> = mounts::select_mounts(pod, &pfss.spec.local_path)
        .map(|mounts| mounts.into_iter().map(|m| m.name).collect())
        .unwrap_or_default();
    let writers = spec.containers.iter().filter(|c| {
        c.name != SIDECAR_CONTAINER_NAME
            && c.volume_mounts
                .iter()
                .flatten()
                .any(|m| volumes.contains(&m.name))
    });
    writers
        .filter_map(|c| {
            let uid = c
                .security_context
                .as_ref()
                .and_then(|sc| sc.run_as_user)
                .or(pod_context.and_then(|sc| sc.run_as_user));
            let runs_as = match uid {
                Some(uid) if uid == agent_uid => return None,
                Some(uid) => format!("runs as uid {uid}"),
                None => "sets no runAsUser (it runs as its image's user, often root)".to_string(),
            };
            Some(format!(
                "container {} {runs_as} but the sync agent runs as uid {agent_uid}: files it writes \
                 without read permission for others (e.g. mode 0600) cannot be uploaded. Run it as uid \
                 {agent_uid} (securityContext.runAsUser), set syncOptions.permissions (or the \
                 {POD_UID_ANNOTATION} annotation) to its uid, or set the Pod's \
                 securityContext.fsGroup and have it write group-readable files",
                c.name
            ))
        })
        .collect()
}

fn id_from_annotation(pod: &Pod, annotation: &str) -> Result<Option<i64>, Denial> {
    let Some(value) = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(annotation))
    else {
        return Ok(None);
    };
    parse_numeric_id(value).map(Some).ok_or_else(|| {
        Denial::new(
            format!("metadata.annotations[{annotation}]"),
            format!("'{value}' is not a number between 0 and 2147483647"),
        )
    })
}

fn strings<const N: usize>(items: [&str; N]) -> Vec<String> {
    items.iter().map(std::string::ToString::to_string).collect()
}
