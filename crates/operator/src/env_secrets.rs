//! Whether the Secrets named in `spec.envFromSecrets` exist: a kubelet does not start a Pod
//! whose `envFrom` names a missing Secret (`CreateContainerConfigError`), so a resource
//! naming one is not Ready until it appears. Admission still admits such Pods: the Secret
//! may be applied after them (GitOps ordering), and the kubelet starts them when it does.

use k8s_openapi::api::core::v1::Secret;
use kube::Client;
use kube::api::Api;

use vsc_types::crd::PodFilesystemSync;

/// The names of the `envFromSecrets` Secrets that do not exist. Only metadata is read; a
/// Secret the operator may not read (403) is not reported as missing.
pub async fn missing(
    client: &Client,
    namespace: &str,
    pfss: &PodFilesystemSync,
) -> Result<Vec<String>, kube::Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let mut missing = Vec::new();
    for reference in &pfss.spec.env_from_secrets {
        match secrets.get_metadata(&reference.name).await {
            Ok(_) => {}
            Err(kube::Error::Api(status)) if status.code == 404 => {
                missing.push(reference.name.clone());
            }
            Err(kube::Error::Api(status)) if status.code == 403 => {
                tracing::debug!(secret = %reference.name, "may not read the Secret; not checked");
            }
            Err(e) => return Err(e),
        }
    }
    Ok(missing)
}

/// The condition message for missing Secrets.
pub fn describe_missing(namespace: &str, names: &[String]) -> String {
    let list = names
        .iter()
        .map(|n| format!("'{n}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "spec.envFromSecrets: Secret {list} does not exist in namespace {namespace}; a kubelet does not start the selected Pods until it does (CreateContainerConfigError)"
    )
}
