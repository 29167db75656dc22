//! The seed README's example, end to end through the pure mutation.

use crate::support::*;
use serde_json::{Value, json};
use vsc_types::crd::{
    EffectivePlacement, IntOrNumericString, PodFilesystemSync, SidecarMode, SyncMethod,
};

#[test]
fn seed_example_deserializes_with_every_field() {
    let pfss = seed_pfss();
    let spec = &pfss.spec;
    assert_eq!(pfss.metadata.name.as_deref(), Some("cloud-press"));
    assert_eq!(spec.local_path, "/var/www/riotkit/wp-content");
    assert_eq!(spec.remote_path, "/example-org-bucket");
    assert_eq!(
        pfss.effective_placement(),
        Ok(EffectivePlacement::Before("some-container-name"))
    );
    let options = &spec.sync_options;
    assert_eq!(options.method, SyncMethod::Scheduler);
    assert_eq!(options.schedule, "@every 5m");
    assert_eq!(options.min_minutes_between_syncs(), Ok(Some(15)));
    let permissions = options.permissions.as_ref().expect("permissions");
    assert_eq!(
        permissions.uid,
        Some(IntOrNumericString::String("1001".into()))
    );
    assert_eq!(permissions.gid, Some(IntOrNumericString::Int(1001)));
    assert_eq!(
        (permissions.uid(), permissions.gid()),
        (Ok(Some(1001)), Ok(Some(1001)))
    );
    assert!(options.clean_up.remote && options.clean_up.local);
    assert!(!options.clean_up.force_remote && !options.clean_up.force_local);
    assert!(options.allowed_directions.to_remote && options.allowed_directions.from_remote);
    assert!(options.restore_remote_on_first_run);
    assert_eq!(spec.env.len(), 4);
    assert_eq!(spec.env["REMOTE_TYPE"], "s3");
    assert_eq!(spec.env_from_secrets[0].name, "cloud-press-secret-envs");
    assert_eq!(spec.env_from_secrets[0].namespace, None);
    assert_eq!(
        pfss.encryption_secret_name().as_deref(),
        Some("cloud-press-remote-sync")
    );
    assert!(!spec.debug);
    assert_eq!(spec.sidecar_mode, SidecarMode::Auto);
    assert_eq!(pfss.validate(), vec![]);
}

#[test]
fn minimal_resource_gets_the_documented_defaults() {
    let pfss: PodFilesystemSync = serde_saphyr::from_str(
        "apiVersion: riotkit.org/v1alpha1\nkind: PodFilesystemSync\nmetadata: {name: m, namespace: press}\n\
         spec:\n  podSelector: {matchLabels: {app: x}}\n  localPath: /data\n  remotePath: /bucket\n",
    )
    .expect("minimal resource parses");
    let spec = &pfss.spec;
    assert_eq!(pfss.effective_placement(), Ok(EffectivePlacement::Last));
    assert_eq!(spec.sync_options.method, SyncMethod::Scheduler);
    assert_eq!(spec.sync_options.schedule, "@every 15m");
    assert_eq!(spec.sync_options.max_one_sync_per_minutes, None);
    assert_eq!(spec.sync_options.permissions, None);
    let c = &spec.sync_options.clean_up;
    assert_eq!(
        (c.remote, c.local, c.force_remote, c.force_local),
        (true, true, false, false)
    );
    let d = &spec.sync_options.allowed_directions;
    assert_eq!((d.to_remote, d.from_remote), (true, true));
    assert!(spec.sync_options.restore_remote_on_first_run);
    assert!(spec.env.is_empty() && spec.env_from_secrets.is_empty());
    assert!(!spec.automatic_encryption.enabled);
    assert_eq!(pfss.encryption_secret_name(), None);
    assert!(!spec.debug);
    assert_eq!(spec.resources, None);
    assert_eq!(spec.sidecar_mode, SidecarMode::Auto);
    assert_eq!(pfss.validate(), vec![]);
}

#[test]
fn encryption_secret_name_defaults_to_the_resource_name() {
    let pfss =
        seed_pfss_with(json!({"automaticEncryption": {"enabled": true, "secretName": null}}));
    assert_eq!(
        pfss.encryption_secret_name().as_deref(),
        Some("cloud-press-encryption")
    );
}

#[test]
fn seed_example_injects_exactly_the_expected_containers() {
    let pod = apply(&seed_pod(), &seed_pfss(), &config());
    let expected: Value =
        serde_json::from_str(&fixture("seed-expected-spec.json")).expect("fixture is JSON");
    let actual = serde_json::to_value(pod.spec.as_ref().expect("spec")).expect("serializes");
    for field in ["initContainers", "containers", "volumes"] {
        assert_eq!(
            actual[field],
            expected[field],
            "{field} differs:\n{}",
            serde_json::to_string_pretty(&actual[field]).unwrap_or_default()
        );
    }
    // Nothing else of the Pod changed.
    let mut before = serde_json::to_value(seed_pod()).expect("serializes");
    let mut after = serde_json::to_value(&pod).expect("serializes");
    for doc in [&mut before, &mut after] {
        for field in ["initContainers", "containers", "volumes"] {
            doc["spec"].as_object_mut().map(|s| s.remove(field));
        }
    }
    assert_eq!(before, after);
}

#[test]
fn seed_template_from_annotation_renders_verbatim() {
    let pfss = seed_pfss_with(
        json!({"remotePath": "/stalin-was-a-dickhead/{{ pod.ObjectMeta.Annotations[\"subdir\"] }}"}),
    );
    let pod = apply(&seed_pod(), &pfss, &config());
    for container in [RESTORE, SIDECAR] {
        assert!(
            env(&pod, container).contains(&(
                "VSC_REMOTE_PATH".into(),
                "/stalin-was-a-dickhead/wordpress".into()
            )),
            "{container}"
        );
    }
    assert_eq!(args(&pod, RESTORE)[2], "/stalin-was-a-dickhead/wordpress");
    assert_eq!(args(&pod, SIDECAR)[4], "/stalin-was-a-dickhead/wordpress");
}

#[test]
fn env_values_are_templates_too() {
    let pfss = seed_pfss_with(
        json!({"env": {"REMOTE_ENDPOINT": "http://{{ pod.metadata.namespace }}.minio:9000"}}),
    );
    let pod = apply(&seed_pod(), &pfss, &config());
    assert!(
        env(&pod, SIDECAR).contains(&("REMOTE_ENDPOINT".into(), "http://press.minio:9000".into()))
    );
}
