//! `status.pods` and the `Synced` condition: what the Pods' sync reports say about the data.
//!
//! Written by the report endpoint (on each report) and by the reconciler (when time alone
//! changes the verdict: no success for three schedule periods, or no report yet). Both write
//! as one server-side-apply field manager that owns only `pods`, `lastReport`,
//! `lastSyncTime` and the `Synced` entry of `conditions` (a list keyed by type), so the
//! reconciler's `Ready` is never overwritten. Each write carries the resourceVersion it was
//! computed from: a report that raced another is computed again, not lost.

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, MicroTime, Time};
use k8s_openapi::jiff::Timestamp;
use kube::ResourceExt as _;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use vsc_types::crd::{
    CONDITION_SYNCED, DEFAULT_FAILING_AFTER, MAX_REPORTED_PODS, PodFilesystemSync,
    PodFilesystemSyncSpec, PodFilesystemSyncStatus, PodSyncStatus, REASON_NO_RECENT_SUCCESS,
    REASON_NO_REPORTS, REASON_RETRYING, REASON_SYNC_FAILING, REASON_SYNCED, SyncReportStatus,
};
use vsc_types::schedule::Schedule;

/// The server-side-apply field manager of the fields this module writes.
pub const FIELD_MANAGER: &str = "volume-syncing-controller-sync-status";
/// No successful sync for this many schedule periods: `Synced=False`, `NoRecentSuccess`.
pub const STALE_AFTER_PERIODS: u32 = 3;
/// Longest error message kept per Pod (and in `lastReport`).
const MESSAGE_LIMIT: usize = 1024;
/// Tries of a read-compute-write that lost a race with another writer (reports of many
/// Pods of one resource can come at once, and to any replica).
const WRITE_TRIES: u64 = 10;

/// One sync result, as an agent reports it.
#[derive(Debug, Clone)]
pub struct Report {
    pub pod: String,
    pub direction: String,
    pub success: bool,
    pub message: String,
    /// When the agent sent it, in microseconds since the Unix epoch.
    pub sent_at: i64,
}

/// What became of a write.
#[derive(Debug, Clone)]
pub enum Recorded {
    Written(Box<Written>),
    /// The report is not newer than the Pod's last one (a replay): nothing was written.
    NotNewer,
    /// The resource does not exist.
    NoResource,
}

/// A change in a Pod's failure streak that deserves an Event (once per streak).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Streak {
    /// The Pod's failures in a row reached the threshold.
    Failing {
        pod: String,
        failures: u32,
        error: String,
    },
    /// The Pod synced again after a streak that had reached the threshold.
    Recovered { pod: String, failures: u32 },
}

/// The `Synced` condition's content, before it is stamped with times.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncedVerdict {
    pub status: &'static str,
    pub reason: &'static str,
    pub message: String,
    /// When the verdict changes if nothing is reported before then (`NoRecentSuccess`, or
    /// a Pod falls silent).
    pub stale_at: Option<Timestamp>,
}

/// Failures in a row that make a Pod's syncs "failing".
pub fn failing_after(spec: &PodFilesystemSyncSpec) -> u32 {
    match spec.health_check.unhealthy_after_failures {
        0 => DEFAULT_FAILING_AFTER,
        n => n,
    }
}

/// The schedule's period, when the sidecar syncs on one (none without a sidecar, or with
/// `fsnotify` and no schedule: then no sync for a while is no sign of trouble).
pub fn schedule_period(spec: &PodFilesystemSyncSpec) -> Option<Duration> {
    let options = &spec.sync_options;
    if !options.allowed_directions.to_remote || options.schedule.trim().is_empty() {
        return None;
    }
    let schedule: Schedule = options.schedule.trim().parse().ok()?;
    schedule.period_after(chrono::Local::now())
}

fn truncate(text: &str) -> String {
    text.chars().take(MESSAGE_LIMIT).collect()
}

/// `pods` with `report` folded in (by name; at most [`MAX_REPORTED_PODS`], the Pod that
/// reported least recently dropped first), and the streak change it makes, if any; None
/// when the Pod already reported something sent at or after this report.
pub fn record(
    pods: &[PodSyncStatus],
    report: &Report,
    now: Timestamp,
    failing_after: u32,
) -> Option<(Vec<PodSyncStatus>, Option<Streak>)> {
    let sent_at = Timestamp::from_microsecond(report.sent_at).ok()?;
    let earlier = pods
        .iter()
        .find(|p| p.name == report.pod)
        .and_then(|p| p.last_report_sent_at.as_ref());
    if earlier.is_some_and(|earlier| earlier.0 >= sent_at) {
        return None;
    }
    let mut pods = pods.to_vec();
    let index = if let Some(index) = pods.iter().position(|p| p.name == report.pod) {
        index
    } else {
        while pods.len() >= MAX_REPORTED_PODS {
            let oldest = pods
                .iter()
                .enumerate()
                .min_by_key(|(_, p)| p.last_report_time.0)
                .map_or(0, |(i, _)| i);
            pods.remove(oldest);
        }
        pods.push(PodSyncStatus {
            name: report.pod.clone(),
            direction: report.direction.clone(),
            last_report_time: Time(now),
            last_report_sent_at: None,
            last_success_time: None,
            consecutive_failures: 0,
            last_failure_time: None,
            last_error: String::new(),
        });
        pods.len() - 1
    };
    let pod = &mut pods[index];
    let before = pod.consecutive_failures;
    pod.direction.clone_from(&report.direction);
    pod.last_report_time = Time(now);
    pod.last_report_sent_at = Some(MicroTime(sent_at));
    let streak = if report.success {
        pod.last_success_time = Some(Time(now));
        pod.consecutive_failures = 0;
        (before >= failing_after).then(|| Streak::Recovered {
            pod: report.pod.clone(),
            failures: before,
        })
    } else {
        pod.consecutive_failures = before.saturating_add(1);
        pod.last_failure_time = Some(Time(now));
        pod.last_error = truncate(&report.message);
        (before < failing_after && pod.consecutive_failures >= failing_after).then(|| {
            Streak::Failing {
                pod: report.pod.clone(),
                failures: pod.consecutive_failures,
                error: pod.last_error.clone(),
            }
        })
    };
    pods.sort_by(|a, b| a.name.cmp(&b.name));
    Some((pods, streak))
}

fn plural(n: u32) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// What the Pods' reports say: failing beats stale beats retrying beats synced. With a
/// schedule, a Pod not heard from for three periods is "silent" (deleted, most likely: the
/// operator does not read Pods): it no longer counts as failing or retrying, and the
/// message names it.
pub fn judge(
    pods: &[PodSyncStatus],
    failing_after: u32,
    period: Option<Duration>,
    now: Timestamp,
) -> SyncedVerdict {
    if pods.is_empty() {
        return SyncedVerdict {
            status: "Unknown",
            reason: REASON_NO_REPORTS,
            message: "no Pod has reported a sync yet".into(),
            stale_at: None,
        };
    }
    let window = period
        .and_then(|p| k8s_openapi::jiff::SignedDuration::try_from(p * STALE_AFTER_PERIODS).ok());
    let after_window = |time: &Time| window.and_then(|w| time.0.checked_add(w).ok());
    let mut by_recency: Vec<&PodSyncStatus> = pods.iter().collect();
    by_recency.sort_by_key(|p| std::cmp::Reverse(p.last_report_time.0));
    let (heard, silent): (Vec<&PodSyncStatus>, Vec<&PodSyncStatus>) = by_recency
        .iter()
        .partition(|p| after_window(&p.last_report_time).is_none_or(|end| now < end));
    // The next time the verdict can change without a report: a Pod goes silent, or the
    // last success gets too old.
    let next_silence = heard
        .iter()
        .filter_map(|p| after_window(&p.last_report_time))
        .min();
    let failing: Vec<&PodSyncStatus> = heard
        .iter()
        .copied()
        .filter(|p| p.consecutive_failures >= failing_after)
        .collect();
    if let Some(verdict) = failing_verdict(&failing, next_silence) {
        return verdict;
    }
    let last_success = pods
        .iter()
        .filter_map(|p| p.last_success_time.as_ref())
        .max();
    let stale_at = after_window(last_success.unwrap_or(&by_recency[0].last_report_time));
    if let Some(stale_at) = stale_at
        && now >= stale_at
    {
        return no_recent_success_verdict(last_success);
    }
    let recheck = [stale_at, next_silence].into_iter().flatten().min();
    let silent_note = silent_note(&silent);
    if let Some(retrying) = heard.iter().find(|p| p.consecutive_failures > 0) {
        return retrying_verdict(retrying, failing_after, &silent_note, recheck);
    }
    let count = u32::try_from(heard.len()).unwrap_or(u32::MAX);
    synced_verdict(count, &silent_note, recheck)
}

/// `Synced=False` for the Pods failing `failingAfter` syncs in a row (the most recent
/// reporter first, the others named); None when none is.
fn failing_verdict(
    failing: &[&PodSyncStatus],
    next_silence: Option<Timestamp>,
) -> Option<SyncedVerdict> {
    let (first, others) = failing.split_first()?;
    let mut message = format!(
        "Pod {}: the last {} syncs ({}) failed: {}",
        first.name, first.consecutive_failures, first.direction, first.last_error
    );
    if !others.is_empty() {
        let others: Vec<&str> = others.iter().map(|p| p.name.as_str()).collect();
        message.push_str(&format!("; failing too: {}", others.join(", ")));
    }
    Some(SyncedVerdict {
        status: "False",
        reason: REASON_SYNC_FAILING,
        message,
        stale_at: next_silence,
    })
}

/// `Synced=False` when no success came for [`STALE_AFTER_PERIODS`] schedule periods.
fn no_recent_success_verdict(last_success: Option<&Time>) -> SyncedVerdict {
    let periods = format!("{STALE_AFTER_PERIODS} schedule periods");
    let message = match last_success {
        Some(time) => format!(
            "no Pod reported a successful sync for {periods}; the last was at {}",
            time.0
        ),
        None => {
            format!("no Pod reported a successful sync, and none reported anything for {periods}")
        }
    };
    SyncedVerdict {
        status: "False",
        reason: REASON_NO_RECENT_SUCCESS,
        message,
        stale_at: None,
    }
}

/// The end of a message naming the silent Pods; empty when none is.
fn silent_note(silent: &[&PodSyncStatus]) -> String {
    if silent.is_empty() {
        return String::new();
    }
    let names: Vec<&str> = silent.iter().map(|p| p.name.as_str()).collect();
    format!(
        "; not heard from for {STALE_AFTER_PERIODS} schedule periods (gone?): {}",
        names.join(", ")
    )
}

/// `Synced=Unknown` while a Pod fails, but fewer than `failing_after` times in a row.
fn retrying_verdict(
    retrying: &PodSyncStatus,
    failing_after: u32,
    silent_note: &str,
    recheck: Option<Timestamp>,
) -> SyncedVerdict {
    let failures = retrying.consecutive_failures;
    SyncedVerdict {
        status: "Unknown",
        reason: REASON_RETRYING,
        message: format!(
            "Pod {}: the last {failures} sync{} ({}) failed ({failing_after} in a row make Synced=False): {}{silent_note}",
            retrying.name,
            plural(failures),
            retrying.direction,
            retrying.last_error
        ),
        stale_at: recheck,
    }
}

/// `Synced=True`: the last sync of each of the `count` Pods heard from succeeded.
fn synced_verdict(count: u32, silent_note: &str, recheck: Option<Timestamp>) -> SyncedVerdict {
    SyncedVerdict {
        status: "True",
        reason: REASON_SYNCED,
        message: format!(
            "the last sync of {} reporting Pod{} succeeded{silent_note}",
            if count == 1 {
                "the".to_string()
            } else {
                format!("all {count}")
            },
            plural(count)
        ),
        stale_at: recheck,
    }
}

/// `Synced=Unknown` message when the operator runs without reports.
pub const REPORTS_OFF: &str = "sync reports are off: the operator runs without --report-url (Helm: reports.enabled=true), so no Pod reports its syncs";

/// The verdict on `pods` under `spec`'s threshold and schedule.
pub fn verdict(
    spec: &PodFilesystemSyncSpec,
    pods: &[PodSyncStatus],
    reports_on: bool,
    now: Timestamp,
) -> SyncedVerdict {
    let mut verdict = judge(pods, failing_after(spec), schedule_period(spec), now);
    if !reports_on && pods.is_empty() {
        verdict.message = REPORTS_OFF.to_string();
    }
    verdict
}

/// The condition for `verdict`; the transition time moves only when the status changes.
pub fn condition(
    previous: Option<&Condition>,
    verdict: &SyncedVerdict,
    now: Timestamp,
    generation: Option<i64>,
) -> Condition {
    let last_transition_time = match previous {
        Some(c) if c.status == verdict.status => c.last_transition_time.clone(),
        _ => Time(now),
    };
    Condition {
        type_: CONDITION_SYNCED.to_string(),
        status: verdict.status.to_string(),
        reason: verdict.reason.to_string(),
        message: verdict.message.clone(),
        observed_generation: generation,
        last_transition_time,
    }
}

/// The `Synced` condition `pfss` has now.
pub fn current_condition(pfss: &PodFilesystemSync) -> Option<&Condition> {
    pfss.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == CONDITION_SYNCED))
}

/// Whether `condition` already says what `verdict` says.
pub fn says(condition: Option<&Condition>, verdict: &SyncedVerdict) -> bool {
    condition.is_some_and(|c| {
        c.status == verdict.status && c.reason == verdict.reason && c.message == verdict.message
    })
}

/// What changed on the resource through one write.
#[derive(Debug, Clone)]
pub struct Written {
    /// The resource as read before the write (for Events about it).
    pub before: PodFilesystemSync,
    pub streak: Option<Streak>,
    pub verdict: SyncedVerdict,
    /// The `Synced` condition's reason before the write, if it had one.
    pub previous_reason: Option<String>,
}

/// Records `report` in the resource's status.
pub async fn record_report(
    api: &Api<PodFilesystemSync>,
    name: &str,
    report: &Report,
) -> Result<Recorded, kube::Error> {
    write(api, name, Some(report), true).await
}

/// Writes the `Synced` condition again when time alone changed it (or it is missing);
/// Ok(None) when the resource is gone.
pub async fn reevaluate(
    api: &Api<PodFilesystemSync>,
    name: &str,
    reports_on: bool,
) -> Result<Option<Written>, kube::Error> {
    Ok(match write(api, name, None, reports_on).await? {
        Recorded::Written(written) => Some(*written),
        Recorded::NotNewer | Recorded::NoResource => None,
    })
}

async fn write(
    api: &Api<PodFilesystemSync>,
    name: &str,
    report: Option<&Report>,
    reports_on: bool,
) -> Result<Recorded, kube::Error> {
    let mut tries: u64 = 0;
    loop {
        tries += 1;
        let current = match api.get_status(name).await {
            Ok(current) => current,
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Recorded::NoResource),
            Err(e) => return Err(e),
        };
        let now = Timestamp::now();
        let status = current.status.clone().unwrap_or_default();
        let threshold = failing_after(&current.spec);
        let Some(fields) = StatusFields::after(&status, report, now, threshold) else {
            return Ok(Recorded::NotNewer);
        };
        let verdict = verdict(&current.spec, &fields.pods, reports_on, now);
        let previous = current_condition(&current);
        let previous_reason = previous.map(|c| c.reason.clone());
        // A re-judgement that says what the condition says already writes nothing.
        if report.is_none() && says(previous, &verdict) {
            return Ok(written(previous_reason, current, None, verdict));
        }
        let condition = condition(previous, &verdict, now, current.metadata.generation);
        let patch = fields.patch(name, &current, condition);
        match api
            .patch_status(
                name,
                &PatchParams::apply(FIELD_MANAGER).force(),
                &Patch::Apply(patch),
            )
            .await
        {
            Ok(_) => return Ok(written(previous_reason, current, fields.streak, verdict)),
            Err(e) if crate::conflict::another_writer_won(&e) && tries < WRITE_TRIES => {
                tracing::debug!(
                    resource = name,
                    "the status changed meanwhile; computing again"
                );
            }
            Err(kube::Error::Api(e)) if e.code == 404 => return Ok(Recorded::NoResource),
            Err(e) => return Err(e),
        }
    }
}

/// What a write (or a re-judgement that needs none) answers.
fn written(
    previous_reason: Option<String>,
    before: PodFilesystemSync,
    streak: Option<Streak>,
    verdict: SyncedVerdict,
) -> Recorded {
    Recorded::Written(Box::new(Written {
        before,
        streak,
        verdict,
        previous_reason,
    }))
}

/// The status fields a write sets besides the condition, and the streak change they make.
struct StatusFields {
    pods: Vec<PodSyncStatus>,
    streak: Option<Streak>,
    last_report: Option<SyncReportStatus>,
    last_sync_time: Option<Time>,
}

impl StatusFields {
    /// `status` with `report` folded in (or as it is, without one); None when the report is
    /// not newer than what its Pod reported before.
    fn after(
        status: &PodFilesystemSyncStatus,
        report: Option<&Report>,
        now: Timestamp,
        threshold: u32,
    ) -> Option<Self> {
        let Some(report) = report else {
            return Some(Self {
                pods: status.pods.clone(),
                streak: None,
                last_report: status.last_report.clone(),
                last_sync_time: status.last_sync_time.clone(),
            });
        };
        let (pods, streak) = record(&status.pods, report, now, threshold)?;
        let last_report = SyncReportStatus {
            time: Time(now),
            pod: report.pod.clone(),
            direction: report.direction.clone(),
            success: report.success,
            message: truncate(&report.message),
        };
        // Only an upload is a sync of the remote.
        let last_sync_time = if report.success && report.direction == "to-remote" {
            Some(Time(now))
        } else {
            status.last_sync_time.clone()
        };
        Some(Self {
            pods,
            streak,
            last_report: Some(last_report),
            last_sync_time,
        })
    }

    /// The server-side apply patch of the status, at `current`'s resourceVersion (so that
    /// a write in between conflicts instead of being overwritten).
    fn patch(
        &self,
        name: &str,
        current: &PodFilesystemSync,
        condition: Condition,
    ) -> serde_json::Value {
        let mut fields = json!({"pods": self.pods, "conditions": [condition]});
        if let Some(last_report) = &self.last_report {
            fields["lastReport"] = json!(last_report);
        }
        if let Some(time) = &self.last_sync_time {
            fields["lastSyncTime"] = json!(time);
        }
        json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": name, "resourceVersion": current.resource_version()},
            "status": fields,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(second: i64) -> Timestamp {
        Timestamp::from_second(1_800_000_000 + second).expect("timestamp")
    }

    fn report(pod: &str, success: bool, message: &str) -> Report {
        Report {
            pod: pod.into(),
            direction: "to-remote".into(),
            success,
            message: message.into(),
            sent_at: 0,
        }
    }

    fn fold(reports: &[(i64, Report)], threshold: u32) -> (Vec<PodSyncStatus>, Vec<Streak>) {
        let mut pods = Vec::new();
        let mut streaks = Vec::new();
        for (time, r) in reports {
            // Each sent just before it is received.
            let sent = Report {
                sent_at: at(*time).as_microsecond() - 1,
                ..r.clone()
            };
            let (next, streak) = record(&pods, &sent, at(*time), threshold).expect("newer");
            pods = next;
            streaks.extend(streak);
        }
        (pods, streaks)
    }

    #[test]
    fn a_report_not_newer_than_the_pods_last_one_is_not_recorded() {
        let (pods, _) = fold(&[(10, report("web-0", true, ""))], 3);
        let sent_last = pods[0].last_report_sent_at.as_ref().expect("sent at").0;
        let replay = Report {
            sent_at: sent_last.as_microsecond(),
            ..report("web-0", false, "forged")
        };
        assert!(record(&pods, &replay, at(20), 3).is_none());
        let other_pod = Report {
            pod: "web-1".into(),
            ..replay.clone()
        };
        assert!(record(&pods, &other_pod, at(20), 3).is_some());
        let newer = Report {
            sent_at: replay.sent_at + 1,
            ..replay
        };
        assert!(record(&pods, &newer, at(20), 3).is_some());
    }

    #[test]
    fn a_failure_streak_is_announced_once_when_it_reaches_the_threshold_and_once_when_it_ends() {
        let reports: Vec<(i64, Report)> = (0..5)
            .map(|i| (i, report("web-0", false, "connection refused")))
            .chain([
                (6, report("web-0", true, "")),
                (7, report("web-0", true, "")),
            ])
            .collect();
        let (pods, streaks) = fold(&reports, 3);
        assert_eq!(
            streaks,
            vec![
                Streak::Failing {
                    pod: "web-0".into(),
                    failures: 3,
                    error: "connection refused".into()
                },
                Streak::Recovered {
                    pod: "web-0".into(),
                    failures: 5
                },
            ]
        );
        assert_eq!(pods[0].consecutive_failures, 0);
        assert_eq!(pods[0].last_error, "connection refused");
        assert_eq!(pods[0].last_success_time, Some(Time(at(7))));
    }

    #[test]
    fn at_most_twenty_pods_are_kept_and_the_one_that_reported_least_recently_goes_first() {
        let reports: Vec<(i64, Report)> = (0..25)
            .map(|i| (i, report(&format!("pod-{i:02}"), true, "")))
            .collect();
        let (pods, _) = fold(&reports, 3);
        assert_eq!(pods.len(), MAX_REPORTED_PODS);
        assert_eq!(pods[0].name, "pod-05");
        assert_eq!(pods[19].name, "pod-24");
    }

    #[test]
    fn synced_is_unknown_before_reports_true_after_successes_and_false_after_the_threshold() {
        assert_eq!(judge(&[], 3, None, at(0)).reason, REASON_NO_REPORTS);
        let (ok, _) = fold(&[(0, report("a", true, "")), (1, report("b", true, ""))], 3);
        let verdict = judge(&ok, 3, None, at(2));
        assert_eq!((verdict.status, verdict.reason), ("True", REASON_SYNCED));
        assert_eq!(
            verdict.message,
            "the last sync of all 2 reporting Pods succeeded"
        );
        let (once, _) = fold(
            &[(0, report("a", true, "")), (1, report("b", false, "boom"))],
            3,
        );
        let verdict = judge(&once, 3, None, at(2));
        assert_eq!(
            (verdict.status, verdict.reason),
            ("Unknown", REASON_RETRYING)
        );
        let failing: Vec<(i64, Report)> = (0..3).map(|i| (i, report("b", false, "boom"))).collect();
        let (pods, _) = fold(&failing, 3);
        let verdict = judge(&pods, 3, None, at(4));
        assert_eq!(
            (verdict.status, verdict.reason),
            ("False", REASON_SYNC_FAILING)
        );
        assert_eq!(
            verdict.message,
            "Pod b: the last 3 syncs (to-remote) failed: boom"
        );
    }

    #[test]
    fn no_success_for_three_periods_is_not_synced() {
        let (pods, _) = fold(&[(0, report("a", true, ""))], 3);
        let period = Some(Duration::from_secs(60));
        let fresh = judge(&pods, 3, period, at(179));
        assert_eq!(fresh.status, "True");
        assert_eq!(fresh.stale_at, Some(at(180)));
        let stale = judge(&pods, 3, period, at(180));
        assert_eq!(
            (stale.status, stale.reason),
            ("False", REASON_NO_RECENT_SUCCESS)
        );
        assert_eq!(judge(&pods, 3, None, at(100_000)).status, "True");
    }

    #[test]
    fn a_failing_pod_not_heard_from_for_three_periods_no_longer_makes_synced_false() {
        let reports: Vec<(i64, Report)> = (0..3)
            .map(|i| (i, report("old", false, "boom")))
            .chain((0..5).map(|i| (100 + i * 60, report("new", true, ""))))
            .collect();
        let (pods, _) = fold(&reports, 3);
        let period = Some(Duration::from_secs(60));
        let failing = judge(&pods, 3, period, at(179));
        assert_eq!(failing.reason, REASON_SYNC_FAILING);
        assert_eq!(failing.stale_at, Some(at(182)), "when old falls silent");
        let after = judge(&pods, 3, period, at(400));
        assert_eq!(
            (after.status, after.message.as_str()),
            (
                "True",
                "the last sync of the reporting Pod succeeded; not heard from for 3 schedule periods (gone?): old"
            )
        );
        assert!(
            judge(&pods, 3, None, at(400)).status == "False",
            "no schedule: no silence"
        );
    }
}
