//! What a real kubelet showed about the injected containers (issue 10): no preStop hook on
//! the sidecar, the config at the seed's documented path, hostNetwork Pods, the Pod's own
//! name in reports, and warnings for a short grace period and an app running as another user.

use crate::support::*;
use serde_json::json;

fn warnings_of(pod: &k8s_openapi::api::core::v1::Pod, native_sidecars: bool) -> Vec<String> {
    let config = if native_sidecars { native() } else { config() };
    mutate(pod, &seed_pfss(), &config)
        .unwrap_or_else(|d| panic!("denied: {d}"))
        .1
        .warnings
}

/// The seed Pod with its app container running as `uid` (the seed's agent runs as 1001).
fn app_as(uid: i64) -> k8s_openapi::api::core::v1::Pod {
    let mut pod = seed_pod();
    if let Some(spec) = pod.spec.as_mut() {
        spec.containers[0].security_context = Some(k8s_openapi::api::core::v1::SecurityContext {
            run_as_user: Some(uid),
            ..Default::default()
        });
    }
    pod
}

#[test]
fn the_sidecar_has_no_prestop_hook_its_sigterm_is_the_final_sync() {
    for config in [config(), native()] {
        let pod = apply(&seed_pod(), &seed_pfss(), &config);
        assert_eq!(
            find(&pod, SIDECAR).lifecycle,
            None,
            "native: {}",
            config.native_sidecars
        );
    }
}

#[test]
fn the_config_lives_at_the_seed_path_on_a_writable_memory_volume() {
    let pod = apply(&seed_pod(), &seed_pfss(), &native());
    for name in [RESTORE, SIDECAR] {
        let container = find(&pod, name);
        let mount = container
            .volume_mounts
            .iter()
            .flatten()
            .find(|m| m.mount_path == "/etc/volume-syncing-controller")
            .unwrap_or_else(|| panic!("{name} has no mount at the config directory"));
        assert_eq!(mount.name, "volume-syncing-config");
        assert_eq!(mount.read_only, None, "the agent writes the config there");
        assert!(
            env(&pod, name).contains(&(
                "VSC_CONFIG_PATH".into(),
                "/etc/volume-syncing-controller/rclone.conf".into()
            )),
            "{name}: {:?}",
            env(&pod, name)
        );
    }
    let volumes = pod.spec.and_then(|s| s.volumes).unwrap_or_default();
    let config_volumes: Vec<_> = volumes
        .iter()
        .filter(|v| v.name == "volume-syncing-config")
        .collect();
    assert_eq!(config_volumes.len(), 1);
    let empty_dir = config_volumes[0].empty_dir.clone().expect("an emptyDir");
    assert_eq!(empty_dir.medium.as_deref(), Some("Memory"));
}

#[test]
fn reinvoking_keeps_one_config_volume_and_an_empty_patch() {
    let once = apply(&seed_pod(), &seed_pfss(), &native());
    let (twice, mutation) = mutate(&once, &seed_pfss(), &native()).expect("admitted");
    assert!(mutation.patch.0.is_empty(), "{}", mutation.patch);
    assert_eq!(once, twice);
}

#[test]
fn a_volume_mounted_over_the_config_directory_is_denied() {
    let pod = pod_with(json!({"spec": {"containers": [{
        "name": "app", "image": "wordpress:6",
        "volumeMounts": [{"name": "www", "mountPath": "/etc"}]
    }]}}));
    let pfss = seed_pfss_with(json!({"localPath": "/etc/app", "initContainerPlacement": null}));
    let denial = deny(&pod, &pfss, &native());
    assert_eq!(denial.field, "spec.localPath");
    assert!(
        denial.message.contains("/etc/volume-syncing-controller"),
        "{denial}"
    );
}

#[test]
fn both_containers_get_the_pod_name_and_namespace_from_the_downward_api() {
    let pod = apply(&seed_pod(), &seed_pfss(), &native());
    for name in [RESTORE, SIDECAR] {
        let env = find(&pod, name).env.clone().unwrap_or_default();
        for (var, field) in [
            ("POD_NAME", "metadata.name"),
            ("POD_NAMESPACE", "metadata.namespace"),
        ] {
            let entry = env
                .iter()
                .find(|e| e.name == var)
                .unwrap_or_else(|| panic!("{name} has no {var}"));
            let field_ref = entry.value_from.as_ref().and_then(|v| v.field_ref.as_ref());
            assert_eq!(field_ref.map(|f| f.field_path.as_str()), Some(field));
        }
        let names: Vec<&str> = env.iter().map(|e| e.name.as_str()).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted, "env stays sorted by name");
    }
}

#[test]
fn a_host_network_pod_declares_no_port_and_probes_the_agent_over_loopback() {
    let pfss = seed_pfss_with(json!({"healthCheck": {"unhealthyAfterFailures": 3}}));
    let pod = pod_with(json!({"spec": {"hostNetwork": true}}));
    let mutated = apply(&pod, &pfss, &native());
    let sidecar = find(&mutated, SIDECAR);
    assert_eq!(sidecar.ports, None, "a declared port would be a host port");
    let args = args(&mutated, SIDECAR);
    let at = args
        .iter()
        .position(|a| a == "--status-addr")
        .expect("--status-addr");
    assert_eq!(args[at + 1], "127.0.0.1:0", "a free loopback port");
    assert!(
        args.windows(2).any(|w| w
            == [
                "--status-addr-file",
                "/tmp/volume-syncing-controller.status-addr"
            ]),
        "{args:?}"
    );
    let probe = sidecar.liveness_probe.clone().expect("a liveness probe");
    assert_eq!(probe.http_get, None);
    assert_eq!(
        probe.exec.and_then(|e| e.command).unwrap_or_default(),
        [
            "/usr/bin/volume-syncing-controller",
            "health",
            "--status-addr-file",
            "/tmp/volume-syncing-controller.status-addr"
        ]
    );
    // Without hostNetwork nothing changes: a named container port, probed over HTTP.
    let regular = apply(&seed_pod(), &pfss, &native());
    let sidecar = find(&regular, SIDECAR);
    assert_eq!(sidecar.ports.iter().flatten().count(), 1);
    assert!(
        sidecar
            .liveness_probe
            .as_ref()
            .and_then(|p| p.http_get.as_ref())
            .is_some()
    );
}

#[test]
fn a_short_grace_period_is_warned_about_with_what_it_must_cover() {
    let pod = pod_with(json!({"spec": {"terminationGracePeriodSeconds": 10}}));
    for (native_sidecars, covers) in [(true, "the app's own shutdown"), (false, "starts when")] {
        let warnings = warnings_of(&pod, native_sidecars);
        assert!(
            warnings
                .iter()
                .any(|w| w.contains("terminationGracePeriodSeconds is 10") && w.contains(covers)),
            "{warnings:?}"
        );
    }
    let pod = pod_with(json!({"spec": {"terminationGracePeriodSeconds": 30}}));
    let warnings = warnings_of(&pod, true);
    assert!(
        !warnings
            .iter()
            .any(|w| w.contains("terminationGracePeriodSeconds")),
        "{warnings:?}"
    );
}

#[test]
fn an_app_running_as_another_user_than_the_agent_is_warned_about() {
    let warnings = warnings_of(&app_as(0), true);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("container app runs as uid 0")
                && w.contains("runs as uid 1001")
                && w.contains("fsGroup")),
        "{warnings:?}"
    );
    let warnings = warnings_of(&seed_pod(), true);
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("container app sets no runAsUser")),
        "unknown is not the same: {warnings:?}"
    );
}

#[test]
fn no_run_as_warning_for_the_same_uid_an_fs_group_or_a_root_agent() {
    let same = warnings_of(&app_as(1001), true);
    assert!(same.is_empty(), "{same:?}");

    let mut with_fs_group = app_as(0);
    if let Some(spec) = with_fs_group.spec.as_mut() {
        spec.security_context = Some(k8s_openapi::api::core::v1::PodSecurityContext {
            fs_group: Some(1001),
            ..Default::default()
        });
    }
    let warnings = warnings_of(&with_fs_group, true);
    assert!(warnings.is_empty(), "{warnings:?}");

    let mut root_agent = app_as(33);
    root_agent.metadata.annotations = Some(
        [
            ("subdir".to_string(), "wordpress".to_string()),
            ("riotkit.org/volume-user-id".to_string(), "0".to_string()),
        ]
        .into(),
    );
    let warnings = warnings_of(&root_agent, true);
    assert!(warnings.is_empty(), "{warnings:?}");
}
