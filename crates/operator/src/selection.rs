//! Which `PodFilesystemSync` applies to a Pod: only resources of the Pod's own namespace,
//! matched by their `spec.podSelector`. Two matches are ambiguous and deny the Pod.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use vsc_types::crd::PodFilesystemSync;

use crate::mutation::Denial;

/// The resource selecting `pod` among `candidates`, if any. `namespace` is the Pod's (from
/// the admission request; the object may not carry it). Resources of other namespaces are
/// ignored. More than one match is a [`Denial`] naming all of them, sorted.
pub fn select<'a>(
    pod: &Pod,
    namespace: &str,
    candidates: impl Iterator<Item = &'a PodFilesystemSync>,
) -> Result<Option<&'a PodFilesystemSync>, Denial> {
    let empty = BTreeMap::new();
    let labels = pod.metadata.labels.as_ref().unwrap_or(&empty);
    let mut matches: Vec<&'a PodFilesystemSync> = candidates
        .filter(|pfss| pfss.metadata.namespace.as_deref() == Some(namespace))
        .filter(|pfss| selector_matches(&pfss.spec.pod_selector, labels))
        .collect();
    match matches.len() {
        0 => Ok(None),
        1 => Ok(matches.pop()),
        _ => {
            let mut names: Vec<&str> = matches
                .iter()
                .map(|m| m.metadata.name.as_deref().unwrap_or_default())
                .collect();
            names.sort_unstable();
            Err(Denial::new(
                "spec.podSelector",
                format!(
                    "the Pod is selected by more than one PodFilesystemSync in namespace {namespace}: {}; \
                     narrow their podSelectors so that one selects it",
                    names.join(", ")
                ),
            ))
        }
    }
}

/// Kubernetes label selector semantics, except that an empty selector matches nothing (a
/// resource with no selector must not capture every opted-in Pod). An unknown operator, or
/// In/NotIn without values, matches nothing.
pub fn selector_matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let match_labels = selector.match_labels.as_ref();
    let expressions = selector.match_expressions.as_deref().unwrap_or_default();
    if match_labels.is_none_or(BTreeMap::is_empty) && expressions.is_empty() {
        return false;
    }
    let labels_ok = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| labels.get(key) == Some(value));
    labels_ok
        && expressions.iter().all(|requirement| {
            let values = requirement.values.as_deref().unwrap_or_default();
            let actual = labels.get(&requirement.key);
            match requirement.operator.as_str() {
                "In" => !values.is_empty() && actual.is_some_and(|a| values.contains(a)),
                "NotIn" => !values.is_empty() && actual.is_none_or(|a| !values.contains(a)),
                "Exists" => actual.is_some(),
                "DoesNotExist" => actual.is_none(),
                _ => false,
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelectorRequirement, ObjectMeta};
    use vsc_types::crd::PodFilesystemSyncSpec;

    fn labels(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn pod(kv: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                labels: Some(labels(kv)),
                ..ObjectMeta::default()
            },
            ..Pod::default()
        }
    }

    fn requirement(key: &str, operator: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: operator.into(),
            values: (!values.is_empty()).then(|| {
                values
                    .iter()
                    .map(std::string::ToString::to_string)
                    .collect()
            }),
        }
    }

    fn pfss(name: &str, namespace: &str, selector: LabelSelector) -> PodFilesystemSync {
        let spec: PodFilesystemSyncSpec = serde_json::from_value(serde_json::json!({
            "podSelector": selector, "localPath": "/data", "remotePath": "/bucket"
        }))
        .expect("spec");
        let mut resource = PodFilesystemSync::new(name, spec);
        resource.metadata.namespace = Some(namespace.into());
        resource
    }

    fn by_labels(kv: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: Some(labels(kv)),
            match_expressions: None,
        }
    }

    fn by_expressions(reqs: Vec<LabelSelectorRequirement>) -> LabelSelector {
        LabelSelector {
            match_labels: None,
            match_expressions: Some(reqs),
        }
    }

    #[test]
    fn match_labels_must_all_match() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        assert!(selector_matches(&by_labels(&[("app", "web")]), &l));
        assert!(selector_matches(
            &by_labels(&[("app", "web"), ("tier", "front")]),
            &l
        ));
        assert!(!selector_matches(
            &by_labels(&[("app", "web"), ("tier", "back")]),
            &l
        ));
        assert!(!selector_matches(&by_labels(&[("other", "x")]), &l));
    }

    #[test]
    fn match_expressions_operators() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let cases = [
            (requirement("app", "In", &["web", "api"]), true),
            (requirement("app", "In", &["api"]), false),
            (requirement("missing", "In", &["web"]), false),
            (requirement("app", "NotIn", &["api"]), true),
            (requirement("app", "NotIn", &["web"]), false),
            (requirement("missing", "NotIn", &["web"]), true),
            (requirement("app", "Exists", &[]), true),
            (requirement("missing", "Exists", &[]), false),
            (requirement("missing", "DoesNotExist", &[]), true),
            (requirement("app", "DoesNotExist", &[]), false),
            (requirement("app", "Gt", &["1"]), false),
            (requirement("app", "In", &[]), false),
        ];
        for (req, expected) in cases {
            let description = format!("{} {} {:?}", req.key, req.operator, req.values);
            assert_eq!(
                selector_matches(&by_expressions(vec![req]), &l),
                expected,
                "{description}"
            );
        }
    }

    #[test]
    fn labels_and_expressions_combine_with_and() {
        let l = labels(&[("app", "web"), ("tier", "front")]);
        let mut selector = by_labels(&[("app", "web")]);
        selector.match_expressions = Some(vec![requirement("tier", "In", &["back"])]);
        assert!(!selector_matches(&selector, &l));
        selector.match_expressions = Some(vec![requirement("tier", "In", &["front"])]);
        assert!(selector_matches(&selector, &l));
    }

    #[test]
    fn empty_selector_matches_nothing() {
        let l = labels(&[("app", "web")]);
        assert!(!selector_matches(&LabelSelector::default(), &l));
        assert!(!selector_matches(&by_labels(&[]), &l));
        assert!(!selector_matches(&by_expressions(vec![]), &l));
    }

    #[test]
    fn only_the_pods_namespace_is_considered() {
        let other = pfss("other", "team-b", by_labels(&[("app", "web")]));
        let own = pfss("own", "team-a", by_labels(&[("app", "web")]));
        let all = [other.clone(), own.clone()];
        let chosen = select(&pod(&[("app", "web")]), "team-a", all.iter()).expect("no ambiguity");
        assert_eq!(chosen.and_then(|p| p.metadata.name.as_deref()), Some("own"));
        let none = select(&pod(&[("app", "web")]), "team-c", all.iter()).expect("no ambiguity");
        assert!(none.is_none());
    }

    #[test]
    fn no_match_is_none() {
        let all = [pfss("a", "ns", by_labels(&[("app", "db")]))];
        assert!(
            select(&pod(&[("app", "web")]), "ns", all.iter())
                .expect("ok")
                .is_none()
        );
    }

    #[test]
    fn two_matches_are_denied_naming_both_sorted() {
        let all = [
            pfss("zeta", "ns", by_labels(&[("app", "web")])),
            pfss(
                "alpha",
                "ns",
                by_expressions(vec![requirement("app", "Exists", &[])]),
            ),
            pfss("unrelated", "ns", by_labels(&[("app", "db")])),
        ];
        let denial = select(&pod(&[("app", "web")]), "ns", all.iter()).expect_err("ambiguous");
        assert!(denial.message.contains("alpha, zeta"), "{denial}");
        assert!(!denial.message.contains("unrelated"), "{denial}");
    }

    #[test]
    fn pod_without_labels_matches_only_negative_selectors() {
        let p = Pod::default();
        let all = [
            pfss(
                "neg",
                "ns",
                by_expressions(vec![requirement("app", "DoesNotExist", &[])]),
            ),
            pfss("pos", "ns", by_labels(&[("app", "web")])),
        ];
        let chosen = select(&p, "ns", all.iter()).expect("ok");
        assert_eq!(chosen.and_then(|p| p.metadata.name.as_deref()), Some("neg"));
    }
}
