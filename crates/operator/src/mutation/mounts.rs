//! Which of the Pod's volume mounts the injected containers need: those at or above
//! `localPath`, path-aware (`/work` does not hold `/workspace/x`).

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Pod, VolumeMount};
use vsc_types::contract::{INIT_CONTAINER_NAME, SIDECAR_CONTAINER_NAME};

use super::Denial;
use super::containers::{CONFIG_MOUNT_PATH, TMP_MOUNT_PATH};

const FIELD: &str = "spec.localPath";

/// The mounts of the Pod's containers (and init containers other than ours) that hold
/// `local_path`: per volume the deepest such mount, ordered parents first. Only name,
/// mountPath and subPath are copied: the copy is writable and has no propagation. No such
/// mount, or mounts that disagree about what is at a path, is a [`Denial`].
pub fn select_mounts(pod: &Pod, local_path: &str) -> Result<Vec<VolumeMount>, Denial> {
    let mut selected: Vec<VolumeMount> = Vec::new();
    for (volume, mounts) in deepest_mounts_holding(pod, normalize(local_path)) {
        let mount = only_mount(volume, &mounts, local_path)?;
        check_mount(volume, mount, &selected, local_path)?;
        selected.push(VolumeMount {
            name: mount.name.clone(),
            mount_path: mount.mount_path.clone(),
            sub_path: mount.sub_path.clone().filter(|s| !s.is_empty()),
            ..VolumeMount::default()
        });
    }
    if selected.is_empty() {
        return Err(Denial::new(
            FIELD,
            format!(
                "no volume of the Pod is mounted at or above {local_path}; the synced directory must be on a \
                 volume the app container mounts"
            ),
        ));
    }
    // Parents first, so that each mount lands inside the one it is below.
    selected.sort_by(|a, b| {
        let (a_path, b_path) = (normalize(&a.mount_path), normalize(&b.mount_path));
        (a_path.len(), a_path).cmp(&(b_path.len(), b_path))
    });
    Ok(selected)
}

/// Per volume name, the deepest mounts of it (deduplicated) that hold `local`, among the
/// Pod's containers and init containers other than the injected ones.
fn deepest_mounts_holding<'a>(
    pod: &'a Pod,
    local: &str,
) -> BTreeMap<&'a str, Vec<&'a VolumeMount>> {
    let containers = pod
        .spec
        .iter()
        .flat_map(|s| {
            s.containers
                .iter()
                .chain(s.init_containers.iter().flatten())
        })
        .filter(|c| c.name != INIT_CONTAINER_NAME && c.name != SIDECAR_CONTAINER_NAME);
    let mut deepest: BTreeMap<&str, Vec<&VolumeMount>> = BTreeMap::new();
    for mount in containers.flat_map(|c| c.volume_mounts.iter().flatten()) {
        let mount_path = normalize(&mount.mount_path);
        if !holds(mount_path, local) {
            continue;
        }
        let entry = deepest.entry(mount.name.as_str()).or_default();
        let current_depth = entry.first().map(|m| normalize(&m.mount_path).len());
        match current_depth {
            Some(depth) if depth > mount_path.len() => {}
            Some(depth) if depth == mount_path.len() => {
                if !entry.iter().any(|m| same_mount(m, mount)) {
                    entry.push(mount);
                }
            }
            _ => *entry = vec![mount],
        }
    }
    deepest
}

/// The one deepest mount of `volume`; several (other subPaths at the same path) leave the
/// injected containers unable to tell which holds `local_path`.
fn only_mount<'a>(
    volume: &str,
    mounts: &[&'a VolumeMount],
    local_path: &str,
) -> Result<&'a VolumeMount, Denial> {
    match mounts {
        [mount] => Ok(mount),
        _ => Err(Denial::new(
            FIELD,
            format!(
                "containers mount volume {volume} at {} with different subPaths; the injected containers \
                 cannot tell which one holds {local_path}",
                mounts
                    .first()
                    .map(|m| m.mount_path.as_str())
                    .unwrap_or_default()
            ),
        )),
    }
}

/// Whether the injected containers can copy `mount`: no subPathExpr (it needs the app's
/// env), not over their private directories, not at the path of a mount already selected.
fn check_mount(
    volume: &str,
    mount: &VolumeMount,
    selected: &[VolumeMount],
    local_path: &str,
) -> Result<(), Denial> {
    if mount
        .sub_path_expr
        .as_deref()
        .is_some_and(|e| !e.is_empty())
    {
        return Err(Denial::new(
            FIELD,
            format!(
                "volume {volume} is mounted at {} with subPathExpr, which depends on the app container's \
                 env; use subPath or mount the volume without it",
                mount.mount_path
            ),
        ));
    }
    let mount_path = normalize(&mount.mount_path);
    if let Some(private) = [TMP_MOUNT_PATH, CONFIG_MOUNT_PATH]
        .into_iter()
        .find(|private| holds(mount_path, private))
    {
        return Err(Denial::new(
            FIELD,
            format!(
                "volume {volume} is mounted at {}, which covers {private}, where the injected containers \
                 keep their private files; mount the synced volume elsewhere",
                mount.mount_path
            ),
        ));
    }
    if let Some(other) = selected
        .iter()
        .find(|m| normalize(&m.mount_path) == mount_path)
    {
        return Err(Denial::new(
            FIELD,
            format!(
                "containers mount different volumes ({} and {volume}) at {}; the injected containers cannot \
                 tell which one holds {local_path}",
                other.name, mount.mount_path
            ),
        ));
    }
    Ok(())
}

fn same_mount(a: &VolumeMount, b: &VolumeMount) -> bool {
    let sub = |m: &VolumeMount| m.sub_path.clone().unwrap_or_default();
    let expr = |m: &VolumeMount| m.sub_path_expr.clone().unwrap_or_default();
    a.name == b.name
        && normalize(&a.mount_path) == normalize(&b.mount_path)
        && sub(a) == sub(b)
        && expr(a) == expr(b)
}

/// Whether a mount at `mount_path` holds `path`: equal, or a parent directory of it.
fn holds(mount_path: &str, path: &str) -> bool {
    mount_path == "/"
        || path == mount_path
        || path
            .strip_prefix(mount_path)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// `/a/b/` -> `/a/b`; `/` stays `/`.
fn normalize(path: &str) -> &str {
    let trimmed = path.trim_end_matches('/');
    if trimmed.is_empty() && path.starts_with('/') {
        "/"
    } else {
        trimmed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_is_path_aware() {
        assert!(holds("/work", "/work"));
        assert!(holds("/work", "/work/x"));
        assert!(!holds("/work", "/workspace/x"));
        assert!(!holds("/work/x", "/work"));
        assert!(holds("/", "/anything"));
        assert!(holds(normalize("/work/"), normalize("/work/x/")));
    }
}
