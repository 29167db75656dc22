//! Objects the end-to-end tests create, built as a user would write them.

use k8s_openapi::api::authentication::v1::{BoundObjectReference, TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Pod, ServiceAccount, ServiceAccountTokenProjection};
use kube::api::{Api, PostParams};
use serde_json::{Value, json};
use vsc_types::crd::PodFilesystemSync;

pub async fn create_namespace(client: &kube::Client, name: &str) {
    let api: Api<Namespace> = Api::all(client.clone());
    let namespace: Namespace =
        serde_json::from_value(json!({"metadata": {"name": name}})).expect("namespace");
    api.create(&PostParams::default(), &namespace)
        .await
        .expect("create namespace");
    // The controller-manager, which these tests do not run, gives every namespace one.
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), name);
    let account: ServiceAccount =
        serde_json::from_value(json!({"metadata": {"name": "default"}})).expect("account");
    accounts
        .create(&PostParams::default(), &account)
        .await
        .expect("create the default ServiceAccount");
}

/// The service account tokens a kubelet would project into `pod` for `volume`: one per
/// `serviceAccountToken` source, with its path, bound to the Pod (the TokenRequest API).
pub async fn projected_tokens(
    client: &kube::Client,
    pod: &Pod,
    volume: &str,
) -> Vec<(String, String)> {
    let spec = pod.spec.as_ref().expect("pod spec");
    let sources: Vec<&ServiceAccountTokenProjection> = spec
        .volumes
        .iter()
        .flatten()
        .filter(|v| v.name == volume)
        .filter_map(|v| v.projected.as_ref())
        .flat_map(|p| p.sources.iter().flatten())
        .filter_map(|s| s.service_account_token.as_ref())
        .collect();
    let namespace = pod.metadata.namespace.as_deref().expect("namespace");
    let account = spec.service_account_name.as_deref().unwrap_or("default");
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), namespace);
    let mut tokens = Vec::new();
    for source in sources {
        let request = TokenRequest {
            spec: TokenRequestSpec {
                audiences: source.audience.iter().cloned().collect(),
                expiration_seconds: source.expiration_seconds,
                bound_object_ref: Some(BoundObjectReference {
                    api_version: Some("v1".into()),
                    kind: Some("Pod".into()),
                    name: pod.metadata.name.clone(),
                    uid: pod.metadata.uid.clone(),
                }),
            },
            ..TokenRequest::default()
        };
        let issued = accounts
            .create_token_request(account, &PostParams::default(), &request)
            .await
            .expect("TokenRequest for the Pod");
        let token = issued.status.expect("token status").token;
        tokens.push((source.path.clone(), token));
    }
    tokens
}

/// A PodFilesystemSync from a JSON `spec`.
pub async fn create_pfss(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    spec: Value,
) -> PodFilesystemSync {
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), namespace);
    let pfss: PodFilesystemSync = serde_json::from_value(json!({
        "apiVersion": "riotkit.org/v1alpha1",
        "kind": "PodFilesystemSync",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }))
    .expect("PodFilesystemSync");
    api.create(&PostParams::default(), &pfss)
        .await
        .expect("create PodFilesystemSync")
}

/// An opted-in app Pod with an emptyDir `data` mounted at `mount_path`.
pub fn app_pod(name: &str, labels: Value, annotations: Value, mount_path: &str) -> Pod {
    let mut metadata = json!({"name": name, "labels": labels, "annotations": annotations});
    metadata["labels"]["riotkit.org/volume-syncing-controller"] = json!("true");
    serde_json::from_value(json!({
        "metadata": metadata,
        "spec": {
            "terminationGracePeriodSeconds": 60,
            "containers": [{
                "name": "app",
                "image": "busybox:1.36",
                "command": ["sleep", "3600"],
                "volumeMounts": [{"name": "data", "mountPath": mount_path}],
            }],
            "volumes": [{"name": "data", "emptyDir": {}}],
        }
    }))
    .expect("pod")
}

/// Creates `pod` and returns it as stored (after the webhook's patch).
pub async fn create_pod(
    client: &kube::Client,
    namespace: &str,
    pod: &Pod,
) -> Result<Pod, kube::Error> {
    let api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    api.create(&PostParams::default(), pod).await
}

/// The message of an API error (a webhook denial), or a panic when the call succeeded.
pub fn denial(result: Result<Pod, kube::Error>) -> String {
    match result {
        Ok(pod) => panic!(
            "expected a denial, but the Pod was admitted: {:?}",
            pod.spec
        ),
        Err(kube::Error::Api(status)) => status.message,
        Err(other) => panic!("expected a denial, got {other}"),
    }
}

/// Waits until the resource reports `Ready` with `status`, and returns its condition message.
pub async fn wait_ready(
    client: &kube::Client,
    namespace: &str,
    name: &str,
    status: &str,
) -> String {
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), namespace);
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let current = api.get(name).await.expect("get PodFilesystemSync");
        let ready = current
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Ready").cloned());
        if let Some(condition) = &ready
            && condition.status == status
        {
            return condition.message.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{namespace}/{name} never became Ready={status}; last: {ready:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
