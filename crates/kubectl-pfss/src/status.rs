//! `kubectl pfss status`: what the reports in each resource's status say, per Pod, with the
//! next sync worked out from the schedule.

use std::collections::BTreeSet;
use std::io::Write;

use chrono::{DateTime, Local, Utc};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;
use kube::ResourceExt as _;
use serde::Serialize;
use vsc_types::crd::{
    CONDITION_READY, CONDITION_SYNC_REQUESTED, CONDITION_SYNCED, PodFilesystemSync, PodSyncStatus,
    SyncMethod, Writers,
};
use vsc_types::schedule::Schedule;

use crate::table::Table;
use crate::times::{self, relative, rfc3339};

/// One resource as `status` shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceView {
    pub namespace: String,
    pub name: String,
    pub ready: String,
    pub synced: String,
    /// The `Synced` condition's message (why it is not True).
    pub synced_message: String,
    /// The `SyncRequested` condition's message, while the annotation is set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sync_requested: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_sync_time: Option<DateTime<Utc>>,
    pub schedule: String,
    pub pods: Vec<PodView>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodView {
    pub name: String,
    /// The primary writer of its remote path (`syncOptions.writers: one`).
    pub primary: bool,
    /// Of its last report: `to-remote` or `to-local`.
    pub direction: String,
    pub last_report_time: DateTime<Utc>,
    pub last_sync_succeeded: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_success_time: Option<DateTime<Utc>>,
    pub consecutive_failures: u32,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub last_error: String,
    pub next_sync: NextSync,
}

/// When the Pod's sidecar syncs next, as far as the spec and the status tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase", tag = "kind", content = "at")]
pub enum NextSync {
    At(DateTime<Utc>),
    /// A `@every` interval has passed since its last report: any moment.
    Due,
    /// A sync request newer than its last report waits for its next lease answer (10 s).
    Requested,
    /// Another Pod is the primary writer: this one holds its uploads.
    Held,
    /// Only on file changes (`fsnotify` without a schedule).
    OnChange,
    /// The schedule does not parse (the resource is not Ready).
    InvalidSchedule,
}

impl NextSync {
    fn text(&self, now: DateTime<Utc>) -> String {
        match self {
            NextSync::At(at) => relative(*at, now),
            NextSync::Due => "due".into(),
            NextSync::Requested => "requested".into(),
            NextSync::Held => "held (not primary)".into(),
            NextSync::OnChange => "on change".into(),
            NextSync::InvalidSchedule => "invalid schedule".into(),
        }
    }
}

fn condition<'a>(pfss: &'a PodFilesystemSync, type_: &str) -> Option<&'a Condition> {
    pfss.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
}

/// What `status` shows of `pfss` at `now`.
pub fn view(pfss: &PodFilesystemSync, now: DateTime<Utc>) -> ResourceView {
    let status = pfss.status.clone().unwrap_or_default();
    let word = |type_| condition(pfss, type_).map_or("Unknown".to_string(), |c| c.status.clone());
    let primaries: BTreeSet<&str> = status.primaries.iter().map(|p| p.pod.as_str()).collect();
    let requested = condition(pfss, CONDITION_SYNC_REQUESTED)
        .filter(|c| c.status == "True")
        .and(
            pfss.annotations()
                .get(vsc_types::contract::SYNC_REQUESTED_AT_ANNOTATION),
        )
        .and_then(|value| vsc_types::contract::parse_sync_requested_at(value).ok());
    let next = |pod: &PodSyncStatus| {
        let one_writer = pfss.spec.sync_options.writers == Writers::One && !primaries.is_empty();
        if one_writer && !primaries.contains(pod.name.as_str()) {
            NextSync::Held
        } else if requested.is_some_and(|at| at > times::of(&pod.last_report_time)) {
            NextSync::Requested
        } else {
            next_sync(pfss, pod, now)
        }
    };
    let pods = status
        .pods
        .iter()
        .map(|pod| PodView {
            name: pod.name.clone(),
            primary: primaries.contains(pod.name.as_str()),
            direction: pod.direction.clone(),
            last_report_time: times::of(&pod.last_report_time),
            last_sync_succeeded: pod.consecutive_failures == 0,
            last_success_time: pod.last_success_time.as_ref().map(times::of),
            consecutive_failures: pod.consecutive_failures,
            last_error: pod.last_error.clone(),
            next_sync: next(pod),
        })
        .collect();
    ResourceView {
        namespace: pfss.namespace().unwrap_or_default(),
        name: pfss.name_any(),
        ready: word(CONDITION_READY),
        synced: word(CONDITION_SYNCED),
        synced_message: condition(pfss, CONDITION_SYNCED)
            .map_or(String::new(), |c| c.message.clone()),
        sync_requested: condition(pfss, CONDITION_SYNC_REQUESTED).map(|c| c.message.clone()),
        last_sync_time: status.last_sync_time.as_ref().map(times::of),
        schedule: pfss.spec.sync_options.schedule.clone(),
        pods,
    }
}

/// The next scheduled sync of `pod`: `@every` counts from its last report (the agent waits
/// the interval after each sync), cron from now.
fn next_sync(pfss: &PodFilesystemSync, pod: &PodSyncStatus, now: DateTime<Utc>) -> NextSync {
    let options = &pfss.spec.sync_options;
    if options.schedule.trim().is_empty() {
        return match options.method {
            SyncMethod::Fsnotify => NextSync::OnChange,
            SyncMethod::Scheduler => NextSync::InvalidSchedule,
        };
    }
    match options.schedule.parse::<Schedule>() {
        Ok(Schedule::Every(interval)) => {
            let at = times::of(&pod.last_report_time)
                + chrono::Duration::from_std(interval).unwrap_or_default();
            if at <= now {
                NextSync::Due
            } else {
                NextSync::At(at)
            }
        }
        Ok(schedule) => schedule
            .delay_after(now.with_timezone(&Local))
            .and_then(|delay| chrono::Duration::from_std(delay).ok())
            .map_or(NextSync::InvalidSchedule, |delay| NextSync::At(now + delay)),
        Err(_) => NextSync::InvalidSchedule,
    }
}

/// The table: one header line per resource, then its Pods.
pub fn write_table(
    out: &mut impl Write,
    views: &[ResourceView],
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    if views.is_empty() {
        return writeln!(out, "No PodFilesystemSyncs found.");
    }
    for (index, view) in views.iter().enumerate() {
        if index > 0 {
            writeln!(out)?;
        }
        write_resource(out, view, now)?;
    }
    Ok(())
}

fn write_resource(
    out: &mut impl Write,
    view: &ResourceView,
    now: DateTime<Utc>,
) -> std::io::Result<()> {
    let last_sync = view.last_sync_time.map_or("never".to_string(), |t| {
        format!("{} ({})", rfc3339(t), relative(t, now))
    });
    writeln!(
        out,
        "{}/{}  Ready={}  Synced={}  last sync: {last_sync}  schedule: {}",
        view.namespace,
        view.name,
        view.ready,
        view.synced,
        if view.schedule.is_empty() {
            "none"
        } else {
            &view.schedule
        },
    )?;
    if view.synced != "True" && !view.synced_message.is_empty() {
        writeln!(out, "  {}", view.synced_message)?;
    }
    if let Some(request) = &view.sync_requested {
        writeln!(out, "  sync-now: {request}")?;
    }
    if view.pods.is_empty() {
        return writeln!(out, "  no Pod has reported yet");
    }
    let mut table = Table::new(&[
        "POD",
        "PRIMARY",
        "LAST REPORT",
        "DIRECTION",
        "RESULT",
        "LAST SUCCESS",
        "NEXT SYNC",
        "LAST ERROR",
    ]);
    for pod in &view.pods {
        table.row(vec![
            pod.name.clone(),
            if pod.primary { "yes" } else { "" }.into(),
            relative(pod.last_report_time, now),
            pod.direction.clone(),
            if pod.last_sync_succeeded {
                "ok".into()
            } else {
                format!("failed x{}", pod.consecutive_failures)
            },
            pod.last_success_time
                .map_or("never".into(), |t| relative(t, now)),
            pod.next_sync.text(now),
            pod.last_error.replace('\n', " "),
        ]);
    }
    table.write(out, "  ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(schedule: &str, status: serde_json::Value) -> PodFilesystemSync {
        serde_json::from_value(json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": "data", "namespace": "web",
                "annotations": {"riotkit.org/sync-requested-at": "2027-01-15T08:00:30Z"}},
            "spec": {"podSelector": {"matchLabels": {"app": "web"}}, "localPath": "/srv",
                "remotePath": "/b", "syncOptions": {"schedule": schedule}},
            "status": status,
        }))
        .expect("resource")
    }

    fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_060, 0).expect("time")
    }

    fn pod(name: &str, reported: &str, failures: u32) -> serde_json::Value {
        json!({"name": name, "direction": "to-remote", "lastReportTime": reported,
            "consecutiveFailures": failures, "lastError": if failures > 0 { "S3 down" } else { "" }})
    }

    #[test]
    fn each_pod_shows_its_last_sync_primary_error_and_next_sync() {
        let pfss = resource(
            "@every 5m",
            json!({
                "conditions": [
                    {"type": "Synced", "status": "Unknown", "reason": "Retrying", "message": "web-1 failed",
                     "lastTransitionTime": "2027-01-15T08:00:00Z"},
                    {"type": "SyncRequested", "status": "True", "reason": "Requested", "message": "a sync requested",
                     "lastTransitionTime": "2027-01-15T08:00:30Z"}],
                "pods": [pod("web-0", "2027-01-15T08:00:00Z", 0), pod("web-1", "2027-01-15T08:00:45Z", 2),
                         pod("web-2", "2027-01-15T07:00:00Z", 0)],
                "primaries": [{"remotePath": "remote:b", "pod": "web-0", "since": "2027-01-15T07:00:00Z"},
                              {"remotePath": "remote:c", "pod": "web-1", "since": "2027-01-15T07:00:00Z"}],
            }),
        );
        let view = view(&pfss, now());
        let next: Vec<_> = view.pods.iter().map(|p| p.next_sync.clone()).collect();
        let five_minutes_after = |at: &str| {
            NextSync::At(at.parse::<DateTime<Utc>>().expect("time") + chrono::Duration::minutes(5))
        };
        assert_eq!(
            next,
            [
                NextSync::Requested,
                five_minutes_after("2027-01-15T08:00:45Z"),
                NextSync::Held
            ]
        );
        let mut out = Vec::new();
        write_table(&mut out, &[view], now()).expect("write");
        let text = String::from_utf8(out).expect("utf-8");
        assert!(text.starts_with("web/data  Ready=Unknown  Synced=Unknown  last sync: never  schedule: @every 5m\n  web-1 failed\n  sync-now: a sync requested\n"), "{text}");
        assert!(text.contains("web-1  yes      15s ago      to-remote  failed x2  never         in 4m               S3 down"), "{text}");
        assert!(text.contains("web-2           61m ago      to-remote  ok         never         held (not primary)\n"), "{text}");
    }

    #[test]
    fn a_cron_schedule_counts_from_now_and_fsnotify_alone_waits_for_changes() {
        let status = json!({"pods": [pod("web-0", "2027-01-15T08:00:00Z", 0)]});
        let cron = view(&resource("0 */10 * * * *", status.clone()), now());
        assert_eq!(
            cron.pods[0].next_sync,
            NextSync::At("2027-01-15T08:10:00Z".parse().expect("time"))
        );
        let mut fsnotify = resource("", status);
        fsnotify.spec.sync_options.method = SyncMethod::Fsnotify;
        fsnotify.metadata.annotations = None;
        assert_eq!(view(&fsnotify, now()).pods[0].next_sync, NextSync::OnChange);
    }
}
