//! The two injected containers and their shared parts (env, mounts, security context).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Capabilities, Container, ContainerPort, EmptyDirVolumeSource, EnvFromSource, EnvVar,
    ExecAction, HTTPGetAction, Lifecycle, LifecycleHandler, Pod, Probe, ResourceRequirements,
    SecretEnvSource, SecurityContext, Volume, VolumeMount,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use vsc_types::contract::{
    AGENT_BINARY_PATH, ENV_LOCAL_PATH, ENV_LOG_FORMAT, ENV_PID_PATH, ENV_REMOTE_PATH,
    ENV_REPORT_RESOURCE, ENV_REPORT_TOKEN, ENV_REPORT_URL, INIT_CONTAINER_NAME, POD_GID_ANNOTATION,
    POD_UID_ANNOTATION, RESTORE_AS_OF_ANNOTATION, SIDECAR_CONTAINER_NAME,
};
use vsc_types::crd::{PodFilesystemSync, Safety, SyncMethod, parse_numeric_id};

use super::{Denial, InjectionConfig, mounts};
use crate::template::PodContext;

/// In-memory emptyDir for the agent's private files (rclone config, PID file); the root
/// filesystem of the injected containers is read-only.
pub const TMP_VOLUME_NAME: &str = "volume-syncing-tmp";
/// Where [`TMP_VOLUME_NAME`] is mounted.
pub const TMP_MOUNT_PATH: &str = "/tmp";
/// PID file of the sidecar's agent, read by `interrupt` in the preStop hook.
pub const POD_PID_PATH: &str = "/tmp/volume-syncing-controller.pid";
/// rclone crypt's file name encryption mode.
pub const ENV_FILENAME_ENCRYPTION: &str = "ENCRYPTED_FILENAME_ENCRYPTION";

const TMP_SIZE_LIMIT: &str = "16Mi";
/// Name of the sidecar's status port (`/healthz`, `/metrics`).
pub const STATUS_PORT_NAME: &str = "vsc-status";

/// Everything rendered and checked for one Pod, from which both containers are built.
pub(super) struct Plan {
    image: String,
    image_pull_policy: String,
    env: Vec<EnvVar>,
    env_from: Vec<EnvFromSource>,
    mounts: Vec<VolumeMount>,
    security_context: SecurityContext,
    resources: Option<ResourceRequirements>,
    restore_args: Vec<String>,
    sync_args: Vec<String>,
    /// The sidecar serves /healthz and /metrics here.
    status_port: Option<u16>,
    /// A liveness probe on /healthz (the agent fails it after N failed syncs in a row).
    liveness: bool,
}

impl Plan {
    pub(super) fn new(
        pod: &Pod,
        namespace: &str,
        pfss: &PodFilesystemSync,
        config: &InjectionConfig,
        context: &PodContext,
    ) -> Result<Self, Denial> {
        let spec = &pfss.spec;
        let options = &spec.sync_options;
        let local_path = spec.local_path.clone();
        let remote_path = context.render_remote_path(&spec.remote_path)?;

        // Env: the resource's (rendered) values, then ours. The paths must match the args;
        // the log format and file name encryption are defaults the resource may override.
        let mut env = BTreeMap::new();
        for (key, template) in &spec.env {
            env.insert(key.clone(), context.render_env_value(key, template)?);
        }
        env.insert(ENV_LOCAL_PATH.to_string(), local_path.clone());
        env.insert(ENV_REMOTE_PATH.to_string(), remote_path.clone());
        env.insert(ENV_PID_PATH.to_string(), POD_PID_PATH.to_string());
        if let Some(format) = &config.log_format {
            env.entry(ENV_LOG_FORMAT.to_string())
                .or_insert_with(|| format.clone());
        }
        if let Some(report) = &config.report {
            let resource = format!(
                "{namespace}/{}",
                pfss.metadata.name.as_deref().unwrap_or_default()
            );
            env.insert(ENV_REPORT_TOKEN.to_string(), report.key.token(&resource));
            env.insert(ENV_REPORT_URL.to_string(), report.url.clone());
            env.insert(ENV_REPORT_RESOURCE.to_string(), resource);
        }
        let encryption_secret = pfss.encryption_secret_name();
        if encryption_secret.is_some() {
            env.entry(ENV_FILENAME_ENCRYPTION.to_string())
                .or_insert_with(|| "standard".to_string());
        }
        let env = env
            .into_iter()
            .map(|(name, value)| EnvVar {
                name,
                value: Some(value),
                value_from: None,
            })
            .collect();

        let pod_namespace = Some(namespace)
            .filter(|n| !n.is_empty())
            .or(pod.metadata.namespace.as_deref())
            .unwrap_or_default();
        let mut env_from = Vec::new();
        for (i, secret) in spec.env_from_secrets.iter().enumerate() {
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
        if let Some(name) = &encryption_secret {
            env_from.push(secret_ref(name));
        }

        let mut mounts = mounts::select_mounts(pod, &local_path)?;
        mounts.push(VolumeMount {
            name: TMP_VOLUME_NAME.to_string(),
            mount_path: TMP_MOUNT_PATH.to_string(),
            ..VolumeMount::default()
        });

        let uid = id_from_annotation(pod, POD_UID_ANNOTATION)?.or(options
            .permissions
            .as_ref()
            .map(|p| p.uid())
            .transpose()?
            .flatten());
        let gid = id_from_annotation(pod, POD_GID_ANNOTATION)?.or(options
            .permissions
            .as_ref()
            .map(|p| p.gid())
            .transpose()?
            .flatten());
        let security_context = SecurityContext {
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
        };

        let clean_up = &options.clean_up;
        let mut restore_args = strings([
            "remote-to-local-sync",
            "--src",
            &remote_path,
            "--dst",
            &local_path,
        ]);
        if !clean_up.local {
            restore_args.push("--no-delete".into());
        }
        if clean_up.force_local {
            restore_args.push("--force-delete-local-dir".into());
        }
        let safety = &options.safety;
        // Only what differs from the agent's own defaults, so args stay readable.
        let mut limits = Vec::new();
        if safety.max_delete_percent != Safety::default().max_delete_percent {
            limits.extend(strings([
                "--max-delete-percent",
                &safety.max_delete_percent.to_string(),
            ]));
        }
        if safety.max_delete_files != 0 {
            limits.extend(strings([
                "--max-delete-files",
                &safety.max_delete_files.to_string(),
            ]));
        }
        restore_args.extend(limits.iter().cloned());
        if safety.allow_incomplete_restore {
            restore_args.push("--allow-incomplete".into());
        }
        let as_of = pod
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESTORE_AS_OF_ANNOTATION));
        if let Some(when) = as_of {
            if when.parse::<k8s_openapi::jiff::Timestamp>().is_err() {
                return Err(Denial::new(
                    format!("metadata.annotations[{RESTORE_AS_OF_ANNOTATION}]"),
                    format!("'{when}' is not an RFC 3339 time such as 2026-11-24T18:00:00Z"),
                ));
            }
            restore_args.extend(strings(["--as-of", when]));
        }
        if !options.restore_remote_on_first_run {
            // The agent tells a remote never written to (the first run of this remotePath)
            // from one that was, and keeps the local files in the first case.
            restore_args.push("--keep-local-if-remote-empty".into());
        }
        if spec.debug {
            restore_args.push("-v".into());
        }

        let mut sync_args = strings([
            "sync-to-remote",
            "--src",
            &local_path,
            "--dst",
            &remote_path,
        ]);
        let schedule = options.schedule.trim();
        match options.method {
            SyncMethod::Scheduler => sync_args.extend(strings(["--schedule", schedule])),
            SyncMethod::Fsnotify => {
                sync_args.push("--watch".into());
                if let Some(minutes) = options.min_minutes_between_syncs()? {
                    sync_args.extend(strings(["--watch-min-interval", &format!("{minutes}m")]));
                }
                // The schedule stays on as a safety net for changes the watch misses.
                if !schedule.is_empty() {
                    sync_args.extend(strings(["--schedule", schedule]));
                }
            }
        }
        if !clean_up.remote {
            sync_args.push("--no-delete".into());
        }
        if clean_up.force_remote {
            sync_args.push("--force-even-if-remote-would-be-cleared".into());
        }
        sync_args.extend(limits);
        if let Some(sentinel) = &safety.require_sentinel {
            sync_args.extend(strings(["--require-sentinel", sentinel]));
        }
        if options.trash.enabled {
            sync_args.extend(strings([
                "--trash",
                "--trash-retention-days",
                &options.trash.retention_days.to_string(),
                "--trash-keep",
                &options.trash.keep.to_string(),
            ]));
        }
        if spec.debug {
            sync_args.push("-v".into());
        }
        let status_port = spec.health_check.effective_port();
        if let Some(port) = status_port {
            let taken_by = pod
                .spec
                .iter()
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
            if let Some(container) = taken_by {
                return Err(Denial::new(
                    "spec.healthCheck.port",
                    format!(
                        "port {port} is already used by container {} of the Pod; choose another",
                        container.name
                    ),
                ));
            }
            sync_args.extend(strings(["--status-addr", &format!("0.0.0.0:{port}")]));
            if spec.health_check.unhealthy_after_failures > 0 {
                let failures = spec.health_check.unhealthy_after_failures.to_string();
                sync_args.extend(strings(["--unhealthy-after-failures", &failures]));
            }
        }

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
            restore_args,
            sync_args,
            status_port,
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

    /// `init-volume-restore`: restores the remote into the local directory, then exits.
    pub(super) fn restore_container(&self) -> Container {
        self.base(INIT_CONTAINER_NAME, &self.restore_args)
    }

    /// `volume-syncing-sidecar`: syncs to the remote while the Pod runs; its preStop hook
    /// asks the agent for a last sync. `native`: an init container with `restartPolicy: Always`.
    pub(super) fn sync_container(&self, native: bool) -> Container {
        let mut container = self.base(SIDECAR_CONTAINER_NAME, &self.sync_args);
        container.lifecycle = Some(Lifecycle {
            pre_stop: Some(LifecycleHandler {
                exec: Some(ExecAction {
                    command: Some(strings([AGENT_BINARY_PATH, "interrupt"])),
                }),
                ..LifecycleHandler::default()
            }),
            ..Lifecycle::default()
        });
        if native {
            container.restart_policy = Some("Always".to_string());
        }
        if let Some(port) = self.status_port {
            container.ports = Some(vec![ContainerPort {
                name: Some(STATUS_PORT_NAME.to_string()),
                container_port: i32::from(port),
                protocol: Some("TCP".to_string()),
                ..ContainerPort::default()
            }]);
            if self.liveness {
                container.liveness_probe = Some(Probe {
                    http_get: Some(HTTPGetAction {
                        path: Some("/healthz".to_string()),
                        port: IntOrString::String(STATUS_PORT_NAME.to_string()),
                        ..HTTPGetAction::default()
                    }),
                    period_seconds: Some(30),
                    // The agent already counts failed syncs; one failed probe is the signal.
                    failure_threshold: Some(1),
                    ..Probe::default()
                });
            }
        }
        container
    }
}

/// The in-memory emptyDir mounted at `/tmp` in both containers.
pub(super) fn tmp_volume() -> Volume {
    Volume {
        name: TMP_VOLUME_NAME.to_string(),
        empty_dir: Some(EmptyDirVolumeSource {
            medium: Some("Memory".to_string()),
            size_limit: Some(Quantity(TMP_SIZE_LIMIT.to_string())),
        }),
        ..Volume::default()
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
    items.iter().map(|s| s.to_string()).collect()
}
