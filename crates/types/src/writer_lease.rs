//! One writer per remote path: the sidecars of Pods that share a resolved remotePath ask the
//! operator for its writer lease (a `coordination.k8s.io` Lease the operator keeps for them)
//! and upload only while they hold it. One request type and one answer, serialised by the
//! agent and parsed by the operator.
//!
//! Timing: a grant lasts [`LEASE_DURATION_SECONDS`] on the operator's clock, counted from
//! when the agent sent its request (or when the operator received it, if that is earlier). The
//! agent renews every [`RENEW_EVERY_SECONDS`] and stops uploading (killing rclone mid-upload)
//! [`STOP_MARGIN_SECONDS`] before the grant could expire, counted on its own monotonic clock
//! from before it sent the request. So the old primary has stopped before any other Pod can
//! be granted the lease, as long as the operators' clocks disagree by less than the margin.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::report::{parse_sent_at, sent_at_text};

/// How long a grant lasts without renewal.
pub const LEASE_DURATION_SECONDS: u32 = 30;
/// How often a sidecar asks (a holder renews; the others check whether the lease is free).
pub const RENEW_EVERY_SECONDS: u32 = 10;
/// The holder stops uploading this long before its grant could expire.
pub const STOP_MARGIN_SECONDS: u32 = 10;
/// The path of the operator's writer-lease endpoint on its admin port (next to `/report`).
pub const LEASE_PATH: &str = "/writer-lease";

/// What a sidecar asks for.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum LeaseAction {
    /// Take the lease if it is free, or renew it if this Pod holds it.
    Acquire,
    /// Give it up (the final sync is done): another Pod may take it at once.
    Release,
}

/// A sidecar's request, POSTed with the Pod's report token (the same audience as reports).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LeaseRequest {
    /// `namespace/name` of the PodFilesystemSync.
    pub resource: String,
    /// The asking Pod's name.
    pub pod: String,
    /// The resolved remote path the Pod uploads to (its `--dst`).
    pub remote_path: String,
    pub action: LeaseAction,
    /// The Pod carries the prefer-primary annotation: it is granted a free lease before Pods
    /// without it, and a holder without it yields to it.
    #[serde(default)]
    pub preferred: bool,
    /// When the agent sent it (RFC 3339, microseconds): the grant counts from then, and a
    /// request not newer than the holder's last one is a replay.
    pub sent_at: String,
}

impl LeaseRequest {
    /// `sent_at` for a request sent at `time`.
    pub fn timestamp(time: DateTime<Utc>) -> String {
        sent_at_text(time)
    }

    /// `sent_at` as a time, if it is RFC 3339.
    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        parse_sent_at(&self.sent_at)
    }
}

/// The operator's answer (HTTP 200; any other status grants nothing).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct LeaseAnswer {
    /// Whether the asking Pod holds the lease now.
    pub granted: bool,
    /// Who holds it (the asking Pod when granted); none when it is free.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub holder: Option<String>,
    /// How long the grant lasts from the request's `sentAt`.
    pub lease_duration_seconds: u32,
    /// The resource's `riotkit.org/sync-requested-at` (RFC 3339), when it is set and valid: a
    /// sidecar whose last upload started before it runs one (the holder uploads; the others
    /// hold as for any upload). Absent from older operators.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_requested_at: Option<String>,
}

impl LeaseAnswer {
    /// `sync_requested_at` as a time, if it is RFC 3339.
    pub fn sync_requested(&self) -> Option<DateTime<Utc>> {
        self.sync_requested_at.as_deref().and_then(parse_sent_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_round_trips_with_the_names_the_operator_reads() {
        let request = LeaseRequest {
            resource: "shop/data".into(),
            pod: "web-0".into(),
            remote_path: "remote:bucket/web".into(),
            action: LeaseAction::Acquire,
            preferred: true,
            sent_at: LeaseRequest::timestamp(Utc::now()),
        };
        let json = serde_json::to_value(&request).expect("serialise");
        assert_eq!(json["action"], "acquire");
        assert_eq!(json["remotePath"], "remote:bucket/web");
        let parsed: LeaseRequest = serde_json::from_value(json).expect("parse");
        assert_eq!(parsed, request);
        assert!(parsed.sent_at().is_some());
    }

    #[test]
    fn an_answer_of_an_older_operator_requests_no_sync() {
        let answer: LeaseAnswer =
            serde_json::from_str(r#"{"granted":true,"holder":"web-0","leaseDurationSeconds":30}"#)
                .expect("parse");
        assert_eq!(answer.sync_requested(), None);
        let asked = LeaseAnswer {
            sync_requested_at: Some("2026-11-24T18:00:00Z".into()),
            ..answer
        };
        let json = serde_json::to_value(&asked).expect("serialise");
        assert_eq!(json["syncRequestedAt"], "2026-11-24T18:00:00Z");
        assert!(asked.sync_requested().is_some());
    }

    #[test]
    fn the_holder_stops_before_its_grant_can_expire_and_renews_in_time() {
        const {
            assert!(STOP_MARGIN_SECONDS < LEASE_DURATION_SECONDS);
            // At least one renewal fits before the holder stops.
            assert!(RENEW_EVERY_SECONDS < LEASE_DURATION_SECONDS - STOP_MARGIN_SECONDS);
        }
    }
}
