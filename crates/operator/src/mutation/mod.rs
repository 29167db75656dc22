//! The Pod mutation: a pure function from (Pod, its namespace, the selecting
//! `PodFilesystemSync`, operator settings) to a JSON patch that injects the restore init
//! container `init-volume-restore` and the sync sidecar `volume-syncing-sidecar`.
//!
//! - Idempotent: containers and the volume this module injects are first removed, then put
//!   back where they belong, so a reinvocation after another webhook added init containers
//!   re-orders ours, and mutating an already mutated Pod yields an empty patch.
//! - Deterministic: env is sorted by name; the patch only adds and removes list entries at
//!   computed indices, so nothing of the Pod this operator does not model is rewritten.
//! - Bad input is a [`Denial`] naming the field, never a Pod whose data goes nowhere.

mod containers;
mod mounts;
mod patch;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements, Volume};
use vsc_types::contract::{INIT_CONTAINER_NAME, LogFormat, SIDECAR_CONTAINER_NAME};
use vsc_types::crd::{
    CONDITION_READY, EffectivePlacement, FieldError, PodFilesystemSync,
    REASON_ENCRYPTION_SECRET_LOST,
};

use crate::template::PodContext;

pub use containers::{
    CONFIG_MOUNT_PATH, CONFIG_VOLUME_NAME, ENV_FILENAME_ENCRYPTION, POD_PID_PATH,
    POD_STATUS_ADDR_FILE, PRIVATE_VOLUME_NAMES, TMP_MOUNT_PATH, TMP_VOLUME_NAME,
};
pub use mounts::select_mounts;

/// Operator-wide settings of the injection, from flags / the Helm chart and the cluster.
#[derive(Clone, Debug, PartialEq)]
pub struct InjectionConfig {
    /// The agent image, by digest or pinned tag.
    pub agent_image: String,
    /// `imagePullPolicy` of the injected containers.
    pub image_pull_policy: String,
    /// Resources of the injected containers when the resource sets none.
    pub default_resources: Option<ResourceRequirements>,
    /// The cluster runs init containers with `restartPolicy: Always` as sidecars (>= 1.29).
    pub native_sidecars: bool,
    /// `VSC_LOG_FORMAT` of the agent (`text` or `json`); unset: the agent's default.
    pub log_format: Option<LogFormat>,
    /// Where agents report their syncs.
    pub report: Option<ReportConfig>,
}

impl InjectionConfig {
    /// Settings with the given image and the [`Default`] rest.
    pub fn new(agent_image: impl Into<String>) -> Self {
        Self {
            agent_image: agent_image.into(),
            ..Self::default()
        }
    }
}

impl Default for InjectionConfig {
    /// No image (set one), `IfNotPresent`, no default resources, classic sidecars, the
    /// agent's log format, not a first run.
    fn default() -> Self {
        Self {
            agent_image: String::new(),
            image_pull_policy: "IfNotPresent".to_string(),
            default_resources: None,
            native_sidecars: false,
            log_format: None,
            report: None,
        }
    }
}

/// Sync reporting: agents POST results to `url` with their Pod's service account token for
/// their resource's audience.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportConfig {
    pub url: String,
    /// The operator serves `/writer-lease` (it knows its namespace, where the Leases live).
    pub writer_leases: bool,
}

impl ReportConfig {
    /// The writer-lease endpoint: the same admin port as `url`.
    pub fn lease_url(&self) -> String {
        self.admin_url(vsc_types::writer_lease::LEASE_PATH)
    }

    /// The sync-requests endpoint (sidecars without a writer lease): the same admin port.
    pub fn sync_requests_url(&self) -> String {
        self.admin_url(vsc_types::sync_requests::SYNC_REQUESTS_PATH)
    }

    fn admin_url(&self, path: &str) -> String {
        let rest = self.url.strip_prefix("http://").unwrap_or(&self.url);
        let host = rest.split_once('/').map_or(rest, |(host, _)| host);
        format!("http://{host}{path}")
    }
}

/// The result of a successful mutation.
#[derive(Clone, Debug, PartialEq)]
pub struct Mutation {
    /// RFC 6902 patch against the Pod as received; empty when the Pod is already mutated.
    pub patch: json_patch::Patch,
    /// Admission warnings for the user (e.g. a short termination grace period).
    pub warnings: Vec<String>,
}

/// Why a Pod is rejected: the field at fault (of the `PodFilesystemSync` or the Pod, e.g.
/// `spec.env.REMOTE_ACL`, `metadata.annotations[riotkit.org/volume-user-id]`) and what is
/// wrong with it. The same type as the reconciler's and the templates' errors, so each
/// passes through unchanged.
pub type Denial = FieldError;

/// Computes the patch that injects the agent into `pod` for `pfss`. `namespace` is the
/// Pod's namespace from the admission request.
pub fn mutate(
    pod: &Pod,
    namespace: &str,
    pfss: &PodFilesystemSync,
    config: &InjectionConfig,
) -> Result<Mutation, Denial> {
    let patched = patched_pod(pod, namespace, pfss, config)?;
    Ok(Mutation {
        patch: patch::diff(pod, &patched)?,
        warnings: warnings(pod, pfss, config),
    })
}

/// A resource whose encryption Secret is gone: its Pods would get no key (or, without the
/// reconciler's guard, a new one), so they are denied with the reconciler's message.
fn lost_encryption_key(pfss: &PodFilesystemSync) -> Option<Denial> {
    let condition = pfss
        .status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == CONDITION_READY && c.reason == REASON_ENCRYPTION_SECRET_LOST)?;
    Some(Denial::new(
        "spec.automaticEncryption",
        condition.message.clone(),
    ))
}

/// The Pod as it is after the mutation ([`mutate`] is the patch from `pod` to this).
pub fn patched_pod(
    pod: &Pod,
    namespace: &str,
    pfss: &PodFilesystemSync,
    config: &InjectionConfig,
) -> Result<Pod, Denial> {
    check_resource(pfss)?;
    let Some(spec) = pod.spec.as_ref() else {
        return Err(Denial::new("spec", "the Pod has no spec"));
    };
    let placement = pfss.effective_placement()?;

    let mut patched = pod.clone();
    let Some(patched_spec) = patched.spec.as_mut() else {
        return Err(Denial::new("spec", "the Pod has no spec"));
    };
    // A reinvocation starts from the Pod without what an earlier one injected.
    let mut parts = PodParts::without_injected(spec);
    let restore = pfss.should_restore();
    let sync = pfss.spec.sync_options.allowed_directions.to_remote;
    if restore || sync {
        // Render and check everything first: any problem denies before anything is built.
        let context = PodContext::with_namespace(pod, Some(namespace));
        let agents = containers::AgentContainers::new(pod, namespace, pfss, config, &context)?;
        let native = pfss.spec.sidecar_mode.is_native(config.native_sidecars);
        parts.add_containers(&agents, restore, sync && native, sync && !native, placement)?;
        parts.add_volumes(agents.volumes(), spec.volumes.as_deref());
    }
    parts.write_into(patched_spec, spec);
    // A projected service account token needs the account named. The API server's
    // ServiceAccount admission names `default` before webhooks run; where it is off, the
    // webhook names it the same way.
    let projects_token = volumes_project_a_token(patched_spec.volumes.as_deref());
    if projects_token && spec.service_account_name.is_none() && spec.service_account.is_none() {
        patched_spec.service_account_name = Some(DEFAULT_SERVICE_ACCOUNT.to_string());
    }
    Ok(patched)
}

/// An invalid resource, or one whose encryption key is lost, denies every Pod.
fn check_resource(pfss: &PodFilesystemSync) -> Result<(), Denial> {
    if let Some(first) = pfss.validate().into_iter().next() {
        let name = pfss.metadata.name.as_deref().unwrap_or_default();
        return Err(Denial::new(
            first.field,
            format!("{} (PodFilesystemSync {name} is invalid)", first.message),
        ));
    }
    match lost_encryption_key(pfss) {
        Some(lost) => Err(lost),
        None => Ok(()),
    }
}

/// The lists of the Pod's spec the mutation changes, being rebuilt.
struct PodParts {
    init: Vec<Container>,
    regular: Vec<Container>,
    volumes: Vec<Volume>,
}

impl PodParts {
    /// The Pod's containers and volumes without the injected ones, in their order.
    fn without_injected(spec: &PodSpec) -> Self {
        let ours =
            |c: &Container| c.name == INIT_CONTAINER_NAME || c.name == SIDECAR_CONTAINER_NAME;
        let others = |list: &[Container]| list.iter().filter(|c| !ours(c)).cloned().collect();
        Self {
            init: others(spec.init_containers.as_deref().unwrap_or_default()),
            regular: others(&spec.containers),
            volumes: spec
                .volumes
                .iter()
                .flatten()
                .filter(|v| !PRIVATE_VOLUME_NAMES.contains(&v.name.as_str()))
                .cloned()
                .collect(),
        }
    }

    /// The restore container and a native sidecar go at the placement among the init
    /// containers (restore first); a classic sidecar goes after the app containers.
    fn add_containers(
        &mut self,
        agents: &containers::AgentContainers,
        restore: bool,
        native_sidecar: bool,
        classic_sidecar: bool,
        placement: EffectivePlacement<'_>,
    ) -> Result<(), Denial> {
        let mut at_placement = Vec::new();
        if restore {
            at_placement.push(agents.restore_container());
        }
        if native_sidecar {
            at_placement.push(agents.sync_container(true));
        }
        if !at_placement.is_empty() {
            let index = placement_index(&self.init, placement)?;
            self.init.splice(index..index, at_placement);
        }
        if classic_sidecar {
            self.regular.push(agents.sync_container(false));
        }
        Ok(())
    }

    /// Adds the agents' volumes, each where it was on a reinvocation (so the volume list
    /// stays put), else at the end.
    fn add_volumes(&mut self, agent_volumes: &[Volume], pod_volumes: Option<&[Volume]>) {
        for volume in agent_volumes.iter().cloned() {
            match pod_volumes
                .into_iter()
                .flatten()
                .position(|v| v.name == volume.name)
            {
                Some(i) if i <= self.volumes.len() => self.volumes.insert(i, volume),
                _ => self.volumes.push(volume),
            }
        }
    }

    /// Sets the lists on `patched`; an empty list the Pod did not have stays absent.
    fn write_into(self, patched: &mut PodSpec, original: &PodSpec) {
        patched.init_containers = if self.init.is_empty() && original.init_containers.is_none() {
            None
        } else {
            Some(self.init)
        };
        patched.containers = self.regular;
        patched.volumes = if self.volumes.is_empty() && original.volumes.is_none() {
            None
        } else {
            Some(self.volumes)
        };
    }
}

/// The account a Pod runs as when its spec names none.
const DEFAULT_SERVICE_ACCOUNT: &str = "default";

fn volumes_project_a_token(volumes: Option<&[Volume]>) -> bool {
    volumes.into_iter().flatten().any(|volume| {
        volume
            .projected
            .iter()
            .flat_map(|p| p.sources.iter().flatten())
            .any(|source| source.service_account_token.is_some())
    })
}

/// Where the restore init container goes among the Pod's other init containers.
fn placement_index(init: &[Container], placement: EffectivePlacement<'_>) -> Result<usize, Denial> {
    let find = |name: &str| {
        init.iter().position(|c| c.name == name).ok_or_else(|| {
            let names: Vec<&str> = init.iter().map(|c| c.name.as_str()).collect();
            Denial::new(
                "spec.initContainerPlacement.containerReference",
                format!(
                    "the Pod has no init container named '{name}' (it has: {})",
                    if names.is_empty() {
                        "none".to_string()
                    } else {
                        names.join(", ")
                    }
                ),
            )
        })
    };
    match placement {
        EffectivePlacement::First => Ok(0),
        EffectivePlacement::Last => Ok(init.len()),
        EffectivePlacement::Before(name) => find(name),
        EffectivePlacement::After(name) => find(name).map(|i| i + 1),
    }
}

/// The shortest `terminationGracePeriodSeconds` that is not warned about: the Kubernetes
/// default. The final sync (a listing of both sides and the upload of what changed) must fit
/// in it, after the app's own shutdown when the sidecar is native.
pub const MIN_GRACE_PERIOD_SECONDS: i64 = 30;

/// A warning when the Pod's grace period is shorter than [`MIN_GRACE_PERIOD_SECONDS`].
fn grace_period_warning(pod: &Pod, native: bool) -> Option<String> {
    let grace = pod
        .spec
        .as_ref()
        .and_then(|s| s.termination_grace_period_seconds)
        .filter(|grace| *grace < MIN_GRACE_PERIOD_SECONDS)?;
    let budget = if native {
        "the app's own shutdown and then the sidecar's last sync to the remote"
    } else {
        "the sidecar's last sync to the remote, which starts when the app is told to stop"
    };
    Some(format!(
        "terminationGracePeriodSeconds is {grace}: it must cover {budget}; what is not uploaded \
         when it runs out is lost. Raise it to at least {MIN_GRACE_PERIOD_SECONDS} (more for large volumes)"
    ))
}

/// Advice for the user about this Pod and resource; returned as admission warnings.
pub fn warnings(pod: &Pod, pfss: &PodFilesystemSync, config: &InjectionConfig) -> Vec<String> {
    let mut warnings = Vec::new();
    let options = &pfss.spec.sync_options;
    let spec = pod.spec.as_ref();
    let sync = options.allowed_directions.to_remote;
    let native = pfss.spec.sidecar_mode.is_native(config.native_sidecars);

    if !sync && !options.allowed_directions.from_remote {
        warnings.push(
            "allowedDirections disables both toRemote and fromRemote: nothing is injected"
                .to_string(),
        );
    }
    if sync {
        warnings.extend(grace_period_warning(pod, native));
        warnings.extend(containers::run_as_warnings(pod, pfss));
    }
    if sync
        && !native
        && let Some(policy) = spec
            .and_then(|s| s.restart_policy.as_deref())
            .filter(|p| *p != "Always")
    {
        warnings.push(format!(
            "the sync sidecar runs as a regular container: with restartPolicy {policy} this Pod will \
             not complete while it runs (native sidecars need Kubernetes >= 1.29)"
        ));
    }
    if sync
        && pfss.spec.sidecar_mode == vsc_types::crd::SidecarMode::Native
        && !config.native_sidecars
    {
        warnings.push(
            "sidecarMode is native but the cluster does not report native sidecar support (Kubernetes >= 1.29)"
                .to_string(),
        );
    }
    warnings
}
