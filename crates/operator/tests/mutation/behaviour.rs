//! What the injected containers run with: args per sync option, env, mounts, security
//! context, resources; and the patch's properties (idempotent, deterministic, minimal).

use std::collections::BTreeMap;

use crate::support::*;
use k8s_openapi::api::core::v1::ResourceRequirements;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use serde_json::json;
use vsc_operator::mutation::{self, InjectionConfig};

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(std::string::ToString::to_string).collect()
}

#[test]
fn mutating_a_mutated_pod_is_a_no_op() {
    let variants = [
        seed_pfss(),
        seed_pfss_with(json!({"initContainerPlacement": null})),
        seed_pfss_with(
            json!({"initContainerPlacement": {"placement": "first", "containerReference": null}}),
        ),
        seed_pfss_with(json!({"syncOptions": {"method": "fsnotify"}, "debug": true})),
        seed_pfss_with(json!({"syncOptions": {"allowedDirections": {"toRemote": false}}})),
    ];
    for pfss in &variants {
        for config in [config(), native()] {
            let once = apply(&seed_pod(), pfss, &config);
            let patch = mutation::mutate(&once, NAMESPACE, pfss, &config)
                .expect("admitted")
                .patch;
            assert!(patch.0.is_empty(), "second mutation patched: {patch}");
            assert_eq!(apply(&once, pfss, &config), once);
        }
    }
}

#[test]
fn patch_is_deterministic_and_env_sorted() {
    let keys: BTreeMap<String, String> = ["ZETA", "ALPHA", "REMOTE_TYPE", "MIDDLE", "B_2", "B_10"]
        .iter()
        .map(|k| (k.to_string(), "v".to_string()))
        .collect();
    let pfss = seed_pfss_with(json!({"env": keys}));
    let first = mutation::mutate(&seed_pod(), NAMESPACE, &pfss, &config()).expect("admitted");
    for _ in 0..5 {
        let again = mutation::mutate(&seed_pod(), NAMESPACE, &pfss, &config()).expect("admitted");
        assert_eq!(
            serde_json::to_string(&again.patch).expect("json"),
            serde_json::to_string(&first.patch).expect("json")
        );
    }
    let pod = apply(&seed_pod(), &pfss, &config());
    let names: Vec<String> = env(&pod, SIDECAR)
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    let mut sorted = names.clone();
    sorted.sort();
    assert_eq!(names, sorted);
    assert_eq!(env(&pod, SIDECAR), env(&pod, RESTORE));
}

#[test]
fn patch_leaves_fields_unknown_to_the_model_alone() {
    // A newer API server sends fields k8s-openapi does not know; the patch must not drop them
    // from the containers it does not own, even when inserting before them.
    let mut raw = serde_json::to_value(seed_pod()).expect("serializes");
    raw["spec"]["initContainers"][0]["futureField"] = json!({"x": 1});
    raw["spec"]["containers"][0]["futureField"] = json!(true);
    raw["spec"]["futureSpecField"] = json!("kept");
    let pod: k8s_openapi::api::core::v1::Pod = serde_json::from_value(raw.clone()).expect("pod");
    let pfss = seed_pfss_with(
        json!({"initContainerPlacement": {"placement": "first", "containerReference": null}}),
    );
    for config in [config(), native()] {
        let patch = mutation::mutate(&pod, NAMESPACE, &pfss, &config)
            .expect("admitted")
            .patch;
        let mut doc = raw.clone();
        json_patch::patch(&mut doc, &patch).expect("applies");
        let init = doc["spec"]["initContainers"].as_array().expect("init");
        let theirs = init
            .iter()
            .find(|c| c["name"] == "some-container-name")
            .expect("kept");
        assert_eq!(theirs["futureField"], json!({"x": 1}));
        assert_eq!(doc["spec"]["containers"][0]["futureField"], json!(true));
        assert_eq!(doc["spec"]["futureSpecField"], "kept");
        assert_eq!(init[0]["name"], RESTORE);
        assert!(init[0].get("futureField").is_none());
    }
}

#[test]
fn restore_args_follow_clean_up_and_debug() {
    let cases = [
        (json!({}), vec![]),
        (
            json!({"syncOptions": {"cleanUp": {"local": false}}}),
            strings(&["--no-delete"]),
        ),
        (
            json!({"syncOptions": {"cleanUp": {"forceLocal": true}}}),
            strings(&["--force-delete-local-dir"]),
        ),
        (
            json!({"syncOptions": {"cleanUp": {"local": false, "forceLocal": true}}, "debug": true}),
            strings(&["--no-delete", "--force-delete-local-dir", "--verbose"]),
        ),
    ];
    for (overrides, extra) in cases {
        let pod = apply(&seed_pod(), &seed_pfss_with(overrides.clone()), &config());
        let mut expected = strings(&[
            "remote-to-local-sync",
            "--src",
            "/example-org-bucket",
            "--dst",
            "/var/www/riotkit/wp-content",
        ]);
        expected.extend(extra);
        assert_eq!(args(&pod, RESTORE), expected, "{overrides}");
    }
}

#[test]
fn sync_args_follow_method_clean_up_and_debug() {
    let base = [
        "sync-to-remote",
        "--src",
        "/var/www/riotkit/wp-content",
        "--dst",
        "/example-org-bucket",
    ];
    let cases = [
        (json!({}), strings(&["--schedule", "@every 5m"])),
        (
            json!({"syncOptions": {"method": "fsnotify"}}),
            strings(&[
                "--watch",
                "--watch-min-interval",
                "15m",
                "--schedule",
                "@every 5m",
            ]),
        ),
        (
            json!({"syncOptions": {"method": "fsnotify", "maxOneSyncPerMinutes": 2, "schedule": ""}}),
            strings(&["--watch", "--watch-min-interval", "2m"]),
        ),
        (
            json!({"syncOptions": {"method": "fsnotify", "maxOneSyncPerMinutes": null}}),
            strings(&["--watch", "--schedule", "@every 5m"]),
        ),
        (
            json!({"syncOptions": {"cleanUp": {"remote": false, "forceRemote": true}}, "debug": true}),
            strings(&[
                "--schedule",
                "@every 5m",
                "--no-delete",
                "--force-even-if-remote-would-be-cleared",
                "--verbose",
            ]),
        ),
    ];
    for (overrides, extra) in cases {
        let pod = apply(&seed_pod(), &seed_pfss_with(overrides.clone()), &config());
        let mut expected = strings(&base);
        expected.extend(extra);
        assert_eq!(args(&pod, SIDECAR), expected, "{overrides}");
    }
}

#[test]
fn env_holds_paths_pid_log_format_and_encryption_mode() {
    let config = InjectionConfig {
        log_format: Some(vsc_types::contract::LogFormat::Json),
        ..config()
    };
    let pod = apply(&seed_pod(), &seed_pfss(), &config);
    let env: BTreeMap<_, _> = crate::support::env(&pod, SIDECAR).into_iter().collect();
    assert_eq!(env["VSC_LOCAL_PATH"], "/var/www/riotkit/wp-content");
    assert_eq!(env["VSC_REMOTE_PATH"], "/example-org-bucket");
    assert_eq!(env["VSC_PID_PATH"], "/tmp/volume-syncing-controller.pid");
    assert_eq!(env["VSC_LOG_FORMAT"], "json");
    assert_eq!(env["ENCRYPTED_FILENAME_ENCRYPTION"], "standard");

    // The resource may choose the log format and file name encryption itself.
    let own = seed_pfss_with(
        json!({"env": {"VSC_LOG_FORMAT": "text", "ENCRYPTED_FILENAME_ENCRYPTION": "off"}}),
    );
    let pod = apply(&seed_pod(), &own, &config);
    let env: BTreeMap<_, _> = crate::support::env(&pod, SIDECAR).into_iter().collect();
    assert_eq!(
        (
            env["VSC_LOG_FORMAT"].as_str(),
            env["ENCRYPTED_FILENAME_ENCRYPTION"].as_str()
        ),
        ("text", "off")
    );

    // Without encryption: no file name mode and no key Secret.
    let plain = seed_pfss_with(json!({"automaticEncryption": {"enabled": false}}));
    let pod = apply(&seed_pod(), &plain, &InjectionConfig::new(IMAGE));
    assert!(
        !crate::support::env(&pod, SIDECAR)
            .iter()
            .any(|(k, _)| k == "ENCRYPTED_FILENAME_ENCRYPTION" || k == "VSC_LOG_FORMAT")
    );
    let env_from = find(&pod, SIDECAR).env_from.clone().unwrap_or_default();
    let secrets: Vec<_> = env_from
        .iter()
        .filter_map(|e| e.secret_ref.as_ref())
        .map(|s| s.name.as_str())
        .collect();
    assert_eq!(secrets, ["cloud-press-secret-envs"]);
}

#[test]
fn the_final_sync_timeout_follows_the_grace_period_a_little_short_of_it() {
    for (grace, expected) in [
        (json!({}), "25s"),
        (json!({"terminationGracePeriodSeconds": 120}), "115s"),
        (json!({"terminationGracePeriodSeconds": 3}), "1s"),
    ] {
        let pod = apply(&pod_with(json!({"spec": grace})), &seed_pfss(), &config());
        for container in [RESTORE, SIDECAR] {
            let env: BTreeMap<_, _> = crate::support::env(&pod, container).into_iter().collect();
            assert_eq!(env["VSC_FINAL_SYNC_TIMEOUT"], expected, "{grace}");
        }
    }
    // The resource may choose its own.
    let own = seed_pfss_with(json!({"env": {"VSC_FINAL_SYNC_TIMEOUT": "0"}}));
    let pod = apply(&seed_pod(), &own, &config());
    let env: BTreeMap<_, _> = crate::support::env(&pod, SIDECAR).into_iter().collect();
    assert_eq!(env["VSC_FINAL_SYNC_TIMEOUT"], "0");
}

#[test]
fn annotations_override_permissions() {
    let pod = pod_with(json!({"metadata": {"annotations": {
        "riotkit.org/volume-user-id": "161", "riotkit.org/volume-group-id": "1312"
    }}}));
    let mutated = apply(&pod, &seed_pfss(), &config());
    for name in [RESTORE, SIDECAR] {
        let security = find(&mutated, name)
            .security_context
            .clone()
            .expect("security context");
        assert_eq!(
            (security.run_as_user, security.run_as_group),
            (Some(161), Some(1312))
        );
        assert_eq!(security.run_as_non_root, Some(true));
        assert_eq!(security.allow_privilege_escalation, Some(false));
        assert_eq!(security.read_only_root_filesystem, Some(true));
        assert_eq!(
            security.capabilities.and_then(|c| c.drop),
            Some(vec!["ALL".to_string()])
        );
    }
}

#[test]
fn root_uid_allows_root_and_no_permissions_sets_no_ids() {
    let root = seed_pfss_with(json!({"syncOptions": {"permissions": {"uid": 0, "gid": "0"}}}));
    let security = find(&apply(&seed_pod(), &root, &config()), SIDECAR)
        .security_context
        .clone()
        .expect("set");
    assert_eq!(
        (security.run_as_user, security.run_as_non_root),
        (Some(0), Some(false))
    );

    let unset = seed_pfss_with(json!({"syncOptions": {"permissions": null}}));
    let security = find(&apply(&seed_pod(), &unset, &config()), SIDECAR)
        .security_context
        .clone()
        .expect("set");
    assert_eq!(
        (
            security.run_as_user,
            security.run_as_group,
            security.run_as_non_root
        ),
        (None, None, Some(true))
    );
}

#[test]
fn mounts_copy_the_deepest_mount_per_volume_parents_first() {
    let pod = pod_with(json!({"spec": {
        "initContainers": [{"name": "some-container-name", "image": "x",
            "volumeMounts": [{"name": "content", "mountPath": "/var/www/riotkit/wp-content", "subPath": "wp", "readOnly": true}]}],
        "containers": [
            {"name": "app", "image": "x", "volumeMounts": [
                {"name": "www", "mountPath": "/var/www"},
                {"name": "www", "mountPath": "/var/www/riotkit/"},
                {"name": "content", "mountPath": "/var/www/riotkit/wp-content", "subPath": "wp", "readOnly": true,
                 "mountPropagation": "HostToContainer"},
                {"name": "cache", "mountPath": "/var/cache"},
                {"name": "workspace", "mountPath": "/var/www/riotkit/wp"}
            ]},
            {"name": "second", "image": "x", "volumeMounts": [{"name": "www", "mountPath": "/var/www/riotkit/"}]}
        ],
        "volumes": [{"name": "www", "emptyDir": {}}, {"name": "content", "emptyDir": {}},
                    {"name": "cache", "emptyDir": {}}, {"name": "workspace", "emptyDir": {}}]
    }}));
    let mutated = apply(&pod, &seed_pfss(), &config());
    for name in [RESTORE, SIDECAR] {
        let mounts = serde_json::to_value(&find(&mutated, name).volume_mounts).expect("json");
        assert_eq!(
            mounts,
            json!([
                {"name": "www", "mountPath": "/var/www/riotkit/"},
                {"name": "content", "mountPath": "/var/www/riotkit/wp-content", "subPath": "wp"},
                {"name": "volume-syncing-tmp", "mountPath": "/tmp"},
                {"name": "volume-syncing-config", "mountPath": "/etc/volume-syncing-controller"}
            ]),
            "{name}"
        );
    }
}

#[test]
fn resources_come_from_the_resource_else_the_default() {
    let default = ResourceRequirements {
        requests: Some([("memory".to_string(), Quantity("64Mi".into()))].into()),
        ..ResourceRequirements::default()
    };
    let config = InjectionConfig {
        default_resources: Some(default.clone()),
        ..config()
    };
    let pod = apply(&seed_pod(), &seed_pfss(), &config);
    assert_eq!(find(&pod, SIDECAR).resources, Some(default.clone()));
    assert_eq!(find(&pod, RESTORE).resources, Some(default));

    let own = seed_pfss_with(json!({"resources": {"limits": {"cpu": "200m"}}}));
    let pod = apply(&seed_pod(), &own, &config);
    let limits = find(&pod, SIDECAR)
        .resources
        .clone()
        .and_then(|r| r.limits)
        .expect("limits");
    assert_eq!(limits["cpu"], Quantity("200m".into()));

    let pod = apply(&seed_pod(), &seed_pfss(), &InjectionConfig::new(IMAGE));
    assert_eq!(find(&pod, SIDECAR).resources, None);
}

#[test]
fn image_and_pull_policy_come_from_the_config() {
    let config = InjectionConfig {
        agent_image: "registry.local/vsc@sha256:0123".into(),
        image_pull_policy: "Always".into(),
        ..InjectionConfig::default()
    };
    let pod = apply(&seed_pod(), &seed_pfss(), &config);
    for name in [RESTORE, SIDECAR] {
        let c = find(&pod, name);
        assert_eq!(c.image.as_deref(), Some("registry.local/vsc@sha256:0123"));
        assert_eq!(c.image_pull_policy.as_deref(), Some("Always"));
        assert_eq!(
            c.command,
            Some(vec!["/usr/bin/volume-syncing-controller".to_string()])
        );
    }
    assert_eq!(InjectionConfig::default().image_pull_policy, "IfNotPresent");
}

#[test]
fn namespace_comes_from_the_request_when_the_pod_has_none() {
    let mut pod = seed_pod();
    pod.metadata.namespace = None;
    let pfss = seed_pfss_with(
        json!({"remotePath": "/bucket/{{ pod.metadata.namespace }}/{{ pod.ObjectMeta.Name }}"}),
    );
    let mutated = apply(&pod, &pfss, &config());
    assert_eq!(args(&mutated, SIDECAR)[4], "/bucket/press/cloud-press-0");
}

#[test]
fn warnings_for_short_grace_period_and_classic_sidecar_in_a_job() {
    let pod =
        pod_with(json!({"spec": {"terminationGracePeriodSeconds": 5, "restartPolicy": "Never"}}));
    let (_, mutation) = mutate(&pod, &seed_pfss(), &config()).expect("admitted");
    assert!(
        mutation
            .warnings
            .iter()
            .any(|w| w.contains("terminationGracePeriodSeconds is 5")),
        "{:?}",
        mutation.warnings
    );
    assert!(
        mutation
            .warnings
            .iter()
            .any(|w| w.contains("restartPolicy Never")),
        "{:?}",
        mutation.warnings
    );
    let (_, mutation) = mutate(&pod, &seed_pfss(), &native()).expect("admitted");
    assert!(
        !mutation
            .warnings
            .iter()
            .any(|w| w.contains("restartPolicy")),
        "{:?}",
        mutation.warnings
    );

    // An app running as the agent's uid (1001 in the seed): nothing to warn about.
    let app_as_agent = pod_with(json!({"spec": {"securityContext": {"runAsUser": 1001}}}));
    let (_, mutation) = mutate(&app_as_agent, &seed_pfss(), &config()).expect("admitted");
    assert!(mutation.warnings.is_empty(), "{:?}", mutation.warnings);
    assert_eq!(
        mutation::warnings(&app_as_agent, &seed_pfss(), &config()),
        mutation.warnings
    );
}

#[test]
fn a_system_directory_as_local_path_is_refused_unless_forced() {
    // The restore would refuse it (exit 3) in every selected Pod: the resource is not Ready
    // and the webhook denies, naming the field (validate() serves both).
    let refused = |overrides: serde_json::Value| {
        seed_pfss_with(overrides).validate().iter().any(|error| {
            error.field == "spec.localPath"
                && error
                    .message
                    .contains("a system directory the restore refuses")
        })
    };
    for local in ["/srv", "/var/lib/", "/usr/share", "/srv/", "/etc"] {
        assert!(refused(json!({"localPath": local})), "{local}");
    }
    for path in [
        "/srv/data",
        "/usr/share/nginx/html",
        "/var/www/riotkit/wp-content",
    ] {
        assert!(!refused(json!({"localPath": path})), "{path}");
    }
    let forced = json!({"localPath": "/srv", "syncOptions": {"cleanUp": {"forceLocal": true}}});
    assert!(!refused(forced));
    let no_restore =
        json!({"localPath": "/srv", "syncOptions": {"allowedDirections": {"fromRemote": false}}});
    assert!(!refused(no_restore));
}

#[test]
fn tmp_volume_is_added_once() {
    let pod = apply(&seed_pod(), &seed_pfss(), &config());
    let volumes = pod
        .spec
        .as_ref()
        .and_then(|s| s.volumes.clone())
        .unwrap_or_default();
    let tmp: Vec<_> = volumes
        .iter()
        .filter(|v| v.name == "volume-syncing-tmp")
        .collect();
    assert_eq!(tmp.len(), 1);
    let empty_dir = tmp[0].empty_dir.clone().expect("emptyDir");
    assert_eq!(empty_dir.medium.as_deref(), Some("Memory"));
    assert_eq!(empty_dir.size_limit, Some(Quantity("16Mi".into())));
}

#[test]
fn health_check_serves_status_and_probes_liveness() {
    let pfss = seed_pfss_with(json!({"healthCheck": {"unhealthyAfterFailures": 3}}));
    let pod = apply(&seed_pod(), &pfss, &config());
    let sidecar = find(&pod, SIDECAR);
    let args = sidecar.args.clone().unwrap_or_default();
    let tail: Vec<&str> = args
        .iter()
        .map(String::as_str)
        .skip_while(|a| *a != "--status-addr")
        .collect();
    assert_eq!(
        tail,
        [
            "--status-addr",
            "0.0.0.0:9841",
            "--unhealthy-after-failures",
            "3"
        ]
    );
    let port = &sidecar.ports.as_ref().expect("ports")[0];
    assert_eq!(port.container_port, 9841);
    let probe = sidecar.liveness_probe.as_ref().expect("liveness probe");
    assert_eq!(
        probe.http_get.as_ref().and_then(|h| h.path.as_deref()),
        Some("/healthz")
    );

    // Metrics only: the port, no probe.
    let pfss = seed_pfss_with(json!({"healthCheck": {"port": 9100}}));
    let pod = apply(&seed_pod(), &pfss, &config());
    let sidecar = find(&pod, SIDECAR);
    assert!(sidecar.liveness_probe.is_none());
    assert!(sidecar.args.iter().flatten().any(|a| a == "0.0.0.0:9100"));
    assert!(
        !sidecar
            .args
            .iter()
            .flatten()
            .any(|a| a == "--unhealthy-after-failures")
    );
}

#[test]
fn a_status_port_the_app_already_uses_is_denied() {
    let mut pod = seed_pod();
    let app = &mut pod.spec.as_mut().expect("spec").containers[0];
    app.ports = Some(vec![
        serde_json::from_value(json!({"containerPort": 9841})).expect("port"),
    ]);
    let pfss = seed_pfss_with(json!({"healthCheck": {"unhealthyAfterFailures": 1}}));
    let denial = deny(&pod, &pfss, &config());
    assert_eq!(denial.field, "spec.healthCheck.port");
}

#[test]
fn safety_limits_trash_and_as_of_reach_the_agent() {
    let pfss = seed_pfss_with(json!({"syncOptions": {
        "safety": {"maxDeletePercent": 10, "maxDeleteFiles": 5, "requireSentinel": ".mounted", "allowIncompleteRestore": true},
        "trash": {"enabled": true, "retentionDays": 7, "keep": 3},
    }}));
    let pod = pod_with(
        json!({"metadata": {"annotations": {"riotkit.org/restore-as-of": "2026-11-24T18:00:00Z"}}}),
    );
    let pod = apply(&pod, &pfss, &config());
    let restore = args(&pod, RESTORE).join(" ");
    assert!(restore.contains("--max-delete-percent 10 --max-delete-files 5 --allow-incomplete --as-of 2026-11-24T18:00:00Z"), "{restore}");
    let sync = args(&pod, SIDECAR).join(" ");
    assert!(sync.contains("--max-delete-percent 10 --max-delete-files 5 --require-sentinel .mounted --trash --trash-retention-days 7 --trash-keep 3"), "{sync}");

    let bad =
        pod_with(json!({"metadata": {"annotations": {"riotkit.org/restore-as-of": "yesterday"}}}));
    let denial = deny(&bad, &pfss, &config());
    assert_eq!(
        denial.field,
        "metadata.annotations[riotkit.org/restore-as-of]"
    );
}

#[test]
fn with_reports_each_agent_container_mounts_a_pod_bound_token_for_its_resource_only() {
    use vsc_types::contract::{REPORT_TOKEN_DIR, REPORT_TOKEN_VOLUME, report_audience};
    let reports = InjectionConfig {
        report: Some(mutation::ReportConfig {
            url: "http://operator:8080/report".into(),
            writer_leases: true,
        }),
        ..config()
    };
    let pfss = seed_pfss();
    let pod = apply(&seed_pod(), &pfss, &reports);
    let spec = pod.spec.as_ref().expect("spec");
    let volume = spec
        .volumes
        .iter()
        .flatten()
        .find(|v| v.name == REPORT_TOKEN_VOLUME)
        .expect("the token volume");
    let sources = volume.projected.as_ref().and_then(|p| p.sources.clone());
    let token = sources
        .as_deref()
        .and_then(|s| s[0].service_account_token.clone());
    let name = pfss.metadata.name.as_deref().expect("name");
    assert_eq!(
        token.and_then(|t| t.audience),
        Some(report_audience(NAMESPACE, name))
    );
    assert_eq!(spec.service_account_name.as_deref(), Some("default"));
    for container in spec
        .init_containers
        .iter()
        .flatten()
        .chain(&spec.containers)
    {
        let mounts = container.volume_mounts.iter().flatten();
        let token_mount = mounts.clone().find(|m| m.name == REPORT_TOKEN_VOLUME);
        let ours = container.name == RESTORE || container.name == SIDECAR;
        assert_eq!(
            token_mount.map(|m| (m.mount_path.as_str(), m.read_only)),
            ours.then_some((REPORT_TOKEN_DIR, Some(true))),
            "{}: only the agent containers mount the token, read-only",
            container.name
        );
    }
    let file = env(&pod, SIDECAR)
        .into_iter()
        .find(|(name, _)| name == "VSC_REPORT_TOKEN_FILE");
    assert_eq!(
        file.map(|(_, value)| value),
        Some(format!("{REPORT_TOKEN_DIR}/report-token"))
    );
    let patch = mutation::mutate(&pod, NAMESPACE, &pfss, &reports).expect("admitted");
    assert!(
        patch.patch.0.is_empty(),
        "reinvocation patched: {}",
        patch.patch
    );

    let own_account = pod_with(json!({"spec": {"serviceAccountName": "shop-app"}}));
    let mutated = apply(&own_account, &pfss, &reports);
    let account = mutated.spec.and_then(|s| s.service_account_name);
    assert_eq!(
        account.as_deref(),
        Some("shop-app"),
        "the Pod's own account is kept"
    );
    let without_reports = apply(&seed_pod(), &pfss, &config());
    let spec = without_reports.spec.expect("spec");
    assert!(
        spec.service_account_name.is_none(),
        "no token, no account named"
    );
}

/// The sidecar's argv as the webhook writes it, for a Pod with `annotations`.
fn sidecar_args(
    pfss: &vsc_types::crd::PodFilesystemSync,
    annotations: serde_json::Value,
    config: &InjectionConfig,
) -> Vec<String> {
    let mut pod = seed_pod();
    pod.metadata.annotations = serde_json::from_value(annotations).expect("annotations");
    let pod = apply(&pod, pfss, config);
    let spec = pod.spec.expect("spec");
    let sidecar = spec
        .containers
        .iter()
        .chain(spec.init_containers.iter().flatten())
        .find(|c| c.name == vsc_types::contract::SIDECAR_CONTAINER_NAME)
        .expect("the sidecar")
        .clone();
    sidecar.args.unwrap_or_default()
}

#[test]
fn with_one_writer_the_sidecar_asks_the_operator_for_the_lease_and_a_pod_may_be_preferred() {
    let leases = |writer_leases| InjectionConfig {
        report: Some(mutation::ReportConfig {
            url: "http://operator:8080/report".into(),
            writer_leases,
        }),
        ..config()
    };
    let pfss = seed_pfss();
    let args = sidecar_args(&pfss, json!({}), &leases(true));
    let url = args
        .iter()
        .position(|a| a == "--writer-lease-url")
        .expect("the lease URL");
    assert_eq!(args[url + 1], "http://operator:8080/writer-lease");
    assert!(!args.contains(&"--prefer-primary".to_string()), "{args:?}");
    let preferred = sidecar_args(
        &pfss,
        json!({"riotkit.org/prefer-primary": "true"}),
        &leases(true),
    );
    assert!(
        preferred.contains(&"--prefer-primary".to_string()),
        "{preferred:?}"
    );

    // No lease without an operator that keeps them, or with `writers: every`.
    for (pfss, config) in [
        (pfss.clone(), leases(false)),
        (pfss.clone(), config()),
        (
            {
                let mut every = pfss.clone();
                every.spec.sync_options.writers = vsc_types::crd::Writers::Every;
                every
            },
            leases(true),
        ),
    ] {
        let args = sidecar_args(&pfss, json!({}), &config);
        assert!(!args.iter().any(|a| a.contains("writer-lease")), "{args:?}");
    }
}

#[test]
fn a_sidecar_without_a_lease_asks_the_operator_for_sync_requests_when_it_reports() {
    let reporting = InjectionConfig {
        report: Some(mutation::ReportConfig {
            url: "http://operator:8080/report".into(),
            writer_leases: true,
        }),
        ..config()
    };
    let mut every = seed_pfss();
    every.spec.sync_options.writers = vsc_types::crd::Writers::Every;
    let args = sidecar_args(&every, json!({}), &reporting);
    let url = args
        .iter()
        .position(|a| a == "--sync-requests-url")
        .expect("the sync-requests URL");
    assert_eq!(args[url + 1], "http://operator:8080/sync-requests");
    // A lease holder hears of requests from its lease; without reports there is no operator
    // to ask.
    for (pfss, config) in [(seed_pfss(), reporting), (every, config())] {
        let args = sidecar_args(&pfss, json!({}), &config);
        assert!(
            !args.iter().any(|a| a.contains("sync-requests")),
            "{args:?}"
        );
    }
}
