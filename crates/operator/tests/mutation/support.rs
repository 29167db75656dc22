//! Helpers shared by the mutation tests; no tests of its own.

use std::path::PathBuf;

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::Value;
use vsc_operator::mutation::{self, Denial, InjectionConfig, Mutation};
use vsc_types::crd::PodFilesystemSync;

pub const IMAGE: &str = "ghcr.io/riotkit-org/volume-syncing-controller:1.0.0";
pub const NAMESPACE: &str = "press";

pub fn fixture(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The seed README's example resource, in namespace [`NAMESPACE`].
pub fn seed_pfss() -> PodFilesystemSync {
    let mut pfss: PodFilesystemSync =
        serde_saphyr::from_str(&fixture("seed-podfilesystemsync.yaml"))
            .expect("seed example parses");
    pfss.metadata.namespace = Some(NAMESPACE.into());
    pfss
}

/// The seed resource with `spec` fields replaced by those of `overrides` (a JSON merge).
pub fn seed_pfss_with(overrides: Value) -> PodFilesystemSync {
    let mut json = serde_json::to_value(seed_pfss()).expect("serializes");
    merge(&mut json["spec"], overrides);
    serde_json::from_value(json).expect("still a PodFilesystemSync")
}

/// RFC 7386 merge: `null` removes a key.
pub fn merge(target: &mut Value, patch: Value) {
    match patch {
        Value::Object(map) => {
            if !target.is_object() {
                *target = Value::Object(serde_json::Map::default());
            }
            for (key, value) in map {
                let Some(object) = target.as_object_mut() else {
                    return;
                };
                if value.is_null() {
                    object.remove(&key);
                } else {
                    merge(object.entry(key).or_insert(Value::Null), value);
                }
            }
        }
        other => *target = other,
    }
}

pub fn seed_pod() -> Pod {
    serde_saphyr::from_str(&fixture("seed-pod.yaml")).expect("seed pod parses")
}

pub fn pod_with(overrides: Value) -> Pod {
    let mut json = serde_json::to_value(seed_pod()).expect("serializes");
    merge(&mut json, overrides);
    serde_json::from_value(json).expect("still a Pod")
}

pub fn config() -> InjectionConfig {
    InjectionConfig::new(IMAGE)
}

pub fn native() -> InjectionConfig {
    InjectionConfig {
        native_sidecars: true,
        ..config()
    }
}

/// Mutates and applies the patch to the Pod's JSON, returning the Pod a client would see.
pub fn mutate(
    pod: &Pod,
    pfss: &PodFilesystemSync,
    config: &InjectionConfig,
) -> Result<(Pod, Mutation), Denial> {
    let mutation = mutation::mutate(pod, NAMESPACE, pfss, config)?;
    let mut json = serde_json::to_value(pod).expect("serializes");
    json_patch::patch(&mut json, &mutation.patch)
        .expect("the patch applies to the Pod it was made for");
    Ok((
        serde_json::from_value(json).expect("patched Pod is a Pod"),
        mutation,
    ))
}

pub fn apply(pod: &Pod, pfss: &PodFilesystemSync, config: &InjectionConfig) -> Pod {
    mutate(pod, pfss, config)
        .unwrap_or_else(|d| panic!("denied: {d}"))
        .0
}

pub fn deny(pod: &Pod, pfss: &PodFilesystemSync, config: &InjectionConfig) -> Denial {
    match mutation::mutate(pod, NAMESPACE, pfss, config) {
        Ok(m) => panic!("expected a denial, got patch {}", m.patch),
        Err(d) => d,
    }
}

pub fn init_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.init_containers.iter().flatten())
        .map(|c| c.name.clone())
        .collect()
}

pub fn container_names(pod: &Pod) -> Vec<String> {
    pod.spec
        .iter()
        .flat_map(|s| s.containers.iter())
        .map(|c| c.name.clone())
        .collect()
}

pub fn find<'a>(pod: &'a Pod, name: &str) -> &'a Container {
    pod.spec
        .iter()
        .flat_map(|s| {
            s.init_containers
                .iter()
                .flatten()
                .chain(s.containers.iter())
        })
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no container {name}"))
}

pub fn args(pod: &Pod, name: &str) -> Vec<String> {
    find(pod, name).args.clone().unwrap_or_default()
}

pub fn env(pod: &Pod, name: &str) -> Vec<(String, String)> {
    find(pod, name)
        .env
        .iter()
        .flatten()
        .map(|e| (e.name.clone(), e.value.clone().unwrap_or_default()))
        .collect()
}

pub const RESTORE: &str = "init-volume-restore";
pub const SIDECAR: &str = "volume-syncing-sidecar";
