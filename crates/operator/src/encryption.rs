//! Automatic encryption: the Secret holding a PodFilesystemSync's crypt password and salt.
//!
//! Created once, when absent, with strong random values; never overwritten, regenerated or
//! deleted: data encrypted with a key is unreadable without that exact key. A Secret that
//! exists but lacks a usable key is reported, not repaired.

use std::collections::BTreeMap;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, ObjectMeta, PostParams};

use vsc_types::contract::{ENV_ENCRYPTED_PASSWORD, ENV_ENCRYPTED_PASSWORD2};
use vsc_types::obscure;

/// Bytes of randomness in each generated password / salt (before base64).
const SECRET_BYTES: usize = 48;
pub const MANAGED_BY_LABEL: &str = "app.kubernetes.io/managed-by";
pub const MANAGED_BY_VALUE: &str = "volume-syncing-controller";
pub const FOR_RESOURCE_ANNOTATION: &str = "riotkit.org/encryption-key-for";

#[derive(Debug, thiserror::Error)]
pub enum EncryptionError {
    #[error(
        "Secret {namespace}/{name} exists but has no usable {key}: {problem}. It is never overwritten (data encrypted with a lost key cannot be read); restore the key, or name a new Secret in spec.automaticEncryption.secretName"
    )]
    UnusableSecret {
        namespace: String,
        name: String,
        key: &'static str,
        problem: &'static str,
    },
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
}

/// What [`ensure_secret`] found or did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SecretOutcome {
    Created,
    Existing,
}

fn random_obscured() -> String {
    let bytes: [u8; SECRET_BYTES] = rand::random();
    obscure::obscure(&base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// The Secret to create for `resource` (a `namespace/name`), with fresh random keys.
pub fn new_secret(name: &str, namespace: &str, resource: &str) -> Secret {
    let data = [ENV_ENCRYPTED_PASSWORD, ENV_ENCRYPTED_PASSWORD2]
        .into_iter()
        .map(|key| (key.to_string(), ByteString(random_obscured().into_bytes())))
        .collect::<BTreeMap<_, _>>();
    Secret {
        metadata: ObjectMeta {
            name: Some(name.to_string()),
            namespace: Some(namespace.to_string()),
            labels: Some(BTreeMap::from([(
                MANAGED_BY_LABEL.to_string(),
                MANAGED_BY_VALUE.to_string(),
            )])),
            annotations: Some(BTreeMap::from([
                (FOR_RESOURCE_ANNOTATION.to_string(), resource.to_string()),
                (
                    "riotkit.org/warning".to_string(),
                    "End-to-end encryption key: back this Secret up. Without it the synced data cannot be decrypted.".to_string(),
                ),
            ])),
            ..ObjectMeta::default()
        },
        type_: Some("Opaque".to_string()),
        data: Some(data),
        ..Secret::default()
    }
}

/// Checks that an existing Secret carries both keys, rclone-obscured.
pub fn check_existing(secret: &Secret) -> Result<(), EncryptionError> {
    let namespace = secret.metadata.namespace.clone().unwrap_or_default();
    let name = secret.metadata.name.clone().unwrap_or_default();
    for key in [ENV_ENCRYPTED_PASSWORD, ENV_ENCRYPTED_PASSWORD2] {
        let unusable = |problem| EncryptionError::UnusableSecret {
            namespace: namespace.clone(),
            name: name.clone(),
            key,
            problem,
        };
        let value = secret
            .data
            .as_ref()
            .and_then(|data| data.get(key))
            .ok_or_else(|| unusable("the key is missing"))?;
        let text = std::str::from_utf8(&value.0).map_err(|_| unusable("the value is not text"))?;
        if obscure::reveal(text).is_err() {
            return Err(unusable("the value is not rclone-obscured"));
        }
    }
    Ok(())
}

/// Creates the Secret when absent; otherwise only checks it.
pub async fn ensure_secret(
    secrets: &Api<Secret>,
    name: &str,
    namespace: &str,
    resource: &str,
) -> Result<SecretOutcome, EncryptionError> {
    if let Some(existing) = secrets.get_opt(name).await? {
        check_existing(&existing)?;
        return Ok(SecretOutcome::Existing);
    }
    match secrets
        .create(
            &PostParams::default(),
            &new_secret(name, namespace, resource),
        )
        .await
    {
        Ok(_) => Ok(SecretOutcome::Created),
        // Another replica won the race: use (and check) what it created.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let existing = secrets.get(name).await?;
            check_existing(&existing)?;
            Ok(SecretOutcome::Existing)
        }
        Err(e) => Err(e.into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn new_secrets_hold_distinct_strong_obscured_keys() {
        let secret = new_secret("s", "ns", "ns/pfss");
        check_existing(&secret).expect("fresh secret is usable");
        let data = secret.data.expect("data");
        let reveal = |key: &str| {
            obscure::reveal(std::str::from_utf8(&data[key].0).expect("utf8")).expect("obscured")
        };
        let password = reveal(ENV_ENCRYPTED_PASSWORD);
        let salt = reveal(ENV_ENCRYPTED_PASSWORD2);
        assert_ne!(password, salt);
        assert!(password.len() >= 64, "{} chars", password.len());
        let other = new_secret("s", "ns", "ns/pfss");
        assert_ne!(
            other.data.expect("data")[ENV_ENCRYPTED_PASSWORD],
            data[ENV_ENCRYPTED_PASSWORD]
        );
    }

    #[test]
    fn a_secret_without_a_usable_key_is_reported_not_repaired() {
        let mut secret = new_secret("s", "ns", "ns/pfss");
        secret
            .data
            .as_mut()
            .expect("data")
            .remove(ENV_ENCRYPTED_PASSWORD2);
        let err = check_existing(&secret).expect_err("missing salt");
        assert!(err.to_string().contains("ENCRYPTED_PASSWORD2"), "{err}");
        assert!(err.to_string().contains("never overwritten"), "{err}");

        let mut secret = new_secret("s", "ns", "ns/pfss");
        secret.data.as_mut().expect("data").insert(
            ENV_ENCRYPTED_PASSWORD.into(),
            ByteString(b"plain text!".to_vec()),
        );
        let err = check_existing(&secret).expect_err("not obscured");
        assert!(err.to_string().contains("not rclone-obscured"), "{err}");
    }
}
