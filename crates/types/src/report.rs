//! The sync report an agent POSTs to the operator after each sync: one type, serialised by
//! the agent and parsed by the operator, so a renamed field breaks the build, not the status.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

/// Which way a sync went: the sidecar uploads, the restore init container downloads.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncDirection {
    #[serde(rename = "to-remote")]
    ToRemote,
    #[serde(rename = "to-local")]
    ToLocal,
}

impl SyncDirection {
    /// The name used in reports, the status and the agent's status endpoint.
    pub fn as_str(self) -> &'static str {
        match self {
            SyncDirection::ToRemote => "to-remote",
            SyncDirection::ToLocal => "to-local",
        }
    }
}

impl std::fmt::Display for SyncDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an agent reports after a sync.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct SyncReport {
    /// `namespace/name` of the PodFilesystemSync.
    pub resource: String,
    /// The reporting Pod's name.
    pub pod: String,
    pub direction: SyncDirection,
    pub success: bool,
    /// The error of a failed sync.
    #[serde(default)]
    pub message: String,
    /// When the agent sent it (RFC 3339, microseconds): the operator refuses a report that
    /// is not newer than the Pod's last one, so a replayed request changes nothing.
    pub sent_at: String,
}

/// A `sentAt` for a request sent at `time` (reports and writer-lease requests).
pub fn sent_at_text(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// A `sentAt` as a time, if it is RFC 3339.
pub fn parse_sent_at(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

impl SyncReport {
    /// `sent_at` for a report sent at `time`.
    pub fn timestamp(time: DateTime<Utc>) -> String {
        sent_at_text(time)
    }

    /// `sent_at` as a time, if it is RFC 3339.
    pub fn sent_at(&self) -> Option<DateTime<Utc>> {
        parse_sent_at(&self.sent_at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_round_trips_with_the_names_the_operator_reads() {
        let sent = Utc::now();
        let report = SyncReport {
            resource: "shop/data".into(),
            pod: "shop-0".into(),
            direction: SyncDirection::ToRemote,
            success: false,
            message: "remote unreachable".into(),
            sent_at: SyncReport::timestamp(sent),
        };
        let json = serde_json::to_value(&report).expect("serialise");
        assert_eq!(json["direction"], "to-remote");
        assert!(json["sentAt"].as_str().is_some_and(|t| t.ends_with('Z')));
        let parsed: SyncReport = serde_json::from_value(json).expect("parse");
        assert_eq!(parsed, report);
        assert_eq!(
            parsed.sent_at().map(|t| t.timestamp_micros()),
            Some(sent.timestamp_micros())
        );
    }
}
