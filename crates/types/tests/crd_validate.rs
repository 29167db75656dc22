//! `PodFilesystemSync::validate` and the pure helpers the reconciler and the webhook share.

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]
#![cfg(feature = "kube")]

use serde_json::{Value, json};
use vsc_types::crd::{
    EffectivePlacement, IntOrNumericString, PodFilesystemSync, SidecarMode, check_local_path,
    is_dns_subdomain, is_valid_env_name, parse_numeric_id,
};

fn resource(spec: Value) -> PodFilesystemSync {
    let mut base = json!({
        "podSelector": {"matchLabels": {"app": "web"}},
        "localPath": "/data",
        "remotePath": "/bucket/{{ pod.metadata.name }}"
    });
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), spec) {
        base.extend(extra);
    }
    let mut pfss = PodFilesystemSync::new(
        "web",
        serde_json::from_value(base).expect("valid spec JSON"),
    );
    pfss.metadata.namespace = Some("apps".into());
    pfss
}

fn fields(pfss: &PodFilesystemSync) -> Vec<String> {
    pfss.validate().into_iter().map(|e| e.field).collect()
}

#[test]
fn a_complete_resource_is_valid() {
    let pfss = resource(json!({
        "initContainerPlacement": {"placement": "after", "containerReference": "git-clone"},
        "syncOptions": {"method": "fsnotify", "schedule": "", "maxOneSyncPerMinutes": 15,
                        "permissions": {"uid": "1001", "gid": 1001}},
        "env": {"REMOTE_TYPE": "s3", "my.var-1": "x"},
        "envFromSecrets": [{"name": "creds"}, {"name": "more", "namespace": "apps"}],
        "automaticEncryption": {"enabled": true}
    }));
    assert_eq!(pfss.validate(), vec![]);
    assert_eq!(
        pfss.effective_placement(),
        Ok(EffectivePlacement::After("git-clone"))
    );
    assert_eq!(
        pfss.encryption_secret_name().as_deref(),
        Some("web-encryption")
    );
}

#[test]
fn each_rule_names_its_field() {
    let cases = [
        (json!({"podSelector": {}}), "spec.podSelector"),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}),
            "spec.podSelector.matchExpressions[0]",
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
            "spec.podSelector.matchExpressions[0]",
        ),
        (
            json!({"podSelector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}}),
            "spec.podSelector.matchExpressions[0].operator",
        ),
        (json!({"localPath": "data"}), "spec.localPath"),
        (json!({"localPath": "/data/../etc"}), "spec.localPath"),
        (json!({"localPath": "/"}), "spec.localPath"),
        (json!({"localPath": "/data\n"}), "spec.localPath"),
        (json!({"remotePath": "  "}), "spec.remotePath"),
        (
            json!({"initContainerPlacement": {"placement": "before"}}),
            "spec.initContainerPlacement.containerReference",
        ),
        (
            json!({"initContainerPlacement": {"placement": "last", "containerReference": "x"}}),
            "spec.initContainerPlacement.containerReference",
        ),
        (
            json!({"initContainerPlacement": {"placement": "after", "containerReference": "volume-syncing-sidecar"}}),
            "spec.initContainerPlacement.containerReference",
        ),
        (
            json!({"syncOptions": {"schedule": " "}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"syncOptions": {"maxOneSyncPerMinutes": "1.5"}}),
            "spec.syncOptions.maxOneSyncPerMinutes",
        ),
        (
            json!({"syncOptions": {"permissions": {"uid": "10O1"}}}),
            "spec.syncOptions.permissions.uid",
        ),
        (
            json!({"syncOptions": {"permissions": {"gid": 2_147_483_648_i64}}}),
            "spec.syncOptions.permissions.gid",
        ),
        (json!({"env": {"A=B": "x"}}), "spec.env.A=B"),
        (
            json!({"env": {"VSC_LOCAL_PATH": "/x"}}),
            "spec.env.VSC_LOCAL_PATH",
        ),
        (
            json!({"env": {"ENCRYPTED_PASSWORD2": "x"}, "automaticEncryption": {"enabled": true}}),
            "spec.env.ENCRYPTED_PASSWORD2",
        ),
        (
            json!({"envFromSecrets": [{"name": "Not_A_Name"}]}),
            "spec.envFromSecrets[0].name",
        ),
        (
            json!({"envFromSecrets": [{"name": "ok"}, {"name": "s", "namespace": "other"}]}),
            "spec.envFromSecrets[1].namespace",
        ),
        (
            json!({"automaticEncryption": {"enabled": true, "secretName": "Bad Name"}}),
            "spec.automaticEncryption.secretName",
        ),
        // What the sidecar or a kubelet would refuse in every selected Pod.
        (
            json!({"syncOptions": {"schedule": "every five minutes"}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"syncOptions": {"schedule": "61 * * * *"}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"syncOptions": {"schedule": "@every 5 parsecs"}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"syncOptions": {"method": "fsnotify", "schedule": "@every 0s"}}),
            "spec.syncOptions.schedule",
        ),
        (
            json!({"env": {"REMOTE_ENDPOINT": "http://minio:9000\n"}}),
            "spec.env.REMOTE_ENDPOINT",
        ),
        (
            json!({"env": {"ENCRYPTED_SALT": " padded"}}),
            "spec.env.ENCRYPTED_SALT",
        ),
        (json!({"remotePath": "/b/../other"}), "spec.remotePath"),
        (
            json!({"resources": {"limits": {"memory": "lots"}}}),
            "spec.resources.limits.memory",
        ),
        (
            json!({"resources": {"requests": {"cpu": "-1"}}}),
            "spec.resources.requests.cpu",
        ),
        (
            json!({"resources": {"limits": {"memory": "64Mi"}, "requests": {"memory": "1Gi"}}}),
            "spec.resources.requests.memory",
        ),
    ];
    for (spec, field) in cases {
        let pfss = resource(spec.clone());
        assert_eq!(fields(&pfss), vec![field.to_string()], "{spec}");
    }
}

#[test]
fn what_the_agent_and_a_kubelet_accept_is_valid() {
    for spec in [
        json!({"syncOptions": {"schedule": "0 30 * * * *"}}),
        json!({"syncOptions": {"schedule": "@hourly"}}),
        json!({"syncOptions": {"schedule": "@every 1m30s"}}),
        // A line break outside the rclone config is the app's business.
        json!({"env": {"GREETING": "two\nlines"}}),
        json!({"remotePath": "/b/..hidden/x"}),
        json!({"resources": {"limits": {"memory": "512Mi", "cpu": "0.5"},
                             "requests": {"memory": "64M", "cpu": "100m", "ephemeral-storage": "1e3"}}}),
    ] {
        assert_eq!(resource(spec.clone()).validate(), vec![], "{spec}");
    }
}

#[test]
fn a_bad_schedule_is_explained_with_the_forms_that_work() {
    let errors = resource(json!({"syncOptions": {"schedule": "every five minutes"}})).validate();
    assert_eq!(errors.len(), 1);
    let message = errors[0].to_string();
    assert!(
        message
            .starts_with("spec.syncOptions.schedule: 'every five minutes' is not a valid schedule")
            && message.contains("'@every 1m'"),
        "{message}"
    );
}

#[test]
fn own_keys_are_allowed_without_automatic_encryption() {
    let pfss = resource(json!({"env": {"ENCRYPTED_PASSWORD": "x", "ENCRYPTED_PASSWORD2": "y"}}));
    assert_eq!(pfss.validate(), vec![]);
}

#[test]
fn field_errors_display_field_and_message() {
    let errors = resource(json!({"localPath": "data"})).validate();
    assert_eq!(
        errors[0].to_string(),
        "spec.localPath: 'data' must be an absolute path"
    );
}

#[test]
fn uid_and_gid_accept_numbers_and_numeric_strings_and_keep_their_form() {
    for (input, value) in [
        (json!(1001), 1001),
        (json!("1001"), 1001),
        (json!("0"), 0),
        (json!(0), 0),
    ] {
        let parsed: IntOrNumericString = serde_json::from_value(input.clone()).expect("parses");
        assert_eq!(parsed.as_i64(), Some(value));
        assert_eq!(
            serde_json::to_value(&parsed).expect("serializes"),
            input,
            "round trip keeps the form"
        );
    }
    assert_eq!(IntOrNumericString::String("-1".into()).as_i64(), None);
    assert_eq!(IntOrNumericString::String(String::new()).as_i64(), None);
    assert_eq!(IntOrNumericString::String(" 7 ".into()).as_i64(), Some(7));
    assert!(serde_json::from_value::<IntOrNumericString>(json!(1.5)).is_err());
}

#[test]
fn numeric_ids_from_annotations() {
    assert_eq!(parse_numeric_id("161"), Some(161));
    assert_eq!(parse_numeric_id("2147483647"), Some(2_147_483_647));
    assert_eq!(parse_numeric_id("2147483648"), None);
    assert_eq!(parse_numeric_id("-1"), None);
    assert_eq!(parse_numeric_id("root"), None);
    assert_eq!(parse_numeric_id(""), None);
}

#[test]
fn name_and_path_rules() {
    assert!(
        is_valid_env_name("REMOTE_TYPE") && is_valid_env_name("_x") && is_valid_env_name("a.b-c")
    );
    assert!(
        !is_valid_env_name("")
            && !is_valid_env_name("1A")
            && !is_valid_env_name("A B")
            && !is_valid_env_name("A=B")
    );
    assert!(is_dns_subdomain("cloud-press-remote-sync") && is_dns_subdomain("a.b"));
    assert!(
        !is_dns_subdomain("")
            && !is_dns_subdomain("-a")
            && !is_dns_subdomain("A")
            && !is_dns_subdomain("a..b")
    );
    assert!(check_local_path("/var/www").is_ok() && check_local_path("/var/www/").is_ok());
    assert!(
        check_local_path("/var/..x").is_ok(),
        "'..x' is a name, not a parent reference"
    );
    for bad in ["var", "/var/../etc", "/..", "//", "/"] {
        assert!(check_local_path(bad).is_err(), "{bad}");
    }
}

#[test]
fn restore_decision_follows_the_direction_only() {
    assert!(resource(json!({})).should_restore());
    let keep_local_first = resource(json!({"syncOptions": {"restoreRemoteOnFirstRun": false}}));
    assert!(
        keep_local_first.should_restore(),
        "the agent decides first runs from the remote"
    );
    let no_restore = resource(json!({"syncOptions": {"allowedDirections": {"fromRemote": false}}}));
    assert!(!no_restore.should_restore());
}

#[test]
fn sidecar_mode_decides_native() {
    assert!(SidecarMode::Auto.is_native(true) && !SidecarMode::Auto.is_native(false));
    assert!(SidecarMode::Native.is_native(false) && !SidecarMode::Classic.is_native(true));
}

#[test]
fn spec_round_trips_through_json() {
    let pfss =
        resource(json!({"syncOptions": {"permissions": {"uid": "1001", "gid": 7}}, "debug": true}));
    let json = serde_json::to_value(&pfss).expect("serializes");
    assert_eq!(
        json["spec"]["syncOptions"]["permissions"],
        json!({"uid": "1001", "gid": 7})
    );
    let back: PodFilesystemSync = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, pfss);
}
