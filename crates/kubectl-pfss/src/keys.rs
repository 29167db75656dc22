//! `kubectl pfss keys export`: the automatic-encryption Secret, as YAML that `kubectl apply
//! -f` puts back (the operator never makes a new key over lost data: README "Encryption
//! keys").

use std::io::Write;

use anyhow::{Context as _, Result, bail};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta};
use vsc_types::crd::PodFilesystemSync;

use crate::cli::KeysExportArgs;
use crate::resources::{self, full_name};

pub const WARNING: &str = "this Secret is the only key to the data at the remote: keep this copy safe (and out of Git unencrypted). Losing both the Secret and this copy loses the data; `kubectl apply -f` on it restores the Secret";

pub async fn export(args: KeysExportArgs, out: &mut impl Write) -> Result<()> {
    let (client, namespace) = resources::connect(args.target.namespace.as_deref()).await?;
    let pfss = resources::get(&client, &namespace, &args.name).await?;
    let secret_name = secret_name(&pfss)?;
    let secrets: Api<Secret> = Api::namespaced(client, &namespace);
    let secret = secrets
        .get_opt(&secret_name)
        .await
        .with_context(|| format!("cannot read Secret {namespace}/{secret_name}"))?;
    let Some(secret) = secret else {
        bail!(
            "Secret {namespace}/{secret_name} of {} does not exist: the key is lost unless you have a backup (README \"Encryption keys\")",
            full_name(&pfss)
        );
    };
    tracing::warn!("{WARNING}");
    let yaml =
        serde_saphyr::to_string(&portable(secret)).context("cannot write the Secret as YAML")?;
    write!(out, "{yaml}")?;
    Ok(())
}

fn secret_name(pfss: &PodFilesystemSync) -> Result<String> {
    match pfss.encryption_secret_name() {
        Some(name) => Ok(name),
        None => bail!(
            "{} has no automatic encryption (spec.automaticEncryption.enabled is false): there is no key Secret to export",
            full_name(pfss)
        ),
    }
}

/// The Secret without what the API server set (uid, resourceVersion, managedFields...), so
/// that it applies to this or another cluster.
fn portable(secret: Secret) -> Secret {
    let metadata = secret.metadata;
    Secret {
        metadata: ObjectMeta {
            name: metadata.name,
            namespace: metadata.namespace,
            labels: metadata.labels,
            annotations: metadata.annotations,
            ..ObjectMeta::default()
        },
        type_: secret.type_,
        data: secret.data,
        string_data: None,
        immutable: secret.immutable,
    }
}
