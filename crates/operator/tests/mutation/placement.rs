//! Where the injected containers go: placement of the restore init container, native versus
//! classic sidecar, and re-ordering on reinvocation.

use crate::support::*;
use serde_json::json;
use vsc_operator::mutation;

/// A Pod with init containers `a` and `b` (both mounting the synced volume).
fn pod_ab() -> k8s_openapi::api::core::v1::Pod {
    let init = |name: &str| json!({"name": name, "image": "busybox", "volumeMounts": [{"name": "www", "mountPath": "/var/www/riotkit"}]});
    pod_with(json!({"spec": {"initContainers": [init("a"), init("b")]}}))
}

fn placement(placement: &str, reference: Option<&str>) -> serde_json::Value {
    json!({"initContainerPlacement": {"placement": placement, "containerReference": reference}})
}

#[test]
fn restore_placement_table() {
    let cases: [(&str, Option<&str>, &[&str]); 6] = [
        ("last", None, &["a", "b", RESTORE]),
        ("first", None, &[RESTORE, "a", "b"]),
        ("before", Some("a"), &[RESTORE, "a", "b"]),
        ("before", Some("b"), &["a", RESTORE, "b"]),
        ("after", Some("a"), &["a", RESTORE, "b"]),
        ("after", Some("b"), &["a", "b", RESTORE]),
    ];
    for (where_, reference, expected) in cases {
        let pfss = seed_pfss_with(placement(where_, reference));
        let classic = apply(&pod_ab(), &pfss, &config());
        assert_eq!(
            init_names(&classic),
            expected,
            "classic, {where_} {reference:?}"
        );
        assert_eq!(
            container_names(&classic),
            ["app", SIDECAR],
            "classic, {where_} {reference:?}"
        );

        // Native: the sidecar follows the restore container, the app containers are untouched.
        let native_pod = apply(&pod_ab(), &pfss, &native());
        let mut with_sidecar: Vec<&str> = expected.to_vec();
        let at = expected
            .iter()
            .position(|n| *n == RESTORE)
            .expect("restore placed")
            + 1;
        with_sidecar.insert(at, SIDECAR);
        assert_eq!(
            init_names(&native_pod),
            with_sidecar,
            "native, {where_} {reference:?}"
        );
        assert_eq!(
            container_names(&native_pod),
            ["app"],
            "native, {where_} {reference:?}"
        );
    }
}

#[test]
fn default_placement_is_last() {
    let pfss = seed_pfss_with(json!({"initContainerPlacement": null}));
    assert_eq!(
        init_names(&apply(&pod_ab(), &pfss, &config())),
        ["a", "b", RESTORE]
    );
}

#[test]
fn pod_without_init_containers_gets_a_list() {
    let pod = pod_with(json!({"spec": {"initContainers": null}}));
    let pfss = seed_pfss_with(placement("last", None));
    assert_eq!(init_names(&apply(&pod, &pfss, &config())), [RESTORE]);
    assert_eq!(
        init_names(&apply(&pod, &pfss, &native())),
        [RESTORE, SIDECAR]
    );
    let first = seed_pfss_with(placement("first", None));
    assert_eq!(
        init_names(&apply(&pod, &first, &native())),
        [RESTORE, SIDECAR]
    );
}

#[test]
fn native_sidecar_restarts_always_classic_does_not() {
    let pfss = seed_pfss_with(placement("last", None));
    let native_pod = apply(&pod_ab(), &pfss, &native());
    assert_eq!(
        find(&native_pod, SIDECAR).restart_policy.as_deref(),
        Some("Always")
    );
    assert_eq!(find(&native_pod, RESTORE).restart_policy, None);
    let classic = apply(&pod_ab(), &pfss, &config());
    assert_eq!(find(&classic, SIDECAR).restart_policy, None);
    // Neither has a preStop hook: SIGTERM starts the last sync (real_kubelet.rs).
    for pod in [&native_pod, &classic] {
        assert_eq!(find(pod, SIDECAR).lifecycle, None);
    }
}

#[test]
fn sidecar_mode_overrides_cluster_support() {
    let classic_mode =
        seed_pfss_with(json!({"sidecarMode": "classic", "initContainerPlacement": null}));
    let pod = apply(&pod_ab(), &classic_mode, &native());
    assert_eq!(init_names(&pod), ["a", "b", RESTORE]);
    assert_eq!(container_names(&pod), ["app", SIDECAR]);

    let native_mode =
        seed_pfss_with(json!({"sidecarMode": "native", "initContainerPlacement": null}));
    let (pod, mutation) = mutate(&pod_ab(), &native_mode, &config()).expect("admitted");
    assert_eq!(init_names(&pod), ["a", "b", RESTORE, SIDECAR]);
    assert!(
        mutation.warnings.iter().any(|w| w.contains("native")),
        "{:?}",
        mutation.warnings
    );
}

#[test]
fn restore_remote_on_first_run_false_asks_the_agent_to_keep_local_files() {
    let pfss = seed_pfss_with(json!({
        "initContainerPlacement": {"placement": "after", "containerReference": "a"},
        "syncOptions": {"restoreRemoteOnFirstRun": false}
    }));
    let pod = apply(&pod_ab(), &pfss, &native());
    assert_eq!(init_names(&pod), ["a", RESTORE, SIDECAR, "b"]);
    assert!(
        args(&pod, RESTORE)
            .iter()
            .any(|a| a == "--keep-local-if-remote-empty")
    );
    let default = seed_pfss_with(placement("after", Some("a")));
    let pod = apply(&pod_ab(), &default, &native());
    assert!(
        !args(&pod, RESTORE)
            .iter()
            .any(|a| a == "--keep-local-if-remote-empty")
    );
}

#[test]
fn allowed_directions_decide_which_containers_exist() {
    let only_restore = seed_pfss_with(
        json!({"syncOptions": {"allowedDirections": {"toRemote": false}}, "initContainerPlacement": null}),
    );
    let pod = apply(&pod_ab(), &only_restore, &native());
    assert_eq!(init_names(&pod), ["a", "b", RESTORE]);
    assert_eq!(container_names(&pod), ["app"]);

    let only_sync = seed_pfss_with(
        json!({"syncOptions": {"allowedDirections": {"fromRemote": false}}, "initContainerPlacement": null}),
    );
    let pod = apply(&pod_ab(), &only_sync, &config());
    assert_eq!(init_names(&pod), ["a", "b"]);
    assert_eq!(container_names(&pod), ["app", SIDECAR]);

    let neither = seed_pfss_with(
        json!({"syncOptions": {"allowedDirections": {"fromRemote": false, "toRemote": false}}}),
    );
    let (pod, mutation) = mutate(&pod_ab(), &neither, &config()).expect("admitted");
    assert!(
        mutation.patch.0.is_empty(),
        "nothing to inject: {}",
        mutation.patch
    );
    assert_eq!(pod, pod_ab());
    assert!(!mutation.warnings.is_empty());
}

#[test]
fn reinvocation_after_another_webhook_reorders_ours() {
    let pfss = seed_pfss_with(placement("last", None));
    for config in [config(), native()] {
        let once = apply(&pod_ab(), &pfss, &config);
        // Another mutating webhook appends an init container after ours.
        let mut json = serde_json::to_value(&once).expect("serializes");
        json["spec"]["initContainers"]
            .as_array_mut()
            .expect("init containers")
            .push(json!({"name": "late", "image": "busybox"}));
        let reinvoked: k8s_openapi::api::core::v1::Pod = serde_json::from_value(json).expect("pod");

        let again = apply(&reinvoked, &pfss, &config);
        let mut expected = vec!["a", "b", "late", RESTORE];
        if config.native_sidecars {
            expected.push(SIDECAR);
        }
        assert_eq!(init_names(&again), expected);
        // The result is exactly what a fresh mutation of that Pod gives.
        let fresh = mutation::patched_pod(&reinvoked, NAMESPACE, &pfss, &config).expect("admitted");
        assert_eq!(again, fresh);
        // And it is stable from there.
        let patch = mutation::mutate(&again, NAMESPACE, &pfss, &config)
            .expect("admitted")
            .patch;
        assert!(patch.0.is_empty(), "{patch}");
    }
}

#[test]
fn switching_from_classic_to_native_moves_the_sidecar() {
    let pfss = seed_pfss_with(placement("last", None));
    let classic = apply(&pod_ab(), &pfss, &config());
    let native_pod = apply(&classic, &pfss, &native());
    assert_eq!(init_names(&native_pod), ["a", "b", RESTORE, SIDECAR]);
    assert_eq!(container_names(&native_pod), ["app"]);
    assert_eq!(native_pod, apply(&pod_ab(), &pfss, &native()));
}
