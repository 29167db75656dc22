//! Metrics per PodFilesystemSync, read from the watched resources' status at each scrape,
//! so that one alert rule covers every resource (`..._synced == 0`, or a last sync too long
//! ago). Labels are the resource's namespace and name only, never a Pod: the series count is
//! bounded by the number of resources. Every replica serves them (each watches the status).

use std::sync::{Arc, OnceLock};

use kube::ResourceExt as _;
use kube::runtime::reflector::Store;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric as _};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::gauge::ConstGauge;

use vsc_types::crd::{CONDITION_SYNCED, PodFilesystemSync};

use crate::sync_status::failing_after;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResourceLabels {
    namespace: String,
    name: String,
}

/// What the status of one resource says, as numbers.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceSamples {
    /// 1 when `Ready` is True.
    pub ready: f64,
    /// 1 when `Synced` is True.
    pub synced: f64,
    /// `status.lastSyncTime` in seconds since the epoch; None before the first sync.
    pub last_sync_seconds: Option<f64>,
    /// Pods in `status.pods` (at most 20).
    pub reporting_pods: f64,
    /// Of those, the ones whose failures in a row reached the failing threshold.
    pub failing_pods: f64,
    /// The most failures in a row of any Pod.
    pub max_consecutive_failures: f64,
}

fn condition_true(pfss: &PodFilesystemSync, type_: &str) -> f64 {
    let conditions = pfss.status.iter().flat_map(|s| &s.conditions);
    let found = conditions
        .into_iter()
        .any(|c| c.type_ == type_ && c.status == "True");
    if found { 1.0 } else { 0.0 }
}

pub fn samples(pfss: &PodFilesystemSync) -> ResourceSamples {
    let pods = pfss.status.iter().flat_map(|s| &s.pods);
    let threshold = failing_after(&pfss.spec);
    let failures: Vec<u32> = pods.map(|p| p.consecutive_failures).collect();
    let last_sync = pfss.status.as_ref().and_then(|s| s.last_sync_time.as_ref());
    ResourceSamples {
        ready: condition_true(pfss, "Ready"),
        synced: condition_true(pfss, CONDITION_SYNCED),
        last_sync_seconds: last_sync.map(|t| t.0.as_millisecond() as f64 / 1000.0),
        reporting_pods: failures.len() as f64,
        failing_pods: failures.iter().filter(|f| **f >= threshold).count() as f64,
        max_consecutive_failures: f64::from(failures.iter().copied().max().unwrap_or(0)),
    }
}

type Getter = fn(&ResourceSamples) -> Option<f64>;

/// Name, help and value of each per-resource gauge.
const GAUGES: [(&str, &str, Getter); 6] = [
    (
        "resource_ready",
        "1 when the PodFilesystemSync is Ready (its spec is valid, its Secrets exist)",
        |s| Some(s.ready),
    ),
    (
        "resource_synced",
        "1 when its Synced condition is True (every reporting Pod's last sync succeeded)",
        |s| Some(s.synced),
    ),
    (
        "resource_last_sync_timestamp_seconds",
        "When a Pod last uploaded successfully (status.lastSyncTime); absent before the first",
        |s| s.last_sync_seconds,
    ),
    (
        "resource_reporting_pods",
        "Pods that reported syncs (status.pods, at most 20)",
        |s| Some(s.reporting_pods),
    ),
    (
        "resource_failing_pods",
        "Reporting Pods whose failures in a row reached healthCheck.unhealthyAfterFailures (3 when unset)",
        |s| Some(s.failing_pods),
    ),
    (
        "resource_consecutive_failures",
        "The most failed syncs in a row of any reporting Pod",
        |s| Some(s.max_consecutive_failures),
    ),
];

/// The collector; its store is set once the controller's reflector exists.
#[derive(Debug, Clone, Default)]
pub struct ResourceMetrics {
    store: Arc<OnceLock<Store<PodFilesystemSync>>>,
}

impl ResourceMetrics {
    pub fn watch(&self, store: Store<PodFilesystemSync>) {
        // Set once at start; a second call would be a wiring mistake and changes nothing.
        let _ = self.store.set(store);
    }
}

impl Collector for ResourceMetrics {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let Some(store) = self.store.get() else {
            return Ok(());
        };
        let mut resources: Vec<(ResourceLabels, ResourceSamples)> = store
            .state()
            .iter()
            .map(|pfss| {
                let labels = ResourceLabels {
                    namespace: pfss.namespace().unwrap_or_default(),
                    name: pfss.name_any(),
                };
                (labels, samples(pfss))
            })
            .collect();
        resources.sort_by(|a, b| (&a.0.namespace, &a.0.name).cmp(&(&b.0.namespace, &b.0.name)));
        for (name, help, value) in GAUGES {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (labels, samples) in &resources {
                if let Some(value) = value(samples) {
                    ConstGauge::new(value).encode(family.encode_family(labels)?)?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn resource(status: serde_json::Value) -> PodFilesystemSync {
        serde_json::from_value(json!({
            "apiVersion": "riotkit.org/v1alpha1",
            "kind": "PodFilesystemSync",
            "metadata": {"name": "data", "namespace": "shop"},
            "spec": {"podSelector": {}, "localPath": "/data", "remotePath": "/b",
                     "healthCheck": {"unhealthyAfterFailures": 2}},
            "status": status,
        }))
        .expect("resource")
    }

    #[test]
    fn the_status_becomes_numbers_an_alert_can_compare() {
        let pod = |name: &str, failures: u32| {
            json!({"name": name, "direction": "to-remote", "lastReportTime": "2026-12-01T10:00:00Z",
                   "consecutiveFailures": failures})
        };
        let pfss = resource(json!({
            "conditions": [
                {"type": "Ready", "status": "True", "reason": "Valid", "message": "",
                 "lastTransitionTime": "2026-12-01T10:00:00Z"},
                {"type": "Synced", "status": "False", "reason": "SyncFailing", "message": "",
                 "lastTransitionTime": "2026-12-01T10:00:00Z"},
            ],
            "lastSyncTime": "2026-12-01T10:00:00Z",
            "pods": [pod("a", 0), pod("b", 1), pod("c", 4)],
        }));
        assert_eq!(
            samples(&pfss),
            ResourceSamples {
                ready: 1.0,
                synced: 0.0,
                last_sync_seconds: Some(1_796_119_200.0),
                reporting_pods: 3.0,
                failing_pods: 1.0,
                max_consecutive_failures: 4.0,
            }
        );
        let fresh = samples(&resource(json!({})));
        assert_eq!((fresh.ready, fresh.last_sync_seconds), (0.0, None));
    }
}
