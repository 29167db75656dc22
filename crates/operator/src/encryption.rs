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

use sha2::{Digest as _, Sha256};
use vsc_types::contract::{
    ENV_ENCRYPTED_PASSWORD, ENV_ENCRYPTED_PASSWORD2, NEW_ENCRYPTION_KEY_ANNOTATION,
};
use vsc_types::crd::EncryptionKeyStatus;
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
    #[error(
        "Secret {namespace}/{name} held the encryption key {fingerprint} and is gone: what was synced with that key cannot be decrypted without it, so no new key is made silently. Restore the Secret from your backup; or, to start over with a new key (data already encrypted with the old one stays unreadable): kubectl annotate podfilesystemsync -n {namespace} {resource} {annotation}={fingerprint}",
        annotation = NEW_ENCRYPTION_KEY_ANNOTATION
    )]
    KeyLost {
        namespace: String,
        name: String,
        resource: String,
        fingerprint: String,
    },
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
}

/// What [`ensure_secret`] found or did, and the key's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretOutcome {
    Created(EncryptionKeyStatus),
    Existing(EncryptionKeyStatus),
}

/// The key a resource had and whether a new one may replace it.
#[derive(Debug, Clone, Copy, Default)]
pub struct KnownKey<'a> {
    /// From the resource's status.
    pub recorded: Option<&'a EncryptionKeyStatus>,
    /// The resource's [`NEW_ENCRYPTION_KEY_ANNOTATION`].
    pub replace: Option<&'a str>,
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

/// Names a checked Secret's key: SHA-256 over the revealed password and salt, so a Secret
/// restored with the same key re-obscured still matches.
pub fn fingerprint(secret: &Secret) -> Result<EncryptionKeyStatus, EncryptionError> {
    check_existing(secret)?;
    let mut hash = Sha256::new();
    for key in [ENV_ENCRYPTED_PASSWORD, ENV_ENCRYPTED_PASSWORD2] {
        let value = secret.data.as_ref().and_then(|data| data.get(key));
        let text = value.and_then(|v| std::str::from_utf8(&v.0).ok());
        let revealed = text
            .and_then(|t| obscure::reveal(t).ok())
            .unwrap_or_default();
        hash.update(revealed.as_bytes());
        hash.update([0]);
    }
    let digest = hash.finalize();
    Ok(EncryptionKeyStatus {
        secret_name: secret.metadata.name.clone().unwrap_or_default(),
        fingerprint: digest[..8].iter().map(|b| format!("{b:02x}")).collect(),
    })
}

/// Creates the Secret when absent, unless it held a key this resource used (then only with
/// [`KnownKey::replace`] naming that key); otherwise only checks it.
pub async fn ensure_secret(
    secrets: &Api<Secret>,
    name: &str,
    namespace: &str,
    resource: &str,
    known: KnownKey<'_>,
) -> Result<SecretOutcome, EncryptionError> {
    if let Some(existing) = secrets.get_opt(name).await? {
        return Ok(SecretOutcome::Existing(fingerprint(&existing)?));
    }
    if let Some(recorded) = known.recorded.filter(|k| k.secret_name == name)
        && known.replace != Some(recorded.fingerprint.as_str())
    {
        return Err(EncryptionError::KeyLost {
            namespace: namespace.to_string(),
            name: name.to_string(),
            resource: resource.rsplit('/').next().unwrap_or(resource).to_string(),
            fingerprint: recorded.fingerprint.clone(),
        });
    }
    let secret = new_secret(name, namespace, resource);
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(SecretOutcome::Created(fingerprint(&secret)?)),
        // Another replica won the race: use (and check) what it created.
        Err(e) if crate::conflict::another_writer_won(&e) => {
            let existing = secrets.get(name).await?;
            Ok(SecretOutcome::Existing(fingerprint(&existing)?))
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
    fn the_fingerprint_names_the_key_not_its_obscured_form() {
        let secret = new_secret("s", "ns", "ns/pfss");
        let mut reobscured = secret.clone();
        for value in reobscured.data.as_mut().expect("data").values_mut() {
            let revealed =
                obscure::reveal(std::str::from_utf8(&value.0).expect("utf8")).expect("obscured");
            *value = ByteString(obscure::obscure(&revealed).into_bytes());
        }
        assert_ne!(secret.data, reobscured.data, "obscuring uses a random IV");
        let fingerprint = fingerprint(&secret).expect("usable");
        assert_eq!(
            fingerprint,
            super::fingerprint(&reobscured).expect("usable")
        );
        assert_eq!(fingerprint.fingerprint.len(), 16);
        let other = super::fingerprint(&new_secret("s", "ns", "ns/pfss")).expect("usable");
        assert_ne!(fingerprint, other);
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
