//! The chart's PrometheusRule and Grafana dashboard: off by default, the rules pass the real
//! `promtool check rules`, and every metric they use is one the code exports (read from the
//! metric definitions in the operator's and the agent's source), so a renamed metric fails here.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;

use serde_json::json;
use vsc_e2e::alerts::{dashboard, dashboard_exprs, rules, used_metrics};
use vsc_e2e::helm::{find, kind, render, repo_root, run};
use vsc_test_support::tool;

/// The string literals of Rust source, in order (enough for the metric definitions: no raw
/// strings or escaped quotes in the names).
fn string_literals(source: &str) -> Vec<String> {
    let mut literals = Vec::new();
    let mut rest = source;
    while let Some(start) = rest.find('"') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('"') else { break };
        literals.push(after[..end].to_string());
        rest = &after[end + 1..];
    }
    literals
}

fn read_source(path: &str) -> String {
    fs::read_to_string(repo_root().join(path)).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Every series name the operator and the agent export, from their metric definitions:
/// the operator's `registry.register` calls (prometheus_client adds `_total` to counters and
/// `_bucket`/`_sum`/`_count` to histograms) and its per-resource `GAUGES`, the agent's
/// `family(..)` calls in its status server.
fn exported_metrics() -> BTreeSet<String> {
    let mut names = BTreeSet::new();

    let operator = read_source("crates/operator/src/metrics.rs");
    let prefix = operator
        .split_once("Registry::with_prefix(\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(prefix, _)| prefix.to_string())
        .expect("the operator registry's prefix");
    for call in operator.split("registry.register(").skip(1) {
        let name = string_literals(call).into_iter().next().expect("a name");
        let variable = call
            .split_once(".clone()")
            .and_then(|(before, _)| {
                before
                    .rsplit(|c: char| c.is_whitespace() || c == ',')
                    .next()
            })
            .unwrap_or_else(|| panic!("the metric variable of {name}"));
        let definition = operator
            .split_once(&format!("let {variable} = "))
            .map_or_else(
                || panic!("the definition of {variable}"),
                |(_, rest)| rest.lines().next().unwrap_or_default(),
            );
        let full = format!("{prefix}_{name}");
        if definition.contains("Counter") {
            names.insert(format!("{full}_total"));
        } else if definition.contains("Histogram") {
            for suffix in ["bucket", "sum", "count"] {
                names.insert(format!("{full}_{suffix}"));
            }
        } else {
            names.insert(full);
        }
    }
    let resources = read_source("crates/operator/src/resource_metrics.rs");
    let gauges = resources
        .split_once("const GAUGES")
        .and_then(|(_, rest)| rest.split_once("];"))
        .map(|(block, _)| block)
        .expect("the GAUGES table");
    for entry in gauges.split("(\n").skip(1) {
        let name = string_literals(entry).into_iter().next().expect("a name");
        names.insert(format!("{prefix}_{name}"));
    }

    let agent = read_source("crates/agent/src/status_server.rs");
    let agent_prefix = agent
        .split_once("# TYPE ")
        .and_then(|(_, rest)| rest.split_once("{name}"))
        .map(|(prefix, _)| prefix.to_string())
        .expect("the agent's metric prefix");
    for call in agent.split("family(\n").skip(1) {
        let name = string_literals(call).into_iter().next().expect("a name");
        names.insert(format!("{agent_prefix}{name}"));
    }
    names
}

#[test]
fn default_values_render_no_alerts_and_no_dashboard() {
    let docs = render(&[]);
    assert!(!docs.iter().any(|d| kind(d) == "PrometheusRule"));
    assert!(!docs.iter().any(|d| kind(d) == "ConfigMap"));
}

#[test]
fn the_rendered_alert_rules_pass_promtool_check_rules() {
    let docs = render(&["alerts.enabled=true", "alerts.labels.release=prom"]);
    let rule = find(&docs, "PrometheusRule", None);
    assert_eq!(rule["metadata"]["labels"]["release"], "prom");
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("rules.yaml");
    // promtool reads the rule file format: the PrometheusRule's spec. JSON is YAML.
    fs::write(&file, json!({"groups": rule["spec"]["groups"]}).to_string()).expect("write");
    let promtool = tool("promtool");
    let output = run(&promtool, &["check", "rules", path_str(&file)], None);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "promtool check rules:\n{said}");
    let count = rules(&docs).len();
    assert!(
        said.contains(&format!("SUCCESS: {count} rules found")),
        "{said}"
    );
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

#[test]
fn every_alert_has_a_runbook_a_summary_and_a_severity() {
    let docs = render(&["alerts.enabled=true"]);
    let rules = rules(&docs);
    let names: Vec<&str> = rules.iter().filter_map(|r| r["alert"].as_str()).collect();
    assert_eq!(
        names,
        [
            "VolumeSyncNoRecentSuccess",
            "VolumeSyncConsecutiveFailures",
            "VolumeSyncAgentConsecutiveFailures",
            "VolumeSyncWebhookErrors",
            "VolumeSyncReconcileErrors",
            "VolumeSyncResourceNotReady",
            "VolumeSyncUploadHeld",
            "VolumeSyncWebhookCertificateExpiresSoon",
        ]
    );
    for rule in &rules {
        for annotation in ["runbook", "summary"] {
            assert!(
                rule["annotations"][annotation]
                    .as_str()
                    .is_some_and(|text| text.len() > 20),
                "{} lacks its {annotation}",
                rule["alert"]
            );
        }
        assert!(rule["labels"]["severity"].is_string(), "{}", rule["alert"]);
    }
    let held = rules
        .iter()
        .find(|r| r["alert"] == "VolumeSyncUploadHeld")
        .expect("held");
    assert_eq!(held["for"], "1h");
}

#[test]
fn the_no_recent_success_threshold_is_the_schedule_period_times_the_missed_periods() {
    let docs = render(&[
        "alerts.enabled=true",
        "alerts.schedulePeriodSeconds=600",
        "alerts.missedPeriods=4",
    ]);
    let rule = rules(&docs)
        .into_iter()
        .find(|r| r["alert"] == "VolumeSyncNoRecentSuccess")
        .expect("the rule");
    assert_eq!(
        rule["expr"],
        "time() - volume_syncing_operator_resource_last_sync_timestamp_seconds > 2400"
    );
}

const EXPIRY: &str = "volume_syncing_operator_webhook_certificate_expiry_timestamp_seconds";

/// Runs `promtool test rules` on the certificate-expiry alert rendered with `values`, for
/// three operators whose certificates expire (from time 0, promtool's start) in 3 days, in 30
/// days, and at a time not known (0); `firing` names those expected to alert at 2h, with
/// their days left.
fn certificate_expiry_alert_fires_for(values: &[&str], firing: &[(&str, u32)]) {
    let docs = render(values);
    let rule = find(&docs, "PrometheusRule", None);
    let alert = rules(&docs)
        .into_iter()
        .find(|r| r["alert"] == "VolumeSyncWebhookCertificateExpiresSoon")
        .expect("the certificate-expiry rule");
    let day = 86_400;
    let at = 2 * 3600;
    let series: Vec<_> = [
        ("soon", at + 3 * day),
        ("later", at + 30 * day),
        ("unknown", 0),
    ]
    .into_iter()
    .map(|(instance, expiry)| {
        json!({
            "series": format!("{EXPIRY}{{instance=\"{instance}\"}}"),
            "values": format!("{expiry}x180"),
        })
    })
    .collect();
    let expected: Vec<_> = firing
        .iter()
        .map(|(instance, days)| {
            json!({
                "exp_labels": {"instance": instance, "severity": alert["labels"]["severity"]},
                "exp_annotations": {
                    "summary": format!("The webhook certificate served by {instance} expires in {days}d 0h 0m 0s"),
                    "description": alert["annotations"]["description"],
                    "runbook": alert["annotations"]["runbook"],
                },
            })
        })
        .collect();
    let dir = tempfile::tempdir().expect("temp dir");
    fs::write(
        dir.path().join("rules.yaml"),
        json!({"groups": rule["spec"]["groups"]}).to_string(),
    )
    .expect("write the rules");
    let test = dir.path().join("test.yaml");
    let test_text = json!({
        "rule_files": ["rules.yaml"],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series,
            "alert_rule_test": [{
                "eval_time": "2h",
                "alertname": "VolumeSyncWebhookCertificateExpiresSoon",
                "exp_alerts": expected,
            }],
        }],
    });
    fs::write(&test, test_text.to_string()).expect("write the test");
    let output = run(&tool("promtool"), &["test", "rules", path_str(&test)], None);
    assert!(
        output.status.success(),
        "promtool test rules ({values:?}, expected {firing:?}):\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn the_certificate_expiry_alert_fires_within_the_configured_days_and_not_for_an_unknown_date() {
    certificate_expiry_alert_fires_for(&["alerts.enabled=true"], &[("soon", 3)]);
    certificate_expiry_alert_fires_for(
        &["alerts.enabled=true", "alerts.certificateExpiryDays=45"],
        &[("later", 30), ("soon", 3)],
    );
    certificate_expiry_alert_fires_for(
        &["alerts.enabled=true", "alerts.certificateExpiryDays=2"],
        &[],
    );
}

#[test]
fn every_metric_the_rules_and_the_dashboard_use_is_one_the_code_exports() {
    let exported = exported_metrics();
    // The definitions were found at all (a broken reader would accept nothing and fail below,
    // but say so plainly).
    for known in [
        "volume_syncing_operator_admissions_total",
        "volume_syncing_operator_resource_last_sync_timestamp_seconds",
        "volume_syncing_operator_webhook_certificate_expiry_timestamp_seconds",
        "volume_syncing_syncs_total",
    ] {
        assert!(exported.contains(known), "{known} not in {exported:?}");
    }
    let used = used_metrics();
    let unknown: Vec<&String> = used
        .iter()
        .filter(|name| !exported.contains(*name))
        .collect();
    assert!(
        unknown.is_empty(),
        "the rules or dashboard use metrics the code does not export: {unknown:?}\nexported: {exported:?}"
    );
}

#[test]
fn the_dashboard_config_map_carries_the_configured_discovery_label() {
    let docs = render(&[
        "dashboard.enabled=true",
        "dashboard.label.key=grafana_dashboard",
        "dashboard.label.value=yes",
        "dashboard.namespace=monitoring",
    ]);
    let config_map = find(&docs, "ConfigMap", None);
    assert_eq!(config_map["metadata"]["labels"]["grafana_dashboard"], "yes");
    assert_eq!(config_map["metadata"]["namespace"], "monitoring");
    let default = render(&["dashboard.enabled=true"]);
    let dashboard = dashboard(&default);
    assert_eq!(dashboard["uid"], "volume-syncing-controller");
    assert!(dashboard_exprs(&dashboard).len() >= 10);
}
