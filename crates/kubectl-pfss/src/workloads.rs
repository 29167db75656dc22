//! Which workload owns a Pod (Deployment, StatefulSet, DaemonSet, ReplicaSet), and what the
//! Pod's sidecar syncs: what `restore` rolls out and `verify` runs in.

use anyhow::{Context as _, Result};
use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::Api;
use kube::{Client, ResourceExt as _};
use vsc_types::contract::{ENV_REMOTE_PATH, INIT_CONTAINER_NAME, SIDECAR_CONTAINER_NAME};

/// A Pod's controller whose template `restore` annotates.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Workload {
    pub kind: String,
    pub name: String,
}

impl std::fmt::Display for Workload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.kind, self.name)
    }
}

/// The workload with a Pod template above `pod`: its controller, or the Deployment above
/// its ReplicaSet. None for a bare Pod, or one of a kind `restore` cannot roll out (a Job).
pub async fn owner(client: &Client, pod: &Pod) -> Result<Option<Workload>> {
    let Some(controller) = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true))
    else {
        return Ok(None);
    };
    let workload = |kind: &str, name: &str| Workload {
        kind: kind.to_string(),
        name: name.to_string(),
    };
    match controller.kind.as_str() {
        "StatefulSet" | "DaemonSet" => Ok(Some(workload(&controller.kind, &controller.name))),
        "ReplicaSet" => {
            let namespace = pod.namespace().unwrap_or_default();
            let sets: Api<ReplicaSet> = Api::namespaced(client.clone(), &namespace);
            let set = sets.get_opt(&controller.name).await.with_context(|| {
                format!("cannot read ReplicaSet {namespace}/{}", controller.name)
            })?;
            let deployment = set.as_ref().and_then(|s| {
                s.owner_references()
                    .iter()
                    .find(|o| o.controller == Some(true) && o.kind == "Deployment")
                    .map(|o| o.name.clone())
            });
            Ok(Some(match deployment {
                Some(name) => workload("Deployment", &name),
                None => workload("ReplicaSet", &controller.name),
            }))
        }
        _ => Ok(None),
    }
}

fn agent_containers(pod: &Pod) -> impl Iterator<Item = &Container> {
    let spec = pod.spec.as_ref();
    let init = spec
        .and_then(|s| s.init_containers.as_ref())
        .into_iter()
        .flatten();
    let main = spec.map(|s| &s.containers).into_iter().flatten();
    init.chain(main)
        .filter(|c| c.name == INIT_CONTAINER_NAME || c.name == SIDECAR_CONTAINER_NAME)
}

/// The remote path the webhook gave the Pod's agent containers.
pub fn remote_path(pod: &Pod) -> Option<String> {
    agent_containers(pod)
        .flat_map(|c| c.env.iter().flatten())
        .find(|e| e.name == ENV_REMOTE_PATH)
        .and_then(|e| e.value.clone())
}

/// Whether the webhook injected the sync sidecar (native or classic).
pub fn has_sidecar(pod: &Pod) -> bool {
    agent_containers(pod).any(|c| c.name == SIDECAR_CONTAINER_NAME)
}
