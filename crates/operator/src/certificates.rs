//! Self-managed webhook certificates: a CA and a serving certificate kept in a Secret of the
//! operator's namespace, written to the files the webhook serves (and reloads), the CA put
//! into the MutatingWebhookConfiguration's caBundle, and the serving certificate renewed
//! well before it expires.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use base64::Engine as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::MutatingWebhookConfiguration;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;

use crate::pki::{CertificateAuthority, CertifiedKey, PkiError};
use crate::tls::TlsFiles;

const CA_CERT: &str = "ca.crt";
const CA_KEY: &str = "ca.key";
const TLS_CERT: &str = "tls.crt";
const TLS_KEY: &str = "tls.key";
/// When the serving certificate stops being valid (RFC 3339), so renewal needs no X.509 parsing.
const NOT_AFTER_ANNOTATION: &str = "riotkit.org/serving-certificate-not-after";
const CA_DAYS: i64 = 3650;
const SERVING_DAYS: i64 = 365;
/// Renew the serving certificate once less than this is left.
const RENEW_BEFORE_DAYS: i64 = 90;

#[derive(Debug, thiserror::Error)]
pub enum CertificateError {
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
    #[error(transparent)]
    Pki(#[from] PkiError),
    #[error("the certificate Secret {0} is missing {1}")]
    Incomplete(String, &'static str),
    #[error("cannot write {path}: {source}")]
    Write {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

pub struct SelfManaged {
    pub secrets: Api<Secret>,
    pub webhook_configurations: Api<MutatingWebhookConfiguration>,
    pub secret_name: String,
    pub webhook_configuration_name: String,
    /// DNS names of the serving certificate, e.g. `svc.ns.svc` and `svc.ns.svc.cluster.local`.
    pub dns_names: Vec<String>,
    pub files: TlsFiles,
}

fn text(secret: &Secret, key: &'static str) -> Result<String, CertificateError> {
    secret
        .data
        .as_ref()
        .and_then(|data| data.get(key))
        .and_then(|value| String::from_utf8(value.0.clone()).ok())
        .ok_or_else(|| {
            CertificateError::Incomplete(secret.metadata.name.clone().unwrap_or_default(), key)
        })
}

fn needs_renewal(secret: &Secret, now: Timestamp) -> bool {
    let not_after = secret
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(NOT_AFTER_ANNOTATION))
        .and_then(|t| t.parse::<Timestamp>().ok());
    not_after.is_none_or(|t| t < now + SignedDuration::from_hours(24 * RENEW_BEFORE_DAYS))
}

impl SelfManaged {
    fn issue(
        &self,
        ca: &CertificateAuthority,
        existing: Option<&Secret>,
    ) -> Result<Secret, CertificateError> {
        let serving = ca.issue_server(&self.dns_names, SERVING_DAYS)?;
        let not_after = Timestamp::now() + SignedDuration::from_hours(24 * SERVING_DAYS);
        let data = BTreeMap::from([
            (
                CA_CERT.to_string(),
                ByteString(ca.certified.cert_pem.clone().into_bytes()),
            ),
            (
                CA_KEY.to_string(),
                ByteString(ca.certified.key_pem.clone().into_bytes()),
            ),
            (
                TLS_CERT.to_string(),
                ByteString(serving.cert_pem.into_bytes()),
            ),
            (
                TLS_KEY.to_string(),
                ByteString(serving.key_pem.into_bytes()),
            ),
        ]);
        let mut metadata = existing.map_or_else(
            || ObjectMeta {
                name: Some(self.secret_name.clone()),
                ..ObjectMeta::default()
            },
            |s| s.metadata.clone(),
        );
        metadata
            .annotations
            .get_or_insert_with(BTreeMap::new)
            .insert(NOT_AFTER_ANNOTATION.to_string(), not_after.to_string());
        Ok(Secret {
            metadata,
            type_: Some("Opaque".to_string()),
            data: Some(data),
            ..Secret::default()
        })
    }

    /// Makes sure a valid certificate is in the Secret, on disk and in the caBundle.
    pub async fn reconcile(&self) -> Result<(), CertificateError> {
        let secret = match self.secrets.get_opt(&self.secret_name).await? {
            None => {
                let ca = CertificateAuthority::generate(
                    "volume-syncing-controller-webhook-ca",
                    CA_DAYS,
                )?;
                let fresh = self.issue(&ca, None)?;
                match self.secrets.create(&PostParams::default(), &fresh).await {
                    Ok(created) => {
                        tracing::info!(secret = %self.secret_name, "created the webhook CA and serving certificate");
                        created
                    }
                    // Another replica created it first: use theirs.
                    Err(e) if crate::conflict::another_writer_won(&e) => {
                        self.secrets.get(&self.secret_name).await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(existing) if needs_renewal(&existing, Timestamp::now()) => {
                let ca = CertificateAuthority::from_pem(CertifiedKey {
                    cert_pem: text(&existing, CA_CERT)?,
                    key_pem: text(&existing, CA_KEY)?,
                })?;
                let renewed = self.issue(&ca, Some(&existing))?;
                match self
                    .secrets
                    .replace(&self.secret_name, &PostParams::default(), &renewed)
                    .await
                {
                    Ok(replaced) => {
                        tracing::info!(secret = %self.secret_name, "renewed the webhook serving certificate");
                        replaced
                    }
                    Err(e) if crate::conflict::another_writer_won(&e) => {
                        self.secrets.get(&self.secret_name).await?
                    }
                    Err(e) => return Err(e.into()),
                }
            }
            Some(existing) => existing,
        };
        write_atomically(&self.files.cert, &text(&secret, TLS_CERT)?)?;
        write_atomically(&self.files.key, &text(&secret, TLS_KEY)?)?;
        self.patch_ca_bundle(&text(&secret, CA_CERT)?).await
    }

    async fn patch_ca_bundle(&self, ca_pem: &str) -> Result<(), CertificateError> {
        let Some(configuration) = self
            .webhook_configurations
            .get_opt(&self.webhook_configuration_name)
            .await?
        else {
            tracing::warn!(name = %self.webhook_configuration_name, "the MutatingWebhookConfiguration does not exist (yet); caBundle not set");
            return Ok(());
        };
        let bundle = ByteString(ca_pem.as_bytes().to_vec());
        let webhooks: Vec<_> = configuration
            .webhooks
            .iter()
            .flatten()
            .filter(|w| w.client_config.ca_bundle.as_ref() != Some(&bundle))
            .map(|w| json!({"name": w.name, "clientConfig": {"caBundle": base64::engine::general_purpose::STANDARD.encode(ca_pem)}}))
            .collect();
        if webhooks.is_empty() {
            return Ok(());
        }
        self.webhook_configurations
            .patch(
                &self.webhook_configuration_name,
                &PatchParams::default(),
                &Patch::Strategic(json!({"webhooks": webhooks})),
            )
            .await?;
        tracing::info!(name = %self.webhook_configuration_name, "set the webhook caBundle");
        Ok(())
    }

    /// Re-checks every `period` until `stop` resolves; failures are logged and retried.
    pub async fn run(self, period: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = tokio::time::sleep(period) => {}
                () = &mut stop => return,
            }
            if let Err(e) = self.reconcile().await {
                tracing::warn!(error = %e, "webhook certificate check failed; retrying");
            }
        }
    }
}

/// Writes via a temporary file and a rename, so the TLS reloader never reads half a file.
fn write_atomically(path: &Path, contents: &str) -> Result<(), CertificateError> {
    let error = |source| CertificateError::Write {
        path: path.display().to_string(),
        source,
    };
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(error)?;
    }
    if std::fs::read_to_string(path).is_ok_and(|current| current == contents) {
        return Ok(());
    }
    let temporary = path.with_extension("tmp");
    std::fs::write(&temporary, contents).map_err(error)?;
    std::fs::rename(&temporary, path).map_err(error)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renewal_is_due_without_an_annotation_or_within_ninety_days() {
        let mut secret = Secret::default();
        let now = Timestamp::now();
        assert!(needs_renewal(&secret, now));
        let far = now + SignedDuration::from_hours(24 * 200);
        secret.metadata.annotations = Some(BTreeMap::from([(
            NOT_AFTER_ANNOTATION.to_string(),
            far.to_string(),
        )]));
        assert!(!needs_renewal(&secret, now));
        let near = now + SignedDuration::from_hours(24 * 30);
        secret.metadata.annotations = Some(BTreeMap::from([(
            NOT_AFTER_ANNOTATION.to_string(),
            near.to_string(),
        )]));
        assert!(needs_renewal(&secret, now));
    }
}
