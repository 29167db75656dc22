//! `kubectl pfss sync-now` for sidecars without a writer lease (`syncOptions.writers:
//! every`): they ask the operator every [`ASK_EVERY_SECONDS`] for the resource's
//! `riotkit.org/sync-requested-at`, with the Pod's report token, and run one upload when it is
//! newer than their last. (`writers: one` sidecars read it from their writer-lease answers.)

use serde::{Deserialize, Serialize};

use crate::report::parse_sent_at;
use chrono::{DateTime, Utc};

/// The path of the operator's endpoint on its admin port (next to `/report`).
pub const SYNC_REQUESTS_PATH: &str = "/sync-requests";
/// How often a sidecar asks: as often as a writer-lease holder renews, so `sync-now` takes
/// about as long with either setting.
pub const ASK_EVERY_SECONDS: u32 = crate::writer_lease::RENEW_EVERY_SECONDS;

/// A sidecar's question, POSTed with the Pod's report token (the same audience as reports).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequestsQuery {
    /// `namespace/name` of the PodFilesystemSync.
    pub resource: String,
    /// The asking Pod's name.
    pub pod: String,
}

/// The operator's answer (HTTP 200).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncRequestsAnswer {
    /// The resource's `riotkit.org/sync-requested-at` (RFC 3339, microseconds), when it is
    /// set and valid.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync_requested_at: Option<String>,
}

impl SyncRequestsAnswer {
    /// `sync_requested_at` as a time, if it is RFC 3339.
    pub fn sync_requested(&self) -> Option<DateTime<Utc>> {
        self.sync_requested_at.as_deref().and_then(parse_sent_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_and_answer_use_the_names_both_sides_read() {
        let query = SyncRequestsQuery {
            resource: "shop/data".into(),
            pod: "web-0".into(),
        };
        let json = serde_json::to_value(&query).expect("serialise");
        assert_eq!(
            json,
            serde_json::json!({"resource": "shop/data", "pod": "web-0"})
        );
        let none: SyncRequestsAnswer = serde_json::from_str("{}").expect("parse");
        assert_eq!(none.sync_requested(), None);
        let asked: SyncRequestsAnswer =
            serde_json::from_str(r#"{"syncRequestedAt":"2026-11-24T18:00:00.000000Z"}"#)
                .expect("parse");
        assert_eq!(
            asked.sync_requested().map(|t| t.to_rfc3339()),
            Some("2026-11-24T18:00:00+00:00".into())
        );
    }
}
