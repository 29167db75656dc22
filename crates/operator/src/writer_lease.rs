//! `/writer-lease`: one writer per remote path (`syncOptions.writers: one`). The sidecars of
//! the Pods that share a resolved remotePath ask here, every few seconds, for its Lease; the
//! operator keeps one `coordination.k8s.io` Lease per resource and remote path for them, so
//! the injected Pods need no RBAC of their own: a request is believed only with the Pod's
//! report token (checked as for reports, [`crate::report::check_sender`]).
//!
//! Safety rests on two rules: a grant is written to the Lease with the resourceVersion it was
//! decided from (of two replicas deciding at once, one gets a conflict), and a lease held by
//! another Pod is never given away before it expires (or is released), while the holder
//! stops uploading `STOP_MARGIN_SECONDS` before that (see `vsc_types::writer_lease`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{MicroTime, Time};
use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::ResourceExt as _;
use kube::api::{Api, ObjectMeta, Patch, PatchParams, PostParams};
use serde_json::json;
use sha2::{Digest as _, Sha256};

use vsc_types::crd::{PodFilesystemSync, PrimaryStatus};
use vsc_types::writer_lease::{LEASE_DURATION_SECONDS, LeaseAction, LeaseAnswer, LeaseRequest};

use crate::report::{
    Answer, FromPod, MAX_REPORT_AGE_SECONDS, ReportState, check_sender, parse_from_pod, refuse,
};

/// Labels on each writer Lease: the resource's name and namespace.
pub const LEASE_LABEL: &str = "riotkit.org/podfilesystemsync";
pub const LEASE_NAMESPACE_LABEL: &str = "riotkit.org/podfilesystemsync-namespace";
/// The remote path a Lease is for (its name is a hash of it).
const REMOTE_PATH_ANNOTATION: &str = "riotkit.org/remote-path";
/// The holder's last request's `sentAt`: an older or equal one is a replay.
const HOLDER_SENT_AT_ANNOTATION: &str = "riotkit.org/holder-sent-at";
/// A preferred Pod waiting for the lease, and when it last asked.
const CANDIDATE_ANNOTATION: &str = "riotkit.org/preferred-candidate";
const CANDIDATE_AT_ANNOTATION: &str = "riotkit.org/preferred-candidate-at";
/// The field manager of `status.primaries`.
pub const FIELD_MANAGER: &str = "volume-syncing-controller-writer-lease";
/// Tries of a read-decide-write that lost a race with another writer.
const WRITE_TRIES: u32 = 5;
const MAX_REMOTE_PATH: usize = 4096;

/// The Lease of `remote_path` for the resource `namespace/name`: a name of at most 63
/// characters whatever the path is, and different for each resource and path.
pub fn lease_name(namespace: &str, name: &str, remote_path: &str) -> String {
    let digest = Sha256::digest(format!("{namespace}/{name}\n{remote_path}"));
    let hex: String = digest[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("vsc-writer-{hex}")
}

/// A Lease as the decision needs it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeaseView {
    pub holder: Option<Holder>,
    /// A preferred Pod that asked while another held the lease, and when.
    pub candidate: Option<(String, Timestamp)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holder {
    pub pod: String,
    pub renewed: Timestamp,
    pub duration: SignedDuration,
    pub last_sent_at: Option<Timestamp>,
}

/// One request, as the decision needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ask<'a> {
    pub pod: &'a str,
    pub action: LeaseAction,
    pub preferred: bool,
    pub sent_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The asker holds the lease (`taken`: it did not before).
    Grant { taken: bool },
    /// Someone else holds it (or a preferred Pod waits for it); `note_candidate`: remember
    /// the asker as a waiting preferred Pod.
    Refuse {
        holder: Option<String>,
        note_candidate: bool,
    },
    /// The holder gave it up.
    Released,
    /// Nothing to write (a release by a Pod that does not hold it).
    Unchanged { holder: Option<String> },
    /// Not newer than the holder's last request.
    Replay,
}

/// What to do with `ask` given the Lease as it is `now`: pure, so every case is tested.
pub fn decide(view: &LeaseView, ask: &Ask<'_>, now: Timestamp) -> Decision {
    let held = view.holder.as_ref();
    let live = held.filter(|h| now < h.renewed + h.duration);
    let asker_holds = held.is_some_and(|h| h.pod == ask.pod);
    if ask.action == LeaseAction::Release {
        return if asker_holds {
            Decision::Released
        } else {
            Decision::Unchanged {
                holder: live.map(|h| h.pod.clone()),
            }
        };
    }
    if asker_holds
        && held
            .and_then(|h| h.last_sent_at)
            .is_some_and(|t| t >= ask.sent_at)
    {
        return Decision::Replay;
    }
    let waiting = view
        .candidate
        .as_ref()
        .filter(|(pod, at)| pod != ask.pod && now < *at + lease_duration())
        .map(|(pod, _)| pod.clone());
    let yields_to_candidate = !ask.preferred && waiting.is_some();
    match live {
        Some(h) if h.pod != ask.pod => Decision::Refuse {
            holder: Some(h.pod.clone()),
            note_candidate: ask.preferred,
        },
        // The holder does not renew: its grant runs out, then the candidate gets it.
        Some(_) if yields_to_candidate => Decision::Refuse {
            holder: waiting,
            note_candidate: false,
        },
        Some(_) => Decision::Grant { taken: false },
        None if yields_to_candidate => Decision::Refuse {
            holder: None,
            note_candidate: false,
        },
        None => Decision::Grant { taken: true },
    }
}

fn lease_duration() -> SignedDuration {
    SignedDuration::from_secs(i64::from(LEASE_DURATION_SECONDS))
}

fn parse_time(text: Option<&String>) -> Option<Timestamp> {
    text.and_then(|t| t.parse().ok())
}

impl LeaseView {
    pub fn of(lease: &Lease) -> Self {
        let spec = lease.spec.clone().unwrap_or_default();
        let annotations = lease.annotations();
        let holder = match (spec.holder_identity, spec.renew_time) {
            (Some(pod), Some(MicroTime(renewed))) if !pod.is_empty() => Some(Holder {
                pod,
                renewed,
                duration: SignedDuration::from_secs(i64::from(
                    spec.lease_duration_seconds.unwrap_or(0),
                )),
                last_sent_at: parse_time(annotations.get(HOLDER_SENT_AT_ANNOTATION)),
            }),
            _ => None,
        };
        let candidate = annotations
            .get(CANDIDATE_ANNOTATION)
            .cloned()
            .zip(parse_time(annotations.get(CANDIDATE_AT_ANNOTATION)));
        LeaseView { holder, candidate }
    }
}

/// Writes `decision` into `lease`; false when there is nothing to write.
fn apply(lease: &mut Lease, decision: &Decision, ask: &Ask<'_>, now: Timestamp) -> bool {
    let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
    let annotations = lease.metadata.annotations.get_or_insert_with(BTreeMap::new);
    match decision {
        Decision::Grant { taken } => {
            if *taken {
                spec.acquire_time = Some(MicroTime(now));
                spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0) + 1);
            }
            spec.holder_identity = Some(ask.pod.to_string());
            spec.renew_time = Some(MicroTime(now));
            spec.lease_duration_seconds = Some(LEASE_DURATION_SECONDS.cast_signed());
            annotations.insert(HOLDER_SENT_AT_ANNOTATION.into(), ask.sent_at.to_string());
            if annotations.get(CANDIDATE_ANNOTATION).map(String::as_str) == Some(ask.pod) {
                annotations.remove(CANDIDATE_ANNOTATION);
                annotations.remove(CANDIDATE_AT_ANNOTATION);
            }
            true
        }
        Decision::Refuse {
            note_candidate: true,
            ..
        } => {
            annotations.insert(CANDIDATE_ANNOTATION.into(), ask.pod.to_string());
            annotations.insert(CANDIDATE_AT_ANNOTATION.into(), now.to_string());
            true
        }
        Decision::Released => {
            spec.holder_identity = None;
            spec.renew_time = None;
            annotations.remove(HOLDER_SENT_AT_ANNOTATION);
            true
        }
        Decision::Refuse { .. } | Decision::Unchanged { .. } | Decision::Replay => false,
    }
}

/// A new Lease for `remote_path` of the resource `namespace/name`.
fn new_lease(lease_name: &str, namespace: &str, name: &str, remote_path: &str) -> Lease {
    let labels = [
        (LEASE_LABEL.to_string(), name.to_string()),
        (LEASE_NAMESPACE_LABEL.to_string(), namespace.to_string()),
    ];
    Lease {
        metadata: ObjectMeta {
            name: Some(lease_name.to_string()),
            labels: Some(labels.into()),
            annotations: Some(
                [(REMOTE_PATH_ANNOTATION.to_string(), remote_path.to_string())].into(),
            ),
            ..ObjectMeta::default()
        },
        spec: Some(LeaseSpec::default()),
    }
}

pub async fn receive(
    State(state): State<Arc<ReportState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Answer {
    let request = match parse(&body) {
        Ok(request) => request,
        Err(answer) => return answer,
    };
    let (namespace, name) =
        match check_sender(&state, &headers, &request.resource, &request.pod).await {
            Ok(resource) => resource,
            Err(answer) => return answer,
        };
    let Some(sent_at) = fresh_sent_at(&request) else {
        return refuse(
            StatusCode::FORBIDDEN,
            format!(
                "sentAt must be an RFC 3339 time within {MAX_REPORT_AGE_SECONDS} s of the operator's clock"
            ),
        );
    };
    let ask = Ask {
        pod: &request.pod,
        action: request.action,
        preferred: request.preferred,
        sent_at,
    };
    let leases: Api<Lease> = Api::namespaced(state.client.clone(), &state.lease_namespace);
    let resource = Resource { namespace, name };
    match settle(
        &state.client,
        &leases,
        &resource,
        &request.remote_path,
        &ask,
    )
    .await
    {
        Ok(Some(answer)) => {
            let text = serde_json::to_string(&answer).unwrap_or_default();
            (StatusCode::OK, text)
        }
        Ok(None) => refuse(StatusCode::FORBIDDEN, "a replayed lease request"),
        Err(Failure::NoResource) => refuse(
            StatusCode::NOT_FOUND,
            format!("no PodFilesystemSync {}", request.resource),
        ),
        Err(Failure::Api(e)) => {
            tracing::warn!(error = %e, resource = %request.resource, "could not decide a writer lease");
            refuse(StatusCode::BAD_GATEWAY, "could not read or write the lease")
        }
    }
}

impl FromPod for LeaseRequest {
    const WHAT: &'static str = "a writer-lease request";
    fn pod(&self) -> &str {
        &self.pod
    }
}

/// The request in `body`, with its pod and remote path checked.
fn parse(body: &[u8]) -> Result<LeaseRequest, Answer> {
    let request: LeaseRequest = parse_from_pod(body)?;
    if request.remote_path.is_empty() || request.remote_path.len() > MAX_REMOTE_PATH {
        return Err(refuse(
            StatusCode::BAD_REQUEST,
            "remotePath must be the Pod's resolved remote path",
        ));
    }
    Ok(request)
}

fn fresh_sent_at(request: &LeaseRequest) -> Option<Timestamp> {
    let sent_at = request.sent_at()?;
    let age = chrono::Utc::now()
        .signed_duration_since(sent_at)
        .num_seconds();
    if age.abs() > MAX_REPORT_AGE_SECONDS {
        return None;
    }
    Timestamp::from_microsecond(sent_at.timestamp_micros()).ok()
}

/// The PodFilesystemSync a request is about.
#[derive(Clone, Copy)]
struct Resource<'a> {
    namespace: &'a str,
    name: &'a str,
}

enum Failure {
    NoResource,
    Api(kube::Error),
}

impl From<kube::Error> for Failure {
    fn from(e: kube::Error) -> Self {
        Failure::Api(e)
    }
}

/// Reads the Lease, decides, writes it back with the resourceVersion read (again on a
/// conflict); the answer, or None for a replay.
async fn settle(
    client: &kube::Client,
    leases: &Api<Lease>,
    resource: &Resource<'_>,
    remote_path: &str,
    ask: &Ask<'_>,
) -> Result<Option<LeaseAnswer>, Failure> {
    let Resource { namespace, name } = *resource;
    let resources: Api<PodFilesystemSync> = Api::namespaced(client.clone(), namespace);
    let pfss = resources.get_opt(name).await?.ok_or(Failure::NoResource)?;
    let sync_requested_at = crate::sync_requests::requested_sync(&pfss);
    let lease_name = lease_name(namespace, name, remote_path);
    let mut tries = 0;
    loop {
        tries += 1;
        let stored = leases.get_opt(&lease_name).await?;
        let exists = stored.is_some();
        let mut lease =
            stored.unwrap_or_else(|| new_lease(&lease_name, namespace, name, remote_path));
        let now = Timestamp::now();
        let decision = decide(&LeaseView::of(&lease), ask, now);
        if decision == Decision::Replay {
            return Ok(None);
        }
        let written = if apply(&mut lease, &decision, ask, now) {
            if exists {
                leases
                    .replace(&lease_name, &PostParams::default(), &lease)
                    .await
            } else {
                leases.create(&PostParams::default(), &lease).await
            }
        } else {
            Ok(lease)
        };
        match written {
            Ok(_) => {
                if decision == (Decision::Grant { taken: true }) {
                    tracing::info!(resource = %format!("{namespace}/{name}"), pod = ask.pod, remote_path, "a new primary writer");
                    record_primary(&resources, name, remote_path, ask.pod, now).await;
                }
                let answer = LeaseAnswer {
                    sync_requested_at: sync_requested_at.clone(),
                    ..answer(&decision, ask)
                };
                return Ok(Some(answer));
            }
            Err(e) if crate::conflict::another_writer_won(&e) && tries < WRITE_TRIES => {}
            Err(e) => return Err(e.into()),
        }
    }
}

fn answer(decision: &Decision, ask: &Ask<'_>) -> LeaseAnswer {
    let (granted, holder) = match decision {
        Decision::Grant { .. } => (true, Some(ask.pod.to_string())),
        Decision::Refuse { holder, .. } | Decision::Unchanged { holder } => (false, holder.clone()),
        Decision::Released | Decision::Replay => (false, None),
    };
    LeaseAnswer {
        granted,
        holder,
        lease_duration_seconds: LEASE_DURATION_SECONDS,
        sync_requested_at: None,
    }
}

/// `status.primaries` with this remote path's primary; best effort (the Lease is the truth,
/// the status says it for `kubectl get`).
async fn record_primary(
    api: &Api<PodFilesystemSync>,
    name: &str,
    remote_path: &str,
    pod: &str,
    now: Timestamp,
) {
    let result = async {
        let current = api.get_status(name).await?;
        let mut primaries: Vec<PrimaryStatus> = current
            .status
            .map(|s| s.primaries)
            .unwrap_or_default()
            .into_iter()
            .filter(|p| p.remote_path != remote_path)
            .collect();
        primaries.push(PrimaryStatus {
            remote_path: remote_path.to_string(),
            pod: pod.to_string(),
            since: Time(now),
        });
        let patch = json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": name, "resourceVersion": current.metadata.resource_version},
            "status": {"primaries": primaries},
        });
        let params = PatchParams::apply(FIELD_MANAGER).force();
        api.patch_status(name, &params, &Patch::Apply(patch)).await
    }
    .await;
    if let Err(e) = result {
        tracing::warn!(error = %e, resource = name, "could not record the primary in the status");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).expect("time")
    }

    fn held_by(pod: &str, renewed: i64, last_sent: i64) -> LeaseView {
        LeaseView {
            holder: Some(Holder {
                pod: pod.into(),
                renewed: at(renewed),
                duration: lease_duration(),
                last_sent_at: Some(at(last_sent)),
            }),
            candidate: None,
        }
    }

    fn ask(pod: &str, sent: i64) -> Ask<'_> {
        Ask {
            pod,
            action: LeaseAction::Acquire,
            preferred: false,
            sent_at: at(sent),
        }
    }

    const TAKEN: Decision = Decision::Grant { taken: true };
    const RENEWED: Decision = Decision::Grant { taken: false };

    fn refused(holder: Option<&str>, note_candidate: bool) -> Decision {
        Decision::Refuse {
            holder: holder.map(str::to_string),
            note_candidate,
        }
    }

    #[test]
    fn a_free_lease_is_taken_and_the_holder_renews_it() {
        assert_eq!(decide(&LeaseView::default(), &ask("a", 0), at(0)), TAKEN);
        assert_eq!(decide(&held_by("a", 0, 0), &ask("a", 10), at(10)), RENEWED);
    }

    #[test]
    fn a_live_lease_is_never_given_to_another_pod_only_an_expired_one() {
        let lease = held_by("a", 0, 0);
        let expiry = i64::from(LEASE_DURATION_SECONDS);
        assert_eq!(
            decide(&lease, &ask("b", expiry - 1), at(expiry - 1)),
            refused(Some("a"), false)
        );
        assert_eq!(decide(&lease, &ask("b", expiry), at(expiry)), TAKEN);
        // The old holder, back after its grant ran out, takes it again only if still free.
        assert_eq!(decide(&lease, &ask("a", expiry + 5), at(expiry + 5)), TAKEN);
    }

    #[test]
    fn a_replayed_request_of_the_holder_renews_nothing() {
        let lease = held_by("a", 10, 10);
        assert_eq!(decide(&lease, &ask("a", 10), at(12)), Decision::Replay);
        assert_eq!(decide(&lease, &ask("a", 9), at(12)), Decision::Replay);
    }

    #[test]
    fn a_release_frees_the_lease_only_when_its_holder_asks() {
        let lease = held_by("a", 0, 0);
        let release = |pod| Ask {
            action: LeaseAction::Release,
            ..ask(pod, 5)
        };
        assert_eq!(decide(&lease, &release("a"), at(5)), Decision::Released);
        assert_eq!(
            decide(&lease, &release("b"), at(5)),
            Decision::Unchanged {
                holder: Some("a".into())
            }
        );
    }

    #[test]
    fn a_preferred_pod_waits_for_the_holder_to_yield_then_takes_the_lease_first() {
        let preferred = Ask {
            preferred: true,
            ..ask("p", 5)
        };
        let mut lease = held_by("a", 0, 0);
        // It is noted, never given a live lease.
        assert_eq!(decide(&lease, &preferred, at(5)), refused(Some("a"), true));
        lease.candidate = Some(("p".into(), at(5)));
        // The holder does not renew while the candidate waits...
        assert_eq!(
            decide(&lease, &ask("a", 10), at(10)),
            refused(Some("p"), false)
        );
        // ...nor does another Pod take the lease when it runs out...
        let expiry = i64::from(LEASE_DURATION_SECONDS);
        assert_eq!(
            decide(&lease, &ask("b", expiry), at(expiry)),
            refused(None, false)
        );
        // ...the candidate does.
        let later = Ask {
            sent_at: at(expiry),
            ..preferred
        };
        assert_eq!(decide(&lease, &later, at(expiry)), TAKEN);
        // A candidate that stopped asking is forgotten after one lease duration.
        let forgotten = 5 + expiry;
        assert_eq!(decide(&lease, &ask("b", forgotten), at(forgotten)), TAKEN);
    }

    #[test]
    fn a_grant_writes_the_holder_and_its_request_time_and_clears_its_candidacy() {
        let mut lease = Lease::default();
        lease.metadata.annotations = Some(
            [
                (CANDIDATE_ANNOTATION.to_string(), "p".to_string()),
                (CANDIDATE_AT_ANNOTATION.to_string(), at(0).to_string()),
            ]
            .into(),
        );
        let preferred = Ask {
            preferred: true,
            ..ask("p", 3)
        };
        assert!(apply(&mut lease, &TAKEN, &preferred, at(4)));
        let view = LeaseView::of(&lease);
        let holder = view.holder.expect("held");
        assert_eq!((holder.pod.as_str(), holder.renewed), ("p", at(4)));
        assert_eq!(holder.last_sent_at, Some(at(3)));
        assert_eq!(view.candidate, None);
        assert_eq!(lease.spec.and_then(|s| s.lease_transitions), Some(1));
    }

    #[test]
    fn each_resource_and_remote_path_has_its_own_short_lease_name() {
        let name = lease_name("shop", "data", "remote:bucket/web-0");
        assert!(
            name.len() <= 63 && name.starts_with("vsc-writer-"),
            "{name}"
        );
        assert_ne!(name, lease_name("shop", "data", "remote:bucket/web-1"));
        assert_ne!(name, lease_name("shop", "other", "remote:bucket/web-0"));
        assert_eq!(name, lease_name("shop", "data", "remote:bucket/web-0"));
    }

    #[test]
    fn a_body_that_is_not_a_lease_request_is_refused_saying_what_is_wrong() {
        let refused = |body: &str| parse(body.as_bytes()).expect_err("refused");
        let (code, text) = refused(
            r#"{"resource":"a/b","pod":"p","remotePath":"r:b","action":"steal","sentAt":"x"}"#,
        );
        assert_eq!(code, StatusCode::BAD_REQUEST);
        assert!(text.contains("steal") && text.contains("acquire"), "{text}");
        let (_, text) = refused(
            r#"{"resource":"a/b","pod":"","remotePath":"r:b","action":"acquire","sentAt":"x"}"#,
        );
        assert!(text.contains("pod"), "{text}");
        let (_, text) = refused(
            r#"{"resource":"a/b","pod":"p","remotePath":"","action":"acquire","sentAt":"x"}"#,
        );
        assert!(text.contains("remotePath"), "{text}");
    }
}
