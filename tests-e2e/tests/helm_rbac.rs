//! RBAC: every rule the chart can render is listed here with the reason the operator needs
//! it, so a new permission fails this test until it is added (with its reason); and the real
//! API server confirms what the chart's ServiceAccount can and cannot do.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::helm::{
    NAMESPACE, RELEASE, VARIANTS, apply, apply_crd, can_i, kind, kubectl_ok, name, render,
    wait_for, wait_until_allowed,
};

/// Every rule any option of the chart renders: `Kind/name[@namespace]: apiGroup
/// resource[names] verbs`, and why the operator needs it.
const EXPECTED_RULES: &[(&str, &str)] = &[
    (
        "ClusterRole/volume-syncing-controller: riotkit.org podfilesystemsyncs get,list,watch",
        "the reconciler and the webhook's cache watch PodFilesystemSyncs in all namespaces",
    ),
    (
        "ClusterRole/volume-syncing-controller: riotkit.org podfilesystemsyncs/status get,patch",
        "the reconciler writes the Ready condition and observedGeneration",
    ),
    (
        "ClusterRole/volume-syncing-controller: core secrets get,create",
        "automatic encryption: read a key Secret by name, create it when absent (never list, update or delete)",
    ),
    (
        "ClusterRole/volume-syncing-controller: authentication.k8s.io tokenreviews create",
        "sync reports: check that a report's token is the reporting Pod's, for its resource's audience",
    ),
    (
        "ClusterRole/volume-syncing-controller: events.k8s.io events create,patch",
        "Events on PodFilesystemSyncs; a repeated Event is patched (series count)",
    ),
    (
        "ClusterRole/volume-syncing-controller-webhook-ca: admissionregistration.k8s.io mutatingwebhookconfigurations[volume-syncing-controller] get,patch",
        "self-managed certificates: put the CA into the caBundle of the chart's own webhook configuration only",
    ),
    (
        "Role/volume-syncing-controller@volume-syncing-controller: core secrets create",
        "self-managed certificates: create the certificate Secret (create cannot be limited by name), release namespace only",
    ),
    (
        "Role/volume-syncing-controller@volume-syncing-controller: core secrets[volume-syncing-controller-webhook-tls] get,update",
        "self-managed certificates: read the certificate Secret and replace it when renewing",
    ),
    (
        "Role/volume-syncing-controller@volume-syncing-controller: coordination.k8s.io leases create",
        "leader election and writer leases: create a Lease (create cannot be limited by name)",
    ),
    (
        "Role/volume-syncing-controller@volume-syncing-controller: coordination.k8s.io leases get,update,list,delete",
        "writer leases (with reports): read, grant and renew the hash-named Lease of each remote path, and delete those of deleted resources, in the release namespace only",
    ),
    (
        "Role/volume-syncing-controller@volume-syncing-controller: coordination.k8s.io leases[volume-syncing-controller] get,update",
        "leader election: read, take over and renew the chart's Lease only",
    ),
    (
        "Role/volume-syncing-controller-encryption-secrets@press: core secrets get,create",
        "automatic encryption limited to a listed namespace (rbac.encryptionSecretNamespaces)",
    ),
    (
        "Role/volume-syncing-controller-encryption-secrets@shop: core secrets get,create",
        "automatic encryption limited to a listed namespace (rbac.encryptionSecretNamespaces)",
    ),
];

fn strings(value: &Value) -> Vec<String> {
    value
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| v.as_str().expect("string").to_string())
        .collect()
}

/// The rules of every ClusterRole and Role rendered, in the format of [`EXPECTED_RULES`].
fn rules(docs: &[Value]) -> BTreeSet<String> {
    let mut rules = BTreeSet::new();
    for role in docs
        .iter()
        .filter(|d| matches!(kind(d), "ClusterRole" | "Role"))
    {
        let owner = match role["metadata"]["namespace"].as_str() {
            Some(namespace) => format!("{}/{}@{namespace}", kind(role), name(role)),
            None => format!("{}/{}", kind(role), name(role)),
        };
        for rule in role["rules"].as_array().expect("rules") {
            assert!(
                rule["nonResourceURLs"].is_null(),
                "{owner}: nonResourceURLs are not needed (/version is public): {rule}"
            );
            let groups: Vec<String> = strings(&rule["apiGroups"])
                .into_iter()
                .map(|g| if g.is_empty() { "core".to_string() } else { g })
                .collect();
            let names = strings(&rule["resourceNames"]);
            let names = if names.is_empty() {
                String::new()
            } else {
                format!("[{}]", names.join(","))
            };
            for group in &groups {
                for resource in strings(&rule["resources"]) {
                    rules.insert(format!(
                        "{owner}: {group} {resource}{names} {}",
                        strings(&rule["verbs"]).join(",")
                    ));
                }
            }
        }
    }
    rules
}

#[test]
fn every_rendered_rule_is_expected_and_explained() {
    let expected: BTreeSet<String> = EXPECTED_RULES.iter().map(|(r, _)| r.to_string()).collect();
    let mut seen = BTreeSet::new();
    for (variant, values) in VARIANTS {
        let docs = render(values);
        let rendered = rules(&docs);
        let unexpected: Vec<&String> = rendered.difference(&expected).collect();
        assert!(
            unexpected.is_empty(),
            "{variant}: permissions not in EXPECTED_RULES (add each with the reason the operator needs it):\n{unexpected:#?}"
        );
        for rule in &rendered {
            assert!(!rule.contains('*'), "{variant}: a wildcard: {rule}");
        }
        seen.extend(rendered);

        // Bindings: each role is bound to the chart's ServiceAccount, and to nobody else.
        for binding in docs
            .iter()
            .filter(|d| matches!(kind(d), "ClusterRoleBinding" | "RoleBinding"))
        {
            let role_kind = binding["roleRef"]["kind"].as_str().expect("roleRef kind");
            let role_name = binding["roleRef"]["name"].as_str().expect("roleRef name");
            assert!(
                docs.iter().any(|d| kind(d) == role_kind
                    && name(d) == role_name
                    && d["metadata"]["namespace"] == binding["metadata"]["namespace"]),
                "{variant}: {} binds {role_kind}/{role_name}, which the chart does not render",
                name(binding)
            );
            assert_eq!(
                binding["subjects"],
                serde_json::json!([{"kind": "ServiceAccount", "name": RELEASE, "namespace": NAMESPACE}]),
                "{variant}: {}",
                name(binding)
            );
        }
    }
    let never: Vec<&String> = expected.difference(&seen).collect();
    assert!(
        never.is_empty(),
        "EXPECTED_RULES lists rules no option renders any more: {never:#?}"
    );

    // The defaults (self-managed certificates, leader election): exactly these.
    let defaults = rules(&render(&[]));
    assert_eq!(
        defaults.iter().map(String::as_str).collect::<Vec<_>>(),
        EXPECTED_RULES
            .iter()
            .map(|(r, _)| *r)
            .filter(|r| !r.contains("encryption-secrets"))
            // With reports (the default), the writer leases' rule covers the leader's Lease.
            .filter(|r| !r.contains("leases[volume-syncing-controller]"))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

const SERVICE_ACCOUNT: &str =
    "system:serviceaccount:volume-syncing-controller:volume-syncing-controller";

/// The chart's RBAC applied to a real API server, asked with `kubectl auth can-i --as` the
/// ServiceAccount: what the operator needs is allowed, the rest (deleting or listing
/// Secrets, other webhook configurations, Leases of other namespaces, Pods) is not.
#[tokio::test]
async fn the_service_account_can_do_what_the_operator_needs_and_nothing_more() {
    let plane = ControlPlane::start().await;
    let kubeconfig = plane.kubeconfig.clone();
    apply_crd(&kubeconfig);
    for namespace in [NAMESPACE, "press", "shop", "elsewhere"] {
        kubectl_ok(&kubeconfig, &["create", "namespace", namespace], None);
    }
    let docs = render(&[]);
    apply(&kubeconfig, &docs, false).expect("apply the default chart");
    let ns = ["--namespace", NAMESPACE];
    let press = ["--namespace", "press"];
    let kube_system = ["--namespace", "kube-system"];
    let all = ["--all-namespaces"];
    let allowed: &[(&str, &str, &[&str])] = &[
        ("watch", "podfilesystemsyncs.riotkit.org", &all),
        ("list", "podfilesystemsyncs.riotkit.org", &all),
        ("get", "podfilesystemsyncs.riotkit.org", &press),
        (
            "patch",
            "podfilesystemsyncs.riotkit.org",
            &["--namespace", "press", "--subresource=status"],
        ),
        ("get", "secrets/any-encryption-key", &press),
        ("create", "secrets", &press),
        ("create", "events.events.k8s.io", &press),
        ("patch", "events.events.k8s.io", &press),
        ("create", "tokenreviews.authentication.k8s.io", &[]),
        (
            "patch",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/volume-syncing-controller",
            &[],
        ),
        (
            "get",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/volume-syncing-controller",
            &[],
        ),
        (
            "update",
            "secrets/volume-syncing-controller-webhook-tls",
            &ns,
        ),
        ("create", "leases.coordination.k8s.io", &ns),
        (
            "get",
            "leases.coordination.k8s.io/vsc-writer-0123456789abcdef",
            &ns,
        ),
        (
            "update",
            "leases.coordination.k8s.io/vsc-writer-0123456789abcdef",
            &ns,
        ),
        ("list", "leases.coordination.k8s.io", &ns),
        (
            "delete",
            "leases.coordination.k8s.io/vsc-writer-0123456789abcdef",
            &ns,
        ),
        (
            "update",
            "leases.coordination.k8s.io/volume-syncing-controller",
            &ns,
        ),
    ];
    let denied: &[(&str, &str, &[&str])] = &[
        ("delete", "secrets/any-encryption-key", &press),
        ("delete", "secrets", &ns),
        ("deletecollection", "secrets", &press),
        ("list", "secrets", &all),
        ("list", "secrets", &press),
        ("watch", "secrets", &press),
        ("update", "secrets/any-encryption-key", &press),
        ("patch", "secrets/any-encryption-key", &press),
        ("update", "secrets/some-other-secret", &ns),
        ("update", "podfilesystemsyncs.riotkit.org", &press),
        ("delete", "podfilesystemsyncs.riotkit.org", &press),
        (
            "patch",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/another-webhook",
            &[],
        ),
        (
            "delete",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io/volume-syncing-controller",
            &[],
        ),
        (
            "create",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io",
            &[],
        ),
        (
            "list",
            "mutatingwebhookconfigurations.admissionregistration.k8s.io",
            &[],
        ),
        // Writer leases reach every Lease of the release namespace, none elsewhere.
        (
            "update",
            "leases.coordination.k8s.io/kube-scheduler",
            &kube_system,
        ),
        ("create", "leases.coordination.k8s.io", &press),
        ("delete", "leases.coordination.k8s.io/any-lease", &press),
        ("list", "leases.coordination.k8s.io", &all),
        ("create", "pods", &press),
        ("list", "pods", &all),
        ("get", "configmaps", &press),
        ("create", "events", &press),
        (
            "create",
            "clusterrolebindings.rbac.authorization.k8s.io",
            &[],
        ),
        ("escalate", "roles.rbac.authorization.k8s.io", &ns),
        ("impersonate", "users", &[]),
    ];
    // RBAC objects just applied reach the authorizer's cache a moment later: wait for each
    // needed permission, then every refusal is final.
    wait_until_allowed(&plane, SERVICE_ACCOUNT, allowed).await;
    for (verb, resource, extra) in denied {
        assert!(
            !can_i(&plane, SERVICE_ACCOUNT, verb, resource, extra),
            "the operator must not: {verb} {resource} {extra:?}"
        );
    }

    // With rbac.encryptionSecretNamespaces (applied over the defaults, as an upgrade would),
    // Secrets are reachable in the listed namespaces only.
    let docs = render(&["rbac.encryptionSecretNamespaces={press,shop}"]);
    apply(&kubeconfig, &docs, false).expect("apply the restricted chart");
    let in_listed: Vec<(&str, &str, &[&str])> = ["press", "shop"]
        .iter()
        .flat_map(|namespace| {
            let extra: &[&str] = if *namespace == "press" {
                &["--namespace", "press"]
            } else {
                &["--namespace", "shop"]
            };
            [("create", "secrets", extra), ("get", "secrets/key", extra)]
        })
        .collect();
    wait_until_allowed(&plane, SERVICE_ACCOUNT, &in_listed).await;
    let elsewhere: &[&str] = &["--namespace", "elsewhere"];
    for (verb, resource) in [("get", "secrets/key"), ("create", "secrets")] {
        wait_for(
            Duration::from_secs(30),
            &format!("{verb} {resource} in namespace elsewhere to be refused"),
            || (!can_i(&plane, SERVICE_ACCOUNT, verb, resource, elsewhere)).then_some(()),
        )
        .await;
    }
    assert!(!can_i(
        &plane,
        SERVICE_ACCOUNT,
        "list",
        "secrets",
        &["--namespace", "press"]
    ));
}
