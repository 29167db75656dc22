//! The JSON patch from the received Pod to the mutated one.
//!
//! Only the three lists the mutation touches (and the service account name it may fill in)
//! are diffed, the lists only by removing and adding whole entries at computed indices: the
//! other entries are never rewritten, so fields of the Pod that the typed model does not
//! know (from a newer API server) survive the patch.

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation, RemoveOperation, ReplaceOperation};
use k8s_openapi::api::core::v1::{Container, Pod, Volume};
use serde::Serialize;
use vsc_types::contract::{INIT_CONTAINER_NAME, SIDECAR_CONTAINER_NAME};

use super::{Denial, PRIVATE_VOLUME_NAMES};

pub(super) fn diff(original: &Pod, patched: &Pod) -> Result<Patch, Denial> {
    let (Some(before), Some(after)) = (original.spec.as_ref(), patched.spec.as_ref()) else {
        return Ok(Patch::default());
    };
    let ours = |c: &Container| c.name == INIT_CONTAINER_NAME || c.name == SIDECAR_CONTAINER_NAME;
    let tmp = |v: &Volume| PRIVATE_VOLUME_NAMES.contains(&v.name.as_str());
    let mut ops = Vec::new();
    list_ops(
        "initContainers",
        before.init_containers.as_deref(),
        after.init_containers.as_deref(),
        ours,
        &mut ops,
    )?;
    list_ops(
        "containers",
        Some(&before.containers),
        Some(&after.containers),
        ours,
        &mut ops,
    )?;
    list_ops(
        "volumes",
        before.volumes.as_deref(),
        after.volumes.as_deref(),
        tmp,
        &mut ops,
    )?;
    if before.service_account_name != after.service_account_name {
        ops.push(PatchOperation::Add(AddOperation {
            path: PointerBuf::from_tokens(["spec", "serviceAccountName"]),
            value: to_json(&after.service_account_name)?,
        }));
    }
    Ok(Patch(ops))
}

/// Ops turning `before` into `after` at `/spec/<field>`, where the two differ only in the
/// entries `is_ours` selects. Falls back to replacing the list if that does not hold.
fn list_ops<T: PartialEq + Serialize>(
    field: &str,
    before: Option<&[T]>,
    after: Option<&[T]>,
    is_ours: impl Fn(&T) -> bool,
    ops: &mut Vec<PatchOperation>,
) -> Result<(), Denial> {
    let pointer = |index: Option<usize>| match index {
        Some(i) => PointerBuf::from_tokens(["spec", field, &i.to_string()]),
        None => PointerBuf::from_tokens(["spec", field]),
    };
    match (before, after) {
        (before, after) if before == after => {}
        (None, Some(after)) => {
            ops.push(PatchOperation::Add(AddOperation {
                path: pointer(None),
                value: to_json(after)?,
            }));
        }
        (Some(_), None) => ops.push(PatchOperation::Remove(RemoveOperation {
            path: pointer(None),
        })),
        (None, None) => {}
        (Some(before), Some(after)) => {
            let mut before_others = before.iter().filter(|x| !is_ours(x));
            let mut after_others = after.iter().filter(|x| !is_ours(x));
            if !before_others.by_ref().eq(after_others.by_ref()) {
                ops.push(PatchOperation::Replace(ReplaceOperation {
                    path: pointer(None),
                    value: to_json(after)?,
                }));
                return Ok(());
            }
            // Remove ours from the back (indices stay valid), then add ours front to back:
            // each add lands at its final index because everything before it is final.
            for (i, _) in before.iter().enumerate().rev().filter(|(_, x)| is_ours(x)) {
                ops.push(PatchOperation::Remove(RemoveOperation {
                    path: pointer(Some(i)),
                }));
            }
            for (i, item) in after.iter().enumerate().filter(|(_, x)| is_ours(x)) {
                ops.push(PatchOperation::Add(AddOperation {
                    path: pointer(Some(i)),
                    value: to_json(item)?,
                }));
            }
        }
    }
    Ok(())
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<serde_json::Value, Denial> {
    serde_json::to_value(value).map_err(|e| {
        Denial::new(
            "spec",
            format!("internal error: cannot encode the patch: {e}"),
        )
    })
}
