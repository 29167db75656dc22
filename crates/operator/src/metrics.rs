//! Prometheus metrics of the operator, served on the admin port at `/metrics`.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::resource_metrics::ResourceMetrics;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// `patched`, `unchanged`, `denied` or `error`.
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `ready`, `invalid` or `error`.
    pub result: String,
}

pub struct Metrics {
    pub registry: Registry,
    pub admissions: Family<AdmissionLabels, Counter>,
    pub admission_seconds: Histogram,
    pub reconciles: Family<ReconcileLabels, Counter>,
    /// Checks of the agents' report tokens: `accepted`, `refused` or `error` by a
    /// TokenReview, `remembered` from one within the last minute.
    pub report_token_checks: Family<ResultLabels, Counter>,
    /// notAfter of the webhook certificate being served, Unix seconds; set by [`crate::tls`]
    /// on every (re)load, 0 until then or when it cannot be read.
    pub webhook_certificate_expiry: Gauge,
    /// Per PodFilesystemSync, from the watched status ([`ResourceMetrics::watch`]).
    pub resources: ResourceMetrics,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("volume_syncing_operator");
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admissions",
            "Pod admission reviews answered, by result",
            admissions.clone(),
        );
        let admission_seconds = Histogram::new(exponential_buckets(0.000_125, 2.0, 16));
        registry.register(
            "admission_duration_seconds",
            "Time to answer a Pod admission review",
            admission_seconds.clone(),
        );
        let reconciles = Family::<ReconcileLabels, Counter>::default();
        registry.register(
            "reconciles",
            "PodFilesystemSync reconciliations, by result",
            reconciles.clone(),
        );
        let report_token_checks = Family::<ResultLabels, Counter>::default();
        registry.register(
            "report_token_checks",
            "Checks of the agents' report tokens: by a TokenReview (accepted, refused, error) or remembered from one",
            report_token_checks.clone(),
        );
        let webhook_certificate_expiry = Gauge::default();
        registry.register(
            "webhook_certificate_expiry_timestamp_seconds",
            "When the webhook's serving certificate expires (its notAfter), Unix seconds; 0: unknown",
            webhook_certificate_expiry.clone(),
        );
        let resources = ResourceMetrics::default();
        registry.register_collector(Box::new(resources.clone()));
        Metrics {
            registry,
            admissions,
            admission_seconds,
            reconciles,
            report_token_checks,
            webhook_certificate_expiry,
            resources,
        }
    }
}

impl Metrics {
    pub fn admission(&self, result: &str) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn reconcile(&self, result: &str) {
        self.reconciles
            .get_or_create(&ReconcileLabels {
                result: result.to_string(),
            })
            .inc();
    }

    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
