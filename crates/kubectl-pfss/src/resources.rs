//! Reading the cluster: the PodFilesystemSyncs and the Pods they select.

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use kube::api::{Api, ListParams};
use kube::{Client, ResourceExt as _};
use vsc_types::contract::POD_OPT_IN_LABEL;
use vsc_types::crd::PodFilesystemSync;

/// A client from the kubeconfig (`KUBECONFIG`, `~/.kube/config`, or in-cluster), and the
/// namespace to use: `-n`, else the context's.
pub async fn connect(namespace: Option<&str>) -> Result<(Client, String)> {
    let config = kube::Config::infer()
        .await
        .context("cannot read the kubeconfig (KUBECONFIG, ~/.kube/config)")?;
    let namespace = namespace.map_or_else(|| config.default_namespace.clone(), str::to_string);
    let client = Client::try_from(config).context("cannot make a Kubernetes client")?;
    Ok((client, namespace))
}

/// The resource `namespace/name`, or an error that names it.
pub async fn get(client: &Client, namespace: &str, name: &str) -> Result<PodFilesystemSync> {
    let api: Api<PodFilesystemSync> = Api::namespaced(client.clone(), namespace);
    match api.get_opt(name).await {
        Ok(Some(pfss)) => Ok(pfss),
        Ok(None) => bail!(
            "podfilesystemsync {namespace}/{name} not found (`kubectl get pfss -n {namespace}` lists them)"
        ),
        Err(e) => {
            Err(e).with_context(|| format!("cannot read podfilesystemsync {namespace}/{name}"))
        }
    }
}

/// The resources of `namespace`, or of every namespace when `None`.
pub async fn list(client: &Client, namespace: Option<&str>) -> Result<Vec<PodFilesystemSync>> {
    let api: Api<PodFilesystemSync> = match namespace {
        Some(namespace) => Api::namespaced(client.clone(), namespace),
        None => Api::all(client.clone()),
    };
    let list = api
        .list(&ListParams::default())
        .await
        .context("cannot list podfilesystemsyncs")?;
    Ok(list.items)
}

/// The Pods the resource selects (its selector and the opt-in label), by name.
pub async fn selected_pods(client: &Client, pfss: &PodFilesystemSync) -> Result<Vec<Pod>> {
    let namespace = pfss.namespace().unwrap_or_default();
    let api: Api<Pod> = Api::namespaced(client.clone(), &namespace);
    let selector = label_selector(&pfss.spec.pod_selector);
    let mut pods = api
        .list(&ListParams::default().labels(&selector))
        .await
        .with_context(|| format!("cannot list the Pods of {namespace} ({selector})"))?
        .items;
    pods.sort_by_key(kube::ResourceExt::name_any);
    Ok(pods)
}

/// A label selector as the API takes it in `labelSelector`, with the opt-in label.
pub fn label_selector(selector: &LabelSelector) -> String {
    let mut terms = vec![format!("{POD_OPT_IN_LABEL}=true")];
    for (key, value) in selector.match_labels.iter().flatten() {
        terms.push(format!("{key}={value}"));
    }
    for expression in selector.match_expressions.iter().flatten() {
        let values = expression.values.clone().unwrap_or_default().join(",");
        terms.push(match expression.operator.as_str() {
            "In" => format!("{} in ({values})", expression.key),
            "NotIn" => format!("{} notin ({values})", expression.key),
            "Exists" => expression.key.clone(),
            _ => format!("!{}", expression.key),
        });
    }
    terms.join(",")
}

/// `namespace/name` of a resource.
pub fn full_name(pfss: &PodFilesystemSync) -> String {
    format!(
        "{}/{}",
        pfss.namespace().unwrap_or_default(),
        pfss.name_any()
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelectorRequirement;

    #[test]
    fn a_selector_becomes_the_apis_label_selector_with_the_opt_in_label() {
        let selector = LabelSelector {
            match_labels: Some([("app".to_string(), "web".to_string())].into()),
            match_expressions: Some(vec![
                LabelSelectorRequirement {
                    key: "tier".into(),
                    operator: "In".into(),
                    values: Some(vec!["a".into(), "b".into()]),
                },
                LabelSelectorRequirement {
                    key: "canary".into(),
                    operator: "DoesNotExist".into(),
                    values: None,
                },
            ]),
        };
        assert_eq!(
            label_selector(&selector),
            "riotkit.org/volume-syncing-controller=true,app=web,tier in (a,b),!canary"
        );
    }
}
