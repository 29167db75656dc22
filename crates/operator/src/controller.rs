//! The reconciler: validates each PodFilesystemSync, creates its encryption Secret when
//! absent, and reports both in `status.conditions` (`Ready`) and Events. It also keeps the
//! `Synced` condition true to time ([`crate::sync_status`]): before any report, and when no
//! success came for three schedule periods.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::api::{Api, Patch, PatchParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::{Event, EventType, Recorder, Reporter};
use kube::runtime::reflector::Store;
use kube::runtime::watcher;
use kube::{Client, Resource as _, ResourceExt as _};
use serde_json::json;

use vsc_types::contract::{
    NEW_ENCRYPTION_KEY_ANNOTATION, SYNC_REQUESTED_AT_ANNOTATION, parse_sync_requested_at,
};
use vsc_types::crd::{
    CONDITION_READY, CONDITION_SYNC_REQUESTED, EncryptionKeyStatus, PodFilesystemSync,
    REASON_ENCRYPTION_SECRET_LOST, REASON_INVALID_SYNC_REQUEST, REASON_NO_RECENT_SUCCESS,
    REASON_SYNC_REQUESTED,
};

use crate::encryption::{self, KnownKey, SecretOutcome};
use crate::env_secrets;
use crate::metrics::Metrics;
use crate::sync_status;
use crate::validation::{describe, validate};

pub const CONTROLLER_NAME: &str = "volume-syncing-controller";
/// Owns `status.encryptionKey` alone, so no other writer's apply can drop it.
pub const ENCRYPTION_KEY_FIELD_MANAGER: &str = "volume-syncing-controller-encryption-key";

#[derive(Debug, thiserror::Error)]
pub enum ReconcileError {
    #[error("the resource has no namespace")]
    NoNamespace,
    #[error("Kubernetes API: {0}")]
    Api(#[from] kube::Error),
}

pub struct Context {
    pub client: Client,
    pub recorder: Recorder,
    pub metrics: Arc<Metrics>,
    /// Only the leader writes (statuses, Secrets); every replica keeps its cache for the webhook.
    pub leader: Arc<AtomicBool>,
    /// Whether agents report their syncs (`--report-url`); without, `Synced` says so.
    pub reports: bool,
}

/// Whether one resource is Ready, and why, before it is written to its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Readiness {
    pub ready: bool,
    pub reason: &'static str,
    pub message: String,
    /// The encryption key seen, recorded in the status (never erased by a judgement without one).
    pub key: Option<EncryptionKeyStatus>,
}

impl Readiness {
    fn ready(message: String, key: Option<EncryptionKeyStatus>) -> Self {
        Readiness {
            ready: true,
            reason: "Valid",
            message,
            key,
        }
    }
}

async fn reconcile(
    pfss: Arc<PodFilesystemSync>,
    ctx: Arc<Context>,
) -> Result<Action, ReconcileError> {
    if !ctx.leader.load(Ordering::SeqCst) {
        return Ok(Action::requeue(Duration::from_secs(5)));
    }
    let namespace = pfss.namespace().ok_or(ReconcileError::NoNamespace)?;
    let readiness = judge(&pfss, &ctx, &namespace).await?;
    ctx.metrics
        .reconcile(if readiness.ready { "ready" } else { "invalid" });
    write_status(&ctx, &pfss, &namespace, &readiness).await?;
    let stale_in = keep_synced_true_to_time(&ctx, &pfss, &namespace).await?;
    // Secrets are not watched (that would need list/watch on every Secret of the cluster):
    // a resource that depends on some looks at them again soon, one GET each.
    let uses_secrets =
        pfss.encryption_secret_name().is_some() || !pfss.spec.env_from_secrets.is_empty();
    let recheck = if uses_secrets {
        SECRET_RECHECK
    } else {
        Duration::from_secs(300)
    };
    Ok(Action::requeue(
        stale_in.map_or(recheck, |d| d.min(recheck)),
    ))
}

/// Writes `Synced` when time alone changed it (no report yet; no success for three schedule
/// periods; a Pod fell silent), and says how soon it can change again without news.
async fn keep_synced_true_to_time(
    ctx: &Context,
    pfss: &PodFilesystemSync,
    namespace: &str,
) -> Result<Option<Duration>, ReconcileError> {
    let now = now();
    let pods = pfss
        .status
        .as_ref()
        .map(|s| s.pods.as_slice())
        .unwrap_or_default();
    let verdict = sync_status::verdict(&pfss.spec, pods, ctx.reports, now);
    let stale_in = |verdict: &sync_status::SyncedVerdict| {
        verdict.stale_at.map(|at| {
            // A second late, so that the verdict has changed when it is looked at again.
            Duration::from_secs(u64::try_from(at.as_second() - now.as_second()).unwrap_or(0) + 1)
        })
    };
    if sync_status::says(sync_status::current_condition(pfss), &verdict) {
        return Ok(stale_in(&verdict));
    }
    let api: Api<PodFilesystemSync> = Api::namespaced(ctx.client.clone(), namespace);
    let Some(written) = sync_status::reevaluate(&api, &pfss.name_any(), ctx.reports).await? else {
        return Ok(None);
    };
    if written.verdict.reason == REASON_NO_RECENT_SUCCESS
        && written.previous_reason.as_deref() != Some(REASON_NO_RECENT_SUCCESS)
    {
        publish(
            ctx,
            &written.before.object_ref(&()),
            EventType::Warning,
            REASON_NO_RECENT_SUCCESS,
            written.verdict.message.clone(),
        )
        .await;
    }
    Ok(stale_in(&written.verdict))
}

const REASON_SECRET_NOT_FOUND: &str = "SecretNotFound";
/// How soon a deleted, restored or newly created Secret shows in the status.
const SECRET_RECHECK: Duration = Duration::from_secs(20);

/// Validation, then the Secrets the Pods need, then the encryption Secret.
async fn judge(
    pfss: &PodFilesystemSync,
    ctx: &Context,
    namespace: &str,
) -> Result<Readiness, ReconcileError> {
    let errors = validate(pfss);
    if !errors.is_empty() {
        return Ok(Readiness {
            ready: false,
            reason: "InvalidSpec",
            message: describe(&errors),
            key: None,
        });
    }
    let missing = env_secrets::missing(&ctx.client, namespace, pfss).await?;
    if !missing.is_empty() {
        return Ok(Readiness {
            ready: false,
            reason: REASON_SECRET_NOT_FOUND,
            message: env_secrets::describe_missing(namespace, &missing),
            key: None,
        });
    }
    encryption_readiness(pfss, ctx, namespace).await
}

async fn encryption_readiness(
    pfss: &PodFilesystemSync,
    ctx: &Context,
    namespace: &str,
) -> Result<Readiness, ReconcileError> {
    let Some(secret_name) = pfss.encryption_secret_name() else {
        return Ok(Readiness::ready("valid".into(), None));
    };
    let recorded = pfss.status.as_ref().and_then(|s| s.encryption_key.as_ref());
    let known = KnownKey {
        recorded,
        replace: pfss
            .annotations()
            .get(NEW_ENCRYPTION_KEY_ANNOTATION)
            .map(String::as_str),
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), namespace);
    let resource = format!("{namespace}/{}", pfss.name_any());
    match encryption::ensure_secret(&secrets, &secret_name, namespace, &resource, known).await {
        Ok(SecretOutcome::Existing(key)) => Ok(Readiness::ready(
            format!("valid; encryption keys in Secret {secret_name}"),
            Some(key),
        )),
        Ok(SecretOutcome::Created(key)) => {
            announce_new_key(ctx, pfss, &secret_name, recorded).await;
            Ok(Readiness::ready(
                format!("valid; encryption keys in Secret {secret_name}"),
                Some(key),
            ))
        }
        Err(encryption::EncryptionError::Api(e)) => Err(e.into()),
        Err(e @ encryption::EncryptionError::KeyLost { .. }) => Ok(Readiness {
            ready: false,
            reason: REASON_ENCRYPTION_SECRET_LOST,
            message: e.to_string(),
            key: recorded.cloned(),
        }),
        Err(e) => Ok(Readiness {
            ready: false,
            reason: "EncryptionSecretUnusable",
            message: e.to_string(),
            key: None,
        }),
    }
}

async fn announce_new_key(
    ctx: &Context,
    pfss: &PodFilesystemSync,
    secret_name: &str,
    replaced: Option<&EncryptionKeyStatus>,
) {
    let reference = pfss.object_ref(&());
    let (type_, reason, note) = match replaced {
        Some(old) => (
            EventType::Warning,
            "EncryptionKeyReplaced",
            format!(
                "created Secret {secret_name} with a NEW encryption key in place of the lost key {} (as asked by {NEW_ENCRYPTION_KEY_ANNOTATION}); data encrypted with the old key stays unreadable; back the new Secret up",
                old.fingerprint
            ),
        ),
        None => (
            EventType::Normal,
            "EncryptionSecretCreated",
            format!(
                "created Secret {secret_name} with a new encryption password and salt; back it up: without it the synced data cannot be decrypted"
            ),
        ),
    };
    publish(ctx, &reference, type_, reason, note).await;
}

/// Writes the `Ready` and `SyncRequested` conditions when they changed (a status write is
/// itself a watch event: writing the same status again would reconcile forever).
async fn write_status(
    ctx: &Context,
    pfss: &PodFilesystemSync,
    namespace: &str,
    readiness: &Readiness,
) -> Result<(), ReconcileError> {
    let status = pfss.status.clone().unwrap_or_default();
    let generation = pfss.metadata.generation;
    let previous = find_condition(&status.conditions, CONDITION_READY);
    let ready = ConditionVerdict {
        type_: CONDITION_READY,
        ok: readiness.ready,
        reason: readiness.reason,
        message: readiness.message.clone(),
    };
    let request = sync_request_verdict(pfss);
    let previous_request = find_condition(&status.conditions, CONDITION_SYNC_REQUESTED);
    let unchanged = ready.is_written_in(previous, generation)
        && status.observed_generation == generation
        && (readiness.key.is_none() || readiness.key == status.encryption_key)
        && match (&request, previous_request) {
            (Some(request), previous) => request.is_written_in(previous, generation),
            (None, previous) => previous.is_none(),
        };
    if unchanged {
        return Ok(());
    }
    let flipped = previous.is_none_or(|c| c.status != ready.status_word());
    let condition = ready.condition(previous, generation);
    let mut conditions = vec![condition];
    conditions.extend(
        request
            .as_ref()
            .map(|r| r.condition(previous_request, generation)),
    );
    let api: Api<PodFilesystemSync> = Api::namespaced(ctx.client.clone(), namespace);
    // Server-side apply of only what the reconciler owns: the `Synced` entry of the
    // conditions (a list keyed by type) and the reports' fields stay as the reports wrote them.
    api.patch_status(
        &pfss.name_any(),
        &PatchParams::apply(CONTROLLER_NAME).force(),
        &Patch::Apply(ready_patch(&pfss.name_any(), generation, &conditions)),
    )
    .await?;
    // Its own field manager, applied only with a key: the reconciler's apply above never
    // names the key, so it cannot erase the record that protects it, and a judgement
    // without a key does not mean that the key is gone.
    if let Some(key) = &readiness.key
        && status.encryption_key.as_ref() != Some(key)
    {
        api.patch_status(
            &pfss.name_any(),
            &PatchParams::apply(ENCRYPTION_KEY_FIELD_MANAGER).force(),
            &Patch::Apply(encryption_key_patch(&pfss.name_any(), key)),
        )
        .await?;
    }
    if flipped && !readiness.ready {
        publish(
            ctx,
            &pfss.object_ref(&()),
            EventType::Warning,
            readiness.reason,
            readiness.message.clone(),
        )
        .await;
    }
    Ok(())
}

/// The reconciler's server-side apply of `Ready` (and `SyncRequested`) and
/// `observedGeneration`: a condition it no longer lists is removed.
fn ready_patch(name: &str, generation: Option<i64>, conditions: &[Condition]) -> serde_json::Value {
    json!({
        "apiVersion": "riotkit.org/v1alpha1",
        "kind": "PodFilesystemSync",
        "metadata": {"name": name},
        "status": {"observedGeneration": generation, "conditions": conditions},
    })
}

fn encryption_key_patch(name: &str, key: &EncryptionKeyStatus) -> serde_json::Value {
    json!({
        "apiVersion": "riotkit.org/v1alpha1",
        "kind": "PodFilesystemSync",
        "metadata": {"name": name},
        "status": {"encryptionKey": key},
    })
}

fn find_condition<'a>(conditions: &'a [Condition], type_: &str) -> Option<&'a Condition> {
    conditions.iter().find(|c| c.type_ == type_)
}

/// One condition the reconciler owns, before it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConditionVerdict {
    pub type_: &'static str,
    pub ok: bool,
    pub reason: &'static str,
    pub message: String,
}

impl ConditionVerdict {
    fn status_word(&self) -> &'static str {
        if self.ok { "True" } else { "False" }
    }

    fn is_written_in(&self, previous: Option<&Condition>, generation: Option<i64>) -> bool {
        previous.is_some_and(|c| {
            c.status == self.status_word()
                && c.reason == self.reason
                && c.message == self.message
                && c.observed_generation == generation
        })
    }

    /// The condition, its transition time kept unless its status flips.
    fn condition(&self, previous: Option<&Condition>, generation: Option<i64>) -> Condition {
        let last_transition_time = match previous {
            Some(c) if c.status == self.status_word() => c.last_transition_time.clone(),
            _ => Time(now()),
        };
        Condition {
            type_: self.type_.to_string(),
            status: self.status_word().to_string(),
            reason: self.reason.to_string(),
            message: self.message.clone(),
            observed_generation: generation,
            last_transition_time,
        }
    }
}

/// `SyncRequested` while the resource carries `riotkit.org/sync-requested-at`: the time it
/// asks for, or why it asks for nothing.
pub fn sync_request_verdict(pfss: &PodFilesystemSync) -> Option<ConditionVerdict> {
    let value = pfss.annotations().get(SYNC_REQUESTED_AT_ANNOTATION)?;
    let (ok, reason, message) = match parse_sync_requested_at(value) {
        Ok(time) => (
            true,
            REASON_SYNC_REQUESTED,
            format!(
                "a sync requested at {}: each sidecar whose last upload started before it runs one when it next asks for its writer lease (within 10 s)",
                vsc_types::report::sent_at_text(time)
            ),
        ),
        Err(e) => (false, REASON_INVALID_SYNC_REQUEST, e.to_string()),
    };
    Some(ConditionVerdict {
        type_: CONDITION_SYNC_REQUESTED,
        ok,
        reason,
        message,
    })
}

fn now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}

async fn publish(
    ctx: &Context,
    reference: &k8s_openapi::api::core::v1::ObjectReference,
    type_: EventType,
    reason: &str,
    note: String,
) {
    let event = Event {
        type_,
        reason: reason.to_string(),
        note: Some(note),
        action: "Reconcile".to_string(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&event, reference).await {
        tracing::warn!(error = %e, reason, "could not publish an Event");
    }
}

fn error_policy(pfss: Arc<PodFilesystemSync>, error: &ReconcileError, ctx: Arc<Context>) -> Action {
    tracing::warn!(resource = %pfss.name_any(), %error, "reconcile failed; retrying");
    ctx.metrics.reconcile("error");
    Action::requeue(Duration::from_secs(15))
}

/// The controller and the store of PodFilesystemSyncs the webhook reads (no per-request
/// listing). The future runs until `shutdown` resolves.
pub fn build(
    client: Client,
    metrics: Arc<Metrics>,
    leader: Arc<AtomicBool>,
    reporter_instance: Option<String>,
    reports: bool,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) -> (
    Store<PodFilesystemSync>,
    impl std::future::Future<Output = ()>,
) {
    let api: Api<PodFilesystemSync> = Api::all(client.clone());
    let controller =
        Controller::new(api, watcher::Config::default()).graceful_shutdown_on(shutdown);
    let store = controller.store();
    let reporter = Reporter {
        controller: CONTROLLER_NAME.to_string(),
        instance: reporter_instance,
    };
    let context = Arc::new(Context {
        recorder: Recorder::new(client.clone(), reporter),
        client,
        metrics,
        leader,
        reports,
    });
    let run = controller
        .run(reconcile, error_policy, context)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::warn!(error = %e, "controller");
            }
        });
    (store, run)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn annotated(value: Option<&str>) -> PodFilesystemSync {
        let mut pfss: PodFilesystemSync = serde_json::from_value(json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": "data", "namespace": "web"},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "localPath": "/srv/data", "remotePath": "/b"},
        }))
        .expect("resource");
        if let Some(value) = value {
            pfss.annotations_mut()
                .insert(SYNC_REQUESTED_AT_ANNOTATION.into(), value.into());
        }
        pfss
    }

    #[test]
    fn the_sync_request_condition_is_there_only_with_the_annotation_and_names_a_bad_value() {
        assert_eq!(sync_request_verdict(&annotated(None)), None);
        let valid = sync_request_verdict(&annotated(Some("2026-11-24T18:00:00Z"))).expect("set");
        assert!(
            valid.ok && valid.reason == REASON_SYNC_REQUESTED,
            "{valid:?}"
        );
        assert!(
            valid.message.contains("2026-11-24T18:00:00.000000Z"),
            "{valid:?}"
        );
        let invalid = sync_request_verdict(&annotated(Some("tomorrow"))).expect("set");
        assert!(!invalid.ok && invalid.reason == REASON_INVALID_SYNC_REQUEST);
        assert!(
            invalid.message.contains(SYNC_REQUESTED_AT_ANNOTATION)
                && invalid.message.contains("'tomorrow'"),
            "{invalid:?}"
        );
    }

    #[test]
    fn a_condition_keeps_its_transition_time_until_its_status_flips() {
        let verdict = sync_request_verdict(&annotated(Some("tomorrow"))).expect("set");
        let written = verdict.condition(None, Some(1));
        assert!(verdict.is_written_in(Some(&written), Some(1)));
        let again = verdict.condition(Some(&written), Some(1));
        assert_eq!(again.last_transition_time, written.last_transition_time);
        let fixed = sync_request_verdict(&annotated(Some("2026-11-24T18:00:00Z"))).expect("set");
        assert!(!fixed.is_written_in(Some(&written), Some(1)));
    }
}
