//! Writer Leases outlive nothing: a Lease whose PodFilesystemSync is gone is deleted. A
//! Lease lives in the operator's namespace, so it cannot be owned by the resource (owner
//! references do not cross namespaces), and a finalizer would leave resources undeletable
//! while the operator is down. The leader sweeps instead: at start and every few minutes.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use k8s_openapi::api::coordination::v1::Lease;
use kube::ResourceExt as _;
use kube::api::{Api, DeleteParams, ListParams, Preconditions};

use vsc_types::crd::PodFilesystemSync;

use crate::writer_lease::{LEASE_LABEL, LEASE_NAMESPACE_LABEL};

pub const SWEEP_EVERY: Duration = Duration::from_secs(300);
/// How often a replica that does not lead looks again whether it does.
const LEADER_CHECK_EVERY: Duration = Duration::from_secs(5);

/// Deletes the writer Leases in `lease_namespace` whose resource no longer exists; returns
/// how many. A Lease changed since it was listed (a grant racing the sweep) is left for the
/// next sweep: the delete is conditional on the listed resourceVersion.
pub async fn sweep(client: &kube::Client, lease_namespace: &str) -> Result<usize, kube::Error> {
    let leases: Api<Lease> = Api::namespaced(client.clone(), lease_namespace);
    let listed = leases
        .list(&ListParams::default().labels(LEASE_LABEL))
        .await?;
    let mut deleted = 0;
    for lease in listed {
        let labels = lease.labels();
        let (Some(name), Some(namespace)) =
            (labels.get(LEASE_LABEL), labels.get(LEASE_NAMESPACE_LABEL))
        else {
            continue;
        };
        let resources: Api<PodFilesystemSync> = Api::namespaced(client.clone(), namespace);
        if resources.get_opt(name).await?.is_some() {
            continue;
        }
        let only_as_listed = DeleteParams {
            preconditions: Some(Preconditions {
                resource_version: lease.resource_version(),
                uid: lease.uid(),
            }),
            ..DeleteParams::default()
        };
        match leases.delete(&lease.name_any(), &only_as_listed).await {
            Ok(_) => {
                deleted += 1;
                tracing::info!(lease = %lease.name_any(), resource = %format!("{namespace}/{name}"), "deleted the writer lease of a deleted PodFilesystemSync");
            }
            Err(kube::Error::Api(e)) if e.code == 404 || e.code == 409 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(deleted)
}

/// Sweeps while this replica leads, until `stopped` resolves.
pub async fn run(
    client: kube::Client,
    lease_namespace: String,
    leader: Arc<AtomicBool>,
    stopped: impl std::future::Future<Output = ()>,
) {
    let sweeping = async {
        loop {
            if !leader.load(Ordering::SeqCst) {
                tokio::time::sleep(LEADER_CHECK_EVERY).await;
                continue;
            }
            if let Err(e) = sweep(&client, &lease_namespace).await {
                tracing::warn!(error = %e, "could not sweep the writer leases of deleted resources");
            }
            tokio::time::sleep(SWEEP_EVERY).await;
        }
    };
    tokio::select! {
        () = sweeping => {}
        () = stopped => {}
    }
}
