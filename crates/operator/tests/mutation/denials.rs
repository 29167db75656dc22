//! Bad input denies the Pod with a message naming the field; nothing is half-injected.

use crate::support::*;
use serde_json::json;

#[test]
fn unknown_container_reference() {
    let pfss = seed_pfss_with(
        json!({"initContainerPlacement": {"placement": "after", "containerReference": "git-clone"}}),
    );
    let denial = deny(&seed_pod(), &pfss, &config());
    assert_eq!(
        denial.field,
        "spec.initContainerPlacement.containerReference"
    );
    assert!(
        denial.message.contains("git-clone") && denial.message.contains("some-container-name"),
        "{denial}"
    );
}

#[test]
fn reference_with_first_or_last_is_invalid() {
    let pfss = seed_pfss_with(json!({"initContainerPlacement": {"placement": "first"}}));
    let denial = deny(&seed_pod(), &pfss, &config());
    assert_eq!(
        denial.field,
        "spec.initContainerPlacement.containerReference"
    );
    assert!(
        denial.message.contains("cloud-press"),
        "names the resource: {denial}"
    );
}

#[test]
fn no_volume_holds_local_path() {
    let pfss = seed_pfss_with(json!({"localPath": "/srv/data"}));
    let denial = deny(&seed_pod(), &pfss, &config());
    assert_eq!(denial.field, "spec.localPath");
    assert!(
        denial
            .message
            .contains("no volume of the Pod is mounted at or above /srv/data"),
        "{denial}"
    );
}

#[test]
fn mount_match_is_path_aware() {
    // `/var/www/riot` is a string prefix of `/var/www/riotkit/...` but not a parent directory.
    let pod = pod_with(json!({"spec": {
        "initContainers": null,
        "containers": [{"name": "app", "image": "x", "volumeMounts": [{"name": "www", "mountPath": "/var/www/riot"}]}]
    }}));
    let pfss = seed_pfss_with(json!({"initContainerPlacement": null}));
    assert_eq!(deny(&pod, &pfss, &config()).field, "spec.localPath");
}

#[test]
fn bad_uid_or_gid_annotation() {
    for (annotation, value) in [
        ("riotkit.org/volume-user-id", "root"),
        ("riotkit.org/volume-group-id", "-1"),
        ("riotkit.org/volume-user-id", "99999999999"),
    ] {
        let pod = pod_with(json!({"metadata": {"annotations": {annotation: value}}}));
        let denial = deny(&pod, &seed_pfss(), &config());
        assert_eq!(denial.field, format!("metadata.annotations[{annotation}]"));
        assert!(denial.message.contains(value), "{denial}");
    }
}

#[test]
fn bad_restore_as_of_or_prefer_primary_annotation() {
    for (annotation, value) in [
        ("riotkit.org/restore-as-of", "yesterday"),
        ("riotkit.org/restore-as-of", "2026-13-01T00:00:00Z"),
        ("riotkit.org/restore-as-of", "2026-11-24 18:00"),
        ("riotkit.org/restore-as-of", ""),
        ("riotkit.org/prefer-primary", "yes"),
        ("riotkit.org/prefer-primary", "True "),
    ] {
        let pod = pod_with(json!({"metadata": {"annotations": {annotation: value}}}));
        let denial = deny(&pod, &seed_pfss(), &config());
        assert_eq!(
            denial.field,
            format!("metadata.annotations[{annotation}]"),
            "{value:?}: {denial}"
        );
        assert!(denial.message.contains(&format!("'{value}'")), "{denial}");
    }
}

#[test]
fn env_from_secret_in_another_namespace() {
    // A resource written before validation existed, or without a namespace to compare to:
    // the Pod's namespace decides.
    let mut pfss = seed_pfss_with(
        json!({"envFromSecrets": [{"name": "s", "namespace": "press"}, {"name": "t", "namespace": "kube-system"}]}),
    );
    pfss.metadata.namespace = None;
    let denial = deny(&seed_pod(), &pfss, &config());
    assert_eq!(denial.field, "spec.envFromSecrets[1].namespace");
    assert!(denial.message.contains("kube-system"), "{denial}");

    let own = seed_pfss_with(json!({"envFromSecrets": [{"name": "s", "namespace": "press"}]}));
    assert!(vsc_operator::mutation::mutate(&seed_pod(), NAMESPACE, &own, &config()).is_ok());
}

#[test]
fn template_errors_name_their_field() {
    let missing = seed_pfss_with(
        json!({"remotePath": "/bucket/{{ pod.ObjectMeta.Annotations[\"missing\"] }}"}),
    );
    let denial = deny(&seed_pod(), &missing, &config());
    assert_eq!(denial.field, "spec.remotePath");
    assert!(denial.message.contains("undefined"), "{denial}");

    let syntax = seed_pfss_with(json!({"remotePath": "/bucket/{{ pod.metadata.name"}));
    assert_eq!(
        deny(&seed_pod(), &syntax, &config()).field,
        "spec.remotePath"
    );

    let env = seed_pfss_with(json!({"env": {"REMOTE_ACL": "{{ pod.metadata.labels.acl }}"}}));
    let denial = deny(&seed_pod(), &env, &config());
    assert_eq!(denial.field, "spec.env.REMOTE_ACL");
}

#[test]
fn rendered_path_with_dot_dot_or_outside_its_prefix() {
    let pfss =
        seed_pfss_with(json!({"remotePath": "/bucket/{{ pod.metadata.annotations.subdir }}"}));
    for subdir in ["..", "../other-tenant", "x/../../y", ""] {
        let pod = pod_with(json!({"metadata": {"annotations": {"subdir": subdir}}}));
        let denial = deny(&pod, &pfss, &config());
        assert_eq!(denial.field, "spec.remotePath", "subdir {subdir:?}");
    }
    let prefix =
        seed_pfss_with(json!({"remotePath": "/bucket{{ pod.metadata.annotations.subdir }}"}));
    let pod = pod_with(json!({"metadata": {"annotations": {"subdir": "-other/x"}}}));
    assert!(
        vsc_operator::mutation::mutate(&pod, NAMESPACE, &prefix, &config()).is_ok(),
        "stays under /bucket"
    );
}

#[test]
fn invalid_resource_is_denied_by_its_first_problem() {
    let cases = [
        (json!({"localPath": "relative/path"}), "spec.localPath"),
        (json!({"localPath": "/var/../etc"}), "spec.localPath"),
        (
            json!({"syncOptions": {"schedule": ""}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"syncOptions": {"permissions": {"uid": "abc"}}}),
            "spec.syncOptions.permissions.uid",
        ),
        (
            json!({"syncOptions": {"permissions": {"gid": -5}}}),
            "spec.syncOptions.permissions.gid",
        ),
        (
            json!({"syncOptions": {"maxOneSyncPerMinutes": "soon"}}),
            "spec.syncOptions.maxOneSyncPerMinutes",
        ),
        (json!({"env": {"1BAD": "x"}}), "spec.env.1BAD"),
        (
            json!({"env": {"VSC_REMOTE_PATH": "/x"}}),
            "spec.env.VSC_REMOTE_PATH",
        ),
        (
            json!({"env": {"ENCRYPTED_PASSWORD": "x"}}),
            "spec.env.ENCRYPTED_PASSWORD",
        ),
        (
            json!({"podSelector": {"matchLabels": null}}),
            "spec.podSelector",
        ),
    ];
    for (overrides, field) in cases {
        let pfss = seed_pfss_with(overrides.clone());
        assert_eq!(
            deny(&seed_pod(), &pfss, &config()).field,
            field,
            "{overrides}"
        );
    }
}

#[test]
fn volume_mounted_over_tmp() {
    let pod = pod_with(json!({"spec": {
        "initContainers": null,
        "containers": [{"name": "app", "image": "x", "volumeMounts": [{"name": "www", "mountPath": "/tmp"}]}]
    }}));
    let pfss = seed_pfss_with(json!({"localPath": "/tmp/data", "initContainerPlacement": null}));
    let denial = deny(&pod, &pfss, &config());
    assert_eq!(denial.field, "spec.localPath");
    assert!(denial.message.contains("/tmp"), "{denial}");
}

#[test]
fn conflicting_mounts() {
    let containers = |a: serde_json::Value, b: serde_json::Value| {
        pod_with(json!({"spec": {
            "initContainers": null,
            "containers": [
                {"name": "app", "image": "x", "volumeMounts": [a]},
                {"name": "other", "image": "x", "volumeMounts": [b]}
            ]
        }}))
    };
    let pfss = seed_pfss_with(json!({"initContainerPlacement": null}));
    let different_sub_paths = containers(
        json!({"name": "www", "mountPath": "/var/www/riotkit", "subPath": "a"}),
        json!({"name": "www", "mountPath": "/var/www/riotkit", "subPath": "b"}),
    );
    assert_eq!(
        deny(&different_sub_paths, &pfss, &config()).field,
        "spec.localPath"
    );
    let different_volumes = containers(
        json!({"name": "www", "mountPath": "/var/www/riotkit"}),
        json!({"name": "cache", "mountPath": "/var/www/riotkit"}),
    );
    assert_eq!(
        deny(&different_volumes, &pfss, &config()).field,
        "spec.localPath"
    );
    let sub_path_expr = containers(
        json!({"name": "www", "mountPath": "/var/www/riotkit", "subPathExpr": "$(POD_NAME)"}),
        json!({"name": "cache", "mountPath": "/var/cache"}),
    );
    assert!(
        deny(&sub_path_expr, &pfss, &config())
            .message
            .contains("subPathExpr")
    );
}

#[test]
fn denial_displays_field_and_message() {
    let denial = vsc_operator::mutation::Denial::new("spec.localPath", "is wrong");
    assert_eq!(denial.to_string(), "spec.localPath: is wrong");
}

#[test]
fn what_the_sidecar_or_a_kubelet_would_refuse_is_denied_naming_the_field() {
    for (spec, field) in [
        (
            json!({"syncOptions": {"schedule": "61 * * * *"}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"env": {"REMOTE_ENDPOINT": "http://minio:9000\n"}}),
            "spec.env.REMOTE_ENDPOINT",
        ),
        (
            json!({"resources": {"limits": {"memory": "lots"}}}),
            "spec.resources.limits.memory",
        ),
        (
            json!({"remotePath": "/example-org-bucket/../other"}),
            "spec.remotePath",
        ),
    ] {
        let denial = deny(&seed_pod(), &seed_pfss_with(spec.clone()), &config());
        assert_eq!(denial.field, field, "{spec}: {denial}");
        assert!(denial.message.contains("cloud-press"), "{denial}");
    }
}
