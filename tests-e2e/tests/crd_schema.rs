//! Bad PodFilesystemSync fields refused by the real API server's schema (the CRD's types,
//! enums, bounds and CEL rules), the earliest place: `kubectl apply` fails naming the field,
//! and nothing is stored. One case a row, each sent as raw JSON (wrong types included).

// A scenario reads top to bottom against one setup; the code under test keeps its
// functions short.
#![allow(clippy::too_many_lines)]

use kube::api::{Api, DynamicObject, PostParams};
use kube::core::ApiResource;
use serde_json::{Value, json};
use vsc_e2e::control_plane::ControlPlane;
use vsc_e2e::operator::install_crd;
use vsc_types::crd::PodFilesystemSync;

/// A valid spec with `key` of it (a dotted path) set to `value`; `null` removes it.
fn spec_with(path: &str, value: Value) -> Value {
    let mut spec = json!({
        "podSelector": {"matchLabels": {"app": "a"}},
        "localPath": "/data",
        "remotePath": "/bucket/a",
    });
    let mut at = &mut spec;
    let keys: Vec<&str> = path.split('.').collect();
    for key in &keys[..keys.len() - 1] {
        at = at
            .as_object_mut()
            .expect("an object on the way")
            .entry(key.to_string())
            .or_insert_with(|| json!({}));
    }
    let object = at.as_object_mut().expect("an object");
    let last = keys[keys.len() - 1].to_string();
    if value.is_null() {
        object.remove(&last);
    } else {
        object.insert(last, value);
    }
    spec
}

#[tokio::test]
async fn each_bad_field_is_refused_by_the_api_server_naming_it_and_nothing_is_stored() {
    let plane = ControlPlane::start().await;
    let client = plane.client().await;
    install_crd(&client).await;
    let resource = ApiResource::erase::<PodFilesystemSync>(&());
    let api: Api<DynamicObject> = Api::namespaced_with(client.clone(), "default", &resource);
    let cases: Vec<(&str, Value, &str)> = vec![
        ("remotePath", Value::Null, "spec.remotePath"),
        (
            "localPath",
            json!("data"),
            "localPath must be an absolute path",
        ),
        (
            "localPath",
            json!("/data/../etc"),
            "localPath must not contain '..'",
        ),
        (
            "podSelector",
            json!({}),
            "an empty podSelector selects no Pods",
        ),
        ("debug", json!("yes"), "spec.debug"),
        ("env", json!({"REMOTE_PORT": 9000}), "spec.env.REMOTE_PORT"),
        ("sidecarMode", json!("sometimes"), "spec.sidecarMode"),
        ("healthCheck.port", json!(0), "spec.healthCheck.port"),
        (
            "healthCheck.unhealthyAfterFailures",
            json!(5000),
            "spec.healthCheck.unhealthyAfterFailures",
        ),
        (
            "initContainerPlacement.placement",
            json!("middle"),
            "spec.initContainerPlacement.placement",
        ),
        (
            "automaticEncryption.secretName",
            json!("Bad Name"),
            "secretName must be a valid Secret name",
        ),
        (
            "syncOptions.method",
            json!("poll"),
            "spec.syncOptions.method",
        ),
        (
            "syncOptions.writers",
            json!("two"),
            "spec.syncOptions.writers",
        ),
        (
            "syncOptions.maxOneSyncPerMinutes",
            json!("1.5"),
            "maxOneSyncPerMinutes must be a whole number",
        ),
        (
            "syncOptions.permissions.uid",
            json!("root"),
            "uid must be a number",
        ),
        (
            "syncOptions.permissions.gid",
            json!(-1),
            "gid must be a number",
        ),
        (
            "syncOptions.safety.maxDeletePercent",
            json!(150),
            "spec.syncOptions.safety.maxDeletePercent",
        ),
        (
            "syncOptions.trash.retentionDays",
            json!(-1),
            "spec.syncOptions.trash.retentionDays",
        ),
    ];
    for (index, (path, value, needle)) in cases.into_iter().enumerate() {
        let name = format!("bad-{index}");
        let mut object = DynamicObject::new(&name, &resource);
        object.data = json!({"spec": spec_with(path, value.clone())});
        let err = api
            .create(&PostParams::default(), &object)
            .await
            .expect_err(&format!("{path} = {value} was stored"));
        let message = err.to_string();
        assert!(
            message.contains(needle),
            "{path} = {value}: no {needle:?} in {message}"
        );
        assert!(
            api.get_opt(&name).await.expect("get").is_none(),
            "{path} = {value}: stored anyway"
        );
    }
}
