//! `crds/podfilesystemsyncs.riotkit.org.yaml` is generated from the Rust types. This test
//! fails when the committed file is stale; `UPDATE_CRDS=1 cargo test -p vsc-types --features
//! kube --test crd_yaml` rewrites it.
#![cfg(feature = "kube")]

use std::path::PathBuf;

use kube::CustomResourceExt;
use serde_json::Value;
use vsc_types::crd::PodFilesystemSync;

fn crd_file() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../crds/podfilesystemsyncs.riotkit.org.yaml")
}

fn generated() -> String {
    let crd = serde_json::to_value(PodFilesystemSync::crd()).expect("CRD serializes");
    let mut out = String::from(
        "# Generated from crates/types/src/crd.rs. Do not edit: run\n\
         #   UPDATE_CRDS=1 cargo test -p vsc-types --features kube --test crd_yaml\n---\n",
    );
    emit_map_body(&crd, 0, &mut out);
    out
}

#[test]
fn committed_crd_yaml_is_up_to_date() {
    let path = crd_file();
    let expected = generated();
    if std::env::var_os("UPDATE_CRDS").is_some_and(|v| v == "1") {
        std::fs::create_dir_all(path.parent().expect("crds dir")).expect("create crds/");
        std::fs::write(&path, &expected).expect("write CRD YAML");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == expected,
        "{} is stale or missing: the PodFilesystemSync types changed.\n\
         Regenerate it with: UPDATE_CRDS=1 cargo test -p vsc-types --features kube --test crd_yaml",
        path.display()
    );
}

#[test]
fn crd_names_and_scope() {
    let crd = PodFilesystemSync::crd();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("podfilesystemsyncs.riotkit.org")
    );
    assert_eq!(crd.spec.scope, "Namespaced");
    assert_eq!(crd.spec.names.short_names, Some(vec!["pfss".to_string()]));
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    assert!(
        version
            .subresources
            .as_ref()
            .and_then(|s| s.status.as_ref())
            .is_some()
    );
    let columns: Vec<_> = version
        .additional_printer_columns
        .iter()
        .flatten()
        .map(|c| c.name.as_str())
        .collect();
    assert_eq!(
        columns,
        [
            "Remote path",
            "Local path",
            "Ready",
            "Synced",
            "Primary",
            "Last sync",
            "Age",
            "Selector"
        ]
    );
}

/// Every property of the schema has a description, so `kubectl explain` reads well. The
/// k8s-openapi types embedded (LabelSelector, ResourceRequirements, Condition) bring theirs.
#[test]
fn every_field_has_a_description() {
    let crd = serde_json::to_value(PodFilesystemSync::crd()).expect("CRD serializes");
    let root = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"];
    let mut missing = Vec::new();
    walk_properties(&root["properties"]["spec"], "spec", &mut missing);
    walk_properties(&root["properties"]["status"], "status", &mut missing);
    assert!(
        missing.is_empty(),
        "fields without a description: {missing:?}"
    );
}

fn walk_properties(schema: &Value, path: &str, missing: &mut Vec<String>) {
    if path != "spec" && path != "status" && schema.get("description").is_none() {
        missing.push(path.to_string());
    }
    if let Some(properties) = schema.get("properties").and_then(Value::as_object) {
        for (name, property) in properties {
            walk_properties(property, &format!("{path}.{name}"), missing);
        }
    }
    if let Some(properties) = schema
        .get("items")
        .and_then(|items| items.get("properties"))
        .and_then(Value::as_object)
    {
        for (name, property) in properties {
            walk_properties(property, &format!("{path}[].{name}"), missing);
        }
    }
}

#[test]
fn schema_defaults_match_serde_defaults() {
    let crd = serde_json::to_value(PodFilesystemSync::crd()).expect("CRD serializes");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let sync = &spec["syncOptions"]["properties"];
    assert_eq!(sync["method"]["default"], "scheduler");
    assert_eq!(
        sync["method"]["enum"],
        serde_json::json!(["scheduler", "fsnotify"])
    );
    assert_eq!(sync["schedule"]["default"], "@every 15m");
    assert_eq!(sync["restoreRemoteOnFirstRun"]["default"], true);
    assert_eq!(sync["cleanUp"]["properties"]["remote"]["default"], true);
    assert_eq!(
        sync["cleanUp"]["properties"]["forceLocal"]["default"],
        false
    );
    assert_eq!(
        sync["allowedDirections"]["properties"]["toRemote"]["default"],
        true
    );
    assert_eq!(
        sync["permissions"]["properties"]["uid"]["x-kubernetes-int-or-string"],
        true
    );
    let placement = &spec["initContainerPlacement"]["properties"]["placement"];
    assert_eq!(placement["default"], "last");
    assert_eq!(
        placement["enum"],
        serde_json::json!(["first", "last", "before", "after"])
    );
    assert_eq!(spec["sidecarMode"]["default"], "auto");
    assert_eq!(spec["debug"]["default"], false);
    assert_eq!(
        spec["automaticEncryption"]["properties"]["enabled"]["default"],
        false
    );
    let required =
        &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["required"];
    assert_eq!(
        required,
        &serde_json::json!(["localPath", "podSelector", "remotePath"])
    );
    // The object-valued defaults are the Rust defaults, so an omitted syncOptions is filled in
    // by the API server exactly as serde fills it in.
    assert_eq!(
        spec["syncOptions"]["default"],
        serde_json::to_value(vsc_types::crd::SyncOptions::default()).expect("serializes")
    );
}

#[test]
fn cross_field_rules_are_in_the_schema() {
    let crd = serde_json::to_value(PodFilesystemSync::crd()).expect("CRD serializes");
    let spec = &crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]["properties"];
    let rules = |v: &Value| -> Vec<String> {
        v["x-kubernetes-validations"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|r| r["rule"].as_str().unwrap_or_default().to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    assert!(rules(&spec["initContainerPlacement"])[0].contains("containerReference"));
    assert!(rules(&spec["syncOptions"])[0].contains("schedule"));
    assert!(
        rules(&spec["localPath"])
            .iter()
            .any(|r| r.contains("startsWith('/')"))
    );
    assert!(rules(&spec["podSelector"])[0].contains("matchLabels"));
}

// --- A small YAML emitter: block style, strings quoted (JSON syntax, valid YAML) whenever a
// plain scalar could be misread. Enough for a CRD; keeps the types crate free of YAML deps.

fn emit_map_body(value: &Value, indent: usize, out: &mut String) {
    let Value::Object(map) = value else { return };
    for (key, v) in map {
        push_indent(indent, out);
        out.push_str(&scalar_string(key));
        out.push(':');
        emit_after_key(v, indent, out);
    }
}

fn emit_after_key(value: &Value, indent: usize, out: &mut String) {
    match value {
        Value::Object(m) if !m.is_empty() => {
            out.push('\n');
            emit_map_body(value, indent + 2, out);
        }
        Value::Array(a) if !a.is_empty() => {
            out.push('\n');
            emit_seq_body(value, indent, out);
        }
        other => {
            out.push(' ');
            out.push_str(&inline(other));
            out.push('\n');
        }
    }
}

fn emit_seq_body(value: &Value, indent: usize, out: &mut String) {
    let Value::Array(items) = value else { return };
    for item in items {
        push_indent(indent, out);
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => {
                // First key on the dash line, the rest aligned under it.
                let mut first = true;
                for (key, v) in m {
                    if !first {
                        push_indent(indent + 2, out);
                    }
                    first = false;
                    out.push_str(&scalar_string(key));
                    out.push(':');
                    emit_after_key(v, indent + 2, out);
                }
            }
            Value::Array(a) if !a.is_empty() => {
                out.push_str(&inline(item));
                out.push('\n');
            }
            other => {
                out.push_str(&inline(other));
                out.push('\n');
            }
        }
    }
}

fn inline(value: &Value) -> String {
    match value {
        Value::String(s) => scalar_string(s),
        // JSON flow syntax is valid YAML for empty/nested collections and other scalars.
        other => other.to_string(),
    }
}

fn scalar_string(s: &str) -> String {
    let plain = !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/' | ' '))
        && s.starts_with(|c: char| c.is_ascii_alphabetic() || c == '/' || c == '_')
        && !s.ends_with(' ')
        && !matches!(
            s.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
        );
    if plain {
        s.to_string()
    } else {
        Value::String(s.to_string()).to_string()
    }
}

fn push_indent(indent: usize, out: &mut String) {
    out.extend(std::iter::repeat_n(' ', indent));
}

/// The API server warns "unrecognized format" on every install for formats it does not
/// know (schemars writes `uint32` for a `u32`).
#[test]
fn the_crd_uses_only_formats_the_api_server_knows() {
    let known = [
        "int32",
        "int64",
        "float",
        "double",
        "byte",
        "date",
        "date-time",
    ];
    let crd = generated();
    let unknown: Vec<&str> = crd
        .lines()
        .filter_map(|line| line.trim().strip_prefix("format: "))
        .filter(|format| !known.contains(&format.trim_matches('"')))
        .collect();
    assert!(
        unknown.is_empty(),
        "formats the API server does not know: {unknown:?}"
    );
}
