//! The chart's alert rules and Grafana dashboard, rendered, and the metric names they use:
//! tests/alerts.rs holds those names to the code's metric definitions, and the sync-status
//! test to a real operator's scrape.

use std::collections::BTreeSet;

use serde_json::Value;

use crate::helm::{find, kind, render};

/// The metric names in a PromQL expression: identifiers of the project's prefixes.
pub fn metrics_in(expr: &str) -> BTreeSet<String> {
    expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == ':'))
        .filter(|word| word.starts_with("volume_syncing_") || word.starts_with("vsc_"))
        .map(str::to_string)
        .collect()
}

pub fn rules(docs: &[Value]) -> Vec<Value> {
    let rule = find(docs, "PrometheusRule", None);
    rule["spec"]["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|group| group["rules"].as_array().expect("rules").clone())
        .collect()
}

pub fn dashboard(docs: &[Value]) -> Value {
    let config_map = docs
        .iter()
        .find(|d| kind(d) == "ConfigMap" && d["metadata"]["labels"]["grafana_dashboard"] == "1")
        .expect("the dashboard ConfigMap");
    let text = config_map["data"]["volume-syncing-controller.json"]
        .as_str()
        .expect("the dashboard JSON");
    serde_json::from_str(text).expect("the dashboard is JSON")
}

pub fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets").clone())
        .map(|target| target["expr"].as_str().expect("expr").to_string())
        .collect()
}

/// Every metric name the rules and the dashboard use, rendered with both on.
pub fn used_metrics() -> BTreeSet<String> {
    let docs = render(&["alerts.enabled=true", "dashboard.enabled=true"]);
    let mut exprs: Vec<String> = rules(&docs)
        .iter()
        .map(|r| r["expr"].as_str().expect("expr").to_string())
        .collect();
    exprs.extend(dashboard_exprs(&dashboard(&docs)));
    let mut used = BTreeSet::new();
    for expr in &exprs {
        let found = metrics_in(expr);
        assert!(!found.is_empty(), "no project metric in {expr}");
        used.extend(found);
    }
    used
}
